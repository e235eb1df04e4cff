//! Per-slot wake-ups of the heap backlog streams: a waker per slot that marks
//! its slot ready in a shared bitmap and wakes the stream's task, so a
//! wake-up leads to polling the woken futures only; and one waker for the
//! gate, so the stream polls its gate only when the gate asked for it.
//!
//! # Protocol
//!
//! Slot `i` owns bit `i % BITS` of word `i / BITS`. Word 0 lives in
//! [`Shared`], later words in [`Words`] groups of `GROUP`, allocated as the
//! slots are (a group per `GROUP * BITS` slots, so that at large limits the
//! words stay in a few cache lines instead of one line per 64 slots); a slot's waker holds what it needs by `Arc`, so it stays sound
//! after the stream is gone (it then marks a bit nobody reads). The
//! `summary` has bit `w % BITS` set when word `w` may have bits set (exact up
//! to `BITS * BITS` slots, a hint shared by several words beyond). The gate
//! has a flag of its own, `gate`.
//!
//! `woken` is 1 while the stream's task is known to be coming (woken, or
//! running the stream: "awake") and 0 once the stream went to sleep.
//!
//! A wake of slot `i` (the gate's: set `gate`, then step 3):
//!
//! 1. sets its bit (`fetch_or`); if it was set already, the wake that set it
//!    does the rest, so stop;
//! 2. sets its word's summary bit;
//! 3. sets `woken`; if it was 0, takes the stream's waker and wakes it.
//!
//! The stream, while polled:
//!
//! - *awake* ([`Ready::wake_up`]): sets `woken` (wake-ups from now on only
//!   mark their bits), then takes the summary and each word it names
//!   (`fetch_and(0)`); the bits taken are the slots to poll, in slot order.
//! - *asleep* ([`Ready::sleep`], before it returns `Pending`): stores its
//!   task's waker (if not the same one already), clears `woken`, then looks
//!   at the summary and `gate` once more: if a wake-up came in while it was
//!   awake, it wakes its own task to handle it.
//!
//! All read-modify-writes are `AcqRel`. A wake whose step 3 comes after the
//! clear in `sleep` sees 0 and wakes the stream, whose waker is stored by
//! then; one whose step 3 comes before it is read by that clear, so its
//! steps 1 and 2 happen before the look that follows and the stream sees its
//! bits. Either way no wake-up is lost. A wake is "stale" if the slot's item
//! finished and the slot took another: that costs one extra poll of the new
//! item, which futures must tolerate anyway. `tests/loom.rs` model-checks
//! this with wake-ups from other threads.

use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::task::{Context, Poll, Waker};

use crate::lock::Lock;
use crate::sync::AtomicUsize;
use crate::sync::Ordering::{AcqRel, Acquire};

const BITS: usize = usize::BITS as usize;

/// What every waker of a stream shares.
struct Shared {
    /// The waker of the stream's task, taken by the wake that finds the
    /// stream asleep. Never woken, cloned or dropped under the lock.
    task: Lock<Option<Waker>>,
    /// 1: the task is coming, wake-ups need not wake it (see the protocol).
    woken: AtomicUsize,
    /// Bit `w % BITS`: word `w` may have bits set.
    summary: AtomicUsize,
    /// The bits of slots `0..BITS`.
    first: AtomicUsize,
    /// 1: the gate was woken since the stream last polled it.
    gate: AtomicUsize,
}

impl Shared {
    /// Step 3 of a wake: wakes the task unless it is coming anyway.
    fn wake_task(&self) {
        // A swap, not `fetch_or`: the flag is 0 or 1, and a swap that
        // returns the old value is one instruction where `fetch_or` is a loop.
        if self.woken.swap(1, AcqRel) == 0 {
            // Taken, so woken outside the lock (it may run any code).
            if let Some(task) = self.task.with(Option::take) {
                task.wake();
            }
        }
    }
}

/// How many words share one allocation: one cache line of them.
const GROUP: usize = 8;

/// The bits of `GROUP * BITS` further slots.
struct Words {
    bits: [AtomicUsize; GROUP],
}

/// One slot's waker.
struct SlotWaker {
    shared: Arc<Shared>,
    /// `None` for the first word, which is in `shared`.
    group: Option<Arc<Words>>,
    /// This slot's word in its group, its bit in the word, and its word's
    /// bit in the summary.
    word: u8,
    bit: u8,
    summary_bit: u8,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let bits = self
            .group
            .as_ref()
            .map_or(&self.shared.first, |g| &g.bits[usize::from(self.word)]);
        let bit = 1 << self.bit;
        if bits.fetch_or(bit, AcqRel) & bit != 0 {
            return;
        }
        self.shared.summary.fetch_or(1 << self.summary_bit, AcqRel);
        self.shared.wake_task();
    }
}

