//! Logs of what the core reports: info for rooms, joins, leaves and evictions; debug for
//! handshakes, refused connections and dropped datagrams (with their reasons).
//!
//! Everything a peer can cause at will goes through a [`LogLimiter`]: dropped datagrams,
//! refused, shed or timed-out connections, refused handshakes, wrong passwords, and the
//! info lines of joins, leaves, evictions and rooms (a spoofed relay registration or a
//! create-and-leave loop makes those at will too): at most [`LINES_PER_SECOND`] lines a
//! second for each kind, then one line saying how many were left out. A flood cannot
//! flood the log.
//!
//! ```text
//! let mut log = EventLog::default();
//! log.log(now, &event);                  // for every Output::Event
//! if log.flush_due() <= Some(now) { log.flush(now) }   // or just call flush: early does nothing
//! ```

use ocm_core::{Event, Status};
use std::time::{Duration, Instant};

/// Most lines a [`LogLimiter`] lets through per [`WINDOW`].
pub const LINES_PER_SECOND: u32 = 20;

/// The window a [`LogLimiter`] counts lines in.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Lets at most `limit` lines through per `WINDOW` and counts the rest. Time is
/// passed in; the limiter never reads a clock.
#[derive(Debug)]
pub struct LogLimiter {
    limit: u32,
    window_start: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter letting `limit` lines through each second.
    pub fn new(limit: u32) -> LogLimiter {
        LogLimiter {
            limit,
            window_start: None,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be written at `now`; if not, it is counted as suppressed. When a
    /// new window starts, returns first the count suppressed in the last one (see
    /// [`LogLimiter::flush`]), which the caller reports.
    pub fn admit(&mut self, now: Instant) -> (bool, Option<u64>) {
        let flushed = self.flush(now);
        self.window_start.get_or_insert(now);
        if self.printed < self.limit {
            self.printed += 1;
            (true, flushed)
        } else {
            self.suppressed += 1;
            (false, flushed)
        }
    }

    /// Ends the window if it is over at `now`: returns how many lines it suppressed (if
    /// any) and starts afresh. An early call does nothing.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        let start = self.window_start?;
        if now < start + WINDOW {
            return None;
        }
        self.window_start = None;
        self.printed = 0;
        Some(std::mem::take(&mut self.suppressed)).filter(|n| *n > 0)
    }

    /// When [`LogLimiter::flush`] has something to report: the end of a window in which
    /// lines were suppressed.
    pub fn flush_due(&self) -> Option<Instant> {
        match (self.window_start, self.suppressed) {
            (Some(start), 1..) => Some(start + WINDOW),
            _ => None,
        }
    }
}

/// The event logger of a server: plain lines for what is bounded by the server's limits,
/// rate-limited lines for what a peer can cause at will.
#[derive(Debug)]
pub struct EventLog {
    udp: LogLimiter,
    tcp: LogLimiter,
    passwords: LogLimiter,
    members: LogLimiter,
}

impl Default for EventLog {
    fn default() -> EventLog {
        EventLog {
            udp: LogLimiter::new(LINES_PER_SECOND),
            tcp: LogLimiter::new(LINES_PER_SECOND),
            passwords: LogLimiter::new(LINES_PER_SECOND),
            members: LogLimiter::new(LINES_PER_SECOND),
        }
    }
}

impl EventLog {
    /// Writes one core event to the log, at `now`.
    pub fn log(&mut self, now: Instant, event: &Event) {
        match event {
            Event::DatagramDropped { from, reason } => {
                if limited(&mut self.udp, now, "datagram dropped") {
                    tracing::debug!(%from, %reason, "datagram dropped");
                }
            }
            Event::ConnectionRefused { peer } => {
                if limited(&mut self.tcp, now, "connection") {
                    tracing::debug!(%peer, "connection refused: limit reached");
                }
            }
            Event::HandshakeTimedOut { peer } => {
                if limited(&mut self.tcp, now, "connection") {
                    tracing::debug!(%peer, "handshake timed out");
                }
            }
            Event::ConnectionShed { peer, reason } => {
                if limited(&mut self.tcp, now, "connection") {
                    tracing::debug!(%peer, %reason, "connection closed unanswered");
                }
            }
            Event::Handshake { peer, status, .. }
                if matches!(status, Status::InvalidPassword | Status::TryLater) =>
            {
                // Password guessing is worth an operator's eye: info, but rate-limited.
                if admitted(&mut self.passwords, now, "password") {
                    tracing::info!(%peer, %status, "join refused: password");
                }
            }
            Event::Handshake {
                peer,
                operation,
                status,
            } if *status != Status::Ok => {
                if limited(&mut self.tcp, now, "connection") {
                    tracing::debug!(%peer, ?operation, %status, "handshake answered");
                }
            }
            // Joins, leaves, rooms: a peer can cause them at will too (a spoofed relay
            // registration, a create-and-leave loop), so they are limited as well.
            other => {
                if admitted(&mut self.members, now, "membership") {
                    log_event(other);
                }
            }
        }
    }

