//! [`IterStream`]: an iterator as an always-ready stream, the source of
//! `run_all` and `run_all_fixed`.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;
use pin_project_lite::pin_project;

#[cfg(doc)]
use crate::Semaphore;

pin_project! {
    /// An iterator as a [`Stream`] that is always ready: the source of
    /// [`Semaphore::run_all`] and [`Semaphore::run_all_fixed`].
    #[derive(Debug, Clone)]
    #[must_use = "streams do nothing unless polled"]
    pub struct IterStream<I> {
        iter: I,
    }
}

impl<I> IterStream<I> {
    /// Wraps an iterator.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        Self {
            iter: iter.into_iter(),
        }
    }

    /// The iterator, with the items not taken yet.
    pub fn iter_mut(self: Pin<&mut Self>) -> &mut I {
        self.project().iter
    }

    /// The iterator, with the items not taken yet.
    pub fn into_inner(self) -> I {
        self.iter
    }
}

impl<I: Iterator> Stream for IterStream<I> {
    type Item = I::Item;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.project().iter.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}
