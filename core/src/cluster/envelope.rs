//! The inter-node envelope: what one node publishes on a room's bus channel for the
//! other nodes with members in that room.
//!
//! ```text
//! offset  size  field
//! 0       1     version               1
//! 1       1     kind                  1 = deliver, 2 = closed
//! 2       1     origin length n       1..=64
//! 3       n     origin node id        ASCII, see NodeId
//! 3+n     8     room epoch            big-endian
//! 11+n    8     sequence              big-endian, from 1, per origin node and room epoch
//! 19+n    1     room name length m    1..=255
//! 20+n    m     room name             UTF-8, the name rules of docs/PROTOCOL.md
//! 20+n+m        body
//!                 deliver: the text every local member receives, as is:
//!                          a relayed line or a notice, 1..=4094 bytes of UTF-8
//!                 closed:  1 byte, why the room closed (1 = host left,
//!                          2 = the host's server shut down), nothing after it
//! ```
//!
//! At most 4 437 bytes. The origin lets a node ignore its own publishes and keep one
//! sequence per sender; the epoch makes a room re-created under the same name a
//! different room (its traffic and the old room's never mix); the sequence gives at
//! most once, in the sender's order, with the gaps counted ([`super::sequence`]).
//!
//! Decoding checks every field before it allocates; anything malformed, another
//! version or an unknown kind is a typed [`EnvelopeError`], counted by the receiver.
//! Encoding is canonical: `decode(encode(e)) == e` and `encode(decode(b)) == b`.
//!
//! ```
//! use bytes::Bytes;
//! use ocm_core::cluster::envelope::{Body, Envelope};
//! use ocm_core::cluster::{Epoch, NodeId};
//!
//! let sent = Envelope {
//!     origin: NodeId::new("node-a").unwrap(),
//!     epoch: Epoch(7),
//!     seq: 1,
//!     room: "lobby".into(),
//!     body: Body::Deliver(Bytes::from_static(b"alice: hi")),
//! };
//! let bytes = sent.encode();
//! assert_eq!(Envelope::decode(&bytes), Ok(sent));
//! ```

use super::{Epoch, NodeId, MAX_NODE_ID_LEN};
use crate::names;
use crate::wire::room_datagram::MAX_RELAYED_LEN;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::sync::Arc;

/// The version this code writes and the only one it reads.
pub const VERSION: u8 = 1;

/// Largest envelope: the fixed fields, the longest node id and room name, and the
/// longest text.
pub const MAX_ENVELOPE_LEN: usize = 20 + MAX_NODE_ID_LEN + 255 + MAX_RELAYED_LEN;

const KIND_DELIVER: u8 = 1;
const KIND_CLOSED: u8 = 2;

/// One message between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The node that published it.
    pub origin: NodeId,
    /// The incarnation of the room it belongs to.
    pub epoch: Epoch,
    /// Position in what `origin` published for this room epoch, from 1.
    pub seq: u64,
    /// The room.
    pub room: Arc<str>,
    /// What the receivers do.
    pub body: Body,
}

/// What an envelope asks of the nodes receiving it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Send this text to every member of the room this node serves: a relayed line
    /// (`NAME: MESSAGE`) or a notice (`* NAME joined`, ...), already in its final form.
    Deliver(Bytes),
    /// The room is closed: tell the members this node serves and forget them.
    Closed(ClosedBy),
}

/// Why a room was closed by the node serving its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    /// The host sent `/exit` or was evicted.
    HostLeft,
    /// The host's server is shutting down.
    HostServerShutdown,
}

impl ClosedBy {
    fn code(self) -> u8 {
        match self {
            ClosedBy::HostLeft => 1,
            ClosedBy::HostServerShutdown => 2,
        }
    }

    fn from_code(code: u8) -> Option<ClosedBy> {
        match code {
            1 => Some(ClosedBy::HostLeft),
            2 => Some(ClosedBy::HostServerShutdown),
            _ => None,
        }
    }
}

