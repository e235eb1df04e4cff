//! Streams that chew through a backlog: [`Semaphore::run_all`] and friends
//! run an async function on every item of a source, each while holding a
//! permit, and yield the results as a [`Stream`]. [`RunWith`] is the same
//! stream over any [`Gate`] (how an item gets its permit): the engine the
//! per-key, adaptive and fleet-wide limits build on. [`RunWithFixed`] is
//! `RunWith` without an allocator, as [`RunAllFixed`] is `run_all`'s.
//!
//! # How it works
//!
//! The stream owns a [`Gate`] (for `run_all`: a [`SemaphoreGate`], one
//! acquire at a time for "the permit of the next item"), the source, the
//! function, and a set of *slots*. A slot is empty, runs one item's future
//! together with that item's permit, or holds a finished output until it is
//! yielded. Each `poll_next`:
//!
//! 1. yields a finished output if one is ready (in order, if asked);
//! 2. polls the running futures that were woken; a future that completes
//!    has its permit settled (given back) at once;
//! 3. while a slot is free: asks the gate for the next item and its permit
//!    (the semaphore gate acquires a permit, *then* pulls one item), calls the
//!    function and polls the new future once. A future that is done on its
//!    first poll is handed straight out (completion order only). The gate is
//!    asked again after every settle, so a gate whose room comes back only
//!    from its own items (the semaphore gate while nobody else queues) waits
//!    for them without a waker: nothing to register, nothing to wake.
//!
//! So an item is pulled only with its permit in hand, there are never more
//! futures than slots, and the slots are reused.
//!
//! # Wake-ups
//!
//! With `alloc` ([`RunAll`], [`RunWith`]) each slot has its own waker, an
//! `Arc` made with the slot and reused for every item the slot runs. Waking
//! it sets the slot's bit in a bitmap shared with the stream and wakes the
//! stream's task; the stream then polls exactly the slots whose bits it finds
//! (see `ready.rs` for the protocol, model-checked in `tests/loom.rs`). So a
//! wake-up costs work in proportion to what woke, however many items are in
//! flight, and nothing is allocated per item. A waker kept after its item
//! finished marks a slot that runs another item by then, which costs that
//! item one extra poll; one kept after the stream is dropped marks a bit
//! nobody reads. Slots are boxed eight at a time and the bitmap's words
//! share cache lines, because at large limits each wake-up lands on a slot
//! not touched for a while, and every separate allocation on the way to it
//! is one more cache miss. In order, the slots of the items in flight are
//! remembered oldest first, so finding the next output to yield is O(1).
//!
//! Without an allocator ([`RunAllFixed`], [`RunWithFixed`]) there are no
//! per-slot wakers: a waker pointing into the stream would dangle once a timer kept it past the
//! stream's drop. Every wake-up polls each running future once (a sweep),
//! which costs up to `N` polls per wake-up: fine for the few dozen items in
//! flight firmware allows, and the reason to use `RunAll` for large limits.
//!
//! Each acquire joins the semaphore's FIFO queue like any other, one at a time
//! per stream: several streams and plain `acquire` / `run` callers on one
//! semaphore take turns.

// Declared first: its macros are expanded by the stream modules below.
#[macro_use]
mod methods;

mod engine;
mod gate;
#[cfg(feature = "alloc")]
mod heap;
mod iter_stream;
mod pin_array;
mod progress;
#[cfg(feature = "alloc")]
mod ready;
#[cfg(feature = "alloc")]
mod run_all;
mod run_all_fixed;
#[cfg(feature = "alloc")]
mod run_with;
mod run_with_fixed;
mod slot;

use core::future::IntoFuture;

use futures_core::stream::Stream;

#[cfg(feature = "alloc")]
pub(crate) use engine::Engine;
pub use gate::{Gate, SemaphoreGate};
#[cfg(feature = "alloc")]
pub(crate) use heap::HeapStore;
pub use iter_stream::IterStream;
pub use progress::Progress;
#[cfg(feature = "alloc")]
pub(crate) use ready::Ready;
#[cfg(feature = "alloc")]
pub use run_all::RunAll;
pub(crate) use run_all_fixed::FixedEngine;
pub use run_all_fixed::RunAllFixed;
#[cfg(feature = "alloc")]
pub use run_with::RunWith;
pub(crate) use run_with_fixed::FixedGateEngine;
pub use run_with_fixed::RunWithFixed;

use crate::Semaphore;

