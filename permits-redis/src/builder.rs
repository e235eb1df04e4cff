//! Settings, checked, and the connection the user configured.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use permits::Semaphore;

use crate::conn::CallError;
use crate::event::Event;
use crate::inner::{Config, Counters, Inner, State, SCRIPTS};
use crate::keys::Keys;
use crate::{Driver, Error, GlobalSemaphore};

/// Settings of a [`GlobalSemaphore`], from [`GlobalSemaphore::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct Builder {
    name: Vec<u8>,
    limit: u64,
    ttl: Duration,
    local_limit: Option<usize>,
    poll: Option<Duration>,
    call_timeout: Option<Duration>,
    hints: Option<redis::Client>,
}

/// The largest global limit (a fencing-token counter and Lua's numbers stay
/// exact far beyond it).
pub const MAX_LIMIT: u64 = u32::MAX as u64;

impl Builder {
    pub(crate) fn new(name: &[u8], limit: u64) -> Self {
        Builder {
            name: name.to_vec(),
            limit,
            ttl: Duration::from_secs(10),
            local_limit: None,
            poll: None,
            call_timeout: None,
            hints: None,
        }
    }

    /// How long a lease lives in Redis without a refresh (default 10 s,
    /// 30 ms to 1 day). The driver refreshes every `ttl / 3`; a holder whose
    /// refreshes fail learns its lease is lost at most `ttl` after the last
    /// successful one. A crashed holder's permit is free again after at most
    /// `ttl`. Queue tickets of waiters that stop polling expire after `ttl` too.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most leases this process holds at once (default: the global
    /// limit). Acquires beyond it wait locally, without touching Redis.
    pub fn local_limit(mut self, n: usize) -> Self {
        self.local_limit = Some(n);
        self
    }

    /// The longest a queued waiter goes without asking Redis again, even if
    /// no hint arrives (default: `min(ttl / 4, 1 s)`; at most `ttl / 3`,
    /// since each poll is also the waiter's heartbeat). Each poll waits a
    /// random time between half of this and all of it.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = Some(d);
        self
    }

    /// How long one call to Redis may take before it counts as failed and is
    /// retried (default `ttl / 3`).
    pub fn call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = Some(d);
        self
    }

    /// Wake queued waiters through pub/sub on this client (a second
    /// connection, opened and re-opened by the driver) instead of only by
    /// polling. Pass the same configured client (ACL user, TLS) as for the
    /// command connection.
    pub fn hints(mut self, client: redis::Client) -> Self {
        self.hints = Some(client);
        self
    }

    /// Checks the settings, records the limit in Redis or checks it against
    /// the one recorded (one round trip), and returns the semaphore and its
    /// [`Driver`], which the caller must spawn (or otherwise poll).
    ///
    /// `conn` is any redis-rs async connection that clones cheaply and
    /// multiplexes: a `redis::aio::ConnectionManager` (reconnects by
    /// itself; use it to survive restarts), a `MultiplexedConnection`, or a
    /// cluster connection. Build it from a `redis::Client` you configured
    /// (credentials, ACL user, TLS through redis-rs's rustls features).
    ///
    /// Errors: [`InvalidName`](Error::InvalidName),
    /// [`InvalidConfig`](Error::InvalidConfig),
    /// [`LimitMismatch`](Error::LimitMismatch),
    /// [`Unavailable`](Error::Unavailable), [`Redis`](Error::Redis).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves nothing behind but the recorded limit.
    pub async fn build<C>(self, conn: C) -> Result<(GlobalSemaphore, Driver), Error>
    where
        C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
    {
        let keys = Keys::new(&self.name)?;
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(Error::InvalidConfig("the limit must be 1 to u32::MAX"));
        }
        let ttl = self.ttl;
        if ttl < Duration::from_millis(30) || ttl > Duration::from_secs(86_400) {
            return Err(Error::InvalidConfig("the ttl must be 30 ms to 1 day"));
        }
        let local_limit = self
            .local_limit
            .unwrap_or(self.limit.min(Semaphore::MAX_PERMITS as u64) as usize);
        if local_limit == 0 || local_limit > Semaphore::MAX_PERMITS {
            return Err(Error::InvalidConfig(
                "the local limit must be 1 to permits::Semaphore::MAX_PERMITS",
            ));
        }
        let poll = self
            .poll
            .unwrap_or_else(|| (ttl / 4).min(Duration::from_secs(1)));
        if poll.is_zero() || poll > ttl / 3 {
            return Err(Error::InvalidConfig(
                "the poll interval must be > 0 and <= ttl / 3",
            ));
        }
        let call_timeout = self.call_timeout.unwrap_or(ttl / 3);
        if call_timeout.is_zero() {
            return Err(Error::InvalidConfig("the call timeout must be > 0"));
        }
        let config = Config {
            ttl,
            waiter_ttl: ttl,
            refresh_every: ttl / 3,
            retry_every: (ttl / 10).max(Duration::from_millis(5)),
            poll,
            call_timeout,
        };

        let limit = self.limit.to_string();
        SCRIPTS
            .register
            .call(
                &conn,
                &[&keys.meta],
                &[limit.as_bytes()],
                self.limit,
                call_timeout,
            )
            .await
            .map_err(|e| match e {
                CallError::Retry => Error::Unavailable,
                CallError::Fatal(e) => e,
            })?;

        let inner = Arc::new(Inner {
            name: self.name,
            keys,
            limit: self.limit,
            local_limit,
            config,
            conn: Box::new(conn),
            client: self.hints,
            local: Arc::new(Semaphore::new(local_limit)),
            gate: Semaphore::new(1),
            hints: Event::default(),
            waiting: Mutex::new(None),
            driver_wake: Event::default(),
            state: Mutex::new(State {
                handles: 1,
                ..State::default()
            }),
            counters: Counters::default(),
        });
        let driver = Driver::new(inner.clone());
        Ok((GlobalSemaphore { inner }, driver))
    }
}
