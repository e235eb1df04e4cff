//! [`KeyedLimiter`]: an adaptive limit per key. Each key (destination) has
//! its own [`Algorithm`] state, fed by that key's finished requests, which
//! moves that key's limit: each destination finds its own limit, as Postfix
//! does.
//!
//! # Protocol
//!
//! A key's *state* (its algorithm, its decided `target`) lives in the
//! limiter's map while the key has *users*: acquires in progress and permits
//! held through the limiter (counted under the map's lock). When the last
//! one is gone the key is *idle*: its state is kept, so a key that comes
//! back a moment later goes on from what it learned, but at most
//! `max_idle_keys` idle states are kept; beyond that the one idle the
//! longest goes (a key that comes back after that starts again from the
//! initial limit, as Postfix resets an idle destination's window). The
//! key's entry in the [`KeyedSemaphore`] is evicted as any idle key's, so
//! memory follows the keys in use plus that bounded memory of idle ones.
//!
//! A target is applied to the key's semaphore (its entry in the
//! `KeyedSemaphore`) with the exact [`Semaphore::set_limit`], outside the
//! lock (it may wake waiters). Every applier re-reads the target afterwards
//! and applies again if it moved, so the last one to check leaves the
//! semaphore at the last decision (the argument of `keyed/limit.rs`). A
//! key's entry can be evicted and made again while its state lives (a
//! permit's key permit goes back a moment before the permit stops counting
//! as a user); the state remembers the entry it was applied to, and an
//! acquire that finds another one applies the target to it before it waits.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use super::map::EntryRef;
use super::{KeyedAcquire, KeyedPermit, KeyedSemaphore};
use crate::adaptive::{Aimd, Algorithm, Decision, Outcome, Sample};
use crate::lock::Lock;
use crate::{AcquireError, Semaphore, TryAcquireError};

/// One key's adaptive state.
struct KeyState<A> {
    algorithm: A,
    /// Acquires in progress plus permits held, through the limiter.
    users: usize,
    /// Permits held.
    in_flight: usize,
    /// The limit last decided.
    target: usize,
    /// The entry `target` was last applied to (and checked current after).
    applied_to: Option<EntryRef>,
    last: Option<Decision>,
    /// Its place in `States::idle` while it has no users.
    idle_since: Option<u64>,
}

/// What the limiter's lock guards.
struct States<K, A> {
    map: BTreeMap<K, KeyState<A>>,
    /// Idle keys, oldest first, by when they went idle.
    idle: BTreeMap<u64, K>,
    ticks: u64,
}

/// A [`KeyedSemaphore`] whose per-key limits an [`Algorithm`] sets, one
/// algorithm state per key, from what each key's finished requests report:
/// every key starts at the algorithm's initial limit, grows while its server
/// keeps up and backs off when it pushes back, independently of the other
/// keys. An optional global limit (fixed, or moved by you with
/// [`Semaphore::set_limit`] on [`global`](Self::global)) caps the total.
///
/// Take a [`KeyedLimitPermit`] with [`acquire`](Self::acquire), do the
/// request, and say what the reply meant with [`KeyedLimitPermit::record`]
/// (or, with `std`, `KeyedLimitPermit::finish`), as with
/// [`Limiter`](crate::adaptive::Limiter). A permit dropped without an
/// outcome records nothing.
///
/// # Memory
///
/// Each key in use costs its [`KeyedSemaphore`] entry, a map slot and one
/// algorithm state (`size_of::<A>()`, about 200 bytes for [`Aimd`]). A key
/// with no acquire or permit left is idle: its entry is evicted, its state
/// kept (so it goes on from what it learned when it comes back), but only
/// for the [`max_idle_keys`](Self::max_idle_keys) most recently idle keys
/// (1024 by default); older ones are forgotten and start again from the
/// initial limit.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use permits::adaptive::{Aimd, Outcome};
/// use permits::KeyedLimiter;
///
/// # futures::executor::block_on(async {
/// let limits = KeyedLimiter::new(Aimd::new().initial_limit(2));
/// // "a.example" keeps up at its limit: the limit grows.
/// for _ in 0..4 {
///     let p1 = limits.acquire("a.example").await.unwrap();
///     let p2 = limits.acquire("a.example").await.unwrap();
///     p1.record(Outcome::Success, Duration::from_millis(20));
///     p2.record(Outcome::Success, Duration::from_millis(20));
/// }
/// assert_eq!(limits.key_limit(&"a.example"), 3);
/// // "b.example" refuses ("421 too many connections"): it backs off to 1.
/// let p = limits.acquire("b.example").await.unwrap();
/// let q = limits.acquire("b.example").await.unwrap();
/// q.record(Outcome::Overload, Duration::from_millis(1));
/// assert_eq!(limits.key_limit(&"b.example"), 1);
/// drop(p);
/// // Idle keys leave the keyed map; what they learned is kept (bounded).
/// assert_eq!(limits.keyed_semaphore().live_keys(), 0);
/// assert_eq!(limits.live_keys(), 2);
/// # });
/// ```
pub struct KeyedLimiter<K, A = Aimd> {
    keyed: KeyedSemaphore<K>,
    /// Cloned for each new key's state.
    prototype: A,
    max_idle: usize,
    states: Lock<States<K, A>>,
}

