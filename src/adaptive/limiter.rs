//! [`Limiter`]: an algorithm driving a semaphore's limit, and its [`Permit`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use super::{Aimd, Algorithm, Decision, Outcome, Sample};
use crate::lock::Lock;
use crate::sync::{const_fn_unless_loom, AtomicUsize, Ordering};
use crate::{AcquireError, Semaphore, TryAcquireError};

/// A [`Semaphore`] whose limit an [`Algorithm`] sets from what finished
/// requests report: it starts low, grows while the server keeps up and
/// backs off when it pushes back.
///
/// Take a [`Permit`] with [`acquire`](Self::acquire) (or wrap a future with
/// [`run`](Self::run)), do the request, and say what its reply meant with
/// [`Permit::record`] (or, with `std`, `Permit::finish`, which measures
/// the time itself). A permit dropped without an outcome records nothing.
///
/// Each sample goes to the algorithm inside a short lock that only guards
/// the algorithm's state; the new limit is applied to the semaphore with
/// [`Semaphore::set_limit`] after that lock is released, so wakers (and the
/// tasks they may run) never run under it. A shrink is exact: requests in
/// flight finish, and no new one starts until fewer than the new limit are
/// in flight.
///
/// Without `std` or `alloc` it works the same: a `Limiter<Aimd>` can be a
/// `static`, and the caller measures durations with its own clock.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use permits::adaptive::{Aimd, Limiter, Outcome, Reason};
///
/// static LIMITER: Limiter = Limiter::new(Aimd::new().max_limit(50));
///
/// # futures::executor::block_on(async {
/// for _ in 0..3 {
///     let permit = LIMITER.acquire().await.unwrap();
///     // ... send, and time it with your clock (with `std`, `permit.finish`
///     // times it for you) ...
///     permit.record(Outcome::Success, Duration::from_millis(20));
/// }
/// // The limit of 1 was reached without trouble: it grew.
/// assert_eq!(LIMITER.limit(), 2);
///
/// let permit = LIMITER.acquire().await.unwrap();
/// // "421 too many connections": back-pressure.
/// permit.record(Outcome::Overload, Duration::from_millis(1));
/// assert_eq!(LIMITER.limit(), 1);
/// assert_eq!(LIMITER.last_decision().unwrap().reason, Reason::Overload);
/// # });
/// ```
pub struct Limiter<A = Aimd> {
    sem: Semaphore,
    state: Lock<State<A>>,
    /// The limit last decided. Only written under `state`'s lock, so stores
    /// come in decision order; applied to `sem` by whoever stored it (see
    /// [`Limiter::apply`]).
    target: AtomicUsize,
    /// Permits of this limiter out now.
    in_flight: AtomicUsize,
}

/// What the limiter's lock guards.
#[derive(Debug)]
struct State<A> {
    algorithm: A,
    last: Option<Decision>,
    decisions: u64,
}

impl Limiter<Aimd> {
    const_fn_unless_loom! {
        /// A limiter driven by `aimd`, starting at its initial limit. A
        /// `const fn`, so it can be a `static`.
        pub fn new(aimd: Aimd) -> Self {
            let limit = aimd.current_limit();
            Self {
                sem: Semaphore::new(limit),
                state: Lock::new(State {
                    algorithm: aimd,
                    last: None,
                    decisions: 0,
                }),
                target: AtomicUsize::new(limit),
                in_flight: AtomicUsize::new(0),
            }
        }
    }
}

impl Default for Limiter<Aimd> {
    fn default() -> Self {
        Self::new(Aimd::new())
    }
}

impl<A: Algorithm> Limiter<A> {
    /// A limiter driven by your own algorithm, starting at its
    /// [`limit`](Algorithm::limit).
    ///
    /// # Panics
    ///
    /// If that limit is 0 or above [`Semaphore::MAX_PERMITS`].
    pub fn with_algorithm(algorithm: A) -> Self {
        let limit = algorithm.limit();
        assert!(
            (1..=Semaphore::MAX_PERMITS).contains(&limit),
            "Limiter::with_algorithm: the initial limit must be in 1..=MAX_PERMITS"
        );
        Self {
            sem: Semaphore::new(limit),
            state: Lock::new(State {
                algorithm,
                last: None,
                decisions: 0,
            }),
            target: AtomicUsize::new(limit),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Waits for a permit (FIFO, as [`Semaphore::acquire`]).
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] once the semaphore is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`Semaphore::acquire`]: dropping the future loses no permit and
    /// records nothing.
    pub fn acquire(&self) -> Acquire<'_, A> {
        Acquire {
            inner: self.sem.acquire(),
            limiter: self,
        }
    }

    /// Takes a permit if one is free and nobody is queued.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> Result<Permit<'_, A>, TryAcquireError> {
        self.sem.try_acquire().map(|p| Permit::new(self, p))
    }

    /// Gives the algorithm a sample measured elsewhere, and applies the
    /// limit it decides. [`Permit::record`] calls this for you.
    ///
    /// # Panics
    ///
    /// If the algorithm decides a limit of 0 or above
    /// [`Semaphore::MAX_PERMITS`] (the limit is left as it was).
    pub fn record(&self, sample: Sample) {
        let decided = self.state.with(|s| {
            let d = s.algorithm.update(&sample)?;
            if d.limit == 0 || d.limit > Semaphore::MAX_PERMITS {
                return Some(Err(d));
            }
            s.last = Some(d);
            s.decisions += 1;
            let changed = self.target.load(Ordering::Relaxed) != d.limit;
            if changed {
                store(&self.target, d.limit);
            }
            Some(Ok(changed))
        });
        match decided {
            Some(Ok(true)) => self.apply(),
            Some(Err(d)) => panic!(
                "adaptive::Limiter: the algorithm decided a limit of {} (must be in 1..=MAX_PERMITS)",
                d.limit
            ),
            _ => {}
        }
    }

    /// Applies `target` to the semaphore, outside the algorithm's lock.
    ///
    /// Two recorders may decide in one order and apply in the other. Each
    /// one re-reads `target` after applying and applies again if it moved:
    /// whoever applies last has seen the last decision (its store happens
    /// before the semaphore's update by its own recorder, which is ordered
    /// before the later updates by the semaphore's own synchronisation), so
    /// the semaphore ends at the last decided limit.
    fn apply(&self) {
        loop {
            let target = self.target.load(Ordering::Acquire);
            self.sem.set_limit(target);
            if self.target.load(Ordering::Acquire) == target {
                return;
            }
        }
    }
}

