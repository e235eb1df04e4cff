//! The acquire futures: [`Acquire`] and [`AcquireOwned`].

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::waiter::Waiter;
use crate::{AcquireError, Permit, Semaphore};

pin_project! {
    /// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
    ///
    /// It holds its own place in the semaphore's queue, so waiting allocates
    /// nothing. Dropping it at any point loses no permit.
    #[must_use = "futures do nothing unless .awaited or polled"]
    #[derive(Debug)]
    pub struct Acquire<'a> {
        #[pin]
        waiter: Waiter<&'a Semaphore>,
    }
}

impl<'a> Acquire<'a> {
    #[inline]
    pub(crate) fn new(sem: &'a Semaphore, n: usize) -> Self {
        Self {
            waiter: Waiter::new(sem, n),
        }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .waiter
            .poll_acquire(cx)
            .map_ok(|(sem, n)| Permit::new(sem, n))
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use owned::AcquireOwned;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod owned {
    use alloc::sync::Arc;
    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll};

    use pin_project_lite::pin_project;

    use crate::waiter::Waiter;
    use crate::{AcquireError, OwnedPermit, Semaphore, TryAcquireError};

    pin_project! {
        /// The future of [`Semaphore::acquire_owned`] and
        /// [`Semaphore::acquire_many_owned`]: like [`Acquire`](crate::Acquire),
        /// but `'static`, holding an `Arc<Semaphore>`.
        #[must_use = "futures do nothing unless .awaited or polled"]
        #[derive(Debug)]
        pub struct AcquireOwned {
            #[pin]
            waiter: Waiter<Arc<Semaphore>>,
        }
    }

    impl Future for AcquireOwned {
        type Output = Result<OwnedPermit, AcquireError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.project()
                .waiter
                .poll_acquire(cx)
                .map_ok(|(sem, n)| OwnedPermit::new(sem, n))
        }
    }

    impl Semaphore {
        /// Waits for one permit, as [`acquire`](Self::acquire) does, and
        /// returns it as an [`OwnedPermit`] that keeps the semaphore alive.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`acquire`](Self::acquire).
        pub fn acquire_owned(self: Arc<Self>) -> AcquireOwned {
            self.acquire_many_owned(1)
        }

        /// Waits for `n` permits, as [`acquire_many`](Self::acquire_many)
        /// does, and returns them as an [`OwnedPermit`].
        ///
        /// # Cancel safety
        ///
        /// Cancel safe, as [`acquire_many`](Self::acquire_many).
        pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> AcquireOwned {
            AcquireOwned {
                waiter: Waiter::new(self, n),
            }
        }

        /// Takes one permit if one is free and nobody is queued.
        ///
        /// # Errors
        ///
        /// As [`try_acquire`](Self::try_acquire).
        pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedPermit, TryAcquireError> {
            self.try_acquire_many_owned(1)
        }

        /// Takes `n` permits if they are free and nobody is queued.
        ///
        /// # Errors
        ///
        /// As [`try_acquire_many`](Self::try_acquire_many).
        pub fn try_acquire_many_owned(
            self: Arc<Self>,
            n: usize,
        ) -> Result<OwnedPermit, TryAcquireError> {
            self.try_take(n)?;
            Ok(OwnedPermit::new(self, n))
        }
    }
}
