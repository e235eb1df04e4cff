//! The engine every backlog stream runs on: admission through a [`Gate`],
//! polling the woken futures (or sweeping them all, without per-slot
//! wakers), in-order hand-out, stop and close.

use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::gate::Gate;
use super::progress::Progress;
use super::slot::{Slot, SlotOwn, SlotProj, Store};

/// Why no more work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Admitting items.
    Open,
    /// The backlog ended.
    Drained,
    /// An output matched `stop_on_err`.
    Stopped,
    /// The gate failed (a semaphore: closed). Its error is yielded after the
    /// work in flight.
    Failed,
}

pin_project! {
    /// The engine of every backlog stream: gate `G` (whose error is `E`),
    /// backlog `St`, function `F`, slots in `S`.
    #[project = EngineProj]
    pub(crate) struct Engine<G, St, F, Fut: IntoFuture, S, E> {
        #[pin]
        gate: G,
        #[pin]
        source: St,
        f: F,
        #[pin]
        slots: S,
        ctl: Control<<Fut as IntoFuture>::Output, E>,
    }
}

/// The engine's bookkeeping, in one struct so that projecting the pinned
/// engine (twice per item) makes five references, not one per counter.
struct Control<O, E> {
    // Most slots in use (running + finished, not yet yielded) at once,
    // and the most the store can have.
    limit: usize,
    capacity: usize,
    limit_set: bool,
    running: usize,
    buffered: usize,
    // Sweeping stores: where the next sweep starts.
    cursor: usize,
    started: u64,
    done: u64,
    // In order: the number of the next item to yield.
    next_out: u64,
    ordered: bool,
    stop_if: Option<fn(&O) -> bool>,
    phase: Phase,
    error: Option<E>,
    finished: bool,
}

type Output<Fut> = <Fut as IntoFuture>::Output;
type Item<Fut, E> = Result<Output<Fut>, E>;

impl<G, St, F, Fut: IntoFuture, S, E> Engine<G, St, F, Fut, S, E> {
    pub(crate) fn new(gate: G, source: St, f: F, slots: S, capacity: usize) -> Self {
        Self {
            gate,
            source,
            f,
            slots,
            ctl: Control {
                limit: capacity,
                capacity,
                limit_set: false,
                running: 0,
                buffered: 0,
                cursor: 0,
                started: 0,
                done: 0,
                next_out: 0,
                ordered: false,
                stop_if: None,
                phase: Phase::Open,
                error: None,
                finished: false,
            },
        }
    }

    /// At most `n` slots in use (capped by the store's capacity).
    pub(crate) fn set_limit(&mut self, n: usize) {
        assert!(n > 0, "limit: the limit must be at least 1");
        self.ctl.limit = n.min(self.ctl.capacity);
        self.ctl.limit_set = true;
    }

    pub(crate) fn progress(&self) -> Progress
    where
        St: Stream,
    {
        let waiting = match (self.ctl.phase, self.source.size_hint()) {
            (Phase::Drained, _) => Some(0),
            (_, (low, Some(high))) if low == high => Some(low),
            _ => None,
        };
        Progress {
            done: self.ctl.done,
            in_flight: self.ctl.running,
            buffered: self.ctl.buffered,
            waiting,
        }
    }

    /// Outputs in source order; without an explicit limit, the window (the
    /// most items between started and yielded) is `window`.
    pub(crate) fn set_in_order(&mut self, window: impl FnOnce() -> usize) {
        if !self.ctl.limit_set {
            self.ctl.limit = self.ctl.limit.min(window().max(1));
        }
        self.ctl.ordered = true;
    }

    pub(crate) fn set_stop_if(&mut self, stop: fn(&Output<Fut>) -> bool) {
        self.ctl.stop_if = Some(stop);
    }

    pub(crate) fn gate(&self) -> &G {
        &self.gate
    }

