//! [`Permit`] and [`OwnedPermit`]: held permits that go back when dropped.

use core::fmt;
use core::ops::Deref;

use crate::Semaphore;

/// `n` permits held from the semaphore behind `S` (`&Semaphore` or
/// `Arc<Semaphore>`); gives them back when dropped. The engine of both permit
/// types and of the `run` futures.
pub(crate) struct Held<S: Deref<Target = Semaphore>> {
    pub(crate) sem: S,
    n: usize,
}

impl<S: Deref<Target = Semaphore>> Held<S> {
    pub(crate) fn new(sem: S, n: usize) -> Self {
        Self { sem, n }
    }

    /// Hands the permits over to the caller, who must give them back.
    pub(crate) fn into_permits(mut self) -> usize {
        core::mem::take(&mut self.n)
    }

    fn forget(mut self) {
        self.sem.forget_held(core::mem::take(&mut self.n));
    }

    fn split(&mut self, n: usize) -> Option<Self>
    where
        S: Clone,
    {
        self.n = self.n.checked_sub(n)?;
        Some(Self::new(self.sem.clone(), n))
    }

    fn merge(&mut self, mut other: Self, what: &str) {
        assert!(
            core::ptr::eq(&*self.sem, &*other.sem),
            "{what}::merge: permits from different semaphores"
        );
        self.n += core::mem::take(&mut other.n);
    }
}

impl<S: Deref<Target = Semaphore>> Drop for Held<S> {
    fn drop(&mut self) {
        self.sem.release(self.n);
    }
}

impl<S: Deref<Target = Semaphore>> fmt::Debug for Held<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("permits", &self.n)
            .finish_non_exhaustive()
    }
}

/// Permits held from a [`Semaphore`]; dropping it gives them back.
///
/// Returned by [`Semaphore::acquire`] and [`Semaphore::try_acquire`] and their
/// `_many` forms. Giving permits back is one atomic compare-and-swap when
/// nobody waits for them; otherwise the queue lock, to hand them over.
#[must_use = "dropping a Permit gives its permits back at once"]
pub struct Permit<'a>(Held<&'a Semaphore>);

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(sem: &'a Semaphore, n: usize) -> Self {
        Self(Held::new(sem, n))
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.0.n
    }

    /// Keeps the permits out of the semaphore for good: they are not given
    /// back. They pay the semaphore's [`debt`](Semaphore::debt) first; what
    /// is left lowers its [`limit`](Semaphore::limit).
    pub fn forget(self) {
        self.0.forget();
    }

    /// Splits `n` permits off into a new `Permit`; `None` (and nothing
    /// changed) if this holds fewer than `n`.
    pub fn split(&mut self, n: usize) -> Option<Permit<'a>> {
        self.0.split(n).map(Self)
    }

    /// Moves the permits of `other` into this one.
    ///
    /// # Panics
    ///
    /// If `other` is from a different semaphore.
    pub fn merge(&mut self, other: Permit<'a>) {
        self.0.merge(other.0, "Permit");
    }

    /// The semaphore these permits belong to.
    pub fn semaphore(&self) -> &'a Semaphore {
        self.0.sem
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("permits", &self.0.n)
            .finish_non_exhaustive()
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use owned::OwnedPermit;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod owned {
    use alloc::sync::Arc;
    use core::fmt;

    use super::Held;
    use crate::Semaphore;

    /// Permits held from an `Arc<Semaphore>`; `'static`, so it can move into
    /// spawned tasks. Dropping it gives the permits back.
    ///
    /// Returned by [`Semaphore::acquire_owned`] and friends.
    #[must_use = "dropping an OwnedPermit gives its permits back at once"]
    pub struct OwnedPermit(Held<Arc<Semaphore>>);

    impl OwnedPermit {
        pub(crate) fn new(sem: Arc<Semaphore>, n: usize) -> Self {
            Self(Held::new(sem, n))
        }

        /// How many permits this holds.
        pub fn num_permits(&self) -> usize {
            self.0.n
        }

        /// Keeps the permits out of the semaphore for good, as
        /// [`Permit::forget`](crate::Permit::forget) does: they pay the debt
        /// first, and what is left lowers the limit.
        pub fn forget(self) {
            self.0.forget();
        }

        /// Splits `n` permits off into a new `OwnedPermit`; `None` (and
        /// nothing changed) if this holds fewer than `n`.
        pub fn split(&mut self, n: usize) -> Option<OwnedPermit> {
            self.0.split(n).map(Self)
        }

        /// Moves the permits of `other` into this one.
        ///
        /// # Panics
        ///
        /// If `other` is from a different semaphore.
        pub fn merge(&mut self, other: OwnedPermit) {
            self.0.merge(other.0, "OwnedPermit");
        }

        /// The semaphore these permits belong to.
        pub fn semaphore(&self) -> &Arc<Semaphore> {
            &self.0.sem
        }
    }

    impl fmt::Debug for OwnedPermit {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OwnedPermit")
                .field("permits", &self.0.n)
                .finish_non_exhaustive()
        }
    }
}
