//! Model-based random test: long seeded random sequences of operations on one
//! `Semaphore`, driven from one thread with hand-polled futures and counting
//! wakers, checked after every step against a small reference model (a limit,
//! a signed count `limit - out` whose negative part is the debt, and a
//! `VecDeque` of requests in arrival order, those larger than the limit
//! waiting aside in it).
//!
//! After each step the test compares who holds how many permits, whose waker
//! was woken how often, `available_permits()`, `debt()`, `limit()`,
//! `waiters()` and `is_closed()`, checks the accounting identity
//! `available + out == limit + debt`, and that no more than
//! `max(limit, out at the last shrink)` permits are ever out. At the end of
//! each sequence everything is dropped and the limit's permits must be back.
//!
//! A failing sequence prints its seed. Reproduce it alone with
//! `PERMITS_MODEL_SEED=<seed> cargo test --test model -- --nocapture`
//! (the steps are printed then), and keep it as a regression seed in
//! `tests/model_seeds.txt`. `PERMITS_MODEL_SEQUENCES=<n>` runs more (or
//! fewer) sequences; `PERMITS_MODEL_BASE=<seed>` starts from another seed.

use std::collections::VecDeque;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use permits::{Acquire, AcquireError, Permit, Run, Semaphore, TryAcquireError};

/// Sequences per run: at least 10,000 in CI, a few under Miri.
const SEQUENCES: u64 = if cfg!(miri) { 6 } else { 10_000 };
/// Steps per sequence.
const STEPS: usize = if cfg!(miri) { 100 } else { 200 };
/// The first seed; sequence `i` uses `BASE + i`.
const BASE: u64 = 0x5eed_0000;

/// Seeds that once failed; run first, every time.
const REGRESSION_SEEDS: &str = include_str!("model_seeds.txt");

/// splitmix64: tiny, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A waker the test checks: its counter and how many wakes the model expects.
struct Tracked {
    counter: Arc<Counter>,
    expected: usize,
}

impl Tracked {
    fn new() -> Self {
        Self {
            counter: Arc::default(),
            expected: 0,
        }
    }

    fn waker(&self) -> Waker {
        Waker::from(self.counter.clone())
    }
}

/// A request's future under test.
enum Fut<'a> {
    Acquire(Pin<Box<Acquire<'a>>>),
    /// `run_many(n, ready(tag))`: releases at once when it completes.
    Run(Pin<Box<Run<'a, Ready<u64>>>>, u64),
}

/// What the model knows of a request that has not resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    /// In the model's queue.
    Queued,
    /// Handed all it asked for, not yet polled.
    Served,
    /// Turned away by `close`, not yet polled.
    Closed,
}

struct Req<'a> {
    fut: Fut<'a>,
    n: usize,
    /// Permits handed over while it waits at the head.
    assigned: usize,
    state: ReqState,
    /// The waker it registered last: the only one that may be woken.
    waker: Tracked,
    /// Wakers it registered before: never woken again.
    old_wakers: Vec<Tracked>,
    id: usize,
}

/// The reference model and the real objects, side by side.
struct World<'a> {
    sem: &'a Semaphore,
    // The model:
    /// `limit()`.
    limit: usize,
    /// `limit - out`: free permits if positive, debt if negative.
    count: isize,
    /// The most permits that may be out: the limit, or what was out when a
    /// shrink made debt, until the debt is paid.
    cap: usize,
    closed: bool,
    queue: VecDeque<usize>,
    // Real futures with their model state, and real permits (whose count the
    // model knows as the permit's own `num_permits` checked against `held`).
    reqs: Vec<Req<'a>>,
    permits: Vec<(Permit<'a>, usize)>,
    next_id: usize,
    log: Vec<String>,
}

impl<'a> World<'a> {
    fn new(sem: &'a Semaphore, permits: usize) -> Self {
        Self {
            sem,
            limit: permits,
            count: permits as isize,
            cap: permits,
            closed: false,
            queue: VecDeque::new(),
            reqs: Vec::new(),
            permits: Vec::new(),
            next_id: 0,
            log: Vec::new(),
        }
    }

    fn req_index(&self, id: usize) -> usize {
        self.reqs.iter().position(|r| r.id == id).unwrap()
    }

    fn free(&self) -> usize {
        self.count.max(0) as usize
    }

    fn debt(&self) -> usize {
        self.count.min(0).unsigned_abs()
    }

