//! Whether a member (or a relay client) is still there, the same rule in both servers:
//! a valid datagram from it refreshes its last-seen time and clears its failed sends;
//! it is evicted when silent for the idle timeout, or after `max_send_failures` failed
//! sends in a row.
//!
//! The idle check is lazy (see [`crate::timers`]): a datagram moves the deadline without
//! touching the timer queue; when the old entry comes due, [`Liveness::idle_check`]
//! says whether to evict or when to look again.

use std::time::{Duration, Instant};

/// When it was last heard from, and its failed sends in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Liveness {
    last_seen: Instant,
    failures: u32,
}

impl Liveness {
    /// Heard from at `now`, with no failures.
    pub(crate) fn new(now: Instant) -> Liveness {
        Liveness {
            last_seen: now,
            failures: 0,
        }
    }

    /// A valid datagram came from it at `now`.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_seen = now;
        self.failures = 0;
    }

    /// A send to it failed; true when that makes `max` in a row (evict it).
    pub(crate) fn send_failed(&mut self, max: u32) -> bool {
        self.failures += 1;
        self.failures >= max
    }

    /// Failed sends in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Its idle timer came due at `now`: `None` if it has been silent for `idle` (evict
    /// it), else the deadline to look again at.
    pub(crate) fn idle_check(&self, now: Instant, idle: Duration) -> Option<Instant> {
        let due = self.last_seen + idle;
        (due > now).then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_moves_the_idle_deadline_and_clears_failures() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(10);
        let mut live = Liveness::new(t0);
        assert!(!live.send_failed(3));
        assert!(!live.send_failed(3));
        live.heard(t0 + Duration::from_secs(4));
        assert_eq!(live.failures(), 0);
        assert_eq!(
            live.idle_check(t0 + idle, idle),
            Some(t0 + Duration::from_secs(14))
        );
        assert_eq!(live.idle_check(t0 + Duration::from_secs(14), idle), None);
    }

    #[test]
    fn the_max_th_failure_in_a_row_evicts() {
        let mut live = Liveness::new(Instant::now());
        assert_eq!(
            [
                live.send_failed(3),
                live.send_failed(3),
                live.send_failed(3)
            ],
            [false, false, true]
        );
    }
}
