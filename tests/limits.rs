//! Dynamic limits, line by line of the contract (`limit`, `debt`,
//! `set_limit`, `reduce_permits`, `add_permits`, `forget_permits`,
//! `Permit::forget`, requests larger than the limit), with the accounting
//! identity `available + out == limit + debt` checked after every step.

mod common;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::Task;
use permits::{AcquireError, Permit, Semaphore, TryAcquireError};

/// Checks the identity, given the permits out (held, or handed to queued
/// acquires not yet polled), and that debt implies nothing available.
#[track_caller]
fn identity(sem: &Semaphore, out: usize) {
    assert_eq!(
        sem.available_permits() + out,
        sem.limit() + sem.debt(),
        "available {} + out {out} == limit {} + debt {}",
        sem.available_permits(),
        sem.limit(),
        sem.debt()
    );
    assert!(sem.debt() == 0 || sem.available_permits() == 0);
}

fn take(sem: &Semaphore, n: usize) -> Vec<Permit<'_>> {
    (0..n).map(|_| sem.try_acquire().unwrap()).collect()
}

#[test]
fn new_starts_with_the_limit_and_no_debt() {
    let sem = Semaphore::new(4);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (4, 0, 4)
    );
    identity(&sem, 0);
}

#[test]
fn shrink_takes_available_first_then_makes_debt() {
    let sem = Semaphore::new(5);
    let mut held = take(&sem, 3);
    identity(&sem, 3);
    sem.set_limit(4); // one of the two free permits goes
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (4, 0, 1)
    );
    identity(&sem, 3);
    sem.set_limit(1); // the last free one goes, two held become debt
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (1, 2, 0)
    );
    identity(&sem, 3);
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    held.pop();
    assert_eq!((sem.debt(), sem.available_permits()), (1, 0));
    identity(&sem, 2);
    held.pop();
    assert_eq!((sem.debt(), sem.available_permits()), (0, 0));
    identity(&sem, 1);
    held.pop();
    assert_eq!((sem.debt(), sem.available_permits()), (0, 1));
    identity(&sem, 0);
}

#[test]
fn grow_cancels_debt_before_anything_becomes_available() {
    let sem = Semaphore::new(4);
    let held = take(&sem, 4);
    sem.set_limit(1);
    assert_eq!(sem.debt(), 3);
    sem.set_limit(3); // cancels two of the three
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (3, 1, 0)
    );
    identity(&sem, 4);
    sem.set_limit(6);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (6, 0, 2)
    );
    identity(&sem, 4);
    drop(held);
    assert_eq!(sem.available_permits(), 6);
}

