//! Hand-polling helpers shared by the integration tests.
#![allow(dead_code)]

pub mod keyed_tracker;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A waker that counts how often it was woken.
#[derive(Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
    }
}

/// A boxed future polled by hand with its own counting waker.
pub struct Task<F: Future> {
    pub fut: Pin<Box<F>>,
    counter: Arc<CountingWaker>,
    waker: Waker,
}

impl<F: Future> Task<F> {
    pub fn new(fut: F) -> Self {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        Self {
            fut: Box::pin(fut),
            counter,
            waker,
        }
    }

    /// Polls once with this task's waker.
    pub fn poll(&mut self) -> Poll<F::Output> {
        self.fut
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
    }

    /// Polls once with another waker (to test waker replacement).
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<F::Output> {
        self.fut.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// Polls once, expecting `Pending`.
    #[track_caller]
    pub fn pending(&mut self) {
        assert!(self.poll().is_pending(), "expected Pending");
    }

    /// Polls once, expecting `Ready`, and returns the output.
    #[track_caller]
    pub fn ready(&mut self) -> F::Output {
        match self.poll() {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("expected Ready"),
        }
    }

    /// How often this task's waker was woken so far.
    pub fn wakes(&self) -> usize {
        self.counter.wakes.load(SeqCst)
    }
}

/// A counting waker not tied to a task.
pub fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (counter.clone(), Waker::from(counter))
}

impl CountingWaker {
    pub fn wakes(&self) -> usize {
        self.wakes.load(SeqCst)
    }
}

/// Returns `Pending` once (waking itself), then `Ready`.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Tracks how many units of work run at once and the maximum seen.
#[derive(Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    pub const fn new() -> Self {
        Self {
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        }
    }
    pub fn enter(&self, n: usize) {
        let now = self.now.fetch_add(n, SeqCst) + n;
        self.max.fetch_max(now, SeqCst);
    }
    pub fn exit(&self, n: usize) {
        self.now.fetch_sub(n, SeqCst);
    }
    pub fn max(&self) -> usize {
        self.max.load(SeqCst)
    }
    pub fn now(&self) -> usize {
        self.now.load(SeqCst)
    }
}

/// Work items that finish when the test says: [`item`](Self::item)`(i)` is
/// `Pending` until [`finish`](Self::finish)`(i)`, so a test decides the
/// order in which a backlog stream's items complete, one at a time.
#[derive(Clone, Default)]
pub struct Switches(Arc<std::sync::Mutex<SwitchState>>);

#[derive(Default)]
struct SwitchState {
    finished: std::collections::BTreeSet<u32>,
    running: std::collections::BTreeMap<u32, Option<Waker>>,
}

/// The future of [`Switches::item`].
pub struct Switched {
    switches: Switches,
    id: u32,
}

impl Switches {
    /// Item `id`'s work: ready with `id` once `finish(id)` was called.
    pub fn item(&self, id: u32) -> Switched {
        self.0.lock().unwrap().running.insert(id, None);
        Switched {
            switches: self.clone(),
            id,
        }
    }

    /// Lets item `id` finish (now, or when it starts) and wakes it.
    pub fn finish(&self, id: u32) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.finished.insert(id);
            s.running.get_mut(&id).and_then(Option::take)
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The items started and not yet finished or dropped, in order.
    pub fn running(&self) -> Vec<u32> {
        self.0.lock().unwrap().running.keys().copied().collect()
    }
}

impl Future for Switched {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut s = self.switches.0.lock().unwrap();
        if s.finished.contains(&self.id) {
            s.running.remove(&self.id);
            return Poll::Ready(self.id);
        }
        s.running.insert(self.id, Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Switched {
    fn drop(&mut self) {
        self.switches.0.lock().unwrap().running.remove(&self.id);
    }
}

/// Polls `stream` once with `waker`.
pub fn poll_next<S: futures::Stream + ?Sized>(
    stream: Pin<&mut S>,
    waker: &Waker,
) -> Poll<Option<S::Item>> {
    stream.poll_next(&mut Context::from_waker(waker))
}
