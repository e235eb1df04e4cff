//! Throughput of `GlobalSemaphore::run` against the local
//! `permits::Semaphore::run`, and round trips to Redis per item, on a
//! private redis-server (loopback). `cargo bench -p permits-redis`;
//! `PERMITS_BENCH_QUICK=1` for a smoke pass.
//!
//! Each workload pushes ITEMS items through `run` with at most 8 in flight
//! (a `buffer_unordered(8)` window), on tokio's multi-thread runtime with 2
//! workers. Work shapes: `ready` (the future completes at once: the cost of
//! the semaphore alone) and `sleep 1ms` (the future is woken by a timer, as
//! by a reply). Rounds rotate the order; cells are the median over rounds.
//!
//! A second table sets the backlog stream (`GlobalSemaphore::run_all`, its
//! `limit(8)`) beside the hand-written `buffer_unordered(8)` over `run` (an
//! acquire, then the work, per item), in one process and in four.

use std::future::Future;
use std::time::{Duration, Instant};

// The same private redis-server the tests start (std only).
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use futures::StreamExt;
use permits_redis::GlobalSemaphore;

const LIMIT: u64 = 8;

async fn work(sleep: bool) {
    if sleep {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `items` through `run_all`, 8 in flight; returns ns per item.
async fn drive_stream(sem: &GlobalSemaphore, items: usize, sleep: bool) -> f64 {
    let start = Instant::now();
    let oks = sem
        .run_all(0..items, |_| work(sleep))
        .limit(LIMIT as usize)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await;
    assert_eq!(oks, items, "an item failed");
    start.elapsed().as_nanos() as f64 / items as f64
}

/// Runs `items` through `run` of `make()`, 8 in flight; returns ns per item.
async fn drive<F, Fut>(items: usize, run: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let oks = futures::stream::iter(0..items)
        .map(|_| run())
        .buffer_unordered(LIMIT as usize)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    assert_eq!(oks, items, "an item failed");
    start.elapsed().as_nanos() as f64 / items as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var("PERMITS_BENCH_QUICK").is_ok();
    let (items, rounds) = if quick { (300, 1) } else { (3000, 5) };
    let srv = redis_server::Server::start_on_free_port();
    let url = srv.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = redis::Client::open(url.as_str()).unwrap();
        let build = |name: &'static str, local: usize| {
            let client = client.clone();
            async move {
                let (sem, driver) = GlobalSemaphore::builder(name, LIMIT)
                    .local_limit(local)
                    .hints(client.clone())
                    .build(client.get_connection_manager().await.unwrap())
                    .await
                    .unwrap();
                tokio::spawn(driver);
                sem
            }
        };
        let local = permits::Semaphore::new(LIMIT as usize);
        let one = build("bench-one", LIMIT as usize).await;
        // Four instances on one name stand for four processes, 4 local
        // permits each (16 > 8 global), 8 in flight per instance, so
        // acquires contend in Redis' queue.
        let mut fleet = Vec::new();
        for _ in 0..4 {
            fleet.push(build("bench-fleet", 4).await);
        }
        // The same again for the stream, so each keeps its own call counts.
        let one_s = build("bench-one-stream", LIMIT as usize).await;
        let mut fleet_s = Vec::new();
        for _ in 0..4 {
            fleet_s.push(build("bench-fleet-stream", 4).await);
        }

        println!(
            "{items} items, limit {LIMIT}, 8 in flight; median of {rounds} rounds; x = time / local semaphore's"
        );
        println!("| work | local `permits::Semaphore` | `GlobalSemaphore`, 1 process | x | round trips/item (acquire + release + refresh) | 4 instances on 8 permits, 4 local each | x | round trips/item |");
        println!("|---|---|---|---|---|---|---|---|");
        let mut stream_rows = Vec::new();
        for sleep in [false, true] {
            let (mut l, mut g, mut f) = (Vec::new(), Vec::new(), Vec::new());
            let (mut gs, mut fs) = (Vec::new(), Vec::new());
            let (s0, f0) = (one.stats(), fleet.iter().map(|s| s.stats()).collect::<Vec<_>>());
            let (ss0, fs0) = (one_s.stats(), fleet_s.iter().map(|s| s.stats()).collect::<Vec<_>>());
            for round in 0..rounds {
                for which in 0..5 {
                    match (round + which) % 5 {
                        0 => l.push(drive(items, || async { local.run(work(sleep)).await.is_ok() }).await),
                        1 => g.push(drive(items, || async { one.run(work(sleep)).await.is_ok() }).await),
                        3 => gs.push(drive_stream(&one_s, items, sleep).await),
                        4 => {
                            let per = items / 4;
                            let start = Instant::now();
                            futures::future::join_all(fleet_s.iter().map(|sem| drive_stream(sem, per, sleep))).await;
                            fs.push(start.elapsed().as_nanos() as f64 / (per * 4) as f64);
                        }
                        _ => {
                            // Items spread over the four instances.
                            let per = items / 4;
                            let start = Instant::now();
                            let all = futures::future::join_all(fleet.iter().map(|sem| {
                                drive(per, move || async move { sem.run(work(sleep)).await.is_ok() })
                            }))
                            .await;
                            drop(all);
                            f.push(start.elapsed().as_nanos() as f64 / (per * 4) as f64);
                        }
                    }
                }
            }
            // Let the last releases land before counting.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = (items * rounds) as f64;
            let rt_of = |sems: &[&GlobalSemaphore], before: &[permits_redis::Stats]| {
                let (mut a, mut r, mut f) = (0, 0, 0);
                for (sem, b) in sems.iter().zip(before) {
                    let s = sem.stats();
                    a += s.acquire_calls - b.acquire_calls;
                    r += s.release_calls - b.release_calls;
                    f += s.refresh_calls - b.refresh_calls;
                }
                format!("{:.2} ({:.2} + {:.2} + {:.3})", (a + r + f) as f64 / n, a as f64 / n, r as f64 / n, f as f64 / n)
            };
            let one_rt = rt_of(&[&one], &[s0]);
            let fleet_rt = rt_of(&fleet.iter().collect::<Vec<_>>(), &f0);
            let one_s_rt = rt_of(&[&one_s], &[ss0]);
            let fleet_s_rt = rt_of(&fleet_s.iter().collect::<Vec<_>>(), &fs0);
            let (l, g, f) = (median(l), median(g), median(f));
            let (gs, fs) = (median(gs), median(fs));
            stream_rows.push(format!(
                "| {} | {:.1} us | {:.1} us | {:.2} | {one_s_rt} | {:.1} us | {:.1} us | {:.2} | {fleet_s_rt} |",
                if sleep { "sleep 1ms" } else { "ready" },
                g / 1000.0,
                gs / 1000.0,
                gs / g,
                f / 1000.0,
                fs / 1000.0,
                fs / f,
            ));
            println!(
                "| {} | {:.2} us | {:.1} us | {:.2} | {one_rt} | {:.1} us | {:.2} | {fleet_rt} |",
                if sleep { "sleep 1ms" } else { "ready" },
                l / 1000.0,
                g / 1000.0,
                g / l,
                f / 1000.0,
                f / l,
            );
        }
        println!();
        println!("backlog stream vs buffer_unordered(8) over `run`; x = stream time / buffer_unordered time (below 1: the stream is faster)");
        println!("| work | 1 process: `buffer_unordered` | `run_all` | x | `run_all` round trips/item | 4 instances: `buffer_unordered` | `run_all` | x | `run_all` round trips/item |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for row in stream_rows {
            println!("{row}");
        }
    });
}
