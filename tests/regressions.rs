//! Regression tests for bugs found by the model-based test (tests/model.rs)
//! and the fault tests.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use permits::{Semaphore, TryAcquireError};

/// `try_acquire_many(0)` must give an empty permit at once, like
/// `acquire_many(0)`, even while acquires are queued: taking nothing is not
/// barging. It returned `Err(NoPermits)` (found by tests/model.rs, seed
/// 0x5eed0000).
#[test]
fn try_acquire_many_zero_while_acquires_are_queued() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut queued = pin!(sem.acquire());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(queued.as_mut().poll(&mut cx).is_pending());
    assert_eq!(sem.waiters(), 1);

    let empty = sem.try_acquire_many(0).expect("an empty permit");
    assert_eq!(empty.num_permits(), 0);
    drop(empty);
    // Still no barging for real permits.
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(held);
    assert_eq!(sem.waiters(), 0);
    assert!(queued.as_mut().poll(&mut cx).is_ready());

    sem.close();
    assert_eq!(
        sem.try_acquire_many(0).unwrap_err(),
        TryAcquireError::Closed
    );
}
