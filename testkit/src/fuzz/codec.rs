//! Codec targets: the incremental TCRP decoder on arbitrarily chunked bytes, and the
//! two UDP datagram decoders (rooms and relay mode) with the client code that reads
//! what a server sends.
//!
//! ```
//! use ocm_testkit::fuzz::{tcrp_stream, TcrpInput};
//! let stream = ocm_core::wire::tcrp::encode_frame(b"lobby", 1, 0, b"alice").to_vec();
//! // One byte at a time, decoder limit 4096: no panic, the frame re-encodes.
//! tcrp_stream(&TcrpInput { limit: 4096, chunks: vec![1], stream }.encode());
//! ```

use arbitrary::{Arbitrary, Unstructured};
use ocm_core::client::{ChatSession, Incoming};
use ocm_core::names;
use ocm_core::token::Token;
use ocm_core::wire::relay_datagram::RelayDatagram;
use ocm_core::wire::room_datagram::{relayed_line, RoomDatagram, MAX_RELAYED_LEN};
use ocm_core::wire::tcrp::{DecodeError, Frame, FrameDecoder, HEADER_LEN, MAX_PAYLOAD_LIMIT};
use ocm_core::wire::{DatagramError, MAX_DATAGRAM_LEN};
use std::time::{Duration, Instant};

/// Most chunk lengths a [`TcrpInput`] carries; they are used in turn, cyclically.
pub const MAX_CHUNKS: usize = 64;

/// A byte stream, the chunks it arrives in, and the decoder's payload limit.
///
/// Bytes: `limit` (u16 little-endian), then per chunk length a byte with the low bit
/// set followed by the length, then a byte with the low bit clear (left out when there
/// are [`MAX_CHUNKS`] lengths), then the stream itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcrpInput {
    /// The decoder's payload limit; `u16::MAX` stands for the largest, 2^29.
    pub limit: u16,
    /// Chunk lengths, cycled until the stream is used up; none means one chunk. A zero
    /// length feeds the decoder an empty slice.
    pub chunks: Vec<u8>,
    /// The bytes on the wire.
    pub stream: Vec<u8>,
}

impl TcrpInput {
    /// The payload limit given to the decoder.
    pub fn limit(&self) -> u32 {
        match self.limit {
            u16::MAX => MAX_PAYLOAD_LIMIT,
            limit => u32::from(limit),
        }
    }

    /// The bytes that [`Arbitrary`] reads back as `self`.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.chunks.len() <= MAX_CHUNKS,
            "at most {MAX_CHUNKS} chunk lengths"
        );
        let mut out = self.limit.to_le_bytes().to_vec();
        for len in &self.chunks {
            out.extend([1, *len]);
        }
        if self.chunks.len() < MAX_CHUNKS {
            out.push(0);
        }
        out.extend_from_slice(&self.stream);
        out
    }

    /// The stream cut into chunks.
    pub fn split(&self) -> Vec<&[u8]> {
        let mut rest = &self.stream[..];
        let mut out = Vec::new();
        if self.chunks.iter().all(|&len| len == 0) {
            out.extend(self.chunks.iter().map(|_| &rest[..0]));
            out.push(rest);
            return out;
        }
        for &len in self.chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(usize::from(len).min(rest.len()));
            out.push(chunk);
            rest = tail;
        }
        out
    }
}

impl<'a> Arbitrary<'a> for TcrpInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let limit = u16::arbitrary(u)?;
        let mut chunks = Vec::new();
        while chunks.len() < MAX_CHUNKS && bool::arbitrary(u)? {
            chunks.push(u8::arbitrary(u)?);
        }
        let stream = u.bytes(u.len())?.to_vec();
        Ok(TcrpInput {
            limit,
            chunks,
            stream,
        })
    }
}

/// Target: the TCRP stream decoder on arbitrary bytes in arbitrary chunks.
///
/// Never panics; never takes more than one frame's worth (32 + 255 + limit bytes)
/// before answering; a frame re-encodes to exactly the bytes it was decoded from; a
/// refusal (payload over the limit) comes right after the room name, before any payload
/// byte, and echoes the header as received; the chunking changes nothing: the results
/// equal those of decoding the stream in one piece.
pub fn tcrp_stream(data: &[u8]) {
    let Ok(input) = TcrpInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let chunked = decode_chunks(input.limit(), &input.stream, &input.split());
    let whole = decode_chunks(input.limit(), &input.stream, &[&input.stream[..]]);
    assert_eq!(chunked, whole, "chunking changed what was decoded");
}

