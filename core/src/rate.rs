//! Rates: a token bucket driven by the caller's clock, and the rates that the client
//! and the server agree on.
//!
//! The client paces what it sends (a pipe can produce lines far faster than a room
//! should get them) at [`CLIENT_LINES_PER_SEC`] with bursts of [`CLIENT_BURST`]. A
//! server that limits members' messages must allow at least
//! [`MEMBER_RATE_FLOOR`] per second with bursts of [`MEMBER_BURST_FLOOR`], so that a
//! paced ocm client is never cut; the tests below hold the two sides together.

use crate::config::Config;
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

/// A bucket's rate and size: `burst` tokens at most, refilled at `per_sec` a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    per_sec: u32,
    burst: u32,
}

const NANO: u64 = 1_000_000_000;

impl Rate {
    /// `per_sec` and `burst` are at least 1.
    pub fn new(per_sec: u32, burst: u32) -> Rate {
        Rate {
            per_sec: per_sec.max(1),
            burst: burst.max(1),
        }
    }

    /// A full bucket's level, in billionths of a token: at most `burst` × 10⁹ < 2⁶², so
    /// 64 bits hold it, and every sum is capped at that.
    fn full(self) -> u64 {
        u64::from(self.burst) * NANO
    }

    /// What `n` tokens are in billionths (`n` capped at the burst).
    fn cost(self, n: u32) -> u64 {
        u64::from(n.min(self.burst)) * NANO
    }

    /// `level` refilled for `elapsed` nanoseconds, saturating: a wait of centuries fills
    /// any bucket anyway.
    fn refill(self, level: &mut u64, elapsed: u64) {
        let full = self.full();
        if *level < full {
            let added = elapsed.saturating_mul(u64::from(self.per_sec));
            *level = level.saturating_add(added).min(full);
        }
    }
}

/// The nanoseconds since `last` to refill for at `now`, and `last` moved to `now`;
/// `None` when there is nothing to refill: at the first look (a bucket starts full),
/// or when `now` is no later than `last`. Datagrams read in one batch share their time,
/// so only the first refills; time going backwards gives nothing and leaves the latest
/// instant.
fn elapsed(last: &mut Option<Instant>, now: Instant) -> Option<u64> {
    let Some(before) = *last else {
        *last = Some(now);
        return None;
    };
    if now <= before {
        return None;
    }
    *last = Some(now);
    let elapsed = now.duration_since(before);
    let nanos = elapsed.as_secs().saturating_mul(NANO);
    Some(nanos.saturating_add(u64::from(elapsed.subsec_nanos())))
}

/// A token bucket: `burst` tokens at most, refilled at `per_sec` a second.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    /// Tokens, in billionths, so that refills need no floating point (see [`Rate`]).
    nanotokens: u64,
    /// The latest instant the bucket was refilled at (`None`: never, and full).
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `per_sec` and `burst` are at least 1.
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let rate = Rate::new(per_sec, burst);
        TokenBucket {
            rate,
            nanotokens: rate.full(),
            last: None,
        }
    }

    /// The refill rate per second.
    pub fn per_sec(&self) -> u32 {
        self.rate.per_sec
    }

    /// The bucket's size.
    pub fn burst(&self) -> u32 {
        self.rate.burst
    }

    fn refill(&mut self, now: Instant) {
        if let Some(nanos) = elapsed(&mut self.last, now) {
            self.rate.refill(&mut self.nanotokens, nanos);
        }
    }

    /// True if `n` tokens are there at `now` (`n` is capped at the burst, so a cost
    /// larger than the bucket passes once it is full).
    pub fn has(&mut self, now: Instant, n: u32) -> bool {
        self.refill(now);
        self.nanotokens >= self.rate.cost(n)
    }

    /// Takes `n` tokens (capped at the burst) after [`TokenBucket::has`] said yes; never
    /// goes below empty.
    pub fn take(&mut self, n: u32) {
        self.nanotokens = self.nanotokens.saturating_sub(self.rate.cost(n));
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
        let nanos = missing.div_ceil(u64::from(self.rate.per_sec));
        now + Duration::from_nanos(nanos)
    }
}

/// The rates of every member: messages and bytes a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemberLimits {
    messages: Rate,
    bytes: Rate,
}

impl MemberLimits {
    pub(crate) fn new(config: &Config) -> MemberLimits {
        MemberLimits {
            messages: Rate::new(config.member_messages_per_sec, config.member_message_burst),
            bytes: Rate::new(config.member_bytes_per_sec, config.member_byte_burst),
        }
    }
}

