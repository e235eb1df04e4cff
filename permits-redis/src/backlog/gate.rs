//! The gate of the backlog stream: a lease per item, local permit first,
//! then the global one, several acquires in flight at once (one round trip
//! each), an item pulled only with its lease in hand.

use std::cell::Cell;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use permits::Gate;

use super::item::Admitted;
use crate::{Acquire, Error, GlobalSemaphore, Lease};

/// `stop_on_err`'s test of an output.
type StopIf<O> = fn(&O) -> bool;

/// Gives each item of the stream a lease of `sem`; `O` is the output of an
/// item (what `stop_if` looks at).
pub(crate) struct LeaseGate<O> {
    sem: GlobalSemaphore,
    /// Acquires in flight: up to the room the stream has, capped by the
    /// local limit and, after the backlog ran dry, by `window`.
    acquiring: FuturesUnordered<Acquire>,
    /// Items admitted and not settled yet (their leases are out).
    out: usize,
    /// What the stream last said it has room for.
    room: usize,
    /// Acquires allowed in flight after the backlog last had nothing: 1,
    /// doubled with each item admitted (so a trickling backlog does not
    /// acquire, then release, a whole window of leases per item).
    window: usize,
    /// The gate's waker, to ask for a poll when an item finishes (there is
    /// room for another acquire) or the gate stops.
    waker: Option<Waker>,
    /// The last `poll_admit` returned `Pending`.
    idle: bool,
    /// Set through `&self` (a `Cell`): the stream's `stop_on_err` is
    /// called before the stream is pinned, with the gate inside it.
    stop_if: Cell<Option<StopIf<O>>>,
    stopped: bool,
}

impl<O> LeaseGate<O> {
    pub(crate) fn new(sem: GlobalSemaphore) -> Self {
        LeaseGate {
            sem,
            acquiring: FuturesUnordered::new(),
            out: 0,
            room: 1,
            window: usize::MAX,
            waker: None,
            idle: false,
            stop_if: Cell::new(None),
            stopped: false,
        }
    }

    pub(crate) fn semaphore(&self) -> &GlobalSemaphore {
        &self.sem
    }

    /// Admit nothing after the first output that `stop` matches.
    pub(crate) fn set_stop_if(&self, stop: fn(&O) -> bool) {
        self.stop_if.set(Some(stop));
    }

    /// Acquires in flight, for the stream's `Debug`.
    pub(crate) fn acquiring(&self) -> usize {
        self.acquiring.len()
    }

    fn wake(&mut self) {
        if std::mem::take(&mut self.idle) {
            if let Some(w) = &self.waker {
                w.wake_by_ref();
            }
        }
    }
}

impl<X, O> Gate<Admitted<X>, O> for LeaseGate<O> {
    type Permit = Lease;
    type Error = Error;

    fn room(self: Pin<&mut Self>, n: usize) {
        self.get_mut().room = n;
    }

    fn poll_admit<B: Stream<Item = Admitted<X>> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Admitted<X>, Lease), Error>>> {
        let this = self.get_mut();
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            this.waker = Some(cx.waker().clone());
        }
        this.idle = false;
        if this.stopped {
            return Poll::Ready(None);
        }
        // Top up: as many acquires as items could start now, within the
        // local limit (more would only queue locally).
        let local_room = this.sem.inner.local_limit.saturating_sub(this.out);
        let want = this.room.min(local_room).min(this.window);
        while this.acquiring.len() < want {
            this.acquiring.push(this.sem.acquire());
        }
        let lease = match this.acquiring.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(lease))) => lease,
            Poll::Ready(Some(Err(e))) => {
                // Closed, or an error retrying does not fix: the others
                // would fail alike. Their leases (if any) go back.
                this.acquiring.clear();
                return Poll::Ready(Some(Err(e)));
            }
            // Nothing in flight (no room within the local limit): an item's
            // settle wakes us.
            Poll::Ready(None) | Poll::Pending => {
                this.idle = true;
                return Poll::Pending;
            }
        };
        match backlog.poll_next(cx) {
            Poll::Ready(Some(mut item)) => {
                item.lost = Some(lease.lost());
                this.out += 1;
                this.window = this.window.saturating_mul(2);
                Poll::Ready(Some(Ok((item, lease))))
            }
            Poll::Ready(None) => {
                this.acquiring.clear();
                Poll::Ready(None)
            }
            Poll::Pending => {
                // Nothing to run: the leases go back rather than sit idle
                // while other processes wait for them. The backlog wakes
                // us; we start again with one acquire.
                drop(lease);
                this.acquiring.clear();
                this.window = 1;
                this.idle = true;
                Poll::Pending
            }
        }
    }

    fn settle(self: Pin<&mut Self>, lease: Lease, output: &O) {
        let this = self.get_mut();
        drop(lease);
        this.out -= 1;
        if this.stop_if.get().is_some_and(|stop| stop(output)) {
            this.stopped = true;
            this.acquiring.clear();
        }
        // Room for another acquire (or, stopped, the end to report).
        this.wake();
    }

    fn stop(self: Pin<&mut Self>) {
        let this = self.get_mut();
        this.stopped = true;
        this.acquiring.clear();
    }
}

impl<O> fmt::Debug for LeaseGate<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGate")
            .field("out", &self.out)
            .field("acquiring", &self.acquiring.len())
            .finish_non_exhaustive()
    }
}
