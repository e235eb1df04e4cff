//! The adaptive limiter's API: what gets recorded and what does not, the
//! `run` adapter, bad input, and that wakers never run under its lock.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use permits::adaptive::{Aimd, Algorithm, Decision, Limiter, Outcome, Permit, Reason, Sample};
use permits::{AcquireError, TryAcquireError};

const MS: Duration = Duration::from_millis(1);

/// Keeps what it is given where the test can see it; never moves the limit.
#[derive(Default)]
struct Recorder(Arc<std::sync::Mutex<Vec<Sample>>>);

impl Algorithm for Recorder {
    fn limit(&self) -> usize {
        4
    }
    fn update(&mut self, sample: &Sample) -> Option<Decision> {
        self.0.lock().unwrap().push(*sample);
        None
    }
}

/// Decides the limits in `plan` (popped from the back), one per sample.
struct Scripted {
    plan: Vec<usize>,
}

impl Algorithm for Scripted {
    fn limit(&self) -> usize {
        4
    }
    fn update(&mut self, _: &Sample) -> Option<Decision> {
        let n = self.plan.pop()?;
        Some(Decision::new(n, Reason::Steady))
    }
}

#[test]
fn dropped_permit_records_nothing() {
    let limiter = Limiter::new(Aimd::new().initial_limit(3));
    let permit = limiter.try_acquire().unwrap();
    assert_eq!(limiter.in_flight(), 1);
    drop(permit);
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.decisions(), 0);
    assert_eq!(limiter.last_decision(), None);
    assert_eq!(limiter.semaphore().available_permits(), 3);
}

#[test]
fn ignore_records_nothing_in_aimd() {
    let limiter = Limiter::new(Aimd::new());
    for _ in 0..50 {
        limiter.try_acquire().unwrap().record(Outcome::Ignore, MS);
    }
    assert_eq!(limiter.decisions(), 0);
    assert_eq!(limiter.limit(), 1);
}

#[test]
fn permit_reports_in_flight_at_start() {
    let limiter = Limiter::with_algorithm(Scripted { plan: vec![] });
    let a = limiter.try_acquire().unwrap();
    let b = limiter.try_acquire().unwrap();
    assert_eq!((a.in_flight_at_start(), b.in_flight_at_start()), (1, 2));
    assert_eq!(b.permit().num_permits(), 1);
}

#[test]
fn shrink_is_exact_and_counts_the_recording_permit_as_out() {
    // Four out; a refusal shrinks 4 -> 3 while all four are still held.
    let limiter = Limiter::new(Aimd::new().initial_limit(4));
    let mut held: Vec<Permit<'_>> = (0..4).map(|_| limiter.try_acquire().unwrap()).collect();
    held.pop().unwrap().record(Outcome::Overload, MS);
    assert_eq!(limiter.limit(), 3);
    assert_eq!(limiter.semaphore().limit(), 3);
    // The recording permit paid the debt: three out, none free.
    assert_eq!(limiter.semaphore().debt(), 0);
    assert_eq!(limiter.semaphore().available_permits(), 0);
    assert_eq!(
        limiter.try_acquire().unwrap_err(),
        TryAcquireError::NoPermits
    );
    drop(held.pop());
    assert!(limiter.try_acquire().is_ok());
}

#[test]
fn last_decision_and_count_are_observable() {
    let limiter = Limiter::new(Aimd::new().initial_limit(2));
    for _ in 0..4 {
        let a = limiter.try_acquire().unwrap();
        let b = limiter.try_acquire().unwrap();
        a.record(Outcome::Success, 10 * MS);
        b.record(Outcome::Success, 10 * MS);
    }
    // Window 1 sets the baseline, 2 grows to 3, 3 and 4 hold 3 (2 of 3 in flight).
    assert_eq!(limiter.decisions(), 4);
    assert_eq!(limiter.limit(), 3);
    assert_eq!(
        limiter.last_decision(),
        Some(Decision::new(3, Reason::Steady))
    );
}

#[test]
fn harsh_backoff_never_reaches_zero() {
    // vector#21340: a ratio of 0.3 at a limit of 2 forgot every permit.
    let limiter = Limiter::new(Aimd::new().backoff(0.3).initial_limit(2));
    for _ in 0..10 {
        limiter.try_acquire().unwrap().record(Outcome::Overload, MS);
        assert_eq!(limiter.limit(), 1);
    }
    assert!(limiter.try_acquire().is_ok(), "work goes on at the floor");
}

