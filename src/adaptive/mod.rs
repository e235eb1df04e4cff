//! Adaptive concurrency: find the server's limit instead of guessing it.
//!
//! A [`Limiter`] is a [`Semaphore`](crate::Semaphore) whose limit an
//! [`Algorithm`] moves from what finished requests report. The caller says
//! what each reply meant ([`Outcome`]: `Success`, `Overload`, `Ignore`) and
//! how long it took (a [`Sample`]); the library has no clock. The default
//! algorithm, [`Aimd`], grows the limit by one per round trip while the
//! limit is reached without back-pressure or rising latency, and multiplies
//! it by 0.9 on back-pressure or when latency rises well above its moving
//! mean.
//!
//! Layers, each in its own file:
//!
//! - `sample.rs`: [`Outcome`] and [`Sample`], the algorithm's input;
//! - `algorithm.rs`: the [`Algorithm`] trait and its [`Decision`] output;
//! - `aimd.rs`: [`Aimd`], the default;
//! - `limiter.rs`: [`Limiter`] and its [`Permit`], which drive the
//!   semaphore's exact [`set_limit`](crate::Semaphore::set_limit);
//! - `run.rs`: [`Limiter::run`] and the [`Feedback`] a classifier returns;
//! - `gate.rs`: [`LimiterGate`], the limiter as the [`Gate`](crate::Gate) of
//!   a backlog stream, and [`Limiter::run_all`] / [`Limiter::run_stream`].
//!
//! All of it is `no_std` and allocation-free (the backlog streams
//! [`Limiter::run_all`] and [`Limiter::run_stream`] need `alloc`, as
//! [`RunWith`](crate::RunWith) does; [`LimiterGate`] itself does not); with
//! `std`, `Permit::finish` measures the time with `std::time::Instant`.
//! `tests/adaptive_sim.rs` is a deterministic simulator (a server with a
//! knee, a hard cap, changing capacity) whose scenarios check the behaviour
//! within asserted ranges.

mod aimd;
mod algorithm;
mod gate;
mod limiter;
mod run;
mod sample;

pub use aimd::Aimd;
pub use algorithm::{Algorithm, Decision, Reason};
#[cfg(feature = "alloc")]
pub use gate::RunAll;
pub use gate::{LimiterGate, RunAllFixed};
pub use limiter::{Acquire, Limiter, Permit};
pub use run::{Feedback, Run};
pub use sample::{Outcome, Sample};
