//! Test harness: a private redis-server on a free loopback port, both
//! runtimes, and the test binary re-run as child processes.
#![allow(dead_code)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use permits_redis::{Driver, GlobalSemaphore};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

mod redis_server;

pub use redis_server::Server;

/// Starts a server, or returns `None` (the test then passes as skipped,
/// saying so) when redis-server is not installed and REQUIRE_REDIS is not
/// set. With REQUIRE_REDIS=1 (CI) a missing server fails the test.
pub fn server() -> Option<Server> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("redis-server not found and REQUIRE_REDIS=1 (apt-get install redis-server)");
        }
        eprintln!("SKIPPED: redis-server not found (set REQUIRE_REDIS=1 to fail instead)");
        return None;
    }
    Some(Server::start_on_free_port())
}

impl Server {
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }

    /// A blocking connection for the test's own checks and fault commands.
    pub fn admin(&self) -> redis::Connection {
        self.client().get_connection().unwrap()
    }

    /// A reconnecting connection, as a service would configure it.
    pub async fn manager(&self) -> ConnectionManager {
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_millis(200)))
            .set_response_timeout(None);
        self.client()
            .get_connection_manager_with_config(config)
            .await
            .unwrap()
    }

    /// A semaphore with short timings, hints on, driver spawned.
    pub async fn semaphore(&self, name: &str, limit: u64, local: usize) -> GlobalSemaphore {
        let (sem, driver) = GlobalSemaphore::builder(name, limit)
            .ttl(Duration::from_millis(600))
            .local_limit(local)
            .hints(self.client())
            .build(self.manager().await)
            .await
            .unwrap();
        spawn(driver);
        sem
    }

    pub fn zcard(&self, name: &str, part: &str) -> usize {
        redis::cmd("ZCARD")
            .arg(format!("permits:{{{name}}}:{part}"))
            .query(&mut self.admin())
            .unwrap()
    }
}

impl Server {
    /// Leases not yet expired in server time (expired ones linger until
    /// the next acquire prunes them).
    pub fn live(&self, name: &str) -> usize {
        let mut con = self.admin();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
        let now_ms = secs * 1000 + micros / 1000;
        redis::cmd("ZCOUNT")
            .arg(format!("permits:{{{name}}}:holders"))
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query(&mut con)
            .unwrap()
    }
}

/// Spawns the driver on whichever runtime is running this test.
pub fn spawn(driver: Driver) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(driver);
    } else {
        smol::spawn(driver).detach();
    }
}

pub fn sleep(d: Duration) -> impl Future<Output = ()> {
    futures_timer_sleep(d)
}

async fn futures_timer_sleep(d: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(d).await
    } else {
        smol::Timer::after(d).await;
    }
}

/// Runs `scenario` once on tokio's multi-thread runtime and once on smol.
pub fn on_both<F, Fut>(scenario: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(scenario());
    smol::block_on(scenario());
}

/// Waits up to `within` for `cond`, polling.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// Polls `fut` while waiting up to `within` for `cond`; `fut` must not
/// finish meanwhile. Returns it, still pending, for the test to drop.
pub async fn drive_until<F: Future + Unpin>(
    mut fut: F,
    within: Duration,
    cond: impl FnMut() -> bool,
) -> F {
    use futures::FutureExt;
    let mut wait = std::pin::pin!(eventually(within, cond).fuse());
    futures::select_biased! {
        _ = (&mut fut).fuse() => panic!("the future finished early"),
        ok = wait => assert!(ok, "condition not met in {within:?}"),
    }
    fut
}

/// Re-runs this test binary as a child process running the test `entry`
/// with `PERMITS_REDIS_CHILD` set to `role`.
pub fn child(entry: &str, role: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env("PERMITS_REDIS_CHILD", role)
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The role this process was started for, if it is a child.
pub fn role() -> Option<String> {
    std::env::var("PERMITS_REDIS_CHILD").ok()
}
