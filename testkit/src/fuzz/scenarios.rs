//! Server and relay scenarios for the `server_ops` and `relay_ops` seed corpus: short
//! sessions that, together, reach every TCRP status, every drop reason, every event and
//! the notices; a test below proves they still do.

use super::config::FuzzConfig;
use super::ops::{Long, Short};
use super::seeds::{raw_header, room_datagram};
use super::server_ops::{ServerOp, ServerOps};
use super::{RelayOp, RelayOps};

/// `ServerOp::Request` kinds.
const CREATE: u8 = 0;
const JOIN: u8 = 1;
const RAW: u8 = 2;
const BAD_OP: u8 = 0x10;
/// The interop JSON payload with `port` 4000 (bits 6-7 = 0), or 4001 (0x40).
const INTEROP: u8 = 0x20;

fn request(kind: u8, room: u8, user: u8, password: u8) -> ServerOp {
    ServerOp::Request {
        conn: 0,
        kind,
        room,
        user,
        password,
        chunk: 0,
    }
}

/// Accept from `address(peer)`, send a request, send the port `4000 + (peer / 4)`
/// so the member's UDP address is `address(peer)` itself.
fn handshake(peer: u8, kind: u8, room: u8, user: u8, password: u8) -> [ServerOp; 3] {
    let port = [4000, 4001, 5000][usize::from(peer / 4) % 3];
    [
        ServerOp::Accept { peer },
        request(kind, room, user, password),
        ServerOp::Port { conn: 0, port },
    ]
}

fn say(from: u8, token: u8, message: u8) -> ServerOp {
    ServerOp::Datagram {
        from,
        token,
        room: 0,
        message,
    }
}

