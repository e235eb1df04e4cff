//! [`RunAll`]: the backlog stream of a semaphore, with heap slots (`alloc`).

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::engine::Engine;
use super::heap::HeapStore;
use super::{Gate, IterStream, Progress, SemaphoreGate};
use crate::{AcquireError, Permit, Semaphore};

/// The engine of [`RunAll`].
type RunAllEngine<'a, St, F, Fut> = Engine<
    SemaphoreGate<'a>,
    St,
    F,
    Fut,
    HeapStore<<Fut as IntoFuture>::IntoFuture, Permit<'a>>,
    AcquireError,
>;

pin_project! {
    /// The stream of [`Semaphore::run_all`] and [`Semaphore::run_stream`]:
    /// runs `F` on each item of the source `St`, each while holding a permit,
    /// and yields `Ok(output)` per item, as they finish (or
    /// [in order](Self::in_order)).
    ///
    /// It is a [`Stream`] the caller polls; it spawns nothing. It yields
    /// `Err(AcquireError::Closed)` once, last, if the semaphore was closed
    /// before the source ran out; the items still in the source did not run.
    ///
    /// Dropping it drops the work in flight (each future before its permit)
    /// and gives back every permit it holds; it pulls nothing more.
    ///
    /// Slots for in-flight items, each with its own waker, are allocated the
    /// first time the stream needs that many and reused afterwards: at most
    /// one per permit the stream has held at once (or per
    /// [`limit`](Self::limit)). A wake-up of one item's future polls that
    /// future only. It is [`RunWith`](super::RunWith) over a
    /// [`SemaphoreGate`].
    #[must_use = "streams do nothing unless polled"]
    pub struct RunAll<'a, St, F, Fut: IntoFuture> {
        #[pin]
        inner: RunAllEngine<'a, St, F, Fut>,
    }
}

backlog_stream_impls!(
    RunAll ['a,] ['a,] [] [],
    gate SemaphoreGate<'a>, where [], window
    "Without an explicit `limit`, the window is the semaphore's permit count when `in_order` is called."
);
backlog_stream_remaining!(RunAll ['a,] ['a,] [] []);

impl<'a, St, F, Fut: IntoFuture> RunAll<'a, St, F, Fut> {
    pub(super) fn new(sem: &'a Semaphore, items: St, f: F) -> Self {
        let store = HeapStore::default();
        Self {
            inner: Engine::new(SemaphoreGate::new(sem), items, f, store, usize::MAX),
        }
    }

    fn engine(self: Pin<&mut Self>) -> Pin<&mut RunAllEngine<'a, St, F, Fut>> {
        self.project().inner
    }

    fn default_window(&self) -> impl FnOnce() -> usize + 'a {
        let sem = self.inner.gate().semaphore();
        move || sem.total_permits()
    }
}
