//! The waiting part of every acquire future: fast path, queueing, re-polls
//! and cancellation. Shared by [`Acquire`](crate::Acquire),
//! [`AcquireOwned`](crate::AcquireOwned) and the `run` futures.

use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use crate::list::{Node, Phase};
use crate::permit::Held;
use crate::state::{Take, MAX_PERMITS};
use crate::wake_batch::WakeOne;
use crate::{AcquireError, Semaphore};

pin_project! {
    /// An acquire of `n` permits from the semaphore behind `S` (`&Semaphore`
    /// or `Arc<Semaphore>`), with its queue node inline.
    #[derive(Debug)]
    pub(crate) struct Waiter<S: Deref<Target = Semaphore>> {
        // `None` once the acquire has resolved.
        sem: Option<S>,
        // Linked into the queue at most once; its state says whether it was
        // (`drop` has nothing to do otherwise) and whether the queue is done
        // with it.
        #[pin]
        node: Node,
    }

    impl<S: Deref<Target = Semaphore>> PinnedDrop for Waiter<S> {
        fn drop(this: Pin<&mut Self>) {
            this.cancel();
        }
    }
}

/// What a re-poll of a queued waiter found, under the lock.
enum Seen {
    Waiting,
    NeedsWaker,
    Served(usize),
    Closed,
}

impl<S: Deref<Target = Semaphore>> Waiter<S> {
    pub(crate) fn new(sem: S, n: usize) -> Self {
        Self {
            sem: Some(sem),
            node: Node::new(n),
        }
    }

    /// Polls for the permits; on success hands back the semaphore handle and
    /// the number of permits now held by the caller.
    ///
    /// # Panics
    ///
    /// If polled again after it resolved.
    pub(crate) fn poll_acquire(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(S, usize), AcquireError>> {
        let this = self.project();
        let node = this.node.into_ref();
        let sem = this
            .sem
            .as_deref()
            .expect("acquire polled after completion");
        // One load of the node state tells all three cases apart.
        let outcome = match node.phase() {
            Phase::Idle => poll_first(sem, node, cx),
            phase => poll_queued(sem, node, cx, phase == Phase::Released),
        };
        match outcome {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                // Resolved: `cancel` has nothing left to do.
                let sem = this.sem.take();
                Poll::Ready(result.map(|n| (sem.expect("checked above"), n)))
            }
        }
    }

    /// Leaves the queue, giving back whatever was handed over. Runs on drop.
    fn cancel(self: Pin<&mut Self>) {
        let this = self.project();
        let node = this.node.into_ref();
        let (Some(sem), true) = (this.sem.as_deref(), node.was_linked()) else {
            return;
        };
        let (give_back, waker) = if node.is_released() {
            // Served or turned away by `close`, and not polled since. No lock:
            // SAFETY: we own the node and saw it released (invariant 1c).
            unsafe { node.with(|d| (if d.is_closed() { 0 } else { d.needed }, d.waker.take())) }
        } else {
            cancel_locked(sem, node)
        };
        // Goes to the next waiter first, who is woken. Before the waker is
        // dropped, so a panicking waker drop cannot lose the permits.
        sem.release(give_back);
        // Dropped after unlocking: a waker's drop may run code that touches
        // this semaphore (tokio#5429).
        drop(waker);
    }
}

/// The locked part of `cancel`: leaves the queue if still in it; returns the
/// permits to give back and the waker to drop.
fn cancel_locked(sem: &Semaphore, node: Pin<&Node>) -> (usize, Option<Waker>) {
    sem.queue.with(|q| {
        // SAFETY: the lock is held and `node` waits on this semaphore.
        let linked = unsafe { node.with(|d| d.is_linked()) };
        if linked {
            // SAFETY: lock held, `node` is linked in this queue.
            unsafe { q.list.remove(node) };
            // SAFETY: the lock is held and `node` waits on this semaphore.
            let needed = unsafe { node.with(|d| d.needed) };
            sem.left_queue(q, needed);
        }
        // SAFETY: the lock is held and `node` waits on this semaphore.
        unsafe {
            node.with(|d| {
                let give_back = match (linked, d.is_closed()) {
                    (true, _) => d.assigned,    // partly served
                    (false, false) => d.needed, // served, not yet polled
                    (false, true) => 0,         // `close` took them back
                };
                (give_back, d.waker.take())
            })
        }
    })
}

/// First poll: the lock-free fast path, then the queue.
#[inline]
fn poll_first(
    sem: &Semaphore,
    node: Pin<&Node>,
    cx: &mut Context<'_>,
) -> Poll<Result<usize, AcquireError>> {
    // SAFETY: not yet queued, so never linked: only we can reach the node.
    let n = unsafe { node.with(|d| d.needed) };
    if n > MAX_PERMITS {
        return Poll::Ready(Err(AcquireError::TooMany));
    }
    match sem.state.try_take(n) {
        Take::Taken => return Poll::Ready(Ok(n)),
        Take::Closed => return Poll::Ready(Err(AcquireError::Closed)),
        Take::Busy => {}
    }
    poll_enqueue(sem, node, cx, n)
}

