//! The slots of a backlog stream and the stores that keep them.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

pin_project! {
    /// One item's place: empty, running with its permit `Pm`, or finished.
    #[project = SlotProj]
    #[project_replace = SlotOwn]
    pub(crate) enum Slot<Fut: Future, Pm> {
        Empty,
        // Fields drop in order: the future first, then its permit goes back.
        Running {
            #[pin]
            fut: Fut,
            permit: Pm,
            seq: u64,
        },
        Done {
            out: Fut::Output,
            seq: u64,
        },
    }
}

/// Where a stream keeps its slots, and how it learns which to poll.
pub(crate) trait Store<Fut: Future, Pm> {
    /// `true`: the slots' futures are polled with the stream's own waker, so
    /// any wake-up means "poll every running future" (a sweep). `false`:
    /// each slot has its own waker, and [`next_woken`](Self::next_woken)
    /// names the slots that were woken.
    const SWEEPS: bool;
    /// How many slots exist now. Takes the pinned store, not `&self`: a
    /// shared reference to an array store would cover its running futures
    /// (see `Engine::pop_ready`).
    fn len(self: Pin<&mut Self>) -> usize;
    /// A free slot, made if none is free. The caller has made sure that
    /// fewer than `capacity()` slots are in use.
    fn take_free(self: Pin<&mut Self>) -> usize;
    /// Slot `i` is empty again.
    fn put_free(self: Pin<&mut Self>, i: usize);
    /// Slot `i`, pinned.
    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<Fut, Pm>>;
    /// Polls the future running in slot `i` with the waker that belongs to
    /// it; `None` if the slot runs nothing.
    fn poll_slot(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>)
        -> Option<Poll<Fut::Output>>;
    /// Polls the gate: with the gate's own waker (per-slot wakers), which
    /// lets the store skip the poll (`None`) while the gate has not woken
    /// since it last returned `Pending`; or with `cx`.
    fn poll_gate<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Option<Poll<R>>;
    /// A permit was settled: the gate is polled again next time, woken or
    /// not (the gate's contract). Sweeping stores poll it every time anyway.
    fn settled(self: Pin<&mut Self>) {}
    /// Per-slot wakers only: the stream is being polled; takes the slots
    /// woken so far.
    fn wake_up(self: Pin<&mut Self>);
    /// Per-slot wakers only: the stream returns `Pending`; later wake-ups
    /// wake `cx`. Returns whether a wake-up came in meanwhile that needs
    /// another poll (of a slot if `running`, of the gate if `want_gate`).
    fn sleep(self: Pin<&mut Self>, cx: &Context<'_>, running: bool, want_gate: bool) -> bool;
    /// Per-slot wakers only: the next slot of the snapshots taken.
    fn next_woken(self: Pin<&mut Self>) -> Option<usize>;
    /// Per-slot wakers only: whether slots of the snapshots taken may be
    /// left to hand out.
    fn has_woken(&self) -> bool;
    /// In order: slot `i` started the next item. A store that remembers the
    /// order (the heap store) finds the next output to yield without a
    /// search; the default forgets it.
    fn started(self: Pin<&mut Self>, i: usize) {
        let _ = i;
    }
    /// In order: the slot of the oldest item not yet yielded, if the store
    /// remembers the order; `None`: search.
    fn oldest(self: Pin<&mut Self>) -> Option<usize> {
        None
    }
    /// In order: the oldest item was yielded.
    fn pop_oldest(self: Pin<&mut Self>) {}
}

/// `N` slots in an array inside the pinned stream: no allocation at all, and
/// so no waker per slot (a waker pointing into the stream would dangle once
/// it outlived the stream). Every wake-up sweeps the running futures.
impl<Fut: Future, Pm, const N: usize> Store<Fut, Pm> for [Slot<Fut, Pm>; N] {
    const SWEEPS: bool = true;

    fn len(self: Pin<&mut Self>) -> usize {
        N
    }

    fn take_free(mut self: Pin<&mut Self>) -> usize {
        // Through the pin projection, not `&Slot`s: a shared reference to a
        // running slot would invalidate its future's pointers into itself.
        (0..N)
            .find(|&i| matches!(self.as_mut().slot(i).project(), SlotProj::Empty))
            .expect("a free slot (the caller checked)")
    }

    fn put_free(self: Pin<&mut Self>, _i: usize) {}

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<Fut, Pm>> {
        super::pin_array::index(self, i)
    }

    fn poll_slot(
        self: Pin<&mut Self>,
        i: usize,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Fut::Output>> {
        match self.slot(i).project() {
            SlotProj::Running { fut, .. } => Some(fut.poll(cx)),
            _ => None,
        }
    }

    fn poll_gate<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Option<Poll<R>> {
        Some(poll(cx))
    }

    fn wake_up(self: Pin<&mut Self>) {}

    fn sleep(self: Pin<&mut Self>, _cx: &Context<'_>, _running: bool, _want_gate: bool) -> bool {
        false
    }

    fn next_woken(self: Pin<&mut Self>) -> Option<usize> {
        None
    }

    fn has_woken(&self) -> bool {
        false
    }
}
