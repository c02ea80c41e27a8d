//! TCRP, the chat room protocol spoken over TCP: frame layout, codes and an incremental decoder.
//!
//! Every frame is a 32-byte header, then the room name, then the payload:
//!
//! ```text
//! RoomNameSize u8 | Operation u8 | State u8 | OperationPayloadSize (29 bytes, big-endian)
//! room name (RoomNameSize bytes) | payload (OperationPayloadSize bytes)
//! ```
//!
//! [`FrameDecoder`] takes bytes as they arrive, split anywhere, and never allocates from
//! a size it has not checked: a payload size above its limit is reported as
//! [`DecodeError::PayloadTooLarge`] once the header and room name are in, without
//! reading (or reserving room for) the payload.
//!
//! ```
//! use ocm_core::wire::tcrp::{encode_frame, FrameDecoder};
//! let bytes = encode_frame(b"lobby", 1, 0, b"alice");
//! let mut decoder = FrameDecoder::new(4096);
//! let mut input = &bytes[..];
//! let frame = decoder.decode(&mut input).unwrap().unwrap();
//! assert_eq!(&frame.room[..], b"lobby");
//! assert_eq!(&frame.payload[..], b"alice");
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// Size of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Width of the `OperationPayloadSize` field.
pub const PAYLOAD_SIZE_LEN: usize = 29;
/// The largest payload limit a decoder accepts: the spec's 2^29 bytes.
pub const MAX_PAYLOAD_LIMIT: u32 = 1 << 29;

/// Operation codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1: create a room and become its host.
    Create,
    /// 2: join an existing room.
    Join,
}

impl Operation {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Operation::Create => 1,
            Operation::Join => 2,
        }
    }

    /// Decodes a wire code.
    pub fn from_code(code: u8) -> Option<Operation> {
        match code {
            1 => Some(Operation::Create),
            2 => Some(Operation::Join),
            _ => None,
        }
    }
}

/// State codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: client request.
    Request,
    /// 1: server response, payload is a one-byte [`Status`].
    Response,
    /// 2: request complete, payload is the token.
    Complete,
}

impl State {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            State::Request => 0,
            State::Response => 1,
            State::Complete => 2,
        }
    }

    /// Decodes a wire code.
    pub fn from_code(code: u8) -> Option<State> {
        match code {
            0 => Some(State::Request),
            1 => Some(State::Response),
            2 => Some(State::Complete),
            _ => None,
        }
    }
}

/// The one-byte status carried by a response (state 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: accepted; a complete frame with the token follows.
    Ok,
    /// 1: create asked for a name that is taken.
    RoomExists,
    /// 2: join asked for a room that does not exist.
    RoomNotFound,
    /// 3: the room has a password and this was not it.
    InvalidPassword,
    /// 4: the username is already used in that room.
    UsernameTaken,
    /// 5: bad operation/state, bad UTF-8, empty or illegal name.
    InvalidRequest,
    /// 6: payload larger than the server accepts.
    PayloadTooLarge,
    /// 7: room or member limit reached.
    ServerFull,
    /// 8: not now: too many wrong passwords from this source or for this room lately
    /// (cluster mode: also the registry could not be asked in time); nothing was created
    /// or joined, and the same request may succeed later.
    TryLater,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 9] = [
        Status::Ok,
        Status::RoomExists,
        Status::RoomNotFound,
        Status::InvalidPassword,
        Status::UsernameTaken,
        Status::InvalidRequest,
        Status::PayloadTooLarge,
        Status::ServerFull,
        Status::TryLater,
    ];

    /// Wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Decodes a wire code.
    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.get(usize::from(code)).copied()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::RoomExists => "room already exists",
            Status::RoomNotFound => "room not found",
            Status::InvalidPassword => "wrong password",
            Status::UsernameTaken => "username already taken in this room",
            Status::InvalidRequest => "invalid request",
            Status::PayloadTooLarge => "payload too large",
            Status::ServerFull => "server full",
            Status::TryLater => "try again later",
        })
    }
}

/// The 32-byte header, with operation and state kept as raw codes so that any frame
/// re-encodes to exactly the bytes it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the room name that follows.
    pub room_len: u8,
    /// Raw operation code.
    pub operation: u8,
    /// Raw state code.
    pub state: u8,
    /// Payload length, already checked to fit in a `u64`; see [`Header::parse`].
    pub payload_len: u64,
}

impl Header {
    /// Parses the header. The 29-byte size is read without overflow: a size that does
    /// not fit in 64 bits comes back as `u64::MAX`, which is above any limit.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let size = &bytes[3..];
        let (high, low) = size.split_at(PAYLOAD_SIZE_LEN - 8);
        let payload_len = if high.iter().any(|&b| b != 0) {
            u64::MAX
        } else {
            u64::from_be_bytes(low.try_into().expect("8 bytes"))
        };
        Header {
            room_len: bytes[0],
            operation: bytes[1],
            state: bytes[2],
            payload_len,
        }
    }

    /// Writes the header's 32 bytes.
    pub fn write(&self, out: &mut impl BufMut) {
        out.put_u8(self.room_len);
        out.put_u8(self.operation);
        out.put_u8(self.state);
        out.put_bytes(0, PAYLOAD_SIZE_LEN - 8);
        out.put_u64(self.payload_len);
    }
}

