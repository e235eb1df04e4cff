//! [`KeyedLimiterGate`]: the keyed backlog stream under a [`KeyedLimiter`]:
//! the [`KeyedGate`]'s lookahead and turns, and each finished item reported
//! to its key's algorithm.

use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use futures_core::stream::Stream;

use super::{KeyedGate, KeyedLimitPermit, KeyedLimiter};
use crate::adaptive::{Aimd, Algorithm, Outcome};
use crate::backlog::RunWith;
use crate::{AcquireError, Gate, IterStream};

/// What the classifier of [`KeyedLimiter::run_all`] returns: how to report
/// a finished item to its key's algorithm.
///
/// - `(Outcome, Duration)`: the outcome and the time it took by your clock;
/// - `Outcome` (with `std`): the outcome, timed with `std::time::Instant`
///   from the permits being granted;
/// - `Option<_>` of either: `None` records nothing.
pub trait KeyedFeedback {
    /// Reports through `permit` (which it consumes).
    fn report<K: Ord + Clone, A: Algorithm + Clone>(self, permit: KeyedLimitPermit<'_, K, A>);
}

impl KeyedFeedback for (Outcome, Duration) {
    fn report<K: Ord + Clone, A: Algorithm + Clone>(self, permit: KeyedLimitPermit<'_, K, A>) {
        permit.record(self.0, self.1);
    }
}

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl KeyedFeedback for Outcome {
    fn report<K: Ord + Clone, A: Algorithm + Clone>(self, permit: KeyedLimitPermit<'_, K, A>) {
        permit.finish(self);
    }
}

impl<T: KeyedFeedback> KeyedFeedback for Option<T> {
    fn report<K: Ord + Clone, A: Algorithm + Clone>(self, permit: KeyedLimitPermit<'_, K, A>) {
        if let Some(feedback) = self {
            feedback.report(permit);
        }
    }
}

/// The [`Gate`] of [`KeyedLimiter::run_all`] and
/// [`run_stream`](KeyedLimiter::run_stream): a [`KeyedGate`] over the
/// limiter's keyed semaphore (lookahead, lanes, turns between keys), whose
/// permits report each finished item's output, as `classify` makes of it,
/// to the item's key's algorithm.
///
/// Make one with [`KeyedLimiter::gate`] to set its
/// [lookahead](Self::with_lookahead), and run it with
/// [`RunWith`](crate::RunWith).
pub struct KeyedLimiterGate<'a, K: Ord, T, KF, C, R, A = Aimd> {
    inner: KeyedGate<'a, K, T, KF>,
    limiter: &'a KeyedLimiter<K, A>,
    classify: C,
    _feedback: PhantomData<fn() -> R>,
}

// Nothing is pinned structurally (the keyed gate is `Unpin` too).
impl<K: Ord, T, KF, C, R, A> Unpin for KeyedLimiterGate<'_, K, T, KF, C, R, A> {}

impl<'a, K: Ord, T, KF, C, R, A> KeyedLimiterGate<'a, K, T, KF, C, R, A> {
    /// At most `n` items pulled from the backlog and waiting for their keys
    /// (see [`KeyedGate::with_lookahead`]).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn with_lookahead(mut self, n: usize) -> Self {
        self.inner.set_lookahead(n);
        self
    }

    /// The keyed gate inside: its [`waiting`](KeyedGate::waiting) items.
    pub fn keyed_gate(&self) -> &KeyedGate<'a, K, T, KF> {
        &self.inner
    }

    /// Takes the items waiting in the lookahead, in backlog order (see
    /// [`KeyedGate::take_waiting`]).
    pub fn take_waiting(&mut self) -> alloc::vec::Vec<T> {
        self.inner.take_waiting()
    }
}

impl<'a, K, T, KF, C, R, A, O> Gate<T, O> for KeyedLimiterGate<'a, K, T, KF, C, R, A>
where
    K: Ord + Clone,
    KF: FnMut(&T) -> K,
    C: FnMut(&O) -> R,
    R: KeyedFeedback,
    A: Algorithm + Clone,
{
    type Permit = KeyedLimitPermit<'a, K, A>;
    type Error = AcquireError;

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, Self::Permit), AcquireError>>> {
        let this = self.get_mut();
        let limiter = this.limiter;
        let polled = Gate::<T, O>::poll_admit(Pin::new(&mut this.inner), backlog, cx);
        polled.map(|admitted| {
            admitted.map(|admitted| admitted.map(|(item, permit)| (item, limiter.adopt(permit))))
        })
    }

    fn settle(self: Pin<&mut Self>, permit: Self::Permit, output: &O) {
        (self.get_mut().classify)(output).report(permit);
    }

    fn stop(self: Pin<&mut Self>) {
        Gate::<T, O>::stop(Pin::new(&mut self.get_mut().inner));
    }
}

