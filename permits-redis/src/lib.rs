#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod acquire;
mod backlog;
mod builder;
mod conn;
mod driver;
mod error;
mod event;
mod inner;
mod keys;
mod lease;
mod run;
mod semaphore;
mod time;

pub use acquire::Acquire;
pub use backlog::RunAll;
pub use builder::{Builder, MAX_LIMIT};
pub use driver::Driver;
pub use error::{Error, LossReason};
pub use lease::{Lease, Lost};
pub use run::Run;
pub use semaphore::{GlobalSemaphore, Stats};
