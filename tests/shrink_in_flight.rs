//! The scenario users describe: a backlog of sends at limit 8, the limit set
//! to 3 while 8 are in flight. No send is revoked, no new send starts until
//! fewer than 3 are in flight, then at most 3 run; set back to 8, 8 run again
//! at once. Each send waits for the test to let it finish, so every state is
//! observed, not timed.
#![cfg(all(feature = "alloc", not(miri)))] // run_owned; tokio: hand-polled tests cover Miri

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use permits::Semaphore;

#[derive(Default)]
struct Gauge {
    started: AtomicUsize,
    running: AtomicUsize,
    /// The most running at once since the test last reset it.
    peak: AtomicUsize,
}

async fn send(gauge: Arc<Gauge>, finish: Arc<tokio::sync::Semaphore>) {
    gauge.started.fetch_add(1, SeqCst);
    let now = gauge.running.fetch_add(1, SeqCst) + 1;
    gauge.peak.fetch_max(now, SeqCst);
    finish.acquire().await.unwrap().forget();
    gauge.running.fetch_sub(1, SeqCst);
}

/// Yields until `cond` holds (the runtime has one thread: the sends run in
/// the yields); panics instead of hanging.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never: {what}");
}

impl Gauge {
    fn finished(&self) -> usize {
        self.started.load(SeqCst) - self.running.load(SeqCst)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn shrinking_while_eight_are_in_flight() {
    const SENDS: usize = 40;
    let sem = Arc::new(Semaphore::new(8));
    let gauge = Arc::new(Gauge::default());
    let finish = Arc::new(tokio::sync::Semaphore::new(0));
    let backlog = tokio::spawn({
        let (sem, gauge, finish) = (sem.clone(), gauge.clone(), finish.clone());
        async move {
            let sends =
                (0..SENDS).map(|_| sem.clone().run_owned(send(gauge.clone(), finish.clone())));
            futures::future::join_all(sends).await
        }
    });
    until("8 in flight", || gauge.running.load(SeqCst) == 8).await;

    sem.set_limit(3);
    assert_eq!((sem.limit(), sem.debt()), (3, 5));
    assert_eq!(gauge.running.load(SeqCst), 8, "no send is revoked");

    // Five finish: each pays the debt, nothing new starts.
    for left in (3..8).rev() {
        let done = gauge.finished();
        finish.add_permits(1);
        until("a send finished", || gauge.finished() == done + 1).await;
        assert_eq!(gauge.running.load(SeqCst), left);
        assert_eq!(
            gauge.started.load(SeqCst),
            8,
            "a send started during the debt"
        );
    }
    assert_eq!(sem.debt(), 0);
    // Three in flight, limit 3: the next finish lets exactly one start.
    gauge.peak.store(0, SeqCst);
    for _ in 0..10 {
        let started = gauge.started.load(SeqCst);
        finish.add_permits(1);
        until("the next send started", || {
            gauge.started.load(SeqCst) == started + 1
        })
        .await;
        assert_eq!(gauge.running.load(SeqCst), 3);
    }
    assert_eq!(gauge.peak.load(SeqCst), 3, "at most 3 run at limit 3");

    // Back to 8: five more start at once, without any send finishing.
    let started = gauge.started.load(SeqCst);
    sem.set_limit(8);
    until("8 in flight again", || gauge.running.load(SeqCst) == 8).await;
    assert_eq!(gauge.started.load(SeqCst), started + 5);

    finish.add_permits(SENDS);
    let results = backlog.await.unwrap();
    assert_eq!(results.len(), SENDS);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(gauge.started.load(SeqCst), SENDS);
    assert_eq!((sem.available_permits(), sem.debt()), (8, 0));
}
