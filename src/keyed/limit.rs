//! Per-key limits: overrides set and cleared at run time.
//!
//! A new limit is recorded under the map lock but applied to the key's
//! semaphore after unlocking, since applying it may wake waiters (and the
//! map lock, like the queue lock, never runs a waker). Two threads changing
//! one key's limit at once could then apply their values in the other order
//! than they recorded them; so each applier checks afterwards, under the
//! lock, that the slot's `version` is still the one it applied, and applies
//! the newer value if not. The last applier to check thus leaves the
//! semaphore at the last recorded limit.

use super::map::{Entry, EntryRef, Slot};
use super::KeyedSemaphore;
use crate::Semaphore;
use alloc::sync::Arc;

/// The one place a key's semaphore gets a new limit: the exact
/// [`Semaphore::set_limit`] (a shrink below the permits held becomes debt,
/// paid back as they return).
fn apply_limit(sem: &Semaphore, n: usize) {
    sem.set_limit(n);
}

impl<K: Ord + Clone> KeyedSemaphore<K> {
    /// Sets `key`'s own limit to `n`, in place of the default, while it has
    /// holders and waiters too. The key stays in the map (with no users, an
    /// entry of a few dozen bytes) until [`clear_key_limit`](Self::clear_key_limit).
    ///
    /// Applied with [`Semaphore::set_limit`]: growing serves the key's
    /// waiters at once (each still needs a global permit, if there is a
    /// global limit); shrinking is exact and never revokes a held permit: new
    /// work for the key starts once fewer than `n` are held.
    ///
    /// # Panics
    ///
    /// If `n > Semaphore::MAX_PERMITS`; nothing is changed then.
    pub fn set_key_limit(&self, key: K, n: usize) {
        assert!(
            n <= Semaphore::MAX_PERMITS,
            "KeyedSemaphore::set_key_limit: more than MAX_PERMITS permits"
        );
        let recorded = self.keys.with(|keys| {
            if let Some(slot) = keys.map.get_mut(&key) {
                slot.limit = Some(n);
                slot.version += 1;
                return Some((slot.entry.clone(), slot.version));
            }
            let entry = EntryRef(Arc::new(Entry::new(n, keys.closed)));
            let slot = Slot {
                entry,
                limit: Some(n),
                version: 0,
            };
            keys.map.insert(key.clone(), slot);
            None // a new semaphore starts at `n`: nothing to apply
        });
        if let Some((entry, version)) = recorded {
            self.apply_until_current(&key, entry, n, version);
        }
    }

    /// Removes `key`'s own limit: it goes back to the default limit, and the
    /// key is evicted at once if nobody uses it. Does nothing if the key has
    /// no limit of its own.
    pub fn clear_key_limit(&self, key: &K) {
        let recorded = self.keys.with(|keys| {
            let slot = keys.map.get_mut(key)?;
            slot.limit?;
            if slot.entry.0.users() == 0 {
                // Idle: evict now (users are only added under this lock).
                return keys.map.remove(key).map(|slot| (slot.entry, None));
            }
            slot.limit = None;
            slot.version += 1;
            Some((slot.entry.clone(), Some(slot.version)))
        });
        if let Some((entry, Some(version))) = recorded {
            self.apply_until_current(key, entry, self.per_key, version);
        }
    }

    /// `key`'s limit: its own if set, otherwise the default.
    pub fn key_limit(&self, key: &K) -> usize {
        self.keys.with(|keys| {
            keys.map
                .get(key)
                .and_then(|slot| slot.limit)
                .unwrap_or(self.per_key)
        })
    }

    /// Applies `n` (recorded as `version`) to `entry`, then re-applies
    /// whatever was recorded since, until the slot is unchanged after an
    /// apply (see the module docs).
    fn apply_until_current(&self, key: &K, entry: EntryRef, mut n: usize, mut version: u64) {
        loop {
            apply_limit(&entry, n);
            let newer = self.keys.with(|keys| {
                let slot = keys.map.get(key)?;
                if !Arc::ptr_eq(&slot.entry.0, &entry.0) || slot.version == version {
                    // Current, or the entry was evicted (nobody uses it).
                    return None;
                }
                Some((slot.limit.unwrap_or(self.per_key), slot.version))
            });
            match newer {
                Some((limit, v)) => (n, version) = (limit, v),
                None => return,
            }
        }
    }
}
