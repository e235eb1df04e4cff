//! [`KeyedGate`]: the [`Gate`] of [`KeyedSemaphore::run_all`]: a bounded
//! lookahead of items whose key is saturated, one waiting acquire per such
//! key, keys served in turn.
//!
//! # How it works
//!
//! An item pulled from the backlog whose key has no items waiting tries its
//! key's permit and a global one at once ([`KeyedSemaphore::try_acquire`]);
//! if both are free it starts right away and never enters the lookahead.
//! Otherwise it joins its key's *lane*: the items of one key waiting in the
//! lookahead, in backlog order, with one [`KeyedAcquire`] for the lane's
//! first item. While a lane waits, items of other keys keep being pulled and
//! started, until the lookahead holds `lookahead` items: then the gate pulls
//! nothing more until one of the lanes gets its permits.
//!
//! A lane's acquire takes the key's permit first, then the global one, as
//! every keyed acquire does: a saturated key holds no global permit. Once it
//! resolves, the lane's first item is admitted and the lane queues again for
//! its next item, now behind the lanes that queued meanwhile: keys waiting
//! for the global limit take turns, one item each (round-robin), so the
//! first key of a huge backlog cannot starve the others. Lanes that got
//! their permits are handed out first come, first served, before any new
//! item is pulled.
//!
//! Each lane's acquire has its own waker (the backlog engine's per-slot
//! bitmap, `backlog/ready.rs`, model-checked in `tests/loom.rs`), so a key
//! freeing a permit costs a poll of that lane only, however many wait.
//! Lanes are reused (their acquire's box, waker and item queue), so the
//! steady state allocates nothing for them.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use futures_core::stream::Stream;

use super::{KeyedAcquire, KeyedPermit, KeyedSemaphore};
use crate::backlog::{Gate, Ready};
use crate::AcquireError;

/// The lookahead of a keyed backlog stream unless set otherwise: how many
/// items, pulled from the backlog, may wait for their saturated keys.
pub(crate) const DEFAULT_LOOKAHEAD: usize = 1024;

/// One lane: its waker and acquire (made once, reused for every key the
/// lane serves) and the key it serves now, if any.
struct Lane<'a, K: Ord, T> {
    waker: Waker,
    /// The acquire of the permits for the first item; boxed so it stays
    /// pinned while the vector of lanes grows.
    acquire: Pin<Box<Option<KeyedAcquire<'a, K>>>>,
    /// The key served now; `None`: the lane is free.
    key: Option<K>,
    /// This key's items, oldest first, each with its place in the backlog.
    items: VecDeque<(u64, T)>,
    /// The permits of the first item, once acquired, until handed out.
    permit: Option<KeyedPermit<'a, K>>,
}

/// The [`Gate`] of [`KeyedSemaphore::run_all`] and
/// [`run_stream`](KeyedSemaphore::run_stream): each item gets a permit of
/// its key (the key `key_of` gives it) and a global one; items whose key is
/// saturated wait in a bounded lookahead while items of other keys go on.
///
/// Usable on its own with [`RunWith`](crate::RunWith); see
/// [`KeyedRunAll`](super::KeyedRunAll) for the design, its fairness and its
/// memory bound.
pub struct KeyedGate<'a, K: Ord, T, KF> {
    keyed: &'a KeyedSemaphore<K>,
    key_of: KF,
    lookahead: usize,
    /// Items pulled and not admitted: those in the lanes and `left`.
    held: usize,
    lanes: Vec<Lane<'a, K, T>>,
    free: Vec<usize>,
    /// The lane of each key with items waiting.
    by_key: BTreeMap<K, usize>,
    /// Lanes holding their first item's permits, in the order they got them.
    granted: VecDeque<usize>,
    /// Which lanes' acquires were woken.
    ready: Ready,
    /// Items pulled after the semaphore was closed (they never run).
    left: Vec<(u64, T)>,
    pulled: u64,
    drained: bool,
    failed: bool,
}

// Nothing in the gate is pinned structurally: the acquires are boxed.
impl<K: Ord, T, KF> Unpin for KeyedGate<'_, K, T, KF> {}

