//! [`Semaphore`]: the counter, the queue, and the operations on both.

use core::fmt;
use core::future::IntoFuture;

use crate::list::WaitList;
use crate::lock::Lock;
use crate::state::{State, Take, MAX_PERMITS};
use crate::sync::const_fn_unless_loom;
use crate::wake_batch::WakeBatch;
use crate::{Acquire, Permit, Run, TryAcquireError};

/// An async semaphore: a count of permits that tasks acquire before they
/// proceed and give back when they are done.
///
/// It caps how much work runs at once: [`run`](Self::run) holds a permit
/// exactly while a future runs; [`acquire`](Self::acquire) hands out a
/// [`Permit`] that gives its permits back when dropped. It needs no runtime:
/// the futures work under any executor, and a `static` semaphore needs no
/// allocation at all.
///
/// # Fairness
///
/// Acquires that have to wait are queued first-in, first-out, and permits that
/// come back go to the head of the queue before anyone else: a queued
/// `acquire_many(n)` at the head is filled gradually and holds back smaller,
/// later requests until it has all `n` (so large requests cannot starve), and
/// [`try_acquire`](Self::try_acquire) fails while anyone is queued (no barging,
/// async-lock#23).
///
/// The flip side of handing permits over is that a queued acquire that is
/// never polled again keeps the permits it was handed. If one task polls two
/// acquires (say in `select!`) and stops polling the one at the head, every
/// acquire behind it waits until that future is dropped (tokio#6450). Drop
/// acquires you no longer need; dropping one gives back whatever it was
/// handed and wakes the next waiter.
///
/// # Memory ordering
///
/// Giving permits back (dropping a [`Permit`], [`add_permits`](Self::add_permits))
/// *happens-before* the acquire that receives those permits completes: what a
/// task wrote while it held a permit is visible to the task that gets that
/// permit next.
///
/// # Examples
///
/// At most two "sends" run at once; the rest wait their turn:
///
/// ```
/// use permits::Semaphore;
///
/// static SEM: Semaphore = Semaphore::new(2);
///
/// async fn send(id: u32) -> u32 {
///     id * 10
/// }
///
/// # futures::executor::block_on(async {
/// let sends = (0..6).map(|id| SEM.run(send(id)));
/// let results = futures::future::join_all(sends).await;
/// assert_eq!(results[5], Ok(50));
/// assert_eq!(SEM.available_permits(), 2);
/// # });
/// ```
pub struct Semaphore {
    pub(crate) state: State,
    pub(crate) queue: Lock<Queue>,
}

