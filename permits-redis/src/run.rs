//! `run`: hold a lease exactly while a future runs; cancel it on loss.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::{Acquire, Error, Lease, Lost};

pin_project! {
    /// The future of [`GlobalSemaphore::run`](crate::GlobalSemaphore::run).
    ///
    /// # Cancel safety
    ///
    /// Dropping it at any point drops the inner future and gives back the
    /// lease or the acquire in progress (see [`Acquire`]).
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct Run<F> {
        acquire: Option<Acquire>,
        lease: Option<(Lease, Lost)>,
        #[pin]
        fut: Option<F>,
    }
}

impl<F> Run<F> {
    pub(crate) fn new(acquire: Acquire, fut: F) -> Self {
        Run {
            acquire: Some(acquire),
            lease: None,
            fut: Some(fut),
        }
    }
}

impl<F: Future> Future for Run<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(acquire) = this.acquire {
            let lease = match Pin::new(acquire).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    *this.acquire = None;
                    this.fut.set(None);
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(lease)) => lease,
            };
            *this.acquire = None;
            let lost = lease.lost();
            *this.lease = Some((lease, lost));
        }
        let Some((_, lost)) = this.lease.as_mut() else {
            panic!("`Run` polled after completion");
        };
        let polled = poll_while_held(this.fut, lost, cx);
        if polled.is_ready() {
            // The work is done or dropped before the lease goes back.
            *this.lease = None;
        }
        polled
    }
}

/// Polls work that may run only while a lease is held (`lost` says when it
/// is not): `Err(LeaseLost)` and the work dropped once the lease is lost,
/// checked before every poll of the work, so it never takes a step without
/// its lease. Once `Ready`, the work has been dropped.
///
/// # Panics
///
/// If polled again after `Ready`.
pub(crate) fn poll_while_held<F: Future>(
    mut fut: Pin<&mut Option<F>>,
    lost: &mut Lost,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, Error>> {
    if let Poll::Ready(reason) = Pin::new(lost).poll(cx) {
        fut.set(None);
        return Poll::Ready(Err(Error::LeaseLost(reason)));
    }
    let work = fut.as_mut().as_pin_mut().expect("polled after completion");
    let out = std::task::ready!(work.poll(cx));
    fut.set(None);
    Poll::Ready(Ok(out))
}

impl<F> fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("acquiring", &self.acquire.is_some())
            .field("lease", &self.lease.as_ref().map(|(l, _)| l))
            .finish_non_exhaustive()
    }
}
