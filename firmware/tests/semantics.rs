//! Scenario 3: the semaphore's contract checked on target, polling futures by
//! hand with flag wakers: FIFO order, `acquire_many` at the head of the queue,
//! cancellation (dropping a queued acquire, before and after it was handed
//! permits), `close`, `run`, an adaptive limiter (a `static`, no clock, f64
//! arithmetic in software on cores without an FPU); and which path
//! (lock-free or critical section) the counter takes on this core.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::future::Future;
use core::pin::{pin, Pin};
use core::task::Poll;

use core::time::Duration;

use permits::adaptive::{Aimd, Limiter, Outcome, Reason};
use permits::{AcquireError, Semaphore, TryAcquireError};
use permits_firmware::{banner, poll_with, println, sections, take_woken, Checks};

static SEM: Semaphore = Semaphore::new(2);
static ADAPTIVE: Limiter = Limiter::new(Aimd::new().initial_limit(2).max_limit(8));

/// Polls the future in the slot (it must still be there) with waker `i`.
fn poll<F: Future>(slot: Pin<&mut Option<F>>, i: usize) -> Poll<F::Output> {
    poll_with(slot.as_pin_mut().expect("future already dropped"), i)
}

fn ready<T>(p: Poll<T>) -> T {
    match p {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("expected Ready, got Pending"),
    }
}

/// Clears every wake flag (earlier checks may have left some set).
fn clear_flags() {
    for i in 0..permits_firmware::MAX_TASKS {
        take_woken(i);
    }
}

fn fifo(checks: &mut Checks) {
    clear_flags();
    let sem = Semaphore::new(0);
    let mut a = pin!(Some(sem.acquire()));
    let mut b = pin!(Some(sem.acquire()));
    let mut c = pin!(Some(sem.acquire()));
    assert!(poll(a.as_mut(), 0).is_pending());
    assert!(poll(b.as_mut(), 1).is_pending());
    assert!(poll(c.as_mut(), 2).is_pending());
    assert_eq!(sem.waiters(), 3);

    sem.add_permits(1);
    assert_eq!(
        (take_woken(0), take_woken(1), take_woken(2)),
        (true, false, false)
    );
    assert!(poll(b.as_mut(), 1).is_pending(), "b must not overtake a");
    let pa = ready(poll(a.as_mut(), 0)).unwrap();
    assert_eq!(pa.num_permits(), 1);

    drop(pa);
    assert_eq!((take_woken(1), take_woken(2)), (true, false));
    let pb = ready(poll(b.as_mut(), 1)).unwrap();
    assert!(poll(c.as_mut(), 2).is_pending());
    drop(pb);
    assert!(take_woken(2));
    let pc = ready(poll(c.as_mut(), 2)).unwrap();
    assert_eq!((sem.waiters(), sem.available_permits()), (0, 0));
    drop(pc);
    assert_eq!(sem.available_permits(), 1);
    checks.ok("FIFO: three queued acquires served in arrival order");
}

fn many_at_head(checks: &mut Checks) {
    clear_flags();
    // Limit 3, all held: a queued acquire_many(3) fits and heads the queue.
    let sem = Semaphore::new(3);
    let mut held = sem.try_acquire_many(3).unwrap();
    let mut big = pin!(Some(sem.acquire_many(3)));
    let mut small = pin!(Some(sem.acquire()));
    assert!(poll(big.as_mut(), 0).is_pending());
    assert!(poll(small.as_mut(), 1).is_pending());

    drop(held.split(2).unwrap());
    assert_eq!((take_woken(0), take_woken(1)), (false, false));
    assert!(
        poll(small.as_mut(), 1).is_pending(),
        "small must wait behind big"
    );
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);

    drop(held);
    assert_eq!((take_woken(0), take_woken(1)), (true, false));
    let p = ready(poll(big.as_mut(), 0)).unwrap();
    assert_eq!(p.num_permits(), 3);
    assert!(poll(small.as_mut(), 1).is_pending());
    drop(p);
    assert!(take_woken(1));
    let q = ready(poll(small.as_mut(), 1)).unwrap();
    assert_eq!(sem.available_permits(), 2);
    drop(q);
    assert_eq!(sem.available_permits(), 3);
    checks.ok("acquire_many(3) at the head holds back a later acquire()");
}

