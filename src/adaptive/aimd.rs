//! [`Aimd`]: the default algorithm, loss-driven AIMD with a latency guard.

use super::{Algorithm, Decision, Outcome, Reason, Sample};
use crate::Semaphore;

/// The relative difference between two latencies that is only rounding
/// (`f64` sums of a few thousand samples are good to ~1e-13).
const ROUNDING: f64 = 1e-9;

/// Loss-driven additive-increase / multiplicative-decrease with a latency
/// guard: the shape that fits a saturated bulk sender (Vector's Adaptive
/// Request Concurrency rule, with Netflix's app-limited rule).
///
/// Samples are gathered in *windows* of about one round trip. The library
/// has no clock, so a window is counted rather than timed: it closes once it
/// holds as many samples (not counting [`Outcome::Ignore`]) as requests were
/// in flight at most during it (by Little's law, that many finish per round
/// trip), or at once on an [`Overload`](Outcome::Overload). At the end of a
/// window, exactly one of:
///
/// 1. an overload: the limit shrinks to `backoff` (0.9) times itself, or
///    times what was in flight if that was less, and by at least 1;
/// 2. the window started within one round trip of a back-off: nothing
///    (its requests were sent under the old limit; their refusals are
///    echoes of the one already acted on);
/// 3. fewer than half the limit in flight: nothing, [`Reason::AppLimited`]
///    (Netflix's rule: the samples say nothing about a higher limit, and a
///    latency rise with few requests out is not our queue);
/// 4. the window's mean latency exceeds `(1 + max_queueing)` times the
///    lowest seen (by more than its noise): the limit shrinks in proportion
///    to the excess, by half at most ([`max_queueing`](Self::max_queueing)
///    explains why this guard, and how it keeps from drifting);
/// 5. the window's mean latency is at least `mean + k * sigma` (and 5 %)
///    above the moving mean: shrink as in 1;
/// 6. the limit was reached and the mean latency is at most the moving
///    mean: `+1`, up to the ceiling;
/// 7. else nothing ([`Reason::Steady`]).
///
/// Sigma is the standard error of the window's mean: the requests' jitter
/// (a moving mean of the variance *within* windows) over the window's
/// sample count. Vector's sigma, the variance *between* windows' means,
/// grows with the limit's own +1 steps once past the knee, so a creeping
/// queue hides in it. Side by side in `tests/adaptive_sim.rs` (a knee at
/// 20, quadratic slowdown past it, the same counted windows), Vector's rule
/// holds a mean limit of 34 at 62 % of the best fixed limit's throughput;
/// this one 20.2 at 95 %.
///
/// After a refusal at some limit, trying that limit again waits a number
/// of windows that doubles with each refusal there (up to 32) and resets
/// once it goes through: against a server that refuses above `N`, Postfix's
/// `+1/N` feedback measured 16.5 % refusals; this keeps them near 0.2 %.
/// Postfix's fractional growth (`+1/N` per success) itself grows as fast as
/// `+1` per window on a saturated sender, but reacts to single samples
/// rather than a window's mean, so it is not used.
///
/// # Examples
///
/// ```
/// use core::time::Duration;
/// use permits::adaptive::{Aimd, Algorithm, Decision, Outcome, Reason, Sample};
///
/// let mut aimd = Aimd::new().initial_limit(2);
/// let ok = |in_flight| Sample::new(Duration::from_millis(10), in_flight, Outcome::Success);
/// // A window holds as many samples as were in flight: two here.
/// assert_eq!(aimd.update(&ok(2)), None);
/// // The first window sets the latency baseline.
/// assert_eq!(aimd.update(&ok(2)).unwrap().reason, Reason::Steady);
/// // The next one reached the limit at the usual latency: +1.
/// aimd.update(&ok(2));
/// assert_eq!(aimd.update(&ok(2)), Some(Decision::new(3, Reason::Grow)));
/// // A refusal closes the window at once: x0.9, and at least -1.
/// let refused = Sample::new(Duration::from_millis(1), 3, Outcome::Overload);
/// assert_eq!(aimd.update(&refused), Some(Decision::new(2, Reason::Overload)));
/// assert_eq!(aimd.limit(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Aimd {
    floor: usize,
    ceiling: usize,
    backoff: f64,
    smoothing: f64,
    deviation_scale: f64,
    tolerance: f64,
    max_queueing: f64,
    limit: usize,
    window: Window,
    /// Moving mean of the windows' mean latency, in seconds.
    mean_rtt: Option<f64>,
    /// Moving mean of the variance of single samples (the jitter), in
    /// seconds squared. A window's mean of `n` samples has this over `n`:
    /// unlike the variance *between* windows, it does not grow with the
    /// limit's own steps, so a creeping queue cannot hide in it.
    jitter_var: f64,
    /// The lowest window mean latency seen (from windows of at least
    /// [`MIN_RTT_SAMPLES`] successes): the latency without a queue.
    min_rtt: Option<f64>,
    /// The latency that made the queueing guard back off last window: if
    /// two back-offs in a row did not lower it, the rise was not our queue.
    guarded: Option<f64>,
    guard_misses: u8,
    /// Samples left whose overloads are echoes of the last back-off: they
    /// were sent under the old limit.
    recovery: usize,
    /// The limit that was last refused (0: none known), and the windows to
    /// wait just under it before trying it again; doubled on each refused
    /// try, cleared once a try goes through.
    probe_at: usize,
    probe_wait: u32,
    waited: u32,
}

