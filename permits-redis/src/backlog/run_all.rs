//! [`RunAll`]: the stream of [`GlobalSemaphore::run_all`] and
//! [`GlobalSemaphore::run_stream`].

use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use permits::{IterStream, Progress, RunWith};
use pin_project_lite::pin_project;

use super::gate::LeaseGate;
use super::item::{while_held, Admitted, Starting, WhileHeld};
use crate::{Error, GlobalSemaphore};

/// What one item yields: its output, or why its lease was lost.
type ItemOutput<Fut> = Result<<Fut as IntoFuture>::Output, Error>;
/// The engine's function: an admitted future, watched for its lease.
type Start<Fut> =
    fn(Admitted<<Fut as IntoFuture>::IntoFuture>) -> WhileHeld<<Fut as IntoFuture>::IntoFuture>;
/// The core's backlog stream over the lease gate.
type Engine<St, F, Fut> = RunWith<
    LeaseGate<ItemOutput<Fut>>,
    Starting<St, F>,
    Start<Fut>,
    WhileHeld<<Fut as IntoFuture>::IntoFuture>,
>;

pin_project! {
    /// The stream of [`GlobalSemaphore::run_all`] and
    /// [`GlobalSemaphore::run_stream`]: runs `F` on each item of the source
    /// `St`, each while holding a lease, and yields per item what
    /// [`run`](GlobalSemaphore::run) would have: `Ok(output)`, or
    /// `Err(LeaseLost(reason))` if the item's lease was lost (its future was
    /// dropped); then, if acquiring stopped working (`Closed`, ...), that
    /// error once, last.
    ///
    /// It is a [`Stream`] the caller polls; it spawns nothing (the
    /// [`Driver`](crate::Driver) must run, as for every lease). It runs on
    /// the core's backlog engine ([`permits::RunWith`]): slots reused for
    /// item after item, each with its own waker, so a wake-up of one item's
    /// future polls that future only.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the work in flight (each future before its lease)
    /// and the acquires in progress, and hands every lease to the driver to
    /// release; the local permits come back once Redis has the releases. It
    /// pulls nothing more from the source.
    #[must_use = "streams do nothing unless polled"]
    pub struct RunAll<St, F, Fut>
    where
        St: Stream,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
    {
        #[pin]
        inner: Engine<St, F, Fut>,
        limit_set: bool,
    }
}

impl<St, F, Fut> RunAll<St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
{
    pub(super) fn new(sem: GlobalSemaphore, items: St, f: F) -> Self {
        let start: Start<Fut> = while_held;
        RunAll {
            inner: RunWith::new(LeaseGate::new(sem), Starting::new(items, f), start),
            limit_set: false,
        }
    }

    /// Yields the outputs in the order the items came from the source
    /// instead of as they finish (so the `n`-th output, `Ok` or
    /// `LeaseLost`, is the `n`-th item's).
    ///
    /// A finished item gives its lease back at once; its output waits until
    /// the items before it are yielded. At most [`limit`](Self::limit)
    /// items are between "started" and "yielded" (without an explicit
    /// limit: the local limit), so a slow item holds up new work once that
    /// many are started past it. Call it before the stream is first polled.
    pub fn in_order(mut self) -> Self {
        if !self.limit_set {
            let local = self.inner.gate().semaphore().inner.local_limit;
            self.inner = self.inner.limit(local);
        }
        self.inner = self.inner.in_order();
        self
    }

    /// At most `n` items of this stream in flight (plus, in order, finished
    /// ones waiting their turn) and so at most `n` leases, however many the
    /// local limit allows. Without it the local limit bounds the stream.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn limit(mut self, n: usize) -> Self {
        self.inner = self.inner.limit(n);
        self.limit_set = true;
        self
    }

    /// A snapshot of how far the stream has got (see [`Progress`]).
    pub fn progress(&self) -> Progress {
        self.inner.progress()
    }

    /// The source, with the items not started yet.
    pub fn source(&self) -> &St {
        self.inner.source().items()
    }

    /// The source, pinned, with the items not started yet. Once the stream
    /// has ended early ([`stop_on_err`](Self::stop_on_err), or an error that
    /// stopped acquiring), exactly the items left in it did not run.
    pub fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
        self.project().inner.source_mut().items_mut()
    }

    /// The semaphore the leases come from.
    pub fn semaphore(&self) -> &GlobalSemaphore {
        self.inner.gate().semaphore()
    }
}

impl<I, F, Fut> RunAll<IterStream<I>, F, Fut>
where
    I: Iterator,
    F: FnMut(I::Item) -> Fut,
    Fut: IntoFuture,
{
    /// The items of the source iterator that were not started. Once the
    /// stream has ended early (`stop_on_err` or an error that stopped
    /// acquiring), these are exactly the items that did not run.
    pub fn remaining(self: Pin<&mut Self>) -> &mut I {
        self.source_mut().iter_mut()
    }
}

/// `stop_on_err`'s test: the item failed, or its lease was lost.
fn failed<T, E>(output: &Result<Result<T, E>, Error>) -> bool {
    !matches!(output, Ok(Ok(_)))
}

impl<St, F, Fut, T, E> RunAll<St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture<Output = Result<T, E>>,
{
    /// Stops starting new items at the first item that did not succeed (an
    /// `Ok(Err(_))` output or a lost lease) and yields it: the items already
    /// in flight **finish** and are yielded after it, then the stream ends.
    /// To abandon them instead, drop the stream after the error. The items
    /// left in the [source](Self::source_mut) are the ones that never ran.
    ///
    /// Without it (the default), failures are yielded like any output and
    /// the work goes on.
    pub fn stop_on_err(self) -> Self {
        // The gate sees each output when its item finishes and admits
        // nothing after a failure (the engine's own `stop_on_err` would see
        // only the lease loss, the outer `Result`).
        self.inner.gate().set_stop_if(failed::<T, E>);
        self
    }
}

impl<St, F, Fut> Stream for RunAll<St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
{
    type Item = Result<Fut::Output, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // An item's result (`Ok` or `LeaseLost`) is inside; the gate's
        // error (the last item) outside.
        self.project()
            .inner
            .poll_next(cx)
            .map(|next| next.map(|result| result.and_then(|item| item)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<St, F, Fut> FusedStream for RunAll<St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<St, F, Fut> fmt::Debug for RunAll<St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunAll")
            .field("semaphore", self.semaphore())
            .field("progress", &self.progress())
            .field("acquiring", &self.inner.gate().acquiring())
            .finish_non_exhaustive()
    }
}
