//! What a run does: a seed, a network profile and a list of operations, generated and
//! shrunk by proptest.
//!
//! Operations name rooms, users and texts by small indices into fixed pools (taken
//! modulo the pool size), and actors by an index among those the operation fits (a send
//! picks among the actors that are chatting, a create among the idle ones, a join
//! usually picks a room that exists); so any list is valid, few operations are wasted,
//! and shrinking never produces a schedule that cannot run. The `Debug` form of a [`Schedule`] is Rust syntax: paste a
//! failing one into a `#[test]` to freeze it.
//!
//! ```
//! use ocm_sim::schedule::{Network, Op, Schedule};
//! let s = Schedule {
//!     seed: 7,
//!     network: Network::Perfect,
//!     ops: vec![Op::Create { actor: 0, room: 0, user: 0, password: false }, Op::Advance { ms: 500 }],
//! };
//! assert_eq!(s.ops.len(), 2);
//! ```

use crate::net::Faults;
use ocm_core::Config;
use proptest::prelude::*;
use std::time::Duration;

/// Room names the actors use (more than `max_rooms`, so the limit is hit).
pub const ROOMS: [&str; 3] = ["lobby", "r1", "ルーム"];
/// Usernames; the last is long enough that its relayed lines get cut at 4094 bytes.
pub const USERS: [&str; 4] = [
    "ann",
    "bob",
    "zoë",
    "a-very-long-username-that-makes-relayed-lines-overflow",
];
/// The one correct password; joins may send it, a wrong one, or none.
pub const PASSWORD: &str = "s3cret";

/// The server limits of every run: small, so that every limit is reached (two actors
/// share each host, so a lingering member makes a third from one IP, and a host's
/// second room is one too many). Limits not named
/// here keep core's defaults, so a new one does not break the build.
#[allow(clippy::needless_update)] // needless only while every limit is named here
pub fn config() -> Config {
    Config {
        max_payload: 512,
        request_budget: 900,
        handshake_timeout: Duration::from_secs(5),
        port_wait: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(20),
        registration_timeout: Duration::from_secs(8),
        max_send_failures: 2,
        icmp_grace: Duration::from_secs(2),
        max_rooms: 2,
        max_members_per_room: 3,
        max_members: 5,
        max_members_per_ip: 2,
        password_failures_per_source: 1,
        password_failures_per_room: 2,
        // low, so that floods and long lines reach them; the storm test runs roomier
        member_messages_per_sec: 4,
        member_message_burst: 6,
        member_bytes_per_sec: 6_000,
        member_byte_burst: 9_000,
        source_messages_per_sec: 6,
        source_message_burst: 8,
        room_fanout_per_sec: 12,
        room_fanout_burst: 16,
        unproven_datagrams: 2,
        max_rooms_per_source: 1,
        max_handshakes: 4,
        max_handshakes_per_ip: 2,
        linger: Duration::from_secs(2),
        ipv6_source_prefix: 64,
        ..Config::default()
    }
}

/// How often a chatting actor sends a keepalive (well under the idle timeout).
pub const KEEPALIVE: Duration = Duration::from_secs(6);

/// The network of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Nothing lost, duplicated, damaged or reordered; partitions are ignored.
    Perfect,
    /// Faults, per mille per datagram; datagrams may be reordered.
    Lossy {
        /// Lost.
        loss: u16,
        /// Duplicated.
        duplicate: u16,
        /// Damaged.
        corrupt: u16,
    },
}

impl Network {
    /// The network's fault settings.
    pub fn faults(self) -> Faults {
        match self {
            Network::Perfect => Faults::perfect(),
            Network::Lossy {
                loss,
                duplicate,
                corrupt,
            } => Faults {
                loss,
                duplicate,
                corrupt,
                reorder: true,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(300),
            },
        }
    }
}

