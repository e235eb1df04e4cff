//! `permits`, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use futures::FutureExt as _;

use crate::*;

impl Sem for permits::Semaphore {
    const NAME: &'static str = "permits";
    type Guard<'a> = permits::Permit<'a>;
    fn new(permits: usize) -> Self {
        permits::Semaphore::new(permits)
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
    fn hold<'a, F: Future + Send + 'a>(
        &'a self,
        f: F,
    ) -> impl Future<Output = F::Output> + Send + 'a {
        self.run(f).map(Result::unwrap)
    }
}
