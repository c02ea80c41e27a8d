//! The model's own reading of the rate rules of docs/PROTOCOL.md ("Rates"): a bucket
//! of `burst` units refilled at `per_sec` a second, counted in billionths; a cost is
//! capped at the burst; a message takes from its member's message and byte buckets,
//! its IP's and its room's (the datagrams it makes) all at once, or from none.

use std::time::Duration;

const ONE: u128 = 1_000_000_000;

/// One bucket.
#[derive(Clone, Debug)]
pub(crate) struct Allowance {
    per_sec: u32,
    burst: u32,
    left: u128,
    at: Option<Duration>,
}

impl Allowance {
    /// A full bucket.
    pub(crate) fn new(per_sec: u32, burst: u32) -> Allowance {
        let (per_sec, burst) = (per_sec.max(1), burst.max(1));
        Allowance {
            per_sec,
            burst,
            left: u128::from(burst) * ONE,
            at: None,
        }
    }

    fn refill(&mut self, now: Duration) {
        if let Some(at) = self.at {
            let earned = now.saturating_sub(at).as_nanos() * u128::from(self.per_sec);
            self.left = (self.left + earned).min(u128::from(self.burst) * ONE);
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    fn cost(&self, n: usize) -> u128 {
        u128::from(u32::try_from(n).unwrap_or(u32::MAX).min(self.burst)) * ONE
    }

    /// True if `n` units are there at `now`.
    pub(crate) fn has(&mut self, now: Duration, n: usize) -> bool {
        self.refill(now);
        self.left >= self.cost(n)
    }

    /// Takes `n` units after `has` said yes.
    pub(crate) fn take(&mut self, n: usize) {
        self.left = self.left.saturating_sub(self.cost(n));
    }
}
