//! Shared helpers of the contended workloads: who is inside the limit, a watchdog, a yield.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::*;

/// Counts who is inside the limit and when the run is over.
pub struct Shared {
    pub limit: usize,
    pub inside: AtomicUsize,
    pub violated: AtomicBool,
    pub left: AtomicUsize,
    pub aborted: AtomicBool,
    pub waker: Mutex<Option<Waker>>,
}

impl Shared {
    pub fn new(limit: usize, tasks: usize) -> Arc<Self> {
        Arc::new(Shared {
            limit,
            inside: AtomicUsize::new(0),
            violated: AtomicBool::new(false),
            left: AtomicUsize::new(tasks),
            aborted: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    pub fn enter(&self) {
        if self.inside.fetch_add(1, Relaxed) + 1 > self.limit {
            self.violated.store(true, Relaxed);
        }
    }

    pub fn exit(&self) {
        self.inside.fetch_sub(1, Relaxed);
    }

    pub fn finish_one(&self) {
        if self.left.fetch_sub(1, AcqRel) == 1 {
            self.wake_main();
        }
    }

    pub fn aborted(&self) -> bool {
        self.aborted.load(Relaxed)
    }

    pub fn wake_main(&self) {
        let waker = self.waker.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Resolves when every task finished or the run was aborted.
    pub fn all_done(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        std::future::poll_fn(move |cx| {
            let over = |s: &Shared| s.left.load(Acquire) == 0 || s.aborted();
            if over(&this) {
                return Poll::Ready(());
            }
            *this.waker.lock().unwrap() = Some(cx.waker().clone());
            if over(&this) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// The verdict of a run that took `elapsed` for `ops` operations.
    pub fn verdict<S: Sem>(&self, sem: &S, elapsed: Duration, ops: usize) -> Outcome {
        if self.aborted() {
            return Outcome::Timeout;
        }
        if self.violated.load(Relaxed) {
            return Outcome::Fail("limit exceeded".into());
        }
        if self.left.load(Acquire) != 0 {
            return Outcome::Fail("tasks unfinished".into());
        }
        if !sem.all_back(self.limit) {
            return Outcome::Fail("permits not back".into());
        }
        Outcome::Value(elapsed.as_nanos() as f64 / ops as f64)
    }
}

/// Sets `aborted` (and wakes the waiting main future) if the run is not over
/// within `budget`. Dropping it stops the watch.
pub struct Watchdog {
    pub stop: Option<mpsc::Sender<()>>,
    pub thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(shared: &Arc<Shared>, budget: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let shared = shared.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(budget) {
                shared.aborted.store(true, Relaxed);
                shared.wake_main();
            }
        });
        Watchdog {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`: a task
/// switch while holding the permit, the same on every executor.
pub struct YieldOnce(pub bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