#[test]
fn debt_is_paid_by_releases_before_any_waiter_is_served() {
    let sem = Semaphore::new(3);
    let mut held = take(&sem, 3);
    let mut w = Task::new(sem.acquire());
    w.pending();
    sem.set_limit(1); // three out, limit one: debt two
    assert_eq!(sem.debt(), 2);
    held.pop();
    held.pop();
    // Both releases paid the debt; the waiter still waits: one is out.
    assert_eq!((w.wakes(), sem.debt(), sem.available_permits()), (0, 0, 0));
    identity(&sem, 1);
    held.pop();
    assert_eq!(w.wakes(), 1);
    identity(&sem, 1); // handed to the waiter, not yet polled
    let p = w.ready().unwrap();
    identity(&sem, 1);
    drop(p);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn fifo_is_kept_across_a_shrink() {
    let sem = Semaphore::new(2);
    let held = take(&sem, 2);
    let mut tasks: Vec<_> = (0..4).map(|_| Task::new(sem.acquire())).collect();
    for t in &mut tasks {
        t.pending();
    }
    sem.set_limit(1);
    drop(held); // pays the debt of one, then serves the first waiter
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!(wakes, [1, 0, 0, 0]);
    let p = tasks[0].ready().unwrap();
    drop(p);
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!(wakes, [1, 1, 0, 0], "the second in line is next");
    sem.set_limit(3); // two more: the third and fourth, in order
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!(wakes, [1, 1, 1, 1]);
}

#[test]
fn oversize_request_waits_aside_and_comes_back_in_place() {
    let sem = Semaphore::new(2);
    let mut big = Task::new(sem.acquire_many(3)); // larger than the limit
    big.pending();
    // It does not count as queued: `try_acquire` and later requests go by.
    let p = sem.try_acquire().unwrap();
    let s = Task::new(sem.acquire_many(1)).ready().unwrap();
    drop((p, s)); // neither was held back by the request aside
    let after = Task::new(sem.acquire_many(2)).ready().unwrap();
    let mut last = Task::new(sem.acquire());
    last.pending();
    identity(&sem, 2);
    // The limit reaches its size: it rejoins at its original place, ahead of
    // `last`, and holds it back until served.
    sem.set_limit(3);
    assert_eq!(sem.available_permits(), 0, "the new permit goes to `big`");
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(after); // two back: `big` has three now
    assert_eq!((big.wakes(), last.wakes()), (1, 0));
    let b = big.ready().unwrap();
    assert_eq!(b.num_permits(), 3);
    drop(b);
    assert_eq!(last.wakes(), 1);
    drop(last);
}

#[test]
fn a_request_set_aside_gives_back_what_it_was_handed() {
    let sem = Semaphore::new(3);
    let held = take(&sem, 2);
    let mut big = Task::new(sem.acquire_many(3));
    big.pending(); // handed the one free permit
    assert_eq!(sem.available_permits(), 0);
    let mut small = Task::new(sem.acquire());
    small.pending();
    identity(&sem, 3);
    // Shrink below the partly served head: it goes aside and gives its
    // permit back, which pays the debt the shrink made (two held, limit 2).
    sem.set_limit(2);
    assert_eq!((sem.debt(), sem.available_permits()), (0, 0));
    identity(&sem, 2);
    assert_eq!(small.wakes(), 0);
    drop(held); // the small request is no longer held back
    assert_eq!(small.wakes(), 1);
    assert_eq!(big.wakes(), 0);
    let s = small.ready().unwrap();
    identity(&sem, 1);
    drop(s);
    assert_eq!(sem.available_permits(), 2);
    sem.set_limit(3);
    assert_eq!(big.wakes(), 1);
    assert_eq!(big.ready().unwrap().num_permits(), 3);
}

#[test]
fn a_rejoining_request_takes_back_its_place_from_a_partly_served_one() {
    let sem = Semaphore::new(2);
    let held = take(&sem, 1);
    let mut big = Task::new(sem.acquire_many(3)); // aside
    big.pending();
    let mut two = Task::new(sem.acquire_many(2)); // partly served: one
    two.pending();
    assert_eq!(sem.available_permits(), 0);
    // `big` fits again and stands ahead of `two`, which gives its permit
    // back; `big` gets it, and the new one.
    sem.set_limit(3);
    identity(&sem, 3);
    assert_eq!(sem.available_permits(), 0);
    drop(held);
    assert_eq!((big.wakes(), two.wakes()), (1, 0));
    drop(big.ready().unwrap());
    assert_eq!(two.wakes(), 1);
}

#[test]
fn new_zero_filled_later_with_add_permits() {
    let sem = Semaphore::new(0);
    let mut tasks: Vec<_> = (0..3).map(|_| Task::new(sem.acquire())).collect();
    for t in &mut tasks {
        t.pending();
    }
    let mut pair = Task::new(sem.acquire_many(2));
    pair.pending();
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    sem.add_permits(1);
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!(wakes, [1, 0, 0]);
    sem.add_permits(1); // the pair fits now, but waits its turn
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!((wakes, pair.wakes()), (vec![1, 1, 0], 0));
    sem.add_permits(3);
    let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
    assert_eq!((wakes, pair.wakes()), (vec![1, 1, 1], 1));
    assert_eq!(sem.available_permits(), 0);
    identity(&sem, 5);
}

#[test]
fn add_permits_is_set_limit_plus_n_and_cancels_debt_first() {
    let sem = Semaphore::new(3);
    let held = take(&sem, 3);
    sem.set_limit(1);
    sem.add_permits(1);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (2, 1, 0)
    );
    sem.add_permits(2);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (4, 0, 1)
    );
    drop(held);
    identity(&sem, 0);
}

#[test]
fn reduce_permits_is_relative_and_returns_what_it_took() {
    let sem = Semaphore::new(4);
    let held = take(&sem, 3);
    assert_eq!(sem.reduce_permits(2), 2);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (2, 1, 0)
    );
    assert_eq!(sem.reduce_permits(10), 2, "no more than the limit");
    assert_eq!((sem.limit(), sem.debt()), (0, 3));
    identity(&sem, 3);
    drop(held);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (0, 0, 0)
    );
}

#[test]
fn forget_permits_takes_available_only() {
    let sem = Semaphore::new(4);
    let held = take(&sem, 3);
    assert_eq!(sem.forget_permits(5), 1);
    assert_eq!((sem.limit(), sem.available_permits()), (3, 0));
    sem.set_limit(1);
    assert_eq!(sem.forget_permits(1), 0, "debt: nothing available");
    drop(held);
    assert_eq!((sem.limit(), sem.available_permits()), (1, 1));
}

