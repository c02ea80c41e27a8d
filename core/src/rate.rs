//! Rates: a token bucket driven by the caller's clock, and the rates that the client
//! and the server agree on.
//!
//! The client paces what it sends (a pipe can produce lines far faster than a room
//! should get them) at [`CLIENT_LINES_PER_SEC`] with bursts of [`CLIENT_BURST`]. A
//! server that limits members' messages must allow at least
//! [`MEMBER_RATE_FLOOR`] per second with bursts of [`MEMBER_BURST_FLOOR`], so that a
//! paced ocm client is never cut; the tests below hold the two sides together.

use std::time::{Duration, Instant};

/// Lines per second an ocm client sends at most, by default.
pub const CLIENT_LINES_PER_SEC: u32 = 100;
/// Lines an ocm client may send at once before the pace applies, by default.
pub const CLIENT_BURST: u32 = 100;
/// The least per-member message rate (per second) a server limit may have.
pub const MEMBER_RATE_FLOOR: u32 = 200;
/// The least per-member burst a server limit may have.
pub const MEMBER_BURST_FLOOR: u32 = 400;

// The build fails if the client's default pace rises to what a server may cut.
const _: () = assert!(CLIENT_LINES_PER_SEC < MEMBER_RATE_FLOOR);
const _: () = assert!(CLIENT_BURST <= MEMBER_BURST_FLOOR);

/// A token bucket: `burst` tokens at most, refilled at `per_sec` a second.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_sec: u32,
    burst: u32,
    /// Tokens, in billionths, so that refills need no floating point.
    nanotokens: u128,
    last: Option<Instant>,
}

const NANO: u128 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket. `per_sec` and `burst` are at least 1.
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let (per_sec, burst) = (per_sec.max(1), burst.max(1));
        TokenBucket {
            per_sec,
            burst,
            nanotokens: u128::from(burst) * NANO,
            last: None,
        }
    }

    /// The refill rate per second.
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// The bucket's size.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            let full = u128::from(self.burst) * NANO;
            self.nanotokens = (self.nanotokens + elapsed * u128::from(self.per_sec)).min(full);
        }
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.nanotokens >= NANO {
            self.nanotokens -= NANO;
            true
        } else {
            false
        }
    }

    /// When the next token is there (`now` if it already is).
    pub fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.nanotokens >= NANO {
            return now;
        }
        let missing = NANO - self.nanotokens;
        let per_sec = u128::from(self.per_sec);
        let nanos = missing.div_ceil(per_sec);
        now + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_pace_stays_below_what_a_server_must_allow() {
        // A paced client, run for ten simulated seconds against a bucket at the
        // floor, is never refused.
        let t0 = Instant::now();
        let mut client = TokenBucket::new(CLIENT_LINES_PER_SEC, CLIENT_BURST);
        let mut server = TokenBucket::new(MEMBER_RATE_FLOOR, MEMBER_BURST_FLOOR);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + Duration::from_secs(10) {
            now = client.ready_at(now);
            assert!(client.try_take(now));
            assert!(server.try_take(now), "line {sent} refused");
            sent += 1;
        }
        assert!(sent >= 10 * CLIENT_LINES_PER_SEC, "{sent}");
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        for _ in 0..3 {
            assert!(bucket.try_take(t0));
        }
        assert!(!bucket.try_take(t0));
        assert_eq!(bucket.ready_at(t0), t0 + Duration::from_millis(100));
        assert!(!bucket.try_take(t0 + Duration::from_millis(99)));
        assert!(bucket.try_take(t0 + Duration::from_millis(100)));
        // A long pause fills it to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.try_take(later));
        }
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn time_going_backwards_gives_no_tokens() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut bucket = TokenBucket::new(1, 1);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 - Duration::from_secs(5)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(500)));
        assert!(bucket.try_take(t0 + Duration::from_secs(1)));
    }
}
