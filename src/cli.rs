//! The command line, as clap derive structures. The help texts teach the commands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ocm_core::Config;
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
        Each line typed in a client is one message; /help lists the in-chat commands,\n\
        /exit or Ctrl-D leaves."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// parsed once per process: the size of the server's arguments costs nothing
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run a server; prints `listening tcp=ADDR udp=ADDR` on stdout, then logs on stderr
    #[command(after_help = crate::exit::HELP)]
    Server(ServerArgs),
    /// Create or join a room and chat (or talk to a relay server with --protocol relay)
    #[command(after_help = CLIENT_HELP)]
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
    /// --metrics, --log-format (src/ops.rs)
    #[command(flatten)]
    pub ops: crate::ops::OpsArgs,
    /// Disconnect a member silent for this long (at most a year)
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "300s", value_parser = duration_between(SECOND, YEAR))]
    pub idle_timeout: Duration,
    /// An ICMP error (port unreachable) counts as a failed send only against a member
    /// silent this long: anyone can forge one (0: trust them, on a trusted network only)
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "30s", value_parser = duration_between(Duration::ZERO, DAY))]
    pub icmp_grace: Duration,
    /// Disconnect a member after this many failed sends in a row
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_send_failures, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_send_failures: u32,
    /// Most rooms at once; a create over it is answered SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_rooms, value_parser = positive)]
    pub max_rooms: usize,
    /// Rooms mode: most members in one room, host included; a join over it is answered
    /// SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_members_per_room, value_parser = positive)]
    pub max_members_per_room: usize,
    /// Most members of the whole server: in all rooms together (a create or join over it
    /// is answered SERVER_FULL, 7), or relay clients (a new one over it is dropped)
    /// [default: 100000; relay: 1000]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive)]
    pub max_members: Option<usize>,
    /// Rooms mode: most members in all rooms whose tokens came from one source (an IPv4
    /// address, or an IPv6 prefix: see --ipv6-source-prefix); a create or join from that
    /// source over it is answered SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_members_per_ip, value_parser = positive)]
    pub max_members_per_ip: usize,
    /// Rooms mode: most rooms alive at once whose host came from one source; a create
    /// from that source over it is answered SERVER_FULL (7)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_rooms_per_source, value_parser = positive)]
    pub max_rooms_per_source: usize,
    /// Every per-source limit counts an IPv6 address as its first BITS bits (64: one
    /// /64 is one host; 128: every address on its own); IPv4 addresses count one by one
    #[arg(long, value_name = "BITS", allow_negative_numbers = true, default_value_t = Config::default().ipv6_source_prefix, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub ipv6_source_prefix: u8,
    /// Wrong passwords one source may send before each next try must wait (1 s,
    /// doubling, at most 60 s); a join during the wait is answered TRY_LATER (8)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().password_failures_per_source, value_parser = clap::value_parser!(u32))]
    pub password_failures_per_source: u32,
    /// Wrong passwords for one room, from anywhere, before each next join of it must
    /// wait the same way
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().password_failures_per_room, value_parser = clap::value_parser!(u32))]
    pub password_failures_per_room: u32,
    /// Chat messages (and /who) one member may send a second, and at once (RATE/BURST,
    /// or RATE for a burst of twice that); over it a message is dropped and counted.
    /// Paced ocm clients stay under 200/400
    #[arg(long, value_name = "RATE[/BURST]", default_value = "200/400", value_parser = rate)]
    pub member_rate: (u32, u32),
    /// Bytes of message text one member may send a second, and at once
    #[arg(long, value_name = "RATE[/BURST]", default_value = "262144/1048576", value_parser = rate)]
    pub member_bytes: (u32, u32),
    /// Messages all members from one IP may send together, a second and at once
    #[arg(long, value_name = "RATE[/BURST]", default_value = "400/800", value_parser = rate)]
    pub source_rate: (u32, u32),
    /// Datagrams one room's messages may make the server send, a second and at once (a
    /// message to N members costs N)
    #[arg(long, value_name = "RATE[/BURST]", default_value = "20000/40000", value_parser = rate)]
    pub room_fanout: (u32, u32),
    /// Datagrams sent to an address learnt from the port step alone before a datagram
    /// from it proves it
    #[arg(long, value_name = "N", default_value_t = Config::default().unproven_datagrams)]
    pub unproven_datagrams: u32,
    /// Relay mode: an address must echo a code before it is registered, so forged source
    /// addresses cannot make the relay send to a victim (off: a trusted network only)
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub relay_verify: bool,
    /// Bytes asked of the kernel for the UDP socket's receive and send buffers (0: the
    /// kernel's defaults); the effective sizes are logged
    #[arg(long, value_name = "BYTES", default_value_t = ocm_io::sockbuf::DEFAULT_BUFFER)]
    pub udp_buffer: usize,
    /// Most TCP connections open at once (in handshake or port step, or lingering after
    /// an answer); at it, a new connection takes the place of the oldest one still
    /// sending its request (closed without an answer), or, with none, is closed at once.
    /// Lowered at start, with a warning, if the file descriptor limit cannot hold it
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_handshakes, value_parser = positive)]
    pub max_handshakes: usize,
    /// Most TCP connections open at once from one source (see --ipv6-source-prefix); one
    /// over it is closed at once, without an answer
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = Config::default().max_handshakes_per_ip, value_parser = positive)]
    pub max_handshakes_per_ip: usize,
    /// A connection must complete its create/join request within this, or it is closed
    /// without an answer (slow or stalled clients)
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "10s", value_parser = duration_between(MILLISECOND, DAY))]
    pub handshake_timeout: Duration,
    /// A member whose UDP address is still unknown this long after it joined (no
    /// datagram, no port step: a client that gave up mid-handshake) is removed, and its
    /// name is free again
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "30s", value_parser = duration_between(MILLISECOND, DAY))]
    pub registration_timeout: Duration,
    /// After the token, how long to wait for the optional 2-byte UDP port
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "1s", value_parser = duration_between(MILLISECOND, DAY))]
    pub port_wait: Duration,
    /// After answering and closing, how long a socket may stay open reading and
    /// discarding (at most 64 KiB) so that a reset cannot destroy the answer; it counts
    /// against --max-handshakes and --max-handshakes-per-ip until it is closed
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "2s", value_parser = duration_between(MILLISECOND, DAY))]
    pub linger: Duration,
    /// Largest create/join request payload (at most 65536); a bigger one is answered
    /// PAYLOAD_TOO_LARGE (6) without being read
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, default_value_t = Config::default().max_payload, value_parser = clap::value_parser!(u32).range(1..=i64::from(ocm_core::config::MAX_PAYLOAD)))]
    pub max_payload: u32,
    /// Most bytes all unfinished create/join requests may hold together (at least
    /// --max-payload + 287); over it, the connections holding the most are closed
    /// without an answer
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, default_value_t = Config::default().request_budget, value_parser = positive)]
    pub request_budget: usize,
    /// Log a one-line summary of the counters at info level this often, and once on
    /// shutdown (0: only on shutdown)
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "60s", value_parser = duration_between(Duration::ZERO, YEAR))]
    pub stats_interval: Duration,
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
    /// Cluster mode: serve the same rooms as every other node on this Redis
    /// (docs/CLUSTER.md). Without it, a single node that never contacts Redis
    #[arg(long, value_name = "redis://HOST:PORT[/DB]")]
    pub cluster: Option<String>,
    /// With --cluster: this node's id (1 to 64 of A-Z a-z 0-9 . _ -) [default: 16 random
    /// hex digits, logged at start]
    #[arg(long, value_name = "ID", requires = "cluster")]
    pub node_id: Option<String>,
    /// With --cluster: how long Redis keeps a room name (and this node) alive without
    /// renewal; a dead node's rooms close elsewhere after about this long, and a node cut
    /// off from Redis closes its rooms after half of it
    #[arg(long, value_name = "DURATION", requires = "cluster", default_value = "10s", value_parser = duration_between(SECOND, DAY))]
    pub lease: Duration,
}

