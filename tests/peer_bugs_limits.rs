//! Bug reports against the peers' limit changes, replayed here.

use permits::{Semaphore, TryAcquireError};

/// tokio#8020: `forget_permits` on a closed semaphore cleared the closed
/// bit. Here no limit change reopens it.
#[test]
fn tokio_8020_forgetting_permits_keeps_a_closed_semaphore_closed() {
    let s = Semaphore::new(10);
    s.close();
    assert_eq!(s.forget_permits(4), 4);
    assert!(s.is_closed());
    assert_eq!(s.available_permits(), 6);
    assert_eq!(s.reduce_permits(2), 2);
    s.set_limit(20);
    s.add_permits(1);
    assert!(s.is_closed());
    assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::Closed);
}

/// embassy-sync's `set(n)` and async-mutex#93: overwriting the free count
/// ignores held permits, so six ran after the limit became five. Here the
/// held ones become debt.
#[test]
fn set_limit_counts_held_permits() {
    let s = Semaphore::new(6);
    let running: Vec<_> = (0..6).map(|_| s.try_acquire().unwrap()).collect();
    s.set_limit(5);
    assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(running);
    let again: Vec<_> = std::iter::from_fn(|| s.try_acquire().ok()).collect();
    assert_eq!(again.len(), 5, "never more than the new limit");
}

/// tokio#5308 and the materialize thread on it: a limit set too high must be
/// correctable, and going small and back big again must work at any size
/// (tokio's fixed upper bound made the second raise impossible).
#[test]
fn a_limit_goes_down_and_back_up_at_any_size() {
    let s = Semaphore::new(Semaphore::MAX_PERMITS);
    s.set_limit(3);
    assert_eq!(s.available_permits(), 3);
    s.set_limit(Semaphore::MAX_PERMITS);
    assert_eq!(s.available_permits(), Semaphore::MAX_PERMITS);
}

/// Vector's `ShrinkableSemaphore` and megaeth stateless-validator#188: debt
/// kept beside tokio's semaphore raced the releases (a release could
/// increase the free count between publishing the debt and forgetting
/// permits). Here the debt is the negative part of the same counter the
/// release changes, so whatever the order, the numbers add up.
#[test]
fn shrink_and_release_interleave_exactly() {
    for release_first in [false, true] {
        let s = Semaphore::new(4);
        let mut held: Vec<_> = (0..4).map(|_| s.try_acquire().unwrap()).collect();
        if release_first {
            held.pop();
        }
        s.set_limit(2);
        if !release_first {
            held.pop();
        }
        assert_eq!((s.debt(), s.available_permits()), (1, 0));
        drop(held);
        assert_eq!((s.debt(), s.available_permits()), (0, 2));
    }
}
