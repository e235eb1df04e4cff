//! What one or a few semaphores in one process see, against a real server.
//! Each test starts its own redis-server; most run on tokio and on smol.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{drive_until, eventually, on_both, server, sleep, spawn};
use futures::FutureExt;
use permits_redis::{Error, GlobalSemaphore, LossReason};

#[test]
fn leases_count_against_the_limit_across_instances() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        // Two instances stand for two processes: 3 permits between them.
        let a = srv.semaphore("limit", 3, 3).await;
        let b = srv.semaphore("limit", 3, 3).await;
        let l1 = a.acquire().await.unwrap();
        let l2 = a.acquire().await.unwrap();
        let l3 = b.acquire().await.unwrap();
        assert!(l1.token() < l2.token() && l2.token() < l3.token());
        assert!(matches!(b.try_acquire().await, Err(Error::NoPermits)));
        assert!(matches!(a.try_acquire().await, Err(Error::NoPermits)));
        assert_eq!(srv.zcard("limit", "holders"), 3);
        drop(l2);
        let l4 = b.acquire().await.unwrap();
        assert!(l4.token() > l3.token());
        assert_eq!((a.leases(), b.leases()), (1, 2));
        drop((l1, l3, l4));
        assert!(
            eventually(Duration::from_secs(2), || srv.zcard("limit", "holders")
                == 0)
            .await
        );
    });
}

#[test]
fn uncontended_acquire_and_release_take_one_call_each() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("rtt", 4, 4).await;
        let before = sem.stats();
        for _ in 0..20 {
            let lease = sem.acquire().await.unwrap();
            drop(lease);
            // Wait for the release, so the next acquire is uncontended.
            let want = sem.stats().acquire_calls;
            assert!(eventually(Duration::from_secs(2), || sem.stats().release_calls >= want).await);
        }
        let after = sem.stats();
        assert_eq!(after.acquire_calls - before.acquire_calls, 20);
        assert_eq!(after.release_calls - before.release_calls, 20);
    });
}

#[test]
fn refresh_is_one_call_for_all_leases() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("batch", 50, 50).await;
        let mut leases = Vec::new();
        for _ in 0..40 {
            leases.push(sem.acquire().await.unwrap());
        }
        let start = sem.stats().refresh_calls;
        // Two TTLs: the leases stay valid, refreshed every TTL/3.
        sleep(Duration::from_millis(1200)).await;
        let calls = sem.stats().refresh_calls - start;
        assert!(
            (3..=8).contains(&calls),
            "{calls} refresh calls for 40 leases over 2 TTLs"
        );
        assert!(leases.iter().all(|l| !l.is_lost()));
        assert_eq!(srv.zcard("batch", "holders"), 40);
    });
}

#[test]
fn grants_are_first_come_first_served_across_processes() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let holder = srv.semaphore("fifo", 1, 1).await;
        let lease = holder.acquire().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            // A semaphore each: five "processes" queue in Redis, each
            // joining once the one before it holds a ticket.
            let sem = srv.semaphore("fifo", 1, 1).await;
            let order = order.clone();
            let srv = &srv;
            tasks.push(async move {
                assert!(
                    eventually(Duration::from_secs(2), || srv.zcard("fifo", "queue") == i).await
                );
                let l = sem.acquire().await.unwrap();
                order.lock().unwrap().push(i);
                sleep(Duration::from_millis(5)).await;
                drop(l);
            });
        }
        let release = async {
            assert!(eventually(Duration::from_secs(3), || srv.zcard("fifo", "queue") == 5).await);
            drop(lease);
        };
        futures::join!(futures::future::join_all(tasks), release);
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    });
}

#[test]
fn a_dropped_queued_acquire_leaves_no_ticket() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let a = srv.semaphore("drop-queued", 1, 1).await;
        let b = srv.semaphore("drop-queued", 1, 1).await;
        let lease = a.acquire().await.unwrap();
        let acq = drive_until(b.acquire(), Duration::from_secs(2), || {
            srv.zcard("drop-queued", "queue") == 1
        })
        .await;
        drop(acq);
        assert!(
            eventually(Duration::from_secs(2), || srv.zcard("drop-queued", "queue")
                == 0)
            .await
        );
        assert_eq!(srv.zcard("drop-queued", "waiters"), 0);
        drop(lease);
        // The permit is free for b at once (its old ticket is not in the way).
        let l = b.try_acquire().await;
        assert!(
            eventually(Duration::from_secs(2), || srv
                .zcard("drop-queued", "holders")
                <= 1)
            .await
        );
        drop(l);
    });
}

