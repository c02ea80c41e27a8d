//! `ocm-load`: delivered datagrams per second through a real `ocm server` on loopback,
//! on each runtime, against the raw-UDP fan-out baseline measured in the same run.
//!
//! ```sh
//! cargo build --release -p ocm -p ocm-bench
//! target/release/ocm-load --members 2,8,64
//! ```
//!
//! Prints a markdown table: per room size and target, delivered datagrams per second,
//! the ratio to the baseline, loss and latency percentiles.

use clap::Parser;
use ocm_bench::baseline;
use ocm_bench::load::{self, Framing, Load, Report, Sockets};
use ocm_core::client::{port_bytes, ChatSession, Handshake};
use ocm_core::wire::room_datagram::RoomDatagram;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Loopback load test of ocm server against a raw-UDP fan-out baseline")]
struct Args {
    /// Room sizes to measure (one sender, the rest receive).
    #[arg(long, value_delimiter = ',', default_value = "2,8,64")]
    members: Vec<usize>,
    /// Runtimes of ocm server to measure.
    #[arg(long, value_delimiter = ',', default_value = "smol,async-std")]
    runtimes: Vec<String>,
    /// Messages per run (each delivered to members - 1 receivers).
    #[arg(long, default_value_t = 50_000)]
    messages: u64,
    /// Messages in flight ahead of the slowest receiver.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// The ocm binary (default: next to this one).
    #[arg(long)]
    ocm: Option<PathBuf>,
    /// Instead of the runtimes: cluster mode, the room spread over this many nodes
    /// (`ocm server --cluster` on a private redis-server; host and sender on the first
    /// node, receiver i on node i mod N), against one node without a cluster in the same
    /// run; prints the CPU time Redis used per message.
    #[arg(long, value_delimiter = ',')]
    cluster_nodes: Vec<usize>,
    /// Internal: serve the baseline and print its address.
    #[arg(long, hide = true)]
    serve_baseline: bool,
}

/// A child server that is killed when dropped.
struct Server {
    child: Child,
    udp: SocketAddr,
    tcp: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut command: Command) -> io::Result<Server> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|a| a.parse().ok())
    };
    let udp =
        field("udp=").ok_or_else(|| io::Error::other(format!("no listening line: {line:?}")))?;
    Ok(Server {
        child,
        udp,
        tcp: field("tcp="),
    })
}

struct Raw;

impl Framing for Raw {
    fn encode(&self, text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }
    fn decode<'a>(&self, datagram: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(datagram).ok()
    }
}

struct Room {
    name: String,
    token: Vec<u8>,
}

impl Framing for Room {
    fn encode(&self, text: &str) -> Vec<u8> {
        let d = RoomDatagram {
            room: self.name.as_bytes(),
            token: &self.token,
            message: text.as_bytes(),
        };
        d.encode().expect("message fits").to_vec()
    }
    fn decode<'a>(&self, datagram: &'a [u8]) -> Option<&'a str> {
        // relayed lines are "NAME: TEXT"; notices start with "* "
        let text = std::str::from_utf8(datagram).ok()?;
        text.split_once(": ").map(|(_, message)| message)
    }
}

fn udp_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(server)?;
    Ok(socket)
}

/// Creates or joins over TCRP with the port step; returns the token.
fn handshake(
    tcp: SocketAddr,
    create: bool,
    room: &str,
    name: &str,
    udp_port: u16,
) -> io::Result<Vec<u8>> {
    let mut hs = if create {
        Handshake::create(room, name, None)
    } else {
        Handshake::join(room, name, None)
    }
    .map_err(io::Error::other)?;
    let mut stream = TcpStream::connect(tcp)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(hs.request())?;
    stream.write_all(&port_bytes(udp_port))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    match hs.handle_data(&answer) {
        Ok(Some(token)) => Ok(token.to_vec()),
        other => Err(io::Error::other(format!("handshake failed: {other:?}"))),
    }
}

