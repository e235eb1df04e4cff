//! [`RunAll`]: the backlog stream with heap slots (`alloc`).

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::engine::Engine;
use super::heap::HeapStore;
use super::{IterStream, Progress};
use crate::{AcquireError, Semaphore};

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
    /// Slots for in-flight items are allocated the first time the stream
    /// needs that many and reused afterwards: at most one per permit the
    /// stream has held at once (or per [`limit`](Self::limit)).
    #[must_use = "streams do nothing unless polled"]
    pub struct RunAll<'a, St, F, Fut: IntoFuture> {
        #[pin]
        inner: Engine<'a, St, F, Fut, HeapStore<'a, Fut::IntoFuture>>,
    }
}

backlog_stream_impls!(RunAll [] []);

impl<'a, St, F, Fut: IntoFuture> RunAll<'a, St, F, Fut> {
    pub(super) fn new(sem: &'a Semaphore, items: St, f: F) -> Self {
        Self {
            inner: Engine::new(sem, items, f, HeapStore::default()),
        }
    }

    fn engine(
        self: Pin<&mut Self>,
    ) -> Pin<&mut Engine<'a, St, F, Fut, HeapStore<'a, Fut::IntoFuture>>> {
        self.project().inner
    }
}
