//! Keyed acquire + release, side by side in one run:
//!
//! - `KeyedSemaphore` (this crate), with and without a global limit, and
//!   with its keys kept in the map (each given a limit of its own), so no
//!   entry is created and evicted per acquire, as in the hand-rolled map;
//! - a plain `permits::Semaphore` (no keys at all: the floor);
//! - the hand-rolled `Mutex<HashMap<K, Arc<tokio::sync::Semaphore>>>` users
//!   write today (`semaphore-key`, oxana's `SemaphoresMap`): look up or
//!   insert under a mutex, clone the `Arc`, acquire; never evicts. With a
//!   global limit it stacks a `tokio::sync::Semaphore` on top, key first.
//!
//! Two shapes:
//!
//! 1. `uncontended`: one thread, acquire + release in a loop over 100 keys
//!    (every acquire ready at once; the cost of the map and the counters).
//! 2. `contended`: 64 tasks on tokio's multi-thread runtime (2 workers), 1,000
//!    keys, 2 per key, 16 in total; each task holds its permits across a
//!    yield, so acquires really queue and are woken one at a time.
//!
//! 3. `backlog`: a backlog of items over keys, each item yielding once
//!    (woken by its own waker, as an I/O reply wakes it), on tokio's
//!    current-thread runtime: `KeyedSemaphore::run_all` (2 per key, 16 in
//!    total) against `Semaphore::run_all` (16, no keys: the floor) and
//!    against what users write without the keyed stream,
//!    `for_each_concurrent(16, |item| keyed.run(key, ...))`. With 1,000 keys
//!    hardly any key is saturated; with 10 keys the lookahead is busy.
//!
//! Prints ns per acquire + release (per item for the backlog), best of N
//! rounds, and each as a ratio to the plain semaphore. `PERMITS_BENCH_QUICK=1` runs a short pass once (the
//! CI smoke run; it also checks that nothing is left in the map).
//!
//! ```text
//! cargo bench --bench keyed
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use permits::{KeyedSemaphore, Semaphore};

/// The hand-rolled keyed semaphore of the issue.
struct HandRolled {
    per_key: usize,
    map: Mutex<HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    global: Option<Arc<tokio::sync::Semaphore>>,
}

impl HandRolled {
    fn new(per_key: usize, global: Option<usize>) -> Self {
        Self {
            per_key,
            map: Mutex::new(HashMap::new()),
            global: global.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
        }
    }

    async fn acquire(
        &self,
        key: u64,
    ) -> (
        tokio::sync::OwnedSemaphorePermit,
        Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let sem = {
            let mut map = self.map.lock().unwrap();
            map.entry(key)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_key)))
                .clone()
        };
        let key_permit = sem.acquire_owned().await.unwrap();
        let global = match &self.global {
            Some(g) => Some(g.clone().acquire_owned().await.unwrap()),
            None => None,
        };
        (key_permit, global)
    }
}

/// The contenders, as one enum so every shape runs each the same way.
#[derive(Clone, Copy, Debug)]
enum Who {
    Plain,
    Keyed,
    KeyedLive,
    KeyedGlobal,
    HandRolled,
    HandRolledGlobal,
}

const ALL: [Who; 6] = [
    Who::Plain,
    Who::Keyed,
    Who::KeyedLive,
    Who::KeyedGlobal,
    Who::HandRolled,
    Who::HandRolledGlobal,
];

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Plain => "permits::Semaphore (no keys)",
            Who::Keyed => "permits::KeyedSemaphore",
            Who::KeyedLive => "  same, keys kept live (own limits)",
            Who::KeyedGlobal => "permits::KeyedSemaphore + global",
            Who::HandRolled => "Mutex<HashMap<K, Arc<tokio Semaphore>>>",
            Who::HandRolledGlobal => "  same + global tokio Semaphore",
        }
    }
}

/// What one round runs against: built fresh per round.
struct Subject {
    plain: Semaphore,
    keyed: KeyedSemaphore<u64>,
    hand: HandRolled,
}

impl Subject {
    fn new(who: Who, per_key: usize, global: usize) -> Self {
        let with_global = matches!(who, Who::KeyedGlobal | Who::HandRolledGlobal);
        Self {
            plain: Semaphore::new(match who {
                Who::Plain => global,
                _ => 0,
            }),
            keyed: if with_global {
                KeyedSemaphore::with_global_limit(per_key, global)
            } else {
                KeyedSemaphore::new(per_key)
            },
            hand: HandRolled::new(per_key, with_global.then_some(global)),
        }
    }

    /// One acquire + (after `hold`) release.
    async fn once(&self, who: Who, key: u64, hold: impl std::future::Future<Output = ()>) {
        match who {
            Who::Plain => {
                let p = self.plain.acquire().await.unwrap();
                hold.await;
                drop(black_box(p));
            }
            Who::Keyed | Who::KeyedLive | Who::KeyedGlobal => {
                let p = self.keyed.acquire(key).await.unwrap();
                hold.await;
                drop(black_box(p));
            }
            Who::HandRolled | Who::HandRolledGlobal => {
                let p = self.hand.acquire(key).await;
                hold.await;
                drop(black_box(p));
            }
        }
    }

    fn check_idle(&self, who: Who, global: usize) {
        match who {
            Who::Plain => assert_eq!(self.plain.available_permits(), global),
            Who::KeyedLive => assert!(self.keyed.live_keys() >= 100),
            Who::Keyed | Who::KeyedGlobal => {
                assert_eq!(self.keyed.live_keys(), 0, "keys left in the map");
                if let Some(g) = self.keyed.global() {
                    assert_eq!(g.available_permits(), global);
                }
            }
            Who::HandRolled | Who::HandRolledGlobal => {}
        }
    }
}

