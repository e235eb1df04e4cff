//! [`KeyedSemaphore`]: at most `K` at once per key (a destination, a
//! tenant, a host) and at most `N` in total, without head-of-line blocking.
//!
//! The map of live keys, the eviction protocol and the keyed acquire are
//! described on [`KeyedSemaphore`] (design) and in `map.rs` (protocol).

mod acquire;
mod adaptive;
mod adaptive_gate;
mod gate;
mod limit;
mod map;
mod run;
mod stream;

use core::fmt;
use core::future::IntoFuture;

pub use acquire::{KeyedAcquire, KeyedPermit};
pub use adaptive::{KeyedLimitAcquire, KeyedLimitPermit, KeyedLimiter};
pub use adaptive_gate::{KeyedFeedback, KeyedLimiterGate};
pub use gate::KeyedGate;
pub use run::KeyedRun;
pub use stream::KeyedRunAll;

use crate::lock::Lock;
use crate::permit::Held;
use crate::sync::const_fn_unless_loom;
use crate::{Semaphore, TryAcquireError};
use map::Keys;

/// A semaphore per key, with a default limit per key, limits of their own
/// for some keys (changeable at run time), and an optional global limit
/// shared by all keys.
///
/// # How it works
///
/// Each key in use has its own [`Semaphore`] (an *entry*) in a map, created
/// on the first acquire of the key and evicted when its last user is gone
/// (no holder, no waiter, no limit of its own), so memory follows the keys in
/// use, not every key ever seen. The eviction protocol (`map.rs`) makes sure
/// a key never has two live semaphores, which hand-rolled
/// `HashMap<K, Arc<Semaphore>>`s get wrong when they remove entries.
///
/// An acquire takes the **key's permit first, then the global one**. A key
/// that is saturated thus never holds global permits: its extra requests
/// wait in the key's queue, holding nothing, while other keys' requests take
/// the global permits. (Taking the global permit first lets one busy key
/// hold every global permit while waiting for its own, starving the others.)
/// Within a key, requests are served first-in, first-out; for the global
/// limit, in the order they got their key's permit.
///
/// # The map
///
/// An ordered [`BTreeMap`](alloc::collections::BTreeMap) behind the crate's
/// queue lock: it needs only `alloc` (a hash map needs `std` or a dependency,
/// and with a fixed hasher it opens the door to collision attacks on keys
/// taken from outside, such as mail domains), it gives memory back as it
/// shrinks (a `HashMap` keeps its peak capacity, so 100,000 keys seen once
/// would stay allocated), and with eviction it holds only the keys in use, so
/// its `O(log n)` lookups stay short. The lock is taken once per acquire
/// (to find the key) and, on release, only by the last user of a key; waking
/// never happens under it.
///
/// # Examples
///
/// At most 2 sends per domain, 3 in total:
///
/// ```
/// use permits::KeyedSemaphore;
///
/// static SENDS: KeyedSemaphore<&str> = KeyedSemaphore::with_global_limit(2, 3);
///
/// async fn send(domain: &'static str, id: u32) -> u32 {
///     SENDS.run(domain, async move { id }).await.unwrap()
/// }
///
/// # futures::executor::block_on(async {
/// let a = SENDS.acquire("a.example").await.unwrap();
/// let b = SENDS.try_acquire("a.example").unwrap();
/// // "a.example" is saturated; "b.example" still gets the last global permit.
/// assert!(SENDS.try_acquire("a.example").is_err());
/// let c = SENDS.try_acquire("b.example").unwrap();
/// drop((a, b, c));
/// assert_eq!(send("c.example", 7).await, 7);
/// // Nobody uses any key now: the map is empty again.
/// assert_eq!(SENDS.live_keys(), 0);
/// # });
/// ```
///
/// # Fairness
///
/// Within a key, first-in, first-out, as a [`Semaphore`]. Across keys, the
/// global limit is first-in, first-out among the requests that hold their
/// key's permit. A request for a saturated key holds no global permit while
/// it waits.
///
/// # Memory
///
/// A key in use costs one map slot and one `Arc`-allocated entry (a
/// `Semaphore` and a counter, about 100 bytes on 64-bit targets) plus the
/// key itself; an idle key costs nothing. Waiting allocates nothing beyond
/// that: each acquire holds its places in the queues.
pub struct KeyedSemaphore<K> {
    per_key: usize,
    global: Option<Semaphore>,
    keys: Lock<Keys<K>>,
}

impl<K> KeyedSemaphore<K> {
    const_fn_unless_loom! {
        /// At most `per_key` permits out at once per key, no global limit.
        /// A `const fn`, so it can be a `static` (not `const` in loom builds).
        ///
        /// # Panics
        ///
        /// If `per_key > Semaphore::MAX_PERMITS`.
        pub fn new(per_key: usize) -> Self {
            Self::build(per_key, None)
        }
    }

