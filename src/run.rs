//! The `run` futures: [`Run`] and [`RunOwned`] hold permits exactly while an
//! inner future runs.

use core::fmt;
use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use crate::permit::Held;
use crate::waiter::Waiter;
use crate::{AcquireError, Semaphore};

pin_project! {
    /// Acquire, then run `F` holding the permits, then give them back.
    struct Runner<S: Deref<Target = Semaphore>, F> {
        // Declared before `stage`, so a `Run` dropped while `fut` is pending
        // drops `fut` (and runs its cleanup) while still holding the permits.
        #[pin]
        fut: F,
        #[pin]
        stage: Stage<S>,
    }
}

pin_project! {
    /// Where a `Runner` is. One enum rather than a waiter next to an optional
    /// permit, so a `Run` is no bigger than its acquire plus a tag.
    #[project = StageProj]
    enum Stage<S: Deref<Target = Semaphore>> {
        Acquiring { #[pin] waiter: Waiter<S> },
        Running { held: Held<S> },
        Done,
    }
}

/// Polls `fut`, whose permits `stage` holds: once `fut` finishes, or panics
/// (during the unwind), `stage` becomes `done()`, which gives them back; while
/// `fut` is pending, `stage` keeps them. Shared by [`Run`] and the keyed run.
#[inline]
pub(crate) fn poll_holding<T, F: Future>(
    stage: Pin<&mut T>,
    done: fn() -> T,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    /// Sets the stage to `done()` when dropped: on a panic in `fut`, that
    /// gives the permits back during the unwind.
    struct Finish<'a, T> {
        stage: Pin<&'a mut T>,
        done: fn() -> T,
    }

    impl<T> Drop for Finish<'_, T> {
        fn drop(&mut self) {
            self.stage.set((self.done)());
        }
    }

    let finish = Finish { stage, done };
    let polled = fut.poll(cx);
    if polled.is_pending() {
        // Still running: keep the permits. Forgotten rather than disarmed
        // with a flag, so the pending path runs no drop glue at all (a flag
        // made `run` about 80 instructions per task dearer, callgrind).
        core::mem::forget(finish);
    } else {
        drop(finish); // gives the permits back
    }
    polled
}

impl<S: Deref<Target = Semaphore>, F> Runner<S, F> {
    fn is_running(&self) -> bool {
        matches!(self.stage, Stage::Running { .. })
    }
}

impl<S: Deref<Target = Semaphore>, F: Future> Runner<S, F> {
    fn new(sem: S, n: usize, fut: F) -> Self {
        Self {
            fut,
            stage: Stage::Acquiring {
                waiter: Waiter::new(sem, n),
            },
        }
    }

    fn poll_run(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<F::Output, AcquireError>> {
        let mut this = self.project();
        match this.stage.as_mut().project() {
            StageProj::Acquiring { waiter } => match ready!(waiter.poll_acquire(cx)) {
                Ok((sem, n)) => this.stage.set(Stage::Running {
                    held: Held::new(sem, n),
                }),
                Err(err) => {
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Err(err));
                }
            },
            StageProj::Running { .. } => {}
            StageProj::Done => panic!("run future polled after completion"),
        }
        poll_holding(this.stage, || Stage::Done, this.fut, cx).map(Ok)
    }
}

pin_project! {
    /// The future of [`Semaphore::run`] and [`Semaphore::run_many`].
    ///
    /// Resolves to `Ok(output of F)`, or to the [`AcquireError`] that kept the
    /// permits from being acquired (then `F` never ran). Dropping it at any
    /// point gives back or never takes the permits.
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct Run<'a, F> {
        #[pin]
        inner: Runner<&'a Semaphore, F>,
    }
}

impl<'a, F: Future> Run<'a, F> {
    pub(crate) fn new(sem: &'a Semaphore, n: usize, fut: F) -> Self {
        Self {
            inner: Runner::new(sem, n, fut),
        }
    }
}

impl<F: Future> Future for Run<'_, F> {
    type Output = Result<F::Output, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll_run(cx)
    }
}

impl<F> fmt::Debug for Run<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("running", &self.inner.is_running())
            .finish_non_exhaustive()
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub use owned::RunOwned;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod owned {
    use alloc::sync::Arc;
    use core::fmt;
    use core::future::{Future, IntoFuture};
    use core::pin::Pin;
    use core::task::{Context, Poll};

    use pin_project_lite::pin_project;

    use super::Runner;
    use crate::{AcquireError, Semaphore};

    pin_project! {
        /// The future of [`Semaphore::run_owned`]: like [`Run`](crate::Run),
        /// but `'static` (for `F: 'static`), holding an `Arc<Semaphore>`, so
        /// it can be spawned.
        #[must_use = "futures do nothing unless .awaited or polled"]
        pub struct RunOwned<F> {
            #[pin]
            inner: Runner<Arc<Semaphore>, F>,
        }
    }

    impl<F: Future> Future for RunOwned<F> {
        type Output = Result<F::Output, AcquireError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.project().inner.poll_run(cx)
        }
    }

    impl<F> fmt::Debug for RunOwned<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RunOwned")
                .field("running", &self.inner.is_running())
                .finish_non_exhaustive()
        }
    }

    impl Semaphore {
        /// Runs `f` once a permit is held, as [`run`](Self::run) does; the
        /// returned future owns an `Arc<Semaphore>`, so it can be spawned.
        ///
        /// # Cancel safety
        ///
        /// Dropping the future gives back the permit (or leaves the queue)
        /// and drops `f`.
        pub fn run_owned<F: IntoFuture>(self: Arc<Self>, f: F) -> RunOwned<F::IntoFuture> {
            RunOwned {
                inner: Runner::new(self, 1, f.into_future()),
            }
        }
    }
}
