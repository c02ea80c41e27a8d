//! [`Driver`]: the core plus the table of open connections, driven by one owner task.
//!
//! Reader tasks send [`Input`]s to the owner; the owner calls [`Driver::handle`] with
//! `Instant::now()`, then [`Driver::poll_datagram`] until `None`, sending each datagram
//! on the UDP socket. TCP outputs need no waiting, so the driver carries them out
//! itself: it puts a [`ConnCmd`] on the connection's channel, which that connection's
//! task works through in order. Events go to the log, rate-limited where a peer can
//! cause them at will ([`crate::EventLog`]).
//!
//! The driver also logs a one-line summary of the counters every
//! [`Options::stats_interval`]: [`Driver::poll_timeout`] includes its deadline (and the
//! end of a log window with suppressed lines), and [`Driver::handle_timeout`] writes it,
//! so a shell's owner loop needs nothing more than the core already asks of it.

use crate::addr;
use crate::events::EventLog;
use crate::options::{Options, Protocol};
use async_channel::Sender;
use bytes::Bytes;
use ocm_core::{ConfigError, ConnId, Counts, MemberInfo, Output, RelayServer, Server, Stats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something a TCP task saw, for the owner task (datagrams the owner reads itself).
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
    /// The time of the latest input or timeout: events drained afterwards happened then.
    now: Instant,
    log: EventLog,
    stats_interval: Option<Duration>,
    next_summary: Option<Instant>,
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
        let now = Instant::now();
        Ok(Driver {
            machine,
            conns: HashMap::new(),
            udp_local,
            now,
            log: EventLog::default(),
            stats_interval: options.stats_interval,
            next_summary: options.stats_interval.map(|every| now + every),
        })
    }

    /// Feeds one input to the core.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = now;
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
        }
    }

    /// A datagram arrived from `from` (either address form).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = now;
        let from = addr::to_core(from);
        match &mut self.machine {
            Machine::Rooms(server) => server.handle_datagram(now, from, data),
            Machine::Relay(relay) => relay.handle_datagram(now, from, data),
        }
    }

    /// A send to `to` (either address form) failed.
    pub fn handle_send_failed(&mut self, now: Instant, to: SocketAddr) {
        tracing::debug!(%to, "send failed");
        self.now = now;
        let to = addr::to_core(to);
        match &mut self.machine {
            Machine::Rooms(server) => server.handle_send_failed(now, to),
            Machine::Relay(relay) => relay.handle_send_failed(now, to),
        }
    }

    /// Fires the core's timers due at `now`, reports suppressed log lines, and logs the
    /// periodic summary when it is due (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match &mut self.machine {
            Machine::Rooms(server) => server.handle_timeout(now),
            Machine::Relay(relay) => relay.handle_timeout(now),
        }
        self.log.flush(now);
        if let (Some(due), Some(every)) = (self.next_summary, self.stats_interval) {
            if due <= now {
                tracing::info!("{}", self.summary());
                // Skip the beats missed while the owner was busy instead of catching up.
                let mut next = due + every;
                while next <= now {
                    next += every;
                }
                self.next_summary = Some(next);
            }
        }
    }

    /// When [`Driver::handle_timeout`] is next due: the earliest of the core's deadline,
    /// the periodic summary and the end of a log window with lines left out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let core = match &self.machine {
            Machine::Rooms(server) => server.poll_timeout(),
            Machine::Relay(relay) => relay.poll_timeout(),
        };
        [core, self.next_summary, self.log.flush_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The one-line summary: the counters since start, then what the server holds now.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        format!(
            "stats: {} rooms={} members={} connections={} timers={}",
            self.stats(),
            counts.rooms,
            counts.members,
            counts.connections,
            counts.timers,
        )
    }

    /// Tells every member the server is going and closes every connection.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
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
                Output::Event(event) => self.log.log(self.now, &event),
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

    /// What the core holds now: rooms, members, connections, queued outputs, timers.
    /// Relay mode has no rooms, connections or timers table: it reports its clients as
    /// members and its queued outputs.
    pub fn counts(&self) -> Counts {
        match &self.machine {
            Machine::Rooms(server) => server.counts(),
            Machine::Relay(relay) => relay.counts(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(protocol: Protocol, stats_interval: Option<Duration>) -> Driver {
        let options = Options {
            protocol,
            stats_interval,
            ..Options::default()
        };
        Driver::new(&options, [7; 32], "127.0.0.1:9".parse().unwrap()).unwrap()
    }

    #[test]
    fn the_summary_is_a_deadline_of_its_own_and_moves_on_when_written() {
        let every = Duration::from_secs(60);
        let mut driver = driver(Protocol::Relay, Some(every));
        let first = driver
            .poll_timeout()
            .expect("an idle relay still has the summary");
        assert!(first > driver.now && first <= driver.now + every);
        driver.handle_timeout(first - Duration::from_millis(1));
        assert_eq!(driver.poll_timeout(), Some(first), "early: nothing happens");
        driver.handle_timeout(first);
        assert_eq!(driver.poll_timeout(), Some(first + every));
        // A late owner skips the missed beats instead of logging them all at once.
        driver.handle_timeout(first + 5 * every + Duration::from_secs(1));
        assert_eq!(driver.poll_timeout(), Some(first + 6 * every));
    }

    #[test]
    fn without_a_summary_an_idle_server_has_no_deadline() {
        let driver = driver(Protocol::Rooms, None);
        assert_eq!(driver.poll_timeout(), None);
        let summary = driver.summary();
        assert!(summary.starts_with("stats: received=0 "), "{summary}");
        assert!(
            summary.ends_with("rooms=0 members=0 connections=0 timers=0"),
            "{summary}"
        );
    }
}
