//! `Semaphore::run_all` while the semaphore's limit moves or it closes,
//! hand-polled: items finish when the test says, so each step is checked
//! against what the stream starts next, and a drop at any step must give
//! every permit back.
#![cfg(feature = "alloc")]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Waker};

use common::{counting_waker, poll_next, Switches};
use futures::stream::FusedStream;
use permits::{AcquireError, Semaphore};

/// Polls until `Pending` or the end, collecting what was yielded.
fn drain_ready<S: futures::Stream + ?Sized>(mut s: Pin<&mut S>, w: &Waker) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Poll::Ready(Some(item)) = poll_next(s.as_mut(), w) {
        out.push(item);
    }
    out
}

/// The semaphore is back to `limit` free permits with no debt.
#[track_caller]
fn all_back(sem: &Semaphore, limit: usize) {
    assert_eq!(sem.debt(), 0, "debt left");
    assert_eq!(sem.limit(), limit, "limit");
    assert_eq!(sem.available_permits(), limit, "permits lost");
}

#[test]
fn lowering_to_one_with_many_in_flight_lets_them_finish_then_runs_one_at_a_time() {
    let sem = Semaphore::new(6);
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..12, |i| sw.item(i)));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1, 2, 3, 4, 5]);
    sem.set_limit(1);
    assert_eq!(sem.debt(), 5);
    // The six finish; nothing new starts until fewer than one is out.
    for i in 0..5 {
        sw.finish(i);
        assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(i)]);
        assert_eq!(sw.running().len(), 5 - i as usize, "started past the limit");
    }
    sw.finish(5);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(5)]);
    // Then one at a time, each started as soon as the last finished.
    for i in 6..12 {
        assert_eq!(sw.running(), [i], "not one at a time");
        sw.finish(i);
        assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(i)]);
    }
    assert!(stream.is_terminated());
    drop(stream);
    all_back(&sem, 1);
}

#[test]
fn raising_mid_stream_uses_the_new_room_when_the_next_item_finishes() {
    // The documented "Turns" rule: waiting off the queue for its own items,
    // the stream sees a raise when one of them finishes, and then starts
    // as many as the new limit allows, not one.
    let sem = Semaphore::new(2);
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..10, |i| sw.item(i)));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1]);
    sem.set_limit(5);
    assert_eq!(sem.available_permits(), 3, "the raise made room");
    sw.finish(0);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(0)]);
    assert_eq!(sw.running(), [1, 2, 3, 4, 5]);
    sem.add_permits(1);
    sw.finish(1);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(1)]);
    assert_eq!(sw.running(), [2, 3, 4, 5, 6, 7]);
    for i in 2..10 {
        sw.finish(i);
    }
    assert_eq!(drain_ready(stream.as_mut(), &waker).len(), 8);
    assert!(stream.is_terminated());
    drop(stream);
    all_back(&sem, 6);
}

#[test]
fn a_raise_wakes_a_stream_that_has_no_item_running() {
    // With none of its own items out, the gate queues like any acquire,
    // so the raise serves it at once.
    let sem = Semaphore::new(1);
    let holder = sem.try_acquire().unwrap();
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..3, |i| sw.item(i)));
    let (wakes, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert!(sw.running().is_empty());
    assert_eq!(sem.waiters(), 1, "the stream did not queue");
    let before = wakes.wakes();
    sem.set_limit(2);
    assert!(wakes.wakes() > before, "the raise did not wake the stream");
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0]);
    drop(holder);
    for i in 0..3 {
        sw.finish(i);
    }
    assert_eq!(drain_ready(stream.as_mut(), &waker).len(), 3);
    drop(stream);
    all_back(&sem, 2);
}

#[test]
fn a_permit_given_back_by_someone_else_is_used_when_the_next_item_finishes() {
    // The documented "Turns" rule: off the queue, the stream waits for its
    // own items; a permit released meanwhile by another holder is free
    // (not lost) and used as soon as one of the stream's items finishes.
    let sem = Semaphore::new(3);
    let other = sem.try_acquire().unwrap();
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..10, |i| sw.item(i)));
    let (_, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1]);
    drop(other);
    assert_eq!(sem.available_permits(), 1);
    sw.finish(0);
    assert_eq!(drain_ready(stream.as_mut(), &waker), [Ok(0)]);
    assert_eq!(sw.running(), [1, 2, 3], "the free permit was not used");
    drop(stream);
    all_back(&sem, 3);
}

