//! loom models of `KeyedSemaphore`'s eviction protocol (`src/keyed/map.rs`):
//! a key's user count is raised under the map lock and lowered with one
//! atomic decrement outside it; the last user out takes the lock and evicts.
//!
//! Run with (`.ci/verify.sh` does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" cargo test --release --test loom_keyed
//! ```
//!
//! Each model has a key with a limit of one and asserts that no two holders
//! of it overlap (two live semaphores for one key would let them) and that
//! the map is empty at the end (no entry leaked, none evicted while used; a
//! lost wake-up shows up as a loom deadlock).
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Context;

use futures::task::noop_waker_ref;
use loom::future::block_on;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::SeqCst;
use loom::thread;
use permits::KeyedSemaphore;

/// Explores `f` with at most 4 preemptions, unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(4);
    }
    builder.check(f);
}

/// Holds key 0 while checking no one else does.
fn hold(holders: &AtomicUsize) {
    assert_eq!(holders.fetch_add(1, SeqCst), 0, "two holders of one key");
    holders.fetch_sub(1, SeqCst);
}

/// 1. The race the protocol is for: the last holder's release (which may
///    evict the key) against an acquire of the same key on another thread,
///    arriving before the decrement, between it and the lock, or after the
///    eviction; then the releaser acquires the key again (if the first
///    acquire had been let into an evicted entry, the two would hold at once).
#[test]
fn evicting_release_races_an_acquire() {
    model(|| {
        let keyed = Arc::new(KeyedSemaphore::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        let permit = keyed.try_acquire(0).unwrap();
        let t = {
            let (keyed, holders) = (keyed.clone(), holders.clone());
            thread::spawn(move || {
                let p = block_on(keyed.acquire(0)).unwrap();
                hold(&holders);
                drop(p);
            })
        };
        hold(&holders);
        drop(permit);
        let again = block_on(keyed.acquire(0)).unwrap();
        hold(&holders);
        drop(again);
        t.join().unwrap();
        assert_eq!(keyed.live_keys(), 0);
    });
}

/// 2. Two threads take the same idle key at once (both may create its entry;
///    one must win) and give it back.
#[test]
fn two_first_acquires_of_one_key() {
    model(|| {
        let keyed = Arc::new(KeyedSemaphore::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        let worker = |keyed: Arc<KeyedSemaphore<u8>>, holders: Arc<AtomicUsize>| {
            move || {
                let p = block_on(keyed.acquire(0)).unwrap();
                hold(&holders);
                drop(p);
            }
        };
        let t = thread::spawn(worker(keyed.clone(), holders.clone()));
        worker(keyed.clone(), holders)();
        t.join().unwrap();
        assert_eq!(keyed.live_keys(), 0);
    });
}

/// 3. A queued acquire is cancelled while the holder releases: the permit is
///    not lost (a later acquire gets it) and the key is evicted once.
#[test]
fn cancel_races_the_last_release() {
    model(|| {
        let keyed = Arc::new(KeyedSemaphore::new(1));
        let permit = keyed.try_acquire(0).unwrap();
        let t = {
            let keyed = keyed.clone();
            thread::spawn(move || {
                let mut acquire = pin!(keyed.acquire(0));
                let polled = acquire
                    .as_mut()
                    .poll(&mut Context::from_waker(noop_waker_ref()));
                // Dropped (cancelled) whether it was served or queued.
                drop(polled);
            })
        };
        drop(permit);
        t.join().unwrap();
        assert_eq!(keyed.live_keys(), 0);
        let again = keyed.try_acquire(0).unwrap();
        drop(again);
        assert_eq!(keyed.live_keys(), 0);
    });
}
