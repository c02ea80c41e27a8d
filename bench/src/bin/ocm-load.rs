//! `ocm-load`: a real `ocm server` on loopback, on each runtime and in both protocols,
//! against plain-socket baselines measured in the same run, each server in a process of
//! its own.
//!
//! ```sh
//! cargo build --release -p ocm -p ocm-bench
//! target/release/ocm-load --members 2,8,64 --runs 3
//! ```
//!
//! Three measurements, each repeated `--runs` times with the targets interleaved, printed
//! as markdown tables of median (min–max):
//!
//! 1. **fan-out**: one sender and *members − 1* receivers; deliveries per second and the
//!    server's CPU time (all threads' run time in nanoseconds, `/proc/PID/task/*/schedstat`;
//!    the user share from `utime` and `stime`) per delivery, against
//!    the batched raw relay ([`ocm_bench::batched`]) and the naive one
//!    ([`ocm_bench::baseline`]);
//! 2. **junk**: a flood of datagrams the server drops (rooms: an unknown room; relay: no
//!    username); CPU per datagram read, against a `recvmmsg` loop that drops everything;
//! 3. **handshakes**: creates and joins over loopback TCP; handshakes per second and CPU
//!    per handshake, against a minimal accept–answer–close server
//!    ([`ocm_bench::handshake`]).
//!
//! With `--scrape N` instead: the cost of scraping `ocm server --metrics` N times a second,
//! the same fan-out with a scraper and without, alternating; with `--cluster-nodes`,
//! cluster mode against one node.
//!
//! Ratios are computed within each run (the same minute of the same machine), then
//! summarised: median (min–max), and the geometric mean with its 95 % confidence interval
//! ([`ocm_bench::stats`]), which says whether a goal such as "≤ 1.05×" is met beyond the
//! machine's noise.

