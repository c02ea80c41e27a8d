//! The seed corpus, written as typed inputs: every TCRP operation, state and status,
//! the edge sizes (payload 0, 255, the limit, limit + 1, a 29-byte size with high bytes
//! set, room names of 0 and 255 bytes), the datagram shapes of both modes, and server
//! scenarios that reach every status, eviction and drop reason.
//!
//! `tests/fuzz_corpus.rs` checks that `fuzz/corpus/TARGET/seed-NAME` holds exactly
//! these bytes, and rewrites them when run with `OCM_WRITE_SEEDS=1`.

use super::scenarios::{relay_scenarios, server_scenarios};
use super::TcrpInput;
use ocm_core::token::Token;
use ocm_core::wire::request::encode_payload;
use ocm_core::wire::tcrp::{encode_complete, encode_frame, encode_response, Status, HEADER_LEN};

/// One seed file.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target, which is also the corpus directory.
    pub target: &'static str,
    /// File name without the `seed-` prefix.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |target, name: &str, bytes| {
        seeds.push(Seed {
            target,
            name: name.to_owned(),
            bytes,
        })
    };
    for (name, input) in tcrp_inputs() {
        add("tcrp_stream", &name, input.encode());
    }
    for (name, bytes) in room_datagrams() {
        add("room_datagram", name, bytes);
    }
    for (name, bytes) in relay_datagrams() {
        add("relay_datagram", name, bytes);
    }
    for (name, ops) in server_scenarios() {
        add("server_ops", name, ops.encode());
    }
    for (name, ops) in relay_scenarios() {
        add("relay_ops", name, ops.encode());
    }
    seeds
}

const LIMIT: u16 = 4096;

fn token() -> Token {
    Token::from_bytes(*b"0123456789abcdef")
}

/// A header whose 29-byte size field is `size` exactly.
pub(super) fn raw_header(room_len: u8, operation: u8, state: u8, size: [u8; 29]) -> Vec<u8> {
    let mut header = vec![room_len, operation, state];
    header.extend(size);
    assert_eq!(header.len(), HEADER_LEN);
    header
}

fn tcrp_inputs() -> Vec<(String, TcrpInput)> {
    let whole = |stream: Vec<u8>| TcrpInput {
        limit: LIMIT,
        chunks: vec![],
        stream,
    };
    let mut out = Vec::new();
    for op in [1, 2] {
        let json = encode_payload("alice", Some("pw"));
        out.push((
            format!("request-op{op}-json"),
            whole(encode_frame(b"lobby", op, 0, &json).to_vec()),
        ));
        out.push((
            format!("request-op{op}-raw"),
            whole(encode_frame(b"lobby", op, 0, b"bob").to_vec()),
        ));
        for status in Status::ALL {
            let frame = encode_response(b"lobby", op, status).to_vec();
            out.push((
                format!("response-op{op}-status{}", status.code()),
                whole(frame),
            ));
        }
        out.push((
            format!("complete-op{op}"),
            whole(encode_complete(b"lobby", op, &token()).to_vec()),
        ));
    }
    for (op, state) in [(0, 0), (3, 0), (255, 0), (1, 3), (2, 255)] {
        out.push((
            format!("codes-op{op}-state{state}"),
            whole(encode_frame(b"lobby", op, state, b"x").to_vec()),
        ));
    }
    for size in [0, 255, usize::from(LIMIT), usize::from(LIMIT) + 1] {
        let frame = encode_frame(b"lobby", 1, 0, &vec![b'a'; size]).to_vec();
        out.push((format!("payload-{size}"), whole(frame)));
    }
    out.push((
        "room-0".into(),
        whole(encode_frame(b"", 1, 0, b"alice").to_vec()),
    ));
    out.push((
        "room-255".into(),
        whole(encode_frame(&[b'r'; 255], 2, 0, b"alice").to_vec()),
    ));
    let mut high = [0; 29];
    high[0] = 0xff;
    let mut stream = raw_header(1, 1, 0, high);
    stream.push(b'r');
    out.push(("size-high-byte".into(), whole(stream)));
    let mut stream = raw_header(5, 2, 0, [0xff; 29]);
    stream.extend(b"lobby");
    out.push(("size-all-ones".into(), whole(stream)));
    let mut max64 = [0; 29];
    max64[21..].fill(0xff);
    out.push(("size-u64-max".into(), whole(raw_header(0, 1, 0, max64))));
    out.push(("header-only-partial".into(), whole(vec![5, 1, 0, 0, 0])));
    let conversation = [
        encode_response(b"lobby", 1, Status::Ok),
        encode_complete(b"lobby", 1, &token()),
        encode_frame(b"den", 2, 0, b"carol"),
    ]
    .concat();
    for chunks in [
        vec![],
        vec![1],
        vec![32],
        vec![31, 2],
        vec![0, 5],
        vec![255],
    ] {
        let lengths: Vec<String> = chunks.iter().map(u8::to_string).collect();
        let name = match lengths.is_empty() {
            true => "conversation-whole".to_owned(),
            false => format!("conversation-chunks-{}", lengths.join("-")),
        };
        out.push((
            name,
            TcrpInput {
                limit: LIMIT,
                chunks,
                stream: conversation.clone(),
            },
        ));
    }
    let small = encode_frame(b"r", 1, 0, b"").to_vec();
    out.push((
        "limit-0".into(),
        TcrpInput {
            limit: 0,
            chunks: vec![],
            stream: small,
        },
    ));
    let big = encode_frame(b"r", 1, 0, &vec![b'b'; 5000]).to_vec();
    out.push((
        "limit-2-29".into(),
        TcrpInput {
            limit: u16::MAX,
            chunks: vec![7],
            stream: big,
        },
    ));
    let over = [
        encode_frame(b"r", 1, 0, &[b'o'; 17]),
        encode_frame(b"r", 2, 0, b"ok"),
    ]
    .concat();
    out.push((
        "over-limit-then-frame".into(),
        TcrpInput {
            limit: 16,
            chunks: vec![3],
            stream: over,
        },
    ));
    out
}