#[test]
fn algorithm_deciding_zero_panics_and_keeps_the_limit() {
    let limiter = Limiter::with_algorithm(Scripted { plan: vec![0] });
    let permit = limiter.try_acquire().unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        permit.record(Outcome::Success, MS)
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("decided a limit of 0"), "{msg}");
    assert_eq!(limiter.limit(), 4);
    assert_eq!(limiter.semaphore().limit(), 4);
    assert_eq!(
        limiter.in_flight(),
        0,
        "the permit went back while unwinding"
    );
    assert_eq!(limiter.decisions(), 0);
}

#[test]
fn bad_aimd_parameters_are_refused() {
    for f in [
        || _ = Aimd::new().min_limit(0),
        || _ = Aimd::new().max_limit(10).initial_limit(11),
        || _ = Aimd::new().backoff(1.0),
        || _ = Aimd::new().backoff(0.0),
        || _ = Aimd::new().smoothing(0.0),
        || _ = Aimd::new().deviation_scale(f64::NAN),
        || _ = Aimd::new().tolerance(-0.1),
        || _ = Aimd::new().max_queueing(0.0),
        || _ = Aimd::new().min_limit(5).max_limit(4),
    ] {
        assert!(std::panic::catch_unwind(f).is_err());
    }
}

#[test]
fn with_algorithm_refuses_a_zero_start() {
    struct Zero;
    impl Algorithm for Zero {
        fn limit(&self) -> usize {
            0
        }
        fn update(&mut self, _: &Sample) -> Option<Decision> {
            None
        }
    }
    assert!(std::panic::catch_unwind(|| Limiter::with_algorithm(Zero)).is_err());
}

#[test]
fn growth_serves_queued_acquires() {
    let limiter = Limiter::with_algorithm(Scripted { plan: vec![5] });
    let held: Vec<_> = (0..4).map(|_| limiter.try_acquire().unwrap()).collect();
    let mut waiting = common::Task::new(limiter.acquire());
    assert!(waiting.poll().is_pending());
    let mut held = held.into_iter();
    // The decision to grow to 5 hands the new permit to the queued acquire.
    held.next().unwrap().record(Outcome::Success, MS);
    assert!(waiting.wakes() >= 1);
    let Poll::Ready(Ok(p)) = waiting.poll() else {
        panic!("served")
    };
    assert_eq!(p.in_flight_at_start(), 4);
}

#[test]
fn run_reports_the_classified_outcome() {
    let recorder = Recorder::default();
    let seen = recorder.0.clone();
    let limiter = Limiter::with_algorithm(recorder);
    let classify = |n: &i32| {
        let outcome = if *n == 7 {
            Outcome::Overload
        } else {
            Outcome::Success
        };
        (outcome, 3 * MS)
    };
    let out = futures::executor::block_on(limiter.run(async { 7 }, classify));
    assert_eq!(out, Ok(7));
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.semaphore().available_permits(), 4);
    // `None` records nothing; `Some` does.
    let out =
        futures::executor::block_on(limiter.run(async { 1 }, |_| None::<(Outcome, Duration)>));
    assert_eq!(out, Ok(1));
    let out =
        futures::executor::block_on(limiter.run(async { 2 }, |_| Some((Outcome::Ignore, MS))));
    assert_eq!(out, Ok(2));
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            Sample::new(3 * MS, 1, Outcome::Overload),
            Sample::new(MS, 1, Outcome::Ignore)
        ]
    );
}

#[test]
#[cfg(feature = "std")]
fn run_classify_sees_the_output_and_std_times_it() {
    let limiter = Limiter::new(Aimd::new().initial_limit(2));
    let out =
        futures::executor::block_on(limiter.run(async { Err::<(), u16>(421) }, |r| match r {
            Err(421) => Outcome::Overload,
            _ => Outcome::Success,
        }));
    assert_eq!(out, Ok(Err(421)));
    assert_eq!(limiter.limit(), 1);
    assert_eq!(limiter.last_decision().unwrap().reason, Reason::Overload);
}

#[test]
fn run_dropped_while_running_records_nothing() {
    let limiter = Limiter::new(Aimd::new());
    let mut run =
        common::Task::new(limiter.run(std::future::pending::<()>(), |_| (Outcome::Overload, MS)));
    assert!(run.poll().is_pending());
    assert_eq!(limiter.in_flight(), 1);
    drop(run);
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.decisions(), 0);
    assert_eq!(limiter.semaphore().available_permits(), 1);
}

