//! The seed's scenario under every executor: 6 work items, limit 2, every item
//! runs, never more than 2 at once, all results come back.

mod common;
use common::{yield_now, InFlight};
use permits::Semaphore;

const ITEMS: usize = 6;
const LIMIT: usize = 2;

async fn send(stats: &InFlight, id: usize) -> usize {
    stats.enter(1);
    for _ in 0..=id % 3 {
        yield_now().await;
    }
    stats.exit(1);
    id * 10
}

/// Runs the scenario with `join_all` on one task; checks and returns nothing.
async fn scenario() {
    let sem = Semaphore::new(LIMIT);
    let stats = InFlight::new();
    let sends = (0..ITEMS).map(|id| sem.run(send(&stats, id)));
    let results = futures::future::join_all(sends).await;
    check(&results, &stats, &sem);
}

fn check(results: &[Result<usize, permits::AcquireError>], stats: &InFlight, sem: &Semaphore) {
    let expected: Vec<_> = (0..ITEMS).map(|id| Ok(id * 10)).collect();
    assert_eq!(results, expected);
    assert_eq!(stats.max(), LIMIT);
    assert_eq!(stats.now(), 0);
    assert_eq!(sem.available_permits(), LIMIT);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn futures_executor() {
    futures::executor::block_on(scenario());
}

#[test]
#[cfg(feature = "alloc")]
fn futures_local_pool_with_spawned_tasks() {
    use futures::task::LocalSpawnExt;
    let sem = std::sync::Arc::new(Semaphore::new(LIMIT));
    let stats = std::sync::Arc::new(InFlight::new());
    let mut pool = futures::executor::LocalPool::new();
    let handles: Vec<_> = (0..ITEMS)
        .map(|id| {
            let (sem, stats) = (sem.clone(), stats.clone());
            let fut = async move { sem.run(send(&stats, id)).await };
            pool.spawner().spawn_local_with_handle(fut).unwrap()
        })
        .collect();
    let results = pool.run_until(futures::future::join_all(handles));
    check(&results, &stats, &sem);
}

#[test]
fn tokio_current_thread() {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(scenario());
}

#[test]
#[cfg(feature = "alloc")]
fn tokio_multi_thread_with_spawned_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let sem = std::sync::Arc::new(Semaphore::new(LIMIT));
        let stats = std::sync::Arc::new(InFlight::new());
        let handles: Vec<_> = (0..ITEMS)
            .map(|id| {
                let stats = stats.clone();
                tokio::spawn(sem.clone().run_owned(async move { send(&stats, id).await }))
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        check(&results, &stats, &sem);
    });
}

#[test]
#[cfg(feature = "alloc")]
// The reactor calls `timerfd_create`, a foreign function Miri cannot run.
#[cfg_attr(miri, ignore)]
fn smol() {
    smol::block_on(scenario());
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let sem = std::sync::Arc::new(Semaphore::new(LIMIT));
        let stats = std::sync::Arc::new(InFlight::new());
        let tasks: Vec<_> = (0..ITEMS)
            .map(|id| {
                let stats = stats.clone();
                ex.spawn(sem.clone().run_owned(async move { send(&stats, id).await }))
            })
            .collect();
        let results = futures::future::join_all(tasks).await;
        check(&results, &stats, &sem);
    }));
}

#[test]
#[cfg(feature = "alloc")]
// The reactor calls `timerfd_create`, a foreign function Miri cannot run.
#[cfg_attr(miri, ignore)]
fn async_std() {
    async_std::task::block_on(async {
        let sem = std::sync::Arc::new(Semaphore::new(LIMIT));
        let stats = std::sync::Arc::new(InFlight::new());
        let tasks: Vec<_> = (0..ITEMS)
            .map(|id| {
                let stats = stats.clone();
                async_std::task::spawn(sem.clone().run_owned(async move { send(&stats, id).await }))
            })
            .collect();
        let results = futures::future::join_all(tasks).await;
        check(&results, &stats, &sem);
    });
}