impl<'a, K: Ord + Clone, T, KF: FnMut(&T) -> K> KeyedGate<'a, K, T, KF> {
    /// A gate giving each item a permit of its key, `key_of(&item)`, and a
    /// global one, with the default lookahead (1024 items).
    pub fn new(keyed: &'a KeyedSemaphore<K>, key_of: KF) -> Self {
        Self {
            keyed,
            key_of,
            lookahead: DEFAULT_LOOKAHEAD,
            held: 0,
            lanes: Vec::new(),
            free: Vec::new(),
            by_key: BTreeMap::new(),
            granted: VecDeque::new(),
            ready: Ready::default(),
            left: Vec::new(),
            pulled: 0,
            drained: false,
            failed: false,
        }
    }
}

impl<'a, K: Ord, T, KF> KeyedGate<'a, K, T, KF> {
    /// At most `n` items pulled from the backlog and waiting for their keys.
    ///
    /// # Panics
    ///
    /// If `n` is 0 (nothing could ever be pulled).
    pub fn with_lookahead(mut self, n: usize) -> Self {
        self.set_lookahead(n);
        self
    }

    pub(crate) fn set_lookahead(&mut self, n: usize) {
        assert!(n > 0, "keyed stream: the lookahead must be at least 1");
        self.lookahead = n;
    }

    /// The most items that may wait in the lookahead.
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Items pulled from the backlog that wait in the lookahead now.
    pub fn waiting(&self) -> usize {
        self.held
    }

    /// Keys with items waiting in the lookahead now.
    pub fn waiting_keys(&self) -> usize {
        self.by_key.len()
    }

    /// The keyed semaphore the permits come from.
    pub fn keyed_semaphore(&self) -> &'a KeyedSemaphore<K> {
        self.keyed
    }

    /// Takes the items waiting in the lookahead, in backlog order: they will
    /// not run. Their keys' acquires are cancelled (permits handed to them go
    /// back, the keys are evicted if nobody else uses them).
    pub fn take_waiting(&mut self) -> Vec<T> {
        let mut items = core::mem::take(&mut self.left);
        for lane in &mut self.lanes {
            lane.acquire.set(None);
            lane.permit = None;
            lane.key = None;
            items.extend(lane.items.drain(..));
        }
        self.free = (0..self.lanes.len()).rev().collect();
        self.by_key.clear();
        self.granted.clear();
        self.held = 0;
        items.sort_unstable_by_key(|&(seq, _)| seq);
        items.into_iter().map(|(_, item)| item).collect()
    }

    /// Cancels every lane's acquire and gives back permits not handed out;
    /// the items stay (for [`take_waiting`](Self::take_waiting)).
    fn cancel_acquires(&mut self) {
        self.granted.clear();
        for lane in &mut self.lanes {
            lane.acquire.set(None);
            lane.permit = None;
        }
    }
}