/// The rest of a first poll that found the permits busy: queue up. Out of
/// line, so that the fast path above stays small and inlines into `poll`.
#[inline(never)]
fn poll_enqueue(
    sem: &Semaphore,
    node: Pin<&Node>,
    cx: &mut Context<'_>,
    n: usize,
) -> Poll<Result<usize, AcquireError>> {
    // Cloned before locking: cloning runs the waker's code, never under the lock.
    let mut waker = Some(cx.waker().clone());
    // Permits that came back meanwhile serve one waiter or none, almost
    // always: if they serve more, the round stops and `serve` goes on.
    let mut batch = WakeOne::default();
    let (outcome, more) = sem.queue.with(|q| {
        // One load for the flags: `QUEUED` and `ASIDE` only change under
        // this lock.
        let word = sem.state.load();
        if word.is_closed() {
            return (Poll::Ready(Err(AcquireError::Closed)), false);
        }
        // A request larger than the limit waits aside: it neither takes
        // permits nor holds back the queue until the limit reaches it.
        let fits = n <= q.limit;
        if fits && !word.is_queued() {
            match sem.state.try_take_locked(n) {
                Take::Taken => return (Poll::Ready(Ok(n)), false),
                Take::Closed => return (Poll::Ready(Err(AcquireError::Closed)), false),
                Take::Busy => {}
            }
        }
        // SAFETY: the lock is held, and the node is not linked yet.
        unsafe { node.with(|d| d.waker = waker.take()) };
        // SAFETY: lock held; the node is pinned, never linked, and `Waiter`'s
        // drop unlinks it (`push_back` marks it linked, which `cancel` checks).
        unsafe { q.list.push_back(node) };
        if !fits {
            sem.state.set_flags(word.is_queued(), true);
            return (Poll::Pending, false);
        }
        // One read-modify-write only for the first waiter that fits; the
        // hot counter word stays quieter for the rest.
        if !word.is_queued() {
            sem.state.set_flags(true, word.is_aside());
        }
        // Permits may have come back since the fast path looked: hand them
        // out now, debt and head first; this waiter may be among those served.
        let free = sem.state.take_all();
        if free == 0 {
            return (Poll::Pending, false);
        }
        let more = sem.distribute_locked(q, free, &mut batch);
        // SAFETY: the lock is held and the node waits on this semaphore.
        let served = unsafe { node.with(|d| !d.is_linked()) };
        if served {
            (Poll::Ready(Ok(n)), more)
        } else {
            (Poll::Pending, more)
        }
    });
    // Permits taken above without linking the node are ours now; keep them
    // in a guard until the caller has them, in case dropping a waker or
    // waking others panics. (A node served while linked needs no guard: if
    // we unwind, `cancel` finds it released and gives its permits back.)
    let taken = match outcome {
        Poll::Ready(Ok(n)) if !node.was_linked() => Some(Held::new(sem, n)),
        _ => None,
    };
    drop(waker);
    sem.wake_then_serve(batch, more);
    match taken {
        Some(held) => Poll::Ready(Ok(held.into_permits())),
        None => outcome,
    }
}

/// A later poll of a queued waiter, which `poll_acquire` saw `released`
/// or not.
fn poll_queued(
    sem: &Semaphore,
    node: Pin<&Node>,
    cx: &mut Context<'_>,
    mut released: bool,
) -> Poll<Result<usize, AcquireError>> {
    let mut new_waker: Option<Waker> = None;
    loop {
        let (seen, old_waker) = if released {
            // The common case after a wake-up: served (or closed), no lock.
            // SAFETY: we own the node and saw it released (invariant 1c).
            unsafe {
                node.with(|d| {
                    let seen = if d.is_closed() {
                        Seen::Closed
                    } else {
                        Seen::Served(d.needed)
                    };
                    (seen, d.waker.take())
                })
            }
        } else {
            poll_queued_locked(sem, node, cx, &mut new_waker)
        };
        // Outside the lock: dropping a waker may run arbitrary code.
        drop(old_waker);
        match seen {
            Seen::Waiting => return Poll::Pending,
            Seen::Served(n) => return Poll::Ready(Ok(n)),
            Seen::Closed => return Poll::Ready(Err(AcquireError::Closed)),
            Seen::NeedsWaker => new_waker = Some(cx.waker().clone()),
        }
        released = node.is_released();
    }
}

/// The locked part of [`poll_queued`].
fn poll_queued_locked(
    sem: &Semaphore,
    node: Pin<&Node>,
    cx: &mut Context<'_>,
    new_waker: &mut Option<Waker>,
) -> (Seen, Option<Waker>) {
    sem.queue.with(|_queue| {
        // SAFETY: the lock is held and the node waits on this semaphore.
        unsafe {
            node.with(|d| {
                if d.is_closed() {
                    (Seen::Closed, d.waker.take())
                } else if !d.is_linked() {
                    (Seen::Served(d.needed), d.waker.take())
                } else if d.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    (Seen::Waiting, None)
                } else if let Some(w) = new_waker.take() {
                    (Seen::Waiting, d.waker.replace(w))
                } else {
                    (Seen::NeedsWaker, None)
                }
            })
        }
    })
}
