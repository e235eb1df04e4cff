//! The one-waker slot (`WakeOne`): a round that could serve a second waiter
//! stops on the full slot, and `serve` hands the rest on, in queue order.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use crate::wake_batch::{WakeOne, Wakers};
use crate::Semaphore;

struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_full_slot_stops_the_round_and_serve_hands_on_in_order() {
    let sem = Semaphore::new(2);
    // Its two permits are the ones the round below hands over.
    core::mem::forget(sem.try_acquire_many(2).unwrap());
    let (a, b) = (
        Arc::new(CountWakes(AtomicUsize::new(0))),
        Arc::new(CountWakes(AtomicUsize::new(0))),
    );
    let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
    let mut first = pin!(sem.acquire());
    let mut second = pin!(sem.acquire());
    assert!(first
        .as_mut()
        .poll(&mut Context::from_waker(&wa))
        .is_pending());
    assert!(second
        .as_mut()
        .poll(&mut Context::from_waker(&wb))
        .is_pending());

    let mut one = WakeOne::default();
    let more = sem.queue.with(|q| sem.distribute_locked(q, 2, &mut one));
    assert!(more, "two permits serve two waiters: the slot holds one");
    assert_eq!(sem.available_permits(), 1, "the rest waits in the counter");
    assert!(sem.try_acquire().is_err(), "flagged QUEUED: no barging");
    one.wake_all();
    assert_eq!(a.0.load(Ordering::SeqCst), 1, "the head is woken first");
    assert_eq!(b.0.load(Ordering::SeqCst), 0);

    sem.serve();
    assert_eq!(b.0.load(Ordering::SeqCst), 1);
    assert_eq!(sem.available_permits(), 0);
    let cx = &mut Context::from_waker(&wa);
    assert!(matches!(first.poll(cx), Poll::Ready(Ok(_))));
    assert!(matches!(second.poll(cx), Poll::Ready(Ok(_))));
}

#[test]
fn dropping_a_full_slot_wakes_its_waiter() {
    let count = Arc::new(CountWakes(AtomicUsize::new(0)));
    let mut one = WakeOne::default();
    one.push(Some(Waker::from(count.clone())));
    assert!(one.is_full());
    drop(one);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}
