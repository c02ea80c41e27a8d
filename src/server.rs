//! `ocm server`: binds, prints the one `listening` line on stdout, logs to stderr, and
//! shuts down gracefully on Ctrl-C or SIGTERM (members are told the room closed). The
//! counters are logged in one line every `--stats-interval` (by the driver) and once
//! when the server stops (here).

use crate::cli::{Protocol, Runtime, ServerArgs};
use crate::exit;
use ocm_core::Config;
use ocm_io::Options;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;

/// Runs the server command and returns the exit code.
pub fn run(args: ServerArgs) -> u8 {
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("ocm: error: {message}");
            return exit::USAGE;
        }
    };
    init_logs();
    let stop = match crate::signals::install() {
        Ok(stop) => stop,
        Err(e) => return fail(&format!("cannot install the signal handler: {e}")),
    };
    let shutdown = async move {
        let _ = stop.recv().await;
    };
    let result = match args.runtime {
        Runtime::Smol => serve::<ocm_smol::Smol>(&options, shutdown),
        Runtime::AsyncStd => serve::<ocm_asyncstd::AsyncStd>(&options, shutdown),
    };
    match result {
        Ok(stats) => {
            tracing::info!("stopped; stats: {stats}");
            exit::OK
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// The shell's options from the command line; an error names a combination that makes
/// no sense.
fn options(args: &ServerArgs) -> Result<Options, String> {
    let mut config = Config {
        idle_timeout: args.idle_timeout,
        max_send_failures: args.max_send_failures,
        max_rooms: args.max_rooms,
        max_handshakes: args.max_handshakes,
        max_handshakes_per_ip: args.max_handshakes_per_ip,
        max_members_per_ip: args.max_members_per_ip,
        handshake_timeout: args.handshake_timeout,
        port_wait: args.port_wait,
        registration_timeout: args.registration_timeout,
        icmp_grace: args.icmp_grace,
        password_failures_per_source: args.password_failures_per_source,
        password_failures_per_room: args.password_failures_per_room,
        max_payload: args.max_payload,
        ..Config::default()
    };
    match args.protocol {
        Protocol::Rooms => {
            config.max_members_per_room = args.max_members;
            if let Some(total) = args.max_members_total {
                config.max_members = total;
            }
        }
        Protocol::Relay => {
            if args.max_members_total.is_some() {
                return Err(
                    "--max-members-total applies to rooms; a relay's limit is --max-members".into(),
                );
            }
            config.max_members = args.max_members;
        }
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(Options {
        protocol: match args.protocol {
            Protocol::Rooms => ocm_io::Protocol::Rooms,
            Protocol::Relay => ocm_io::Protocol::Relay,
        },
        tcp: args.tcp,
        udp: args.udp,
        config,
        stats_interval: (!args.stats_interval.is_zero()).then_some(args.stats_interval),
        record: args.record.clone().map(|path| ocm_io::RecordOptions {
            path,
            max_bytes: args.record_max_bytes,
            outputs: args.record_outputs,
        }),
    })
}

/// Binds on runtime `R`, announces the addresses and serves until `shutdown`.
fn serve<R: ocm_io::Runtime>(
    options: &Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<ocm_core::Stats> {
    let server = ocm_io::Shell::<R>::bind(options)?;
    announce(server.tcp_addr(), server.udp_addr());
    server.run_blocking(shutdown)
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
