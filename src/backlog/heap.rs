//! The heap store of [`RunAll`](super::RunAll) and [`RunWith`](super::RunWith):
//! any number of slots, each with its own waker.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use super::ready::Ready;
use super::slot::{Slot, SlotProj, Store};

/// No next free slot.
const NONE: usize = usize::MAX;

pin_project! {
    /// One slot with its waker, boxed together the first time the stream
    /// needs that many slots, then reused for item after item. A box never
    /// moves, so its future stays pinned without `unsafe` while the vector
    /// of boxes grows.
    struct Entry<Fut: Future, Pm> {
        #[pin]
        slot: Slot<Fut, Pm>,
        // Marks this slot ready when woken (see `ready.rs`).
        waker: Waker,
        // The free list runs through the entries, so it needs no vector.
        next_free: usize,
    }
}

/// Slots boxed one by one as the stream first needs them, then reused:
/// after the stream's concurrency has peaked nothing is allocated.
pub(crate) struct HeapStore<Fut: Future, Pm> {
    entries: Vec<Pin<Box<Entry<Fut, Pm>>>>,
    /// The first empty slot, or `NONE`.
    free: usize,
    ready: Ready,
}

impl<Fut: Future, Pm> Default for HeapStore<Fut, Pm> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: NONE,
            ready: Ready::default(),
        }
    }
}

impl<Fut: Future, Pm> Store<Fut, Pm> for HeapStore<Fut, Pm> {
    const SWEEPS: bool = false;

    fn len(self: Pin<&mut Self>) -> usize {
        self.entries.len()
    }

    fn take_free(self: Pin<&mut Self>) -> usize {
        let this = self.get_mut();
        if this.free != NONE {
            let i = this.free;
            this.free = this.entries[i].next_free;
            return i;
        }
        let waker = this.ready.add_slot();
        this.entries.push(Box::pin(Entry {
            slot: Slot::Empty,
            waker,
            next_free: NONE,
        }));
        this.entries.len() - 1
    }

    fn put_free(self: Pin<&mut Self>, i: usize) {
        let this = self.get_mut();
        *this.entries[i].as_mut().project().next_free = this.free;
        this.free = i;
    }

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<Fut, Pm>> {
        self.get_mut().entries[i].as_mut().project().slot
    }

    fn poll_slot(
        self: Pin<&mut Self>,
        i: usize,
        _cx: &mut Context<'_>,
    ) -> Option<Poll<Fut::Output>> {
        let entry = self.get_mut().entries[i].as_mut().project();
        match entry.slot.project() {
            SlotProj::Running { fut, .. } => Some(fut.poll(&mut Context::from_waker(entry.waker))),
            _ => None,
        }
    }

    fn poll_gate<R>(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Option<Poll<R>> {
        self.get_mut().ready.poll_gate(poll)
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
        this.ready.next().filter(|&i| i < this.entries.len())
    }

    fn has_woken(&self) -> bool {
        self.ready.has_woken()
    }
}
