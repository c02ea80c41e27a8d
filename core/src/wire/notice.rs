//! Server notices: the texts the server sends about joins, leaves, evictions and
//! closed rooms, and their recognition on the client side.
//!
//! In rooms a notice is a datagram of UTF-8 text starting with `* ` (no relayed line
//! can, since usernames cannot start with `*`). In relay mode the same body follows a
//! zero `usernamelen` byte instead of the `* `.
//!
//! | notice | body |
//! |---|---|
//! | a member joined | `NAME joined` |
//! | a member left with `/exit` | `NAME left` |
//! | a member was evicted (to the others) | `NAME was disconnected` |
//! | you were evicted | `disconnected: REASON, join again` |
//! | the room closed | `room closed: REASON` |

use std::time::Duration;

/// Prefix of every notice in rooms.
pub const NOTICE_PREFIX: &str = "* ";

/// Why a member was evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvictReason {
    /// No valid datagram for this long.
    Idle(Duration),
    /// This many sends to it failed in a row.
    SendFailures(u32),
    /// No address became known (no datagram, no port step) within this long after it
    /// joined.
    NeverRegistered(Duration),
}

impl std::fmt::Display for EvictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvictReason::Idle(d) => write!(f, "idle for {} s", d.as_secs()),
            EvictReason::SendFailures(n) => write!(f, "{n} failed sends"),
            EvictReason::NeverRegistered(d) => write!(f, "no datagram within {} s", d.as_secs()),
        }
    }
}

/// Why a room closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The host sent `/exit` or was evicted.
    HostLeft,
    /// The server is stopping.
    ServerShutdown,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::HostLeft => "host left",
            CloseReason::ServerShutdown => "server shutting down",
        })
    }
}

/// A notice, as built by the server or recognized by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `NAME joined`
    Joined(String),
    /// `NAME left`
    Left(String),
    /// `NAME was disconnected`
    WasDisconnected(String),
    /// `disconnected: REASON, join again`: the receiver itself was evicted.
    Disconnected(String),
    /// `room closed: REASON`: the receiver's room is gone.
    RoomClosed(String),
    /// Any other notice text (from a newer or different server).
    Other(String),
}

impl Notice {
    /// The body, without the rooms' `* ` prefix.
    pub fn body(&self) -> String {
        match self {
            Notice::Joined(name) => format!("{name} joined"),
            Notice::Left(name) => format!("{name} left"),
            Notice::WasDisconnected(name) => format!("{name} was disconnected"),
            Notice::Disconnected(reason) => format!("disconnected: {reason}, join again"),
            Notice::RoomClosed(reason) => format!("room closed: {reason}"),
            Notice::Other(text) => text.clone(),
        }
    }

    /// The rooms form: `* ` and the body.
    pub fn room_text(&self) -> String {
        format!("{NOTICE_PREFIX}{}", self.body())
    }

    /// Recognizes a body. The two notices that end a session (`disconnected: ...` and
    /// `room closed: ...`) are checked first.
    pub fn parse_body(body: &str) -> Notice {
        if let Some(reason) = body
            .strip_prefix("disconnected: ")
            .and_then(|r| r.strip_suffix(", join again"))
        {
            return Notice::Disconnected(reason.to_owned());
        }
        if let Some(reason) = body.strip_prefix("room closed: ") {
            return Notice::RoomClosed(reason.to_owned());
        }
        type Make = fn(String) -> Notice;
        let suffixes: [(&str, Make); 3] = [
            (" was disconnected", Notice::WasDisconnected),
            (" joined", Notice::Joined),
            (" left", Notice::Left),
        ];
        for (suffix, make) in suffixes {
            if let Some(name) = body.strip_suffix(suffix).filter(|n| !n.is_empty()) {
                return make(name.to_owned());
            }
        }
        Notice::Other(body.to_owned())
    }

    /// True for the notices after which the receiver is no longer in the room.
    pub fn ends_session(&self) -> bool {
        matches!(self, Notice::Disconnected(_) | Notice::RoomClosed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_the_protocol_document() {
        assert_eq!(Notice::Joined("bob".into()).room_text(), "* bob joined");
        assert_eq!(Notice::Left("bob".into()).room_text(), "* bob left");
        assert_eq!(
            Notice::WasDisconnected("bob".into()).room_text(),
            "* bob was disconnected"
        );
        let idle = EvictReason::Idle(Duration::from_secs(300)).to_string();
        assert_eq!(
            Notice::Disconnected(idle).room_text(),
            "* disconnected: idle for 300 s, join again"
        );
        assert_eq!(EvictReason::SendFailures(3).to_string(), "3 failed sends");
        assert_eq!(
            Notice::RoomClosed(CloseReason::HostLeft.to_string()).room_text(),
            "* room closed: host left"
        );
        assert_eq!(
            CloseReason::ServerShutdown.to_string(),
            "server shutting down"
        );
    }

    #[test]
    fn every_notice_parses_back() {
        for notice in [
            Notice::Joined("a b".into()),
            Notice::Left("x".into()),
            Notice::WasDisconnected("y".into()),
            Notice::Disconnected("idle for 5 s".into()),
            Notice::RoomClosed("host left".into()),
            Notice::Other("maintenance at noon".into()),
        ] {
            assert_eq!(Notice::parse_body(&notice.body()), notice);
        }
        assert!(Notice::parse_body("room closed: host left").ends_session());
        assert!(!Notice::parse_body("bob left").ends_session());
    }
}
