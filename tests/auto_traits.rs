//! The auto traits of every public type, so a refactor cannot change them
//! silently.

use permits::*;
use std::future::Future;
use std::pin::Pin;

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
#[allow(dead_code)] // only the `alloc` types are checked for it
fn static_<T: 'static>() {}
fn debug<T: std::fmt::Debug>() {}

type SendFut = Pin<Box<dyn Future<Output = ()> + Send>>;

// The backlog streams over plain, thread-safe parts: a range, a fn pointer
// and `Ready` futures (all `Send + Sync + Unpin`), so what the asserts see is
// the streams' own contribution.
type Items = IterStream<std::ops::Range<u32>>;
type Work = fn(u32) -> std::future::Ready<u32>;
type Fixed = RunAllFixed<'static, Items, Work, std::future::Ready<u32>, 4>;
// The same with a future that is neither `Send` nor `Sync`.
type LocalFut = std::future::Ready<std::rc::Rc<u32>>;
type FixedLocal = RunAllFixed<'static, Items, fn(u32) -> LocalFut, LocalFut, 4>;

/// Auto traits seen at compile time, for the "is NOT" side: `Probe::<T>::X`
/// resolves to the inherent const (true) if `T: X`, else to the trait's
/// default (false).
struct Probe<T>(std::marker::PhantomData<T>);
trait NotUnpin {
    const UNPIN: bool = false;
}
impl<T> NotUnpin for Probe<T> {}
impl<T: Unpin> Probe<T> {
    #[allow(dead_code)]
    const UNPIN: bool = true;
}
trait NotSend {
    const SEND: bool = false;
}
impl<T> NotSend for Probe<T> {}
impl<T: Send> Probe<T> {
    #[allow(dead_code)]
    const SEND: bool = true;
}

#[test]
fn public_types_are_send_sync_and_debug() {
    #[cfg(feature = "alloc")]
    owned_types_are_send_and_static();
    send::<Semaphore>();
    sync::<Semaphore>();
    debug::<Semaphore>();
    send::<Acquire<'static>>();
    sync::<Acquire<'static>>();
    debug::<Acquire<'static>>();
    send::<Permit<'static>>();
    sync::<Permit<'static>>();
    debug::<Permit<'static>>();
    send::<Run<'static, SendFut>>();
    debug::<Run<'static, SendFut>>();
    unpin::<Permit<'static>>();
    for e in [AcquireError::Closed, AcquireError::TooMany] {
        let _: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(e);
    }
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(TryAcquireError::NoPermits);
}

#[test]
fn backlog_types() {
    #[cfg(feature = "alloc")]
    run_all_is_like_run_all_fixed();
    // The streams are as thread-safe as their source, function and futures,
    // and always `Debug` (they print counters, not their parts).
    send::<Fixed>();
    sync::<Fixed>();
    debug::<Fixed>();
    // Plain data and a thin wrapper.
    send::<Progress>();
    sync::<Progress>();
    debug::<Progress>();
    unpin::<Progress>();
    let _: fn(&Progress) -> Progress = |p| *p; // Copy
    send::<Items>();
    sync::<Items>();
    debug::<Items>();
    unpin::<Items>();
    // The allocation-free stream over any gate: as the fixed one.
    type GatedFixed = RunWithFixed<SemaphoreGate<'static>, Items, Work, std::future::Ready<u32>, 4>;
    send::<GatedFixed>();
    sync::<GatedFixed>();
    debug::<GatedFixed>();
    const {
        assert!(!Probe::<GatedFixed>::UNPIN);
        assert!(Probe::<Items>::SEND && Probe::<Items>::UNPIN);
        // The streams own their queue node (the next item's acquire), so
        // they are !Unpin even over Unpin parts: poll them pinned.
        assert!(!Probe::<Fixed>::UNPIN);
        // A !Send future makes the stream !Send.
        assert!(!Probe::<FixedLocal>::SEND);
        // IterStream does not pin its iterator: always Unpin.
        assert!(Probe::<IterStream<std::marker::PhantomPinned>>::UNPIN);
    }
}

