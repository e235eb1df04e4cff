//! `async_lock::Semaphore`, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use crate::*;

impl Sem for async_lock::Semaphore {
    const NAME: &'static str = "async-lock";
    type Guard<'a> = async_lock::SemaphoreGuard<'a>;
    fn new(permits: usize) -> Self {
        async_lock::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(), cx)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire())
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire()
    }
}
