//! `permits` side by side with the semaphores users would pick instead.
//!
//! `cargo bench --bench peers` runs six workloads for every implementation in
//! one process, round by round: each round runs every implementation once, in
//! an order rotated per round, so machine noise hits all of them alike. It
//! prints one table (median [min-max] and the ratio of the median to
//! `permits`) and writes `target/bench/peers.json`, from which
//! `benches/results/chart.py` draws `benches/results/peers.svg`.
//!
//! `PERMITS_BENCH_QUICK=1` (or `-- --quick`) runs a smaller pass, under a
//! minute, for CI smoke runs; its numbers are not the ones in the README.
//! For profiling: `PERMITS_BENCH_ONLY=1,3t` runs only the rows whose id starts
//! with a given prefix, `PERMITS_BENCH_IMPLS=permits,tokio` only those
//! implementations, and `PERMITS_BENCH_SIZES=1` prints each backlog task's
//! future size and allocations per task, `PERMITS_BENCH_BUDGET_MS=60000`
//! raises the time budget of a run (e.g. under valgrind).
//!
//! Every contended run counts the tasks inside the limit and checks that the
//! limit was never exceeded and that every permit is back at the end; a run
//! that breaks either is reported as `FAIL`, never as a number. A run that
//! exceeds its time budget is stopped and reported as `>budget`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::semaphore::{FairSemaphore, GreedySemaphore, Semaphore as _, SemaphoreReleaser};
use futures::FutureExt as _;

// ---------------------------------------------------------------------------
// A counting global allocator: counts allocation calls per thread.

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only a const-initialised
// thread-local `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// One interface over every implementation.

/// What every workload needs from a semaphore. Methods are thin wrappers over
/// each crate's own API; all of them pay the same wrapper costs.
trait Sem: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// Whether it can wait at all (the bare atomic floor cannot).
    const CAN_WAIT: bool = true;
    type Guard<'a>: Send
    where
        Self: 'a;

    fn new(permits: usize) -> Self;

    /// `try_acquire` of one permit.
    fn try_one(&self) -> Option<Self::Guard<'_>>;

    /// Builds the crate's own acquire future for one permit, polls it once
    /// with `cx` and returns the permit if it resolved (workload 2).
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>>;

    /// `size_of` of the crate's own acquire future for one permit.
    fn acquire_future_size(&self) -> usize;

    /// `acquire().await` of one permit, errors unwrapped.
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_;

    /// Runs `f` holding one permit (`permits` has `run` for this; the others
    /// acquire, await `f`, and drop the permit).
    fn hold<'a, F: Future + Send + 'a>(
        &'a self,
        f: F,
    ) -> impl Future<Output = F::Output> + Send + 'a {
        async move {
            let g = self.acq().await;
            let out = f.await;
            drop(g);
            out
        }
    }

    /// Whether exactly `limit` permits are free: `limit` try-acquires
    /// succeed and one more fails.
    fn all_back(&self, limit: usize) -> bool {
        let mut held = Vec::with_capacity(limit);
        for _ in 0..limit {
            match self.try_one() {
                Some(g) => held.push(g),
                None => return false,
            }
        }
        self.try_one().is_none()
    }
}

fn poll_native<F: Future<Output = O>, O>(f: F, cx: &mut Context<'_>) -> Option<O> {
    let f = pin!(f);
    match f.poll(cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

impl Sem for permits::Semaphore {
    const NAME: &'static str = "permits";
    type Guard<'a> = permits::Permit<'a>;
    fn new(permits: usize) -> Self {
        permits::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire().ok()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(), cx).and_then(Result::ok)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire())
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire().map(Result::unwrap)
    }
    fn hold<'a, F: Future + Send + 'a>(
        &'a self,
        f: F,
    ) -> impl Future<Output = F::Output> + Send + 'a {
        self.run(f).map(Result::unwrap)
    }
}

/// The floor: one CAS to take, one `fetch_add` to give back. Cannot wait.
struct Floor(AtomicUsize);
struct FloorGuard<'a>(&'a AtomicUsize);
impl Drop for FloorGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Release);
    }
}

