//! The "replies" workload: requests answered one at a time by a server task,
//! in an order unrelated to arrival, each answer waking exactly one item in
//! flight. At limits 16, 256 and 4096, on tokio's current-thread runtime and
//! on `futures::executor::LocalPool`: `run_all` (and `run_all_fixed` at the
//! small limits, where its sweep is affordable) against `buffer_unordered`,
//! and `adaptive::Limiter::run_all` with its limit pinned at the same value
//! against `run_all` (what the adaptive gate costs per item: a sample taken,
//! the algorithm's lock, AIMD's bookkeeping).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::executor::LocalPool;
use futures::stream::{self, Stream, StreamExt};
use futures::task::LocalSpawnExt;
use permits::adaptive::{Aimd, Limiter, Outcome};
use permits::Semaphore;

use crate::counting;
use crate::server::Server;

pub const LIMITS: [usize; 3] = [16, 256, 4096];

/// `adaptive::Limiter::run_all` with AIMD pinned at the limit (floor =
/// ceiling), each reply a success timed by the caller's clock.
const LIMITER: &str = "adaptive Limiter::run_all";

#[derive(Clone, Copy)]
pub enum Exec {
    Tokio,
    LocalPool,
}

impl Exec {
    pub fn name(self) -> &'static str {
        match self {
            Exec::Tokio => "tokio current-thread",
            Exec::LocalPool => "futures LocalPool",
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy)]
pub struct Run {
    pub time: Duration,
    /// Allocations per item after the warm-up (the stream's concurrency has
    /// peaked by then).
    pub allocs_per_item: f64,
    /// Peak heap above what was allocated when the consumer started.
    pub peak_heap: usize,
}

/// Allocation counts at the end of the warm-up and at the end.
#[derive(Default)]
struct Marks {
    warm: Cell<usize>,
    end: Cell<usize>,
    base: Cell<usize>,
    peak: Cell<usize>,
}

/// Sums the outputs, noting the allocation count after `warm` of them.
async fn consume(outputs: impl Stream<Item = u64>, warm: u64, marks: &Marks) -> u64 {
    let mut outputs = pin!(outputs);
    let mut sum = 0;
    let mut n = 0;
    while let Some(v) = outputs.next().await {
        sum += v;
        n += 1;
        if n == warm {
            marks.warm.set(counting::allocs());
        }
    }
    marks.end.set(counting::allocs());
    marks
        .peak
        .set(counting::peak().saturating_sub(marks.base.get()));
    sum
}

/// Runs a consumer made by `make` next to the server's task on `exec`.
fn drive<Fut: Future<Output = u64>>(
    exec: Exec,
    limit: usize,
    items: u64,
    make: impl FnOnce(Server, Rc<Marks>) -> Fut,
) -> (u64, Rc<Marks>) {
    let server = Server::new(limit);
    let marks = Rc::new(Marks::default());
    let sum = match exec {
        Exec::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let answers = tokio::task::spawn_local(server.clone().answer(items));
                marks.base.set(counting::current());
                counting::reset_peak();
                let sum = make(server.clone(), marks.clone()).await;
                answers.await.unwrap();
                sum
            })
        }
        Exec::LocalPool => {
            let mut pool = LocalPool::new();
            pool.spawner()
                .spawn_local(server.clone().answer(items))
                .unwrap();
            marks.base.set(counting::current());
            counting::reset_peak();
            let sum = pool.run_until(make(server.clone(), marks.clone()));
            pool.run();
            sum
        }
    };
    (sum, marks)
}

/// The contenders at `limit`, by name.
fn contenders(limit: usize) -> Vec<&'static str> {
    let mut v = vec!["permits run_all"];
    match limit {
        16 => v.push("permits run_all_fixed::<16>"),
        256 => v.push("permits run_all_fixed::<256>"),
        _ => {}
    }
    v.push(LIMITER);
    v.push("buffer_unordered");
    v
}

