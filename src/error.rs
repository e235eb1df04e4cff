//! The error types.

use core::fmt;

/// Why an [`acquire`](crate::Semaphore::acquire) or [`run`](crate::Semaphore::run)
/// did not get its permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AcquireError {
    /// The semaphore was [closed](crate::Semaphore::close) before the permits
    /// were handed over.
    Closed,
    /// More than [`Semaphore::MAX_PERMITS`](crate::Semaphore::MAX_PERMITS) were
    /// asked for: such a request could never be served, so it fails at once.
    TooMany,
}

/// Why a [`try_acquire`](crate::Semaphore::try_acquire) did not get its permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TryAcquireError {
    /// The semaphore is [closed](crate::Semaphore::close).
    Closed,
    /// Not enough permits are free, or acquires are queued ahead (no barging).
    NoPermits,
    /// More than [`Semaphore::MAX_PERMITS`](crate::Semaphore::MAX_PERMITS) were
    /// asked for.
    TooMany,
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "semaphore closed",
            Self::TooMany => "more permits requested than a semaphore can hold",
        })
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "semaphore closed",
            Self::NoPermits => "no permits available",
            Self::TooMany => "more permits requested than a semaphore can hold",
        })
    }
}

impl core::error::Error for AcquireError {}
impl core::error::Error for TryAcquireError {}

impl From<AcquireError> for TryAcquireError {
    fn from(err: AcquireError) -> Self {
        match err {
            AcquireError::Closed => Self::Closed,
            AcquireError::TooMany => Self::TooMany,
        }
    }
}