/// The most windows to wait before trying again a limit that was refused.
const MAX_PROBE_WAIT: u32 = 32;

/// Windows with fewer successes are too noisy to set the no-queue latency.
const MIN_RTT_SAMPLES: usize = 8;

/// A square root for `no_std` (`f64::sqrt` is in `std`): Newton's method
/// from a power-of-two start, plenty for a noise estimate.
fn sqrt(x: f64) -> f64 {
    if x <= 0.0 || x.is_nan() {
        return 0.0;
    }
    let mut r = if x > 1.0 { x } else { 1.0 };
    for _ in 0..64 {
        let next = 0.5 * (r + x / r);
        if next >= r {
            break;
        }
        r = next;
    }
    r
}

/// The samples of the open window.
#[derive(Debug, Clone, Copy)]
struct Window {
    samples: usize,
    max_in_flight: usize,
    overloaded: bool,
    /// An overload during recovery: no back-off, but no growth either.
    tainted: bool,
    rtt_sum: f64,
    rtt_sq_sum: f64,
    rtt_count: usize,
}

impl Window {
    const EMPTY: Self = Self {
        samples: 0,
        max_in_flight: 0,
        overloaded: false,
        tainted: false,
        rtt_sum: 0.0,
        rtt_sq_sum: 0.0,
        rtt_count: 0,
    };

    /// The mean latency, and the variance of the samples around it (with
    /// two samples or more).
    fn rtt(&self) -> Option<(f64, Option<f64>)> {
        let n = self.rtt_count as f64;
        if self.rtt_count == 0 {
            return None;
        }
        let mean = self.rtt_sum / n;
        if self.rtt_count == 1 {
            return Some((mean, None));
        }
        let var = (self.rtt_sq_sum / n - mean * mean).max(0.0) * n / (n - 1.0);
        Some((mean, Some(var)))
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Self::new()
    }
}

