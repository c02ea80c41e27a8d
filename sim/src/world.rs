//! The simulated world: one core `Server`, the model, the network, the actors and the
//! attacker, and the virtual clock that drives them.
//!
//! Every input reaches the server through [`World::feed`], which logs it, asks the
//! model what must happen, runs the server, compares, checks the invariants and only
//! then puts the outputs on the wire. [`World::run_until`] is the event loop: it jumps
//! the clock to the next thing due (a server or model deadline, a packet, a client
//! keepalive) and handles it, so no deadline is ever skipped.

use crate::check;
use crate::coverage::Coverage;
use crate::host::{Actor, Wire};
use crate::invariants;
use crate::model::{Model, Verdict};
use crate::net::{Net, Packet, Segment};
use crate::schedule::{config, Schedule};
use crate::trace::Trace;
use bytes::Bytes;
use ocm_core::output::{ConnId, Event, Output};
use ocm_core::{Config, Machine, RoomServer};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The server's address (UDP and TCP).
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9000);
/// The attacker's address: its own IP, never a member's.
pub const ATTACKER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66)), 6666);

/// A broken rule, with where and when.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Virtual time of the failing step.
    pub at: Duration,
    /// What broke.
    pub what: String,
    /// The last lines of the trace.
    pub trace_tail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at {:?}: {}\n--- trace tail ---\n{}",
            self.at, self.what, self.trace_tail
        )
    }
}

/// One input to the server: the core's own, with owned bytes.
pub type Input = ocm_core::Input<Bytes>;

/// How a world is set up beyond its schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The server's limits.
    pub limits: Config,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup { limits: config() }
    }
}

/// Who holds the client end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// An actor, by index.
    Actor(usize),
    /// The attacker.
    Attacker,
}

/// Everything in a run.
pub struct World {
    pub(crate) base: Instant,
    pub(crate) now: Duration,
    pub(crate) rng: ChaCha20Rng,
    /// How each step's outputs are taken (see [`World::take_outputs`]): a stream of its
    /// own, so that the schedule's stream, and every seed kept as a test, is unchanged.
    take_rng: ChaCha20Rng,
    pub(crate) server: RoomServer,
    pub(crate) model: Model,
    pub(crate) net: Net,
    pub(crate) actors: Vec<Actor>,
    pub(crate) owners: BTreeMap<ConnId, Owner>,
    server_closed: BTreeSet<ConnId>,
    next_conn: u64,
    pub(crate) captured: Vec<Bytes>,
    /// The event log.
    pub trace: Trace,
    /// What the run exercised.
    pub coverage: Coverage,
}

impl World {
    /// A world for `schedule`: six actors on three hosts (the third sends its datagrams
    /// from IPv4-mapped IPv6 addresses), the attacker, and an empty server.
    pub fn new(schedule: &Schedule, trace: Trace) -> World {
        World::with_setup(schedule, &Setup::default(), trace)
    }

    /// The same world with another setup (roomier limits, say).
    pub fn with_setup(schedule: &Schedule, setup: &Setup, trace: Trace) -> World {
        let limits = setup.limits.clone();
        let mut rng = ChaCha20Rng::seed_from_u64(schedule.seed);
        let mut server_seed = [0u8; 32];
        rng.fill_bytes(&mut server_seed);
        let server = RoomServer::new(limits.clone(), server_seed).expect("a valid config");
        let actors = (0..6u8)
            .map(|i| {
                let host = Ipv4Addr::new(10, 0, 0, 1 + i / 2);
                let udp = if i / 2 == 2 {
                    IpAddr::V6(host.to_ipv6_mapped())
                } else {
                    IpAddr::V4(host)
                };
                Actor::new(IpAddr::V4(host), udp, 40_000 + u16::from(i) * 1_000)
            })
            .collect();
        World {
            base: Instant::now(),
            now: Duration::ZERO,
            rng,
            take_rng: ChaCha20Rng::seed_from_u64(schedule.seed ^ 0x7a6b_e0f5_0a1d_57ee),
            server,
            model: Model::new(limits),
            net: Net::new(schedule.network.faults()),
            actors,
            owners: BTreeMap::new(),
            server_closed: BTreeSet::new(),
            next_conn: 1,
            captured: Vec::new(),
            trace,
            coverage: Coverage::default(),
        }
    }

    /// The server under test.
    pub fn server(&self) -> &RoomServer {
        &self.server
    }

