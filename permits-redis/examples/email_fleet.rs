//! The email backlog sent by a fleet: 4 worker processes share 8 global
//! permits (the mail provider's cap on concurrent sessions), each with a
//! local limit of 4. The sink, a TCP server standing in for the provider,
//! counts the sessions open at once; the example fails if it ever saw more
//! than 8.
//!
//! ```text
//! cargo run --release -p permits-redis --example email_fleet                 # starts its own redis-server
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release -p permits-redis --example email_fleet -- --count 2000
//! ```
//!
//! The parent starts the sink (and a private redis-server unless `REDIS_URL`
//! is set), then re-runs itself 4 times with `--worker`; each worker sends
//! its share of the backlog through `GlobalSemaphore::run_all` and reports the
//! script calls (round trips to Redis) it made.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The same private redis-server the tests start (std only).
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use futures::StreamExt;
use permits_redis::GlobalSemaphore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const WORKERS: usize = 4;
const GLOBAL: u64 = 8;
const LOCAL: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args.get(i + 1).cloned().unwrap_or_default())
    };
    let count: u64 = flag("--count").map_or(1000, |c| c.parse().expect("--count N"));
    if let Some(sink) = flag("--worker") {
        let url = flag("--redis").unwrap();
        let first: u64 = flag("--first").unwrap().parse().unwrap();
        return worker(&url, &sink, first..first + count);
    }

    let mut own_redis = None;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| {
        let server = redis_server::Server::start_on_free_port();
        let url = server.url();
        own_redis = Some(server);
        url
    });
    // A fresh name per run, so an old run's limit does not get in the way.
    let (peak, sessions, sink) = start_sink();
    let per_worker = count / WORKERS as u64;
    let start = Instant::now();
    let children: Vec<_> = (0..WORKERS as u64)
        .map(|w| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--worker", &sink, "--redis", &url])
                .args(["--first", &(w * per_worker).to_string()])
                .args(["--count", &per_worker.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut calls = [0u64; 3];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed");
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        for line in text.lines().filter(|l| l.starts_with("worker")) {
            for (i, key) in ["acquire=", "release=", "refresh="].iter().enumerate() {
                let v = line.split(key).nth(1).unwrap().split(' ').next().unwrap();
                calls[i] += v.parse::<u64>().unwrap();
            }
        }
    }
    let took = start.elapsed();
    let sessions = sessions.load(Ordering::SeqCst);
    let peak = peak.load(Ordering::SeqCst);
    let items = (per_worker * WORKERS as u64) as f64;
    println!(
        "sent {sessions} emails from {WORKERS} processes in {took:.2?}; peak concurrent sessions at the sink: {peak} (global limit {GLOBAL})"
    );
    println!(
        "round trips per email: acquire {:.2}, release {:.2}, refresh {:.3} (all {:.2})",
        calls[0] as f64 / items,
        calls[1] as f64 / items,
        calls[2] as f64 / items,
        calls.iter().sum::<u64>() as f64 / items
    );
    drop(own_redis);
    assert_eq!(
        sessions as u64,
        per_worker * WORKERS as u64,
        "every email sent"
    );
    assert!(peak as u64 <= GLOBAL, "the global limit was exceeded");
}

/// One worker: its share of the backlog, at most LOCAL at once locally and
/// GLOBAL across the fleet.
fn worker(url: &str, sink: &str, ids: std::ops::Range<u64>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = redis::Client::open(url).unwrap();
        let (sem, driver) = GlobalSemaphore::builder(format!("smtp-{sink}"), GLOBAL)
            .local_limit(LOCAL)
            .ttl(Duration::from_secs(5))
            .hints(client.clone())
            .build(client.get_connection_manager().await.unwrap())
            .await
            .unwrap();
        tokio::spawn(driver);
        let n = ids.end - ids.start;
        // The backlog stream: a lease per email (the local limit first, then
        // the global one), the email pulled and sent only once its lease is
        // held, so at most LOCAL sends exist in this process at a time.
        let results: Vec<_> = sem.run_all(ids, |id| send(sink, id)).collect().await;
        let failed = results.iter().filter(|r| !matches!(r, Ok(Ok(())))).count();
        let s = sem.stats();
        println!(
            "worker {}: sent {} failed {failed} acquire={} release={} refresh={} ",
            std::process::id(),
            n as usize - failed,
            s.acquire_calls,
            s.release_calls,
            s.refresh_calls
        );
    });
}

/// One "SMTP session": connect, hold it 1 to 5 ms, say QUIT, wait for the
/// server's goodbye.
async fn send(sink: &str, id: u64) -> std::io::Result<()> {
    let mut s = tokio::net::TcpStream::connect(sink).await?;
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    s.write_all(format!("MAIL {id}\r\n").as_bytes()).await?;
    tokio::time::sleep(Duration::from_millis(1 + h % 5)).await;
    s.write_all(b"QUIT\r\n").await?;
    let mut line = String::new();
    tokio::io::BufReader::new(s).read_line(&mut line).await?;
    Ok(())
}

/// The sink counts a session closed before it says goodbye, so a worker
/// never lets go of a lease while the sink still counts its session.
fn start_sink() -> (Arc<AtomicUsize>, Arc<AtomicUsize>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let sessions = Arc::new(AtomicUsize::new(0));
    let (p, s) = (peak.clone(), sessions.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            let (open, s) = (open.clone(), s.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 && !line.ends_with("QUIT\r\n") {}
                open.fetch_sub(1, Ordering::SeqCst);
                s.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(b"221 bye\r\n");
            });
        }
    });
    (peak, sessions, addr)
}
