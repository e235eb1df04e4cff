//! [`LimiterGate`]: a limiter as the [`Gate`] of a backlog stream, so
//! [`Limiter::run_all`] records each item's outcome.

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::{Algorithm, Feedback, Limiter, Permit};
use crate::{AcquireError, Gate, IterStream, RunWithFixed, SemaphoreGate};

pin_project! {
    /// The [`Gate`] of [`Limiter::run_all`] and [`Limiter::run_stream`]: one
    /// permit of the limiter per item, acquired before the item is pulled
    /// (as [`SemaphoreGate`] does, turns and all), and the item's output
    /// reported through `classify` when it finishes, before the stream
    /// yields it. Make one with [`Limiter::gate`], for
    /// [`RunWith`](crate::RunWith) or a gate of your own that wraps it.
    ///
    /// # Classifying an output
    ///
    /// `classify` is `FnMut(&Output) -> R` where `R` is any [`Feedback`]:
    ///
    /// - `(Outcome, Duration)`: the outcome and how long the item took by
    ///   your clock. The gate cannot see when an item's work starts and
    ///   ends, so without `std` let the item time itself and return the
    ///   duration with its output: `f` returns `(reply, took)` and
    ///   `classify` is `|(reply, took)| (outcome_of(reply), *took)`;
    /// - `Outcome` (with `std`): timed with `std::time::Instant` from the
    ///   item's admission to its settling (the first poll of the stream
    ///   after its future finished, so a consumer that is slow to poll
    ///   makes items look slower);
    /// - `Option<_>` of either: `None` records nothing.
    ///
    /// `Outcome::Ignore` is passed to the algorithm ([`Aimd`](super::Aimd)
    /// skips it); `None` does not reach the algorithm at all.
    ///
    /// # Cancel safety
    ///
    /// An item that does not finish records nothing: if the stream is
    /// dropped with it in flight, its future is dropped, then its permit,
    /// which goes back to the semaphore (paying any debt a shrink left), and
    /// no sample is taken. The same if its future panics. So only outputs
    /// the stream produced are ever sampled.
    #[must_use = "a gate does nothing until a stream runs over it"]
    pub struct LimiterGate<'a, A, C> {
        #[pin]
        inner: SemaphoreGate<'a>,
        limiter: &'a Limiter<A>,
        classify: C,
    }
}

impl<'a, A, C> LimiterGate<'a, A, C> {
    /// The limiter the permits come from.
    pub fn limiter(&self) -> &'a Limiter<A> {
        self.limiter
    }
}

impl<'a, T, O, A, C, R> Gate<T, O> for LimiterGate<'a, A, C>
where
    A: Algorithm,
    C: FnMut(&O) -> R,
    R: Feedback,
{
    type Permit = Permit<'a, A>;
    type Error = AcquireError;

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Permit<'a, A>), AcquireError>>> {
        let this = self.project();
        let limiter = *this.limiter;
        Gate::<T, O>::poll_admit(this.inner, backlog, cx)
            .map(|admitted| admitted.map(|r| r.map(|(item, p)| (item, Permit::new(limiter, p)))))
    }

    fn settle(self: Pin<&mut Self>, permit: Permit<'a, A>, output: &O) {
        let this = self.project();
        // Reported (the semaphore's permit goes back at its end), then the
        // semaphore gate is told its permit is back: without that it would
        // wait for it forever once full. Told by a guard, so also if
        // `classify` or the algorithm panics (a stream polled again after a
        // caught panic goes on).
        let _returned = Returned(this.inner);
        (this.classify)(output).report(permit);
    }

    fn stop(self: Pin<&mut Self>) {
        Gate::<T, O>::stop(self.project().inner);
    }
}

/// Tells the semaphore gate its permit is back when dropped.
struct Returned<'g, 'a>(Pin<&'g mut SemaphoreGate<'a>>);

impl Drop for Returned<'_, '_> {
    fn drop(&mut self) {
        self.0.as_mut().returned();
    }
}

impl<A, C> fmt::Debug for LimiterGate<'_, A, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimiterGate")
            .field("limiter", self.limiter)
            .finish_non_exhaustive()
    }
}

