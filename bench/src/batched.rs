//! The batched raw relay, the plain-socket limit for one thread: what a careful engineer
//! writes with no protocol at all. It takes up to [`RECV_BATCH`] datagrams per
//! `recvmmsg(2)`; the first datagram from an address registers it; every datagram goes
//! to every other registered address, the whole fan-out of a batch handed to the kernel
//! in `sendmmsg(2)` calls of up to [`SEND_BATCH`]. Headers and buffers are allocated once.
//!
//! [`drain`] is the floor for a datagram that is dropped: the same receive loop doing
//! nothing with what it reads.
//!
//! Both run in a process of their own (`ocm-load --serve batched|drain`), like
//! `ocm server`, so their CPU time can be read from `/proc` the same way.

use crate::mmsg::{Addr, RecvBatch, SendBatch};
use std::io;
use std::net::UdpSocket;

/// Most datagrams per `recvmmsg`, as in ocm.
pub const RECV_BATCH: usize = 32;

/// Most datagrams per `sendmmsg` (the kernel's `UIO_MAXIOV`).
pub const SEND_BATCH: usize = 1024;

/// Relays forever on `socket` (bound to an IPv4 address).
pub fn serve(socket: UdpSocket) -> io::Result<()> {
    let mut inbound = RecvBatch::new(RECV_BATCH);
    let mut outbound = SendBatch::new(SEND_BATCH);
    let mut members: Vec<Addr> = Vec::new();
    // For each datagram of a batch, how many members were registered when it came.
    let mut registered: Vec<usize> = Vec::with_capacity(RECV_BATCH);
    loop {
        let n = receive(&socket, &mut inbound)?;
        registered.clear();
        for i in 0..n {
            let (from, _) = inbound.datagram(i);
            if !members.contains(&from) {
                members.push(from);
            }
            registered.push(members.len());
        }
        let (inbound, members, registered) = (&inbound, &members, &registered);
        let fan_out = (0..n).flat_map(|i| {
            let (from, data) = inbound.datagram(i);
            members[..registered[i]]
                .iter()
                .filter(move |to| **to != from)
                .map(move |to| (*to, data))
        });
        outbound.send_all(&socket, fan_out);
    }
}

/// Reads and discards forever on `socket`.
pub fn drain(socket: UdpSocket) -> io::Result<()> {
    let mut inbound = RecvBatch::new(RECV_BATCH);
    loop {
        receive(&socket, &mut inbound)?;
    }
}

fn receive(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    loop {
        match batch.recv(socket) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_datagram_reaches_every_other_registered_address() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let relay = socket.local_addr().unwrap();
        std::thread::spawn(move || serve(socket));
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| {
                let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                c.connect(relay).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c
            })
            .collect();
        let mut buf = [0u8; 64];
        // each registers in turn; the earlier ones hear the newcomer's first datagram
        for (i, c) in clients.iter().enumerate() {
            c.send(format!("hello {i}").as_bytes()).unwrap();
            for earlier in &clients[..i] {
                let n = earlier.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], format!("hello {i}").as_bytes());
            }
        }
        clients[1].send(b"to all").unwrap();
        for (i, c) in clients.iter().enumerate() {
            if i != 1 {
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"to all");
            }
        }
        clients[1]
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(clients[1].recv(&mut buf).is_err(), "not back to the sender");
    }
}