/// Decodes `chunks` (which concatenate to `stream`) with one decoder, checking every
/// step; returns every frame or refusal, and the bytes of an unfinished frame.
fn decode_chunks(
    limit: u32,
    stream: &[u8],
    chunks: &[&[u8]],
) -> (Vec<Result<Frame, DecodeError>>, usize) {
    let bound = HEADER_LEN + names::MAX_NAME_LEN + limit as usize;
    let mut decoder = FrameDecoder::new(limit);
    let mut out = Vec::new();
    // The current frame starts at `start` in `stream`; the decoder took `held` of it.
    let (mut start, mut held) = (0, 0);
    for chunk in chunks {
        let mut input = *chunk;
        loop {
            let before = input.len();
            let result = decoder.decode(&mut input);
            held += before - input.len();
            assert!(
                held <= bound,
                "decoder took {held} bytes of one frame, limit {limit}"
            );
            let received = &stream[start..start + held];
            match result {
                Ok(None) => {
                    assert!(
                        input.is_empty(),
                        "decoder asked for more with {} bytes left",
                        input.len()
                    );
                    assert_eq!(
                        decoder.is_idle(),
                        held == 0,
                        "is_idle disagrees with the bytes taken"
                    );
                    break;
                }
                Ok(Some(frame)) => {
                    assert!(
                        frame.payload.len() <= limit as usize,
                        "frame over the limit"
                    );
                    assert_eq!(
                        &frame.encode()[..],
                        received,
                        "frame does not re-encode to its bytes"
                    );
                    out.push(Ok(frame));
                }
                Err(err) => {
                    check_refusal(limit, &err, received);
                    out.push(Err(err));
                }
            }
            (start, held) = (start + held, 0);
            assert!(
                decoder.is_idle(),
                "decoder not reset after a frame or refusal"
            );
            if input.is_empty() {
                break;
            }
        }
    }
    assert_eq!(start + held, stream.len(), "bytes were skipped or invented");
    (out, held)
}

/// A refusal echoes the header and room name as received, and nothing of the payload.
fn check_refusal(limit: u32, err: &DecodeError, received: &[u8]) {
    let DecodeError::PayloadTooLarge { header, room } = err;
    assert!(
        header.payload_len > u64::from(limit),
        "refused a payload within the limit"
    );
    assert_eq!(
        received.len(),
        HEADER_LEN + room.len(),
        "payload bytes read before refusing"
    );
    assert_eq!(room.len(), usize::from(header.room_len));
    assert_eq!(&received[HEADER_LEN..], &room[..]);
    assert_eq!(
        received[..3],
        [header.room_len, header.operation, header.state]
    );
    let size = &received[3..HEADER_LEN];
    let expected = match size[..size.len() - 8].iter().all(|&b| b == 0) {
        true => u64::from_be_bytes(size[size.len() - 8..].try_into().expect("8 bytes")),
        false => u64::MAX,
    };
    assert_eq!(header.payload_len, expected, "29-byte size misread");
}

/// Target: the rooms datagram decoder, and a room client reading a datagram.
///
/// Decoding never panics; a decoded datagram encodes back to the same bytes; errors
/// match the sizes; a parsed token prints back as itself; the relayed line built from
/// the fields is UTF-8, at most 4094 bytes and a prefix of `name: message` cut at most
/// 3 bytes short; a room client shows any UTF-8 datagram exactly as received.
pub fn room_datagram(data: &[u8]) {
    match RoomDatagram::decode(data) {
        Ok(datagram) => {
            assert!(data.len() <= MAX_DATAGRAM_LEN);
            assert_eq!(datagram.room.len(), usize::from(data[0]));
            assert_eq!(datagram.token.len(), usize::from(data[1]));
            let encoded = datagram.encode().expect("a decoded datagram encodes");
            assert_eq!(
                &encoded[..],
                data,
                "datagram does not re-encode to its bytes"
            );
            if let Some(token) = Token::parse(datagram.token) {
                assert_eq!(&token.to_hex()[..], datagram.token);
            }
            if let (Ok(name), Ok(message)) = (
                names::username(datagram.room),
                std::str::from_utf8(datagram.message),
            ) {
                check_relayed_line(name, message);
            }
        }
        Err(DatagramError::TooLarge) => assert!(data.len() > MAX_DATAGRAM_LEN),
        Err(DatagramError::Truncated) => assert!(
            data.len() <= MAX_DATAGRAM_LEN
                && (data.len() < 2 || data.len() < 2 + usize::from(data[0]) + usize::from(data[1]))
        ),
    }
    let mut chat = ChatSession::room(
        Instant::now(),
        "lobby",
        &[b'0'; 32],
        Duration::from_secs(60),
    )
    .expect("valid session");
    match chat.handle_datagram(data) {
        None => assert!(std::str::from_utf8(data).is_err(), "UTF-8 datagram ignored"),
        Some(incoming) => {
            assert_eq!(
                incoming.to_string().as_bytes(),
                data,
                "client shows something else"
            );
            check_session_end(&chat, &incoming);
        }
    }
}

