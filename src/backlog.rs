//! Streams that chew through a backlog: [`Semaphore::run_all`] and friends
//! run an async function on every item of a source, each while holding a
//! permit, and yield the results as a [`Stream`].
//!
//! # How it works
//!
//! The stream owns one acquire ([`Waiter`]) for "the permit of the next item",
//! the source, the function, and a set of *slots*. A slot is empty, runs one
//! item's future together with that item's permit, or holds a finished output
//! until it is yielded. Each `poll_next`:
//!
//! 1. yields a finished output if one is ready (in order, if asked);
//! 2. polls every running future once ("sweep"); a future that completes
//!    drops its permit at once;
//! 3. while a slot is free: acquires a permit, *then* pulls one item, calls
//!    the function and polls the new future once. A future that is done on its
//!    first poll is handed straight out (completion order only).
//!
//! So an item is pulled only with its permit in hand, there are never more
//! futures than slots, and the slots are reused. The heap variant,
//! [`RunAll`], allocates a slot when the stream first needs it and keeps it;
//! the fixed variant, [`RunAllFixed`], has an array of `N` slots inside the
//! stream and never allocates.
//!
//! Each acquire joins the semaphore's FIFO queue like any other, one at a time
//! per stream: several streams and plain `acquire` / `run` callers on one
//! semaphore take turns.
//!
//! The stream has no waker per slot (that would allocate): when it is woken,
//! it polls every running future. That is cheap for the tens to hundreds of
//! items in flight a semaphore usually allows; for many thousands in flight
//! of futures that wake rarely, `FuturesUnordered` scales better.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::permit::Held;
use crate::waiter::Waiter;
use crate::{AcquireError, Semaphore};

pin_project! {
    /// One item's place: empty, running with its permit, or finished.
    #[project = SlotProj]
    #[project_replace = SlotOwn]
    pub(crate) enum Slot<'a, Fut: Future> {
        Empty,
        // Fields drop in order: the future first, then its permit goes back.
        Running {
            #[pin]
            fut: Fut,
            permit: Held<&'a Semaphore>,
            seq: u64,
        },
        Done {
            out: Fut::Output,
            seq: u64,
        },
    }
}

/// Where a stream keeps its slots.
pub(crate) trait Store<'a, Fut: Future> {
    /// How many slots exist now.
    fn len(&self) -> usize;
    /// The most slots this store can ever have.
    fn capacity(&self) -> usize;
    /// A free slot, made if none is free. The caller has made sure that
    /// fewer than `capacity()` slots are in use.
    fn take_free(self: Pin<&mut Self>) -> usize;
    /// Slot `i` is empty again.
    fn put_free(self: Pin<&mut Self>, i: usize);
    /// Slot `i`, pinned.
    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>>;
}

/// `N` slots in an array inside the pinned stream: no allocation at all.
impl<'a, Fut: Future, const N: usize> Store<'a, Fut> for [Slot<'a, Fut>; N] {
    fn len(&self) -> usize {
        N
    }

    fn capacity(&self) -> usize {
        N
    }

    fn take_free(self: Pin<&mut Self>) -> usize {
        self.iter()
            .position(|slot| matches!(slot, Slot::Empty))
            .expect("a free slot (the caller checked)")
    }

    fn put_free(self: Pin<&mut Self>, _i: usize) {}

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>> {
        crate::pin_array::index(self, i)
    }
}

#[cfg(feature = "alloc")]
pub(crate) use heap::HeapStore;

#[cfg(feature = "alloc")]
mod heap {
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use core::future::Future;
    use core::pin::Pin;

    use super::{Slot, Store};

    /// Slots boxed one by one as the stream first needs them, then reused:
    /// a box never moves, so its future stays pinned without `unsafe`, and
    /// after the stream's concurrency has peaked nothing is allocated.
    pub(crate) struct HeapStore<'a, Fut: Future> {
        slots: Vec<Pin<Box<Slot<'a, Fut>>>>,
        /// Indices of empty slots.
        free: Vec<usize>,
    }

    impl<Fut: Future> Default for HeapStore<'_, Fut> {
        fn default() -> Self {
            Self {
                slots: Vec::new(),
                free: Vec::new(),
            }
        }
    }

    impl<'a, Fut: Future> Store<'a, Fut> for HeapStore<'a, Fut> {
        fn len(&self) -> usize {
            self.slots.len()
        }

        fn capacity(&self) -> usize {
            usize::MAX
        }

        fn take_free(self: Pin<&mut Self>) -> usize {
            let this = self.get_mut();
            this.free.pop().unwrap_or_else(|| {
                this.slots.push(Box::pin(Slot::Empty));
                this.slots.len() - 1
            })
        }

        fn put_free(self: Pin<&mut Self>, i: usize) {
            self.get_mut().free.push(i);
        }

        fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>> {
            self.get_mut().slots[i].as_mut()
        }
    }
}

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
    /// The engine of [`RunAll`] and [`RunAllFixed`]; `S` keeps the slots.
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
    fn new(sem: &'a Semaphore, source: St, f: F, slots: S) -> Self {
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

    fn set_limit(&mut self, n: usize) {
        assert!(n > 0, "RunAll::limit: the limit must be at least 1");
        self.limit = n.min(self.slots.capacity());
        self.limit_set = true;
    }

    fn progress(&self) -> Progress
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

    fn fmt_fields(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    fn poll_next(
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

/// How far a backlog stream has got: returned by [`RunAll::progress`] and
/// [`RunAllFixed::progress`].
///
/// Its `Display` is a one-line summary such as
/// `done 120, in flight 16, waiting 864`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Progress {
    /// Outputs yielded so far.
    pub done: u64,
    /// Items running now, each holding a permit.
    pub in_flight: usize,
    /// Items finished but not yet yielded: outputs waiting for an earlier
    /// item (in order), or not yet picked up.
    pub buffered: usize,
    /// Items not started, still in the source, if the source knows exactly
    /// (its `size_hint` is exact, as for ranges and `Vec`s); `None` for an
    /// endless or unknown source.
    pub waiting: Option<usize>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "done {}, in flight {}", self.done, self.in_flight)?;
        if self.buffered > 0 {
            write!(f, ", buffered {}", self.buffered)?;
        }
        match self.waiting {
            Some(n) => write!(f, ", waiting {n}"),
            None => write!(f, ", waiting ?"),
        }
    }
}

