//! Errors and the reasons a lease is lost.

use core::fmt;

/// Why a [`Lease`](crate::Lease) stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// Redis no longer holds the lease: it expired before a refresh reached
    /// the server (a pause longer than the TTL), or the data was lost (a
    /// restart without persistence, a failover to a replica that had not
    /// seen it). Another holder may already have its place.
    Expired,
    /// No refresh succeeded before the local deadline (the time of the last
    /// successful refresh's request plus the TTL, on this process' monotonic
    /// clock): Redis was unreachable or too slow, or the [`Driver`](crate::Driver)
    /// was not running. The lease may still be in Redis, but it can no longer
    /// be relied on.
    Unreachable,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Expired => "the lease expired or was lost in Redis",
            LossReason::Unreachable => "no refresh reached Redis before the lease's deadline",
        })
    }
}

/// The error of the semaphore's operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// [`GlobalSemaphore::close`](crate::GlobalSemaphore::close) was called.
    Closed,
    /// [`GlobalSemaphore::try_acquire`](crate::GlobalSemaphore::try_acquire)
    /// found no free permit (or others queued ahead).
    NoPermits,
    /// Redis did not answer in time or the connection failed, where the
    /// operation cannot wait for it to come back ([`build`](crate::Builder::build),
    /// [`try_acquire`](crate::GlobalSemaphore::try_acquire)). `acquire` keeps
    /// retrying instead.
    Unavailable,
    /// Another client registered this name with a different limit. Every
    /// client of one name must agree on its limit.
    LimitMismatch {
        /// The limit stored in Redis for this name.
        stored: u64,
        /// The limit this client was built with.
        requested: u64,
    },
    /// The name cannot be used (empty, too long, or contains `{` / `}`).
    InvalidName(&'static str),
    /// A builder setting is out of range (the message says which).
    InvalidConfig(&'static str),
    /// The lease was lost while [`run`](crate::GlobalSemaphore::run)'s future
    /// ran; the future was dropped.
    LeaseLost(LossReason),
    /// Redis answered with an error that retrying does not fix (for example
    /// a missing ACL permission), or a script replied something unexpected.
    Redis(redis::RedisError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("the semaphore is closed"),
            Error::NoPermits => f.write_str("no permit is free"),
            Error::Unavailable => f.write_str("redis did not answer in time"),
            Error::LimitMismatch { stored, requested } => write!(
                f,
                "this name is registered in Redis with limit {stored}, not {requested}"
            ),
            Error::InvalidName(why) => write!(f, "invalid semaphore name: {why}"),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::LeaseLost(reason) => write!(f, "lease lost: {reason}"),
            Error::Redis(e) => write!(f, "redis: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis(e) => Some(e),
            _ => None,
        }
    }
}
