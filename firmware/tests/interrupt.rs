//! Scenario 4: permits released from exception handlers wake a task waiting in
//! thread mode.
//!
//! Phase A: a task queues on the semaphore, then pends PendSV; the handler
//! drops the only permit, which is handed to the waiter, whose waker fires in
//! handler mode; thread mode sleeps in `wfi` until then.
//!
//! Phase B: SysTick fires every few thousand cycles and releases the permit
//! thread mode parked in `STASH`, preempting thread mode wherever it is: in
//! the executor, in `wfi`, or in the middle of `try_acquire`/`acquire`. Thread
//! mode takes the permit back 200 times, half by awaiting `acquire()`, half by
//! spinning on `try_acquire()`. A lost wake-up hangs (caught by the runner's
//! timeout); a lost or duplicated permit fails the final checks.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use core::task::{Context, Poll};

use cortex_m::peripheral::{syst::SystClkSource, SCB};
use critical_section::Mutex;
use permits::{Acquire, Permit, Semaphore};
use permits_firmware::{banner, block_on, println, wakes, Checks, Idle};

static SEM: Semaphore = Semaphore::new(1);
/// The permit thread mode hands over for a handler to release.
static STASH: Mutex<RefCell<Option<Permit<'static>>>> = Mutex::new(RefCell::new(None));
/// Permits released by a handler (load/store only, bumped in handlers, which
/// do not preempt each other here: both run at the default priority).
static RELEASED: AtomicU32 = AtomicU32::new(0);

fn stash(p: Permit<'static>) {
    critical_section::with(|cs| {
        let old = STASH.borrow_ref_mut(cs).replace(p);
        assert!(old.is_none());
    });
}

/// Takes the stashed permit (if any) and drops it: runs in handler mode.
fn release_stashed() {
    let p = critical_section::with(|cs| STASH.borrow_ref_mut(cs).take());
    if let Some(p) = p {
        drop(p);
        RELEASED.store(RELEASED.load(Relaxed) + 1, Relaxed);
    }
}

#[cortex_m_rt::exception]
fn PendSV() {
    release_stashed();
}

#[cortex_m_rt::exception]
fn SysTick() {
    release_stashed();
}

/// Polls an `Acquire`; the first time it is queued (Pending), pends PendSV.
struct PendWhenQueued<'a> {
    acquire: Pin<&'a mut Acquire<'static>>,
    pended: bool,
}

impl Future for PendWhenQueued<'_> {
    type Output = Result<Permit<'static>, permits::AcquireError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = self.acquire.as_mut().poll(cx);
        if r.is_pending() && !self.pended {
            self.pended = true;
            assert_eq!(SEM.waiters(), 1);
            SCB::set_pendsv();
        }
        r
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    banner("interrupt");
    let mut checks = Checks::new("interrupt");
    let mut cp = cortex_m::Peripherals::take().unwrap();

    // Phase A: PendSV.
    stash(SEM.try_acquire().unwrap());
    let (_, in_handler_before) = wakes();
    let acquire = core::pin::pin!(SEM.acquire());
    let p = block_on(
        PendWhenQueued {
            acquire,
            pended: false,
        },
        Idle::Sleep,
    )
    .unwrap();
    let (_, in_handler) = wakes();
    println!(
        "PendSV: released {}, wakes in handler mode {}",
        RELEASED.load(Relaxed),
        in_handler - in_handler_before
    );
    assert_eq!(RELEASED.load(Relaxed), 1);
    assert_eq!(
        in_handler - in_handler_before,
        1,
        "the waker must fire in PendSV"
    );
    checks.ok("PendSV handler released the permit and woke the waiting task");

    // Phase B: SysTick preempting thread mode at arbitrary points.
    const ROUNDS: u32 = 200;
    let (_, in_handler_before) = wakes();
    let mut waited = 0;
    let mut spun = 0;
    stash(p);
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(4_000);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();
    for round in 0..ROUNDS {
        let p = if round % 2 == 0 {
            let p = block_on(SEM.acquire(), Idle::Sleep).unwrap();
            waited += 1;
            p
        } else {
            loop {
                if let Ok(p) = SEM.try_acquire() {
                    spun += 1;
                    break p;
                }
            }
        };
        assert_eq!(p.num_permits(), 1);
        assert_eq!(SEM.available_permits(), 0);
        stash(p);
    }
    // Wait for the last release, then stop the tick.
    while SEM.available_permits() == 0 {
        cortex_m::asm::nop();
    }
    cp.SYST.disable_interrupt();
    cp.SYST.disable_counter();
    let (_, in_handler) = wakes();
    println!(
        "SysTick: {} rounds ({} awaited, {} spun on try_acquire), released {} in handlers, \
         {} wakes in handler mode",
        ROUNDS,
        waited,
        spun,
        RELEASED.load(Relaxed) - 1,
        in_handler - in_handler_before
    );
    assert_eq!(RELEASED.load(Relaxed), ROUNDS + 2);
    assert!(in_handler - in_handler_before > 0);
    assert_eq!((SEM.available_permits(), SEM.waiters()), (1, 0));
    checks.ok("SysTick: 200 hand-overs from handler mode, no permit lost or duplicated");
    checks.finish()
}
