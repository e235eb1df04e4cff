//! embassy-sync's fair and greedy semaphores, through the `Sem` interface.

use std::future::Future;
use std::task::Context;

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::semaphore::{FairSemaphore, GreedySemaphore, Semaphore as _, SemaphoreReleaser};
use futures::FutureExt as _;

use crate::*;

/// embassy-sync's FIFO semaphore; its queue holds at most `N` waiters.
pub type EmbassyFair<const N: usize> = FairSemaphore<CriticalSectionRawMutex, N>;
/// Queue capacity for the workloads with at most 64 waiters.
pub const FAIR_SMALL: usize = 64;
/// Queue capacity for the backlog workload (up to 1,000,000 waiters).
pub const FAIR_BIG: usize = 1 << 20;

/// `Sem` for an embassy-sync semaphore type: fair and greedy share one API.
macro_rules! embassy_sem {
    ($ty:ty, $name:literal $(, const $n:ident)?) => {
        impl$(<const $n: usize>)? Sem for $ty {
            const NAME: &'static str = $name;
            type Guard<'a> = SemaphoreReleaser<'a, Self>;
            fn new(permits: usize) -> Self {
                <$ty>::new(permits)
            }
            fn try_one(&self) -> Option<Self::Guard<'_>> {
                self.try_acquire(1)
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
    };
}

embassy_sem!(EmbassyFair<N>, "embassy-fair", const N);

pub type EmbassyGreedy = GreedySemaphore<CriticalSectionRawMutex>;
embassy_sem!(EmbassyGreedy, "embassy-greedy");
