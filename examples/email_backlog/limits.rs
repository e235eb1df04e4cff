//! How the sends are limited, from the flags. Always at most `--limit`
//! sessions at once in total; then:
//!
//! - `--fixed` (the default): that is all, a plain `Semaphore`;
//! - `--adaptive`: a `permits::adaptive::Limiter` (AIMD) finds the total
//!   limit from the server's replies and times, between 1 and `--limit`: a
//!   4xx reply (such as the sink's `421 too busy`) is back-pressure, rising
//!   latency too;
//! - `--per-domain K`: also at most `K` sessions per recipient domain, as
//!   Postfix's `default_destination_concurrency_limit`, with a
//!   `KeyedSemaphore` (the domain's permit first, then the global one, so
//!   a busy domain never sits on global permits), and items for a busy
//!   domain wait in a bounded lookahead while other domains go on;
//! - `--per-domain K --adaptive`: each domain finds its own limit, between 1
//!   and `K`, with a `KeyedLimiter`, under the fixed total `--limit`.

use std::future::Future;
use std::time::Instant;

use permits::adaptive::{Aimd, Limiter, Outcome, Sample};
use permits::{KeyedLimiter, KeyedSemaphore, Semaphore};

/// How a send ended, for the adaptive limit: a 4xx reply is back-pressure.
pub struct Failure {
    pub message: String,
    pub transient: bool,
}

/// What a finished send says about the server's capacity.
pub fn outcome(sent: &Result<u64, Failure>) -> Outcome {
    match sent {
        Ok(_) => Outcome::Success,
        Err(f) if f.transient => Outcome::Overload,
        Err(_) => Outcome::Ignore, // a rejected mailbox says nothing about load
    }
}

pub enum Limits {
    Fixed(Semaphore),
    // Boxed: the limiters (algorithm state, their own locks) are several
    // times a Semaphore.
    Adaptive(Box<Limiter>),
    PerDomain(KeyedSemaphore<String>),
    PerDomainAdaptive(Box<KeyedLimiter<String>>),
}

/// Where an adaptive limit starts: low, so that a server that takes little
/// is not flooded before the first replies.
const START: usize = 4;

impl Limits {
    pub fn new(limit: usize, per_domain: Option<usize>, adaptive: bool) -> Self {
        match (per_domain, adaptive) {
            (None, false) => Self::Fixed(Semaphore::new(limit)),
            (None, true) => {
                let aimd = Aimd::new().initial_limit(limit.min(START)).max_limit(limit);
                Self::Adaptive(Box::new(Limiter::new(aimd)))
            }
            (Some(k), false) => Self::PerDomain(KeyedSemaphore::with_global_limit(k, limit)),
            (Some(k), true) => {
                let aimd = Aimd::new().initial_limit(k.min(START)).max_limit(k);
                Self::PerDomainAdaptive(Box::new(KeyedLimiter::with_global_limit(aimd, limit)))
            }
        }
    }

    /// The global semaphore (whatever else limits the sends): its permits
    /// must all be back at the end.
    pub fn global(&self) -> &Semaphore {
        match self {
            Self::Fixed(sem) => sem,
            Self::Adaptive(limiter) => limiter.semaphore(),
            Self::PerDomain(keyed) => keyed.global().expect("made with a global limit"),
            Self::PerDomainAdaptive(keyed) => keyed.global().expect("made with a global limit"),
        }
    }

    /// Domains with permits out or sends waiting (0 once all is done: idle
    /// domains are evicted; the adaptive limiter keeps what idle domains
    /// learned apart from the semaphore, bounded by its `max_idle_keys`).
    pub fn live_domains(&self) -> usize {
        match self {
            Self::Fixed(_) | Self::Adaptive(_) => 0,
            Self::PerDomain(keyed) => keyed.live_keys(),
            Self::PerDomainAdaptive(keyed) => keyed.keyed_semaphore().live_keys(),
        }
    }

    /// The limit in force now, for the progress line.
    pub fn describe(&self) -> String {
        match self {
            Self::Fixed(sem) => sem.limit().to_string(),
            Self::Adaptive(limiter) => format!("{} (adaptive)", limiter.limit()),
            Self::PerDomain(keyed) => format!(
                "{}, {} per domain",
                self.global().limit(),
                keyed.default_key_limit()
            ),
            Self::PerDomainAdaptive(_) => {
                format!("{}, adaptive per domain", self.global().limit())
            }
        }
    }

    /// The learned limit of `domain` (per-domain adaptive only).
    pub fn domain_limit(&self, domain: &str) -> Option<usize> {
        match self {
            Self::PerDomainAdaptive(keyed) => Some(keyed.key_limit(&domain.to_string())),
            _ => None,
        }
    }

    /// Runs `send` (already holding its permit, from `Semaphore::run_all`)
    /// and, under a global adaptive limit, tells the limiter what it saw.
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
        limiter.record(Sample::new(start.elapsed(), in_flight, outcome(&sent)));
        sent
    }
}
