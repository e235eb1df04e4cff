//! The map of live keys and its eviction protocol.
//!
//! # Protocol
//!
//! Each live key has one [`Entry`]: its semaphore and a count of *users*
//! (acquires in progress plus permits held, one each). The map lock guards
//! the map and the [`Slot`]s; the count is an atomic so that giving a key
//! back while others still use it takes no lock.
//!
//! 1. A user is counted only under the map lock, while its entry is in the
//!    map ([`KeyedSemaphore::enter`]).
//! 2. A user leaves with one atomic decrement, outside the lock
//!    ([`KeyUse`]'s drop). Only the one that takes the count to zero takes
//!    the lock, and it removes the slot only if, under the lock, the slot
//!    still holds *its* entry, the count is still zero and the key has no
//!    override.
//!
//! By 1, no user can be added between that check and the removal (both are
//! under the lock), so an entry leaves the map only with no user at all: no
//! holder, no waiter. An acquire that comes after finds no slot and creates a
//! fresh entry, so a key never has two entries that both have users, and
//! never two semaphores whose permits are both out. An acquire that came
//! first (between the decrement and the lock) raised the count again, and
//! the check sees it: the entry stays, and that acquire's own exit evicts it
//! later. `tests/loom.rs` model-checks exactly these races.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::fmt;
use core::ops::Deref;

use crate::sync::{AtomicUsize, Ordering};
use crate::Semaphore;

use super::KeyedSemaphore;

/// One live key: its semaphore and how many acquires and permits use it.
pub(crate) struct Entry {
    pub(crate) sem: Semaphore,
    /// Users of this entry (see the module docs). Raised only under the map
    /// lock; lowered anywhere.
    users: AtomicUsize,
}

impl Entry {
    pub(crate) fn new(limit: usize, closed: bool) -> Self {
        let sem = Semaphore::new(limit);
        if closed {
            sem.close();
        }
        Self {
            sem,
            users: AtomicUsize::new(0),
        }
    }

    pub(crate) fn users(&self) -> usize {
        self.users.load(Ordering::Acquire)
    }
}

/// A shared handle to an entry, usable wherever the core wants a
/// `Deref<Target = Semaphore>` (its waiter and held permits).
#[derive(Clone)]
pub(crate) struct EntryRef(pub(crate) Arc<Entry>);

impl Deref for EntryRef {
    type Target = Semaphore;

    fn deref(&self) -> &Semaphore {
        &self.0.sem
    }
}

impl fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("users", &self.0.users())
            .field("available_permits", &self.0.sem.available_permits())
            .finish_non_exhaustive()
    }
}

/// What the map holds per key.
pub(crate) struct Slot {
    pub(crate) entry: EntryRef,
    /// The key's own limit, if one was set; `None`: the default.
    pub(crate) limit: Option<usize>,
    /// Raised on every change of `limit`, so a limit applied outside the lock
    /// can tell whether it is still the latest (see `limit.rs`).
    pub(crate) version: u64,
}

/// What the map lock guards.
pub(crate) struct Keys<K> {
    pub(crate) map: BTreeMap<K, Slot>,
    pub(crate) closed: bool,
}

impl<K> Keys<K> {
    pub(crate) const fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            closed: false,
        }
    }
}

/// One user of a key's entry (an acquire in progress or a held permit):
/// counted in the entry while it lives; its drop is step 2 of the protocol.
pub(crate) struct KeyUse<'a, K: Ord> {
    pub(crate) keyed: &'a KeyedSemaphore<K>,
    pub(crate) entry: EntryRef,
    pub(crate) key: K,
}

impl<K: Ord + Clone> KeyedSemaphore<K> {
    /// Step 1: finds or creates `key`'s entry and counts one user, under the
    /// lock. `None` if closed (nothing is created then).
    pub(crate) fn enter(&self, key: K) -> Option<KeyUse<'_, K>> {
        self.enter_or_return(key).ok()
    }

    /// [`enter`](Self::enter), handing the key back if closed.
    pub(crate) fn enter_or_return(&self, key: K) -> Result<KeyUse<'_, K>, K> {
        let entry = self.keys.with(|keys| {
            if keys.closed {
                return None;
            }
            let entry = match keys.map.get(&key) {
                Some(slot) => slot.entry.clone(),
                None => {
                    let entry = EntryRef(Arc::new(Entry::new(self.per_key, false)));
                    keys.map.insert(
                        key.clone(),
                        Slot {
                            entry: entry.clone(),
                            limit: None,
                            version: 0,
                        },
                    );
                    entry
                }
            };
            // Relaxed: the lock orders this against the check in `leave`.
            entry.0.users.fetch_add(1, Ordering::Relaxed);
            Some(entry)
        });
        match entry {
            Some(entry) => Ok(KeyUse {
                keyed: self,
                entry,
                key,
            }),
            None => Err(key),
        }
    }
}

impl<K: Ord> Drop for KeyUse<'_, K> {
    fn drop(&mut self) {
        // Step 2. Release: what this user did happens-before the evicting
        // thread frees the entry.
        if self.entry.0.users.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let evicted = self.keyed.keys.with(|keys| {
            let slot = keys.map.get(&self.key)?;
            let idle = Arc::ptr_eq(&slot.entry.0, &self.entry.0)
                && slot.limit.is_none()
                && slot.entry.0.users() == 0;
            if idle {
                keys.map.remove(&self.key)
            } else {
                None
            }
        });
        // Freed after unlocking.
        drop(evicted);
    }
}

impl<K: Ord + fmt::Debug> fmt::Debug for KeyUse<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyUse")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
