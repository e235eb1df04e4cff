//! `KeyedSemaphore`: limits per key and in total, eviction, overrides,
//! close and cancellation.
#![cfg(feature = "alloc")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::keyed_tracker::{Entered, Tracker};
use common::{yield_now, Task};
use permits::{AcquireError, KeyedSemaphore, TryAcquireError};

#[test]
fn per_key_and_global_limits_with_try_acquire() {
    let keyed = KeyedSemaphore::with_global_limit(2, 3);
    let a1 = keyed.try_acquire("a").unwrap();
    let a2 = keyed.try_acquire("a").unwrap();
    assert_eq!(
        keyed.try_acquire("a").unwrap_err(),
        TryAcquireError::NoPermits
    );
    let b1 = keyed.try_acquire("b").unwrap();
    // Global limit reached, though "c" has room.
    assert_eq!(
        keyed.try_acquire("c").unwrap_err(),
        TryAcquireError::NoPermits
    );
    assert_eq!(keyed.global().unwrap().available_permits(), 0);
    // The failed try on "c" left no entry behind.
    assert_eq!(keyed.live_keys(), 2);
    assert_eq!(a1.key(), &"a");
    drop(a1);
    let c1 = keyed.try_acquire("c").unwrap();
    drop((a2, b1, c1));
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.global().unwrap().available_permits(), 3);
}

/// The bug the issue names: taking the global permit first lets a saturated
/// key hold global permits while it waits. Here its waiters hold none.
#[test]
fn a_saturated_key_holds_no_global_permit() {
    let keyed = KeyedSemaphore::with_global_limit(1, 2);
    let a = keyed.try_acquire("a").unwrap();
    let mut waiting: Vec<_> = (0..10).map(|_| Task::new(keyed.acquire("a"))).collect();
    for t in &mut waiting {
        t.pending();
    }
    // Ten requests for "a" wait; the second global permit is still free.
    assert_eq!(keyed.global().unwrap().available_permits(), 1);
    let b = keyed.try_acquire("b").unwrap();
    drop(b);
    drop(a);
    let next = waiting[0].ready().unwrap();
    assert_eq!(next.key(), &"a");
    // Still one global permit free for other keys; the other nine wait.
    assert_eq!(keyed.global().unwrap().available_permits(), 1);
    waiting[1].pending();
    drop(next);
    drop(waiting);
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.global().unwrap().available_permits(), 2);
}

#[test]
fn fifo_within_a_key() {
    let keyed = KeyedSemaphore::new(1);
    let first = keyed.try_acquire(7).unwrap();
    let mut queued: Vec<_> = (0..5).map(|_| Task::new(keyed.acquire(7))).collect();
    for t in &mut queued {
        t.pending();
    }
    // try_acquire does not barge past the queue.
    drop(first);
    assert_eq!(
        keyed.try_acquire(7).unwrap_err(),
        TryAcquireError::NoPermits
    );
    for i in 0..5 {
        let permit = queued[i].ready().unwrap();
        for later in &mut queued[i + 1..] {
            later.pending();
        }
        drop(permit);
    }
    assert_eq!(keyed.live_keys(), 0);
}

/// Requests that hold their key's permit are served globally in the order
/// they queued there, whatever their keys.
#[test]
fn global_fifo_across_keys() {
    let keyed = KeyedSemaphore::with_global_limit(5, 1);
    let blocker = keyed.try_acquire(0).unwrap();
    let mut queued: Vec<_> = [3, 1, 2, 1, 3].map(|k| Task::new(keyed.acquire(k))).into();
    for t in &mut queued {
        t.pending();
    }
    drop(blocker);
    for i in 0..queued.len() {
        let permit = queued[i].ready().unwrap();
        for later in &mut queued[i + 1..] {
            later.pending();
        }
        drop(permit);
    }
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
fn run_holds_the_permits_while_the_future_runs() {
    let keyed = KeyedSemaphore::with_global_limit(1, 4);
    futures::executor::block_on(async {
        let inside = keyed
            .run("k", async {
                assert_eq!(
                    keyed.try_acquire("k").unwrap_err(),
                    TryAcquireError::NoPermits
                );
                assert_eq!(keyed.global().unwrap().available_permits(), 3);
                yield_now().await;
                42
            })
            .await;
        assert_eq!(inside, Ok(42));
    });
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.global().unwrap().available_permits(), 4);
}

