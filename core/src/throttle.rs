//! Password guessing, slowed down: wrong passwords are counted per source and per room,
//! and past a few free attempts each one makes that source (or that room) wait longer
//! before its next try: 1 s, 2 s, 4 s, ... at most [`MAX_BACKOFF`]. A join during the
//! wait is answered TRY_LATER (8) without looking at its password, so waiting is the
//! only way to learn anything. Failures are forgotten [`FORGET_AFTER`] after the last.
//!
//! The tables are bounded ([`MAX_ENTRIES`] each): when one is full even after
//! forgetting old entries, a new source or room is made to wait as if it had failed, so
//! an attacker with many addresses cannot grow memory, only slow password joins down.

use crate::hash::{keyed_map, KeyedMap, KeyedState};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Failures older than this are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most sources (or rooms) a table tracks.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Wrong-password counts for one kind of key (sources, or rooms).
#[derive(Debug)]
pub(crate) struct Throttle<K> {
    free: u32,
    entries: KeyedMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// A table that lets `free` wrong passwords through before any wait, its hash keyed
    /// by `state` (from the server's seed).
    pub(crate) fn new(free: u32, state: KeyedState) -> Throttle<K> {
        Throttle {
            free,
            entries: keyed_map(state),
        }
    }

    /// True while `key` must wait at `now`.
    pub(crate) fn blocked(&self, now: Instant, key: &K) -> bool {
        match self.entries.get(key) {
            Some(f) => now < f.last + self.backoff(f.count),
            None => self.entries.len() >= MAX_ENTRIES,
        }
    }

    /// A wrong password from (or for) `key` at `now`.
    pub(crate) fn failed(&mut self, now: Instant, key: &K) {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, f| now < f.last + FORGET_AFTER);
            if self.entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        let entry = self.entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now >= entry.last + FORGET_AFTER {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
    }

    /// `key` got in: its failures are forgotten.
    pub(crate) fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Keys tracked.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The wait after `count` failures: none for the free ones, then doubling.
    fn backoff(&self, count: u32) -> Duration {
        if count < self.free {
            return Duration::ZERO;
        }
        match count - self.free {
            n @ 0..6 => Duration::from_secs(1 << n).min(MAX_BACKOFF),
            _ => MAX_BACKOFF,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn state() -> KeyedState {
        KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed([3; 32]))
    }

    #[test]
    fn free_attempts_then_doubling_waits_then_forgotten() {
        let t0 = Instant::now();
        let mut t = Throttle::new(3, state());
        let key = 7u32;
        for _ in 0..2 {
            t.failed(t0, &key);
            assert!(!t.blocked(t0, &key));
        }
        t.failed(t0, &key); // the third: one second
        assert!(t.blocked(t0, &key));
        assert!(!t.blocked(t0 + Duration::from_secs(1), &key));
        t.failed(t0 + Duration::from_secs(1), &key); // the fourth: two seconds
        assert!(t.blocked(t0 + Duration::from_millis(2999), &key));
        assert!(!t.blocked(t0 + Duration::from_secs(3), &key));
        for i in 0..20 {
            t.failed(t0 + Duration::from_secs(4 + i), &key);
        }
        let last = t0 + Duration::from_secs(23);
        assert!(t.blocked(last + MAX_BACKOFF - Duration::from_millis(1), &key));
        assert!(
            !t.blocked(last + MAX_BACKOFF, &key),
            "never more than a minute"
        );
        // long quiet: forgotten, free attempts again
        let later = last + FORGET_AFTER;
        t.failed(later, &key);
        assert!(!t.blocked(later, &key));
        t.forget(&key);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_full_table_forgets_old_entries_and_never_grows_past_its_bound() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1, state());
        for key in 0..MAX_ENTRIES as u32 {
            t.failed(t0, &key);
        }
        assert!(
            t.blocked(t0, &u32::MAX),
            "a newcomer waits while the table is full"
        );
        t.failed(t0, &u32::MAX);
        assert_eq!(t.len(), MAX_ENTRIES);
        let later = t0 + FORGET_AFTER;
        t.failed(later, &u32::MAX);
        assert_eq!(t.len(), 1, "the old entries were forgotten to make room");
    }
}
