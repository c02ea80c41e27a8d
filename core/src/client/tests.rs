//! Client state machine tests: handshake answers, framing, keepalives, notices.

use super::*;
use crate::probe::Lost;
use crate::token::Token;
use crate::wire::tcrp::{encode_complete, encode_response};

fn token() -> Token {
    Token::from_bytes([0xab; 16])
}

#[test]
fn request_is_a_tcrp_frame_with_a_json_payload() {
    let hs = Handshake::join("lobby", "bob", Some("pw")).unwrap();
    let mut decoder = FrameDecoder::new(4096);
    let frame = decoder.decode(&mut hs.request()).unwrap().unwrap();
    assert_eq!((frame.operation, frame.state), (2, 0));
    assert_eq!(&frame.room[..], b"lobby");
    assert_eq!(&frame.payload[..], br#"{"password":"pw","username":"bob"}"#);
}

#[test]
fn bad_names_are_refused_before_anything_is_sent() {
    assert_eq!(
        Handshake::create("", "bob", None).unwrap_err(),
        InvalidName::Room(NameError::Empty)
    );
    assert_eq!(
        Handshake::create("r", "*bob", None).unwrap_err(),
        InvalidName::Username(NameError::StartsWithStar)
    );
    assert!(ChatSession::relay(Instant::now(), "a\nb", Duration::from_secs(1)).is_err());
}

#[test]
fn token_arrives_after_ok_even_byte_by_byte() {
    let mut hs = Handshake::create("lobby", "alice", None).unwrap();
    let answer = [
        encode_response(b"lobby", 1, Status::Ok),
        encode_complete(b"lobby", 1, &token()),
    ]
    .concat();
    let (last, rest) = answer.split_last().unwrap();
    for byte in rest {
        assert_eq!(hs.handle_data(&[*byte]), Ok(None));
    }
    assert_eq!(
        hs.handle_data(&[*last]).unwrap().unwrap()[..],
        token().to_hex()[..]
    );
}

#[test]
fn refusals_and_nonsense_are_errors() {
    let mut hs = Handshake::create("lobby", "alice", None).unwrap();
    assert_eq!(
        hs.handle_data(&encode_response(b"lobby", 1, Status::RoomExists)),
        Err(HandshakeError::Refused(Status::RoomExists))
    );
    let mut hs = Handshake::create("lobby", "alice", None).unwrap();
    assert_eq!(
        hs.handle_data(&encode_complete(b"lobby", 1, &token())),
        Err(HandshakeError::Protocol("unexpected frame")),
        "a token before the OK"
    );
    let mut hs = Handshake::create("lobby", "alice", None).unwrap();
    assert_eq!(
        hs.handle_data(&encode_response(b"lobby", 2, Status::Ok)),
        Err(HandshakeError::Protocol("answer for another operation"))
    );
    let mut hs = Handshake::create("lobby", "alice", None).unwrap();
    assert_eq!(
        hs.handle_data(&encode_frame(b"lobby", 1, 1, &[9])),
        Err(HandshakeError::Protocol("unknown status code"))
    );
    assert_eq!(hs.handle_eof(), HandshakeError::Closed);
}

#[test]
fn room_session_registers_at_once_and_frames_messages() {
    let now = Instant::now();
    let hex = token().to_hex();
    let mut chat = ChatSession::room(now, "lobby", &hex, Duration::from_secs(60)).unwrap();
    let registration = chat.poll_transmit().unwrap();
    assert_eq!(&registration[..2], &[5, 32]);
    assert_eq!(&registration[2..7], b"lobby");
    assert_eq!(&registration[7..], &hex[..]);
    chat.send(now, "hi").unwrap();
    let message = chat.poll_transmit().unwrap();
    assert_eq!(&message[39..], b"hi");
    assert_eq!(chat.poll_transmit(), None);
    assert_eq!(chat.max_message_len(), 4096 - 2 - 5 - 32);
    let too_long = "x".repeat(chat.max_message_len() + 1);
    assert_eq!(
        chat.send(now, &too_long),
        Err(SendError::TooLong { max: 4057 })
    );
    assert!(chat.send(now, &too_long[1..]).is_ok());
}

#[test]
fn keepalives_follow_the_last_datagram_sent() {
    let t0 = Instant::now();
    let minute = Duration::from_secs(60);
    let mut chat = ChatSession::relay(t0, "bob", minute).unwrap();
    chat.poll_transmit();
    assert_eq!(chat.poll_timeout(), Some(t0 + minute));
    chat.send(t0 + Duration::from_secs(30), "hi").unwrap();
    chat.poll_transmit();
    chat.handle_timeout(t0 + minute);
    assert_eq!(
        chat.poll_transmit(),
        None,
        "a message counts as a keepalive"
    );
    chat.handle_timeout(t0 + Duration::from_secs(90));
    assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x03bob"[..]));
    assert_eq!(chat.poll_timeout(), Some(t0 + Duration::from_secs(150)));
}

#[test]
fn incoming_lines_and_notices_are_told_apart() {
    let now = Instant::now();
    let mut chat = ChatSession::room(now, "r", b"tok", Duration::from_secs(60)).unwrap();
    assert_eq!(
        chat.handle_datagram(b"bob: * not a notice"),
        Some(Incoming::Line("bob: * not a notice".into()))
    );
    assert_eq!(
        chat.handle_datagram(b"* bob joined"),
        Some(Incoming::Notice(Notice::Joined("bob".into())))
    );
    assert_eq!(chat.handle_datagram(b"\xff"), None);
    assert!(!chat.is_ended());
    let closed = chat.handle_datagram(b"* room closed: host left").unwrap();
    assert_eq!(closed.to_string(), "* room closed: host left");
    assert_eq!(chat.ended(), Some(SessionEnd::RoomClosed));
    // The first ending stands: a later notice does not rewrite it.
    chat.handle_datagram(b"* disconnected: idle for 300 s, join again");
    assert_eq!(chat.ended(), Some(SessionEnd::RoomClosed));
    assert_eq!(chat.poll_timeout(), None);
    assert_eq!(chat.send(now, "hello?"), Err(SendError::Ended));
}

#[test]
fn relay_session_reads_relay_framing() {
    let now = Instant::now();
    let mut chat = ChatSession::relay(now, "bob", Duration::from_secs(60)).unwrap();
    assert_eq!(
        chat.handle_datagram(b"\x05alicehi"),
        Some(Incoming::Line("alice: hi".into()))
    );
    assert_eq!(
        chat.handle_datagram(b"\x00disconnected: idle for 300 s, join again"),
        Some(Incoming::Notice(Notice::Disconnected(
            "idle for 300 s".into()
        )))
    );
    assert!(chat.is_ended());
    assert_eq!(chat.handle_datagram(b"\x09x"), None);
}

#[test]
fn exit_and_leave_end_the_session_once() {
    let now = Instant::now();
    let mut chat = ChatSession::relay(now, "bob", Duration::from_secs(60)).unwrap();
    chat.poll_transmit();
    chat.send(now, "/exit").unwrap();
    assert_eq!(chat.ended(), Some(SessionEnd::Left));
    chat.leave(now);
    // Twice, so one lost datagram does not leave a ghost; then nothing more.
    assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x03bob/exit"[..]));
    assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x03bob/exit"[..]));
    assert_eq!(chat.poll_transmit(), None);
}

#[test]
fn an_eviction_notice_ends_the_session_as_disconnected() {
    let now = Instant::now();
    let mut chat = ChatSession::room(now, "r", b"tok", Duration::from_secs(60)).unwrap();
    assert_eq!(chat.ended(), None);
    chat.handle_datagram(b"* disconnected: 3 failed sends, join again");
    assert_eq!(chat.ended(), Some(SessionEnd::Disconnected));
}

#[test]
fn liveness_probes_replace_keepalives_and_their_answers_keep_the_session() {
    let t0 = Instant::now();
    let k = Duration::from_secs(10);
    let mut chat = ChatSession::room(t0, "r", b"tok", k).unwrap();
    chat.poll_transmit();
    chat.enable_liveness(t0);
    assert_eq!(
        chat.poll_transmit().as_deref(),
        Some(&b"\x00\x03tokping"[..])
    );
    assert_eq!(
        chat.handle_datagram(b"* alive: 2 members"),
        Some(Incoming::Notice(Notice::Alive(2)))
    );
    assert!(chat.is_liveness_confirmed());
    assert_eq!(chat.room_size(), Some(2));
    assert_eq!(chat.poll_timeout(), Some(t0 + k));
    chat.handle_timeout(t0 + k);
    assert_eq!(
        chat.poll_transmit().as_deref(),
        Some(&b"\x00\x03tokping"[..])
    );
    // Silence: a retry, then lost, within two intervals of the last answer.
    chat.handle_timeout(t0 + k + k / 2);
    assert!(chat.poll_transmit().is_some());
    assert!(!chat.is_ended());
    chat.handle_timeout(t0 + 2 * k);
    assert!(chat.is_ended());
    assert_eq!(chat.ended(), Some(SessionEnd::Lost(Lost::NoAnswer)));
    assert_eq!(chat.poll_timeout(), None);
}

#[test]
fn not_a_member_ends_the_session_only_for_a_client_that_probes() {
    let t0 = Instant::now();
    let k = Duration::from_secs(10);
    let mut chat = ChatSession::room(t0, "r", b"tok", k).unwrap();
    chat.handle_datagram(b"* not a member");
    assert!(!chat.is_ended(), "no probe was sent: not an answer");
    chat.enable_liveness(t0);
    chat.handle_datagram(b"* not a member");
    assert_eq!(chat.ended(), Some(SessionEnd::Lost(Lost::NotMember)));
    assert!(chat.is_ended());
}

#[test]
fn a_server_without_the_extension_gets_keepalives_again() {
    let t0 = Instant::now();
    let k = Duration::from_secs(10);
    let mut chat = ChatSession::relay(t0, "bob", k).unwrap();
    chat.poll_transmit();
    chat.enable_liveness(t0);
    assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x00ping"[..]));
    for at in [k, k + k / 2] {
        chat.handle_timeout(t0 + at);
        assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x00ping"[..]));
    }
    chat.handle_timeout(t0 + 2 * k);
    assert!(!chat.is_ended(), "never answered: no extension, not lost");
    assert!(!chat.is_liveness_on());
    assert_eq!(chat.poll_transmit().as_deref(), Some(&b"\x03bob"[..]));
    assert_eq!(chat.poll_timeout(), Some(t0 + 3 * k));
}

#[test]
fn a_lost_session_can_be_tried_again_and_is_confirmed_by_an_answer() {
    let t0 = Instant::now();
    let k = Duration::from_secs(10);
    let mut chat = ChatSession::room(t0, "r", b"tok", k).unwrap();
    assert!(!chat.resume(t0), "not lost: nothing to resume");
    chat.enable_liveness(t0);
    chat.handle_datagram(b"* alive: 1 members");
    for at in [k, k + k / 2, 2 * k] {
        chat.handle_timeout(t0 + at);
    }
    assert_eq!(chat.ended(), Some(SessionEnd::Lost(Lost::NoAnswer)));
    while chat.poll_transmit().is_some() {}
    assert!(chat.resume(t0 + 3 * k));
    assert!(!chat.is_ended());
    assert_eq!(
        chat.poll_transmit().as_deref(),
        Some(&b"\x00\x03tokping"[..])
    );
    assert!(
        !chat.is_liveness_confirmed(),
        "not until the server answers"
    );
    chat.handle_datagram(b"* alive: 1 members");
    assert!(chat.is_liveness_confirmed());
    chat.leave(t0 + 3 * k);
    assert!(!chat.resume(t0 + 3 * k), "a session that left stays left");
}
