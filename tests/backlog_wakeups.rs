//! Per-slot wake-ups of the heap backlog streams (issue 10): a wake-up polls
//! the woken futures only; stale wake-ups, wakers that outlive the stream,
//! wake-ups from other threads and during a poll are all harmless; `in_order`
//! at a large limit; dropping mid-flight gives every permit back.
#![cfg(feature = "alloc")]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::stream::{Stream, StreamExt};
use permits::Semaphore;

/// Scaled down under Miri, which runs these some 1000x slower.
const MANY: usize = if cfg!(miri) { 64 } else { 4096 };

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn poll_with<S: Stream + ?Sized>(s: Pin<&mut S>, waker: &Waker) -> Poll<Option<S::Item>> {
    s.poll_next(&mut Context::from_waker(waker))
}

/// A reply the test sends by hand: pending until `answer`ed, counting its
/// polls; keeps the waker of its last poll where the test can reach it.
#[derive(Default)]
struct Mailbox {
    answered: Cell<bool>,
    polls: Cell<usize>,
    waker: RefCell<Option<Waker>>,
}

struct Reply(Rc<Mailbox>);

impl Future for Reply {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let m = &self.0;
        m.polls.set(m.polls.get() + 1);
        if m.answered.get() {
            return Poll::Ready(m.polls.get());
        }
        *m.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn answer(m: &Mailbox) {
    m.answered.set(true);
    m.waker.borrow().as_ref().unwrap().wake_by_ref();
}

#[test]
fn a_wake_up_polls_only_the_woken_future() {
    let sem = Semaphore::new(64);
    let boxes: Vec<Rc<Mailbox>> = (0..64).map(|_| Rc::default()).collect();
    let mut s = pin!(sem.run_all(0..64, |i| Reply(boxes[i].clone())));
    let task = Arc::new(CountWakes::default());
    let waker = Waker::from(task.clone());
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    assert!(boxes.iter().all(|m| m.polls.get() == 1));
    // Answer them in an order unrelated to arrival; each answer wakes the
    // stream's task once and polls exactly the answered future.
    for (n, i) in (0..64).map(|k| (k * 37) % 64).enumerate() {
        answer(&boxes[i]);
        assert_eq!(
            task.0.load(SeqCst),
            n + 1,
            "one wake-up of the task per answer"
        );
        assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(Some(Ok(2))));
        let polled: usize = boxes.iter().map(|m| m.polls.get()).sum();
        assert_eq!(polled, 64 + n + 1, "only item {i} was polled again");
        if n < 63 {
            // Back to sleep (the stream owes no wake-up after a `Ready`).
            assert!(poll_with(s.as_mut(), &waker).is_pending());
            let polled: usize = boxes.iter().map(|m| m.polls.get()).sum();
            assert_eq!(polled, 64 + n + 1, "nothing woken, nothing polled");
        }
    }
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(None));
    assert_eq!(sem.available_permits(), 64);
}

#[test]
fn a_stale_wake_up_costs_at_most_one_poll_of_the_next_item() {
    // One permit: every item runs in the same slot, with the same waker.
    let sem = Semaphore::new(1);
    let boxes: Vec<Rc<Mailbox>> = (0..3).map(|_| Rc::default()).collect();
    let mut s = pin!(sem.run_all(0..3, |i| Reply(boxes[i].clone())));
    let waker = futures::task::noop_waker();
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    // Item 0's waker, kept elsewhere (a timer that was not cancelled).
    let kept = boxes[0].waker.borrow().clone().unwrap();
    answer(&boxes[0]);
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(Some(Ok(2))));
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    assert_eq!(boxes[1].polls.get(), 1, "item 1 started in the slot");
    // The stale wake-up reaches item 1 (same slot): one extra poll, which
    // finds it pending, and nothing else.
    kept.wake_by_ref();
    kept.wake_by_ref();
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    assert_eq!(boxes[1].polls.get(), 2);
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    assert_eq!(boxes[1].polls.get(), 2, "no wake-up, no poll");
    answer(&boxes[1]);
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(Some(Ok(3))));
    assert!(poll_with(s.as_mut(), &waker).is_pending());
    answer(&boxes[2]);
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(Some(Ok(2))));
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(None));
    // After the stream ended, the old waker still works (it marks a slot
    // nobody polls).
    kept.wake();
}

#[test]
fn wakers_kept_after_the_stream_is_dropped_are_harmless() {
    let sem = Semaphore::new(8);
    let boxes: Vec<Rc<Mailbox>> = (0..8).map(|_| Rc::default()).collect();
    let kept: Vec<Waker> = {
        let mut s = pin!(sem.run_all(0..100, |i| Reply(boxes[i % 8].clone())));
        assert!(poll_with(s.as_mut(), &futures::task::noop_waker()).is_pending());
        boxes
            .iter()
            .map(|m| m.waker.borrow().clone().unwrap())
            .collect()
        // The stream is dropped here, its futures with it.
    };
    assert_eq!(sem.available_permits(), 8, "every permit back");
    // Under Miri: no use after free, no leak reported for the wakers.
    for w in &kept {
        w.wake_by_ref();
    }
    let clones: Vec<Waker> = kept.to_vec();
    drop(kept);
    for w in clones {
        w.wake();
    }
    for m in &boxes {
        drop(m.waker.borrow_mut().take());
    }
}

