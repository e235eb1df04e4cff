//! Dynamic limits: [`Semaphore::limit`], [`Semaphore::set_limit`] and the
//! operations defined through it. One locked routine, `reconfigure`, does
//! them all: change the limit (and the counter, whose negative part is the
//! debt), regroup the queue around the new limit, hand out what is free.

use crate::hand_off::Queue;
use crate::state::MAX_PERMITS;
use crate::wake_batch::WakeBatch;
use crate::Semaphore;

impl Semaphore {
    /// The most permits handed out at once once [`debt`](Self::debt) is 0:
    /// what [`new`](Self::new) started with, as changed since by
    /// [`set_limit`](Self::set_limit) and friends. Takes the queue lock.
    pub fn limit(&self) -> usize {
        self.queue.with(|q| q.limit)
    }

    /// Permits out beyond [`limit`](Self::limit) after a shrink: the
    /// permits that come back pay it off before anyone is served. While it is
    /// above 0, no permit is available and `try_acquire` fails. Lock-free.
    pub fn debt(&self) -> usize {
        self.state.debt()
    }

    /// Sets the limit to `n`, with running work untouched.
    ///
    /// Growing hands the new permits to queued acquires first (in order),
    /// then makes them available. Shrinking takes available permits first;
    /// what is still out beyond `n` becomes [`debt`](Self::debt), paid by the
    /// permits that come back before anyone new is served. So a shrink is
    /// exact: no held permit is revoked, and no new work starts until the work
    /// in flight is under `n`. Afterwards `limit() == n` and `debt()` is the
    /// number of permits out beyond `n`.
    ///
    /// Queued `acquire_many(k)` with `k > n` wait aside, without holding
    /// back smaller requests behind them, until the limit reaches `k` again;
    /// then they are back in their original place. A closed semaphore stays
    /// closed.
    ///
    /// ```
    /// use permits::Semaphore;
    ///
    /// let sem = Semaphore::new(8);
    /// let running: Vec<_> = (0..8).map(|_| sem.try_acquire().unwrap()).collect();
    /// sem.set_limit(3); // eight keep running; five of them are now debt
    /// assert_eq!((sem.limit(), sem.debt()), (3, 5));
    /// drop(running); // the first five returns pay the debt, three are free
    /// assert_eq!((sem.debt(), sem.available_permits()), (0, 3));
    /// ```
    ///
    /// # Panics
    ///
    /// If `n > Semaphore::MAX_PERMITS`. Nothing is changed then.
    pub fn set_limit(&self, n: usize) {
        assert!(
            n <= MAX_PERMITS,
            "Semaphore::set_limit: more than MAX_PERMITS permits"
        );
        self.reconfigure(|sem, q| {
            let old = core::mem::replace(&mut q.limit, n);
            if n >= old {
                ((), n - old)
            } else {
                sem.state.owe(old - n);
                ((), 0)
            }
        });
    }

    /// Lowers the limit by `n` (by all of it if `n > limit()`), exactly as
    /// [`set_limit`](Self::set_limit) does, in one atomic step; returns by how
    /// much it lowered it.
    pub fn reduce_permits(&self, n: usize) -> usize {
        self.reconfigure(|sem, q| {
            let cut = n.min(q.limit);
            q.limit -= cut;
            sem.state.owe(cut);
            (cut, 0)
        })
    }

    /// Raises the limit by `n`, as `set_limit(limit() + n)` in one atomic
    /// step: the new permits cancel debt first, then go to queued acquires
    /// (in order), then become available.
    ///
    /// # Panics
    ///
    /// If the limit would exceed [`MAX_PERMITS`](Self::MAX_PERMITS). Nothing
    /// is changed then.
    pub fn add_permits(&self, n: usize) {
        let fits = self.reconfigure(|_, q| match q.limit.checked_add(n) {
            Some(limit) if limit <= MAX_PERMITS => {
                q.limit = limit;
                (true, n)
            }
            _ => (false, 0),
        });
        assert!(
            fits,
            "Semaphore::add_permits: more than MAX_PERMITS permits"
        );
    }

    /// Takes up to `n` *available* permits out of the semaphore for good,
    /// lowering the limit by as many, and returns how many it took. Permits
    /// that are held or handed to waiters are not touched (to shrink by those
    /// too, use [`reduce_permits`](Self::reduce_permits)). A closed semaphore
    /// stays closed.
    pub fn forget_permits(&self, n: usize) -> usize {
        self.reconfigure(|sem, q| {
            let taken = sem.state.take_up_to(n);
            q.limit -= taken;
            (taken, 0)
        })
    }

    /// `Permit::forget` of `n` permits: they leave for good, paying the debt
    /// first; what is left of `n` lowers the limit.
    pub(crate) fn forget_held(&self, n: usize) {
        if n > 0 {
            self.reconfigure(|sem, q| {
                let paid = sem.state.pay_debt(n);
                q.limit -= n - paid;
                ((), 0)
            });
        }
    }

    /// The limit now, for sizing buffers (the backlog's `in_order` window).
    #[cfg(feature = "alloc")]
    pub(crate) fn total_permits(&self) -> usize {
        self.limit()
    }

    /// Runs `change` under the queue lock (it updates the limit and the
    /// counter consistently and returns its result and the new permits it
    /// created), regroups the queue if the limit moved, and hands out what is
    /// free; wakes the served waiters after unlocking.
    fn reconfigure<R>(&self, change: impl FnOnce(&Self, &mut Queue) -> (R, usize)) -> R {
        let mut batch = WakeBatch::default();
        let (result, more) = self.queue.with(|q| {
            let old = q.limit;
            let (result, mut hand) = change(self, q);
            // Growing cannot change who fits unless someone waits aside.
            let regroup = q.limit < old || (q.limit > old && self.state.is_aside());
            if regroup && !q.list.is_empty() {
                hand += self.regroup_locked(q);
            }
            // A waiter may fit now: free permits go to it, not to the counter.
            if self.state.is_queued() {
                hand += self.state.take_all();
            }
            (result, self.distribute_locked(q, hand, &mut batch))
        });
        self.wake_then_serve(batch, more);
        result
    }
}
