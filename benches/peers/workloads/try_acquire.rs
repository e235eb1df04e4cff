//! Workload 1: `try_acquire` + drop.

use std::hint::black_box;
use std::time::Instant;

use crate::*;

/// Workload 1: `try_acquire` + drop, one thread.
pub struct TryAcquire;

impl Workload for TryAcquire {
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome {
        let sem = S::new(1);
        let sem = black_box(&sem);
        let mut failed = 0usize;
        let start = Instant::now();
        for _ in 0..cfg.iters_fast {
            match sem.try_one() {
                Some(g) => drop(black_box(g)),
                None => failed += 1,
            }
        }
        let elapsed = start.elapsed();
        if failed > 0 || !sem.all_back(1) {
            return Outcome::Fail(format!("{failed} try_acquires failed"));
        }
        Outcome::Value(elapsed.as_nanos() as f64 / cfg.iters_fast as f64)
    }
}