/// One step of a schedule. Indices are taken modulo their pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The actor creates a room (over TCP), with or without the password.
    Create {
        /// Which actor.
        actor: u8,
        /// Index into [`ROOMS`].
        room: u8,
        /// Index into [`USERS`].
        user: u8,
        /// Protect the room with [`PASSWORD`].
        password: bool,
    },
    /// The actor joins a room: password 0 none, 1 right, 2 wrong.
    Join {
        /// Which actor.
        actor: u8,
        /// Index into the rooms alive (3 times in 4), else into [`ROOMS`].
        room: u8,
        /// Index into [`USERS`].
        user: u8,
        /// 0 none, 1 right, 2 wrong.
        password: u8,
    },
    /// A chatting actor sends a message (see [`text`]).
    Send {
        /// Which actor.
        actor: u8,
        /// Which text.
        text: u8,
    },
    /// A talking actor sends `count` short lines at once, faster than a member's rate.
    Spam {
        /// Actor index (among talking actors).
        actor: u8,
        /// How many.
        count: u8,
    },
    /// A chatting actor sends `/exit` and closes its socket.
    Leave {
        /// Which actor.
        actor: u8,
    },
    /// A chatting actor stops sending anything, keepalives included, but keeps listening.
    Silent {
        /// Which actor.
        actor: u8,
    },
    /// The actor's process dies: sockets closed, TCP reset, nothing said.
    Vanish {
        /// Which actor.
        actor: u8,
    },
    /// A chatting actor moves to a new UDP port (a NAT rebinding).
    Rebind {
        /// Which actor.
        actor: u8,
    },
    /// The actor's TCP connection, if any, is reset mid-handshake.
    DropTcp {
        /// Which actor.
        actor: u8,
    },
    /// The actor sends its last datagram again, token and all, from its own address,
    /// whether or not that token is still valid.
    Stale {
        /// Which actor.
        actor: u8,
    },
    /// Time passes.
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// The actor's host is cut off the UDP network for a while (lossy networks only).
    Partition {
        /// Which actor's host.
        actor: u8,
        /// Milliseconds.
        ms: u32,
    },
    /// The attacker sends a datagram captured on the wire, from its own address.
    Replay {
        /// Which captured datagram.
        index: u8,
    },
    /// Junk for the server: 0 random bytes, 1 a live room with a made-up token, 2 an
    /// oversize datagram (all from the attacker), 3 a member's own token and address
    /// with a message that is not UTF-8 (a buggy client).
    Garbage {
        /// Which kind.
        kind: u8,
        /// Random bytes to use.
        salt: u16,
    },
    /// The attacker uses an actor's live token from its own IP (same or other room).
    StolenToken {
        /// Whose token.
        victim: u8,
        /// Name the victim's room (true) or another room (false).
        same_room: bool,
    },
    /// The attacker opens a TCP connection and sends a few bytes, then nothing.
    Slowloris,
    /// The attacker sends `conns` (modulo 128) malformed requests, 50 ms apart.
    Flood {
        /// How many.
        conns: u8,
    },
    /// The server shuts down (closing every room and connection) and carries on empty.
    Shutdown,
    /// The attacker sends a malformed TCRP request (see `world.rs` for the kinds).
    BadRequest {
        /// Which kind.
        kind: u8,
    },
    /// The attacker announces the largest payload allowed and sends all of it but 1 to
    /// 64 bytes (`fill`), then nothing: its bytes count against the request budget,
    /// and two such connections are over it.
    Hoard {
        /// How many bytes short of the whole request it stops (1 + `fill` % 64).
        fill: u16,
    },
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Seeds the network, the actors' choices and (derived) the server.
    pub seed: u64,
    /// The network profile.
    pub network: Network,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// The message texts actors send: plain, multibyte, empty (a keepalive), one as long
/// as a datagram can carry (cut by the server when relayed), and `/who`.
pub fn text(index: u8, max: usize) -> String {
    let body = match index % 6 {
        0 => "hello".to_owned(),
        1 => "héllo wörld ✓ こんにちは".to_owned(),
        2 => String::new(),
        3 => "é".repeat(max),
        4 => "/not-a-command".to_owned(),
        _ => "/who".to_owned(),
    };
    let mut cut = body.len().min(max);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    body[..cut].to_owned()
}

fn op() -> impl Strategy<Value = Op> {
    let actor = 0..6u8;
    prop_oneof![
        4 => (actor.clone(), 0..3u8, 0..4u8, any::<bool>())
            .prop_map(|(actor, room, user, password)| Op::Create { actor, room, user, password }),
        6 => (actor.clone(), 0..3u8, 0..4u8, prop_oneof![3 => Just(1u8), 1 => 0..3u8])
            .prop_map(|(actor, room, user, password)| Op::Join { actor, room, user, password }),
        14 => (actor.clone(), any::<u8>()).prop_map(|(actor, text)| Op::Send { actor, text }),
        1 => (actor.clone(), 2..24u8).prop_map(|(actor, count)| Op::Spam { actor, count }),
        2 => actor.clone().prop_map(|actor| Op::Leave { actor }),
        1 => actor.clone().prop_map(|actor| Op::Silent { actor }),
        1 => actor.clone().prop_map(|actor| Op::Vanish { actor }),
        1 => actor.clone().prop_map(|actor| Op::Rebind { actor }),
        1 => actor.clone().prop_map(|actor| Op::DropTcp { actor }),
        1 => actor.clone().prop_map(|actor| Op::Stale { actor }),
        10 => prop_oneof![0..100u32, 100..3_000u32, 3_000..30_000u32].prop_map(|ms| Op::Advance { ms }),
        1 => (actor.clone(), 100..10_000u32).prop_map(|(actor, ms)| Op::Partition { actor, ms }),
        2 => any::<u8>().prop_map(|index| Op::Replay { index }),
        1 => (0..4u8, any::<u16>()).prop_map(|(kind, salt)| Op::Garbage { kind, salt }),
        1 => (actor, any::<bool>()).prop_map(|(victim, same_room)| Op::StolenToken { victim, same_room }),
        1 => Just(Op::Slowloris),
        1 => Just(Op::Shutdown),
        1 => any::<u8>().prop_map(|conns| Op::Flood { conns }),
        1 => (0..8u8).prop_map(|kind| Op::BadRequest { kind }),
        2 => any::<u16>().prop_map(|fill| Op::Hoard { fill }),
    ]
}

fn network() -> impl Strategy<Value = Network> {
    prop_oneof![
        1 => Just(Network::Perfect),
        2 => (0..300u16, 0..100u16, 0..100u16)
            .prop_map(|(loss, duplicate, corrupt)| Network::Lossy { loss, duplicate, corrupt }),
    ]
}

/// Schedules of up to `max_ops` operations.
pub fn schedule(max_ops: usize) -> impl Strategy<Value = Schedule> {
    (
        any::<u64>(),
        network(),
        proptest::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(|(seed, network, ops)| Schedule { seed, network, ops })
}