impl<K: Ord + fmt::Debug, T, KF, C, R, A> fmt::Debug for KeyedLimiterGate<'_, K, T, KF, C, R, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiterGate")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<K: Ord + Clone, A: Algorithm + Clone> KeyedLimiter<K, A> {
    /// The gate of [`run_all`](Self::run_all): to set its lookahead and run
    /// it with [`RunWith::new`].
    pub fn gate<T, KF, C, R>(
        &self,
        key_of: KF,
        classify: C,
    ) -> KeyedLimiterGate<'_, K, T, KF, C, R, A>
    where
        KF: FnMut(&T) -> K,
    {
        KeyedLimiterGate {
            inner: KeyedGate::new(self.keyed_semaphore(), key_of),
            limiter: self,
            classify,
            _feedback: PhantomData,
        }
    }

    /// [`KeyedSemaphore::run_all`](super::KeyedSemaphore::run_all) under
    /// adaptive per-key limits: runs `f` on every item, each while holding
    /// a permit of its key (`key_of(&item)`) and a global one, and reports
    /// what `classify` makes of each output to that key's algorithm, so each
    /// key finds its own limit while the backlog runs.
    ///
    /// Items whose key is saturated wait in the lookahead (1024 items; set
    /// another with [`gate`](Self::gate)) while the other keys go on, and
    /// keys take turns for the global limit, as in
    /// [`KeyedRunAll`](super::KeyedRunAll). A key that reappears after being
    /// idle gets its learned limit applied with its first permit (granted at
    /// the initial limit, so at most that many start before it applies).
    ///
    /// # Examples
    ///
    /// ```
    /// use core::time::Duration;
    /// use futures::StreamExt;
    /// use permits::adaptive::{Aimd, Outcome};
    /// use permits::KeyedLimiter;
    ///
    /// async fn send(mail: (&'static str, u32)) -> Result<u32, u32> {
    ///     if mail.0 == "busy.example" && mail.1 % 2 == 0 { Err(421) } else { Ok(250) }
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let limits = KeyedLimiter::new(Aimd::new().initial_limit(4));
    /// let mails = (0..40).map(|n| (if n % 2 == 0 { "busy.example" } else { "ok.example" }, n / 2));
    /// let replies = limits.run_all(mails, |mail| mail.0, send, |reply| match reply {
    ///     Ok(_) => (Outcome::Success, Duration::from_millis(10)),
    ///     Err(_) => (Outcome::Overload, Duration::from_millis(1)),
    /// });
    /// assert_eq!(replies.count().await, 40);
    /// // The busy domain backed off to its floor, the other did not.
    /// assert_eq!(limits.key_limit(&"busy.example"), 1);
    /// assert!(limits.key_limit(&"ok.example") >= 4);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`KeyedSemaphore::run_all`](super::KeyedSemaphore::run_all);
    /// items dropped in flight report nothing.
    #[allow(clippy::type_complexity)]
    pub fn run_all<I, KF, F, Fut, C, R>(
        &self,
        items: I,
        key_of: KF,
        f: F,
        classify: C,
    ) -> RunWith<KeyedLimiterGate<'_, K, I::Item, KF, C, R, A>, IterStream<I::IntoIter>, F, Fut>
    where
        I: IntoIterator,
        KF: FnMut(&I::Item) -> K,
        F: FnMut(I::Item) -> Fut,
        Fut: core::future::IntoFuture,
        C: FnMut(&Fut::Output) -> R,
        R: KeyedFeedback,
    {
        self.run_stream(IterStream::new(items), key_of, f, classify)
    }

    /// [`run_all`](Self::run_all) for a [`Stream`] of items.
    ///
    /// # Cancel safety
    ///
    /// As [`run_all`](Self::run_all).
    #[allow(clippy::type_complexity)]
    pub fn run_stream<St, KF, F, Fut, C, R>(
        &self,
        items: St,
        key_of: KF,
        f: F,
        classify: C,
    ) -> RunWith<KeyedLimiterGate<'_, K, St::Item, KF, C, R, A>, St, F, Fut>
    where
        St: Stream,
        KF: FnMut(&St::Item) -> K,
        F: FnMut(St::Item) -> Fut,
        Fut: core::future::IntoFuture,
        C: FnMut(&Fut::Output) -> R,
        R: KeyedFeedback,
    {
        RunWith::new(self.gate(key_of, classify), items, f)
    }
}
