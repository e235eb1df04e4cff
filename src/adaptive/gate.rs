//! [`LimiterGate`]: a limiter as the [`Gate`] of a backlog stream, so
//! [`Limiter::run_all`] records each item's outcome.

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::{Algorithm, Feedback, Limiter, Permit};
use crate::{AcquireError, Gate, SemaphoreGate};

pin_project! {
    /// The [`Gate`] of [`Limiter::run_all`] and [`Limiter::run_stream`]: one
    /// permit of the limiter per item, acquired before the item is pulled
    /// (as [`SemaphoreGate`] does), and the item's output reported through
    /// `classify` when it finishes. An item that does not finish (the stream
    /// is dropped with it in flight, or its future panics) records nothing.
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
        // wait for it forever once full.
        (this.classify)(output).report(permit);
        this.inner.returned();
    }

    fn stop(self: Pin<&mut Self>) {
        Gate::<T, O>::stop(self.project().inner);
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
    /// A [`Gate`] over this limiter for [`RunWith`](crate::RunWith): each
    /// item gets a permit, and `classify` says what its output means.
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

    /// The stream of [`Limiter::run_all`].
    pub type RunAll<'a, A, St, F, Fut, C> = RunWith<LimiterGate<'a, A, C>, St, F, Fut>;

    impl<A: Algorithm> Limiter<A> {
        /// [`Semaphore::run_all`](crate::Semaphore::run_all) under this
        /// limiter: runs `f` on every item, each while holding one of its
        /// permits, and reports each output through `classify` as it
        /// finishes (before it is yielded), so the limit adapts while the
        /// backlog drains.
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
        /// # Cancel safety
        ///
        /// As `Semaphore::run_all`: dropping the stream drops the work in
        /// flight and gives back every permit; those items record nothing.
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

        /// [`run_all`](Self::run_all) for a [`Stream`] of items.
        ///
        /// # Cancel safety
        ///
        /// As [`run_all`](Self::run_all).
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