impl Sem for Floor {
    const NAME: &'static str = "AtomicUsize";
    const CAN_WAIT: bool = false;
    type Guard<'a> = FloorGuard<'a>;
    fn new(permits: usize) -> Self {
        Floor(AtomicUsize::new(permits))
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur == 0 {
                return None;
            }
            match self.0.compare_exchange_weak(cur, cur - 1, Acquire, Relaxed) {
                Ok(_) => return Some(FloorGuard(&self.0)),
                Err(actual) => cur = actual,
            }
        }
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(
            std::future::poll_fn(|_| self.try_one().map_or(Poll::Pending, Poll::Ready)),
            cx,
        )
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&std::future::poll_fn(|_| {
            self.try_one().map_or(Poll::Pending, Poll::Ready)
        }))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        std::future::poll_fn(|_| self.try_one().map_or(Poll::Pending, Poll::Ready))
    }
}

impl Sem for tokio::sync::Semaphore {
    const NAME: &'static str = "tokio";
    type Guard<'a> = tokio::sync::SemaphorePermit<'a>;
    fn new(permits: usize) -> Self {
        tokio::sync::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire().ok()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(), cx).and_then(Result::ok)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire())
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire().map(Result::unwrap)
    }
}

impl Sem for async_lock::Semaphore {
    const NAME: &'static str = "async-lock";
    type Guard<'a> = async_lock::SemaphoreGuard<'a>;
    fn new(permits: usize) -> Self {
        async_lock::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(), cx)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire())
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire()
    }
}

impl Sem for maitake_sync::Semaphore {
    const NAME: &'static str = "maitake-sync";
    type Guard<'a> = maitake_sync::semaphore::Permit<'a>;
    fn new(permits: usize) -> Self {
        maitake_sync::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire(1).ok()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(1), cx).and_then(Result::ok)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire(1))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire(1).map(Result::unwrap)
    }
}

/// futures-intrusive's semaphore, constructed fair.
struct FuturesIntrusive(futures_intrusive::sync::Semaphore);

impl Sem for FuturesIntrusive {
    const NAME: &'static str = "futures-intrusive";
    type Guard<'a> = futures_intrusive::sync::SemaphoreReleaser<'a>;
    fn new(permits: usize) -> Self {
        FuturesIntrusive(futures_intrusive::sync::Semaphore::new(true, permits))
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.0.try_acquire(1)
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.0.acquire(1), cx)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.0.acquire(1))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.0.acquire(1)
    }
}

/// embassy-sync's FIFO semaphore; its queue holds at most `N` waiters.
type EmbassyFair<const N: usize> = FairSemaphore<CriticalSectionRawMutex, N>;
/// Queue capacity for the workloads with at most 64 waiters.
const FAIR_SMALL: usize = 64;
/// Queue capacity for the backlog workload (up to 1,000,000 waiters).
const FAIR_BIG: usize = 1 << 20;

/// `Sem` for an embassy-sync semaphore type: fair and greedy share one API.
macro_rules! embassy_sem {
    ($ty:ty, $name:literal $(, const $n:ident)?) => {
        impl$(<const $n: usize>)? Sem for $ty {
            const NAME: &'static str = $name;
            type Guard<'a> = SemaphoreReleaser<'a, Self>;
            fn new(permits: usize) -> Self {
                <$ty>::new(permits)
            }
            fn try_one(&self) -> Option<Self::Guard<'_>> {
                self.try_acquire(1)
            }
            fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
                poll_native(self.acquire(1), cx).and_then(Result::ok)
            }
            fn acquire_future_size(&self) -> usize {
                size_of_val(&self.acquire(1))
            }
            fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
                self.acquire(1).map(Result::unwrap)
            }
        }
    };
}

embassy_sem!(EmbassyFair<N>, "embassy-fair", const N);

type EmbassyGreedy = GreedySemaphore<CriticalSectionRawMutex>;
embassy_sem!(EmbassyGreedy, "embassy-greedy");

const IMPLS: [&str; 8] = [
    "permits",
    "AtomicUsize",
    "tokio",
    "async-lock",
    "maitake-sync",
    "futures-intrusive",
    "embassy-fair",
    "embassy-greedy",
];

