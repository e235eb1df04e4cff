//! The engine both backlog streams run on: permit first, then the item; the
//! sweep over the running futures; in-order hand-out; stop and close.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use super::progress::Progress;
use super::slot::{Slot, SlotOwn, SlotProj, Store};
use crate::permit::Held;
use crate::waiter::Waiter;
use crate::{AcquireError, Semaphore};

/// Why no more work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Pulling items.
    Open,
    /// The source ended.
    Drained,
    /// An output matched `stop_on_err`.
    Stopped,
    /// An acquire failed: the semaphore is closed. `Err(Closed)` is yielded
    /// after the work in flight.
    Closed,
}

pin_project! {
    /// The engine of [`RunAll`](super::RunAll) and [`RunAllFixed`](super::RunAllFixed); `S` keeps the slots.
    #[project = EngineProj]
    pub(crate) struct Engine<'a, St, F, Fut: IntoFuture, S> {
        sem: &'a Semaphore,
        // The acquire of the next item's permit; a fresh one after each success.
        #[pin]
        next_permit: Waiter<&'a Semaphore>,
        #[pin]
        source: St,
        f: F,
        #[pin]
        slots: S,
        // Most slots in use (running + finished, not yet yielded) at once.
        limit: usize,
        limit_set: bool,
        running: usize,
        buffered: usize,
        // Where the next sweep starts.
        cursor: usize,
        started: u64,
        done: u64,
        // In order: the number of the next item to yield.
        next_out: u64,
        ordered: bool,
        stop_if: Option<fn(&Fut::Output) -> bool>,
        phase: Phase,
        finished: bool,
    }
}

type Output<Fut> = <Fut as IntoFuture>::Output;

impl<'a, St, F, Fut: IntoFuture, S> Engine<'a, St, F, Fut, S>
where
    S: Store<'a, Fut::IntoFuture>,
{
    pub(super) fn new(sem: &'a Semaphore, source: St, f: F, slots: S) -> Self {
        let limit = slots.capacity();
        Self {
            sem,
            next_permit: Waiter::new(sem, 1),
            source,
            f,
            slots,
            limit,
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
            finished: false,
        }
    }

    pub(super) fn set_limit(&mut self, n: usize) {
        assert!(n > 0, "RunAll::limit: the limit must be at least 1");
        self.limit = n.min(self.slots.capacity());
        self.limit_set = true;
    }

    pub(super) fn progress(&self) -> Progress
    where
        St: Stream,
    {
        let waiting = match (self.phase, self.source.size_hint()) {
            (Phase::Drained, _) => Some(0),
            (_, (low, Some(high))) if low == high => Some(low),
            _ => None,
        };
        Progress {
            done: self.done,
            in_flight: self.running,
            buffered: self.buffered,
            waiting,
        }
    }

    /// Outputs in source order; without an explicit limit, the window is the
    /// semaphore's permit count now (the fixed variant keeps `N`).
    pub(super) fn set_in_order(&mut self) {
        #[cfg(feature = "alloc")]
        if !self.limit_set && self.limit == usize::MAX {
            self.limit = self.sem.total_permits().max(1);
        }
        self.ordered = true;
    }

    pub(super) fn set_stop_if(&mut self, stop: fn(&Output<Fut>) -> bool) {
        self.stop_if = Some(stop);
    }

    pub(super) fn source(&self) -> &St {
        &self.source
    }

    pub(super) fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
        self.project().source
    }

    /// The stream has yielded its last item.
    pub(super) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The stream's `size_hint`: what is held now, plus what the source may
    /// still give.
    pub(super) fn size_hint(&self) -> (usize, Option<usize>)
    where
        St: Stream,
    {
        if self.finished {
            return (0, Some(0));
        }
        let (_, high) = self.source.size_hint();
        let held = self.running + self.buffered;
        // Plus one for a possible final `Err(Closed)`.
        (held, high.and_then(|h| h.checked_add(held + 1)))
    }

    pub(super) fn fmt_fields(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("started", &self.started)
            .field("done", &self.done)
            .field("in_flight", &self.running)
            .field("buffered", &self.buffered)
            .field("limit", &self.limit)
            .field("in_order", &self.ordered)
            .finish_non_exhaustive()
    }
}

