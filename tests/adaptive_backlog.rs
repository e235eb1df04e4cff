//! The adaptive limiter over the backlog streams (`Limiter::run_all`,
//! `run_stream`, `gate`), hand-polled: items finish when the test says, so
//! each step (an item finishing, the limit moving, a close, a drop) is
//! checked against what the stream starts next and what the semaphore holds.
#![cfg(feature = "alloc")]

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use common::{counting_waker, poll_next, yield_now, Switches};
use futures::executor::block_on;
use futures::stream::{FusedStream, StreamExt};
use permits::adaptive::{Aimd, Algorithm, Decision, Limiter, Outcome, Reason, Sample};
use permits::{AcquireError, RunWith};

const MS: Duration = Duration::from_millis(1);

/// Decides the limits in `plan`, one per sample, in order; after that it
/// keeps the limit. Keeps every sample where the test can see it.
struct Scripted {
    start: usize,
    plan: Vec<usize>,
    seen: Arc<Mutex<Vec<Sample>>>,
}

impl Scripted {
    fn new(start: usize, plan: &[usize]) -> (Self, Arc<Mutex<Vec<Sample>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut plan = plan.to_vec();
        plan.reverse();
        (
            Self {
                start,
                plan,
                seen: seen.clone(),
            },
            seen,
        )
    }
}

impl Algorithm for Scripted {
    fn limit(&self) -> usize {
        self.start
    }
    fn update(&mut self, sample: &Sample) -> Option<Decision> {
        self.seen.lock().unwrap().push(*sample);
        Some(Decision::new(self.plan.pop()?, Reason::Steady))
    }
}

/// Every output is a success that took 1 ms.
fn success(_: &u32) -> (Outcome, Duration) {
    (Outcome::Success, MS)
}

/// The semaphore is back to `limit` free permits, no debt, nothing out.
#[track_caller]
fn all_back<A>(limiter: &Limiter<A>, limit: usize) {
    let sem = limiter.semaphore();
    assert_eq!(limiter.in_flight(), 0, "limiter permits still out");
    assert_eq!(sem.debt(), 0, "debt left");
    assert_eq!(sem.limit(), limit, "limit");
    assert_eq!(sem.available_permits(), limit, "permits lost");
}

/// Polls until `Pending`, collecting what was yielded.
fn drain_ready<S: futures::Stream + ?Sized>(mut s: Pin<&mut S>, w: &Waker) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = poll_next(s.as_mut(), w) {
        out.push(item);
    }
    out
}

#[test]
fn a_full_stream_starts_the_next_item_when_one_finishes() {
    // The earlier `LimiterGate` hung here: its `settle` never told the
    // semaphore gate inside that the permit was back, and that gate, full
    // and waiting for one of its own items to finish, was never woken.
    let (algo, seen) = Scripted::new(4, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_all(0..6, |i| sw.item(i), success));
    let (wakes, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1, 2, 3]);
    sw.finish(0);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(0)]);
    assert_eq!(sw.running(), [1, 2, 3, 4], "the fifth item did not start");
    let before = wakes.wakes();
    sw.finish(2);
    assert!(wakes.wakes() > before, "the stream was not woken");
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(2)]);
    assert_eq!(sw.running(), [1, 3, 4, 5]);
    for i in [1, 3, 4, 5] {
        sw.finish(i);
    }
    let rest = drain_ready(stream.as_mut(), &waker);
    assert_eq!(rest.len(), 4);
    assert!(stream.is_terminated());
    assert_eq!(seen.lock().unwrap().len(), 6);
    drop(stream);
    all_back(&limiter, 4);
}

