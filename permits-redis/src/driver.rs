//! The driver: releases, batched refreshes and the pub/sub hints of one
//! semaphore, as one future the user spawns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{join3, select, BoxFuture, Either};
use futures_util::StreamExt;
use redis::Value;

use crate::conn::{int, CallError};
use crate::inner::{Counters, Inner, SCRIPTS};
use crate::time::{jittered, sleep, timeout};
use crate::LossReason;

/// Leases per refresh or release call (keeps each script call short).
const BATCH: usize = 500;

/// The background work of one [`GlobalSemaphore`](crate::GlobalSemaphore):
/// it sends releases (batched), refreshes every lease of this process in one
/// call every `ttl / 3`, tells holders when a lease is lost, and keeps the
/// pub/sub hint connection open. Spawn it on your executor
/// (`tokio::spawn(driver)`, `smol::spawn(driver).detach()`), or poll it
/// alongside your work.
///
/// It completes once every handle, acquire and lease of its semaphore is
/// dropped and the last releases are done.
///
/// If it is not running: dropped leases are not released (their permits
/// come back when the lease expires in Redis, after at most the TTL) and
/// their local permits do not return; held leases are not refreshed, and
/// their holders learn they are lost at the local deadline (the
/// [`Lost`](crate::Lost) future has its own timer).
#[must_use = "the driver does nothing unless spawned or polled"]
pub struct Driver {
    fut: BoxFuture<'static, ()>,
}

impl Driver {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Driver {
            fut: Box::pin(async move {
                join3(releases(&inner), refreshes(&inner), hints(&inner)).await;
            }),
        }
    }
}

impl Future for Driver {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.fut.as_mut().poll(cx)
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// Sends what dropped leases and cancelled acquires left, then gives the
/// local permits back (so the next local acquire finds the global permit
/// free instead of queueing behind our own release).
async fn releases(inner: &Inner) {
    let k = &inner.keys;
    loop {
        let wake = inner.driver_wake.listen();
        let batch = std::mem::take(&mut inner.state.lock().unwrap().pending);
        if batch.is_empty() {
            if inner.finished() {
                return;
            }
            wake.await;
            continue;
        }
        for chunk in batch.chunks(BATCH) {
            let mut args: Vec<&[u8]> = vec![&k.channel];
            args.extend(chunk.iter().map(|(id, _)| id.as_bytes()));
            // Retry for up to two TTLs: a lease granted by a call that was
            // still in flight has expired in Redis by then anyway, unless
            // Redis ran that call even later (then its TTL ends it).
            let give_up = Instant::now() + 2 * inner.config.ttl;
            let mut pause = Duration::from_millis(5);
            loop {
                Counters::bump(&inner.counters.release);
                let r = SCRIPTS
                    .release
                    .call(
                        &*inner.conn,
                        &[&k.holders, &k.tokens, &k.queue, &k.waiters, &k.meta],
                        &args,
                        inner.limit,
                        inner.config.call_timeout,
                    )
                    .await;
                if r.is_ok() || matches!(r, Err(CallError::Fatal(_))) || Instant::now() >= give_up {
                    break;
                }
                sleep(jittered(pause)).await;
                pause = (pause * 2).min(inner.config.poll);
            }
        }
        drop(batch); // the local permits go back here
        inner.hints.notify();
    }
}

/// Refreshes every lease of this process, in one call per `BATCH` leases,
/// every `ttl / 3`; retries failures every `ttl / 10` until each lease's
/// local deadline, then reports it lost.
async fn refreshes(inner: &Inner) {
    let k = &inner.keys;
    let c = &inner.config;
    let ttl = c.ttl.as_millis().to_string();
    let mut due = Instant::now() + c.refresh_every;
    loop {
        let wake = inner.driver_wake.listen();
        if inner.finished() {
            return;
        }
        let now = Instant::now();
        if now < due {
            select(std::pin::pin!(wake), std::pin::pin!(sleep(due - now))).await;
            continue;
        }
        let leases: Vec<_> = {
            let st = inner.state.lock().unwrap();
            st.leases.values().cloned().collect()
        };
        let mut all_ok = true;
        for chunk in leases.chunks(BATCH) {
            let mut args: Vec<&[u8]> = vec![ttl.as_bytes(), &k.channel];
            args.extend(chunk.iter().map(|e| e.id.as_bytes()));
            let sent = Instant::now();
            Counters::bump(&inner.counters.refresh);
            let r = SCRIPTS
                .refresh
                .call(
                    &*inner.conn,
                    &[&k.holders, &k.tokens, &k.queue, &k.meta],
                    &args,
                    inner.limit,
                    c.call_timeout,
                )
                .await;
            match r {
                Ok(Value::Array(flags)) if flags.len() == chunk.len() => {
                    for (entry, flag) in chunk.iter().zip(&flags) {
                        if int(flag) == Some(1) {
                            entry.extend(sent + c.ttl);
                        } else {
                            inner.state.lock().unwrap().leases.remove(&entry.id);
                            entry.lose(LossReason::Expired);
                        }
                    }
                }
                _ => {
                    all_ok = false;
                    let now = Instant::now();
                    for entry in chunk {
                        if entry.check(now).is_ok() {
                            inner.state.lock().unwrap().leases.remove(&entry.id);
                        }
                    }
                }
            }
        }
        due = Instant::now()
            + if all_ok {
                c.refresh_every
            } else {
                c.retry_every
            };
    }
}

/// Keeps a pub/sub subscription to the name's wake channel and turns each
/// message into a local hint. A lost connection (a restart, `CLIENT KILL`)
/// is re-opened with a growing, jittered pause; waiters poll meanwhile.
async fn hints(inner: &Inner) {
    let Some(client) = inner.client.clone() else {
        while !inner.finished() {
            inner.driver_wake.listen().await;
        }
        return;
    };
    let mut pause = Duration::from_millis(20);
    loop {
        if inner.finished() {
            return;
        }
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await.ok()?;
            pubsub.subscribe(&inner.keys.channel).await.ok()?;
            Some(pubsub)
        };
        if let Some(Some(pubsub)) = timeout(inner.config.call_timeout, connect).await {
            pause = Duration::from_millis(20);
            // Messages sent while we were not subscribed are gone: re-check.
            inner.hints.notify();
            let mut messages = pubsub.into_on_message();
            loop {
                let wake = inner.driver_wake.listen();
                match select(messages.next(), std::pin::pin!(wake)).await {
                    Either::Left((Some(msg), _)) => {
                        // The message names the waiters whose turn it is.
                        let waiting = inner.waiting.lock().unwrap().clone();
                        let ours = waiting.is_some_and(|id| {
                            msg.get_payload_bytes()
                                .split(|&b| b == b' ')
                                .any(|w| w == id.as_bytes())
                        });
                        if ours {
                            inner.hints.notify();
                        }
                    }
                    Either::Left((None, _)) => break,
                    Either::Right(_) => {
                        if inner.finished() {
                            return;
                        }
                    }
                }
            }
        }
        let wake = inner.driver_wake.listen();
        select(std::pin::pin!(wake), std::pin::pin!(sleep(jittered(pause)))).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
