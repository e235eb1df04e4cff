//! The backlog stream (`run_all` / `run_stream`) against a real server: a
//! lease per item, a lost lease cancels that item only, `close` ends the
//! stream after the work in flight, a dropped stream leaves nothing behind,
//! and the stream survives a restarted server and killed connections.
//! Each on tokio and on smol.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, on_both, server, sleep};
use futures::StreamExt;
use permits_redis::{Error, LossReason};

/// How many items run at once, and the most at once.
#[derive(Default)]
struct Recorder {
    now: AtomicUsize,
    peak: AtomicUsize,
    started: Mutex<Vec<u32>>,
}

impl Recorder {
    /// An item's work: `d` long, recorded while it runs.
    async fn work(&self, id: u32, d: Duration) -> u32 {
        self.started.lock().unwrap().push(id);
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let _running = Running(&self.now);
        sleep(d).await;
        id
    }

    fn started(&self) -> Vec<u32> {
        let mut v = self.started.lock().unwrap().clone();
        v.sort_unstable();
        v
    }
}

/// Counts an item as stopped when its future completes or is dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn every_item_runs_once_within_the_limit_and_the_leases_go_back() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        // Two instances (two processes' worth) on 3 permits, 3 local each:
        // together they want 6.
        let a = srv.semaphore("stream-limit", 3, 3).await;
        let b = srv.semaphore("stream-limit", 3, 3).await;
        let rec = Recorder::default();
        let run = |sem: &permits_redis::GlobalSemaphore, ids: std::ops::Range<u32>| {
            let rec = &rec;
            sem.run_all(ids, move |id| rec.work(id, Duration::from_millis(5)))
                .collect::<Vec<_>>()
        };
        let (out_a, out_b) = futures::join!(run(&a, 0..40), run(&b, 100..140));
        let mut ids: Vec<u32> = out_a.into_iter().chain(out_b).map(|r| r.unwrap()).collect();
        ids.sort_unstable();
        let want: Vec<u32> = (0..40).chain(100..140).collect();
        assert_eq!(ids, want, "every item's output, once");
        assert_eq!(rec.started(), want, "every item ran once");
        let peak = rec.peak.load(Ordering::SeqCst);
        assert!(peak <= 3, "{peak} items at once on 3 permits");
        assert!(peak >= 2, "{peak}: the items never overlapped");
        assert!(
            eventually(Duration::from_secs(2), || srv
                .zcard("stream-limit", "holders")
                == 0)
            .await
        );
        assert_eq!((a.leases(), b.leases()), (0, 0));
    });
}

#[test]
fn in_order_and_run_stream_and_limit() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("stream-order", 8, 8).await;
        let rec = Recorder::default();
        // Later items finish first; outputs still come in source order.
        let out: Vec<_> = sem
            .run_stream(futures::stream::iter(0..12u32), |id| {
                rec.work(id, Duration::from_millis(30 - 2 * id as u64))
            })
            .limit(3)
            .in_order()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(out, (0..12).collect::<Vec<_>>());
        let peak = rec.peak.load(Ordering::SeqCst);
        assert!(peak <= 3, "limit(3), {peak} at once");
    });
}

#[test]
fn a_lost_lease_cancels_its_item_only() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("stream-lost", 3, 3).await;
        let rec = Recorder::default();
        let victim: Mutex<Option<String>> = Mutex::new(None);
        // Each item runs far longer than a refresh interval (200 ms), so
        // whichever item's lease is removed learns it while it runs.
        let stream = sem.run_all(0..3u32, |id| rec.work(id, Duration::from_millis(1200)));
        let wipe = async {
            // All three hold leases; one is removed in Redis (its refresh
            // then finds it gone).
            assert!(
                eventually(Duration::from_secs(2), || srv
                    .zcard("stream-lost", "holders")
                    == 3)
                .await
            );
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg("permits:{stream-lost}:holders")
                .arg(0)
                .arg(0)
                .query(&mut srv.admin())
                .unwrap();
            redis::cmd("ZREM")
                .arg("permits:{stream-lost}:holders")
                .arg(&ids[0])
                .exec(&mut srv.admin())
                .unwrap();
            *victim.lock().unwrap() = Some(ids[0].clone());
        };
        let (out, ()) = futures::join!(stream.collect::<Vec<_>>(), wipe);
        assert!(victim.lock().unwrap().is_some());
        let lost = out
            .iter()
            .filter(|r| matches!(r, Err(Error::LeaseLost(LossReason::Expired))))
            .count();
        let ok: HashSet<u32> = out
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(lost, 1, "{out:?}");
        assert_eq!(ok.len(), 2, "the others finished: {out:?}");
        assert_eq!(
            rec.now.load(Ordering::SeqCst),
            0,
            "the lost item's work was dropped"
        );
        assert!(
            eventually(Duration::from_secs(2), || srv
                .zcard("stream-lost", "holders")
                == 0)
            .await
        );
    });
}