    /// Model: the first queued request that fits the limit (the others wait
    /// aside), as a position in `queue`.
    fn head(&self) -> Option<usize> {
        self.queue
            .iter()
            .position(|&id| self.reqs[self.req_index(id)].n <= self.limit)
    }

    /// Model: hands free permits to the head of the queue, in order.
    fn serve(&mut self) {
        if self.closed {
            return;
        }
        while let Some(pos) = self.head() {
            if self.count <= 0 {
                break;
            }
            let i = self.req_index(self.queue[pos]);
            let free = self.free();
            let req = &mut self.reqs[i];
            let give = free.min(req.n - req.assigned);
            req.assigned += give;
            self.count -= give as isize;
            if req.assigned < req.n {
                break;
            }
            req.state = ReqState::Served;
            req.waker.expected += 1;
            self.queue.remove(pos);
        }
    }

    /// Model: permits come back (paying the debt first, by the arithmetic).
    fn release(&mut self, n: usize) {
        self.count += n as isize;
        self.serve();
    }

    /// Model: the limit changes by `delta` (the count with it); requests that
    /// no longer fit go aside, giving back what they had, as does any request
    /// a returning one now stands ahead of; then free permits are handed out.
    fn change_limit(&mut self, new_limit: usize) {
        let out = self.out();
        self.count += new_limit as isize - self.limit as isize;
        self.limit = new_limit;
        let head = self.head();
        for (pos, &id) in self.queue.iter().enumerate() {
            if Some(pos) != head {
                let i = self.reqs.iter().position(|r| r.id == id).unwrap();
                self.count += std::mem::take(&mut self.reqs[i].assigned) as isize;
            }
        }
        self.cap = self.limit.max(out);
        self.serve();
    }

    /// Model: permits held or handed to requests.
    fn out(&self) -> usize {
        let held: usize = self.permits.iter().map(|(_, n)| n).sum();
        let handed: usize = self
            .reqs
            .iter()
            .map(|r| match r.state {
                ReqState::Queued => r.assigned,
                ReqState::Served => r.n,
                ReqState::Closed => 0,
            })
            .sum();
        held + handed
    }

    fn check(&mut self) {
        assert_eq!(
            self.sem.available_permits(),
            self.free(),
            "available_permits"
        );
        assert_eq!(self.sem.debt(), self.debt(), "debt");
        assert_eq!(self.sem.limit(), self.limit, "limit");
        assert_eq!(self.sem.waiters(), self.queue.len(), "waiters");
        assert_eq!(self.sem.is_closed(), self.closed, "is_closed");
        for req in &self.reqs {
            for w in std::iter::once(&req.waker).chain(&req.old_wakers) {
                assert_eq!(
                    w.counter.0.load(SeqCst),
                    w.expected,
                    "wakes of request {} (needs {}, {:?})",
                    req.id,
                    req.n,
                    req.state
                );
            }
        }
        for (permit, n) in &self.permits {
            assert_eq!(permit.num_permits(), *n, "permit size");
        }
        let out = self.out();
        assert_eq!(
            self.sem.available_permits() + out,
            self.sem.limit() + self.sem.debt(),
            "available + out == limit + debt"
        );
        assert!(
            self.sem.debt() == 0 || self.sem.available_permits() == 0,
            "debt with permits available"
        );
        if out <= self.limit {
            self.cap = self.limit;
        }
        assert!(
            out <= self.cap,
            "{out} out, above max(limit, out at the shrink) = {}",
            self.cap
        );
    }

