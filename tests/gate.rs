//! `RunWith` over custom gates (issue 10): what the per-key, adaptive and
//! fleet-wide limits rely on: a gate that fails with its own error, one that
//! chooses which item goes next, settling with each output, the permit's
//! drop when an item does not finish, `stop` on `stop_on_err`.
#![cfg(feature = "alloc")]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::stream::{self, Stream, StreamExt};
use permits::{Gate, RunWith, Semaphore, SemaphoreGate};

/// Counts what a gate was told.
#[derive(Default)]
struct Log {
    admitted: Cell<usize>,
    settled: RefCell<Vec<u32>>,
    dropped: Cell<usize>,
    stopped: Cell<bool>,
}

/// A permit that notes its drop.
struct Noted(Rc<Log>);

impl Drop for Noted {
    fn drop(&mut self) {
        self.0.dropped.set(self.0.dropped.get() + 1);
    }
}

/// Admits up to `lease_for` items, then fails like a lost lease would.
struct Leases {
    log: Rc<Log>,
    lease_for: usize,
}

#[derive(Debug, PartialEq)]
struct LeaseLost;

impl<T> Gate<T, u32> for Leases {
    type Permit = Noted;
    type Error = LeaseLost;

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Noted), LeaseLost>>> {
        if self.log.admitted.get() == self.lease_for {
            return Poll::Ready(Some(Err(LeaseLost)));
        }
        match backlog.poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.log.admitted.set(self.log.admitted.get() + 1);
                Poll::Ready(Some(Ok((item, Noted(self.log.clone())))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn settle(self: Pin<&mut Self>, permit: Noted, output: &u32) {
        self.log.settled.borrow_mut().push(*output);
        drop(permit);
    }

    fn stop(self: Pin<&mut Self>) {
        self.log.stopped.set(true);
    }
}

#[test]
fn a_failing_gate_ends_the_stream_with_its_error_after_the_work_in_flight() {
    let log = Rc::new(Log::default());
    let gate = Leases {
        log: log.clone(),
        lease_for: 5,
    };
    let mut s =
        pin!(RunWith::new(gate, stream::iter(0..10u32), |i| async move { i * 10 }).limit(2));
    let out: Vec<_> = block_on(s.as_mut().collect());
    assert_eq!(out.len(), 6);
    assert_eq!(out[5], Err(LeaseLost), "the error last");
    let mut ok: Vec<u32> = out[..5].iter().map(|r| *r.as_ref().unwrap()).collect();
    ok.sort_unstable();
    assert_eq!(ok, [0, 10, 20, 30, 40]);
    // Each admitted item settled once with its output, permits all dropped.
    let mut settled = log.settled.borrow().clone();
    settled.sort_unstable();
    assert_eq!(settled, ok);
    assert_eq!(log.dropped.get(), 5);
    // The items the gate never admitted are still in the source.
    let left: Vec<u32> = block_on(s.as_mut().source_mut().collect());
    assert_eq!(left, [5, 6, 7, 8, 9]);
}

#[test]
fn an_item_that_does_not_finish_is_not_settled_its_permit_is_dropped() {
    let log = Rc::new(Log::default());
    let gate = Leases {
        log: log.clone(),
        lease_for: usize::MAX,
    };
    let (admitted, settled) = {
        let mut s = pin!(RunWith::new(gate, stream::iter(0..10u32), |i| async move {
            if i % 2 == 1 {
                std::future::pending::<()>().await;
            }
            i
        })
        .limit(4));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = 0;
        while got < 2 {
            if let Poll::Ready(Some(r)) = s.as_mut().poll_next(&mut cx) {
                r.unwrap();
                got += 1;
            }
        }
        let settled = log.settled.borrow().len();
        assert!(settled >= 2);
        assert!(log.admitted.get() > settled, "some still in flight");
        (log.admitted.get(), settled)
        // The stream is dropped here.
    };
    // The pending ones were dropped with the stream: not settled, dropped.
    assert_eq!(log.settled.borrow().len(), settled);
    assert_eq!(log.dropped.get(), admitted);
}

#[test]
fn stop_on_err_tells_the_gate_to_stop() {
    struct Plain(Rc<Log>);
    impl<T, O> Gate<T, O> for Plain {
        type Permit = ();
        type Error = std::convert::Infallible;
        fn poll_admit<B: Stream<Item = T> + ?Sized>(
            self: Pin<&mut Self>,
            backlog: Pin<&mut B>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<(T, ()), Self::Error>>> {
            backlog.poll_next(cx).map(|i| i.map(|i| Ok((i, ()))))
        }
        fn stop(self: Pin<&mut Self>) {
            self.0.stopped.set(true);
        }
    }
    let log = Rc::new(Log::default());
    let s = RunWith::new(Plain(log.clone()), stream::iter(0..10u32), |i| async move {
        if i == 3 {
            Err(i)
        } else {
            Ok(i)
        }
    })
    .limit(1)
    .stop_on_err();
    let out: Vec<_> = block_on(s.collect());
    assert_eq!(out.len(), 4, "0, 1, 2, then the error");
    assert!(log.stopped.get());
}

/// Chooses which item goes next: looks ahead up to 3 items and admits the
/// even ones first, as a per-key limit admits an item whose key has room.
struct EvensFirst {
    lookahead: VecDeque<u32>,
    drained: bool,
}

impl<O> Gate<u32, O> for EvensFirst {
    type Permit = ();
    type Error = std::convert::Infallible;

    fn poll_admit<B: Stream<Item = u32> + ?Sized>(
        mut self: Pin<&mut Self>,
        mut backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(u32, ()), Self::Error>>> {
        while !self.drained && self.lookahead.len() < 3 {
            match backlog.as_mut().poll_next(cx) {
                Poll::Ready(Some(i)) => self.lookahead.push_back(i),
                Poll::Ready(None) => self.drained = true,
                Poll::Pending => break,
            }
        }
        let pick = self
            .lookahead
            .iter()
            .position(|i| i % 2 == 0)
            .or((!self.lookahead.is_empty()).then_some(0));
        match pick {
            Some(at) => Poll::Ready(Some(Ok((self.lookahead.remove(at).unwrap(), ())))),
            None if self.drained => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

#[test]
fn a_gate_chooses_which_item_goes_next_from_a_bounded_lookahead() {
    let gate = EvensFirst {
        lookahead: VecDeque::new(),
        drained: false,
    };
    let started = RefCell::new(Vec::new());
    let s = RunWith::new(gate, stream::iter(1..=6u32), |i| {
        started.borrow_mut().push(i);
        async move { i }
    })
    .limit(1);
    let out: Vec<u32> = block_on(s.map(Result::unwrap).collect());
    assert_eq!(out.len(), 6);
    assert_eq!(*started.borrow(), [2, 4, 1, 6, 3, 5]);
}

#[test]
fn run_with_over_a_semaphore_gate_is_run_all() {
    let sem = Semaphore::new(3);
    let out: Vec<_> = block_on(
        RunWith::new(
            SemaphoreGate::new(&sem),
            stream::iter(0..20u32),
            |i| async move { i },
        )
        .limit(8)
        .in_order()
        .collect(),
    );
    assert_eq!(out, (0..20).map(Ok).collect::<Vec<_>>());
    assert_eq!(sem.available_permits(), 3);
}

#[test]
#[should_panic(expected = "call `limit` first")]
fn run_with_in_order_needs_a_limit() {
    let sem = Semaphore::new(3);
    let _ = RunWith::new(
        SemaphoreGate::new(&sem),
        stream::iter(0..2u32),
        |i| async move { i },
    )
    .in_order();
}

/// Records the room it is told about before each admission.
struct Rooms(Rc<RefCell<Vec<usize>>>);

impl<T, O> Gate<T, O> for Rooms {
    type Permit = ();
    type Error = std::convert::Infallible;

    fn room(self: Pin<&mut Self>, n: usize) {
        self.0.borrow_mut().push(n);
    }

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, ()), Self::Error>>> {
        backlog.poll_next(cx).map(|i| i.map(|i| Ok((i, ()))))
    }
}

#[test]
fn the_gate_is_told_the_room_before_each_admission() {
    // Items that stay pending until released, limit 3: the rooms told are
    // 3, 2, 1 as the slots fill, then (in order) the finished items that
    // wait their turn count against it too.
    let rooms = Rc::new(RefCell::new(Vec::new()));
    let gates: Vec<_> = (0..6)
        .map(|_| futures::channel::oneshot::channel::<()>())
        .collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = gates.into_iter().unzip();
    let mut s = pin!(RunWith::new(
        Rooms(rooms.clone()),
        stream::iter(receivers.into_iter().enumerate()),
        |(i, rx)| async move {
            let _ = rx.await;
            i
        }
    )
    .limit(3)
    .in_order());
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(s.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(*rooms.borrow(), [3, 2, 1]);
    let mut senders = senders.into_iter().map(Some).collect::<Vec<_>>();
    // The second item finishes first: its output waits for the first, so
    // no room opens.
    senders[1].take().unwrap().send(()).unwrap();
    assert!(s.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(*rooms.borrow(), [3, 2, 1]);
    // The first finishes: both are yielded, and the next poll has room 2.
    senders[0].take().unwrap().send(()).unwrap();
    assert_eq!(s.as_mut().poll_next(&mut cx), Poll::Ready(Some(Ok(0))));
    assert_eq!(s.as_mut().poll_next(&mut cx), Poll::Ready(Some(Ok(1))));
    assert!(s.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(*rooms.borrow(), [3, 2, 1, 2, 1]);
    drop(senders);
}

/// At most `cap` items out, and while full it returns `Pending` without
/// keeping any waker: it counts on the stream polling it again after each
/// `settle` (the gate contract).
struct OwnRoomOnly {
    cap: usize,
    out: usize,
    pending_polls: usize,
}

impl<T, O> Gate<T, O> for OwnRoomOnly {
    type Permit = ();
    type Error = std::convert::Infallible;

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        mut self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, ()), Self::Error>>> {
        if self.out == self.cap {
            self.pending_polls += 1;
            return Poll::Pending;
        }
        let polled = backlog.poll_next(cx);
        if let Poll::Ready(Some(_)) = polled {
            self.out += 1;
        }
        polled.map(|i| i.map(|i| Ok((i, ()))))
    }

    fn settle(mut self: Pin<&mut Self>, _permit: (), _output: &O) {
        self.out -= 1;
    }
}

#[test]
fn a_gate_waiting_for_its_own_items_is_polled_again_after_each_settle() {
    // Items that wait for their channel, 2 at a time by the gate (the
    // stream has room for 8). Each release wakes only the item's own
    // waker; the gate never wakes anyone, yet every item runs, and the
    // gate is asked again once after each finish that found it full.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..6)
        .map(|_| futures::channel::oneshot::channel::<()>())
        .unzip();
    let started = Rc::new(Cell::new(0));
    let gate = OwnRoomOnly {
        cap: 2,
        out: 0,
        pending_polls: 0,
    };
    let mut s = pin!(RunWith::new(gate, stream::iter(receivers), |rx| {
        started.set(started.get() + 1);
        async move { rx.await.is_ok() }
    })
    .limit(8));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(s.as_mut().poll_next(&mut cx).is_pending());
    assert_eq!(started.get(), 2);
    let mut outputs = 0;
    for (k, tx) in senders.into_iter().enumerate() {
        tx.send(()).unwrap();
        // The finished item is yielded; the poll after it admits the next.
        assert_eq!(s.as_mut().poll_next(&mut cx), Poll::Ready(Some(Ok(true))));
        outputs += 1;
        let _ = s.as_mut().poll_next(&mut cx);
        assert_eq!(started.get(), (k + 3).min(6), "after {} finished", k + 1);
    }
    assert_eq!(outputs, 6);
    assert_eq!(s.as_mut().poll_next(&mut cx), Poll::Ready(None));
    // Full after the first fill and after each of the first four refills.
    assert_eq!(s.gate().pending_polls, 5);
}
