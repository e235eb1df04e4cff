//! `tokio::sync::Semaphore`, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use futures::FutureExt as _;

use crate::*;

impl Sem for tokio::sync::Semaphore {
    const NAME: &'static str = "tokio";
    type Guard<'a> = tokio::sync::SemaphorePermit<'a>;
    fn new(permits: usize) -> Self {
        tokio::sync::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire().ok()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(), cx).and_then(Result::ok)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire())
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire().map(Result::unwrap)
    }
}
