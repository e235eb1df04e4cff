//! The Twisted `DeferredSemaphore` scenario, for real: a backlog of emails
//! sent over SMTP with `lettre`, at most `--limit` at a time, pulled from the
//! backlog only when a permit is free, so memory stays flat however long the
//! backlog is.
//!
//! ```text
//! cargo run --release --example email_backlog                    # 1000 emails, 16 at a time, to an in-process SMTP sink
//! cargo run --release --example email_backlog -- --count 0       # endless, until Ctrl-C
//! cargo run --release --example email_backlog -- --count 5000 --limit 64 --domains 200
//! cargo run --release --example email_backlog -- --smtp 127.0.0.1:2525   # a real server
//! ```
//!
//! Recipients are spread over `--domains` domains; one in a hundred is a
//! mailbox the server rejects (550), to show failures going by without
//! stopping the backlog. Each email is one SMTP session, so the server sees at most `--limit` sessions at once.
//!
//! Progress (sent, failed, in flight, limit, rate) is a progress bar when
//! stderr is a terminal, a plain line every second otherwise. The last line
//! says how many were sent, the most in flight at once and the time taken.
//! With the in-process sink it also checks what the server received: every
//! email that was sent arrived once, and no more sessions than the limit.

mod progress;
mod sink;

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use permits::Semaphore;
use tokio::net::TcpStream;

use progress::{Counts, Reporter};

const USAGE: &str = "usage: email_backlog [--count N (0 = endless)] [--limit N] \
                     [--domains N] [--smtp HOST:PORT | --sink-capacity N]";

