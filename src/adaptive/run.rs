//! [`Limiter::run`]: a future run under a limiter's permit, its output
//! mapped to feedback by the caller.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use core::time::Duration;

use pin_project_lite::pin_project;

use super::{Algorithm, Limiter, Outcome, Permit};
use crate::AcquireError;

/// What a [`Limiter::run`] classifier returns: how to report the finished
/// request.
///
/// - `(Outcome, Duration)`: the outcome and the time it took by your clock;
/// - `Outcome` (with `std`): the outcome, timed with `std::time::Instant`
///   from the permit being granted;
/// - `Option<_>` of either: `None` records nothing (as dropping the permit).
pub trait Feedback {
    /// Reports through `permit` (which it consumes).
    fn report<A: Algorithm>(self, permit: Permit<'_, A>);
}

impl Feedback for (Outcome, Duration) {
    fn report<A: Algorithm>(self, permit: Permit<'_, A>) {
        permit.record(self.0, self.1);
    }
}

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl Feedback for Outcome {
    fn report<A: Algorithm>(self, permit: Permit<'_, A>) {
        permit.finish(self);
    }
}

impl<T: Feedback> Feedback for Option<T> {
    fn report<A: Algorithm>(self, permit: Permit<'_, A>) {
        if let Some(feedback) = self {
            feedback.report(permit);
        }
    }
}

impl<A: Algorithm> Limiter<A> {
    /// Runs `f` once a permit is held, gives the permit back when it
    /// completes, and reports what `classify` makes of its output.
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use permits::adaptive::{Limiter, Outcome};
    ///
    /// async fn send(id: u32) -> Result<u32, &'static str> {
    ///     Ok(id)
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let limiter = Limiter::default();
    /// let sends = (0..20).map(|id| {
    ///     limiter.run(send(id), |reply| match reply {
    ///         Ok(_) => Outcome::Success,
    ///         Err(_) => Outcome::Overload,
    ///     })
    /// });
    /// let replies = futures::future::join_all(sends).await;
    /// assert_eq!(replies[19], Ok(Ok(19)));
    /// assert!(limiter.limit() >= 1);
    /// # });
    /// # }
    /// ```
    ///
    /// Without `std`, the classifier returns the duration too, measured
    /// by your clock: `|reply| (Outcome::Success, elapsed)`.
    ///
    /// # Errors
    ///
    /// `Err(AcquireError::Closed)` if the semaphore is closed before a
    /// permit is granted (then `f` never runs).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `f` (while still holding the permit), then
    /// gives the permit back, and records nothing. A panic in `f` gives the
    /// permit back during the unwind and records nothing.
    pub fn run<F, C, R>(&self, f: F, classify: C) -> Run<'_, F::IntoFuture, C, A>
    where
        F: IntoFuture,
        C: FnOnce(&F::Output) -> R,
        R: Feedback,
    {
        Run {
            fut: f.into_future(),
            acquire: self.semaphore().acquire(),
            limiter: self,
            permit: None,
            classify: Some(classify),
        }
    }
}

pin_project! {
    /// The future of [`Limiter::run`]: `Ok(output)`, or the
    /// [`AcquireError`] that kept the permit from being granted.
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct Run<'a, F, C, A> {
        // Declared first: dropped while the permit is still held.
        #[pin]
        fut: F,
        #[pin]
        acquire: crate::Acquire<'a>,
        limiter: &'a Limiter<A>,
        permit: Option<Permit<'a, A>>,
        // `None` once complete.
        classify: Option<C>,
    }
}

/// Gives the permit back if the inner future panics; disarmed once its poll
/// returned.
struct ReleaseOnUnwind<'r, 'a, A> {
    slot: &'r mut Option<Permit<'a, A>>,
    armed: bool,
}

impl<A> Drop for ReleaseOnUnwind<'_, '_, A> {
    fn drop(&mut self) {
        if self.armed {
            *self.slot = None;
        }
    }
}

impl<F, C, R, A> Future for Run<'_, F, C, A>
where
    F: Future,
    C: FnOnce(&F::Output) -> R,
    R: Feedback,
    A: Algorithm,
{
    type Output = Result<F::Output, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(this.classify.is_some(), "Run polled after completion");
        if this.permit.is_none() {
            match ready!(this.acquire.poll(cx)) {
                Ok(p) => *this.permit = Some(Permit::new(this.limiter, p)),
                Err(err) => {
                    *this.classify = None;
                    return Poll::Ready(Err(err));
                }
            }
        }
        let mut guard = ReleaseOnUnwind {
            slot: this.permit,
            armed: true,
        };
        let polled = this.fut.poll(cx);
        guard.armed = false;
        let out = ready!(polled);
        let classify = this.classify.take().expect("checked above");
        let permit = guard.slot.take().expect("held while running");
        classify(&out).report(permit);
        Poll::Ready(Ok(out))
    }
}

impl<F, C, A> fmt::Debug for Run<'_, F, C, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("running", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}