pin_project! {
    /// An iterator as a [`Stream`] that is always ready: the source of
    /// [`Semaphore::run_all`] and [`Semaphore::run_all_fixed`].
    #[derive(Debug, Clone)]
    #[must_use = "streams do nothing unless polled"]
    pub struct IterStream<I> {
        iter: I,
    }
}

impl<I> IterStream<I> {
    /// Wraps an iterator.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            iter: iter.into_iter(),
        }
    }

    /// The iterator, with the items not taken yet.
    pub fn iter_mut(self: Pin<&mut Self>) -> &mut I {
        self.project().iter
    }

    /// The iterator, with the items not taken yet.
    pub fn into_inner(self) -> I {
        self.iter
    }
}

impl<I: Iterator> Stream for IterStream<I> {
    type Item = I::Item;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.project().iter.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

/// The methods both backlog streams share, written once.
macro_rules! backlog_stream_methods {
    ($name:ident) => {
        /// Yields the outputs in the order the items came from the source,
        /// like Twisted's `DeferredList`, instead of as they finish.
        ///
        /// A finished item gives its permit back at once; its output waits in
        /// its slot until the items before it are yielded. At most
        /// [`limit`](Self::limit) items are between "started" and "yielded",
        /// so the reorder buffer is bounded too: a slow item holds up new
        /// work once `limit` items are started past it. Without an explicit
        #[doc = concat!("`limit`, the window is the semaphore's permit count when `", stringify!($name), "::in_order` is called")]
        /// (for the fixed variant: `N`).
        ///
        /// Call it before the stream is first polled.
        pub fn in_order(mut self) -> Self {
            #[cfg(feature = "alloc")]
            if !self.inner.limit_set && self.inner.limit == usize::MAX {
                self.inner.limit = self.inner.sem.total_permits().max(1);
            }
            self.inner.ordered = true;
            self
        }

        /// Caps this stream's share: at most `n` items in flight (plus, in
        /// order, finished ones waiting their turn) however many permits the
        /// semaphore has. Without it, the heap variant is bounded only by
        /// the semaphore and the fixed one by `N` (which also caps `n`).
        ///
        /// # Panics
        ///
        /// If `n` is 0.
        pub fn limit(mut self, n: usize) -> Self {
            self.inner.set_limit(n);
            self
        }

        /// A snapshot of how far the stream has got: a few field reads and
        /// the source's `size_hint`.
        pub fn progress(&self) -> Progress
        where
            St: Stream,
        {
            self.inner.progress()
        }

        /// The source, with the items not started yet.
        pub fn source(&self) -> &St {
            &self.inner.source
        }

        /// The source, pinned, with the items not started yet. Once the
        /// stream has ended (source drained, [`stop_on_err`](Self::stop_on_err)
        /// or `Err(Closed)`), exactly the items left in it did not run.
        pub fn source_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
            self.engine().project().source
        }
    };
}

