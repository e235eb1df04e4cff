//! Queue order: FIFO with mixed sizes, head-of-line `acquire_many`, no barging.

mod common;
use common::Task;
use permits::{Semaphore, TryAcquireError};

#[test]
fn queued_acquires_are_served_in_arrival_order() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut tasks: Vec<_> = (0..4).map(|_| Task::new(sem.acquire())).collect();
    for t in &mut tasks {
        t.pending();
    }
    assert_eq!(sem.waiters(), 4);
    drop(held);
    // Exactly the first is woken and served.
    assert_eq!(
        tasks.iter().map(Task::wakes).collect::<Vec<_>>(),
        [1, 0, 0, 0]
    );
    // Each release serves exactly the next one in arrival order.
    for i in 0..4 {
        let wakes: Vec<_> = tasks.iter().map(Task::wakes).collect();
        let expected: Vec<_> = (0..4).map(|j| usize::from(j <= i)).collect();
        assert_eq!(wakes, expected);
        let permit = tasks[i].ready().unwrap();
        for later in &mut tasks[i + 1..] {
            later.pending();
        }
        drop(permit);
    }
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn mixed_sizes_are_served_in_order_and_the_big_head_holds_back_small_ones() {
    let sem = Semaphore::new(3);
    let all = sem.try_acquire_many(3).unwrap();
    let mut big = Task::new(sem.acquire_many(3));
    let mut small = Task::new(sem.acquire());
    big.pending();
    small.pending();

    let mut all = all;
    let one = all.split(1).unwrap();
    drop(one);
    // One permit is free, but it goes to the head (which needs 3), not to the
    // small acquire behind it.
    assert_eq!(small.wakes(), 0);
    assert_eq!(big.wakes(), 0);
    assert_eq!(sem.available_permits(), 0);
    small.pending();

    drop(all);
    assert_eq!(big.wakes(), 1);
    assert_eq!(small.wakes(), 0);
    let big_permit = big.ready().unwrap();
    assert_eq!(big_permit.num_permits(), 3);
    small.pending();
    drop(big_permit);
    assert_eq!(small.wakes(), 1);
    assert_eq!(small.ready().unwrap().num_permits(), 1);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn one_release_serves_several_small_waiters_in_order() {
    let sem = Semaphore::new(4);
    let all = sem.try_acquire_many(4).unwrap();
    let mut a = Task::new(sem.acquire_many(2));
    let mut b = Task::new(sem.acquire());
    let mut c = Task::new(sem.acquire_many(2));
    a.pending();
    b.pending();
    c.pending();
    drop(all);
    // 4 permits: a (2) and b (1) served; c needs 2 and gets the leftover 1.
    assert_eq!((a.wakes(), b.wakes(), c.wakes()), (1, 1, 0));
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(sem.waiters(), 1);
    let pa = a.ready().unwrap();
    drop(b.ready().unwrap());
    assert_eq!(c.wakes(), 1);
    let pc = c.ready().unwrap();
    assert_eq!(pc.num_permits(), 2);
    drop((pa, pc));
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn try_acquire_does_not_barge_past_a_queued_acquire() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire_many(2).unwrap();
    let mut waiter = Task::new(sem.acquire_many(2));
    waiter.pending();
    let mut held = held;
    drop(held.split(1).unwrap());
    // A permit is handed to the head; a newcomer's try_acquire must fail even
    // though it only wants one.
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    assert_eq!(sem.try_acquire_many(0).map(|p| p.num_permits()), Ok(0));
    drop(held);
    assert_eq!(waiter.ready().unwrap().num_permits(), 2);
    assert!(sem.try_acquire().is_ok());
}

#[test]
fn a_fresh_acquire_queues_behind_waiters_even_when_permits_are_in_transit() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut first = Task::new(sem.acquire());
    first.pending();
    drop(held);
    // The permit is handed to `first`, not yet polled; a newcomer must wait.
    let mut late = Task::new(sem.acquire());
    late.pending();
    drop(first.ready().unwrap());
    assert_eq!(late.wakes(), 1);
    assert!(late.ready().is_ok());
}
