//! The watcher: one waker that waits *off* the semaphore's queue and must
//! still hear when the limit grows.
//!
//! A backlog stream whose own items hold permits waits for one of them to
//! finish rather than queueing (the "Turns" rule of
//! [`SemaphoreGate`](crate::SemaphoreGate)), which keeps a lone stream off
//! the queue's lock. Only a new permit it did not give out itself would go
//! unseen then, and the one source of those while nobody is queued that is
//! not a release is a raise of the limit. So a raise wakes the watcher.
//!
//! Protocol (every write under the queue lock):
//!
//! - the slot (`Queue::watcher`) holds at most one waker; whoever finds it
//!   taken by someone else queues as usual instead;
//! - `epoch` counts the times the slot was filled or emptied; a watcher
//!   remembers the epoch it registered at as its ticket, and reads `epoch`
//!   (lock-free) to learn whether it is still registered;
//! - a raise (`reconfigure` creating permits) empties the slot and wakes the
//!   waker after unlocking, so a watcher is woken at most once per
//!   registration and registers again (under the lock) the next time it
//!   waits.
//!
//! No wake-up is lost: a watcher registers and *then* retries `try_acquire`
//! before it returns `Pending`. A raise ordered before the registration
//! (by the lock) made its permits visible to that retry; one ordered after
//! finds the waker in the slot.

use core::task::Waker;

use crate::sync::Ordering;
use crate::Semaphore;

impl Semaphore {
    /// Registers `waker` as the watcher, or replaces the waker of the
    /// registration `ticket` (if it still stands). Returns the ticket of the
    /// registration, or `None` if someone else watches.
    pub(crate) fn watch(&self, waker: &Waker, ticket: Option<usize>) -> Option<usize> {
        // Cloned before and the old one dropped after the lock: neither may
        // run executor code under it.
        let mut new = Some(waker.clone());
        let registered = self.queue.with(|q| {
            let ours = ticket.is_some_and(|t| self.is_watching(t));
            if q.watcher.is_some() && !ours {
                return None;
            }
            core::mem::swap(&mut q.watcher, &mut new);
            if ours {
                ticket
            } else {
                Some(self.watch_epoch.fetch_add(1, Ordering::AcqRel) + 1)
            }
        });
        drop(new);
        registered
    }

    /// The registration `ticket` still stands (no raise has woken it, it
    /// was not withdrawn). Lock-free.
    pub(crate) fn is_watching(&self, ticket: usize) -> bool {
        self.watch_epoch.load(Ordering::Acquire) == ticket
    }

    /// Withdraws the registration `ticket` if it still stands.
    pub(crate) fn unwatch(&self, ticket: usize) {
        if self.is_watching(ticket) {
            let waker = self.queue.with(|q| {
                if self.is_watching(ticket) {
                    self.watch_epoch.fetch_add(1, Ordering::AcqRel);
                    q.watcher.take()
                } else {
                    None
                }
            });
            drop(waker);
        }
    }

    /// The watcher, taken out of its slot to be woken after unlocking: the
    /// limit grew. Lock held.
    pub(crate) fn take_watcher_locked(&self, q: &mut crate::hand_off::Queue) -> WakeOnDrop {
        let waker = q.watcher.take();
        if waker.is_some() {
            self.watch_epoch.fetch_add(1, Ordering::AcqRel);
        }
        WakeOnDrop(waker)
    }
}

/// A watcher taken out of its slot: woken when this is dropped, so it is
/// woken even if waking the served waiters before it panics (it was
/// deregistered, and would otherwise wait for its own items only).
#[must_use = "dropping it wakes the watcher"]
pub(crate) struct WakeOnDrop(Option<Waker>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.wake();
        }
    }
}
