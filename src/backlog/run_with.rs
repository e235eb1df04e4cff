//! [`RunWith`]: the backlog stream over any [`Gate`] (`alloc`).

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::engine::Engine;
use super::heap::HeapStore;
use super::{Gate, Progress};

/// The engine of [`RunWith`].
type RunWithEngine<G, St, F, Fut, Pm, E> =
    Engine<G, St, F, Fut, HeapStore<<Fut as IntoFuture>::IntoFuture, Pm>, E>;

/// The engine's type for a gate `G` whose items come from `St`.
type GateEngine<G, St, F, Fut> = RunWithEngine<
    G,
    St,
    F,
    Fut,
    <G as Gate<<St as Stream>::Item, <Fut as IntoFuture>::Output>>::Permit,
    <G as Gate<<St as Stream>::Item, <Fut as IntoFuture>::Output>>::Error,
>;

pin_project! {
    /// A backlog stream over any [`Gate`]: runs `F` on each item of the
    /// source `St` that the gate `G` admits, each while holding the permit
    /// the gate gave it, and yields `Ok(output)` per item, as they finish (or
    /// [in order](Self::in_order)); `Err(e)` once, last, if the gate failed
    /// with `e`. [`Semaphore::run_all`](crate::Semaphore::run_all) is this
    /// over a [`SemaphoreGate`](super::SemaphoreGate).
    ///
    /// The engine is the same as `run_all`'s: slots allocated as the stream
    /// first needs them and reused, each with its own waker, so a wake-up of
    /// one item's future polls that future only; nothing is allocated per
    /// item once the concurrency has peaked. Dropping it drops the work in
    /// flight (each future before its permit).
    #[must_use = "streams do nothing unless polled"]
    pub struct RunWith<G, St, F, Fut>
    where
        St: Stream,
        Fut: IntoFuture,
        G: Gate<St::Item, Fut::Output>,
    {
        #[pin]
        inner: GateEngine<G, St, F, Fut>,
    }
}

impl<G, St, F, Fut> RunWith<G, St, F, Fut>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
{
    /// Runs `f` on every item of `items` that `gate` admits, each while
    /// holding the permit it was admitted with.
    ///
    /// The gate admits; this stream only caps how many items are in flight
    /// at once if asked to with [`limit`](Self::limit).
    pub fn new(gate: G, items: St, f: F) -> Self {
        Self {
            inner: Engine::new(gate, items, f, HeapStore::default(), usize::MAX),
        }
    }
}

impl<G, St, F, Fut> RunWith<G, St, F, Fut>
where
    St: Stream,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
{
    /// The gate.
    pub fn gate(&self) -> &G {
        self.inner.gate()
    }

    /// The gate, pinned.
    pub fn gate_mut(self: Pin<&mut Self>) -> Pin<&mut G> {
        self.engine().gate_mut()
    }

    fn engine(self: Pin<&mut Self>) -> Pin<&mut GateEngine<G, St, F, Fut>> {
        self.project().inner
    }

    fn default_window(&self) -> impl FnOnce() -> usize {
        || panic!("RunWith::in_order: call `limit` first: the window must be bounded")
    }
}

backlog_stream_impls!(
    RunWith [G,] [G,] [] [],
    gate G, where [St: Stream, G: Gate<St::Item, Fut::Output>,], window
    "`RunWith` has no window of its own: call [`limit`](Self::limit) first.\n\n# Panics\n\nIf no `limit` was set."
);
