//! The raw-UDP baseline: the least a relay can do. It receives a datagram and sends the
//! same bytes to every registered receiver, one `send_to` each, on one thread, with no
//! protocol at all. A receiver registers by sending `register`.
//!
//! This is the naive fan-out, one system call per datagram; the anchor `ocm-load` compares
//! with is the batched relay in [`crate::batched`], which makes as few calls as the kernel
//! allows.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// The datagram a receiver sends to be added to the fan-out.
pub const REGISTER: &[u8] = b"register";

/// Serves forever on `socket`.
pub fn serve(socket: UdpSocket) -> io::Result<()> {
    let mut receivers: Vec<SocketAddr> = Vec::new();
    let mut buf = [0u8; 4097];
    loop {
        let (len, from) = socket.recv_from(&mut buf)?;
        let datagram = &buf[..len];
        if datagram == REGISTER {
            if !receivers.contains(&from) {
                receivers.push(from);
            }
            continue;
        }
        for to in &receivers {
            if *to != from {
                // Loss is measured at the receivers; a failed send is one more loss.
                let _ = socket.send_to(datagram, to);
            }
        }
    }
}
