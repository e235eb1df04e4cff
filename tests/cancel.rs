//! Cancellation at every state: dropping an acquire loses no permit and wakes
//! whoever can now proceed.

mod common;
use common::{counting_waker, Task};
use permits::Semaphore;

#[test]
fn dropping_an_unpolled_acquire_changes_nothing() {
    let sem = Semaphore::new(1);
    drop(sem.acquire());
    drop(sem.run(async {}));
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn dropping_a_queued_acquire_in_the_middle_keeps_the_order() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut a = Task::new(sem.acquire());
    let mut b = Task::new(sem.acquire());
    let mut c = Task::new(sem.acquire());
    a.pending();
    b.pending();
    c.pending();
    drop(b);
    assert_eq!(sem.waiters(), 2);
    drop(held);
    assert_eq!((a.wakes(), c.wakes()), (1, 0));
    drop(a.ready().unwrap());
    assert_eq!(c.wakes(), 1);
    drop(c.ready().unwrap());
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_cancelled_partly_served_head_passes_its_permits_on_and_wakes_the_next() {
    // embassy#6964 / async-lock#18: the lost wake-up after a served head is
    // cancelled.
    let sem = Semaphore::new(3);
    let mut held = sem.try_acquire_many(3).unwrap();
    let mut head = Task::new(sem.acquire_many(3));
    let mut next = Task::new(sem.acquire_many(2));
    head.pending();
    next.pending();
    drop(held.split(2).unwrap()); // head now holds 2 of its 3
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(next.wakes(), 0);
    drop(head);
    assert_eq!(next.wakes(), 1, "the new head must be woken");
    let next_permit = next.ready().unwrap();
    assert_eq!(next_permit.num_permits(), 2);
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    drop(next_permit);
    assert_eq!(sem.available_permits(), 3);
}

/// tokio#4618: a waiter served and woken, then dropped before it polls again
/// (a client that disconnects), must pass its permits on, or the next waiter
/// sleeps forever.
#[test]
fn a_woken_but_not_repolled_acquire_gives_its_permits_back_when_dropped() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire_many(2).unwrap();
    let mut served = Task::new(sem.acquire_many(2));
    let mut next = Task::new(sem.acquire());
    served.pending();
    next.pending();
    drop(held);
    assert_eq!(served.wakes(), 1);
    assert_eq!(sem.available_permits(), 0);
    drop(served);
    assert_eq!(next.wakes(), 1);
    let p = next.ready().unwrap();
    assert_eq!(sem.available_permits(), 1);
    drop(p);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn dropping_the_last_waiter_lets_the_fast_path_work_again() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut a = Task::new(sem.acquire());
    a.pending();
    drop(a);
    assert_eq!(sem.waiters(), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.try_acquire().is_ok());
}

#[test]
fn dropping_a_run_while_queued_or_running_releases_everything() {
    let sem = Semaphore::new(1);
    let mut running = Task::new(sem.run(std::future::pending::<()>()));
    running.pending();
    assert_eq!(sem.available_permits(), 0);
    let mut queued = Task::new(sem.run(async { 7 }));
    queued.pending();
    drop(running);
    assert_eq!(queued.wakes(), 1);
    assert_eq!(queued.ready(), Ok(7));
    assert_eq!(sem.available_permits(), 1);

    let held = sem.try_acquire().unwrap();
    let mut queued = Task::new(sem.run(async { 8 }));
    queued.pending();
    drop(queued);
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn the_latest_waker_is_the_one_woken() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut task = Task::new(sem.acquire());
    task.pending();
    let (other, other_waker) = counting_waker();
    assert!(task.poll_with(&other_waker).is_pending());
    drop(held);
    assert_eq!(task.wakes(), 0);
    assert_eq!(other.wakes(), 1);
    assert!(task.ready().is_ok());
}

#[test]
#[cfg(feature = "alloc")]
fn a_waker_whose_drop_uses_the_semaphore_does_not_deadlock() {
    // tokio#5429: a replaced waker dropped while the queue lock is held, whose
    // drop releases a permit, would re-enter the lock.
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};

    struct ReleasingWaker(Mutex<Option<permits::OwnedPermit>>);
    impl Wake for ReleasingWaker {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for ReleasingWaker {
        fn drop(&mut self) {
            // Gives a permit back and looks at the queue: both need the lock.
            drop(self.0.lock().unwrap().take());
            let _ = self.0.lock().unwrap().is_some();
        }
    }

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sem = Arc::new(Semaphore::new(2));
        let a = sem.clone().try_acquire_owned().unwrap();
        let b = sem.clone().try_acquire_owned().unwrap();
        let mut task = Task::new(sem.clone().acquire_owned());
        // Queue with a waker that owns a permit; then replace that waker, so
        // the old one (and the permit in it) is dropped during the re-poll.
        let waker = Waker::from(Arc::new(ReleasingWaker(Mutex::new(Some(a)))));
        assert!(task.poll_with(&waker).is_pending());
        drop(waker);
        task.pending(); // replaces the waker: its drop releases `a`
                        // `a` came back and went to the queued task.
        let got = task.ready().unwrap();
        assert_eq!(sem.waiters(), 0);
        // Cancel path: a queued acquire whose stored waker releases on drop.
        let c = Task::new(sem.clone().acquire_owned());
        let mut c = c;
        let waker = Waker::from(Arc::new(ReleasingWaker(Mutex::new(Some(got)))));
        assert!(c.poll_with(&waker).is_pending());
        drop(waker);
        drop(c); // drops the stored waker, which releases `got`
        drop(b);
        tx.send(sem.available_permits()).unwrap();
    });
    let free = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("deadlock: a waker was dropped under the lock");
    assert_eq!(free, 2);
}
