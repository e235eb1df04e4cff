//! Pinned access to one element of a pinned array, and to the engine inside a
//! pinned [`RunAllFixed`] or [`RunWithFixed`]: the only `unsafe` of the
//! backlog streams, used by the allocation-free streams to keep their
//! in-flight futures in a fixed array of slots inside the pinned stream,
//! and by the heap store, whose
//! slots are boxed in arrays of a few. pin-project-lite, which writes
//! every other projection in this crate, takes no const generics and no
//! arrays.
//!
//! # Invariants
//!
//! Pinning an array pins each of its elements ("structural pinning"), which is
//! sound because nothing here or in safe Rust can move an element out of an
//! array that is behind a `Pin<&mut [T; N]>`:
//!
//! 1. **No unpinned `&mut T`.** This module hands out an element only as
//!    `Pin<&mut T>`; for `T: !Unpin` safe code can then only replace it in
//!    place ([`Pin::set`], which drops the old value where it lies) or read
//!    it. `[T; N]` is `Unpin` only if `T` is, and then moving is allowed
//!    anyway.
//! 2. **Dropped in place.** An array has no `Drop` of its own that could move
//!    elements; its elements are dropped where they lie, so the drop guarantee
//!    of `Pin` holds for each of them.
//! 3. **No moving through the array.** Safe code cannot reach a
//!    `&mut [T; N]` from a `Pin<&mut [T; N]>` when `T: !Unpin`, so nobody can
//!    `swap` or `mem::replace` elements behind our back.

use core::future::IntoFuture;
use core::pin::Pin;

use futures_core::stream::Stream;

use super::{FixedEngine, FixedGateEngine, Gate, RunAllFixed, RunWithFixed};

/// The element `i` of a pinned array, pinned.
///
/// # Panics
///
/// If `i >= N`, before any unsafe code runs.
pub(crate) fn index<T, const N: usize>(array: Pin<&mut [T; N]>, i: usize) -> Pin<&mut T> {
    assert!(i < N, "pinned array index out of bounds");
    // SAFETY: the array is pinned, so its elements never move (invariants 1
    // to 3); the closure only narrows the reference to one element, in
    // bounds (checked above), and moves nothing.
    unsafe { array.map_unchecked_mut(|a| &mut a[i]) }
}

/// The engine inside a pinned [`RunAllFixed`], pinned (the projection
/// pin-project-lite would write, had it const generics).
pub(crate) fn fixed_engine<'s, 'a, St, F, Fut: IntoFuture, const N: usize>(
    stream: Pin<&'s mut RunAllFixed<'a, St, F, Fut, N>>,
) -> Pin<&'s mut FixedEngine<'a, St, F, Fut, N>> {
    // SAFETY: `inner` is structurally pinned: `RunAllFixed` has no `Drop` and
    // no manual `Unpin` impl, and this, its only projection, never moves it.
    unsafe { stream.map_unchecked_mut(|s| &mut s.inner) }
}

/// The engine inside a pinned [`RunWithFixed`], pinned (as above).
pub(crate) fn fixed_gate_engine<G, St, F, Fut, const N: usize>(
    stream: Pin<&mut RunWithFixed<G, St, F, Fut, N>>,
) -> Pin<&mut FixedGateEngine<G, St, F, Fut, N>>
where
    St: Stream,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
{
    // SAFETY: `inner` is structurally pinned: `RunWithFixed` has no `Drop`
    // and no manual `Unpin` impl, and this, its only projection, never
    // moves it.
    unsafe { stream.map_unchecked_mut(|s| &mut s.inner) }
}