/// The gate's waker is the shared state itself (one allocation less).
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.gate.swap(1, AcqRel);
        self.wake_task();
    }
}

/// The stream's side: makes the wakers and tells which slots were woken.
pub(crate) struct Ready {
    shared: Arc<Shared>,
    gate_waker: Waker,
    /// The gate returned `Pending` when last polled: poll it again only once
    /// it woke us.
    gate_idle: bool,
    /// Words `1..=words`, in groups of `GROUP`.
    groups: Vec<Arc<Words>>,
    words: usize,
    /// Slots made so far.
    slots: usize,
    /// Summary bits taken and not yet looked at.
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
        let shared = Arc::new(Shared {
            task: Lock::new(None),
            // Not asleep before the first poll: nothing to wake yet.
            woken: AtomicUsize::new(1),
            summary: AtomicUsize::new(0),
            first: AtomicUsize::new(0),
            gate: AtomicUsize::new(0),
        });
        Self {
            gate_waker: Waker::from(shared.clone()),
            shared,
            gate_idle: false,
            groups: Vec::new(),
            words: 0,
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
        let group = if w == 0 {
            None
        } else {
            self.words = w;
            let g = (w - 1) / GROUP;
            if self.groups.len() == g {
                self.groups.push(Arc::new(Words {
                    bits: core::array::from_fn(|_| AtomicUsize::new(0)),
                }));
            }
            Some(self.groups[g].clone())
        };
        Waker::from(Arc::new(SlotWaker {
            shared: self.shared.clone(),
            group,
            // All below `BITS`, which is at most 128.
            word: (w.wrapping_sub(1) % GROUP) as u8,
            bit: (i % BITS) as u8,
            summary_bit: (w % BITS) as u8,
        }))
    }

    /// Awake: wake-ups from now on only mark their bits; takes the slots
    /// woken so far, to be handed out by [`next`](Self::next) after those of
    /// earlier calls not yet handed out.
    pub(crate) fn wake_up(&mut self) {
        let shared = &*self.shared;
        // Plain loads first: the read-modify-writes only when they change
        // something (the protocol holds either way, see above).
        if shared.woken.load(Acquire) == 0 {
            shared.woken.swap(1, AcqRel);
        }
        if shared.summary.load(Acquire) != 0 {
            self.summary |= shared.summary.fetch_and(0, AcqRel);
        }
    }

    /// Asleep: from now on a wake-up wakes `cx`'s task. Returns whether a
    /// wake-up came in while awake that the stream has not handled: of a slot
    /// (if any runs, `running`) or of the gate (if it is waited for,
    /// `want_gate`); the caller then wakes its task again.
    pub(crate) fn sleep(&mut self, cx: &Context<'_>, running: bool, want_gate: bool) -> bool {
        let shared = &*self.shared;
        // Cloned before and the one not kept dropped after the lock: one
        // lock whether or not the waker was taken or changed.
        let new = cx.waker().clone();
        let unused = shared.task.with(|t| match t {
            Some(old) if old.will_wake(&new) => Some(new),
            _ => t.replace(new),
        });
        drop(unused);
        shared.woken.fetch_and(0, AcqRel);
        // Stale wake-ups of slots when none runs wait for the next item.
        (running && (self.has_woken() || shared.summary.load(Acquire) != 0))
            || (want_gate && shared.gate.load(Acquire) != 0)
    }

    /// A permit was settled: poll the gate next time, woken or not.
    pub(crate) fn gate_settled(&mut self) {
        self.gate_idle = false;
    }

    /// Polls the gate with the gate's waker, unless it returned `Pending`
    /// last time and has not woken since (`None`).
    #[inline]
    pub(crate) fn poll_gate<R>(
        &mut self,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Option<Poll<R>> {
        let woken = self.shared.gate.load(Acquire) != 0;
        if self.gate_idle && !woken {
            return None;
        }
        // Cleared before the poll, so a wake during or after it is seen;
        // only if set, as the read-modify-write is the costly part and
        // mostly there is nothing to clear.
        if woken {
            self.shared.gate.swap(0, AcqRel);
        }
        let polled = poll(&mut Context::from_waker(&self.gate_waker));
        self.gate_idle = polled.is_pending();
        Some(polled)
    }

    /// Whether slots of the snapshots taken may be left to hand out.
    pub(crate) fn has_woken(&self) -> bool {
        self.bits != 0 || self.summary != 0 || self.next_in_group <= self.words
    }

    /// The next woken slot of the snapshots taken, lowest first.
    pub(crate) fn next(&mut self) -> Option<usize> {
        loop {
            if self.bits != 0 {
                let bit = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(self.word * BITS + bit);
            }
            let w = if self.next_in_group <= self.words {
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
                &self.groups[(w - 1) / GROUP].bits[(w - 1) % GROUP]
            };
            self.bits = bits.fetch_and(0, AcqRel);
        }
    }
}
