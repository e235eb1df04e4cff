//! A deterministic discrete-event simulation of `adaptive::Limiter` against
//! a model server: simulated time, no executor, a seeded RNG. Each scenario
//! asserts ranges, not exact values. The real `Limiter` and `Semaphore` are
//! driven through `try_acquire` and `Permit::record`.
//!
//! The server: `capacity` requests at once take `base` (times jitter); past
//! the knee a request started with `n > capacity` in flight takes
//! `base * (n / capacity)^2` (contention: throughput falls past the knee,
//! so the best fixed limit is `capacity`); above `hard_cap` it refuses at
//! once (`Overload`), and the client retries the item later.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use permits::adaptive::{Aimd, Algorithm, Decision, Limiter, Outcome, Permit, Reason, Sample};

/// xorshift64*: small, seeded, good enough for jitter.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const MS: u64 = 1_000_000;

#[derive(Clone, Copy)]
struct Server {
    capacity: usize,
    base_ns: u64,
    /// Each latency is multiplied by a uniform factor in [1 - jitter, 1 + jitter].
    jitter: f64,
    hard_cap: Option<usize>,
    /// Share of requests that fail for reasons unrelated to load; the client
    /// classifies them as `Ignore`. They take up to 3x the usual time.
    fail_rate: f64,
}

impl Server {
    fn knee(capacity: usize) -> Self {
        Self {
            capacity,
            base_ns: 100 * MS,
            jitter: 0.1,
            hard_cap: None,
            fail_rate: 0.0,
        }
    }
}

/// The server from a simulated time on.
#[derive(Clone, Copy)]
struct Change {
    at_ns: u64,
    server: Server,
}

struct Plan {
    server: Server,
    changes: Vec<Change>,
    duration_ns: u64,
    /// Items in the backlog (`u64::MAX`: endless).
    items: u64,
    /// The most requests the client has ready at once (the app limit).
    ready: usize,
    seed: u64,
    /// [floor, ceiling] the limit must stay in, checked after every event.
    bounds: (usize, usize),
    /// How the client classifies the server's random failures.
    failure_outcome: Outcome,
}

impl Plan {
    fn new(server: Server, duration_ns: u64) -> Self {
        Self {
            server,
            changes: Vec::new(),
            duration_ns,
            items: u64::MAX,
            ready: usize::MAX,
            seed: 0x5EED_1234_ABCD_0001,
            bounds: (1, 200),
            failure_outcome: Outcome::Ignore,
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    /// (time, limit) after every event where the limit changed, plus the start.
    trace: Vec<(u64, usize)>,
    /// (decisions so far, limit) after every decision.
    by_window: Vec<(u64, usize, u64)>,
    successes: u64,
    refusals: u64,
    attempts: u64,
    end_ns: u64,
    /// When the backlog was first empty.
    drained_ns: Option<u64>,
}

impl Report {
    /// Time-weighted mean of the limit over [from, to).
    fn mean_limit(&self, from: u64, to: u64) -> f64 {
        let (mut sum, mut last_t, mut last_l) = (0.0, from, self.limit_at(from));
        for &(t, l) in self.trace.iter().filter(|(t, _)| *t > from && *t < to) {
            sum += (t - last_t) as f64 * last_l as f64;
            (last_t, last_l) = (t, l);
        }
        sum += (to - last_t) as f64 * last_l as f64;
        sum / (to - from) as f64
    }

    /// Time-weighted standard deviation of the limit over [from, to).
    fn std_limit(&self, from: u64, to: u64) -> f64 {
        let mean = self.mean_limit(from, to);
        let (mut sum, mut last_t, mut last_l) = (0.0, from, self.limit_at(from));
        for &(t, l) in self.trace.iter().filter(|(t, _)| *t > from && *t < to) {
            sum += (t - last_t) as f64 * (last_l as f64 - mean).powi(2);
            (last_t, last_l) = (t, l);
        }
        sum += (to - last_t) as f64 * (last_l as f64 - mean).powi(2);
        (sum / (to - from) as f64).sqrt()
    }

    /// The share of [from, to) the limit spent at or under `level`.
    fn share_at_most(&self, level: usize, from: u64, to: u64) -> f64 {
        let (mut low, mut last_t, mut last_l) = (0, from, self.limit_at(from));
        for &(t, l) in self.trace.iter().filter(|(t, _)| *t > from && *t < to) {
            if last_l <= level {
                low += t - last_t;
            }
            (last_t, last_l) = (t, l);
        }
        if last_l <= level {
            low += to - last_t;
        }
        low as f64 / (to - from) as f64
    }

    fn limit_at(&self, t: u64) -> usize {
        self.trace
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .unwrap()
            .1
    }

    fn range(&self, from: u64, to: u64) -> (usize, usize) {
        let inside = self
            .trace
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|&(_, l)| l)
            .chain([self.limit_at(from)]);
        let (mut lo, mut hi) = (usize::MAX, 0);
        for l in inside {
            lo = lo.min(l);
            hi = hi.max(l);
        }
        (lo, hi)
    }

    /// Successes per simulated second.
    fn throughput(&self) -> f64 {
        self.successes as f64 / (self.end_ns as f64 / 1e9)
    }

    fn refusal_rate(&self) -> f64 {
        self.refusals as f64 / self.attempts as f64
    }

    /// The number of the first decision at or after `t` ns.
    fn window_at(&self, t: u64) -> u64 {
        self.by_window
            .iter()
            .find(|(_, _, at)| *at >= t)
            .map_or(u64::MAX, |w| w.0)
    }

    /// The limit after decision number `w`.
    fn limit_after_window(&self, w: u64) -> usize {
        self.by_window.iter().find(|(n, _, _)| *n >= w).unwrap().1
    }
}

/// One request in flight in the simulation.
struct InFlight<'a, A> {
    permit: Permit<'a, A>,
    rtt_ns: u64,
    outcome: Outcome,
    /// Counted in the server's in-flight (refusals are not).
    on_server: bool,
}

