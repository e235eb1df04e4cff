//! The intrusive FIFO queue of waiting acquires, and its invariants. Together
//! with `waiter.rs`, which links and unlinks its own node (its `unsafe` calls
//! name the invariants below), this is the crate's unsafe engine.
//!
//! Each waiting future owns a [`Node`]; the queue links the nodes in place, so
//! waiting allocates nothing and the queue has no capacity limit. The list is
//! circular and doubly linked (the head's `prev` is the tail), so the queue
//! itself is one pointer and every operation is O(1).
//!
//! # Invariants
//!
//! 1. **Lock.** A [`WaitList`] lives inside the semaphore's queue lock. A
//!    node's [`NodeData`] (links, counts, waker) is only read or written
//!    (a) with that lock held, (b) by the node's owner while the node has
//!    never been linked, or (c) by the node's owner once it has seen the
//!    node [released](Node::is_released) (invariant 6).
//! 2. **Pinned while linked.** A node is linked only through
//!    [`WaitList::push_back`], which takes it pinned; it stays at that address
//!    until it is dropped.
//! 3. **Unlinked before dropped.** The owner of a linked node unlinks it (with
//!    the lock held) before the node is dropped; `waiter.rs` does so in its
//!    `Drop`. Hence every pointer in a list points to a live node.
//! 4. **Linked ⇔ `next` is `Some`.** Unlinking sets both links to `None`.
//! 5. **Aliasing.** All mutable state of a node is inside an `UnsafeCell`, and
//!    the node is `!Unpin` (`PhantomPinned`), so the owner's `Pin<&mut>` and the
//!    list's raw pointers may coexist (the rule Miri applies to `!Unpin`
//!    targets); pointers are derived from `&Node` without any `&mut`.
//! 6. **Released.** A node's `state` goes `IDLE` -> `LINKED` (in `push_back`)
//!    -> `RELEASED` (in `pop_front`), only under the lock. `pop_front` stores
//!    `RELEASED` (`Release`) after its last access to the node, which is then
//!    in no list: nobody but the owner reaches it again. So an owner that
//!    loads `RELEASED` (`Acquire`) may use the data without the lock, and drop
//!    the node, while `pop_front`'s caller may not touch it after the store.

use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::Waker;

use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::{const_fn_unless_loom, AtomicU8, UnsafeCell};

/// A waiter's place in the queue. Owned (and pinned) by the waiting future.
#[derive(Debug)]
pub(crate) struct Node {
    /// Only touched under the queue lock, by the owner before linking, or by
    /// the owner once released (invariant 1).
    data: UnsafeCell<NodeData>,
    /// `IDLE`, `LINKED` or `RELEASED`; written only under the queue lock,
    /// read without it (invariant 6).
    state: AtomicU8,
    _pinned: PhantomPinned,
}

/// Never linked.
const IDLE: u8 = 0;
/// Linked by `push_back`; a lock holder may unlink it at any time.
const LINKED: u8 = 1;
/// Unlinked for good by `pop_front`, which is done with it (invariant 6).
const RELEASED: u8 = 2;

// SAFETY: a node's data is only reached through `Node::with`, whose contract
// (invariant 1) gives one thread at a time exclusive access, under the queue
// lock; the data itself (counts, links, a `Waker`) may move between threads.
unsafe impl Send for Node {}
// SAFETY: as above; `&Node` alone gives no access to the data.
unsafe impl Sync for Node {}

/// Where a node is in its life (invariant 6), as [`Node::phase`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Never linked.
    Idle,
    /// Linked, or unlinked by its owner's cancel under the lock.
    Linked,
    /// Released to its owner.
    Released,
}

/// The part of a node shared with the queue.
#[derive(Debug)]
pub(crate) struct NodeData {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
    /// Permits this acquire asked for, or [`CLOSED`] once `close` unlinked
    /// the node without serving it.
    pub(crate) needed: usize,
    /// Permits already handed to it while it waits at the head.
    pub(crate) assigned: usize,
    /// Whom to wake when it is served or the semaphore closes.
    pub(crate) waker: Option<Waker>,
}

/// `needed` of a node that `close` turned away. No request is this large
/// (they are at most `MAX_PERMITS`), so the flag costs no extra field.
const CLOSED: usize = usize::MAX;

impl NodeData {
    pub(crate) fn is_linked(&self) -> bool {
        self.next.is_some()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.needed == CLOSED
    }

    pub(crate) fn mark_closed(&mut self) {
        self.needed = CLOSED;
    }
}

impl Node {
    const_fn_unless_loom! {
        pub(crate) fn new(needed: usize) -> Self {
            Self {
                data: UnsafeCell::new(NodeData::new(needed)),
                state: AtomicU8::new(IDLE),
                _pinned: PhantomPinned,
            }
        }
    }

