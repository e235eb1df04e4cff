//! [`KeyedRunAll`]: the keyed backlog stream, [`KeyedSemaphore::run_all`]
//! and [`KeyedSemaphore::run_stream`], on the backlog engine.

use alloc::vec::Vec;
use core::fmt;
use core::future::IntoFuture;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::gate::KeyedGate;
use super::{KeyedPermit, KeyedSemaphore};
use crate::backlog::{Engine, HeapStore};
#[cfg(doc)]
use crate::Semaphore;
use crate::{AcquireError, Gate, IterStream, Progress};

/// The engine of [`KeyedRunAll`].
type KeyedEngine<'a, K, KF, St, F, Fut> = Engine<
    KeyedGate<'a, K, <St as Stream>::Item, KF>,
    St,
    F,
    Fut,
    HeapStore<<Fut as IntoFuture>::IntoFuture, KeyedPermit<'a, K>>,
    AcquireError,
>;

pin_project! {
    /// The stream of [`KeyedSemaphore::run_all`] and
    /// [`KeyedSemaphore::run_stream`]: runs `F` on each item of the source
    /// `St`, each while holding a permit of its key (`KF` gives an item's
    /// key) and a global one, and yields `Ok(output)` per item as they
    /// finish (or [in order](Self::in_order)).
    ///
    /// It is [`RunWith`](crate::RunWith) over a [`KeyedGate`]: the slots,
    /// per-slot wake-ups, `in_order`, `stop_on_err` and `progress` of
    /// [`Semaphore::run_all`], with the items admitted as follows.
    ///
    /// # No head-of-line blocking
    ///
    /// An item whose key has room (and a global permit free) starts at once.
    /// An item whose key is saturated waits in the stream's **lookahead**,
    /// in its key's queue, while the stream goes on pulling and starting
    /// items of other keys: a slow destination holds up only its own items.
    /// Each saturated key has one acquire waiting (its key's permit first,
    /// then the global one, as [`KeyedSemaphore::acquire`]); when it
    /// resolves, the key's oldest waiting item starts.
    ///
    /// The lookahead is bounded ([`lookahead`](Self::lookahead), 1024 items
    /// by default): once it holds that many items of saturated keys, the
    /// stream pulls nothing more from the source until one of those keys
    /// frees a permit, and admits again at once then. So it sees at most
    /// `lookahead` items past the first one that waits: a run of more than
    /// `lookahead` items for saturated keys holds up the items behind it
    /// until it drains. Size it to the longest such run you expect.
    ///
    /// # Fairness
    ///
    /// Within a key, items start in backlog order. Keys waiting for the
    /// global limit take turns: a key whose item just started queues again
    /// for its next item behind the keys that queued meanwhile, so each
    /// waiting key gets one global permit per round (round-robin, as
    /// Postfix serves destinations) and the first key of a huge backlog
    /// cannot starve the others. Keys whose permits came are served before
    /// any new item is pulled. Other users of the same `KeyedSemaphore`
    /// (plain `acquire`, other streams) take turns with the stream's keys in
    /// the semaphores' FIFO queues.
    ///
    /// # Memory
    ///
    /// At most `lookahead` items are pulled and not started, each kept with
    /// a sequence number (`size_of::<T>() + 8` bytes, in its key's queue).
    /// Each key with items waiting uses a *lane*: a boxed acquire, a waker,
    /// the key twice, and the key's map entry in the `KeyedSemaphore`
    /// (about 400 bytes on 64-bit targets plus the keys). There are at most
    /// as many lanes as items waiting, so at most `lookahead` of them; they
    /// are kept for reuse, so after the stream's peak nothing more is
    /// allocated for them. The slots of the items in flight are those of
    /// `run_all`, one per item that held permits at once.
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream at any point drops the work in flight (each
    /// future before its permits) and the items in the lookahead, and
    /// cancels the keys' waiting acquires: no permit is lost, every key
    /// nobody else uses is evicted. The items still in the source did not
    /// run.
    ///
    /// # Close
    ///
    /// Once the `KeyedSemaphore` is closed, the stream starts nothing more;
    /// after the work in flight it yields `Err(AcquireError::Closed)` once,
    /// last. The items that did not run are those of
    /// [`take_waiting`](Self::take_waiting) and those left in the
    /// [source](Self::source_mut).
    ///
    /// # Permits held but not running
    ///
    /// With a [`limit`](Self::limit) below what the keys and the global
    /// limit allow, or [`in_order`](Self::in_order) with outputs waiting for
    /// their turn, keys whose acquires resolved while the stream had no room
    /// hold their permits until it has: at most one item's permits per key
    /// waiting.
    #[must_use = "streams do nothing unless polled"]
    pub struct KeyedRunAll<'a, K, KF, St, F, Fut>
    where
        K: Ord,
        St: Stream,
        Fut: IntoFuture,
    {
        #[pin]
        inner: KeyedEngine<'a, K, KF, St, F, Fut>,
    }
}

backlog_stream_impls!(
    KeyedRunAll ['a, K, KF,] ['a, K, KF,] [] [],
    gate KeyedGate<'a, K, St::Item, KF>,
    where [K: Ord + Clone, St: Stream, KF: FnMut(&St::Item) -> K,],
    window
    "Without an explicit `limit`, the window is the global limit's permit count when `in_order` is called.\n\n# Panics\n\nWithout a global limit, if no `limit` was set."
);
backlog_stream_remaining!(KeyedRunAll ['a, K: Ord + Clone, KF: FnMut(&I::Item) -> K,] ['a, K, KF,] [] []);

impl<'a, K, KF, St, F, Fut> KeyedRunAll<'a, K, KF, St, F, Fut>
where
    K: Ord + Clone,
    St: Stream,
    KF: FnMut(&St::Item) -> K,
    Fut: IntoFuture,
{
    pub(super) fn new(keyed: &'a KeyedSemaphore<K>, items: St, key_of: KF, f: F) -> Self {
        let gate = KeyedGate::new(keyed, key_of);
        Self {
            inner: Engine::new(gate, items, f, HeapStore::default(), usize::MAX),
        }
    }

    /// At most `n` items pulled from the source may wait for their keys
    /// (the default: 1024). See [No head-of-line blocking](Self#no-head-of-line-blocking)
    /// for what it buys and [Memory](Self#memory) for what it costs. Call it
    /// before the stream is first polled.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn lookahead(mut self, n: usize) -> Self {
        self.inner.gate_mut_unpinned().set_lookahead(n);
        self
    }

    /// Items pulled from the source that wait for their keys now.
    pub fn waiting(&self) -> usize {
        self.inner.gate().waiting()
    }

    /// Keys with items waiting in the lookahead now.
    pub fn waiting_keys(&self) -> usize {
        self.inner.gate().waiting_keys()
    }

    /// Takes the items waiting in the lookahead, in source order: they will
    /// not run. Meant for after the stream ended with an error (or was
    /// stopped by [`stop_on_err`](Self::stop_on_err)); together with the
    /// items left in the [source](Self::source_mut), they are exactly the
    /// items that did not run. Mid-stream it cancels their keys' acquires.
    pub fn take_waiting(self: Pin<&mut Self>) -> Vec<St::Item> {
        self.engine().gate_mut().get_mut().take_waiting()
    }
}