use clap::{Parser, ValueEnum};
use ocm_bench::load::{self, Framing, Load, Sockets};
use ocm_bench::profile::{Probe, Profiler};
use ocm_bench::{baseline, batched, handshake, junk, procfs, stats};
use ocm_core::client::{port_bytes, ChatSession, Handshake};
use ocm_core::wire::room_datagram::RoomDatagram;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Loopback load test of ocm server against plain-socket baselines")]
struct Args {
    /// Room sizes to measure (one sender, the rest receive).
    #[arg(long, value_delimiter = ',', default_value = "2,8,64")]
    members: Vec<usize>,
    /// Runtimes of ocm server to measure.
    #[arg(long, value_delimiter = ',', default_value = "smol,async-std")]
    runtimes: Vec<String>,
    /// Protocols of ocm server to measure.
    #[arg(long, value_delimiter = ',', default_value = "rooms,relay")]
    protocols: Vec<Protocol>,
    /// Times every measurement is repeated.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Deliveries per fan-out run (messages = deliveries / receivers; 0: no fan-out
    /// measurement).
    #[arg(long, default_value_t = 400_000)]
    deliveries: u64,
    /// Messages in flight ahead of the slowest receiver.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Junk datagrams per junk run (0: no junk measurement).
    #[arg(long, default_value_t = 500_000)]
    junk: u64,
    /// Servers share the cores with the load, as the scheduler places them. By default
    /// each server under test runs on a core of its own and the load on the others
    /// (`ocm_bench::pin`), which keeps preemptions by the load out of the figures.
    #[arg(long)]
    unpinned: bool,
    /// Create+join pairs per client thread per handshake run (0: none).
    #[arg(long, default_value_t = 1000)]
    handshakes: usize,
    /// Client threads of the handshake load.
    #[arg(long, default_value_t = 2)]
    handshake_threads: usize,
    /// The ocm binary (default: next to this one).
    #[arg(long)]
    ocm: Option<PathBuf>,
    /// A second ocm binary (say, main's build) measured beside `--ocm` as a target of its
    /// own in every run, for an A/B of two builds: the tables then say, per run, what
    /// each ocm target costs over the same target of this build.
    #[arg(long)]
    ocm_baseline: Option<PathBuf>,
    /// Count what each server does in each measured phase (see `ocm_bench::profile`):
    /// `callgrind` (instructions and system calls, under valgrind: the CPU figures are
    /// then valgrind's) or `perf` (native system calls and context switches) or `perf-record` (native
    /// CPU-clock samples with call graphs, one `.data` file per server and phase). Counts per
    /// unit of work go to the progress lines on stderr and a table at the end.
    #[arg(long)]
    profile: Option<ProfileKind>,
    /// Where profiles are written.
    #[arg(long, default_value = "target/profile")]
    profile_dir: PathBuf,
    /// Instead of the measurements above: cluster mode, a rooms room spread over this many
    /// nodes (`ocm server --cluster` on a private redis-server; host and sender on the
    /// first node, receiver i on node i mod N), against one node without a cluster in the
    /// same run; prints the CPU time Redis used per message.
    #[arg(long, value_delimiter = ',')]
    cluster_nodes: Vec<usize>,
    /// Instead of the measurements above: what scraping costs. A rooms room of each
    /// `--members` size on `ocm server --metrics`, once with a scraper GETting /metrics
    /// this many times a second and once without, alternating within each run, on each
    /// runtime; prints the server's CPU per delivery with over without.
    #[arg(long)]
    scrape: Option<u32>,
    /// Internal: serve a baseline and print its address.
    #[arg(long, hide = true)]
    serve: Option<Baseline>,
    /// Adds a target, the blocking batched relay spending this many rounds of a multiply
    /// loop (about a nanosecond each) per datagram, touching no memory: what user-space
    /// time alone costs a relay, to compare with ocm's. The anchors stay plain.
    #[arg(long, default_value_t = 0)]
    anchor_work: u64,
    /// Adds that target (or makes it) reading and writing one byte of every cache line of
    /// a buffer of this many KiB per datagram: what a footprint in the data caches costs
    /// a relay's kernel time.
    #[arg(long, default_value_t = 0)]
    anchor_footprint: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Protocol {
    Rooms,
    Relay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProfileKind {
    Callgrind,
    Perf,
    PerfRecord,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Baseline {
    /// One `recv_from`, then one `send_to` per receiver.
    Naive,
    /// `recvmmsg` and `sendmmsg` batches.
    Batched,
    /// The same, waiting in `epoll_wait`.
    BatchedPolled,
    /// The blocking one doing `--anchor-work` and `--anchor-footprint` per datagram.
    BatchedWorking,
    /// A `recvmmsg` loop that drops everything.
    Drain,
    /// The same, waiting in `epoll_wait`.
    DrainPolled,
    /// The minimal TCRP server.
    Tcp,
}

/// A server under test.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Batched,
    BatchedPolled,
    /// Measured only when there is `--anchor-work` or `--anchor-footprint`.
    BatchedWorking,
    Naive,
    Drain,
    DrainPolled,
    MinimalTcp,
    Ocm(Protocol, String),
    /// The same, of the `--ocm-baseline` build.
    OcmBaseline(Protocol, String),
}

impl Target {
    /// A file name for the target.
    fn slug(&self) -> String {
        self.name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .replace("--", "-")
            .trim_matches('-')
            .to_string()
    }

    fn name(&self) -> String {
        match self {
            Target::Batched => "batched raw relay".into(),
            Target::BatchedPolled => "batched raw relay in epoll".into(),
            Target::BatchedWorking => "batched raw relay with anchor work".into(),
            Target::Naive => "naive raw relay".into(),
            Target::Drain => "recvmmsg drain loop".into(),
            Target::DrainPolled => "recvmmsg drain loop in epoll".into(),
            Target::MinimalTcp => "minimal TCP server".into(),
            Target::Ocm(Protocol::Rooms, runtime) => format!("ocm rooms ({runtime})"),
            Target::Ocm(Protocol::Relay, runtime) => format!("ocm relay ({runtime})"),
            Target::OcmBaseline(Protocol::Rooms, runtime) => {
                format!("ocm rooms ({runtime}, baseline build)")
            }
            Target::OcmBaseline(Protocol::Relay, runtime) => {
                format!("ocm relay ({runtime}, baseline build)")
            }
        }
    }

    /// The protocol an ocm target serves, of either build.
    fn protocol(&self) -> Option<Protocol> {
        match self {
            Target::Ocm(protocol, _) | Target::OcmBaseline(protocol, _) => Some(*protocol),
            _ => None,
        }
    }

    /// The same target of the baseline build, for an ocm target of the tested one.
    fn baseline_build(&self) -> Option<Target> {
        match self {
            Target::Ocm(protocol, runtime) => Some(Target::OcmBaseline(*protocol, runtime.clone())),
            _ => None,
        }
    }
}

/// A child server that is killed when dropped.
struct Server {
    child: Child,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    /// `ocm server --metrics`: where the endpoints are.
    metrics: Option<SocketAddr>,
    slug: String,
}

/// What a server spent on a measured phase.
#[derive(Clone, Debug, Default)]
struct Spent {
    /// User and system time, in clock ticks: for the user share.
    cpu: procfs::CpuTime,
    /// Run time of all its threads in nanoseconds (`schedstat`), when no thread ended
    /// during the phase; else the ticks' total.
    run: Duration,
    /// Profile counters, totals for the phase.
    counters: Vec<(String, u64)>,
}

impl Spent {
    /// CPU nanoseconds per unit, for `units` units of work.
    fn cpu_per(&self, units: u64) -> f64 {
        self.run.as_nanos() as f64 / units.max(1) as f64
    }

    /// The share of the CPU time spent in user space.
    fn user_share(&self) -> f64 {
        self.cpu.user.as_secs_f64() / self.cpu.total().as_secs_f64().max(1e-9)
    }

    /// The counters per unit.
    fn counters_per(&self, units: u64) -> Counts {
        let units = units.max(1) as f64;
        self.counters
            .iter()
            .map(|(name, n)| (name.clone(), *n as f64 / units))
            .collect()
    }
}

/// A measured phase under way.
struct Phase {
    cpu: procfs::CpuTime,
    run: procfs::RunTimes,
    probe: Probe,
}

impl Server {
    /// Starts a measured phase.
    fn begin(&self, profiler: &Profiler) -> io::Result<Phase> {
        let probe = profiler.begin(self.child.id(), &self.slug)?;
        Ok(Phase {
            cpu: procfs::cpu_time(self.child.id())?,
            run: procfs::run_times(self.child.id())?,
            probe,
        })
    }

    /// Ends a measured phase.
    fn end(&self, phase: Phase) -> io::Result<Spent> {
        let run = procfs::run_times(self.child.id())?.since(&phase.run);
        let cpu = procfs::cpu_time(self.child.id())?.since(phase.cpu);
        if run.is_none() {
            eprintln!(
                "  {}: a thread ended during the phase; CPU time from clock ticks",
                self.slug
            );
        }
        Ok(Spent {
            cpu,
            run: run.unwrap_or(cpu.total()),
            counters: phase.probe.end()?,
        })
    }

    fn udp(&self) -> io::Result<SocketAddr> {
        self.udp
            .ok_or_else(|| io::Error::other("the server has no UDP address"))
    }

    fn tcp(&self) -> io::Result<SocketAddr> {
        self.tcp
            .ok_or_else(|| io::Error::other("the server has no TCP address"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Context {
    exe: PathBuf,
    ocm: PathBuf,
    /// `--ocm-baseline`.
    ocm_baseline: Option<PathBuf>,
    profiler: Profiler,
    /// The core the servers under test run on (the load keeps the others).
    server_cpu: Option<usize>,
    /// `--anchor-work`, passed on to the working relay.
    anchor_work: u64,
    /// `--anchor-footprint`, passed on to the working relay.
    anchor_footprint: usize,
}

impl Context {
    fn spawn(&self, target: &Target) -> io::Result<Server> {
        let mut command = match target {
            Target::Ocm(protocol, runtime) | Target::OcmBaseline(protocol, runtime) => {
                let binary = match target {
                    Target::OcmBaseline(..) => self.ocm_baseline.as_ref().unwrap_or(&self.ocm),
                    _ => &self.ocm,
                };
                let mut command = self.command(binary, target);
                command.args(["server", "--runtime", runtime, "--udp", "127.0.0.1:0"]);
                command
                    .args(["--idle-timeout", "3600"])
                    .args(UNLIMITED_RATES);
                match protocol {
                    Protocol::Rooms => command.args([
                        "--tcp",
                        "127.0.0.1:0",
                        "--max-rooms",
                        "1000000",
                        "--max-members",
                        "1000000",
                        "--max-members-per-ip",
                        "1000000",
                        "--max-rooms-per-source",
                        "1000000",
                    ]),
                    // The address check costs one round trip when a client registers,
                    // nothing per message; the load's clients do not answer it.
                    Protocol::Relay => {
                        command.args(["--protocol", "relay", "--relay-verify", "off"])
                    }
                };
                command
            }
            baseline => {
                let name = match baseline {
                    Target::Naive => "naive",
                    Target::Batched => "batched",
                    Target::BatchedPolled => "batched-polled",
                    Target::BatchedWorking => "batched-working",
                    Target::Drain => "drain",
                    Target::DrainPolled => "drain-polled",
                    _ => "tcp",
                };
                let mut command = self.command(&self.exe, target);
                command.args(["--serve", name]);
                if *baseline == Target::BatchedWorking {
                    command.args(["--anchor-work", &self.anchor_work.to_string()]);
                    command.args(["--anchor-footprint", &self.anchor_footprint.to_string()]);
                }
                command
            }
        };
        let mut server = spawn(&mut command)?;
        server.slug = target.slug();
        Ok(server)
    }

    fn command(&self, program: &Path, target: &Target) -> Command {
        let mut command = self.profiler.command(program, &target.slug());
        if let Some(cpu) = self.server_cpu {
            ocm_bench::pin::server_on(&mut command, cpu);
        }
        command
    }

    /// How long registrations take to reach a server (longer under valgrind).
    fn settle(&self) -> Duration {
        Duration::from_millis(if self.profiler.is_slow() { 1000 } else { 50 })
    }
}

fn spawn(command: &mut Command) -> io::Result<Server> {
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
    let server = Server {
        child,
        udp: field("udp="),
        tcp: field("tcp="),
        metrics: field("metrics="),
        slug: String::new(),
    };
    if server.udp.is_none() && server.tcp.is_none() {
        return Err(io::Error::other(format!("no listening line: {line:?}")));
    }
    Ok(server)
}

/// Serves a baseline in this process, after printing its address.
fn serve(baseline: Baseline, work: batched::AnchorWork) -> io::Result<()> {
    if baseline == Baseline::Tcp {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        println!("listening tcp={}", listener.local_addr()?);
        io::stdout().flush()?;
        return handshake::serve_minimal(listener);
    }
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    println!("listening udp={}", socket.local_addr()?);
    io::stdout().flush()?;
    match baseline {
        Baseline::Naive => baseline::serve(socket),
        Baseline::Batched => batched::serve(socket, batched::AnchorWork::default()),
        Baseline::BatchedPolled => batched::serve_polled(socket, batched::AnchorWork::default()),
        Baseline::BatchedWorking => batched::serve(socket, work),
        Baseline::DrainPolled => batched::drain_polled(socket),
        _ => batched::drain(socket),
    }
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

/// Relay mode: `usernamelen | username | message`, relayed unchanged; notices have an
/// empty username.
struct Relay {
    username: &'static str,
}

impl Framing for Relay {
    fn encode(&self, text: &str) -> Vec<u8> {
        relay_datagram(self.username, text)
    }
    fn decode<'a>(&self, datagram: &'a [u8]) -> Option<&'a str> {
        let (&len, rest) = datagram.split_first()?;
        let message = rest.get(usize::from(len)..).filter(|_| len > 0)?;
        std::str::from_utf8(message).ok()
    }
}

fn relay_datagram(username: &str, text: &str) -> Vec<u8> {
    let mut out = vec![username.len() as u8];
    out.extend_from_slice(username.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

fn udp_socket(server: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(server)?;
    Ok(socket)
}

/// Creates or joins over TCRP with the port step; returns the token.
fn room_handshake(
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
    // EOF ends the port step at once (instead of at the server's 1 s deadline)
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    match hs.handle_data(&answer) {
        Ok(Some(token)) => Ok(token.to_vec()),
        other => Err(io::Error::other(format!("handshake failed: {other:?}"))),
    }
}

/// The sender and registered receivers of one fan-out run, and how to frame messages.
fn fan_out_sockets(
    target: &Target,
    server: &Server,
    members: usize,
) -> io::Result<(Sockets, Arc<dyn Framing>)> {
    let udp = server.udp()?;
    let sender = udp_socket(udp)?;
    let mut receivers = Vec::new();
    let framing: Arc<dyn Framing> = match target.protocol() {
        Some(Protocol::Rooms) => return room_sockets(std::slice::from_ref(server), members),
        Some(Protocol::Relay) => {
            for i in 1..members {
                let socket = udp_socket(udp)?;
                socket.send(&relay_datagram(&format!("r{i}"), ""))?;
                receivers.push(socket);
            }
            Arc::new(Relay { username: "s" })
        }
        _ => {
            for _ in 1..members {
                let socket = udp_socket(udp)?;
                socket.send(baseline::REGISTER)?;
                receivers.push(socket);
            }
            Arc::new(Raw)
        }
    };
    Ok((Sockets { sender, receivers }, framing))
}

/// A room of `members` over `servers`: host and sender on the first, receiver i on server
/// i mod n. A handshake is retried for up to 5 s while a cluster node is not registered.
fn room_sockets(servers: &[Server], members: usize) -> io::Result<(Sockets, Arc<dyn Framing>)> {
    let room = "bench";
    let handshake = |server: &Server, create: bool, name: &str, port: u16| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match room_handshake(server.tcp()?, create, room, name, port) {
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => return other,
            }
        }
    };
    let sender = udp_socket(servers[0].udp()?)?;
    let token = handshake(&servers[0], true, "s", sender.local_addr()?.port())?;
    let mut receivers = Vec::new();
    for i in 1..members {
        let server = &servers[i % servers.len()];
        let socket = udp_socket(server.udp()?)?;
        let token = handshake(server, false, &format!("r{i}"), socket.local_addr()?.port())?;
        let mut chat = ChatSession::room(Instant::now(), room, &token, Duration::from_secs(60))
            .map_err(io::Error::other)?;
        socket.send(&chat.poll_transmit().expect("registration"))?;
        receivers.push(socket);
    }
    let framing = Arc::new(Room {
        name: room.into(),
        token,
    });
    Ok((Sockets { sender, receivers }, framing))
}

/// The load of one sender to `members - 1` receivers making about `--deliveries`.
fn room_load(args: &Args, members: usize) -> Load {
    Load {
        messages: (args.deliveries / (members as u64 - 1)).max(1000),
        window: args.window,
        size: args.size.max(33),
    }
}

/// The message rate limits that protect a server from one abusive member, source or room
/// (`ocm server --help`) would cap the one sender of a load run: lifted far above
/// anything a run sends, for ocm and for the cluster nodes alike.
const UNLIMITED_RATES: [&str; 8] = [
    "--member-rate",
    "1000000000",
    "--member-bytes",
    "2000000000",
    "--source-rate",
    "1000000000",
    "--room-fanout",
    "2000000000",
];

/// The cluster runs: per room size, one node without a cluster, then the room over each
/// node count on a private redis-server, with the CPU time Redis used.
fn cluster_runs(args: &Args, cx: &Context) -> io::Result<()> {
    println!("| members | target | deliveries/s | ratio to one node | loss | Redis CPU | Redis CPU per message |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let server = |extra: &[String]| {
        let mut command = Command::new(&cx.ocm);
        command.args(["server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
        command
            .args(["--idle-timeout", "3600"])
            .args(UNLIMITED_RATES);
        command.args(extra);
        spawn(&mut command)
    };
    for &members in &args.members {
        let members = members.max(2);
        let load = room_load(args, members);
        let single = server(&[])?;
        let (sockets, framing) = room_sockets(std::slice::from_ref(&single), members)?;
        std::thread::sleep(cx.settle());
        let base = load::run(load, sockets, framing)?;
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
                    server(&[
                        "--cluster".into(),
                        redis.url(),
                        "--node-id".into(),
                        format!("bench-{i}"),
                    ])
                })
                .collect::<io::Result<Vec<_>>>()?;
            let (sockets, framing) = room_sockets(&servers, members)?;
            std::thread::sleep(Duration::from_millis(200)); // joins and subscriptions settle
            let pid = redis
                .pid()
                .ok_or_else(|| io::Error::other("redis-server is not running"))?;
            let (ticks, before) = (procfs::cpu_time(pid)?, procfs::run_times(pid)?);
            let report = load::run(load, sockets, framing)?;
            // nanoseconds from every thread's schedstat, ticks if a thread ended meanwhile
            let used = procfs::run_times(pid)?
                .since(&before)
                .unwrap_or(procfs::cpu_time(pid)?.since(ticks).total());
            println!(
                "| {members} | {nodes} {} (cluster) | {:.0} | {:.2} | {:.2}% | {:.1} ms | {:.1} µs |",
                if nodes == 1 { "node" } else { "nodes" },
                report.rate(),
                report.rate() / base.rate(),
                report.loss() * 100.0,
                used.as_secs_f64() * 1e3,
                used.as_secs_f64() * 1e6 / load.messages as f64
            );
        }
    }
    Ok(())
}

/// `--scrape`: the same fan-out on `ocm server --metrics` with and without a scraper,
/// one after the other (in turns: odd runs without first, even runs with), `--runs`
/// times; the ratio of CPU per delivery is taken within each run. The metrics thread's
/// own run time (`schedstat`, in nanoseconds) is read too: what the scrapes cost there.
fn scrape_runs(args: &Args, cx: &Context, per_second: u32) -> io::Result<()> {
    use ocm_bench::scrape::Scraper;
    let server = |runtime: &str| {
        let mut command = Command::new(&cx.ocm);
        command.args(["server", "--runtime", runtime, "--tcp", "127.0.0.1:0"]);
        command.args(["--udp", "127.0.0.1:0", "--idle-timeout", "3600"]);
        command
            .args(["--metrics", "127.0.0.1:0"])
            .args(UNLIMITED_RATES);
        spawn(&mut command)
    };
    // (members, runtime) -> per run: cpu per delivery without, with; rate without, with;
    // the metrics thread's CPU per delivery and per scrape (µs), with the scraper.
    let mut results: BTreeMap<(usize, String), Vec<[f64; 6]>> = BTreeMap::new();
    let mut all = ocm_bench::scrape::Scraped::default();
    for run in 1..=args.runs {
        for &members in &args.members {
            let members = members.max(2);
            let load = room_load(args, members);
            for runtime in &args.runtimes {
                let mut figures = [0.0; 6];
                // Which goes first alternates from run to run, so that a drift in the
                // machine's load within a run does not always favour the same one.
                let order = if run % 2 == 1 {
                    [false, true]
                } else {
                    [true, false]
                };
                for scraping in order {
                    let server = server(runtime)?;
                    let metrics = server
                        .metrics
                        .ok_or_else(|| io::Error::other("no metrics= on the listening line"))?;
                    let (sockets, framing) = room_sockets(std::slice::from_ref(&server), members)?;
                    std::thread::sleep(cx.settle());
                    let scraper = scraping.then(|| Scraper::start(metrics, per_second));
                    let pid = server.child.id();
                    let before = procfs::cpu_time(pid)?;
                    let thread_before = procfs::thread_run_time(pid, "ocm-metrics")?;
                    let report = load::run(load, sockets, framing)?;
                    let spent = procfs::cpu_time(pid)?.since(before);
                    let thread = procfs::thread_run_time(pid, "ocm-metrics")? - thread_before;
                    let per =
                        |cpu: Duration| cpu.as_nanos() as f64 / report.delivered.max(1) as f64;
                    let cpu = per(spent.total());
                    let i = usize::from(scraping);
                    figures[i] = cpu;
                    figures[2 + i] = report.rate();
                    let note = match scraper.map(Scraper::stop) {
                        Some(seen) => {
                            figures[4] = per(thread);
                            figures[5] = thread.as_secs_f64() * 1e6 / seen.ok.max(1) as f64;
                            let note = format!(
                                ", {} scrapes ({} failed), metrics thread {:?}, owner copy p50 {:?} max {:?}, scrape max {:?}",
                                seen.ok,
                                seen.failed,
                                thread,
                                seen.copy_quantile(0.5),
                                seen.copy_quantile(1.0),
                                seen.max_latency
                            );
                            all.add(seen);
                            note
                        }
                        None => String::new(),
                    };
                    eprintln!(
                        "run {run}: {members} members, ocm rooms ({runtime}), scraper {}: {:.0}/s, {cpu:.0} ns/delivery, loss {:.2}%{note}",
                        if scraping { "on" } else { "off" },
                        report.rate(),
                        report.loss() * 100.0,
                    );
                }
                results
                    .entry((members, runtime.clone()))
                    .or_default()
                    .push(figures);
            }
        }
    }
    println!(
        "{} run(s), scraper at {per_second}/s; each figure is the median (min–max) over the runs; ratios are taken within a run.",
        args.runs
    );
    println!();
    println!("| members | target | CPU per delivery, no scraper | with scraper | **ratio** | of which the metrics thread | metrics thread per scrape | deliveries/s, no scraper | with scraper |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for ((members, runtime), runs) in &results {
        let column = |i: usize| runs.iter().map(|r| r[i]).collect::<Vec<_>>();
        let ratios: Vec<f64> = runs.iter().map(|r| r[1] / r[0]).collect();
        println!(
            "| {members} | ocm rooms ({runtime}) | {} | {} | **{}** | {} | {} | {} | {} |",
            spread(&column(0), nanos),
            spread(&column(1), nanos),
            spread(&ratios, ratio),
            spread(&column(4), nanos),
            spread(&column(5), |x| format!("{x:.0} µs")),
            spread(&column(2), rate),
            spread(&column(3), rate),
        );
    }
    println!();
    println!(
        "{} scrapes answered ({} failed), {} bytes each; the owner loop's copy of a snapshot took {:?} (median), {:?} (p99), {:?} (max); a scrape took at most {:?}.",
        all.ok,
        all.failed,
        all.bytes,
        all.copy_quantile(0.5),
        all.copy_quantile(0.99),
        all.copy_quantile(1.0),
        all.max_latency
    );
    Ok(())
}

/// Profile counters per unit of work: `(name, count)`.
type Counts = Vec<(String, f64)>;

/// A profiled phase: what was measured, the target, its counters per unit.
type Profiled = (String, String, Counts);

/// One fan-out run.
#[derive(Clone, Debug)]
struct FanOut {
    rate: f64,
    /// Server CPU per delivery, in nanoseconds.
    cpu: f64,
    /// The share of it in user space.
    user: f64,
    loss: f64,
    p50: Duration,
    p99: Duration,
    /// Profile counters per delivery.
    profile: Counts,
}

fn fan_out(cx: &Context, target: &Target, members: usize, load: Load) -> io::Result<FanOut> {
    let server = cx.spawn(target)?;
    let (sockets, framing) = fan_out_sockets(target, &server, members)?;
    std::thread::sleep(cx.settle());
    let phase = server.begin(&cx.profiler)?;
    let report = load::run(load, sockets, framing)?;
    let spent = server.end(phase)?;
    Ok(FanOut {
        rate: report.rate(),
        cpu: spent.cpu_per(report.delivered),
        user: spent.user_share(),
        loss: report.loss(),
        p50: report.p50,
        p99: report.p99,
        profile: spent.counters_per(report.delivered),
    })
}

/// One junk run: server CPU per junk datagram it read, in nanoseconds, and the profile
/// counters per datagram.
fn junk_run(cx: &Context, target: &Target, count: u64) -> io::Result<(f64, Counts)> {
    let server = cx.spawn(target)?;
    let SocketAddr::V4(udp) = server.udp()? else {
        return Err(io::Error::other("the server is bound to IPv4"));
    };
    let datagram = match target.protocol() {
        Some(Protocol::Relay) => vec![0u8; 100], // empty username: dropped
        _ => RoomDatagram {
            room: b"no-such-room",
            token: b"00112233445566778899aabbccddeeff",
            message: &[b'x'; 100],
        }
        .encode()
        .expect("fits")
        .to_vec(),
    };
    std::thread::sleep(cx.settle());
    let phase = server.begin(&cx.profiler)?;
    let read = junk::flood(server.child.id(), udp, &datagram, count)?;
    std::thread::sleep(Duration::from_millis(20)); // the last batch is handled
    let spent = server.end(phase)?;
    eprintln!(
        "  junk, {}: {read} datagrams read, {:.0}% of the CPU time in user space",
        target.name(),
        spent.user_share() * 100.0
    );
    Ok((spent.cpu_per(read), spent.counters_per(read)))
}

/// One handshake run: handshakes per second, server CPU per handshake (ns), and the
/// profile counters per handshake.
fn handshake_run(
    cx: &Context,
    target: &Target,
    threads: usize,
    pairs: usize,
) -> io::Result<(f64, f64, Counts)> {
    let server = cx.spawn(target)?;
    let tcp = server.tcp()?;
    // a short warm-up (thread pools, first allocations), not counted
    handshake::run(tcp, 1, 10, "warm")?;
    let phase = server.begin(&cx.profiler)?;
    let report = handshake::run(tcp, threads, pairs, "h")?;
    std::thread::sleep(Duration::from_millis(20));
    let spent = server.end(phase)?;
    eprintln!(
        "  handshakes, {}: {} handshakes, {:.0}% of the CPU time in user space",
        target.name(),
        report.handshakes,
        spent.user_share() * 100.0
    );
    Ok((
        report.rate(),
        spent.cpu_per(report.handshakes),
        spent.counters_per(report.handshakes),
    ))
}

/// The profile part of a progress line.
fn profile_note(profile: &[(String, f64)], unit: &str) -> String {
    if profile.is_empty() {
        return String::new();
    }
    let counts: Vec<String> = profile
        .iter()
        .map(|(name, n)| format!("{name} {n:.2}"))
        .collect();
    format!("; per {unit}: {}", counts.join(", "))
}

/// `median (min–max)` of `values`, each written with `format`.
fn spread(values: &[f64], format: impl Fn(f64) -> String) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.as_slice() {
        [] => "—".into(),
        [one] => format(*one),
        _ => format!(
            "{} ({}–{})",
            format(sorted[sorted.len() / 2]),
            format(sorted[0]),
            format(sorted[sorted.len() - 1])
        ),
    }
}

fn rate(x: f64) -> String {
    format!("{x:.0}")
}

fn nanos(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1} µs", x / 1000.0)
    } else {
        format!("{x:.0} ns")
    }
}

fn ratio(x: f64) -> String {
    format!("{x:.2}")
}

/// The geometric mean of per-run ratios and its 95 % confidence interval,
/// `mean (low–high)` ([`stats::geometric_mean_ci`]); `—` below two runs.
fn mean_ci(ratios: &[f64]) -> String {
    match stats::geometric_mean_ci(ratios) {
        Some((mean, low, high)) => format!("{mean:.2} ({low:.2}–{high:.2})"),
        None => "—".into(),
    }
}

/// Per target, the runs' values; per target, the ratios to the anchor within each run.
struct Table<T> {
    runs: BTreeMap<Target, Vec<T>>,
    ratios: BTreeMap<Target, Vec<f64>>,
}

impl<T> Default for Table<T> {
    fn default() -> Table<T> {
        Table {
            runs: BTreeMap::new(),
            ratios: BTreeMap::new(),
        }
    }
}

impl<T> Table<T> {
    fn add_run(&mut self, anchor: &Target, run: Vec<(Target, T)>, cost: impl Fn(&T) -> f64) {
        let base = run.iter().find(|(t, _)| t == anchor).map(|(_, v)| cost(v));
        for (target, value) in run {
            if let Some(base) = base {
                self.ratios
                    .entry(target.clone())
                    .or_default()
                    .push(cost(&value) / base);
            }
            self.runs.entry(target).or_default().push(value);
        }
    }