#[test]
fn run_gives_the_permits_back_on_panic() {
    let keyed = KeyedSemaphore::with_global_limit(1, 1);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(keyed.run(1, async { panic!("boom") }))
    }));
    assert!(caught.is_err());
    assert_eq!(keyed.live_keys(), 0);
    assert!(keyed.try_acquire(1).is_ok());
}

/// Cancellation in every state of an acquire: never polled, queued for the
/// key, served by the key but not polled, queued for the global permit,
/// served globally but not polled; and a `run` dropped while running.
#[test]
fn cancellation_at_every_state() {
    let keyed = KeyedSemaphore::with_global_limit(1, 1);
    let global = keyed.global().unwrap();

    // Never polled.
    drop(keyed.acquire(1));
    assert_eq!(keyed.live_keys(), 0);

    // Queued for the key: the next waiter of the key is unaffected.
    let held = keyed.try_acquire(1).unwrap();
    let mut a = Task::new(keyed.acquire(1));
    let mut b = Task::new(keyed.acquire(1));
    a.pending();
    b.pending();
    drop(a);
    drop(held);
    assert!(b.wakes() > 0);
    drop(b.ready().unwrap());

    // Served by the key's queue, not yet polled: the key permit goes to the
    // next key waiter.
    let held = keyed.try_acquire(1).unwrap();
    let mut a = Task::new(keyed.acquire(1));
    let mut b = Task::new(keyed.acquire(1));
    a.pending();
    b.pending();
    drop(held);
    assert!(a.wakes() > 0);
    drop(a);
    assert!(b.wakes() > 0);
    drop(b.ready().unwrap());

    // Queued for the global permit, holding its key's: dropping gives the
    // key's permit to that key's next waiter.
    let other = keyed.try_acquire(2).unwrap();
    let mut a = Task::new(keyed.acquire(1));
    let mut b = Task::new(keyed.acquire(1));
    a.pending(); // has key 1's permit, waits for the global one
    b.pending(); // waits for key 1
    assert_eq!(global.waiters(), 1);
    drop(a);
    assert_eq!(global.waiters(), 0);
    assert!(b.wakes() > 0);
    b.pending(); // now holds key 1's permit and waits globally
    assert_eq!(global.waiters(), 1);

    // Served globally, not yet polled.
    drop(other);
    assert!(b.wakes() > 1);
    drop(b);
    assert_eq!(global.available_permits(), 1);
    assert_eq!(keyed.live_keys(), 0);

    // A run dropped while its future runs.
    let mut run = Task::new(keyed.run(3, std::future::pending::<()>()));
    run.pending();
    assert_eq!(global.available_permits(), 0);
    assert_eq!(keyed.live_keys(), 1);
    drop(run);
    assert_eq!(global.available_permits(), 1);
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
fn close_fails_waiters_and_later_acquires_and_keeps_held_permits() {
    let keyed = KeyedSemaphore::with_global_limit(1, 2);
    let a = keyed.try_acquire(1).unwrap();
    let b = keyed.try_acquire(2).unwrap();
    let mut for_key = Task::new(keyed.acquire(1));
    let mut for_global = Task::new(keyed.acquire(3));
    for_key.pending();
    for_global.pending();
    keyed.close();
    assert!(keyed.is_closed());
    assert_eq!(for_key.ready().unwrap_err(), AcquireError::Closed);
    assert_eq!(for_global.ready().unwrap_err(), AcquireError::Closed);
    assert_eq!(keyed.try_acquire(4).unwrap_err(), TryAcquireError::Closed);
    let mut later = Task::new(keyed.acquire(5));
    assert_eq!(later.ready().unwrap_err(), AcquireError::Closed);
    let mut later_run = Task::new(keyed.run(1, async { unreachable!() }));
    assert_eq!(later_run.ready().unwrap_err(), AcquireError::Closed);
    drop((for_key, for_global, later, later_run));
    assert_eq!(a.key(), &1);
    drop((a, b));
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
fn a_key_with_its_own_limit_stays_until_cleared() {
    let keyed = KeyedSemaphore::new(1);
    keyed.set_key_limit("big", 3);
    assert_eq!(keyed.live_keys(), 1);
    assert_eq!(keyed.key_limit(&"big"), 3);
    assert_eq!(keyed.key_limit(&"other"), 1);
    let held: Vec<_> = (0..3).map(|_| keyed.try_acquire("big").unwrap()).collect();
    assert!(keyed.try_acquire("big").is_err());
    drop(held);
    assert_eq!(keyed.live_keys(), 1, "an override keeps the key");
    keyed.clear_key_limit(&"big");
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.key_limit(&"big"), 1);
    // Clearing a limit that is not set does nothing.
    keyed.clear_key_limit(&"big");
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
fn growing_a_keys_limit_serves_its_waiters() {
    let keyed = KeyedSemaphore::with_global_limit(1, 10);
    let held = keyed.try_acquire(1).unwrap();
    let mut waiting: Vec<_> = (0..3).map(|_| Task::new(keyed.acquire(1))).collect();
    for t in &mut waiting {
        t.pending();
    }
    keyed.set_key_limit(1, 3);
    let first = waiting[0].ready().unwrap();
    let second = waiting[1].ready().unwrap();
    waiting[2].pending();
    drop(held);
    let third = waiting[2].ready().unwrap();
    drop((first, second, third));
    // Cleared while in use: back to the default when the key goes idle.
    keyed.clear_key_limit(&1);
    assert_eq!(keyed.live_keys(), 0);
}

/// Many tasks over a few keys, some cancelled by a timeout; limits are held
/// and everything comes back.
async fn stress_body(keyed: &KeyedSemaphore<u32>, tracker: &Tracker, seed: u32, rounds: u32) {
    {
        let mut x = seed | 1;
        for _ in 0..rounds {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let key = x % 6;
            let work = async {
                // Counted out on drop too: the timeout may cancel it here.
                let _in_flight = Entered::new(tracker, key);
                yield_now().await;
            };
            if x % 5 == 0 {
                // Cancelled in whatever state the timer finds it.
                let _ = tokio::time::timeout(
                    Duration::from_micros(u64::from(x % 40)),
                    keyed.run(key, work),
                )
                .await;
            } else {
                keyed.run(key, work).await.unwrap();
            }
        }
    }
}

#[test]
// Miri cannot run these pools in reasonable time (tokio's timer driver, a
// pool of OS threads); the hand-polled and OS-thread tests cover it there.
#[cfg_attr(miri, ignore)]
fn limits_hold_on_tokio_multi_thread_with_cancellation() {
    let keyed: &'static KeyedSemaphore<u32> =
        Box::leak(Box::new(KeyedSemaphore::with_global_limit(2, 5)));
    keyed.set_key_limit(0, 3);
    let tracker: &'static Tracker = Box::leak(Box::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| tokio::spawn(stress_body(keyed, tracker, i * 7919 + 1, 300)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let top = tracker.check(|k| if k == 0 { 3 } else { 2 }, 5);
    assert!(top >= 2, "the test never reached a key's limit");
    assert_eq!(
        tracker.total.max(),
        5,
        "the test never reached the global limit"
    );
    assert_eq!(
        keyed.live_keys(),
        1,
        "only the key with its own limit stays"
    );
    assert_eq!(keyed.global().unwrap().available_permits(), 5);
}

#[test]
// Miri cannot run these pools in reasonable time (tokio's timer driver, a
// pool of OS threads); the hand-polled and OS-thread tests cover it there.
#[cfg_attr(miri, ignore)]
fn limits_hold_on_futures_thread_pool() {
    let keyed = Arc::new(KeyedSemaphore::with_global_limit(2, 5));
    let tracker = Arc::new(Tracker::default());
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(4)
        .create()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..16u32 {
        let (keyed, tracker, done, tx) = (keyed.clone(), tracker.clone(), done.clone(), tx.clone());
        pool.spawn_ok(async move {
            let mut x = i * 7919 + 1;
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let key = x % 6;
                let permit = keyed.acquire(key).await.unwrap();
                tracker.enter(key);
                // This pool polls a task that wakes itself again at once, on
                // the same thread (so `yield_now` would not let others in):
                // hold the permit for a while in real time instead.
                std::thread::sleep(Duration::from_micros(20));
                tracker.exit(key);
                drop(permit);
            }
            done.fetch_add(1, SeqCst);
            tx.send(()).unwrap();
        });
    }
    for _ in 0..16 {
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let g = keyed.global().unwrap();
            panic!(
                "a task hung: done {}, live keys {}, global available {} waiters {}, in flight {}",
                done.load(SeqCst),
                keyed.live_keys(),
                g.available_permits(),
                g.waiters(),
                tracker.total.now()
            );
        }
    }
    assert_eq!(done.load(SeqCst), 16);
    tracker.check(|_| 2, 5);
    assert!(tracker.total.max() >= 2, "the tasks never overlapped");
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(keyed.global().unwrap().available_permits(), 5);
}