#[test]
fn each_output_is_recorded_with_its_outcome_and_duration() {
    let (algo, seen) = Scripted::new(4, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let classify = |n: &u32| {
        let outcome = if n % 2 == 0 {
            Outcome::Success
        } else {
            Outcome::Overload
        };
        (outcome, Duration::from_millis(u64::from(*n)))
    };
    let outputs: Vec<_> = block_on(
        limiter
            .run_all(0..10u32, |n| async move { n }, classify)
            .collect(),
    );
    assert_eq!(outputs.len(), 10);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    for s in seen.iter() {
        let n = s.rtt.as_millis() as u32;
        assert_eq!((s.outcome, s.in_flight), (classify(&n).0, 1));
    }
    all_back(&limiter, 4);
}

#[test]
fn none_and_ignore_say_nothing() {
    let (algo, seen) = Scripted::new(4, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let n = block_on(
        limiter
            .run_all(
                0..10u32,
                |n| async move { n },
                |n: &u32| (*n < 5).then_some((Outcome::Success, MS)),
            )
            .count(),
    );
    assert_eq!(n, 10);
    // `None` records nothing; the five `Some` reach the algorithm.
    assert_eq!(seen.lock().unwrap().len(), 5);
    let limiter = Limiter::new(Aimd::new().initial_limit(3));
    block_on(
        limiter
            .run_all(
                0..50u32,
                |n| async move { n },
                |_: &u32| (Outcome::Ignore, MS),
            )
            .count(),
    );
    assert_eq!(limiter.decisions(), 0, "Ignore reached Aimd");
}

#[cfg(feature = "std")]
#[test]
fn an_outcome_alone_is_timed_from_admission_with_instant() {
    let (algo, seen) = Scripted::new(2, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let sleep = Duration::from_millis(5);
    let n = block_on(
        limiter
            .run_all(
                0..3u32,
                |_| async move { std::thread::sleep(sleep) },
                |_: &()| Outcome::Success,
            )
            .count(),
    );
    assert_eq!(n, 3);
    // Measured by the library's `Instant`: at least the sleep (a lower
    // bound only, so scheduling cannot fail it).
    assert!(seen.lock().unwrap().iter().all(|s| s.rtt >= sleep));
}

#[test]
fn overloads_shrink_the_limit_to_the_floor() {
    let limiter = Limiter::new(Aimd::new().initial_limit(8));
    let n = block_on(
        limiter
            .run_all(
                0..50u32,
                |_| async { Err::<(), u16>(421) },
                |r: &Result<(), u16>| match r {
                    Ok(()) => (Outcome::Success, MS),
                    Err(_) => (Outcome::Overload, MS),
                },
            )
            .count(),
    );
    assert_eq!(n, 50);
    assert_eq!((limiter.limit(), limiter.semaphore().limit()), (1, 1));
    all_back(&limiter, 1);
}

#[test]
fn lowered_to_one_with_many_in_flight_it_lets_them_finish_then_runs_one() {
    // The first sample lowers the limit from 6 to 1 with six in flight.
    let (algo, seen) = Scripted::new(6, &[1]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_all(0..12, |i| sw.item(i), success));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1, 2, 3, 4, 5]);
    sw.finish(0);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(0)]);
    assert_eq!(limiter.semaphore().limit(), 1);
    assert_eq!(limiter.semaphore().debt(), 4);
    for i in 1..6 {
        assert_eq!(sw.running().len(), 6 - i as usize, "started during debt");
        sw.finish(i);
        assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(i)]);
    }
    for i in 6..12 {
        assert_eq!(sw.running(), [i], "not one at a time");
        sw.finish(i);
        assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(i)]);
    }
    assert!(stream.is_terminated());
    assert_eq!(seen.lock().unwrap().len(), 12);
    drop(stream);
    all_back(&limiter, 1);
}

#[test]
fn raised_mid_stream_it_uses_the_new_room_at_once() {
    // The first sample raises the limit from 2 to 6.
    let (algo, _) = Scripted::new(2, &[6]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_all(0..20, |i| sw.item(i), success));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1]);
    sw.finish(0);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(0)]);
    assert_eq!(sw.running(), [1, 2, 3, 4, 5, 6], "the new room went unused");
    assert_eq!(limiter.in_flight(), 6);
    drop(stream);
    all_back(&limiter, 6);
}

#[test]
fn closed_mid_stream_it_finishes_the_work_in_flight_then_yields_closed() {
    let (algo, seen) = Scripted::new(3, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_all(0..10, |i| sw.item(i), success));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    limiter.semaphore().close();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    for i in [2, 0] {
        sw.finish(i);
        assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(i)]);
        assert!(sw.running().len() < 3, "started after close");
    }
    sw.finish(1);
    // The error comes once, last, after the work in flight.
    assert_eq!(
        drain_ready(stream.as_mut(), &waker),
        [Ok(1), Err(AcquireError::Closed)]
    );
    assert!(stream.is_terminated());
    assert!(sw.running().is_empty());
    // The three that ran were recorded; nothing else started.
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(limiter.in_flight(), 0);
}

