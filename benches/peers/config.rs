//! The bench's configuration (quick or full, rows, implementations).

use std::time::Duration;

pub struct Config {
    pub quick: bool,
    /// Rounds of the single-thread workloads 1 and 2.
    pub rounds_fast: usize,
    pub iters_fast: usize,
    /// Rounds of the backlog workload and its task counts.
    pub rounds_backlog: usize,
    pub backlog: usize,
    pub backlog_big: usize,
    pub rounds_contended: usize,
    pub contended_iters: usize,
    pub rounds_over: usize,
    pub over_iters: usize,
    pub budget: Duration,
    /// `PERMITS_BENCH_ONLY=1,3t` runs only the rows whose id starts with one
    /// of the given prefixes (for profiling); empty: every row.
    pub only: Vec<String>,
    /// `PERMITS_BENCH_IMPLS=permits,tokio` runs only those implementations
    /// (for profiling); empty: all of them.
    pub impls: Vec<String>,
}

impl Config {
    pub fn new(quick: bool) -> Self {
        let only = std::env::var("PERMITS_BENCH_ONLY")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let impls = std::env::var("PERMITS_BENCH_IMPLS")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let budget_ms = std::env::var("PERMITS_BENCH_BUDGET_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        let mut cfg = if quick {
            Config {
                quick,
                rounds_fast: 7,
                iters_fast: 200_000,
                rounds_backlog: 2,
                backlog: 10_000,
                backlog_big: 100_000,
                rounds_contended: 3,
                contended_iters: 300,
                rounds_over: 3,
                over_iters: 2_000,
                budget: Duration::from_millis(400),
                only,
                impls,
            }
        } else {
            Config {
                quick,
                rounds_fast: 51,
                iters_fast: 500_000,
                rounds_backlog: 5,
                backlog: 100_000,
                backlog_big: 1_000_000,
                rounds_contended: 5,
                contended_iters: 10_000,
                rounds_over: 9,
                over_iters: 20_000,
                budget: Duration::from_secs(3),
                only,
                impls,
            }
        };
        if let Some(ms) = budget_ms {
            cfg.budget = Duration::from_millis(ms);
        }
        cfg
    }
}
