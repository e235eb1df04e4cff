//! loom models of the semaphore's concurrent protocol.
//!
//! Run with (`.ci/verify.sh` does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" cargo test --release --test loom
//! ```
//!
//! Under `--cfg loom` the crate's atomics, node cells and queue lock are
//! loom's (`src/sync.rs`, `src/lock.rs`) and the wake batch holds one waker, so
//! its refill path is explored too. Each model runs 2-3 threads; a lost wake-up
//! shows up as a loom deadlock (`loom::future::block_on` parks until woken).
//!
//! Preemption bounds: most models are explored with at most [`PREEMPTIONS`]
//! (4) preemptions, since exploring them fully takes minutes to hours (tokio
//! uses 2 for its semaphore models); each model's doc says its bound.
//! Three small models are explored exhaustively (no bound), and the largest
//! (`close_races_waiters_and_release`, `set_limit_races_served_acquire`,
//! `shrink_below_partly_served_head`) with 3. Setting `LOOM_MAX_PREEMPTIONS`
//! overrides all of them. Together they take about a minute on 2 cores.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::task::noop_waker_ref;
use loom::cell::UnsafeCell;
use loom::future::block_on;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::Relaxed;
use loom::thread;
use permits::{AcquireError, Semaphore, TryAcquireError};
use std::sync::Arc;

/// Default preemption bound (see the module docs).
const PREEMPTIONS: usize = 4;

/// Explores `f` with at most `bound` preemptions (`None`: every
/// interleaving), unless `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model_bounded(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = bound;
    }
    builder.check(f);
}

/// Explores `f` with at most [`PREEMPTIONS`] preemptions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(Some(PREEMPTIONS), f);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(noop_waker_ref()))
}

/// Every permit is back and nobody waits.
fn assert_idle(sem: &Semaphore, permits: usize) {
    assert_eq!(sem.available_permits(), permits);
    assert_eq!(sem.waiters(), 0);
}

/// 1. Two threads acquire and release a semaphore of one, twice each: never
///    two holders at once, and the permit is back at the end. Each holder
///    also writes a plain (loom-tracked) cell: loom reports a data race if a
///    release does not happen-before the next acquire (the documented memory
///    ordering).
///
/// Preemption bound 4 (unbounded does not finish in minutes).
#[test]
fn acquire_release_race() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let holders = Arc::new(AtomicUsize::new(0));
        // loom's cell is shared on purpose: the permit is what guards it.
        #[allow(clippy::arc_with_non_send_sync)]
        let data = Arc::new(UnsafeCell::new(0_usize));
        let worker =
            |sem: Arc<Semaphore>, holders: Arc<AtomicUsize>, data: Arc<UnsafeCell<usize>>| {
                move || {
                    for _ in 0..2 {
                        let permit = block_on(sem.acquire()).unwrap();
                        // Relaxed: the counter itself must not order `data`.
                        assert_eq!(holders.fetch_add(1, Relaxed), 0, "two holders");
                        // SAFETY: the one permit gives exclusive access to
                        // `data`; loom checks exactly that.
                        data.with_mut(|p| unsafe { *p += 1 });
                        holders.fetch_sub(1, Relaxed);
                        drop(permit);
                    }
                }
            };
        let t = thread::spawn(worker(sem.clone(), holders.clone(), data.clone()));
        worker(sem.clone(), holders, data.clone())();
        t.join().unwrap();
        assert_idle(&sem, 1);
        // SAFETY: both workers are done.
        assert_eq!(data.with(|p| unsafe { *p }), 4);
    });
}

/// 2. A waiter is woken by a release on another thread: no lost wake-up (a
///    lost one would leave `block_on` parked: loom reports a deadlock).
///
/// Explored exhaustively (no preemption bound).
#[test]
fn release_wakes_waiter() {
    model_bounded(None, || {
        let sem = Arc::new(Semaphore::new(1));
        let permit = sem.try_acquire().unwrap();
        let s = sem.clone();
        let t = thread::spawn(move || {
            let p = block_on(s.acquire()).unwrap();
            assert_eq!(p.num_permits(), 1);
        });
        drop(permit);
        t.join().unwrap();
        assert_idle(&sem, 1);
    });
}

/// 2b. One `add_permits(2)` serves two waiters on two threads; with the loom
///     wake batch of one, the releaser wakes, re-locks and serves again.
///
/// Preemption bound 4 (about 20 s).
#[test]
fn add_permits_wakes_two_waiters() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = |sem: Arc<Semaphore>| {
            move || {
                let p = block_on(sem.acquire()).unwrap();
                assert_eq!(p.num_permits(), 1);
                p.forget();
            }
        };
        let t1 = thread::spawn(waiter(sem.clone()));
        let t2 = thread::spawn(waiter(sem.clone()));
        sem.add_permits(2);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_idle(&sem, 0);
    });
}