const MILLISECOND: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(24 * 3600);
const YEAR: Duration = ocm_core::config::MAX_DURATION;

/// The in-chat commands and the exit codes, at the end of `ocm client --help`.
pub const CLIENT_HELP: &str =
    "In the chat (a terminal gets a full-screen view; a pipe stays line in, line out):
  /help          the commands
  /who           who is in the room
  /me ACTION     say what you do (shown as: bob waves)
  /exit, /quit   leave (also Ctrl-D on an empty line, Ctrl-C)
  //text         send text starting with a single /
  Keys: Left/Right, Home/End, Ctrl-W (delete word), Ctrl-U, Ctrl-K, Up/Down
  (history), PageUp/PageDown (scroll back).

Passwords: --password-file FILE or OCM_PASSWORD keep it out of `ps`; on a terminal,
a room that needs one asks for it (hidden).

Exit codes:
  0  left with /exit or end of input; server stopped by Ctrl-C or SIGTERM
  1  I/O error: cannot bind, resolve or connect; server unreachable
  2  usage error, or a missing name or room with no terminal to ask on
  3  the server refused: room exists, no such room, wrong password, name taken, full
  4  the server did not answer in time
  5  disconnected by the server, or membership lost (with --no-reconnect)
  6  the room closed (the host left, or the server shut down)";

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Protocol of the server
    #[arg(long, value_enum, default_value_t = Protocol::Rooms)]
    pub protocol: Protocol,
    /// The server: HOST or HOST:PORT (a name, IPv4, or IPv6 in brackets with a port:
    /// [::1]:8000). The port is the TCP port in rooms mode, the UDP port in relay mode
    #[arg(long, value_name = "HOST[:PORT]", default_value = "127.0.0.1")]
    pub server: String,
    /// Server TCP port (rooms) [default: 8000, or the port in --server]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub tcp_port: Option<u16>,
    /// Server UDP port [default: 8001; relay: the port in --server]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub udp_port: Option<u16>,
    /// Your username (asked for when missing and stdin is a terminal)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Create this room and be its host; it closes when you leave
    #[arg(long, value_name = "ROOM", conflicts_with = "join")]
    pub create: Option<String>,
    /// Join this existing room
    #[arg(long, value_name = "ROOM")]
    pub join: Option<String>,
    /// Password: protects the room on --create, opens it on --join (visible to other
    /// users in `ps`: prefer --password-file or OCM_PASSWORD)
    #[arg(long, value_name = "PW", env = "OCM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Read the password from the first line of this file (wins over --password)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,
    /// Interval of keepalives and liveness checks; a lost server is noticed within
    /// two of them
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "10s", value_parser = duration_between(Duration::from_millis(100), DAY))]
    pub keepalive: Duration,
    /// How long to wait for the server's answer to create/join
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, default_value = "5s", value_parser = duration_between(MILLISECOND, DAY))]
    pub timeout: Duration,
    /// When the membership is lost (server restarted or unreachable), exit instead of
    /// joining again
    #[arg(long)]
    pub no_reconnect: bool,
    /// Most lines sent per second (in bursts of at most 100); piped input waits for it
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = ocm_core::rate::CLIENT_LINES_PER_SEC, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate: u32,
}