#[test]
fn run_panicking_gives_the_permit_back_and_records_nothing() {
    let limiter = Limiter::new(Aimd::new());
    let mut run = pin!(limiter.run(async { panic!("boom") }, |_: &()| (Outcome::Overload, MS)));
    let waker = Waker::noop();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = run.as_mut().poll(&mut Context::from_waker(waker));
    }));
    assert!(caught.is_err());
    // Given back during the unwind, before the `Run` itself is dropped.
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.semaphore().available_permits(), 1);
    assert_eq!(limiter.decisions(), 0);
}

#[test]
fn run_on_a_closed_semaphore_never_runs() {
    let limiter = Limiter::new(Aimd::new());
    limiter.semaphore().close();
    let ran = AtomicUsize::new(0);
    let classify: fn(&usize) -> (Outcome, Duration) = |_| panic!("classify must not run");
    let out =
        futures::executor::block_on(limiter.run(async { ran.fetch_add(1, SeqCst) }, classify));
    assert_eq!(out, Err(AcquireError::Closed));
    assert_eq!(ran.load(SeqCst), 0);
}

/// A waker that reads the limiter when woken: if the limiter woke it while
/// holding its own lock, this would deadlock (std's mutex is not reentrant).
struct ReadsLimiter {
    limiter: Arc<Limiter<Scripted>>,
    woken: AtomicUsize,
}

impl Wake for ReadsLimiter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.limiter.last_decision();
        let _ = self.limiter.decisions();
        self.woken.fetch_add(1, SeqCst);
    }
}

#[test]
fn wakers_run_outside_the_limiter_lock() {
    let limiter = Arc::new(Limiter::with_algorithm(Scripted { plan: vec![6] }));
    let waker = Arc::new(ReadsLimiter {
        limiter: limiter.clone(),
        woken: AtomicUsize::new(0),
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let l = limiter.clone();
    let w = waker.clone();
    std::thread::spawn(move || {
        let held: Vec<_> = (0..4).map(|_| l.try_acquire().unwrap()).collect();
        let mut waiting = pin!(l.acquire());
        let waker = Waker::from(w);
        assert!(waiting
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let mut held = held.into_iter();
        // Grows to 6: set_limit serves the queued acquire and wakes it.
        held.next().unwrap().record(Outcome::Success, MS);
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("record finished (no deadlock)");
    assert_eq!(waker.woken.load(SeqCst), 1);
    assert_eq!(limiter.limit(), 6);
}

#[test]
fn concurrent_recorders_leave_the_semaphore_at_the_last_decision() {
    struct Alternate(usize);
    impl Algorithm for Alternate {
        fn limit(&self) -> usize {
            8
        }
        fn update(&mut self, _: &Sample) -> Option<Decision> {
            self.0 += 1;
            Some(Decision::new(1 + self.0 % 13, Reason::Steady))
        }
    }
    let limiter = Limiter::with_algorithm(Alternate(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..if cfg!(miri) { 50 } else { 2_000 } {
                    if let Ok(p) = limiter.try_acquire() {
                        p.record(Outcome::Success, MS);
                    } else {
                        limiter.record(Sample::new(MS, 1, Outcome::Success));
                    }
                }
            });
        }
    });
    assert_eq!(limiter.semaphore().limit(), limiter.limit());
    assert_eq!(limiter.semaphore().debt(), 0);
    assert_eq!(limiter.semaphore().available_permits(), limiter.limit());
}

/// A clock with coarse ticks (embassy-time's 1 ms, a simulation) gives the
/// same latency every time. Rounding in the moving mean then put each
/// window's mean a hair above it, and `Aimd` stopped growing (at 18 here)
/// as if the latency had risen.
#[test]
fn identical_latencies_let_the_limit_grow_to_the_ceiling() {
    use permits::adaptive::{Aimd, Algorithm, Outcome, Reason, Sample};
    use std::time::Duration;
    // Miri interprets this some 1000x slower: a lower ceiling there.
    let (ceiling, samples, latencies): (usize, usize, &[u64]) = if cfg!(miri) {
        (16, 1_000, &[1, 7])
    } else {
        (64, 20_000, &[1, 3, 7, 10, 33])
    };
    for &ms in latencies {
        let mut aimd = Aimd::new().initial_limit(2).max_limit(ceiling);
        let mut last = None;
        for _ in 0..samples {
            let limit = aimd.limit();
            let sample = Sample::new(Duration::from_millis(ms), limit, Outcome::Success);
            if let Some(d) = aimd.update(&sample) {
                last = Some(d.reason);
            }
        }
        assert_eq!(
            aimd.limit(),
            ceiling,
            "{ms} ms every time: last reason {last:?}"
        );
        assert_ne!(last, Some(Reason::Latency));
    }
}
