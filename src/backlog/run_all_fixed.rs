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
use super::{Gate, IterStream, Progress, SemaphoreGate};
use crate::{AcquireError, Permit, Semaphore};

/// The stream of [`Semaphore::run_all_fixed`] and
/// [`Semaphore::run_stream_fixed`]: [`RunAll`] with `N` slots inside the
/// stream itself, for `no_std` builds without an allocator. At most `N`
/// items are in flight; it never allocates.
///
/// Everything else is as for `RunAll`: completion order or
/// [in order](Self::in_order), [`stop_on_err`](Self::stop_on_err),
/// [`progress`](Self::progress), `Err(Closed)` last after a close,
/// dropping it gives back every permit.
///
/// # Wake-ups: a sweep
///
/// Unlike `RunAll`, the slots have no wakers of their own: every future is
/// polled with the stream's waker, and a wake-up of the stream polls every
/// running future once. So each wake-up costs up to `N` polls, and a backlog
/// of `k` items whose futures each wake once costs up to `k * N` polls; that
/// is cheap at the small `N` firmware uses (a few dozen), and it is why
/// `RunAll` is the stream for large limits.
///
/// Why: a waker per slot needs memory that outlives the stream, because a
/// future may hand its waker to a timer or an interrupt handler that wakes it
/// after the stream is gone. `RunAll` puts it in an `Arc`; without an
/// allocator it would have to point into the stream, which is unsound once
/// the stream is dropped (or would need `'static` storage from the caller,
/// which this API does not take).
#[must_use = "streams do nothing unless polled"]
pub struct RunAllFixed<'a, St, F, Fut: IntoFuture, const N: usize> {
    // Structurally pinned; projected in `pin_array` (pin-project-lite does
    // not take const generics). No `Drop`, no `Unpin` impl here.
    pub(crate) inner: FixedEngine<'a, St, F, Fut, N>,
}

/// The engine of [`RunAllFixed`]: its slots are an array.
pub(crate) type FixedEngine<'a, St, F, Fut, const N: usize> = Engine<
    SemaphoreGate<'a>,
    St,
    F,
    Fut,
    [Slot<<Fut as IntoFuture>::IntoFuture, Permit<'a>>; N],
    AcquireError,
>;

impl<'a, St, F, Fut: IntoFuture, const N: usize> RunAllFixed<'a, St, F, Fut, N> {
    pub(super) fn new(sem: &'a Semaphore, items: St, f: F) -> Self {
        // At least one slot, or the stream could never start anything.
        const { assert!(N > 0, "run_all_fixed: N must be at least 1") };
        let slots = core::array::from_fn(|_| Slot::Empty);
        Self {
            inner: Engine::new(SemaphoreGate::new(sem), items, f, slots, N),
        }
    }

    fn engine(self: Pin<&mut Self>) -> Pin<&mut FixedEngine<'a, St, F, Fut, N>> {
        super::pin_array::fixed_engine(self)
    }

    fn default_window(&self) -> impl FnOnce() -> usize {
        || N
    }
}

backlog_stream_impls!(
    RunAllFixed ['a,] ['a,] [const N: usize] [N],
    gate SemaphoreGate<'a>, where [], window "Without an explicit `limit`, the window is `N`."
);
backlog_stream_remaining!(RunAllFixed ['a,] ['a,] [const N: usize] [N]);
