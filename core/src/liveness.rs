//! Whether a member (or a relay client) is still there, the same rule in both servers:
//! a valid datagram from it refreshes its last-seen time and clears its failed sends;
//! it is evicted when silent for the idle timeout, or after `max_send_failures` failed
//! sends in a row. An ICMP error is a hint anyone can forge, so it counts as a failed
//! send only against a member silent for `icmp_grace`: ICMP alone never evicts a member
//! that is still sending valid datagrams.
//!
//! The idle check is lazy (see [`crate::timers`]): a datagram moves the deadline without
//! touching the timer queue; when the old entry comes due, [`Liveness::idle_check`]
//! says whether to evict or when to look again.

use crate::config::Config;
use crate::input::SendFailure;
use std::time::{Duration, Instant};

/// What a failed send did to a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Counted, and not yet `max_send_failures` in a row.
    Counted,
    /// Counted, and that makes `max_send_failures` in a row: evict it.
    Evict,
    /// An ICMP error for a member heard from within `icmp_grace`: ignored.
    Ignored,
}

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

    /// A send to it failed at `now`, as the shell learnt by `cause`.
    pub(crate) fn send_failed(
        &mut self,
        now: Instant,
        cause: SendFailure,
        config: &Config,
    ) -> Failed {
        let silent = now.saturating_duration_since(self.last_seen);
        if cause == SendFailure::Icmp && silent < config.icmp_grace {
            return Failed::Ignored;
        }
        self.failures += 1;
        if self.failures >= config.max_send_failures {
            Failed::Evict
        } else {
            Failed::Counted
        }
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

    fn config() -> Config {
        Config {
            max_send_failures: 3,
            icmp_grace: Duration::from_secs(30),
            ..Config::default()
        }
    }

    #[test]
    fn a_datagram_moves_the_idle_deadline_and_clears_failures() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(10);
        let mut live = Liveness::new(t0);
        let refused = SendFailure::Refused;
        assert_eq!(live.send_failed(t0, refused, &config()), Failed::Counted);
        assert_eq!(live.send_failed(t0, refused, &config()), Failed::Counted);
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
        let now = Instant::now();
        let mut live = Liveness::new(now);
        let mut fail = || live.send_failed(now, SendFailure::Refused, &config());
        assert_eq!(
            [fail(), fail(), fail()],
            [Failed::Counted, Failed::Counted, Failed::Evict]
        );
    }

    #[test]
    fn icmp_counts_only_against_a_silent_member() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0);
        let icmp = SendFailure::Icmp;
        let talking = t0 + Duration::from_secs(29);
        for _ in 0..10 {
            assert_eq!(live.send_failed(talking, icmp, &config()), Failed::Ignored);
        }
        assert_eq!(live.failures(), 0, "a forged ICMP flood changes nothing");
        let silent = t0 + Duration::from_secs(30);
        assert_eq!(live.send_failed(silent, icmp, &config()), Failed::Counted);
        live.heard(silent);
        assert_eq!(live.send_failed(silent, icmp, &config()), Failed::Ignored);
        let trusting = Config {
            icmp_grace: Duration::ZERO,
            ..config()
        };
        assert_eq!(live.send_failed(silent, icmp, &trusting), Failed::Counted);
    }
}