/// Keys come and go under concurrent acquire, release and cancel on OS
/// threads: with a limit of one per key, two holders of one key at once
/// would mean two semaphores for it (the eviction race of hand-rolled maps).
#[test]
fn eviction_never_makes_two_semaphores_for_a_key() {
    let keyed = Arc::new(KeyedSemaphore::new(1));
    let tracker = Arc::new(Tracker::default());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (keyed, tracker) = (keyed.clone(), tracker.clone());
            std::thread::spawn(move || {
                for i in 0..if cfg!(miri) { 50 } else { 20_000 } {
                    let key = (i + t) % 3;
                    match i % 3 {
                        0 => {
                            if let Ok(p) = keyed.try_acquire(key) {
                                tracker.enter(key);
                                tracker.exit(key);
                                drop(p);
                            }
                        }
                        1 => {
                            let p = futures::executor::block_on(keyed.acquire(key)).unwrap();
                            tracker.enter(key);
                            std::thread::yield_now();
                            tracker.exit(key);
                            drop(p);
                        }
                        _ => {
                            // Polled once (maybe queued), then cancelled.
                            let mut t = Task::new(keyed.acquire(key));
                            if let std::task::Poll::Ready(p) = t.poll() {
                                tracker.enter(key);
                                tracker.exit(key);
                                drop(p);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    tracker.check(|_| 1, usize::MAX);
    assert_eq!(keyed.live_keys(), 0);
}

#[test]
fn the_map_empties_after_100_000_distinct_keys() {
    let keyed = KeyedSemaphore::with_global_limit(2, 64);
    futures::executor::block_on(async {
        use futures::StreamExt;
        let n = if cfg!(miri) { 200 } else { 100_000 };
        futures::stream::iter(0..n)
            .for_each_concurrent(64, |k: u32| {
                let keyed = &keyed;
                async move {
                    keyed.run(k, yield_now()).await.unwrap();
                }
            })
            .await;
    });
    assert_eq!(keyed.live_keys(), 0);
}

/// A shrink below the permits held is exact (the core's `set_limit`): held
/// permits stay valid, and the key's waiters start only once the work in
/// flight is under the new limit.
#[test]
fn shrinking_a_keys_limit_with_holders_and_waiters_is_exact() {
    let keyed = KeyedSemaphore::with_global_limit(3, 10);
    let mut held: Vec<_> = (0..3).map(|_| keyed.try_acquire("k").unwrap()).collect();
    let mut waiting: Vec<_> = (0..2).map(|_| Task::new(keyed.acquire("k"))).collect();
    for t in &mut waiting {
        t.pending();
    }
    keyed.set_key_limit("k", 1);
    assert_eq!(keyed.key_limit(&"k"), 1);
    // Two of the three held are now beyond the limit: their return pays that.
    held.pop();
    waiting[0].pending();
    held.pop();
    waiting[0].pending();
    held.pop();
    // Now nothing is held: exactly one waiter runs.
    let first = waiting[0].ready().unwrap();
    waiting[1].pending();
    assert_eq!(keyed.global().unwrap().available_permits(), 9);
    drop(first);
    let second = waiting[1].ready().unwrap();
    assert!(keyed.try_acquire("k").is_err());
    drop(second);
    // Growing back while someone waits serves them at once.
    let one = keyed.try_acquire("k").unwrap();
    let mut more = Task::new(keyed.acquire("k"));
    more.pending();
    keyed.set_key_limit("k", 2);
    let two = more.ready().unwrap();
    drop((one, two));
    keyed.clear_key_limit(&"k");
    assert_eq!(keyed.live_keys(), 0);
}

/// Overrides changed from several threads while the key is in use: the
/// semaphore ends at the last limit recorded, whatever order the threads
/// applied theirs in.
#[test]
fn concurrent_limit_changes_end_at_the_last_recorded_limit() {
    let keyed = Arc::new(KeyedSemaphore::new(1));
    for round in 0..if cfg!(miri) { 5 } else { 200 } {
        let holder = keyed.try_acquire(round).unwrap();
        let threads: Vec<_> = (1..=4)
            .map(|n| {
                let keyed = keyed.clone();
                std::thread::spawn(move || keyed.set_key_limit(round, n))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let last = keyed.key_limit(&round);
        drop(holder);
        // Exactly `last` can be taken now.
        let taken: Vec<_> = (0..5)
            .map_while(|_| keyed.try_acquire(round).ok())
            .collect();
        assert_eq!(taken.len(), last, "round {round}");
        drop(taken);
        keyed.clear_key_limit(&round);
    }
    assert_eq!(keyed.live_keys(), 0);
}
