//! Relay mode, the spec's first stage: one global room over UDP, no TCP, no tokens.
//!
//! An address registers with a valid datagram `usernamelen | username | message` once it
//! has shown that it receives ([`verify`]: it echoes a code the relay sent it, unless
//! `relay_verify` is off); a later datagram with another name renames it. Non-empty
//! messages are relayed unchanged to every other registered client, within the same
//! rates as rooms ([`crate::rate`]); an empty one is a keepalive; `/exit` unregisters.
//! Notices go out as `0x00 | text`. Idle and failing clients are evicted as in rooms
//! ([`crate::liveness`]), and come back through the check again. At most
//! `max_members` clients, `max_members_per_ip` from one IP. A TCP connection (there is
//! no listener, but a driver may be handed one) is closed at once.

pub(crate) mod verify;

use crate::arena::PayloadArena;
use crate::config::{Config, ConfigError};
use crate::hash::{keyed_map, KeyedMap, KeyedState};
use crate::input::{Input, SendFailure};
use crate::invariants::InvariantViolation;
use crate::liveness::{Failed, Liveness};
use crate::machine::Machine;
use crate::names;
use crate::outbox::Outbox;
use crate::output::{DropReason, Event, Output};
use crate::rate::{room_bucket, source_bucket, MemberLimits, MemberRates, TokenBucket};
use crate::rooms::{canonical_addr, Counts};
use crate::source::Source;
use crate::source_members::{SourceKey, SourceMembers};
use crate::stats::Stats;
use crate::timers::TimerQueue;
use crate::wire::notice::{CloseReason, EvictReason, Notice};
use crate::wire::relay_datagram::RelayDatagram;
use crate::wire::MAX_DATAGRAM_LEN;
use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use verify::{Check, Verifier};

#[derive(Debug)]
pub(crate) struct Client {
    /// Distinguishes this registration from an earlier one at the same address.
    id: u64,
    username: Arc<str>,
    pub(crate) liveness: Liveness,
    rates: MemberRates,
    /// Its IP's entry in [`RelayServer::per_ip`].
    pub(crate) source: SourceKey,
}

/// The relay-mode server state machine. Same driving pattern as
/// [`crate::RoomServer`], without the TCP side.
#[derive(Debug)]
pub struct RelayServer {
    pub(crate) config: Config,
    pub(crate) clients: KeyedMap<SocketAddr, Client>,
    /// Registration order, for a deterministic fan-out.
    pub(crate) order: Vec<SocketAddr>,
    next_id: u64,
    /// Clients per IP (each IP a source of its own), with their IP's message bucket.
    pub(crate) per_ip: SourceMembers,
    /// The datagrams the one room's chat may make the server send.
    fanout: TokenBucket,
    pub(crate) verifier: Verifier,
    timers: TimerQueue<(u64, SocketAddr)>,
    out: Outbox,
    /// Where relayed messages are copied ([`PayloadArena`]).
    payloads: PayloadArena,
    /// Every client's message and byte rates (of `config`).
    member_limits: MemberLimits,
}