/// How many idle keys' states a [`KeyedLimiter`] keeps unless told
/// otherwise.
const DEFAULT_MAX_IDLE_KEYS: usize = 1024;

impl<K, A: Algorithm + Clone> KeyedLimiter<K, A> {
    /// Each key limited by its own copy of `algorithm`, starting at its
    /// [`limit`](Algorithm::limit); no global limit.
    ///
    /// # Panics
    ///
    /// If that limit is 0 or above [`Semaphore::MAX_PERMITS`].
    pub fn new(algorithm: A) -> Self {
        Self::build(algorithm, None)
    }

    /// As [`new`](Self::new), with at most `global` permits out in total.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new), or if `global` exceeds
    /// [`Semaphore::MAX_PERMITS`].
    pub fn with_global_limit(algorithm: A, global: usize) -> Self {
        Self::build(algorithm, Some(global))
    }

    fn build(algorithm: A, global: Option<usize>) -> Self {
        let initial = algorithm.limit();
        assert!(
            (1..=Semaphore::MAX_PERMITS).contains(&initial),
            "KeyedLimiter: the initial limit must be in 1..=MAX_PERMITS"
        );
        let keyed = match global {
            Some(global) => KeyedSemaphore::with_global_limit(initial, global),
            None => KeyedSemaphore::new(initial),
        };
        Self {
            keyed,
            prototype: algorithm,
            max_idle: DEFAULT_MAX_IDLE_KEYS,
            states: Lock::new(States {
                map: BTreeMap::new(),
                idle: BTreeMap::new(),
                ticks: 0,
            }),
        }
    }

    /// Keeps what at most `n` idle keys learned (the default: 1024); a key
    /// idle longer than the `n` most recent ones starts again from the
    /// initial limit when it comes back. 0 forgets a key as soon as it is
    /// idle.
    pub fn max_idle_keys(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }
}