fn larger_than_limit_waits_aside(checks: &mut Checks) {
    clear_flags();
    // `new(0)` filled later: a request larger than the limit does not wedge
    // the queue; it takes its place back once the limit reaches it.
    let sem = Semaphore::new(0);
    let mut big = pin!(Some(sem.acquire_many(3)));
    let mut small = pin!(Some(sem.acquire()));
    assert!(poll(big.as_mut(), 0).is_pending());
    assert!(poll(small.as_mut(), 1).is_pending());
    sem.add_permits(2);
    assert_eq!((take_woken(0), take_woken(1)), (false, true));
    let q = ready(poll(small.as_mut(), 1)).unwrap();
    sem.add_permits(1); // limit 3: big is back, and handed the 2 free ones
    assert_eq!((sem.limit(), sem.available_permits()), (3, 0));
    drop(q);
    assert!(take_woken(0));
    let p = ready(poll(big.as_mut(), 0)).unwrap();
    assert_eq!(p.num_permits(), 3);
    // An exact shrink with all three out: they become debt, paid on return.
    sem.set_limit(1);
    assert_eq!(sem.debt(), 2);
    drop(p);
    assert_eq!((sem.debt(), sem.available_permits()), (0, 1));
    checks.ok("larger than the limit waits aside; set_limit shrinks exactly");
}

fn cancel_queued(checks: &mut Checks) {
    clear_flags();
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut a = pin!(Some(sem.acquire()));
    let mut b = pin!(Some(sem.acquire()));
    assert!(poll(a.as_mut(), 0).is_pending());
    assert!(poll(b.as_mut(), 1).is_pending());
    assert_eq!(sem.waiters(), 2);

    a.set(None); // cancel a while it waits
    assert_eq!(sem.waiters(), 1);
    drop(held);
    assert_eq!((take_woken(0), take_woken(1)), (false, true));
    let p = ready(poll(b.as_mut(), 1)).unwrap();
    drop(p);
    assert_eq!((sem.available_permits(), sem.waiters()), (1, 0));
    checks.ok("cancel: dropping a queued acquire, the next waiter is served");
}

fn cancel_after_handoff(checks: &mut Checks) {
    clear_flags();
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut a = pin!(Some(sem.acquire()));
    let mut b = pin!(Some(sem.acquire()));
    assert!(poll(a.as_mut(), 0).is_pending());
    assert!(poll(b.as_mut(), 1).is_pending());

    drop(held); // the permit is handed to a ...
    assert_eq!((take_woken(0), take_woken(1)), (true, false));
    a.set(None); // ... which is dropped before it polls again
    assert!(take_woken(1), "the handed-off permit must go on to b");
    let p = ready(poll(b.as_mut(), 1)).unwrap();
    assert_eq!(sem.available_permits(), 0);
    drop(p);
    assert_eq!((sem.available_permits(), sem.waiters()), (1, 0));
    checks.ok("cancel after hand-off: the permit goes on to the next waiter");
}

fn close(checks: &mut Checks) {
    clear_flags();
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut a = pin!(Some(sem.acquire()));
    assert!(poll(a.as_mut(), 0).is_pending());

    sem.close();
    assert!(sem.is_closed());
    assert!(take_woken(0), "close must wake queued acquires");
    assert_eq!(
        ready(poll(a.as_mut(), 0)).unwrap_err(),
        AcquireError::Closed
    );
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    let mut later = pin!(Some(sem.acquire()));
    assert_eq!(
        ready(poll(later.as_mut(), 1)).unwrap_err(),
        AcquireError::Closed
    );
    assert_eq!(held.num_permits(), 1);
    drop(held); // still fine after close
    assert_eq!(sem.waiters(), 0);
    checks.ok("close: queued, later and try acquires fail with Closed");
}

