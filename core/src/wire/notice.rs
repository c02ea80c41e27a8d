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
//! | the answer to `/who` (to the asker only) | `members: alice (host), bob` |
//! | the answer to a member's liveness probe | `alive: N members` |
//! | the answer to a probe with a token that is no member's | `not a member` |

use std::time::Duration;

/// Prefix of every notice in rooms.
pub const NOTICE_PREFIX: &str = "* ";

/// How the answer to `/who` starts.
pub const MEMBERS_PREFIX: &str = "members: ";
/// The answer to a liveness probe whose token is no member's.
pub const NOT_MEMBER: &str = "not a member";
/// Relay mode: the message that echoes a verification code, `/verify 123456`.
pub const VERIFY_COMMAND: &str = "/verify ";
/// Relay mode: how the answer to a right code starts.
pub const WELCOME: &str = "welcome, ";
/// The mark after the host's name in the answer to `/who`.
pub const HOST_MARK: &str = " (host)";

/// The `/who` answer for `names` in join order (`true` marks the host), in at most
/// `max_len` bytes of notice text (`* ` or the relay's zero byte included as
/// `prefix_len`): names that do not fit are left out and counted, `..., and N more`.
pub fn member_list<'a>(
    names: impl ExactSizeIterator<Item = (&'a str, bool)>,
    prefix_len: usize,
    max_len: usize,
) -> Notice {
    let total = names.len();
    // Room for the longest ", and N more" this list could need.
    let tail = ", and  more".len() + total.to_string().len();
    let budget = max_len.saturating_sub(prefix_len + MEMBERS_PREFIX.len() + tail);
    let mut list = String::new();
    let mut shown = 0;
    for (name, host) in names {
        let mark = if host { HOST_MARK } else { "" };
        let sep = if shown == 0 { "" } else { ", " };
        if list.len() + sep.len() + name.len() + mark.len() > budget {
            break;
        }
        list.push_str(sep);
        list.push_str(name);
        list.push_str(mark);
        shown += 1;
    }
    if shown < total {
        let sep = if shown == 0 { "" } else { ", " };
        list.push_str(&format!("{sep}and {} more", total - shown));
    }
    Notice::Members(list)
}

/// Reads the list of a `members: ...` answer: the names (with `true` for the host) and
/// how many more the server left out (`..., and N more`). Names that themselves
/// contain `, ` cannot be told apart from two names; the list is for display.
pub fn read_member_list(list: &str) -> (Vec<(String, bool)>, usize) {
    let mut names = Vec::new();
    let mut more = 0;
    for item in list.split(", ") {
        if let Some(n) = item
            .strip_prefix("and ")
            .and_then(|r| r.strip_suffix(" more"))
            .and_then(|n| n.parse().ok())
        {
            more = n;
            continue;
        }
        match item.strip_suffix(HOST_MARK) {
            Some(name) => names.push((name.to_owned(), true)),
            None => names.push((item.to_owned(), false)),
        }
    }
    (names, more)
}

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
    /// Cluster mode: the host's server shut down.
    HostServerShutdown,
    /// Cluster mode: the host's server stopped renewing the room (it died or lost Redis).
    HostServerGone,
    /// Cluster mode: this server could not reach the registry for half a lease and
    /// stopped serving its rooms (self-fencing), or the registry gave the name away.
    ClusterUnreachable,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::HostLeft => "host left",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::HostServerShutdown => "host's server shut down",
            CloseReason::HostServerGone => "host's server is gone",
            CloseReason::ClusterUnreachable => "cluster unreachable",
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
    /// `members: LIST`: the answer to `/who`, the list as the server wrote it.
    Members(String),
    /// `alive: N members`: the answer to a member's liveness probe.
    Alive(usize),
    /// `not a member`: the answer to a liveness probe whose token is no member's.
    NotMember,
    /// Relay mode: `welcome, NAME`: the answer to a right code, to the one registered.
    Welcome(String),
    /// Relay mode: `to join, send: /verify CODE` (or, where only a short answer fits,
    /// `/verify CODE`): the address must echo the code to be registered.
    Verify {
        /// The code, six digits.
        code: String,
        /// The short form.
        short: bool,
    },
    /// Any other notice text (from a newer or different server).
    Other(String),
}

impl Notice {
    /// The body, without the rooms' `* ` prefix.
    pub fn body(&self) -> String {
        let mut out = String::new();
        self.write_body(&mut out);
        out
    }

    /// The rooms form: `* ` and the body.
    pub fn room_text(&self) -> String {
        let mut out = String::with_capacity(NOTICE_PREFIX.len() + 40);
        out.push_str(NOTICE_PREFIX);
        self.write_body(&mut out);
        out
    }

