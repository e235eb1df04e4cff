//! The lock that guards the waiter queue, as a closure: `lock.with(|q| ..)`.
//!
//! A closure rather than a guard so that `critical_section::with`, whose
//! sections must nest, can back it. One backend is compiled in, chosen here:
//!
//! | build                         | backend                 | why |
//! |-------------------------------|-------------------------|-----|
//! | `--cfg loom`                  | `loom::sync::Mutex`     | model checking |
//! | feature `critical-section`    | `critical_section::with`| single-core firmware, interrupts; no CAS needed |
//! | feature `std`                 | `std::sync::Mutex`      | parks a waiter when the holder is preempted, instead of burning its time slice |
//! | neither                       | `spin::Mutex`           | `no_std` on cores with CAS, nothing else available |
//!
//! The spin lock must not be entered from an interrupt handler that may have
//! preempted its holder on the same core (it would spin forever): firmware
//! whose interrupt handlers use a semaphore enables `critical-section`.
//!
//! On the hot paths the lock is only taken when a task has to wait or be
//! woken (the rare limit changes, `Permit::forget`, `close`
//! and `waiters` take it too); the section it guards never runs user code (no waker is woken, cloned or dropped in it),
//! so it is short and cannot re-enter.

#[cfg(all(not(loom), feature = "critical-section"))]
use core::cell::RefCell;

use crate::sync::const_fn_unless_loom;

/// A mutual-exclusion lock over `T`, entered with [`Lock::with`].
#[derive(Debug)]
pub(crate) struct Lock<T> {
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
    #[cfg(all(not(loom), feature = "critical-section"))]
    inner: critical_section::Mutex<RefCell<T>>,
    #[cfg(all(not(loom), not(feature = "critical-section"), feature = "std"))]
    inner: std::sync::Mutex<T>,
    #[cfg(all(not(loom), not(feature = "critical-section"), not(feature = "std")))]
    inner: spin::Mutex<T>,
}

impl<T> Lock<T> {
    const_fn_unless_loom! {
        pub(crate) fn new(value: T) -> Self {
            Self {
                #[cfg(loom)]
                inner: loom::sync::Mutex::new(value),
                #[cfg(all(not(loom), feature = "critical-section"))]
                inner: critical_section::Mutex::new(RefCell::new(value)),
                #[cfg(all(not(loom), not(feature = "critical-section"), feature = "std"))]
                inner: std::sync::Mutex::new(value),
                #[cfg(all(not(loom), not(feature = "critical-section"), not(feature = "std")))]
                inner: spin::Mutex::new(value),
            }
        }
    }

    /// Runs `f` with exclusive access to the value.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(test)]
        LOCKS_TAKEN.with(|n| n.set(n.get() + 1));

        #[cfg(loom)]
        return f(&mut self.inner.lock().unwrap());

        #[cfg(all(not(loom), feature = "critical-section"))]
        return critical_section::with(|cs| f(&mut self.inner.borrow_ref_mut(cs)));

        // Nothing under this lock runs user code, so a poisoned lock can only
        // come from a bug in this crate that already panicked; refusing every
        // later acquire would not help anyone, so go on.
        #[cfg(all(not(loom), not(feature = "critical-section"), feature = "std"))]
        return f(&mut self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));

        #[cfg(all(not(loom), not(feature = "critical-section"), not(feature = "std")))]
        return f(&mut self.inner.lock());
    }
}

#[cfg(test)]
std::thread_local! {
    /// How often this thread entered any queue lock: lets unit tests show
    /// which paths are lock-free.
    pub(crate) static LOCKS_TAKEN: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}
