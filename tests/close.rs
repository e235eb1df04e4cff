//! `close`: waiters fail, held permits stay valid, "closed" stays apart from
//! the count.

mod common;
use common::Task;
use permits::{AcquireError, Semaphore, TryAcquireError};

#[test]
fn close_fails_queued_and_later_acquires_and_wakes_every_waiter() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire_many(2).unwrap();
    let mut waiters: Vec<_> = (0..20)
        .map(|i| Task::new(sem.acquire_many(1 + i % 3)))
        .collect();
    for w in &mut waiters {
        w.pending();
    }
    sem.close();
    assert!(sem.is_closed());
    assert_eq!(sem.waiters(), 0);
    for w in &mut waiters {
        assert_eq!(w.wakes(), 1);
        assert_eq!(w.ready().unwrap_err(), AcquireError::Closed);
    }
    assert_eq!(
        Task::new(sem.acquire()).ready().unwrap_err(),
        AcquireError::Closed
    );
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    assert_eq!(
        Task::new(sem.run(async { unreachable!("must not run") })).ready(),
        Err(AcquireError::Closed)
    );
    // Held permits stay valid and may be given back after close.
    assert_eq!(held.num_permits(), 2);
    drop(held);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn close_returns_permits_handed_to_a_partly_served_head() {
    let sem = Semaphore::new(3);
    let mut held = sem.try_acquire_many(3).unwrap();
    let mut head = Task::new(sem.acquire_many(3));
    head.pending();
    drop(held.split(2).unwrap());
    sem.close();
    assert_eq!(head.ready().unwrap_err(), AcquireError::Closed);
    drop(held);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn dropping_a_waiter_after_close_loses_nothing() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut w = Task::new(sem.acquire());
    w.pending();
    sem.close();
    drop(w);
    drop(held);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn forget_permits_on_a_closed_semaphore_does_not_reopen_it() {
    // tokio#8020
    let sem = Semaphore::new(5);
    sem.close();
    assert_eq!(sem.forget_permits(3), 3);
    assert!(sem.is_closed());
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(sem.forget_permits(10), 2);
    assert!(sem.is_closed());
    assert_eq!(
        sem.try_acquire_many(0).unwrap_err(),
        TryAcquireError::Closed
    );
    sem.add_permits(1);
    assert!(sem.is_closed());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
}

#[test]
fn close_twice_is_harmless() {
    let sem = Semaphore::new(1);
    sem.close();
    sem.close();
    assert!(sem.is_closed());
    assert_eq!(sem.available_permits(), 1);
}
