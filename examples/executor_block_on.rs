//! `permits` under a hand-written `block_on` loop, the kind of executor a
//! bare-metal program or a test harness writes for itself: a waker that
//! unparks the thread, and a loop that parks until woken. It uses no
//! allocation in `permits` (`run_all_fixed` keeps its slots inline), so it
//! runs with `--no-default-features` too.
//!
//! ```text
//! cargo run --example executor_block_on
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use futures::future::{join3, poll_fn};
use futures::StreamExt;
use permits::{AcquireError, Semaphore};

/// Polls `fut` on this thread, parking between polls until its waker runs.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake-up that came before this call makes it return at once:
        // `unpark` leaves a token behind, so none is lost.
        thread::park();
    }
}

/// Wakes its task and returns `Pending` once: a cooperative yield.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

// `const fn new`: a `static` semaphore, as firmware would have it.
static SEM: Semaphore = Semaphore::new(2);

fn main() -> Result<(), AcquireError> {
    block_on(async {
        // 1. `run`: three sends share two permits; the third waits its turn.
        let send = |id: u32| async move {
            yield_now().await;
            id
        };
        let (a, b, c) = join3(SEM.run(send(1)), SEM.run(send(2)), SEM.run(send(3))).await;
        assert_eq!((a?, b?, c?), (1, 2, 3));

        // 2. `acquire`: while both permits are held, `try_acquire` fails.
        let both = SEM.acquire_many(2).await?;
        assert!(SEM.try_acquire().is_err());
        drop(both);

        // 3. `run_all_fixed`: a backlog of 100 items, at most 2 in flight,
        //    in two slots inside the stream (no allocator needed).
        let mut results = pin!(SEM.run_all_fixed::<2, _, _, _>(0..100u32, send));
        let mut sum = 0;
        while let Some(id) = results.next().await {
            sum += id?;
        }
        assert_eq!(sum, (0..100).sum::<u32>());
        assert_eq!(results.progress().done, 100);
        Ok::<_, AcquireError>(())
    })?;
    assert_eq!(SEM.available_permits(), 2, "every permit is back");
    println!("block_on: ok");
    Ok(())
}
