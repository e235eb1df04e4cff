//! Bad input: a clear error or a documented panic, never a hang or a wrap.

mod common;
use common::Task;
use permits::{AcquireError, Semaphore, TryAcquireError};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[test]
fn asking_for_more_than_max_permits_fails_at_once() {
    let sem = Semaphore::new(1);
    let n = Semaphore::MAX_PERMITS + 1;
    assert_eq!(
        sem.try_acquire_many(n).unwrap_err(),
        TryAcquireError::TooMany
    );
    assert_eq!(
        Task::new(sem.acquire_many(n)).ready().unwrap_err(),
        AcquireError::TooMany
    );
    assert_eq!(
        Task::new(sem.acquire_many(usize::MAX)).ready().unwrap_err(),
        AcquireError::TooMany
    );
    assert_eq!(
        Task::new(sem.run_many(n, async {})).ready(),
        Err(AcquireError::TooMany)
    );
    assert_eq!(sem.waiters(), 0);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn max_permits_is_at_least_u32_max_on_64_bit() {
    if cfg!(target_pointer_width = "64") {
        assert!(Semaphore::MAX_PERMITS >= u32::MAX as usize);
    }
    assert!(Semaphore::MAX_PERMITS >= u16::MAX as usize);
    let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    let all = sem.try_acquire_many(Semaphore::MAX_PERMITS).unwrap();
    drop(all);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
#[should_panic(expected = "more than MAX_PERMITS")]
fn new_beyond_max_panics() {
    let _ = Semaphore::new(Semaphore::MAX_PERMITS + 1);
}

#[test]
fn add_permits_beyond_max_panics_before_changing_anything() {
    let sem = Semaphore::new(Semaphore::MAX_PERMITS - 1);
    // Held permits count too: they will come back.
    let held = sem.try_acquire_many(10).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| sem.add_permits(2)));
    assert!(r.is_err());
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS - 11);
    drop(held);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS - 1);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    assert!(!sem.is_closed());
    // The lock was not left held or poisoned by the panic.
    assert_eq!(sem.waiters(), 0);
    assert_eq!(sem.forget_permits(1), 1);
}

#[test]
fn errors_display_and_compare() {
    assert_eq!(AcquireError::Closed.to_string(), "semaphore closed");
    assert_eq!(
        TryAcquireError::NoPermits.to_string(),
        "no permits available"
    );
    assert_ne!(AcquireError::Closed, AcquireError::TooMany);
    let e: &dyn std::error::Error = &TryAcquireError::TooMany;
    assert!(e.to_string().contains("more permits"));
    assert_eq!(
        TryAcquireError::from(AcquireError::Closed),
        TryAcquireError::Closed
    );
}
