//! How the sends are limited, from the flags:
//!
//! - `--fixed` (the default): at most `--limit` sessions at once, a plain
//!   `Semaphore`;
//! - `--adaptive`: a `permits::adaptive::Limiter` (AIMD) finds the limit from
//!   the server's replies and times, between 1 and `--limit`: a 4xx reply
//!   (such as the sink's `421 too busy`) is back-pressure, rising latency
//!   too.

use std::future::Future;
use std::time::Instant;

use permits::adaptive::{Aimd, Limiter, Outcome, Sample};
use permits::Semaphore;

/// How a send ended, for the adaptive limit: a 4xx reply is back-pressure.
pub struct Failure {
    pub message: String,
    pub transient: bool,
}

pub enum Limits {
    Fixed(Semaphore),
    // Boxed: the limiter (algorithm state, its own lock) is ~9x a Semaphore.
    Adaptive(Box<Limiter>),
}

impl Limits {
    pub fn new(limit: usize, adaptive: bool) -> Self {
        if adaptive {
            let aimd = Aimd::new().initial_limit(limit.min(4)).max_limit(limit);
            Self::Adaptive(Box::new(Limiter::new(aimd)))
        } else {
            Self::Fixed(Semaphore::new(limit))
        }
    }

    /// The semaphore the backlog stream takes its permits from.
    pub fn semaphore(&self) -> &Semaphore {
        match self {
            Self::Fixed(sem) => sem,
            Self::Adaptive(limiter) => limiter.semaphore(),
        }
    }

    /// The limit in force now, for the progress line.
    pub fn describe(&self) -> String {
        match self {
            Self::Fixed(sem) => sem.limit().to_string(),
            Self::Adaptive(limiter) => format!("{} (adaptive)", limiter.limit()),
        }
    }

    /// Runs `send` (already holding its permit, from the backlog stream) and
    /// tells the adaptive limit what it saw.
    pub async fn feed<F: Future<Output = Result<u64, Failure>>>(
        &self,
        send: F,
    ) -> Result<u64, Failure> {
        let Self::Adaptive(limiter) = self else {
            return send.await;
        };
        let sem = limiter.semaphore();
        let in_flight = (sem.limit() + sem.debt()).saturating_sub(sem.available_permits());
        let start = Instant::now();
        let sent = send.await;
        let outcome = match &sent {
            Ok(_) => Outcome::Success,
            Err(f) if f.transient => Outcome::Overload,
            Err(_) => Outcome::Ignore, // a rejected mailbox says nothing about load
        };
        limiter.record(Sample::new(start.elapsed(), in_flight, outcome));
        sent
    }
}
