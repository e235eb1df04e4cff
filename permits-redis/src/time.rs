//! Timers that work under any executor (futures-timer's one timer thread).

use std::future::Future;
use std::time::Duration;

use futures_util::future::{select, Either};

/// Sleeps for `d`.
pub(crate) async fn sleep(d: Duration) {
    futures_timer::Delay::new(d).await;
}

/// `f`, or `None` if it does not finish within `d` (then `f` is dropped).
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    let f = std::pin::pin!(f);
    match select(f, futures_timer::Delay::new(d)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// A duration drawn uniformly from `[d / 2, d]`: waiters of many processes
/// that poll on this schedule spread out instead of arriving together.
pub(crate) fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(fastrand::f64())
}