impl Semaphore {
    /// Runs `f` on every item of `items`, each while holding one permit, and
    /// returns the outputs as a [`Stream`], in the order they finish.
    ///
    /// Where `join_all` of [`run`](Self::run) creates every item's future up
    /// front, this pulls an item only once a permit for it is held: however
    /// long (or endless) the backlog, at most as many futures exist as
    /// permits the stream holds, kept in slots that are reused. Each item is
    /// `Ok(output)`; a closed semaphore ends the stream with one
    /// `Err(AcquireError::Closed)`, after the work in flight, and the items
    /// left in [`remaining`](RunAll::remaining) did not run.
    ///
    /// Options: [`in_order`](RunAll::in_order),
    /// [`stop_on_err`](RunAll::stop_on_err), [`limit`](RunAll::limit); see
    /// [`progress`](RunAll::progress) for a progress bar. Without an
    /// allocator use [`run_all_fixed`](Self::run_all_fixed).
    ///
    /// # Examples
    ///
    /// Send 1000 emails, at most 10 at a time:
    ///
    /// ```
    /// use futures::StreamExt;
    /// use permits::Semaphore;
    ///
    /// async fn send(id: u32) -> Result<u32, String> {
    ///     Ok(id)
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let sem = Semaphore::new(10);
    /// let mut sent = 0;
    /// let mut results = std::pin::pin!(sem.run_all(0..1000, send));
    /// while let Some(result) = results.next().await {
    ///     match result {
    ///         Ok(Ok(_id)) => sent += 1,
    ///         Ok(Err(e)) => eprintln!("failed: {e}"),
    ///         Err(closed) => eprintln!("gave up: {closed}"),
    ///     }
    /// }
    /// assert_eq!(sent, 1000);
    /// assert_eq!(sem.available_permits(), 10);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream drops the futures in flight and gives back every
    /// permit it holds or was handed; the items not started stay in the
    /// source.
    #[cfg(feature = "alloc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn run_all<I, F, Fut>(&self, items: I, f: F) -> RunAll<'_, IterStream<I::IntoIter>, F, Fut>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: IntoFuture,
    {
        self.run_stream(IterStream::new(items), f)
    }

    /// [`run_all`](Self::run_all) for a [`Stream`] of items, such as a
    /// channel's receiver: an item is pulled only once a permit for it is
    /// held.
    ///
    /// While the source has nothing to give (`Pending`), the stream gives
    /// that permit back and asks for one again when the source wakes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use permits::Semaphore;
    ///
    /// # futures::executor::block_on(async {
    /// let sem = Semaphore::new(4);
    /// let items = futures::stream::iter(1..=5);
    /// let doubled: Vec<_> = sem
    ///     .run_stream(items, |n| async move { n * 2 })
    ///     .in_order()
    ///     .collect()
    ///     .await;
    /// assert_eq!(doubled, [Ok(2), Ok(4), Ok(6), Ok(8), Ok(10)]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    #[cfg(feature = "alloc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn run_stream<St, F, Fut>(&self, items: St, f: F) -> RunAll<'_, St, F, Fut>
    where
        St: Stream,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
    {
        RunAll::new(self, items, f)
    }

    /// [`run_all`](Self::run_all) without an allocator: at most `N` items in
    /// flight, in `N` slots inside the stream. Works in `no_std` firmware.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use permits::Semaphore;
    ///
    /// static SEM: Semaphore = Semaphore::new(8);
    ///
    /// # futures::executor::block_on(async {
    /// // At most 4 in flight from this stream, even with 8 permits.
    /// let sum = SEM
    ///     .run_all_fixed::<4, _, _, _>(1..=100u32, |n| async move { n })
    ///     .fold(0, |sum, n| async move { sum + n.unwrap() })
    ///     .await;
    /// assert_eq!(sum, 5050);
    /// # });
    /// ```
    ///
    /// `N` must be at least 1 (with no slot the stream could never start
    /// anything); `N = 0` does not compile:
    ///
    /// ```compile_fail
    /// let sem = permits::Semaphore::new(1);
    /// let _ = sem.run_all_fixed::<0, _, _, _>(0..3u32, |n| async move { n });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_all_fixed<const N: usize, I, F, Fut>(
        &self,
        items: I,
        f: F,
    ) -> RunAllFixed<'_, IterStream<I::IntoIter>, F, Fut, N>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: IntoFuture,
    {
        self.run_stream_fixed(IterStream::new(items), f)
    }

    /// [`run_stream`](Self::run_stream) without an allocator: at most `N`
    /// items in flight, in `N` slots inside the stream.
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_stream_fixed<const N: usize, St, F, Fut>(
        &self,
        items: St,
        f: F,
    ) -> RunAllFixed<'_, St, F, Fut, N>
    where
        St: Stream,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
    {
        RunAllFixed::new(self, items, f)
    }
}
