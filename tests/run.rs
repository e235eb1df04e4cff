//! `run`: permits held exactly while the inner future runs, panic-safe.

mod common;
use common::Task;
use permits::Semaphore;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

#[test]
fn the_inner_future_is_not_polled_before_the_permit_is_held() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let started = AtomicBool::new(false);
    let mut task = Task::new(sem.run(async {
        started.store(true, SeqCst);
        1
    }));
    task.pending();
    assert!(!started.load(SeqCst));
    drop(held);
    assert_eq!(task.ready(), Ok(1));
    assert!(started.load(SeqCst));
}

#[test]
fn the_permit_is_held_while_the_inner_future_is_pending_and_released_after() {
    let sem = Semaphore::new(2);
    let mut task = Task::new(sem.run_many(2, common::yield_now()));
    task.pending();
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(task.ready(), Ok(()));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn a_panic_in_the_inner_future_releases_the_permit_while_unwinding() {
    let sem = Semaphore::new(1);
    let mut waiter = Task::new(sem.acquire());
    let mut task = Task::new(sem.run(async {
        common::yield_now().await;
        panic!("boom");
    }));
    task.pending();
    waiter.pending();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.poll()));
    assert!(r.is_err());
    // Released during the unwind, before `task` itself is dropped.
    assert_eq!(waiter.wakes(), 1);
    assert!(waiter.ready().is_ok());
    drop(task);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
#[cfg(feature = "alloc")]
fn run_owned_is_static_and_spawnable() {
    use std::sync::Arc;
    let sem = Arc::new(Semaphore::new(1));
    let fut = sem.clone().run_owned(async { 5 });
    let handle = std::thread::spawn(move || futures::executor::block_on(fut));
    assert_eq!(handle.join().unwrap(), Ok(5));
    assert_eq!(sem.available_permits(), 1);
}
