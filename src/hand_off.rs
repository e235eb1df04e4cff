//! Handing permits over: what happens to permits that come back or are
//! created (debt first, then the queue in order, then the counter), and the
//! flags that tell the lock-free paths whether they may skip the lock.
//!
//! Every function here runs with the queue lock held, except `release`,
//! `hand_over` and `serve`, which take it and wake the served waiters after
//! unlocking.

use crate::list::{NodeData, WaitList};
use crate::wake_batch::{WakeBatch, WakeOne, Wakers};
use crate::Semaphore;

/// What the queue lock guards.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) list: WaitList,
    /// [`Semaphore::limit`]: the one number every operation is defined
    /// against. The counter holds `limit - out` (negative: debt), so the two
    /// cannot drift apart.
    pub(crate) limit: usize,
}

impl Queue {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            list: WaitList::new(),
            limit,
        }
    }
}

impl Semaphore {
    /// Gives `n` permits back: one compare-and-swap if nobody is queued (it
    /// pays the debt, if any, by the same arithmetic); otherwise the lock,
    /// and the permits go to the debt and then straight to the queue.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        if n > 0 && !self.state.give_unless_queued(n) {
            self.hand_over(n);
        }
    }

    /// The locked part of a release that found waiters queued.
    #[inline(never)]
    fn hand_over(&self, n: usize) {
        // One permit serves one waiter at most: no batch to set up and drain.
        if n == 1 {
            self.hand_over_into(n, WakeOne::default());
        } else {
            self.hand_over_into(n, WakeBatch::default());
        }
    }

    fn hand_over_into(&self, n: usize, mut wakers: impl Wakers) {
        let more = self
            .queue
            .with(|q| self.distribute_locked(q, n, &mut wakers));
        self.wake_then_serve(wakers, more);
    }

    /// Wakes the waiters a locked round served; if the round stopped on a
    /// full batch (`more`), serves the rest, also if a wake panics.
    pub(crate) fn wake_then_serve(&self, mut batch: impl Wakers, more: bool) {
        let guard = more.then(|| FinishOnUnwind(self, Self::serve));
        batch.wake_all();
        if let Some(guard) = guard {
            guard.disarm();
            self.serve();
        }
    }

    /// Hands free permits to the queue, in rounds of one wake batch, waking
    /// the served waiters after unlocking: what a round that filled its batch
    /// left in the counter.
    pub(crate) fn serve(&self) {
        let guard = FinishOnUnwind(self, Self::serve);
        let mut batch = WakeBatch::default();
        while self.queue.with(|q| {
            let hand = if self.state.is_queued() {
                self.state.take_all()
            } else {
                0
            };
            self.distribute_locked(q, hand, &mut batch)
        }) {
            batch.wake_all();
        }
        batch.wake_all();
        guard.disarm();
    }

    /// Disposes of `hand` permits that came back or were created: while a
    /// waiter that fits the limit is queued, they pay the debt first and then
    /// serve the first such waiters in order (collected in `batch`, to wake
    /// after unlocking); the rest goes to the counter, where by the signed
    /// arithmetic it pays what debt is left and becomes available.
    ///
    /// Returns `true` if it stopped because `batch` is full: no permit stays
    /// in hand across a wake (which may panic), so the rest waits in the
    /// counter, flagged `QUEUED`, for [`serve`](Self::serve) to hand on.
    #[inline]
    pub(crate) fn distribute_locked(
        &self,
        q: &mut Queue,
        mut hand: usize,
        batch: &mut impl Wakers,
    ) -> bool {
        let mut more = false;
        while hand > 0 {
            // One load per round for every flag and the debt's sign.
            let word = self.state.load();
            // Closed: `close` is emptying the queue and fails every waiter.
            if !word.is_queued() || word.is_closed() {
                break;
            }
            if word.in_debt() {
                hand -= self.state.pay_debt(hand);
                continue;
            }
            if batch.is_full() {
                more = true;
                break;
            }
            let limit = q.limit;
            let fill = |head: &mut NodeData| {
                let give = hand.min(head.needed - head.assigned);
                head.assigned += give;
                hand -= give;
                let served = head.assigned == head.needed;
                (served, (served, head.waker.take_if(|_| served)))
            };
            // Nobody waits aside, so everyone fits: the head is the first
            // that does, found with no search.
            let served = if word.is_aside() {
                q.list.update_first(|d| d.needed <= limit, fill)
            } else {
                q.list.update_head(fill)
            };
            match served {
                Some((true, waker)) => {
                    batch.push(waker);
                    // A waiter that fits left: `limit` stands for its size.
                    self.left_queue(q, limit);
                }
                // Everything in hand went to the head, which waits for more.
                Some((false, _)) => {}
                // `QUEUED` promises a waiter that fits; keep the permits safe
                // in the counter should that ever be wrong.
                None => {
                    debug_assert!(false, "QUEUED set, but no waiter fits the limit");
                    break;
                }
            }
        }
        if hand > 0 {
            self.state.give(hand);
        }
        more
    }

    /// Sets `QUEUED` and `ASIDE` to what the queue holds after a waiter that
    /// asked for `needed` permits left it. O(1) unless a request waits aside;
    /// then a walk that stops at the first waiter of the kind that left.
    pub(crate) fn left_queue(&self, q: &Queue, needed: usize) {
        let limit = q.limit;
        if q.list.is_empty() {
            self.state.set_flags(false, false);
        } else if !self.state.is_aside() {
            // Nobody waits aside, so everyone left fits: `QUEUED` stays.
        } else if needed <= limit {
            // Who waits aside did not change; does anyone still fit?
            self.state
                .set_flags(q.list.any(|d| d.needed <= limit), true);
        } else {
            let queued = self.state.is_queued();
            self.state
                .set_flags(queued, q.list.any(|d| d.needed > limit));
        }
    }

    /// After the limit changed: requests that no longer fit go aside, those
    /// that fit again take their place back, and permits handed to any
    /// waiter but the first that fits come back (returned, for the caller to
    /// distribute): a request set aside gives back what it had, and one that
    /// a returning request now stands ahead of gives back what it had.
    pub(crate) fn regroup_locked(&self, q: &mut Queue) -> usize {
        let limit = q.limit;
        let (mut queued, mut aside, mut back) = (false, false, 0);
        q.list.for_each(|d| {
            let fits = d.needed <= limit;
            if fits && !queued {
                // The new head keeps what it has been handed.
                queued = true;
            } else {
                back += core::mem::take(&mut d.assigned);
            }
            aside |= !fits;
        });
        self.state.set_flags(queued, aside);
        back
    }
}

/// Runs a job that wakes in rounds (`serve`, `close`) again if it is dropped
/// armed, that is, while unwinding from a panicking `wake`: otherwise the
/// waiters of the rounds still to come would be stranded, with permits free
/// and the queue flagged busy. A second panic during that unwind aborts, as
/// any panic in a destructor during unwinding does.
pub(crate) struct FinishOnUnwind<'a>(pub(crate) &'a Semaphore, pub(crate) fn(&Semaphore));

impl FinishOnUnwind<'_> {
    pub(crate) fn disarm(self) {
        core::mem::forget(self);
    }
}

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        (self.1)(self.0);
    }
}
