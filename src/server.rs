//! `ocm server`: binds, prints the one `listening` line on stdout, logs to stderr, and
//! shuts down gracefully on Ctrl-C or SIGTERM (members are told the room closed). The
//! counters are logged in one line every `--stats-interval` (by the driver) and once
//! when the server stops (here).

use crate::cli::{Protocol, Runtime, ServerArgs};
use crate::exit;
use ocm_core::cluster::node::ClusterConfig;
use ocm_core::cluster::NodeId;
use ocm_core::Config;
use ocm_io::Options;
use std::io::Write;
use std::net::SocketAddr;

/// Runs the server command and returns the exit code.
pub fn run(args: ServerArgs) -> u8 {
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("ocm: error: {message}");
            return exit::USAGE;
        }
    };
    crate::ops::init_logs(args.ops.log_format);
    let stop = match crate::signals::install() {
        Ok(stop) => stop,
        Err(e) => return fail(&format!("cannot install the signal handler: {e}")),
    };
    let shutdown = async move {
        let _ = stop.recv().await;
    };
    let result = match args.runtime {
        Runtime::Smol => serve::<ocm_smol::Smol>(&options, args.ops.metrics, shutdown),
        Runtime::AsyncStd => serve::<ocm_asyncstd::AsyncStd>(&options, args.ops.metrics, shutdown),
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
        max_rooms_per_source: args.max_rooms_per_source,
        ipv6_source_prefix: args.ipv6_source_prefix,
        handshake_timeout: args.handshake_timeout,
        port_wait: args.port_wait,
        registration_timeout: args.registration_timeout,
        icmp_grace: args.icmp_grace,
        password_failures_per_source: args.password_failures_per_source,
        password_failures_per_room: args.password_failures_per_room,
        max_payload: args.max_payload,
        member_messages_per_sec: args.member_rate.0,
        member_message_burst: args.member_rate.1,
        member_bytes_per_sec: args.member_bytes.0,
        member_byte_burst: args.member_bytes.1,
        source_messages_per_sec: args.source_rate.0,
        source_message_burst: args.source_rate.1,
        room_fanout_per_sec: args.room_fanout.0,
        room_fanout_burst: args.room_fanout.1,
        unproven_datagrams: args.unproven_datagrams,
        relay_verify: args.relay_verify,
        linger: args.linger,
        request_budget: args.request_budget,
        ..Config::default()
    };
    config.max_members_per_room = args.max_members_per_room;
    config.max_members = match (args.protocol, args.max_members) {
        (_, Some(n)) => n,
        (Protocol::Rooms, None) => Config::default().max_members,
        (Protocol::Relay, None) => RELAY_MAX_MEMBERS,
    };
    let per_room_given = args.max_members_per_room != Config::default().max_members_per_room;
    if args.protocol == Protocol::Relay && per_room_given {
        return Err(
            "--max-members-per-room applies to rooms; a relay's limit is --max-members".into(),
        );
    }
    config.validate().map_err(|e| e.to_string())?;
    let cluster = cluster(args, &config)?;
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
        udp_buffer: args.udp_buffer,
        cluster,
    })
}

/// `--cluster`, `--node-id`, `--lease`: where Redis is and who this node is.
fn cluster(args: &ServerArgs, config: &Config) -> Result<Option<ocm_io::ClusterOptions>, String> {
    let Some(url) = &args.cluster else {
        return Ok(None);
    };
    if args.protocol != Protocol::Rooms {
        return Err("--cluster serves rooms; relay mode has no cluster".into());
    }
    if args.record.is_some() {
        return Err("--record cannot record cluster mode (its registry and bus inputs)".into());
    }
    let mut redis =
        ocm_cluster::redis::RedisConfig::new(url).map_err(|e| format!("--cluster {e}"))?;
    let node = match &args.node_id {
        Some(id) => NodeId::new(id).map_err(|e| format!("--node-id {id:?}: {e}"))?,
        None => {
            let seed = ocm_io::seed::os_seed().map_err(|e| e.to_string())?;
            NodeId::random(seed[..8].try_into().expect("8 bytes"))
        }
    };
    let mut node = ClusterConfig::new(node);
    node.lease = args.lease;
    // A create or join waits for Redis at most this long, always within the handshake.
    node.registry_timeout = node.registry_timeout.min(config.handshake_timeout / 2);
    node.validate(config.handshake_timeout)
        .map_err(|e| format!("--lease: {e}"))?;
    // Redis answers (or is given up on) before the core stops waiting.
    redis.response_timeout = redis.response_timeout.min(node.registry_timeout * 4 / 5);
    redis.connect_timeout = redis.connect_timeout.min(node.registry_timeout * 4 / 5);
    Ok(Some(ocm_io::ClusterOptions { redis, node }))
}

/// The client limit of a relay unless `--max-members` says otherwise: one room of a
/// thousand (a rooms server's total is `Config::default().max_members`).
const RELAY_MAX_MEMBERS: usize = 1_000;

/// Binds on runtime `R`, announces the addresses and serves until `shutdown`.
fn serve<R: ocm_io::Runtime>(
    options: &Options,
    metrics: Option<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<ocm_core::Stats> {
    let server = ocm_io::Shell::<R>::bind(options)?;
    let (tcp, udp) = (server.tcp_addr(), server.udp_addr());
    let metrics = crate::ops::start_metrics(metrics, server.inspector(), tcp, udp)?;
    announce(
        tcp,
        udp,
        metrics.as_ref().map(ocm_metrics::MetricsServer::addr),
    );
    let stats = server.run_blocking(shutdown);
    drop(metrics);
    stats
}

/// The one line on stdout, with the ports actually bound (`metrics=` with --metrics).
fn announce(tcp: Option<SocketAddr>, udp: SocketAddr, metrics: Option<SocketAddr>) {
    let mut line = match tcp {
        Some(tcp) => format!("listening tcp={tcp} udp={udp}"),
        None => format!("listening udp={udp}"),
    };
    if let Some(metrics) = metrics {
        line.push_str(&format!(" metrics={metrics}"));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn fail(message: &str) -> u8 {
    eprintln!("ocm: error: {message}");
    exit::ERROR
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parsed(args: &[&str]) -> ServerArgs {
        let all = ["ocm", "server"].iter().chain(args);
        match crate::cli::Cli::try_parse_from(all).unwrap().command {
            crate::cli::Command::Server(args) => args,
            _ => unreachable!("a server command"),
        }
    }

    #[test]
    fn the_command_line_defaults_are_the_core_defaults_every_one() {
        let rooms = options(&parsed(&[])).unwrap();
        assert_eq!(rooms.config, Config::default());
        assert_eq!(rooms.udp_buffer, ocm_io::Options::default().udp_buffer);
        let relay = options(&parsed(&["--protocol", "relay"])).unwrap();
        assert_eq!(
            relay.config,
            Config {
                max_members: 1_000,
                ..Config::default()
            }
        );
    }

    #[test]
    fn rates_take_a_burst_or_double_the_rate() {
        let set = options(&parsed(&["--member-rate", "50", "--room-fanout", "10/30"])).unwrap();
        let c = &set.config;
        assert_eq!(
            (c.member_messages_per_sec, c.member_message_burst),
            (50, 100)
        );
        assert_eq!((c.room_fanout_per_sec, c.room_fanout_burst), (10, 30));
        for bad in [
            ["--member-rate", "0"],
            ["--source-rate", "5/x"],
            ["--relay-verify", "maybe"],
        ] {
            let all = ["ocm", "server"].iter().chain(&bad);
            assert!(crate::cli::Cli::try_parse_from(all).is_err(), "{bad:?}");
        }
    }
}
