//! [`KeyedAcquire`] and [`KeyedPermit`]: a key's permit first, then the
//! global one.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use super::map::{EntryRef, KeyUse};
use super::KeyedSemaphore;
use crate::permit::Held;
use crate::waiter::Waiter;
use crate::{AcquireError, Permit, Semaphore};

pin_project! {
    /// Where a [`KeyedAcquire`] is.
    #[project = StageProj]
    enum Stage<'a> {
        // Waiting in the key's queue.
        Key { #[pin] waiter: Waiter<EntryRef> },
        // Holding the key's permit, waiting in the global queue.
        // (`key` is `Some` until the stage ends.)
        Global { key: Option<Held<EntryRef>>, #[pin] waiter: Waiter<&'a Semaphore> },
        // The semaphore was closed when the acquire was created.
        Refused,
        Done,
    }
}

pin_project! {
    /// The future of [`KeyedSemaphore::acquire`]: waits for a permit of its
    /// key, then (if there is a global limit) for a global one.
    ///
    /// Dropping it at any point loses no permit: it leaves whichever queue it
    /// is in, gives back the key's permit if it holds it, and the key is
    /// evicted if nobody else uses it.
    #[must_use = "futures do nothing unless .awaited or polled"]
    pub struct KeyedAcquire<'a, K: Ord> {
        // Declared first: dropped (permits given back) before `key_use`,
        // whose drop may evict the key.
        #[pin]
        stage: Stage<'a>,
        // `None` if the semaphore was closed when this was created, and once
        // moved into the permit.
        key_use: Option<KeyUse<'a, K>>,
    }
}

impl<'a, K: Ord + Clone> KeyedAcquire<'a, K> {
    pub(crate) fn new(keyed: &'a KeyedSemaphore<K>, key: K) -> Self {
        Self::with_use(keyed.enter(key))
    }

    /// An acquire for a key already entered (`None`: closed).
    pub(crate) fn with_use(key_use: Option<KeyUse<'a, K>>) -> Self {
        let stage = match &key_use {
            Some(key_use) => Stage::Key {
                waiter: Waiter::new(key_use.entry.clone(), 1),
            },
            None => Stage::Refused,
        };
        Self { stage, key_use }
    }
}

impl<K: Ord> KeyedAcquire<'_, K> {
    /// The key's entry, unless refused (closed).
    pub(crate) fn entry(&self) -> Option<&EntryRef> {
        self.key_use.as_ref().map(|u| &u.entry)
    }
}

impl<'a, K: Ord> Future for KeyedAcquire<'a, K> {
    type Output = Result<KeyedPermit<'a, K>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.stage.as_mut().project() {
                StageProj::Key { waiter } => {
                    let (entry, n) = match ready!(waiter.poll_acquire(cx)) {
                        Ok(held) => held,
                        Err(err) => {
                            this.stage.set(Stage::Done);
                            return Poll::Ready(Err(err));
                        }
                    };
                    let key = Held::new(entry, n);
                    let keyed = this.key_use.as_ref().expect("key stage has a key").keyed;
                    match &keyed.global {
                        Some(global) => this.stage.set(Stage::Global {
                            key: Some(key),
                            waiter: Waiter::new(global, 1),
                        }),
                        None => {
                            this.stage.set(Stage::Done);
                            return Poll::Ready(Ok(KeyedPermit::new(key, None, this.key_use)));
                        }
                    }
                }
                StageProj::Global { waiter, key } => {
                    let acquired = ready!(waiter.poll_acquire(cx));
                    let key = key.take().expect("taken only here");
                    this.stage.set(Stage::Done);
                    return Poll::Ready(match acquired {
                        Ok((global, n)) => Ok(KeyedPermit::new(
                            key,
                            Some(Permit::new(global, n)),
                            this.key_use,
                        )),
                        // `key` is dropped here: the key's permit goes back.
                        Err(err) => Err(err),
                    });
                }
                StageProj::Refused => {
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Err(AcquireError::Closed));
                }
                StageProj::Done => panic!("keyed acquire polled after completion"),
            }
        }
    }
}

impl<K: Ord + fmt::Debug> fmt::Debug for KeyedAcquire<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Key { .. } => "key",
            Stage::Global { .. } => "global",
            Stage::Refused | Stage::Done => "nothing",
        };
        f.debug_struct("KeyedAcquire")
            .field("key", &self.key_use.as_ref().map(|u| &u.key))
            .field("waiting_for", &stage)
            .finish_non_exhaustive()
    }
}

/// A permit of one key (and of the global limit, if there is one); dropping
/// it gives both back, and evicts the key if nobody else uses it.
///
/// Returned by [`KeyedSemaphore::acquire`] and
/// [`KeyedSemaphore::try_acquire`].
#[must_use = "dropping a KeyedPermit gives its permits back at once"]
pub struct KeyedPermit<'a, K: Ord> {
    // Field order is drop order: the global permit goes back first (the
    // reverse of acquiring), then the key's, then the user count.
    global: Option<Permit<'a>>,
    key_permit: Held<EntryRef>,
    key_use: KeyUse<'a, K>,
}

impl<'a, K: Ord> KeyedPermit<'a, K> {
    /// `key_use` is the acquire's, taken out of it (`Some` unless refused).
    fn new(
        key_permit: Held<EntryRef>,
        global: Option<Permit<'a>>,
        key_use: &mut Option<KeyUse<'a, K>>,
    ) -> Self {
        Self {
            global,
            key_permit,
            key_use: key_use.take().expect("acquire has a key"),
        }
    }

    pub(crate) fn from_parts(
        key_permit: Held<EntryRef>,
        global: Option<Permit<'a>>,
        key_use: KeyUse<'a, K>,
    ) -> Self {
        Self {
            global,
            key_permit,
            key_use,
        }
    }

    /// The key this permit is for.
    pub fn key(&self) -> &K {
        &self.key_use.key
    }

    /// The key's entry.
    pub(crate) fn entry(&self) -> &EntryRef {
        &self.key_use.entry
    }

    /// The key semaphore this permit came from.
    pub fn keyed_semaphore(&self) -> &'a KeyedSemaphore<K> {
        self.key_use.keyed
    }
}

impl<K: Ord + fmt::Debug> fmt::Debug for KeyedPermit<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedPermit")
            .field("key", &self.key_use.key)
            .field("key_permits", &self.key_permit)
            .field("global", &self.global.as_ref().map(Permit::num_permits))
            .finish_non_exhaustive()
    }
}
