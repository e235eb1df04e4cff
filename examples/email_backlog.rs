//! The Twisted `DeferredSemaphore` scenario: a backlog of emails sent at most
//! `--limit` at a time.
//!
//! ```text
//! cargo run --release --example email_backlog -- --count 1000 --limit 16
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use permits::Semaphore;

struct Args {
    count: usize,
    limit: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 1000,
        limit: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--count" => args.count = value("--count")?,
            "--limit" => args.limit = value("--limit")?,
            "-h" | "--help" => {
                return Err("usage: email_backlog [--count N] [--limit N]".into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.limit == 0 {
        return Err("--limit must be at least 1".into());
    }
    Ok(args)
}

/// Counts sends in flight and the most seen at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static SENT: AtomicUsize = AtomicUsize::new(0);

/// Pretends to talk to a mail server for 1-4 ms.
async fn send(id: usize) -> usize {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    tokio::time::sleep(Duration::from_millis(1 + (id * 7 % 4) as u64)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    SENT.fetch_add(1, Relaxed);
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let sem = Semaphore::new(args.limit);
    let start = Instant::now();

    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!(
                "sent {}/{}, in flight {}",
                SENT.load(Relaxed),
                args.count,
                IN_FLIGHT.load(Relaxed)
            );
        }
    };
    let sends = futures::future::join_all((0..args.count).map(|id| sem.run(send(id))));
    let results = tokio::select! {
        results = sends => results,
        () = progress => unreachable!(),
    };

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let max = MAX_IN_FLIGHT.load(Relaxed);
    println!(
        "sent {ok} of {} emails, max in flight {max} (limit {}), in {:.2?}",
        args.count,
        args.limit,
        start.elapsed()
    );
    assert!(max <= args.limit, "the limit was exceeded");
}
