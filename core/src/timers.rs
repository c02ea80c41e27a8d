//! A queue of deadlines, kept as data: the server asks it for the earliest one and for
//! the keys whose time has come.
//!
//! Entries are lazy. When a deadline moves later (a member spoke again), nothing is
//! updated here; when the old entry comes due, the owner looks at the real deadline
//! and either fires or calls [`TimerQueue::schedule`] again. So a datagram costs no
//! timer work at all. Entries of objects that are gone are skipped by the owner and
//! swept by [`TimerQueue::compact`] so the queue never outgrows what is alive.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Most entries a queue may hold for `live` objects after a sweep: two each (one due,
/// one stale from a deadline that moved) and a constant slack, so sweeps stay rare.
pub const fn max_entries(live: usize) -> usize {
    2 * live + 64
}

/// Deadlines with keys, earliest first; ties break by key, so the order is deterministic.
#[derive(Debug)]
pub struct TimerQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> TimerQueue<K> {
    /// Adds a deadline for `key`.
    pub fn schedule(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest deadline, which may belong to an entry that turns out stale.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Keeps only the entries whose key `live` says still exists.
    pub fn compact(&mut self, mut live: impl FnMut(&K) -> bool) {
        self.heap.retain(|Reverse((_, key))| live(key));
    }

    /// Compacts when the queue holds more than [`max_entries`] for `live_count` objects,
    /// so stale entries never outgrow what is alive; call it after firing timers.
    pub fn sweep(&mut self, live_count: usize, live: impl FnMut(&K) -> bool) {
        if self.heap.len() > max_entries(live_count) {
            self.compact(live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(t0 + Duration::from_secs(5), 2u32);
        q.schedule(t0 + Duration::from_secs(1), 1u32);
        q.schedule(t0 + Duration::from_secs(1), 0u32);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        let now = t0 + Duration::from_secs(2);
        assert_eq!(q.pop_due(now).map(|e| e.1), Some(0));
        assert_eq!(q.pop_due(now).map(|e| e.1), Some(1));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.len(), 1);
        q.compact(|k| *k != 2);
        assert!(q.is_empty());
    }

    #[test]
    fn a_sweep_compacts_only_above_the_bound() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        for key in 0..max_entries(1) as u32 {
            q.schedule(t0, key);
        }
        q.sweep(1, |k| *k == 0);
        assert_eq!(q.len(), max_entries(1), "at the bound: left alone");
        q.schedule(t0, 999);
        q.sweep(1, |k| *k == 0);
        assert_eq!(q.len(), 1, "above it: only the live entry is kept");
    }
}