struct Args {
    count: u64,
    limit: usize,
    domains: u64,
    smtp: Option<(String, u16)>,
    /// The in-process sink's sessions per domain at once (`None`: any).
    capacity: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 1000,
        limit: 16,
        domains: 50,
        smtp: None,
        capacity: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--count" => args.count = number("--count", value("--count")?)?,
            "--limit" => args.limit = number("--limit", value("--limit")?)? as usize,
            "--domains" => args.domains = number("--domains", value("--domains")?)?,
            "--smtp" => {
                let v = value("--smtp")?;
                let (host, port) = v
                    .rsplit_once(':')
                    .ok_or(format!("--smtp: expected HOST:PORT, got {v}"))?;
                let port = port
                    .parse()
                    .map_err(|_| format!("--smtp: bad port in {v}"))?;
                args.smtp = Some((host.to_string(), port));
            }
            "--sink-capacity" => {
                let n = number("--sink-capacity", value("--sink-capacity")?)?;
                args.capacity = Some(n as usize);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if args.limit == 0 {
        return Err("--limit must be at least 1".into());
    }
    if args.domains == 0 {
        return Err("--domains must be at least 1".into());
    }
    if args.capacity == Some(0) {
        return Err("--sink-capacity must be at least 1".into());
    }
    if args.capacity.is_some() && args.smtp.is_some() {
        return Err("--sink-capacity is for the in-process sink, not --smtp".into());
    }
    Ok(args)
}

/// The recipient of email `id`: one of `domains` domains, and every
/// hundredth a mailbox the server rejects.
fn recipient(id: u64, domains: u64) -> String {
    let domain = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % domains;
    let mailbox = if id % 100 == 0 { "nobody" } else { "user" };
    format!("{mailbox}{id}@d{domain}.example")
}

/// Sends in flight right now, and the most seen at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One email, one SMTP session, spoken by lettre's SMTP client.
async fn send(server: &str, domains: u64, id: u64) -> Result<u64, String> {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    let to = recipient(id, domains);
    let result = tokio::time::timeout(SESSION_TIMEOUT, session(server, id, &to)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    match result {
        Ok(Ok(())) => Ok(id),
        Ok(Err(e)) => Err(format!("email {id} to {to}: {e}")),
        Err(_) => Err(format!("email {id} to {to}: timed out")),
    }
}

const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

async fn session(server: &str, id: u64, to: &str) -> Result<(), Box<dyn std::error::Error>> {
    let email = Message::builder()
        .from("Backlog <backlog@sender.example>".parse()?)
        .to(to.parse()?)
        .subject(format!("email {id}"))
        .message_id(Some(format!("<{id}@backlog.example>")))
        .header(ContentType::TEXT_PLAIN)
        .body(format!("Hello {to}, this is email {id} of the backlog.\n"))?;
    // lettre's `AsyncSmtpTransport` would do the connecting, but 0.11.23
    // leaves Nagle's algorithm on: it writes the body and the final "." in
    // two writes, so each email waits ~40 ms for the server's delayed ACK
    // (fixed upstream in lettre#1159, not released yet). So connect here,
    // with TCP_NODELAY, and let lettre's SMTP client speak on the stream.
    let stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    let hello = ClientId::Domain("sender.example".into());
    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello).await?;
    // On an error reply lettre ends the session itself (QUIT, close).
    conn.send(email.envelope(), &email.formatted()).await?;
    conn.quit().await?;
    Ok(())
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
    // Without --smtp, a sink in this process on a free port.
    let (host, port, sink) = match args.smtp.clone() {
        Some((host, port)) => (host, port, None),
        None => {
            let (addr, seen) = sink::start(args.capacity)
                .await
                .expect("start the SMTP sink");
            (addr.ip().to_string(), addr.port(), Some(seen))
        }
    };
    // Plain SMTP, no TLS: a local relay or test server.
    let server = format!("{host}:{port}");

    let sem = Semaphore::new(args.limit);
    // The backlog: ids only. A real service would read them from a queue or
    // a database cursor; either way nothing is loaded before it is sent.
    let backlog: Box<dyn Iterator<Item = u64> + Send> = if args.count == 0 {
        Box::new(0..)
    } else {
        Box::new(0..args.count)
    };
    let mut reporter = Reporter::new((args.count > 0).then_some(args.count));

    let start = Instant::now();
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    let mut sent_ids = Vec::new();
    let (sent, failed, progress) = {
        let domains = args.domains;
        let mut sends = pin!(sem.run_all(backlog, |id| send(&server, domains, id)));
        let (mut sent, mut failed) = (0u64, 0u64);
        loop {
            let result = tokio::select! {
                result = sends.next() => result,
                _ = &mut ctrl_c => {
                    reporter.note("interrupted: dropping the sends in flight");
                    break;
                }
            };
            match result {
                Some(Ok(Ok(id))) => {
                    sent += 1;
                    if sink.is_some() {
                        sent_ids.push(id);
                    }
                }
                Some(Ok(Err(_failure))) => failed += 1,
                Some(Err(closed)) => {
                    reporter.note(&format!("stopped: {closed}"));
                    break;
                }
                None => break,
            }
            reporter.update(&Counts {
                sent,
                failed,
                progress: sends.progress(),
                limit: sem.limit().to_string(),
            });
        }
        (sent, failed, sends.progress())
        // The stream is dropped here, with whatever was in flight.
    };
    reporter.finish();
    assert_eq!(sem.available_permits(), args.limit, "every permit is back");

    let max = MAX_IN_FLIGHT.load(Relaxed);
    if let Some(seen) = sink {
        let seen = seen.lock().unwrap();
        let twice = seen.messages.values().filter(|&&n| n > 1).count();
        let missing = sent_ids
            .iter()
            .filter(|id| !seen.messages.contains_key(id))
            .count();
        println!(
            "sink: {} messages received, {missing} missing, {twice} more than once; \
             most sessions at once {}, per domain {}; {} refused as too busy",
            seen.messages.len(),
            seen.max_sessions,
            seen.max_per_domain(),
            seen.refused
        );
        assert_eq!((missing, twice), (0, 0), "every sent email arrived once");
        // Sends dropped on Ctrl-C may have got their message through before
        // the session was cut: at most one each.
        let unconfirmed = seen.messages.len() - sent_ids.len();
        assert!(unconfirmed <= progress.in_flight, "nothing else arrived");
        assert!(seen.max_sessions <= args.limit, "the server saw too many");
    }
    println!(
        "sent {sent} emails, {failed} failed ({}), max in flight {max} (limit {}), in {:.2?}",
        progress,
        args.limit,
        start.elapsed()
    );
    assert!(max <= args.limit, "the limit was exceeded");
}
