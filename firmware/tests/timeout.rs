//! Deadlines are composition: `embassy_time::with_timeout` around a queued
//! `acquire` / `acquire_many` / `run`, under embassy-executor, with
//! embassy-time's mock driver as the clock: the main task moves time forward
//! by hand (`MockDriver::advance`), so every deadline fires exactly when the
//! test says, with no hardware timer and no timing in the assertions.
//!
//! A timeout drops the inner future, which is the semaphore's cancellation
//! path: the waiter leaves the queue, permits it had been handed go to the
//! next waiter, who is woken.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

use embassy_executor::Spawner;
use embassy_time::{with_timeout, Duration, Instant, MockDriver};
use permits::Semaphore;
use permits_firmware::{banner, println, Checks};

/// A deadline every queued waiter below is given, unless it must not fire.
const DEADLINE: Duration = Duration::from_millis(10);
/// A deadline that is never reached in this test.
const NEVER: Duration = Duration::from_secs(3600);

/// What a waiter task saw; `store`d once by the task, read by main.
struct Outcome(AtomicU8);

const WAITING: u8 = 0;
const GOT_PERMITS: u8 = 1;
const TIMED_OUT: u8 = 2;
const CLOSED: u8 = 3;

impl Outcome {
    const fn new() -> Self {
        Self(AtomicU8::new(WAITING))
    }
    fn set(&self, v: u8) {
        self.0.store(v, Relaxed)
    }
    fn get(&self) -> u8 {
        self.0.load(Relaxed)
    }
}

/// Each waiter adds one permit here when it finishes; main awaits them.
static DONE: Semaphore = Semaphore::new(0);

/// Waits for `n` permits of `sem`, at most `deadline`; records the result,
/// holds the permits for one yield (so they are really held) and drops them.
#[embassy_executor::task(pool_size = 4)]
async fn waiter(sem: &'static Semaphore, n: usize, deadline: Duration, out: &'static Outcome) {
    match with_timeout(deadline, sem.acquire_many(n)).await {
        Ok(Ok(permit)) => {
            assert_eq!(permit.num_permits(), n);
            out.set(GOT_PERMITS);
            embassy_futures::yield_now().await;
        }
        Ok(Err(_closed)) => out.set(CLOSED),
        Err(embassy_time::TimeoutError) => out.set(TIMED_OUT),
    }
    DONE.add_permits(1);
}

/// Yields until `cond` holds; panics if it does not within 50 yields (every
/// task woken meanwhile has run by then: a woken task runs in the next pass).
async fn settle(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..50 {
        if cond() {
            return;
        }
        embassy_futures::yield_now().await;
    }
    panic!("never happened: {}", what);
}

/// Lets every woken task run a few times, for "nothing happened" checks.
async fn let_others_run() {
    for _ in 0..10 {
        embassy_futures::yield_now().await;
    }
}

/// Moves the mock clock; wakes the tasks whose deadlines passed.
fn advance(d: Duration) {
    MockDriver::get().advance(d);
    println!("t = {} ms", Instant::now().as_millis());
}

/// Waits until `n` more waiter tasks have finished. Polls instead of
/// awaiting `DONE`, so that a waiter never woken fails the test at once with
/// a message, rather than the runner's `timeout` after a minute.
async fn finished(n: usize) {
    settle("waiter tasks finished", || DONE.available_permits() >= n).await;
    DONE.try_acquire_many(n).unwrap().forget();
}

static SEM1: Semaphore = Semaphore::new(1);
static TIMED1: Outcome = Outcome::new();
static BEHIND1: Outcome = Outcome::new();

/// 1. The deadline fires while queued; the waiter behind it is served.
async fn timeout_while_queued(spawner: &Spawner, checks: &mut Checks) {
    let held = SEM1.acquire().await.unwrap();
    spawner.spawn(waiter(&SEM1, 1, DEADLINE, &TIMED1).unwrap());
    settle("first waiter queued", || SEM1.waiters() == 1).await;
    spawner.spawn(waiter(&SEM1, 1, NEVER, &BEHIND1).unwrap());
    settle("second waiter queued", || SEM1.waiters() == 2).await;

    advance(DEADLINE - Duration::from_millis(1));
    let_others_run().await;
    assert_eq!((TIMED1.get(), SEM1.waiters()), (WAITING, 2), "fired early");
    checks.ok("1 ms before the deadline: still queued");

    advance(Duration::from_millis(2));
    finished(1).await;
    assert_eq!(TIMED1.get(), TIMED_OUT);
    assert_eq!(
        SEM1.waiters(),
        1,
        "the timed-out waiter must leave the queue"
    );
    assert_eq!(BEHIND1.get(), WAITING);
    assert_eq!(SEM1.available_permits(), 0);
    checks.ok("deadline passed: Err(TimeoutError), left the queue (1 waiter left)");

    drop(held);
    finished(1).await;
    assert_eq!(BEHIND1.get(), GOT_PERMITS);
    assert_eq!((SEM1.available_permits(), SEM1.waiters()), (1, 0));
    checks.ok("main's release serves the waiter behind; 1 of 1 permits back");
}

