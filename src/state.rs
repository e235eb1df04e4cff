//! The permit counter: one word, changed with single atomic operations.
//!
//! ```text
//!   bit  N-1 .. 3             2       1        0
//!      [ signed count     | ASIDE | QUEUED | CLOSED ]
//! ```
//!
//! - *count*: `limit() - out`, a two's-complement number. Positive, it is
//!   the free permits (nobody holds them, no waiter has been handed them);
//!   negative, it is the debt: permits out beyond a lowered limit, paid back
//!   by the next releases before anyone is served (Java's `reducePermits`).
//!   So `debt() > 0` implies no permit is free by construction, and a release
//!   nobody waits for pays the debt with the same single compare-and-swap that
//!   would otherwise make the permit free.
//! - `QUEUED`: a waiter that can be served under the current limit is queued.
//!   Set and cleared only with the queue lock held. While it is set, nobody
//!   changes the count without the lock (no barging), and whoever gives
//!   permits back takes the lock to pay the debt and serve the head.
//! - `ASIDE`: a waiter asks for more than the limit and waits aside (it does
//!   not hold back the queue, and does not set `QUEUED`). Only read and
//!   written under the queue lock; the fast paths ignore it.
//! - `CLOSED`: set once by `close`, never cleared. A separate bit, so no
//!   arithmetic on the count can ever reopen the semaphore (tokio#8020).

use crate::sync::{const_fn_unless_loom, AtomicUsize, Ordering::*};

const CLOSED: usize = 0b001;
const QUEUED: usize = 0b010;
const ASIDE: usize = 0b100;
const SHIFT: u32 = 3;

/// The most permits the counter can hold. The count is signed, so both a
/// full semaphore (`+MAX_PERMITS`) and the largest debt (`-MAX_PERMITS`) fit
/// in the bits above the flags.
pub(crate) const MAX_PERMITS: usize = usize::MAX >> (SHIFT + 1);

// The contract promises at least `u16::MAX` permits everywhere; a 16-bit
// `usize` cannot hold that next to the flags, so such targets fail to build
// instead of getting a smaller limit silently.
const _: () = assert!(
    MAX_PERMITS >= u16::MAX as usize,
    "permits needs a usize of at least 32 bits"
);

/// The signed count of a counter word.
#[inline]
fn count(word: usize) -> isize {
    // An arithmetic shift keeps the sign; counts are within +-MAX_PERMITS.
    (word as isize) >> SHIFT
}

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

/// A counter word as [`State::load`] saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word(usize);

impl Word {
    pub(crate) fn is_closed(self) -> bool {
        self.0 & CLOSED != 0
    }

    pub(crate) fn is_queued(self) -> bool {
        self.0 & QUEUED != 0
    }

    pub(crate) fn is_aside(self) -> bool {
        self.0 & ASIDE != 0
    }

    /// Whether the count is negative: a sign test, no shift.
    pub(crate) fn in_debt(self) -> bool {
        (self.0 as isize) < 0
    }
}

impl State {
    const_fn_unless_loom! {
        pub(crate) fn new(permits: usize) -> Self {
            Self(AtomicUsize::new(permits << SHIFT))
        }
    }

    /// Free permits: the count if positive.
    pub(crate) fn free(&self) -> usize {
        count(self.0.load(Acquire)).max(0) as usize
    }

    /// Permits out beyond the limit: minus the count if negative.
    pub(crate) fn debt(&self) -> usize {
        count(self.0.load(Acquire)).min(0).unsigned_abs()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Acquire) & CLOSED != 0
    }

    /// Whether `QUEUED` is set. Meaningful under the queue lock, which is
    /// the only place it changes.
    pub(crate) fn is_queued(&self) -> bool {
        self.0.load(Relaxed) & QUEUED != 0
    }

    /// Whether `ASIDE` is set. Lock held.
    pub(crate) fn is_aside(&self) -> bool {
        self.0.load(Relaxed) & ASIDE != 0
    }

    /// The whole word in one load, for a locked round that tests several of
    /// its parts (only the count can change under it, by lock-free takes and
    /// gives, and never from non-negative to negative: only `owe` does that,
    /// with the lock held).
    pub(crate) fn load(&self) -> Word {
        Word(self.0.load(Acquire))
    }

    /// Takes `n` permits if they are free and nobody is queued: the fast path
    /// of every acquire, one compare-and-swap when uncontended.
    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> Take {
        self.take_if(n, QUEUED)
    }

    /// Takes `n` permits if they are free, queued waiters or not. Only for the
    /// holder of the queue lock who has seen that nobody is queued.
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
            // `n <= MAX_PERMITS` (the callers check), so the cast is exact.
            if cur & blocked_by != 0 || count(cur) < n as isize {
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
            let taken = (count(cur).max(0) as usize).min(n);
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

    /// Adds `n` to the count whether or not waiters are queued: for the
    /// holder of the queue lock (paying debt, permits left over after serving
    /// the head, a grown limit). One `fetch_add`.
    ///
    /// The caller guarantees the count stays within [`MAX_PERMITS`]: the
    /// permits came out of this semaphore, or the limit was checked.
    pub(crate) fn give(&self, n: usize) {
        self.0.fetch_add(n << SHIFT, AcqRel);
    }

    /// Pays up to `n` permits of the debt; returns how many it paid.
    pub(crate) fn pay_debt(&self, n: usize) -> usize {
        let mut cur = self.0.load(Relaxed);
        loop {
            let paid = count(cur).min(0).unsigned_abs().min(n);
            if paid == 0 {
                return 0;
            }
            match self.0.compare_exchange_weak(
                cur,
                cur.wrapping_add(paid << SHIFT),
                AcqRel,
                Relaxed,
            ) {
                Ok(_) => return paid,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Subtracts `n` from the count, free or not: a lowered limit, whose
    /// part beyond the free permits becomes debt. Lock held.
    pub(crate) fn owe(&self, n: usize) {
        self.0.fetch_sub(n << SHIFT, AcqRel);
    }

    /// Adds `n` to the count (paying debt first, by the arithmetic) if nobody
    /// is queued and returns `true`; if waiters are queued, changes nothing
    /// and returns `false`: the caller then hands the permits to the queue
    /// under the lock, so they never pass through the counter. One
    /// compare-and-swap when nobody waits.
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
                .compare_exchange_weak(cur, cur.wrapping_add(n << SHIFT), AcqRel, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Sets or clears `QUEUED` and `ASIDE` to what the queue holds, with one
    /// read-modify-write only if they change. Lock held.
    pub(crate) fn set_flags(&self, queued: bool, aside: bool) {
        let want = if queued { QUEUED } else { 0 } | if aside { ASIDE } else { 0 };
        let have = self.0.load(Relaxed) & (QUEUED | ASIDE);
        if want & !have != 0 {
            self.0.fetch_or(want & !have, AcqRel);
        }
        if have & !want != 0 {
            self.0.fetch_and(!(have & !want), AcqRel);
        }
    }

    /// Marks the semaphore closed; returns whether it already was.
    pub(crate) fn close(&self) -> bool {
        self.0.fetch_or(CLOSED, AcqRel) & CLOSED != 0
    }
}