impl RelayServer {
    /// A relay with these limits (`idle_timeout`, `max_send_failures`, and `max_members`
    /// as the client limit); the seed keys its hash maps.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<RelayServer, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let state = KeyedState::new(&mut rng);
        Ok(RelayServer {
            clients: keyed_map(state),
            order: Vec::new(),
            next_id: 0,
            per_ip: SourceMembers::new(state),
            fanout: room_bucket(&config),
            verifier: Verifier::new(&mut rng, state),
            member_limits: MemberLimits::new(&config),
            config,
            timers: TimerQueue::default(),
            out: Outbox::default(),
            payloads: PayloadArena::new(),
        })
    }

    /// Whether a dropped datagram is reported as an [`Event::DatagramDropped`] output
    /// (`true`, the default) or only counted in [`Stats::dropped`](crate::Stats). A shell
    /// that would throw the event away (nothing logs it, nothing records it) turns it
    /// off, so a flood of junk costs no queued output per datagram.
    pub fn report_drops(&mut self, report: bool) {
        self.out.report_drops = report;
    }

    /// A datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.out.stats.datagrams_received += 1;
        let from = canonical_addr(from);
        if crate::probe::is_relay_probe(data) {
            return self.answer_probe(now, from);
        }
        let (name, message) = match frame(data) {
            Ok(parts) => parts,
            Err(reason) => return self.out.drop_datagram(from, reason),
        };
        let (client, rename) = match self.clients.get_mut(&from) {
            // A client's name was checked when it took it: only a new one is.
            Some(client) if *client.username.as_bytes() == *name => {
                match names::check_message(message) {
                    Ok(()) => (client, None),
                    Err(reason) => return self.out.drop_datagram(from, reason),
                }
            }
            found => {
                let username = match checked(name, message) {
                    Ok(username) => username,
                    Err(reason) => return self.out.drop_datagram(from, reason),
                };
                match found {
                    Some(client) => (client, Some(username)),
                    None => {
                        if !self.admit(now, from, username, message, data.len()) {
                            return;
                        }
                        let client = self.clients.get_mut(&from).expect("registered just now");
                        (client, None)
                    }
                }
            }
        };
        // A message is charged to its client's, its IP's and the room's buckets (see
        // [`crate::rate`]); a keepalive, `/exit` or a code's echo is free.
        let free = matches!(message, b"" | b"/exit") || verify::echoed_code(message).is_some();
        let fanout = self.order.len().saturating_sub(1);
        if !free {
            let config = &self.config;
            let source = self
                .per_ip
                .bucket_mut(client.source, || source_bucket(config));
            let source = source.expect("its IP is counted");
            let (rates, room) = ((&mut client.rates, &self.member_limits), &mut self.fanout);
            let bytes = message.len();
            if !crate::rate::charge_message(now, rates, source, room, bytes, fanout) {
                return self.out.drop_datagram(from, DropReason::RateLimited);
            }
        }
        client.liveness.heard(now);
        if let Some(username) = rename {
            client.username = username.into();
        }
        match message {
            // A late echo of a code (the client saw the question twice) is a keepalive.
            b"" => self.out.stats.keepalives += 1,
            m if verify::echoed_code(m).is_some() => self.out.stats.keepalives += 1,
            b"/exit" => self.unregister(from, None),
            b"/who" => {
                let names = self
                    .order
                    .iter()
                    .map(|a| (&*self.clients[a].username, false));
                let notice = crate::wire::notice::member_list(names, 1, MAX_DATAGRAM_LEN);
                self.out.datagram(from, notice_datagram(&notice));
            }
            _ => {
                self.out.stats.messages_relayed += 1;
                let payload = self.payloads.copy(data);
                self.fan_out(Some(from), payload);
            }
        }
    }

    /// A liveness probe (see [`crate::probe`]): from a registered client it counts as
    /// its keepalive and is answered `alive: N members`; from anyone else it is dropped
    /// (as any datagram without a username is): its next datagram registers it again.
    fn answer_probe(&mut self, now: Instant, from: SocketAddr) {
        let Some(client) = self.clients.get_mut(&from) else {
            if self.config.relay_verify {
                // The ocm client's first probe gets it the code it must echo.
                return self.challenge(now, from, 1 + crate::probe::PROBE.len());
            }
            return self.out.drop_datagram(from, DropReason::BadUsername);
        };
        client.liveness.heard(now);
        self.out.stats.keepalives += 1;
        let alive = notice_datagram(&Notice::Alive(self.clients.len()));
        self.out.datagram(from, alive);
    }

    /// A send to `to` failed; at `max_send_failures` in a row the client is evicted (an
    /// ICMP error counts only against a client silent for `icmp_grace`).
    pub fn handle_send_failed(&mut self, now: Instant, to: SocketAddr, cause: SendFailure) {
        self.out.stats.send_failures += 1;
        let to = canonical_addr(to);
        let Some(client) = self.clients.get_mut(&to) else {
            return;
        };
        match client.liveness.send_failed(now, cause, &self.config) {
            Failed::Evict => {
                let max = self.config.max_send_failures;
                self.unregister(to, Some(EvictReason::SendFailures(max)));
            }
            Failed::Ignored => self.out.stats.icmp_ignored += 1,
            Failed::Counted => {}
        }
    }

    /// Fires idle evictions due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let idle = self.config.idle_timeout;
        while let Some((_, (id, addr))) = self.timers.pop_due(now) {
            let Some(client) = self.clients.get(&addr).filter(|c| c.id == id) else {
                continue;
            };
            match client.liveness.idle_check(now, idle) {
                Some(due) => self.timers.schedule(due, (id, addr)),
                None => self.unregister(addr, Some(EvictReason::Idle(idle))),
            }
        }
        self.sweep_timers();
    }

    /// Drops stale timer entries once they outnumber the clients (see
    /// [`TimerQueue::sweep`]); called wherever an entry can go stale.
    fn sweep_timers(&mut self) {
        let clients = &self.clients;
        self.timers.sweep(clients.len(), |(id, addr)| {
            clients.get(addr).is_some_and(|c| c.id == *id)
        });
    }

    /// Tells every client `server shutting down` and forgets them all.
    pub fn shutdown(&mut self, _now: Instant) {
        let notice = notice_datagram(&Notice::RoomClosed(CloseReason::ServerShutdown.to_string()));
        self.fan_out(None, notice);
        self.clients.clear();
        self.order.clear();
        self.per_ip.clear();
        self.timers = TimerQueue::default();
    }

    /// Registered clients in registration order, with their usernames.
    pub fn clients(&self) -> Vec<(SocketAddr, Arc<str>)> {
        self.order
            .iter()
            .map(|addr| (*addr, self.clients[addr].username.clone()))
            .collect()
    }

    /// Answers an unregistered address with its code, if that fits three times what it
    /// sent (see [`verify`]); else drops the datagram.
    fn challenge(&mut self, now: Instant, from: SocketAddr, received: usize) {
        match self.verifier.challenge(now, from, received) {
            Some(notice) => {
                self.out.stats.challenges += 1;
                self.out.datagram(from, notice_datagram(&notice));
            }
            None => self.out.drop_datagram(from, DropReason::Unverified),
        }
    }

    /// A datagram from an address that is not a client's: registers it when it may be
    /// one (verified, under the limits), and says whether the datagram is then to be
    /// handled as the new client's (not when it was the echo that registered it).
    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        username: &str,
        message: &[u8],
        len: usize,
    ) -> bool {
        if message == b"/exit" {
            return false;
        }
        let verified = self.config.relay_verify;
        if verified {
            let Some(code) = verify::echoed_code(message) else {
                self.challenge(now, from, len);
                return false;
            };
            if self.verifier.check(now, from, code) != Check::Valid {
                self.out.drop_datagram(from, DropReason::Unverified);
                return false;
            }
        }
        let from_ip = self.per_ip.get(source_of(from));
        if self.clients.len() >= self.config.max_members
            || from_ip >= self.config.max_members_per_ip
        {
            self.out.drop_datagram(from, DropReason::ServerFull);
            return false;
        }
        self.register(now, from, username, verified);
        // `/verify CODE` registered it; it is not a message to relay.
        !verified
    }

    /// Registers `from`; a verified address is welcomed (the answer to its code: it has
    /// shown that it receives).
    fn register(&mut self, now: Instant, from: SocketAddr, username: &str, verified: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let username: Arc<str> = username.into();
        let source = self.per_ip.add(source_of(from));
        self.clients.insert(
            from,
            Client {
                id,
                username: username.clone(),
                liveness: Liveness::new(now),
                rates: MemberRates::new(&self.member_limits),
                source,
            },
        );
        self.order.push(from);
        self.timers
            .schedule(now + self.config.idle_timeout, (id, from));
        self.fan_out(
            Some(from),
            notice_datagram(&Notice::Joined(username.to_string())),
        );
        if verified {
            let welcome = notice_datagram(&Notice::Welcome(username.to_string()));
            self.out.datagram(from, welcome);
        }
        self.out.emit(Event::MemberJoined {
            room: None,
            username,
        });
    }

    /// Removes a client: `/exit` when `evicted` is `None`.
    fn unregister(&mut self, addr: SocketAddr, evicted: Option<EvictReason>) {
        let Some(client) = self.clients.remove(&addr) else {
            return;
        };
        self.order.retain(|a| *a != addr);
        self.per_ip.remove(client.source, source_of(addr));
        self.sweep_timers();
        let name = client.username.to_string();
        let (to_others, event) = match evicted {
            None => (
                Notice::Left(name),
                Event::MemberLeft {
                    room: None,
                    username: client.username,
                },
            ),
            Some(reason) => {
                self.out.stats.evictions += 1;
                let notice = notice_datagram(&Notice::Disconnected(reason.to_string()));
                self.out.datagram(addr, notice);
                (
                    Notice::WasDisconnected(name),
                    Event::MemberEvicted {
                        room: None,
                        username: client.username,
                        reason,
                    },
                )
            }
        };
        self.fan_out(None, notice_datagram(&to_others));
        self.out.emit(event);
    }

    fn fan_out(&mut self, skip: Option<SocketAddr>, payload: Bytes) {
        let to = self.order.iter().copied().filter(|to| Some(*to) != skip);
        self.out.fan_out(to, payload);
    }
}

