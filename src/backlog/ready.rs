//! Per-slot wake-ups of the heap backlog stream: a waker per slot that marks
//! its slot ready in a shared bitmap and wakes the stream's task, so a
//! wake-up leads to polling the woken futures only.
//!
//! # Protocol
//!
//! Slot `i` owns bit `i % BITS` of word `i / BITS`. Word 0 lives in
//! [`Shared`], later words each in a [`Word`] of their own, allocated as the
//! slots are; a slot's waker holds what it needs by `Arc`, so it stays sound
//! after the stream is gone (it then marks a bit nobody reads). The
//! `summary` has bit `w % BITS` set when word `w` may have bits set (exact up
//! to `BITS * BITS` slots, a hint shared by several words beyond).
//!
//! A wake of slot `i`:
//!
//! 1. sets its bit (`fetch_or`); if it was set already, the wake that set it
//!    does the rest, so stop;
//! 2. sets its word's summary bit;
//! 3. sets `woken`; if it was clear, takes the stream's waker and wakes it.
//!
//! The stream, before it polls woken futures ([`Ready::snapshot`]):
//!
//! 1. stores its task's waker (if not the same one already);
//! 2. clears `woken`;
//! 3. takes the summary, then each word it names (`fetch_and(0)`); the bits
//!    taken are the slots to poll, in slot order.
//!
//! All read-modify-writes are `AcqRel`. A wake whose step 3 comes after the
//! stream's step 2 sees `woken` clear and wakes the stream, whose waker is
//! stored by then; one whose step 3 comes before it is read by step 2, so its
//! steps 1 and 2 happen before step 3 and the stream sees its bit. Either way
//! no wake-up is lost. A wake is "stale" if the slot's item finished and the
//! slot took another: that costs one extra poll of the new item, which
//! futures must tolerate anyway. `tests/loom.rs` model-checks this.

use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::task::{Context, Waker};

use crate::lock::Lock;
use crate::sync::AtomicUsize;
use crate::sync::Ordering::AcqRel;

const BITS: usize = usize::BITS as usize;

/// What every slot's waker shares: the stream's waker and the first word.
struct Shared {
    /// The waker of the stream's task, taken by the first wake after a
    /// snapshot. Never woken, cloned or dropped under the lock.
    task: Lock<Option<Waker>>,
    /// 1 once a wake has woken (or is waking) the task since the last
    /// snapshot: later wakes need not.
    woken: AtomicUsize,
    /// Bit `w % BITS`: word `w` may have bits set.
    summary: AtomicUsize,
    /// The bits of slots `0..BITS`.
    first: AtomicUsize,
}

/// The bits of `BITS` further slots.
struct Word {
    bits: AtomicUsize,
}

/// One slot's waker.
struct SlotWaker {
    shared: Arc<Shared>,
    /// `None` for the first word, which is in `shared`.
    word: Option<Arc<Word>>,
    /// This slot's bit in its word.
    bit: usize,
    /// Its word's bit in the summary.
    summary_bit: usize,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let bits = self.word.as_ref().map_or(&self.shared.first, |w| &w.bits);
        if bits.fetch_or(self.bit, AcqRel) & self.bit != 0 {
            return;
        }
        let shared = &self.shared;
        shared.summary.fetch_or(self.summary_bit, AcqRel);
        if shared.woken.fetch_or(1, AcqRel) == 0 {
            // Taken, so woken outside the lock (it may run any code).
            if let Some(task) = shared.task.with(Option::take) {
                task.wake();
            }
        }
    }
}

/// The stream's side: makes the slot wakers and tells which slots were woken.
pub(crate) struct Ready {
    shared: Arc<Shared>,
    /// Words `1..`, in order.
    words: Vec<Arc<Word>>,
    /// Slots made so far.
    slots: usize,
    /// From the last snapshot: summary bits not yet looked at.
    summary: usize,
    /// The word being handed out and its bits not yet handed out.
    word: usize,
    bits: usize,
    /// The next word (`word + BITS`, ...) sharing the summary bit in hand,
    /// if any: beyond `BITS * BITS` slots a summary bit names several words.
    next_in_group: usize,
}

impl Default for Ready {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                task: Lock::new(None),
                woken: AtomicUsize::new(0),
                summary: AtomicUsize::new(0),
                first: AtomicUsize::new(0),
            }),
            words: Vec::new(),
            slots: 0,
            summary: 0,
            word: 0,
            bits: 0,
            next_in_group: usize::MAX,
        }
    }
}

impl Ready {
    /// The waker of the next slot (number `self.slots`), allocated once and
    /// used for every item that slot runs.
    pub(crate) fn add_slot(&mut self) -> Waker {
        let i = self.slots;
        self.slots += 1;
        let w = i / BITS;
        let word = if w == 0 {
            None
        } else {
            if self.words.len() < w {
                self.words.push(Arc::new(Word {
                    bits: AtomicUsize::new(0),
                }));
            }
            Some(self.words[w - 1].clone())
        };
        Waker::from(Arc::new(SlotWaker {
            shared: self.shared.clone(),
            word,
            bit: 1 << (i % BITS),
            summary_bit: 1 << (w % BITS),
        }))
    }

    /// Takes the slots woken since the last snapshot, to be handed out by
    /// [`next`](Self::next), and arranges that a wake from now on wakes `cx`.
    /// Slots of the previous snapshot not yet handed out stay first.
    pub(crate) fn snapshot(&mut self, cx: &Context<'_>) {
        let shared = &*self.shared;
        let same = shared
            .task
            .with(|t| t.as_ref().is_some_and(|t| t.will_wake(cx.waker())));
        if !same {
            // Cloned and the old one dropped outside the lock.
            let new = cx.waker().clone();
            drop(shared.task.with(|t| t.replace(new)));
        }
        shared.woken.fetch_and(0, AcqRel);
        self.summary |= shared.summary.fetch_and(0, AcqRel);
    }

    /// Whether slots of the snapshots taken may be left to hand out.
    pub(crate) fn has_woken(&self) -> bool {
        self.bits != 0 || self.summary != 0 || self.next_in_group <= self.words.len()
    }

    /// The next woken slot of the snapshots taken, lowest first.
    pub(crate) fn next(&mut self) -> Option<usize> {
        loop {
            if self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(self.word * BITS + bit);
            }
            let w = if self.next_in_group <= self.words.len() {
                self.next_in_group
            } else if self.summary != 0 {
                let w = self.summary.trailing_zeros() as usize;
                self.summary &= self.summary - 1;
                w
            } else {
                return None;
            };
            self.next_in_group = w + BITS;
            self.word = w;
            let bits = if w == 0 {
                &self.shared.first
            } else {
                &self.words[w - 1].bits
            };
            self.bits = bits.fetch_and(0, AcqRel);
        }
    }
}
