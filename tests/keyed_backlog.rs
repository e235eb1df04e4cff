//! The keyed backlog stream (`KeyedSemaphore::run_all` / `run_stream`):
//! limits held on real pools, no head-of-line blocking, round-robin between
//! keys, the lookahead's bound, limits changed mid-stream, close, and drop
//! at every state (nothing lost, every key evicted).
#![cfg(feature = "alloc")]

mod common;

use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::keyed_tracker::{Entered, Tracker};
use common::{counting_waker, yield_now};
use futures::{Future, Stream, StreamExt};
use permits::{AcquireError, KeyedSemaphore};

/// Items that finish only when the test lets them: each waits for one
/// permit of the valve (FIFO), so `open(n)` finishes the `n` oldest waiting.
#[derive(Clone)]
struct Valve(Arc<tokio::sync::Semaphore>);

impl Valve {
    fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(0)))
    }
    async fn pass(&self) {
        self.0.acquire().await.unwrap().forget();
    }
    fn open(&self, n: usize) {
        self.0.add_permits(n);
    }
}

/// Polls `stream` by hand until it is `Pending` without having woken itself,
/// or ends; returns what it yielded and whether it ended.
fn poll_all<S: Stream + ?Sized>(mut stream: Pin<&mut S>) -> (Vec<S::Item>, bool) {
    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    loop {
        let before = wakes.wakes();
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => out.push(item),
            Poll::Ready(None) => return (out, true),
            Poll::Pending if wakes.wakes() == before => return (out, false),
            Poll::Pending => {}
        }
    }
}

