//! The Twisted `DeferredSemaphore` scenario, done as a stream: a backlog of
//! emails sent at most `--limit` at a time, pulled from the backlog only when
//! a permit is free, so memory stays flat however long the backlog is.
//!
//! ```text
//! cargo run --release --example email_backlog                    # 1000 emails, 16 at a time
//! cargo run --release --example email_backlog -- --count 0       # endless, until Ctrl-C
//! cargo run --release --example email_backlog -- --count 5000 --limit 64
//! ```
//!
//! It prints a progress line (done / in flight / waiting, from
//! `RunAll::progress`) a few times a second, and a final line with how many
//! were sent, the most in flight at once and the time taken.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use permits::Semaphore;

struct Args {
    count: u64,
    limit: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 1000,
        limit: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--count" => args.count = value("--count")?,
            "--limit" => args.limit = value("--limit")? as usize,
            "-h" | "--help" => {
                return Err("usage: email_backlog [--count N (0 = endless)] [--limit N]".into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.limit == 0 {
        return Err("--limit must be at least 1".into());
    }
    Ok(args)
}

/// Sends in flight right now, and the most seen at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Pretends to talk to a mail server for 1 to 5 ms; about one in a hundred
/// sends fails.
async fn send(id: u64) -> Result<u64, String> {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    // A cheap hash of the id: "random-ish", but the same on every run.
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    tokio::time::sleep(Duration::from_millis(1 + h % 5)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    if h % 100 == 0 {
        Err(format!("email {id}: mailbox unavailable"))
    } else {
        Ok(id)
    }
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
    // The backlog: ids only. A real service would read them from a queue or
    // a database cursor; either way nothing is loaded before it is sent.
    let backlog: Box<dyn Iterator<Item = u64> + Send> = if args.count == 0 {
        Box::new(0..)
    } else {
        Box::new(0..args.count)
    };

    let start = Instant::now();
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let (sent, failed, progress) = {
        let mut sends = pin!(sem.run_all(backlog, send));
        let mut last_report = Instant::now();
        let (mut sent, mut failed) = (0u64, 0u64);
        loop {
            let result = tokio::select! {
                result = sends.next() => result,
                _ = &mut ctrl_c => {
                    eprintln!("\ninterrupted: dropping the sends in flight");
                    break;
                }
            };
            match result {
                Some(Ok(Ok(_id))) => sent += 1,
                Some(Ok(Err(_failure))) => failed += 1,
                Some(Err(closed)) => {
                    eprintln!("stopped: {closed}");
                    break;
                }
                None => break,
            }
            if last_report.elapsed() >= Duration::from_millis(250) {
                last_report = Instant::now();
                eprintln!("{}", sends.progress());
            }
        }
        (sent, failed, sends.progress())
        // The stream is dropped here, with whatever was in flight.
    };
    assert_eq!(sem.available_permits(), args.limit, "every permit is back");

    let max = MAX_IN_FLIGHT.load(Relaxed);
    println!(
        "sent {sent} emails, {failed} failed ({}), max in flight {max} (limit {}), in {:.2?}",
        progress,
        args.limit,
        start.elapsed()
    );
    assert!(max <= args.limit, "the limit was exceeded");
}