/// What the queue lock guards.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) list: WaitList,
    /// Permits in existence: free, held, or handed to waiters. Kept so
    /// `add_permits` can refuse an overflow before it changes anything.
    total: usize,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Semaphore {
    /// The most permits a semaphore can hold: `usize::MAX / 4`, at least
    /// `u32::MAX` on 64-bit targets and `u16::MAX` on 32-bit ones.
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    const_fn_unless_loom! {
        /// Creates a semaphore with `permits` permits. A `const fn`, so a
        /// semaphore can be a `static` (not `const` in loom builds only).
        ///
        /// # Panics
        ///
        /// If `permits > Semaphore::MAX_PERMITS` (at compile time in a `static`).
        pub fn new(permits: usize) -> Self {
            assert!(
                permits <= MAX_PERMITS,
                "Semaphore::new: more than MAX_PERMITS permits"
            );
            Self {
                state: State::new(permits),
                queue: Lock::new(Queue {
                    list: WaitList::new(),
                    total: permits,
                }),
            }
        }
    }

    /// The permits free right now: neither held nor handed to a waiter.
    pub fn available_permits(&self) -> usize {
        self.state.free()
    }

    /// How many acquires are queued right now. Takes the queue lock and walks
    /// the queue: meant for diagnostics, not for hot paths.
    pub fn waiters(&self) -> usize {
        self.queue.with(|q| q.list.len())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Waits for one permit. See [`acquire_many`](Self::acquire_many).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future at any point loses no permit. If it
    /// had been queued, it leaves the queue; permits already handed to it go
    /// back, to the next waiter first, which is woken.
    #[inline]
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits until `n` permits can be handed over, queued behind earlier
    /// acquires (first-in, first-out), and returns them as a [`Permit`].
    ///
    /// Resolves to `Err(AcquireError::Closed)` if the semaphore is or gets
    /// closed first, and at once to `Err(AcquireError::TooMany)` if
    /// `n > MAX_PERMITS`. `acquire_many(0)` resolves at once to an empty
    /// permit (or `Closed`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future at any point loses no permit. If it
    /// had been queued, it leaves the queue; permits already handed to it go
    /// back, to the next waiter first, which is woken.
    ///
    /// [`AcquireError::Closed`]: crate::AcquireError::Closed
    #[inline]
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire::new(self, n)
    }

    /// Takes one permit if one is free and nobody is queued.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if closed, [`TryAcquireError::NoPermits`]
    /// if no permit is free or acquires are queued.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued. One atomic
    /// compare-and-swap when it succeeds uncontended; never takes the lock.
    /// `try_acquire_many(0)` gives an empty permit at once (unless closed),
    /// queued acquires or not.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if closed, [`TryAcquireError::NoPermits`]
    /// if fewer than `n` are free or acquires are queued,
    /// [`TryAcquireError::TooMany`] if `n > MAX_PERMITS`.
    #[inline]
    pub fn try_acquire_many(&self, n: usize) -> Result<Permit<'_>, TryAcquireError> {
        self.try_take(n).map(|()| Permit::new(self, n))
    }

    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        if n > MAX_PERMITS {
            return Err(TryAcquireError::TooMany);
        }
        match self.state.try_take(n) {
            Take::Taken => Ok(()),
            Take::Closed => Err(TryAcquireError::Closed),
            Take::Busy => Err(TryAcquireError::NoPermits),
        }
    }

    /// Adds `n` permits, handing them to queued acquires first.
    ///
    /// # Panics
    ///
    /// If the permits in existence (free, held and handed to waiters) would
    /// exceed [`MAX_PERMITS`](Self::MAX_PERMITS). Nothing is changed then.
    pub fn add_permits(&self, n: usize) {
        let fits = self.queue.with(|q| match q.total.checked_add(n) {
            Some(total) if total <= MAX_PERMITS => {
                q.total = total;
                true
            }
            _ => false,
        });
        assert!(
            fits,
            "Semaphore::add_permits: more than MAX_PERMITS permits"
        );
        self.release(n);
    }

    /// Takes up to `n` free permits out of the semaphore for good and returns
    /// how many it took. Permits that are held or handed to waiters are not
    /// touched. A closed semaphore stays closed.
    pub fn forget_permits(&self, n: usize) -> usize {
        self.queue.with(|q| {
            let taken = self.state.take_up_to(n);
            q.total -= taken;
            taken
        })
    }

    /// Closes the semaphore: queued and later acquires resolve to
    /// `Err(Closed)`, `try_*` to `Err(Closed)`. Permits already held stay
    /// valid, and dropping them later is fine.
    pub fn close(&self) {
        // No early return when already closed: a `close` cut short by a
        // panicking waker is finished by the next call (and by the guard).
        self.state.close();
        let guard = FinishOnUnwind(self, Self::close);
        let mut batch = WakeBatch::default();
        loop {
            let more = self.queue.with(|q| {
                let mut returned = 0;
                while !batch.is_full() {
                    let popped = q.list.pop_front(|node| {
                        returned += core::mem::take(&mut node.assigned);
                        node.mark_closed();
                        node.waker.take()
                    });
                    match popped {
                        Some(waker) => batch.push(waker),
                        None => break,
                    }
                }
                if q.list.is_empty() {
                    self.state.clear_queued();
                }
                // Permits handed to waiters that now fail go back to the pool,
                // for the holders of permits still to come back to find.
                if returned > 0 {
                    self.state.give(returned);
                }
                !q.list.is_empty()
            });
            batch.wake_all();
            if !more {
                break;
            }
        }
        guard.disarm();
    }

    /// Runs `f` once a permit is held, and gives the permit back when `f`
    /// completes. See [`run_many`](Self::run_many).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back the permit (or leaves the queue, as
    /// [`acquire`](Self::acquire) does) and drops `f`.
    pub fn run<F: IntoFuture>(&self, f: F) -> Run<'_, F::IntoFuture> {
        self.run_many(1, f)
    }

    /// Runs `f` once `n` permits are held, and gives them back when `f`
    /// completes, when the returned future is dropped, or while unwinding
    /// from a panic in `f`.
    ///
    /// `f` is not polled before the permits are held. Resolves to
    /// `Ok(output)`, or to the [`AcquireError`](crate::AcquireError) that kept
    /// the permits from being acquired (then `f` never ran).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future gives back the permits (or leaves the queue, as
    /// [`acquire_many`](Self::acquire_many) does) and drops `f`.
    pub fn run_many<F: IntoFuture>(&self, n: usize, f: F) -> Run<'_, F::IntoFuture> {
        Run::new(self, n, f.into_future())
    }

    /// Gives `n` permits back: one compare-and-swap if nobody is queued;
    /// otherwise the lock, and the permits go straight to the queue.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        if n > 0 && !self.state.give_unless_queued(n) {
            self.hand_over(n);
        }
    }

    /// Hands `n` released permits to the head of the queue, in order, and
    /// wakes each waiter that got all it asked for, after unlocking. What
    /// nobody waits for goes to the counter.
    ///
    /// The counter holds no free permits while waiters are queued (every
    /// serve drains it into the head), so only the `n` in hand can serve.
    #[inline(never)]
    fn hand_over(&self, n: usize) {
        let mut left = n;
        let mut batch = WakeBatch::default();
        let more = self.queue.with(|q| loop {
            if q.list.is_empty() {
                // The queue emptied since `release` saw `QUEUED`, or the
                // last waiter was just served.
                self.state.clear_queued();
                if left > 0 {
                    self.state.give(core::mem::take(&mut left));
                }
                return false;
            }
            if left == 0 {
                return false;
            }
            if self.state.is_closed() || batch.is_full() {
                // Closed: `close` is emptying the queue and fails every
                // waiter. Full: no permit stays in hand across a wake (which
                // may panic); the counter keeps them and `serve` hands them
                // on in the rounds to come (and on unwind).
                self.state.give(core::mem::take(&mut left));
                return batch.is_full();
            }
            let served = q.list.with_head(|head| {
                let give = left.min(head.needed - head.assigned);
                head.assigned += give;
                left -= give;
                head.assigned == head.needed
            });
            if served == Some(true) {
                batch.push(q.list.pop_front(|head| head.waker.take()).flatten());
            }
        });
        if more {
            let guard = FinishOnUnwind(self, Self::serve);
            batch.wake_all();
            guard.disarm();
            self.serve();
        } else {
            batch.wake_all();
        }
    }

    /// Hands free permits to the head of the queue, in order, and wakes each
    /// waiter that got all it asked for, after unlocking.
    pub(crate) fn serve(&self) {
        let guard = FinishOnUnwind(self, Self::serve);
        let mut batch = WakeBatch::default();
        while self.queue.with(|q| self.serve_locked(q, &mut batch)) {
            batch.wake_all();
        }
        batch.wake_all();
        guard.disarm();
    }

    /// The locked part of [`serve`](Self::serve); returns `true` if it stopped
    /// because the batch is full.
    pub(crate) fn serve_locked(&self, q: &mut Queue, batch: &mut WakeBatch) -> bool {
        loop {
            if q.list.is_empty() {
                self.state.clear_queued();
                return false;
            }
            // `close` is emptying the queue; it gives each waiter `Closed`.
            if self.state.is_closed() {
                return false;
            }
            if batch.is_full() {
                return true;
            }
            let free = self.state.take_all();
            if free == 0 {
                return false;
            }
            let handed = q.list.with_head(|head| {
                let give = free.min(head.needed - head.assigned);
                head.assigned += give;
                (head.assigned == head.needed, free - give)
            });
            // The queue is not empty (checked above), so the head took them.
            let (served, leftover) = handed.unwrap_or((false, 0));
            if !served {
                // Everything went to the head, which still waits for more.
                return false;
            }
            batch.push(q.list.pop_front(|head| head.waker.take()).flatten());
            if leftover > 0 {
                self.state.give(leftover);
            }
        }
    }

    /// Permits in existence: free, held, or handed to waiters. Takes the lock.
    #[cfg(feature = "alloc")]
    pub(crate) fn total_permits(&self) -> usize {
        self.queue.with(|q| q.total)
    }

    /// Lowers the count of permits in existence after a permit was forgotten.
    pub(crate) fn forget_held(&self, n: usize) {
        if n > 0 {
            self.queue.with(|q| q.total -= n);
        }
    }
}

/// Runs a job that wakes in rounds (`serve`, `close`) again if it is dropped
/// armed, that is, while unwinding from a panicking `wake`: otherwise the
/// waiters of the rounds still to come would be stranded, with permits free
/// and the queue flagged busy. A second panic during that unwind aborts, as
/// any panic in a destructor during unwinding does.
struct FinishOnUnwind<'a>(&'a Semaphore, fn(&Semaphore));

impl FinishOnUnwind<'_> {
    fn disarm(self) {
        core::mem::forget(self);
    }
}

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        (self.1)(self.0);
    }
}