impl<A: Algorithm> Limiter<A> {
    /// A [`Gate`] over this limiter for [`RunWith`](crate::RunWith) (or to
    /// wrap in a gate of your own): each item gets a permit, and `classify`
    /// says what its output means (see [`LimiterGate`]).
    pub fn gate<C>(&self, classify: C) -> LimiterGate<'_, A, C> {
        LimiterGate {
            inner: SemaphoreGate::new(self.semaphore()),
            limiter: self,
            classify,
        }
    }
}

#[cfg(feature = "alloc")]
mod streams {
    use core::future::IntoFuture;

    use futures_core::stream::Stream;

    use super::LimiterGate;
    use crate::adaptive::{Algorithm, Feedback, Limiter};
    use crate::{IterStream, RunWith};

    /// The stream of [`Limiter::run_all`] and [`Limiter::run_stream`].
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub type RunAll<'a, A, St, F, Fut, C> = RunWith<LimiterGate<'a, A, C>, St, F, Fut>;

    impl<A: Algorithm> Limiter<A> {
        /// [`Semaphore::run_all`](crate::Semaphore::run_all) under this
        /// limiter: runs `f` on every item, each while holding one of its
        /// permits, and reports each output through `classify` as it
        /// finishes (before it is yielded), so the limit adapts while the
        /// backlog drains. A decision applies at once: a shrink stops new
        /// items until the work in flight is under the new limit, a raise
        /// starts more items in the same poll. What `classify` may return
        /// is on [`LimiterGate`].
        ///
        /// With `std`, an `Outcome` alone is timed for you:
        ///
        /// ```
        /// # #[cfg(feature = "std")] {
        /// use futures::StreamExt;
        /// use permits::adaptive::{Aimd, Limiter, Outcome};
        ///
        /// async fn send(id: u32) -> Result<u32, u16> {
        ///     Ok(id)
        /// }
        ///
        /// # futures::executor::block_on(async {
        /// let limiter = Limiter::new(Aimd::new().max_limit(20));
        /// let sends = limiter.run_all(0..500, send, |reply: &Result<u32, u16>| match reply {
        ///     Ok(_) => Outcome::Success,
        ///     Err(421) => Outcome::Overload,
        ///     Err(_) => Outcome::Ignore,
        /// });
        /// let sent = sends.filter(|r| std::future::ready(matches!(r, Ok(Ok(_))))).count().await;
        /// assert_eq!(sent, 500);
        /// assert!(limiter.decisions() > 0);
        /// # });
        /// # }
        /// ```
        ///
        /// With your own clock (firmware, a simulation), each item times
        /// itself and returns the duration next to its reply:
        ///
        /// ```
        /// use core::sync::atomic::{AtomicU64, Ordering};
        /// use core::time::Duration;
        /// use futures::StreamExt;
        /// use permits::adaptive::{Limiter, Outcome};
        ///
        /// // Stands in for `embassy_time::Instant::now()` or a timer register.
        /// static MILLIS: AtomicU64 = AtomicU64::new(0);
        /// fn now_ms() -> u64 {
        ///     MILLIS.fetch_add(7, Ordering::Relaxed)
        /// }
        ///
        /// async fn send(id: u32) -> (Result<(), u16>, Duration) {
        ///     let start = now_ms();
        ///     let reply = if id % 50 == 49 { Err(421) } else { Ok(()) };
        ///     (reply, Duration::from_millis(now_ms() - start))
        /// }
        ///
        /// # futures::executor::block_on(async {
        /// let limiter = Limiter::default();
        /// let sends = limiter.run_all(0..200, send, |(reply, took): &(Result<(), u16>, Duration)| {
        ///     let outcome = match reply {
        ///         Ok(()) => Outcome::Success,
        ///         Err(421 | 451) => Outcome::Overload,
        ///         Err(_) => Outcome::Ignore,
        ///     };
        ///     (outcome, *took)
        /// });
        /// assert_eq!(sends.count().await, 200);
        /// assert!(limiter.decisions() > 0);
        /// # });
        /// ```
        ///
        /// # Errors
        ///
        /// If the semaphore is [closed](crate::Semaphore::close), the stream
        /// starts nothing more, yields the outputs of the work in flight,
        /// then `Err(AcquireError::Closed)` once, last.
        ///
        /// # Cancel safety
        ///
        /// As `Semaphore::run_all`: dropping the stream drops each item in
        /// flight (its future first, then its permit, which goes back to the
        /// semaphore and pays any debt a shrink left), leaves the
        /// semaphore's queue if it was waiting there, and loses no permit.
        /// The items dropped record nothing: a sample is taken only from an
        /// output the stream produced. The items not yet started stay in the
        /// source.
        #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
        pub fn run_all<I, F, Fut, C, R>(
            &self,
            items: I,
            f: F,
            classify: C,
        ) -> RunAll<'_, A, IterStream<I::IntoIter>, F, Fut, C>
        where
            I: IntoIterator,
            F: FnMut(I::Item) -> Fut,
            Fut: IntoFuture,
            C: FnMut(&Fut::Output) -> R,
            R: Feedback,
        {
            self.run_stream(IterStream::new(items), f, classify)
        }

