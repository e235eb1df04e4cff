//! `permits` under `futures::executor`: tasks spawned on a `LocalPool`
//! (single thread, no `Send` needed), `acquire` inside `block_on`, and
//! `run_all(..).in_order()` for results in backlog order.
//!
//! ```text
//! cargo run --example executor_futures
//! ```

use std::cell::Cell;
use std::rc::Rc;

use futures::executor::{block_on, LocalPool};
use futures::task::LocalSpawnExt;
use futures::StreamExt;
use permits::{AcquireError, Semaphore};

const LIMIT: usize = 3;

/// Counts work in flight on this thread: `Rc<Cell>` is enough on a `LocalPool`.
#[derive(Clone, Default)]
struct InFlight(Rc<Cell<(usize, usize)>>);

impl InFlight {
    async fn work(&self, id: u32) -> u32 {
        let (now, max) = self.0.get();
        self.0.set((now + 1, max.max(now + 1)));
        yield_now().await;
        let (now, max) = self.0.get();
        self.0.set((now - 1, max));
        id * 2
    }

    fn max(&self) -> usize {
        self.0.get().1
    }
}

/// Wakes its task and returns `Pending` once: a cooperative yield.
async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

fn main() -> Result<(), AcquireError> {
    let sem = Rc::new(Semaphore::new(LIMIT));
    let stats = InFlight::default();

    // 1. `run` in tasks spawned on a single-threaded pool.
    let mut pool = LocalPool::new();
    let handles: Vec<_> = (0..12)
        .map(|id| {
            let (sem, stats) = (sem.clone(), stats.clone());
            let task = async move { sem.run(stats.work(id)).await };
            pool.spawner()
                .spawn_local_with_handle(task)
                .expect("pool alive")
        })
        .collect();
    let results = pool.run_until(futures::future::join_all(handles));
    let expected: Vec<_> = (0..12).map(|id| Ok(id * 2)).collect();
    assert_eq!(results, expected);

    block_on(async {
        // 2. `acquire`: the permit is held until it is dropped.
        let permit = sem.acquire().await?;
        assert_eq!(sem.available_permits(), LIMIT - 1);
        drop(permit);

        // 3. `run_all` with `in_order`: results come back in backlog order
        //    even though items finish out of order.
        let doubled: Vec<_> = sem
            .run_all(0..50u32, |id| {
                let stats = stats.clone();
                async move {
                    for _ in 0..id % 3 {
                        yield_now().await;
                    }
                    stats.work(id).await
                }
            })
            .in_order()
            .collect()
            .await;
        let expected: Vec<_> = (0..50).map(|id| Ok(id * 2)).collect();
        assert_eq!(doubled, expected);
        Ok::<_, AcquireError>(())
    })?;

    assert!(stats.max() <= LIMIT, "limit exceeded");
    assert_eq!(sem.available_permits(), LIMIT, "every permit is back");
    println!(
        "futures::executor: ok, max in flight {} (limit {LIMIT})",
        stats.max()
    );
    Ok(())
}