fn xorshift(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

/// A skewed mix of keys: key 0 is a third of the backlog.
fn key_of_item(n: u32) -> u32 {
    let mut x = n.wrapping_mul(2_654_435_761) | 1;
    let r = xorshift(&mut x);
    if r % 3 == 0 {
        0
    } else {
        r % 40
    }
}

fn limit_of(key: u32) -> usize {
    match key {
        1 => 1,
        2 => 5,
        _ => 3,
    }
}

#[test]
// Miri cannot run these pools in reasonable time; the hand-polled tests
// below cover the same code there.
#[cfg_attr(miri, ignore)]
fn limits_hold_on_tokio_multi_thread() {
    let keyed: &'static KeyedSemaphore<u32> =
        Box::leak(Box::new(KeyedSemaphore::with_global_limit(3, 8)));
    keyed.set_key_limit(1, 1);
    keyed.set_key_limit(2, 5);
    let tracker: &'static Tracker = Box::leak(Box::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        // Two streams and a plain `run` loop share the semaphore; each item's
        // work runs in a task of its own, on any worker thread, and wakes the
        // stream from there.
        let streams: Vec<_> = (0..2u32)
            .map(|s| {
                tokio::spawn(async move {
                    let items = (s * 3000..s * 3000 + 3000).map(key_of_item);
                    let work = |key: u32| async move {
                        tokio::spawn(async move {
                            let _in = Entered::new(tracker, key);
                            for _ in 0..key % 4 {
                                tokio::task::yield_now().await;
                            }
                        })
                        .await
                        .unwrap();
                    };
                    let mut stream = pin!(keyed.run_all(items, |&k| k, work).lookahead(64));
                    let mut n = 0;
                    while let Some(out) = stream.next().await {
                        out.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let plain = tokio::spawn(async move {
            for n in 0..500 {
                let key = key_of_item(n);
                keyed
                    .run(key, async move {
                        let _in = Entered::new(tracker, key);
                        tokio::task::yield_now().await;
                    })
                    .await
                    .unwrap();
            }
        });
        for s in streams {
            assert_eq!(s.await.unwrap(), 3000);
        }
        plain.await.unwrap();
    });
    let top = tracker.check(limit_of, 8);
    assert!(top >= 3, "the test never reached a key's limit");
    assert_eq!(
        tracker.total.max(),
        8,
        "the test never reached the global limit"
    );
    assert_eq!(
        keyed.live_keys(),
        2,
        "only the keys with their own limit stay"
    );
    assert_eq!(keyed.global().unwrap().available_permits(), 8);
}

#[test]
#[cfg_attr(miri, ignore)]
fn limits_hold_on_futures_thread_pool() {
    use futures::task::SpawnExt;
    let keyed = Arc::new(KeyedSemaphore::with_global_limit(3, 8));
    keyed.set_key_limit(1, 1);
    keyed.set_key_limit(2, 5);
    let tracker = Arc::new(Tracker::default());
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(4)
        .create()
        .unwrap();
    let streams: Vec<_> = (0..2u32)
        .map(|s| {
            let (keyed, tracker, p) = (keyed.clone(), tracker.clone(), pool.clone());
            pool.spawn_with_handle(async move {
                let items = (s * 2000..s * 2000 + 2000).map(key_of_item);
                let work = |key: u32| {
                    let tracker = tracker.clone();
                    // The work runs as a task of its own, on any pool thread,
                    // and wakes the stream from there.
                    let task = p
                        .spawn_with_handle(async move {
                            let _in = Entered::new(&tracker, key);
                            std::thread::sleep(std::time::Duration::from_micros(20));
                        })
                        .unwrap();
                    task
                };
                let stream = keyed.run_all(items, |&k| k, work).lookahead(64);
                stream
                    .fold(0, |n, out| async move { n + usize::from(out.is_ok()) })
                    .await
            })
            .unwrap()
        })
        .collect();
    for s in streams {
        assert_eq!(futures::executor::block_on(s), 2000);
    }
    let top = tracker.check(limit_of, 8);
    assert!(top >= 2, "the test never overlapped a key's items");
    assert!(tracker.total.max() >= 4, "the items never overlapped");
    assert_eq!(keyed.live_keys(), 2);
    assert_eq!(keyed.global().unwrap().available_permits(), 8);
}

/// The head-of-line test: the first 1,000 items go to one slow key,
/// then come the items of ten fast keys. The slow key's items do not finish
/// at all until the test lets them: every fast item still runs and finishes
/// first, at the fast keys' own pace.
#[test]
fn a_slow_key_first_in_the_backlog_does_not_hold_up_the_others() {
    let (slow_items, fast_items) = if cfg!(miri) { (60, 40) } else { (1000, 200) };
    let keyed = KeyedSemaphore::with_global_limit(2, 8);
    let tracker = Tracker::default();
    let valve = Valve::new();
    const SLOW: u32 = 100;
    let items = (0..slow_items)
        .map(|_| SLOW)
        .chain((0..fast_items).map(|n| n % 10));
    let work = |key: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, key);
            if key == SLOW {
                valve.pass().await;
            } else {
                yield_now().await;
            }
            key
        }
    };
    let mut stream = pin!(keyed.run_all(items, |&k| k, work));
    let (done, ended) = poll_all(stream.as_mut());
    assert!(!ended);
    // All the fast items finished; not one slow item did.
    assert_eq!(done.len(), fast_items as usize);
    assert!(done.iter().all(|k| *k.as_ref().unwrap() < 10));
    // The slow key ran at its limit the whole time, the rest of it waits.
    assert_eq!(tracker.now(SLOW), 2);
    assert_eq!(stream.waiting(), slow_items - 2);
    assert_eq!(stream.waiting_keys(), 1);
    valve.open(slow_items);
    let (done, ended) = poll_all(stream.as_mut());
    assert!(ended);
    assert_eq!(done.len(), slow_items);
    assert!(done.iter().all(|k| *k.as_ref().unwrap() == SLOW));
    // Each key ran at its limit at most, and the fast ones reached it.
    assert_eq!(tracker.check(|_| 2, 8), 2);
    assert_eq!(tracker.total.max(), 8);
    assert_eq!(keyed.live_keys(), 0);
}

/// The other side of the bound: with a lookahead shorter than the slow key's
/// run, the gate stops pulling once the lookahead is full, and the fast keys
/// start only once the slow run is within the lookahead of them.
#[test]
fn a_slow_run_longer_than_the_lookahead_holds_up_what_is_behind_it() {
    let (slow_items, lookahead) = if cfg!(miri) { (80, 20) } else { (300, 50) };
    let keyed = KeyedSemaphore::with_global_limit(2, 8);
    let tracker = Tracker::default();
    let valve = Valve::new();
    let pulled = AtomicUsize::new(0);
    const SLOW: u32 = 100;
    let items = (0..slow_items)
        .map(|_| SLOW)
        .chain((0..50).map(|n| n % 10))
        .inspect(|_| {
            pulled.fetch_add(1, SeqCst);
        });
    let work = |key: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, key);
            if key == SLOW {
                valve.pass().await;
            }
        }
    };
    let mut stream = pin!(keyed.run_all(items, |&k| k, work).lookahead(lookahead));
    let (done, _) = poll_all(stream.as_mut());
    assert!(done.is_empty());
    // Full: 2 running, `lookahead` waiting, nothing more pulled.
    assert_eq!(stream.waiting(), lookahead);
    assert_eq!(pulled.load(SeqCst), lookahead + 2);
    let mut first_fast_after = None;
    for _ in 0..slow_items {
        valve.open(1);
        let _ = poll_all(stream.as_mut());
        let started = tracker.started();
        if first_fast_after.is_none() {
            if let Some(i) = started.iter().position(|&k| k != SLOW) {
                first_fast_after = Some(i);
            }
        }
    }
    // The first fast item is the backlog's item `slow_items`: pulled only
    // once fewer than `lookahead` slow items waited.
    let slow_started_before = first_fast_after.expect("the fast keys ran");
    assert!(
        slow_started_before >= slow_items - lookahead,
        "a fast item started after only {slow_started_before} slow ones"
    );
    let (_, ended) = poll_all(stream.as_mut());
    assert!(ended);
    assert_eq!(tracker.started().len(), slow_items + 50);
}

