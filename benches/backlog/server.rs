//! A server that answers one request at a time, in an order unrelated to
//! arrival, yielding to the executor between answers: each answer wakes
//! exactly one waiting request (replies from a mail server or a database).
//! Single-threaded (`Rc`), for current-thread executors.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// One request's place in the server.
enum Entry {
    Free,
    Waiting(Waker),
    Answered,
}

#[derive(Default)]
struct State {
    /// Requests, reused once answered and picked up: the server allocates
    /// nothing per request once it has seen the peak in flight.
    entries: Vec<Entry>,
    free: Vec<usize>,
    /// Requests not yet answered, by entry.
    waiting: Vec<usize>,
    /// xorshift state: picks which waiting request is answered next.
    rng: u64,
    answered: u64,
}

/// The server, shared by the requests and the task that answers them.
#[derive(Clone)]
pub struct Server(Rc<RefCell<State>>);

impl Server {
    /// A server for up to `in_flight` requests at once (more work, but
    /// then its own vectors grow, which would be counted as the stream's
    /// allocations).
    pub fn new(in_flight: usize) -> Self {
        Self(Rc::new(RefCell::new(State {
            entries: Vec::with_capacity(in_flight),
            free: Vec::with_capacity(in_flight),
            waiting: Vec::with_capacity(in_flight),
            rng: 0x9E37_79B9_7F4A_7C15,
            answered: 0,
        })))
    }

    /// A request that resolves to `value` once the server answered it.
    pub fn request(&self, value: u64) -> Request {
        Request {
            server: self.clone(),
            entry: None,
            value,
        }
    }

    /// The server's task: answers `total` requests, one per turn.
    pub async fn answer(self, total: u64) {
        loop {
            let waker = {
                let mut s = self.0.borrow_mut();
                if s.answered == total {
                    return;
                }
                if s.waiting.is_empty() {
                    None
                } else {
                    s.rng ^= s.rng << 13;
                    s.rng ^= s.rng >> 7;
                    s.rng ^= s.rng << 17;
                    let pick = (s.rng % s.waiting.len() as u64) as usize;
                    let e = s.waiting.swap_remove(pick);
                    s.answered += 1;
                    match std::mem::replace(&mut s.entries[e], Entry::Answered) {
                        Entry::Waiting(w) => Some(w),
                        _ => unreachable!("a waiting request has a waker"),
                    }
                }
            };
            // Woken outside the borrow: the waker may poll right away.
            if let Some(w) = waker {
                w.wake();
            }
            YieldNow(false).await;
        }
    }
}

/// One request: registers on its first poll, done once answered.
pub struct Request {
    server: Server,
    entry: Option<usize>,
    value: u64,
}

impl Future for Request {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let this = &mut *self;
        let mut s = this.server.0.borrow_mut();
        match this.entry {
            None => {
                let waker = Entry::Waiting(cx.waker().clone());
                let e = match s.free.pop() {
                    Some(e) => {
                        s.entries[e] = waker;
                        e
                    }
                    None => {
                        s.entries.push(waker);
                        s.entries.len() - 1
                    }
                };
                s.waiting.push(e);
                this.entry = Some(e);
                Poll::Pending
            }
            Some(e) => match &mut s.entries[e] {
                Entry::Answered => {
                    s.entries[e] = Entry::Free;
                    s.free.push(e);
                    this.entry = None;
                    Poll::Ready(std::hint::black_box(this.value))
                }
                Entry::Waiting(w) => {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                    Poll::Pending
                }
                Entry::Free => unreachable!("a request in flight has an entry"),
            },
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        assert!(self.entry.is_none(), "every request is answered");
    }
}

/// `Pending` once, waking itself: a turn for the other tasks.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