        /// [`run_all`](Self::run_all) for a [`Stream`] of items (a queue, a
        /// channel, a database cursor). While the source has nothing to
        /// give, no permit is held for it.
        ///
        /// # Errors
        ///
        /// As [`run_all`](Self::run_all).
        ///
        /// # Cancel safety
        ///
        /// As [`run_all`](Self::run_all).
        #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
        pub fn run_stream<St, F, Fut, C, R>(
            &self,
            items: St,
            f: F,
            classify: C,
        ) -> RunAll<'_, A, St, F, Fut, C>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
            C: FnMut(&Fut::Output) -> R,
            R: Feedback,
        {
            RunWith::new(self.gate(classify), items, f)
        }
    }
}

#[cfg(feature = "alloc")]
pub use streams::RunAll;

/// The stream of [`Limiter::run_all_fixed`] and
/// [`Limiter::run_stream_fixed`]: up to `N` items in flight in the stream
/// itself, no allocation.
pub type RunAllFixed<'a, A, St, F, Fut, C, const N: usize> =
    RunWithFixed<LimiterGate<'a, A, C>, St, F, Fut, N>;

impl<A: Algorithm> Limiter<A> {
    /// [`run_all`](Self::run_all) without an allocator: at most `N` items in
    /// flight, in `N` slots inside the stream, each wake-up polling all of
    /// them (as [`Semaphore::run_all_fixed`](crate::Semaphore::run_all_fixed)).
    /// A `static` limiter and this run an adaptive backlog in `no_std`
    /// firmware; time each item with your own clock, as in `run_all`'s
    /// second example. The limit adapts, but never above `N` in flight.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::time::Duration;
    /// use futures::StreamExt;
    /// use permits::adaptive::{Aimd, Limiter, Outcome};
    ///
    /// static LIMITER: Limiter<Aimd> = Limiter::new(Aimd::new().initial_limit(2).max_limit(8));
    ///
    /// async fn send(id: u32) -> (Result<(), u16>, Duration) {
    ///     (Ok(()), Duration::from_millis(u64::from(id % 5)))
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let sends = LIMITER.run_all_fixed::<8, _, _, _, _, _>(0..200, send, |(reply, took)| {
    ///     (if reply.is_ok() { Outcome::Success } else { Outcome::Overload }, *took)
    /// });
    /// assert_eq!(sends.count().await, 200);
    /// assert!(LIMITER.decisions() > 0);
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run_all`](Self::run_all).
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_all_fixed<const N: usize, I, F, Fut, C, R>(
        &self,
        items: I,
        f: F,
        classify: C,
    ) -> RunAllFixed<'_, A, IterStream<I::IntoIter>, F, Fut, C, N>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: IntoFuture,
        C: FnMut(&Fut::Output) -> R,
        R: Feedback,
    {
        self.run_stream_fixed(IterStream::new(items), f, classify)
    }

    /// [`run_stream`](Self::run_stream) without an allocator: at most `N`
    /// items in flight, in `N` slots inside the stream.
    ///
    /// # Errors
    ///
    /// As [`run_all`](Self::run_all).
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_stream_fixed<const N: usize, St, F, Fut, C, R>(
        &self,
        items: St,
        f: F,
        classify: C,
    ) -> RunAllFixed<'_, A, St, F, Fut, C, N>
    where
        St: Stream,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
        C: FnMut(&Fut::Output) -> R,
        R: Feedback,
    {
        RunWithFixed::new(self.gate(classify), items, f)
    }
}
