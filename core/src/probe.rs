//! Liveness probes: how a client learns that its membership is gone although nobody told it
//! (the server restarted, the eviction notice was lost, the server is unreachable).
//!
//! An ocm extension, invisible to clients written from the specification alone: a
//! *probe* is a datagram no such client sends and that a server written from the
//! specification drops without answering.
//!
//! - rooms: `RoomNameSize = 0 | TokenSize | token | "ping"` (no room has an empty
//!   name, so the specification's server drops it as "no such room");
//! - relay: `usernamelen = 0 | "ping"` (the notice slot, which clients never send).
//!
//! An ocm server answers a probe to its sender only: `alive: N members` to a member (in
//! rooms: token known, and the source IP is the token's IP, the same check as for a
//! message; in relay mode: a registered address), which also counts as the member's
//! keepalive; `not a member` to anyone else, but only when the answer is no larger
//! than the probe and within a global rate ([`UNVERIFIED_ANSWERS_PER_SEC`]), so a
//! forged source address gains an attacker nothing. Details: docs/PROTOCOL.md.
//!
//! The client side is [`Monitor`]: a probe every interval K; without an answer, a
//! second probe at 1.5 K; without an answer to either, the membership counts as lost
//! at 2 K after the last probe that was answered. A server that never answers even the
//! first probes (one that does not have the extension) is left alone: the client falls
//! back to plain keepalives.

use std::time::{Duration, Instant};

/// The message of a probe.
pub const PROBE: &[u8] = b"ping";
/// Answers to probes from sources that are not members, per second, for the whole
/// server (and the bucket's size).
pub const UNVERIFIED_ANSWERS_PER_SEC: u32 = 64;

/// The token of a rooms probe (`RoomNameSize = 0`, message `ping`), if `data` is one.
pub fn room_probe_token(data: &[u8]) -> Option<&[u8]> {
    let datagram = crate::wire::room_datagram::RoomDatagram::decode(data).ok()?;
    (datagram.room.is_empty() && datagram.message == PROBE).then_some(datagram.token)
}

/// True when `data` is a relay probe (`usernamelen = 0`, `ping`).
pub fn is_relay_probe(data: &[u8]) -> bool {
    data.split_first() == Some((&0, PROBE))
}

/// True when an answer of `answer_len` bytes may go to an unverified source that sent
/// `request_len` bytes: never more than it sent.
pub fn may_answer_unverified(request_len: usize, answer_len: usize) -> bool {
    answer_len <= request_len
}

/// Why the client holds its membership for lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Two probes in a row went unanswered (server gone or unreachable).
    NoAnswer,
    /// The server answered `not a member` (restarted, or the token was evicted).
    NotMember,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lost::NoAnswer => "the server stopped answering",
            Lost::NotMember => "the server no longer knows this member (restarted?)",
        })
    }
}

/// What the monitor asks for at a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet.
    Wait,
    /// Send a probe now.
    Probe,
    /// The membership is lost.
    Lost(Lost),
    /// The server never answered a probe: it does not have the extension; stop.
    Unsupported,
}

/// The client's probe schedule.
#[derive(Clone, Debug)]
pub struct Monitor {
    interval: Duration,
    /// Send time of the last probe that was answered (at first: the start).
    proof: Instant,
    /// Send time of the latest probe.
    probed: Instant,
    /// Probes sent since `proof`: 0, 1 (regular) or 2 (retry).
    pending: u8,
    answered_once: bool,
}

impl Monitor {
    /// A monitor whose first probe the caller sends at `now`.
    pub fn new(now: Instant, interval: Duration) -> Monitor {
        Monitor {
            interval,
            proof: now,
            probed: now,
            pending: 0,
            answered_once: false,
        }
    }

    /// The probe interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// True once a probe was answered: the server has the extension.
    pub fn is_confirmed(&self) -> bool {
        self.answered_once
    }