static SEM3: Semaphore = Semaphore::new(3);
static HEAD3: Outcome = Outcome::new();
static BEHIND3: Outcome = Outcome::new();

/// 2. The deadline fires while the head is partly served: what it was
///    handed goes to the waiter behind it, which is woken.
async fn timeout_partly_served(spawner: &Spawner, checks: &mut Checks) {
    let held = SEM3.acquire_many(2).await.unwrap();
    spawner.spawn(waiter(&SEM3, 3, DEADLINE, &HEAD3).unwrap());
    settle("head queued", || SEM3.waiters() == 1).await;
    assert_eq!(
        SEM3.available_permits(),
        0,
        "the free permit goes to the head"
    );
    spawner.spawn(waiter(&SEM3, 1, NEVER, &BEHIND3).unwrap());
    settle("second waiter queued", || SEM3.waiters() == 2).await;
    checks.ok("head of acquire_many(3) handed the 1 free permit, 1 waiter behind");

    advance(DEADLINE + Duration::from_millis(1));
    finished(2).await; // the head times out, then the one behind completes
    assert_eq!((HEAD3.get(), BEHIND3.get()), (TIMED_OUT, GOT_PERMITS));
    assert_eq!((SEM3.available_permits(), SEM3.waiters()), (1, 0));
    checks.ok("head timed out; its permit went to the waiter behind, which completed");

    drop(held);
    assert_eq!(SEM3.available_permits(), 3);
    checks.ok("3 of 3 permits back");
}

static SEM_RUN: Semaphore = Semaphore::new(1);
static RUN_OUT: Outcome = Outcome::new();
static BODY_RAN: AtomicBool = AtomicBool::new(false);
static BODY_DROPPED: AtomicBool = AtomicBool::new(false);

/// Sets `BODY_DROPPED` when dropped, to show the timed-out `run` let go of `f`.
struct DropFlag;

impl Drop for DropFlag {
    fn drop(&mut self) {
        BODY_DROPPED.store(true, Relaxed);
    }
}

#[embassy_executor::task]
async fn run_waiter() {
    let flag = DropFlag;
    let body = async move {
        let _flag = flag;
        BODY_RAN.store(true, Relaxed);
    };
    match with_timeout(DEADLINE, SEM_RUN.run(body)).await {
        Ok(Ok(())) => RUN_OUT.set(GOT_PERMITS),
        Ok(Err(_closed)) => RUN_OUT.set(CLOSED),
        Err(embassy_time::TimeoutError) => RUN_OUT.set(TIMED_OUT),
    }
    DONE.add_permits(1);
}

/// 3. `with_timeout` around a queued `run(f)`: `f` never runs, and is dropped.
async fn timeout_run(spawner: &Spawner, checks: &mut Checks) {
    let held = SEM_RUN.acquire().await.unwrap();
    spawner.spawn(run_waiter().unwrap());
    settle("run queued", || SEM_RUN.waiters() == 1).await;

    advance(DEADLINE + Duration::from_millis(1));
    finished(1).await;
    assert_eq!(RUN_OUT.get(), TIMED_OUT);
    assert!(!BODY_RAN.load(Relaxed), "f ran without a permit");
    assert!(BODY_DROPPED.load(Relaxed), "f was not dropped");
    assert_eq!((SEM_RUN.waiters(), SEM_RUN.available_permits()), (0, 0));
    checks.ok("run timed out while queued: f never ran, f dropped, queue empty");

    drop(held);
    assert_eq!(SEM_RUN.available_permits(), 1);
    let rerun = SEM_RUN.run(async { 7 }).await;
    assert_eq!((rerun, SEM_RUN.available_permits()), (Ok(7), 1));
    checks.ok("1 of 1 permits back; the next run gets it at once");
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    banner("timeout");
    let mut checks = Checks::new("timeout");
    timeout_while_queued(&spawner, &mut checks).await;
    timeout_partly_served(&spawner, &mut checks).await;
    timeout_run(&spawner, &mut checks).await;
    assert_eq!((DONE.available_permits(), DONE.waiters()), (0, 0));
    checks.finish()
}
