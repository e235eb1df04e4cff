//! Faults from outside the semaphore: wakers that panic, wakers that call back
//! into the semaphore from `wake` or from their `drop` (tokio#5429), and a
//! panic inside `run`'s future. After each, the semaphore must be consistent:
//! no permit lost, the queue lock neither poisoned nor held (`waiters()`
//! returns), every served or closed waiter resolves, and later acquires work.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use permits::{AcquireError, Permit, Semaphore};

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Counter {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter::default());
    (c.clone(), Waker::from(c))
}

/// A waker whose `wake` panics (after counting).
#[derive(Default)]
struct Panicky(AtomicUsize);

impl Wake for Panicky {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
        panic!("waker panicked on purpose");
    }
}

fn poll<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// The semaphore is idle with `permits` free, its lock works, and a fresh
/// acquire and a fresh `try_acquire` both succeed.
fn assert_healthy(sem: &Semaphore, permits: usize) {
    assert_eq!(sem.available_permits(), permits, "permits lost or made up");
    assert_eq!(sem.waiters(), 0);
    let p = futures::executor::block_on(sem.acquire_many(permits)).unwrap();
    assert_eq!(p.num_permits(), permits);
    drop(p);
    drop(sem.try_acquire_many(permits).unwrap());
    assert_eq!(sem.available_permits(), permits);
}

/// A release that wakes a panicking waker: the panic reaches the releaser,
/// every waiter served by that release is still woken, and nothing is lost.
/// The panicking waiter is first, then last, in the queue (the batch wakes
/// in some order; both places must work).
#[test]
fn panicking_waker_on_release() {
    for panicky_first in [true, false] {
        let sem = Semaphore::new(0);
        let boom = Arc::new(Panicky::default());
        let boom_waker = Waker::from(boom.clone());
        let (count, waker) = counting();
        let mut a = pin!(sem.acquire());
        let mut b = pin!(sem.acquire());
        let (first, second) = if panicky_first {
            (&boom_waker, &waker)
        } else {
            (&waker, &boom_waker)
        };
        assert!(poll(a.as_mut(), first).is_pending());
        assert!(poll(b.as_mut(), second).is_pending());

        let r = catch_unwind(AssertUnwindSafe(|| sem.add_permits(2)));
        assert!(r.is_err(), "the waker's panic reaches the releaser");
        assert_eq!(boom.0.load(SeqCst), 1);
        assert_eq!(count.count(), 1, "the other served waiter is still woken");
        assert_eq!(sem.waiters(), 0);

        let pa = match poll(a.as_mut(), first) {
            Poll::Ready(Ok(p)) => p,
            other => panic!("first waiter not served: {other:?}"),
        };
        let pb = match poll(b.as_mut(), second) {
            Poll::Ready(Ok(p)) => p,
            other => panic!("second waiter not served: {other:?}"),
        };
        assert_eq!(pa.num_permits() + pb.num_permits(), 2);
        drop((pa, pb));
        assert_healthy(&sem, 2);
    }
}

/// A release that serves more waiters than one wake batch holds, with a
/// panicking waker in the first batch: the waiters after the batch are
/// served too (nobody is left queued while permits sit free).
#[test]
fn panicking_waker_with_more_waiters_than_a_batch() {
    const N: usize = 20;
    for boom_at in [0, 3, 7, 8, N - 1] {
        let sem = Semaphore::new(0);
        let boom = Arc::new(Panicky::default());
        let boom_waker = Waker::from(boom.clone());
        let counters: Vec<_> = (0..N).map(|_| counting()).collect();
        let mut futs: Vec<_> = (0..N).map(|_| Box::pin(sem.acquire())).collect();
        let wakers: Vec<&Waker> = (0..N)
            .map(|i| {
                if i == boom_at {
                    &boom_waker
                } else {
                    &counters[i].1
                }
            })
            .collect();
        for (f, w) in futs.iter_mut().zip(&wakers) {
            assert!(poll(f.as_mut(), w).is_pending());
        }

        let r = catch_unwind(AssertUnwindSafe(|| sem.add_permits(N)));
        assert!(r.is_err());
        assert_eq!(boom.0.load(SeqCst), 1);
        assert_eq!(sem.waiters(), 0, "waiters left queued (boom at {boom_at})");
        assert_eq!(sem.available_permits(), 0);
        for (i, (c, _)) in counters.iter().enumerate() {
            if i != boom_at {
                assert_eq!(c.count(), 1, "waiter {i} not woken (boom at {boom_at})");
            }
        }
        let permits: Vec<_> = futs
            .iter_mut()
            .zip(&wakers)
            .map(|(f, w)| match poll(f.as_mut(), w) {
                Poll::Ready(Ok(p)) => p,
                other => panic!("waiter not served (boom at {boom_at}): {other:?}"),
            })
            .collect();
        drop(permits);
        drop(futs);
        assert_healthy(&sem, N);
    }
}

