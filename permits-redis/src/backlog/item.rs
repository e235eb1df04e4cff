//! How an item becomes work that holds a lease: the backlog adapter that
//! calls the user's function once the gate has a lease for the item, and the
//! future that cancels the work when that lease is lost (as `run` does).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::run::poll_while_held;
use crate::{Error, Lost};

/// An item's future, with the loss notice of the lease it was admitted with
/// (set by the gate).
pub(crate) struct Admitted<Fut> {
    fut: Fut,
    pub(crate) lost: Option<Lost>,
}

pin_project! {
    /// The backlog as the engine sees it: the user's items, each turned into
    /// its future when the gate pulls it, which it does only with a lease in
    /// hand (so `f` runs exactly when `run_all`'s docs say).
    pub(crate) struct Starting<St, F> {
        #[pin]
        items: St,
        f: F,
    }
}

impl<St, F> Starting<St, F> {
    pub(crate) fn new(items: St, f: F) -> Self {
        Starting { items, f }
    }

    pub(crate) fn items(&self) -> &St {
        &self.items
    }

    pub(crate) fn items_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
        self.project().items
    }
}

impl<St, F, Fut> Stream for Starting<St, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: IntoFuture,
{
    type Item = Admitted<Fut::IntoFuture>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        this.items.poll_next(cx).map(|item| {
            item.map(|item| Admitted {
                fut: (this.f)(item).into_future(),
                lost: None,
            })
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

pin_project! {
    /// One item's work while its lease is held: `Err(LeaseLost)` and the
    /// work dropped once the lease is lost, checked before every poll of the
    /// work (as in [`Run`](crate::Run)).
    pub(crate) struct WhileHeld<Fut> {
        #[pin]
        fut: Option<Fut>,
        lost: Lost,
    }
}

/// The engine's function: an admitted item's future, watched.
pub(crate) fn while_held<Fut>(item: Admitted<Fut>) -> WhileHeld<Fut> {
    WhileHeld {
        fut: Some(item.fut),
        lost: item.lost.expect("the gate admits an item with its lease"),
    }
}

impl<Fut: Future> Future for WhileHeld<Fut> {
    type Output = Result<Fut::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_while_held(this.fut, this.lost, cx)
    }
}