#[cfg(feature = "alloc")]
fn run_all_is_like_run_all_fixed() {
    type Heap = RunAll<'static, Items, Work, std::future::Ready<u32>>;
    type HeapLocal = RunAll<'static, Items, fn(u32) -> LocalFut, LocalFut>;
    send::<Heap>();
    sync::<Heap>();
    debug::<Heap>();
    // The stream over any gate, and the semaphore's gate on its own (it owns
    // the queue node of the next item's acquire: !Unpin).
    type Gated = RunWith<SemaphoreGate<'static>, Items, Work, std::future::Ready<u32>>;
    send::<Gated>();
    sync::<Gated>();
    debug::<Gated>();
    send::<SemaphoreGate<'static>>();
    sync::<SemaphoreGate<'static>>();
    debug::<SemaphoreGate<'static>>();
    const {
        assert!(!Probe::<Heap>::UNPIN);
        assert!(!Probe::<HeapLocal>::SEND);
        assert!(!Probe::<Gated>::UNPIN);
        assert!(!Probe::<SemaphoreGate<'static>>::UNPIN);
    }
}

#[test]
fn futures_are_not_unpin_because_they_own_their_queue_node() {
    // A compile-time fact checked at run time: `Acquire` must stay !Unpin (it
    // is linked into the queue by address), so it can only be polled pinned.
    const {
        assert!(
            Probe::<Permit<'static>>::UNPIN,
            "the probe must see Unpin types"
        );
        assert!(!Probe::<Acquire<'static>>::UNPIN);
    }
}

#[test]
fn semaphore_works_in_a_static() {
    static SEM: Semaphore = Semaphore::new(3);
    let p = SEM.try_acquire_many(2).unwrap();
    assert_eq!(SEM.available_permits(), 1);
    drop(p);
    assert_eq!(SEM.available_permits(), 3);
}

#[cfg(feature = "alloc")]
fn owned_types_are_send_and_static() {
    send::<OwnedPermit>();
    static_::<OwnedPermit>();
    debug::<OwnedPermit>();
    unpin::<OwnedPermit>();
    send::<AcquireOwned>();
    static_::<AcquireOwned>();
    debug::<AcquireOwned>();
    send::<RunOwned<SendFut>>();
    static_::<RunOwned<SendFut>>();
    debug::<RunOwned<SendFut>>();
}

#[test]
fn adaptive_types() {
    use permits::adaptive;
    type Classify = fn(&()) -> (adaptive::Outcome, std::time::Duration);
    type ARun = adaptive::Run<'static, SendFut, Classify, adaptive::Aimd>;
    // The limiter is shared between tasks; its permits and futures move
    // between threads like the semaphore's.
    send::<adaptive::Limiter>();
    sync::<adaptive::Limiter>();
    debug::<adaptive::Limiter>();
    send::<adaptive::Permit<'static>>();
    sync::<adaptive::Permit<'static>>();
    debug::<adaptive::Permit<'static>>();
    unpin::<adaptive::Permit<'static>>();
    send::<adaptive::Acquire<'static, adaptive::Aimd>>();
    debug::<adaptive::Acquire<'static, adaptive::Aimd>>();
    send::<ARun>();
    debug::<ARun>();
    // Plain data.
    send::<adaptive::Aimd>();
    sync::<adaptive::Aimd>();
    debug::<adaptive::Aimd>();
    let _: fn(&adaptive::Sample) -> adaptive::Sample = |s| *s; // Copy
    let _: fn(&adaptive::Decision) -> adaptive::Decision = |d| *d; // Copy
    debug::<adaptive::Outcome>();
    debug::<adaptive::Reason>();
    // The limiter's gate, as the semaphore's (which it wraps).
    type AGate = adaptive::LimiterGate<'static, adaptive::Aimd, Classify>;
    send::<AGate>();
    sync::<AGate>();
    debug::<AGate>();
    const {
        // Like `Acquire`, they own a queue node: poll them pinned.
        assert!(!Probe::<adaptive::Acquire<'static, adaptive::Aimd>>::UNPIN);
        assert!(!Probe::<ARun>::UNPIN);
        assert!(!Probe::<AGate>::UNPIN);
    }
    #[cfg(feature = "alloc")]
    {
        // Its stream moves between threads like `run_all`'s.
        type AStream = adaptive::RunAll<
            'static,
            adaptive::Aimd,
            permits::IterStream<std::ops::Range<u32>>,
            fn(u32) -> std::future::Ready<()>,
            std::future::Ready<()>,
            Classify,
        >;
        send::<AStream>();
        sync::<AStream>();
        debug::<AStream>();
        const { assert!(!Probe::<AStream>::UNPIN) };
    }
}

#[test]
fn adaptive_limiter_works_in_a_static() {
    use permits::adaptive::{Aimd, Limiter};
    static LIMITER: Limiter = Limiter::new(Aimd::new().initial_limit(3));
    let p = LIMITER.try_acquire().unwrap();
    assert_eq!(LIMITER.semaphore().available_permits(), 2);
    drop(p);
    assert_eq!(LIMITER.semaphore().available_permits(), 3);
}

#[cfg(feature = "alloc")]
#[test]
fn keyed_types() {
    type Key = String;
    send::<KeyedSemaphore<Key>>();
    sync::<KeyedSemaphore<Key>>();
    debug::<KeyedSemaphore<Key>>();
    send::<KeyedAcquire<'static, Key>>();
    sync::<KeyedAcquire<'static, Key>>();
    debug::<KeyedAcquire<'static, Key>>();
    send::<KeyedPermit<'static, Key>>();
    sync::<KeyedPermit<'static, Key>>();
    debug::<KeyedPermit<'static, Key>>();
    unpin::<KeyedPermit<'static, Key>>();
    send::<KeyedRun<'static, Key, SendFut>>();
    debug::<KeyedRun<'static, Key, SendFut>>();
    const {
        // They own queue nodes, as `Acquire` does.
        assert!(!Probe::<KeyedAcquire<'static, Key>>::UNPIN);
        assert!(!Probe::<KeyedRun<'static, Key, SendFut>>::UNPIN);
        // A key that is not `Send` makes the permit not `Send`.
        assert!(!Probe::<KeyedPermit<'static, std::rc::Rc<u32>>>::SEND);
    }
    static KEYED: KeyedSemaphore<&str> = KeyedSemaphore::new(1);
    let p = KEYED.try_acquire("a").unwrap();
    assert!(KEYED.try_acquire("a").is_err());
    drop(p);
    assert_eq!(KEYED.live_keys(), 0);
}

#[cfg(feature = "alloc")]
#[test]
fn keyed_stream_and_adaptive_types() {
    use permits::adaptive::{Aimd, Outcome};
    type Key = String;
    type KeyOf = fn(&u32) -> Key;
    type Stream = KeyedRunAll<'static, Key, KeyOf, Items, Work, std::future::Ready<u32>>;
    type KGate = KeyedGate<'static, Key, u32, KeyOf>;
    type Classify = fn(&u32) -> Outcome;
    type LGate = KeyedLimiterGate<'static, Key, u32, KeyOf, Classify, Outcome>;
    send::<Stream>();
    sync::<Stream>();
    debug::<Stream>();
    send::<KGate>();
    sync::<KGate>();
    unpin::<KGate>();
    debug::<KGate>();
    send::<KeyedLimiter<Key>>();
    sync::<KeyedLimiter<Key>>();
    debug::<KeyedLimiter<Key>>();
    send::<KeyedLimitAcquire<'static, Key>>();
    sync::<KeyedLimitAcquire<'static, Key>>();
    debug::<KeyedLimitAcquire<'static, Key>>();
    send::<KeyedLimitPermit<'static, Key, Aimd>>();
    sync::<KeyedLimitPermit<'static, Key, Aimd>>();
    unpin::<KeyedLimitPermit<'static, Key, Aimd>>();
    debug::<KeyedLimitPermit<'static, Key, Aimd>>();
    send::<LGate>();
    sync::<LGate>();
    unpin::<LGate>();
    debug::<LGate>();
    // Unlike `RunAll` (whose gate owns a queue node inline), the keyed
    // stream is `Unpin` over an `Unpin` source: its items' futures and its
    // keys' acquires are all boxed.
    unpin::<Stream>();
    const {
        assert!(!Probe::<KeyedLimitAcquire<'static, Key>>::UNPIN);
    }
}

/// Firmware pays for every byte of a `static` semaphore: it stays at four
/// words (the counter, the lock, the queue's two ends and its limit). A
/// field added for one feature (a watcher slot for backlog streams once made
/// it 56 B) shows up here.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_semaphore_is_at_most_32_bytes() {
    assert!(
        core::mem::size_of::<Semaphore>() <= 32,
        "{}",
        core::mem::size_of::<Semaphore>()
    );
}