/// Keys waiting for the global limit take turns, one item each, however
/// many items the first key has.
#[test]
fn keys_waiting_for_the_global_limit_take_turns() {
    let keyed = KeyedSemaphore::with_global_limit(1, 1);
    let tracker = Tracker::default();
    let valve = Valve::new();
    let items = std::iter::repeat_n(0, 30)
        .chain(std::iter::repeat_n(1, 10))
        .chain(std::iter::repeat_n(2, 10));
    let work = |key: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, key);
            valve.pass().await;
        }
    };
    let mut stream = pin!(keyed.run_all(items, |&k| k, work));
    let mut ended = false;
    while !ended {
        ended = poll_all(stream.as_mut()).1;
        valve.open(1);
    }
    let started = tracker.started();
    assert_eq!(started.len(), 50);
    let expected: Vec<u32> = (0..10).flat_map(|_| [0, 1, 2]).chain([0; 20]).collect();
    assert_eq!(started, expected);
    tracker.check(|_| 1, 1);
    assert_eq!(keyed.live_keys(), 0);
}

/// Items pulled but not started never exceed the lookahead, and the bound is
/// reached (so the check could fail).
#[test]
fn the_lookahead_bound_holds() {
    let lookahead = 16;
    let n = if cfg!(miri) { 60 } else { 600 };
    let keyed = KeyedSemaphore::with_global_limit(2, 6);
    keyed.set_key_limit(1, 1);
    let tracker = Tracker::default();
    let valve = Valve::new();
    let (pulled, most_waiting) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let items = (0..n).map(|i| key_of_item(i) % 8).inspect(|_| {
        let waiting = pulled.fetch_add(1, SeqCst) + 1 - tracker.started().len();
        assert!(
            waiting <= lookahead,
            "{waiting} items pulled and not started"
        );
        most_waiting.fetch_max(waiting, SeqCst);
    });
    let work = |key: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, key);
            valve.pass().await;
        }
    };
    let mut stream = pin!(keyed.run_all(items, |&k| k, work).lookahead(lookahead));
    let mut x = 7;
    loop {
        let (_, ended) = poll_all(stream.as_mut());
        assert!(stream.waiting() <= lookahead);
        if ended {
            break;
        }
        valve.open(1 + xorshift(&mut x) as usize % 3);
    }
    assert_eq!(most_waiting.load(SeqCst), lookahead);
    assert_eq!(tracker.started().len(), n as usize);
    tracker.check(|k| if k == 1 { 1 } else { 2 }, 6);
    assert_eq!(keyed.live_keys(), 1);
}