impl Machine for RelayServer {
    fn handle(&mut self, now: Instant, input: Input<&[u8]>) {
        match input {
            Input::Datagram { from, data } => self.handle_datagram(now, from, data),
            Input::SendFailed { to, cause } => self.handle_send_failed(now, to, cause),
            Input::Timeout => self.handle_timeout(now),
            Input::Shutdown => self.shutdown(now),
            Input::TcpAccepted { conn, .. } => self.out.tcp_close(conn),
            Input::TcpData { .. } | Input::TcpClosed { .. } => {}
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    fn front_datagrams(&self, max: usize) -> &[(SocketAddr, Bytes)] {
        self.out.front_datagrams(max)
    }

    fn datagrams_sent(&mut self, n: usize) {
        self.out.datagrams_sent(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// In the rooms server's terms: its clients are the members of one room; there are
    /// no connections.
    fn counts(&self) -> Counts {
        Counts {
            rooms: usize::from(!self.clients.is_empty()),
            members: self.clients.len(),
            connections: 0,
            queued_outputs: self.out.len(),
            timers: self.timers.len(),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        crate::invariants::relay(self)
    }

    fn member_addrs(&self) -> Vec<SocketAddr> {
        self.order.clone()
    }
}

/// The source `from` counts under: its IP, whatever its family.
pub(crate) fn source_of(from: SocketAddr) -> Source {
    Source::of(from.ip(), crate::source::MAX_IPV6_PREFIX)
}

/// A datagram's name and message, unchecked (a notice's zero length is refused).
fn frame(data: &[u8]) -> Result<(&[u8], &[u8]), DropReason> {
    match RelayDatagram::decode(data)? {
        RelayDatagram::Message { username, message } => Ok((username, message)),
        _ => Err(DropReason::BadUsername),
    }
}

/// Checks a name and its message, the name first.
fn checked<'a>(name: &'a [u8], message: &[u8]) -> Result<&'a str, DropReason> {
    let username = names::username(name).map_err(|_| DropReason::BadUsername)?;
    names::check_message(message)?;
    Ok(username)
}

/// A notice in relay framing: a zero length byte, then the body.
pub fn notice_datagram(notice: &Notice) -> Bytes {
    let body = notice.body();
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(0);
    out.extend_from_slice(body.as_bytes());
    Bytes::from(out)
}
