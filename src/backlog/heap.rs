//! The heap store of [`RunAll`](super::RunAll): any number of slots.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;

use super::slot::{Slot, Store};

/// Slots boxed one by one as the stream first needs them, then reused:
/// a box never moves, so its future stays pinned without `unsafe`, and
/// after the stream's concurrency has peaked nothing is allocated.
pub(crate) struct HeapStore<'a, Fut: Future> {
    slots: Vec<Pin<Box<Slot<'a, Fut>>>>,
    /// Indices of empty slots.
    free: Vec<usize>,
}

impl<Fut: Future> Default for HeapStore<'_, Fut> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<'a, Fut: Future> Store<'a, Fut> for HeapStore<'a, Fut> {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn capacity(&self) -> usize {
        usize::MAX
    }

    fn take_free(self: Pin<&mut Self>) -> usize {
        let this = self.get_mut();
        this.free.pop().unwrap_or_else(|| {
            this.slots.push(Box::pin(Slot::Empty));
            this.slots.len() - 1
        })
    }

    fn put_free(self: Pin<&mut Self>, i: usize) {
        self.get_mut().free.push(i);
    }

    fn slot(self: Pin<&mut Self>, i: usize) -> Pin<&mut Slot<'a, Fut>> {
        self.get_mut().slots[i].as_mut()
    }
}