fn check_relayed_line(name: &str, message: &str) {
    let line = relayed_line(name, message.as_bytes());
    let full = format!("{name}: {message}");
    let text = std::str::from_utf8(&line).expect("relayed line is UTF-8");
    assert!(
        full.starts_with(text),
        "relayed line is not a prefix of the message"
    );
    if full.len() <= MAX_RELAYED_LEN {
        assert_eq!(text.len(), full.len(), "short line was cut");
    } else {
        assert!(
            text.len() <= MAX_RELAYED_LEN && text.len() > MAX_RELAYED_LEN - 4,
            "bad cut"
        );
    }
}

fn check_session_end(chat: &ChatSession, incoming: &Incoming) {
    let ends = matches!(incoming, Incoming::Notice(n) if n.ends_session());
    assert_eq!(
        chat.is_ended(),
        ends,
        "session end disagrees with the notice"
    );
}

/// Target: the relay-mode datagram decoder, and a relay client reading a datagram.
///
/// Decoding never panics; a decoded datagram encodes back to the same bytes; errors
/// match the sizes; a relay client shows a line as `name: message` and a notice by its
/// body, exactly as received.
pub fn relay_datagram(data: &[u8]) {
    let decoded = RelayDatagram::decode(data);
    match decoded {
        Ok(datagram) => {
            assert!(data.len() <= MAX_DATAGRAM_LEN);
            let encoded = datagram.encode().expect("a decoded datagram encodes");
            assert_eq!(
                &encoded[..],
                data,
                "datagram does not re-encode to its bytes"
            );
            match datagram {
                RelayDatagram::Notice(body) => assert_eq!((data[0], body), (0, &data[1..])),
                RelayDatagram::Message { username, .. } => {
                    assert!(!username.is_empty());
                    assert_eq!(username.len(), usize::from(data[0]));
                }
            }
        }
        Err(DatagramError::TooLarge) => assert!(data.len() > MAX_DATAGRAM_LEN),
        Err(DatagramError::Truncated) => assert!(
            data.len() <= MAX_DATAGRAM_LEN
                && (data.is_empty() || data.len() < 1 + usize::from(data[0]))
        ),
    }
    let mut chat = ChatSession::relay(Instant::now(), "alice", Duration::from_secs(60))
        .expect("valid session");
    let incoming = chat.handle_datagram(data);
    let utf8 = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    match (decoded, &incoming) {
        (Ok(RelayDatagram::Notice(body)), Some(Incoming::Notice(notice))) => {
            assert_eq!(Some(notice.body()), utf8(body), "notice shown differs");
        }
        (Ok(RelayDatagram::Message { username, message }), Some(Incoming::Line(line))) => {
            let (name, text) = (
                utf8(username).expect("UTF-8"),
                utf8(message).expect("UTF-8"),
            );
            assert_eq!(*line, format!("{name}: {text}"), "line shown differs");
        }
        (Ok(RelayDatagram::Notice(body)), None) => assert!(utf8(body).is_none()),
        (Ok(RelayDatagram::Message { username, message }), None) => {
            assert!(utf8(username).is_none() || utf8(message).is_none());
        }
        (Err(_), None) => {}
        (decoded, shown) => panic!("client shows {shown:?} for {decoded:?}"),
    }
    if let Some(incoming) = incoming {
        check_session_end(&chat, &incoming);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcrp_input_encode_is_the_inverse_of_arbitrary() {
        let inputs = [
            TcrpInput {
                limit: 4096,
                chunks: vec![],
                stream: vec![],
            },
            TcrpInput {
                limit: u16::MAX,
                chunks: vec![0, 1, 255],
                stream: b"\x01\x02abc".to_vec(),
            },
            TcrpInput {
                limit: 7,
                chunks: vec![3; MAX_CHUNKS],
                stream: vec![9; 40],
            },
        ];
        for input in inputs {
            let bytes = input.encode();
            let back = TcrpInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn split_cycles_the_lengths_and_keeps_every_byte() {
        let input = TcrpInput {
            limit: 0,
            chunks: vec![2, 0, 3],
            stream: (0..10).collect(),
        };
        let chunks = input.split();
        assert_eq!(
            chunks,
            [&[0, 1][..], &[], &[2, 3, 4], &[5, 6], &[], &[7, 8, 9]]
        );
        let zeros = TcrpInput {
            limit: 0,
            chunks: vec![0, 0],
            stream: vec![1, 2],
        };
        assert_eq!(zeros.split(), [&[][..], &[], &[1, 2]]);
    }

    #[test]
    #[should_panic(expected = "does not re-encode")]
    fn a_frame_that_does_not_round_trip_is_caught() {
        // A stream that cannot come from `encode`: decoding it must still round-trip, so
        // feed `decode_chunks` a lying `stream` to prove the check is live.
        let frame = ocm_core::wire::tcrp::encode_frame(b"r", 1, 0, b"u");
        let mut lie = frame.to_vec();
        lie[32] = b'x';
        decode_chunks(4096, &lie, &[&frame[..]]);
    }
}
