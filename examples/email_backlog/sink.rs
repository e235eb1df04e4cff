//! A small SMTP server in the same process, so the example needs nothing
//! else: it speaks just enough SMTP for a real client (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT), takes 1 to 5 ms per message, rejects recipients
//! whose mailbox starts with `nobody` (550), and counts what it saw: each
//! message by its `Message-ID`, the sessions open at once and the most ever,
//! in total and per recipient domain.
//!
//! `latency_ms` moves that to `latency_ms` to `latency_ms + 4` ms (a slower
//! server, whose capacity is not this process's CPU).
//!
//! With a `capacity`, each domain behaves like a mail server that takes at
//! most that many sessions at once: one more is refused with
//! `421 4.7.0 too busy` (the back-pressure an adaptive limit learns from).
//!
//! A session counts from its greeting (EHLO/HELO) until its QUIT is
//! answered or its connection ends: the client cannot start a session
//! before it is counted nor learn that it ended before it is uncounted, so
//! "most sessions at once" is exactly what the client's limit allowed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the sink has seen so far.
#[derive(Debug, Default)]
pub struct Seen {
    /// How often each message id arrived.
    pub messages: HashMap<u64, u32>,
    /// Sessions open now, and the most at once.
    pub sessions: usize,
    pub max_sessions: usize,
    /// Per recipient domain: sessions open now, and the most at once.
    pub domains: HashMap<String, (usize, usize)>,
    /// Sessions refused with 421 because their domain was at capacity.
    pub refused: u64,
}

impl Seen {
    /// The most sessions any one domain had at once.
    pub fn max_per_domain(&self) -> usize {
        self.domains
            .values()
            .map(|&(_, max)| max)
            .max()
            .unwrap_or(0)
    }
}

/// Listens on a free loopback port; returns its address and the counters.
/// `capacity`: the most sessions one domain takes at once (`None`: no limit);
/// `latency_ms`: the least time a message takes.
pub async fn start(
    capacity: Option<usize>,
    latency_ms: u64,
) -> std::io::Result<(SocketAddr, Arc<Mutex<Seen>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let counters = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Replies are small writes: without this, Nagle and delayed ACKs
            // put ~40 ms into each SMTP round trip.
            let _ = stream.set_nodelay(true);
            tokio::spawn(session(stream, counters.clone(), capacity, latency_ms));
        }
    });
    Ok((addr, seen))
}

/// Uncounts the session (and its domain) when dropped, however the
/// connection ends.
struct Open<'a> {
    seen: &'a Mutex<Seen>,
    domain: Option<String>,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        let mut s = self.seen.lock().unwrap();
        s.sessions -= 1;
        if let Some(domain) = self.domain.take() {
            s.domains.get_mut(&domain).expect("counted").0 -= 1;
        }
    }
}

fn open(seen: &Mutex<Seen>) -> Open<'_> {
    let mut s = seen.lock().unwrap();
    s.sessions += 1;
    s.max_sessions = s.max_sessions.max(s.sessions);
    Open { seen, domain: None }
}

impl Open<'_> {
    /// Counts the session for `domain`; `false` if that domain is at
    /// `capacity` (the session is then refused).
    fn enter(&mut self, domain: &str, capacity: Option<usize>) -> bool {
        if self.domain.is_some() {
            return true; // one domain per session here
        }
        let mut s = self.seen.lock().unwrap();
        let load = s.domains.entry(domain.to_string()).or_default();
        if capacity.is_some_and(|c| load.0 >= c) {
            s.refused += 1;
            return false;
        }
        load.0 += 1;
        load.1 = load.1.max(load.0);
        self.domain = Some(domain.to_string());
        true
    }
}

async fn session(
    stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    capacity: Option<usize>,
    latency_ms: u64,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut counted = None;
    while let Some(line) = lines.next_line().await? {
        let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                counted.get_or_insert_with(|| open(&seen));
                if verb == "EHLO" {
                    b"250-sink\r\n250 8BITMIME\r\n"
                } else {
                    b"250 sink\r\n"
                }
            }
            "MAIL" | "RSET" | "NOOP" => b"250 OK\r\n",
            "RCPT" => {
                let address = line.to_ascii_lowercase();
                let domain = address
                    .rsplit('@')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('>');
                let Some(counted) = counted.as_mut() else {
                    write.write_all(b"503 send EHLO first\r\n").await?;
                    continue;
                };
                if !counted.enter(domain, capacity) {
                    // The server closes the connection after a 421.
                    write
                        .write_all(b"421 4.7.0 too busy, try again later\r\n")
                        .await?;
                    return Ok(());
                }
                if address.contains("<nobody") {
                    b"550 5.1.1 mailbox unavailable\r\n"
                } else {
                    b"250 OK\r\n"
                }
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut id = None;
                while let Some(data) = lines.next_line().await? {
                    if data == "." {
                        break;
                    }
                    id = id.or_else(|| message_id(&data));
                }
                let id = id.unwrap_or(u64::MAX);
                // `latency_ms` to 4 ms more, the same for an id on every run.
                let ms = latency_ms + (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 5;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                *seen.lock().unwrap().messages.entry(id).or_default() += 1;
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                drop(counted.take()); // uncounted before the client hears back
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// The number in a `Message-ID: <N@...>` header line.
pub fn message_id(line: &str) -> Option<u64> {
    let (name, value) = line.split_once(':')?;
    if !name.eq_ignore_ascii_case("message-id") {
        return None;
    }
    let value = value.trim().strip_prefix('<')?;
    value.split('@').next()?.parse().ok()
}
