//! `KeyedLimiter`: each key finds its own limit. A deterministic simulation
//! (no clock, no runtime): two destinations with different capacities, a
//! saturated sender, and each key's limit converging near its own capacity;
//! plus the idle-key bound and the limits held.
#![cfg(feature = "alloc")]

use std::collections::VecDeque;
use std::time::Duration;

use permits::adaptive::{Aimd, Outcome};
use permits::{KeyedLimitPermit, KeyedLimiter, TryAcquireError};

/// A destination that refuses (SMTP `421`) what it gets beyond its
/// capacity, and answers the rest in 10 ms give or take 5 % (simulated, from
/// a fixed seed).
struct Server {
    capacity: usize,
    in_flight: usize,
    seed: u32,
}

impl Server {
    fn new(capacity: usize, seed: u32) -> Self {
        Self {
            capacity,
            in_flight: 0,
            seed,
        }
    }

    fn rtt(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        Duration::from_micros(9_500 + u64::from(self.seed % 1_000))
    }
}

type Pending<'a> = VecDeque<(KeyedLimitPermit<'a, &'static str>, bool)>;

/// One tick: every request sent last tick is answered, then the sender fills
/// each key up to its limit again.
fn tick<'a>(
    limiter: &'a KeyedLimiter<&'static str>,
    servers: &mut [(&'static str, Server)],
    pending: &mut Pending<'a>,
) {
    for (permit, refused) in pending.drain(..) {
        let server = &mut servers
            .iter_mut()
            .find(|(k, _)| k == permit.key())
            .unwrap()
            .1;
        server.in_flight -= 1;
        if refused {
            permit.record(Outcome::Overload, Duration::from_millis(1));
        } else {
            permit.record(Outcome::Success, server.rtt());
        }
    }
    for (key, server) in servers.iter_mut() {
        loop {
            match limiter.try_acquire(*key) {
                Ok(permit) => {
                    server.in_flight += 1;
                    let refused = server.in_flight > server.capacity;
                    pending.push_back((permit, refused));
                }
                Err(TryAcquireError::NoPermits) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn two_keys_with_different_capacities_find_different_limits() {
    let limiter = KeyedLimiter::new(Aimd::new().initial_limit(2).max_limit(200));
    let mut servers = [
        ("big.example", Server::new(40, 1)),
        ("small.example", Server::new(5, 2)),
    ];
    let mut pending = VecDeque::new();
    let ticks = if cfg!(miri) { 20 } else { 600 };
    let (mut big, mut small) = (Vec::new(), Vec::new());
    for _ in 0..ticks {
        tick(&limiter, &mut servers, &mut pending);
        // The limit each key ran at this tick: never above its own limit.
        for (key, server) in &servers {
            assert!(server.in_flight <= limiter.key_limit(key));
        }
        big.push(limiter.key_limit(&"big.example"));
        small.push(limiter.key_limit(&"small.example"));
    }
    let late = ticks / 2;
    let mean = |v: &[usize]| v[late..].iter().sum::<usize>() as f64 / (v.len() - late) as f64;
    let (big_mean, small_mean) = (mean(&big), mean(&small));
    eprintln!("mean limits over the second half: big {big_mean:.1}, small {small_mean:.1}");
    if !cfg!(miri) {
        assert!(
            (35.0..=42.0).contains(&big_mean),
            "big.example: mean limit {big_mean}"
        );
        assert!(
            (4.0..=6.0).contains(&small_mean),
            "small.example: mean limit {small_mean}"
        );
    } else {
        // A shorter run: the big key is still climbing, the small one there.
        assert!(
            big_mean > 2.0 * small_mean,
            "big {big_mean}, small {small_mean}"
        );
    }
    drop(pending);
    // Both keys idle: out of the keyed map, their states kept.
    assert_eq!(limiter.keyed_semaphore().live_keys(), 0);
    assert_eq!(limiter.live_keys(), 2);
    // Back again: it goes on from its learned limit, applied to its new
    // entry in the keyed map before any permit is taken.
    let learned = limiter.key_limit(&"small.example");
    let permits: Vec<_> =
        std::iter::from_fn(|| limiter.try_acquire("small.example").ok()).collect();
    assert_eq!(permits.len(), learned);
}

#[test]
fn at_most_max_idle_keys_are_remembered() {
    let limiter = KeyedLimiter::new(Aimd::new().initial_limit(1)).max_idle_keys(3);
    for key in 0..10u32 {
        let p = limiter.try_acquire(key).unwrap();
        // Refused: its limit stays 1, but it has a decision to remember.
        p.record(Outcome::Overload, Duration::from_millis(1));
        assert!(limiter.live_keys() <= 3);
    }
    assert_eq!(limiter.live_keys(), 3);
    // The three most recent are kept, the older forgotten.
    assert!(limiter.last_decision(&9).is_some());
    assert!(limiter.last_decision(&7).is_some());
    assert!(limiter.last_decision(&6).is_none());
    assert_eq!(limiter.keyed_semaphore().live_keys(), 0);

    let forget_at_once = KeyedLimiter::new(Aimd::new()).max_idle_keys(0);
    drop(forget_at_once.try_acquire("a").unwrap());
    assert_eq!(forget_at_once.live_keys(), 0);
}

#[test]
fn a_shrink_with_permits_out_is_exact_and_a_cancelled_acquire_records_nothing() {
    let limiter = KeyedLimiter::new(Aimd::new().initial_limit(4));
    let held: Vec<_> = (0..4).map(|_| limiter.try_acquire("k").unwrap()).collect();
    assert!(limiter.try_acquire("k").is_err());
    // A waiting acquire, dropped: nothing recorded, nothing lost.
    let waiting = limiter.acquire("k");
    drop(waiting);
    assert_eq!(limiter.in_flight(&"k"), 4);
    let mut held = held.into_iter();
    held.next()
        .unwrap()
        .record(Outcome::Overload, Duration::from_millis(1));
    let limit = limiter.key_limit(&"k");
    assert_eq!(limit, 3);
    // 3 still out at a limit of 3: nothing new starts until one returns.
    assert!(limiter.try_acquire("k").is_err());
    drop(held.next());
    assert!(limiter.try_acquire("k").is_ok());
}

/// The same two destinations fed by one backlog through
/// `KeyedLimiter::run_all`: the stream reports each reply to its key's
/// algorithm, and each key still finds its own limit.
#[test]
fn the_keyed_stream_lets_each_key_find_its_limit() {
    use std::cell::RefCell;
    use std::pin::pin;
    use std::task::{Context, Poll};

    use futures::Stream;

    let limiter = KeyedLimiter::new(Aimd::new().initial_limit(2).max_limit(200));
    let servers = RefCell::new([Server::new(40, 1), Server::new(5, 2)]);
    let valve = tokio::sync::Semaphore::new(0);
    let waiting = std::cell::Cell::new(0usize);
    let keys = ["big.example", "small.example"];
    let n = if cfg!(miri) { 160 } else { 20_000 };
    let work = |i: usize| {
        let (servers, valve, waiting) = (&servers, &valve, &waiting);
        async move {
            let k = i % 2;
            let refused = {
                let server = &mut servers.borrow_mut()[k];
                server.in_flight += 1;
                server.in_flight > server.capacity
            };
            waiting.set(waiting.get() + 1);
            // Answered on the next tick.
            valve.acquire().await.unwrap().forget();
            let server = &mut servers.borrow_mut()[k];
            server.in_flight -= 1;
            if refused {
                (Outcome::Overload, Duration::from_millis(1))
            } else {
                (Outcome::Success, server.rtt())
            }
        }
    };
    let mut stream = pin!(limiter.run_all(0..n, |i| keys[i % 2], work, |reply| *reply));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut big, mut small) = (Vec::new(), Vec::new());
    let mut done = 0;
    loop {
        // Poll until nothing moves; then one tick answers all in flight.
        let mut ended = false;
        for _ in 0..4 {
            while let Poll::Ready(item) = stream.as_mut().poll_next(&mut cx) {
                match item {
                    Some(out) => {
                        out.unwrap();
                        done += 1;
                    }
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if ended {
            break;
        }
        {
            let s = servers.borrow();
            assert!(s[0].in_flight <= limiter.key_limit(&keys[0]));
            assert!(s[1].in_flight <= limiter.key_limit(&keys[1]));
        }
        big.push(limiter.key_limit(&keys[0]));
        small.push(limiter.key_limit(&keys[1]));
        valve.add_permits(waiting.replace(0));
    }
    assert_eq!(done, n);
    // The small key is the bottleneck of an alternating backlog: while it
    // runs at about 5, the big one has the lookahead's items to climb with.
    let late = small.len() / 2;
    let mean = |v: &[usize]| v[late..].iter().sum::<usize>() as f64 / (v.len() - late) as f64;
    let (big_mean, small_mean) = (mean(&big), mean(&small));
    eprintln!(
        "stream: {} ticks, mean limits big {big_mean:.1}, small {small_mean:.1}",
        small.len()
    );
    assert!(
        (4.0..=6.0).contains(&small_mean),
        "small.example: mean limit {small_mean}"
    );
    // Under Miri the run is short: the big key is still climbing.
    let apart = if cfg!(miri) { 1.5 } else { 2.0 };
    assert!(
        big_mean > apart * small_mean,
        "big {big_mean}, small {small_mean}"
    );
    assert_eq!(limiter.keyed_semaphore().live_keys(), 0);
}
