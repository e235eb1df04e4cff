//! `futures_intrusive`'s semaphore, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use crate::*;

/// futures-intrusive's semaphore, constructed fair.
pub struct FuturesIntrusive(pub futures_intrusive::sync::Semaphore);

impl Sem for FuturesIntrusive {
    const NAME: &'static str = "futures-intrusive";
    type Guard<'a> = futures_intrusive::sync::SemaphoreReleaser<'a>;
    fn new(permits: usize) -> Self {
        FuturesIntrusive(futures_intrusive::sync::Semaphore::new(true, permits))
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.0.try_acquire(1)
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.0.acquire(1), cx)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.0.acquire(1))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.0.acquire(1)
    }
}