    /// The gate, before the stream is pinned (to configure it).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn gate_mut_unpinned(&mut self) -> &mut G {
        &mut self.gate
    }

    pub(crate) fn gate_mut(self: Pin<&mut Self>) -> Pin<&mut G> {
        self.project().gate
    }

    pub(crate) fn source(&self) -> &St {
        &self.source
    }

    pub(crate) fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
        self.project().source
    }

    /// The stream has yielded its last item.
    pub(crate) fn is_finished(&self) -> bool {
        self.ctl.finished
    }

    /// The stream's `size_hint`: what is held now, plus what the source may
    /// still give.
    pub(crate) fn size_hint(&self) -> (usize, Option<usize>)
    where
        St: Stream,
    {
        if self.ctl.finished {
            return (0, Some(0));
        }
        let (_, high) = self.source.size_hint();
        let held = self.ctl.running + self.ctl.buffered;
        // Plus one for a possible final error.
        (held, high.and_then(|h| h.checked_add(held + 1)))
    }

    pub(crate) fn fmt_fields(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("started", &self.ctl.started)
            .field("done", &self.ctl.done)
            .field("in_flight", &self.ctl.running)
            .field("buffered", &self.ctl.buffered)
            .field("limit", &self.ctl.limit)
            .field("in_order", &self.ctl.ordered)
            .finish_non_exhaustive()
    }
}

