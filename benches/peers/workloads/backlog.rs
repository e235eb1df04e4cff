//! Workload 3: a backlog of tasks on several executors.

use std::sync::Arc;
use std::time::Instant;

use crate::*;

#[derive(Clone, Copy)]
pub enum Executor {
    TokioCurrentThread,
    LocalPool,
}

/// Workload 3, the backlog: `tasks` tasks through `run` (or acquire + hold) with
/// `limit` permits; each holds its permit across one task switch.
pub struct Backlog {
    pub exec: Executor,
    pub limit: usize,
    pub big: bool,
}

impl Workload for Backlog {
    const BIG_QUEUE: bool = true;
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        if !S::CAN_WAIT {
            return Outcome::NotApplicable;
        }
        let tasks = if self.big {
            cfg.backlog_big
        } else {
            cfg.backlog
        };
        let sem = Arc::new(S::new(self.limit));
        let shared = Shared::new(self.limit, tasks);
        let task = |sem: Arc<S>, sh: Arc<Shared>| async move {
            sem.hold(async {
                sh.enter();
                YieldOnce(false).await;
                sh.exit();
            })
            .await;
            sh.finish_one();
        };
        if std::env::var_os("PERMITS_BENCH_SIZES").is_some() {
            eprintln!(
                "{}: task future {} B",
                S::NAME,
                size_of_val(&task(sem.clone(), shared.clone()))
            );
        }
        let elapsed = match self.exec {
            Executor::TokioCurrentThread => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let _watch = Watchdog::start(&shared, cfg.budget);
                let start = Instant::now();
                rt.block_on(async {
                    for _ in 0..tasks {
                        tokio::spawn(task(sem.clone(), shared.clone()));
                    }
                    shared.all_done().await;
                });
                let elapsed = start.elapsed();
                drop(_watch);
                drop(rt);
                elapsed
            }
            Executor::LocalPool => {
                use futures::task::LocalSpawnExt as _;
                let mut pool = futures::executor::LocalPool::new();
                let spawner = pool.spawner();
                let _watch = Watchdog::start(&shared, cfg.budget);
                let a0 = allocs();
                let start = Instant::now();
                for _ in 0..tasks {
                    spawner
                        .spawn_local(task(sem.clone(), shared.clone()))
                        .unwrap();
                }
                pool.run_until(shared.all_done());
                let elapsed = start.elapsed();
                if std::env::var_os("PERMITS_BENCH_SIZES").is_some() {
                    eprintln!(
                        "{}: {} allocs per task",
                        S::NAME,
                        (allocs() - a0) as f64 / tasks as f64
                    );
                }
                drop(_watch);
                drop(pool);
                elapsed
            }
        };
        shared.verdict(&*sem, elapsed, tasks)
    }
}