fn run_waits(checks: &mut Checks) {
    clear_flags();
    let sem = Semaphore::new(0);
    let started = Cell::new(false);
    let mut r = pin!(Some(sem.run(async {
        started.set(true);
        7
    })));
    assert!(poll(r.as_mut(), 0).is_pending());
    assert!(
        !started.get(),
        "inner future polled before its permit was held"
    );
    sem.add_permits(1);
    assert!(take_woken(0));
    assert_eq!(ready(poll(r.as_mut(), 0)), Ok(7));
    assert!(started.get());
    assert_eq!(sem.available_permits(), 1);
    checks.ok("run: inner future starts only once the permit is held");
}

/// The adaptive limiter on target: grows when the limit is reached at a
/// steady latency, serves a queued acquire with the new permit, and shrinks
/// exactly on an overload while every permit is out.
fn adaptive(checks: &mut Checks) {
    clear_flags();
    let ms = Duration::from_millis(20);
    for _ in 0..2 {
        let a = ADAPTIVE.try_acquire().unwrap();
        let b = ADAPTIVE.try_acquire().unwrap();
        a.record(Outcome::Success, ms);
        b.record(Outcome::Success, ms);
    }
    assert_eq!(ADAPTIVE.limit(), 3);
    assert_eq!(ADAPTIVE.last_decision().unwrap().reason, Reason::Grow);

    let held = [
        ADAPTIVE.try_acquire().unwrap(),
        ADAPTIVE.try_acquire().unwrap(),
        ADAPTIVE.try_acquire().unwrap(),
    ];
    let mut queued = pin!(Some(ADAPTIVE.acquire()));
    assert!(poll(queued.as_mut(), 0).is_pending());
    let [a, b, c] = held;
    a.record(Outcome::Overload, ms); // 3 -> 2 with 3 out: one is debt
    assert_eq!(ADAPTIVE.limit(), 2);
    assert_eq!(ADAPTIVE.semaphore().limit(), 2);
    assert!(!take_woken(0), "the returned permit paid the debt");
    drop(b);
    assert!(take_woken(0));
    let d = ready(poll(queued.as_mut(), 0)).unwrap();
    drop((c, d));
    assert_eq!(ADAPTIVE.semaphore().available_permits(), 2);
    checks.ok("adaptive limiter: grows, serves the queue, shrinks exactly");
}

/// Shows which path the semaphore takes on this core by counting critical
/// sections (our critical-section impl counts every one entered).
fn paths(checks: &mut Checks) {
    let before = sections();
    let p = SEM.try_acquire().unwrap();
    drop(p);
    let fast = sections() - before;

    clear_flags();
    let held = SEM.try_acquire_many(2).unwrap();
    let before = sections();
    let mut a = pin!(Some(SEM.acquire()));
    assert!(poll(a.as_mut(), 0).is_pending());
    drop(held);
    assert!(ready(poll(a.as_mut(), 0)).is_ok());
    let queued = sections() - before;
    println!(
        "critical sections: try_acquire + release = {}, queued acquire + hand-off = {}",
        fast, queued
    );

    if cfg!(not(target_has_atomic = "ptr")) {
        // thumbv6m: no CAS, so every counter update is a critical section.
        assert!(
            fast >= 2,
            "no-CAS core: the counter must go through critical sections"
        );
        checks.ok("thumbv6m: counter updates run in critical sections");
    } else {
        assert_eq!(fast, 0, "CAS core: the uncontended path must be lock-free");
        checks.ok("CAS core: uncontended try_acquire/release is lock-free");
    }
    if cfg!(feature = "critical-section") {
        assert!(
            queued > 0,
            "critical-section backend: the queue lock is a section"
        );
        checks.ok("queue lock is critical_section::with");
    } else {
        assert_eq!(queued, 0, "spin backend: no critical sections");
        checks.ok("queue lock is the spin lock (no critical sections)");
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    banner("semantics");
    let mut checks = Checks::new("semantics");
    fifo(&mut checks);
    many_at_head(&mut checks);
    larger_than_limit_waits_aside(&mut checks);
    cancel_queued(&mut checks);
    cancel_after_handoff(&mut checks);
    close(&mut checks);
    run_waits(&mut checks);
    adaptive(&mut checks);
    paths(&mut checks);
    assert_eq!((SEM.available_permits(), SEM.waiters()), (2, 0));
    checks.finish()
}