#[test]
fn an_acquire_dropped_while_its_call_is_in_flight_leaves_no_lease() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("inflight", 2, 2).await;
        // Park the server: the acquire's call is sent but not answered.
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(300)
            .arg("ALL")
            .exec(&mut srv.admin())
            .unwrap();
        let start = Instant::now();
        let acq = drive_until(sem.acquire(), Duration::from_secs(1), || {
            start.elapsed() > Duration::from_millis(100)
        })
        .await;
        drop(acq);
        // After the pause the acquire runs and grants; the release follows
        // (or, if Redis ran the acquire after every release attempt, the
        // TTL of 600 ms ends the lease).
        sleep(Duration::from_millis(400)).await;
        assert!(eventually(Duration::from_secs(2), || srv.live("inflight") == 0).await);
        assert_eq!(sem.leases(), 0);
        // Both permits are usable.
        let _a = sem.acquire().await.unwrap();
        let _b = sem.acquire().await.unwrap();
    });
}

#[test]
fn a_retried_acquire_finds_its_own_lease() {
    let Some(srv) = server() else { return };
    // The acquire script run twice with one lease id, as a retry after a
    // lost reply does: one lease, one token.
    let script = redis::Script::new(concat!(
        include_str!("../src/scripts/wake.lua"),
        include_str!("../src/scripts/acquire.lua")
    ));
    let mut con = srv.admin();
    let run = |con: &mut redis::Connection| -> Vec<i64> {
        script
            .prepare_invoke()
            .key("permits:{idem}:holders")
            .key("permits:{idem}:tokens")
            .key("permits:{idem}:queue")
            .key("permits:{idem}:waiters")
            .key("permits:{idem}:meta")
            .arg(2)
            .arg("lease-1")
            .arg(5000)
            .arg(5000)
            .arg("queue")
            .arg("permits:{idem}:wake")
            .invoke(con)
            .unwrap()
    };
    let first = run(&mut con);
    let second = run(&mut con);
    assert_eq!(first[0], 1);
    assert_eq!(second[0], 1);
    assert_eq!(first[1], second[1], "same fencing token");
    assert_eq!(srv.zcard("idem", "holders"), 1);
}

#[test]
fn refresh_never_revives_an_expired_lease() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("revive", 1, 1).await;
        let lease = sem.acquire().await.unwrap();
        // Expire it in Redis (score in the past) without removing it, as a
        // holder paused past its TTL finds it.
        redis::cmd("ZADD")
            .arg("permits:{revive}:holders")
            .arg("XX")
            .arg(1)
            .arg(members(&srv, "revive")[0].clone())
            .exec(&mut srv.admin())
            .unwrap();
        let reason = tokio_free_timeout(Duration::from_secs(2), lease.lost()).await;
        assert_eq!(reason, Some(LossReason::Expired));
        assert_eq!(
            srv.zcard("revive", "holders"),
            0,
            "the refresh removed it, not renewed it"
        );
        // Another holder can have it now.
        let other = srv.semaphore("revive", 1, 1).await;
        let _l = other.acquire().await.unwrap();
        drop(lease);
    });
}

#[test]
fn run_cancels_the_work_when_the_lease_is_lost() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("run", 2, 2).await;
        assert_eq!(sem.run(async { 7 }).await.unwrap(), 7);
        let dropped = Arc::new(Mutex::new(false));
        struct Flag(Arc<Mutex<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = true;
            }
        }
        let flag = Flag(dropped.clone());
        let work = async move {
            let _flag = flag;
            futures::future::pending::<()>().await
        };
        let run = sem.run(work);
        let wipe = async {
            assert!(eventually(Duration::from_secs(2), || srv.zcard("run", "holders") == 1).await);
            // All leases vanish, as after a restart without persistence.
            redis::cmd("DEL")
                .arg("permits:{run}:holders")
                .exec(&mut srv.admin())
                .unwrap();
        };
        let start = Instant::now();
        let (out, ()) = futures::join!(run, wipe);
        assert!(
            matches!(out, Err(Error::LeaseLost(LossReason::Expired))),
            "{out:?}"
        );
        assert!(*dropped.lock().unwrap(), "the work was dropped");
        // Within one refresh interval (200 ms) plus slack.
        assert!(
            start.elapsed() < Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn clients_that_disagree_on_the_limit_get_a_clear_error() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let _a = srv.semaphore("agree", 3, 3).await;
        let err = GlobalSemaphore::builder("agree", 4)
            .build(srv.manager().await)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitMismatch {
                    stored: 3,
                    requested: 4
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "this name is registered in Redis with limit 3, not 4"
        );
    });
}