#[test]
fn a_wake_up_during_the_poll_brings_the_task_back() {
    let sem = Semaphore::new(2);
    // Each item wakes itself during each of its first 3 polls.
    let mut s = pin!(sem.run_all(0..2, |i| async move {
        for _ in 0..3 {
            let mut first = true;
            std::future::poll_fn(|cx| {
                if std::mem::take(&mut first) {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
        i
    }));
    let task = Arc::new(CountWakes::default());
    let waker = Waker::from(task.clone());
    let mut outputs = Vec::new();
    let mut polls = 0;
    while outputs.len() < 2 {
        let before = task.0.load(SeqCst);
        match poll_with(s.as_mut(), &waker) {
            Poll::Ready(Some(out)) => outputs.push(out.unwrap()),
            Poll::Ready(None) => unreachable!("two items"),
            // Pending only with a wake-up of the task on record: an executor
            // comes back, nothing is lost.
            Poll::Pending => assert!(task.0.load(SeqCst) > before, "pending, not woken"),
        }
        polls += 1;
        assert!(polls < 100, "no progress");
    }
    outputs.sort_unstable();
    assert_eq!(outputs, [0, 1]);
}

/// Replies from another thread: each item hands its waker to a worker
/// thread, which answers in its own time.
struct Remote {
    done: Arc<AtomicBool>,
    sent: bool,
    to_worker: std::sync::mpsc::Sender<(Arc<AtomicBool>, Waker)>,
}

impl Future for Remote {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.load(SeqCst) {
            return Poll::Ready(());
        }
        if !self.sent {
            self.sent = true;
            let job = (self.done.clone(), cx.waker().clone());
            self.to_worker.send(job).unwrap();
        }
        Poll::Pending
    }
}

#[test]
fn wake_ups_from_other_threads_on_a_multi_thread_runtime() {
    static SEM: Semaphore = Semaphore::new(64);
    let items = if cfg!(miri) { 40 } else { 20_000 };
    let (tx, rx) = std::sync::mpsc::channel::<(Arc<AtomicBool>, Waker)>();
    // Answers in batches, in reverse, from its own thread.
    let worker = std::thread::spawn(move || {
        let mut batch = Vec::new();
        while let Ok(job) = rx.recv() {
            batch.push(job);
            batch.extend(rx.try_iter());
            for (done, waker) in batch.drain(..).rev() {
                done.store(true, SeqCst);
                waker.wake();
            }
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let tx = Mutex::new(tx);
    let n = rt.block_on(async {
        let tx = tx.lock().unwrap().clone();
        tokio::spawn(async move {
            SEM.run_all(0..items, |i| {
                let to_worker = tx.clone();
                async move {
                    Remote {
                        done: Arc::default(),
                        sent: false,
                        to_worker,
                    }
                    .await;
                    i
                }
            })
            .fold(0usize, |n, r| async move { n + r.unwrap() })
            .await
        })
        .await
        .unwrap()
    });
    assert_eq!(n, (0..items).sum::<usize>());
    assert_eq!(SEM.available_permits(), 64);
    drop(tx);
    worker.join().unwrap();
}

#[test]
fn in_order_with_out_of_order_completion_at_a_large_limit() {
    let sem = Semaphore::new(MANY);
    let boxes: RefCell<Vec<Rc<Mailbox>>> = RefCell::default();
    let items = 3 * MANY;
    let mut s = pin!(sem
        .run_all(0..items, |i| {
            let m = Rc::<Mailbox>::default();
            boxes.borrow_mut().push(m.clone());
            async move {
                Reply(m).await;
                i
            }
        })
        .in_order());
    let waker = futures::task::noop_waker();
    let mut next = 0;
    let mut answered = 0;
    while next < items {
        match poll_with(s.as_mut(), &waker) {
            Poll::Ready(Some(out)) => {
                assert_eq!(out, Ok(next), "in source order");
                next += 1;
            }
            Poll::Ready(None) => unreachable!("{next} of {items}"),
            Poll::Pending => {
                // Answer the started, unanswered items in a scrambled order,
                // the oldest last.
                let started = boxes.borrow().len();
                assert!(started - next <= MANY, "window bounded by the limit");
                let open: Vec<usize> = (answered..started).collect();
                for k in 0..open.len() {
                    let j = open[(k * 7919 + 1) % open.len()];
                    if !boxes.borrow()[j].answered.get() {
                        answer(&boxes.borrow()[j]);
                    }
                }
                for j in open {
                    if !boxes.borrow()[j].answered.get() {
                        answer(&boxes.borrow()[j]);
                    }
                }
                answered = started;
            }
        }
    }
    assert_eq!(poll_with(s.as_mut(), &waker), Poll::Ready(None));
    assert_eq!(sem.available_permits(), MANY);
}

#[test]
fn dropping_mid_flight_gives_every_permit_back() {
    let sem = Semaphore::new(MANY);
    let other = Semaphore::new(3);
    let boxes: Vec<Rc<Mailbox>> = (0..MANY).map(|_| Rc::default()).collect();
    {
        let mut s = pin!(sem.run_all(0.., |i| Reply(boxes[i % MANY].clone())));
        let waker = futures::task::noop_waker();
        assert!(poll_with(s.as_mut(), &waker).is_pending());
        assert_eq!(sem.available_permits(), 0);
        // Some finish, some are woken and not yet polled, the rest wait.
        for m in boxes.iter().step_by(3) {
            answer(m);
        }
        for _ in 0..5 {
            let _ = poll_with(s.as_mut(), &waker);
        }
        for m in boxes.iter().skip(1).step_by(3) {
            answer(m);
        }
        // And a stream queued on a semaphore that has no permit free.
        let held = other.try_acquire_many(3).unwrap();
        let mut queued = pin!(other.run_all(0..10, |i| async move { i }));
        assert!(poll_with(queued.as_mut(), &waker).is_pending());
        assert_eq!(other.waiters(), 1);
        drop(held);
        // Both dropped here, mid-flight.
    }
    assert_eq!(sem.available_permits(), MANY);
    assert_eq!(other.available_permits(), 3);
    assert_eq!(other.waiters(), 0);
}