    /// Whether [`EventLog::log`] would ever write a line for a dropped datagram: only
    /// when debug lines are enabled (asked once, of the subscriber installed now). A
    /// driver tells the core not to report drops otherwise (they are still counted).
    pub fn wants_drops(&self) -> bool {
        tracing::enabled!(tracing::Level::DEBUG)
    }

    /// Reports the lines suppressed in windows that are over at `now`.
    pub fn flush(&mut self, now: Instant) {
        if let Some(n) = self.udp.flush(now) {
            report_suppressed(n, "datagram dropped");
        }
        if let Some(n) = self.tcp.flush(now) {
            report_suppressed(n, "connection");
        }
        if let Some(n) = self.passwords.flush(now) {
            report_suppressed(n, "password");
        }
        if let Some(n) = self.members.flush(now) {
            report_suppressed(n, "membership");
        }
    }

    /// When [`EventLog::flush`] next has something to say.
    pub fn flush_due(&self) -> Option<Instant> {
        [
            self.udp.flush_due(),
            self.tcp.flush_due(),
            self.passwords.flush_due(),
            self.members.flush_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Whether a debug line of `kind` may be written now (never when debug is off).
fn limited(limiter: &mut LogLimiter, now: Instant, kind: &str) -> bool {
    tracing::enabled!(tracing::Level::DEBUG) && admitted(limiter, now, kind)
}

/// Whether a line of `kind` may be written now; reports the lines a finished window
/// left out.
fn admitted(limiter: &mut LogLimiter, now: Instant, kind: &str) -> bool {
    let (admitted, flushed) = limiter.admit(now);
    if let Some(n) = flushed {
        report_suppressed(n, kind);
    }
    admitted
}

fn report_suppressed(n: u64, kind: &str) {
    tracing::info!(
        suppressed = n,
        "{kind} lines left out in the last second (at most {LINES_PER_SECOND} a second)"
    );
}

/// A room name as a log field: shown plainly, and left out in relay mode (no rooms).
fn room_field(room: &Option<std::sync::Arc<str>>) -> Option<impl tracing::Value + '_> {
    room.as_deref().map(tracing::field::display)
}

/// Writes one core event to the log, without rate limiting.
pub fn log_event(event: &Event) {
    match event {
        Event::RoomCreated { room, host } => tracing::info!(%room, %host, "room created"),
        Event::RoomClosed { room, reason } => tracing::info!(%room, %reason, "room closed"),
        Event::MemberJoined { room, username } => {
            tracing::info!(room = room_field(room), %username, "joined")
        }
        Event::MemberLeft { room, username } => {
            tracing::info!(room = room_field(room), %username, "left")
        }
        Event::MemberAddress {
            room,
            username,
            addr,
        } => tracing::debug!(%room, %username, %addr, "member address"),
        Event::MemberEvicted {
            room,
            username,
            reason,
        } => tracing::info!(room = room_field(room), %username, %reason, "evicted"),
        Event::Handshake {
            peer,
            operation,
            status,
        } => {
            tracing::debug!(%peer, ?operation, %status, "handshake answered")
        }
        Event::ConnectionRefused { peer } => {
            tracing::debug!(%peer, "connection refused: limit reached")
        }
        Event::HandshakeTimedOut { peer } => tracing::debug!(%peer, "handshake timed out"),
        Event::ConnectionShed { peer, reason } => {
            tracing::debug!(%peer, %reason, "connection closed unanswered")
        }
        Event::DatagramDropped { from, reason } => {
            tracing::debug!(%from, %reason, "datagram dropped")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_per_window_then_one_count_of_the_rest() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(3);
        let admitted: Vec<bool> = (0..10).map(|_| limiter.admit(t0).0).collect();
        assert_eq!(
            admitted,
            [true, true, true, false, false, false, false, false, false, false]
        );
        assert_eq!(limiter.flush_due(), Some(t0 + WINDOW));
        assert_eq!(limiter.flush(t0 + WINDOW / 2), None, "early: nothing");
        assert_eq!(limiter.flush(t0 + WINDOW), Some(7));
        assert_eq!(limiter.flush_due(), None);
        assert_eq!(limiter.flush(t0 + 3 * WINDOW), None, "reported once");
    }

    #[test]
    fn a_new_window_reports_the_last_one_and_lets_lines_through_again() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(1);
        assert_eq!(limiter.admit(t0), (true, None));
        assert_eq!(limiter.admit(t0), (false, None));
        assert_eq!(limiter.admit(t0), (false, None));
        let later = t0 + WINDOW + Duration::from_millis(1);
        assert_eq!(limiter.admit(later), (true, Some(2)));
        assert_eq!(limiter.admit(later), (false, None));
    }

    #[test]
    fn a_quiet_window_has_nothing_to_report() {
        let t0 = Instant::now();
        let mut limiter = LogLimiter::new(5);
        limiter.admit(t0);
        assert_eq!(limiter.flush_due(), None);
        assert_eq!(limiter.flush(t0 + WINDOW), None);
    }
}