#[test]
fn a_limit_registered_differently_after_a_data_loss_fails_acquires_clearly() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        redis::cmd("FLUSHALL").exec(&mut srv.admin()).unwrap(); // the other runtime's run
        let a = srv.semaphore("reagree", 3, 3).await;
        // The data is lost, and a client with another limit comes first.
        redis::cmd("FLUSHALL").exec(&mut srv.admin()).unwrap();
        let _b = srv.semaphore("reagree", 4, 4).await;
        let err = a.acquire().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitMismatch {
                    stored: 4,
                    requested: 3
                }
            ),
            "{err:?}"
        );
        assert_eq!(srv.zcard("reagree", "holders"), 0);
    });
}

#[test]
fn odd_byte_names_work_and_braces_are_refused() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let name: &[u8] = b"mail \0\n\xff*?[x] \"quoted\" 'x' -- ;";
        let (sem, driver) = GlobalSemaphore::builder(name, 1)
            .ttl(Duration::from_millis(600))
            .build(srv.manager().await)
            .await
            .unwrap();
        spawn(driver);
        assert_eq!(sem.name(), name);
        let l = sem.acquire().await.unwrap();
        assert!(matches!(sem.try_acquire().await, Err(Error::NoPermits)));
        let mut key = b"permits:{".to_vec();
        key.extend_from_slice(name);
        key.extend_from_slice(b"}:holders");
        let n: usize = redis::cmd("ZCARD")
            .arg(&key)
            .query(&mut srv.admin())
            .unwrap();
        assert_eq!(n, 1);
        drop(l);
        for bad in [&b"a{b"[..], b"a}b", b""] {
            let err = GlobalSemaphore::builder(bad, 1)
                .build(srv.manager().await)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidName(_)), "{err:?}");
        }
    });
}

#[test]
fn bad_settings_are_refused() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let bad = [
            GlobalSemaphore::builder("cfg", 0),
            GlobalSemaphore::builder("cfg", 1).ttl(Duration::from_millis(1)),
            GlobalSemaphore::builder("cfg", 1).local_limit(0),
            GlobalSemaphore::builder("cfg", 1)
                .ttl(Duration::from_secs(3))
                .poll_interval(Duration::from_secs(2)),
        ];
        for b in bad {
            let err = b.build(srv.manager().await).await.unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
        }
    });
}

#[test]
fn close_fails_queued_and_later_acquires_and_keeps_leases() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("close", 1, 2).await;
        let lease = sem.acquire().await.unwrap();
        let queued = sem.acquire();
        let close = async {
            assert!(eventually(Duration::from_secs(2), || srv.zcard("close", "queue") == 1).await);
            sem.close();
        };
        let (out, ()) = futures::join!(queued, close);
        assert!(matches!(out, Err(Error::Closed)));
        assert!(matches!(sem.acquire().await, Err(Error::Closed)));
        assert!(!lease.is_lost());
        assert!(eventually(Duration::from_secs(2), || srv.zcard("close", "queue") == 0).await);
        drop(lease);
        assert!(
            eventually(Duration::from_secs(2), || srv.zcard("close", "holders")
                == 0)
            .await
        );
    });
}

#[test]
fn the_driver_finishes_when_everything_is_dropped() {
    let Some(srv) = server() else { return };
    smol::block_on(async {
        let (sem, driver) = GlobalSemaphore::builder("finish", 2)
            .ttl(Duration::from_millis(300))
            .hints(srv.client())
            .build(srv.manager().await)
            .await
            .unwrap();
        let task = smol::spawn(driver);
        let lease = sem.acquire().await.unwrap();
        drop(sem);
        sleep(Duration::from_millis(150)).await;
        assert!(!task.is_finished(), "a lease is still held");
        drop(lease);
        let done = tokio_free_timeout(Duration::from_secs(2), task).await;
        assert!(done.is_some(), "the driver did not finish");
        assert_eq!(srv.zcard("finish", "holders"), 0);
    });
}

fn members(srv: &common::Server, name: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(format!("permits:{{{name}}}:holders"))
        .arg(0)
        .arg(-1)
        .query(&mut srv.admin())
        .unwrap()
}

async fn tokio_free_timeout<F: std::future::Future>(d: Duration, f: F) -> Option<F::Output> {
    futures::select! {
        out = f.fuse() => Some(out),
        () = sleep(d).fuse() => None,
    }
}
