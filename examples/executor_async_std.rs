//! `permits` under async-std: spawned tasks with `run_owned`, `acquire` with
//! `async_std::future::timeout`, and `run_all` over an iterator.
//!
//! ```text
//! cargo run --example executor_async_std
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_std::task;
use futures::StreamExt;
use permits::{AcquireError, Semaphore};

const LIMIT: usize = 4;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Stands in for a request to a server that allows `LIMIT` at once.
async fn fetch(id: u32) -> u32 {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    task::sleep(Duration::from_millis(1)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    id * 2
}

#[async_std::main]
async fn main() -> Result<(), AcquireError> {
    let sem = Arc::new(Semaphore::new(LIMIT));

    // 1. `run_owned` in spawned tasks.
    let tasks: Vec<_> = (0..32)
        .map(|id| task::spawn(sem.clone().run_owned(fetch(id))))
        .collect();
    for (id, task) in (0..).zip(tasks) {
        assert_eq!(task.await?, id * 2);
    }

    // 2. `acquire` with a timeout while every permit is held: the timed-out
    //    `Acquire` is dropped and leaves nothing queued.
    let all = sem.acquire_many(LIMIT).await?;
    let waited = async_std::future::timeout(Duration::from_millis(10), sem.acquire()).await;
    assert!(waited.is_err(), "no permit was free");
    assert_eq!(sem.waiters(), 0);
    drop(all);

    // 3. `run_all`: a backlog from an iterator, results in completion order;
    //    an item is taken from the iterator only once its permit is held.
    let mut results = std::pin::pin!(sem.run_all(0..200u32, fetch));
    let mut sum = 0;
    while let Some(doubled) = results.next().await {
        sum += doubled?;
    }
    assert_eq!(sum, (0..200).map(|id| id * 2).sum::<u32>());

    let max = MAX_IN_FLIGHT.load(Relaxed);
    assert!(max <= LIMIT, "limit exceeded: {max} > {LIMIT}");
    assert_eq!(sem.available_permits(), LIMIT, "every permit is back");
    println!("async-std: ok, max in flight {max} (limit {LIMIT})");
    Ok(())
}
