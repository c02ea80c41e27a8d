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
    /// Disconnect a member silent for this long
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Disconnect a member after this many failed sends in a row
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_send_failures: u32,
    /// Most rooms at once
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = positive)]
    pub max_rooms: usize,
    /// Most members in one room (relay: most clients)
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = positive)]
    pub max_members: usize,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Protocol of the server
    #[arg(long, value_enum, default_value_t = Protocol::Rooms)]
    pub protocol: Protocol,
    /// Server host name or IP (relay: HOST or HOST:PORT)
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub server: String,
    /// Server TCP port
    #[arg(long, value_name = "P", default_value_t = 8000)]
    pub tcp_port: u16,
    /// Server UDP port
    #[arg(long, value_name = "P", default_value_t = 8001)]
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
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds)]
    pub keepalive: Duration,
    /// Seconds to wait for the server's answer to create/join
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    pub timeout: Duration,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
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

    #[test]
    fn create_and_join_exclude_each_other() {
        let parsed = Cli::try_parse_from(["ocm", "client", "--create", "a", "--join", "b"]);
        assert!(parsed.is_err());
    }
}
