//! One interface over every implementation: the `Sem` trait the workloads use.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

/// What every workload needs from a semaphore. Methods are thin wrappers over
/// each crate's own API; all of them pay the same wrapper costs.
pub trait Sem: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// Whether it can wait at all (the bare atomic floor cannot).
    const CAN_WAIT: bool = true;
    type Guard<'a>: Send
    where
        Self: 'a;

    fn new(permits: usize) -> Self;

    /// `try_acquire` of one permit.
    fn try_one(&self) -> Option<Self::Guard<'_>>;

    /// Builds the crate's own acquire future for one permit, polls it once
    /// with `cx` and returns the permit if it resolved (workload 2).
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>>;

    /// `size_of` of the crate's own acquire future for one permit.
    fn acquire_future_size(&self) -> usize;

    /// `acquire().await` of one permit, errors unwrapped.
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_;

    /// Runs `f` holding one permit (`permits` has `run` for this; the others
    /// acquire, await `f`, and drop the permit).
    fn hold<'a, F: Future + Send + 'a>(
        &'a self,
        f: F,
    ) -> impl Future<Output = F::Output> + Send + 'a {
        async move {
            let g = self.acq().await;
            let out = f.await;
            drop(g);
            out
        }
    }

    /// Whether exactly `limit` permits are free: `limit` try-acquires
    /// succeed and one more fails.
    fn all_back(&self, limit: usize) -> bool {
        let mut held = Vec::with_capacity(limit);
        for _ in 0..limit {
            match self.try_one() {
                Some(g) => held.push(g),
                None => return false,
            }
        }
        self.try_one().is_none()
    }
}

pub fn poll_native<F: Future<Output = O>, O>(f: F, cx: &mut Context<'_>) -> Option<O> {
    let f = pin!(f);
    match f.poll(cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}