    fn column(&self, target: &Target, f: impl Fn(&T) -> f64) -> Vec<f64> {
        self.runs[target].iter().map(f).collect()
    }

    /// Per run, `target`'s cost over a second anchor's (every target runs in every run).
    fn ratios_to(&self, anchor: &Target, target: &Target, cost: impl Fn(&T) -> f64) -> Vec<f64> {
        let Some(base) = self.runs.get(anchor) else {
            return Vec::new();
        };
        self.runs[target]
            .iter()
            .zip(base)
            .map(|(value, base)| cost(value) / cost(base))
            .collect()
    }
}

/// The targets in the order run `run` (from 1) measures them: as listed in odd runs,
/// backwards in even ones, so that a drift during the runs (a neighbour's load, the
/// clock) weighs on every target alike over each pair of runs.
fn in_run_order<T>(targets: &[T], run: usize) -> Vec<&T> {
    let mut order: Vec<&T> = targets.iter().collect();
    if run.is_multiple_of(2) {
        order.reverse();
    }
    order
}

fn targets(args: &Args, baselines: &[Target], protocols: &[Protocol]) -> Vec<Target> {
    let mut targets = baselines.to_vec();
    for protocol in protocols.iter().filter(|p| args.protocols.contains(p)) {
        for runtime in args.runtimes.iter().filter(|r| !r.is_empty()) {
            targets.push(Target::Ocm(*protocol, runtime.clone()));
            if args.ocm_baseline.is_some() {
                targets.push(Target::OcmBaseline(*protocol, runtime.clone()));
            }
        }
    }
    targets
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    if let Some(baseline) = args.serve {
        let work = batched::AnchorWork::new(args.anchor_work, args.anchor_footprint);
        return serve(baseline, work);
    }
    let exe = std::env::current_exe()?;
    let mut cx = Context {
        server_cpu: None,
        anchor_work: args.anchor_work,
        anchor_footprint: args.anchor_footprint,
        ocm: args
            .ocm
            .clone()
            .unwrap_or_else(|| exe.with_file_name("ocm")),
        ocm_baseline: args.ocm_baseline.clone(),
        exe,
        profiler: match args.profile {
            None => Profiler::Off,
            Some(kind) => {
                std::fs::create_dir_all(&args.profile_dir)?;
                let dir = std::path::absolute(&args.profile_dir)?;
                match kind {
                    ProfileKind::Callgrind => Profiler::Callgrind(dir),
                    ProfileKind::Perf => Profiler::PerfStat(dir),
                    ProfileKind::PerfRecord => Profiler::PerfRecord(dir),
                }
            }
        },
    };
    check_binary(&cx.ocm)?;
    if let Some(baseline) = &cx.ocm_baseline {
        check_binary(baseline)?;
    }
    if !args.cluster_nodes.is_empty() {
        return cluster_runs(&args, &cx);
    }
    if let Some(per_second) = args.scrape {
        return scrape_runs(&args, &cx, per_second);
    }
    // Cluster and scrape runs (above) share the cores as before; these runs pin.
    if !args.unpinned {
        cx.server_cpu = ocm_bench::pin::split();
    }
    match cx.server_cpu {
        Some(cpu) => eprintln!("servers on CPU {cpu}, the load on the others"),
        None => eprintln!("servers and load share the CPUs"),
    }
    let started = Instant::now();
    let members: Vec<usize> = args.members.iter().map(|m| (*m).max(2)).collect();
    let mut relays = vec![Target::Batched, Target::BatchedPolled, Target::Naive];
    if args.anchor_work > 0 || args.anchor_footprint > 0 {
        relays.push(Target::BatchedWorking);
    }
    let fan_targets = targets(&args, &relays, &[Protocol::Rooms, Protocol::Relay]);
    let junk_targets = targets(
        &args,
        &[Target::Drain, Target::DrainPolled],
        &[Protocol::Rooms, Protocol::Relay],
    );
    let tcp_targets = targets(&args, &[Target::MinimalTcp], &[Protocol::Rooms]);
    let mut fan: BTreeMap<usize, Table<FanOut>> = BTreeMap::new();
    let mut junk: Table<f64> = Table::default();
    let mut tcp: Table<(f64, f64)> = Table::default();
    // (what, target, counters per unit) of every profiled phase
    let mut profiles: Vec<Profiled> = Vec::new();
    for run in 1..=args.runs {
        for &m in members.iter().filter(|_| args.deliveries > 0) {
            let load = Load {
                messages: (args.deliveries / (m as u64 - 1)).max(1000),
                window: args.window,
                size: args.size.max(33),
            };
            let mut results = Vec::new();
            for target in in_run_order(&fan_targets, run) {
                let r = fan_out(&cx, target, m, load)?;
                eprintln!(
                    "run {run}: {m} members, {}: {:.0}/s, {:.0} ns/delivery ({:.0}% user), loss {:.2}%{}",
                    target.name(),
                    r.rate,
                    r.cpu,
                    r.user * 100.0,
                    r.loss * 100.0,
                    profile_note(&r.profile, "delivery"),
                );
                profiles.push((
                    format!("{m} members, per delivery"),
                    target.name(),
                    r.profile.clone(),
                ));
                results.push((target.clone(), r));
            }
            fan.entry(m)
                .or_default()
                .add_run(&Target::Batched, results, |r| r.cpu);
        }
        if args.junk > 0 {
            let mut results = Vec::new();
            for target in in_run_order(&junk_targets, run) {
                let (cpu, profile) = junk_run(&cx, target, args.junk)?;
                eprintln!(
                    "run {run}: junk, {}: {cpu:.0} ns/datagram{}",
                    target.name(),
                    profile_note(&profile, "datagram")
                );
                profiles.push(("junk, per datagram".into(), target.name(), profile));
                results.push((target.clone(), cpu));
            }
            junk.add_run(&Target::Drain, results, |c| *c);
        }
        if args.handshakes > 0 {
            let mut results = Vec::new();
            for target in in_run_order(&tcp_targets, run) {
                let r = handshake_run(&cx, target, args.handshake_threads, args.handshakes)?;
                eprintln!(
                    "run {run}: handshakes, {}: {:.0}/s, {:.1} µs/handshake{}",
                    target.name(),
                    r.0,
                    r.1 / 1000.0,
                    profile_note(&r.2, "handshake")
                );
                profiles.push(("handshakes, per handshake".into(), target.name(), r.2));
                results.push((target.clone(), (r.0, r.1)));
            }
            tcp.add_run(&Target::MinimalTcp, results, |r| r.1);
        }
    }

    println!(
        "{} run(s); each figure is the median (min–max) over the runs; ratios are taken within a run, and their geometric mean is shown with its 95 % confidence interval (Student's t over the runs); {}.",
        args.runs,
        match cx.server_cpu {
            Some(cpu) => format!("servers on CPU {cpu}, the load on the others"),
            None => "servers and load sharing the CPUs".into(),
        }
    );
    println!();
    println!("### Fan-out: server CPU per delivery against the batched raw relay");
    println!();
    println!("| members | target | deliveries/s | server CPU per delivery | CPU ratio to batched relay | its mean (95 % CI) | to the relay in epoll | user share | in the kernel | kernel ratio to batched relay | loss | p50 | p99 |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (m, table) in &fan {
        for target in &fan_targets {
            let loss = table.column(target, |r| r.loss * 100.0);
            let p50 = table.column(target, |r| r.p50.as_nanos() as f64);
            let p99 = table.column(target, |r| r.p99.as_nanos() as f64);
            println!(
                "| {m} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} |",
                target.name(),
                spread(&table.column(target, |r| r.rate), rate),
                spread(&table.column(target, |r| r.cpu), nanos),
                spread(&table.ratios[target], ratio),
                mean_ci(&table.ratios[target]),
                spread(
                    &table.ratios_to(&Target::BatchedPolled, target, |r| r.cpu),
                    ratio
                ),
                spread(&table.column(target, |r| r.user * 100.0), |x| format!(
                    "{x:.0} %"
                )),
                spread(&table.column(target, |r| r.cpu * (1.0 - r.user)), nanos),
                spread(
                    &table.ratios_to(&Target::Batched, target, |r| r.cpu * (1.0 - r.user)),
                    ratio
                ),
                spread(&loss, |x| format!("{x:.2} %")),
                spread(&p50, nanos),
                spread(&p99, nanos),
            );
        }
    }
    if args.junk > 0 {
        println!();
        println!("### Junk: server CPU per dropped datagram against a recvmmsg drain loop");
        println!();
        println!(
            "| target | server CPU per datagram | ratio to drain loop | its mean (95 % CI) | to the loop in epoll |"
        );
        println!("|---|---:|---:|---:|---:|");
        for target in &junk_targets {
            println!(
                "| {} | {} | **{}** | {} | {} |",
                target.name(),
                spread(&junk.column(target, |c| *c), nanos),
                spread(&junk.ratios[target], ratio),
                mean_ci(&junk.ratios[target]),
                spread(&junk.ratios_to(&Target::DrainPolled, target, |c| *c), ratio),
            );
        }
    }
    if args.handshakes > 0 {
        println!();
        println!(
            "### Handshakes: creates + joins over loopback TCP ({} client threads) against a minimal server",
            args.handshake_threads
        );
        println!();
        println!(
            "| target | handshakes/s | server CPU per handshake | CPU ratio to minimal server | its mean (95 % CI) |"
        );
        println!("|---|---:|---:|---:|---:|");
        for target in &tcp_targets {
            println!(
                "| {} | {} | {} | **{}** | {} |",
                target.name(),
                spread(&tcp.column(target, |r| r.0), rate),
                spread(&tcp.column(target, |r| r.1), nanos),
                spread(&tcp.ratios[target], ratio),
                mean_ci(&tcp.ratios[target]),
            );
        }
    }
    if args.ocm_baseline.is_some() {
        print_builds(&fan, &fan_targets, &junk, &junk_targets, &tcp, &tcp_targets);
    }
    print_profiles(&profiles);
    println!();
    println!("ocm-load took {:.0} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// `--ocm-baseline`: each ocm target's cost over the same target of the baseline build,
/// per run.
fn print_builds(
    fan: &BTreeMap<usize, Table<FanOut>>,
    fan_targets: &[Target],
    junk: &Table<f64>,
    junk_targets: &[Target],
    tcp: &Table<(f64, f64)>,
    tcp_targets: &[Target],
) {
    println!();
    println!("### This build over the baseline build (`--ocm-baseline`), CPU per unit of work");
    println!();
    println!("| measurement | target | ratio to the baseline build | its mean (95 % CI) |");
    println!("|---|---|---:|---:|");
    let pairs = |targets: &[Target]| -> Vec<(Target, Target)> {
        targets
            .iter()
            .filter_map(|t| Some((t.clone(), t.baseline_build()?)))
            .collect()
    };
    let row = |what: &str, target: &Target, ratios: Vec<f64>| {
        if !ratios.is_empty() {
            println!(
                "| {what} | {} | **{}** | {} |",
                target.name(),
                spread(&ratios, ratio),
                mean_ci(&ratios)
            );
        }
    };
    for (m, table) in fan {
        for (target, baseline) in pairs(fan_targets) {
            let ratios = table.ratios_to(&baseline, &target, |r| r.cpu);
            row(&format!("fan-out, {m} members"), &target, ratios);
        }
    }
    for (target, baseline) in pairs(junk_targets) {
        row("junk", &target, junk.ratios_to(&baseline, &target, |c| *c));
    }
    for (target, baseline) in pairs(tcp_targets) {
        row(
            "handshakes",
            &target,
            tcp.ratios_to(&baseline, &target, |r| r.1),
        );
    }
}

/// The profile counters, median over the runs, one line per phase and target.
fn print_profiles(profiles: &[Profiled]) {
    if profiles.iter().all(|(_, _, counters)| counters.is_empty()) {
        return;
    }
    println!();
    println!("### Profile counters (median over the runs)");
    println!();
    println!("| measurement | target | counts per unit |");
    println!("|---|---|---|");
    let mut seen: Vec<(&String, &String)> = Vec::new();
    for (what, target, _) in profiles {
        if seen.contains(&(what, target)) {
            continue;
        }
        seen.push((what, target));
        let runs: Vec<&Vec<(String, f64)>> = profiles
            .iter()
            .filter(|(w, t, _)| w == what && t == target)
            .map(|(_, _, c)| c)
            .collect();
        let mut names: Vec<&String> = Vec::new();
        for counters in &runs {
            for (name, _) in counters.iter() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                let mut values: Vec<f64> = runs
                    .iter()
                    .map(|c| c.iter().find(|(n, _)| n == *name).map_or(0.0, |(_, v)| *v))
                    .collect();
                values.sort_by(f64::total_cmp);
                format!("{name} {:.2}", values[values.len() / 2])
            })
            .collect();
        println!("| {what} | {target} | {} |", cells.join(", "));
    }
}

fn check_binary(ocm: &Path) -> io::Result<()> {
    if ocm.exists() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "no ocm binary at {} (cargo build --release -p ocm, or --ocm PATH)",
            ocm.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_take_the_targets_forwards_then_backwards() {
        let targets = [1, 2, 3];
        assert_eq!(in_run_order(&targets, 1), [&1, &2, &3]);
        assert_eq!(in_run_order(&targets, 2), [&3, &2, &1]);
        assert_eq!(in_run_order(&targets, 3), [&1, &2, &3]);
    }
}
