//! The auto traits of every public type, so a refactor cannot silently
//! change them.

use permits_redis::{
    Acquire, Builder, Driver, Error, GlobalSemaphore, Lease, LossReason, Lost, Run, RunAll, Stats,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn unpin<T: Unpin>() {}
fn is_static<T: 'static>() {}

#[test]
fn public_types_are_send_and_the_futures_unpin() {
    send_sync::<GlobalSemaphore>();
    send_sync::<Lease>();
    send_sync::<Lost>();
    send_sync::<Builder>();
    send_sync::<Error>();
    send_sync::<LossReason>();
    send_sync::<Stats>();
    // Boxed inside: Send, not Sync.
    send::<Acquire>();
    send::<Driver>();
    send::<Run<std::future::Ready<()>>>();
    unpin::<Acquire>();
    unpin::<Driver>();
    unpin::<Lost>();
    unpin::<Run<std::future::Ready<()>>>();
    is_static::<Driver>();
    is_static::<Lease>();
    is_static::<Run<std::future::Ready<()>>>();
    // The backlog stream: Send (spawnable) and 'static over owned items.
    type Stream = RunAll<
        permits::IterStream<std::ops::Range<u32>>,
        fn(u32) -> std::future::Ready<u32>,
        std::future::Ready<u32>,
    >;
    send::<Stream>();
    is_static::<Stream>();
}
