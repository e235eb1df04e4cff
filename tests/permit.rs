//! Permits: split, merge, forget, counts, `add_permits`, `forget_permits`.

mod common;
use common::Task;
use permits::Semaphore;

#[test]
fn split_and_merge_move_permits_between_holders() {
    let sem = Semaphore::new(5);
    let mut p = sem.try_acquire_many(5).unwrap();
    assert!(p.split(6).is_none());
    assert_eq!(p.num_permits(), 5);
    let q = p.split(2).unwrap();
    assert_eq!((p.num_permits(), q.num_permits()), (3, 2));
    assert_eq!(sem.available_permits(), 0);
    drop(q);
    assert_eq!(sem.available_permits(), 2);
    let r = sem.try_acquire_many(2).unwrap();
    p.merge(r);
    assert_eq!(p.num_permits(), 5);
    assert!(std::ptr::eq(p.semaphore(), &sem));
    drop(p);
    assert_eq!(sem.available_permits(), 5);
}

#[test]
#[should_panic(expected = "different semaphores")]
fn merging_permits_of_another_semaphore_panics() {
    let a = Semaphore::new(1);
    let b = Semaphore::new(1);
    let mut pa = a.try_acquire().unwrap();
    pa.merge(b.try_acquire().unwrap());
}

#[test]
fn forget_takes_permits_out_for_good() {
    let sem = Semaphore::new(3);
    let p = sem.try_acquire_many(2).unwrap();
    p.forget();
    assert_eq!(sem.available_permits(), 1);
    // The semaphore now has 1 permit in existence, so it can take
    // MAX_PERMITS - 1 more.
    sem.add_permits(Semaphore::MAX_PERMITS - 1);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
fn add_permits_serves_waiters_first() {
    let sem = Semaphore::new(0);
    let mut a = Task::new(sem.acquire_many(2));
    a.pending();
    sem.add_permits(1);
    // Two are more than the limit of one: the request waits aside and the
    // new permit is available (it used to sit at the head, holding it).
    assert_eq!((a.wakes(), sem.available_permits()), (0, 1));
    sem.add_permits(3);
    assert_eq!(a.wakes(), 1);
    assert_eq!(sem.available_permits(), 2);
    drop(a.ready().unwrap());
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn forget_permits_takes_only_free_ones() {
    let sem = Semaphore::new(4);
    let held = sem.try_acquire_many(3).unwrap();
    assert_eq!(sem.forget_permits(2), 1);
    assert_eq!(sem.available_permits(), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(sem.forget_permits(0), 0);
}

#[test]
fn counts_follow_each_step() {
    let sem = Semaphore::new(2);
    assert_eq!((sem.available_permits(), sem.waiters()), (2, 0));
    let p = sem.try_acquire().unwrap();
    assert_eq!((sem.available_permits(), sem.waiters()), (1, 0));
    let mut w = Task::new(sem.acquire_many(2));
    w.pending();
    // The free permit went to the head.
    assert_eq!((sem.available_permits(), sem.waiters()), (0, 1));
    drop(p);
    assert_eq!((sem.available_permits(), sem.waiters()), (0, 0));
    drop(w.ready().unwrap());
    assert_eq!((sem.available_permits(), sem.waiters()), (2, 0));
}

#[test]
fn zero_permits() {
    let sem = Semaphore::new(0);
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(sem.try_acquire_many(0).unwrap().num_permits(), 0);
    assert_eq!(
        Task::new(sem.acquire_many(0))
            .ready()
            .unwrap()
            .num_permits(),
        0
    );
    assert!(sem.try_acquire().is_err());
    let mut w = Task::new(sem.acquire());
    w.pending();
    // An empty permit is handed out even while someone waits.
    assert_eq!(
        Task::new(sem.acquire_many(0))
            .ready()
            .unwrap()
            .num_permits(),
        0
    );
    sem.add_permits(1);
    assert!(w.ready().is_ok());
}

#[test]
#[cfg(feature = "alloc")]
fn owned_permits_work_like_borrowed_ones() {
    use std::sync::Arc;
    let sem = Arc::new(Semaphore::new(3));
    let mut p = sem.clone().try_acquire_many_owned(3).unwrap();
    let q = p.split(1).unwrap();
    assert!(Arc::ptr_eq(q.semaphore(), &sem));
    let mut w = Task::new(sem.clone().acquire_many_owned(2));
    w.pending();
    drop(q);
    assert_eq!(w.wakes(), 0);
    p.forget();
    assert_eq!(w.wakes(), 0);
    sem.add_permits(1);
    let got = w.ready().unwrap();
    assert_eq!(got.num_permits(), 2);
    assert_eq!(sem.available_permits(), 0);
    let other = Arc::new(Semaphore::new(1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut got = got;
        got.merge(other.clone().try_acquire_owned().unwrap());
    }));
    assert!(result.is_err());
    assert_eq!(other.available_permits(), 1);
    assert_eq!(sem.available_permits(), 2);
}
