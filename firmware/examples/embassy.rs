//! `permits` in an embassy application: the shape to copy into a real
//! firmware. Two "bus" permits are shared by
//!
//! 1. three sensor tasks that each `run` a transfer on the bus,
//! 2. a calibration step that `acquire`s both permits for an exclusive burst,
//! 3. a backlog of jobs arriving on an embassy-sync `Channel` (a `Stream`),
//!    worked through by `run_stream_fixed` with at most two in flight and no
//!    allocator.
//!
//! Runs under qemu (`cargo run --example embassy --target thumbv7m-none-eabi`
//! in `firmware/`) and prints over semihosting; with `--features defmt` it
//! also logs through `defmt` over RTT, which is what a real board uses (see
//! `firmware/README.md` for putting it on one).
#![no_std]
#![no_main]

use core::cell::Cell;
use core::future::poll_fn;
use core::pin::pin;

#[cfg(feature = "defmt")]
use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::{raw::CriticalSectionRawMutex, Mutex};
use embassy_sync::channel::Channel;
use futures_core::Stream;
use permits::Semaphore;
use permits_firmware::{banner, println}; // the defmt logger: RTT, read by probe-rs on a real board

/// Logs to semihosting (qemu) and, with the `defmt` feature, to defmt.
macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::info!($($arg)*);
        println!($($arg)*);
    }};
}

const BUS_PERMITS: usize = 2;
const SENSORS: u32 = 3;
const JOBS: u32 = 20;

/// The bus allows two transfers at once. `const fn new`: no heap, no init.
static BUS: Semaphore = Semaphore::new(BUS_PERMITS);
/// Each sensor task adds one permit when it is done; `main` waits for all.
static SENSORS_DONE: Semaphore = Semaphore::new(0);
/// Jobs from a producer task (an interrupt handler or a radio in real life).
static QUEUE: Channel<CriticalSectionRawMutex, u32, 4> = Channel::new();
/// (transfers on the bus now, most at once): checked at the end.
static ON_BUS: Mutex<CriticalSectionRawMutex, Cell<(usize, usize)>> = Mutex::new(Cell::new((0, 0)));

/// One bus transfer: yields a few times, as a DMA transfer would.
async fn transfer(id: u32) -> u32 {
    ON_BUS.lock(|c| {
        let (now, max) = c.get();
        c.set((now + 1, max.max(now + 1)));
    });
    for _ in 0..=id % 3 {
        embassy_futures::yield_now().await;
    }
    ON_BUS.lock(|c| {
        let (now, max) = c.get();
        c.set((now - 1, max));
    });
    id * 10
}

#[embassy_executor::task(pool_size = 3)]
async fn sensor(id: u32) {
    // 1. `run`: the permit is held exactly while the transfer runs.
    let reading = BUS.run(transfer(id)).await.expect("BUS is never closed");
    info!("sensor {}: read {}", id, reading);
    SENSORS_DONE.add_permits(1);
}

#[embassy_executor::task]
async fn producer() {
    for job in 0..JOBS {
        QUEUE.send(job).await; // waits while the channel is full
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    banner("embassy example");
    for id in 0..SENSORS {
        spawner.spawn(sensor(id).unwrap());
    }
    SENSORS_DONE
        .acquire_many(SENSORS as usize)
        .await
        .expect("never closed")
        .forget();

    // 2. `acquire`: both permits for a burst nobody may interleave with.
    {
        let burst = BUS.acquire_many(BUS_PERMITS).await.expect("never closed");
        info!("calibration holds {:?}", burst);
        let refused = BUS.try_acquire().expect_err("both permits are held");
        info!("try_acquire during the burst: {}", refused);
    } // dropping `burst` gives both permits back

    // 3. `run_stream_fixed`: a job is taken off the channel only once a bus
    //    permit is free for it; two slots inside the stream, no allocator.
    spawner.spawn(producer().unwrap());
    let mut jobs = pin!(BUS.run_stream_fixed::<BUS_PERMITS, _, _, _>(QUEUE.receiver(), transfer));
    let mut sum = 0;
    for _ in 0..JOBS {
        // The channel never ends, so take exactly `JOBS` results.
        let out = poll_fn(|cx| jobs.as_mut().poll_next(cx)).await;
        sum += out.expect("the channel never ends").expect("never closed");
        let progress = jobs.progress();
        if progress.done % 5 == 0 {
            info!("jobs: {}", progress);
        }
    }
    assert_eq!(sum, (0..JOBS).map(|j| j * 10).sum::<u32>());

    let (now, max) = ON_BUS.lock(|c| c.get());
    info!("bus: max {} transfers at once (limit {})", max, BUS_PERMITS);
    info!("{:?}", BUS);
    assert_eq!((now, max), (0, BUS_PERMITS));
    assert_eq!(BUS.available_permits(), BUS_PERMITS);
    println!("embassy example: 1 passed, 0 failed");
    permits_firmware::exit(true)
}