/// A key's limit raised and lowered while the stream has its items running
/// and waiting: raised, its waiting items start at once; lowered, no new one
/// starts until fewer than the new limit run.
#[test]
fn changing_a_keys_limit_mid_stream() {
    let keyed = KeyedSemaphore::new(1);
    let tracker = Tracker::default();
    let valve = Valve::new();
    let work = |key: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, key);
            valve.pass().await;
        }
    };
    let mut stream = pin!(keyed.run_all(std::iter::repeat_n(7, 40), |&k| k, work));
    poll_all(stream.as_mut());
    assert_eq!(tracker.now(7), 1);
    assert_eq!(stream.waiting(), 39);
    keyed.set_key_limit(7, 4);
    poll_all(stream.as_mut());
    assert_eq!(tracker.now(7), 4);
    keyed.set_key_limit(7, 2);
    // 4 run; the first two to finish are not replaced.
    for expected in [3, 2, 2, 2] {
        valve.open(1);
        poll_all(stream.as_mut());
        assert_eq!(tracker.now(7), expected);
    }
    keyed.clear_key_limit(&7);
    valve.open(40);
    let (done, ended) = poll_all(stream.as_mut());
    assert!(ended);
    assert_eq!(done.len(), 36);
    assert_eq!(tracker.started().len(), 40);
    assert_eq!(keyed.live_keys(), 0);
}

/// Closed mid-stream: nothing more starts, the work in flight finishes, the
/// error comes last; the items that did not run are exactly those waiting
/// and those left in the source; every key is evicted.
#[test]
fn close_mid_stream() {
    let keyed = KeyedSemaphore::with_global_limit(2, 4);
    let tracker = Tracker::default();
    let valve = Valve::new();
    let work = |n: u32| {
        let (tracker, valve) = (&tracker, valve.clone());
        async move {
            let _in = Entered::new(tracker, n % 5);
            valve.pass().await;
            n
        }
    };
    let mut stream = pin!(keyed.run_all(0..100u32, |n| n % 5, work).lookahead(10));
    let (done, _) = poll_all(stream.as_mut());
    assert!(done.is_empty());
    assert_eq!(tracker.total.now(), 4);
    assert_eq!(stream.waiting(), 10);
    keyed.close();
    valve.open(100);
    let (done, ended) = poll_all(stream.as_mut());
    assert!(ended);
    assert_eq!(done.len(), 5, "4 outputs, then the error");
    assert_eq!(done[4], Err(AcquireError::Closed));
    let mut ran: Vec<u32> = done[..4].iter().map(|o| *o.as_ref().unwrap()).collect();
    assert_eq!(tracker.started().len(), 4);
    let waiting = stream.as_mut().take_waiting();
    assert_eq!(waiting.len(), 10);
    let left: Vec<u32> = stream.as_mut().remaining().collect();
    ran.extend(waiting);
    ran.extend(left);
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..100).collect::<Vec<_>>(),
        "each item ran or is handed back, once"
    );
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.global().unwrap().available_permits(), 4);
}

/// Dropped after every number of steps: items running, waiting for their
/// key, waiting for the global limit, granted but not handed out. Nothing
/// is lost and the map is empty afterwards.
#[test]
fn dropped_at_every_state_loses_nothing_and_evicts_every_key() {
    let steps = if cfg!(miri) { 8 } else { 40 };
    for stop_after in 0..steps {
        let keyed = KeyedSemaphore::with_global_limit(2, 3);
        keyed.set_key_limit(0, 1);
        let valve = Valve::new();
        let work = |_: u32| {
            let valve = valve.clone();
            async move { valve.pass().await }
        };
        {
            let mut stream = pin!(keyed
                .run_all(0..60u32, |n| n % 4, work)
                .lookahead(8)
                .limit(5));
            for _ in 0..stop_after {
                poll_all(stream.as_mut());
                valve.open(1);
            }
        }
        assert_eq!(
            keyed.live_keys(),
            1,
            "after {stop_after} steps: only key 0, with its own limit"
        );
        keyed.clear_key_limit(&0);
        assert_eq!(keyed.live_keys(), 0);
        assert_eq!(keyed.global().unwrap().available_permits(), 3);
        // Every key's permits came back too: a full round of try_acquire.
        for key in 0..4 {
            let p = keyed.try_acquire(key).unwrap();
            drop(p);
        }
    }
}