impl<G, St, F, Fut, S> Engine<G, St, F, Fut, S, G::Error>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
    S: Store<Fut::IntoFuture, G::Permit>,
{
    pub(crate) fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Item<Fut, G::Error>>> {
        let mut this = self.project();
        if this.ctl.finished {
            return Poll::Ready(None);
        }
        if let Some(out) = this.pop_ready() {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.poll_running(cx) {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.fill(cx) {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.pop_ready() {
            return Poll::Ready(Some(Ok(out)));
        }
        if this.ctl.running == 0 && this.ctl.buffered == 0 && this.ctl.phase != Phase::Open {
            this.ctl.finished = true;
            return Poll::Ready(this.ctl.error.take().map(Err));
        }
        let want_gate = this.ctl.phase == Phase::Open && this.has_room();
        if this
            .slots
            .as_mut()
            .sleep(cx, this.ctl.running > 0, want_gate)
        {
            // Woken while we were busy: come back for it.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<G, St, F, Fut, S> EngineProj<'_, G, St, F, Fut, S, G::Error>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    G: Gate<St::Item, Fut::Output>,
    S: Store<Fut::IntoFuture, G::Permit>,
{
    /// Yields a finished output: any (completion order) or the next in order.
    /// The common case (nothing parked) inline; the search out of line.
    #[inline]
    fn pop_ready(&mut self) -> Option<Output<Fut>> {
        if self.ctl.buffered == 0 {
            return None;
        }
        self.pop_parked()
    }

    #[inline(never)]
    fn pop_parked(&mut self) -> Option<Output<Fut>> {
        let (ordered, next_out) = (self.ctl.ordered, self.ctl.next_out);
        let is_next = |slot: Pin<&mut Slot<_, _>>| {
            matches!(slot.project(),
                SlotProj::Done { seq, .. } if !ordered || *seq == next_out)
        };
        let i = match self.slots.as_mut().oldest() {
            // The store knows which slot runs the next item: O(1).
            Some(i) => {
                if !is_next(self.slots.as_mut().slot(i)) {
                    return None;
                }
                self.slots.as_mut().pop_oldest();
                i
            }
            // Looked at through the pin projection, not a `&Slot`: a shared
            // reference to a running slot would cover its (possibly
            // self-referential) future and invalidate the future's own
            // pointers into itself (Miri's Stacked Borrows flags it).
            None => {
                (0..self.slots.as_mut().len()).find(|&i| is_next(self.slots.as_mut().slot(i)))?
            }
        };
        let SlotOwn::Done { out, .. } = self.slots.as_mut().slot(i).project_replace(Slot::Empty)
        else {
            unreachable!("slot {i} was checked to be done")
        };
        self.slots.as_mut().put_free(i);
        self.ctl.buffered -= 1;
        self.ctl.done += 1;
        self.ctl.next_out += u64::from(ordered);
        Some(out)
    }

    /// Polls the futures that may have work to do: the woken ones (per-slot
    /// wakers) or all of them (a sweep). In completion order, returns the
    /// first output found (nothing is parked, so the slots never outnumber
    /// the permits held); in order, parks every output in its slot.
    fn poll_running(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        if S::SWEEPS {
            self.sweep(cx)
        } else {
            self.poll_woken(cx)
        }
    }

    /// Room for one more item.
    fn has_room(&self) -> bool {
        self.ctl.running + self.ctl.buffered < self.ctl.limit
    }

    /// Polls each slot woken since the last look, at most once per call of
    /// `poll_next`: those left over from the previous call if any (it
    /// returned early with an output), else those woken since.
    fn poll_woken(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        if !self.slots.has_woken() {
            if self.ctl.running == 0 {
                // Stale wake-ups of empty slots can wait.
                return None;
            }
            self.slots.as_mut().wake_up();
        }
        while let Some(i) = self.slots.as_mut().next_woken() {
            // A stale wake-up of an empty or finished slot polls nothing.
            if let Some(Poll::Ready(out)) = self.slots.as_mut().poll_slot(i, cx) {
                if let Some(out) = self.finish(i, out) {
                    return Some(out);
                }
            }
        }
        None
    }

    /// Polls every running future, from where the last sweep stopped, so
    /// each gets its turn.
    fn sweep(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        let len = self.slots.as_mut().len();
        let mut left = self.ctl.running;
        let mut i = self.ctl.cursor;
        while left > 0 {
            if i >= len {
                i = 0;
            }
            if let Some(polled) = self.slots.as_mut().poll_slot(i, cx) {
                left -= 1;
                if let Poll::Ready(out) = polled {
                    if let Some(out) = self.finish(i, out) {
                        self.ctl.cursor = i + 1;
                        return Some(out);
                    }
                }
            }
            i += 1;
        }
        None
    }

    /// The future in slot `i` finished with `out`: it is dropped and its
    /// permit settled. In completion order the output is returned to go
    /// straight out and the slot is free again; in order it waits in the
    /// slot for its turn.
    // Always inlined: called from three places, LLVM kept it out of line,
    // and the call (arguments moved, registers saved) cost about 40 of some
    // 250 instructions per ready-at-once item (callgrind).
    #[inline(always)]
    fn finish(&mut self, i: usize, out: Output<Fut>) -> Option<Output<Fut>> {
        // Drops the finished future, then settles its permit.
        let SlotOwn::Running { permit, seq, .. } =
            self.slots.as_mut().slot(i).project_replace(Slot::Empty)
        else {
            unreachable!("slot {i} was polled, so it was running")
        };
        // Counted out first: if `settle` panics (a gate's user code), a
        // stream polled again after the caught panic does not wait for it.
        self.ctl.running -= 1;
        // The gate is polled again next time whatever `settle` does (even
        // if it panics): room it waits for may have come back.
        self.slots.as_mut().settled();
        self.gate.as_mut().settle(permit, &out);
        self.check_stop(&out);
        if self.ctl.ordered {
            self.slots.as_mut().slot(i).set(Slot::Done { out, seq });
            self.ctl.buffered += 1;
            return None;
        }
        self.slots.as_mut().put_free(i);
        self.ctl.done += 1;
        Some(out)
    }

    /// Starts items while a slot is free and the gate admits them. Returns
    /// an output to yield at once if a new future finished on its first poll.
    fn fill(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        while self.ctl.phase == Phase::Open && self.has_room() {
            let (mut gate, source) = (self.gate.as_mut(), self.source.as_mut());
            let room = self.ctl.limit - self.ctl.running - self.ctl.buffered;
            let polled = self.slots.as_mut().poll_gate(cx, |cx| {
                gate.as_mut().room(room);
                gate.poll_admit(source, cx)
            });
            let (item, permit) = match polled {
                // `None`: the gate has not woken since it said `Pending`.
                None | Some(Poll::Pending) => return None,
                Some(Poll::Ready(Some(Ok(admitted)))) => admitted,
                Some(Poll::Ready(Some(Err(e)))) => {
                    self.ctl.phase = Phase::Failed;
                    self.ctl.error = Some(e);
                    return None;
                }
                Some(Poll::Ready(None)) => {
                    self.ctl.phase = Phase::Drained;
                    return None;
                }
            };
            let fut = (self.f)(item).into_future();
            let seq = self.ctl.started;
            self.ctl.started += 1;
            let i = self.slots.as_mut().take_free();
            self.slots
                .as_mut()
                .slot(i)
                .set(Slot::Running { fut, permit, seq });
            if self.ctl.ordered {
                self.slots.as_mut().started(i);
            }
            self.ctl.running += 1;
            if let Some(Poll::Ready(out)) = self.slots.as_mut().poll_slot(i, cx) {
                if let Some(out) = self.finish(i, out) {
                    return Some(out);
                }
            }
        }
        None
    }

    fn check_stop(&mut self, out: &Output<Fut>) {
        if let Some(stop) = self.ctl.stop_if {
            if stop(out) && self.ctl.phase == Phase::Open {
                self.ctl.phase = Phase::Stopped;
                self.gate.as_mut().stop();
            }
        }
    }
}
