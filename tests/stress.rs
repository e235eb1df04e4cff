//! Multi-thread stress: random acquires of 1..=K permits, some cancelled
//! midway; the limit is never exceeded and every permit comes back.

mod common;
use common::InFlight;
use permits::Semaphore;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: usize = 5;
const K: usize = 3;
#[cfg(not(miri))]
const ROUNDS: usize = 2_000;
#[cfg(miri)]
const ROUNDS: usize = 20;

/// A small xorshift generator: deterministic per seed, no dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn worker(sem: Arc<Semaphore>, stats: Arc<InFlight>, seed: u64) {
    let mut rng = Rng(seed | 1);
    for _ in 0..ROUNDS / 10 {
        let n = 1 + rng.below(K as u64) as usize;
        if rng.below(4) == 0 {
            // Cancel midway: race the acquire against a short timer.
            let acquire = sem.acquire_many(n);
            let timer = tokio::time::sleep(Duration::from_micros(rng.below(50)));
            tokio::select! {
                p = acquire => { let p = p.unwrap(); stats.enter(n); tokio::task::yield_now().await; stats.exit(n); drop(p); }
                () = timer => {}
            }
        } else {
            let p = sem.acquire_many(n).await.unwrap();
            stats.enter(n);
            tokio::task::yield_now().await;
            stats.exit(n);
            drop(p);
        }
    }
}

#[test]
fn tokio_multi_thread_random_acquires_with_cancellation() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let sem = Arc::new(Semaphore::new(LIMIT));
    let stats = Arc::new(InFlight::new());
    rt.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|i| tokio::spawn(worker(sem.clone(), stats.clone(), 0x9E37_79B9 * (i + 1))))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert!(
        stats.max() <= LIMIT,
        "max in flight {} > {LIMIT}",
        stats.max()
    );
    assert!(stats.max() >= K, "the stress never overlapped");
    assert_eq!(sem.available_permits(), LIMIT);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn os_threads_with_block_on() {
    let sem = Arc::new(Semaphore::new(LIMIT));
    let stats = Arc::new(InFlight::new());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (sem, stats) = (sem.clone(), stats.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0xDEAD_BEEF ^ ((t + 1) * 7919));
                for _ in 0..ROUNDS {
                    let n = 1 + rng.below(K as u64) as usize;
                    let p = futures::executor::block_on(sem.acquire_many(n)).unwrap();
                    stats.enter(n);
                    std::thread::yield_now();
                    stats.exit(n);
                    if rng.below(8) == 0 {
                        // Hand half back early via split.
                        let mut p = p;
                        drop(p.split(n / 2));
                    } else {
                        drop(p);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(stats.max() <= LIMIT);
    assert_eq!(sem.available_permits(), LIMIT);
    assert_eq!(sem.waiters(), 0);
}