/// 3. A queued acquire is dropped on one thread while another releases a
///    permit to it: the permit is not lost, it reaches the next waiter, and
///    all permits are back at the end. The dropped acquire asks for two, so
///    the release may hand it one (a partial fill) that it must give back.
///
/// Preemption bound 4 (the default).
#[test]
fn cancel_races_hand_off() {
    model(|| {
        let sem = Arc::new(Semaphore::new(2));
        let kept = sem.try_acquire().unwrap();
        let permit = sem.clone().try_acquire_owned().unwrap();
        // Queue two acquires in order: `first` will be cancelled, `second`
        // must end up with the released permit.
        let mut first = Box::pin(sem.clone().acquire_many_owned(2));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut second = Box::pin(sem.clone().acquire_owned());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(sem.waiters(), 2);

        let canceller = thread::spawn(move || drop(first));
        let releaser = thread::spawn(move || drop(permit));
        let got = block_on(second).unwrap();
        assert_eq!(got.num_permits(), 1);
        canceller.join().unwrap();
        releaser.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
        drop((got, kept));
        assert_idle(&sem, 2);
    });
}

/// 4. An `acquire_many(2)` at the head is filled by two concurrent releases,
///    and a later `acquire(1)` does not get any of them first.
///
/// Preemption bound 4 (unbounded does not finish in minutes).
#[test]
fn acquire_many_filled_by_two_releases() {
    model(|| {
        let sem = Arc::new(Semaphore::new(2));
        let p1 = sem.clone().try_acquire_owned().unwrap();
        let p2 = sem.clone().try_acquire_owned().unwrap();
        let mut many = Box::pin(sem.acquire_many(2));
        assert!(poll_once(many.as_mut()).is_pending());
        let mut one = Box::pin(sem.acquire());
        assert!(poll_once(one.as_mut()).is_pending());

        let t1 = thread::spawn(move || drop(p1));
        let t2 = thread::spawn(move || drop(p2));
        let got = block_on(many).unwrap();
        assert_eq!(got.num_permits(), 2);
        t1.join().unwrap();
        t2.join().unwrap();
        // The head took both; the later, smaller acquire still waits.
        assert!(poll_once(one.as_mut()).is_pending());
        assert_eq!(sem.available_permits(), 0);
        drop(got);
        let p = block_on(one).unwrap();
        assert_eq!(sem.available_permits(), 1);
        drop(p);
        assert_idle(&sem, 2);
    });
}

/// 5. `close` races queued acquires and a release: every waiter resolves
///    (none hangs), and every permit is back at the end.
///
/// Preemption bound 3: with 4 this model (three threads, close, a release
/// and two waiters) takes about 90 s alone.
#[test]
fn close_races_waiters_and_release() {
    model_bounded(Some(3), || {
        let sem = Arc::new(Semaphore::new(1));
        let permit = sem.clone().try_acquire_owned().unwrap();
        let s = sem.clone();
        // Can never be served (only one permit exists): it must see `Closed`.
        let big = thread::spawn(move || block_on(s.acquire_many(2)).map(|_| ()));
        let s = sem.clone();
        // May get the permit before the close, or `Closed`.
        let small = thread::spawn(move || block_on(s.acquire()).map(drop));
        drop(permit);
        sem.close();
        assert_eq!(big.join().unwrap(), Err(AcquireError::Closed));
        let small = small.join().unwrap();
        assert!(matches!(small, Ok(()) | Err(AcquireError::Closed)));
        assert!(sem.is_closed());
        assert_idle(&sem, 1);
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    });
}

/// 6. `try_acquire` races a release to a queued waiter: it never takes the
///    permit past the head of the queue.
///
/// Preemption bound 4 (unbounded takes over a minute).
#[test]
fn try_acquire_does_not_barge() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let permit = sem.clone().try_acquire_owned().unwrap();
        let mut queued = Box::pin(sem.clone().acquire_owned());
        assert!(poll_once(queued.as_mut()).is_pending());

        let releaser = thread::spawn(move || drop(permit));
        let s = sem.clone();
        let barger = thread::spawn(move || {
            for _ in 0..2 {
                assert_eq!(
                    s.try_acquire().unwrap_err(),
                    TryAcquireError::NoPermits,
                    "try_acquire took a permit past a queued waiter"
                );
            }
        });
        let got = block_on(queued).unwrap();
        releaser.join().unwrap();
        barger.join().unwrap();
        drop(got);
        assert_idle(&sem, 1);
    });
}

