//! A panic in user code the semaphore calls (a waker's `wake`, `clone` or
//! `drop`) or drives (`run`'s future) loses no permit and strands no waiter.
#![cfg(feature = "alloc")]

mod common;
use common::Task;
use permits::Semaphore;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Poll, RawWaker, RawWakerVTable, Wake, Waker};

/// A waker whose `wake` panics.
struct PanicOnWake;
impl Wake for PanicOnWake {
    fn wake(self: Arc<Self>) {
        panic!("wake panicked");
    }
}

/// Queues `n` acquires of one permit on a semaphore with none free; the one
/// at index `bad` gets a panicking waker.
fn queue_with_bad_waker(sem: &Semaphore, n: usize, bad: usize) -> Vec<Task<permits::Acquire<'_>>> {
    let bad_waker = Waker::from(Arc::new(PanicOnWake));
    (0..n)
        .map(|i| {
            let mut t = Task::new(sem.acquire());
            if i == bad {
                assert!(t.poll_with(&bad_waker).is_pending());
            } else {
                t.pending();
            }
            t
        })
        .collect()
}

#[test]
fn close_finishes_waking_everyone_when_a_wake_panics() {
    let sem = Semaphore::new(0);
    let mut tasks = queue_with_bad_waker(&sem, 20, 7);
    assert!(catch_unwind(AssertUnwindSafe(|| sem.close())).is_err());
    assert_eq!(sem.waiters(), 0, "close must not leave waiters queued");
    for (i, t) in tasks.iter_mut().enumerate() {
        if i != 7 {
            assert_eq!(t.wakes(), 1, "waiter {i} was not woken");
        }
        assert!(matches!(t.poll(), Poll::Ready(Err(_))));
    }
}

#[test]
fn serve_finishes_its_rounds_when_a_wake_panics() {
    let sem = Semaphore::new(0);
    let mut tasks = queue_with_bad_waker(&sem, 20, 3);
    assert!(catch_unwind(AssertUnwindSafe(|| sem.add_permits(20))).is_err());
    assert_eq!(sem.waiters(), 0, "serve must not leave waiters queued");
    for (i, t) in tasks.iter_mut().enumerate() {
        if i != 3 {
            assert_eq!(t.wakes(), 1, "waiter {i} was not woken");
        }
        drop(t.ready().unwrap());
    }
    assert_eq!(sem.available_permits(), 20);
}

static DROP_PANICS: AtomicUsize = AtomicUsize::new(0);

/// A waker whose last clone panics when dropped (once armed).
fn waker_panicking_on_drop() -> Waker {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        |p| RawWaker::new(p, &VTABLE),
        |_| {},
        |_| {},
        |_| {
            if DROP_PANICS.fetch_add(1, SeqCst) == 0 {
                panic!("waker drop panicked");
            }
        },
    );
    // SAFETY: the vtable functions ignore the data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

#[test]
fn cancelling_a_partly_served_head_with_a_panicking_waker_drop_loses_nothing() {
    DROP_PANICS.store(1, SeqCst); // disarmed while queueing
    let sem = Semaphore::new(2);
    let mut held = sem.try_acquire_many(2).unwrap();
    let mut head = Task::new(sem.acquire_many(2));
    assert!(head.poll_with(&waker_panicking_on_drop()).is_pending());
    drop(held.split(1)); // the head now holds 1 of its 2
    DROP_PANICS.store(0, SeqCst); // the stored clone panics when dropped
    assert!(catch_unwind(AssertUnwindSafe(|| drop(head))).is_err());
    drop(held);
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn a_panic_in_runs_future_releases_and_later_acquires_work() {
    let sem = Semaphore::new(1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(sem.run(async { panic!("inner") }))
    }));
    assert!(r.is_err());
    assert_eq!(sem.available_permits(), 1);
    assert!(futures::executor::block_on(sem.acquire()).is_ok());
}

#[test]
fn run_drops_its_future_before_giving_the_permit_back() {
    struct SeesPermits<'a>(&'a Semaphore, &'a AtomicUsize);
    impl Drop for SeesPermits<'_> {
        fn drop(&mut self) {
            self.1.store(self.0.available_permits(), SeqCst);
        }
    }
    let sem = Semaphore::new(1);
    let seen = AtomicUsize::new(usize::MAX);
    let mut task = Task::new(sem.run(async {
        let _guard = SeesPermits(&sem, &seen);
        std::future::pending::<()>().await
    }));
    task.pending();
    drop(task);
    assert_eq!(
        seen.load(SeqCst),
        0,
        "the future's cleanup ran without the permit"
    );
    assert_eq!(sem.available_permits(), 1);
}