pub(super) fn server_scenarios() -> Vec<(&'static str, ServerOps)> {
    let roomy = |ops: Vec<ServerOp>| ServerOps {
        config: FuzzConfig::ROOMY,
        ops,
    };
    let hello = [handshake(0, CREATE, 0, 0, 1), handshake(1, JOIN, 0, 1, 1)].concat();
    let mut out = Vec::new();
    // alice (127.0.0.1:4000) hosts lobby with password pw, bob (127.0.0.2:4000) joins.
    let mut chat = [hello.clone(), handshake(5, JOIN, 0, 3, 1).to_vec()].concat(); // and 255 u's
    chat.extend([
        say(0, 2, 2),
        say(1, 1, 2),
        say(1, 1, 5),
        say(5, 0, 5),
        say(5, 0, 4),
        say(1, 1, 1),
    ]);
    chat.extend([say(0, 2, 3), say(0, 2, 1), ServerOp::AdvanceFar]);
    out.push(("chat-then-leave", roomy(chat)));
    let mut statuses = hello.clone();
    statuses.extend([
        ServerOp::Accept { peer: 3 },
        request(CREATE, 0, 2, 0),        // 1 room exists
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(JOIN, 1, 2, 0),          // 2 room not found
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(JOIN, 0, 2, 2),          // 3 wrong password
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(JOIN, 0, 1, 1),          // 4 username taken
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(BAD_OP, 0, 2, 0),        // 5 invalid operation
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(CREATE, 4, 2, 0),        // 5 empty room name
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(CREATE | RAW, 2, 4, 0), // 5 username starting with '*'
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(CREATE, 5, 2, 0), // 5 control character in the room name
        ServerOp::TcpClosed { conn: 0 }, // the client closes: no linger
        ServerOp::Accept { peer: 3 },
        request(CREATE, 1, 2, 0), // 0: room "den"
        ServerOp::Port { conn: 0, port: 0 },
        ServerOp::Accept { peer: 7 },
        request(CREATE, 2, 2, 0), // 0: room "é"
        ServerOp::Accept { peer: 7 },
        request(CREATE, 3, 2, 0), // 7 fourth room over max_rooms 3
    ]);
    out.push(("every-status", roomy(statuses)));
    let mut small = ServerOps {
        config: FuzzConfig {
            payload: 2,
            ..FuzzConfig::ROOMY
        },
        ops: vec![],
    };
    small
        .ops
        .extend([ServerOp::Accept { peer: 0 }, request(CREATE, 0, 0, 1)]); // 6 payload too large
    small
        .ops
        .extend([ServerOp::Accept { peer: 0 }, request(CREATE | RAW, 0, 0, 0)]); // fits
    small.ops.extend([
        ServerOp::Port {
            conn: 0,
            port: 4000,
        },
        say(0, 0, 2),
        ServerOp::Shutdown,
    ]);
    out.push(("payload-too-large", small));
    let mut huge = raw_header(5, 1, 0, [0xff; 29]);
    huge.extend(b"lobby");
    let mut partial = vec![
        ServerOp::Accept { peer: 0 },
        ServerOp::TcpBytes {
            conn: 0,
            data: Short(huge),
        },
    ];
    partial.extend([
        ServerOp::Accept { peer: 0 },
        ServerOp::TcpBytes {
            conn: 0,
            data: Short(vec![5, 1, 0]),
        },
    ]);
    partial.extend([
        ServerOp::Advance { millis: 9_999 },
        ServerOp::Timeout,
        ServerOp::FireNext,
    ]);
    out.push(("size-high-bytes-and-slowloris", roomy(partial)));
    let mut chunked = vec![ServerOp::Accept { peer: 0 }];
    chunked.push(ServerOp::Request {
        conn: 0,
        kind: CREATE,
        room: 0,
        user: 0,
        password: 0,
        chunk: 1,
    });
    chunked.extend([
        ServerOp::TcpBytes {
            conn: 0,
            data: Short(vec![0x0f]),
        },
        ServerOp::TcpBytes {
            conn: 0,
            data: Short(vec![0xa0]),
        },
    ]);
    chunked.extend([
        say(0, 0, 2),
        ServerOp::Accept { peer: 1 },
        request(CREATE, 1, 1, 0),
    ]);
    chunked.push(ServerOp::TcpBytes {
        conn: 0,
        data: Short(vec![0x0f, 0xa0, 0]),
    }); // 3 port bytes
    chunked.extend([
        ServerOp::Accept { peer: 5 },
        request(CREATE, 2, 2, 0),
        ServerOp::TcpClosed { conn: 0 },
    ]);
    out.push(("bytewise-and-port-steps", roomy(chunked)));
    let mut idle = hello.clone();
    idle.extend([
        ServerOp::Advance { millis: 299_000 },
        say(1, 0, 0),
        ServerOp::FireNext,
        ServerOp::FireNext,
    ]);
    idle.extend(handshake(1, JOIN, 0, 1, 1)); // rejoin after the room closed: not found
    idle.extend(handshake(1, CREATE, 0, 1, 0));
    idle.extend([ServerOp::Advance { millis: 300_000 }, ServerOp::Timeout]);
    out.push(("idle-eviction-and-rejoin", roomy(idle)));
    let mut failures = [hello.clone(), handshake(5, JOIN, 0, 2, 1).to_vec()].concat();
    failures.extend([
        ServerOp::SendFailed { to: 5 },
        say(5, 0, 0),
        ServerOp::SendFailed { to: 5 },
    ]);
    failures.extend([
        ServerOp::SendFailed { to: 5 },
        ServerOp::SendFailed { to: 0 },
        ServerOp::SendFailed { to: 0 },
    ]);
    out.push(("send-failure-eviction", roomy(failures)));
    let mut foreign = hello.clone();
    foreign.extend([say(1, 1, 2), say(2, 1, 2), say(6, 1, 2), say(3, 0, 2)]); // wrong IP, mapped IPv4 ok
    foreign.push(ServerOp::Datagram {
        from: 0,
        token: 1,
        room: 2,
        message: 2,
    }); // token of another room
    foreign.extend([say(0, 1, 6), say(0, 1, 4), say(0, 1, 3), say(0, 1, 7)]);
    let unknown = room_datagram(b"lobby", &[b'0'; 32], b"hi");
    for data in [
        vec![],
        vec![1],
        vec![0; 4097],
        b"\x05\x20lobby".to_vec(),
        unknown,
    ] {
        foreign.push(ServerOp::RawDatagram {
            from: 0,
            data: Long(data),
        });
    }
    out.push(("foreign-tokens-and-bad-datagrams", roomy(foreign)));
    let mut host = [hello.clone(), handshake(5, JOIN, 0, 2, 1).to_vec()].concat();
    host.extend([say(5, 0, 2), say(0, 2, 1), say(1, 1, 2)]);
    out.push(("host-leaves-room-closes", roomy(host)));
    // One of everything: a second connection (same IP, mapped) is refused, then a
    // second member and a second room are refused as server full.
    let mut tight = vec![ServerOp::Accept { peer: 0 }, ServerOp::Accept { peer: 2 }];
    tight.extend([ServerOp::Request {
        conn: 1,
        kind: CREATE,
        room: 0,
        user: 0,
        password: 0,
        chunk: 0,
    }]);
    tight.extend([
        ServerOp::Accept { peer: 1 },
        ServerOp::Port {
            conn: 1,
            port: 4000,
        },
    ]);
    tight.extend(handshake(1, JOIN, 0, 1, 0));
    tight.extend(handshake(1, CREATE, 1, 1, 0));
    tight.extend([ServerOp::Accept { peer: 1 }, ServerOp::AdvanceFar]);
    out.push((
        "tight-limits",
        ServerOps {
            config: FuzzConfig::TIGHT,
            ops: tight,
        },
    ));
    let mut shutdown = hello;
    shutdown.extend([
        ServerOp::Accept { peer: 4 },
        ServerOp::Shutdown,
        ServerOp::FireNext,
    ]);
    out.push(("shutdown", roomy(shutdown)));
    // Other implementations' requests: `user_name`, and the port in the JSON instead
    // of a port step; bob then hears alice before he ever speaks.
    let interop = vec![
        ServerOp::Accept { peer: 0 },
        request(CREATE | INTEROP, 0, 0, 0),
        ServerOp::TcpClosed { conn: 0 },
        ServerOp::Accept { peer: 5 },
        request(JOIN | INTEROP | 0x40, 0, 1, 0),
        ServerOp::TcpBytes {
            conn: 0,
            data: Short(vec![1, 2, 3]),
        },
        say(0, 1, 2),
    ];
    out.push(("interop-json-port", roomy(interop)));
    // Guessing: bob's wrong password is answered 3, his next tries 8 (TRY_LATER) until
    // the wait is over, the right one included.
    let mut guessing = handshake(0, CREATE, 0, 0, 1).to_vec();
    guessing.extend(handshake(1, JOIN, 0, 1, 2));
    guessing.extend(handshake(1, JOIN, 0, 1, 2));
    guessing.extend(handshake(1, JOIN, 0, 1, 2));
    guessing.extend(handshake(1, JOIN, 0, 1, 1));
    guessing.push(ServerOp::Advance { millis: 1_000 });
    guessing.extend(handshake(1, JOIN, 0, 1, 1));
    out.push(("password-guessing", roomy(guessing)));
    out
}