/// One scripted run, dropped after `stop_at` steps: every permit comes
/// back, and only the items that finished were recorded.
fn run_and_drop_after(stop_at: usize) {
    // Samples 1 and 2 lower the limit to 2, then 1; sample 3 raises it to 4.
    let (algo, seen) = Scripted::new(5, &[2, 1, 4]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_all(0..30, |i| sw.item(i), success));
    let (_, waker) = counting_waker();
    let mut finished = 0;
    for step in 0..stop_at {
        if step == 0 {
            assert!(poll_next(stream.as_mut(), &waker).is_pending());
        } else if step % 2 == 1 {
            // Finish the oldest item in flight; poll on the next step (or
            // drop the stream with the wake-up unanswered).
            if let Some(&i) = sw.running().first() {
                sw.finish(i);
            }
        } else {
            finished += drain_ready(stream.as_mut(), &waker).len();
        }
        // Each item in flight holds one limiter permit (a finished one
        // until the stream polls it).
        let finished_unpolled = usize::from(step % 2 == 1);
        assert!(limiter.in_flight() <= sw.running().len() + finished_unpolled);
        assert!(limiter.in_flight() >= sw.running().len());
    }
    drop(stream);
    assert!(sw.running().is_empty(), "a future outlived the stream");
    assert_eq!(
        seen.lock().unwrap().len(),
        finished,
        "a dropped item was recorded"
    );
    let limit = limiter.limit();
    all_back(&limiter, limit);
}

#[test]
fn dropping_the_stream_at_any_step_loses_no_permit_and_records_nothing_more() {
    for stop_at in 0..16 {
        run_and_drop_after(stop_at);
    }
}

#[test]
fn a_pending_backlog_gives_the_permit_back_while_it_waits() {
    let (algo, _) = Scripted::new(2, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
    let sw = Switches::default();
    let mut stream = Box::pin(limiter.run_stream(rx, |i| sw.item(i), success));
    let (wakes, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.semaphore().available_permits(), 2);
    tx.unbounded_send(7).unwrap();
    assert!(wakes.wakes() > 0);
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [7]);
    sw.finish(7);
    drop(tx);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(7)]);
    assert!(stream.is_terminated());
    drop(stream);
    all_back(&limiter, 2);
}

#[test]
fn the_gate_drives_run_with_too() {
    let (algo, seen) = Scripted::new(3, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let stream = RunWith::new(
        limiter.gate(success),
        futures::stream::iter(0..9u32),
        |n| async move { n },
    );
    let outputs: Vec<u32> = block_on(stream.map(Result::unwrap).collect());
    assert_eq!(outputs.len(), 9);
    assert_eq!(seen.lock().unwrap().len(), 9);
    all_back(&limiter, 3);
}

#[test]
fn it_adapts_to_a_server_that_refuses_above_three() {
    // Sends take a few polls; a fourth at once is refused (421). This hung
    // with the earlier gate (see the first test).
    let on_server = Arc::new(AtomicUsize::new(0));
    let limiter = Limiter::new(Aimd::new().initial_limit(10));
    let send = |_: u32| {
        let on_server = on_server.clone();
        async move {
            if on_server.fetch_add(1, SeqCst) >= 3 {
                on_server.fetch_sub(1, SeqCst);
                return Err(421);
            }
            for _ in 0..3 {
                yield_now().await;
            }
            on_server.fetch_sub(1, SeqCst);
            Ok(())
        }
    };
    let classify = |r: &Result<(), u16>| match r {
        Ok(()) => (Outcome::Success, 10 * MS),
        Err(_) => (Outcome::Overload, 10 * MS),
    };
    let results: Vec<Result<(), u16>> = block_on(
        limiter
            .run_all(0..300u32, send, classify)
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(results.len(), 300);
    let refused = results.iter().filter(|r| r.is_err()).count();
    assert!(limiter.limit() <= 4, "limit {}", limiter.limit());
    assert!(refused < 30, "{refused} of 300 refused");
    let limit = limiter.limit();
    all_back(&limiter, limit);
}

#[test]
fn a_panicking_classifier_loses_nothing_and_the_stream_goes_on() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (algo, seen) = Scripted::new(2, &[]);
    let limiter = Limiter::with_algorithm(algo);
    let sw = Switches::default();
    let classify = |n: &u32| {
        assert!(*n != 1, "classifier bug");
        (Outcome::Success, MS)
    };
    let mut stream = Box::pin(limiter.run_all(0..6, |i| sw.item(i), classify));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1]);
    sw.finish(1);
    let polled = catch_unwind(AssertUnwindSafe(|| poll_next(stream.as_mut(), &waker)));
    assert!(polled.is_err(), "the classifier's panic did not propagate");
    // Item 1's permit is back (not recorded); the stream, polled again,
    // starts the next items and ends.
    assert_eq!(limiter.in_flight(), 1);
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 2], "the stream waited for the lost item");
    for i in [0, 2, 3, 4, 5] {
        sw.finish(i);
    }
    assert_eq!(drain_ready(stream.as_mut(), &waker).len(), 5);
    assert!(stream.is_terminated());
    assert_eq!(seen.lock().unwrap().len(), 5);
    drop(stream);
    all_back(&limiter, 2);
}