    /// The reference model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    pub(crate) fn fail(&self, what: impl Into<String>) -> Failure {
        Failure {
            at: self.now,
            what: what.into(),
            trace_tail: self.trace.tail(),
        }
    }

    pub(crate) fn wire(&mut self) -> (Wire<'_>, &mut Vec<Actor>) {
        (
            Wire {
                net: &mut self.net,
                rng: &mut self.rng,
                now: self.now,
                base: self.base,
                server: SERVER,
                captured: &mut self.captured,
            },
            &mut self.actors,
        )
    }

    /// A fresh connection id for `owner`.
    pub(crate) fn open_conn(&mut self, owner: Owner) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.owners.insert(conn, owner);
        conn
    }

    /// Resets a connection from the client side: in-flight bytes are lost and the
    /// server hears of the close at once.
    ///
    /// On a connection the server closed already, the close still reaches it: a real
    /// shell, lingering on that socket, reports it gone, and the slot is free.
    pub(crate) fn reset_conn(&mut self, conn: ConnId) -> Result<(), Failure> {
        self.net.reset(conn);
        self.feed(Input::TcpClosed { conn })
    }

    /// Feeds one input to the model and the server, compares, checks, and sends.
    pub fn feed(&mut self, input: Input) -> Result<(), Failure> {
        self.coverage.steps += 1;
        let now = self.now;
        let _ = writeln!(self.trace, "{now:?} {input:?}");
        let before = invariants::reachable(&self.model);
        let server_before = self.server.member_addrs().into_iter().collect();
        let at = self.base + now;
        let mut verdict = None;
        let expected = match &input {
            Input::TcpAccepted { conn, peer } => self.model.tcp_accept(now, *conn, *peer),
            Input::TcpData { conn, data } => self.model.tcp_data(now, *conn, data),
            Input::TcpClosed { conn } => self.model.tcp_closed(*conn),
            Input::Datagram { from, data } => {
                let retired = retired_token(&self.model, data);
                let (e, v) = self.model.datagram(now, *from, data);
                if retired && v == Verdict::Refused {
                    self.coverage.retired_token_probes += 1;
                }
                if let Verdict::Authorized { message, .. } = &v {
                    if !message.is_empty() && message != "/exit" && message != "/who" {
                        self.coverage.relayed += 1;
                    }
                }
                verdict = Some(v);
                e
            }
            Input::SendFailed { to, cause } => {
                self.coverage.send_failures += 1;
                self.model.send_failed(now, *to, *cause)
            }
            Input::Timeout => self.model.timeout(now),
            Input::Shutdown => self.model.shutdown(),
        };
        self.server.handle(at, input.as_slice());
        let outputs = self.take_outputs();
        for output in &outputs {
            let _ = writeln!(self.trace, "  {output:?}");
        }
        ocm_core::invariants::check_step(
            &self.server,
            at,
            &input.as_slice(),
            &server_before,
            &outputs,
        )
        .map_err(|e| self.fail(e))?;
        let token = check::compare(&expected, &outputs).map_err(|e| self.fail(e))?;
        if let (Some(member), Some(token)) = (expected.admitted, token) {
            self.model
                .learn_token(member, token)
                .map_err(|e| self.fail(e))?;
        }
        invariants::outputs(&before, verdict.as_ref(), &outputs).map_err(|e| self.fail(e))?;
        if let Input::TcpData { conn, .. } | Input::TcpClosed { conn } = &input {
            self.check_port_step(*conn, &outputs)?;
        }
        invariants::state(&self.server, &self.model, self.base, now).map_err(|e| self.fail(e))?;
        for output in outputs {
            self.route(output);
        }
        Ok(())
    }

    /// Every output of the step, taken as a shell takes them: one by one
    /// ([`Machine::poll_output`]), or a run of datagrams at a time from where they are
    /// queued ([`Machine::front_datagrams`], then [`Machine::datagrams_sent`]), the two
    /// mixed at random. Either way the same outputs in the same order, which the checks
    /// after the step hold the server to.
    fn take_outputs(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        loop {
            let max = crate::net::below(&mut self.take_rng, 6) as usize;
            let front = self.server.front_datagrams(max);
            if !front.is_empty() {
                let n = front.len();
                outputs.extend(front.iter().map(|(to, payload)| Output::Datagram {
                    to: *to,
                    payload: payload.clone(),
                }));
                self.server.datagrams_sent(n);
                continue;
            }
            match self.server.poll_output() {
                Some(output) => outputs.push(output),
                None => return outputs,
            }
        }
    }

    /// An address set during a connection's port step must come from a port step of
    /// exactly 2 bytes (and a non-zero port), whatever TCP did to them: the outcome
    /// cannot depend on how the stream was split; without such a step, only from the
    /// `port` the client's JSON request named.
    fn check_port_step(&mut self, conn: ConnId, outputs: &[Output]) -> Result<(), Failure> {
        let set = outputs.iter().find_map(|o| match o {
            Output::Event(Event::MemberAddress { addr, .. }) => Some(*addr),
            _ => None,
        });
        let (Some(addr), Some(Owner::Actor(i))) = (set, self.owners.get(&conn)) else {
            return Ok(());
        };
        let actor = &self.actors[*i];
        let step = actor.port_step(conn).map(|s| &s[..]);
        let stepped = match step {
            Some(&[0, 0]) => None,
            Some(&[high, low]) => Some(u16::from_be_bytes([high, low])),
            _ => None,
        };
        match stepped.or(actor.json_port(conn)) {
            Some(port) if port == addr.port() => {
                self.coverage.json_ports += u64::from(stepped.is_none());
                Ok(())
            }
            expected => Err(self.fail(format!(
                "the server took UDP address {addr} from the port step {step:?} (JSON port {:?}); it may only take port {expected:?}",
                actor.json_port(conn)
            ))),
        }
    }

    fn route(&mut self, output: Output) {
        let now = self.now;
        match output {
            Output::TcpSend { conn, data } => {
                self.net.send_tcp(&mut self.rng, now, conn, false, &data)
            }
            Output::TcpShutdownWrite { conn } => self.net.send_fin(&mut self.rng, now, conn, false),
            Output::TcpClose { conn } => {
                self.server_closed.insert(conn);
                self.net.send_fin(&mut self.rng, now, conn, false);
            }
            Output::Datagram { to, payload } => {
                if to == ATTACKER && &payload[..] == b"* not a member" {
                    self.coverage.stranger_probes_answered += 1;
                }
                self.net.send_udp(&mut self.rng, now, SERVER, to, payload)
            }
            Output::Event(event) => self.coverage.count(&event),
            Output::Cluster(cluster) => {
                unreachable!("the single-node simulation runs no cluster: {cluster:?}")
            }
        }
    }

    fn deliver(&mut self, packet: Packet) -> Result<(), Failure> {
        let _ = writeln!(self.trace, "{:?} deliver {packet:?}", self.now);
        match packet {
            Packet::Udp {
                from, to, payload, ..
            } if to == SERVER => self.feed(Input::Datagram {
                from,
                data: payload,
            }),
            // The one answer a stranger may get is `not a member` to its own probe
            // (checked exactly where the server sends it); the network may have
            // mangled it on the way.
            Packet::Udp { to, payload, .. } if to == ATTACKER => {
                if self.coverage.stranger_probes_answered > 0 && payload.len() <= 14 {
                    return Ok(());
                }
                Err(self.fail("the attacker received a datagram"))
            }
            Packet::Udp {
                from, to, payload, ..
            } => {
                let taken = self.actors.iter_mut().any(|a| a.on_udp(to, &payload));
                if !taken && from == SERVER {
                    // Mostly the ICMP port-unreachable the host sends back (a hint the
                    // server may ignore); sometimes send_to itself fails.
                    let cause = if crate::net::below(&mut self.rng, 4) == 0 {
                        ocm_core::SendFailure::Refused
                    } else {
                        ocm_core::SendFailure::Icmp
                    };
                    return self.feed(Input::SendFailed { to, cause });
                }
                Ok(())
            }
            Packet::Tcp {
                conn,
                to_server: true,
                segment,
            } => match segment {
                // After the server's close, the shell passes on no more bytes...
                Segment::Data(_) if self.server_closed.contains(&conn) => Ok(()),
                Segment::Data(data) => self.feed(Input::TcpData { conn, data }),
                // ... but the peer's close ends its linger: the socket is gone.
                Segment::Fin => self.feed(Input::TcpClosed { conn }),
            },
            Packet::Tcp {
                conn,
                to_server: false,
                segment,
            } => match self.owners.get(&conn) {
                Some(Owner::Actor(i)) => {
                    let i = *i;
                    let (mut wire, actors) = self.wire();
                    let result = actors[i].on_tcp(&mut wire, conn, segment);
                    result.map_err(|e| self.fail(e))
                }
                _ => Ok(()),
            },
        }
    }

    fn server_deadline(&self) -> Option<Duration> {
        let server = self
            .server
            .poll_timeout()
            .map(|at| at.saturating_duration_since(self.base));
        let model = self.model.next_deadline();
        server.into_iter().chain(model).min()
    }

    /// Lets a little time pass between two operations (up to 250 ms, drawn from the
    /// seed), so that handshakes can complete before the next move.
    pub fn think(&mut self) -> Result<(), Failure> {
        let gap = Duration::from_micros(crate::net::below(&mut self.rng, 250_000));
        self.run_until(self.now + gap)
    }

    /// Runs every event due up to `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Duration) -> Result<(), Failure> {
        loop {
            let actors = self.actors.iter().filter_map(|a| a.poll_timeout(self.base));
            let next = [self.server_deadline(), self.net.next_due()]
                .into_iter()
                .flatten()
                .chain(actors)
                .min();
            match next {
                Some(at) if at <= until => self.now = self.now.max(at),
                _ => break,
            }
            if self.server_deadline().is_some_and(|at| at <= self.now) {
                self.feed(Input::Timeout)?;
            }
            while let Some(packet) = self.net.pop_due(self.now) {
                self.deliver(packet)?;
            }
            let now = self.now;
            let (mut wire, actors) = self.wire();
            for actor in actors.iter_mut() {
                if actor.poll_timeout(wire.base).is_some_and(|at| at <= now) {
                    actor.handle_timeout(&mut wire);
                }
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }
}

/// True if the datagram names a token the model once saw and no longer holds.
fn retired_token(model: &Model, data: &[u8]) -> bool {
    let [room_len, token_len, rest @ ..] = data else {
        return false;
    };
    let (r, t) = (usize::from(*room_len), usize::from(*token_len));
    rest.get(r..r + t)
        .and_then(|token| <[u8; 32]>::try_from(token).ok())
        .is_some_and(|token| model.retired.contains(&token) && !model.token_is_live(&token))
}
