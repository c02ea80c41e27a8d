//! What the server tests share: the addresses they speak from, a ready room, the
//! exact bytes of a response.

pub use bytes::Bytes;
pub use ocm_core::client::{port_bytes, ChatSession, Handshake, Incoming};
pub use ocm_core::wire::notice::Notice;
pub use ocm_core::wire::room_datagram::RoomDatagram;
pub use ocm_core::wire::tcrp::{encode_frame, Status};
pub use ocm_core::{
    Config, ConnId, Counts, DropReason, Event, Input, Machine, Protocol, SendFailure,
};
pub use ocm_testkit::{addr, Harness};
pub use std::net::SocketAddr;
pub use std::time::Duration;

pub const A: &str = "10.0.0.1:4000";
pub const B: &str = "10.0.0.2:4000";
pub const C: &str = "10.0.0.3:4000";
pub const A_TCP: &str = "10.0.0.1:50000";
pub const B_TCP: &str = "10.0.0.2:50000";
pub const C_TCP: &str = "10.0.0.3:50000";

/// A room "lobby" with host alice at A and member bob at B, both registered over UDP.
pub fn lobby() -> (Harness, Bytes, Bytes) {
    let mut h = Harness::rooms(Config::default());
    let ta = h.create(A_TCP, "lobby", "alice");
    h.say(A, "lobby", &ta, "");
    let tb = h.join(B_TCP, "lobby", "bob");
    h.say(B, "lobby", &tb, "");
    h.take();
    (h, ta, tb)
}

pub fn response(room: &[u8], op: u8, status: Status) -> Vec<u8> {
    ocm_core::wire::tcrp::encode_response(room, op, status).to_vec()
}

/// The bytes of a room datagram.
pub fn datagram(room: &[u8], token: &[u8], message: &[u8]) -> Vec<u8> {
    let d = RoomDatagram {
        room,
        token,
        message,
    };
    d.encode().expect("fits a datagram").to_vec()
}
