//! Model-based random test: long seeded random sequences of operations on one
//! `Semaphore`, driven from one thread with hand-polled futures and counting
//! wakers, checked after every step against a small reference model (a plain
//! counter and a `VecDeque` of requests).
//!
//! After each step the test compares who holds how many permits, whose waker
//! was woken how often, `available_permits()`, `waiters()` and `is_closed()`.
//! At the end of each sequence everything is dropped and every permit that was
//! not forgotten must be back.
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
    free: usize,
    closed: bool,
    queue: VecDeque<usize>,
    /// Permits that exist (free, held, handed over); what must be back at the end.
    total: usize,
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
            free: permits,
            closed: false,
            queue: VecDeque::new(),
            total: permits,
            reqs: Vec::new(),
            permits: Vec::new(),
            next_id: 0,
            log: Vec::new(),
        }
    }

    fn req_index(&self, id: usize) -> usize {
        self.reqs.iter().position(|r| r.id == id).unwrap()
    }

    /// Model: hands free permits to the head of the queue, in order.
    fn serve(&mut self) {
        if self.closed {
            return;
        }
        while let Some(&id) = self.queue.front() {
            if self.free == 0 {
                break;
            }
            let i = self.req_index(id);
            let req = &mut self.reqs[i];
            let give = self.free.min(req.n - req.assigned);
            req.assigned += give;
            self.free -= give;
            if req.assigned < req.n {
                break;
            }
            req.state = ReqState::Served;
            req.waker.expected += 1;
            self.queue.pop_front();
        }
    }

    /// Model: permits come back.
    fn release(&mut self, n: usize) {
        self.free += n;
        self.serve();
    }

    fn check(&self) {
        assert_eq!(self.sem.available_permits(), self.free, "available_permits");
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
        assert_eq!(self.free + held + handed, self.total, "model conservation");
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
        } else if n == 0 || (self.queue.is_empty() && self.free >= n) {
            self.free -= n;
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
            self.free += std::mem::take(&mut req.assigned);
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
        } else if !self.queue.is_empty() || self.free < n {
            Err(TryAcquireError::NoPermits)
        } else {
            self.free -= n;
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
            // New acquire (or run) of 0..=3 permits, rarely too many.
            0..=21 => {
                let n = if rng.below(200) == 0 {
                    Semaphore::MAX_PERMITS + 1
                } else {
                    rng.below(4)
                };
                let run = rng.below(4) == 0;
                self.log.push(format!(
                    "start {} {n}",
                    if run { "run_many" } else { "acquire_many" }
                ));
                self.start(n, run);
            }
            22..=29 => {
                let n = rng.below(4);
                self.log.push(format!("try_acquire_many {n}"));
                self.try_acquire(n);
            }
            // Poll a pending request, with its own or with a new waker.
            30..=44 if !self.reqs.is_empty() => {
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
            45..=54 if !self.reqs.is_empty() => {
                let i = rng.below(self.reqs.len());
                self.log.push(format!(
                    "drop request {} ({:?})",
                    self.reqs[i].id, self.reqs[i].state
                ));
                self.cancel(i);
            }
            55..=69 if !self.permits.is_empty() => {
                let i = rng.below(self.permits.len());
                let (permit, n) = self.permits.swap_remove(i);
                self.log.push(format!("drop permit of {n}"));
                drop(permit);
                self.release(n);
            }
            70..=74 if !self.permits.is_empty() => {
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
            75..=79 if self.permits.len() >= 2 => {
                let i = rng.below(self.permits.len());
                let (other, k) = self.permits.swap_remove(i);
                let j = rng.below(self.permits.len());
                self.log
                    .push(format!("merge {k} into {}", self.permits[j].1));
                self.permits[j].0.merge(other);
                self.permits[j].1 += k;
            }
            80..=82 if !self.permits.is_empty() => {
                let i = rng.below(self.permits.len());
                let (permit, n) = self.permits.swap_remove(i);
                self.log.push(format!("forget permit of {n}"));
                permit.forget();
                self.total -= n;
            }
            83..=91 => {
                let n = rng.below(4);
                self.log.push(format!("add_permits {n}"));
                self.sem.add_permits(n);
                self.total += n;
                self.release(n);
            }
            92..=98 => {
                let n = rng.below(4);
                self.log.push(format!("forget_permits {n}"));
                let got = self.sem.forget_permits(n);
                let want = n.min(self.free);
                self.free -= want;
                self.total -= want;
                assert_eq!(got, want, "forget_permits({n})");
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
        assert_eq!(self.sem.available_permits(), self.total, "permits lost");
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
                    world.free,
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