/// A workload, run for one implementation at a time.
trait Workload {
    /// Whether embassy's fair semaphore needs the big queue.
    const BIG_QUEUE: bool = false;
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome;
}

fn dispatch<W: Workload>(w: &W, cfg: &Config, idx: usize) -> Outcome {
    match idx {
        0 => go::<permits::Semaphore, W>(w, cfg, idx),
        1 => go::<Floor, W>(w, cfg, idx),
        2 => go::<tokio::sync::Semaphore, W>(w, cfg, idx),
        3 => go::<async_lock::Semaphore, W>(w, cfg, idx),
        4 => go::<maitake_sync::Semaphore, W>(w, cfg, idx),
        5 => go::<FuturesIntrusive, W>(w, cfg, idx),
        6 if W::BIG_QUEUE => go::<EmbassyFair<FAIR_BIG>, W>(w, cfg, idx),
        6 => go::<EmbassyFair<FAIR_SMALL>, W>(w, cfg, idx),
        7 => go::<EmbassyGreedy, W>(w, cfg, idx),
        _ => unreachable!(),
    }
}

fn go<S: Sem, W: Workload>(w: &W, cfg: &Config, idx: usize) -> Outcome {
    assert_eq!(S::NAME, IMPLS[idx], "IMPLS and dispatch disagree");
    w.run::<S>(cfg)
}

#[derive(Debug, Clone)]
enum Outcome {
    Value(f64),
    Fail(String),
    Timeout,
    NotApplicable,
}

// ---------------------------------------------------------------------------
// Shared helpers for the contended workloads.

