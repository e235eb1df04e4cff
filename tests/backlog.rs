//! The backlog streams (`Semaphore::run_all` and friends), point by point as
//! in issue 7: bounded memory, shared limit and fairness, output order,
//! errors, cancellation, close, progress, the allocation-free variant, any
//! executor.
//! The allocation-free variant's tests also run without the `alloc` feature.
#![cfg_attr(not(feature = "alloc"), allow(dead_code, unused_imports))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::stream::{self, Stream, StreamExt};
use std::time::Duration;

use permits::adaptive::{Aimd, Limiter, Outcome};
use permits::{AcquireError, Progress, RunWithFixed, Semaphore, SemaphoreGate};

/// Items in the long runs: Miri interprets some 1000x slower, so fewer there.
const LONG: usize = if cfg!(miri) { 200 } else { 10_000 };

// ---------------------------------------------------------------------------
// Helpers

/// Counts this thread's allocations, so tests running in parallel do not see
/// each other's.
struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards to `System`, only counting on the side.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Returns `Pending` `n` times (waking itself), then `Ready`.
struct YieldN(usize);

impl Future for YieldN {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Counts live work futures (created and not yet dropped) and the most
/// that were ever live at once.
#[derive(Default)]
struct Live {
    now: Cell<usize>,
    max: Cell<usize>,
    created: Cell<usize>,
}

struct LiveGuard<'a>(&'a Live);

impl Live {
    fn enter(&self) -> LiveGuard<'_> {
        self.now.set(self.now.get() + 1);
        self.created.set(self.created.get() + 1);
        self.max.set(self.max.get().max(self.now.get()));
        LiveGuard(self)
    }
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

/// A work item: counted as live from the moment the future is created (not
/// only while it runs), so it measures how many futures exist.
fn work<'a>(live: &'a Live, i: usize, yields: usize) -> impl Future<Output = usize> + 'a {
    let guard = live.enter();
    async move {
        YieldN(yields).await;
        drop(guard);
        i
    }
}

/// An iterator that counts how many items were pulled from it.
struct Counted<'a, I> {
    inner: I,
    pulled: &'a Cell<usize>,
}

impl<I: Iterator> Iterator for Counted<'_, I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.pulled.set(self.pulled.get() + 1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Polls a stream once with a no-op waker.
fn poll_once<S: Stream + ?Sized>(s: Pin<&mut S>) -> Poll<Option<S::Item>> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    s.poll_next(&mut cx)
}

// ---------------------------------------------------------------------------
// The basics

