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
fn futures_are_not_unpin_because_they_own_their_queue_node() {
    // A compile-time fact checked at run time: `Acquire` must stay !Unpin (it
    // is linked into the queue by address), so it can only be polled pinned.
    struct Probe<T>(std::marker::PhantomData<T>);
    trait NotUnpin {
        const UNPIN: bool = false;
    }
    impl<T> NotUnpin for Probe<T> {}
    impl<T: Unpin> Probe<T> {
        #[allow(dead_code)]
        const UNPIN: bool = true;
    }
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
