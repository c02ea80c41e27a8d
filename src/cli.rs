//! The command line, as clap derive structures. The help texts teach the commands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

/// Online Chat Messenger: chat rooms over TCP (TCRP) and UDP.
#[derive(Debug, Parser)]
#[command(
    name = "ocm",
    version,
    after_help = crate::exit::HELP,
    long_about = "Online Chat Messenger: chat rooms over TCP (TCRP) and UDP.\n\n\
        Start a server, then clients in other terminals:\n\n  \
        ocm server\n  \
        ocm client --name alice --create lobby\n  \
        ocm client --name bob --join lobby\n\n\
        Each line typed in a client is one message; /exit or Ctrl-D leaves."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server; prints `listening tcp=ADDR udp=ADDR` on stdout, then logs on stderr
    #[command(after_help = crate::exit::HELP)]
    Server(ServerArgs),
    /// Create or join a room and chat (or talk to a relay server with --protocol relay)
    #[command(after_help = crate::exit::HELP)]
    Client(ClientArgs),
    /// Run a trace recorded with `ocm server --record` through a fresh core, check every
    /// invariant after every input, and print what it went through
    #[command(after_help = crate::exit::HELP)]
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trace file
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Also check that every input causes exactly the outputs recorded after it (the
    /// trace must have been made with --record-outputs)
    #[arg(long)]
    pub compare: bool,
}

/// Async runtime of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// smol (default)
    Smol,
    /// async-std (deprecated upstream, still supported)
    AsyncStd,
}

/// Which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Rooms: create/join over TCP, chat over UDP (with tokens)
    Rooms,
    /// Relay: one global room over UDP only, no TCP
    Relay,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Async runtime
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    pub runtime: Runtime,
    /// Protocol to serve
    #[arg(long, value_enum, default_value_t = Protocol::Rooms)]
    pub protocol: Protocol,
    /// TCP address for create/join requests (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8000")]
    pub tcp: SocketAddr,
    /// UDP address for the chat (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8001")]
    pub udp: SocketAddr,
    /// Disconnect a member silent for this long (at most a year)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub idle_timeout: u64,
    /// An ICMP error (port unreachable) counts as a failed send only against a member
    /// silent this long: anyone can forge one (0: trust them, on a trusted network only)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "30", value_parser = seconds_or_zero)]
    pub icmp_grace: Duration,
    /// Disconnect a member after this many failed sends in a row
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_send_failures: u32,
    /// Most rooms at once; a create over it is answered SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 10_000, value_parser = positive)]
    pub max_rooms: usize,
    /// Most members in one room, host included (relay: most clients); a join over it is
    /// answered SERVER_FULL (7); a new relay client over it is dropped
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 1_000, value_parser = positive)]
    pub max_members: usize,
    /// Rooms mode: most members in all rooms together; a create or join over it is
    /// answered SERVER_FULL (7) [default: 100000]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive)]
    pub max_members_total: Option<usize>,
    /// Rooms mode: most members in all rooms whose tokens came from one IP address; a
    /// create or join from that IP over it is answered SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 256, value_parser = positive)]
    pub max_members_per_ip: usize,
    /// Wrong passwords one source may send before each next try must wait (1 s,
    /// doubling, at most 60 s); a join during the wait is answered TRY_LATER (8)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 5, value_parser = clap::value_parser!(u32))]
    pub password_failures_per_source: u32,
    /// Wrong passwords for one room, from anywhere, before each next join of it must
    /// wait the same way
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 20, value_parser = clap::value_parser!(u32))]
    pub password_failures_per_room: u32,
    /// Most TCP connections open at once (in handshake or port step); one over it is
    /// closed at once, without an answer
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 1_024, value_parser = positive)]
    pub max_handshakes: usize,
    /// Most TCP connections open at once from one IP address; one over it is closed at
    /// once, without an answer
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 64, value_parser = positive)]
    pub max_handshakes_per_ip: usize,
    /// A connection must complete its create/join request within this, or it is closed
    /// without an answer (slow or stalled clients)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "10", value_parser = seconds)]
    pub handshake_timeout: Duration,
    /// A member whose UDP address is still unknown this long after it joined (no
    /// datagram, no port step: a client that gave up mid-handshake) is removed, and its
    /// name is free again
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "30", value_parser = seconds)]
    pub registration_timeout: Duration,
    /// After the token, how long to wait for the optional 2-byte UDP port
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "1", value_parser = seconds)]
    pub port_wait: Duration,
    /// Largest create/join request payload; a bigger one is answered PAYLOAD_TOO_LARGE
    /// (6) without being read
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1 << 29))]
    pub max_payload: u32,
    /// Log a one-line summary of the counters at info level this often, and once on
    /// shutdown (0: only on shutdown)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=MAX_SECS))]
    pub stats_interval: u64,
    /// Record every input the core receives (with its time, the seed and the limits) to
    /// FILE, created with mode 0600: it holds tokens and messages; `ocm replay FILE`
    /// runs it again
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// With --record: also record the outputs of every input, for `ocm replay --compare`
    #[arg(long, requires = "record")]
    pub record_outputs: bool,
    /// With --record: stop recording (with a warning; the server goes on) before the
    /// file passes this many bytes
    #[arg(long, value_name = "BYTES", requires = "record", default_value_t = ocm_io::recorder::DEFAULT_MAX_BYTES, value_parser = clap::value_parser!(u64).range(64..))]
    pub record_max_bytes: u64,
}

