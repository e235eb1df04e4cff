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
        // A lost lease stops the work before it takes another step.
        if let Poll::Ready(reason) = Pin::new(lost).poll(cx) {
            this.fut.set(None);
            *this.lease = None;
            return Poll::Ready(Err(Error::LeaseLost(reason)));
        }
        let fut = this
            .fut
            .as_mut()
            .as_pin_mut()
            .expect("`Run` polled after completion");
        match fut.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                // The work is done (its resources dropped) before the lease
                // goes back.
                this.fut.set(None);
                *this.lease = None;
                Poll::Ready(Ok(out))
            }
        }
    }
}

impl<F> fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("acquiring", &self.acquire.is_some())
            .field("lease", &self.lease.as_ref().map(|(l, _)| l))
            .finish_non_exhaustive()
    }
}
