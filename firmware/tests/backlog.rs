//! The backlog stream without an allocator (issue 7, point 7): 50 items
//! through `SEM.run_all_fixed::<4, ..>` and `SEM.run_stream_fixed::<8, ..>`
//! under the hand-written executor (`block_on`, a lost wake-up panics).
//! Checked on target: every item's result arrives once, the most in flight
//! equals the limit, `progress()` adds up after every item, and every permit
//! is back at the end. Then an adaptive backlog through a `static Limiter`
//! (`run_all_fixed` over its gate): it grows while the backlog drains and
//! never exceeds its max.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::future::poll_fn;
use core::pin::{pin, Pin};

use core::time::Duration;

use futures_core::Stream;
use permits::adaptive::{Aimd, Limiter, Outcome};
use permits::{IterStream, RunAllFixed, Semaphore};
use permits_firmware::{banner, block_on, println, yield_times, Checks, Idle};

const LIMIT: usize = 4;
const ITEMS: u32 = 50;
static SEM: Semaphore = Semaphore::new(LIMIT);
/// Starts at 2, may grow to 6: under `N` = 8 slots, the limiter bounds it.
static ADAPTIVE: Limiter<Aimd> = Limiter::new(Aimd::new().initial_limit(2).max_limit(6));

/// Items inside `work` now, the most at once, and how many have started.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
    started: Cell<u32>,
}

/// One item: takes 1 to 3 turns of the executor, returns `3n + 1`.
async fn work(g: &Gauge, n: u32) -> u32 {
    g.started.set(g.started.get() + 1);
    g.now.set(g.now.get() + 1);
    g.max.set(g.max.get().max(g.now.get()));
    yield_times(n % 3 + 1).await;
    g.now.set(g.now.get() - 1);
    3 * n + 1
}

/// `StreamExt::next` without futures-util.
async fn next<S: Stream + ?Sized>(mut s: Pin<&mut S>) -> Option<S::Item> {
    poll_fn(|cx| s.as_mut().poll_next(cx)).await
}

fn held() -> usize {
    LIMIT - SEM.available_permits()
}

/// Completion order, `N` = the semaphore's 4 permits.
async fn completion_order(checks: &mut Checks) {
    let g = Gauge::default();
    let mut s = pin!(SEM.run_all_fixed::<LIMIT, _, _, _>(0..ITEMS, |n| work(&g, n)));
    let mut seen = [false; ITEMS as usize];
    let mut got = 0u32;
    while let Some(out) = next(s.as_mut()).await {
        let out = out.expect("the semaphore is never closed");
        let n = (out - 1) / 3;
        assert!(out % 3 == 1 && n < ITEMS, "bad output {}", out);
        assert!(!seen[n as usize], "item {} yielded twice", n);
        seen[n as usize] = true;
        got += 1;

        let p = s.progress();
        assert_eq!(p.done, u64::from(got), "progress: done");
        assert_eq!(p.in_flight, g.now.get(), "progress: in flight");
        assert_eq!(
            p.buffered, 0,
            "progress: nothing parked in completion order"
        );
        assert_eq!(g.started.get(), got + p.in_flight as u32);
        assert_eq!(p.waiting, Some((ITEMS - g.started.get()) as usize));
        assert!(p.in_flight <= LIMIT);
        // Each running item holds its permit; the next item's acquire may
        // have been handed one more that it has not used yet.
        assert!(
            (p.in_flight..=p.in_flight + 1).contains(&held()),
            "{} permits held with {} in flight",
            held(),
            p.in_flight
        );
        if got % 10 == 0 {
            println!("run_all_fixed: {} (permits held {})", p, held());
        }
    }
    assert!(seen.iter().all(|&s| s), "every item yielded");
    assert_eq!(got, ITEMS);
    checks.ok("run_all_fixed: all 50 results arrived, each once");
    assert_eq!(g.max.get(), LIMIT, "max in flight == limit");
    checks.ok("run_all_fixed: max in flight == limit (4)");
    let p = s.progress();
    assert_eq!(
        (p.done, p.in_flight, p.buffered, p.waiting),
        (u64::from(ITEMS), 0, 0, Some(0))
    );
    assert!(next(s.as_mut()).await.is_none(), "stays ended");
    checks.ok("run_all_fixed: progress() counted every step, ends at done 50, waiting 0");
    assert_eq!((SEM.available_permits(), SEM.waiters()), (LIMIT, 0));
    checks.ok("run_all_fixed: all permits back, no waiters");
}