/// Why bytes are not an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Longer than [`MAX_ENVELOPE_LEN`].
    TooLarge,
    /// Shorter than its fields say.
    Truncated,
    /// A version this node does not read.
    Version(u8),
    /// A kind this version does not have.
    Kind(u8),
    /// The origin breaks the node id rules.
    Origin,
    /// The room name breaks the name rules.
    Room,
    /// A deliver body that is empty, longer than 4094 bytes or not UTF-8.
    Text,
    /// A closed body with an unknown reason, or bytes after it.
    Reason,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::TooLarge => write!(f, "envelope longer than {MAX_ENVELOPE_LEN} bytes"),
            EnvelopeError::Truncated => f.write_str("envelope shorter than its fields say"),
            EnvelopeError::Version(v) => {
                write!(f, "envelope version {v} (this node reads {VERSION})")
            }
            EnvelopeError::Kind(k) => write!(f, "unknown envelope kind {k}"),
            EnvelopeError::Origin => f.write_str("bad origin node id"),
            EnvelopeError::Room => f.write_str("bad room name"),
            EnvelopeError::Text => f.write_str("deliver text empty, too long or not UTF-8"),
            EnvelopeError::Reason => f.write_str("bad close reason"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl Envelope {
    /// The bytes to publish.
    ///
    /// # Panics
    /// If the text of a deliver body is empty or longer than 4094 bytes: the server
    /// only builds texts it would send to a member, which are never either.
    pub fn encode(&self) -> Bytes {
        let origin = self.origin.as_str().as_bytes();
        let room = self.room.as_bytes();
        let body_len = match &self.body {
            Body::Deliver(text) => {
                assert!(
                    !text.is_empty() && text.len() <= MAX_RELAYED_LEN,
                    "deliver text of {} bytes",
                    text.len()
                );
                text.len()
            }
            Body::Closed(_) => 1,
        };
        let mut out = BytesMut::with_capacity(20 + origin.len() + room.len() + body_len);
        out.put_u8(VERSION);
        out.put_u8(match self.body {
            Body::Deliver(_) => KIND_DELIVER,
            Body::Closed(_) => KIND_CLOSED,
        });
        out.put_u8(origin.len() as u8);
        out.put_slice(origin);
        out.put_u64(self.epoch.0);
        out.put_u64(self.seq);
        out.put_u8(u8::try_from(room.len()).expect("room names are at most 255 bytes"));
        out.put_slice(room);
        match &self.body {
            Body::Deliver(text) => out.put_slice(text),
            Body::Closed(reason) => out.put_u8(reason.code()),
        }
        out.freeze()
    }

    /// Reads an envelope; a deliver text shares `bytes`' buffer.
    pub fn decode(bytes: &Bytes) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(EnvelopeError::TooLarge);
        }
        let mut reader = Reader(bytes);
        let version = reader.u8()?;
        if version != VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let kind = reader.u8()?;
        if kind != KIND_DELIVER && kind != KIND_CLOSED {
            return Err(EnvelopeError::Kind(kind));
        }
        let origin_len = usize::from(reader.u8()?);
        let origin =
            NodeId::from_bytes(reader.take(origin_len)?).map_err(|_| EnvelopeError::Origin)?;
        let epoch = Epoch(reader.u64()?);
        let seq = reader.u64()?;
        let room_len = usize::from(reader.u8()?);
        let room = names::room_name(reader.take(room_len)?).map_err(|_| EnvelopeError::Room)?;
        let room: Arc<str> = room.into();
        let rest = reader.0;
        let body = if kind == KIND_DELIVER {
            if rest.is_empty() || rest.len() > MAX_RELAYED_LEN || std::str::from_utf8(rest).is_err()
            {
                return Err(EnvelopeError::Text);
            }
            Body::Deliver(bytes.slice_ref(rest))
        } else {
            match rest {
                [code] => Body::Closed(ClosedBy::from_code(*code).ok_or(EnvelopeError::Reason)?),
                [] => return Err(EnvelopeError::Truncated),
                _ => return Err(EnvelopeError::Reason),
            }
        };
        Ok(Envelope {
            origin,
            epoch,
            seq,
            room,
            body,
        })
    }
}

