//! A many-listener wake-up: `notify` wakes every `listen()` made before it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct Event {
    generation: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Event {
    pub(crate) fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap());
        // Woken outside the lock: a waker may run code that listens again.
        for w in wakers {
            w.wake();
        }
    }

    /// A future that completes at the first `notify` after this call.
    pub(crate) fn listen(&self) -> Listen<'_> {
        Listen {
            event: self,
            start: self.generation.load(Ordering::SeqCst),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Listen<'a> {
    event: &'a Event,
    start: u64,
}

impl Future for Listen<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let fired = || self.event.generation.load(Ordering::SeqCst) != self.start;
        if fired() {
            return Poll::Ready(());
        }
        {
            let mut wakers = self.event.wakers.lock().unwrap();
            // One entry per task: a re-polled listener does not pile up wakers.
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        }
        // A notify between the first check and the push took the old list.
        if fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;
    use std::pin::pin;

    #[test]
    fn notify_completes_listeners_made_before_it_only() {
        let event = Event::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut before = pin!(event.listen());
        assert!(before.as_mut().poll(&mut cx).is_pending());
        assert!(before.as_mut().poll(&mut cx).is_pending());
        assert_eq!(event.wakers.lock().unwrap().len(), 1, "one waker per task");
        event.notify();
        let mut after = pin!(event.listen());
        assert!(before.as_mut().poll(&mut cx).is_ready());
        assert!(after.as_mut().poll(&mut cx).is_pending());
    }
}