    /// Polls request `i` with its current waker; applies the result.
    fn poll_req(&mut self, i: usize) {
        let waker = self.reqs[i].waker.waker();
        let mut cx = Context::from_waker(&waker);
        let req = &mut self.reqs[i];
        let got: Poll<Result<usize, AcquireError>> = match &mut req.fut {
            Fut::Acquire(f) => match f.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(permit)) => {
                    let n = permit.num_permits();
                    self.permits.push((permit, n));
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            Fut::Run(f, tag) => match f.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(out)) => {
                    assert_eq!(out, *tag, "run output");
                    Poll::Ready(Ok(req.n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        };
        let is_run = matches!(req.fut, Fut::Run(..));
        let expected = match req.state {
            ReqState::Queued => Poll::Pending,
            ReqState::Served => Poll::Ready(Ok(req.n)),
            ReqState::Closed => Poll::Ready(Err(AcquireError::Closed)),
        };
        assert_eq!(
            got, expected,
            "poll of request {} (needs {})",
            req.id, req.n
        );
        if let Poll::Ready(result) = got {
            // Resolved: an acquire's permit is in `permits` now.
            self.reqs.swap_remove(i);
            if let (Ok(n), true) = (result, is_run) {
                // `run` released its permits as its future completed.
                self.release(n);
            }
        }
    }

    /// Starts an acquire (or a `run`) of `n` and polls it once.
    fn start(&mut self, n: usize, run: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let tag = id as u64;
        let fut = if run {
            Fut::Run(Box::pin(self.sem.run_many(n, ready(tag))), tag)
        } else {
            Fut::Acquire(Box::pin(self.sem.acquire_many(n)))
        };
        self.reqs.push(Req {
            fut,
            n,
            assigned: 0,
            state: ReqState::Queued,
            waker: Tracked::new(),
            old_wakers: Vec::new(),
            id,
        });
        let i = self.reqs.len() - 1;
        // Model of the first poll.
        let expected: Result<Option<usize>, AcquireError> = if n > Semaphore::MAX_PERMITS {
            Err(AcquireError::TooMany)
        } else if self.closed {
            Err(AcquireError::Closed)
        } else if n == 0 || (self.head().is_none() && self.count >= n as isize) {
            self.count -= n as isize;
            Ok(Some(n))
        } else {
            Ok(None)
        };
        match expected {
            Ok(None) => {
                self.queue.push_back(id);
                self.poll_req(i);
                // Permits left free by a smaller request go to the new head.
                self.serve();
            }
            // Taken on the first poll (the model took them from `free`
            // above), without a wake.
            Ok(Some(n)) => self.poll_first_ready(i, Ok(n)),
            Err(e) => self.poll_first_ready(i, Err(e)),
        }
    }

    /// First poll of a request the model says resolves at once.
    fn poll_first_ready(&mut self, i: usize, want: Result<usize, AcquireError>) {
        let waker = self.reqs[i].waker.waker();
        let mut cx = Context::from_waker(&waker);
        let req = self.reqs.swap_remove(i);
        let is_run = matches!(req.fut, Fut::Run(..));
        let got = match req.fut {
            Fut::Acquire(mut f) => match f.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(permit)) => {
                    let n = permit.num_permits();
                    self.permits.push((permit, n));
                    Poll::Ready(Ok(n))
                }
                other => other.map(|r| r.map(|p| p.num_permits())),
            },
            Fut::Run(mut f, tag) => match f.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(out)) => {
                    assert_eq!(out, tag, "run output");
                    Poll::Ready(Ok(req.n))
                }
                other => other.map(|r| r.map(|_| 0)),
            },
        };
        assert_eq!(
            got,
            Poll::Ready(want),
            "first poll of request {} (needs {})",
            req.id,
            req.n
        );
        if let (Ok(n), true) = (want, is_run) {
            // `run` released its permits as its future completed.
            self.release(n);
        }
    }

    /// Drops request `i`'s future.
    fn cancel(&mut self, i: usize) {
        let req = self.reqs.swap_remove(i);
        let give_back = match req.state {
            ReqState::Queued => {
                let pos = self.queue.iter().position(|&id| id == req.id).unwrap();
                self.queue.remove(pos);
                req.assigned
            }
            ReqState::Served => req.n,
            ReqState::Closed => 0,
        };
        let expected_wakes: Vec<usize> = std::iter::once(&req.waker)
            .chain(&req.old_wakers)
            .map(|w| w.expected)
            .collect();
        let counters: Vec<Arc<Counter>> = std::iter::once(&req.waker)
            .chain(&req.old_wakers)
            .map(|w| w.counter.clone())
            .collect();
        drop(req);
        self.release(give_back);
        // Dropping a future never wakes it.
        for (c, e) in counters.iter().zip(expected_wakes) {
            assert_eq!(c.0.load(SeqCst), e, "wakes of a dropped request");
        }
    }

    fn close(&mut self) {
        self.sem.close();
        if self.closed {
            return;
        }
        self.closed = true;
        for id in std::mem::take(&mut self.queue) {
            let i = self.req_index(id);
            let req = &mut self.reqs[i];
            self.count += std::mem::take(&mut req.assigned) as isize;
            req.state = ReqState::Closed;
            req.waker.expected += 1;
        }
    }

    fn try_acquire(&mut self, n: usize) {
        let got = self.sem.try_acquire_many(n);
        let want = if n > Semaphore::MAX_PERMITS {
            Err(TryAcquireError::TooMany)
        } else if self.closed {
            Err(TryAcquireError::Closed)
        } else if n == 0 {
            Ok(0)
        } else if self.head().is_some() || self.count < n as isize {
            Err(TryAcquireError::NoPermits)
        } else {
            self.count -= n as isize;
            Ok(n)
        };
        assert_eq!(
            got.as_ref().map(Permit::num_permits).map_err(|e| *e),
            want,
            "try_acquire_many({n})"
        );
        if let Ok(permit) = got {
            self.permits.push((permit, n));
        }
    }

    /// One random step: draws until an operation applies.
    fn step(&mut self, rng: &mut Rng) {
        while !self.try_step(rng.below(100), rng) {}
    }

    /// Runs operation `choice` if it applies now; returns whether it did.
    fn try_step(&mut self, choice: usize, rng: &mut Rng) -> bool {
        match choice {
            // New acquire (or run) of 0..=3 permits, sometimes more than the
            // limit (it waits aside), rarely more than MAX_PERMITS.
            0..=19 => {
                let n = match rng.below(200) {
                    0 => Semaphore::MAX_PERMITS + 1,
                    1..=20 => 4 + rng.below(4),
                    _ => rng.below(4),
                };
                let run = rng.below(4) == 0;
                self.log.push(format!(
                    "start {} {n}",
                    if run { "run_many" } else { "acquire_many" }
                ));
                self.start(n, run);
            }
            20..=26 => {
                let n = rng.below(4);
                self.log.push(format!("try_acquire_many {n}"));
                self.try_acquire(n);
            }
            // Poll a pending request, with its own or with a new waker.
            27..=40 if !self.reqs.is_empty() => {
                let i = rng.below(self.reqs.len());
                let fresh = rng.below(4) == 0;
                self.log.push(format!(
                    "poll request {} (fresh waker: {fresh})",
                    self.reqs[i].id
                ));
                if fresh {
                    let old = std::mem::replace(&mut self.reqs[i].waker, Tracked::new());
                    self.reqs[i].old_wakers.push(old);
                }
                self.poll_req(i);
            }
            41..=49 if !self.reqs.is_empty() => {
                let i = rng.below(self.reqs.len());
                self.log.push(format!(
                    "drop request {} ({:?})",
                    self.reqs[i].id, self.reqs[i].state
                ));
                self.cancel(i);
            }
            50..=63 if !self.permits.is_empty() => {
                let i = rng.below(self.permits.len());
                let (permit, n) = self.permits.swap_remove(i);
                self.log.push(format!("drop permit of {n}"));
                drop(permit);
                self.release(n);
            }
            64..=67 if !self.permits.is_empty() => {
                let i = rng.below(self.permits.len());
                let k = rng.below(self.permits[i].1 + 2);
                self.log
                    .push(format!("split {k} off a permit of {}", self.permits[i].1));
                let (permit, n) = &mut self.permits[i];
                match permit.split(k) {
                    Some(part) => {
                        assert!(k <= *n, "split more than held");
                        *n -= k;
                        assert_eq!(part.num_permits(), k);
                        self.permits.push((part, k));
                    }
                    None => assert!(k > *n, "split refused"),
                }
            }
            68..=71 if self.permits.len() >= 2 => {
                let i = rng.below(self.permits.len());
                let (other, k) = self.permits.swap_remove(i);
                let j = rng.below(self.permits.len());
                self.log
                    .push(format!("merge {k} into {}", self.permits[j].1));
                self.permits[j].0.merge(other);
                self.permits[j].1 += k;
            }
            // Forgotten permits pay the debt first, then lower the limit.
            72..=74 if !self.permits.is_empty() => {
                let i = rng.below(self.permits.len());
                let (permit, n) = self.permits.swap_remove(i);
                self.log.push(format!("forget permit of {n}"));
                permit.forget();
                let paid = n.min(self.debt());
                // Leaving `out` raises the count (`limit - out`) by `n`; the
                // limit drops by what the debt did not absorb.
                self.count += n as isize;
                self.change_limit(self.limit - (n - paid));
            }
            75..=80 => {
                let n = rng.below(4);
                self.log.push(format!("add_permits {n}"));
                self.sem.add_permits(n);
                self.change_limit(self.limit + n);
            }
            81..=85 => {
                let n = rng.below(4);
                self.log.push(format!("forget_permits {n}"));
                let got = self.sem.forget_permits(n);
                let want = n.min(self.free());
                // Taking free permits lowers the limit and the count alike.
                self.change_limit(self.limit - want);
                assert_eq!(got, want, "forget_permits({n})");
            }
            86..=92 => {
                let n = rng.below(6);
                self.log.push(format!("set_limit {n}"));
                self.sem.set_limit(n);
                self.change_limit(n);
            }
            93..=98 => {
                let n = rng.below(4);
                self.log.push(format!("reduce_permits {n}"));
                let got = self.sem.reduce_permits(n);
                let want = n.min(self.limit);
                self.change_limit(self.limit - want);
                assert_eq!(got, want, "reduce_permits({n})");
            }
            // About one sequence in five closes the semaphore.
            99 if rng.below(6) == 0 => {
                self.log.push("close".into());
                self.close();
            }
            _ => return false,
        }
        true
    }

    /// Drops every request and permit (in random order) and checks that
    /// every permit that exists is free again.
    fn finish(&mut self, rng: &mut Rng) {
        while !self.reqs.is_empty() || !self.permits.is_empty() {
            let pick = rng.below(self.reqs.len() + self.permits.len());
            if pick < self.reqs.len() {
                self.log
                    .push(format!("final: drop request {}", self.reqs[pick].id));
                self.cancel(pick);
            } else {
                let (permit, n) = self.permits.swap_remove(pick - self.reqs.len());
                self.log.push(format!("final: drop permit of {n}"));
                drop(permit);
                self.release(n);
            }
            self.check();
        }
        assert_eq!(self.sem.available_permits(), self.limit, "permits lost");
        assert_eq!(self.sem.debt(), 0, "debt left with nothing out");
        assert_eq!(self.sem.waiters(), 0);
    }
}

