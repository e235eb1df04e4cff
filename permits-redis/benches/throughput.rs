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

use std::future::Future;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use permits_redis::GlobalSemaphore;

const LIMIT: u64 = 8;

struct Redis(std::process::Child, u16);
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Redis {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..500 {
        if redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
            .is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Redis(child, port)
}

async fn work(sleep: bool) {
    if sleep {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
    let srv = redis();
    let url = format!("redis://127.0.0.1:{}/", srv.1);
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

        println!(
            "{items} items, limit {LIMIT}, 8 in flight; median of {rounds} rounds; x = time / local semaphore's"
        );
        println!("| work | local `permits::Semaphore` | `GlobalSemaphore`, 1 process | x | round trips/item (acquire + release + refresh) | 4 instances on 8 permits, 4 local each | x | round trips/item |");
        println!("|---|---|---|---|---|---|---|---|");
        for sleep in [false, true] {
            let (mut l, mut g, mut f) = (Vec::new(), Vec::new(), Vec::new());
            let (s0, f0) = (one.stats(), fleet.iter().map(|s| s.stats()).collect::<Vec<_>>());
            for round in 0..rounds {
                for which in 0..3 {
                    match (round + which) % 3 {
                        0 => l.push(drive(items, || async { local.run(work(sleep)).await.is_ok() }).await),
                        1 => g.push(drive(items, || async { one.run(work(sleep)).await.is_ok() }).await),
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
            let s1 = one.stats();
            let rt_one = |a: u64, r: u64, f: u64| format!("{:.2} ({:.2} + {:.2} + {:.3})", (a + r + f) as f64 / n, a as f64 / n, r as f64 / n, f as f64 / n);
            let one_rt = rt_one(
                s1.acquire_calls - s0.acquire_calls,
                s1.release_calls - s0.release_calls,
                s1.refresh_calls - s0.refresh_calls,
            );
            let (mut a, mut r, mut fr) = (0, 0, 0);
            for (sem, before) in fleet.iter().zip(&f0) {
                let s = sem.stats();
                a += s.acquire_calls - before.acquire_calls;
                r += s.release_calls - before.release_calls;
                fr += s.refresh_calls - before.refresh_calls;
            }
            let fleet_rt = rt_one(a, r, fr);
            let (l, g, f) = (median(l), median(g), median(f));
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
    });
}