#[test]
fn close_mid_stream_finishes_the_work_in_flight_then_yields_closed() {
    let sem = Semaphore::new(3);
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..10, |i| sw.item(i)));
    let (wakes, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    sem.close();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert_eq!(sw.running(), [0, 1, 2], "in-flight work was cut");
    for i in [1, 0, 2] {
        let before = wakes.wakes();
        sw.finish(i);
        assert!(wakes.wakes() > before);
        assert_eq!(drain_ready(stream.as_mut(), &waker)[0], Ok(i));
        assert!(sw.running().len() < 3, "started after close");
    }
    // The error comes last, once; then the end.
    assert!(stream.is_terminated());
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn close_while_queued_behind_another_holder_ends_the_stream() {
    let sem = Semaphore::new(1);
    let other = sem.try_acquire().unwrap();
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..10, |i| sw.item(i)));
    let (wakes, waker) = counting_waker();
    assert!(poll_next(stream.as_mut(), &waker).is_pending());
    assert!(sw.running().is_empty());
    sem.close();
    assert!(wakes.wakes() > 0, "close did not wake the queued stream");
    assert_eq!(
        drain_ready(stream.as_mut(), &waker),
        [Err(AcquireError::Closed)]
    );
    assert!(stream.is_terminated());
    drop(other);
}

/// One scripted run, stopped (the stream dropped) after `stop_at` steps:
/// the semaphore must be whole again whatever the step. Another holder has
/// one permit from the start.
fn run_and_drop_after(stop_at: usize) {
    let sem = Semaphore::new(5);
    let mut other = sem.try_acquire().ok();
    let sw = Switches::default();
    let mut stream = Box::pin(sem.run_all(0..20, |i| sw.item(i)));
    let (_, waker) = counting_waker();
    let mut limit = 5;
    for step in 0..stop_at {
        let polled = match step {
            // Four in flight, the gate waits for its own items.
            0 => drain_ready(stream.as_mut(), &waker),
            1 => {
                sw.finish(0); // woken, not polled yet
                vec![]
            }
            2 => drain_ready(stream.as_mut(), &waker), // 0 out, 4 starts
            3 => {
                sem.set_limit(1); // debt 4: the other holder and three of ours
                limit = 1;
                vec![]
            }
            4 => {
                sw.finish(2);
                drain_ready(stream.as_mut(), &waker) // pays debt
            }
            5 => {
                sem.set_limit(4); // cancels the debt, wakes the stream
                limit = 4;
                vec![]
            }
            6 => drain_ready(stream.as_mut(), &waker),
            7 => {
                other = None; // given back while the stream waits
                vec![]
            }
            8 => {
                // Someone queues: the stream must queue behind them.
                other = sem.try_acquire().ok();
                let mut queued = Box::pin(sem.acquire());
                let mut cx = std::task::Context::from_waker(&waker);
                assert!(queued.as_mut().poll(&mut cx).is_pending());
                for i in sw.running() {
                    sw.finish(i);
                }
                let out = drain_ready(stream.as_mut(), &waker);
                drop(queued);
                out
            }
            9 => drain_ready(stream.as_mut(), &waker),
            10 => {
                sem.close();
                drain_ready(stream.as_mut(), &waker)
            }
            _ => {
                for i in sw.running() {
                    sw.finish(i);
                }
                drain_ready(stream.as_mut(), &waker)
            }
        };
        assert!(polled.iter().all(|r| r.is_ok() || step >= 10));
        assert!(
            // Never more than the largest limit (a shrink lets work finish).
            sw.running().len() + usize::from(other.is_some()) <= 5,
            "over the limit at step {step}"
        );
    }
    drop(stream);
    assert!(sw.running().is_empty(), "a future outlived the stream");
    drop(other);
    assert_eq!(sem.debt(), 0, "debt left after drop at step {stop_at}");
    assert_eq!(sem.limit(), limit);
    assert_eq!(
        sem.available_permits(),
        limit,
        "permits lost after drop at step {stop_at}"
    );
}

#[test]
fn dropping_the_stream_at_any_step_gives_every_permit_back() {
    for stop_at in 0..13 {
        run_and_drop_after(stop_at);
    }
}

#[test]
fn two_streams_on_one_semaphore_share_a_raise() {
    // One gate waits off the queue for its own items, the other queues: the
    // raise serves the queued one at once, and the other takes what is left
    // when its next item finishes.
    let sem = Semaphore::new(2);
    let (a, b) = (Switches::default(), Switches::default());
    let mut first = Box::pin(sem.run_all(0..10, |i| a.item(i)));
    let mut second = Box::pin(sem.run_all(100..110, |i| b.item(i)));
    let (_, waker_first) = counting_waker();
    let (wakes_second, waker_second) = counting_waker();
    assert!(poll_next(first.as_mut(), &waker_first).is_pending());
    assert!(poll_next(second.as_mut(), &waker_second).is_pending());
    assert_eq!((a.running().len(), b.running().len()), (2, 0));
    assert_eq!(sem.waiters(), 1, "the second stream did not queue");
    let before_second = wakes_second.wakes();
    sem.add_permits(2);
    assert!(
        wakes_second.wakes() > before_second,
        "the queued stream was not woken"
    );
    assert!(poll_next(second.as_mut(), &waker_second).is_pending());
    assert!(
        !b.running().is_empty(),
        "the queued stream was served first"
    );
    a.finish(0);
    assert_eq!(drain_ready(first.as_mut(), &waker_first), [Ok(0)]);
    // Between them the two streams use all four permits.
    assert_eq!(a.running().len() + b.running().len(), 4);
    drop((first, second));
    all_back(&sem, 4);
}
