//! Relay mode's address check: an address must show that it receives before it is
//! registered, so a forged source address cannot make the relay send anything large to
//! a victim (QUIC's address validation, RFC 9000 section 8; DNS cookies, RFC 7873).
//!
//! A datagram from an address that is not registered is answered, at most, with one
//! small notice carrying a six-digit code keyed to that address (a keyed hash of the
//! address and the current minute: no state is kept per address), and only when that
//! notice is no more than three times the datagram's size (RFC 9000 section 8.1):
//!
//! ```text
//! 0x00 "to join, send: /verify 123456"      when the datagram had 12 bytes or more
//! 0x00 "/verify 123456"                     when it had 5 to 11
//! nothing                                   below 5 bytes
//! ```
//!
//! The address registers with a datagram whose message is `/verify 123456` (the code of
//! this minute or the last). A wrong code counts against the source IP like a wrong
//! password ([`crate::throttle`]): after five, further tries must wait. Codes are
//! answered at most [`CHALLENGES_PER_SEC`] times a second in all.

use crate::hash::KeyedState;
use crate::rate::TokenBucket;
use crate::throttle::Throttle;
use crate::wire::notice::{Notice, VERIFY_COMMAND};
use rand_core::RngCore;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long a code is good for: the minute it was made in and the next.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Codes the relay answers a second, in all (and at once).
pub const CHALLENGES_PER_SEC: u32 = 128;
/// Wrong codes a source may send before each next try must wait.
pub const FREE_GUESSES: u32 = 5;

/// The relay's verifier: its secret key and its counters.
#[derive(Debug)]
pub(crate) struct Verifier {
    keys: (u64, u64),
    /// The time of the first datagram: windows are counted from it.
    epoch: Option<Instant>,
    challenges: TokenBucket,
    guesses: Throttle<IpAddr>,
}

/// What a `/verify` datagram from an unregistered address came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// The right code: register it.
    Valid,
    /// A wrong code (counted).
    Wrong,
    /// Its source must wait after too many wrong codes; the code was not looked at.
    Throttled,
}

impl Verifier {
    /// A verifier with a key drawn from `rng` (the server's seeded generator).
    pub(crate) fn new(rng: &mut impl RngCore, state: KeyedState) -> Verifier {
        Verifier {
            keys: (rng.next_u64(), rng.next_u64()),
            epoch: None,
            challenges: TokenBucket::new(CHALLENGES_PER_SEC, CHALLENGES_PER_SEC),
            guesses: Throttle::new(FREE_GUESSES, state),
        }
    }

    /// The code for `addr` in `window`.
    fn code_in(&self, addr: SocketAddr, window: u64) -> String {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        match addr.ip() {
            IpAddr::V4(ip) => hasher.write(&ip.octets()),
            IpAddr::V6(ip) => hasher.write(&ip.octets()),
        }
        hasher.write_u16(addr.port());
        hasher.write_u64(window);
        format!("{:06}", hasher.finish() % 1_000_000)
    }

    fn window(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_secs() / WINDOW.as_secs()
    }

    /// The notice to answer an unregistered datagram of `received` bytes with, if one
    /// fits three times its size and the global rate; `None` means send nothing.
    pub(crate) fn challenge(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        received: usize,
    ) -> Option<Notice> {
        let window = self.window(now);
        let code = self.code_in(addr, window);
        let budget = 3 * received;
        let long = Notice::Verify {
            code: code.clone(),
            short: false,
        };
        let short = Notice::Verify { code, short: true };
        let notice = [long, short]
            .into_iter()
            .find(|n| n.body().len() < budget)?; // 0x00 and the body: at most the budget
        self.challenges.try_take(now).then_some(notice)
    }

    /// Checks the code an unregistered `addr` echoed.
    pub(crate) fn check(&mut self, now: Instant, addr: SocketAddr, code: &str) -> Check {
        let source = crate::rooms::canonical_ip(addr.ip());
        if self.guesses.blocked(now, &source) {
            return Check::Throttled;
        }
        let window = self.window(now);
        let valid = [window, window.saturating_sub(1)]
            .iter()
            .any(|w| self.code_in(addr, *w) == code);
        if valid {
            self.guesses.forget(&source);
            Check::Valid
        } else {
            self.guesses.failed(now, &source);
            Check::Wrong
        }
    }

    /// Sources tracked for wrong codes (bounded).
    pub(crate) fn tracked(&self) -> usize {
        self.guesses.len()
    }
}

/// The code of a `/verify CODE` message, if that is what it is.
pub(crate) fn echoed_code(message: &[u8]) -> Option<&str> {
    let code = message.strip_prefix(VERIFY_COMMAND.as_bytes())?;
    let digits = code.len() == 6 && code.iter().all(u8::is_ascii_digit);
    digits.then(|| std::str::from_utf8(code).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn verifier() -> Verifier {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([9; 32]);
        let state = KeyedState::new(&mut rng);
        Verifier::new(&mut rng, state)
    }

    fn code(notice: Notice) -> String {
        match notice {
            Notice::Verify { code, .. } => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_answer_is_never_more_than_three_times_what_came() {
        let t0 = Instant::now();
        let mut v = verifier();
        let addr = "10.0.0.1:4000".parse().unwrap();
        for received in 0..40 {
            if let Some(notice) = v.challenge(t0, addr, received) {
                assert!(
                    notice.body().len() < 3 * received, // 0x00 and the body
                    "{received}: {notice:?}"
                );
            }
        }
        assert_eq!(v.challenge(t0, addr, 4), None, "nothing fits 12 bytes");
        assert!(matches!(
            v.challenge(t0, addr, 5),
            Some(Notice::Verify { short: true, .. })
        ));
        assert!(matches!(
            v.challenge(t0, addr, 12),
            Some(Notice::Verify { short: false, .. })
        ));
    }

    #[test]
    fn a_code_is_the_addresss_own_for_two_minutes() {
        let t0 = Instant::now();
        let mut v = verifier();
        let a = "10.0.0.1:4000".parse().unwrap();
        let b = "10.0.0.1:4001".parse().unwrap();
        let code_a = code(v.challenge(t0, a, 20).unwrap());
        assert_ne!(
            code_a,
            code(v.challenge(t0, b, 20).unwrap()),
            "keyed to the port too"
        );
        assert_eq!(
            v.check(t0 + Duration::from_secs(100), a, &code_a),
            Check::Valid
        );
        assert_eq!(
            v.check(t0 + Duration::from_secs(120), a, &code_a),
            Check::Wrong,
            "expired"
        );
        assert_eq!(echoed_code(b"/verify 012345"), Some("012345"));
        assert_eq!(echoed_code(b"/verify 12345"), None);
        assert_eq!(echoed_code(b"verify 123456"), None);
    }

    #[test]
    fn guessing_codes_from_one_source_must_wait_and_challenges_are_rate_limited() {
        let t0 = Instant::now();
        let mut v = verifier();
        let victim = "10.0.0.9:4000".parse().unwrap();
        let right = code(v.challenge(t0, victim, 20).unwrap());
        let wrong = if right == "000000" {
            "000001"
        } else {
            "000000"
        };
        for _ in 0..FREE_GUESSES {
            assert_eq!(v.check(t0, victim, wrong), Check::Wrong);
        }
        assert_eq!(v.check(t0, victim, &right), Check::Throttled);
        let mut answered = 0;
        for i in 0..1_000 {
            let addr = SocketAddr::new(victim.ip(), 10_000 + i);
            answered += usize::from(v.challenge(t0, addr, 20).is_some());
        }
        assert_eq!(answered, CHALLENGES_PER_SEC as usize - 1);
    }
}
