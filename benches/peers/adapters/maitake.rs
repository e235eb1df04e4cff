//! `maitake_sync::Semaphore`, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use futures::FutureExt as _;

use crate::*;

impl Sem for maitake_sync::Semaphore {
    const NAME: &'static str = "maitake-sync";
    type Guard<'a> = maitake_sync::semaphore::Permit<'a>;
    fn new(permits: usize) -> Self {
        maitake_sync::Semaphore::new(permits)
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        self.try_acquire(1).ok()
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(self.acquire(1), cx).and_then(Result::ok)
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&self.acquire(1))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        self.acquire(1).map(Result::unwrap)
    }
}
