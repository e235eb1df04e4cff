//! The one place that picks the concurrency primitives.
//!
//! Under `--cfg loom` every atomic and cell is loom's, so the model checker sees
//! each access. Otherwise `core`'s, except on cores without compare-and-swap
//! (thumbv6m, riscv32imc) with the `critical-section` feature, where the counter
//! is emulated inside critical sections.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU8;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicUsize;

// Only loaded and stored, never read-modify-written, so `core`'s works on
// every target, with or without compare-and-swap.
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::AtomicU8;

#[cfg(all(
    not(loom),
    any(target_has_atomic = "ptr", not(feature = "critical-section"))
))]
pub(crate) use core::sync::atomic::AtomicUsize;

#[cfg(all(
    not(loom),
    feature = "critical-section",
    not(target_has_atomic = "ptr")
))]
pub(crate) use cs_atomic::AtomicUsize;

pub(crate) use core::sync::atomic::Ordering;

/// `core::cell::UnsafeCell` with loom's closure-based API, so the list code is
/// written once for both.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A counter for cores that can load and store a word atomically but cannot
/// compare-and-swap: every read-modify-write runs in a critical section.
#[cfg(all(
    not(loom),
    feature = "critical-section",
    not(target_has_atomic = "ptr")
))]
mod cs_atomic {
    use core::cell::Cell;
    use core::sync::atomic::Ordering;
    use critical_section::Mutex;

    #[derive(Debug)]
    pub(crate) struct AtomicUsize(Mutex<Cell<usize>>);

    impl AtomicUsize {
        pub(crate) const fn new(value: usize) -> Self {
            Self(Mutex::new(Cell::new(value)))
        }

        fn update(&self, f: impl FnOnce(usize) -> usize) -> usize {
            critical_section::with(|cs| {
                let cell = self.0.borrow(cs);
                let old = cell.get();
                cell.set(f(old));
                old
            })
        }

        pub(crate) fn load(&self, _: Ordering) -> usize {
            critical_section::with(|cs| self.0.borrow(cs).get())
        }

        pub(crate) fn fetch_add(&self, v: usize, _: Ordering) -> usize {
            self.update(|old| old.wrapping_add(v))
        }

        pub(crate) fn fetch_sub(&self, v: usize, _: Ordering) -> usize {
            self.update(|old| old.wrapping_sub(v))
        }

        pub(crate) fn fetch_or(&self, v: usize, _: Ordering) -> usize {
            self.update(|old| old | v)
        }

        pub(crate) fn fetch_and(&self, v: usize, _: Ordering) -> usize {
            self.update(|old| old & v)
        }

        // Used by the per-slot wakers, which need `alloc`.
        #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
        pub(crate) fn swap(&self, v: usize, _: Ordering) -> usize {
            self.update(|_| v)
        }

        pub(crate) fn compare_exchange_weak(
            &self,
            current: usize,
            new: usize,
            _: Ordering,
            _: Ordering,
        ) -> Result<usize, usize> {
            critical_section::with(|cs| {
                let cell = self.0.borrow(cs);
                let old = cell.get();
                if old == current {
                    cell.set(new);
                    Ok(old)
                } else {
                    Err(old)
                }
            })
        }
    }
}

/// Defines a constructor as a `const fn` (so a `static Semaphore` works),
/// except under loom, whose types have no `const` constructors: one body for
/// both builds.
macro_rules! const_fn_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> Self $body:block) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $name($($arg: $ty),*) -> Self $body

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> Self $body
    };
}
pub(crate) use const_fn_unless_loom;
