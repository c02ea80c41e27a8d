//! [`Driver`]: the core plus the table of open connections, driven by one owner task.
//!
//! Reader tasks send [`Input`]s to the owner; the owner calls [`Driver::handle`] with
//! `Instant::now()`, then [`Driver::poll_datagram`] until `None`, sending each datagram
//! on the UDP socket. TCP outputs need no waiting, so the driver carries them out
//! itself: it puts a [`ConnCmd`] on the connection's channel, which that connection's
//! task works through in order. Events go to the log.

use crate::addr;
use crate::options::{Options, Protocol};
use async_channel::Sender;
use bytes::Bytes;
use ocm_core::{ConfigError, ConnId, MemberInfo, Output, RelayServer, Server, Stats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Something a socket task saw, for the owner task.
#[derive(Debug)]
pub enum Input {
    /// A TCP connection was accepted; its task takes commands from `cmds`.
    Accepted {
        /// Id chosen by the acceptor, never reused.
        conn: ConnId,
        /// The peer.
        peer: SocketAddr,
        /// Where the connection's task takes its commands.
        cmds: Sender<ConnCmd>,
    },
    /// Bytes read from a connection.
    TcpData {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// The peer closed the connection, or reading from it failed.
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A datagram arrived.
    Datagram {
        /// Its source, as the socket reported it.
        from: SocketAddr,
        /// Its bytes, up to [`crate::DATAGRAM_BUFFER`].
        data: Bytes,
    },
    /// A send to this address failed (an error queue entry).
    SendFailed {
        /// The destination, in core's form.
        to: SocketAddr,
    },
}

/// What a connection's task is told to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnCmd {
    /// Write these bytes.
    Send(Bytes),
    /// Send FIN once the writes before are done; keep reading.
    ShutdownWrite,
    /// Write what is queued, then close (with a bounded linger, see [`crate::LINGER`]).
    Close,
}

#[derive(Debug)]
enum Machine {
    Rooms(Box<Server>),
    Relay(Box<RelayServer>),
}

/// The core and the connections, owned by one task.
#[derive(Debug)]
pub struct Driver {
    machine: Machine,
    conns: HashMap<ConnId, Sender<ConnCmd>>,
    udp_local: SocketAddr,
}

impl Driver {
    /// A driver for `options`, whose UDP socket is bound to `udp_local`; `seed` should be
    /// [`crate::seed::os_seed`].
    pub fn new(
        options: &Options,
        seed: [u8; 32],
        udp_local: SocketAddr,
    ) -> Result<Driver, ConfigError> {
        let config = options.config.clone();
        let machine = match options.protocol {
            Protocol::Rooms => Machine::Rooms(Box::new(Server::new(config, seed)?)),
            Protocol::Relay => Machine::Relay(Box::new(RelayServer::new(config, seed)?)),
        };
        Ok(Driver {
            machine,
            conns: HashMap::new(),
            udp_local,
        })
    }

    /// Feeds one input to the core.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match (&mut self.machine, input) {
            (Machine::Rooms(server), Input::Accepted { conn, peer, cmds }) => {
                self.conns.insert(conn, cmds);
                server.handle_tcp_accept(now, conn, peer);
            }
            (Machine::Rooms(server), Input::TcpData { conn, data }) => {
                server.handle_tcp_data(now, conn, &data)
            }
            (Machine::Rooms(server), Input::TcpClosed { conn }) => {
                server.handle_tcp_closed(now, conn)
            }
            (Machine::Relay(_), Input::Accepted { cmds, .. }) => {
                let _ = cmds.try_send(ConnCmd::Close);
            }
            (Machine::Relay(_), Input::TcpData { .. } | Input::TcpClosed { .. }) => {}
            (Machine::Rooms(server), Input::Datagram { from, data }) => {
                server.handle_datagram(now, addr::to_core(from), &data)
            }
            (Machine::Relay(relay), Input::Datagram { from, data }) => {
                relay.handle_datagram(now, addr::to_core(from), &data)
            }
            (_, Input::SendFailed { to }) => self.handle_send_failed(now, to),
        }
    }

    /// A send to `to` (either address form) failed.
    pub fn handle_send_failed(&mut self, now: Instant, to: SocketAddr) {
        tracing::debug!(%to, "send failed");
        let to = addr::to_core(to);
        match &mut self.machine {
            Machine::Rooms(server) => server.handle_send_failed(now, to),
            Machine::Relay(relay) => relay.handle_send_failed(now, to),
        }
    }

    /// Fires the core's timers due at `now` (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.machine {
            Machine::Rooms(server) => server.handle_timeout(now),
            Machine::Relay(relay) => relay.handle_timeout(now),
        }
    }

    /// When [`Driver::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.machine {
            Machine::Rooms(server) => server.poll_timeout(),
            Machine::Relay(relay) => relay.poll_timeout(),
        }
    }

    /// Tells every member the server is going and closes every connection.
    pub fn shutdown(&mut self, now: Instant) {
        match &mut self.machine {
            Machine::Rooms(server) => server.shutdown(now),
            Machine::Relay(relay) => relay.shutdown(now),
        }
    }

    /// Works through the core's outputs: TCP commands go to their connections, events
    /// to the log; returns the next datagram to send (destination in the socket's
    /// form), or `None` when nothing is left.
    pub fn poll_datagram(&mut self) -> Option<(SocketAddr, Bytes)> {
        loop {
            let output = match &mut self.machine {
                Machine::Rooms(server) => server.poll_output(),
                Machine::Relay(relay) => relay.poll_output(),
            }?;
            match output {
                Output::Datagram { to, payload } => {
                    return Some((addr::to_socket(to, self.udp_local), payload))
                }
                Output::TcpSend { conn, data } => self.command(conn, ConnCmd::Send(data)),
                Output::TcpShutdownWrite { conn } => self.command(conn, ConnCmd::ShutdownWrite),
                Output::TcpClose { conn } => {
                    self.command(conn, ConnCmd::Close);
                    self.conns.remove(&conn);
                }
                Output::Event(event) => crate::log_event(&event),
            }
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        match &self.machine {
            Machine::Rooms(server) => server.stats(),
            Machine::Relay(relay) => relay.stats(),
        }
    }

    /// The members of `room`, host first (`None` for no such room, or in relay mode).
    pub fn members_of(&self, room: &str) -> Option<Vec<MemberInfo>> {
        match &self.machine {
            Machine::Rooms(server) => server.members_of(room),
            Machine::Relay(_) => None,
        }
    }

    /// The relay's registered clients (empty in rooms mode).
    pub fn relay_clients(&self) -> Vec<(SocketAddr, Arc<str>)> {
        match &self.machine {
            Machine::Rooms(_) => Vec::new(),
            Machine::Relay(relay) => relay.clients(),
        }
    }

    /// Connections the core still holds open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    fn command(&mut self, conn: ConnId, cmd: ConnCmd) {
        if let Some(cmds) = self.conns.get(&conn) {
            // The channel is unbounded; a closed one means the task is gone already.
            let _ = cmds.try_send(cmd);
        }
    }
}