pub(super) fn room_datagram(room: &[u8], token: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = vec![room.len() as u8, token.len() as u8];
    for part in [room, token, message] {
        out.extend_from_slice(part);
    }
    out
}

fn room_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    let hex = token().to_hex();
    let max_message = vec![b'm'; 4096 - 2 - 5 - 32];
    vec![
        ("message", room_datagram(b"lobby", &hex, b"hi")),
        ("keepalive", room_datagram(b"lobby", &hex, b"")),
        ("exit", room_datagram(b"lobby", &hex, b"/exit")),
        (
            "multibyte",
            room_datagram("é".as_bytes(), &hex, "さくら".as_bytes()),
        ),
        ("not-utf8", room_datagram(b"lobby", &hex, &[0xff, 0xfe])),
        ("size-4096", room_datagram(b"lobby", &hex, &max_message)),
        (
            "size-4097",
            room_datagram(b"lobby", &hex, &[&max_message[..], b"m"].concat()),
        ),
        (
            "room-token-255",
            room_datagram(&[b'r'; 255], &[b't'; 255], b"hi"),
        ),
        ("empty", vec![]),
        ("one-byte", vec![1]),
        ("truncated", b"\x02\x02abc".to_vec()),
        ("notice-joined", b"* bob joined".to_vec()),
        ("notice-left", b"* bob left".to_vec()),
        (
            "notice-was-disconnected",
            b"* bob was disconnected".to_vec(),
        ),
        (
            "notice-disconnected",
            b"* disconnected: idle for 300 s, join again".to_vec(),
        ),
        ("notice-room-closed", b"* room closed: host left".to_vec()),
        ("line", b"alice: hi".to_vec()),
    ]
}

fn relay_datagram(name: &[u8], message: &[u8]) -> Vec<u8> {
    [&[name.len() as u8][..], name, message].concat()
}

fn relay_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("message", relay_datagram(b"alice", b"hi")),
        ("keepalive", relay_datagram(b"alice", b"")),
        ("exit", relay_datagram(b"alice", b"/exit")),
        ("notice-joined", relay_datagram(b"", b"bob joined")),
        ("notice-left", relay_datagram(b"", b"bob left")),
        (
            "notice-disconnected",
            relay_datagram(b"", b"disconnected: idle for 300 s"),
        ),
        (
            "notice-room-closed",
            relay_datagram(b"", b"room closed: server shutting down"),
        ),
        ("username-255", relay_datagram(&[b'u'; 255], b"hi")),
        ("size-4096", relay_datagram(b"alice", &[b'm'; 4090])),
        ("size-4097", relay_datagram(b"alice", &[b'm'; 4091])),
        ("star-username", relay_datagram(b"*star", b"hi")),
        ("not-utf8", relay_datagram(&[0xff], &[0xfe])),
        ("empty", vec![]),
        ("truncated", b"\x05bob".to_vec()),
    ]
}
