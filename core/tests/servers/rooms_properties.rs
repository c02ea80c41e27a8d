//! Arbitrary input sequences: no panic, and every property of
//! `ocm_core::invariants::check_step` (invariants, datagrams only to member addresses,
//! timers) after every input, which the harness asserts.

use crate::common::*;
use proptest::prelude::*;

/// One step: a core input as it is, or one built from the protocol so that sequences
/// reach rooms with members (a request frame, a chat line with a token handed out).
#[derive(Clone, Debug)]
enum Step {
    Input(Input<Vec<u8>>),
    Request {
        conn: u8,
        op: u8,
        room: u8,
        user: u8,
    },
    Chat {
        from: u8,
        member: u8,
        text: String,
    },
    Advance(u16),
}

fn udp(i: u8) -> SocketAddr {
    addr(&format!("10.0.0.{}:4000", i + 1))
}

fn step() -> impl Strategy<Value = Step> {
    let conn = || (0u64..6).prop_map(ConnId);
    prop_oneof![
        (conn(), 0u8..3).prop_map(|(conn, ip)| Step::Input(Input::TcpAccepted {
            conn,
            peer: addr(&format!("10.0.0.{}:5000", ip + 1)),
        })),
        (conn(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(conn, data)| Step::Input(Input::TcpData { conn, data })),
        (0u8..6, 0u8..4, 0u8..3, 0u8..4).prop_map(|(conn, op, room, user)| Step::Request {
            conn,
            op,
            room,
            user
        }),
        conn().prop_map(|conn| Step::Input(Input::TcpClosed { conn })),
        (0u8..3, proptest::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(f, data)| { Step::Input(Input::Datagram { from: udp(f), data }) }),
        (0u8..3, 0u8..8, "[a-z/]{0,6}").prop_map(|(from, member, text)| Step::Chat {
            from,
            member,
            text
        }),
        (0u8..3, any::<bool>()).prop_map(|(f, icmp)| {
            let cause = if icmp {
                SendFailure::Icmp
            } else {
                SendFailure::Refused
            };
            Step::Input(Input::SendFailed { to: udp(f), cause })
        }),
        (0u16..400).prop_map(Step::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn arbitrary_inputs_keep_the_server_consistent(steps in proptest::collection::vec(step(), 0..60)) {
        let mut h = Harness::rooms(Config {
            max_rooms: 2,
            max_members_per_room: 3,
            max_handshakes: 4,
            max_handshakes_per_ip: 2,
            idle_timeout: Duration::from_secs(60),
            ..Config::default()
        });
        for step in steps {
            match step {
                Step::Input(input) => {
                    if let Input::TcpAccepted { conn, .. } = input {
                        h.tcp.remove(&conn);
                    }
                    h.feed(input.as_slice());
                }
                Step::Request { conn, op, room, user } => {
                    let frame = encode_frame(&[b'r', b'0' + room], op, 0, &[b'u', b'0' + user]);
                    h.tcp_send(ConnId(u64::from(conn)), &frame);
                }
                Step::Chat { from, member, text } => {
                    // speak with a real token when one was handed out
                    let tokens: Vec<Vec<u8>> = h.tcp.values()
                        .filter(|r| r.received.len() > 70)
                        .map(|r| r.received[r.received.len() - 32..].to_vec())
                        .collect();
                    if let Some(token) = tokens.get(usize::from(member) % tokens.len().max(1)) {
                        for room in [&b"r0"[..], b"r1", b"r2"] {
                            let d = RoomDatagram { room, token, message: text.as_bytes() };
                            h.datagram(&udp(from).to_string(), &d.encode().unwrap());
                        }
                    }
                }
                Step::Advance(secs) => h.advance(Duration::from_secs(u64::from(secs))),
            }
            h.take();
            let counts = h.server.counts();
            prop_assert!(counts.rooms <= 2 && counts.connections <= 4);
        }
    }
}
