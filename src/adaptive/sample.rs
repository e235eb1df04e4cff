//! What one finished request tells the algorithm: [`Outcome`] and [`Sample`].

use core::time::Duration;

/// What a finished request says about the server's capacity. The caller
/// decides: only it knows what a reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The server did the work: the duration is a valid latency measurement.
    Success,
    /// The server pushed back: SMTP `421`/`451`, HTTP `429`/`503`, a refused
    /// connection, a timeout. The limit goes down.
    Overload,
    /// Says nothing about capacity (a bad address, a cancelled send, a bug
    /// on our side): [`Aimd`](super::Aimd) skips it, and so should an
    /// algorithm of your own.
    Ignore,
}

/// One finished request, as the caller measured it.
///
/// The library has no clock: `rtt` comes from whatever clock the caller has
/// (`std::time::Instant`, `embassy_time::Instant`, a simulated clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sample {
    /// How long the request took, from its permit being granted to its reply.
    pub rtt: Duration,
    /// How many requests of the limiter were in flight while this one ran,
    /// itself included ([`Permit::record`](super::Permit::record) takes the
    /// larger of the counts at its start and at its end).
    pub in_flight: usize,
    /// What the reply meant.
    pub outcome: Outcome,
}

impl Sample {
    /// A sample of one request.
    pub const fn new(rtt: Duration, in_flight: usize, outcome: Outcome) -> Self {
        Self {
            rtt,
            in_flight,
            outcome,
        }
    }
}
