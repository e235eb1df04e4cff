//! One file per peer adapter: each implements `Sem` for one semaphore
//! (the adapters of plain crate types add no names of their own).

mod async_lock;
mod embassy;
mod floor;
mod futures_intrusive;
mod maitake;
mod permits;
mod tokio;

pub use self::embassy::*;
pub use self::floor::*;
pub use self::futures_intrusive::*;
