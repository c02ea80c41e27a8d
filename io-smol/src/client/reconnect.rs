//! When and whether to try again after the membership was lost: an exponential
//! backoff (0.5 s, 1 s, 2 s, ... at most 30 s), and which failures a later attempt can
//! cure (the server not back yet, the room not re-created yet, the old membership not
//! resumed or evicted yet) and which it cannot (a wrong password, a name the server
//! refuses).

use super::ClientError;
use ocm_core::client::HandshakeError;
use ocm_core::Status;
use std::time::Duration;

/// The first wait.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest wait.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How long to wait before attempt `attempt` (1, 2, ...).
pub fn delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// True when trying again later may succeed.
pub fn is_transient(error: &ClientError) -> bool {
    match error {
        ClientError::Connect(..)
        | ClientError::Timeout(..)
        | ClientError::Unreachable(_)
        | ClientError::Io(_)
        | ClientError::Handshake(HandshakeError::Closed) => true,
        // The host has not re-created the room yet; our old membership (or, for a
        // host, its old room) is still there, to be resumed or evicted; the server is
        // full for now.
        ClientError::Refused { status, .. } => matches!(
            status,
            Status::RoomNotFound
                | Status::UsernameTaken
                | Status::RoomExists
                | Status::ServerFull
                | Status::TryLater
        ),
        ClientError::InvalidName(_) | ClientError::Handshake(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let waits: Vec<u64> = (1..=9).map(|a| delay(a).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(delay(u32::MAX), MAX_DELAY);
        assert_eq!(delay(0), FIRST_DELAY);
    }

    #[test]
    fn only_failures_time_can_cure_are_retried() {
        let refused = |status| ClientError::Refused {
            status,
            room: "r".into(),
            username: "u".into(),
        };
        assert!(is_transient(&refused(Status::RoomNotFound)));
        assert!(is_transient(&refused(Status::UsernameTaken)));
        assert!(!is_transient(&refused(Status::InvalidPassword)));
        assert!(is_transient(&refused(Status::RoomExists)));
        assert!(!is_transient(&refused(Status::InvalidRequest)));
        assert!(is_transient(&ClientError::Unreachable(
            "127.0.0.1:1".parse().unwrap()
        )));
        assert!(!is_transient(&ClientError::Handshake(
            HandshakeError::Protocol("x")
        )));
    }
}
