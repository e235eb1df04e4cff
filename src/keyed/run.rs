//! [`KeyedRun`]: holds a key's (and a global) permit exactly while a future
//! runs.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::{KeyedAcquire, KeyedPermit};
use crate::AcquireError;

pin_project! {
    #[project = StageProj]
    enum Stage<'a, K: Ord> {
        Acquiring { #[pin] acquire: KeyedAcquire<'a, K> },
        Running { permit: KeyedPermit<'a, K> },
        Done,
    }
}

pin_project! {
    /// The future of [`KeyedSemaphore::run`](super::KeyedSemaphore::run).
    ///
    /// Resolves to `Ok(output of F)`, or to the [`AcquireError`] that kept
    /// the permits from being acquired (then `F` never ran). Dropping it at
    /// any point gives back or never takes the permits.
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct KeyedRun<'a, K: Ord, F> {
        // Declared before `stage`: a `KeyedRun` dropped while `fut` is
        // pending drops `fut` while still holding the permits.
        #[pin]
        fut: F,
        #[pin]
        stage: Stage<'a, K>,
    }
}

impl<'a, K: Ord, F: Future> KeyedRun<'a, K, F> {
    pub(crate) fn new(acquire: KeyedAcquire<'a, K>, fut: F) -> Self {
        Self {
            fut,
            stage: Stage::Acquiring { acquire },
        }
    }
}

impl<K: Ord, F: Future> Future for KeyedRun<'_, K, F> {
    type Output = Result<F::Output, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.stage.as_mut().project() {
            StageProj::Acquiring { acquire } => match ready!(acquire.poll(cx)) {
                Ok(permit) => this.stage.set(Stage::Running { permit }),
                Err(err) => {
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Err(err));
                }
            },
            StageProj::Running { .. } => {}
            StageProj::Done => panic!("keyed run future polled after completion"),
        }
        crate::run::poll_holding(this.stage, || Stage::Done, this.fut, cx).map(Ok)
    }
}

impl<K: Ord + fmt::Debug, F> fmt::Debug for KeyedRun<'_, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KeyedRun");
        match &self.stage {
            Stage::Acquiring { acquire } => d.field("acquiring", acquire),
            Stage::Running { permit } => d.field("running", permit),
            Stage::Done => d.field("done", &true),
        };
        d.finish_non_exhaustive()
    }
}