#[test]
fn close_ends_the_stream_after_the_work_in_flight() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("stream-close", 2, 2).await;
        let rec = Recorder::default();
        let mut stream =
            std::pin::pin!(sem.run_all(0..10u32, |id| rec.work(id, Duration::from_millis(150))));
        let mut out = Vec::new();
        let close = async {
            assert!(
                eventually(Duration::from_secs(2), || rec.now.load(Ordering::SeqCst)
                    == 2)
                .await
            );
            sem.close();
        };
        let collect = async {
            while let Some(r) = stream.next().await {
                out.push(r);
            }
        };
        futures::join!(collect, close);
        // The two in flight finished; then the error, once, last.
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[..2].iter().all(|r| r.is_ok()), "{out:?}");
        assert!(matches!(out[2], Err(Error::Closed)), "{out:?}");
        let left: Vec<u32> = stream.as_mut().remaining().collect();
        let ran = rec.started();
        assert_eq!(ran.len() + left.len(), 10, "ran {ran:?}, left {left:?}");
        assert!(
            eventually(Duration::from_secs(2), || srv
                .zcard("stream-close", "holders")
                == 0)
            .await
        );
    });
}

#[test]
fn stop_on_err_admits_nothing_after_a_failure() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        let sem = srv.semaphore("stream-stop", 4, 4).await;
        let mut stream = std::pin::pin!(sem
            .run_all(0..20u32, |id| async move {
                sleep(Duration::from_millis(5)).await;
                if id == 3 {
                    Err(id)
                } else {
                    Ok(id)
                }
            })
            .limit(1)
            .stop_on_err());
        let mut out = Vec::new();
        while let Some(r) = stream.next().await {
            out.push(r.unwrap());
        }
        assert_eq!(out, [Ok(0), Ok(1), Ok(2), Err(3)]);
        assert_eq!(stream.as_mut().remaining().count(), 16);
    });
}

#[test]
fn a_dropped_stream_leaves_no_lease_no_ticket_and_gives_the_local_permits_back() {
    let Some(srv) = server() else { return };
    on_both(|| async {
        // 2 global permits, 4 local: the stream holds 2 leases and waits
        // in Redis' queue for more when it is dropped.
        let sem = srv.semaphore("stream-drop", 2, 4).await;
        let rec = Arc::new(Recorder::default());
        let r = rec.clone();
        let stream = sem.run_all(0..100u32, move |id| {
            let r = r.clone();
            async move { r.work(id, Duration::from_secs(60)).await }
        });
        let mut stream = Box::pin(stream);
        let stream_ref = &mut stream;
        let drive = async { stream_ref.next().await };
        let watch = eventually(Duration::from_secs(3), || {
            rec.now.load(Ordering::SeqCst) == 2 && srv.zcard("stream-drop", "queue") == 1
        });
        futures::pin_mut!(drive, watch);
        match futures::future::select(drive, watch).await {
            futures::future::Either::Right((ok, _)) => assert!(ok, "never held 2 and queued"),
            futures::future::Either::Left((out, _)) => panic!("the stream yielded {out:?}"),
        }
        assert_eq!(srv.zcard("stream-drop", "holders"), 2);
        drop(stream);
        assert_eq!(rec.now.load(Ordering::SeqCst), 0, "the work was dropped");
        assert!(
            eventually(Duration::from_secs(2), || srv
                .zcard("stream-drop", "holders")
                == 0
                && srv.zcard("stream-drop", "queue") == 0
                && sem.leases() == 0)
            .await,
            "holders {} queue {}",
            srv.zcard("stream-drop", "holders"),
            srv.zcard("stream-drop", "queue")
        );
        // Every local permit is back: two leases at once again (the global
        // limit), and the local semaphore lets four acquires through to
        // Redis (the third and fourth find no global permit, not no local).
        let l1 = sem.try_acquire().await.unwrap();
        let l2 = sem.try_acquire().await.unwrap();
        assert!(matches!(sem.try_acquire().await, Err(Error::NoPermits)));
        drop((l1, l2));
        assert_eq!(
            rec.started().len(),
            2,
            "only the items with a lease were started"
        );
    });
}

