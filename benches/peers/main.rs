//! `permits` side by side with the semaphores users would pick instead.
//!
//! `cargo bench --bench peers` runs six workloads for every implementation in
//! one process, round by round: each round runs every implementation once, in
//! an order rotated per round, so machine noise hits all of them alike. It
//! prints one table (median [min-max] and the ratio of the median to
//! `permits`) and writes `target/bench/peers.json`, from which
//! `benches/results/chart.py` draws `benches/results/peers.svg`.
//!
//! `PERMITS_BENCH_QUICK=1` (or `-- --quick`) runs a smaller pass, under a
//! minute, for CI smoke runs; its numbers are not the ones in the README.
//! For profiling: `PERMITS_BENCH_ONLY=1,3t` runs only the rows whose id starts
//! with a given prefix, `PERMITS_BENCH_IMPLS=permits,tokio` only those
//! implementations, and `PERMITS_BENCH_SIZES=1` prints each backlog task's
//! future size and allocations per task, `PERMITS_BENCH_BUDGET_MS=60000`
//! raises the time budget of a run (e.g. under valgrind).
//!
//! Every contended run counts the tasks inside the limit and checks that the
//! limit was never exceeded and that every permit is back at the end; a run
//! that breaks either is reported as `FAIL`, never as a number. A run that
//! exceeds its time budget is stopped and reported as `>budget`.
//!
//! Layout: `workloads/` holds one file per workload, `adapters/` one file
//! per peer semaphore (each implements `Sem`, in `sem.rs`); `report.rs`
//! measures the rows and writes the table and the JSON.

mod adapters;
mod alloc;
mod config;
mod report;
mod sem;
mod workloads;

pub use adapters::*;
pub use alloc::*;
pub use config::*;
pub use report::*;
pub use sem::*;
pub use workloads::*;

use std::time::Instant;

/// Runs every row; returns whether `permits` passed every check.
fn bench_main() -> bool {
    let quick = std::env::var("PERMITS_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || std::env::args().any(|a| a == "--quick");
    let cfg = Config::new(quick);
    let started = Instant::now();
    eprintln!(
        "permits vs peers ({} mode): rounds rotate the order of implementations",
        if quick { "quick" } else { "full" }
    );
    let mut rows = Vec::new();
    rows.extend(measure(
        &TryAcquire,
        &cfg,
        cfg.rounds_fast,
        "1",
        "try_acquire + drop".into(),
        "ns/op",
    ));
    rows.extend(measure(
        &AcquireUncontended,
        &cfg,
        cfg.rounds_fast,
        "2",
        "acquire().await + drop, no-op waker".into(),
        "ns/op",
    ));
    for (exec, ename) in [
        (Executor::TokioCurrentThread, "tokio current-thread"),
        (Executor::LocalPool, "LocalPool"),
    ] {
        for limit in [1, 16, 1024] {
            let w = Backlog {
                exec,
                limit,
                big: false,
            };
            let label = format!("{} tasks, limit {limit}, {ename}", cfg.backlog);
            let id = format!(
                "3{}",
                if matches!(exec, Executor::LocalPool) {
                    "l"
                } else {
                    "t"
                }
            );
            rows.extend(measure(&w, &cfg, cfg.rounds_backlog, &id, label, "ns/task"));
        }
        let w = Backlog {
            exec,
            limit: 16,
            big: true,
        };
        let label = format!("{} tasks, limit 16, {ename}", cfg.backlog_big);
        let id = format!(
            "3{}+",
            if matches!(exec, Executor::LocalPool) {
                "l"
            } else {
                "t"
            }
        );
        rows.extend(measure(
            &w,
            &cfg,
            cfg.rounds_backlog.div_ceil(2).max(1),
            &id,
            label,
            "ns/task",
        ));
    }
    // At 64 (the number of tasks) no acquire ever waits: that row measures the
    // counter under two workers' traffic, the hand-off rows are 1 and 8.
    for limit in [1, 8, 64] {
        let w = Contended { limit };
        let label = format!("tokio 2 workers, 64x{}, limit {limit}", cfg.contended_iters);
        rows.extend(measure(&w, &cfg, cfg.rounds_contended, "4", label, "ns/op"));
    }
    rows.extend(measure(
        &Oversubscribed,
        &cfg,
        cfg.rounds_over,
        "5",
        format!("8 threads x{} block_on, limit 2", cfg.over_iters),
        "ns/op",
    ));
    for (m, label, unit) in [
        (Memory::SemSize, "size_of Semaphore", "B"),
        (Memory::FutureSize, "size_of acquire future", "B"),
        (
            Memory::AllocsUncontended,
            "allocs per uncontended acquire+release",
            "allocs",
        ),
        (
            Memory::AllocsWaiting,
            "allocs per acquire that waits",
            "allocs",
        ),
    ] {
        rows.extend(measure(&m, &cfg, 1, "6", label.into(), unit));
    }
    let wall = started.elapsed();
    println!();
    print_table(&rows, &cfg);
    let path = write_json(&rows, &cfg, wall);
    println!(
        "{} pass in {:.1}s on {} cores; JSON: {}",
        if quick { "quick" } else { "full" },
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        path.display()
    );
    let permits_failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.cells[0].failure.is_some())
        .map(|r| r.label.as_str())
        .collect();
    if !permits_failed.is_empty() {
        eprintln!("permits FAILED its checks in: {permits_failed:?}");
    }
    permits_failed.is_empty()
}

fn main() {
    // embassy's fair semaphore for a million waiters is a 16 MiB value; give
    // the bench a stack that holds it.
    let ok = std::thread::Builder::new()
        .name("bench".into())
        .stack_size(256 << 20)
        .spawn(bench_main)
        .unwrap()
        .join()
        .unwrap();
    if !ok {
        std::process::exit(1);
    }
}
