//! Workload 4: contended, on tokio's multi-thread runtime.

use std::sync::Arc;
use std::time::Instant;

use crate::*;

/// Workload 4, contended: tokio multi-thread runtime with 2 workers, 64 tasks, each
/// `iters` times: acquire, yield once holding the permit, release.
pub struct Contended {
    pub limit: usize,
}

impl Workload for Contended {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        const TASKS: usize = 64;
        let iters = cfg.contended_iters;
        let sem = Arc::new(S::new(self.limit));
        let shared = Shared::new(self.limit, TASKS);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let watch = Watchdog::start(&shared, cfg.budget);
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..TASKS {
                let (sem, sh) = (sem.clone(), shared.clone());
                tokio::spawn(async move {
                    for _ in 0..iters {
                        if sh.aborted() {
                            break;
                        }
                        let g = sem.acq().await;
                        sh.enter();
                        tokio::task::yield_now().await;
                        sh.exit();
                        drop(g);
                    }
                    sh.finish_one();
                });
            }
            shared.all_done().await;
        });
        let elapsed = start.elapsed();
        drop(watch);
        drop(rt);
        shared.verdict(&*sem, elapsed, TASKS * iters)
    }
}
