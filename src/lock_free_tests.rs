//! The paths the design promises are lock-free really take no lock.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::lock::LOCKS_TAKEN;
use crate::Semaphore;

fn locks_taken() -> usize {
    LOCKS_TAKEN.with(|n| n.get())
}

#[test]
fn uncontended_try_acquire_and_release_take_no_lock() {
    let sem = Semaphore::new(2);
    let before = locks_taken();
    for _ in 0..10 {
        let p = sem.try_acquire_many(2).unwrap();
        drop(p);
    }
    assert_eq!(locks_taken(), before);
}

#[test]
fn uncontended_acquire_and_run_take_no_lock() {
    let sem = Semaphore::new(1);
    let mut cx = Context::from_waker(Waker::noop());
    let before = locks_taken();
    let Poll::Ready(Ok(p)) = pin!(sem.acquire()).poll(&mut cx) else {
        panic!("a free permit must be taken at once");
    };
    drop(p);
    assert_eq!(pin!(sem.run(async { 3 })).poll(&mut cx), Poll::Ready(Ok(3)));
    assert_eq!(locks_taken(), before);
}

#[test]
fn only_waiting_and_waking_take_the_lock() {
    let sem = Semaphore::new(1);
    let mut cx = Context::from_waker(Waker::noop());
    let held = sem.try_acquire().unwrap();
    let mut waiter = pin!(sem.acquire());
    let before = locks_taken();
    assert!(waiter.as_mut().poll(&mut cx).is_pending());
    assert!(locks_taken() > before, "queueing takes the lock");
    let before = locks_taken();
    drop(held);
    assert!(
        locks_taken() > before,
        "a release with a waiter takes the lock"
    );
    assert!(matches!(waiter.poll(&mut cx), Poll::Ready(Ok(_))));
}