/// 7. `add_permits` and `forget_permits` race an acquire (whose permit is then
///    forgotten): the count at the end is exactly what was added minus what was
///    forgotten, and the waiter is served.
///
/// Explored exhaustively (no preemption bound).
#[test]
fn add_and_forget_race_acquire() {
    model_bounded(None, || {
        let sem = Arc::new(Semaphore::new(0));
        let s = sem.clone();
        let waiter = thread::spawn(move || block_on(s.acquire()).unwrap().forget());
        let s = sem.clone();
        let adder = thread::spawn(move || s.add_permits(2));
        let forgotten = sem.forget_permits(1);
        assert!(forgotten <= 1);
        waiter.join().unwrap();
        adder.join().unwrap();
        assert_idle(&sem, 1 - forgotten);
        // The semaphore's own count of permits agrees: topping up to the
        // maximum is accepted.
        sem.add_permits(Semaphore::MAX_PERMITS - (1 - forgotten));
        assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    });
}

/// 9. `set_limit` shrinking races a release on another thread: whichever
///    goes first, the release pays the debt (lock-free or under the lock),
///    the limit is exact afterwards and no permit is lost.
///
/// Explored exhaustively (no preemption bound).
#[test]
fn set_limit_races_release() {
    model_bounded(None, || {
        let sem = Arc::new(Semaphore::new(2));
        let a = sem.clone().try_acquire_owned().unwrap();
        let b = sem.clone().try_acquire_owned().unwrap();
        let s = sem.clone();
        let t = thread::spawn(move || drop(a));
        sem.set_limit(1);
        t.join().unwrap();
        // One permit is out (`b`), exactly the new limit: no debt left.
        assert_eq!(
            (sem.limit(), sem.debt(), sem.available_permits()),
            (1, 0, 0)
        );
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        drop(b);
        assert_idle(&s, 1);
    });
}

/// 10. A waiter is being served by a release while the limit shrinks below
///     what is out and grows again: the waiter is served exactly when the
///     debt is paid, never more permits out than `max(limit, out at the
///     shrink)`, and the waiter is woken (no deadlock).
///
/// Preemption bound 3 (four threads; 4 takes over a minute).
#[test]
fn set_limit_races_served_acquire() {
    model_bounded(Some(3), || {
        let sem = Arc::new(Semaphore::new(2));
        let a = sem.clone().try_acquire_owned().unwrap();
        let b = sem.clone().try_acquire_owned().unwrap();
        // How many of `a` and `b` are still out, lowered before each drop.
        let out = Arc::new(AtomicUsize::new(2));
        let (s, o) = (sem.clone(), out.clone());
        let waiter = thread::spawn(move || {
            let p = block_on(s.acquire()).unwrap();
            // The limit is never above 2, so with both out nobody is served.
            assert!(o.load(Relaxed) <= 1, "served with both permits out");
            drop(p);
        });
        let s = sem.clone();
        let releaser = thread::spawn(move || {
            out.fetch_sub(1, Relaxed);
            drop(a);
            out.fetch_sub(1, Relaxed);
            drop(b);
        });
        sem.set_limit(1);
        sem.set_limit(2);
        releaser.join().unwrap();
        waiter.join().unwrap();
        assert_eq!((s.limit(), s.debt()), (2, 0));
        assert_idle(&sem, 2);
    });
}

/// 11. `close` races a shrink with holders and a queued waiter: the waiter
///     gets `Closed` (it is woken), the limit change never reopens the
///     semaphore, and once the holder is gone the permits are exactly the
///     limit.
///
/// Preemption bound 4.
#[test]
fn set_limit_races_close() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.try_acquire().unwrap();
        let s = sem.clone();
        let waiter = thread::spawn(move || block_on(s.acquire()).map(drop));
        let s = sem.clone();
        let closer = thread::spawn(move || s.close());
        sem.set_limit(0);
        sem.add_permits(1);
        closer.join().unwrap();
        // Served before the close, or turned away by it.
        let r = waiter.join().unwrap();
        assert!(matches!(r, Ok(()) | Err(AcquireError::Closed)));
        assert!(sem.is_closed());
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
        drop(held);
        assert_eq!((sem.limit(), sem.debt()), (1, 0));
        assert_idle(&sem, 1);
    });
}

/// 12. A head asking for two is partly served (one permit) when another
///     thread shrinks the limit below its request and then grows it back:
///     set aside, it gives its permit back; rejoining, it is served once two
///     are free. A later request for one, queued behind it, is served while
///     it waits aside. Nothing is lost, everyone is woken.
///
/// Preemption bound 3 (it has the most steps).
#[test]
fn shrink_below_partly_served_head() {
    model_bounded(Some(3), || {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.try_acquire().unwrap();
        let mut big = Box::pin(sem.acquire_many(2));
        // Partly served: it holds the one free permit.
        assert!(poll_once(big.as_mut()).is_pending());
        assert_eq!(sem.available_permits(), 0);
        let s = sem.clone();
        let small = thread::spawn(move || block_on(s.acquire()).map(drop));
        let s = sem.clone();
        let resizer = thread::spawn(move || {
            s.set_limit(1);
            s.set_limit(2);
        });
        drop(held);
        // `big` may be served before `small` (then `small` waits for it) or
        // after it (then it waits for `small`): resolve it first.
        let p = block_on(big.as_mut()).unwrap();
        assert_eq!(p.num_permits(), 2);
        drop(p);
        resizer.join().unwrap();
        small.join().unwrap().unwrap();
        assert_eq!((sem.limit(), sem.debt()), (2, 0));
        assert_idle(&sem, 2);
    });
}