#[test]
fn forgotten_permits_pay_the_debt_first_then_lower_the_limit() {
    let sem = Semaphore::new(4);
    let mut held = take(&sem, 4);
    sem.set_limit(2); // debt 2
    held.pop().unwrap().forget(); // pays one of the debt
    assert_eq!((sem.limit(), sem.debt()), (2, 1));
    let mut rest = sem.try_acquire_many(0).unwrap();
    for p in held.drain(..) {
        rest.merge(p);
    }
    rest.forget(); // three: one pays the debt, two lower the limit
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (0, 0, 0)
    );
    identity(&sem, 0);
}

#[test]
fn zero_permit_requests_succeed_with_debt() {
    let sem = Semaphore::new(1);
    let held = take(&sem, 1);
    sem.set_limit(0);
    assert_eq!(sem.debt(), 1);
    assert_eq!(sem.try_acquire_many(0).unwrap().num_permits(), 0);
    assert_eq!(
        Task::new(sem.acquire_many(0))
            .ready()
            .unwrap()
            .num_permits(),
        0
    );
    drop(held);
}

#[test]
fn limit_changes_after_close_never_reopen() {
    let sem = Semaphore::new(2);
    let held = take(&sem, 2);
    let mut w = Task::new(sem.acquire());
    w.pending();
    sem.close();
    assert_eq!(w.ready().unwrap_err(), AcquireError::Closed);
    sem.set_limit(1);
    assert_eq!((sem.limit(), sem.debt()), (1, 1));
    sem.add_permits(3);
    assert_eq!(sem.reduce_permits(1), 1);
    assert_eq!(
        (sem.limit(), sem.debt(), sem.available_permits()),
        (3, 0, 1)
    );
    assert!(sem.is_closed());
    // Closed wins over debt and over free permits.
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    assert_eq!(
        Task::new(sem.acquire()).ready().unwrap_err(),
        AcquireError::Closed
    );
    drop(held);
    identity(&sem, 0);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn closed_wins_over_debt_for_try_acquire() {
    let sem = Semaphore::new(1);
    let _held = take(&sem, 1);
    sem.set_limit(0);
    sem.close();
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
}

#[test]
fn close_gives_back_what_queued_acquires_were_handed() {
    let sem = Semaphore::new(3);
    let held = take(&sem, 2);
    let mut big = Task::new(sem.acquire_many(3));
    big.pending(); // handed one
    sem.set_limit(2); // aside: gives it back; two held, no debt
    sem.set_limit(3); // back, handed the new one
    assert_eq!(sem.available_permits(), 0);
    sem.close();
    assert_eq!(big.ready().unwrap_err(), AcquireError::Closed);
    assert_eq!(sem.available_permits(), 1);
    drop(held);
    identity(&sem, 0);
}

#[test]
fn cancelling_a_request_aside_or_partly_served_loses_nothing() {
    let sem = Semaphore::new(2);
    let held = take(&sem, 1);
    let big = {
        let mut t = Task::new(sem.acquire_many(5));
        t.pending();
        t
    };
    let mut pair = Task::new(sem.acquire_many(2));
    pair.pending(); // partly served: one
    let mut one = Task::new(sem.acquire());
    one.pending();
    drop(big);
    assert_eq!(sem.waiters(), 2);
    drop(pair); // its permit goes to the next in line
    assert_eq!(one.wakes(), 1);
    drop(one); // served, never polled: gives it back
    drop(held);
    assert_eq!(sem.available_permits(), 2);
    identity(&sem, 0);
}

#[test]
fn set_limit_beyond_max_panics_and_changes_nothing() {
    let sem = Semaphore::new(2);
    let r = catch_unwind(AssertUnwindSafe(|| {
        sem.set_limit(Semaphore::MAX_PERMITS + 1)
    }));
    assert!(r.is_err());
    assert_eq!((sem.limit(), sem.available_permits()), (2, 2));
    sem.set_limit(Semaphore::MAX_PERMITS);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
fn add_permits_beyond_max_panics_and_changes_nothing() {
    let sem = Semaphore::new(2);
    let held = take(&sem, 2);
    sem.set_limit(1); // debt 1
    let r = catch_unwind(AssertUnwindSafe(|| sem.add_permits(Semaphore::MAX_PERMITS)));
    assert!(r.is_err());
    assert_eq!((sem.limit(), sem.debt()), (1, 1));
    drop(held);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_request_of_max_permits_waits_aside_without_wedging() {
    let sem = Semaphore::new(1);
    let mut huge = Task::new(sem.acquire_many(Semaphore::MAX_PERMITS));
    huge.pending();
    assert_eq!(sem.try_acquire().unwrap().num_permits(), 1);
    sem.set_limit(Semaphore::MAX_PERMITS);
    assert_eq!(huge.wakes(), 1);
    assert_eq!(huge.ready().unwrap().num_permits(), Semaphore::MAX_PERMITS);
}