/// Reads fields off the front of a slice, each length checked first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn deliver(text: &'static str) -> Envelope {
        Envelope {
            origin: NodeId::new("node-a").unwrap(),
            epoch: Epoch(0x0102_0304_0506_0708),
            seq: 9,
            room: "lobby".into(),
            body: Body::Deliver(Bytes::from_static(text.as_bytes())),
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = deliver("alice: hi").encode();
        let mut expected = vec![1, 1, 6];
        expected.extend_from_slice(b"node-a");
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        expected.push(5);
        expected.extend_from_slice(b"lobby");
        expected.extend_from_slice(b"alice: hi");
        assert_eq!(&bytes[..], &expected[..]);

        let closed = Envelope {
            body: Body::Closed(ClosedBy::HostServerShutdown),
            ..deliver("x")
        };
        let bytes = closed.encode();
        assert_eq!(bytes[1], 2, "kind closed");
        assert_eq!(
            bytes[bytes.len() - 1],
            2,
            "reason: the host's server shut down"
        );
        assert_eq!(Envelope::decode(&bytes), Ok(closed));
    }

    #[test]
    fn the_largest_envelope_fits_the_bound_and_one_byte_more_is_refused() {
        let largest = Envelope {
            origin: NodeId::new(&"n".repeat(MAX_NODE_ID_LEN)).unwrap(),
            room: "r".repeat(255).into(),
            body: Body::Deliver(Bytes::from(vec![b'x'; MAX_RELAYED_LEN])),
            ..deliver("x")
        };
        let bytes = largest.encode();
        assert_eq!(bytes.len(), MAX_ENVELOPE_LEN);
        assert_eq!(Envelope::decode(&bytes), Ok(largest));
        let mut longer = bytes.to_vec();
        longer.push(b'x');
        assert_eq!(
            Envelope::decode(&Bytes::from(longer)),
            Err(EnvelopeError::TooLarge)
        );
    }

    #[test]
    fn the_deliver_text_shares_the_received_buffer() {
        let bytes = deliver("alice: hi").encode();
        let Body::Deliver(text) = Envelope::decode(&bytes).unwrap().body else {
            panic!("a deliver");
        };
        assert_eq!(text.as_ptr(), bytes[bytes.len() - 9..].as_ptr());
    }

    #[test]
    fn every_field_is_checked() {
        let good = deliver("alice: hi").encode().to_vec();
        let origin_at = 3;
        let room_len_at = 3 + 6 + 16;
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            Envelope::decode(&Bytes::from(b))
        };
        assert_eq!(with(&|b| b[0] = 2), Err(EnvelopeError::Version(2)));
        assert_eq!(with(&|b| b[0] = 0), Err(EnvelopeError::Version(0)));
        assert_eq!(with(&|b| b[1] = 3), Err(EnvelopeError::Kind(3)));
        assert_eq!(with(&|b| b[1] = 0), Err(EnvelopeError::Kind(0)));
        assert_eq!(with(&|b| b[2] = 0), Err(EnvelopeError::Origin));
        assert_eq!(with(&|b| b[origin_at] = b'/'), Err(EnvelopeError::Origin));
        assert_eq!(with(&|b| b[room_len_at] = 0), Err(EnvelopeError::Room));
        assert_eq!(
            with(&|b| b[room_len_at + 1] = 0x07),
            Err(EnvelopeError::Room)
        );
        assert_eq!(
            with(&|b| b[room_len_at] = 200),
            Err(EnvelopeError::Truncated)
        );
        assert_eq!(
            with(&|b| b.truncate(room_len_at + 6)),
            Err(EnvelopeError::Text)
        );
        assert_eq!(
            with(&|b| *b.last_mut().unwrap() = 0xff),
            Err(EnvelopeError::Text)
        );
        for cut in 0..room_len_at + 6 {
            assert_eq!(
                Envelope::decode(&Bytes::copy_from_slice(&good[..cut])),
                Err(EnvelopeError::Truncated),
                "cut at {cut}"
            );
        }
        let closed = Envelope {
            body: Body::Closed(ClosedBy::HostLeft),
            ..deliver("x")
        }
        .encode()
        .to_vec();
        let mut bad = closed.clone();
        *bad.last_mut().unwrap() = 9;
        assert_eq!(
            Envelope::decode(&Bytes::from(bad)),
            Err(EnvelopeError::Reason)
        );
        let mut long = closed.clone();
        long.push(1);
        assert_eq!(
            Envelope::decode(&Bytes::from(long)),
            Err(EnvelopeError::Reason)
        );
        let short = closed[..closed.len() - 1].to_vec();
        assert_eq!(
            Envelope::decode(&Bytes::from(short)),
            Err(EnvelopeError::Truncated)
        );
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        let body = prop_oneof![
            "[^\\x00]{1,200}".prop_map(|t| Body::Deliver(Bytes::from(t))),
            Just(Body::Closed(ClosedBy::HostLeft)),
            Just(Body::Closed(ClosedBy::HostServerShutdown)),
        ];
        (
            "[A-Za-z0-9._-]{1,64}",
            any::<u64>(),
            any::<u64>(),
            "[a-z0-9 é:]{1,60}",
            body,
        )
            .prop_map(|(origin, epoch, seq, room, body)| Envelope {
                origin: NodeId::new(&origin).unwrap(),
                epoch: Epoch(epoch),
                seq,
                room: room.into(),
                body,
            })
            .prop_filter("deliver texts fit", |e| match &e.body {
                Body::Deliver(t) => t.len() <= MAX_RELAYED_LEN,
                Body::Closed(_) => true,
            })
    }

    proptest! {
        #[test]
        fn every_envelope_round_trips(e in envelope()) {
            let bytes = e.encode();
            prop_assert!(bytes.len() <= MAX_ENVELOPE_LEN);
            prop_assert_eq!(Envelope::decode(&bytes), Ok(e));
        }

        #[test]
        fn whatever_decodes_encodes_back_to_the_same_bytes(
            e in envelope(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = e.encode().to_vec();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let bytes = Bytes::from(bytes);
            if let Ok(decoded) = Envelope::decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let bytes = Bytes::from(bytes);
            if let Ok(decoded) = Envelope::decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }
    }
}
