//! The floor: an `AtomicUsize` that cannot wait.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::task::{Context, Poll};

use crate::*;

/// The floor: one CAS to take, one `fetch_add` to give back. Cannot wait.
pub struct Floor(pub AtomicUsize);
pub struct FloorGuard<'a>(&'a AtomicUsize);
impl Drop for FloorGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Release);
    }
}

impl Sem for Floor {
    const NAME: &'static str = "AtomicUsize";
    const CAN_WAIT: bool = false;
    type Guard<'a> = FloorGuard<'a>;
    fn new(permits: usize) -> Self {
        Floor(AtomicUsize::new(permits))
    }
    fn try_one(&self) -> Option<Self::Guard<'_>> {
        let mut cur = self.0.load(Relaxed);
        loop {
            if cur == 0 {
                return None;
            }
            match self.0.compare_exchange_weak(cur, cur - 1, Acquire, Relaxed) {
                Ok(_) => return Some(FloorGuard(&self.0)),
                Err(actual) => cur = actual,
            }
        }
    }
    fn poll_acquire_once<'a>(&'a self, cx: &mut Context<'_>) -> Option<Self::Guard<'a>> {
        poll_native(
            std::future::poll_fn(|_| self.try_one().map_or(Poll::Pending, Poll::Ready)),
            cx,
        )
    }
    fn acquire_future_size(&self) -> usize {
        size_of_val(&std::future::poll_fn(|_| {
            self.try_one().map_or(Poll::Pending, Poll::Ready)
        }))
    }
    fn acq(&self) -> impl Future<Output = Self::Guard<'_>> + Send + '_ {
        std::future::poll_fn(|_| self.try_one().map_or(Poll::Pending, Poll::Ready))
    }
}