#[cfg(feature = "alloc")]
#[test]
fn runs_every_item_and_gives_every_permit_back() {
    let sem = Semaphore::new(4);
    let live = Live::default();
    let mut out: Vec<usize> = block_on(
        sem.run_all(0..200, |i| work(&live, i, i % 3))
            .map(|r| r.unwrap())
            .collect(),
    );
    out.sort_unstable();
    assert_eq!(out, (0..200).collect::<Vec<_>>());
    assert_eq!(live.max.get(), 4, "four at a time, not fewer");
    assert_eq!(sem.available_permits(), 4);
    assert_eq!(sem.waiters(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn empty_source_ends_at_once() {
    let sem = Semaphore::new(2);
    let out: Vec<Result<u8, _>> = block_on(
        sem.run_all(Vec::<u8>::new(), |x| async move { x })
            .collect(),
    );
    assert!(out.is_empty());
    assert_eq!(sem.available_permits(), 2);
}

// ---------------------------------------------------------------------------
// 1. Bounded memory

#[cfg(feature = "alloc")]
#[test]
fn an_item_is_pulled_only_with_its_permit() {
    let sem = Semaphore::new(3);
    let live = Live::default();
    let pulled = Cell::new(0);
    let source = Counted {
        inner: 0..LONG,
        pulled: &pulled,
    };
    let mut s = pin!(sem.run_all(source, |i| {
        // Called right after the item was pulled: the pulled items not yet
        // finished are exactly the live futures, never more than the permits.
        let w = work(&live, i, 2);
        assert!(live.now.get() <= 3);
        w
    }));
    let mut n = 0;
    while let Some(r) = block_on(s.next()) {
        r.unwrap();
        n += 1;
        // Pulled = yielded + running (completion order parks nothing).
        assert_eq!(pulled.get(), n + live.now.get());
        assert!(live.now.get() <= 3);
        // Every permit is free, held by a running item, or handed to the
        // stream's one queued acquire for its next item.
        let accounted = sem.available_permits() + live.now.get();
        assert!(accounted == 3 || accounted == 2, "{accounted}");
    }
    assert_eq!(n, LONG);
    assert_eq!(live.max.get(), 3);
}

/// Drains `s` (outputs `0..10 * LONG`, checked in order if `ordered`) and
/// returns the allocations made after its first 1,000 outputs (the warm-up:
/// every slot has been made by then).
#[cfg(feature = "alloc")]
async fn allocs_after_warm_up<S>(mut s: Pin<&mut S>, ordered: bool) -> usize
where
    S: Stream<Item = Result<usize, AcquireError>> + ?Sized,
{
    let mut n = 0;
    let mut before = 0;
    while let Some(r) = s.next().await {
        let out = r.unwrap();
        if ordered {
            assert_eq!(out, n);
        }
        n += 1;
        if n == 1_000 {
            before = allocs();
        }
    }
    assert_eq!(n, 10 * LONG);
    allocs() - before
}

#[cfg(feature = "alloc")]
#[test]
fn steady_state_allocates_nothing_per_item() {
    let sem = Semaphore::new(16);
    let live = Live::default();
    block_on(async {
        let s = pin!(sem.run_all(0..10 * LONG, |i| work(&live, i, 3)));
        assert_eq!(
            allocs_after_warm_up(s, false).await,
            0,
            "allocations after warm-up"
        );
    });
    assert_eq!(live.max.get(), 16);
}

#[cfg(feature = "alloc")]
#[test]
fn in_order_steady_state_allocates_nothing_per_item() {
    // The order of the items in flight is remembered in a queue that grows
    // to the window once and is then reused.
    let sem = Semaphore::new(16);
    let live = Live::default();
    block_on(async {
        let s = pin!(sem
            .run_all(0..10 * LONG, |i| work(&live, i, 1 + i % 5))
            .in_order());
        assert_eq!(
            allocs_after_warm_up(s, true).await,
            0,
            "allocations after warm-up"
        );
    });
}

#[cfg(feature = "alloc")]
#[test]
fn slots_are_made_only_up_to_the_concurrency_reached() {
    // A huge semaphore: the stream must not allocate a slot per permit.
    let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    let live = Live::default();
    block_on(async {
        let before = allocs();
        let s = sem.run_all(0..LONG, |i| work(&live, i, 0)).limit(8);
        let n = s.count().await;
        assert_eq!(n, LONG);
        // Trivial items finish on their first poll: one slot is all that is
        // ever needed, and slots are made in chunks of 8 (a box, a waker
        // each, the vector of chunks, the shared wake-up state): not one
        // per permit.
        assert!(allocs() - before <= 12, "{} allocations", allocs() - before);
    });
}

#[cfg(feature = "alloc")]
#[test]
fn endless_source_runs_in_bounded_memory() {
    let sem = Semaphore::new(5);
    let live = Live::default();
    block_on(async {
        let mut s = pin!(sem.run_all(0usize.., |i| work(&live, i, i % 4)));
        for _ in 0..500 {
            s.next().await.unwrap().unwrap();
        }
        // Scaled down under Miri, which runs this some 1000x slower.
        let steady = if cfg!(miri) { 500 } else { 50_000 };
        let before = allocs();
        for _ in 0..steady {
            s.next().await.unwrap().unwrap();
        }
        assert_eq!(allocs() - before, 0);
        assert_eq!(s.progress().waiting, None, "endless: unknown");
        assert_eq!(s.progress().done, 500 + steady);
    });
    assert_eq!(live.max.get(), 5);
    assert_eq!(live.now.get(), 0, "dropping the stream dropped the rest");
    assert_eq!(sem.available_permits(), 5);
}

// ---------------------------------------------------------------------------
// 2. Shared limit and fairness

/// Counts the work running right now across everyone, and its maximum.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    max: Cell<usize>,
}

async fn gauged(g: &Gauge, yields: usize) {
    g.now.set(g.now.get() + 1);
    g.max.set(g.max.get().max(g.now.get()));
    YieldN(yields).await;
    g.now.set(g.now.get() - 1);
}

#[cfg(feature = "alloc")]
#[test]
fn two_streams_and_a_plain_acquire_share_the_limit_fairly() {
    let sem = Semaphore::new(3);
    let gauge = Gauge::default();
    let big_done = Cell::new(0);
    let small_done = Cell::new(0);
    let big_done_when_small_finished = Cell::new(usize::MAX);
    let done_before_interactive = Cell::new(None);

    let big = sem.run_all(0..1_000, |_| gauged(&gauge, 2)).for_each(|r| {
        r.unwrap();
        big_done.set(big_done.get() + 1);
        async {}
    });
    let small = async {
        // Arrives once the big one is well under way.
        while big_done.get() < 100 {
            YieldN(1).await;
        }
        let start = big_done.get();
        sem.run_all(0..10, |_| gauged(&gauge, 2))
            .for_each(|r| {
                r.unwrap();
                small_done.set(small_done.get() + 1);
                async {}
            })
            .await;
        big_done_when_small_finished.set(big_done.get() - start);
    };
    let interactive = async {
        while big_done.get() < 300 {
            YieldN(1).await;
        }
        let start = big_done.get() + small_done.get();
        let permit = sem.acquire().await.unwrap();
        done_before_interactive.set(Some(big_done.get() + small_done.get() - start));
        gauged(&gauge, 1).await;
        drop(permit);
    };
    block_on(async { futures::join!(big, small, interactive) });

    assert_eq!(gauge.max.get(), 3, "never more than the permits");
    assert_eq!(big_done.get(), 1_000);
    assert_eq!(small_done.get(), 10);
    // FIFO turns: the small backlog finished while the big one did about as
    // many items (one each per freed permit), not after all of it.
    let big_meanwhile = big_done_when_small_finished.get();
    assert!(
        big_meanwhile <= 25,
        "big did {big_meanwhile} while small did 10"
    );
    // The interactive request waited for about one round of permits.
    let waited = done_before_interactive.get().unwrap();
    assert!(waited <= 4, "interactive acquire waited for {waited} items");
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(sem.waiters(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn a_limit_caps_one_streams_share() {
    let sem = Semaphore::new(10);
    let live = Live::default();
    let n = block_on(sem.run_all(0..100, |i| work(&live, i, 2)).limit(3).count());
    assert_eq!(n, 100);
    assert_eq!(live.max.get(), 3);
}

// ---------------------------------------------------------------------------
// 3. Output order

#[cfg(feature = "alloc")]
#[test]
fn completion_order_by_default() {
    let sem = Semaphore::new(5);
    let live = Live::default();
    // Item i takes 10 - 2i yields: the last started finishes first.
    let out: Vec<usize> = block_on(
        sem.run_all(0..5, |i| work(&live, i, 10 - 2 * i))
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(out, [4, 3, 2, 1, 0]);
}

#[cfg(feature = "alloc")]
#[test]
fn in_order_yields_in_source_order() {
    let sem = Semaphore::new(5);
    let live = Live::default();
    let out: Vec<usize> = block_on(
        sem.run_all(0..50, |i| work(&live, i, (50 - i) % 7))
            .in_order()
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(out, (0..50).collect::<Vec<_>>());
}

#[cfg(feature = "alloc")]
#[test]
fn in_order_reorder_buffer_is_bounded() {
    let sem = Semaphore::new(4);
    let live = Live::default();
    let pulled = Cell::new(0);
    let source = Counted {
        inner: 0..100,
        pulled: &pulled,
    };
    block_on(async {
        // Item 0 is slow; all others are quick.
        let s = sem
            .run_all(source, |i| work(&live, i, if i == 0 { 200 } else { 0 }))
            .in_order();
        let mut s = pin!(s);
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(first, 0);
        // While 0 was running only 3 more could start: the window is 4.
        assert!(pulled.get() <= 5, "pulled {}", pulled.get());
        let mut expect = 1;
        while let Some(r) = s.next().await {
            assert_eq!(r.unwrap(), expect);
            expect += 1;
            let p = s.progress();
            assert!(p.in_flight + p.buffered <= 4, "{p:?}");
        }
        assert_eq!(expect, 100);
    });
    assert!(live.max.get() <= 4);
    assert_eq!(sem.available_permits(), 4);
}

#[cfg(feature = "alloc")]
#[test]
fn in_order_releases_permits_of_finished_items() {
    // Finished items waiting for a slow one hold no permit: others can use them.
    let sem = Semaphore::new(4);
    let live = Live::default();
    let mut s = pin!(sem
        .run_all(0..4, |i| work(&live, i, if i == 0 { 1_000 } else { 0 }))
        .in_order());
    assert!(poll_once(s.as_mut()).is_pending());
    let p = s.progress();
    assert_eq!((p.in_flight, p.buffered), (1, 3));
    assert_eq!(sem.available_permits(), 3);
}

// ---------------------------------------------------------------------------
// 4. Errors

async fn may_fail(i: usize, yields: usize) -> Result<usize, String> {
    YieldN(yields).await;
    if i % 10 == 7 {
        Err(format!("item {i} failed"))
    } else {
        Ok(i)
    }
}

#[cfg(feature = "alloc")]
#[test]
fn errors_do_not_stop_the_stream_by_default() {
    let sem = Semaphore::new(3);
    let out: Vec<_> = block_on(
        sem.run_all(0..100, |i| may_fail(i, i % 3))
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(out.len(), 100);
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 10);
}

#[cfg(feature = "alloc")]
#[test]
fn stop_on_err_stops_pulling_and_lets_work_in_flight_finish() {
    let sem = Semaphore::new(3);
    let live = Live::default();
    block_on(async {
        let mut s = pin!(sem
            .run_all(0..100, |i| {
                let guard = live.enter();
                async move {
                    // Item 7 fails fast; the rest take a while.
                    let r = may_fail(i, if i == 7 { 0 } else { 3 }).await;
                    drop(guard);
                    r
                }
            })
            .stop_on_err());
        let mut ran = Vec::new();
        let mut in_flight_at_err = None;
        let mut after_err = 0;
        while let Some(r) = s.next().await {
            match r.unwrap() {
                Ok(i) => {
                    ran.push(i);
                    if in_flight_at_err.is_some() {
                        after_err += 1;
                    }
                }
                Err(e) => {
                    assert_eq!(e, "item 7 failed");
                    assert!(in_flight_at_err.is_none(), "one Err only");
                    let p = s.progress();
                    in_flight_at_err = Some(p.in_flight + p.buffered);
                }
            }
        }
        // The work in flight at the Err finished and was yielded; nothing
        // new started.
        let in_flight = in_flight_at_err.expect("the Err was yielded");
        assert!(in_flight > 0, "some work was in flight to finish");
        assert_eq!(after_err, in_flight);
        // The rest never ran, and is still in the source: nothing lost.
        let rest: Vec<usize> = s.as_mut().remaining().collect();
        let first_unrun = rest[0];
        assert_eq!(rest, (first_unrun..100).collect::<Vec<_>>());
        ran.push(7);
        ran.sort_unstable();
        assert_eq!(ran, (0..first_unrun).collect::<Vec<_>>());
        assert_eq!(live.created.get(), first_unrun);
    });
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(sem.waiters(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn stop_on_err_then_drop_abandons_work_in_flight() {
    let sem = Semaphore::new(3);
    let live = Live::default();
    block_on(async {
        let items = [1, 2, 7, 3, 4];
        let mut s = pin!(sem
            .run_all(items, |i| {
                let guard = live.enter();
                async move {
                    let r = may_fail(i, if i == 7 { 0 } else { 1_000 }).await;
                    drop(guard);
                    r
                }
            })
            .stop_on_err());
        // Item 7 starts third and fails at once.
        let first = s.next().await.unwrap().unwrap();
        assert!(first.is_err());
        assert_eq!(live.now.get(), 2, "two still in flight");
        assert_eq!(sem.available_permits(), 1);
    });
    assert_eq!(live.now.get(), 0, "dropped with the stream");
    assert_eq!(live.created.get(), 3, "nothing pulled after the Err");
    assert_eq!(sem.available_permits(), 3);
}

#[cfg(feature = "alloc")]
#[test]
fn stop_on_err_in_order() {
    let sem = Semaphore::new(4);
    let out: Vec<_> = block_on(
        sem.run_all(0..100, |i| may_fail(i, (20 - i % 20) % 5))
            .in_order()
            .stop_on_err()
            .map(Result::unwrap)
            .collect(),
    );
    // Everything before the Err, in order; the Err; then whatever was in
    // flight with it, in order; nothing new.
    let err_at = out.iter().position(|r| r.is_err()).unwrap();
    assert_eq!(err_at, 7);
    let oks: Vec<usize> = out.iter().filter_map(|r| r.clone().ok()).collect();
    assert_eq!(&oks[..7], &[0, 1, 2, 3, 4, 5, 6]);
    assert!(oks.windows(2).all(|w| w[0] < w[1]));
    assert!(out.len() <= 7 + 4, "at most the window after the Err");
}

// ---------------------------------------------------------------------------
// 5. Cancellation and close

#[cfg(feature = "alloc")]
#[test]
fn dropping_midway_drops_work_and_returns_every_permit() {
    let sem = Semaphore::new(4);
    let live = Live::default();
    let pulled = Cell::new(0);
    {
        let source = Counted {
            inner: 0..1_000,
            pulled: &pulled,
        };
        let mut s = pin!(sem.run_all(source, |i| work(&live, i, 1_000)));
        assert!(poll_once(s.as_mut()).is_pending());
        assert_eq!(live.now.get(), 4);
        assert_eq!(sem.available_permits(), 0);
        assert_eq!(pulled.get(), 4);
    }
    assert_eq!(live.now.get(), 0);
    assert_eq!(sem.available_permits(), 4);
    assert_eq!(pulled.get(), 4, "nothing pulled after the drop");
}

#[cfg(feature = "alloc")]
#[test]
fn dropping_while_queued_leaves_the_queue() {
    let sem = Semaphore::new(2);
    let live = Live::default();
    let held = sem.try_acquire_many(2).unwrap();
    {
        let mut s = pin!(sem.run_all(0..10, |i| work(&live, i, 0)));
        assert!(poll_once(s.as_mut()).is_pending());
        assert_eq!(sem.waiters(), 1);
        drop(held);
        // The permits were handed to the stream's queued acquire; it has
        // not been polled since. Dropping it must give them back.
    }
    assert_eq!(sem.waiters(), 0);
    assert_eq!(sem.available_permits(), 2);
    assert_eq!(live.created.get(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn close_ends_with_err_closed_and_tells_what_did_not_run() {
    let sem = Semaphore::new(3);
    let live = Live::default();
    block_on(async {
        let mut s = pin!(sem.run_all(0..100, |i| work(&live, i, 5)));
        let mut ran = Vec::new();
        for _ in 0..20 {
            ran.push(s.next().await.unwrap().unwrap());
        }
        sem.close();
        let mut tail = Vec::new();
        while let Some(r) = s.next().await {
            tail.push(r);
        }
        // The work in flight finished and was yielded, then one Err(Closed).
        assert_eq!(tail.last(), Some(&Err(AcquireError::Closed)));
        assert!(tail[..tail.len() - 1].iter().all(Result::is_ok));
        ran.extend(tail[..tail.len() - 1].iter().map(|r| *r.as_ref().unwrap()));
        assert!(s.next().await.is_none(), "fused after the end");
        // Nothing lost: what ran plus what is left is every item, once.
        let rest: Vec<usize> = s.as_mut().remaining().collect();
        let mut all = ran.clone();
        all.extend(&rest);
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(ran.len() as u64, s.progress().done);
        assert!(ran.len() <= 20 + 3 + 1);
    });
    assert_eq!(live.now.get(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn closed_before_start_runs_nothing() {
    let sem = Semaphore::new(3);
    sem.close();
    let live = Live::default();
    let mut s = pin!(sem.run_all(0..5, |i| work(&live, i, 0)));
    let out: Vec<_> = block_on(s.as_mut().collect::<Vec<_>>());
    assert_eq!(out, [Err(AcquireError::Closed)]);
    assert_eq!(live.created.get(), 0);
    assert_eq!(s.as_mut().remaining().count(), 5);
}

#[cfg(feature = "alloc")]
#[test]
fn close_while_queued_ends_the_stream() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut s = pin!(sem.run_all(0..5, |i| async move { i }));
    assert!(poll_once(s.as_mut()).is_pending());
    sem.close();
    assert_eq!(
        poll_once(s.as_mut()),
        Poll::Ready(Some(Err(AcquireError::Closed)))
    );
    assert_eq!(poll_once(s.as_mut()), Poll::Ready(None));
    drop(held);
}

// ---------------------------------------------------------------------------
// Sources that are streams

#[cfg(feature = "alloc")]
#[test]
fn a_pending_source_holds_no_permit() {
    let sem = Semaphore::new(2);
    let (tx, rx) = futures::channel::mpsc::unbounded::<usize>();
    let mut s = pin!(sem.run_stream(rx, |i| async move { i * 10 }));
    assert!(poll_once(s.as_mut()).is_pending());
    assert_eq!(sem.available_permits(), 2, "idle source, permit given back");
    tx.unbounded_send(4).unwrap();
    assert_eq!(poll_once(s.as_mut()), Poll::Ready(Some(Ok(40))));
    drop(tx);
    assert_eq!(poll_once(s.as_mut()), Poll::Ready(None));
    assert_eq!(sem.available_permits(), 2);
}

#[cfg(feature = "alloc")]
#[test]
fn run_stream_takes_any_stream() {
    let sem = Semaphore::new(3);
    let out: Vec<_> = block_on(
        sem.run_stream(
            stream::iter(0..20).filter(|i| futures::future::ready(i % 2 == 0)),
            |i| async move { i + 1 },
        )
        .in_order()
        .collect(),
    );
    assert_eq!(
        out,
        (0..20).step_by(2).map(|i| Ok(i + 1)).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// 6. Progress

#[cfg(feature = "alloc")]
#[test]
fn progress_counts_done_in_flight_and_waiting() {
    let sem = Semaphore::new(3);
    let live = Live::default();
    let mut s = pin!(sem.run_all(0..10, |i| work(&live, i, 1)));
    let p: Progress = s.progress();
    assert_eq!(
        (p.done, p.in_flight, p.buffered, p.waiting),
        (0, 0, 0, Some(10))
    );
    assert!(poll_once(s.as_mut()).is_pending());
    let p = s.progress();
    assert_eq!(
        (p.done, p.in_flight, p.buffered, p.waiting),
        (0, 3, 0, Some(7))
    );
    assert_eq!(p.to_string(), "done 0, in flight 3, waiting 7");
    let out = block_on(s.as_mut().take(4).count());
    assert_eq!(out, 4);
    let p = s.progress();
    assert_eq!(p.done, 4);
    assert_eq!(
        p.done as usize + p.in_flight + p.buffered + p.waiting.unwrap(),
        10
    );
    let _ = block_on(s.as_mut().count());
    assert_eq!(s.progress().done, 10);
    assert_eq!(s.progress().waiting, Some(0));
}

// ---------------------------------------------------------------------------
// 7. The allocation-free variant

#[test]
fn fixed_variant_never_allocates() {
    static SEM: Semaphore = Semaphore::new(8);
    let live = Live::default();
    block_on(async {
        let before = allocs();
        let s = SEM.run_all_fixed::<4, _, _, _>(0..LONG, |i| work(&live, i, 1 + i % 3));
        let mut s = pin!(s);
        let mut sum = 0;
        while let Some(r) = s.next().await {
            sum += r.unwrap();
        }
        assert_eq!(sum, (0..LONG).sum::<usize>());
        assert_eq!(allocs() - before, 0);
    });
    assert_eq!(live.max.get(), 4, "N caps it below the 8 permits");
    assert_eq!(SEM.available_permits(), 8);
}

#[test]
fn fixed_variant_in_order_stop_and_close() {
    let sem = Semaphore::new(3);
    let out: Vec<_> = block_on(
        sem.run_all_fixed::<3, _, _, _>(0..30, |i| may_fail(i, (30 - i) % 4))
            .in_order()
            .stop_on_err()
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(out.iter().position(Result::is_err), Some(7));
    assert!(out.len() <= 7 + 3);
    assert_eq!(sem.available_permits(), 3);

    let live = Live::default();
    {
        let mut s = pin!(
            sem.run_stream_fixed::<2, _, _, _>(stream::iter(0..10), |i| work(&live, i, 1_000))
        );
        assert!(poll_once(s.as_mut()).is_pending());
        assert_eq!(live.now.get(), 2);
    }
    assert_eq!(live.now.get(), 0);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn run_with_fixed_over_any_gate_never_allocates_and_gives_every_permit_back() {
    // The same backlog through `RunWithFixed` with a semaphore's gate and
    // with an adaptive limiter's (which times nothing itself: each item
    // reports the duration of its own clock).
    static SEM: Semaphore = Semaphore::new(8);
    static LIMITER: Limiter<Aimd> = Limiter::new(Aimd::new().initial_limit(2).max_limit(6));
    let live = Live::default();
    block_on(async {
        let before = allocs();
        let s = RunWithFixed::<_, _, _, _, 4>::new(
            SemaphoreGate::new(&SEM),
            stream::iter(0..LONG),
            |i| work(&live, i, 1 + i % 3),
        );
        let sum = s.fold(0, |sum, r| async move { sum + r.unwrap() }).await;
        assert_eq!(sum, (0..LONG).sum::<usize>());

        let adaptive = LIMITER.run_all_fixed::<8, _, _, _, _, _>(
            0..LONG,
            |i| {
                let w = work(&live, i, 1 + i % 3);
                async move { (w.await, Duration::from_millis(5)) }
            },
            |_: &(usize, Duration)| (Outcome::Success, Duration::from_millis(5)),
        );
        let sum = adaptive
            .fold(0, |sum, r| async move { sum + r.unwrap().0 })
            .await;
        assert_eq!(sum, (0..LONG).sum::<usize>());
        assert_eq!(allocs() - before, 0);
    });
    // The gate's limit caps each: 4 slots under 8 permits, then the
    // limiter's max of 6 under 8 slots (it grew there from 2).
    assert_eq!(live.max.get(), 6);
    assert!(LIMITER.decisions() > 0);
    assert_eq!(LIMITER.limit(), 6);
    assert_eq!(SEM.available_permits(), 8);
    assert_eq!(LIMITER.semaphore().available_permits(), 6);
}

#[test]
fn run_with_fixed_dropped_mid_flight_gives_every_permit_back() {
    let sem = Semaphore::new(5);
    let live = Live::default();
    {
        let mut s = pin!(RunWithFixed::<_, _, _, _, 3>::new(
            SemaphoreGate::new(&sem),
            stream::iter(0..10),
            |i| work(&live, i, 1_000),
        ));
        assert!(poll_once(s.as_mut()).is_pending());
        assert_eq!(live.now.get(), 3);
        assert_eq!(sem.available_permits(), 2);
    }
    assert_eq!(live.now.get(), 0);
    assert_eq!(sem.available_permits(), 5);
}

// ---------------------------------------------------------------------------
// 8. Any executor

#[cfg(feature = "alloc")]
async fn sleepy_backlog(sem: &Semaphore) -> usize {
    sem.run_all(0..50, |i| async move {
        YieldN(i % 3).await;
        i
    })
    .fold(0, |n, r| async move { n + r.unwrap() })
    .await
}

#[cfg(feature = "alloc")]
#[test]
fn runs_under_tokio_smol_async_std_and_block_on() {
    let sem = Semaphore::new(4);
    let expect = (0..50).sum::<usize>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(sleepy_backlog(&sem)), expect);
    // smol's and async-std's reactors call `timerfd_create`, which Miri
    // cannot run; tokio and `block_on` still run there.
    if !cfg!(miri) {
        assert_eq!(smol::block_on(sleepy_backlog(&sem)), expect);
        assert_eq!(async_std::task::block_on(sleepy_backlog(&sem)), expect);
    }
    assert_eq!(block_on(sleepy_backlog(&sem)), expect);
    assert_eq!(sem.available_permits(), 4);
}

#[cfg(feature = "alloc")]
#[test]
fn spawned_on_a_multi_threaded_runtime() {
    static SEM: Semaphore = Semaphore::new(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = rt.block_on(async {
        let task = tokio::spawn(async {
            SEM.run_all(0..200u64, |i| async move {
                tokio::task::yield_now().await;
                i
            })
            .count()
            .await
        });
        task.await.unwrap()
    });
    assert_eq!(n, 200);
    assert_eq!(SEM.available_permits(), 3);
}

#[cfg(feature = "alloc")]
#[test]
fn auto_traits() {
    fn send<T: Send>(_: &T) {}
    fn debug<T: std::fmt::Debug>(_: &T) {}
    let sem = Semaphore::new(1);
    let s = sem.run_all(0..3, |i| async move { i });
    send(&s);
    debug(&s);
    let f = sem.run_all_fixed::<2, _, _, _>(0..3, |i| async move { i });
    send(&f);
    debug(&f);
    assert!(format!("{f:?}").starts_with("RunAllFixed"));
}

/// Futures that hold a borrow of their own locals across an await (as most
/// async fns do, so they point into themselves), in every stream and in
/// order: the engine must never make a shared reference over a running
/// future, which would invalidate those pointers (Miri checks it).
#[test]
fn futures_that_borrow_themselves_across_an_await() {
    async fn borrows_itself(i: usize, yields: usize) -> usize {
        let mut local = [i; 4];
        let r = &mut local;
        for _ in 0..yields {
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut yielded, true) {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
        r[1] += 1;
        local[0] + local[1] - i - 1
    }
    let sem = Semaphore::new(4);
    let fixed: Vec<usize> = block_on(
        sem.run_all_fixed::<4, _, _, _>(0..20, |i| borrows_itself(i, (20 - i) % 5))
            .in_order()
            .map(Result::unwrap)
            .collect(),
    );
    assert_eq!(fixed, (0..20).collect::<Vec<_>>());
    #[cfg(feature = "alloc")]
    {
        let heap: Vec<usize> = block_on(
            sem.run_all(0..20, |i| borrows_itself(i, (20 - i) % 5))
                .in_order()
                .map(Result::unwrap)
                .collect(),
        );
        assert_eq!(heap, (0..20).collect::<Vec<_>>());
    }
}