/// A member's own buckets, of messages and of bytes, at the rates of
/// [`MemberLimits`] (the server's, not kept here). Both are refilled at once, so they
/// share one instant: two buckets in 32 bytes, not 64, for every member.
#[derive(Clone, Debug)]
pub(crate) struct MemberRates {
    messages: u64,
    bytes: u64,
    last: Option<Instant>,
}

impl MemberRates {
    /// Both buckets full.
    pub(crate) fn new(limits: &MemberLimits) -> MemberRates {
        MemberRates {
            messages: limits.messages.full(),
            bytes: limits.bytes.full(),
            last: None,
        }
    }

    /// True if one message of `bytes` bytes is there at `now`, as
    /// [`TokenBucket::has`] says of each bucket.
    fn has(&mut self, now: Instant, limits: &MemberLimits, bytes: u32) -> bool {
        if let Some(nanos) = elapsed(&mut self.last, now) {
            limits.messages.refill(&mut self.messages, nanos);
            limits.bytes.refill(&mut self.bytes, nanos);
        }
        self.messages >= limits.messages.cost(1) && self.bytes >= limits.bytes.cost(bytes)
    }

    /// Takes one message of `bytes` bytes after [`MemberRates::has`] said yes.
    fn take(&mut self, limits: &MemberLimits, bytes: u32) {
        self.messages = self.messages.saturating_sub(limits.messages.cost(1));
        self.bytes = self.bytes.saturating_sub(limits.bytes.cost(bytes));
    }
}

/// The bucket of all members from one source.
pub(crate) fn source_bucket(config: &Config) -> TokenBucket {
    TokenBucket::new(config.source_messages_per_sec, config.source_message_burst)
}

/// A room's fan-out bucket.
pub(crate) fn room_bucket(config: &Config) -> TokenBucket {
    TokenBucket::new(config.room_fanout_per_sec, config.room_fanout_burst)
}