    /// Whether the node was ever linked into a queue.
    #[inline]
    pub(crate) fn was_linked(&self) -> bool {
        self.state.load(Acquire) != IDLE
    }

    /// [`was_linked`](Self::was_linked) and
    /// [`is_released`](Self::is_released) in one load, for a poll that
    /// branches on both.
    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        match self.state.load(Acquire) {
            IDLE => Phase::Idle,
            RELEASED => Phase::Released,
            _ => Phase::Linked,
        }
    }

    /// Whether a lock holder unlinked the node for good (served it, or
    /// `close` turned it away) and is done with it: from then on its data is
    /// the owner's alone, no lock needed (invariants 1c and 6).
    #[inline]
    pub(crate) fn is_released(&self) -> bool {
        self.state.load(Acquire) == RELEASED
    }

    /// Runs `f` on the node's shared data.
    ///
    /// # Safety
    ///
    /// The caller holds the queue lock of the semaphore this node waits on,
    /// or owns the node and it has never been linked, or owns the node and
    /// has seen it [released](Self::is_released) (invariant 1).
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut NodeData) -> R) -> R {
        // SAFETY: by the caller's contract nobody else accesses the data now,
        // so this is the only reference to it.
        self.data.with_mut(|data| f(unsafe { &mut *data }))
    }
}

impl NodeData {
    const fn new(needed: usize) -> Self {
        Self {
            prev: None,
            next: None,
            needed,
            assigned: 0,
            waker: None,
        }
    }
}

/// The queue: a pointer to the head of a circular list of [`Node`]s.
#[derive(Debug)]
pub(crate) struct WaitList {
    head: Option<NonNull<Node>>,
}

// SAFETY: the list only holds pointers to nodes, whose data is `Send` (counts
// and a `Waker`); it is only reached through the queue lock (invariant 1).
unsafe impl Send for WaitList {}

/// Runs `f` on the data of the node `ptr` points to.
///
/// # Safety
///
/// `ptr` is in a list whose lock the caller holds.
unsafe fn data_of<R>(ptr: NonNull<Node>, f: impl FnOnce(&mut NodeData) -> R) -> R {
    // SAFETY: linked nodes are alive (invariant 3) and the lock is held, so
    // the shared reference and the data access are both valid.
    unsafe { ptr.as_ref().with(f) }
}

