//! [`PayloadArena`]: relayed payloads written one after another into a shared buffer, so
//! that relaying a message allocates nothing.
//!
//! Each payload is split off the buffer as its own [`Bytes`] (the buffer's reference
//! count goes up, no copy, no allocation). Once every payload of a chunk has been sent
//! and dropped, the next write finds the chunk unused and starts over at its beginning;
//! while one is still held, the next write that does not fit takes a new chunk and the
//! old one is freed with its last payload. A shell sends and drops what the core queued
//! every turn, so a single node lives in one or two chunks.
//!
//! A payload held for long pins its whole chunk: only what is sent and dropped at once
//! goes here (cluster mode's lines, also queued for Redis, are allocated alone).

use crate::wire::room_datagram::{floor_char_boundary, MAX_RELAYED_LEN};
use bytes::{BufMut, Bytes, BytesMut};

/// Bytes in a chunk: 16 of the largest datagrams the server sends.
pub const CHUNK: usize = 64 * 1024;

/// The buffer payloads are written into.
#[derive(Debug)]
pub struct PayloadArena {
    buf: BytesMut,
}

impl Default for PayloadArena {
    fn default() -> PayloadArena {
        PayloadArena::new()
    }
}

impl PayloadArena {
    /// An arena with its first chunk allocated.
    pub fn new() -> PayloadArena {
        PayloadArena {
            buf: BytesMut::with_capacity(CHUNK),
        }
    }

    /// `data`, copied into the arena.
    pub fn copy(&mut self, data: &[u8]) -> Bytes {
        self.buf.reserve(data.len());
        self.buf.put_slice(data);
        self.buf.split().freeze()
    }

    /// The relayed line `<username>: <message>`, cut at a character boundary to at most
    /// [`MAX_RELAYED_LEN`] bytes (`message` is UTF-8, checked by the caller): the same bytes as
    /// [`crate::wire::room_datagram::relayed_line`].
    pub fn relayed_line(&mut self, username: &str, message: &[u8]) -> Bytes {
        // The buffer is empty here: everything written before was split off.
        self.buf.reserve(username.len() + 2 + message.len());
        self.buf.put_slice(username.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(message);
        let cut = floor_char_boundary(&self.buf, MAX_RELAYED_LEN);
        self.buf.truncate(cut);
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::room_datagram::relayed_line;
    use proptest::prelude::*;

    /// Where a payload's bytes are, to tell chunks apart.
    fn at(payload: &Bytes) -> usize {
        payload.as_ptr() as usize
    }

    #[test]
    fn payloads_sent_and_dropped_reuse_one_chunk() {
        let mut arena = PayloadArena::new();
        let first = arena.copy(&[1; 1000]);
        let base = at(&first);
        drop(first);
        // Far more than a chunk in all, each dropped before the next: one chunk.
        for i in 0..1000u32 {
            let payload = arena.copy(&[i as u8; 1000]);
            assert!(
                (base..base + CHUNK).contains(&at(&payload)),
                "payload {i} outside the first chunk"
            );
            assert!(payload.iter().all(|&b| b == i as u8));
        }
    }

    #[test]
    fn a_payload_still_held_keeps_its_bytes_while_later_ones_move_on() {
        let mut arena = PayloadArena::new();
        let held = arena.relayed_line("alice", b"keep me");
        let base = at(&held);
        // Enough to wrap past the chunk several times.
        let mut later = Vec::new();
        for i in 0..300u32 {
            let payload = arena.copy(&[i as u8; 1000]);
            if i % 50 == 0 {
                later.push((i, payload));
            }
        }
        assert_eq!(&held[..], b"alice: keep me");
        for (i, payload) in &later {
            assert!(payload.iter().all(|&b| b == *i as u8));
        }
        // A chunk that is still held is never written over: later payloads went to
        // new chunks.
        let last = arena.copy(b"x");
        assert!(!(base..base + CHUNK).contains(&at(&last)));
    }

    #[test]
    fn lines_are_cut_like_relayed_line() {
        let mut arena = PayloadArena::new();
        let long = "é".repeat(3000);
        for name in ["ab", "abc", "bob"] {
            let long = long.as_bytes();
            assert_eq!(arena.relayed_line(name, long), relayed_line(name, long));
        }
        assert_eq!(&arena.relayed_line("bob", b"hi")[..], b"bob: hi");
    }

    proptest! {
        #[test]
        fn every_line_is_the_same_bytes_as_relayed_line(
            lines in proptest::collection::vec(("[a-zé]{1,255}", any::<String>()), 1..40),
        ) {
            let mut arena = PayloadArena::new();
            let mut made = Vec::new();
            for (name, message) in &lines {
                made.push(arena.relayed_line(name, message.as_bytes()));
            }
            for ((name, message), line) in lines.iter().zip(&made) {
                prop_assert_eq!(line, &relayed_line(name, message.as_bytes()));
            }
        }
    }
}