/// A backlog of `n` items (item `id` takes `d(id)`) that runs through
/// `fault`, caused once `when` holds. Returns the outputs and the ids
/// started.
async fn through_fault(
    srv: &mut common::Server,
    name: &str,
    n: u32,
    d: fn(u32) -> Duration,
    when: fn(&Recorder) -> bool,
    fault: impl FnOnce(&mut common::Server),
) -> (Vec<Result<u32, Error>>, Vec<u32>) {
    let sem = srv.semaphore(name, 3, 3).await;
    let rec = Recorder::default();
    let collect = sem
        .run_all(0..n, |id| rec.work(id, d(id)))
        .collect::<Vec<_>>();
    let cause = async {
        assert!(eventually(Duration::from_secs(5), || when(&rec)).await);
        fault(&mut *srv);
    };
    let (out, ()) = futures::join!(collect, cause);
    assert!(eventually(Duration::from_secs(3), || srv.zcard(name, "holders") == 0).await);
    assert!(rec.peak.load(Ordering::SeqCst) <= 3);
    (out, rec.started())
}

/// Runs `fut` on tokio's multi-thread runtime or on smol.
fn block_on<Fut: std::future::Future<Output = ()>>(runtime: &str, fut: Fut) {
    match runtime {
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut),
        _ => smol::block_on(fut),
    }
}

#[test]
fn the_stream_survives_a_restarted_server() {
    let Some(mut srv) = server() else { return };
    for runtime in ["tokio", "smol"] {
        block_on(runtime, survives_a_restart(&mut srv));
    }
}

async fn survives_a_restart(srv: &mut common::Server) {
    // Items 3, 4 and 5 are in flight when Redis restarts (0, 1 and 2 are
    // done) and run long enough to learn it: they are cancelled. The stream
    // goes on with leases from the restarted server.
    let d = |id| Duration::from_millis(if (3..6).contains(&id) { 3000 } else { 30 });
    // Caused once they run (granted before the restart).
    let when = |rec: &Recorder| rec.started().len() == 6 && rec.now.load(Ordering::SeqCst) == 3;
    let (out, started) =
        through_fault(srv, "stream-restart", 12, d, when, |srv| srv.restart()).await;
    eprintln!("after a restart: {out:?}");
    assert_eq!(out.len(), 12, "every item yielded: {out:?}");
    assert_eq!(started, (0..12).collect::<Vec<_>>(), "each started once");
    let lost = out
        .iter()
        .filter(|r| matches!(r, Err(Error::LeaseLost(_))))
        .count();
    assert_eq!(lost, 3, "the three in flight lost their leases: {out:?}");
    let mut ok: Vec<u32> = out
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    ok.sort_unstable();
    assert_eq!(ok, [0, 1, 2, 6, 7, 8, 9, 10, 11], "the others ran: {out:?}");
}

#[test]
fn the_stream_survives_killed_connections() {
    let Some(mut srv) = server() else { return };
    for runtime in ["tokio", "smol"] {
        block_on(runtime, survives_killed_connections(&mut srv));
    }
}

async fn survives_killed_connections(srv: &mut common::Server) {
    let d = |_| Duration::from_millis(20);
    let when = |rec: &Recorder| rec.started().len() >= 5;
    let (out, started) = through_fault(srv, "stream-kill", 30, d, when, |srv| {
        // Every client but this one: the stream's connection manager (it
        // reconnects) and the driver's pub/sub connection.
        let killed: usize = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut srv.admin())
            .unwrap();
        assert!(killed >= 2, "{killed} connections killed");
    })
    .await;
    let mut ok: Vec<u32> = out.iter().map(|r| *r.as_ref().unwrap()).collect();
    ok.sort_unstable();
    assert_eq!(ok, (0..30).collect::<Vec<_>>(), "every item ran: {out:?}");
    assert_eq!(started, (0..30).collect::<Vec<_>>(), "each started once");
}