    /// Appends the body to `out`, piece by piece (no `format!` machinery: a join's
    /// notice is written on every handshake).
    fn write_body(&self, out: &mut String) {
        let (head, tail) = match self {
            Notice::Joined(name) => (name.as_str(), " joined"),
            Notice::Left(name) => (name.as_str(), " left"),
            Notice::WasDisconnected(name) => (name.as_str(), " was disconnected"),
            Notice::Disconnected(reason) => {
                out.push_str("disconnected: ");
                (reason.as_str(), ", join again")
            }
            Notice::RoomClosed(reason) => ("room closed: ", reason.as_str()),
            Notice::Members(list) => (MEMBERS_PREFIX, list.as_str()),
            Notice::Alive(n) => {
                use std::fmt::Write;
                let _ = write!(out, "alive: {n} members");
                return;
            }
            Notice::NotMember => (NOT_MEMBER, ""),
            Notice::Welcome(name) => (WELCOME, name.as_str()),
            Notice::Verify { code, short: true } => (VERIFY_COMMAND, code.as_str()),
            Notice::Verify { code, short: false } => {
                out.push_str("to join, send: ");
                (VERIFY_COMMAND, code.as_str())
            }
            Notice::Other(text) => (text.as_str(), ""),
        };
        out.push_str(head);
        out.push_str(tail);
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
        if body == NOT_MEMBER {
            return Notice::NotMember;
        }
        if let Some(name) = body.strip_prefix(WELCOME).filter(|n| !n.is_empty()) {
            return Notice::Welcome(name.to_owned());
        }
        let long = body.strip_prefix("to join, send: ");
        if let Some(code) = long
            .unwrap_or(body)
            .strip_prefix(VERIFY_COMMAND)
            .filter(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        {
            let short = long.is_none();
            return Notice::Verify {
                code: code.to_owned(),
                short,
            };
        }
        if let Some(n) = body
            .strip_prefix("alive: ")
            .and_then(|r| r.strip_suffix(" members"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
        {
            return Notice::Alive(n);
        }
        if let Some(list) = body.strip_prefix(MEMBERS_PREFIX) {
            return Notice::Members(list.to_owned());
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
        let texts = [
            (
                Notice::Members("alice (host), bob".into()),
                "members: alice (host), bob",
            ),
            (Notice::Alive(12), "alive: 12 members"),
            (Notice::NotMember, "not a member"),
            (Notice::Welcome("bob".into()), "welcome, bob"),
            (
                Notice::Verify {
                    code: "012345".into(),
                    short: true,
                },
                "/verify 012345",
            ),
            (
                Notice::Verify {
                    code: "012345".into(),
                    short: false,
                },
                "to join, send: /verify 012345",
            ),
            (Notice::Other("maintenance".into()), "maintenance"),
        ];
        for (notice, body) in texts {
            assert_eq!(notice.body(), body);
            assert_eq!(notice.room_text(), format!("* {body}"));
        }
    }

    #[test]
    fn every_notice_parses_back() {
        for notice in [
            Notice::Joined("a b".into()),
            Notice::Left("x".into()),
            Notice::WasDisconnected("y".into()),
            Notice::Disconnected("idle for 5 s".into()),
            Notice::RoomClosed("host left".into()),
            Notice::Members("alice (host), bob".into()),
            Notice::Alive(3),
            Notice::NotMember,
            Notice::Other("maintenance at noon".into()),
        ] {
            assert_eq!(Notice::parse_body(&notice.body()), notice);
        }
        assert!(Notice::parse_body("room closed: host left").ends_session());
        assert!(!Notice::parse_body("bob left").ends_session());
        assert_eq!(
            Notice::parse_body("alive: x members"),
            Notice::Other("alive: x members".into())
        );
    }

    #[test]
    fn a_member_list_fits_in_one_datagram_and_counts_what_it_left_out() {
        let small = member_list([("alice", true), ("bob", false)].into_iter(), 2, 4094);
        assert_eq!(small.room_text(), "* members: alice (host), bob");
        let names: Vec<String> = (0..1000).map(|i| format!("{i:0>255}")).collect();
        let list = member_list(names.iter().map(|n| (n.as_str(), false)), 2, 4094);
        let text = list.room_text();
        assert!(text.len() <= 4094, "{}", text.len());
        let (shown, more) = read_member_list(list.body().strip_prefix(MEMBERS_PREFIX).unwrap());
        assert_eq!(shown.len() + more, 1000);
        assert!(more > 900 && !shown.is_empty());
        let none_fit = member_list([("x", true)].into_iter(), 2, 16);
        assert_eq!(none_fit.body(), "members: and 1 more");
    }

    #[test]
    fn member_lists_read_back() {
        let (names, more) = read_member_list("alice (host), bob, and 12 more");
        assert_eq!(names, vec![("alice".into(), true), ("bob".into(), false)]);
        assert_eq!(more, 12);
        assert_eq!(
            read_member_list("solo (host)").0,
            vec![("solo".into(), true)]
        );
    }
}