impl<'a, St, F, Fut, S> Engine<'a, St, F, Fut, S>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    S: Store<'a, Fut::IntoFuture>,
{
    pub(super) fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Output<Fut>, AcquireError>>> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        if let Some(out) = this.pop_ready() {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.sweep(cx) {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.fill(cx) {
            return Poll::Ready(Some(Ok(out)));
        }
        if let Some(out) = this.pop_ready() {
            return Poll::Ready(Some(Ok(out)));
        }
        if *this.running == 0 && *this.buffered == 0 && *this.phase != Phase::Open {
            *this.finished = true;
            if *this.phase == Phase::Closed {
                return Poll::Ready(Some(Err(AcquireError::Closed)));
            }
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<'a, St, F, Fut, S> EngineProj<'_, 'a, St, F, Fut, S>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
    S: Store<'a, Fut::IntoFuture>,
{
    /// Yields a finished output: any (completion order) or the next in order.
    fn pop_ready(&mut self) -> Option<Output<Fut>> {
        if *self.buffered == 0 {
            return None;
        }
        let (ordered, next_out) = (*self.ordered, *self.next_out);
        let i = (0..self.slots.len()).find(|&i| {
            matches!(&*self.slots.as_mut().slot(i),
                Slot::Done { seq, .. } if !ordered || *seq == next_out)
        })?;
        let SlotOwn::Done { out, .. } = self.slots.as_mut().slot(i).project_replace(Slot::Empty)
        else {
            unreachable!("slot {i} was checked to be done")
        };
        self.slots.as_mut().put_free(i);
        *self.buffered -= 1;
        *self.done += 1;
        *self.next_out += u64::from(ordered);
        Some(out)
    }

    /// Polls the running futures, from where the last sweep stopped, so each
    /// gets its turn. In completion order, returns the first output found
    /// (nothing is parked, so the slots never outnumber the permits held);
    /// in order, parks every output in its slot.
    fn sweep(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        let len = self.slots.len();
        let mut left = *self.running;
        let mut i = *self.cursor;
        while left > 0 {
            if i >= len {
                i = 0;
            }
            let finished = match self.slots.as_mut().slot(i).project() {
                SlotProj::Running { fut, seq, .. } => {
                    left -= 1;
                    match fut.poll(cx) {
                        Poll::Ready(out) => Some((out, *seq)),
                        Poll::Pending => None,
                    }
                }
                _ => None,
            };
            if let Some((out, seq)) = finished {
                if !*self.ordered {
                    *self.cursor = i + 1;
                    return Some(self.hand_out(i, out));
                }
                self.complete(i, out, seq);
            }
            i += 1;
        }
        None
    }

    /// The future in slot `i` finished; in completion order its output goes
    /// straight out and the slot is free again.
    fn hand_out(&mut self, i: usize, out: Output<Fut>) -> Output<Fut> {
        // Drops the finished future, then gives its permit back.
        self.slots.as_mut().slot(i).set(Slot::Empty);
        self.slots.as_mut().put_free(i);
        *self.running -= 1;
        *self.done += 1;
        self.check_stop(&out);
        out
    }

    /// Starts items while a slot is free: permit first, then the item. Returns
    /// an output to yield at once if a new future finished on its first poll.
    fn fill(&mut self, cx: &mut Context<'_>) -> Option<Output<Fut>> {
        while *self.phase == Phase::Open && *self.running + *self.buffered < *self.limit {
            let (sem, n) = match self.next_permit.as_mut().poll_acquire(cx) {
                Poll::Pending => return None,
                Poll::Ready(Ok(held)) => held,
                Poll::Ready(Err(_)) => {
                    *self.phase = Phase::Closed;
                    return None;
                }
            };
            self.next_permit.set(Waiter::new(sem, 1));
            let permit = Held::new(sem, n);
            let item = match self.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => {
                    *self.phase = Phase::Drained;
                    return None;
                }
                // The permit goes back while the source has nothing: the
                // source wakes us, and we queue for a permit again then.
                Poll::Pending => return None,
            };
            let fut = (self.f)(item).into_future();
            let seq = *self.started;
            *self.started += 1;
            let i = self.slots.as_mut().take_free();
            let mut slot = self.slots.as_mut().slot(i);
            slot.set(Slot::Running { fut, permit, seq });
            *self.running += 1;
            let SlotProj::Running { fut, .. } = slot.project() else {
                unreachable!("slot {i} was just filled")
            };
            if let Poll::Ready(out) = fut.poll(cx) {
                if !*self.ordered {
                    return Some(self.hand_out(i, out));
                }
                self.complete(i, out, seq);
            }
        }
        None
    }

    /// In order: the future in slot `i` finished; its permit goes back now,
    /// its output waits in the slot for its turn.
    fn complete(&mut self, i: usize, out: Output<Fut>, seq: u64) {
        self.check_stop(&out);
        self.slots.as_mut().slot(i).set(Slot::Done { out, seq });
        *self.running -= 1;
        *self.buffered += 1;
    }

    fn check_stop(&mut self, out: &Output<Fut>) {
        if let Some(stop) = *self.stop_if {
            if stop(out) && *self.phase == Phase::Open {
                *self.phase = Phase::Stopped;
                // Leave the queue if we were in it; any permit handed over
                // goes back.
                self.next_permit.set(Waiter::new(*self.sem, 1));
            }
        }
    }
}
