//! Several processes on one limit: this test binary re-runs itself as child
//! processes (the `child_process_entry` test, selected by an environment
//! variable), against a private redis-server.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{child, role, server};
use permits_redis::GlobalSemaphore;

const TTL: Duration = Duration::from_millis(600);

/// The entry point of the child processes; does nothing when run as a
/// normal test.
#[test]
fn child_process_entry() {
    let Some(role) = role() else { return };
    let port: u16 = std::env::var("REDIS_PORT").unwrap().parse().unwrap();
    let name = std::env::var("SEM_NAME").unwrap();
    let limit: u64 = std::env::var("SEM_LIMIT").unwrap().parse().unwrap();
    let (what, runtime) = role.split_once('-').unwrap();
    let body = async move {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let (sem, driver) = GlobalSemaphore::builder(&name, limit)
            .ttl(TTL)
            .local_limit(2)
            .hints(client.clone())
            .build(client.get_connection_manager().await.unwrap())
            .await
            .unwrap();
        common::spawn(driver);
        match what {
            "worker" => worker(&sem).await,
            "stream" => stream_worker(&sem).await,
            "hold" => {
                let lease = sem.acquire().await.unwrap();
                println!("\nHELD {}", lease.token());
                loop {
                    common::sleep(Duration::from_secs(1)).await;
                }
            }
            "wait" => {
                let lease = sem.acquire().await.unwrap();
                println!("\nGOT {}", lease.token());
            }
            other => panic!("unknown role {other}"),
        }
    };
    match runtime {
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(body),
        _ => smol::block_on(body),
    }
}

/// M sessions to the sink, all started at once, each through `run`.
async fn worker(sem: &GlobalSemaphore) {
    let sink: u16 = std::env::var("SINK_PORT").unwrap().parse().unwrap();
    let m: usize = std::env::var("TASKS").unwrap().parse().unwrap();
    let sessions = (0..m).map(|i| {
        sem.run(async move {
            // A blocking session on its own thread, so both runtimes can
            // run it the same way.
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", sink)).unwrap();
                s.write_all(b"hi\n").unwrap();
                std::thread::sleep(Duration::from_millis(5 + (i % 3) as u64 * 5));
                s.write_all(b"bye\n").unwrap();
                let mut ack = [0; 1];
                s.read_exact(&mut ack).unwrap();
                let _ = tx.send(());
            });
            rx.await.unwrap();
        })
    });
    let results = futures::future::join_all(sessions).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    println!("\nDONE {}", results.len());
}

/// M sessions to the sink through `run_all` over one backlog; each session
/// names its process and item, so the sink can tell that every item of
/// every backlog ran exactly once.
async fn stream_worker(sem: &GlobalSemaphore) {
    use futures::StreamExt;
    let sink: u16 = std::env::var("SINK_PORT").unwrap().parse().unwrap();
    let m: usize = std::env::var("TASKS").unwrap().parse().unwrap();
    let me = std::process::id();
    let results: Vec<_> = sem
        .run_all(0..m, |i| async move {
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", sink)).unwrap();
                s.write_all(format!("item {me} {i}\n").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(5 + (i % 3) as u64 * 5));
                s.write_all(b"bye\n").unwrap();
                let mut ack = [0; 1];
                s.read_exact(&mut ack).unwrap();
                let _ = tx.send(());
            });
            rx.await.unwrap();
            i
        })
        .collect()
        .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    println!("\nDONE {me} {}", results.len());
}

/// A TCP server that counts sessions and the most open at once. A session
/// counts as closed before the client is told (the ack), so the count never
/// lags behind a client that has let go of its lease.
struct Sink {
    port: u16,
    peak: Arc<AtomicUsize>,
    sessions: Arc<AtomicUsize>,
    /// The first line of each session.
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

fn sink() -> Sink {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let sessions = Arc::new(AtomicUsize::new(0));
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p, s, l) = (peak.clone(), sessions.clone(), lines.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (open, peak, sessions, lines) = (open.clone(), p.clone(), s.clone(), l.clone());
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                lines.lock().unwrap().push(line.trim_end().to_string());
                while !line.ends_with("bye\n") && r.read_line(&mut line).unwrap_or(0) > 0 {}
                open.fetch_sub(1, Ordering::SeqCst);
                sessions.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(b"k");
            });
        }
    });
    Sink {
        port,
        peak,
        sessions,
        lines,
    }
}

/// Lines a child prints that start with an upper-case tag (the harness'
/// own output is lower case).
fn tagged_lines(c: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = c.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with(|ch: char| ch.is_ascii_uppercase()) {
                let _ = tx.send(line);
            }
        }
    });
    rx
}

fn env(srv: &common::Server, name: &str, limit: u64) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_PORT", srv.port.to_string()),
        ("SEM_NAME", name.to_string()),
        ("SEM_LIMIT", limit.to_string()),
    ]
}

fn wait_exit(c: &mut Child, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = c.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    false
}

fn sigkill(c: &mut Child) {
    assert!(Command::new("kill")
        .args(["-KILL", &c.id().to_string()])
        .status()
        .unwrap()
        .success());
    let _ = c.wait();
}

