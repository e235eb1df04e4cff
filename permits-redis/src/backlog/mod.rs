//! The backlog stream: [`GlobalSemaphore::run_all`] and
//! [`run_stream`](GlobalSemaphore::run_stream) run a function on every item
//! of a backlog, each while holding a lease, over the core's backlog engine
//! ([`permits::RunWith`]) with a gate that acquires the leases.

mod gate;
mod item;
mod run_all;

use std::future::IntoFuture;

use futures_core::Stream;
use permits::IterStream;

pub use run_all::RunAll;

use crate::GlobalSemaphore;

impl GlobalSemaphore {
    /// Runs `f` on every item of `items`, each while holding a lease, and
    /// returns what each item's [`run`](Self::run) would have returned as a
    /// [`Stream`], in the order they finish: `Ok(output)`, or
    /// `Err(LeaseLost(reason))` for an item whose lease was lost while it
    /// ran (its future was dropped; the stream goes on with the others).
    /// An error that stops all acquires ([`Closed`](crate::Error::Closed),
    /// [`LimitMismatch`](crate::Error::LimitMismatch), a
    /// [`Redis`](crate::Error::Redis) error retrying does not fix) ends the
    /// stream: yielded once, last, after the work in flight; the items left
    /// in [`remaining`](RunAll::remaining) did not run.
    ///
    /// The local limit comes first, then the global one: a lease is
    /// acquired (a local permit, then one round trip to Redis when
    /// uncontended) *before* an item is pulled and `f` called on it, so a
    /// backlog of any length (or an endless one) keeps at most as many
    /// futures as leases. Several acquires are in flight at once, up to the
    /// room the stream has (its [`limit`](RunAll::limit), else the local
    /// limit), so the round trips overlap as they do for `local_limit`
    /// concurrent calls of `run`.
    ///
    /// Options: [`in_order`](RunAll::in_order),
    /// [`stop_on_err`](RunAll::stop_on_err), [`limit`](RunAll::limit),
    /// [`progress`](RunAll::progress).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use permits_redis::{Error, GlobalSemaphore};
    ///
    /// async fn send(id: u32) -> Result<(), String> {
    ///     Ok(()) // talk to the mail server here
    /// }
    ///
    /// # async fn demo(sem: GlobalSemaphore) {
    /// let mut results = std::pin::pin!(sem.run_all(0..10_000, send));
    /// while let Some(result) = results.next().await {
    ///     match result {
    ///         Ok(Ok(())) => {}
    ///         Ok(Err(e)) => eprintln!("send failed: {e}"),
    ///         Err(Error::LeaseLost(why)) => eprintln!("cancelled: {why}"),
    ///         Err(e) => eprintln!("gave up: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// (The crate's README has the same, runnable, against a private
    /// redis-server.)
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream at any point drops the work in flight (each
    /// future before its lease) and the acquires in progress; every lease it
    /// held or was being granted is released by the [`Driver`](crate::Driver)
    /// (one batched call), after which the local permits come back. The items
    /// not started stay in the source.
    pub fn run_all<I, F, Fut>(&self, items: I, f: F) -> RunAll<IterStream<I::IntoIter>, F, Fut>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: IntoFuture,
    {
        self.run_stream(IterStream::new(items), f)
    }

    /// [`run_all`](Self::run_all) for a [`Stream`] of items, such as a
    /// channel's receiver: an item is pulled only once a lease for it is
    /// held.
    ///
    /// While the source has nothing to give (`Pending`), the stream releases
    /// the leases it acquired for it (rather than keep fleet-wide permits
    /// idle) and, when the source wakes it, starts again with one acquire,
    /// doubling the acquires in flight with each item pulled. A source that
    /// runs dry between every item so costs one extra acquire and release
    /// per item; one that delivers in bursts, about one per burst.
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_stream<St, F, Fut>(&self, items: St, f: F) -> RunAll<St, F, Fut>
    where
        St: Stream,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
    {
        RunAll::new(self.clone(), items, f)
    }
}