/// [`handshake`], again for up to 5 s while a cluster node is not registered yet.
fn handshake_retrying(
    tcp: SocketAddr,
    create: bool,
    room: &str,
    name: &str,
    udp_port: u16,
) -> io::Result<Vec<u8>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match handshake(tcp, create, room, name, udp_port) {
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// CPU time (user + system) of a process so far, from /proc (Linux), in clock ticks of
/// 10 ms.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The cluster runs: one node without a cluster, then the room over each node count.
fn cluster_runs(args: &Args, ocm: &PathBuf, load: Load) -> io::Result<()> {
    println!("| members | target | delivered/s | ratio to one node | loss | Redis CPU | Redis CPU per message |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let server_command = |extra: &[String]| {
        let mut command = Command::new(ocm);
        command.args(["server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
        command.args(["--idle-timeout", "3600"]);
        command.args(extra);
        command
    };
    for &members in &args.members {
        let members = members.max(2);
        let single = spawn(server_command(&[]))?;
        let (sockets, framing) = ocm_sockets(&single, members)?;
        std::thread::sleep(Duration::from_millis(50));
        let base = load::run(load, sockets, Arc::new(framing))?;
        println!(
            "| {members} | one node, no cluster | {:.0} | 1.00 (baseline) | {:.2}% | - | - |",
            base.rate(),
            base.loss() * 100.0
        );
        drop(single);
        for &nodes in &args.cluster_nodes {
            let redis = ocm_cluster::test_server::RedisServer::start()?;
            let servers = (0..nodes.max(1))
                .map(|i| {
                    spawn(server_command(&[
                        "--cluster".into(),
                        redis.url(),
                        "--node-id".into(),
                        format!("bench-{i}"),
                    ]))
                })
                .collect::<io::Result<Vec<_>>>()?;
            let (sockets, framing) = spread_sockets(&servers, members)?;
            std::thread::sleep(Duration::from_millis(200)); // joins and subscriptions settle
            let pid = redis.pid().expect("redis runs");
            let before = cpu_ticks(pid);
            let report = load::run(load, sockets, Arc::new(framing))?;
            let used = cpu_ticks(pid).zip(before).map(|(a, b)| (a - b) * 10);
            let (cpu, per) = match used {
                Some(ms) => (
                    format!("{ms} ms"),
                    format!("{:.1} µs", ms as f64 * 1000.0 / load.messages as f64),
                ),
                None => ("?".into(), "?".into()),
            };
            println!(
                "| {members} | {nodes} nodes (cluster) | {:.0} | {:.2} | {:.2}% | {cpu} | {per} |",
                report.rate(),
                report.rate() / base.rate(),
                report.loss() * 100.0
            );
        }
    }
    Ok(())
}

fn ocm_sockets(server: &Server, members: usize) -> io::Result<(Sockets, Room)> {
    spread_sockets(std::slice::from_ref(server), members)
}

/// The room over `servers`: host and sender on the first, receiver i on server i mod n.
fn spread_sockets(servers: &[Server], members: usize) -> io::Result<(Sockets, Room)> {
    let tcp = |s: &Server| s.tcp.expect("rooms server has a TCP address");
    let room = "bench";
    let sender = udp_socket(servers[0].udp)?;
    let token = handshake_retrying(
        tcp(&servers[0]),
        true,
        room,
        "s",
        sender.local_addr()?.port(),
    )?;
    let mut receivers = Vec::new();
    for i in 1..members {
        let server = &servers[i % servers.len()];
        let socket = udp_socket(server.udp)?;
        let token = handshake_retrying(
            tcp(server),
            false,
            room,
            &format!("r{i}"),
            socket.local_addr()?.port(),
        )?;
        let mut chat = ChatSession::room(
            std::time::Instant::now(),
            room,
            &token,
            Duration::from_secs(60),
        )
        .map_err(io::Error::other)?;
        socket.send(&chat.poll_transmit().expect("registration"))?;
        receivers.push(socket);
    }
    let framing = Room {
        name: room.into(),
        token,
    };
    Ok((Sockets { sender, receivers }, framing))
}

fn baseline_sockets(server: &Server, members: usize) -> io::Result<Sockets> {
    let sender = udp_socket(server.udp)?;
    let mut receivers = Vec::new();
    for _ in 1..members {
        let socket = udp_socket(server.udp)?;
        socket.send(baseline::REGISTER)?;
        receivers.push(socket);
    }
    Ok(Sockets { sender, receivers })
}

fn row(members: usize, target: &str, report: &Report, baseline: Option<f64>) {
    let ratio = baseline.map_or("1.00 (baseline)".to_string(), |b| {
        format!("{:.2}", report.rate() / b)
    });
    println!(
        "| {members} | {target} | {:.0} | {ratio} | {:.2}% | {:?} | {:?} |",
        report.rate(),
        report.loss() * 100.0,
        report.p50,
        report.p99,
    );
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let exe = std::env::current_exe()?;
    if args.serve_baseline {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        println!("listening udp={}", socket.local_addr()?);
        io::stdout().flush()?;
        return baseline::serve(socket);
    }
    let ocm = args
        .ocm
        .clone()
        .unwrap_or_else(|| exe.with_file_name("ocm"));
    let load = Load {
        messages: args.messages,
        window: args.window,
        size: args.size.max(33),
    };
    if !args.cluster_nodes.is_empty() {
        return cluster_runs(&args, &ocm, load);
    }
    println!("| members | target | delivered/s | ratio to baseline | loss | p50 | p99 |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &members in &args.members {
        let members = members.max(2);
        let mut command = Command::new(&exe);
        command.arg("--serve-baseline");
        let server = spawn(command)?;
        let sockets = baseline_sockets(&server, members)?;
        std::thread::sleep(Duration::from_millis(50)); // registrations reach the baseline
        let base = load::run(load, sockets, Arc::new(Raw))?;
        row(members, "raw UDP baseline", &base, None);
        drop(server);
        for runtime in args.runtimes.iter().filter(|r| !r.is_empty()) {
            let mut command = Command::new(&ocm);
            command.args([
                "server",
                "--runtime",
                runtime,
                "--tcp",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
            ]);
            command.args(["--idle-timeout", "3600"]);
            let server = spawn(command)?;
            let (sockets, framing) = ocm_sockets(&server, members)?;
            std::thread::sleep(Duration::from_millis(50)); // registrations reach the server
            let report = load::run(load, sockets, Arc::new(framing))?;
            row(
                members,
                &format!("ocm ({runtime})"),
                &report,
                Some(base.rate()),
            );
        }
    }
    Ok(())
}