impl<K: Ord + Clone, A: Algorithm + Clone> KeyedLimiter<K, A> {
    /// Waits for a permit of `key` (at the limit its algorithm decided),
    /// then for a global one, as [`KeyedSemaphore::acquire`].
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] once the semaphore is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`KeyedSemaphore::acquire`]: dropping the future loses no permit
    /// and records nothing; the key's state goes if nobody else uses it.
    pub fn acquire(&self, key: K) -> KeyedLimitAcquire<'_, K, A> {
        let user = self.enter(&key);
        let inner = self.keyed.acquire(key);
        if let Some(entry) = inner.entry() {
            self.follow(&user.key, entry);
        }
        KeyedLimitAcquire {
            inner,
            user: Some(user),
        }
    }

    /// Takes a permit of `key` and a global one if both are free and nobody
    /// is queued for either.
    ///
    /// # Errors
    ///
    /// As [`KeyedSemaphore::try_acquire`].
    pub fn try_acquire(&self, key: K) -> Result<KeyedLimitPermit<'_, K, A>, TryAcquireError> {
        let user = self.enter(&key);
        let key_use = self.keyed.enter(key).ok_or(TryAcquireError::Closed)?;
        self.follow(&user.key, &key_use.entry);
        let permit = self.keyed.try_with(key_use).map_err(|(_, err)| err)?;
        Ok(KeyedLimitPermit::new(user, permit))
    }

    /// A permit taken from the keyed semaphore directly (by the keyed
    /// stream's gate), counted and measured as the limiter's own.
    pub(crate) fn adopt<'a>(&'a self, permit: KeyedPermit<'a, K>) -> KeyedLimitPermit<'a, K, A> {
        let user = self.enter(permit.key());
        self.follow(&user.key, permit.entry());
        KeyedLimitPermit::new(user, permit)
    }

    /// `key`'s limit now: the one its algorithm last decided, or the initial
    /// one if the key is not in use.
    pub fn key_limit(&self, key: &K) -> usize {
        self.states
            .with(|states| states.map.get(key).map(|s| s.target))
            .unwrap_or_else(|| self.prototype.limit())
    }

    /// `key`'s algorithm's last decision and why, `None` before the first
    /// or if the key is not in use.
    pub fn last_decision(&self, key: &K) -> Option<Decision> {
        self.states
            .with(|states| states.map.get(key).and_then(|s| s.last))
    }

    /// `key`'s permits out now, through this limiter.
    pub fn in_flight(&self, key: &K) -> usize {
        self.states
            .with(|states| states.map.get(key).map_or(0, |s| s.in_flight))
    }

    /// Counts a user of `key`, making its state if it has none.
    fn enter(&self, key: &K) -> User<'_, K, A> {
        self.states.with(|states| {
            if let Some(state) = states.map.get_mut(key) {
                state.users += 1;
                if let Some(since) = state.idle_since.take() {
                    states.idle.remove(&since);
                }
                return;
            }
            let algorithm = self.prototype.clone();
            let target = algorithm.limit();
            let state = KeyState {
                algorithm,
                users: 1,
                in_flight: 0,
                target,
                applied_to: None,
                last: None,
                idle_since: None,
            };
            states.map.insert(key.clone(), state);
        });
        User {
            limiter: self,
            key: key.clone(),
        }
    }

    /// `key`'s entry is `entry` now: applies the target to it unless it was.
    fn follow(&self, key: &K, entry: &EntryRef) {
        let current = self.states.with(|states| {
            states
                .map
                .get(key)
                .and_then(|s| s.applied_to.as_ref())
                .is_some_and(|e| Arc::ptr_eq(&e.0, &entry.0))
        });
        if !current {
            self.apply(key, entry);
        }
    }

    /// Applies `key`'s target to `entry` until it is still the target after
    /// applying (see the module docs).
    fn apply(&self, key: &K, entry: &EntryRef) {
        let mut target = match self
            .states
            .with(|states| states.map.get(key).map(|s| s.target))
        {
            Some(target) => target,
            None => return,
        };
        loop {
            entry.set_limit(target);
            let unused = self.states.with(|states| {
                let state = states.map.get_mut(key)?;
                if state.target != target {
                    return Some(Err(state.target));
                }
                Some(Ok(state.applied_to.replace(entry.clone())))
            });
            match unused {
                // Gone: nobody uses the key, its entry goes too.
                None => return,
                // The old entry is dropped outside the lock.
                Some(Ok(old)) => return drop(old),
                Some(Err(newer)) => target = newer,
            }
        }
    }

    /// `key`'s algorithm takes `sample` in; a new limit is applied.
    ///
    /// # Panics
    ///
    /// If the algorithm decides a limit of 0 or above
    /// [`Semaphore::MAX_PERMITS`] (the limit is left as it was).
    fn record(&self, key: &K, sample: Sample) {
        let decided = self.states.with(|states| {
            let state = states.map.get_mut(key)?;
            let d = state.algorithm.update(&sample)?;
            if d.limit == 0 || d.limit > Semaphore::MAX_PERMITS {
                return Some(Err(d.limit));
            }
            state.last = Some(d);
            if state.target == d.limit {
                return None;
            }
            state.target = d.limit;
            Some(Ok(state.applied_to.clone()))
        });
        match decided {
            Some(Ok(Some(entry))) => self.apply(key, &entry),
            Some(Err(limit)) => panic!(
                "KeyedLimiter: the algorithm decided a limit of {limit} (must be in 1..=MAX_PERMITS)"
            ),
            _ => {}
        }
    }
}

impl<K, A> KeyedLimiter<K, A> {
    /// The keyed semaphore whose per-key limits this drives: for its
    /// [`live_keys`](KeyedSemaphore::live_keys), its global limit, or to
    /// [`close`](KeyedSemaphore::close) it. Its key limits are the
    /// limiter's: [`set_key_limit`](KeyedSemaphore::set_key_limit) on it is
    /// overwritten by the next decision.
    pub fn keyed_semaphore(&self) -> &KeyedSemaphore<K> {
        &self.keyed
    }

    /// The global semaphore, if there is a global limit.
    pub fn global(&self) -> Option<&Semaphore> {
        self.keyed.global()
    }

    /// Keys with a state now: those in use through the limiter plus the
    /// idle ones whose learned limit is kept (at most
    /// [`max_idle_keys`](Self::max_idle_keys) of those).
    pub fn live_keys(&self) -> usize {
        self.states.with(|states| states.map.len())
    }
}

impl<K, A> fmt::Debug for KeyedLimiter<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("keyed", &self.keyed)
            .field("live_keys", &self.live_keys())
            .finish_non_exhaustive()
    }
}

/// One user of a key's state; its drop is the last step of the protocol.
struct User<'a, K: Ord + Clone, A> {
    limiter: &'a KeyedLimiter<K, A>,
    key: K,
}

