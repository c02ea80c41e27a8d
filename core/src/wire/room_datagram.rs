//! The UDP datagram a room member sends, and the text the server relays.
//!
//! ```text
//! RoomNameSize u8 | TokenSize u8 | room name | token | message      (at most 4096 bytes)
//! ```
//!
//! What a member receives has no header: it is UTF-8 text of at most 4094 bytes, either
//! `<username>: <message>` or a server notice starting with `* ` (see [`crate::wire::notice`]).

use super::{DatagramError, MAX_DATAGRAM_LEN};
use bytes::{BufMut, Bytes, BytesMut};

/// Largest datagram the server sends to a member.
pub const MAX_RELAYED_LEN: usize = 4094;

/// A member's datagram, split into its fields (borrowed from the received bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomDatagram<'a> {
    /// Room name bytes.
    pub room: &'a [u8],
    /// Token bytes (the ASCII hex form).
    pub token: &'a [u8],
    /// Message bytes (not yet checked to be UTF-8).
    pub message: &'a [u8],
}

impl<'a> RoomDatagram<'a> {
    /// Splits `bytes` into room, token and message.
    pub fn decode(bytes: &'a [u8]) -> Result<RoomDatagram<'a>, DatagramError> {
        if bytes.len() > MAX_DATAGRAM_LEN {
            return Err(DatagramError::TooLarge);
        }
        let [room_len, token_len, rest @ ..] = bytes else {
            return Err(DatagramError::Truncated);
        };
        let (room_len, token_len) = (usize::from(*room_len), usize::from(*token_len));
        if rest.len() < room_len + token_len {
            return Err(DatagramError::Truncated);
        }
        let (room, rest) = rest.split_at(room_len);
        let (token, message) = rest.split_at(token_len);
        Ok(RoomDatagram {
            room,
            token,
            message,
        })
    }

    /// Encodes the datagram. Fails when it would be over 4096 bytes or a field is over 255.
    pub fn encode(&self) -> Result<Bytes, DatagramError> {
        let room_len = u8::try_from(self.room.len()).map_err(|_| DatagramError::TooLarge)?;
        let token_len = u8::try_from(self.token.len()).map_err(|_| DatagramError::TooLarge)?;
        let len = 2 + self.room.len() + self.token.len() + self.message.len();
        if len > MAX_DATAGRAM_LEN {
            return Err(DatagramError::TooLarge);
        }
        let mut out = BytesMut::with_capacity(len);
        out.put_u8(room_len);
        out.put_u8(token_len);
        out.put_slice(self.room);
        out.put_slice(self.token);
        out.put_slice(self.message);
        Ok(out.freeze())
    }
}

/// The relayed line `<username>: <message>`, cut at a character boundary to at most
/// 4094 bytes (`message` is UTF-8, checked by the caller).
pub fn relayed_line(username: &str, message: &[u8]) -> Bytes {
    let mut out =
        BytesMut::with_capacity((username.len() + 2 + message.len()).min(MAX_RELAYED_LEN));
    out.put_slice(username.as_bytes());
    out.put_slice(b": ");
    out.put_slice(message);
    let cut = floor_char_boundary(&out, MAX_RELAYED_LEN);
    out.truncate(cut);
    out.freeze()
}

/// The largest `n <= max` such that `text[..n]` ends on a character boundary
/// (`text` is valid UTF-8).
pub fn floor_char_boundary(text: &[u8], max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut n = max;
    // UTF-8 continuation bytes look like 0b10xx_xxxx.
    while n > 0 && (text[n] & 0xc0) == 0x80 {
        n -= 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_fields_in_order() {
        let d = RoomDatagram::decode(b"\x02\x03abxyzhello").unwrap();
        assert_eq!(
            (d.room, d.token, d.message),
            (&b"ab"[..], &b"xyz"[..], &b"hello"[..])
        );
    }

    #[test]
    fn refuses_oversize_and_truncated() {
        assert_eq!(
            RoomDatagram::decode(&[0; 4097]),
            Err(DatagramError::TooLarge)
        );
        assert!(RoomDatagram::decode(&[0; 4096]).is_ok());
        assert_eq!(RoomDatagram::decode(b""), Err(DatagramError::Truncated));
        assert_eq!(RoomDatagram::decode(b"\x01"), Err(DatagramError::Truncated));
        assert_eq!(
            RoomDatagram::decode(b"\x02\x02abc"),
            Err(DatagramError::Truncated)
        );
    }

    #[test]
    fn relayed_line_is_cut_at_a_character_boundary() {
        let long = "é".repeat(3000); // 6000 bytes
        let line = relayed_line("ab", long.as_bytes());
        assert_eq!(line.len(), 4094); // "ab: " is 4 bytes, then 2045 whole "é"
        let line = relayed_line("abc", long.as_bytes());
        assert_eq!(line.len(), 4093); // "abc: " is 5 bytes, 2044 "é"; half of one would be 4094
        assert!(std::str::from_utf8(&line).is_ok());
        assert_eq!(&relayed_line("bob", b"hi")[..], b"bob: hi");
    }

    proptest! {
        #[test]
        fn round_trip(room in proptest::collection::vec(any::<u8>(), 0..=255),
                      token in proptest::collection::vec(any::<u8>(), 0..=255),
                      message in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let d = RoomDatagram { room: &room, token: &token, message: &message };
            match d.encode() {
                Ok(bytes) => prop_assert_eq!(RoomDatagram::decode(&bytes), Ok(d)),
                Err(e) => {
                    prop_assert_eq!(e, DatagramError::TooLarge);
                    prop_assert!(2 + room.len() + token.len() + message.len() > MAX_DATAGRAM_LEN);
                }
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let _ = RoomDatagram::decode(&bytes);
        }

        #[test]
        fn relayed_line_is_valid_utf8_and_bounded(name in "[a-z]{1,10}", msg in any::<String>()) {
            let line = relayed_line(&name, msg.as_bytes());
            prop_assert!(line.len() <= MAX_RELAYED_LEN);
            let text = std::str::from_utf8(&line).unwrap();
            let full = format!("{name}: {msg}");
            prop_assert!(full.starts_with(text));
        }
    }
}