/// `RATE/BURST`, or `RATE` (a burst of twice the rate); both at least 1.
fn rate(text: &str) -> Result<(u32, u32), String> {
    let number = |t: &str| match t.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    };
    match text.split_once('/') {
        Some((per_sec, burst)) => Ok((number(per_sec)?, number(burst)?)),
        None => {
            let per_sec = number(text)?;
            Ok((per_sec, per_sec.saturating_mul(2)))
        }
    }
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("must be on or off".into()),
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A duration flag: `1.5s`, `500ms`, `5m`, `1h 30m` (humantime), or a bare number of
/// seconds (`10`, `0.5`), within `min..=max`.
fn duration_between(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let text = text.trim();
        let value = match text.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 && secs <= max.as_secs_f64() => {
                Duration::from_secs_f64(secs)
            }
            Ok(_) => return Err(format!("must be between {} and {}", show(min), show(max))),
            Err(_) => humantime::parse_duration(text)
                .map_err(|e| format!("{e} (durations look like 1.5s, 500ms, 5m or 1h 30m)"))?,
        };
        if value < min || value > max {
            return Err(format!("must be between {} and {}", show(min), show(max)));
        }
        Ok(value)
    }
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
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
        assert_eq!(args.max_members_per_room, config.max_members_per_room);
        assert_eq!(args.max_members, None);
        assert_eq!(args.max_handshakes, config.max_handshakes);
        assert_eq!(args.max_handshakes_per_ip, config.max_handshakes_per_ip);
        assert_eq!(args.max_members_per_ip, config.max_members_per_ip);
        assert_eq!(args.max_rooms_per_source, config.max_rooms_per_source);
        assert_eq!(args.ipv6_source_prefix, config.ipv6_source_prefix);
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
        assert_eq!(args.idle_timeout, config.idle_timeout);
        assert_eq!(args.max_send_failures, config.max_send_failures);
        assert_eq!(args.max_payload, config.max_payload);
        assert_eq!(args.linger, config.linger);
        assert_eq!(args.request_budget, config.request_budget);
        assert_eq!(
            (args.max_rooms_per_source, args.ipv6_source_prefix),
            (config.max_rooms_per_source, config.ipv6_source_prefix)
        );
        assert_eq!(
            Some(args.stats_interval),
            ocm_io::Options::default().stats_interval
        );
    }

    #[test]
    fn zero_huge_and_malformed_limits_are_refused() {
        for bad in [
            ["--max-handshakes", "0"],
            ["--max-handshakes-per-ip", "0"],
            ["--max-members", "0"],
            ["--max-members-per-room", "0"],
            ["--max-members-per-ip", "0"],
            ["--handshake-timeout", "0"],
            ["--handshake-timeout", "NaN"],
            ["--handshake-timeout", "1e300"],
            ["--idle-timeout", "18446744073709551615"],
            ["--idle-timeout", "366 days"],
            ["--idle-timeout", "500ms"],
            ["--port-wait", "-1s"],
            ["--port-wait", "inf"],
            ["--max-payload", "536870913"],
            ["--max-payload", "65537"],
            ["--request-budget", "0"],
            ["--max-rooms", "-1"],
            ["--port-wait", "soon"],
            ["--linger", "0"],
            ["--max-rooms-per-source", "0"],
            ["--ipv6-source-prefix", "129"],
        ] {
            assert!(server(&bad).is_err(), "{bad:?} was accepted");
        }
        let args = server(&["--handshake-timeout", "0.5", "--stats-interval", "0"]).unwrap();
        assert_eq!(args.handshake_timeout, Duration::from_millis(500));
        assert_eq!(args.stats_interval, Duration::ZERO);
    }

    #[test]
    fn every_duration_flag_takes_units_and_fractions() {
        let args = server(&[
            "--idle-timeout",
            "5m",
            "--handshake-timeout",
            "1.5s",
            "--port-wait",
            "250ms",
            "--stats-interval",
            "1h 30m",
        ])
        .unwrap();
        assert_eq!(args.idle_timeout, Duration::from_secs(300));
        assert_eq!(args.handshake_timeout, Duration::from_millis(1500));
        assert_eq!(args.port_wait, Duration::from_millis(250));
        assert_eq!(args.stats_interval, Duration::from_secs(5400));
        let client = client(&["--keepalive", "2.5s", "--timeout", "10"]).unwrap();
        assert_eq!(client.keepalive, Duration::from_millis(2500));
        assert_eq!(client.timeout, Duration::from_secs(10));
        let error = client_error(&["--timeout", "soon"]);
        assert!(error.contains("1.5s"), "{error}");
    }

    fn client(args: &[&str]) -> Result<ClientArgs, clap::Error> {
        let all = ["ocm", "client"].iter().chain(args);
        match Cli::try_parse_from(all)?.command {
            Command::Client(args) => Ok(args),
            _ => unreachable!("parsed a client command"),
        }
    }

    fn client_error(args: &[&str]) -> String {
        client(args).unwrap_err().render().to_string()
    }

    #[test]
    fn client_defaults_keep_a_lost_server_noticed_within_30_seconds() {
        let args = client(&[]).unwrap();
        assert!(2 * args.keepalive <= Duration::from_secs(30));
        assert_eq!(args.keepalive, ocm_smol::client::DEFAULT_KEEPALIVE);
        assert_eq!(args.rate, ocm_core::rate::CLIENT_LINES_PER_SEC);
        assert!(!args.no_reconnect);
    }

    #[test]
    fn mistakes_get_clap_suggestions() {
        assert!(client_error(&["--jion", "x"]).contains("--join"));
        let error = client_error(&["--protocol", "rom"]);
        assert!(
            error.contains("rooms") && error.contains("relay"),
            "{error}"
        );
    }

    #[test]
    fn the_client_help_lists_the_in_chat_commands() {
        let help = Cli::command()
            .find_subcommand_mut("client")
            .unwrap()
            .render_long_help()
            .to_string();
        for text in [
            "/who",
            "/exit",
            "/quit",
            "/help",
            "//",
            "--no-reconnect",
            "OCM_PASSWORD",
        ] {
            assert!(help.contains(text), "{text}");
        }
    }

    #[test]
    fn create_and_join_exclude_each_other() {
        let parsed = Cli::try_parse_from(["ocm", "client", "--create", "a", "--join", "b"]);
        assert!(parsed.is_err());
    }
}
