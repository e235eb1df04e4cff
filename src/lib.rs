#![doc = include_str!("../README.md")]
#![no_std]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Docs of the allocation-free items link to their `alloc` counterparts
// (`run_all`, `RunAll`), which a no-`alloc` build does not have.
#![cfg_attr(not(feature = "alloc"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(all(not(target_has_atomic = "ptr"), not(feature = "critical-section")))]
compile_error!(
    "permits: this target has no compare-and-swap (e.g. thumbv6m, riscv32imc); \
     enable the `critical-section` feature and link a critical-section implementation"
);

// `alloc`'s types here share state through `Arc` (owned permits, the
// backlog's per-slot wakers, the keyed map), which `alloc` only has on
// targets with atomic pointers.
#[cfg(all(feature = "alloc", not(target_has_atomic = "ptr")))]
compile_error!(
    "permits: the `alloc` feature needs a target with atomic pointers (`Arc`); \
     on cores without compare-and-swap (thumbv6m, riscv32imc) use the allocation-free API"
);

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod acquire;
pub mod adaptive;
// `macro_use`: the stream macros of `backlog/methods.rs` also build the keyed
// stream (`keyed/stream.rs`).
#[macro_use]
mod backlog;
#[cfg(feature = "defmt")]
mod defmt_format;
mod error;
mod hand_off;
#[cfg(feature = "alloc")]
mod keyed;
mod limits;
mod list;
mod lock;
mod permit;
mod run;
mod semaphore;
mod state;
mod sync;
mod waiter;
mod wake_batch;

#[cfg(test)]
mod lock_free_tests;

#[cfg(test)]
mod hand_off_tests;

pub use acquire::Acquire;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use acquire::AcquireOwned;
#[cfg(feature = "alloc")]
pub use backlog::RunAll;
#[cfg(feature = "alloc")]
pub use backlog::RunWith;
pub use backlog::{Gate, IterStream, Progress, RunAllFixed, RunWithFixed, SemaphoreGate};
pub use error::{AcquireError, TryAcquireError};
#[cfg(feature = "alloc")]
pub use keyed::{
    KeyedAcquire, KeyedFeedback, KeyedGate, KeyedLimitAcquire, KeyedLimitPermit, KeyedLimiter,
    KeyedLimiterGate, KeyedPermit, KeyedRun, KeyedRunAll, KeyedSemaphore,
};
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use permit::OwnedPermit;
pub use permit::Permit;
pub use run::Run;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use run::RunOwned;
pub use semaphore::Semaphore;
