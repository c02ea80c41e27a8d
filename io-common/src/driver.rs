//! [`Driver`]: the core, driven by one owner task.
//!
//! Everything reaches the core through [`Driver::handle`] as an [`Input`] with
//! `Instant::now()`: datagrams and TCP reads straight from the read buffers, accepted
//! and closed connections, send failures, timeouts. The owner then sends the datagrams
//! until there are none: a batch at a time from where the core queued them
//! ([`Driver::front_datagrams`], then [`Driver::datagrams_sent`]), or one by one
//! ([`Driver::poll_datagram`]). TCP
//! outputs become [`ConnCmd`]s, collected in order for the owner's
//! [`crate::tcp::TcpPath`] to carry out ([`Driver::take_tcp_commands`]). Events go to
//! the log, rate-limited where a peer can cause them at will ([`crate::EventLog`]).
//!
//! The driver also logs a one-line summary of the counters every
//! [`Options::stats_interval`]: [`Driver::poll_timeout`] includes its deadline (and the
//! end of a log window with suppressed lines), and [`Driver::handle_timeout`] writes it,
//! so a shell's owner loop needs nothing more than the core already asks of it.

use crate::addr;
use crate::events::EventLog;
use crate::metrics::{Snapshot, Telemetry};
use crate::options::Options;
use crate::recorder::Recorder;
use bytes::Bytes;
use ocm_cluster::{BusEvent, ClusterLink};
use ocm_core::cluster::node::{ClusterInput, ClusterOutput};
use ocm_core::cluster::registry::Unavailable;
use ocm_core::record::Header;
use ocm_core::{AnyServer, ConnId, Counts, Input, Machine, Output, Protocol, RoomServer, Stats};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a connection's socket is told to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnCmd {
    /// Write these bytes.
    Send(Bytes),
    /// Send FIN once the writes before are done; keep reading.
    ShutdownWrite,
    /// Write what is queued, then close. After an answer, while the peer is still
    /// open, linger (read and discard, at most [`crate::LINGER_BYTES`]) until EOF or
    /// `linger_until`, the core's own linger deadline; then report the socket gone.
    Close {
        /// The input's time plus `Config::linger`: when the core frees the slot anyway.
        linger_until: Instant,
    },
}

/// The core, owned by one task.
#[derive(Debug)]
pub struct Driver {
    server: AnyServer,
    /// TCP commands from the core's outputs, not yet taken by the TCP path.
    tcp_commands: Vec<(ConnId, ConnCmd)>,
    udp_local: SocketAddr,
    /// The time of the latest input or timeout: events drained afterwards happened then.
    now: Instant,
    log: EventLog,
    stats_interval: Option<Duration>,
    next_summary: Option<Instant>,
    recorder: Option<Recorder>,
    /// Outputs already recorded after their input, not yet carried out (only when
    /// outputs are recorded: the core's queue is drained at once so each output is
    /// written after the input that caused it).
    recorded: VecDeque<Output>,
    /// Datagrams taken out of `recorded` for [`Driver::front_datagrams`] and not yet
    /// sent (only when outputs are recorded).
    staged: Vec<(SocketAddr, Bytes)>,
    /// Cluster mode: the backend's side (set by [`Driver::attach_cluster`]).
    cluster: Option<ClusterLink>,
    /// What the shell measures for the metrics endpoint ([`crate::metrics`]).
    telemetry: Telemetry,
}