/// Runs one sequence; panics on the first mismatch.
fn run_sequence(seed: u64, steps: usize, verbose: bool) {
    let mut rng = Rng(seed);
    let initial = rng.below(5);
    let sem = Semaphore::new(initial);
    let mut world = World::new(&sem, initial);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        world.check();
        for _ in 0..steps {
            world.step(&mut rng);
            if verbose {
                println!(
                    "{:<40} available {}, waiters {}, permits held {:?}",
                    world.log.last().unwrap(),
                    world.free(),
                    world.queue.len(),
                    world.permits.iter().map(|(_, n)| n).collect::<Vec<_>>()
                );
            }
            world.check();
        }
        world.finish(&mut rng);
    }));
    if let Err(panic) = result {
        let log = std::mem::take(&mut world.log);
        // The futures and permits may be in any state now; don't drop them
        // into a semaphore that may be broken.
        std::mem::forget(world);
        let tail = log.len().saturating_sub(12);
        eprintln!(
            "model test failed: seed {seed:#x}, initial permits {initial}, step {} of {steps}",
            log.len()
        );
        eprintln!("last steps:");
        for line in &log[tail..] {
            eprintln!("  {line}");
        }
        eprintln!(
            "reproduce with: PERMITS_MODEL_SEED={seed:#x} cargo test --test model -- --nocapture"
        );
        std::panic::resume_unwind(panic);
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    Some(match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).expect("hex seed"),
        None => v.parse().expect("seed"),
    })
}

#[test]
fn random_sequences_match_the_model() {
    if let Some(seed) = env_u64("PERMITS_MODEL_SEED") {
        run_sequence(seed, STEPS, true);
        return;
    }
    for line in REGRESSION_SEEDS.lines() {
        let line = line.split('#').next().unwrap().trim();
        if !line.is_empty() {
            let seed = u64::from_str_radix(line.trim_start_matches("0x"), 16).unwrap();
            run_sequence(seed, STEPS, false);
        }
    }
    let base = env_u64("PERMITS_MODEL_BASE").unwrap_or(BASE);
    let count = env_u64("PERMITS_MODEL_SEQUENCES").unwrap_or(SEQUENCES);
    for i in 0..count {
        run_sequence(base.wrapping_add(i), STEPS, false);
    }
}
