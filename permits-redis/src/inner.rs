//! What the handles, leases, acquires and the driver of one semaphore share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use permits::{OwnedPermit, Semaphore};

use crate::conn::{Connection, Script};
use crate::event::Event;
use crate::keys::Keys;
use crate::lease::LeaseEntry;

/// The four scripts, hashed once per process.
pub(crate) struct Scripts {
    pub(crate) acquire: Script,
    pub(crate) release: Script,
    pub(crate) refresh: Script,
    pub(crate) register: Script,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    acquire: Script::new(concat!(
        include_str!("scripts/wake.lua"),
        include_str!("scripts/acquire.lua")
    )),
    release: Script::new(concat!(
        include_str!("scripts/wake.lua"),
        include_str!("scripts/release.lua")
    )),
    refresh: Script::new(concat!(
        include_str!("scripts/wake.lua"),
        include_str!("scripts/refresh.lua")
    )),
    register: Script::new(include_str!("scripts/register.lua")),
});

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) ttl: Duration,
    /// How long a queued waiter's ticket lives without a heartbeat.
    pub(crate) waiter_ttl: Duration,
    pub(crate) refresh_every: Duration,
    /// After a failed refresh: how soon to try again.
    pub(crate) retry_every: Duration,
    pub(crate) poll: Duration,
    pub(crate) call_timeout: Duration,
}

/// Lease bookkeeping, under one short lock (never held across an await).
#[derive(Default)]
pub(crate) struct State {
    /// Leases held by this process, refreshed by the driver.
    pub(crate) leases: HashMap<String, Arc<LeaseEntry>>,
    /// Lease ids to release or tickets to take out of the queue, with the
    /// local permit to give back once Redis has them.
    pub(crate) pending: Vec<(String, Option<OwnedPermit>)>,
    /// `GlobalSemaphore` handles alive (an `Acquire` holds one).
    pub(crate) handles: usize,
}

/// Script calls made by this process, for measuring round trips.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acquire: AtomicU64,
    pub(crate) release: AtomicU64,
    pub(crate) refresh: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct Inner {
    pub(crate) name: Vec<u8>,
    pub(crate) keys: Keys,
    pub(crate) limit: u64,
    pub(crate) local_limit: usize,
    pub(crate) config: Config,
    pub(crate) conn: Box<dyn Connection>,
    /// The pub/sub hints' source, if the user gave one.
    pub(crate) client: Option<redis::Client>,
    /// First stage: this process' local limit and FIFO queue.
    pub(crate) local: Arc<Semaphore>,
    /// One permit: held by the one local acquire that waits in Redis' queue.
    pub(crate) gate: Semaphore,
    /// A hint that a permit may be free (pub/sub, or one of our releases).
    pub(crate) hints: Event,
    /// The lease id of the local acquire that holds `gate` and waits in
    /// Redis' queue: pub/sub messages name the waiters whose turn it is.
    pub(crate) waiting: Mutex<Option<String>>,
    /// Work for the driver (a release, a handle dropped, a lease lost).
    pub(crate) driver_wake: Event,
    pub(crate) state: Mutex<State>,
    pub(crate) counters: Counters,
}

impl Inner {
    /// Hands a lease id (and its local permit, if any) to the driver, which
    /// releases it in Redis. Stops refreshing it at once.
    pub(crate) fn release(&self, id: String, permit: Option<OwnedPermit>) {
        {
            let mut st = self.state.lock().unwrap();
            st.leases.remove(&id);
            st.pending.push((id, permit));
        }
        self.driver_wake.notify();
    }

    /// The driver may stop: nobody can create or hold a lease any more, and
    /// every release is done.
    pub(crate) fn finished(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.handles == 0 && st.leases.is_empty() && st.pending.is_empty()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.local.is_closed()
    }
}
