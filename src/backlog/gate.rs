//! [`Gate`]: how the items of a backlog stream get their permits, and
//! [`SemaphoreGate`], the gate of [`Semaphore::run_all`] and friends.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

use crate::waiter::Waiter;
use crate::{AcquireError, Permit, Semaphore, TryAcquireError};

/// How the items of a backlog stream get their permits: the one part of
/// [`RunWith`](super::RunWith) (and of [`Semaphore::run_all`], which is
/// `RunWith` over a [`SemaphoreGate`]) that differs between kinds of limit.
///
/// The stream owns the slots, the wake-ups, the order of outputs and
/// `stop_on_err`; the gate decides **which item starts next and with what
/// permit**. Whenever the stream has room for one more item in flight, it
/// calls [`poll_admit`](Self::poll_admit) with the backlog; when an item's
/// future finishes, it hands that item's permit and output to
/// [`settle`](Self::settle).
///
/// - A plain limit (a semaphore) acquires a permit first and then pulls one
///   item, so nothing is pulled before it can run.
/// - A per-key limit pulls items into a small lookahead of its own and admits
///   the first one whose key has room: it chooses which item goes next.
/// - A limit that needs asynchronous work per item (a lease from a server)
///   keeps that work in progress inside the gate, which is pinned, up to
///   the [`room`](Self::room) the stream has at once, and may fail with its
///   own [`Error`](Self::Error).
/// - An adaptive limit measures each item in [`settle`](Self::settle).
///
/// The permit's `Drop` is what gives it back. An item that does not finish
/// (the stream is dropped with it in flight, or its future panics) is never
/// settled: its permit is just dropped, so a gate that must tell a drop from
/// a finish does that in the permit's `Drop`.
///
/// # Examples
///
/// A gate that lets everything through and counts the outputs that were
/// errors (a real one would hold back items, as [`SemaphoreGate`] does).
/// `RunWith` needs `alloc` ([`RunWithFixed`](super::RunWithFixed) does not):
///
#[cfg_attr(feature = "alloc", doc = "```")]
#[cfg_attr(not(feature = "alloc"), doc = "```ignore")]
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// use futures::{Stream, StreamExt};
/// use permits::{Gate, RunWith};
///
/// #[derive(Default)]
/// struct CountErrors {
///     errors: usize,
/// }
///
/// impl<T, V, E> Gate<T, Result<V, E>> for CountErrors {
///     type Permit = ();
///     type Error = std::convert::Infallible;
///
///     fn poll_admit<B: Stream<Item = T> + ?Sized>(
///         self: Pin<&mut Self>,
///         backlog: Pin<&mut B>,
///         cx: &mut Context<'_>,
///     ) -> Poll<Option<Result<(T, ()), Self::Error>>> {
///         // Nothing to wait for: the next item, with an empty permit.
///         backlog.poll_next(cx).map(|item| item.map(|item| Ok((item, ()))))
///     }
///
///     fn settle(mut self: Pin<&mut Self>, _permit: (), output: &Result<V, E>) {
///         self.errors += usize::from(output.is_err());
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let items = futures::stream::iter(0..10u32);
/// let check = |n: u32| async move { if n % 3 == 0 { Err(n) } else { Ok(n) } };
/// let mut stream = std::pin::pin!(RunWith::new(CountErrors::default(), items, check).limit(4));
/// let mut outputs = 0;
/// while let Some(output) = stream.next().await {
///     let Ok(_result) = output; // this gate never fails
///     outputs += 1;
/// }
/// assert_eq!(outputs, 10);
/// assert_eq!(stream.gate().errors, 4); // 0, 3, 6, 9
/// # });
/// ```
pub trait Gate<T, O> {
    /// What an item holds while it runs; dropping it gives it back.
    type Permit;
    /// Why no more items can be admitted (for a semaphore: it was closed).
    /// The stream yields it once, last, after the work in flight.
    type Error;

