//! [`RunAllFixed`]: the backlog stream with `N` slots inside it (no
//! allocation).

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use super::engine::Engine;
use super::slot::Slot;
#[cfg(all(doc, feature = "alloc"))]
use super::RunAll;
use super::{IterStream, Progress};
use crate::{AcquireError, Semaphore};

/// The stream of [`Semaphore::run_all_fixed`] and
/// [`Semaphore::run_stream_fixed`]: [`RunAll`] with `N` slots inside the
/// stream itself, for `no_std` builds without an allocator. At most `N`
/// items are in flight; it never allocates.
///
/// Everything else is as for `RunAll`: completion order or
/// [in order](Self::in_order), [`stop_on_err`](Self::stop_on_err),
/// [`progress`](Self::progress), `Err(Closed)` last after a close,
/// dropping it gives back every permit.
#[must_use = "streams do nothing unless polled"]
pub struct RunAllFixed<'a, St, F, Fut: IntoFuture, const N: usize> {
    // Structurally pinned; projected in `pin_array` (pin-project-lite does
    // not take const generics). No `Drop`, no `Unpin` impl here.
    pub(crate) inner: FixedEngine<'a, St, F, Fut, N>,
}

/// The engine of [`RunAllFixed`]: its slots are an array.
pub(crate) type FixedEngine<'a, St, F, Fut, const N: usize> =
    Engine<'a, St, F, Fut, [Slot<'a, <Fut as IntoFuture>::IntoFuture>; N]>;

impl<'a, St, F, Fut: IntoFuture, const N: usize> RunAllFixed<'a, St, F, Fut, N> {
    pub(super) fn new(sem: &'a Semaphore, items: St, f: F) -> Self {
        Self {
            inner: Engine::new(sem, items, f, core::array::from_fn(|_| Slot::Empty)),
        }
    }

    fn engine(self: Pin<&mut Self>) -> Pin<&mut FixedEngine<'a, St, F, Fut, N>> {
        crate::pin_array::fixed_engine(self)
    }
}

backlog_stream_impls!(RunAllFixed [const N: usize] [N]);
