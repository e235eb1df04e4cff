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
//! cargo run --release --example email_backlog -- --adaptive --limit 32 --domains 4 --sink-capacity 3
//! cargo run --release --example email_backlog -- --per-domain 4 --limit 64 --domains 200
//! cargo run --release --example email_backlog -- --per-domain 8 --adaptive --domains 8 --sink-capacity 3
//! ```
//!
//! `--adaptive` lets an AIMD limiter find the limit (up to `--limit`) from
//! the replies: with `--sink-capacity 3` each of the 4 domains refuses a
//! fourth session with `421`, and the limit settles near what they take;
//! `--fixed` (the default) keeps `--limit`. `--per-domain K` adds a limit of
//! `K` sessions per recipient domain under the total `--limit` (Postfix's
//! per-destination concurrency); with `--adaptive` each domain finds its own
//! limit up to `K`. See `limits.rs`. `--sink-latency MS` makes the sink take
//! `MS` to `MS + 4` ms per message (default 1), and `--trace FILE` writes
//! the limit over time as CSV (`benches/results/email_chart.py` draws it).
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

mod limits;
mod progress;
mod sink;

use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use tokio::net::TcpStream;

use limits::{outcome, Failure, Limits};
use progress::{Counts, Reporter};

const USAGE: &str = "usage: email_backlog [--count N (0 = endless)] [--limit N] \
                     [--domains N] [--per-domain K] [--adaptive | --fixed] \
                     [--smtp HOST:PORT | --sink-capacity N --sink-latency MS] [--trace FILE]";

struct Args {
    count: u64,
    limit: usize,
    domains: u64,
    smtp: Option<(String, u16)>,
    /// The in-process sink's sessions per domain at once (`None`: any).
    capacity: Option<usize>,
    /// Find the limit (up to `limit`, or per domain up to `per_domain`)
    /// instead of fixing it.
    adaptive: bool,
    /// At most this many sessions per recipient domain.
    per_domain: Option<usize>,
    /// The in-process sink's least time per message.
    latency_ms: u64,
    /// Where to write the limit over time (CSV), for a chart.
    trace: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 1000,
        limit: 16,
        domains: 50,
        smtp: None,
        capacity: None,
        adaptive: false,
        per_domain: None,
        latency_ms: 1,
        trace: None,
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
            "--per-domain" => {
                let n = number("--per-domain", value("--per-domain")?)?;
                args.per_domain = Some(n as usize);
            }
            "--sink-latency" => {
                args.latency_ms = number("--sink-latency", value("--sink-latency")?)?
            }
            "--trace" => args.trace = Some(value("--trace")?),
            "--adaptive" => args.adaptive = true,
            "--fixed" => args.adaptive = false,
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
    if args.per_domain == Some(0) {
        return Err("--per-domain must be at least 1".into());
    }
    if args.capacity == Some(0) {
        return Err("--sink-capacity must be at least 1".into());
    }
    if (args.capacity.is_some() || args.latency_ms != 1) && args.smtp.is_some() {
        return Err(
            "--sink-capacity and --sink-latency are for the in-process sink, not --smtp".into(),
        );
    }
    Ok(args)
}

/// The recipient domain of email `id`: one of `domains`, spread evenly.
fn domain(id: u64, domains: u64) -> String {
    let n = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % domains;
    format!("d{n}.example")
}

/// The recipient of email `id`: every hundredth is a mailbox the server
/// rejects.
fn recipient(id: u64, domains: u64) -> String {
    let mailbox = if id % 100 == 0 { "nobody" } else { "user" };
    format!("{mailbox}{id}@{}", domain(id, domains))
}

