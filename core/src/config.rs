//! Server limits and timeouts, with the defaults documented in `docs/PROTOCOL.md`.

use std::time::Duration;

/// The longest timeout accepted (a year): deadlines are `now + timeout`, and an
/// `Instant` plus a huge `Duration` would overflow and panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest `max_payload` accepted: 64 KiB. A request is a name and a password; a
/// bigger limit would only let a few connections hold a lot of memory.
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// The largest `max_members` accepted: 2^24 (16 777 216). A member's id holds its slot
/// in 24 bits, so that the id is one word in every table that keeps it.
pub const MAX_MEMBERS: usize = 1 << 24;

/// What a request holds beyond its payload: the 32-byte header and a room name of up
/// to 255 bytes.
pub const REQUEST_OVERHEAD: usize = crate::wire::tcrp::HEADER_LEN + 255;

/// Every limit and timeout of a server. `Config::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest TCRP request payload accepted (default 4096, at most [`MAX_PAYLOAD`]).
    pub max_payload: u32,
    /// Most bytes the unfinished requests of all connections may hold together
    /// (default 4 MiB, at least one whole request of `max_payload`). Over it, the
    /// connections holding the most are closed without an answer until the rest fits.
    pub request_budget: usize,
    /// A TCP connection must complete its request within this (default 10 s).
    pub handshake_timeout: Duration,
    /// After the token, how long to wait for the optional 2-byte UDP port (default 1 s).
    pub port_wait: Duration,
    /// A member silent this long is evicted (default 300 s).
    pub idle_timeout: Duration,
    /// A member whose UDP address is still unknown (no datagram, no port step) this
    /// long after it joined is removed, so an abandoned handshake does not hold a name
    /// and a seat for the whole idle timeout (default 30 s).
    pub registration_timeout: Duration,
    /// A member whose sends failed this many times in a row is evicted (default 3).
    pub max_send_failures: u32,
    /// An ICMP error counts as a failed send only against a member silent this long
    /// (default 30 s); zero trusts every ICMP error (a trusted network only).
    pub icmp_grace: Duration,
    /// Most rooms alive at once (default 10 000).
    pub max_rooms: usize,
    /// Most members in one room, host included (default 1 000).
    pub max_members_per_room: usize,
    /// Most members in all rooms together, or relay-mode clients (default 100 000).
    pub max_members: usize,
    /// Most members, in all rooms together, whose tokens were obtained from one source
    /// (an IPv4 address or an IPv6 prefix, see [`Config::ipv6_source_prefix`]; default
    /// 256), so one host cannot take every seat.
    pub max_members_per_ip: usize,
    /// Wrong passwords one source may send before each further attempt must wait
    /// (1 s, doubling, at most 60 s; default 5). See `crate::throttle`.
    pub password_failures_per_source: u32,
    /// Wrong passwords for one room, from anywhere, before each further attempt at it
    /// must wait the same way (default 20).
    pub password_failures_per_room: u32,
    /// Chat messages (and `/who`) one member may send a second, and at once (default
    /// 200 and 400: what an ocm client's pace is built to stay under,
    /// `crate::rate::MEMBER_RATE_FLOOR`). Over it, a message is dropped (`RateLimited`).
    pub member_messages_per_sec: u32,
    /// See `member_messages_per_sec`.
    pub member_message_burst: u32,
    /// Bytes of message text one member may send a second, and at once (default 256 KiB
    /// and 1 MiB).
    pub member_bytes_per_sec: u32,
    /// See `member_bytes_per_sec`.
    pub member_byte_burst: u32,
    /// Messages all members from one source (IP) may send together, a second and at once
    /// (default 400 and 800), so many members on one host do not multiply the rate.
    pub source_messages_per_sec: u32,
    /// See `source_messages_per_sec`.
    pub source_message_burst: u32,
    /// Datagrams one room's messages may make the server send, a second and at once
    /// (default 20 000 and 40 000): a message to N members costs N.
    pub room_fanout_per_sec: u32,
    /// See `room_fanout_per_sec`.
    pub room_fanout_burst: u32,
    /// Datagrams an address learnt only from the port step (no datagram came from it
    /// yet) may be sent before one does (default 16).
    pub unproven_datagrams: u32,
    /// Relay mode: an address must echo a code sent to it before it is registered, so
    /// a forged source cannot make the relay send to a victim (default on; off only on
    /// a trusted network). See `crate::relay`.
    pub relay_verify: bool,
    /// Most rooms alive at once whose host's token came from one source (default 16):
    /// one host cannot take every room.
    pub max_rooms_per_source: usize,
    /// Most TCP connections open at once (default 1 024).
    pub max_handshakes: usize,
    /// Most TCP connections open at once from one source (default 64).
    pub max_handshakes_per_ip: usize,
    /// IPv6 addresses count, for every per-source limit, as their first this-many bits
    /// (default 64: a /64 is one host; at most 128). IPv4 addresses count one by one.
    pub ipv6_source_prefix: u8,
    /// How long the shell may keep a socket open after the server closed it following
    /// an answer, reading and discarding so that a reset cannot destroy the answer
    /// (default 2 s). The connection counts against the limits until the shell reports
    /// the socket gone or this has passed; the shell never lingers longer.
    pub linger: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_payload: 4096,
            request_budget: 4 << 20,
            handshake_timeout: Duration::from_secs(10),
            port_wait: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(300),
            registration_timeout: Duration::from_secs(30),
            max_send_failures: 3,
            icmp_grace: Duration::from_secs(30),
            max_rooms: 10_000,
            max_members_per_room: 1_000,
            max_members: 100_000,
            max_members_per_ip: 256,
            password_failures_per_source: 5,
            password_failures_per_room: 20,
            member_messages_per_sec: 200,
            member_message_burst: 400,
            member_bytes_per_sec: 256 * 1024,
            member_byte_burst: 1024 * 1024,
            source_messages_per_sec: 400,
            source_message_burst: 800,
            room_fanout_per_sec: 20_000,
            room_fanout_burst: 40_000,
            unproven_datagrams: 16,
            relay_verify: true,
            max_rooms_per_source: 16,
            max_handshakes: 1_024,
            max_handshakes_per_ip: 64,
            ipv6_source_prefix: 64,
            linger: Duration::from_secs(2),
        }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit or timeout that must be positive is zero; the field is named.
    Zero(&'static str),
    /// `max_payload` is above [`MAX_PAYLOAD`].
    PayloadLimitTooLarge,
    /// `request_budget` cannot hold one whole request of `max_payload`.
    BudgetBelowOneRequest,
    /// A timeout is above [`MAX_DURATION`]; the field is named.
    TooLong(&'static str),
    /// Cluster mode: the lease or registry timeout is out of range (says which).
    Cluster(&'static str),
    /// `ipv6_source_prefix` is above 128.
    PrefixTooLong,
    /// `max_members` is above [`MAX_MEMBERS`].
    TooManyMembers,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Zero(field) => write!(f, "{field} must be greater than zero"),
            ConfigError::PayloadLimitTooLarge => {
                write!(f, "max payload must be at most {MAX_PAYLOAD} bytes")
            }
            ConfigError::BudgetBelowOneRequest => write!(
                f,
                "the request budget must hold one whole request: at least the max payload + {} bytes",
                REQUEST_OVERHEAD
            ),
            ConfigError::TooLong(field) => write!(f, "{field} must be at most a year"),
            ConfigError::Cluster(what) => f.write_str(what),
            ConfigError::PrefixTooLong => {
                f.write_str("the IPv6 source prefix must be at most 128 bits")
            }
            ConfigError::TooManyMembers => {
                write!(f, "max members must be at most {MAX_MEMBERS}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A named value of [`Config::fields`]: a count, or a duration in nanoseconds.
pub type ConfigField = (&'static str, u64);

impl Config {
    /// Every field by name, durations in nanoseconds: what a recorded trace
    /// ([`crate::record`]) keeps of the configuration. Adding a field to [`Config`]
    /// means adding it here and to [`Config::set_field`] (a test checks that none is
    /// left out).
    pub fn fields(&self) -> Vec<ConfigField> {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        vec![
            ("max_payload", u64::from(self.max_payload)),
            ("request_budget", self.request_budget as u64),
            ("handshake_timeout", nanos(self.handshake_timeout)),
            ("port_wait", nanos(self.port_wait)),
            ("idle_timeout", nanos(self.idle_timeout)),
            ("registration_timeout", nanos(self.registration_timeout)),
            ("max_send_failures", u64::from(self.max_send_failures)),
            ("icmp_grace", nanos(self.icmp_grace)),
            ("max_rooms", self.max_rooms as u64),
            ("max_members_per_room", self.max_members_per_room as u64),
            ("max_members", self.max_members as u64),
            ("max_members_per_ip", self.max_members_per_ip as u64),
            (
                "password_failures_per_source",
                u64::from(self.password_failures_per_source),
            ),
            (
                "password_failures_per_room",
                u64::from(self.password_failures_per_room),
            ),
            (
                "member_messages_per_sec",
                u64::from(self.member_messages_per_sec),
            ),
            ("member_message_burst", u64::from(self.member_message_burst)),
            ("member_bytes_per_sec", u64::from(self.member_bytes_per_sec)),
            ("member_byte_burst", u64::from(self.member_byte_burst)),
            (
                "source_messages_per_sec",
                u64::from(self.source_messages_per_sec),
            ),
            ("source_message_burst", u64::from(self.source_message_burst)),
            ("room_fanout_per_sec", u64::from(self.room_fanout_per_sec)),
            ("room_fanout_burst", u64::from(self.room_fanout_burst)),
            ("unproven_datagrams", u64::from(self.unproven_datagrams)),
            ("relay_verify", u64::from(self.relay_verify)),
            ("max_rooms_per_source", self.max_rooms_per_source as u64),
            ("max_handshakes", self.max_handshakes as u64),
            ("max_handshakes_per_ip", self.max_handshakes_per_ip as u64),
            ("ipv6_source_prefix", u64::from(self.ipv6_source_prefix)),
            ("linger", nanos(self.linger)),
        ]
    }

    /// Sets one field of [`Config::fields`] by name; `false` for an unknown name or a
    /// value out of the field's range.
    pub fn set_field(&mut self, name: &str, value: u64) -> bool {
        let count = |v: u64| usize::try_from(v).ok();
        let small = |v: u64| u32::try_from(v).ok();
        let set = |slot: &mut usize, v: Option<usize>| v.map(|v| *slot = v).is_some();
        match name {
            "max_payload" => small(value).map(|v| self.max_payload = v).is_some(),
            "request_budget" => set(&mut self.request_budget, count(value)),
            "handshake_timeout" => {
                self.handshake_timeout = Duration::from_nanos(value);
                true
            }
            "port_wait" => {
                self.port_wait = Duration::from_nanos(value);
                true
            }
            "idle_timeout" => {
                self.idle_timeout = Duration::from_nanos(value);
                true
            }
            "registration_timeout" => {
                self.registration_timeout = Duration::from_nanos(value);
                true
            }
            "max_send_failures" => small(value).map(|v| self.max_send_failures = v).is_some(),
            "icmp_grace" => {
                self.icmp_grace = Duration::from_nanos(value);
                true
            }
            "max_rooms" => set(&mut self.max_rooms, count(value)),
            "max_members_per_room" => set(&mut self.max_members_per_room, count(value)),
            "max_members" => set(&mut self.max_members, count(value)),
            "max_members_per_ip" => set(&mut self.max_members_per_ip, count(value)),
            "password_failures_per_source" => small(value)
                .map(|v| self.password_failures_per_source = v)
                .is_some(),
            "password_failures_per_room" => small(value)
                .map(|v| self.password_failures_per_room = v)
                .is_some(),
            "member_messages_per_sec" => small(value)
                .map(|v| self.member_messages_per_sec = v)
                .is_some(),
            "member_message_burst" => small(value)
                .map(|v| self.member_message_burst = v)
                .is_some(),
            "member_bytes_per_sec" => small(value)
                .map(|v| self.member_bytes_per_sec = v)
                .is_some(),
            "member_byte_burst" => small(value).map(|v| self.member_byte_burst = v).is_some(),
            "source_messages_per_sec" => small(value)
                .map(|v| self.source_messages_per_sec = v)
                .is_some(),
            "source_message_burst" => small(value)
                .map(|v| self.source_message_burst = v)
                .is_some(),
            "room_fanout_per_sec" => small(value).map(|v| self.room_fanout_per_sec = v).is_some(),
            "room_fanout_burst" => small(value).map(|v| self.room_fanout_burst = v).is_some(),
            "unproven_datagrams" => small(value).map(|v| self.unproven_datagrams = v).is_some(),
            "relay_verify" if value <= 1 => {
                self.relay_verify = value == 1;
                true
            }
            "max_rooms_per_source" => set(&mut self.max_rooms_per_source, count(value)),
            "max_handshakes" => set(&mut self.max_handshakes, count(value)),
            "max_handshakes_per_ip" => set(&mut self.max_handshakes_per_ip, count(value)),
            "ipv6_source_prefix" => u8::try_from(value)
                .map(|v| self.ipv6_source_prefix = v)
                .is_ok(),
            "linger" => {
                self.linger = Duration::from_nanos(value);
                true
            }
            _ => false,
        }
    }

    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_payload", self.max_payload as usize),
            ("max_send_failures", self.max_send_failures as usize),
            ("max_rooms", self.max_rooms),
            ("max_members_per_room", self.max_members_per_room),
            ("max_members", self.max_members),
            ("max_members_per_ip", self.max_members_per_ip),
            ("max_rooms_per_source", self.max_rooms_per_source),
            ("max_handshakes", self.max_handshakes),
            ("max_handshakes_per_ip", self.max_handshakes_per_ip),
            (
                "member_messages_per_sec",
                self.member_messages_per_sec as usize,
            ),
            ("member_message_burst", self.member_message_burst as usize),
            ("member_bytes_per_sec", self.member_bytes_per_sec as usize),
            ("member_byte_burst", self.member_byte_burst as usize),
            (
                "source_messages_per_sec",
                self.source_messages_per_sec as usize,
            ),
            ("source_message_burst", self.source_message_burst as usize),
            ("room_fanout_per_sec", self.room_fanout_per_sec as usize),
            ("room_fanout_burst", self.room_fanout_burst as usize),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(field));
        }
        let durations = [
            ("handshake_timeout", self.handshake_timeout),
            ("port_wait", self.port_wait),
            ("idle_timeout", self.idle_timeout),
            ("registration_timeout", self.registration_timeout),
            ("linger", self.linger),
        ];
        if let Some((field, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::Zero(field));
        }
        let may_be_zero = [("icmp_grace", self.icmp_grace)];
        if let Some((field, _)) = durations
            .iter()
            .chain(&may_be_zero)
            .find(|(_, d)| *d > MAX_DURATION)
        {
            return Err(ConfigError::TooLong(field));
        }
        if self.max_payload > MAX_PAYLOAD {
            return Err(ConfigError::PayloadLimitTooLarge);
        }
        if self.request_budget < self.max_payload as usize + REQUEST_OVERHEAD {
            return Err(ConfigError::BudgetBelowOneRequest);
        }
        if self.ipv6_source_prefix > crate::source::MAX_IPV6_PREFIX {
            return Err(ConfigError::PrefixTooLong);
        }
        if self.max_members > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = Config::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.max_payload, 4096);
    }

    #[test]
    fn every_field_is_named_and_set_back_by_its_name() {
        let changed = Config {
            max_payload: 17,
            request_budget: 1000,
            handshake_timeout: Duration::from_millis(1500),
            port_wait: Duration::from_nanos(7),
            idle_timeout: Duration::from_secs(9),
            registration_timeout: Duration::from_secs(4),
            max_send_failures: 5,
            icmp_grace: Duration::from_millis(250),
            max_rooms: 6,
            max_members_per_room: 7,
            max_members: 8,
            max_members_per_ip: 9,
            password_failures_per_source: 2,
            password_failures_per_room: 3,
            member_messages_per_sec: 12,
            member_message_burst: 13,
            member_bytes_per_sec: 14,
            member_byte_burst: 15,
            source_messages_per_sec: 16,
            source_message_burst: 17,
            room_fanout_per_sec: 18,
            room_fanout_burst: 19,
            unproven_datagrams: 20,
            relay_verify: false,
            max_rooms_per_source: 13,
            max_handshakes: 10,
            max_handshakes_per_ip: 11,
            ipv6_source_prefix: 48,
            linger: Duration::from_millis(12),
        };
        let mut rebuilt = Config::default();
        for (name, value) in changed.fields() {
            assert!(rebuilt.set_field(name, value), "{name} not settable");
        }
        assert_eq!(rebuilt, changed);
        // A field added to Config but not to `fields` would be lost in a trace.
        let debug = format!("{:#?}", Config::default());
        let listed = debug
            .lines()
            .filter(|l| l.trim_end().ends_with(','))
            .count();
        assert_eq!(
            listed,
            changed.fields().len(),
            "Config has fields `fields` misses"
        );
        assert!(!rebuilt.set_field("no_such_limit", 1));
        assert!(!rebuilt.set_field("max_payload", u64::MAX));
    }

    #[test]
    fn zero_and_oversize_limits_are_refused() {
        let config = Config {
            max_rooms: 0,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::Zero("max_rooms")));
        let config = Config {
            idle_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::Zero("idle_timeout")));
        let config = Config {
            max_payload: MAX_PAYLOAD + 1,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::PayloadLimitTooLarge));
        let largest = Config {
            max_payload: MAX_PAYLOAD,
            ..Config::default()
        };
        assert_eq!(largest.validate(), Ok(()));
        let config = Config {
            request_budget: MAX_PAYLOAD as usize + REQUEST_OVERHEAD - 1,
            ..largest
        };
        assert_eq!(config.validate(), Err(ConfigError::BudgetBelowOneRequest));
        let config = Config {
            ipv6_source_prefix: 129,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::PrefixTooLong));
        assert!(!Config::default().set_field("ipv6_source_prefix", 256));
        let most = Config {
            max_members: MAX_MEMBERS,
            ..Config::default()
        };
        assert_eq!(most.validate(), Ok(()));
        let config = Config {
            max_members: MAX_MEMBERS + 1,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::TooManyMembers));
    }

    #[test]
    fn timeouts_that_would_overflow_a_deadline_are_refused() {
        for (field, config) in [
            (
                "idle_timeout",
                Config {
                    idle_timeout: Duration::MAX,
                    ..Config::default()
                },
            ),
            (
                "handshake_timeout",
                Config {
                    handshake_timeout: Duration::from_secs(u64::MAX),
                    ..Config::default()
                },
            ),
            (
                "port_wait",
                Config {
                    port_wait: MAX_DURATION + Duration::from_nanos(1),
                    ..Config::default()
                },
            ),
        ] {
            assert_eq!(config.validate(), Err(ConfigError::TooLong(field)));
            assert!(crate::RoomServer::new(config.clone(), [0; 32]).is_err());
            assert!(crate::RelayServer::new(config, [0; 32]).is_err());
        }
        let config = Config {
            idle_timeout: MAX_DURATION,
            handshake_timeout: MAX_DURATION,
            port_wait: MAX_DURATION,
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()));
        // The longest timeouts still make deadlines: accept and create do not panic.
        let mut server = crate::RoomServer::new(config, [0; 32]).unwrap();
        let now = std::time::Instant::now();
        let conn = crate::ConnId(1);
        server.handle_tcp_accept(now, conn, "127.0.0.1:5000".parse().unwrap());
        let create = crate::client::Handshake::create("lobby", "alice", None).unwrap();
        server.handle_tcp_data(now, conn, create.request());
        assert_eq!(
            crate::Machine::stats(&server).handshakes(crate::Status::Ok),
            1
        );
    }
}