fn simulate<A: Algorithm>(limiter: &Limiter<A>, plan: &Plan) -> Report {
    let mut rng = Rng(plan.seed);
    let mut server = plan.server;
    let mut changes = plan.changes.iter().peekable();
    let mut on_server = 0usize;
    let mut backlog = plan.items;
    let mut slab: Vec<Option<InFlight<'_, A>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut now = 0u64;
    let mut report = Report {
        trace: vec![(0, limiter.limit())],
        ..Report::default()
    };
    loop {
        // Start what the limit, the backlog and the app allow.
        while backlog > 0 && limiter.in_flight() < plan.ready {
            let Ok(permit) = limiter.try_acquire() else {
                break;
            };
            // The shrink is exact: nothing new starts over the limit.
            assert!(limiter.in_flight() <= limiter.limit());
            backlog -= 1;
            if backlog == 0 && report.drained_ns.is_none() {
                report.drained_ns = Some(now);
            }
            report.attempts += 1;
            let n = on_server + 1;
            let (rtt_ns, outcome, counted) = if server.hard_cap.is_some_and(|cap| n > cap) {
                (server.base_ns / 20, Outcome::Overload, false)
            } else {
                let jitter = 1.0 + server.jitter * (2.0 * rng.unit() - 1.0);
                let load = (n as f64 / server.capacity as f64).max(1.0);
                let mut rtt = server.base_ns as f64 * jitter * load * load;
                let mut outcome = Outcome::Success;
                if rng.unit() < server.fail_rate {
                    rtt *= 3.0 * rng.unit();
                    outcome = plan.failure_outcome;
                }
                (rtt as u64, outcome, true)
            };
            on_server += usize::from(counted);
            let slot = free.pop().unwrap_or_else(|| {
                slab.push(None);
                slab.len() - 1
            });
            slab[slot] = Some(InFlight {
                permit,
                rtt_ns,
                outcome,
                on_server: counted,
            });
            events.push(Reverse((now + rtt_ns, seq, slot)));
            seq += 1;
        }
        let Some(Reverse((t, _, slot))) = events.pop() else {
            break;
        };
        if t >= plan.duration_ns {
            break;
        }
        now = t;
        while let Some(c) = changes.next_if(|c| c.at_ns <= now) {
            server = c.server;
        }
        let done = slab[slot].take().unwrap();
        free.push(slot);
        on_server -= usize::from(done.on_server);
        match done.outcome {
            Outcome::Success => report.successes += 1,
            Outcome::Overload => {
                report.refusals += 1;
                backlog = backlog.saturating_add(1); // retried later
            }
            Outcome::Ignore => {}
        }
        let before = limiter.decisions();
        done.permit
            .record(done.outcome, Duration::from_nanos(done.rtt_ns));
        let limit = limiter.limit();
        assert!(
            (plan.bounds.0..=plan.bounds.1).contains(&limit),
            "limit {limit} outside {:?}",
            plan.bounds
        );
        if limiter.decisions() != before {
            report.by_window.push((limiter.decisions(), limit, now));
        }
        if report.trace.last().unwrap().1 != limit {
            report.trace.push((now, limit));
        }
        // The semaphore follows the limiter exactly.
        assert_eq!(limiter.semaphore().limit(), limit);
    }
    report.end_ns = now.max(1);
    report
}

