//! Deadlines are composition, not API: dropping a queued `Acquire` or `Run`
//! is a cancellation, so any timer works. Each test lets a deadline fire
//! while the acquire is queued (and while it is partly served at the head),
//! then checks that no permit is lost and the next waiter is woken.
#![cfg(not(miri))] // real timers and reactors

use std::future::Future;
use std::time::Duration;

use permits::{AcquireError, Semaphore};

const SHORT: Duration = Duration::from_millis(20);

/// Polls `fut` once (so it queues) and hands it back pinned.
async fn queued<F: Future + Unpin>(mut fut: F) -> F {
    let first = futures::poll!(&mut fut);
    assert!(first.is_pending(), "expected it to queue");
    fut
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_timeout_while_queued_loses_no_permit() {
    let sem = Semaphore::new(1);
    let held = sem.acquire().await.unwrap();
    let timed_out = tokio::time::timeout(SHORT, sem.acquire()).await;
    assert!(timed_out.is_err(), "the deadline fired while queued");
    assert_eq!(sem.waiters(), 0, "the timed-out acquire left the queue");
    let next = queued(Box::pin(sem.acquire())).await;
    drop(held);
    // The next waiter is served: nothing was kept by the dropped one.
    let p = tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .unwrap()
        .unwrap();
    drop(p);
    assert_eq!(sem.available_permits(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_timeout_of_a_partly_served_head_hands_its_permits_on() {
    let sem = Semaphore::new(3);
    let a = sem.acquire_many(2).await.unwrap();
    // The head wants three: it is handed the one free permit and waits.
    let head = queued(Box::pin(sem.acquire_many(3))).await;
    assert_eq!(sem.available_permits(), 0);
    let next = queued(Box::pin(sem.acquire())).await;
    // The deadline fires at the head: its permit goes to `next`, woken.
    let timed_out = tokio::time::timeout(SHORT, head).await;
    assert!(timed_out.is_err());
    let p = tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .unwrap()
        .unwrap();
    drop((a, p));
    assert_eq!(sem.available_permits(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_timeout_around_run_never_runs_the_future() {
    let sem = Semaphore::new(1);
    let held = sem.acquire().await.unwrap();
    let mut ran = false;
    let r = tokio::time::timeout(SHORT, sem.run(async { ran = true })).await;
    assert!(r.is_err());
    assert!(!ran, "the future ran without a permit");
    drop(held);
    assert_eq!(sem.available_permits(), 1);
}

/// smol: race the acquire against `async_io::Timer` with futures-lite's `or`.
#[test]
fn smol_timer_or_while_queued_loses_no_permit() {
    use futures::FutureExt as _; // map
    use smol::future::FutureExt as _; // or
    use smol::Timer;

    smol::block_on(async {
        let sem = Semaphore::new(2);
        let a = sem.acquire().await.unwrap();
        let head = queued(Box::pin(sem.acquire_many(2))).await; // handed one
        let next = queued(Box::pin(sem.acquire())).await;
        let deadline = async {
            Timer::after(SHORT).await;
            Err(AcquireError::Closed) // stands for "timed out" here
        };
        let r = head.map(|r| r.map(drop)).or(deadline).await;
        assert_eq!(r, Err(AcquireError::Closed), "the timer won");
        // The head's permit went on to `next`.
        let p = next
            .or(async {
                Timer::after(Duration::from_secs(10)).await;
                panic!("the next waiter was not woken")
            })
            .await
            .unwrap();
        drop((a, p));
        assert_eq!(sem.available_permits(), 2);
    });
}