/// Sends in flight right now, and the most seen at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One email, one SMTP session, spoken by lettre's SMTP client.
async fn send(server: &str, domains: u64, id: u64) -> Result<u64, Failure> {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    let to = recipient(id, domains);
    let result = tokio::time::timeout(SESSION_TIMEOUT, session(server, id, &to)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    match result {
        Ok(Ok(())) => Ok(id),
        Ok(Err(e)) => Err(Failure {
            // A 4xx reply: the server is busy, try later (back-pressure).
            transient: e
                .downcast_ref::<lettre::transport::smtp::Error>()
                .is_some_and(|e| e.is_transient()),
            message: format!("email {id} to {to}: {e}"),
        }),
        Err(_) => Err(Failure {
            message: format!("email {id} to {to}: timed out"),
            transient: true,
        }),
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
            let (addr, seen) = sink::start(args.capacity, args.latency_ms)
                .await
                .expect("start the SMTP sink");
            (addr.ip().to_string(), addr.port(), Some(seen))
        }
    };
    // Plain SMTP, no TLS: a local relay or test server.
    let server = format!("{host}:{port}");

    let limits = Limits::new(args.limit, args.per_domain, args.adaptive);
    // The backlog: ids only. A real service would read them from a queue or
    // a database cursor; either way nothing is loaded before it is sent.
    let backlog: Box<dyn Iterator<Item = u64> + Send> = if args.count == 0 {
        Box::new(0..)
    } else {
        Box::new(0..args.count)
    };
    let mut run = Run {
        reporter: Reporter::new((args.count > 0).then_some(args.count)),
        limits: &limits,
        keep_ids: sink.is_some(),
        trace: args.trace.as_deref().map(|path| {
            Trace::create(path).unwrap_or_else(|e| {
                eprintln!("--trace {path}: {e}");
                std::process::exit(2)
            })
        }),
    };

    let start = Instant::now();
    let domains = args.domains;
    let send_one = |id| send(&server, domains, id);
    let domain_of = |id: &u64| domain(*id, domains);
    // One stream per kind of limit; `drive` is the same loop over each.
    let done = match &limits {
        Limits::Fixed(sem) => {
            let sends = pin!(sem.run_all(backlog, send_one));
            run.drive(sends, |s| s.progress()).await
        }
        Limits::Adaptive(_) => {
            let sem = limits.global();
            let sends = pin!(sem.run_all(backlog, |id| limits.feed(send_one(id))));
            run.drive(sends, |s| s.progress()).await
        }
        Limits::PerDomain(keyed) => {
            let sends = pin!(keyed.run_all(backlog, domain_of, send_one));
            run.drive(sends, |s| s.progress()).await
        }
        Limits::PerDomainAdaptive(keyed) => {
            let sends = pin!(keyed.run_all(backlog, domain_of, send_one, outcome));
            run.drive(sends, |s| s.progress()).await
        }
    };
    let Done {
        sent,
        failed,
        progress,
        sent_ids,
    } = done;
    let reporter = run.reporter;
    reporter.finish();
    let global = limits.global();
    assert_eq!(
        global.available_permits(),
        global.limit(),
        "every permit is back"
    );
    assert_eq!(limits.live_domains(), 0, "every domain's entry is evicted");

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
        if let Some(k) = args.per_domain {
            assert!(seen.max_per_domain() <= k, "a domain saw too many");
        }
    }
    if args.per_domain.is_some() && args.adaptive {
        let learned: Vec<String> = (0..args.domains.min(8))
            .map(|n| {
                format!(
                    "d{n} {}",
                    limits.domain_limit(&format!("d{n}.example")).unwrap_or(0)
                )
            })
            .collect();
        println!("learned per-domain limits: {}", learned.join(", "));
    }
    println!(
        "sent {sent} emails, {failed} failed ({}), max in flight {max} (limit {}), in {:.2?}",
        progress,
        limits.describe(),
        start.elapsed()
    );
    assert!(max <= args.limit, "the limit was exceeded");
}

/// What `drive` needs besides the stream.
struct Run<'a> {
    reporter: Reporter,
    limits: &'a Limits,
    /// Keep the ids sent, to check them against the in-process sink.
    keep_ids: bool,
    trace: Option<Trace>,
}

/// The limit over time, a CSV line every 50 ms:
/// `ms,limit,in_flight,sent,failed` (`benches/results/email_chart.py` draws
/// it).
struct Trace {
    out: std::io::BufWriter<std::fs::File>,
    start: Instant,
    last: Option<Instant>,
}

impl Trace {
    fn create(path: &str) -> std::io::Result<Self> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "ms,limit,in_flight,sent,failed")?;
        Ok(Self {
            out,
            start: Instant::now(),
            last: None,
        })
    }

    fn record(&mut self, limit: usize, in_flight: usize, sent: u64, failed: u64) {
        use std::io::Write;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(50))
        {
            return;
        }
        self.last = Some(Instant::now());
        let ms = self.start.elapsed().as_millis();
        writeln!(self.out, "{ms},{limit},{in_flight},{sent},{failed}").expect("write the trace");
    }
}

/// How the backlog ended.
struct Done {
    sent: u64,
    failed: u64,
    progress: permits::Progress,
    sent_ids: Vec<u64>,
}

impl Run<'_> {
    /// Takes the results of `sends` as they come, with a progress report
    /// after each, until the backlog is done, the limit is closed or Ctrl-C.
    /// The stream is dropped with whatever is in flight when this returns.
    async fn drive<S, E>(
        &mut self,
        mut sends: Pin<&mut S>,
        progress: impl Fn(&S) -> permits::Progress,
    ) -> Done
    where
        S: Stream<Item = Result<Result<u64, Failure>, E>>,
        E: std::fmt::Display,
    {
        let mut ctrl_c = pin!(tokio::signal::ctrl_c());
        let (mut sent, mut failed, mut sent_ids) = (0u64, 0u64, Vec::new());
        loop {
            let result = tokio::select! {
                result = sends.next() => result,
                _ = &mut ctrl_c => {
                    self.reporter.note("interrupted: dropping the sends in flight");
                    break;
                }
            };
            match result {
                Some(Ok(Ok(id))) => {
                    sent += 1;
                    if self.keep_ids {
                        sent_ids.push(id);
                    }
                }
                Some(Ok(Err(failure))) => {
                    failed += 1;
                    if failed <= 3 {
                        self.reporter.note(&failure.message); // the first few, as examples
                    }
                }
                Some(Err(closed)) => {
                    self.reporter.note(&format!("stopped: {closed}"));
                    break;
                }
                None => break,
            }
            let now = progress(&*sends);
            if let Some(trace) = &mut self.trace {
                trace.record(self.limits.global().limit(), now.in_flight, sent, failed);
            }
            self.reporter.update(&Counts {
                sent,
                failed,
                progress: now,
                limit: self.limits.describe(),
            });
        }
        Done {
            sent,
            failed,
            progress: progress(&*sends),
            sent_ids,
        }
    }
}