macro_rules! backlog_stream_impls {
    ($name:ident [$($param:tt)*] [$($arg:tt)*]) => {
        impl<'a, St, F, Fut: IntoFuture, $($param)*> $name<'a, St, F, Fut, $($arg)*> {
            backlog_stream_methods!($name);
        }

        impl<'a, St, F, Fut, T, E, $($param)*> $name<'a, St, F, Fut, $($arg)*>
        where
            Fut: IntoFuture<Output = Result<T, E>>,
        {
            /// Stops pulling new items at the first `Ok(Err(_))` output and
            /// yields it (Twisted's `fireOnOneErrback`).
            ///
            /// The items already in flight **finish** and are yielded after
            /// it, then the stream ends; to abandon them instead, drop the
            /// stream after the `Err`, which drops them and gives their
            /// permits back. The items left in the
            /// [source](Self::source_mut) are the ones that never ran.
            ///
            /// Without it (the default, like `DeferredList`), errors are
            /// yielded like any output and the work goes on.
            pub fn stop_on_err(mut self) -> Self {
                self.inner.stop_if = Some(Result::is_err);
                self
            }
        }

        impl<'a, I: Iterator, F, Fut: IntoFuture, $($param)*> $name<'a, IterStream<I>, F, Fut, $($arg)*> {
            /// The items of the source iterator that were not started. Once
            /// the stream has ended early (`stop_on_err` or `Err(Closed)`),
            /// these are exactly the items that did not run.
            pub fn remaining(self: Pin<&mut Self>) -> &mut I {
                self.source_mut().iter_mut()
            }
        }

        impl<'a, St, F, Fut, $($param)*> Stream for $name<'a, St, F, Fut, $($arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
        {
            type Item = Result<Fut::Output, AcquireError>;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                self.engine().poll_next(cx)
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                let e = &self.inner;
                if e.finished {
                    return (0, Some(0));
                }
                let (_, high) = e.source.size_hint();
                let held = e.running + e.buffered;
                // Plus one for a possible final `Err(Closed)`.
                (held, high.and_then(|h| h.checked_add(held + 1)))
            }
        }

        impl<'a, St, F, Fut, $($param)*> FusedStream for $name<'a, St, F, Fut, $($arg)*>
        where
            St: Stream,
            F: FnMut(St::Item) -> Fut,
            Fut: IntoFuture,
        {
            fn is_terminated(&self) -> bool {
                self.inner.finished
            }
        }

        impl<'a, St, F, Fut: IntoFuture, $($param)*> fmt::Debug for $name<'a, St, F, Fut, $($arg)*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.fmt_fields(stringify!($name), f)
            }
        }
    };
}

#[cfg(feature = "alloc")]
pin_project! {
    /// The stream of [`Semaphore::run_all`] and [`Semaphore::run_stream`]:
    /// runs `F` on each item of the source `St`, each while holding a permit,
    /// and yields `Ok(output)` per item, as they finish (or
    /// [in order](Self::in_order)).
    ///
    /// It is a [`Stream`] the caller polls; it spawns nothing. It yields
    /// `Err(AcquireError::Closed)` once, last, if the semaphore was closed
    /// before the source ran out; the items still in the source did not run.
    ///
    /// Dropping it drops the work in flight (each future before its permit)
    /// and gives back every permit it holds; it pulls nothing more.
    ///
    /// Slots for in-flight items are allocated the first time the stream
    /// needs that many and reused afterwards: at most one per permit the
    /// stream has held at once (or per [`limit`](Self::limit)).
    #[must_use = "streams do nothing unless polled"]
    pub struct RunAll<'a, St, F, Fut: IntoFuture> {
        #[pin]
        inner: Engine<'a, St, F, Fut, HeapStore<'a, Fut::IntoFuture>>,
    }
}

#[cfg(feature = "alloc")]
backlog_stream_impls!(RunAll [] []);

#[cfg(feature = "alloc")]
impl<'a, St, F, Fut: IntoFuture> RunAll<'a, St, F, Fut> {
    fn engine(
        self: Pin<&mut Self>,
    ) -> Pin<&mut Engine<'a, St, F, Fut, HeapStore<'a, Fut::IntoFuture>>> {
        self.project().inner
    }
}

/// The stream of [`Semaphore::run_all_fixed`] and
/// [`Semaphore::run_stream_fixed`]: [`RunAll`] with `N` slots inside the
/// stream itself, for `no_std` builds without an allocator. At most `N`
/// items are in flight; it never allocates.
///
/// Everything else is as for `RunAll`: completion order or
/// [in order](Self::in_order), [`stop_on_err`](Self::stop_on_err),
/// [`progress`](Self::progress), `Err(Closed)` last after a close,
/// dropping it gives back every permit.
#[must_use = "streams do nothing unless polled"]
pub struct RunAllFixed<'a, St, F, Fut: IntoFuture, const N: usize> {
    // Structurally pinned; projected in `pin_array` (pin-project-lite does
    // not take const generics). No `Drop`, no `Unpin` impl here.
    pub(crate) inner: FixedEngine<'a, St, F, Fut, N>,
}

/// The engine of [`RunAllFixed`]: its slots are an array.
pub(crate) type FixedEngine<'a, St, F, Fut, const N: usize> =
    Engine<'a, St, F, Fut, [Slot<'a, <Fut as IntoFuture>::IntoFuture>; N]>;

impl<'a, St, F, Fut: IntoFuture, const N: usize> RunAllFixed<'a, St, F, Fut, N> {
    fn engine(self: Pin<&mut Self>) -> Pin<&mut FixedEngine<'a, St, F, Fut, N>> {
        crate::pin_array::fixed_engine(self)
    }
}

backlog_stream_impls!(RunAllFixed [const N: usize] [N]);

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
        RunAll {
            inner: Engine::new(self, items, f, HeapStore::default()),
        }
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
        RunAllFixed {
            inner: Engine::new(self, items, f, core::array::from_fn(|_| Slot::Empty)),
        }
    }
}
