//! The workloads: the `Workload` trait, the dispatch over implementations, and one file per workload.

mod acquire_uncontended;
mod backlog;
mod contended;
mod memory;
mod oversubscribed;
mod shared;
mod try_acquire;

pub use acquire_uncontended::*;
pub use backlog::*;
pub use contended::*;
pub use memory::*;
pub use oversubscribed::*;
pub use shared::*;
pub use try_acquire::*;

use crate::*;

pub const IMPLS: [&str; 8] = [
    "permits",
    "AtomicUsize",
    "tokio",
    "async-lock",
    "maitake-sync",
    "futures-intrusive",
    "embassy-fair",
    "embassy-greedy",
];

/// A workload, run for one implementation at a time.
pub trait Workload {
    /// Whether embassy's fair semaphore needs the big queue.
    const BIG_QUEUE: bool = false;
    fn run<S: Sem>(&self, cfg: &Config) -> Outcome;
}

pub fn dispatch<W: Workload>(w: &W, cfg: &Config, idx: usize) -> Outcome {
    match idx {
        0 => go::<permits::Semaphore, W>(w, cfg, idx),
        1 => go::<Floor, W>(w, cfg, idx),
        2 => go::<tokio::sync::Semaphore, W>(w, cfg, idx),
        3 => go::<async_lock::Semaphore, W>(w, cfg, idx),
        4 => go::<maitake_sync::Semaphore, W>(w, cfg, idx),
        5 => go::<FuturesIntrusive, W>(w, cfg, idx),
        6 if W::BIG_QUEUE => go::<EmbassyFair<FAIR_BIG>, W>(w, cfg, idx),
        6 => go::<EmbassyFair<FAIR_SMALL>, W>(w, cfg, idx),
        7 => go::<EmbassyGreedy, W>(w, cfg, idx),
        _ => unreachable!(),
    }
}

pub fn go<S: Sem, W: Workload>(w: &W, cfg: &Config, idx: usize) -> Outcome {
    assert_eq!(S::NAME, IMPLS[idx], "IMPLS and dispatch disagree");
    w.run::<S>(cfg)
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Value(f64),
    Fail(String),
    Timeout,
    NotApplicable,
}
