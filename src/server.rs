//! `ocm server`: binds, prints the one `listening` line on stdout, logs to stderr, and
//! shuts down gracefully on Ctrl-C or SIGTERM (members are told the room closed).

use crate::cli::{Protocol, Runtime, ServerArgs};
use crate::exit;
use ocm_core::Config;
use ocm_io::Options;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Runs the server command and returns the exit code.
pub fn run(args: ServerArgs) -> u8 {
    init_logs();
    let options = options(&args);
    let stop = match crate::signals::install() {
        Ok(stop) => stop,
        Err(e) => return fail(&format!("cannot install the signal handler: {e}")),
    };
    let shutdown = async move {
        let _ = stop.recv().await;
    };
    let result = match args.runtime {
        Runtime::Smol => ocm_smol::Server::bind(&options).and_then(|server| {
            announce(server.tcp_addr(), server.udp_addr());
            server.run_blocking(shutdown)
        }),
        Runtime::AsyncStd => ocm_asyncstd::Server::bind(&options).and_then(|server| {
            announce(server.tcp_addr(), server.udp_addr());
            server.run_blocking(shutdown)
        }),
    };
    match result {
        Ok(stats) => {
            tracing::info!(%stats, "stopped");
            exit::OK
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn options(args: &ServerArgs) -> Options {
    let mut config = Config {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_send_failures: args.max_send_failures,
        max_rooms: args.max_rooms,
        ..Config::default()
    };
    match args.protocol {
        Protocol::Rooms => config.max_members_per_room = args.max_members,
        Protocol::Relay => config.max_members = args.max_members,
    }
    Options {
        protocol: match args.protocol {
            Protocol::Rooms => ocm_io::Protocol::Rooms,
            Protocol::Relay => ocm_io::Protocol::Relay,
        },
        tcp: args.tcp,
        udp: args.udp,
        config,
    }
}

/// The one line on stdout, with the ports actually bound.
fn announce(tcp: Option<SocketAddr>, udp: SocketAddr) {
    let line = match tcp {
        Some(tcp) => format!("listening tcp={tcp} udp={udp}"),
        None => format!("listening udp={udp}"),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn fail(message: &str) -> u8 {
    eprintln!("ocm: error: {message}");
    exit::ERROR
}
