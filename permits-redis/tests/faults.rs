//! Faults caused for real: a restarted, stopped or paused server, a killed
//! pub/sub connection, flushed scripts.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, on_both, server, sleep};
use futures::FutureExt;
use permits_redis::GlobalSemaphore;

const TTL: Duration = Duration::from_millis(600);

async fn within<F: std::future::Future>(d: Duration, f: F) -> Option<F::Output> {
    futures::select! {
        out = f.fuse() => Some(out),
        () = sleep(d).fuse() => None,
    }
}

#[test]
fn a_restart_is_noticed_within_the_refresh_interval_and_acquires_work_after() {
    let Some(mut srv) = server() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for runtime in ["tokio", "smol"] {
        let scenario = async {
            let sem = srv.semaphore("restart", 2, 2).await;
            let a = sem.acquire().await.unwrap();
            let b = sem.acquire().await.unwrap();
            let old_token = b.token();
            srv.restart(); // no persistence: every lease is gone
            let restarted = Instant::now();
            let (ra, rb) = futures::join!(a.lost(), b.lost());
            let noticed = restarted.elapsed();
            eprintln!("{runtime}: restart noticed after {noticed:?} ({ra:?}, {rb:?})");
            // One refresh interval (TTL/3 = 200 ms), plus a reconnect.
            assert!(
                noticed < TTL / 3 + Duration::from_millis(250),
                "{noticed:?}"
            );
            drop((a, b));
            // New acquires work, and their fencing tokens are still larger
            // (they restart from the server clock in microseconds).
            let c = sem.acquire().await.unwrap();
            assert!(c.token() > old_token, "{} <= {old_token}", c.token());
            // A flushed script cache is reloaded.
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .exec(&mut srv.admin())
                .unwrap();
            let d = sem.acquire().await.unwrap();
            assert!(d.token() > c.token());
            assert_eq!(srv.live("restart"), 2);
            drop((c, d));
            assert!(eventually(Duration::from_secs(2), || srv.live("restart") == 0).await);
        };
        match runtime {
            "tokio" => rt.block_on(scenario),
            _ => smol::block_on(scenario),
        }
    }
}

/// Holder `a` and waiter `b` on limit 1, `c` holding the other permit of
/// limit 2: `fault` runs while `a` lets go; `b` must still get it, and `c`
/// (the fault is shorter than the TTL) must keep its lease.
async fn waiter_progresses_through(srv: &common::Server, name: &str, fault: impl FnOnce()) {
    let a = srv.semaphore(name, 2, 1).await;
    let b = srv.semaphore(name, 2, 1).await;
    let c = srv.semaphore(name, 2, 1).await;
    let la = a.acquire().await.unwrap();
    let lc = c.acquire().await.unwrap();
    let waiter = b.acquire();
    let waiter = common::drive_until(waiter, Duration::from_secs(2), || {
        srv.zcard(name, "queue") == 1
    })
    .await;
    let start = Instant::now();
    let release = async {
        fault();
        drop(la);
    };
    let (got, ()) = futures::join!(within(Duration::from_secs(3), waiter), release);
    let got = got.expect("the waiter never got the permit").unwrap();
    eprintln!(
        "{name}: waiter served {:?} after the fault began",
        start.elapsed()
    );
    assert!(!lc.is_lost(), "a fault shorter than the TTL cost a lease");
    drop((got, lc));
}

#[test]
fn waiters_progress_through_a_stopped_server() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        waiter_progresses_through(&srv, "stopped", || {
            srv.signal("-STOP");
            std::thread::sleep(Duration::from_millis(250));
            srv.signal("-CONT");
        })
        .await;
    });
}

#[test]
fn waiters_progress_through_client_pause() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        waiter_progresses_through(&srv, "paused", || {
            redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(250)
                .arg("WRITE")
                .exec(&mut srv.admin())
                .unwrap();
        })
        .await;
    });
}

#[test]
fn waiters_progress_when_the_pubsub_connection_is_killed() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let pubsub_clients = || -> usize {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .arg("TYPE")
                .arg("pubsub")
                .query(&mut srv.admin())
                .unwrap();
            list.lines().count()
        };
        // Stays alive past the fault, to see its driver subscribe again.
        let watch = srv.semaphore("pubsub-killed", 2, 1).await;
        assert!(eventually(Duration::from_secs(3), || pubsub_clients() >= 1).await);
        waiter_progresses_through(&srv, "pubsub-killed", || {
            let killed: usize = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query(&mut srv.admin())
                .unwrap();
            assert!(killed >= 1, "{killed} pub/sub connections killed");
        })
        .await;
        // Its driver subscribed again.
        assert!(eventually(Duration::from_secs(3), || pubsub_clients() >= 1).await);
        drop(watch);
    });
}

#[test]
fn waiters_progress_without_any_pubsub_message() {
    // No hints at all (every message "missed", as in Redisson#5762): the
    // jittered poll alone serves the queue.
    let Some(srv) = server() else { return };
    on_both(|| async {
        let build = || async {
            let (sem, driver) = GlobalSemaphore::builder("no-hints", 1)
                .ttl(TTL)
                .build(srv.manager().await)
                .await
                .unwrap();
            common::spawn(driver);
            sem
        };
        let a = build().await;
        let b = build().await;
        let la = a.acquire().await.unwrap();
        let waiter = common::drive_until(b.acquire(), Duration::from_secs(2), || {
            srv.zcard("no-hints", "queue") == 1
        })
        .await;
        drop(la);
        let start = Instant::now();
        let got = within(Duration::from_secs(2), waiter).await;
        assert!(got.is_some(), "the poll never served the waiter");
        // The poll interval is TTL/4 = 150 ms (jittered down to half).
        assert!(
            start.elapsed() < Duration::from_millis(600),
            "{:?}",
            start.elapsed()
        );
    });
}