/// A limit that never moves: the baseline to compare with.
struct Fixed(usize);

impl Algorithm for Fixed {
    fn limit(&self) -> usize {
        self.0
    }
    fn update(&mut self, _: &Sample) -> Option<Decision> {
        None
    }
}

/// Vector's ARC rule as it stands (for comparison only): the same counted
/// windows, sigma from the moving variance *between* windows' mean latency,
/// no queueing guard, no probe wait.
struct VectorRule {
    limit: usize,
    samples: usize,
    max_in_flight: usize,
    overloaded: bool,
    rtt_sum: f64,
    rtt_n: usize,
    past: Option<(f64, f64)>,
}

impl VectorRule {
    fn new() -> Self {
        Self {
            limit: 1,
            samples: 0,
            max_in_flight: 0,
            overloaded: false,
            rtt_sum: 0.0,
            rtt_n: 0,
            past: None,
        }
    }
}

impl Algorithm for VectorRule {
    fn limit(&self) -> usize {
        self.limit
    }

    fn update(&mut self, s: &Sample) -> Option<Decision> {
        match s.outcome {
            Outcome::Ignore => return None,
            Outcome::Overload => self.overloaded = true,
            Outcome::Success => {
                self.rtt_sum += s.rtt.as_secs_f64();
                self.rtt_n += 1;
            }
        }
        self.samples += 1;
        self.max_in_flight = self.max_in_flight.max(s.in_flight);
        if self.samples < self.max_in_flight {
            return None;
        }
        let rtt = (self.rtt_n > 0).then(|| self.rtt_sum / self.rtt_n as f64);
        let mut reason = Reason::Steady;
        if let Some((mean, var)) = self.past {
            let reached = self.max_in_flight >= self.limit;
            if reached && !self.overloaded && rtt.is_some_and(|r| r <= mean) && self.limit < 200 {
                self.limit += 1;
                reason = Reason::Grow;
            } else if self.overloaded || rtt.unwrap_or(0.0) >= mean + 2.5 * var.sqrt() {
                self.limit = ((self.limit as f64 * 0.9) as usize).clamp(1, self.limit.max(2) - 1);
                reason = Reason::Latency;
            }
        }
        if let Some(rtt) = rtt {
            self.past = Some(match self.past {
                None => (rtt, 0.0),
                Some((mean, var)) => {
                    let d = rtt - mean;
                    (mean + 0.4 * d, 0.6 * (var + 0.4 * d * d))
                }
            });
        }
        (
            self.samples,
            self.max_in_flight,
            self.overloaded,
            self.rtt_sum,
            self.rtt_n,
        ) = (0, 0, false, 0.0, 0);
        Some(Decision::new(self.limit, reason))
    }
}

fn best_fixed(plan: &Plan, limits: std::ops::RangeInclusive<usize>) -> (usize, f64) {
    limits
        .map(|l| {
            (
                l,
                simulate(&Limiter::with_algorithm(Fixed(l)), plan).throughput(),
            )
        })
        .fold((0, 0.0), |best, x| if x.1 > best.1 { x } else { best })
}