/// `stop_on_err`: the first error stops admission; what did not run is
/// handed back.
#[test]
fn stop_on_err_hands_back_what_did_not_run() {
    let keyed = KeyedSemaphore::with_global_limit(1, 2);
    let valve = Valve::new();
    let work = |n: u32| {
        let valve = valve.clone();
        async move {
            valve.pass().await;
            if n == 3 {
                Err(n)
            } else {
                Ok(n)
            }
        }
    };
    let mut stream = pin!(keyed
        .run_all(0..50u32, |n| n % 3, work)
        .lookahead(6)
        .stop_on_err());
    let mut outputs = Vec::new();
    let mut ended = false;
    while !ended {
        let (out, e) = poll_all(stream.as_mut());
        outputs.extend(out);
        ended = e;
        valve.open(1);
    }
    let errors = outputs.iter().filter(|o| matches!(o, Ok(Err(_)))).count();
    assert_eq!(errors, 1);
    let mut seen: Vec<u32> = outputs
        .into_iter()
        .map(|o| match o.unwrap() {
            Ok(n) | Err(n) => n,
        })
        .collect();
    seen.extend(stream.as_mut().take_waiting());
    seen.extend(stream.as_mut().remaining());
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    assert_eq!(keyed.live_keys(), 0);
}

/// In order, over keys that finish out of order.
#[test]
fn in_order_outputs() {
    let keyed = KeyedSemaphore::with_global_limit(2, 4);
    let work = |n: u32| async move {
        for _ in 0..(7 - n % 7) {
            yield_now().await;
        }
        n
    };
    let n = if cfg!(miri) { 40 } else { 200 };
    let out: Vec<_> =
        futures::executor::block_on(keyed.run_all(0..n, |n| n % 3, work).in_order().collect());
    assert_eq!(out, (0..n).map(Ok).collect::<Vec<_>>());
    assert_eq!(keyed.live_keys(), 0);
}

/// A source that is sometimes empty (`Pending`), as a channel is.
#[test]
fn a_stream_source_that_waits() {
    let keyed = KeyedSemaphore::new(2);
    let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
    let mut stream = pin!(keyed.run_stream(rx, |n| n % 2, |n| async move { n }));
    assert!(poll_all(stream.as_mut()).0.is_empty());
    for n in 0..10 {
        tx.unbounded_send(n).unwrap();
    }
    let (done, ended) = poll_all(stream.as_mut());
    assert_eq!(done.len(), 10);
    assert!(!ended);
    drop(tx);
    assert!(poll_all(stream.as_mut()).1);
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
#[should_panic(expected = "the lookahead must be at least 1")]
fn a_lookahead_of_zero_panics() {
    let keyed = KeyedSemaphore::<u32>::new(2);
    let _ = keyed
        .run_all(0..1u32, |&n| n, |n| async move { n })
        .lookahead(0);
}

/// What the stream is for: the hand-written `for_each_concurrent` of
/// `KeyedSemaphore::run` over the same backlog fills its slots with the slow
/// key's waiting items, and not one fast item runs (the head-of-line
/// blocking the README describes).
#[test]
fn for_each_concurrent_of_run_is_blocked_by_a_slow_key() {
    let keyed = KeyedSemaphore::with_global_limit(2, 8);
    let valve = Valve::new();
    let fast_done = AtomicUsize::new(0);
    const SLOW: u32 = 100;
    let items = (0..40).map(|_| SLOW).chain((0..20).map(|n| n % 10));
    let all = futures::stream::iter(items).for_each_concurrent(16, |key| {
        let (keyed, valve, fast_done) = (&keyed, valve.clone(), &fast_done);
        async move {
            keyed
                .run(key, async {
                    if key == SLOW {
                        valve.pass().await;
                    } else {
                        fast_done.fetch_add(1, SeqCst);
                    }
                })
                .await
                .unwrap();
        }
    });
    let mut all = pin!(all);
    let (_, waker) = counting_waker();
    assert!(all
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    assert_eq!(fast_done.load(SeqCst), 0, "no fast item ran");
    valve.open(40);
    futures::executor::block_on(all);
    assert_eq!(fast_done.load(SeqCst), 20);
}
