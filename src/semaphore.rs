//! [`Semaphore`]: the counter, the queue, and the operations on both.

use core::fmt;
use core::future::IntoFuture;

use crate::hand_off::{FinishOnUnwind, Queue};
use crate::lock::Lock;
use crate::state::{State, Take, MAX_PERMITS};
use crate::sync::const_fn_unless_loom;
use crate::wake_batch::{WakeBatch, Wakers};
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
/// A request for more than [`limit`](Self::limit) could never be served, so
/// it does not wedge the queue (zio#11187): it waits aside, holding nothing
/// and holding nobody back, until the limit reaches its size; then it is back
/// at its original place in the queue. While the requests queued all wait
/// aside, `try_acquire_many(n)` succeeds exactly when `acquire_many(n)` would
/// be served at once.
///
/// # Dynamic limits
///
/// The limit can change while permits are out:
/// [`set_limit`](Self::set_limit), [`add_permits`](Self::add_permits),
/// [`reduce_permits`](Self::reduce_permits),
/// [`forget_permits`](Self::forget_permits). A shrink is exact: running work
/// is never revoked; what is out beyond the new limit is
/// [`debt`](Self::debt), and the permits that come back pay it off before
/// anyone is served. At every moment no operation is in progress,
/// `available_permits() + out == limit() + debt()` (*out*: permits held, and
/// handed to queued acquires not yet polled). The counter word holds
/// `limit - out` as a signed number, so the debt costs nothing while it is 0:
/// an uncontended acquire or release stays one compare-and-swap, and a release
/// that pays debt with nobody queued is one too.
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

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Semaphore {
    /// The most permits a semaphore can hold (and the highest limit):
    /// `usize::MAX / 16`, far above `u32::MAX` on 64-bit targets and above
    /// `u16::MAX` on 32-bit ones. The counter is signed so that a debt as
    /// large as the limit fits in it too.
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
                queue: Lock::new(Queue::new(permits)),
            }
        }
    }

    /// The permits free right now: neither held nor handed to a waiter. 0
    /// while there is [`debt`](Self::debt).
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
    /// back as released permits do (to the debt, then to the next waiter,
    /// who is woken). So a deadline is any timer's timeout around it (see
    /// the crate docs, "Deadlines and timeouts").
    #[inline]
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits until `n` permits can be handed over, queued behind earlier
    /// acquires (first-in, first-out), and returns them as a [`Permit`].
    /// While `n > limit()` it waits aside without holding back the queue (see
    /// [Fairness](Self#fairness)).
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
    /// back as released permits do (to the debt, then to the next waiter,
    /// who is woken). So a deadline is any timer's timeout around it (see
    /// the crate docs, "Deadlines and timeouts").
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
    /// [`TryAcquireError::Closed`] if closed (even with debt),
    /// [`TryAcquireError::NoPermits`] if no permit is free (there is debt, or
    /// all are out) or acquires are queued.
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
    /// [`TryAcquireError::Closed`] if closed (even with debt),
    /// [`TryAcquireError::NoPermits`] if fewer than `n` are free (there is
    /// debt, or `n > limit()`) or acquires that fit the limit are queued,
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

    /// Closes the semaphore: queued and later acquires resolve to
    /// `Err(Closed)`, `try_*` to `Err(Closed)`. Permits already held stay
    /// valid, and dropping them later is fine. What queued acquires had been
    /// handed comes back as released permits do. Limit changes afterwards
    /// update the numbers but never reopen it.
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
                // Until the queue is empty the flags may stay as they are:
                // whoever they send to the lock finds the semaphore closed.
                if q.list.is_empty() {
                    self.state.set_flags(false, false);
                }
                // Permits handed to waiters that now fail come back as any
                // release does: they pay the debt (by the counter's signed
                // arithmetic), the rest is available.
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
}
