//! The server limits a fuzz input starts with: eight bytes, each picking one limit from
//! a small range, so that limits are reached within a few inputs.

use arbitrary::{Arbitrary, Unstructured};
use ocm_core::config::REQUEST_OVERHEAD;
use ocm_core::Config;
use std::time::Duration;

/// Eight bytes, one per limit; see [`FuzzConfig::config`] for the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuzzConfig {
    /// `max_payload`: 4096, 64 or 16; upper bits `request_budget`: 4 MiB (never
    /// binding), or room for one, two or three whole requests.
    pub payload: u8,
    /// `max_rooms`: 1 to 4; upper bits `max_rooms_per_source`: 16 (never binding), 1,
    /// 2 or 3.
    pub rooms: u8,
    /// `max_members_per_room`: 1 to 4.
    pub per_room: u8,
    /// `max_members`: 1 to 8.
    pub members: u8,
    /// `max_handshakes`: 1 to 4.
    pub handshakes: u8,
    /// `max_handshakes_per_ip`: 1 to 3.
    pub per_ip: u8,
    /// `max_send_failures`: 1 to 3; bit 2: `icmp_grace` 1 s (else 0).
    pub failures: u8,
    /// `idle_timeout`: 300 s or 2 s (and `registration_timeout` 30 s or 1 s); bit 1:
    /// `relay_verify`.
    pub idle: u8,
}

impl FuzzConfig {
    /// The smallest limits: one of everything.
    pub const TIGHT: FuzzConfig = FuzzConfig {
        payload: 0,
        rooms: 0,
        per_room: 0,
        members: 0,
        handshakes: 0,
        per_ip: 0,
        failures: 0,
        idle: 0,
    };

    /// Room for a few rooms of a few members: 3 rooms, 3 per room, 7 members, 3
    /// connections (2 per IP), eviction after 2 failed sends, idle after 300 s.
    pub const ROOMY: FuzzConfig = FuzzConfig {
        payload: 0,
        rooms: 2,
        per_room: 2,
        members: 6,
        handshakes: 2,
        per_ip: 1,
        failures: 1,
        idle: 0,
    };

    /// The server configuration these bytes stand for.
    #[allow(clippy::needless_update)] // needless only while every limit is named here
    pub fn config(&self) -> Config {
        let max_payload = [4096, 64, 16][usize::from(self.payload % 3)];
        Config {
            max_payload,
            request_budget: match (self.payload / 4) % 4 {
                0 => 4 << 20,
                whole => (max_payload as usize + REQUEST_OVERHEAD) * usize::from(whole),
            },
            handshake_timeout: Duration::from_secs(10),
            port_wait: Duration::from_secs(1),
            idle_timeout: Duration::from_secs([300, 2][usize::from(self.idle % 2)]),
            // the registration deadline, before the idle one
            registration_timeout: Duration::from_secs([30, 1][usize::from(self.idle % 2)]),
            // bit 1: relay mode checks addresses (every older corpus file: it does not)
            relay_verify: self.idle & 2 != 0,
            max_send_failures: u32::from(1 + self.failures % 3),
            // bit 2 of the byte: ICMP errors trusted at once, or only after 1 s of silence
            icmp_grace: Duration::from_secs(u64::from((self.failures >> 2) & 1)),
            max_rooms: usize::from(1 + self.rooms % 4),
            // upper bits as for `max_members_per_ip`: 0 keeps every older corpus file's
            // meaning (16 rooms per source never binds before `max_rooms`)
            max_rooms_per_source: [16, 1, 2, 3][usize::from((self.rooms / 4) % 4)],
            max_members_per_room: usize::from(1 + self.per_room % 4),
            max_members: usize::from(1 + self.members % 8),
            // the byte's upper bits: 0 (as in every older corpus file) leaves the limit at
            // 8, where `max_members` (1..=8) always binds first
            max_members_per_ip: [8, 1, 2, 3][usize::from((self.members / 8) % 4)],
            max_handshakes: usize::from(1 + self.handshakes % 4),
            max_handshakes_per_ip: usize::from(1 + self.per_ip % 3),
            // low, so that a few wrong passwords reach TRY_LATER
            password_failures_per_source: 2,
            password_failures_per_room: 3,
            // limits no byte picks keep core's defaults, so a new one does not break this
            ..Config::default()
        }
    }

    /// The bytes that [`Arbitrary`] reads back as `self`.
    pub fn encode(&self) -> [u8; 8] {
        let FuzzConfig {
            payload,
            rooms,
            per_room,
            members,
            handshakes,
            per_ip,
            failures,
            idle,
        } = *self;
        [
            payload, rooms, per_room, members, handshakes, per_ip, failures, idle,
        ]
    }
}

impl<'a> Arbitrary<'a> for FuzzConfig {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let [payload, rooms, per_room, members, handshakes, per_ip, failures, idle] =
            <[u8; 8]>::arbitrary(u)?;
        Ok(FuzzConfig {
            payload,
            rooms,
            per_room,
            members,
            handshakes,
            per_ip,
            failures,
            idle,
        })
    }
}

/// A clock jump after which every deadline of a server with `config` has passed,
/// except the linger of a connection closed by that very jump (see
/// `ServerOp::AdvanceFar`, which waits for it too).
pub fn advance_far(config: &Config) -> Duration {
    config.handshake_timeout + config.port_wait + config.idle_timeout + Duration::from_secs(1)
}
