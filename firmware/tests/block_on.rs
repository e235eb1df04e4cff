//! Scenario 2: five tasks share a `static` semaphore of two permits through
//! `SEM.run(..)` under a hand-written executor (no executor crate): a task is
//! polled again only after its waker fired, and a lost wake-up panics.
#![no_std]
#![no_main]

use core::pin::pin;

use permits::Semaphore;
use permits_firmware::{banner, println, run_all, wakes, yield_times, Checks, Idle, Tracker};

const LIMIT: usize = 2;
static SEM: Semaphore = Semaphore::new(LIMIT);
static TRACK: Tracker = Tracker::new();

async fn worker(id: u8) {
    let out = SEM
        .run(async {
            let now = TRACK.enter(id);
            println!("task {} running (in flight {})", id, now);
            yield_times(u32::from(id % 3) + 1).await;
            TRACK.leave();
            println!("task {} done", id);
            id
        })
        .await;
    assert_eq!(out, Ok(id));
}

#[cortex_m_rt::entry]
fn main() -> ! {
    banner("block_on");
    let mut checks = Checks::new("block_on");

    let (t0, t1, t2, t3, t4) = (
        pin!(worker(0)),
        pin!(worker(1)),
        pin!(worker(2)),
        pin!(worker(3)),
        pin!(worker(4)),
    );
    let polls = run_all(&mut [t0, t1, t2, t3, t4], Idle::Panic);
    let (now, max) = TRACK.counts();
    let (wakes, _) = wakes();
    println!(
        "all done after {} polls, {} wakes; max in flight = {}",
        polls, wakes, max
    );

    assert_eq!(max, LIMIT as u32, "max in flight must equal the limit");
    checks.ok("max in flight == limit (2)");
    assert_eq!(now, 0);
    assert_eq!(
        TRACK.order(),
        ([0, 1, 2, 3, 4, 0, 0, 0], 5),
        "FIFO entry order"
    );
    checks.ok("tasks entered in FIFO order 0,1,2,3,4");
    assert_eq!(SEM.available_permits(), LIMIT);
    assert_eq!(SEM.waiters(), 0);
    checks.ok("all permits back, no waiters");
    checks.finish()
}