/// One run of contender `name`.
fn run_one(name: &str, exec: Exec, limit: usize, items: u64) -> Run {
    let warm = (items / 10).max(2 * limit as u64);
    let expect = items * (items - 1) / 2;
    let start = Instant::now();
    let (sum, marks) = match name {
        "permits run_all" => drive(exec, limit, items, |server, marks| {
            let sem = Semaphore::new(limit);
            async move {
                let s = sem.run_all(0..items, |i| server.request(i));
                consume(s.map(Result::unwrap), warm, &marks).await
            }
        }),
        "permits run_all_fixed::<16>" => drive(exec, limit, items, |server, marks| {
            let sem = Semaphore::new(limit);
            async move {
                let s = sem.run_all_fixed::<16, _, _, _>(0..items, |i| server.request(i));
                consume(s.map(Result::unwrap), warm, &marks).await
            }
        }),
        "permits run_all_fixed::<256>" => drive(exec, limit, items, |server, marks| {
            let sem = Semaphore::new(limit);
            async move {
                let s = sem.run_all_fixed::<256, _, _, _>(0..items, |i| server.request(i));
                consume(s.map(Result::unwrap), warm, &marks).await
            }
        }),
        LIMITER => drive(exec, limit, items, |server, marks| {
            let limiter = Limiter::new(Aimd::new().max_limit(limit).min_limit(limit));
            async move {
                let took = Duration::from_millis(1);
                let s = limiter.run_all(
                    0..items,
                    |i| server.request(i),
                    |_: &u64| (Outcome::Success, took),
                );
                let sum = consume(s.map(Result::unwrap), warm, &marks).await;
                assert_eq!(limiter.limit(), limit, "the pinned limit moved");
                sum
            }
        }),
        "buffer_unordered" => drive(exec, limit, items, |server, marks| async move {
            let s = stream::iter(0..items)
                .map(|i| server.request(i))
                .buffer_unordered(limit);
            consume(s, warm, &marks).await
        }),
        other => unreachable!("no contender {other}"),
    };
    let time = start.elapsed();
    assert_eq!(sum, expect, "{name}: wrong result");
    Run {
        time,
        allocs_per_item: (marks.end.get() - marks.warm.get()) as f64 / (items - warm) as f64,
        peak_heap: marks.peak.get(),
    }
}

/// Runs the workload and prints its tables; returns `false` if `run_all`
/// allocated per item in the steady state (deterministic, unlike time).
pub fn bench(items: u64, rounds: usize) -> bool {
    let mut ok = true;
    println!();
    println!(
        "replies: {items} requests answered one at a time in an unrelated order \
         (each answer wakes one item), best of {rounds}"
    );
    for exec in [Exec::Tokio, Exec::LocalPool] {
        for limit in LIMITS {
            // For profiling: only the rows whose "executor limit name" contains
            // this, or ends with it if it ends in `$` (the last row is then
            // the reference of `time x`).
            let filter = std::env::var("PERMITS_BENCH_FILTER").unwrap_or_default();
            let matches = |key: String| match filter.strip_suffix('$') {
                Some(end) => key.ends_with(end),
                None => key.contains(&filter),
            };
            let mut names = contenders(limit);
            let key = |name: &str| format!("{} {limit} {name}", exec.name());
            names.retain(|name| matches(key(name)));
            if names.is_empty() {
                continue;
            }
            println!();
            println!("{}, limit {limit}:", exec.name());
            println!(
                "{:<30} {:>10} {:>12} {:>14} {:>8}",
                "", "ns/item", "allocs/item", "peak heap B", "time x"
            );
            let mut best: Vec<Option<Run>> = vec![None; names.len()];
            // Round by round, every contender once, so noise hits all alike.
            for _ in 0..rounds {
                for (name, best) in names.iter().zip(&mut best) {
                    let run = run_one(name, exec, limit, items);
                    if best.is_none_or(|b| run.time < b.time) {
                        *best = Some(run);
                    }
                }
            }
            let best: Vec<Run> = best.into_iter().map(Option::unwrap).collect();
            let bu = best[names.len() - 1].time;
            for (name, run) in names.iter().zip(&best) {
                println!(
                    "{:<30} {:>10.1} {:>12.3} {:>14} {:>8.2}",
                    name,
                    run.time.as_nanos() as f64 / items as f64,
                    run.allocs_per_item,
                    run.peak_heap,
                    run.time.as_secs_f64() / bu.as_secs_f64(),
                );
            }
            let ratio = best[0].time.as_secs_f64() / bu.as_secs_f64();
            let allocs_ok = best[0].allocs_per_item == 0.0;
            println!(
                "run_all vs buffer_unordered: time {ratio:.2}x (target <= 1.0x: {}), \
                 allocs/item {} (target 0: {})",
                if ratio <= 1.0 { "met" } else { "MISSED" },
                best[0].allocs_per_item,
                if allocs_ok { "met" } else { "MISSED" },
            );
            ok &= allocs_ok;
            if let Some(at) = names.iter().position(|n| *n == LIMITER) {
                if names[0] == "permits run_all" {
                    let ratio = best[at].time.as_secs_f64() / best[0].time.as_secs_f64();
                    println!(
                        "adaptive Limiter::run_all vs run_all (same limit): time {ratio:.2}x, \
                         allocs/item {}",
                        best[at].allocs_per_item
                    );
                }
            }
        }
    }
    ok
}
