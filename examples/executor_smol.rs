//! `permits` under smol: spawned tasks with `run_owned`, `acquire` with a
//! timeout (`or` with a `Timer`), and `run_stream` over an `async-channel`.
//!
//! ```text
//! cargo run --example executor_smol
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use permits::{AcquireError, Semaphore};
use smol::future::FutureExt;

const LIMIT: usize = 4;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Stands in for a request to a server that allows `LIMIT` at once.
async fn fetch(id: u32) -> u32 {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    smol::Timer::after(Duration::from_millis(1)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    id * 2
}

fn main() -> Result<(), AcquireError> {
    smol::block_on(async {
        let sem = Arc::new(Semaphore::new(LIMIT));

        // 1. `run_owned` in spawned tasks (smol's global executor).
        let tasks: Vec<_> = (0..32)
            .map(|id| smol::spawn(sem.clone().run_owned(fetch(id))))
            .collect();
        for (id, task) in (0..).zip(tasks) {
            assert_eq!(task.await?, id * 2);
        }

        // 2. `acquire` with a timeout: while every permit is held, waiting is
        //    cut short by a timer. Dropping the losing `Acquire` is a clean
        //    cancellation: nothing stays queued.
        let all = sem.acquire_many(LIMIT).await?;
        let timed_out = async { Some(sem.acquire().await) }
            .or(async {
                smol::Timer::after(Duration::from_millis(10)).await;
                None
            })
            .await;
        assert!(timed_out.is_none());
        assert_eq!(sem.waiters(), 0);
        drop(all);

        // 3. `run_stream` over a bounded channel fed by a producer task.
        let (tx, rx) = smol::channel::bounded::<u32>(8);
        let producer = smol::spawn(async move {
            for id in 0..200 {
                tx.send(id).await.expect("receiver alive");
            }
        });
        let mut results = std::pin::pin!(sem.run_stream(rx, fetch));
        let mut sum = 0;
        while let Some(doubled) = results.next().await {
            sum += doubled?;
        }
        producer.await;
        assert_eq!(sum, (0..200).map(|id| id * 2).sum::<u32>());

        let max = MAX_IN_FLIGHT.load(Relaxed);
        assert!(max <= LIMIT, "limit exceeded: {max} > {LIMIT}");
        assert_eq!(sem.available_permits(), LIMIT, "every permit is back");
        println!("smol: ok, max in flight {max} (limit {LIMIT})");
        Ok(())
    })
}
