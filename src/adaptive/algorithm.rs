//! The seam for pluggable algorithms: [`Algorithm`] and what it decides.

use super::Sample;

/// Turns samples into a concurrency limit. [`Aimd`](super::Aimd) is the
/// default; implement this to plug in your own (Netflix concurrency-limits
/// calls the same split `Limit` vs. `Limiter`).
///
/// The [`Limiter`](super::Limiter) calls [`update`](Self::update) for every
/// sample, one at a time, inside its own short lock, and applies the limit
/// it returns to its semaphore after releasing that lock. So `update` must
/// be plain arithmetic: it must not block, and must not call back into the
/// limiter or its semaphore.
///
/// # Panics
///
/// The limiter panics if `update` decides a limit of 0 (no request could
/// ever start again, so no sample could ever raise it: the deadlock of
/// vector#21340) or above [`Semaphore::MAX_PERMITS`](crate::Semaphore::MAX_PERMITS);
/// it keeps the previous limit then.
pub trait Algorithm {
    /// The limit wanted now. The limiter reads it once, when it is built.
    fn limit(&self) -> usize;

    /// Takes one sample in. Returns a [`Decision`] when it (re)decided the
    /// limit (for [`Aimd`](super::Aimd): once per window), `None` while it
    /// is still gathering evidence.
    fn update(&mut self, sample: &Sample) -> Option<Decision>;
}

/// What an algorithm decided at the end of a window, and why: for a log
/// line, a progress bar or a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The limit from now on.
    pub limit: usize,
    /// Why it is what it is.
    pub reason: Reason,
}

impl Decision {
    /// A decision for `limit`, for `reason`.
    pub const fn new(limit: usize, reason: Reason) -> Self {
        Self { limit, reason }
    }
}

/// Why an algorithm moved the limit, or kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Grew: the limit was reached, without back-pressure, at a latency no
    /// worse than usual.
    Grow,
    /// Shrank (or stayed at the floor): a request reported
    /// [`Outcome::Overload`](super::Outcome::Overload).
    Overload,
    /// Shrank (or stayed at the floor): latency rose well above its moving
    /// mean, the server is queueing.
    Latency,
    /// Kept: fewer than half the limit were in flight, so the samples say
    /// nothing about a higher one.
    AppLimited,
    /// Kept: no reason to move (latency between its mean and the alarm
    /// level, the limit not reached, already at the ceiling, the window
    /// made of requests sent before the last back-off, or waiting before
    /// trying again a limit that was refused).
    Steady,
}