/// Charges one message of `bytes` bytes that makes `fanout` datagrams to its member's
/// buckets (at `limits`), its source's and its room's: all or nothing. False (nothing
/// charged) when one is short. The same rule for rooms and relay mode.
pub(crate) fn charge_message(
    now: Instant,
    (member, limits): (&mut MemberRates, &MemberLimits),
    source: &mut TokenBucket,
    room: &mut TokenBucket,
    bytes: usize,
    fanout: usize,
) -> bool {
    let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
    let fanout = u32::try_from(fanout).unwrap_or(u32::MAX);
    let enough = member.has(now, limits, bytes) && source.has(now, 1) && room.has(now, fanout);
    if enough {
        member.take(limits, bytes);
        source.take(1);
        room.take(fanout);
    }
    enough
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bucket's rule in 128-bit arithmetic, with no shortcut: the level after a
    /// refill is `min(level + elapsed × rate, burst)`, from the latest instant seen.
    struct Reference {
        per_sec: u128,
        burst: u128,
        level: u128,
        last: Option<Instant>,
    }

    impl Reference {
        fn refill(&mut self, now: Instant) {
            if let Some(last) = self.last {
                let elapsed = now.saturating_duration_since(last).as_nanos();
                self.level = (self.level + elapsed * self.per_sec).min(self.burst * 1_000_000_000);
            }
            self.last = Some(self.last.map_or(now, |last| last.max(now)));
        }

        fn has(&mut self, now: Instant, n: u32) -> bool {
            self.refill(now);
            self.level >= u128::from(n).min(self.burst) * 1_000_000_000
        }

        fn take(&mut self, n: u32) {
            let cost = u128::from(n).min(self.burst) * 1_000_000_000;
            self.level = self.level.saturating_sub(cost);
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Time moves by this many nanoseconds, forwards or back.
        Wait(i64),
        Has(u32),
        HasThenTake(u32),
        TryTake,
        ReadyAt,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            prop_oneof![
                0..2_000_000_000i64,
                Just(0),
                -1_000_000_000..0i64,
                Just(i64::MAX / 4)
            ]
            .prop_map(Step::Wait),
            prop_oneof![1..20u32, any::<u32>()].prop_map(Step::Has),
            prop_oneof![1..20u32, any::<u32>()].prop_map(Step::HasThenTake),
            Just(Step::TryTake),
            Just(Step::ReadyAt),
        ]
    }

    proptest! {
        #[test]
        fn the_64_bit_bucket_keeps_the_128_bit_rule(
            per_sec in prop_oneof![1..100u32, any::<u32>()],
            burst in prop_oneof![1..100u32, any::<u32>()],
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let start = Instant::now() + Duration::from_secs(1 << 20);
            let mut now = start;
            let mut bucket = TokenBucket::new(per_sec, burst);
            // (a bucket's rate and size are at least 1)
            let (rate, size) = (u128::from(per_sec.max(1)), u128::from(burst.max(1)));
            let mut model = Reference {
                per_sec: rate,
                burst: size,
                level: size * 1_000_000_000,
                last: None,
            };
            for step in steps {
                match step {
                    Step::Wait(nanos) if nanos >= 0 => {
                        now = now.checked_add(Duration::from_nanos(nanos as u64)).unwrap_or(now);
                    }
                    Step::Wait(back) => {
                        now = now.checked_sub(Duration::from_nanos(back.unsigned_abs())).unwrap_or(now);
                    }
                    Step::Has(n) => prop_assert_eq!(bucket.has(now, n), model.has(now, n)),
                    Step::HasThenTake(n) => {
                        let yes = bucket.has(now, n);
                        prop_assert_eq!(yes, model.has(now, n));
                        if yes {
                            bucket.take(n);
                            model.take(n);
                        }
                    }
                    Step::TryTake => {
                        let yes = model.has(now, 1);
                        if yes {
                            model.take(1);
                        }
                        prop_assert_eq!(bucket.try_take(now), yes);
                    }
                    Step::ReadyAt => {
                        let at = bucket.ready_at(now);
                        model.refill(now);
                        let missing = (1_000_000_000u128).saturating_sub(model.level);
                        let nanos = missing.div_ceil(model.per_sec);
                        prop_assert_eq!(at, now + Duration::from_nanos(nanos as u64));
                    }
                }
                prop_assert_eq!(u128::from(bucket.nanotokens), model.level);
            }
        }
    }

    proptest! {
        /// A member's two buckets with one instant answer as two buckets of their own:
        /// one message of so many bytes at a time, all or nothing.
        #[test]
        fn member_rates_are_two_token_buckets(
            rates in proptest::collection::vec(prop_oneof![1..100u32, any::<u32>()], 4),
            steps in proptest::collection::vec(
                (prop_oneof![0..50_000_000i64, Just(0), -1_000_000..0i64], 0..3000u32),
                1..60,
            ),
        ) {
            let config = Config {
                member_messages_per_sec: rates[0],
                member_message_burst: rates[1],
                member_bytes_per_sec: rates[2],
                member_byte_burst: rates[3],
                ..Config::default()
            };
            let limits = MemberLimits::new(&config);
            let mut member = MemberRates::new(&limits);
            let mut messages = TokenBucket::new(rates[0], rates[1]);
            let mut bytes = TokenBucket::new(rates[2], rates[3]);
            let mut now = Instant::now() + Duration::from_secs(1 << 20);
            for (wait, size) in steps {
                now = match wait >= 0 {
                    true => now + Duration::from_nanos(wait as u64),
                    false => now - Duration::from_nanos(wait.unsigned_abs()),
                };
                let two = messages.has(now, 1) && bytes.has(now, size);
                if two {
                    messages.take(1);
                    bytes.take(size);
                }
                let one = member.has(now, &limits, size);
                if one {
                    member.take(&limits, size);
                }
                prop_assert_eq!(one, two);
                // (a bucket the `&&` did not reach refills late, to the same level)
                bytes.has(now, 0);
                prop_assert_eq!(member.messages, messages.nanotokens);
                prop_assert_eq!(member.bytes, bytes.nanotokens);
            }
        }
    }

    #[test]
    fn a_members_two_buckets_take_the_32_bytes_the_docs_say() {
        // docs/BENCHMARKS.md's memory figures count them as two counters and one instant
        assert_eq!(std::mem::size_of::<MemberRates>(), 32);
    }

    #[test]
    fn the_largest_bucket_fits_its_64_bits_after_any_wait() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(u32::MAX, u32::MAX);
        assert!(bucket.has(start, u32::MAX));
        bucket.take(u32::MAX);
        assert!(!bucket.try_take(start));
        // a century of refill at the highest rate is capped at the burst
        let later = start + Duration::from_secs(100 * 365 * 24 * 3600);
        assert!(bucket.has(later, u32::MAX));
        bucket.take(u32::MAX - 1);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
        assert_eq!(bucket.ready_at(later), later + Duration::from_nanos(1));
    }

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
    fn costs_of_many_tokens_are_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 100);
        assert!(bucket.has(t0, 60));
        bucket.take(60);
        assert!(!bucket.has(t0, 60), "40 left");
        assert!(bucket.has(t0 + Duration::from_secs(2), 60));
        // more than the bucket holds: passes when full, then empties it
        let full = t0 + Duration::from_secs(100);
        assert!(bucket.has(full, 5_000));
        bucket.take(5_000);
        assert!(!bucket.has(full, 1));
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