    /// Admits the next item: waits for room, takes the item from `backlog`
    /// (which item is the gate's choice; a gate that holds items back keeps
    /// them itself, in bounded memory) and returns it with its permit.
    ///
    /// `Ready(None)`: the backlog ended and the gate holds no items; the
    /// stream ends after the work in flight and does not call this again.
    /// `Ready(Some(Err(e)))`: the stream starts nothing more, yields `Err(e)`
    /// after the work in flight and does not call this again. `Pending`: the
    /// gate (or the backlog) will wake `cx`'s waker when to call again, or
    /// the gate waits for one of its own items to be [settled](Self::settle).
    ///
    /// The stream calls this only while it has room for one more item and
    /// runs the item it is given at once. After a `Pending` it calls again
    /// once `cx`'s waker was woken (by the gate or by the backlog), as any
    /// poll contract goes, and also after every [`settle`](Self::settle),
    /// woken or not: a gate that waits for room its own items give back
    /// need not wake anyone. That waker belongs to the stream, not to the
    /// task, so it stays valid if the stream moves to another task.
    // The shape of `Stream::poll_next` with a permit beside the item, on
    // purpose: an alias would hide it.
    #[allow(clippy::type_complexity)]
    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Self::Permit), Self::Error>>>;

    /// The stream has room for `n` more items (at least one) and calls
    /// [`poll_admit`](Self::poll_admit) next. A gate whose admissions take
    /// a while (a lease from a server: one round trip each) may prepare up
    /// to `n` of them at once instead of one after another; preparing more
    /// would hold permits no item can use yet.
    ///
    /// `n` is the stream's [`limit`](super::RunWith::limit) (`usize::MAX`
    /// without one) minus its items running or waiting to be yielded in
    /// order. It shrinks only by admissions; it grows as items finish (in
    /// order: as they are yielded) without another call until the next
    /// `poll_admit`. The default ignores it.
    fn room(self: Pin<&mut Self>, n: usize) {
        let _ = n;
    }

    /// The item that was given `permit` finished with `output` (before the
    /// output is yielded). Called inside the stream's poll, which then calls
    /// [`poll_admit`](Self::poll_admit) when it has room, without waiting for
    /// a wake. The default drops the permit.
    fn settle(self: Pin<&mut Self>, permit: Self::Permit, output: &O) {
        let _ = output;
        drop(permit);
    }

    /// The stream admits nothing more ([`stop_on_err`](super::RunWith::stop_on_err)
    /// matched), though it may still run for the items in flight: give back
    /// what an admission in progress holds. The default does nothing; what
    /// the gate holds then goes when the stream is dropped.
    fn stop(self: Pin<&mut Self>) {}
}

pin_project! {
    /// The [`Gate`] of [`Semaphore::run_all`] and friends: one permit of a
    /// semaphore per item, acquired *before* the item is pulled, so an item
    /// is taken from the backlog only once it can run.
    ///
    /// While the backlog has nothing to give (`Pending`), the permit goes back
    /// and the gate asks for one again when the backlog wakes it.
    ///
    /// # Turns
    ///
    /// When no permit is free, the gate joins the semaphore's FIFO queue like
    /// any other acquire, one at a time, so several streams and plain
    /// `acquire` callers take turns. One exception keeps a lone stream off
    /// the queue's lock: while the gate's own items hold permits and nobody
    /// is queued, it does not queue but waits for one of its items to finish
    /// (whose permit is then free for whoever asks first, which is the gate
    /// unless someone queued meanwhile, who then gets it). While it waits so,
    /// room made by others (a raise of the limit with
    /// [`set_limit`](Semaphore::set_limit) or
    /// [`add_permits`](Semaphore::add_permits), a permit given back by
    /// another holder) is used when the next of the gate's items finishes,
    /// not at once: the price of giving a permit back with one
    /// compare-and-swap, which wakes nobody. So an item must not wait for a
    /// later item of its own stream to start, counting on room from outside
    /// (with a fixed limit that deadlocks anyway); give such work its own
    /// stream, or `run` each item. (A limit moved by an adaptive limiter's
    /// gate changes as an item finishes, so the stream sees it at once.)
    ///
    /// # Wrapping it
    ///
    /// A gate built on this one must hand every permit it was given back
    /// through [`Gate::settle`], from its own `settle` of the item that
    /// finished: that is how it knows one of its own is free, and the stream
    /// polls the gate again after every `settle`, which is what ends its
    /// wait (it registers no waker for it). A permit dropped some other way
    /// still counts as out, and the gate may wait for it until another item
    /// finishes.
    #[derive(Debug)]
    pub struct SemaphoreGate<'a> {
        sem: &'a Semaphore,
        // The acquire of the next item's permit; a fresh one after each
        // success.
        #[pin]
        next: Waiter<&'a Semaphore>,
        // Permits out to this gate's items (admitted, not yet settled).
        out: usize,
        // `next` is in the semaphore's queue (it returned `Pending`).
        queued: bool,
    }
}

