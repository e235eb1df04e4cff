//! The acquire protocol: local permit, one `try` call, then (as the local
//! head only) the Redis queue, woken by hints and a jittered poll.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{select, BoxFuture};
use redis::Value;

use crate::conn::{int, unexpected, CallError};
use crate::inner::{Counters, Inner, SCRIPTS};
use crate::lease::{Lease, LeaseEntry};
use crate::time::{jittered, sleep};
use crate::{Error, GlobalSemaphore};

/// The future of [`GlobalSemaphore::acquire`] and
/// [`try_acquire`](GlobalSemaphore::try_acquire).
///
/// # Cancel safety
///
/// Dropping it at any point leaves no lease and no queue ticket behind: the
/// local permit goes back at once, and if a call to Redis had been sent (it
/// may have granted a lease whose reply never arrived), the driver releases
/// the lease id, which also takes it out of the queue.
#[must_use = "futures do nothing unless .awaited or polled"]
pub struct Acquire {
    fut: BoxFuture<'static, Result<Lease, Error>>,
}

impl Acquire {
    pub(crate) fn new(sem: GlobalSemaphore, wait: bool) -> Self {
        Acquire {
            fut: Box::pin(acquire(sem, wait)),
        }
    }
}

impl Future for Acquire {
    type Output = Result<Lease, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.fut.as_mut().poll(cx)
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").finish_non_exhaustive()
    }
}

/// A fresh lease id: unique across processes (random bits, the process id,
/// a per-process counter), so a retried call finds its own earlier grant.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| fastrand::u64(..));
    format!(
        "{:016x}{:08x}{:x}",
        *SEED,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Releases the id if a call was sent and no lease came out of it.
struct Guard {
    inner: Arc<Inner>,
    id: String,
    sent: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.sent {
            self.inner.release(std::mem::take(&mut self.id), None);
        }
    }
}

/// Names the lease id that waits in Redis' queue for the driver's pub/sub
/// filter, while it waits.
struct Waiting<'a>(&'a Inner);

impl<'a> Waiting<'a> {
    fn new(inner: &'a Inner, id: &str) -> Self {
        *inner.waiting.lock().unwrap() = Some(id.to_owned());
        Waiting(inner)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        *self.0.waiting.lock().unwrap() = None;
    }
}

struct Grant {
    token: u64,
    deadline: Instant,
}

async fn call(inner: &Inner, guard: &mut Guard, mode: &str) -> Result<Option<Grant>, CallError> {
    let k = &inner.keys;
    let c = &inner.config;
    let limit = inner.limit.to_string();
    let ttl = c.ttl.as_millis().to_string();
    let waiter_ttl = c.waiter_ttl.as_millis().to_string();
    let sent = Instant::now();
    guard.sent = true;
    Counters::bump(&inner.counters.acquire);
    let reply = SCRIPTS
        .acquire
        .call(
            &*inner.conn,
            &[&k.holders, &k.tokens, &k.queue, &k.waiters, &k.meta],
            &[
                limit.as_bytes(),
                guard.id.as_bytes(),
                ttl.as_bytes(),
                waiter_ttl.as_bytes(),
                mode.as_bytes(),
                &k.channel,
            ],
            inner.limit,
            c.call_timeout,
        )
        .await?;
    let Value::Array(items) = &reply else {
        return Err(CallError::Fatal(unexpected(&reply)));
    };
    match items.as_slice() {
        [flag, token, left] if int(flag) == Some(1) => {
            let (Some(token), Some(left)) = (int(token), int(left)) else {
                return Err(CallError::Fatal(unexpected(&reply)));
            };
            // Redis set the expiry after `sent`, so `sent + left` is early,
            // never late.
            let left = Duration::from_millis(left.max(0) as u64).min(c.ttl);
            Ok(Some(Grant {
                token: token as u64,
                deadline: sent + left,
            }))
        }
        [flag, _ahead] if int(flag) == Some(0) => Ok(None),
        _ => Err(CallError::Fatal(unexpected(&reply))),
    }
}

async fn acquire(sem: GlobalSemaphore, wait: bool) -> Result<Lease, Error> {
    let inner = &sem.inner;
    let permit = if wait {
        inner
            .local
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?
    } else {
        inner
            .local
            .clone()
            .try_acquire_owned()
            .map_err(|e| match e {
                permits::TryAcquireError::Closed => Error::Closed,
                _ => Error::NoPermits,
            })?
    };
    let mut guard = Guard {
        inner: inner.clone(),
        id: new_id(),
        sent: false,
    };
    let grant = |guard: &mut Guard, g: Grant, permit| {
        guard.sent = false;
        let entry = Arc::new(LeaseEntry::new(guard.id.clone(), g.deadline));
        inner
            .state
            .lock()
            .unwrap()
            .leases
            .insert(guard.id.clone(), entry.clone());
        Lease {
            entry,
            token: g.token,
            inner: inner.clone(),
            permit: Some(permit),
        }
    };

    // Nobody of ours waits in Redis: most likely a permit is free, and one
    // call settles it. If one of ours waits, Redis' queue is not empty and
    // this call could only fail, so go straight to the queue.
    if !wait || inner.gate.available_permits() > 0 {
        match call(inner, &mut guard, "try").await {
            Ok(Some(g)) => return Ok(grant(&mut guard, g, permit)),
            Ok(None) if !wait => {
                guard.sent = false; // a denied `try` leaves nothing behind
                return Err(Error::NoPermits);
            }
            Err(CallError::Fatal(e)) => {
                return Err(e);
            }
            Err(CallError::Retry) if !wait => return Err(Error::Unavailable),
            _ => {}
        }
    }

    // Only the head of this process' local queue waits in Redis' queue.
    let _gate = inner.gate.acquire().await.map_err(|_| Error::Closed)?;
    let _waiting = Waiting::new(inner, &guard.id);
    let mut failures = 0u32;
    loop {
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        // Listen before the call, so a hint sent while it runs is not missed.
        let hint = inner.hints.listen();
        let pause = match call(inner, &mut guard, "queue").await {
            Ok(Some(g)) => return Ok(grant(&mut guard, g, permit)),
            Ok(None) => {
                failures = 0;
                jittered(inner.config.poll)
            }
            Err(CallError::Fatal(e)) => return Err(e),
            Err(CallError::Retry) => {
                // Back off from 10 ms up to the poll interval while Redis is
                // unreachable; the same lease id is sent again, so a call
                // that did reach Redis is found, not repeated.
                failures = failures.saturating_add(1);
                let backoff = Duration::from_millis(10).saturating_mul(1 << failures.min(10));
                jittered(backoff.min(inner.config.poll))
            }
        };
        select(std::pin::pin!(hint), std::pin::pin!(sleep(pause))).await;
    }
}
