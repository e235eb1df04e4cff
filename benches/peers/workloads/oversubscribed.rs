//! Workload 5: oversubscribed OS threads.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use crate::*;

/// Workload 5, oversubscribed: 8 OS threads, each `block_on`-ing `iters` acquire +
/// release on a semaphore of 2.
pub struct Oversubscribed;

impl Workload for Oversubscribed {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        const THREADS: usize = 8;
        const LIMIT: usize = 2;
        let iters = cfg.over_iters;
        let sem = Arc::new(S::new(LIMIT));
        let shared = Shared::new(LIMIT, THREADS);
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (sem, sh, barrier) = (sem.clone(), shared.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    futures::executor::block_on(async {
                        for _ in 0..iters {
                            if sh.aborted() {
                                break;
                            }
                            let g = sem.acq().await;
                            sh.enter();
                            sh.exit();
                            drop(g);
                        }
                    });
                    sh.finish_one();
                })
            })
            .collect();
        let watch = Watchdog::start(&shared, cfg.budget);
        // The clock starts before the release: the main thread may well be
        // descheduled right after it wakes the others.
        let start = Instant::now();
        barrier.wait();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = start.elapsed();
        drop(watch);
        shared.verdict(&*sem, elapsed, THREADS * iters)
    }
}