    /// When [`Monitor::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Instant {
        let k = self.interval;
        match self.pending {
            0 => self.proof + k,
            1 => self.proof + k + k / 2,
            _ => self.proof + 2 * k,
        }
    }

    /// The timer fired.
    pub fn handle_timeout(&mut self, now: Instant) -> Step {
        if now < self.poll_timeout() {
            return Step::Wait;
        }
        if self.pending < 2 {
            self.pending += 1;
            self.probed = now;
            return Step::Probe;
        }
        if self.answered_once {
            Step::Lost(Lost::NoAnswer)
        } else {
            Step::Unsupported
        }
    }

    /// An `alive` answer arrived: the latest probe's send time is the new proof.
    pub fn answered(&mut self) {
        self.proof = self.probed;
        self.pending = 0;
        self.answered_once = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: Duration = Duration::from_secs(10);

    #[test]
    fn answered_probes_keep_the_schedule_at_one_interval() {
        let t0 = Instant::now();
        let mut monitor = Monitor::new(t0, K);
        monitor.answered();
        assert_eq!(monitor.poll_timeout(), t0 + K);
        assert_eq!(
            monitor.handle_timeout(t0 + K - Duration::from_millis(1)),
            Step::Wait
        );
        assert_eq!(monitor.handle_timeout(t0 + K), Step::Probe);
        monitor.answered();
        assert_eq!(monitor.poll_timeout(), t0 + 2 * K);
    }

    #[test]
    fn silence_is_lost_within_two_intervals_of_the_last_answer() {
        let t0 = Instant::now();
        let mut monitor = Monitor::new(t0, K);
        monitor.answered();
        // The server dies right after answering the probe sent at t0.
        let mut now;
        let mut steps = Vec::new();
        loop {
            now = monitor.poll_timeout();
            let step = monitor.handle_timeout(now);
            steps.push(step);
            if step != Step::Probe {
                break;
            }
        }
        assert_eq!(
            steps,
            [Step::Probe, Step::Probe, Step::Lost(Lost::NoAnswer)]
        );
        assert!(now - t0 <= 2 * K, "lost after {:?}", now - t0);
    }

    #[test]
    fn one_lost_answer_is_forgiven() {
        let t0 = Instant::now();
        let mut monitor = Monitor::new(t0, K);
        monitor.answered();
        assert_eq!(monitor.handle_timeout(t0 + K), Step::Probe);
        let retry = monitor.poll_timeout();
        assert_eq!(retry, t0 + K + K / 2);
        assert_eq!(monitor.handle_timeout(retry), Step::Probe);
        monitor.answered();
        assert_eq!(monitor.poll_timeout(), retry + K);
    }

    #[test]
    fn a_server_that_never_answers_has_no_extension() {
        let t0 = Instant::now();
        let mut monitor = Monitor::new(t0, K);
        assert_eq!(monitor.handle_timeout(t0 + K), Step::Probe);
        assert_eq!(monitor.handle_timeout(t0 + K + K / 2), Step::Probe);
        assert_eq!(monitor.handle_timeout(t0 + 2 * K), Step::Unsupported);
        assert!(!monitor.is_confirmed());
    }

    #[test]
    fn probes_are_recognized_by_their_exact_form() {
        assert_eq!(room_probe_token(b"\x00\x03tokping"), Some(&b"tok"[..]));
        assert_eq!(room_probe_token(b"\x00\x03tokpong"), None);
        assert_eq!(
            room_probe_token(b"\x01\x03rtokping"),
            None,
            "a room name: a message"
        );
        assert!(is_relay_probe(b"\x00ping"));
        assert!(!is_relay_probe(b"\x00ping!"));
        assert!(!is_relay_probe(b"\x04ping"));
    }

    #[test]
    fn unverified_answers_never_amplify() {
        assert!(may_answer_unverified(38, 14));
        assert!(may_answer_unverified(14, 14));
        assert!(!may_answer_unverified(7, 14));
    }
}