impl Aimd {
    /// The defaults, each with its reason:
    ///
    /// | parameter | default | why |
    /// |---|---|---|
    /// | [`initial_limit`](Self::initial_limit) | 1 | nothing is known yet; a server that takes one connection refuses nothing |
    /// | [`min_limit`](Self::min_limit) | 1 | 0 would stop all work, and with it all feedback |
    /// | [`max_limit`](Self::max_limit) | 200 | a safeguard against a server that never pushes back (Vector's) |
    /// | [`backoff`](Self::backoff) | 0.9 | gentle: one refusal costs 10 %, not half (Netflix's and Vector's AIMD) |
    /// | [`smoothing`](Self::smoothing) | 0.4 | the moving mean follows a changed server within a few windows (Vector's) |
    /// | [`deviation_scale`](Self::deviation_scale) | 2.5 | a window's mean latency 2.5 standard errors above the moving mean is queueing, not jitter (Vector's k) |
    /// | [`tolerance`](Self::tolerance) | 0.05 | on a steady link the standard error tends to 0: a 1 % wobble must not count as queueing |
    /// | [`max_queueing`](Self::max_queueing) | 0.5 | latency 1.5 times the no-queue latency means requests wait half their service time in a queue: backing off then costs no throughput |
    pub const fn new() -> Self {
        Self {
            floor: 1,
            ceiling: 200,
            backoff: 0.9,
            smoothing: 0.4,
            deviation_scale: 2.5,
            tolerance: 0.05,
            max_queueing: 0.5,
            limit: 1,
            window: Window::EMPTY,
            mean_rtt: None,
            jitter_var: 0.0,
            min_rtt: None,
            guarded: None,
            guard_misses: 0,
            recovery: 0,
            probe_at: 0,
            probe_wait: 0,
            waited: 0,
        }
    }

    /// The limit to start from (default 1).
    ///
    /// # Panics
    ///
    /// If it is outside `[min_limit, max_limit]` as set so far.
    pub const fn initial_limit(mut self, n: usize) -> Self {
        assert!(
            n >= self.floor && n <= self.ceiling,
            "Aimd::initial_limit: outside [min_limit, max_limit]"
        );
        self.limit = n;
        self
    }

    /// The floor (default 1); the limit never goes below it. Raises the
    /// current limit to it if needed.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or above `max_limit`.
    pub const fn min_limit(mut self, n: usize) -> Self {
        assert!(n >= 1, "Aimd::min_limit: the floor must be at least 1");
        assert!(n <= self.ceiling, "Aimd::min_limit: above max_limit");
        self.floor = n;
        if self.limit < n {
            self.limit = n;
        }
        self
    }

    /// The ceiling (default 200); the limit never goes above it. Lowers the
    /// current limit to it if needed.
    ///
    /// # Panics
    ///
    /// If `n` is below `min_limit` or above [`Semaphore::MAX_PERMITS`].
    pub const fn max_limit(mut self, n: usize) -> Self {
        assert!(n >= self.floor, "Aimd::max_limit: below min_limit");
        assert!(
            n <= Semaphore::MAX_PERMITS,
            "Aimd::max_limit: above Semaphore::MAX_PERMITS"
        );
        self.ceiling = n;
        if self.limit > n {
            self.limit = n;
        }
        self
    }

    /// The factor a back-off multiplies the limit by (default 0.9). A
    /// back-off always lowers the limit by at least 1 (above the floor).
    ///
    /// # Panics
    ///
    /// Unless `0 < ratio < 1`.
    pub const fn backoff(mut self, ratio: f64) -> Self {
        assert!(
            ratio > 0.0 && ratio < 1.0,
            "Aimd::backoff: the ratio must be in (0, 1)"
        );
        self.backoff = ratio;
        self
    }

    /// The weight of a new window in the moving latency mean (default
    /// 0.4); smaller follows a changed server more slowly.
    ///
    /// # Panics
    ///
    /// Unless `0 < alpha <= 1`.
    pub const fn smoothing(mut self, alpha: f64) -> Self {
        assert!(
            alpha > 0.0 && alpha <= 1.0,
            "Aimd::smoothing: alpha must be in (0, 1]"
        );
        self.smoothing = alpha;
        self
    }

    /// How many standard errors above the moving mean a window's mean
    /// latency must be to count as queueing (default 2.5).
    ///
    /// # Panics
    ///
    /// If `k` is negative or not a number.
    pub const fn deviation_scale(mut self, k: f64) -> Self {
        assert!(k >= 0.0, "Aimd::deviation_scale: k must be >= 0");
        self.deviation_scale = k;
        self
    }

    /// The least relative rise over the moving mean that counts as
    /// queueing, whatever the standard error (default 0.05: 5 %).
    ///
    /// # Panics
    ///
    /// If `fraction` is negative or not a number.
    pub const fn tolerance(mut self, fraction: f64) -> Self {
        assert!(fraction >= 0.0, "Aimd::tolerance: must be >= 0");
        self.tolerance = fraction;
        self
    }

