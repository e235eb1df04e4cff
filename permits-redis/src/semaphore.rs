//! `GlobalSemaphore`: the handle users hold.

use std::fmt;
use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::inner::Inner;
use crate::{Acquire, Builder, Run};

/// One concurrency limit shared by every process that uses the same name on
/// the same Redis (or Valkey) server. Cheap to clone; clones share the local
/// stage, the leases and the driver.
///
/// Made by [`GlobalSemaphore::builder`]; see the crate docs for the design
/// and its guarantees.
///
/// # Fairness
///
/// Two stages, both first in, first out: acquires of one process queue
/// locally (a `permits::Semaphore` with the local limit), and only the head
/// of that queue takes a ticket in Redis' queue, which serves tickets in
/// arrival order. So processes take turns, and within a process tasks do.
pub struct GlobalSemaphore {
    pub(crate) inner: Arc<Inner>,
}

/// Script calls this process made for one semaphore, from
/// [`GlobalSemaphore::stats`]: each is one round trip to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Acquire calls (the first try and each queue poll).
    pub acquire_calls: u64,
    /// Release calls (each may carry many leases).
    pub release_calls: u64,
    /// Refresh calls (each carries up to 500 leases of this process).
    pub refresh_calls: u64,
}

impl GlobalSemaphore {
    /// A builder for the semaphore `name` with `limit` permits in total.
    /// See [`Builder`] for the settings and [`Builder::build`] for the
    /// connection.
    pub fn builder(name: impl AsRef<[u8]>, limit: u64) -> Builder {
        Builder::new(name.as_ref(), limit)
    }

    /// Waits for a lease: first a local permit, then a global one.
    ///
    /// Errors: [`Closed`](crate::Error::Closed) if the semaphore is or gets
    /// closed; [`LimitMismatch`](crate::Error::LimitMismatch) if another
    /// client registered this name with another limit (after a data loss);
    /// [`Redis`](crate::Error::Redis) for server errors that retrying does
    /// not fix. Connection trouble and timeouts are retried (with the same
    /// lease id, so no phantom lease can appear); to give up after a while,
    /// drop the future (e.g. with a timeout).
    ///
    /// # Cancel safety
    ///
    /// See [`Acquire`]: dropping it leaves nothing behind.
    pub fn acquire(&self) -> Acquire {
        Acquire::new(self.clone(), true)
    }

    /// One attempt, without queueing: a lease if a local and a global permit
    /// are free and nobody is queued ahead, [`NoPermits`](crate::Error::NoPermits)
    /// otherwise, [`Unavailable`](crate::Error::Unavailable) if Redis did
    /// not answer in time. One round trip.
    ///
    /// # Cancel safety
    ///
    /// As for [`acquire`](Self::acquire).
    pub fn try_acquire(&self) -> Acquire {
        Acquire::new(self.clone(), false)
    }

    /// Runs `f` while holding a lease: `f` is not polled before the lease is
    /// held, and the lease goes back when `f` completes or `Run` is dropped.
    /// If the lease is lost while `f` runs, `f` is dropped (cancelled) and
    /// the result is [`LeaseLost`](crate::Error::LeaseLost). To let the
    /// work finish regardless, `acquire` a lease and watch
    /// [`Lease::lost`](crate::Lease::lost) yourself.
    ///
    /// # Cancel safety
    ///
    /// Dropping the `Run` drops `f` and leaves no lease behind.
    pub fn run<F: IntoFuture>(&self, f: F) -> Run<F::IntoFuture> {
        Run::new(self.acquire(), f.into_future())
    }

    /// Closes the semaphore for this process: queued and later acquires
    /// fail with [`Closed`](crate::Error::Closed), leases held stay valid
    /// (and refreshed) until dropped. Other processes are not affected.
    pub fn close(&self) {
        self.inner.local.close();
        self.inner.gate.close();
        self.inner.hints.notify();
        self.inner.driver_wake.notify();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The name, as given to [`builder`](Self::builder).
    pub fn name(&self) -> &[u8] {
        &self.inner.name
    }

    /// The global limit.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Leases this process holds on this semaphore right now.
    pub fn leases(&self) -> usize {
        self.inner.state.lock().unwrap().leases.len()
    }

    /// Round trips made so far (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            acquire_calls: c.acquire.load(Ordering::Relaxed),
            release_calls: c.release.load(Ordering::Relaxed),
            refresh_calls: c.refresh.load(Ordering::Relaxed),
        }
    }
}

impl Clone for GlobalSemaphore {
    fn clone(&self) -> Self {
        self.inner.state.lock().unwrap().handles += 1;
        GlobalSemaphore {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for GlobalSemaphore {
    fn drop(&mut self) {
        self.inner.state.lock().unwrap().handles -= 1;
        self.inner.driver_wake.notify();
    }
}

impl fmt::Debug for GlobalSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalSemaphore")
            .field("name", &String::from_utf8_lossy(&self.inner.name))
            .field("limit", &self.inner.limit)
            .field("local_limit", &self.inner.local_limit)
            .field("leases", &self.leases())
            .field("closed", &self.is_closed())
            .finish()
    }
}
