//! The permit counter: one word, changed with single atomic operations.
//!
//! ```text
//!   bit  N-1 .. 2      1         0
//!      [ free permits | QUEUED | CLOSED ]
//! ```
//!
//! - *free permits*: permits nobody holds and no waiter has been handed.
//! - `QUEUED`: the waiter queue is not empty. Set and cleared only with the
//!   queue lock held. While it is set, nobody takes permits from the counter
//!   without the lock (no barging), and whoever adds permits takes the lock to
//!   hand them to the head of the queue.
//! - `CLOSED`: set once by `close`, never cleared. A separate bit, so no
//!   arithmetic on the count can ever reopen the semaphore (tokio#8020).

use crate::sync::{const_fn_unless_loom, AtomicUsize, Ordering::*};

const CLOSED: usize = 0b01;
const QUEUED: usize = 0b10;
const SHIFT: u32 = 2;

/// The most permits the counter can hold; every count fits in the word.
pub(crate) const MAX_PERMITS: usize = usize::MAX >> SHIFT;

// The contract promises at least `u16::MAX` permits everywhere; a 16-bit
// `usize` cannot hold that next to the flags, so such targets fail to build
// instead of getting a smaller limit silently.
const _: () = assert!(
    MAX_PERMITS >= u16::MAX as usize,
    "permits needs a usize of at least 32 bits"
);

/// What a lock-free attempt to take permits found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// The permits were taken.
    Taken,
    /// The semaphore is closed.
    Closed,
    /// Too few permits are free, or waiters are queued ahead.
    Busy,
}

/// The counter word.
#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    const_fn_unless_loom! {
        pub(crate) fn new(permits: usize) -> Self {
            Self(AtomicUsize::new(permits << SHIFT))
        }
    }

    pub(crate) fn free(&self) -> usize {
        self.0.load(Acquire) >> SHIFT
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Acquire) & CLOSED != 0
    }

    /// Takes `n` permits if they are free and nobody is queued: the fast path
    /// of every acquire, one compare-and-swap when uncontended.
    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> Take {
        self.take_if(n, QUEUED)
    }

    /// Takes `n` permits if they are free, queued waiters or not. Only for the
    /// holder of the queue lock who has seen that the queue is empty.
    pub(crate) fn try_take_locked(&self, n: usize) -> Take {
        self.take_if(n, 0)
    }

    #[inline]
    fn take_if(&self, n: usize, blocked_by: usize) -> Take {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return Take::Closed;
            }
            if n == 0 {
                return Take::Taken;
            }
            if cur & blocked_by != 0 || cur >> SHIFT < n {
                return Take::Busy;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur - (n << SHIFT), Acquire, Relaxed)
            {
                Ok(_) => return Take::Taken,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes every free permit, leaving the flags as they are; returns how many.
    pub(crate) fn take_all(&self) -> usize {
        self.take_up_to(usize::MAX)
    }

    /// Takes up to `n` free permits; returns how many were taken.
    pub(crate) fn take_up_to(&self, n: usize) -> usize {
        let mut cur = self.0.load(Relaxed);
        loop {
            let taken = (cur >> SHIFT).min(n);
            if taken == 0 {
                return 0;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur - (taken << SHIFT), Acquire, Relaxed)
            {
                Ok(_) => return taken,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds `n` free permits whether or not waiters are queued: for the
    /// holder of the queue lock (permits left over after serving the head,
    /// or taken back from waiters that `close` failed). One `fetch_add`.
    ///
    /// The caller guarantees the count stays within [`MAX_PERMITS`]: the
    /// permits came out of this semaphore, or `add_permits` checked the total.
    pub(crate) fn give(&self, n: usize) {
        self.0.fetch_add(n << SHIFT, AcqRel);
    }

    /// Adds `n` free permits if nobody is queued and returns `true`; if
    /// waiters are queued, changes nothing and returns `false`: the caller
    /// then hands the permits to the queue under the lock, so they never pass
    /// through the counter. One compare-and-swap when nobody waits.
    ///
    /// The caller guarantees the count stays within [`MAX_PERMITS`], as for
    /// [`give`](Self::give).
    #[inline]
    pub(crate) fn give_unless_queued(&self, n: usize) -> bool {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur & QUEUED != 0 {
                return false;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur + (n << SHIFT), AcqRel, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Whether acquires are queued (a snapshot, for heuristics: the backlog
    /// gate queues only if others do).
    pub(crate) fn is_queued(&self) -> bool {
        self.0.load(Acquire) & QUEUED != 0
    }

    /// Marks the queue non-empty. Lock held.
    pub(crate) fn set_queued(&self) {
        self.0.fetch_or(QUEUED, AcqRel);
    }

    /// Marks the queue empty. Lock held.
    pub(crate) fn clear_queued(&self) {
        self.0.fetch_and(!QUEUED, AcqRel);
    }

    /// Marks the semaphore closed; returns whether it already was.
    pub(crate) fn close(&self) -> bool {
        self.0.fetch_or(CLOSED, AcqRel) & CLOSED != 0
    }
}