const SECOND: u64 = 1_000 * MS;

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn steady_fast_server_climbs_to_the_ceiling() {
    let mut plan = Plan::new(Server::knee(10_000), 300 * SECOND);
    plan.bounds = (1, 64);
    let limiter = Limiter::new(Aimd::new().max_limit(64));
    let report = simulate(&limiter, &plan);
    let reached = report.trace.iter().find(|(_, l)| *l == 64);
    println!(
        "reached 64 at {:?}, windows {}",
        reached,
        limiter.decisions()
    );
    let (t, _) = reached.expect("the limit reaches the ceiling");
    // The end: still there (never above, checked on every event).
    assert_eq!(limiter.limit(), 64);
    let (lo, _) = report.range(*t, report.end_ns);
    assert!(lo >= 57, "stays near the ceiling: min {lo}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn knee_mean_limit_and_throughput() {
    let c = 20;
    let plan = Plan::new(Server::knee(c), 600 * SECOND);
    let limiter = Limiter::new(Aimd::new());
    let report = simulate(&limiter, &plan);
    let mean = report.mean_limit(100 * SECOND, report.end_ns);
    let std = report.std_limit(100 * SECOND, report.end_ns);
    let (best_l, best) = best_fixed(&plan, 14..=30);
    let ratio = report.throughput() / best;
    println!("knee C={c}: mean limit {mean:.1} (std {std:.1}), throughput {:.1}/s = {ratio:.3} of best fixed ({best_l}: {best:.1}/s)", report.throughput());
    assert!(
        (0.8 * c as f64..=1.3 * c as f64).contains(&mean),
        "mean limit {mean}"
    );
    assert!(ratio >= 0.9, "throughput ratio {ratio}");

    // Side by side: Vector's rule on the same server.
    let vector = Limiter::with_algorithm(VectorRule::new());
    let theirs = simulate(&vector, &plan);
    let their_mean = theirs.mean_limit(100 * SECOND, theirs.end_ns);
    let their_ratio = theirs.throughput() / best;
    println!(
        "  Vector's rule: mean limit {their_mean:.1}, throughput {their_ratio:.3} of best fixed"
    );
    assert!(
        ratio > their_ratio,
        "no better than Vector's rule: {ratio} vs {their_ratio}"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn refusals_above_capacity_stay_rare() {
    // Postfix's measurement: a server that takes 5 connections at once.
    let c = 5;
    let server = Server {
        hard_cap: Some(c),
        ..Server::knee(1_000)
    };
    let plan = Plan::new(server, 3_600 * SECOND);
    let limiter = Limiter::new(Aimd::new());
    let report = simulate(&limiter, &plan);
    let mean = report.mean_limit(60 * SECOND, report.end_ns);
    println!(
        "hard cap {c}: refusal rate {:.2}% of {} attempts, mean limit {mean:.2}",
        100.0 * report.refusal_rate(),
        report.attempts
    );
    let vector = Limiter::with_algorithm(VectorRule::new());
    let theirs = simulate(&vector, &plan);
    println!(
        "  Vector's rule: refusal rate {:.2}%, mean limit {:.2}",
        100.0 * theirs.refusal_rate(),
        theirs.mean_limit(60 * SECOND, theirs.end_ns)
    );
    assert!(report.refusal_rate() < theirs.refusal_rate());
    assert!(
        report.refusal_rate() < 0.05,
        "refusal rate {}",
        report.refusal_rate()
    );
    assert!(
        (0.8 * c as f64..=1.3 * c as f64).contains(&mean),
        "mean limit {mean}"
    );
}

/// Capacity 40, halved at 200 s, back at 400 s.
fn halving_plan(hard_cap: bool) -> Plan {
    let full = Server {
        hard_cap: hard_cap.then_some(40),
        ..Server::knee(40)
    };
    let half = Server {
        hard_cap: hard_cap.then_some(20),
        ..Server::knee(20)
    };
    let mut plan = Plan::new(full, 700 * SECOND);
    plan.changes = vec![
        Change {
            at_ns: 200 * SECOND,
            server: half,
        },
        Change {
            at_ns: 400 * SECOND,
            server: full,
        },
    ];
    plan
}

fn check_halving(hard_cap: bool) -> Report {
    let plan = halving_plan(hard_cap);
    let limiter = Limiter::new(Aimd::new());
    let report = simulate(&limiter, &plan);
    let before = report.mean_limit(100 * SECOND, 200 * SECOND);
    let w = report.window_at(200 * SECOND);
    let after10 = report.limit_after_window(w + 10);
    let half = report.mean_limit(250 * SECOND, 400 * SECOND);
    let w_back = report.window_at(400 * SECOND);
    let back_at = report.limit_after_window(w_back);
    let climbed = report
        .by_window
        .iter()
        .find(|(n, l, _)| *n > w_back && *l >= 36)
        .map(|(n, _, _)| n - w_back);
    let end = report.mean_limit(550 * SECOND, 700 * SECOND);
    if std::env::var_os("SIM_DEBUG").is_some() {
        for x in report
            .by_window
            .iter()
            .filter(|x| x.0 >= w - 3 && x.0 < w + 25)
        {
            println!("{x:?}");
        }
    }
    println!(
        "halving (hard cap {hard_cap}): mean {before:.1} at C=40; {after10} 10 windows after the drop; \
         mean {half:.1} at C=20; from {back_at} back to 36 in {climbed:?} windows; mean {end:.1} at the end"
    );
    assert!((32.0..=52.0).contains(&before), "before: {before}");
    assert!(after10 < 24, "10 windows after halving: {after10}");
    assert!((16.0..=26.0).contains(&half), "at half capacity: {half}");
    // Linear: +1 per window at most, so 36 - back_at windows at least; and
    // not much slower than that.
    let climbed = climbed.expect("climbs back to 36");
    let steps = (36 - back_at) as u64;
    assert!(
        climbed >= steps && climbed <= 4 * steps + 40,
        "climbed in {climbed} windows"
    );
    let grew_by_more_than_one = report.by_window.windows(2).any(|p| p[1].1 > p[0].1 + 1);
    assert!(!grew_by_more_than_one, "never more than +1 per window");
    assert!((32.0..=52.0).contains(&end), "at the end: {end}");
    report
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn capacity_halves_and_returns_latency_only() {
    let report = check_halving(false);
    write_chart(&report, &halving_plan(false));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn capacity_halves_and_returns_with_refusals() {
    let report = check_halving(true);
    println!("  refusal rate {:.2}%", 100.0 * report.refusal_rate());
    assert!(
        report.refusal_rate() < 0.02,
        "refusal rate {}",
        report.refusal_rate()
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn app_limited_no_growth() {
    // Only 5 requests ready at a time, the limit starts at 20: the samples say
    // nothing about 21.
    let mut plan = Plan::new(Server::knee(10_000), 120 * SECOND);
    plan.ready = 5;
    let limiter = Limiter::new(Aimd::new().initial_limit(20));
    let report = simulate(&limiter, &plan);
    let (lo, hi) = report.range(0, report.end_ns);
    println!(
        "app limited at 5, limit 20: range [{lo}, {hi}], last {:?}",
        limiter.last_decision()
    );
    assert_eq!(hi, 20, "no growth");
    assert!(lo >= 18, "no reason to shrink either: {lo}");
    assert_eq!(
        limiter.last_decision().unwrap().reason,
        permits::adaptive::Reason::AppLimited
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn app_limited_tail_no_growth() {
    // A finite backlog: once it runs dry, fewer items are left than the limit.
    let mut plan = Plan::new(Server::knee(10_000), 600 * SECOND);
    plan.items = 3_000;
    let limiter = Limiter::new(Aimd::new());
    let report = simulate(&limiter, &plan);
    let drained = report.drained_ns.expect("the backlog runs dry");
    let at_drain = report.limit_at(drained);
    let (_, hi) = report.range(drained, report.end_ns + 1);
    println!("tail: limit {at_drain} when the backlog ran dry at {drained} ns, at most {hi} after");
    assert!(at_drain > 10, "it had grown: {at_drain}");
    // The window open when the backlog ran dry had reached the limit: it may
    // still grow by one; after that, nothing.
    assert!(
        hi <= at_drain + 1,
        "no growth in the tail: {hi} > {at_drain} + 1"
    );
}

/// C = 20, latency jitter of +-50 % per request, and a link whose base latency
/// wanders between 80 and 120 ms every 5 s.
fn jittery_plan(fail_rate: f64, seed: u64) -> Plan {
    let server = Server {
        jitter: 0.5,
        fail_rate,
        ..Server::knee(20)
    };
    let mut plan = Plan::new(server, 600 * SECOND);
    plan.seed = seed;
    let mut rng = Rng(seed ^ 0xABCD);
    plan.changes = (1..120)
        .map(|i| Change {
            at_ns: i * 5 * SECOND,
            server: Server {
                base_ns: (80.0 + 40.0 * rng.unit()) as u64 * MS,
                ..server
            },
        })
        .collect();
    plan
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn random_failures_and_jitter_do_not_collapse_the_limit() {
    for seed in [1, 2, 3] {
        let plan = jittery_plan(0.01, seed);
        let limiter = Limiter::new(Aimd::new());
        let report = simulate(&limiter, &plan);
        let (from, to) = (100 * SECOND, report.end_ns);
        let mean = report.mean_limit(from, to);
        let std = report.std_limit(from, to);
        let (lo, hi) = report.range(from, to);
        println!("jitter + 1% ignored failures, seed {seed}: mean {mean:.1}, std {std:.1}, range [{lo}, {hi}]");
        assert!((14.0..=26.0).contains(&mean), "mean {mean}");
        assert!(lo >= 8, "no collapse: {lo}");
        assert!(std <= 4.0, "bounded variance: {std}");
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn random_failures_misread_as_overload_do_not_collapse_the_limit() {
    // Worst case: the caller cannot tell the 1 % failures from back-pressure.
    for seed in [1, 2, 3] {
        let mut plan = jittery_plan(0.01, seed);
        plan.failure_outcome = Outcome::Overload;
        let limiter = Limiter::new(Aimd::new());
        let report = simulate(&limiter, &plan);
        let (from, to) = (100 * SECOND, report.end_ns);
        let mean = report.mean_limit(from, to);
        let std = report.std_limit(from, to);
        let (lo, hi) = report.range(from, to);
        let low = report.share_at_most(4, from, to);
        println!(
            "jitter + 1% failures read as overload, seed {seed}: mean {mean:.1}, std {std:.1}, \
             range [{lo}, {hi}], {:.2}% of the time at 4 or less",
            100.0 * low
        );
        // Loss-driven AIMD under random loss settles lower, and a streak of
        // failures can take it down briefly, but it does not sit there.
        assert!(mean >= 10.0, "no collapse: mean {mean}");
        assert!(low < 0.03, "at 4 or less {low} of the time");
        assert!(std <= 5.0, "bounded variance: {std}");
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic only, no unsafe; minutes under Miri (the smoke test runs)"
)]
fn limit_stays_within_floor_and_ceiling() {
    // A server that refuses all but one at a time, floor 3: never below 3.
    let server = Server {
        hard_cap: Some(1),
        ..Server::knee(1)
    };
    let mut plan = Plan::new(server, 60 * SECOND);
    plan.bounds = (3, 12);
    let limiter = Limiter::new(Aimd::new().min_limit(3).max_limit(12).initial_limit(6));
    let report = simulate(&limiter, &plan);
    assert_eq!(report.range(SECOND, report.end_ns).0, 3);
    // A server that never pushes back: up to 12, never above.
    let plan = Plan {
        bounds: (3, 12),
        ..Plan::new(Server::knee(10_000), 60 * SECOND)
    };
    let limiter = Limiter::new(Aimd::new().min_limit(3).max_limit(12));
    let report = simulate(&limiter, &plan);
    assert_eq!(report.range(0, report.end_ns).1, 12);
    // A harsh back-off (vector#21340: 0.3 at a limit of 2 forgot every permit).
    let server = Server {
        hard_cap: Some(1),
        ..Server::knee(1)
    };
    let plan = Plan::new(server, 30 * SECOND);
    let limiter = Limiter::new(Aimd::new().backoff(0.3).initial_limit(2));
    let report = simulate(&limiter, &plan);
    assert_eq!(report.range(SECOND, report.end_ns).0, 1);
    assert!(report.successes > 100, "work goes on at the floor");
}

/// Draws the limit over time (and the capacity) as an SVG when
/// `PERMITS_WRITE_CHART` is set: `PERMITS_WRITE_CHART=1 cargo test --test
/// adaptive_sim capacity_halves` writes benches/results/adaptive.svg.
fn write_chart(report: &Report, plan: &Plan) {
    if std::env::var_os("PERMITS_WRITE_CHART").is_none() {
        return;
    }
    let (w, h, pad) = (720.0, 300.0, 48.0);
    let t_max = plan.duration_ns as f64;
    let l_max = 50.0;
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let y = |l: f64| h - pad - (h - 2.0 * pad) * l / l_max;
    let mut limit = String::new();
    let mut last = report.trace[0].1;
    for &(t, l) in &report.trace {
        limit += &format!(
            "{:.1},{:.1} {:.1},{:.1} ",
            x(t as f64),
            y(last as f64),
            x(t as f64),
            y(l as f64)
        );
        last = l;
    }
    limit += &format!("{:.1},{:.1}", x(t_max), y(last as f64));
    let mut capacity = format!("{:.1},{:.1} ", x(0.0), y(plan.server.capacity as f64));
    let mut c = plan.server.capacity;
    for ch in &plan.changes {
        let t = ch.at_ns as f64;
        capacity += &format!(
            "{:.1},{:.1} {:.1},{:.1} ",
            x(t),
            y(c as f64),
            x(t),
            y(ch.server.capacity as f64)
        );
        c = ch.server.capacity;
    }
    capacity += &format!("{:.1},{:.1}", x(t_max), y(c as f64));
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="20" font-size="14">Adaptive limit (Aimd defaults) vs. server capacity: halved at 200 s, back at 400 s (simulated)</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>
"##,
        b = h - pad,
        r = w - pad
    );
    for l in (0..=50).step_by(10) {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{l}</text>\n",
            pad - 6.0,
            y(l as f64) + 4.0
        );
    }
    for s in (0..=700).step_by(100) {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{s} s</text>\n",
            x(s as f64 * 1e9),
            h - pad + 18.0
        );
    }
    svg += &format!(
        "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"6 4\" stroke-width=\"2\" points=\"{capacity}\"/>\n\
         <polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{limit}\"/>\n\
         <text x=\"{:.1}\" y=\"40\" fill=\"#1f77b4\">limit</text>\n\
         <text x=\"{:.1}\" y=\"40\" fill=\"#777\">server capacity (the knee; latency grows past it)</text>\n</svg>\n",
        x(10e9),
        x(60e9),
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/adaptive.svg");
    std::fs::write(path, svg).unwrap();
}

/// Under Miri, a short run through the same code (the scenarios above are
/// plain arithmetic, no unsafe code, and take minutes there).
#[test]
fn smoke() {
    let server = Server {
        hard_cap: Some(4),
        ..Server::knee(3)
    };
    let plan = Plan::new(server, 3 * SECOND);
    let limiter = Limiter::new(Aimd::new());
    let report = simulate(&limiter, &plan);
    assert!(report.successes > 50);
    assert!(limiter.decisions() > 10);
    let (lo, hi) = report.range(0, report.end_ns);
    assert!(lo >= 1 && hi <= 6, "[{lo}, {hi}]");
}

/// Netflix's Gradient2 as published (per sample: `limit * gradient +
/// queue`, gradient from a long moving RTT over the sample's, smoothed),
/// with the fix its PR #134 proposes for drops (gradient 0.5), for
/// comparison only.
struct Gradient2 {
    limit: f64,
    long_rtt: Option<f64>,
    samples: u64,
}

impl Gradient2 {
    fn new() -> Self {
        Self {
            limit: 1.0,
            long_rtt: None,
            samples: 0,
        }
    }
}

impl Algorithm for Gradient2 {
    fn limit(&self) -> usize {
        self.limit as usize
    }

    fn update(&mut self, s: &Sample) -> Option<Decision> {
        if s.outcome == Outcome::Ignore {
            return None;
        }
        let rtt = s.rtt.as_secs_f64().max(1e-9);
        self.samples += 1;
        // Long window 600 samples, warming up as a plain mean.
        let n = self.samples.min(600) as f64;
        let long = self.long_rtt.map_or(rtt, |l| l + (rtt - l) / n);
        self.long_rtt = Some(if long / rtt > 2.0 { long * 0.95 } else { long });
        let long = self.long_rtt.unwrap();
        if (s.in_flight as f64) < self.limit / 2.0 {
            return Some(Decision::new(self.limit(), Reason::AppLimited));
        }
        let gradient = if s.outcome == Outcome::Overload {
            0.5
        } else {
            (1.5 * long / rtt).clamp(0.5, 1.0)
        };
        let new = self.limit * gradient + 4.0;
        self.limit = (self.limit * 0.8 + new * 0.2).clamp(1.0, 200.0);
        Some(Decision::new(self.limit(), Reason::Steady))
    }
}

/// Netflix's Vegas as published (per sample: the queue estimated from the
/// lowest RTT seen, +/- log10 steps), for comparison only.
struct Vegas {
    limit: f64,
    no_load: Option<f64>,
}

impl Algorithm for Vegas {
    fn limit(&self) -> usize {
        self.limit as usize
    }

    fn update(&mut self, s: &Sample) -> Option<Decision> {
        if s.outcome == Outcome::Ignore {
            return None;
        }
        let rtt = s.rtt.as_secs_f64().max(1e-9);
        let log = self.limit.log10().max(1.0);
        let new = if s.outcome == Outcome::Overload {
            self.limit - log
        } else {
            let no_load = self.no_load.map_or(rtt, |n| n.min(rtt));
            self.no_load = Some(no_load);
            if (s.in_flight as f64) * 2.0 < self.limit {
                return Some(Decision::new(self.limit(), Reason::AppLimited));
            }
            let queue = (self.limit * (1.0 - no_load / rtt)).ceil();
            if queue <= log {
                self.limit + 6.0 * log
            } else if queue < 3.0 * log {
                self.limit + log
            } else if queue > 6.0 * log {
                self.limit - log
            } else {
                self.limit
            }
        };
        self.limit = new.clamp(1.0, 200.0);
        Some(Decision::new(self.limit(), Reason::Steady))
    }
}

/// Gradient2 and Vegas (Netflix) on the scenarios above: printed side by
/// side, and Aimd must not lose the scenario the issue cares about most
/// (if one did, it would earn a place in the library).
#[test]
#[cfg_attr(miri, ignore = "arithmetic only; minutes under Miri")]
fn netflix_algorithms_side_by_side() {
    let knee = Plan::new(Server::knee(20), 600 * SECOND);
    let (_, best) = best_fixed(&knee, 14..=30);
    let refusing = Plan::new(
        Server {
            hard_cap: Some(5),
            ..Server::knee(1_000)
        },
        600 * SECOND,
    );
    let jittery = jittery_plan(0.01, 1);
    let halving = halving_plan(false);
    let run = |name: &str, make: &dyn Fn() -> Box<dyn FnOnce(&Plan) -> Report>| {
        let k = make()(&knee);
        let r = make()(&refusing);
        let j = make()(&jittery);
        let h = make()(&halving);
        let w = h.window_at(200 * SECOND);
        println!(
            "{name:>9}: knee mean {:5.1} at {:.3} of best | refuses>5: {:6.2}% | jitter mean {:5.1} std {:4.1} | halving: {} after 10 windows, mean {:5.1} at C=20",
            k.mean_limit(100 * SECOND, k.end_ns),
            k.throughput() / best,
            100.0 * r.refusal_rate(),
            j.mean_limit(100 * SECOND, j.end_ns),
            j.std_limit(100 * SECOND, j.end_ns),
            h.limit_after_window(w + 10),
            h.mean_limit(250 * SECOND, 400 * SECOND),
        );
        (k.throughput() / best, r.refusal_rate())
    };
    fn with<A: Algorithm + 'static>(make: fn() -> A) -> Box<dyn FnOnce(&Plan) -> Report> {
        Box::new(move |plan| simulate(&Limiter::with_algorithm(make()), plan))
    }
    let ours = run("Aimd", &|| with(Aimd::new));
    let gradient = run("Gradient2", &|| with(Gradient2::new));
    let vegas = run("Vegas", &|| {
        with(|| Vegas {
            limit: 1.0,
            no_load: None,
        })
    });
    assert!(
        ours.0 >= gradient.0.max(vegas.0) - 0.02,
        "knee throughput lost"
    );
    assert!(ours.1 <= gradient.1.min(vegas.1), "more refusals");
}