/// `close` with a panicking waker among more waiters than a batch holds:
/// every waiter still resolves to `Closed`, and permits handed to the head
/// come back.
#[test]
fn panicking_waker_on_close() {
    const N: usize = 20;
    for boom_at in [0, 7, 8, N - 1] {
        // One of the two permits is held throughout, so the head, asking
        // for two (no more than the limit), is partly served with the other.
        let sem = Semaphore::new(2);
        let held = sem.try_acquire().unwrap();
        let boom = Arc::new(Panicky::default());
        let boom_waker = Waker::from(boom.clone());
        let counters: Vec<_> = (0..N).map(|_| counting()).collect();
        // The head asks for two and holds the one free permit.
        let mut futs: Vec<_> = (0..N)
            .map(|i| Box::pin(sem.acquire_many(if i == 0 { 2 } else { 1 })))
            .collect();
        let wakers: Vec<&Waker> = (0..N)
            .map(|i| {
                if i == boom_at {
                    &boom_waker
                } else {
                    &counters[i].1
                }
            })
            .collect();
        for (f, w) in futs.iter_mut().zip(&wakers) {
            assert!(poll(f.as_mut(), w).is_pending());
        }
        assert_eq!(sem.available_permits(), 0);

        let r = catch_unwind(AssertUnwindSafe(|| sem.close()));
        assert!(r.is_err());
        assert!(sem.is_closed());
        for (i, (c, _)) in counters.iter().enumerate() {
            if i != boom_at {
                assert_eq!(c.count(), 1, "waiter {i} not woken (boom at {boom_at})");
            }
        }
        for (i, (f, w)) in futs.iter_mut().zip(&wakers).enumerate() {
            match poll(f.as_mut(), w) {
                Poll::Ready(Err(AcquireError::Closed)) => {}
                other => panic!("waiter {i} (boom at {boom_at}): {other:?}"),
            }
        }
        assert_eq!(sem.waiters(), 0);
        assert_eq!(sem.available_permits(), 1);
        drop(futs);
        assert_eq!(sem.available_permits(), 1);
        drop(held);
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(sem.waiters(), 0);
    }
}

/// What a re-entrant waker does to the semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    TryAcquire,
    /// Starts and polls a new acquire inside the callback (it may queue; it is
    /// dropped inside the callback too).
    PollAcquire,
    /// Drops a permit it holds: a release (and a serve) from inside.
    Release,
    AddPermits,
    Close,
    Inspect,
}

const ACTIONS: [Action; 6] = [
    Action::TryAcquire,
    Action::PollAcquire,
    Action::Release,
    Action::AddPermits,
    Action::Close,
    Action::Inspect,
];

/// A waker that calls back into the semaphore from `wake` (or, with
/// `on_drop`, from its destructor, tokio#5429).
struct ReEnter {
    /// `'static` (a fresh `static` per case), so the waker can be `'static`
    /// without the `alloc`-only owned API.
    sem: &'static Semaphore,
    action: Action,
    on_drop: bool,
    /// The permit `Release` drops, or the one `TryAcquire` got.
    permit: Mutex<Option<Permit<'static>>>,
    /// Shared, so it can be read after the waker is gone.
    calls: Arc<AtomicUsize>,
}