/// `target.store(value)`, written as a compare-and-swap loop because the
/// counter of cores without compare-and-swap (emulated in critical sections,
/// `src/sync.rs`) has no `store`. Only the holder of the limiter's lock
/// writes `target`, so the loop ends at its first or second try.
fn store(target: &AtomicUsize, value: usize) {
    let mut current = target.load(Ordering::Relaxed);
    while let Err(now) =
        target.compare_exchange_weak(current, value, Ordering::Release, Ordering::Relaxed)
    {
        current = now;
    }
}

impl<A> Limiter<A> {
    /// The semaphore whose limit this drives: for [`run_all`](Semaphore::run_all)
    /// and friends, or to [`close`](Semaphore::close) it. Permits taken from
    /// it directly are not counted in [`in_flight`](Self::in_flight) and
    /// report nothing.
    pub fn semaphore(&self) -> &Semaphore {
        &self.sem
    }

    /// The limit last decided (the one the semaphore is set to).
    pub fn limit(&self) -> usize {
        self.target.load(Ordering::Acquire)
    }

    /// This limiter's permits out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The algorithm's last decision and why, `None` before the first.
    pub fn last_decision(&self) -> Option<Decision> {
        self.state.with(|s| s.last)
    }

    /// How many decisions the algorithm made so far (for [`Aimd`]: windows
    /// closed).
    pub fn decisions(&self) -> u64 {
        self.state.with(|s| s.decisions)
    }
}

impl<A> fmt::Debug for Limiter<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("last_decision", &self.last_decision())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`Limiter::acquire`].
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct Acquire<'a, A> {
        #[pin]
        inner: crate::Acquire<'a>,
        limiter: &'a Limiter<A>,
    }
}

impl<'a, A> Future for Acquire<'a, A> {
    type Output = Result<Permit<'a, A>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let limiter = *this.limiter;
        this.inner.poll(cx).map_ok(|p| Permit::new(limiter, p))
    }
}

impl<A> fmt::Debug for Acquire<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").finish_non_exhaustive()
    }
}

/// A permit of a [`Limiter`]: say what the request's reply meant with
/// [`record`](Self::record) (or, with `std`, `finish`); dropping it
/// without that gives the permit back and records nothing.
#[must_use = "dropping a Permit gives it back and records nothing"]
pub struct Permit<'a, A = Aimd> {
    permit: crate::Permit<'a>,
    limiter: &'a Limiter<A>,
    in_flight: usize,
    #[cfg(feature = "std")]
    started: std::time::Instant,
}

impl<'a, A> Permit<'a, A> {
    pub(crate) fn new(limiter: &'a Limiter<A>, permit: crate::Permit<'a>) -> Self {
        let in_flight = limiter.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        Self {
            permit,
            limiter,
            in_flight,
            #[cfg(feature = "std")]
            started: std::time::Instant::now(),
        }
    }

    /// How many of the limiter's permits were out when this one was taken,
    /// itself included.
    pub fn in_flight_at_start(&self) -> usize {
        self.in_flight
    }

    /// The semaphore's permit inside.
    pub fn permit(&self) -> &crate::Permit<'a> {
        &self.permit
    }
}

impl<A: Algorithm> Permit<'_, A> {
    /// Records the request's outcome and how long it took (by the caller's
    /// clock), then gives the permit back. The sample's `in_flight` is the
    /// larger of the count at the start and now. The sample is taken in before
    /// the permit returns, so a shrink it causes counts this permit as out.
    pub fn record(self, outcome: Outcome, rtt: Duration) {
        // The load while it ran: at its start or now (itself still counted),
        // whichever was more. A request refused late was refused under the
        // load that built up after it started.
        let in_flight = self.in_flight.max(self.limiter.in_flight());
        self.limiter.record(Sample::new(rtt, in_flight, outcome));
    }

    /// [`record`](Self::record)s the outcome with the time since the permit
    /// was granted, measured with `std::time::Instant`.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn finish(self, outcome: Outcome) {
        let rtt = self.started.elapsed();
        self.record(outcome, rtt);
    }
}

impl<A> Drop for Permit<'_, A> {
    fn drop(&mut self) {
        // The semaphore's permit (a field) goes back right after this.
        self.limiter.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A> fmt::Debug for Permit<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("in_flight_at_start", &self.in_flight)
            .finish_non_exhaustive()
    }
}