impl<'a, K, KF, St, F, Fut> KeyedRunAll<'a, K, KF, St, F, Fut>
where
    K: Ord + Clone,
    St: Stream,
    KF: FnMut(&St::Item) -> K,
    Fut: IntoFuture,
{
    fn engine(self: Pin<&mut Self>) -> Pin<&mut KeyedEngine<'a, K, KF, St, F, Fut>> {
        self.project().inner
    }

    fn default_window(&self) -> impl FnOnce() -> usize + 'a {
        let global = self.inner.gate().keyed_semaphore().global();
        move || {
            match global {
            Some(global) => global.total_permits(),
            None => panic!(
                "KeyedRunAll::in_order: without a global limit, call `limit` first: the window must be bounded"
            ),
        }
        }
    }
}

impl<K: Ord + Clone> KeyedSemaphore<K> {
    /// Runs `f` on every item of `items`, each while holding a permit of its
    /// key, `key_of(&item)`, and a global one (if there is a global limit),
    /// and returns the outputs as a [`Stream`], in the order they finish.
    ///
    /// Items whose key is saturated wait in a bounded lookahead while items
    /// of other keys go on; saturated keys take turns for the global limit.
    /// See [`KeyedRunAll`] for the design, its fairness and memory bound.
    /// Each item is `Ok(output)`; a closed semaphore ends the stream with one
    /// `Err(AcquireError::Closed)`, after the work in flight.
    ///
    /// # Examples
    ///
    /// Send mails to several domains, at most 2 at a time per domain and 4
    /// in total; the many mails for `slow.example` do not hold up the rest:
    ///
    /// ```
    /// use futures::StreamExt;
    /// use permits::KeyedSemaphore;
    ///
    /// async fn send(mail: (&'static str, u32)) -> u32 {
    ///     mail.1
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let domains = KeyedSemaphore::with_global_limit(2, 4);
    /// let mails = (0..100)
    ///     .map(|n| ("slow.example", n))
    ///     .chain((100..110).map(|n| ("fast.example", n)));
    /// let sent = domains
    ///     .run_all(mails, |mail| mail.0, send)
    ///     .fold(0, |sent, id| async move { sent + usize::from(id.is_ok()) })
    ///     .await;
    /// assert_eq!(sent, 110);
    /// assert_eq!(domains.live_keys(), 0); // every key evicted again
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream drops the futures in flight and the items in the
    /// lookahead, gives back every permit it holds or was handed, and the
    /// keys nobody else uses are evicted; the items not pulled stay in the
    /// source.
    pub fn run_all<I, KF, F, Fut>(
        &self,
        items: I,
        key_of: KF,
        f: F,
    ) -> KeyedRunAll<'_, K, KF, IterStream<I::IntoIter>, F, Fut>
    where
        I: IntoIterator,
        KF: FnMut(&I::Item) -> K,
        F: FnMut(I::Item) -> Fut,
        Fut: IntoFuture,
    {
        self.run_stream(IterStream::new(items), key_of, f)
    }

    /// [`run_all`](Self::run_all) for a [`Stream`] of items, such as a
    /// channel's receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use permits::KeyedSemaphore;
    ///
    /// # futures::executor::block_on(async {
    /// let hosts = KeyedSemaphore::new(1);
    /// let jobs = futures::stream::iter([("a", 1), ("b", 2), ("a", 3)]);
    /// let done: Vec<_> = hosts
    ///     .run_stream(jobs, |job| job.0, |job| async move { job.1 * 10 })
    ///     .limit(4)
    ///     .in_order()
    ///     .collect()
    ///     .await;
    /// assert_eq!(done, [Ok(10), Ok(20), Ok(30)]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    pub fn run_stream<St, KF, F, Fut>(
        &self,
        items: St,
        key_of: KF,
        f: F,
    ) -> KeyedRunAll<'_, K, KF, St, F, Fut>
    where
        St: Stream,
        KF: FnMut(&St::Item) -> K,
        F: FnMut(St::Item) -> Fut,
        Fut: IntoFuture,
    {
        KeyedRunAll::new(self, items, key_of, f)
    }
}
