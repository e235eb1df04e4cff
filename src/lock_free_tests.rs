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

#[test]
fn a_served_waiter_resolves_and_drops_without_the_lock() {
    let sem = Semaphore::new(1);
    let mut cx = Context::from_waker(Waker::noop());
    let held = sem.try_acquire().unwrap();
    let mut first = pin!(sem.acquire());
    let mut second = std::boxed::Box::pin(sem.acquire());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    drop(held);
    // `first` was handed the permit by the release; its re-poll only reads
    // its own node.
    let before = locks_taken();
    let Poll::Ready(Ok(p)) = first.as_mut().poll(&mut cx) else {
        panic!("the released permit goes to the head of the queue");
    };
    assert_eq!(locks_taken(), before);
    drop(p);
    // `second` was served by that drop; dropping it unpolled gives the
    // permit back, again without the lock.
    let before = locks_taken();
    drop(second);
    assert_eq!(locks_taken(), before);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn releases_paying_debt_with_nobody_queued_take_no_lock() {
    let sem = Semaphore::new(3);
    let held = [sem.try_acquire_many(2).unwrap(), sem.try_acquire().unwrap()];
    sem.set_limit(1);
    assert_eq!(sem.debt(), 2);
    let before = locks_taken();
    drop(held);
    assert_eq!(locks_taken(), before, "paying debt is the release's CAS");
    assert_eq!((sem.debt(), sem.available_permits()), (0, 1));
    // And the fast paths are as before once it is paid.
    let before = locks_taken();
    drop(sem.try_acquire().unwrap());
    assert_eq!(locks_taken(), before);
}

#[test]
fn a_request_waiting_aside_leaves_the_fast_paths_lock_free() {
    let sem = Semaphore::new(1);
    let mut cx = Context::from_waker(Waker::noop());
    let mut big = pin!(sem.acquire_many(2));
    assert!(big.as_mut().poll(&mut cx).is_pending());
    let before = locks_taken();
    drop(sem.try_acquire().unwrap());
    let Poll::Ready(Ok(p)) = pin!(sem.acquire()).poll(&mut cx) else {
        panic!("a request aside holds nobody back");
    };
    drop(p);
    assert_eq!(locks_taken(), before);
}