impl<'a> SemaphoreGate<'a> {
    /// A gate that gives each item one permit of `sem`.
    pub fn new(sem: &'a Semaphore) -> Self {
        Self {
            sem,
            next: Waiter::new(sem, 1),
            out: 0,
            queued: false,
        }
    }

    /// The semaphore the permits come from.
    pub fn semaphore(&self) -> &'a Semaphore {
        self.sem
    }

    /// One of this gate's permits was given back (dropped just before):
    /// what [`settle`](Gate::settle) does after dropping it, for a gate that
    /// wraps this one and gives the permit back its own way.
    ///
    /// No wake: the stream polls the gate again after every `settle`.
    pub(crate) fn returned(self: Pin<&mut Self>) {
        *self.project().out -= 1;
    }

    /// The part of [`poll_admit`](Gate::poll_admit) that takes the queue:
    /// out of line, so that its common cases (a permit free, or
    /// waiting for one of ours) stay small enough to inline.
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn poll_queued<T, B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Permit<'a>), AcquireError>>> {
        let mut this = self.project();
        let sem = *this.sem;
        let permit = match this.next.as_mut().poll_acquire(cx) {
            Poll::Pending => {
                *this.queued = true;
                return Poll::Pending;
            }
            Poll::Ready(result) => {
                *this.queued = false;
                // Resolved: a fresh acquire for the next item.
                this.next.set(Waiter::new(sem, 1));
                match result {
                    Ok((sem, n)) => Permit::new(sem, n),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
            }
        };
        admit(backlog, cx, permit, this.out)
    }
}

impl<'a, T, O> Gate<T, O> for SemaphoreGate<'a> {
    type Permit = Permit<'a>;
    type Error = AcquireError;

    #[inline]
    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        mut self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Permit<'a>), AcquireError>>> {
        let this = self.as_mut().project();
        let sem = *this.sem;
        if !*this.queued {
            match sem.try_acquire() {
                Ok(permit) => return admit(backlog, cx, permit, this.out),
                Err(TryAcquireError::NoPermits) if *this.out > 0 && !sem.state.is_queued() => {
                    // Ours will come back: wait off the queue, for `settle`,
                    // after which the stream polls us again (no waker to
                    // register, nothing to wake).
                    return Poll::Pending;
                }
                Err(TryAcquireError::Closed) => {
                    return Poll::Ready(Some(Err(AcquireError::Closed)))
                }
                // Others are queued, or none of ours is out to come back.
                Err(_) => {}
            }
        }
        self.poll_queued(backlog, cx)
    }

    fn settle(self: Pin<&mut Self>, permit: Permit<'a>, _output: &O) {
        // Given back first, so that it is free when we are polled.
        drop(permit);
        self.returned();
    }

    fn stop(self: Pin<&mut Self>) {
        // Leave the queue if we were in it; a permit handed over goes back.
        let mut this = self.project();
        this.next.set(Waiter::new(*this.sem, 1));
        *this.queued = false;
    }
}

/// With a permit in hand: the next item of `backlog`, if it has one now.
fn admit<'a, T, B: Stream<Item = T> + ?Sized>(
    backlog: Pin<&mut B>,
    cx: &mut Context<'_>,
    permit: Permit<'a>,
    out: &mut usize,
) -> Poll<Option<Result<(T, Permit<'a>), AcquireError>>> {
    match backlog.poll_next(cx) {
        Poll::Ready(Some(item)) => {
            *out += 1;
            Poll::Ready(Some(Ok((item, permit))))
        }
        Poll::Ready(None) => Poll::Ready(None),
        // The permit goes back (dropped here) while the backlog has nothing:
        // it wakes us, and we ask for a permit again then.
        Poll::Pending => Poll::Pending,
    }
}
