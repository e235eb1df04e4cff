//! Work in flight per key and in total, for the keyed tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::InFlight;

/// Work in flight per key and in total, with the maxima seen.
#[derive(Default)]
pub struct Tracker {
    per_key: Mutex<HashMap<u32, (usize, usize)>>,
    pub total: InFlight,
    started: Mutex<Vec<u32>>,
}

impl Tracker {
    pub fn enter(&self, key: u32) {
        let mut map = self.per_key.lock().unwrap();
        let (now, max) = map.entry(key).or_default();
        *now += 1;
        *max = (*max).max(*now);
        drop(map);
        self.total.enter(1);
        self.started.lock().unwrap().push(key);
    }
    pub fn exit(&self, key: u32) {
        self.total.exit(1);
        self.per_key.lock().unwrap().get_mut(&key).unwrap().0 -= 1;
    }
    pub fn now(&self, key: u32) -> usize {
        self.per_key.lock().unwrap().get(&key).map_or(0, |e| e.0)
    }
    pub fn started(&self) -> Vec<u32> {
        self.started.lock().unwrap().clone()
    }
    /// Asserts every key's maximum is at most its limit and the total's at
    /// most `global`; returns the largest per-key maximum.
    #[track_caller]
    pub fn check(&self, limit_of: impl Fn(u32) -> usize, global: usize) -> usize {
        let map = self.per_key.lock().unwrap();
        let mut top = 0;
        for (&key, &(now, max)) in map.iter() {
            assert_eq!(now, 0, "key {key} still in flight");
            assert!(
                max <= limit_of(key),
                "key {key}: {max} in flight, limit {}",
                limit_of(key)
            );
            top = top.max(max);
        }
        assert!(
            self.total.max() <= global,
            "{} in flight in total, limit {global}",
            self.total.max()
        );
        top
    }
}

/// Counts one unit of work in a [`Tracker`] until dropped.
pub struct Entered<'a>(&'a Tracker, u32);

impl<'a> Entered<'a> {
    pub fn new(tracker: &'a Tracker, key: u32) -> Self {
        tracker.enter(key);
        Self(tracker, key)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.exit(self.1);
    }
}
