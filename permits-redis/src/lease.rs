//! A held lease, its loss notice, and the entry the driver refreshes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use permits::OwnedPermit;

use crate::inner::Inner;
use crate::LossReason;

/// One lease as the driver and the `Lost` futures see it.
pub(crate) struct LeaseEntry {
    pub(crate) id: String,
    state: Mutex<EntryState>,
}

struct EntryState {
    lost: Option<LossReason>,
    /// The lease is valid in Redis at least until this instant (the send
    /// time of the last successful grant or refresh plus the time Redis said
    /// was left), on this process' monotonic clock.
    deadline: Instant,
    wakers: Vec<Waker>,
}

impl LeaseEntry {
    pub(crate) fn new(id: String, deadline: Instant) -> Self {
        LeaseEntry {
            id,
            state: Mutex::new(EntryState {
                lost: None,
                deadline,
                wakers: Vec::new(),
            }),
        }
    }

    /// A refresh sent at `sent` succeeded: valid until `sent + ttl`.
    pub(crate) fn extend(&self, deadline: Instant) {
        let mut st = self.state.lock().unwrap();
        if st.lost.is_none() && deadline > st.deadline {
            st.deadline = deadline;
        }
    }

    pub(crate) fn lose(&self, reason: LossReason) {
        let wakers = {
            let mut st = self.state.lock().unwrap();
            if st.lost.is_some() {
                return;
            }
            st.lost = Some(reason);
            std::mem::take(&mut st.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// The loss, if any; a deadline that has passed is a loss.
    pub(crate) fn check(&self, now: Instant) -> Result<LossReason, Instant> {
        let deadline = {
            let st = self.state.lock().unwrap();
            if let Some(r) = st.lost {
                return Ok(r);
            }
            st.deadline
        };
        if now >= deadline {
            self.lose(LossReason::Unreachable);
            return Ok(self
                .state
                .lock()
                .unwrap()
                .lost
                .unwrap_or(LossReason::Unreachable));
        }
        Err(deadline)
    }

    fn register(&self, waker: &Waker) {
        let mut st = self.state.lock().unwrap();
        if st.lost.is_none() && !st.wakers.iter().any(|w| w.will_wake(waker)) {
            st.wakers.push(waker.clone());
        }
    }
}

/// A lease on one of the global permits, held by this process.
///
/// Dropping it gives the permit back: the [`Driver`](crate::Driver) sends the
/// release to Redis (batched with others) and then returns the local permit.
/// If the driver is not running, the lease expires in Redis after the TTL.
///
/// A lease can be lost while held (see [`Lost`]); from then on another
/// process may hold the same permit. Pass [`token`](Lease::token) to the
/// protected resource so it can refuse a stale holder.
#[must_use = "dropping a lease gives its permit back"]
pub struct Lease {
    pub(crate) entry: Arc<LeaseEntry>,
    pub(crate) token: u64,
    pub(crate) inner: Arc<Inner>,
    pub(crate) permit: Option<OwnedPermit>,
}

impl Lease {
    /// The fencing token: a number that is larger for every lease granted
    /// later on this name. A resource that remembers the largest token it
    /// has seen and refuses smaller ones cannot be written by a holder whose
    /// lease was lost (see the crate docs for what this does not cover).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// A future that completes when the lease is lost, with the reason. It
    /// never completes while the lease stays valid. Several may be made.
    pub fn lost(&self) -> Lost {
        Lost {
            entry: self.entry.clone(),
            timer: None,
        }
    }

    /// Whether the lease is lost (Redis said so, or its local deadline has
    /// passed without a successful refresh).
    pub fn is_lost(&self) -> bool {
        self.entry.check(Instant::now()).is_ok()
    }

    /// How long the lease is known to stay valid without another refresh
    /// (zero once lost). A conservative bound on this process' clock.
    pub fn valid_for(&self) -> Duration {
        let now = Instant::now();
        match self.entry.check(now) {
            Ok(_) => Duration::ZERO,
            Err(deadline) => deadline - now,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.inner
            .release(self.entry.id.clone(), self.permit.take());
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.entry.id)
            .field("token", &self.token)
            .field("valid_for", &self.valid_for())
            .finish()
    }
}

/// The future of [`Lease::lost`]: completes with the reason once the lease is
/// lost, either because the driver learned it from Redis or because its local
/// deadline passed (this needs no driver: a holder whose driver has stopped
/// still learns it at the deadline).
///
/// # Cancel safety
///
/// Dropping it changes nothing; the lease is unaffected.
#[must_use = "futures do nothing unless .awaited or polled"]
pub struct Lost {
    entry: Arc<LeaseEntry>,
    timer: Option<futures_timer::Delay>,
}

impl Future for Lost {
    type Output = LossReason;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LossReason> {
        loop {
            self.entry.register(cx.waker());
            let now = Instant::now();
            let deadline = match self.entry.check(now) {
                Ok(reason) => return Poll::Ready(reason),
                Err(deadline) => deadline,
            };
            let left = deadline - now;
            let timer = match &mut self.timer {
                Some(t) => {
                    t.reset(left);
                    t
                }
                none => none.insert(futures_timer::Delay::new(left)),
            };
            match Pin::new(timer).poll(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl fmt::Debug for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lost").field("id", &self.entry.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_is_a_loss_and_a_loss_is_final() {
        let start = Instant::now();
        let entry = LeaseEntry::new("id".into(), start + Duration::from_secs(60));
        assert_eq!(entry.check(start), Err(start + Duration::from_secs(60)));
        entry.extend(start + Duration::from_secs(90));
        assert_eq!(entry.check(start), Err(start + Duration::from_secs(90)));
        // An older refresh's deadline does not move it back.
        entry.extend(start + Duration::from_secs(70));
        assert_eq!(entry.check(start), Err(start + Duration::from_secs(90)));
        assert_eq!(
            entry.check(start + Duration::from_secs(90)),
            Ok(LossReason::Unreachable)
        );
        // Lost stays lost, with its first reason, whatever comes after.
        entry.extend(start + Duration::from_secs(200));
        entry.lose(LossReason::Expired);
        assert_eq!(entry.check(start), Ok(LossReason::Unreachable));
    }
}
