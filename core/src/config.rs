//! Server limits and timeouts, with the defaults documented in `docs/PROTOCOL.md`.

use std::time::Duration;

/// The longest timeout accepted (a year): deadlines are `now + timeout`, and an
/// `Instant` plus a huge `Duration` would overflow and panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Every limit and timeout of a server. `Config::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest TCRP request payload accepted (default 4096, clamped to 2^29).
    pub max_payload: u32,
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
    /// Most members, in all rooms together, whose tokens were obtained from one IP
    /// address (default 256), so one host cannot take every room or seat.
    pub max_members_per_ip: usize,
    /// Wrong passwords one source may send before each further attempt must wait
    /// (1 s, doubling, at most 60 s; default 5). See `crate::throttle`.
    pub password_failures_per_source: u32,
    /// Wrong passwords for one room, from anywhere, before each further attempt at it
    /// must wait the same way (default 20).
    pub password_failures_per_room: u32,
    /// Most TCP connections open at once (default 1 024).
    pub max_handshakes: usize,
    /// Most TCP connections open at once from one IP address (default 64).
    pub max_handshakes_per_ip: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_payload: 4096,
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
            max_handshakes: 1_024,
            max_handshakes_per_ip: 64,
        }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit or timeout that must be positive is zero; the field is named.
    Zero(&'static str),
    /// `max_payload` is above 2^29.
    PayloadLimitTooLarge,
    /// A timeout is above [`MAX_DURATION`]; the field is named.
    TooLong(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Zero(field) => write!(f, "{field} must be greater than zero"),
            ConfigError::PayloadLimitTooLarge => {
                f.write_str("max payload must be at most 2^29 bytes")
            }
            ConfigError::TooLong(field) => write!(f, "{field} must be at most a year"),
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
            ("max_handshakes", self.max_handshakes as u64),
            ("max_handshakes_per_ip", self.max_handshakes_per_ip as u64),
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
            "max_handshakes" => set(&mut self.max_handshakes, count(value)),
            "max_handshakes_per_ip" => set(&mut self.max_handshakes_per_ip, count(value)),
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
            ("max_handshakes", self.max_handshakes),
            ("max_handshakes_per_ip", self.max_handshakes_per_ip),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(field));
        }
        let durations = [
            ("handshake_timeout", self.handshake_timeout),
            ("port_wait", self.port_wait),
            ("idle_timeout", self.idle_timeout),
            ("registration_timeout", self.registration_timeout),
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
        if self.max_payload > crate::wire::tcrp::MAX_PAYLOAD_LIMIT {
            return Err(ConfigError::PayloadLimitTooLarge);
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
            max_handshakes: 10,
            max_handshakes_per_ip: 11,
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
            max_payload: (1 << 29) + 1,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::PayloadLimitTooLarge));
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