impl<'a, K: Ord + Clone, T, KF: FnMut(&T) -> K> KeyedGate<'a, K, T, KF> {
    /// A lane for `key`, free or new.
    fn lane_for(&mut self, key: K) -> usize {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.lanes.push(Lane {
                    waker: self.ready.add_slot(),
                    acquire: Box::pin(None),
                    key: None,
                    items: VecDeque::new(),
                    permit: None,
                });
                self.lanes.len() - 1
            }
        };
        self.by_key.insert(key.clone(), i);
        self.lanes[i].key = Some(key);
        i
    }

    /// A pulled item: admitted at once if its key has no lane and both
    /// permits are free, else queued in its key's lane.
    fn take_in(&mut self, item: T) -> Option<(T, KeyedPermit<'a, K>)> {
        let key = (self.key_of)(&item);
        let seq = self.pulled;
        self.pulled += 1;
        if let Some(&i) = self.by_key.get(&key) {
            self.lanes[i].items.push_back((seq, item));
            self.held += 1;
            return None;
        }
        let key_use = match self.keyed.enter_or_return(key) {
            Ok(key_use) => key_use,
            Err(_closed) => {
                self.left.push((seq, item));
                self.held += 1;
                self.failed = true;
                return None;
            }
        };
        let key_use = match self.keyed.try_with(key_use) {
            Ok(permit) => return Some((item, permit)),
            Err((key_use, _busy)) => key_use,
        };
        let i = self.lane_for(key_use.key.clone());
        let lane = &mut self.lanes[i];
        lane.items.push_back((seq, item));
        self.held += 1;
        lane.acquire
            .set(Some(KeyedAcquire::with_use(Some(key_use))));
        // Its first poll comes with the woken lanes.
        lane.waker.wake_by_ref();
        None
    }

    /// Polls lane `i`'s acquire if it has one. `Err` if closed.
    fn poll_lane(&mut self, i: usize) -> Result<(), AcquireError> {
        let lane = &mut self.lanes[i];
        let Some(acquire) = lane.acquire.as_mut().as_pin_mut() else {
            // A stale wake-up (the lane moved on).
            return Ok(());
        };
        let polled = acquire.poll(&mut Context::from_waker(&lane.waker));
        match polled {
            Poll::Pending => Ok(()),
            Poll::Ready(result) => {
                lane.acquire.set(None);
                lane.permit = Some(result?);
                self.granted.push_back(i);
                Ok(())
            }
        }
    }

    /// Admits lane `i`'s first item with its permits; the lane queues again
    /// for the next one, or is freed.
    fn hand_out(&mut self, i: usize) -> (T, KeyedPermit<'a, K>) {
        let lane = &mut self.lanes[i];
        let permit = lane.permit.take().expect("a granted lane holds permits");
        let (_, item) = lane.items.pop_front().expect("a lane has items");
        self.held -= 1;
        if lane.items.is_empty() {
            let key = lane.key.take().expect("a granted lane has a key");
            self.by_key.remove(&key);
            // Give back what a burst of this key's items grew it to.
            lane.items.shrink_to(4);
            self.free.push(i);
        } else {
            let key = lane.key.clone().expect("a granted lane has a key");
            lane.acquire.set(Some(self.keyed.acquire(key)));
            lane.waker.wake_by_ref();
        }
        (item, permit)
    }
}

impl<'a, K, T, KF, O> Gate<T, O> for KeyedGate<'a, K, T, KF>
where
    K: Ord + Clone,
    KF: FnMut(&T) -> K,
{
    type Permit = KeyedPermit<'a, K>;
    type Error = AcquireError;

    fn poll_admit<B: Stream<Item = T> + ?Sized>(
        self: Pin<&mut Self>,
        mut backlog: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(T, KeyedPermit<'a, K>), AcquireError>>> {
        let this = self.get_mut();
        loop {
            if let Some(i) = this.granted.pop_front() {
                return Poll::Ready(Some(Ok(this.hand_out(i))));
            }
            this.ready.wake_up();
            while let Some(i) = this.ready.next() {
                if this.poll_lane(i).is_err() {
                    this.failed = true;
                    break;
                }
            }
            if this.failed {
                this.cancel_acquires();
                return Poll::Ready(Some(Err(AcquireError::Closed)));
            }
            if !this.granted.is_empty() {
                continue;
            }
            if !this.drained && this.held < this.lookahead {
                match backlog.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => match this.take_in(item) {
                        Some(admitted) => return Poll::Ready(Some(Ok(admitted))),
                        None => continue,
                    },
                    Poll::Ready(None) => this.drained = true,
                    Poll::Pending => {}
                }
            }
            if this.drained && this.held == 0 {
                return Poll::Ready(None);
            }
            if this.ready.sleep(cx, this.held > 0, false) {
                // A lane woke meanwhile: come back for it.
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }

    fn stop(self: Pin<&mut Self>) {
        self.get_mut().cancel_acquires();
    }
}

impl<K: Ord + fmt::Debug, T, KF> fmt::Debug for KeyedGate<'_, K, T, KF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedGate")
            .field("lookahead", &self.lookahead)
            .field("waiting", &self.held)
            .field("waiting_keys", &self.by_key.len())
            .field("drained", &self.drained)
            .finish_non_exhaustive()
    }
}