/// Longest duration accepted in whole seconds: a year.
const MAX_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Protocol of the server
    #[arg(long, value_enum, default_value_t = Protocol::Rooms)]
    pub protocol: Protocol,
    /// Server host name or IP (relay: HOST or HOST:PORT)
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub server: String,
    /// Server TCP port
    #[arg(
        long,
        value_name = "P",
        allow_negative_numbers = true,
        default_value_t = 8000
    )]
    pub tcp_port: u16,
    /// Server UDP port
    #[arg(
        long,
        value_name = "P",
        allow_negative_numbers = true,
        default_value_t = 8001
    )]
    pub udp_port: u16,
    /// Your username (asked for when missing and stdin is a terminal)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Create this room and be its host; it closes when you leave
    #[arg(long, value_name = "ROOM", conflicts_with = "join")]
    pub create: Option<String>,
    /// Join this existing room
    #[arg(long, value_name = "ROOM")]
    pub join: Option<String>,
    /// Password: protects the room on --create, opens it on --join
    #[arg(long, value_name = "PW")]
    pub password: Option<String>,
    /// Seconds between keepalives while you are silent
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "60", value_parser = seconds)]
    pub keepalive: Duration,
    /// Seconds to wait for the server's answer to create/join
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value = "5", value_parser = seconds)]
    pub timeout: Duration,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => seconds(text),
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err("must be between 0.001 and 86400".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn server(args: &[&str]) -> Result<ServerArgs, clap::Error> {
        let all = ["ocm", "server"].iter().chain(args);
        match Cli::try_parse_from(all)?.command {
            Command::Server(args) => Ok(args),
            _ => unreachable!("parsed a server command"),
        }
    }

    #[test]
    fn server_limits_default_to_the_core_defaults() {
        let args = server(&[]).unwrap();
        let config = ocm_core::Config::default();
        assert_eq!(args.max_rooms, config.max_rooms);
        assert_eq!(args.max_members, config.max_members_per_room);
        assert_eq!(args.max_members_total, None);
        assert_eq!(args.max_handshakes, config.max_handshakes);
        assert_eq!(args.max_handshakes_per_ip, config.max_handshakes_per_ip);
        assert_eq!(args.max_members_per_ip, config.max_members_per_ip);
        assert_eq!(args.handshake_timeout, config.handshake_timeout);
        assert_eq!(args.port_wait, config.port_wait);
        assert_eq!(args.registration_timeout, config.registration_timeout);
        assert_eq!(args.icmp_grace, config.icmp_grace);
        assert_eq!(
            (
                args.password_failures_per_source,
                args.password_failures_per_room
            ),
            (
                config.password_failures_per_source,
                config.password_failures_per_room
            )
        );
        assert_eq!(args.idle_timeout, config.idle_timeout.as_secs());
        assert_eq!(args.max_send_failures, config.max_send_failures);
        assert_eq!(args.max_payload, config.max_payload);
        assert_eq!(args.stats_interval, 60);
    }

    #[test]
    fn zero_huge_and_malformed_limits_are_refused() {
        for bad in [
            ["--max-handshakes", "0"],
            ["--max-handshakes-per-ip", "0"],
            ["--max-members-total", "0"],
            ["--max-members-per-ip", "0"],
            ["--handshake-timeout", "0"],
            ["--handshake-timeout", "NaN"],
            ["--handshake-timeout", "1e300"],
            ["--idle-timeout", "18446744073709551615"],
            ["--max-payload", "536870913"],
            ["--max-rooms", "-1"],
            ["--port-wait", "soon"],
        ] {
            assert!(server(&bad).is_err(), "{bad:?} was accepted");
        }
        let args = server(&["--handshake-timeout", "0.5", "--stats-interval", "0"]).unwrap();
        assert_eq!(args.handshake_timeout, Duration::from_millis(500));
        assert_eq!(args.stats_interval, 0);
    }

    #[test]
    fn create_and_join_exclude_each_other() {
        let parsed = Cli::try_parse_from(["ocm", "client", "--create", "a", "--join", "b"]);
        assert!(parsed.is_err());
    }
}