    /// How much queueing latency, relative to the lowest latency seen, is
    /// tolerated before backing off (default 0.5: up to 1.5 times it).
    ///
    /// This guard catches what the moving mean cannot: when capacity drops,
    /// the mean rises with the queue and a limit far too high looks normal
    /// after a few windows. It checks itself: if a back-off it caused did
    /// not lower the latency, the rise was the server's, not a queue we
    /// built, and the lowest latency is reset to the new level (so a server
    /// that became slower does not drive the limit to the floor).
    ///
    /// # Panics
    ///
    /// Unless `fraction > 0`.
    pub const fn max_queueing(mut self, fraction: f64) -> Self {
        assert!(fraction > 0.0, "Aimd::max_queueing: must be > 0");
        self.max_queueing = fraction;
        self
    }

    /// The limit now (also in a `const` context, unlike [`Algorithm::limit`]).
    pub const fn current_limit(&self) -> usize {
        self.limit
    }

    /// The moving mean of the windows' latency in seconds, once a window
    /// with a latency has closed.
    pub fn mean_rtt_secs(&self) -> Option<f64> {
        self.mean_rtt
    }

    /// `load` times the back-off ratio, at least 1 less.
    fn shrunk(&self, load: usize) -> usize {
        // `as` truncates: the floor of a positive number.
        let scaled = (load as f64 * self.backoff) as usize;
        scaled.min(load.saturating_sub(1))
    }

    /// Window `w` just closed: decide, then fold its latency in.
    fn decide(&mut self, w: Window) -> Decision {
        let rtt = w.rtt();
        let app_limited = w.max_in_flight * 2 < self.limit;
        // What a back-off cuts: the limit, or what was really in flight if
        // that was less (a limit of 200 with 5 in flight refused must go
        // under 5, not to 180).
        let load = self.limit.min(w.max_in_flight.max(1));
        let reason = if w.overloaded {
            self.note_refusal();
            self.back_off(self.shrunk(load), w.max_in_flight);
            Reason::Overload
        } else if w.tainted {
            // Samples of requests sent before the last back-off: they say
            // nothing about the new limit.
            Reason::Steady
        } else if let Some((rtt, _)) = rtt {
            self.check_guard(rtt);
            // The variance of this window's mean: jitter over n.
            let noise = self.jitter_var / w.rtt_count as f64;
            let k2 = self.deviation_scale * self.deviation_scale;
            let above_mean = self.mean_rtt.is_some_and(|mean| {
                let rise = rtt - mean;
                rise > 0.0 && rise * rise >= k2 * noise && rise >= self.tolerance * mean
            });
            let allowed = self
                .min_rtt
                .map(|min| min * (1.0 + self.max_queueing))
                .filter(|allowed| {
                    rtt > *allowed && (rtt - allowed) * (rtt - allowed) >= k2 * noise
                });
            // "Not above the moving mean", give or take rounding: with a
            // coarse clock every latency is the same, and the window's mean
            // (a sum over n) and the moving mean (a blend of such) can differ
            // in the last bits, which must not read as a rise.
            let calm = self
                .mean_rtt
                .is_some_and(|mean| rtt <= mean * (1.0 + ROUNDING));
            if app_limited {
                // Latency with few requests in flight is not our queue.
                Reason::AppLimited
            } else if let Some(allowed) = allowed {
                // Queueing delay shrinks with the load: cut in proportion,
                // by half at most.
                let target = (load as f64 * allowed / rtt) as usize;
                self.guarded = Some(rtt);
                self.back_off(target.clamp(load / 2, self.shrunk(load)), w.max_in_flight);
                Reason::Latency
            } else if above_mean {
                self.back_off(self.shrunk(load), w.max_in_flight);
                Reason::Latency
            } else if calm && w.max_in_flight >= self.limit && self.limit < self.ceiling {
                self.grow()
            } else {
                Reason::Steady
            }
        } else if app_limited {
            Reason::AppLimited
        } else {
            Reason::Steady
        };
        if let Some((rtt, var)) = rtt {
            let a = self.smoothing;
            // One sample: its distance from the mean estimates the jitter.
            let var = var.or(self.mean_rtt.map(|mean| (rtt - mean) * (rtt - mean)));
            if let Some(var) = var {
                self.jitter_var += a * (var - self.jitter_var);
            }
            self.mean_rtt = Some(self.mean_rtt.map_or(rtt, |mean| mean + a * (rtt - mean)));
            if w.rtt_count >= MIN_RTT_SAMPLES && !w.tainted {
                // The lowest of many noisy means is biased low: take each
                // one standard error up.
                let candidate = rtt + sqrt(self.jitter_var / w.rtt_count as f64);
                self.min_rtt = Some(self.min_rtt.map_or(candidate, |min| min.min(candidate)));
            }
        }
        Decision::new(self.limit, reason)
    }

