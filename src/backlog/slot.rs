//! The slots of a backlog stream and the stores that keep them.

use core::future::Future;
use core::pin::Pin;

use pin_project_lite::pin_project;

use crate::permit::Held;
use crate::Semaphore;

pin_project! {
    /// One item's place: empty, running with its permit, or finished.
    #[project = SlotProj]
    #[project_replace = SlotOwn]
    pub(crate) enum Slot<'a, Fut: Future> {
        Empty,
        // Fields drop in order: the future first, then its permit goes back.
        Running {
            #[pin]
            fut: Fut,
            permit: Held<&'a Semaphore>,
            seq: u64,
        },
        Done {
            out: Fut::Output,
            seq: u64,
        },
    }
}

/// Where a stream keeps its slots.
pub(crate) trait Store<'a, Fut: Future> {
    /// How many slots exist now.
    fn len(&self) -> usize;
    /// The most slots this store can ever have.
    fn capacity(&self) -> usize;
    /// A free slot, made if none is free. The caller has made sure that
    /// fewer than `capacity()` slots are in use.
    fn take_free(self: Pin<&mut Self>) -> usize;
    /// Slot `i` is empty again.
    fn put_free(self: Pin<&mut Self>, i: usize);
    /// Slot `i`, pinned.
    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>>;
}

/// `N` slots in an array inside the pinned stream: no allocation at all.
impl<'a, Fut: Future, const N: usize> Store<'a, Fut> for [Slot<'a, Fut>; N] {
    fn len(&self) -> usize {
        N
    }

    fn capacity(&self) -> usize {
        N
    }

    fn take_free(self: Pin<&mut Self>) -> usize {
        self.iter()
            .position(|slot| matches!(slot, Slot::Empty))
            .expect("a free slot (the caller checked)")
    }

    fn put_free(self: Pin<&mut Self>, _i: usize) {}

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>> {
        crate::pin_array::index(self, i)
    }
}