#[test]
fn the_limit_holds_across_processes() {
    if role().is_some() {
        return;
    }
    let Some(srv) = server() else { return };
    let sink = sink();
    const K: usize = 4;
    const M: usize = 15;
    const N: u64 = 3;
    let mut env = env(&srv, "procs", N);
    env.push(("SINK_PORT", sink.port.to_string()));
    env.push(("TASKS", M.to_string()));
    // Half the workers on tokio, half on smol, all on one limit.
    let mut children: Vec<Child> = (0..K)
        .map(|i| {
            let rt = if i % 2 == 0 { "tokio" } else { "smol" };
            child("child_process_entry", &format!("worker-{rt}"), &env)
        })
        .collect();
    for c in &mut children {
        assert!(wait_exit(c, Duration::from_secs(60)), "a worker failed");
    }
    let peak = sink.peak.load(Ordering::SeqCst);
    assert_eq!(
        sink.sessions.load(Ordering::SeqCst),
        K * M,
        "every task done"
    );
    assert!(
        peak <= N as usize,
        "peak {peak} sessions with a limit of {N}"
    );
    assert!(peak >= 2, "peak {peak}: the workers never overlapped");
    eprintln!("peak concurrent sessions: {peak} (limit {N})");
}

#[test]
fn the_limit_holds_across_processes_each_running_a_backlog_stream() {
    if role().is_some() {
        return;
    }
    let Some(srv) = server() else { return };
    let sink = sink();
    const K: usize = 3;
    const M: usize = 20;
    const N: u64 = 3;
    let mut env = env(&srv, "procs-stream", N);
    env.push(("SINK_PORT", sink.port.to_string()));
    env.push(("TASKS", M.to_string()));
    let mut children: Vec<Child> = (0..K)
        .map(|i| {
            let rt = if i % 2 == 0 { "tokio" } else { "smol" };
            child("child_process_entry", &format!("stream-{rt}"), &env)
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    for c in &mut children {
        assert!(wait_exit(c, Duration::from_secs(60)), "a worker failed");
    }
    let peak = sink.peak.load(Ordering::SeqCst);
    assert!(
        peak <= N as usize,
        "peak {peak} sessions with a limit of {N}"
    );
    assert!(peak >= 2, "peak {peak}: the workers never overlapped");
    // Every item of every process's backlog, exactly once.
    let mut got = sink.lines.lock().unwrap().clone();
    got.sort();
    let mut want: Vec<String> = pids
        .iter()
        .flat_map(|pid| (0..M).map(move |i| format!("item {pid} {i}")))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // A worker exits without waiting for its driver's last release; the
    // TTL covers that (the in-process tests check the releases).
    let start = Instant::now();
    while srv.live("procs-stream") > 0 {
        assert!(start.elapsed() < 2 * TTL, "a lease outlived its TTL");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("streams: peak concurrent sessions {peak} (limit {N})");
}

#[test]
fn a_killed_holder_frees_its_permit_after_the_ttl_not_before() {
    if role().is_some() {
        return;
    }
    let Some(srv) = server() else { return };
    let mut holder = child("child_process_entry", "hold-tokio", &env(&srv, "killed", 1));
    let lines = tagged_lines(&mut holder);
    let line = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(line.starts_with("HELD"), "{line}");
    // How long Redis will keep the lease from now, in server time.
    let mut con = srv.admin();
    let expiry: f64 = redis::cmd("ZRANGE")
        .arg("permits:{killed}:holders")
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .query::<Vec<(String, f64)>>(&mut con)
        .unwrap()[0]
        .1;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let left = Duration::from_millis((expiry as u64).saturating_sub(secs * 1000 + micros / 1000));
    sigkill(&mut holder);
    let killed = Instant::now();
    smol::block_on(async {
        let sem = srv.semaphore("killed", 1, 1).await;
        let lease = sem.acquire().await.unwrap();
        let waited = killed.elapsed();
        assert!(
            waited + Duration::from_millis(20) >= left,
            "granted after {waited:?}, before the dead lease's {left:?} were up"
        );
        assert!(
            waited <= left + TTL / 3 + TTL / 4 + Duration::from_millis(300),
            "granted only after {waited:?} ({left:?} were left)"
        );
        eprintln!("dead holder: {left:?} left, granted after {waited:?}");
        drop(lease);
    });
}

#[test]
fn a_killed_queued_waiter_does_not_block_the_queue() {
    if role().is_some() {
        return;
    }
    let Some(srv) = server() else { return };
    smol::block_on(async {
        let sem = srv.semaphore("dead-waiter", 1, 1).await;
        let lease = sem.acquire().await.unwrap();
        let env = env(&srv, "dead-waiter", 1);
        let mut first = child("child_process_entry", "wait-smol", &env);
        assert!(
            common::eventually(Duration::from_secs(20), || srv
                .zcard("dead-waiter", "queue")
                == 1)
            .await
        );
        let mut second = child("child_process_entry", "wait-tokio", &env);
        let lines = tagged_lines(&mut second);
        assert!(
            common::eventually(Duration::from_secs(20), || srv
                .zcard("dead-waiter", "queue")
                == 2)
            .await
        );
        sigkill(&mut first);
        let killed = Instant::now();
        drop(lease);
        let line = lines.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(line.starts_with("GOT"), "{line}");
        eprintln!(
            "queue moved past the dead waiter after {:?}",
            killed.elapsed()
        );
        assert!(wait_exit(&mut second, Duration::from_secs(10)));
        assert!(
            common::eventually(Duration::from_secs(2), || srv.zcard("dead-waiter", "queue")
                == 0)
            .await
        );
    });
}
