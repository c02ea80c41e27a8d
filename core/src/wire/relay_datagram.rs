//! The relay-mode datagram (the spec's first stage): `usernamelen u8 | username | message`.
//!
//! Clients send it with a username of 1..=255 bytes; the server relays it unchanged in
//! the same framing. A datagram with `usernamelen = 0` comes only from the server: its
//! body is a UTF-8 notice (`alice joined`, `disconnected: idle for 300 s`, ...).

use super::{DatagramError, MAX_DATAGRAM_LEN};
use bytes::{BufMut, Bytes, BytesMut};

/// A relay-mode datagram, split into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayDatagram<'a> {
    /// A user's line: `usernamelen > 0`.
    Message {
        /// Username bytes (not yet checked).
        username: &'a [u8],
        /// Message bytes (not yet checked).
        message: &'a [u8],
    },
    /// A server notice: `usernamelen = 0`.
    Notice(&'a [u8]),
}

impl<'a> RelayDatagram<'a> {
    /// Splits `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<RelayDatagram<'a>, DatagramError> {
        if bytes.len() > MAX_DATAGRAM_LEN {
            return Err(DatagramError::TooLarge);
        }
        let [name_len, rest @ ..] = bytes else {
            return Err(DatagramError::Truncated);
        };
        let name_len = usize::from(*name_len);
        if name_len == 0 {
            return Ok(RelayDatagram::Notice(rest));
        }
        if rest.len() < name_len {
            return Err(DatagramError::Truncated);
        }
        let (username, message) = rest.split_at(name_len);
        Ok(RelayDatagram::Message { username, message })
    }

    /// Encodes the datagram; fails when it would be over 4096 bytes or the name over 255.
    pub fn encode(&self) -> Result<Bytes, DatagramError> {
        let (name, body) = match *self {
            RelayDatagram::Message { username, message } => (username, message),
            RelayDatagram::Notice(text) => (&[][..], text),
        };
        let name_len = u8::try_from(name.len()).map_err(|_| DatagramError::TooLarge)?;
        if 1 + name.len() + body.len() > MAX_DATAGRAM_LEN {
            return Err(DatagramError::TooLarge);
        }
        let mut out = BytesMut::with_capacity(1 + name.len() + body.len());
        out.put_u8(name_len);
        out.put_slice(name);
        out.put_slice(body);
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_message_and_notice() {
        assert_eq!(
            RelayDatagram::decode(b"\x03bobhi"),
            Ok(RelayDatagram::Message {
                username: b"bob",
                message: b"hi"
            })
        );
        assert_eq!(
            RelayDatagram::decode(b"\x00bob joined"),
            Ok(RelayDatagram::Notice(b"bob joined"))
        );
        assert_eq!(RelayDatagram::decode(b""), Err(DatagramError::Truncated));
        assert_eq!(
            RelayDatagram::decode(b"\x05bob"),
            Err(DatagramError::Truncated)
        );
        assert_eq!(
            RelayDatagram::decode(&[1; 4097]),
            Err(DatagramError::TooLarge)
        );
    }

    proptest! {
        #[test]
        fn round_trip(name in proptest::collection::vec(any::<u8>(), 1..=255),
                      body in proptest::collection::vec(any::<u8>(), 0..4000)) {
            let d = RelayDatagram::Message { username: &name, message: &body };
            match d.encode() {
                Ok(bytes) => {
                    prop_assert_eq!(RelayDatagram::decode(&bytes), Ok(d));
                    prop_assert_eq!(RelayDatagram::decode(&bytes).unwrap().encode(), Ok(bytes.clone()));
                }
                Err(_) => prop_assert!(1 + name.len() + body.len() > MAX_DATAGRAM_LEN),
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let _ = RelayDatagram::decode(&bytes);
        }
    }
}