    /// Lowers the limit to `to` (not under the floor); the next `in_flight`
    /// samples are echoes of the old limit.
    fn back_off(&mut self, to: usize, in_flight: usize) {
        self.limit = to.max(self.floor).min(self.limit);
        self.recovery = in_flight;
    }

    /// The first clean window after a back-off of the queueing guard: if
    /// cutting the limit did not lower the latency, twice in a row, the rise
    /// was the server's, not a queue we built, so the no-queue latency starts
    /// over at the new level.
    fn check_guard(&mut self, rtt: f64) {
        let Some(guarded) = self.guarded.take() else {
            self.guard_misses = 0;
            return;
        };
        if rtt <= guarded * (1.0 - self.tolerance) {
            self.guard_misses = 0;
            return;
        }
        // Once may be a window that straddled the change; twice in a row is
        // the server.
        self.guard_misses += 1;
        if self.guard_misses >= 2 {
            self.min_rtt = Some(rtt);
            self.guard_misses = 0;
        }
    }

    /// The current limit was refused: wait longer before trying it again if
    /// it was a retry of the level refused last.
    fn note_refusal(&mut self) {
        self.probe_wait = if self.probe_at != 0 && self.limit >= self.probe_at {
            (self.probe_wait * 2).clamp(1, MAX_PROBE_WAIT)
        } else {
            // Refused below the level refused before: the refusals do not
            // track a level (random failures), so no long wait.
            1
        };
        self.probe_at = self.limit;
        self.waited = 0;
    }

    /// +1, unless that is a limit that was refused and it is not time to
    /// try it again yet.
    fn grow(&mut self) -> Reason {
        if self.probe_at != 0 && self.limit >= self.probe_at {
            // A refused limit went through this time: growth is free again.
            self.probe_at = 0;
            self.probe_wait = 0;
        }
        if self.probe_at != 0 && self.limit + 1 >= self.probe_at && self.waited < self.probe_wait {
            self.waited += 1;
            return Reason::Steady;
        }
        self.waited = 0;
        self.limit += 1;
        Reason::Grow
    }
}

impl Algorithm for Aimd {
    fn limit(&self) -> usize {
        self.limit
    }

    fn update(&mut self, sample: &Sample) -> Option<Decision> {
        let w = &mut self.window;
        if self.recovery > 0 && sample.outcome != Outcome::Ignore {
            w.tainted = true;
        }
        match sample.outcome {
            Outcome::Ignore => return None,
            Outcome::Overload if self.recovery > 0 => {}
            Outcome::Overload => w.overloaded = true,
            Outcome::Success => {
                let rtt = sample.rtt.as_secs_f64();
                w.rtt_sum += rtt;
                w.rtt_sq_sum += rtt * rtt;
                w.rtt_count += 1;
            }
        }
        self.recovery = self.recovery.saturating_sub(1);
        w.samples += 1;
        w.max_in_flight = w.max_in_flight.max(sample.in_flight);
        // An overload closes the window at once: waiting for the window to
        // fill would let more requests run into the same refusal.
        if !w.overloaded && w.samples < w.max_in_flight.max(1) {
            return None;
        }
        let closed = core::mem::replace(w, Window::EMPTY);
        Some(self.decide(closed))
    }
}