/// A reply another thread sends: pending until `answer`ed, under a loom
/// mutex so the future's check-then-store cannot miss the answer.
#[derive(Default)]
struct Mailbox(loom::sync::Mutex<(bool, Option<std::task::Waker>)>);

impl Mailbox {
    fn answer(&self) {
        let waker = {
            let mut m = self.0.lock().unwrap();
            m.0 = true;
            m.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

struct Reply(Arc<Mailbox>);

impl Future for Reply {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut m = self.0 .0.lock().unwrap();
        if m.0 {
            return Poll::Ready(());
        }
        m.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// 13. The backlog stream's per-slot wake-ups (`src/backlog/ready.rs`): two
///    items in flight, each answered from its own thread while the stream's
///    task polls, sleeps and is woken: no wake-up is lost (a lost one is a
///    loom deadlock in `block_on`), each output comes once, every permit is
///    back.
///
/// Preemption bound 2 (each poll of the stream runs several atomics).
#[test]
fn backlog_slot_wake_ups_from_two_threads() {
    model_bounded(Some(2), || {
        use futures::StreamExt;
        let sem = Semaphore::new(2);
        let boxes = [Arc::new(Mailbox::default()), Arc::new(Mailbox::default())];
        let answerers: Vec<_> = boxes
            .iter()
            .map(|m| {
                let m = m.clone();
                thread::spawn(move || m.answer())
            })
            .collect();
        let n = block_on(sem.run_all(0..2, |i| Reply(boxes[i].clone())).count());
        assert_eq!(n, 2);
        for t in answerers {
            t.join().unwrap();
        }
        assert_idle(&sem, 2);
    });
}

/// 14. One permit, two items: the gate waits for its own item's permit (off
///     the queue), which comes back when a reply from another thread ends
///     the first item; the second item's reply comes from a third thread.
///
/// Preemption bound 2.
#[test]
fn backlog_gate_waits_for_its_own_permit() {
    model_bounded(Some(2), || {
        use futures::StreamExt;
        let sem = Semaphore::new(1);
        let boxes = [Arc::new(Mailbox::default()), Arc::new(Mailbox::default())];
        let answerers: Vec<_> = boxes
            .iter()
            .map(|m| {
                let m = m.clone();
                thread::spawn(move || m.answer())
            })
            .collect();
        let n = block_on(sem.run_all(0..2, |i| Reply(boxes[i].clone())).count());
        assert_eq!(n, 2);
        for t in answerers {
            t.join().unwrap();
        }
        assert_idle(&sem, 1);
    });
}

/// 15. Two threads record samples into an adaptive limiter at once; its
///     algorithm decides a different limit for each. They decide in one
///     order (under the limiter's lock) and may apply to the semaphore in
///     the other (after it): the semaphore still ends at the last decided
///     limit, with a permit held throughout so a shrink leaves debt.
///
/// Preemption bound 3.
#[test]
fn adaptive_recorders_race_to_apply() {
    use permits::adaptive::{Algorithm, Decision, Limiter, Outcome, Reason, Sample};

    /// Decides 3, then 1, then 2, ...: every decision moves the limit.
    struct Cycle(usize);
    impl Algorithm for Cycle {
        fn limit(&self) -> usize {
            2
        }
        fn update(&mut self, _: &Sample) -> Option<Decision> {
            self.0 += 1;
            Some(Decision::new([3, 1, 2][self.0 % 3], Reason::Steady))
        }
    }

    model_bounded(Some(3), || {
        let limiter = Arc::new(Limiter::with_algorithm(Cycle(2)));
        let held = limiter.try_acquire().unwrap();
        let sample = Sample::new(std::time::Duration::from_millis(1), 1, Outcome::Success);
        let l = limiter.clone();
        let t = thread::spawn(move || l.record(sample));
        limiter.record(sample);
        t.join().unwrap();
        // Decided 3 then 1, in some order of threads: the last is 1.
        assert_eq!(limiter.limit(), 1);
        assert_eq!(limiter.semaphore().limit(), 1);
        assert_eq!(limiter.semaphore().debt(), 0);
        drop(held);
        assert_idle(limiter.semaphore(), 1);
    });
}