    const_fn_unless_loom! {
        /// At most `per_key` permits out at once per key and `global` in
        /// total. A `const fn`, so it can be a `static` (not `const` in loom
        /// builds).
        ///
        /// # Panics
        ///
        /// If `per_key` or `global` exceeds `Semaphore::MAX_PERMITS`.
        pub fn with_global_limit(per_key: usize, global: usize) -> Self {
            Self::build(per_key, Some(Semaphore::new(global)))
        }
    }

    const_fn_unless_loom! {
        fn build(per_key: usize, global: Option<Semaphore>) -> Self {
            assert!(
                per_key <= Semaphore::MAX_PERMITS,
                "KeyedSemaphore: more than MAX_PERMITS permits per key"
            );
            Self {
                per_key,
                global,
                keys: Lock::new(Keys::new()),
            }
        }
    }

    /// The default limit of a key without a limit of its own.
    pub fn default_key_limit(&self) -> usize {
        self.per_key
    }

    /// The global semaphore, if there is a global limit: for its
    /// [`available_permits`](Semaphore::available_permits), or to change the
    /// global limit at run time.
    pub fn global(&self) -> Option<&Semaphore> {
        self.global.as_ref()
    }

    /// How many keys are in the map right now: keys with holders or waiters,
    /// and keys with a limit of their own. Takes the lock; for diagnostics.
    pub fn live_keys(&self) -> usize {
        self.keys.with(|keys| keys.map.len())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.keys.with(|keys| keys.closed)
    }

    /// Closes every key and the global limit: queued and later acquires
    /// resolve to `Err(Closed)`, `try_acquire` to `Err(Closed)`. Permits held
    /// stay valid; dropping them later is fine.
    pub fn close(&self) {
        // Collected under the lock (entries created later see `closed`),
        // closed after unlocking (closing wakes waiters).
        let entries: alloc::vec::Vec<_> = self.keys.with(|keys| {
            keys.closed = true;
            keys.map.values().map(|slot| slot.entry.clone()).collect()
        });
        if let Some(global) = &self.global {
            global.close();
        }
        for entry in &entries {
            entry.close();
        }
    }
}

impl<K: Ord + Clone> KeyedSemaphore<K> {
    /// Waits for a permit of `key`, then for a global one (if there is a
    /// global limit), and returns both as one [`KeyedPermit`].
    ///
    /// The key is looked up (and its entry created) here, not on the first
    /// poll: the future counts as a user of the key from now on. It resolves
    /// to `Err(AcquireError::Closed)` if the semaphore is or gets closed
    /// first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future at any point loses no permit. It
    /// leaves the queue it is in (the key's or the global one), gives back a
    /// key permit it already holds, waking the next waiter, and the key is
    /// evicted if nobody else uses it.
    ///
    /// [`AcquireError::Closed`]: crate::AcquireError::Closed
    pub fn acquire(&self, key: K) -> KeyedAcquire<'_, K> {
        KeyedAcquire::new(self, key)
    }

    /// Takes a permit of `key` and a global one if both are free and nobody
    /// is queued for either.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if closed, [`TryAcquireError::NoPermits`]
    /// if the key or the global limit has no permit free or acquires queued.
    pub fn try_acquire(&self, key: K) -> Result<KeyedPermit<'_, K>, TryAcquireError> {
        let key_use = self.enter(key).ok_or(TryAcquireError::Closed)?;
        // On failure `key_use` is dropped, which evicts a key created here.
        self.try_with(key_use).map_err(|(_, err)| err)
    }

    /// [`try_acquire`](Self::try_acquire) for a key already entered; on
    /// failure hands `key_use` back (the keyed stream then waits with it).
    pub(crate) fn try_with<'a>(
        &'a self,
        key_use: map::KeyUse<'a, K>,
    ) -> Result<KeyedPermit<'a, K>, (map::KeyUse<'a, K>, TryAcquireError)> {
        if let Err(err) = key_use.entry.try_take(1) {
            return Err((key_use, err));
        }
        let key_permit = Held::new(key_use.entry.clone(), 1);
        let global = match &self.global {
            Some(global) => match global.try_acquire() {
                Ok(permit) => Some(permit),
                // The key's permit goes back (dropped here).
                Err(err) => return Err((key_use, err)),
            },
            None => None,
        };
        Ok(KeyedPermit::from_parts(key_permit, global, key_use))
    }

    /// Runs `f` once a permit of `key` (and a global one) is held, and gives
    /// them back when `f` completes, when the returned future is dropped, or
    /// while unwinding from a panic in `f`. `f` is not polled before.
    ///
    /// Resolves to `Ok(output)`, or to the error that kept the permits from
    /// being acquired (then `f` never ran).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back the permits (or leaves the queue, as
    /// [`acquire`](Self::acquire) does) and drops `f`.
    pub fn run<F: IntoFuture>(&self, key: K, f: F) -> KeyedRun<'_, K, F::IntoFuture> {
        KeyedRun::new(self.acquire(key), f.into_future())
    }
}

impl<K> fmt::Debug for KeyedSemaphore<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedSemaphore")
            .field("default_key_limit", &self.per_key)
            .field("global", &self.global)
            .finish_non_exhaustive()
    }
}
