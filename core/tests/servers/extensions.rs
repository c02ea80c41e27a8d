//! The ocm extensions beyond the specification: `/who` and liveness probes
//! (docs/PROTOCOL.md, "Extensions"), in both modes.

use crate::common::*;

fn probe(token: &[u8]) -> Vec<u8> {
    RoomDatagram {
        room: b"",
        token,
        message: b"ping",
    }
    .encode()
    .unwrap()
    .to_vec()
}

#[test]
fn who_answers_the_asker_only_and_is_never_relayed() {
    let (mut h, _ta, tb) = lobby();
    h.say(B, "lobby", &tb, "/who");
    assert_eq!(
        h.take(),
        vec![(addr(B), "* members: alice (host), bob".to_string())]
    );
    assert_eq!(h.server.stats().messages_relayed, 0);
}

#[test]
fn who_with_a_stolen_token_from_another_address_gets_nothing() {
    let (mut h, ta, _) = lobby();
    h.say("10.9.9.9:1", "lobby", &ta, "/who");
    assert!(h.take().is_empty());
    assert_eq!(h.dropped(), vec![DropReason::WrongAddress]);
}

#[test]
fn who_in_a_full_room_fits_one_datagram_and_counts_the_rest() {
    let mut h = Harness::rooms(Config::default());
    let host = "h".repeat(255);
    let ta = h.create(A_TCP, "big", &host);
    h.say(A, "big", &ta, "");
    for i in 0..40 {
        let name = format!("{i:0>250}");
        let peer = format!("10.1.0.{}:50000", i + 1);
        h.join(&peer, "big", &name);
    }
    h.take();
    h.say(A, "big", &ta, "/who");
    let got = h.take();
    assert_eq!(got.len(), 1);
    let (to, text) = &got[0];
    assert_eq!(*to, addr(A));
    assert!(text.len() <= 4094, "{}", text.len());
    assert!(
        text.starts_with(&format!("* members: {host} (host), ")),
        "{text}"
    );
    let more: usize = text
        .rsplit_once(", and ")
        .and_then(|(_, t)| t.strip_suffix(" more"))
        .and_then(|n| n.parse().ok())
        .expect("a count of those left out");
    let shown = text.matches(", ").count(); // separators before each later name
    assert_eq!(shown + more, 41, "{text}");
}

#[test]
fn a_members_probe_is_its_keepalive_and_answered_with_the_room_size() {
    let (mut h, _ta, tb) = lobby();
    h.advance(Duration::from_secs(200));
    h.datagram(B, &probe(&tb));
    assert_eq!(h.take(), vec![(addr(B), "* alive: 2 members".to_string())]);
    // 200 + 200 s: alice (silent since 0) is evicted at 300 s, bob is still in.
    h.advance(Duration::from_secs(200));
    let left = h.room_server().members_of("lobby");
    assert!(left.is_none(), "the host went idle, so the room closed");
    let (mut h, ta, tb) = lobby();
    h.advance(Duration::from_secs(200));
    h.datagram(A, &probe(&ta));
    h.datagram(B, &probe(&tb));
    h.take();
    h.advance(Duration::from_secs(200));
    assert_eq!(h.room_server().members_of("lobby").unwrap().len(), 2);
}

#[test]
fn a_probe_with_an_unknown_token_is_told_not_a_member_but_never_amplified() {
    let (mut h, ta, _) = lobby();
    let stranger = "10.7.7.7:7000";
    let unknown = b"0123456789abcdef0123456789abcdef";
    h.datagram(stranger, &probe(unknown));
    assert_eq!(
        h.take(),
        vec![(addr(stranger), "* not a member".to_string())]
    );
    // A stolen token from another IP: the same answer, and nothing changes.
    h.datagram(stranger, &probe(&ta));
    assert_eq!(
        h.take(),
        vec![(addr(stranger), "* not a member".to_string())]
    );
    assert_eq!(h.server.stats().probes_refused, 2);
    // A probe shorter than the answer gets nothing back.
    h.datagram(stranger, &probe(b"x"));
    assert!(h.take().is_empty());
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
    let members = h.room_server().members_of("lobby").unwrap();
    assert!(members.iter().all(|m| m.udp != Some(addr(stranger))));
}

#[test]
fn answers_to_strangers_are_rate_limited() {
    let (mut h, _, _) = lobby();
    let unknown = probe(b"0123456789abcdef0123456789abcdef");
    let limit = ocm_core::probe::UNVERIFIED_ANSWERS_PER_SEC as usize;
    for i in 0..limit * 3 {
        h.datagram(&format!("10.8.{}.{}:9", i / 250, i % 250 + 1), &unknown);
    }
    assert_eq!(h.take().len(), limit, "one bucket's worth at once");
    h.advance(Duration::from_secs(1));
    for i in 0..limit * 3 {
        h.datagram(&format!("10.9.{}.{}:9", i / 250, i % 250 + 1), &unknown);
    }
    assert_eq!(h.take().len(), limit, "then the rate");
}

#[test]
fn relay_probes_and_who() {
    let mut h = Harness::relay(Config::default());
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    h.take_bytes();
    h.datagram(B, b"\x00ping");
    assert_eq!(
        h.take_bytes(),
        vec![(addr(B), b"\x00alive: 2 members".to_vec())]
    );
    h.relay_say(A, "alice", "/who");
    assert_eq!(
        h.take_bytes(),
        vec![(addr(A), b"\x00members: alice, bob".to_vec())]
    );
    // From an address that is not registered: dropped, as before; nothing registers.
    h.datagram(C, b"\x00ping");
    assert!(h.take_bytes().is_empty());
    assert_eq!(h.relay_server().clients().len(), 2);
}

#[test]
fn a_client_session_reads_the_answers() {
    let (mut h, _ta, tb) = lobby();
    let now = std::time::Instant::now();
    let mut chat = ChatSession::room(now, "lobby", &tb, Duration::from_secs(10)).unwrap();
    chat.enable_liveness(now);
    h.flush(B, &mut chat);
    let answers = h.received_by(B);
    assert_eq!(answers, vec!["* alive: 2 members".to_string()]);
    assert_eq!(
        chat.handle_datagram(answers[0].as_bytes()),
        Some(Incoming::Notice(Notice::Alive(2)))
    );
    assert!(chat.is_liveness_confirmed());
}