impl WaitList {
    pub(crate) const fn new() -> Self {
        Self { head: None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Counts the queued nodes (O(len)).
    pub(crate) fn len(&self) -> usize {
        let Some(head) = self.head else { return 0 };
        let mut n = 1;
        // SAFETY: `&self` means the lock is held; every `next` of a linked
        // node points to a linked node (invariants 1, 3, 4).
        let mut cur = unsafe { data_of(head, |d| d.next) };
        while let Some(ptr) = cur.filter(|&p| p != head) {
            n += 1;
            // SAFETY: as above.
            cur = unsafe { data_of(ptr, |d| d.next) };
        }
        n
    }

    /// Links `node` at the tail.
    ///
    /// # Safety
    ///
    /// The caller holds the lock around `self`, `node` is not linked in any
    /// list, and it will be removed from this list before it is dropped
    /// (invariants 2 and 3).
    pub(crate) unsafe fn push_back(&mut self, node: Pin<&Node>) {
        // The owner is the only reader that can see this before unlocking.
        node.state.store(LINKED, Relaxed);
        let ptr = NonNull::from(node.get_ref());
        match self.head {
            None => {
                // SAFETY: the caller holds the lock (contract).
                unsafe { data_of(ptr, |d| (d.prev, d.next) = (Some(ptr), Some(ptr))) };
                self.head = Some(ptr);
            }
            Some(head) => {
                // SAFETY: `head` is linked and the lock is held; so is its
                // `prev`, the tail (invariants 3, 4); `ptr` by the contract.
                unsafe {
                    let tail = data_of(head, |d| d.prev).unwrap_unchecked();
                    data_of(ptr, |d| (d.prev, d.next) = (Some(tail), Some(head)));
                    data_of(tail, |d| d.next = Some(ptr));
                    data_of(head, |d| d.prev = Some(ptr));
                }
            }
        }
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// The caller holds the lock around `self` and `node` is linked in `self`.
    pub(crate) unsafe fn remove(&mut self, node: Pin<&Node>) {
        // SAFETY: the caller's contract.
        unsafe { self.unlink(NonNull::from(node.get_ref())) }
    }

    /// # Safety
    ///
    /// As for [`remove`](Self::remove).
    unsafe fn unlink(&mut self, ptr: NonNull<Node>) {
        // SAFETY: `ptr` is linked in this list, so are its neighbours, and the
        // lock is held (contract, invariants 3 and 4).
        unsafe {
            let (prev, next) = data_of(ptr, |d| (d.prev.take(), d.next.take()));
            let (prev, next) = (prev.unwrap_unchecked(), next.unwrap_unchecked());
            if next == ptr {
                self.head = None;
            } else {
                data_of(prev, |d| d.next = Some(next));
                data_of(next, |d| d.prev = Some(prev));
                if self.head == Some(ptr) {
                    self.head = Some(next);
                }
            }
        }
    }

    /// The first node, in queue order, whose data satisfies `pick`.
    fn find(&self, mut pick: impl FnMut(&NodeData) -> bool) -> Option<NonNull<Node>> {
        let head = self.head?;
        let mut cur = head;
        loop {
            // SAFETY: `&self` means the lock is held; the head and every
            // `next` of a linked node are linked (invariants 1, 3, 4).
            let (picked, next) = unsafe { data_of(cur, |d| (pick(d), d.next)) };
            if picked {
                return Some(cur);
            }
            // SAFETY: linked nodes have `Some` links (invariant 4).
            cur = unsafe { next.unwrap_unchecked() };
            if cur == head {
                return None;
            }
        }
    }

    /// Whether some node's data satisfies `pick` (O(len) at worst).
    pub(crate) fn any(&self, pick: impl FnMut(&NodeData) -> bool) -> bool {
        self.find(pick).is_some()
    }

    /// Runs `f` on the data of the first node, in queue order, that `pick`
    /// chooses. If `f` returns `true` with its result, that node is unlinked
    /// for good and released to its owner (invariant 6), as by
    /// [`pop_front`](Self::pop_front): `f` must take from it all it needs.
    pub(crate) fn update_first<R>(
        &mut self,
        pick: impl FnMut(&NodeData) -> bool,
        f: impl FnOnce(&mut NodeData) -> (bool, R),
    ) -> Option<R> {
        let ptr = self.find(pick)?;
        // SAFETY: `find` returned a node linked in this list.
        Some(unsafe { self.update_at(ptr, f) })
    }

    /// [`update_first`](Self::update_first) of the head, with no search: for
    /// callers that know the head is the node they want.
    pub(crate) fn update_head<R>(
        &mut self,
        f: impl FnOnce(&mut NodeData) -> (bool, R),
    ) -> Option<R> {
        let head = self.head?;
        // SAFETY: the head is linked in this list.
        Some(unsafe { self.update_at(head, f) })
    }

    /// # Safety
    ///
    /// `ptr` is linked in this list.
    unsafe fn update_at<R>(
        &mut self,
        ptr: NonNull<Node>,
        f: impl FnOnce(&mut NodeData) -> (bool, R),
    ) -> R {
        // SAFETY: `ptr` is linked here (contract) and `&mut self` means the
        // lock is held; it stays alive until the `RELEASED` store
        // (invariants 3, 6).
        unsafe {
            let (unlink, out) = data_of(ptr, f);
            if unlink {
                self.unlink(ptr);
                // The last access: from here on the owner may free the node.
                ptr.as_ref().state.store(RELEASED, Release);
            }
            out
        }
    }

    /// Runs `f` on every node's data, in queue order. `f` cannot unlink.
    pub(crate) fn for_each(&mut self, mut f: impl FnMut(&mut NodeData)) {
        let Some(head) = self.head else { return };
        let mut cur = head;
        loop {
            // SAFETY: `&mut self` means the lock is held; the head and every
            // `next` of a linked node are linked (invariants 1, 3, 4). `f`
            // cannot change the links: they are private to this module.
            let next = unsafe {
                data_of(cur, |d| {
                    f(d);
                    d.next
                })
            };
            // SAFETY: linked nodes have `Some` links (invariant 4).
            cur = unsafe { next.unwrap_unchecked() };
            if cur == head {
                return;
            }
        }
    }

    /// Unlinks the head for good, runs `f` on its data, and releases it to
    /// its owner (invariant 6), if there is a head. The caller must not touch
    /// the node afterwards: its owner may drop it at once.
    pub(crate) fn pop_front<R>(&mut self, f: impl FnOnce(&mut NodeData) -> R) -> Option<R> {
        let head = self.head?;
        // SAFETY: the head is linked here and `&mut self` means the lock is
        // held; until the `RELEASED` store the owner cannot drop the node
        // without this lock (invariants 3 and 6), so it is alive throughout.
        unsafe {
            self.unlink(head);
            let out = data_of(head, f);
            // The last access: from here on the owner may free the node.
            head.as_ref().state.store(RELEASED, Release);
            Some(out)
        }
    }
}
