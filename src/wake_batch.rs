//! Wakers collected under the lock and woken after it is released: a batch
//! for rounds that may serve many waiters, and a single slot for the common
//! hand-over of one permit, which serves at most one.

use core::mem::ManuallyDrop;
use core::task::Waker;

/// How many wakers are collected before the lock is dropped to wake them.
/// Tiny under loom so the refill path is model-checked too.
#[cfg(not(loom))]
const CAPACITY: usize = 8;
#[cfg(loom)]
const CAPACITY: usize = 1;

/// A fixed-size batch of wakers to wake once the queue lock is released.
///
/// Dropping the batch wakes what is left in it, so a panicking `wake` (or any
/// other unwind) does not strand the waiters already taken off the queue; the
/// callers finish the rounds still to come (`FinishOnUnwind`).
#[derive(Debug)]
pub(crate) struct WakeBatch {
    /// Slots `len..` are always `None`, and `Drop` wakes (takes) `..len`, so
    /// nothing is left to drop: `ManuallyDrop` spares every drop of a batch a
    /// pass over all its slots.
    wakers: ManuallyDrop<[Option<Waker>; CAPACITY]>,
    len: usize,
}

impl Default for WakeBatch {
    fn default() -> Self {
        Self {
            wakers: ManuallyDrop::new([const { None }; CAPACITY]),
            len: 0,
        }
    }
}

/// Where a locked round puts the wakers of the waiters it served, to wake
/// after unlocking. Dropping one wakes what is left in it (see [`WakeBatch`]).
pub(crate) trait Wakers {
    fn is_full(&self) -> bool;

    /// Adds a waker. The caller checks [`is_full`](Self::is_full) first.
    fn push(&mut self, waker: Option<Waker>);

    /// Wakes every collected waker. Must be called without the lock held.
    fn wake_all(&mut self);
}

impl Wakers for WakeBatch {
    fn is_full(&self) -> bool {
        self.len == CAPACITY
    }

    fn push(&mut self, waker: Option<Waker>) {
        debug_assert!(!self.is_full());
        if waker.is_some() {
            self.wakers[self.len] = waker;
            self.len += 1;
        }
    }

    fn wake_all(&mut self) {
        while self.len > 0 {
            self.len -= 1;
            if let Some(waker) = self.wakers[self.len].take() {
                waker.wake();
            }
        }
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        self.wake_all();
    }
}

/// Room for one waker: a round that serves a second waiter stops on it as on
/// a full [`WakeBatch`] (and `serve` goes on with a batch). For the usual
/// contended release of one permit and the enqueue's hand-out, which serve
/// one waiter or none, it spares setting up and draining a batch.
#[derive(Debug, Default)]
pub(crate) struct WakeOne(Option<Waker>);

impl Wakers for WakeOne {
    fn is_full(&self) -> bool {
        self.0.is_some()
    }

    fn push(&mut self, waker: Option<Waker>) {
        debug_assert!(!self.is_full());
        self.0 = waker;
    }

    fn wake_all(&mut self) {
        if let Some(waker) = self.0.take() {
            waker.wake();
        }
    }
}

impl Drop for WakeOne {
    fn drop(&mut self) {
        self.wake_all();
    }
}
