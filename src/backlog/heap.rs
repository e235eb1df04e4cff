//! The heap store of [`RunAll`](super::RunAll) and [`RunWith`](super::RunWith):
//! any number of slots, each with its own waker.
//!
//! Slots are boxed `CHUNK` at a time, not one by one: at large limits each
//! wake-up polls a slot not touched for a while, and with one box per slot
//! finding it meant two cache misses in a row (the vector's pointer, then the
//! box); with chunks the vector of pointers is `CHUNK` times shorter and
//! stays in the cache.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use super::ready::Ready;
use super::slot::{Slot, SlotProj, Store};

/// No next free slot.
const NONE: usize = usize::MAX;

/// How many slots are boxed together. Small, so that a stream at a small
/// limit allocates little more than it uses.
const CHUNK: usize = 8;

pin_project! {
    /// One slot with its waker, made (in a chunk) the first time the
    /// stream needs that many slots, then reused for item after item. A box
    /// never moves, so its futures stay pinned while the vector of boxes
    /// grows.
    struct Entry<Fut: Future, Pm> {
        #[pin]
        slot: Slot<Fut, Pm>,
        // Marks this slot ready when woken (see `ready.rs`).
        waker: Waker,
        // The free list runs through the entries, so it needs no vector.
        next_free: usize,
    }
}

/// `CHUNK` slots, boxed together.
type Chunk<Fut, Pm> = [Entry<Fut, Pm>; CHUNK];

/// Slots boxed a chunk at a time as the stream first needs them, then reused:
/// after the stream's concurrency has peaked nothing is allocated.
pub(crate) struct HeapStore<Fut: Future, Pm> {
    /// Slot `i` is element `i % CHUNK` of chunk `i / CHUNK`.
    chunks: Vec<Pin<Box<Chunk<Fut, Pm>>>>,
    /// The first empty slot, or `NONE`.
    free: usize,
    ready: Ready,
    /// In order: the slots of the items started and not yet yielded, oldest
    /// first (it grows to the stream's window once, then is reused).
    order: VecDeque<usize>,
}

impl<Fut: Future, Pm> Default for HeapStore<Fut, Pm> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            free: NONE,
            ready: Ready::default(),
            order: VecDeque::new(),
        }
    }
}

impl<Fut: Future, Pm> HeapStore<Fut, Pm> {
    /// Slot `i`'s entry, pinned.
    #[inline]
    fn entry(&mut self, i: usize) -> Pin<&mut Entry<Fut, Pm>> {
        super::pin_array::index(self.chunks[i / CHUNK].as_mut(), i % CHUNK)
    }

    /// A new chunk, its slots linked into the free list lowest first. Out of
    /// line: it happens once per `CHUNK` slots, so `take_free` stays small.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let first = self.chunks.len() * CHUNK;
        let ready = &mut self.ready;
        let chunk = core::array::from_fn(|k| Entry {
            slot: Slot::Empty,
            waker: ready.add_slot(),
            next_free: if k + 1 < CHUNK { first + k + 1 } else { NONE },
        });
        self.chunks.push(Box::pin(chunk));
        self.free = first;
    }
}

impl<Fut: Future, Pm> Store<Fut, Pm> for HeapStore<Fut, Pm> {
    const SWEEPS: bool = false;

    fn len(self: Pin<&mut Self>) -> usize {
        self.chunks.len() * CHUNK
    }

    #[inline]
    fn take_free(self: Pin<&mut Self>) -> usize {
        let this = self.get_mut();
        if this.free == NONE {
            this.grow();
        }
        let i = this.free;
        this.free = *this.entry(i).project().next_free;
        i
    }

    fn put_free(self: Pin<&mut Self>, i: usize) {
        let this = self.get_mut();
        let free = this.free;
        *this.entry(i).project().next_free = free;
        this.free = i;
    }

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<Fut, Pm>> {
        self.get_mut().entry(i).project().slot
    }

    fn poll_slot(
        self: Pin<&mut Self>,
        i: usize,
        _cx: &mut Context<'_>,
    ) -> Option<Poll<Fut::Output>> {
        let entry = self.get_mut().entry(i).project();
        match entry.slot.project() {
            SlotProj::Running { fut, .. } => Some(fut.poll(&mut Context::from_waker(entry.waker))),
            _ => None,
        }
    }

    #[inline]
    fn poll_gate<R>(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Option<Poll<R>> {
        self.get_mut().ready.poll_gate(poll)
    }

    fn settled(self: Pin<&mut Self>) {
        self.get_mut().ready.gate_settled();
    }

    fn wake_up(self: Pin<&mut Self>) {
        self.get_mut().ready.wake_up();
    }

    fn sleep(self: Pin<&mut Self>, cx: &Context<'_>, running: bool, want_gate: bool) -> bool {
        self.get_mut().ready.sleep(cx, running, want_gate)
    }

    fn next_woken(self: Pin<&mut Self>) -> Option<usize> {
        let this = self.get_mut();
        // A wake-up of a slot made later than the entries we have cannot
        // happen; the check only keeps a bug from indexing out of bounds.
        let made = this.chunks.len() * CHUNK;
        this.ready.next().filter(|&i| i < made)
    }

    fn has_woken(&self) -> bool {
        self.ready.has_woken()
    }

    fn started(self: Pin<&mut Self>, i: usize) {
        self.get_mut().order.push_back(i);
    }

    fn oldest(self: Pin<&mut Self>) -> Option<usize> {
        self.order.front().copied()
    }

    fn pop_oldest(self: Pin<&mut Self>) {
        self.get_mut().order.pop_front();
    }
}