/// A whole frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Raw operation code.
    pub operation: u8,
    /// Raw state code.
    pub state: u8,
    /// Room name bytes as received (not yet checked to be UTF-8).
    pub room: Bytes,
    /// Payload bytes.
    pub payload: Bytes,
}

impl Frame {
    /// Encodes the frame.
    pub fn encode(&self) -> Bytes {
        encode_frame(&self.room, self.operation, self.state, &self.payload)
    }
}

/// Encodes one frame. `room` longer than 255 bytes is a caller bug and panics.
pub fn encode_frame(room: &[u8], operation: u8, state: u8, payload: &[u8]) -> Bytes {
    let room_len = u8::try_from(room.len()).expect("room name is at most 255 bytes");
    let mut out = BytesMut::with_capacity(HEADER_LEN + room.len() + payload.len());
    Header {
        room_len,
        operation,
        state,
        payload_len: payload.len() as u64,
    }
    .write(&mut out);
    out.put_slice(room);
    out.put_slice(payload);
    out.freeze()
}

/// Why a stream could not be decoded. The connection cannot continue after either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The header announced more payload than the decoder's limit. The header and room
    /// name were read, so a response can echo them.
    PayloadTooLarge {
        /// The header as received.
        header: Header,
        /// The room name as received.
        room: Bytes,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::PayloadTooLarge { header, .. } => {
                write!(
                    f,
                    "payload of {} bytes is over the limit",
                    header.payload_len
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Incremental TCRP decoder. Memory held is at most 32 + 255 + the payload limit.
#[derive(Debug)]
pub struct FrameDecoder {
    limit: u32,
    header_buf: [u8; HEADER_LEN],
    header_filled: usize,
    header: Option<Header>,
    room: BytesMut,
    payload: BytesMut,
}

impl FrameDecoder {
    /// A decoder that accepts payloads of at most `limit` bytes (clamped to 2^29).
    pub fn new(limit: u32) -> FrameDecoder {
        FrameDecoder {
            limit: limit.min(MAX_PAYLOAD_LIMIT),
            header_buf: [0; HEADER_LEN],
            header_filled: 0,
            header: None,
            room: BytesMut::new(),
            payload: BytesMut::new(),
        }
    }

    /// True when no byte of a next frame has been taken yet.
    pub fn is_idle(&self) -> bool {
        self.header_filled == 0
    }

    /// Takes from the front of `input` the bytes the current frame still needs, and
    /// advances `input` past them. Returns a frame once one is whole; bytes after it are
    /// left in `input`. `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, DecodeError> {
        if self.header.is_none() {
            let want = HEADER_LEN - self.header_filled;
            let take = want.min(input.len());
            self.header_buf[self.header_filled..self.header_filled + take]
                .copy_from_slice(&input[..take]);
            self.header_filled += take;
            *input = &input[take..];
            if self.header_filled < HEADER_LEN {
                return Ok(None);
            }
            self.header = Some(Header::parse(&self.header_buf));
        }
        let header = self.header.expect("header was just read");
        take_into(&mut self.room, usize::from(header.room_len), input);
        if self.room.len() < usize::from(header.room_len) {
            return Ok(None);
        }
        if header.payload_len > u64::from(self.limit) {
            let room = std::mem::take(&mut self.room).freeze();
            self.reset();
            return Err(DecodeError::PayloadTooLarge { header, room });
        }
        // Checked against the limit (≤ 2^29) just above, so this fits in usize.
        // The buffer grows with the bytes that actually arrive, never ahead of them.
        let payload_len = header.payload_len as usize;
        take_into(&mut self.payload, payload_len, input);
        if self.payload.len() < payload_len {
            return Ok(None);
        }
        let frame = Frame {
            operation: header.operation,
            state: header.state,
            room: std::mem::take(&mut self.room).freeze(),
            payload: std::mem::take(&mut self.payload).freeze(),
        };
        self.reset();
        Ok(Some(frame))
    }

    fn reset(&mut self) {
        self.header_filled = 0;
        self.header = None;
        self.room.clear();
        self.payload.clear();
    }
}

/// Moves up to `total - buf.len()` bytes from `input` into `buf`.
fn take_into(buf: &mut BytesMut, total: usize, input: &mut &[u8]) {
    let take = (total - buf.len()).min(input.len());
    buf.extend_from_slice(&input[..take]);
    *input = &input[take..];
}

/// The response frame (state 1): the room name echoed, then the status byte.
pub fn encode_response(room: &[u8], operation: u8, status: Status) -> Bytes {
    encode_frame(room, operation, State::Response.code(), &[status.code()])
}

/// The complete frame (state 2): the room name echoed, then the token in hex.
pub fn encode_complete(room: &[u8], operation: u8, token: &crate::token::Token) -> Bytes {
    encode_frame(room, operation, State::Complete.code(), &token.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(decoder: &mut FrameDecoder, mut input: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut input).unwrap() {
            frames.push(frame);
        }
        assert!(input.is_empty());
        frames
    }

    #[test]
    fn header_layout_is_big_endian_29_bytes() {
        let bytes = encode_frame(b"ab", 2, 0, &[7; 300]);
        assert_eq!(&bytes[..3], &[2, 2, 0]);
        assert_eq!(&bytes[3..30], &[0; 27]);
        assert_eq!(&bytes[30..32], &[1, 44]);
        assert_eq!(&bytes[32..34], b"ab");
        assert_eq!(bytes.len(), 32 + 2 + 300);
    }

    #[test]
    fn size_with_high_bytes_set_is_too_large_not_an_overflow() {
        let mut header = [0u8; HEADER_LEN];
        header[0] = 1;
        header[1] = 1;
        header[3] = 0xff; // the top byte of the 29-byte size
        let mut bytes = header.to_vec();
        bytes.push(b'r');
        let mut decoder = FrameDecoder::new(4096);
        let err = decoder.decode(&mut &bytes[..]).unwrap_err();
        let DecodeError::PayloadTooLarge { header, room } = err;
        assert_eq!(header.payload_len, u64::MAX);
        assert_eq!(&room[..], b"r");
    }

    #[test]
    fn too_large_is_reported_after_the_room_name_without_the_payload() {
        let bytes = encode_frame(b"room", 1, 0, &[0; 4097]);
        let mut decoder = FrameDecoder::new(4096);
        let mut input = &bytes[..32 + 3];
        assert_eq!(decoder.decode(&mut input), Ok(None));
        let mut rest = &bytes[32 + 3..32 + 4];
        assert!(matches!(
            decoder.decode(&mut rest),
            Err(DecodeError::PayloadTooLarge { .. })
        ));
        assert!(decoder.payload.capacity() < 4097);
    }

    #[test]
    fn payload_at_the_limit_is_accepted() {
        let bytes = encode_frame(b"room", 1, 0, &[b'x'; 4096]);
        let frames = decode_all(&mut FrameDecoder::new(4096), &bytes);
        assert_eq!(frames[0].payload.len(), 4096);
    }

    #[test]
    fn limit_is_clamped_to_two_to_the_29() {
        assert_eq!(FrameDecoder::new(u32::MAX).limit, MAX_PAYLOAD_LIMIT);
    }

    #[test]
    fn status_codes_round_trip() {
        for (code, status) in Status::ALL.iter().enumerate() {
            assert_eq!(status.code() as usize, code);
            assert_eq!(Status::from_code(code as u8), Some(*status));
        }
        assert_eq!(Status::from_code(9), None);
    }

    #[test]
    fn response_and_complete_echo_room_and_operation() {
        let response = encode_response(b"lobby", 2, Status::UsernameTaken);
        assert_eq!(&response[..3], &[5, 2, 1]);
        assert_eq!(&response[32..], b"lobby\x04");
        let token = crate::token::Token::from_bytes([0x11; 16]);
        let complete = encode_complete(b"lobby", 1, &token);
        assert_eq!(&complete[..3], &[5, 1, 2]);
        assert_eq!(&complete[30..32], &[0, 32]);
        assert_eq!(&complete[37..], &token.to_hex());
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            proptest::collection::vec(any::<u8>(), 0..=255),
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(|(room, operation, state, payload)| Frame {
                operation,
                state,
                room: room.into(),
                payload: payload.into(),
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(frame in arb_frame()) {
            let bytes = frame.encode();
            let frames = decode_all(&mut FrameDecoder::new(4096), &bytes);
            prop_assert_eq!(frames.len(), 1);
            prop_assert_eq!(&frames[0], &frame);
            prop_assert_eq!(frames[0].encode(), bytes);
        }

        #[test]
        fn every_split_point_gives_the_same_frames(
            frames in proptest::collection::vec(arb_frame(), 1..4),
        ) {
            let stream: Vec<u8> = frames.iter().flat_map(|f| f.encode().to_vec()).collect();
            for split in 0..=stream.len() {
                let mut decoder = FrameDecoder::new(4096);
                let mut got = decode_all(&mut decoder, &stream[..split]);
                got.extend(decode_all(&mut decoder, &stream[split..]));
                prop_assert_eq!(&got, &frames);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..10),
            limit in 0u32..2048,
        ) {
            let mut decoder = FrameDecoder::new(limit);
            'outer: for chunk in &chunks {
                let mut input = &chunk[..];
                while !input.is_empty() {
                    match decoder.decode(&mut input) {
                        Ok(Some(frame)) => prop_assert!(frame.payload.len() <= limit as usize),
                        Ok(None) => prop_assert!(input.is_empty()),
                        Err(_) => break 'outer,
                    }
                }
            }
        }
    }
}