/// In order, from a `Stream`, with `N` = 8 slots but one of the 4 permits
/// held elsewhere: the semaphore, not `N`, bounds the stream.
async fn in_order_sharing(checks: &mut Checks) {
    let g = Gauge::default();
    let other = SEM.try_acquire().expect("a free permit");
    let items = IterStream::new(0..ITEMS);
    let mut s = pin!(SEM
        .run_stream_fixed::<8, _, _, _>(items, |n| work(&g, n))
        .in_order());
    let mut got = 0u32;
    while let Some(out) = next(s.as_mut()).await {
        assert_eq!(out, Ok(3 * got + 1), "outputs in source order");
        got += 1;
        let p = s.progress();
        assert_eq!(p.done, u64::from(got));
        assert_eq!(p.in_flight, g.now.get());
        assert_eq!(g.started.get(), got + (p.in_flight + p.buffered) as u32);
        assert!(p.in_flight + p.buffered <= 8, "the reorder window is N");
        if got % 10 == 0 {
            println!("run_stream_fixed in order: {}", p);
        }
    }
    assert_eq!(got, ITEMS);
    checks.ok("run_stream_fixed in order: all 50 results, in order");
    assert_eq!(g.max.get(), LIMIT - 1, "max in flight == free permits");
    checks.ok("run_stream_fixed: max in flight == 3 with 1 of 4 permits held elsewhere");
    assert_eq!(SEM.available_permits(), LIMIT - 1);
    drop(other);
    assert_eq!((SEM.available_permits(), SEM.waiters()), (LIMIT, 0));
    checks.ok("run_stream_fixed: all permits back, no waiters");
}

/// Dropping the stream midway gives back every permit.
async fn drop_midway(checks: &mut Checks) {
    let g = Gauge::default();
    {
        let mut s = pin!(SEM.run_all_fixed::<LIMIT, _, _, _>(0..ITEMS, |n| work(&g, n)));
        for _ in 0..5 {
            next(s.as_mut()).await.unwrap().unwrap();
        }
        assert!(held() > 0, "work in flight holds permits");
        assert_eq!(s.progress().done, 5);
    }
    assert_eq!((SEM.available_permits(), SEM.waiters()), (LIMIT, 0));
    checks.ok("dropped after 5 of 50: all permits back");
}

/// An adaptive backlog without an allocator: `ADAPTIVE.run_all_fixed`,
/// each item timed by its own clock (here: 5 ms per turn it took).
async fn adaptive_backlog(checks: &mut Checks) {
    let g = Gauge::default();
    let timed = |n: u32| {
        let g = &g;
        async move {
            let out = work(g, n).await;
            (out, Duration::from_millis(u64::from(5 * (n % 3 + 1))))
        }
    };
    let mut s = pin!(
        ADAPTIVE.run_all_fixed::<8, _, _, _, _, _>(0..ITEMS, timed, |(_, took)| {
            (Outcome::Success, *took)
        })
    );
    let mut sum = 0u32;
    while let Some(out) = next(s.as_mut()).await {
        let (out, _) = out.expect("the limiter's semaphore is never closed");
        sum += out;
        assert!(
            g.now.get() <= ADAPTIVE.limit(),
            "in flight within the limit"
        );
    }
    assert_eq!(sum, (0..ITEMS).map(|n| 3 * n + 1).sum::<u32>());
    checks.ok("Limiter::run_all_fixed: all 50 results arrived");
    assert!(ADAPTIVE.decisions() > 0);
    assert!(
        g.max.get() > 2,
        "the limit grew from 2 while the backlog drained"
    );
    assert!(g.max.get() <= 6, "never above the limiter's max");
    println!(
        "Limiter::run_all_fixed: limit {} after {} decisions, max in flight {}",
        ADAPTIVE.limit(),
        ADAPTIVE.decisions(),
        g.max.get()
    );
    checks.ok("Limiter::run_all_fixed: the limit grew, never above its max");
    let sem = ADAPTIVE.semaphore();
    assert_eq!((sem.available_permits(), sem.waiters()), (sem.limit(), 0));
    checks.ok("Limiter::run_all_fixed: all permits back, no waiters");
}

#[cortex_m_rt::entry]
fn main() -> ! {
    banner("backlog");
    type Fixed4 = RunAllFixed<
        'static,
        IterStream<core::ops::Range<u32>>,
        fn(u32) -> core::future::Ready<u32>,
        core::future::Ready<u32>,
        4,
    >;
    println!(
        "size_of: RunAllFixed<4 slots of Ready<u32>> = {} B",
        core::mem::size_of::<Fixed4>()
    );
    let mut checks = Checks::new("backlog");
    block_on(completion_order(&mut checks), Idle::Panic);
    block_on(in_order_sharing(&mut checks), Idle::Panic);
    block_on(drop_midway(&mut checks), Idle::Panic);
    block_on(adaptive_backlog(&mut checks), Idle::Panic);
    checks.finish()
}
