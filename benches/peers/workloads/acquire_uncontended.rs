//! Workload 2: uncontended `acquire`.

use std::hint::black_box;
use std::task::{Context, Waker};
use std::time::Instant;

use crate::*;

/// Workload 2: `acquire().await` + drop, polled once with a no-op waker.
pub struct AcquireUncontended;

impl Workload for AcquireUncontended {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        let sem = S::new(1);
        let sem = black_box(&sem);
        let mut cx = Context::from_waker(Waker::noop());
        let mut failed = 0usize;
        let start = Instant::now();
        for _ in 0..cfg.iters_fast {
            match sem.poll_acquire_once(&mut cx) {
                Some(g) => drop(black_box(g)),
                None => failed += 1,
            }
        }
        let elapsed = start.elapsed();
        if failed > 0 || !sem.all_back(1) {
            return Outcome::Fail(format!("{failed} acquires pending"));
        }
        Outcome::Value(elapsed.as_nanos() as f64 / cfg.iters_fast as f64)
    }
}
