//! Memory follows the keys in use: after a backlog over 100,000 distinct
//! keys, the bytes allocated are back to what the empty map had. Its own test
//! binary, so the counting allocator sees nothing but this one test.
#![cfg(feature = "alloc")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

use std::future::Future;

use futures::StreamExt;
use permits::KeyedSemaphore;

/// Counts the bytes allocated and not yet freed by the thread that runs the
/// test: the test harness's own threads allocate at times of their choosing
/// (output capture, progress), which made the count flaky under load.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // `const`: reading it never allocates, so the allocator may use it.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards to `System`, only counting sizes on the way.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            LIVE.fetch_add(layout.size() as isize, SeqCst);
        }
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as isize, SeqCst);
        }
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn backlog(keyed: &KeyedSemaphore<String>, keys: std::ops::Range<u32>) {
    futures::stream::iter(keys)
        .for_each_concurrent(64, |k| async move {
            let key = format!("domain-{k}.example");
            let run = keyed.run(key, async {
                // Pending once, so many keys are live at the same time.
                let mut once = false;
                std::future::poll_fn(|cx| {
                    if once {
                        std::task::Poll::Ready(())
                    } else {
                        once = true;
                        cx.waker().wake_by_ref();
                        std::task::Poll::Pending
                    }
                })
                .await
            });
            run.await.unwrap();
        })
        .await;
}

#[test]
fn memory_returns_to_the_empty_maps_after_100_000_keys() {
    COUNTED.with(|c| c.set(true));
    let keyed = KeyedSemaphore::with_global_limit(2, 32);
    // Warm up whatever the executor allocates once per thread.
    futures::executor::block_on(backlog(&keyed, 0..10));
    let empty = LIVE.load(SeqCst);
    let n = if cfg!(miri) { 300 } else { 100_000 };
    let mut peak_keys = 0;
    futures::executor::block_on(async {
        let watch = async {
            backlog(&keyed, 0..n).await;
        };
        let mut watch = std::pin::pin!(watch);
        std::future::poll_fn(|cx| {
            let poll = watch.as_mut().poll(cx);
            peak_keys = peak_keys.max(keyed.live_keys());
            poll
        })
        .await;
    });
    assert!(peak_keys > 1, "keys were live at once during the backlog");
    assert_eq!(keyed.live_keys(), 0);
    assert_eq!(
        LIVE.load(SeqCst),
        empty,
        "bytes allocated after the backlog vs. the empty map's"
    );
}