impl Driver {
    /// A driver for `options`, whose UDP socket is bound to `udp_local`; `seed` should be
    /// [`crate::seed::os_seed`]. With [`Options::record`], the trace file is created now.
    pub fn new(options: &Options, seed: [u8; 32], udp_local: SocketAddr) -> io::Result<Driver> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let mut server = match &options.cluster {
            None => AnyServer::new(options.protocol, options.config.clone(), seed)
                .map_err(|e| invalid(e.to_string()))?,
            Some(cluster) => {
                if options.protocol != Protocol::Rooms {
                    return Err(invalid("cluster mode serves rooms, not relay mode".into()));
                }
                if options.record.is_some() {
                    return Err(invalid("a trace cannot record cluster mode (its registry and bus inputs are not recorded)".into()));
                }
                let now = Instant::now();
                let server = RoomServer::new_clustered(
                    options.config.clone(),
                    seed,
                    cluster.node.clone(),
                    now,
                )
                .map_err(|e| invalid(e.to_string()))?;
                AnyServer::Rooms(Box::new(server))
            }
        };
        let header = Header {
            protocol: options.protocol,
            outputs: false,
            seed,
            config: options.config.clone(),
        };
        let recorder = match &options.record {
            Some(record) => {
                let recorder = Recorder::create(record, &header)?;
                tracing::info!(path = %record.path.display(), outputs = record.outputs, "recording inputs");
                Some(recorder)
            }
            None => None,
        };
        let log = EventLog::default();
        // A drop event nobody logs or records would be queued and thrown away for every
        // junk datagram: the core only counts drops then.
        if !log.wants_drops() && !recorder.as_ref().is_some_and(Recorder::records_outputs) {
            server.report_drops(false);
        }
        let now = Instant::now();
        Ok(Driver {
            server,
            tcp_commands: Vec::new(),
            udp_local,
            now,
            log,
            stats_interval: options.stats_interval,
            next_summary: options.stats_interval.map(|every| now + every),
            recorder,
            recorded: VecDeque::new(),
            staged: Vec::new(),
            cluster: None,
            telemetry: Telemetry::default(),
        })
    }

    /// Cluster mode: from now on the core's cluster outputs go to `link`.
    pub fn attach_cluster(&mut self, link: ClusterLink) {
        self.cluster = Some(link);
    }

    /// The cluster link, once attached.
    pub fn cluster(&self) -> Option<&ClusterLink> {
        self.cluster.as_ref()
    }

    /// What the cluster backend reported.
    pub fn handle_cluster(&mut self, now: Instant, input: ClusterInput) {
        self.now = now;
        if let ClusterInput::Answer { id, answer } = &input {
            let error = answer.as_ref().err().copied();
            self.telemetry.registry_answered(id.0, now, error);
        }
        if let AnyServer::Rooms(server) = &mut self.server {
            server.handle_cluster(now, input);
        }
    }

    /// A bus event: envelopes go to the core, reconnections to the log (the core counts
    /// what was lost from the envelopes' sequence numbers).
    pub fn handle_bus(&mut self, now: Instant, event: BusEvent) {
        match event {
            BusEvent::Message { payload, .. } => {
                self.handle_cluster(now, ClusterInput::Message { payload })
            }
            BusEvent::Reconnected { outage } => {
                tracing::info!(?outage, "cluster bus back: resubscribed");
            }
        }
    }

    fn cluster_output(&mut self, output: ClusterOutput) {
        let Some(link) = &self.cluster else {
            tracing::warn!(?output, "cluster output without a cluster link");
            return;
        };
        match output {
            ClusterOutput::Registry { id, request } => {
                self.telemetry.registry_sent(id.0, self.now);
                if let Err(error) = link.request(id, *request) {
                    let answer = ClusterInput::Answer {
                        id,
                        answer: Err::<_, Unavailable>(error),
                    };
                    self.handle_cluster(self.now, answer);
                }
            }
            ClusterOutput::Publish { room, payload } => {
                link.publish(room, payload);
            }
            ClusterOutput::Subscribe { rooms } => link.set_rooms(rooms),
        }
    }

    /// Feeds one input to the core (recording it, and what it caused, when asked to).
    pub fn handle(&mut self, now: Instant, input: Input<&[u8]>) {
        self.now = now;
        let Some(recorder) = &mut self.recorder else {
            return self.server.handle(now, input);
        };
        recorder.input(now, &input);
        self.server.handle(now, input);
        if recorder.records_outputs() {
            while let Some(output) = self.server.poll_output() {
                recorder.output(&output);
                self.recorded.push_back(output);
            }
        }
    }

    /// Moves the TCP commands collected since the last call into `into` (emptied
    /// first), in the order the core queued them.
    pub fn take_tcp_commands(&mut self, into: &mut Vec<(ConnId, ConnCmd)>) {
        into.clear();
        std::mem::swap(&mut self.tcp_commands, into);
    }

    /// Fires the core's timers if one is due at `now`, reports suppressed log lines, and
    /// logs the periodic summary when it is due (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.server.poll_timeout().is_some_and(|at| at <= now) {
            self.handle(now, Input::Timeout);
        }
        self.log.flush(now);
        if let Some(recorder) = &mut self.recorder {
            recorder.tick(now);
        }
        if let (Some(due), Some(every)) = (self.next_summary, self.stats_interval) {
            if due <= now {
                tracing::info!("{}", self.summary());
                // Skip the beats missed while the owner was busy instead of catching up.
                let mut next = due + every;
                while next <= now {
                    next += every;
                }
                self.next_summary = Some(next);
            }
        }
    }

    /// When [`Driver::handle_timeout`] is next due: the earliest of the core's deadline,
    /// the periodic summary and the end of a log window with lines left out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.server.poll_timeout(),
            self.next_summary,
            self.log.flush_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The one-line summary: the counters since start, then what the server holds now.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        format!(
            "stats: {} rooms={} members={} connections={} timers={}",
            self.stats(),
            counts.rooms,
            counts.members,
            counts.connections,
            counts.timers,
        )
    }

    /// Tells every member the server is going and closes every connection.
    pub fn shutdown(&mut self, now: Instant) {
        self.handle(now, Input::Shutdown);
        if let Some(recorder) = &mut self.recorder {
            recorder.flush();
        }
    }

    /// Works through the core's outputs: TCP commands are collected for
    /// [`Driver::take_tcp_commands`], events go to the log; returns the next datagram to
    /// send (destination in the socket's form), or `None` when nothing is left.
    pub fn poll_datagram(&mut self) -> Option<(SocketAddr, Bytes)> {
        if !self.staged.is_empty() {
            let (to, payload) = self.staged.remove(0);
            return Some((addr::to_socket(to, self.udp_local), payload));
        }
        loop {
            let output = match self.recorded.pop_front() {
                Some(output) => output,
                None => self.server.poll_output()?,
            };
            if let Some((to, payload)) = self.carry_out(output) {
                return Some((addr::to_socket(to, self.udp_local), payload));
            }
        }
    }

    /// Carries out an output that is not a datagram; gives a datagram back.
    fn carry_out(&mut self, output: Output) -> Option<(SocketAddr, Bytes)> {
        match output {
            Output::Datagram { to, payload } => return Some((to, payload)),
            Output::TcpSend { conn, data } => self.command(conn, ConnCmd::Send(data)),
            Output::TcpShutdownWrite { conn } => self.command(conn, ConnCmd::ShutdownWrite),
            Output::TcpClose { conn } => {
                let linger_until = self.now + self.server.config().linger;
                self.command(conn, ConnCmd::Close { linger_until });
            }
            Output::Event(event) => {
                self.telemetry.event(&event);
                self.log.log(self.now, &event)
            }
            Output::Cluster(output) => self.cluster_output(output),
        }
        None
    }

    /// The next datagrams to send, up to `max`, in the order [`Driver::poll_datagram`]
    /// gives them, carrying out the other outputs queued before them as it does; but left
    /// where they are queued (the core's queue, [`Machine::front_datagrams`]) and with
    /// the destination in the core's form: [`addr::to_socket`] maps it for the socket.
    /// Empty when nothing is left; possibly fewer than are queued. Say how many are done
    /// with [`Driver::datagrams_sent`] before asking again.
    pub fn front_datagrams(&mut self, max: usize) -> &[(SocketAddr, Bytes)] {
        if max == 0 {
            return &[];
        }
        while self.staged.is_empty() {
            // (asked twice: a slice returned from inside the loop would hold the
            // server borrowed for the rest of it; the second call is a look at the
            // queue's front, no copy)
            if self.recorded.is_empty() && !self.server.front_datagrams(max).is_empty() {
                return self.server.front_datagrams(max);
            }
            // What was recorded (or a server whose queue gives no runs): the outputs one
            // by one, as poll_datagram takes them, and a datagram sent from the staging
            // area, with the recorded datagrams right behind it.
            let output = match self.recorded.pop_front() {
                Some(output) => output,
                None => match self.server.poll_output() {
                    Some(output) => output,
                    None => return &[],
                },
            };
            if let Some(datagram) = self.carry_out(output) {
                self.staged.push(datagram);
                while self.staged.len() < max {
                    match self.recorded.pop_front() {
                        Some(Output::Datagram { to, payload }) => self.staged.push((to, payload)),
                        Some(output) => {
                            self.recorded.push_front(output);
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        &self.staged[..self.staged.len().min(max)]
    }

    /// The first `n` datagrams [`Driver::front_datagrams`] gave are done with: dropped.
    pub fn datagrams_sent(&mut self, n: usize) {
        if self.staged.is_empty() {
            self.server.datagrams_sent(n);
        } else {
            self.staged.drain(..n.min(self.staged.len()));
        }
    }

    /// The core, to look at (tests, admin views): its members, clients, limits.
    pub fn server(&self) -> &AnyServer {
        &self.server
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        self.server.stats()
    }

    /// What the core holds now: rooms, members, connections, queued outputs, timers.
    pub fn counts(&self) -> Counts {
        self.server.counts()
    }

    /// What the shell measured (see [`crate::metrics`]).
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// What the shell measured (see [`crate::metrics`]), to add to.
    pub fn telemetry_mut(&mut self) -> &mut Telemetry {
        &mut self.telemetry
    }

    /// After a datagram input: what the message there fanned out to, if one was relayed.
    pub fn note_fanout(&mut self, before: crate::metrics::FanoutMark) {
        self.telemetry.fanout(before, self.server.stats());
    }

    /// Everything the operator endpoints show, copied (see [`crate::metrics`]).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stats: self.stats().clone(),
            counts: self.counts(),
            telemetry: self.telemetry.measured(),
            link: self.cluster.as_ref().map(crate::metrics::link_counts),
            cluster: self.server.rooms().and_then(|s| s.cluster_stats().cloned()),
            registered: self
                .cluster
                .as_ref()
                .map(|_| self.server.rooms().is_some_and(|s| s.cluster_ready())),
        }
    }

    fn command(&mut self, conn: ConnId, cmd: ConnCmd) {
        self.tcp_commands.push((conn, cmd));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ocm_core::{Config, Protocol};

    fn driver(protocol: Protocol, stats_interval: Option<Duration>) -> Driver {
        let options = Options {
            protocol,
            stats_interval,
            ..Options::default()
        };
        Driver::new(&options, [7; 32], "127.0.0.1:9".parse().unwrap()).unwrap()
    }

    #[test]
    fn the_summary_is_a_deadline_of_its_own_and_moves_on_when_written() {
        let every = Duration::from_secs(60);
        let mut driver = driver(Protocol::Relay, Some(every));
        let first = driver
            .poll_timeout()
            .expect("an idle relay still has the summary");
        assert!(first > driver.now && first <= driver.now + every);
        driver.handle_timeout(first - Duration::from_millis(1));
        assert_eq!(driver.poll_timeout(), Some(first), "early: nothing happens");
        driver.handle_timeout(first);
        assert_eq!(driver.poll_timeout(), Some(first + every));
        // A late owner skips the missed beats instead of logging them all at once.
        driver.handle_timeout(first + 5 * every + Duration::from_secs(1));
        assert_eq!(driver.poll_timeout(), Some(first + 6 * every));
    }

    #[test]
    fn with_no_debug_log_a_dropped_datagram_is_counted_and_queues_nothing() {
        // no tracing subscriber in this test: debug lines are off, nothing records
        let mut driver = driver(Protocol::Rooms, None);
        let from = "127.0.0.1:5000".parse().unwrap();
        driver.handle(
            Instant::now(),
            Input::Datagram {
                from,
                data: b"junk",
            },
        );
        assert_eq!(driver.stats().dropped_total(), 1);
        assert_eq!(driver.counts().queued_outputs, 0);
        assert_eq!(driver.poll_datagram(), None);
    }

    /// A relay on an IPv6 socket with `clients` registered (verification off), each of
    /// whom said "hi": a notice per join and each message's fan-out queued. With `record`,
    /// its inputs and outputs are recorded there (so the outputs come from the recorder's
    /// queue, not the core's).
    fn busy_relay(clients: u16, record: Option<std::path::PathBuf>) -> Driver {
        let config = Config {
            relay_verify: false,
            ..Config::default()
        };
        let options = Options {
            protocol: Protocol::Relay,
            config,
            record: record.map(|path| crate::RecordOptions {
                path,
                max_bytes: 1 << 20,
                outputs: true,
            }),
            ..Options::default()
        };
        let mut driver = Driver::new(&options, [7; 32], "[::]:9".parse().unwrap()).unwrap();
        let now = Instant::now();
        for port in 0..clients {
            let from = format!("[::ffff:10.0.0.1]:{}", 4000 + port)
                .parse()
                .unwrap();
            let data = [&[2u8][..], b"u", &[b'a' + port as u8], b"hi"].concat();
            driver.handle(now, Input::Datagram { from, data: &data });
        }
        driver
    }

    /// Every datagram of `driver`, taken from the front at most 4 at a time and in
    /// the socket's form.
    fn taken_in_runs(driver: &mut Driver) -> Vec<(SocketAddr, Bytes)> {
        let local = driver.udp_local;
        let mut taken = Vec::new();
        loop {
            let front = driver.front_datagrams(4);
            assert!(front.len() <= 4, "at most max at a time");
            if front.is_empty() {
                return taken;
            }
            let n = front.len();
            taken.extend(
                front
                    .iter()
                    .map(|(to, p)| (addr::to_socket(*to, local), p.clone())),
            );
            driver.datagrams_sent(n);
        }
    }

    #[test]
    fn datagrams_polled_in_runs_are_those_polled_one_by_one_in_the_socket_form() {
        let mut one_by_one = Vec::new();
        let mut driver = busy_relay(6, None);
        while let Some(datagram) = driver.poll_datagram() {
            one_by_one.push(datagram);
        }
        let in_runs = taken_in_runs(&mut busy_relay(6, None));
        // and with the outputs recorded, which come from the driver's own queue
        let dir = std::env::temp_dir().join(format!("ocm-driver-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut recording = busy_relay(6, Some(dir.join("trace")));
        assert!(
            recording.counts().queued_outputs == 0,
            "the core's queue was drained"
        );
        let recorded = taken_in_runs(&mut recording);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(recorded, one_by_one);
        // each client's join notice and its "hi" go to those before it, events (the
        // joins) in between: 2 × (0 + 1 + ... + 5)
        assert_eq!(one_by_one.len(), 30);
        assert_eq!(in_runs, one_by_one);
        // the core's IPv4 destinations, mapped back for the IPv6 socket
        assert!(in_runs
            .iter()
            .all(|(to, _)| to.to_string().starts_with("[::ffff:10.0.0.1]")));
    }

    #[test]
    fn without_a_summary_an_idle_server_has_no_deadline() {
        let driver = driver(Protocol::Rooms, None);
        assert_eq!(driver.poll_timeout(), None);
        let summary = driver.summary();
        assert!(summary.starts_with("stats: received=0 "), "{summary}");
        assert!(
            summary.ends_with("rooms=0 members=0 connections=0 timers=0"),
            "{summary}"
        );
    }
}