/// Counts who is inside the limit and when the run is over.
struct Shared {
    limit: usize,
    inside: AtomicUsize,
    violated: AtomicBool,
    left: AtomicUsize,
    aborted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn new(limit: usize, tasks: usize) -> Arc<Self> {
        Arc::new(Shared {
            limit,
            inside: AtomicUsize::new(0),
            violated: AtomicBool::new(false),
            left: AtomicUsize::new(tasks),
            aborted: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    fn enter(&self) {
        if self.inside.fetch_add(1, Relaxed) + 1 > self.limit {
            self.violated.store(true, Relaxed);
        }
    }

    fn exit(&self) {
        self.inside.fetch_sub(1, Relaxed);
    }

    fn finish_one(&self) {
        if self.left.fetch_sub(1, AcqRel) == 1 {
            self.wake_main();
        }
    }

    fn aborted(&self) -> bool {
        self.aborted.load(Relaxed)
    }

    fn wake_main(&self) {
        let waker = self.waker.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Resolves when every task finished or the run was aborted.
    fn all_done(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        std::future::poll_fn(move |cx| {
            let over = |s: &Shared| s.left.load(Acquire) == 0 || s.aborted();
            if over(&this) {
                return Poll::Ready(());
            }
            *this.waker.lock().unwrap() = Some(cx.waker().clone());
            if over(&this) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// The verdict of a run that took `elapsed` for `ops` operations.
    fn verdict<S: Sem>(&self, sem: &S, elapsed: Duration, ops: usize) -> Outcome {
        if self.aborted() {
            return Outcome::Timeout;
        }
        if self.violated.load(Relaxed) {
            return Outcome::Fail("limit exceeded".into());
        }
        if self.left.load(Acquire) != 0 {
            return Outcome::Fail("tasks unfinished".into());
        }
        if !sem.all_back(self.limit) {
            return Outcome::Fail("permits not back".into());
        }
        Outcome::Value(elapsed.as_nanos() as f64 / ops as f64)
    }
}

/// Sets `aborted` (and wakes the waiting main future) if the run is not over
/// within `budget`. Dropping it stops the watch.
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(shared: &Arc<Shared>, budget: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let shared = shared.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(budget) {
                shared.aborted.store(true, Relaxed);
                shared.wake_main();
            }
        });
        Watchdog {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`: a task
/// switch while holding the permit, the same on every executor.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration.

struct Config {
    quick: bool,
    /// Rounds of the single-thread workloads 1 and 2.
    rounds_fast: usize,
    iters_fast: usize,
    /// Rounds of the backlog workload and its task counts.
    rounds_backlog: usize,
    backlog: usize,
    backlog_big: usize,
    rounds_contended: usize,
    contended_iters: usize,
    rounds_over: usize,
    over_iters: usize,
    budget: Duration,
    /// `PERMITS_BENCH_ONLY=1,3t` runs only the rows whose id starts with one
    /// of the given prefixes (for profiling); empty: every row.
    only: Vec<String>,
    /// `PERMITS_BENCH_IMPLS=permits,tokio` runs only those implementations
    /// (for profiling); empty: all of them.
    impls: Vec<String>,
}

impl Config {
    fn new(quick: bool) -> Self {
        let only = std::env::var("PERMITS_BENCH_ONLY")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let impls = std::env::var("PERMITS_BENCH_IMPLS")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let budget_ms = std::env::var("PERMITS_BENCH_BUDGET_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        let mut cfg = if quick {
            Config {
                quick,
                rounds_fast: 7,
                iters_fast: 200_000,
                rounds_backlog: 2,
                backlog: 10_000,
                backlog_big: 100_000,
                rounds_contended: 3,
                contended_iters: 300,
                rounds_over: 3,
                over_iters: 2_000,
                budget: Duration::from_millis(400),
                only,
                impls,
            }
        } else {
            Config {
                quick,
                rounds_fast: 51,
                iters_fast: 500_000,
                rounds_backlog: 5,
                backlog: 100_000,
                backlog_big: 1_000_000,
                rounds_contended: 5,
                contended_iters: 10_000,
                rounds_over: 9,
                over_iters: 20_000,
                budget: Duration::from_secs(3),
                only,
                impls,
            }
        };
        if let Some(ms) = budget_ms {
            cfg.budget = Duration::from_millis(ms);
        }
        cfg
    }
}

// ---------------------------------------------------------------------------
// Workloads.

/// Workload 1: `try_acquire` + drop, one thread.
struct TryAcquire;

impl Workload for TryAcquire {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        let sem = S::new(1);
        let sem = black_box(&sem);
        let mut failed = 0usize;
        let start = Instant::now();
        for _ in 0..cfg.iters_fast {
            match sem.try_one() {
                Some(g) => drop(black_box(g)),
                None => failed += 1,
            }
        }
        let elapsed = start.elapsed();
        if failed > 0 || !sem.all_back(1) {
            return Outcome::Fail(format!("{failed} try_acquires failed"));
        }
        Outcome::Value(elapsed.as_nanos() as f64 / cfg.iters_fast as f64)
    }
}

/// Workload 2: `acquire().await` + drop, polled once with a no-op waker.
struct AcquireUncontended;

impl Workload for AcquireUncontended {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        let sem = S::new(1);
        let sem = black_box(&sem);
        let mut cx = Context::from_waker(Waker::noop());
        let mut failed = 0usize;
        let start = Instant::now();
        for _ in 0..cfg.iters_fast {
            match sem.poll_acquire_once(&mut cx) {
                Some(g) => drop(black_box(g)),
                None => failed += 1,
            }
        }
        let elapsed = start.elapsed();
        if failed > 0 || !sem.all_back(1) {
            return Outcome::Fail(format!("{failed} acquires pending"));
        }
        Outcome::Value(elapsed.as_nanos() as f64 / cfg.iters_fast as f64)
    }
}

#[derive(Clone, Copy)]
enum Executor {
    TokioCurrentThread,
    LocalPool,
}

/// Workload 3, the backlog: `tasks` tasks through `run` (or acquire + hold) with
/// `limit` permits; each holds its permit across one task switch.
struct Backlog {
    exec: Executor,
    limit: usize,
    big: bool,
}

impl Workload for Backlog {
    const BIG_QUEUE: bool = true;
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        let tasks = if self.big {
            cfg.backlog_big
        } else {
            cfg.backlog
        };
        let sem = Arc::new(S::new(self.limit));
        let shared = Shared::new(self.limit, tasks);
        let task = |sem: Arc<S>, sh: Arc<Shared>| async move {
            sem.hold(async {
                sh.enter();
                YieldOnce(false).await;
                sh.exit();
            })
            .await;
            sh.finish_one();
        };
        if std::env::var_os("PERMITS_BENCH_SIZES").is_some() {
            eprintln!(
                "{}: task future {} B",
                S::NAME,
                size_of_val(&task(sem.clone(), shared.clone()))
            );
        }
        let elapsed = match self.exec {
            Executor::TokioCurrentThread => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let _watch = Watchdog::start(&shared, cfg.budget);
                let start = Instant::now();
                rt.block_on(async {
                    for _ in 0..tasks {
                        tokio::spawn(task(sem.clone(), shared.clone()));
                    }
                    shared.all_done().await;
                });
                let elapsed = start.elapsed();
                drop(_watch);
                drop(rt);
                elapsed
            }
            Executor::LocalPool => {
                use futures::task::LocalSpawnExt as _;
                let mut pool = futures::executor::LocalPool::new();
                let spawner = pool.spawner();
                let _watch = Watchdog::start(&shared, cfg.budget);
                let a0 = allocs();
                let start = Instant::now();
                for _ in 0..tasks {
                    spawner
                        .spawn_local(task(sem.clone(), shared.clone()))
                        .unwrap();
                }
                pool.run_until(shared.all_done());
                let elapsed = start.elapsed();
                if std::env::var_os("PERMITS_BENCH_SIZES").is_some() {
                    eprintln!(
                        "{}: {} allocs per task",
                        S::NAME,
                        (allocs() - a0) as f64 / tasks as f64
                    );
                }
                drop(_watch);
                drop(pool);
                elapsed
            }
        };
        shared.verdict(&*sem, elapsed, tasks)
    }
}

/// Workload 4, contended: tokio multi-thread runtime with 2 workers, 64 tasks, each
/// `iters` times: acquire, yield once holding the permit, release.
struct Contended {
    limit: usize,
}

impl Workload for Contended {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        const TASKS: usize = 64;
        let iters = cfg.contended_iters;
        let sem = Arc::new(S::new(self.limit));
        let shared = Shared::new(self.limit, TASKS);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let watch = Watchdog::start(&shared, cfg.budget);
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..TASKS {
                let (sem, sh) = (sem.clone(), shared.clone());
                tokio::spawn(async move {
                    for _ in 0..iters {
                        if sh.aborted() {
                            break;
                        }
                        let g = sem.acq().await;
                        sh.enter();
                        tokio::task::yield_now().await;
                        sh.exit();
                        drop(g);
                    }
                    sh.finish_one();
                });
            }
            shared.all_done().await;
        });
        let elapsed = start.elapsed();
        drop(watch);
        drop(rt);
        shared.verdict(&*sem, elapsed, TASKS * iters)
    }
}

/// Workload 5, oversubscribed: 8 OS threads, each `block_on`-ing `iters` acquire +
/// release on a semaphore of 2.
struct Oversubscribed;

impl Workload for Oversubscribed {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        const THREADS: usize = 8;
        const LIMIT: usize = 2;
        let iters = cfg.over_iters;
        let sem = Arc::new(S::new(LIMIT));
        let shared = Shared::new(LIMIT, THREADS);
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (sem, sh, barrier) = (sem.clone(), shared.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    futures::executor::block_on(async {
                        for _ in 0..iters {
                            if sh.aborted() {
                                break;
                            }
                            let g = sem.acq().await;
                            sh.enter();
                            sh.exit();
                            drop(g);
                        }
                    });
                    sh.finish_one();
                })
            })
            .collect();
        let watch = Watchdog::start(&shared, cfg.budget);
        // The clock starts before the release: the main thread may well be
        // descheduled right after it wakes the others.
        let start = Instant::now();
        barrier.wait();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = start.elapsed();
        drop(watch);
        shared.verdict(&*sem, elapsed, THREADS * iters)
    }
}

/// Workload 6, memory: sizes and allocations.
#[derive(Clone, Copy)]
enum Memory {
    SemSize,
    FutureSize,
    AllocsUncontended,
    AllocsWaiting,
}

impl Workload for Memory {
    fn run<S: Sem>(&self, _cfg: &Config) -> Outcome {
        const N: u64 = 1000;
        let mut cx = Context::from_waker(Waker::noop());
        match self {
            Memory::SemSize => Outcome::Value(size_of::<S>() as f64),
            Memory::FutureSize => Outcome::Value(S::new(1).acquire_future_size() as f64),
            Memory::AllocsUncontended => {
                let sem = S::new(1);
                let before = allocs();
                for _ in 0..N {
                    let g = poll_native(sem.acq(), &mut cx);
                    if g.is_none() {
                        return Outcome::Fail("uncontended acquire pending".into());
                    }
                }
                Outcome::Value((allocs() - before) as f64 / N as f64)
            }
            Memory::AllocsWaiting => {
                if !S::CAN_WAIT {
                    return Outcome::NotApplicable;
                }
                let sem = S::new(1);
                let mut total = 0;
                for _ in 0..N {
                    let held = sem.try_one().expect("a free permit");
                    let before = allocs();
                    let mut fut = pin!(sem.acq());
                    if fut.as_mut().poll(&mut cx).is_ready() {
                        return Outcome::Fail("acquire did not wait".into());
                    }
                    drop(held);
                    let Poll::Ready(g) = fut.as_mut().poll(&mut cx) else {
                        return Outcome::Fail("released permit not handed over".into());
                    };
                    drop(g);
                    total += allocs() - before;
                }
                if !sem.all_back(1) {
                    return Outcome::Fail("permits not back".into());
                }
                Outcome::Value(total as f64 / N as f64)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Driver.

struct Row {
    id: String,
    label: String,
    unit: &'static str,
    /// Per implementation, the samples (or the reason there are none).
    cells: Vec<Cell2>,
}

#[derive(Default, Clone)]
struct Cell2 {
    samples: Vec<f64>,
    failure: Option<String>,
    timeout: bool,
    na: bool,
}

impl Cell2 {
    fn stats(&self) -> Option<(f64, f64, f64)> {
        if self.failure.is_some() || self.timeout || self.na || self.samples.is_empty() {
            return None;
        }
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some((median, s[0], s[n - 1]))
    }
}

/// Runs `w` for every implementation, `rounds` times, rotating the order.
fn measure<W: Workload>(
    w: &W,
    cfg: &Config,
    rounds: usize,
    id: &str,
    label: String,
    unit: &'static str,
) -> Option<Row> {
    if !cfg.only.is_empty() && !cfg.only.iter().any(|p| id.starts_with(p.as_str())) {
        return None;
    }
    eprint!("  {id:<6} {label:<44}");
    let mut cells = vec![Cell2::default(); IMPLS.len()];
    for round in 0..rounds {
        for k in 0..IMPLS.len() {
            let idx = (k + round) % IMPLS.len();
            let cell = &mut cells[idx];
            if !cfg.impls.is_empty() && !cfg.impls.iter().any(|i| i == IMPLS[idx]) {
                cell.na = true;
            }
            // A failed or timed-out implementation is not run again.
            if cell.failure.is_some() || cell.timeout || cell.na {
                continue;
            }
            match dispatch(w, cfg, idx) {
                Outcome::Value(v) => cell.samples.push(v),
                Outcome::Fail(why) => cell.failure = Some(why),
                Outcome::Timeout => cell.timeout = true,
                Outcome::NotApplicable => cell.na = true,
            }
        }
        eprint!(".");
    }
    eprintln!();
    Some(Row {
        id: id.into(),
        label,
        unit,
        cells,
    })
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 0.01 {
        format!("{v:.4}")
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell_text(row: &Row, idx: usize, budget: Duration) -> String {
    let cell = &row.cells[idx];
    if let Some(why) = &cell.failure {
        return format!("FAIL ({why})");
    }
    if cell.timeout {
        return format!(">{}s budget", budget.as_secs_f64());
    }
    if cell.na {
        return "-".into();
    }
    let Some((med, min, max)) = cell.stats() else {
        return "?".into();
    };
    let base = row.cells[0].stats().map(|s| s.0);
    let ratio = match base {
        Some(b) if b > 0.0 => format!(" x{:.2}", med / b),
        _ => String::new(),
    };
    if min == max {
        format!("{}{ratio}", fmt_num(med))
    } else {
        format!(
            "{} [{}-{}]{ratio}",
            fmt_num(med),
            fmt_num(min),
            fmt_num(max)
        )
    }
}

fn print_table(rows: &[Row], cfg: &Config) {
    let label_w = rows
        .iter()
        .map(|r| r.label.len() + r.id.len() + r.unit.len() + 4)
        .max()
        .unwrap_or(10);
    let texts: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..IMPLS.len())
                .map(|i| cell_text(r, i, cfg.budget))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..IMPLS.len())
        .map(|i| {
            texts
                .iter()
                .map(|t| t[i].len())
                .chain([IMPLS[i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<label_w$}", "workload (unit)");
    for (i, name) in IMPLS.iter().enumerate() {
        let _ = write!(out, " | {:<w$}", name, w = widths[i]);
    }
    out.push('\n');
    out.push_str(&"-".repeat(out.len() - 1));
    out.push('\n');
    for (r, t) in rows.iter().zip(&texts) {
        let label = format!("{} {} ({})", r.id, r.label, r.unit);
        let _ = write!(out, "{label:<label_w$}");
        for (i, s) in t.iter().enumerate() {
            let _ = write!(out, " | {:<w$}", s, w = widths[i]);
        }
        out.push('\n');
    }
    println!("{out}");
    println!("cells: median [min-max] xRATIO (median / permits' median); lower is better.");
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_json(rows: &[Row], cfg: &Config, wall: Duration) -> std::path::PathBuf {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut j = String::new();
    let _ = writeln!(j, "{{");
    let _ = writeln!(j, "  \"quick\": {},", cfg.quick);
    let _ = writeln!(j, "  \"unix_time\": {now},");
    let _ = writeln!(j, "  \"cpu\": {},", json_str(&cpu));
    let _ = writeln!(j, "  \"cores\": {cores},");
    let _ = writeln!(j, "  \"wall_seconds\": {:.1},", wall.as_secs_f64());
    let _ = writeln!(j, "  \"budget_seconds\": {},", cfg.budget.as_secs_f64());
    let names: Vec<String> = IMPLS.iter().map(|n| json_str(n)).collect();
    let _ = writeln!(j, "  \"impls\": [{}],", names.join(", "));
    let _ = writeln!(j, "  \"rows\": [");
    for (ri, r) in rows.iter().enumerate() {
        let _ = writeln!(
            j,
            "    {{\"id\": {}, \"label\": {}, \"unit\": {}, \"cells\": [",
            json_str(&r.id),
            json_str(&r.label),
            json_str(r.unit)
        );
        let base = r.cells[0].stats().map(|s| s.0);
        for (i, c) in r.cells.iter().enumerate() {
            let body = if let Some(why) = &c.failure {
                format!("\"status\": \"fail\", \"reason\": {}", json_str(why))
            } else if c.timeout {
                "\"status\": \"timeout\"".to_string()
            } else if c.na {
                "\"status\": \"n/a\"".to_string()
            } else if let Some((med, min, max)) = c.stats() {
                let ratio = match base {
                    Some(b) if b > 0.0 => format!("{}", med / b),
                    _ => "null".into(),
                };
                let samples: Vec<String> = c.samples.iter().map(|v| format!("{v}")).collect();
                format!(
                    "\"status\": \"ok\", \"median\": {med}, \"min\": {min}, \"max\": {max}, \"ratio\": {ratio}, \"samples\": [{}]",
                    samples.join(", ")
                )
            } else {
                "\"status\": \"missing\"".to_string()
            };
            let comma = if i + 1 < r.cells.len() { "," } else { "" };
            let _ = writeln!(
                j,
                "      {{\"impl\": {}, {body}}}{comma}",
                json_str(IMPLS[i])
            );
        }
        let comma = if ri + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(j, "    ]}}{comma}");
    }
    let _ = writeln!(j, "  ]");
    let _ = writeln!(j, "}}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let name = if cfg.quick {
        "peers-quick.json"
    } else {
        "peers.json"
    };
    let path = dir.join(name);
    std::fs::write(&path, j).expect("write the JSON results");
    path
}

/// Runs every row; returns whether `permits` passed every check.
fn bench_main() -> bool {
    let quick = std::env::var("PERMITS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || std::env::args().any(|a| a == "--quick");
    let cfg = Config::new(quick);
    let started = Instant::now();
    eprintln!(
        "permits vs peers ({} mode): rounds rotate the order of implementations",
        if quick { "quick" } else { "full" }
    );
    let mut rows = Vec::new();
    rows.extend(measure(
        &TryAcquire,
        &cfg,
        cfg.rounds_fast,
        "1",
        "try_acquire + drop".into(),
        "ns/op",
    ));
    rows.extend(measure(
        &AcquireUncontended,
        &cfg,
        cfg.rounds_fast,
        "2",
        "acquire().await + drop, no-op waker".into(),
        "ns/op",
    ));
    for (exec, ename) in [
        (Executor::TokioCurrentThread, "tokio current-thread"),
        (Executor::LocalPool, "LocalPool"),
    ] {
        for limit in [1, 16, 1024] {
            let w = Backlog {
                exec,
                limit,
                big: false,
            };
            let label = format!("{} tasks, limit {limit}, {ename}", cfg.backlog);
            let id = format!(
                "3{}",
                if matches!(exec, Executor::LocalPool) {
                    "l"
                } else {
                    "t"
                }
            );
            rows.extend(measure(&w, &cfg, cfg.rounds_backlog, &id, label, "ns/task"));
        }
        let w = Backlog {
            exec,
            limit: 16,
            big: true,
        };
        let label = format!("{} tasks, limit 16, {ename}", cfg.backlog_big);
        let id = format!(
            "3{}+",
            if matches!(exec, Executor::LocalPool) {
                "l"
            } else {
                "t"
            }
        );
        rows.extend(measure(
            &w,
            &cfg,
            cfg.rounds_backlog.div_ceil(2).max(1),
            &id,
            label,
            "ns/task",
        ));
    }
    for limit in [1, 8] {
        let w = Contended { limit };
        let label = format!("tokio 2 workers, 64x{}, limit {limit}", cfg.contended_iters);
        rows.extend(measure(&w, &cfg, cfg.rounds_contended, "4", label, "ns/op"));
    }
    rows.extend(measure(
        &Oversubscribed,
        &cfg,
        cfg.rounds_over,
        "5",
        format!("8 threads x{} block_on, limit 2", cfg.over_iters),
        "ns/op",
    ));
    for (m, label, unit) in [
        (Memory::SemSize, "size_of Semaphore", "B"),
        (Memory::FutureSize, "size_of acquire future", "B"),
        (
            Memory::AllocsUncontended,
            "allocs per uncontended acquire+release",
            "allocs",
        ),
        (
            Memory::AllocsWaiting,
            "allocs per acquire that waits",
            "allocs",
        ),
    ] {
        rows.extend(measure(&m, &cfg, 1, "6", label.into(), unit));
    }
    let wall = started.elapsed();
    println!();
    print_table(&rows, &cfg);
    let path = write_json(&rows, &cfg, wall);
    println!(
        "{} pass in {:.1}s on {} cores; JSON: {}",
        if quick { "quick" } else { "full" },
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        path.display()
    );
    let permits_failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.cells[0].failure.is_some())
        .map(|r| r.label.as_str())
        .collect();
    if !permits_failed.is_empty() {
        eprintln!("permits FAILED its checks in: {permits_failed:?}");
    }
    permits_failed.is_empty()
}

fn main() {
    // embassy's fair semaphore for a million waiters is a 16 MiB value; give
    // the bench a stack that holds it.
    let ok = std::thread::Builder::new()
        .name("bench".into())
        .stack_size(256 << 20)
        .spawn(bench_main)
        .unwrap()
        .join()
        .unwrap();
    if !ok {
        std::process::exit(1);
    }
}
