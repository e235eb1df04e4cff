use permits::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

#[test]
fn seed_scenario_futures_executor() {
    static SEM: Semaphore = Semaphore::new(2);
    static NOW: AtomicUsize = AtomicUsize::new(0);
    static MAX: AtomicUsize = AtomicUsize::new(0);
    async fn send(i: usize) -> usize {
        let now = NOW.fetch_add(1, SeqCst) + 1;
        MAX.fetch_max(now, SeqCst);
        yield_now().await;
        yield_now().await;
        NOW.fetch_sub(1, SeqCst);
        i * 2
    }
    let res =
        futures::executor::block_on(futures::future::join_all((0..6).map(|i| SEM.run(send(i)))));
    assert_eq!(res, (0..6).map(|i| Ok(i * 2)).collect::<Vec<_>>());
    assert_eq!(MAX.load(SeqCst), 2);
    assert_eq!(SEM.available_permits(), 2);
    assert_eq!(SEM.waiters(), 0);
}

async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