pub(super) fn relay_scenarios() -> Vec<(&'static str, RelayOps)> {
    let roomy = |ops| RelayOps {
        config: FuzzConfig::ROOMY,
        ops,
    };
    let say = |from, user, message| RelayOp::Datagram {
        from,
        user,
        message,
    };
    let checked = |ops| RelayOps {
        config: FuzzConfig {
            idle: 2,
            ..FuzzConfig::ROOMY
        },
        ops,
    };
    vec![
        (
            // The address check on: first datagrams are answered with a code (a 2-byte
            // one with nothing), the harness echoes it, then the chat goes on.
            "address-check",
            checked(vec![
                RelayOp::RawDatagram {
                    from: 3,
                    data: Long(vec![1, b'x']),
                },
                say(0, 0, 2),
                say(1, 1, 4),
                say(0, 0, 2),
                say(1, 1, 1),
            ]),
        ),
        (
            "chat-rename-exit",
            roomy(vec![
                say(0, 0, 0),
                say(1, 1, 2),
                say(0, 0, 4),
                say(0, 2, 2),
                say(1, 1, 1),
                say(1, 1, 1),
            ]),
        ),
        (
            "idle-eviction",
            roomy(vec![
                say(0, 0, 0),
                say(1, 1, 0),
                RelayOp::Advance { millis: 200_000 },
                say(1, 1, 2),
                RelayOp::FireNext,
                RelayOp::FireNext,
                say(0, 0, 2),
                RelayOp::AdvanceFar,
            ]),
        ),
        (
            "send-failures",
            roomy(vec![
                say(0, 0, 0),
                say(1, 1, 0),
                RelayOp::SendFailed { to: 1 },
                say(1, 1, 0),
                RelayOp::SendFailed { to: 1 },
                RelayOp::SendFailed { to: 1 },
            ]),
        ),
        (
            "server-full",
            RelayOps {
                config: FuzzConfig::TIGHT,
                ops: vec![say(0, 0, 2), say(1, 1, 2), say(1, 1, 1), say(2, 0, 2)],
            },
        ),
        (
            "bad-datagrams",
            roomy(vec![
                say(0, 4, 2),
                say(0, 5, 2),
                say(0, 6, 2),
                say(0, 7, 2),
                say(0, 0, 6),
                RelayOp::RawDatagram {
                    from: 0,
                    data: Long(b"\x00hello".to_vec()),
                },
                RelayOp::RawDatagram {
                    from: 0,
                    data: Long(vec![]),
                },
                RelayOp::RawDatagram {
                    from: 0,
                    data: Long(vec![1; 4097]),
                },
                say(3, 3, 5),
            ]),
        ),
        (
            "shutdown",
            roomy(vec![
                say(0, 0, 0),
                say(4, 1, 0),
                RelayOp::Shutdown,
                say(0, 0, 2),
            ]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_core::output::{DropReason, Event, Output};
    use std::collections::HashSet;

    /// What the scenarios reached, all together.
    #[derive(Default)]
    struct Reached {
        statuses: HashSet<u8>,
        drops: HashSet<DropReason>,
        events: HashSet<&'static str>,
        sent: Vec<Vec<u8>>,
    }

    impl Reached {
        fn add(&mut self, outputs: Vec<Output>) {
            for output in outputs {
                match output {
                    Output::Datagram { payload, .. } => self.sent.push(payload.to_vec()),
                    Output::Event(Event::Handshake { status, .. }) => {
                        self.statuses.insert(status.code());
                    }
                    Output::Event(Event::DatagramDropped { reason, .. }) => {
                        self.drops.insert(reason);
                    }
                    Output::Event(event) => {
                        self.events.insert(match event {
                            Event::ConnectionRefused { .. } => "refused",
                            Event::HandshakeTimedOut { .. } => "timed out",
                            Event::RoomCreated { .. } => "created",
                            Event::RoomClosed { .. } => "closed",
                            Event::MemberJoined { .. } => "joined",
                            Event::MemberLeft { .. } => "left",
                            _ => "evicted",
                        });
                    }
                    _ => {}
                }
            }
        }

        fn sent(&self, text: &[u8]) -> bool {
            self.sent.iter().any(|p| p == text)
        }
    }

    #[test]
    fn the_interop_scenario_reaches_a_member_by_its_json_port_alone() {
        let (_, ops) = server_scenarios()
            .into_iter()
            .find(|(name, _)| *name == "interop-json-port")
            .expect("the scenario");
        let outputs = super::super::server_ops::run(&ops.encode(), true);
        let bob = super::super::pools::address(5);
        assert!(outputs.contains(&Output::Datagram {
            to: bob,
            payload: bytes::Bytes::from_static(b"alice: hi"),
        }));
    }

    #[test]
    fn server_scenarios_reach_every_status_drop_and_notice() {
        let mut reached = Reached::default();
        for (_, ops) in server_scenarios() {
            reached.add(super::super::server_ops::run(&ops.encode(), true));
        }
        assert_eq!(reached.statuses, (0..9).collect());
        let room_drops = &DropReason::ALL[..6];
        assert_eq!(reached.drops, room_drops.iter().copied().collect());
        assert_eq!(reached.events.len(), 7, "{:?}", reached.events);
        for text in [
            "alice: hi",
            "bob: hi",
            "* bob joined",
            "* bob left",
            "* room closed: host left",
        ] {
            assert!(reached.sent(text.as_bytes()), "{text} never sent");
        }
        assert!(reached.sent(b"* disconnected: idle for 300 s, join again"));
        assert!(reached.sent(b"* room closed: server shutting down"));
        assert!(
            reached
                .sent
                .iter()
                .any(|p| p.len() == 4094 && p.starts_with(b"uuu")),
            "no cut line"
        );
    }

    #[test]
    fn relay_scenarios_reach_the_address_check() {
        let (_, ops) = relay_scenarios()
            .into_iter()
            .find(|(name, _)| *name == "address-check")
            .expect("the scenario");
        let mut reached = Reached::default();
        reached.add(super::super::relay_ops::run(&ops.encode(), true));
        assert!(reached.drops.contains(&DropReason::Unverified));
        assert!(reached.sent(b"\x00welcome, alice") && reached.sent(b"\x00welcome, bob"));
        assert!(reached.sent(b"\x05alicehi"), "chat after the check");
    }

    #[test]
    fn relay_scenarios_reach_every_drop_and_relay() {
        let mut reached = Reached::default();
        for (_, ops) in relay_scenarios() {
            reached.add(super::super::relay_ops::run(&ops.encode(), true));
        }
        let relay_drops = [0, 1, 5, 6, 7, 10].map(|i| DropReason::ALL[i]);
        assert_eq!(reached.drops, relay_drops.into_iter().collect());
        assert_eq!(
            reached.events,
            ["joined", "left", "evicted"].into_iter().collect()
        );
        assert!(
            reached.sent(b"\x03bobhi")
                && reached.sent(b"\x05carolhi")
                && reached.sent(b"\x00bob left")
        );
    }

    #[test]
    fn seed_names_are_unique_per_target() {
        let seeds = super::super::seeds::all();
        let names: HashSet<_> = seeds.iter().map(|s| (s.target, &s.name)).collect();
        assert_eq!(names.len(), seeds.len());
    }
}
