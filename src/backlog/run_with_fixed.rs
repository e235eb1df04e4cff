//! [`RunWithFixed`]: the backlog stream over any [`Gate`] with `N` slots
//! inside it (no allocation).

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use super::engine::Engine;
use super::slot::Slot;
use super::{Gate, Progress};

/// The engine's type for a gate `G` whose items come from `St`, with `N`
/// slots in an array.
pub(crate) type FixedGateEngine<G, St, F, Fut, const N: usize> = Engine<
    G,
    St,
    F,
    Fut,
    [Slot<
        <Fut as IntoFuture>::IntoFuture,
        <G as Gate<<St as Stream>::Item, <Fut as IntoFuture>::Output>>::Permit,
    >; N],
    <G as Gate<<St as Stream>::Item, <Fut as IntoFuture>::Output>>::Error,
>;

/// [`RunWith`](super::RunWith) without an allocator: a backlog stream over
/// any [`Gate`] with `N` slots inside the stream itself, so at most `N`
/// items are in flight and it never allocates. What
/// [`RunAllFixed`](super::RunAllFixed) is to `RunAll`, for the gates that
/// work without `alloc` (a [`SemaphoreGate`](super::SemaphoreGate), an
/// adaptive [`LimiterGate`](crate::adaptive::LimiterGate), your own).
///
/// Its futures share the stream's waker, so a wake-up polls every running
/// future once (up to `N` polls): see
/// [`RunAllFixed`'s wake-ups](super::RunAllFixed#wake-ups-a-sweep) for
/// why, and why that is fine at the few dozen slots firmware uses.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use permits::{RunWithFixed, Semaphore, SemaphoreGate};
///
/// static SEM: Semaphore = Semaphore::new(8);
///
/// # futures::executor::block_on(async {
/// let items = futures::stream::iter(1..=100u32);
/// let stream = RunWithFixed::<_, _, _, _, 4>::new(SemaphoreGate::new(&SEM), items, |n| async move { n });
/// let sum = stream.fold(0, |sum, n| async move { sum + n.unwrap() }).await;
/// assert_eq!(sum, 5050);
/// # });
/// ```
///
/// `N` must be at least 1; `N = 0` does not compile:
///
/// ```compile_fail
/// use permits::{RunWithFixed, Semaphore, SemaphoreGate};
///
/// let sem = Semaphore::new(1);
/// let items = futures::stream::iter(0..3u32);
/// let _ = RunWithFixed::<_, _, _, _, 0>::new(SemaphoreGate::new(&sem), items, |n| async move { n });
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct RunWithFixed<G, St, F, Fut, const N: usize>
where
    St: Stream,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
{
    // Structurally pinned; projected in `pin_array` (pin-project-lite does
    // not take const generics). No `Drop`, no `Unpin` impl here.
    pub(crate) inner: FixedGateEngine<G, St, F, Fut, N>,
}

impl<G, St, F, Fut, const N: usize> RunWithFixed<G, St, F, Fut, N>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
{
    /// Runs `f` on every item of `items` that `gate` admits, at most `N` at
    /// a time, each while holding the permit it was admitted with.
    pub fn new(gate: G, items: St, f: F) -> Self {
        const { assert!(N > 0, "RunWithFixed: N must be at least 1") };
        let slots = core::array::from_fn(|_| Slot::Empty);
        Self {
            inner: Engine::new(gate, items, f, slots, N),
        }
    }
}

impl<G, St, F, Fut, const N: usize> RunWithFixed<G, St, F, Fut, N>
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

    fn engine(self: Pin<&mut Self>) -> Pin<&mut FixedGateEngine<G, St, F, Fut, N>> {
        super::pin_array::fixed_gate_engine(self)
    }

    fn default_window(&self) -> impl FnOnce() -> usize {
        || N
    }
}

backlog_stream_impls!(
    RunWithFixed [G,] [G,] [const N: usize] [N],
    gate G, where [St: Stream, G: Gate<St::Item, Fut::Output>,], window
    "Without an explicit `limit`, the window is `N`."
);