impl<K: Ord + Clone, A> Drop for User<'_, K, A> {
    fn drop(&mut self) {
        let max_idle = self.limiter.max_idle;
        let gone = self.limiter.states.with(|states| {
            let state = states.map.get_mut(&self.key)?;
            state.users -= 1;
            if state.users > 0 {
                return None;
            }
            // Idle: its entry is evicted (or will be) from the keyed map, so
            // the target is applied again to the next one.
            let entry = state.applied_to.take();
            let forgotten = if max_idle == 0 {
                states.map.remove(&self.key)
            } else {
                states.ticks += 1;
                state.idle_since = Some(states.ticks);
                states.idle.insert(states.ticks, self.key.clone());
                if states.idle.len() > max_idle {
                    let (_, oldest) = states.idle.pop_first().expect("more than 0");
                    states.map.remove(&oldest)
                } else {
                    None
                }
            };
            Some((entry, forgotten))
        });
        // Freed after unlocking.
        drop(gone);
    }
}

pin_project! {
    /// The future of [`KeyedLimiter::acquire`].
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct KeyedLimitAcquire<'a, K, A = Aimd>
    where
        K: Ord,
        K: Clone,
    {
        // Declared first: its permits go back before the user count.
        #[pin]
        inner: KeyedAcquire<'a, K>,
        user: Option<User<'a, K, A>>,
    }
}

impl<'a, K: Ord + Clone, A: Algorithm + Clone> Future for KeyedLimitAcquire<'a, K, A> {
    type Output = Result<KeyedLimitPermit<'a, K, A>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let permit = ready!(this.inner.poll(cx))?;
        let user = this.user.take().expect("polled after completion");
        Poll::Ready(Ok(KeyedLimitPermit::new(user, permit)))
    }
}

impl<K: Ord + Clone + fmt::Debug, A> fmt::Debug for KeyedLimitAcquire<'_, K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimitAcquire")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// A permit of a [`KeyedLimiter`]: say what the request's reply meant with
/// [`record`](Self::record) (or, with `std`, `finish`); dropping it
/// without that gives the permits back and records nothing.
#[must_use = "dropping a KeyedLimitPermit gives it back and records nothing"]
pub struct KeyedLimitPermit<'a, K: Ord + Clone, A: Algorithm + Clone = Aimd> {
    // Field order is drop order: the permits go back, then the user.
    permit: Option<KeyedPermit<'a, K>>,
    user: User<'a, K, A>,
    in_flight: usize,
    #[cfg(feature = "std")]
    started: std::time::Instant,
}

impl<'a, K: Ord + Clone, A: Algorithm + Clone> KeyedLimitPermit<'a, K, A> {
    fn new(user: User<'a, K, A>, permit: KeyedPermit<'a, K>) -> Self {
        let in_flight = user.limiter.states.with(|states| {
            let state = states
                .map
                .get_mut(&user.key)
                .expect("a user's key has a state");
            state.in_flight += 1;
            state.in_flight
        });
        Self {
            permit: Some(permit),
            user,
            in_flight,
            #[cfg(feature = "std")]
            started: std::time::Instant::now(),
        }
    }

    /// The key this permit is for.
    pub fn key(&self) -> &K {
        &self.user.key
    }

    /// How many of the key's permits were out when this one was taken,
    /// itself included.
    pub fn in_flight_at_start(&self) -> usize {
        self.in_flight
    }

    /// Records the request's outcome and how long it took (by the caller's
    /// clock) in its key's algorithm, then gives the permits back. The
    /// sample's `in_flight` is the larger of the key's count at the start
    /// and now, as [`adaptive::Permit::record`](crate::adaptive::Permit::record).
    pub fn record(self, outcome: Outcome, rtt: Duration) {
        let limiter = self.user.limiter;
        let in_flight = self.in_flight.max(limiter.in_flight(&self.user.key));
        limiter.record(&self.user.key, Sample::new(rtt, in_flight, outcome));
    }

    /// [`record`](Self::record)s the outcome with the time since the permit
    /// was granted, measured with `std::time::Instant`.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn finish(self, outcome: Outcome) {
        let rtt = self.started.elapsed();
        self.record(outcome, rtt);
    }
}

impl<K: Ord + Clone, A: Algorithm + Clone> Drop for KeyedLimitPermit<'_, K, A> {
    fn drop(&mut self) {
        // The permits first, then this permit stops counting (the user,
        // a field, goes right after).
        drop(self.permit.take());
        self.user.limiter.states.with(|states| {
            if let Some(state) = states.map.get_mut(&self.user.key) {
                state.in_flight -= 1;
            }
        });
    }
}

impl<K: Ord + Clone + fmt::Debug, A: Algorithm + Clone> fmt::Debug for KeyedLimitPermit<'_, K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimitPermit")
            .field("key", &self.user.key)
            .field("in_flight_at_start", &self.in_flight)
            .finish_non_exhaustive()
    }
}