impl ReEnter {
    /// `sem` has one permit; `Release` adds one more for it to give back.
    fn setup(
        sem: &'static Semaphore,
        action: Action,
        on_drop: bool,
    ) -> (&'static Semaphore, Arc<Self>, Arc<AtomicUsize>) {
        assert_eq!(sem.available_permits(), 1, "a fresh semaphore per case");
        let permit = (action == Action::Release).then(|| {
            sem.add_permits(1);
            sem.try_acquire().unwrap()
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let re = Arc::new(Self {
            sem,
            action,
            on_drop,
            permit: Mutex::new(permit),
            calls: calls.clone(),
        });
        (sem, re, calls)
    }

    fn call(&self) {
        self.calls.fetch_add(1, SeqCst);
        let sem = self.sem;
        match self.action {
            Action::TryAcquire => {
                if let Ok(p) = sem.try_acquire() {
                    *self.permit.lock().unwrap() = Some(p);
                }
            }
            Action::PollAcquire => {
                let mut f = pin!(sem.acquire());
                if let Poll::Ready(Ok(p)) = poll(f.as_mut(), Waker::noop()) {
                    drop(p);
                }
            }
            Action::Release => drop(self.permit.lock().unwrap().take()),
            Action::AddPermits => sem.add_permits(1),
            Action::Close => sem.close(),
            Action::Inspect => {
                let _ = (sem.waiters(), sem.available_permits(), sem.is_closed());
            }
        }
    }
}

impl Wake for ReEnter {
    fn wake(self: Arc<Self>) {
        if !self.on_drop {
            self.call();
        }
    }
}

impl Drop for ReEnter {
    fn drop(&mut self) {
        if self.on_drop {
            self.call();
        }
    }
}

/// Permits in existence after `calls` callbacks of `action`.
fn total_after(action: Action, calls: usize) -> usize {
    match action {
        Action::Release => 2,
        Action::AddPermits => 1 + calls,
        _ => 1,
    }
}

/// Checks the end state: nobody queued, every permit free, and (if open) a
/// fresh acquire works.
fn check_end(sem: &Semaphore, action: Action, calls: usize, what: &str) {
    assert_eq!(sem.waiters(), 0, "{what}");
    let total = total_after(action, calls);
    assert_eq!(sem.available_permits(), total, "{what}: permits lost");
    if !sem.is_closed() {
        assert_healthy(sem, total);
    }
}

/// A waker whose `wake` re-enters the semaphore, for every kind of call:
/// woken by a release, and by `close`.
#[test]
fn waker_reentering_from_wake() {
    static SEMS: [Semaphore; 12] = [const { Semaphore::new(1) }; 12];
    let mut sems = SEMS.iter();
    for action in ACTIONS {
        for by_close in [false, true] {
            let what = format!("{action:?} in wake, by close: {by_close}");
            let (sem, re, calls) = ReEnter::setup(sems.next().unwrap(), action, false);
            let held = sem.try_acquire().unwrap();
            let re_waker = Waker::from(re.clone());
            let (count, waker) = counting();
            let mut a = Box::pin(sem.acquire());
            let mut b = Box::pin(sem.acquire());
            assert!(poll(a.as_mut(), &re_waker).is_pending());
            assert!(poll(b.as_mut(), &waker).is_pending());

            if by_close {
                sem.close();
                // Held permits stay valid after close; give it back later.
                drop(held);
            } else {
                drop(held);
            }
            assert_eq!(calls.load(SeqCst), 1, "{what}");
            let ra = poll(a.as_mut(), &re_waker);
            let rb = poll(b.as_mut(), &waker);
            let what = format!("{what}: {ra:?} {rb:?}");
            let closed =
                |r: &Poll<Result<_, _>>| matches!(r, Poll::Ready(Err(AcquireError::Closed)));
            let ok = |r: &Poll<Result<_, _>>| matches!(r, Poll::Ready(Ok(_)));
            match (by_close, action) {
                (true, _) => assert!(closed(&ra) && closed(&rb), "{what}"),
                // `a` was served before its waker closed the semaphore.
                (false, Action::Close) => {
                    assert!(ok(&ra) && closed(&rb), "{what}");
                    assert_eq!(count.count(), 1, "{what}");
                }
                // The callback's permit went on to `b`, which was woken.
                (false, Action::Release | Action::AddPermits) => {
                    assert!(ok(&ra) && ok(&rb), "{what}");
                    assert_eq!(count.count(), 1, "{what}");
                }
                // Nothing free for the callback to take, nor for `b`.
                (false, _) => {
                    assert!(ok(&ra) && rb.is_pending(), "{what}");
                    assert_eq!(count.count(), 0, "{what}");
                }
            }
            assert!(re.permit.lock().unwrap().is_none(), "{what}: barged");
            drop((ra, rb));
            drop((a, b));
            drop(re_waker);
            drop(re);
            check_end(sem, action, 1, &what);
        }
    }
}

/// A waker whose `drop` re-enters the semaphore (tokio#5429): its last
/// handle is the queued node's, dropped when the acquire is re-polled with
/// another waker, when it is cancelled, when it is woken on release, and
/// when it is woken by `close`. The semaphore must never drop a waker while
/// it holds its lock (with the `std` lock that would deadlock here).
#[test]
fn waker_reentering_from_drop() {
    static SEMS: [Semaphore; 24] = [const { Semaphore::new(1) }; 24];
    let mut sems = SEMS.iter();
    for action in ACTIONS {
        for when in ["re-poll", "cancel", "release", "close"] {
            let what = format!("{action:?} in drop, on {when}");
            let (sem, re, calls) = ReEnter::setup(sems.next().unwrap(), action, true);
            let held = sem.try_acquire().unwrap();
            let mut a = Box::pin(sem.acquire());
            assert!(poll(a.as_mut(), &Waker::from(re)).is_pending());
            // Now the node holds the only handle to the waker.
            assert_eq!(calls.load(SeqCst), 0, "{what}");
            let (_, other) = counting();
            match when {
                "re-poll" => {
                    let r = poll(a.as_mut(), &other);
                    assert!(r.is_pending(), "{what}");
                    assert_eq!(calls.load(SeqCst), 1, "{what}");
                    drop(held);
                }
                "cancel" => {
                    drop(a);
                    a = Box::pin(sem.acquire_many(0));
                    assert_eq!(calls.load(SeqCst), 1, "{what}");
                    drop(held);
                }
                "release" => {
                    drop(held);
                    assert_eq!(calls.load(SeqCst), 1, "{what}");
                }
                _ => {
                    sem.close();
                    assert_eq!(calls.load(SeqCst), 1, "{what}");
                    drop(held);
                }
            }
            // Whatever the callback did, `a` resolves now.
            let r = poll(a.as_mut(), &other);
            assert!(r.is_ready(), "{what}: {r:?}");
            drop(r);
            drop(a);
            check_end(sem, action, 1, &what);
        }
    }
}

/// A panic inside `run`'s future gives the permits back while unwinding,
/// wakes the next waiter, and leaves the semaphore usable.
#[test]
fn panic_inside_run() {
    let sem = Semaphore::new(2);
    let (count, waker) = counting();
    let mut run = pin!(sem.run_many(2, async {
        panic!("task panicked on purpose");
    }));
    let mut next = pin!(sem.acquire());
    // Queue `run` and then `next` behind it; serve `run` first.
    let held = sem.try_acquire_many(2).unwrap();
    let mut cx = Context::from_waker(&waker);
    assert!(run.as_mut().poll(&mut cx).is_pending());
    assert!(poll(next.as_mut(), &waker).is_pending());
    drop(held);
    assert_eq!(count.count(), 1, "run's acquire was served");
    let r = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(&mut cx)));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(count.count(), 2, "the next waiter was woken");
    match poll(next.as_mut(), &waker) {
        Poll::Ready(Ok(p)) => assert_eq!(p.num_permits(), 1),
        other => panic!("next waiter not served: {other:?}"),
    }
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(sem.waiters(), 0);
    // A poll after the panic is refused, not run again.
    let again = catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(&mut cx)));
    assert!(again.is_err());
    assert_healthy(&sem, 2);
}

/// The same through an executor, with `run_owned`.
#[cfg(feature = "alloc")]
#[test]
fn panic_inside_run_owned() {
    let sem = Arc::new(Semaphore::new(1));
    let r = catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(sem.clone().run_owned(async { panic!("on purpose") }))
    }));
    assert!(r.is_err());
    assert_healthy(&sem, 1);
    let out = futures::executor::block_on(sem.run(async { 7 }));
    assert_eq!(out, Ok(7));
}
