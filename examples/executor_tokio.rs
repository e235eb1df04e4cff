//! `permits` under tokio's multi-thread runtime: `run_owned` for spawned
//! tasks, `acquire` to hold permits across awaits, and `run_stream` over an
//! `mpsc` channel.
//!
//! ```text
//! cargo run --example executor_tokio
//! ```

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use permits::{AcquireError, Semaphore};

const LIMIT: usize = 4;

/// Work in flight right now, and the most seen at once.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Stands in for a request to a server that allows `LIMIT` at once.
async fn fetch(id: u32) -> u32 {
    let now = IN_FLIGHT.fetch_add(1, Relaxed) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Relaxed);
    tokio::time::sleep(Duration::from_millis(1)).await;
    IN_FLIGHT.fetch_sub(1, Relaxed);
    id * 2
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), AcquireError> {
    // An `Arc` so spawned (`'static`) tasks can share it.
    let sem = Arc::new(Semaphore::new(LIMIT));

    // 1. `run_owned`: each spawned task holds a permit while its future runs,
    //    on whichever worker thread tokio picks.
    let tasks: Vec<_> = (0..32)
        .map(|id| tokio::spawn(sem.clone().run_owned(fetch(id))))
        .collect();
    for (id, task) in (0..).zip(tasks) {
        assert_eq!(task.await.expect("task panicked")?, id * 2);
    }

    // 2. `acquire`: hold permits across several awaits, e.g. a batch that
    //    needs two connections at once. Dropping the permit gives them back.
    let permit = sem.clone().acquire_many_owned(2).await?;
    let batch = tokio::spawn(async move {
        let (a, b) = tokio::join!(fetch(100), fetch(101));
        drop(permit);
        a + b
    });
    assert_eq!(batch.await.expect("task panicked"), 402);

    // 3. `run_stream`: a producer task fills a bounded channel; the stream
    //    takes a job off it only once a permit for it is held, so the channel
    //    applies back-pressure to the producer.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
    let producer = tokio::spawn(async move {
        for id in 0..200 {
            tx.send(id).await.expect("receiver alive");
        }
    });
    let jobs = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut results = std::pin::pin!(sem.run_stream(jobs, fetch));
    let mut sum = 0;
    while let Some(doubled) = results.next().await {
        sum += doubled?;
    }
    producer.await.expect("producer panicked");
    assert_eq!(sum, (0..200).map(|id| id * 2).sum::<u32>());

    let max = MAX_IN_FLIGHT.load(Relaxed);
    assert!(max <= LIMIT, "limit exceeded: {max} > {LIMIT}");
    assert_eq!(sem.available_permits(), LIMIT, "every permit is back");
    println!("tokio: ok, max in flight {max} (limit {LIMIT})");
    Ok(())
}