fn uncontended(who: Who, ops: u64) -> Duration {
    let s = Subject::new(who, 4, 64);
    if let Who::KeyedLive = who {
        // A limit of its own keeps a key in the map while idle: no entry is
        // created or evicted per acquire, as in the hand-rolled map.
        for key in 0..100 {
            s.keyed.set_key_limit(key, 4);
        }
    }
    let start = Instant::now();
    futures::executor::block_on(async {
        for i in 0..ops {
            s.once(who, i % 100, async {}).await;
        }
    });
    let t = start.elapsed();
    s.check_idle(who, 64);
    t
}

fn contended(who: Who, ops_per_task: u64, rt: &tokio::runtime::Runtime) -> Duration {
    const TASKS: u64 = 64;
    let s = Arc::new(Subject::new(who, 2, 16));
    if let Who::KeyedLive = who {
        for key in 0..1_000 {
            s.keyed.set_key_limit(key, 2);
        }
    }
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut x = t * 2_654_435_761 + 1;
                    for _ in 0..ops_per_task {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        s.once(who, x % 1_000, tokio::task::yield_now()).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let t = start.elapsed();
    s.check_idle(who, 16);
    t
}

fn report(title: &str, ops: u64, rounds: usize, mut run: impl FnMut(Who) -> Duration) {
    println!();
    println!("{title} ({ops} acquire+release per round, best of {rounds}):");
    let mut results = Vec::new();
    for who in ALL {
        let best = (0..rounds).map(|_| run(who)).min().unwrap();
        results.push((who, best.as_nanos() as f64 / ops as f64));
    }
    let floor = results[0].1;
    for (who, ns) in results {
        println!(
            "  {:<42} {:>8.1} ns/op  {:>5.2}x",
            who.name(),
            ns,
            ns / floor
        );
    }
}

/// The contenders of the backlog shape.
#[derive(Clone, Copy, Debug)]
enum Backlog {
    Plain,
    Keyed,
    ForEachConcurrent,
}

impl Backlog {
    fn name(self) -> &'static str {
        match self {
            Backlog::Plain => "Semaphore::run_all (16, no keys)",
            Backlog::Keyed => "KeyedSemaphore::run_all (2 per key, 16)",
            Backlog::ForEachConcurrent => "for_each_concurrent(16) of KeyedSemaphore::run",
        }
    }
}

fn backlog(who: Backlog, items: u64, keys: u64) -> Duration {
    let plain = Semaphore::new(16);
    let keyed = KeyedSemaphore::with_global_limit(2, 16);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let key_of = |i: &u64| (i.wrapping_mul(2_654_435_761) >> 7) % keys;
    let work = |i: u64| async move {
        tokio::task::yield_now().await;
        black_box(i)
    };
    let start = Instant::now();
    let done = rt.block_on(async {
        match who {
            Backlog::Plain => plain.run_all(0..items, work).count().await,
            Backlog::Keyed => keyed.run_all(0..items, key_of, work).count().await,
            Backlog::ForEachConcurrent => {
                let done = std::cell::Cell::new(0);
                futures::stream::iter(0..items)
                    .for_each_concurrent(16, |i| {
                        let (keyed, done) = (&keyed, &done);
                        async move {
                            keyed.run(key_of(&i), work(i)).await.unwrap();
                            done.set(done.get() + 1);
                        }
                    })
                    .await;
                done.get()
            }
        }
    });
    let t = start.elapsed();
    assert_eq!(done as u64, items);
    assert_eq!(keyed.live_keys(), 0, "keys left in the map");
    assert_eq!(plain.available_permits(), 16);
    t
}

fn report_backlog(keys: u64, items: u64, rounds: usize) {
    println!();
    println!(
        "backlog, tokio current-thread, {items} items over {keys} keys, each yielding once (ns per item, best of {rounds}):"
    );
    let all = [Backlog::Plain, Backlog::Keyed, Backlog::ForEachConcurrent];
    let results: Vec<_> = all
        .iter()
        .map(|&who| {
            let best = (0..rounds)
                .map(|_| backlog(who, items, keys))
                .min()
                .unwrap();
            (who, best.as_nanos() as f64 / items as f64)
        })
        .collect();
    let floor = results[0].1;
    for (who, ns) in results {
        println!(
            "  {:<48} {:>8.1} ns/item  {:>5.2}x",
            who.name(),
            ns,
            ns / floor
        );
    }
}

fn main() {
    let quick = std::env::var_os("PERMITS_BENCH_QUICK").is_some_and(|v| v != "0");
    let (ops, per_task, rounds) = if quick {
        (20_000, 200, 1)
    } else {
        (1_000_000, 5_000, 7)
    };
    println!("keyed bench{}", if quick { " (quick)" } else { "" });
    report("uncontended, 1 thread, 100 keys", ops, rounds, |who| {
        uncontended(who, ops)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    report(
        "contended, 64 tasks on 2 tokio workers, 1,000 keys, 2 per key, 16 in total",
        per_task * 64,
        rounds,
        |who| contended(who, per_task, &rt),
    );
    let items = if quick { 20_000 } else { 200_000 };
    report_backlog(1_000, items, rounds);
    report_backlog(10, items, rounds);
}
