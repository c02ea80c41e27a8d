//! Recorded traces: every input a server received, with its time, in a compact
//! versioned format, and [`replay`], which feeds them through a fresh server.
//!
//! Because the core is deterministic (time and randomness are inputs), the seed, the
//! configuration and the inputs with their times are all it takes to run a server
//! again exactly as it ran: a session from the field becomes a test. A trace may also
//! hold the outputs each input caused; [`replay`] then checks that the server still
//! produces exactly those.
//!
//! The format (all integers unsigned LEB128 varints unless said otherwise):
//!
//! ```text
//! trace   = header record*
//! header  = "OCMTRACE" version:u8(=1) protocol:u8(0 rooms, 1 relay)
//!           flags:u8(bit 0: outputs recorded) seed:[u8; 32]
//!           fields:varint (name_len:u8 name value:varint)*      -- Config::fields
//! record  = 0x01 at:varint(ns since the first input) input
//!         | 0x02 output                                          -- after its input
//! input   = 0 conn addr | 1 conn bytes | 2 conn | 3 addr bytes | 4 addr | 5 | 6 | 7 addr
//!           (TcpAccepted, TcpData, TcpClosed, Datagram, SendFailed refused, Timeout,
//!            Shutdown, SendFailed by ICMP)
//! output  = 0 conn bytes | 1 conn | 2 conn | 3 addr bytes | 4 bytes(event, as text)
//!           (TcpSend, TcpShutdownWrite, TcpClose, Datagram, Event)
//! addr    = 4 [u8; 4] port:u16be | 6 [u8; 16] port:u16be
//! bytes   = len:varint [u8; len]
//! ```
//!
//! A trace cut short at a record boundary (a recording that stopped at its size limit)
//! is a valid trace of a shorter run. A trace holds tokens and messages: keep it as
//! private as the server's memory.

use crate::config::Config;
use crate::input::{Input, SendFailure};
use crate::invariants;
use crate::machine::{AnyServer, Machine, Protocol};
use crate::output::{ConnId, DropReason, Event, Output};
use crate::stats::Stats;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The first bytes of every trace.
pub const MAGIC: &[u8; 8] = b"OCMTRACE";
/// The format version written and read.
pub const VERSION: u8 = 1;

const TAG_INPUT: u8 = 1;
const TAG_OUTPUT: u8 = 2;

/// What a trace starts with: everything a server needs besides its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Rooms or relay.
    pub protocol: Protocol,
    /// Whether each input is followed by the outputs it caused.
    pub outputs: bool,
    /// The seed the recorded server was created with.
    pub seed: [u8; 32],
    /// Its limits.
    pub config: Config,
}

/// Why a trace could not be read or replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// Not a trace: the magic bytes are missing.
    NotATrace,
    /// A version this build does not read.
    Version(u8),
    /// The bytes end inside a record, or a field is malformed; the offset is given.
    Malformed(usize),
    /// The configuration names an unknown field or an invalid value.
    Config(String),
    /// The replayed server broke a property after the input at this index.
    Violation {
        /// Index of the input (0 for the first).
        input: usize,
        /// What broke.
        what: String,
    },
    /// The replayed server's outputs differ from the recorded ones after this input.
    Mismatch {
        /// Index of the input.
        input: usize,
        /// The input, as debug text.
        what: String,
    },
    /// Compare was asked for, but the trace holds no outputs.
    NoOutputs,
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::NotATrace => f.write_str("not an ocm trace (no OCMTRACE header)"),
            TraceError::Version(v) => {
                write!(f, "trace format version {v}; this build reads {VERSION}")
            }
            TraceError::Malformed(at) => write!(f, "malformed trace at byte {at}"),
            TraceError::Config(what) => write!(f, "trace configuration: {what}"),
            TraceError::Violation { input, what } => {
                write!(f, "after input {input}: {what}")
            }
            TraceError::Mismatch { input, what } => {
                write!(
                    f,
                    "outputs differ from the recording after input {input}: {what}"
                )
            }
            TraceError::NoOutputs => f.write_str("the trace has no recorded outputs to compare"),
        }
    }
}

impl std::error::Error for TraceError {}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Appends the header.
pub fn encode_header(header: &Header, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(match header.protocol {
        Protocol::Rooms => 0,
        Protocol::Relay => 1,
    });
    out.push(u8::from(header.outputs));
    out.extend_from_slice(&header.seed);
    let fields = header.config.fields();
    put_varint(out, fields.len() as u64);
    for (name, value) in fields {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        put_varint(out, value);
    }
}

/// Appends one input record, `at` after the first input.
pub fn encode_input(at: Duration, input: &Input<&[u8]>, out: &mut Vec<u8>) {
    out.push(TAG_INPUT);
    put_varint(out, u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
    match *input {
        Input::TcpAccepted { conn, peer } => {
            out.push(0);
            put_varint(out, conn.0);
            put_addr(out, peer);
        }
        Input::TcpData { conn, data } => {
            out.push(1);
            put_varint(out, conn.0);
            put_bytes(out, data);
        }
        Input::TcpClosed { conn } => {
            out.push(2);
            put_varint(out, conn.0);
        }
        Input::Datagram { from, data } => {
            out.push(3);
            put_addr(out, from);
            put_bytes(out, data);
        }
        Input::SendFailed { to, cause } => {
            out.push(match cause {
                SendFailure::Refused => 4,
                SendFailure::Icmp => 7,
            });
            put_addr(out, to);
        }
        Input::Timeout => out.push(5),
        Input::Shutdown => out.push(6),
    }
}

/// Appends one output record (events as their debug text).
pub fn encode_output(output: &Output, out: &mut Vec<u8>) {
    out.push(TAG_OUTPUT);
    match output {
        Output::TcpSend { conn, data } => {
            out.push(0);
            put_varint(out, conn.0);
            put_bytes(out, data);
        }
        Output::TcpShutdownWrite { conn } => {
            out.push(1);
            put_varint(out, conn.0);
        }
        Output::TcpClose { conn } => {
            out.push(2);
            put_varint(out, conn.0);
        }
        Output::Datagram { to, payload } => {
            out.push(3);
            put_addr(out, *to);
            put_bytes(out, payload);
        }
        Output::Event(event) => {
            out.push(4);
            put_bytes(out, format!("{event:?}").as_bytes());
        }
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An input and its time after the first input.
    Input(Duration, Input<&'a [u8]>),
    /// The bytes of one output record as written (compared byte for byte).
    Output(&'a [u8]),
}

/// Reads a trace: [`TraceReader::new`] parses the header, then records one by one.
#[derive(Debug)]
pub struct TraceReader<'a> {
    bytes: &'a [u8],
    at: usize,
    header: Header,
}

impl<'a> TraceReader<'a> {
    /// Parses the header.
    pub fn new(bytes: &'a [u8]) -> Result<TraceReader<'a>, TraceError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(TraceError::NotATrace);
        }
        let mut reader = TraceReader {
            bytes,
            at: MAGIC.len(),
            header: Header {
                protocol: Protocol::Rooms,
                outputs: false,
                seed: [0; 32],
                config: Config::default(),
            },
        };
        let version = reader.u8()?;
        if version != VERSION {
            return Err(TraceError::Version(version));
        }
        reader.header.protocol = match reader.u8()? {
            0 => Protocol::Rooms,
            1 => Protocol::Relay,
            _ => return Err(TraceError::Malformed(reader.at - 1)),
        };
        reader.header.outputs = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err(TraceError::Malformed(reader.at - 1)),
        };
        reader.header.seed = reader.take(32)?.try_into().expect("32 bytes");
        let fields = reader.varint()?;
        for _ in 0..fields {
            let len = usize::from(reader.u8()?);
            let name = std::str::from_utf8(reader.take(len)?)
                .map_err(|_| TraceError::Malformed(reader.at))?;
            let value = reader.varint()?;
            if !reader.header.config.set_field(name, value) {
                return Err(TraceError::Config(format!("{name} = {value}")));
            }
        }
        reader
            .header
            .config
            .validate()
            .map_err(|e| TraceError::Config(e.to_string()))?;
        Ok(reader)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, TraceError> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let start = self.at;
        match self.u8()? {
            TAG_INPUT => {
                let at = Duration::from_nanos(self.varint()?);
                let input = match self.u8()? {
                    0 => Input::TcpAccepted {
                        conn: self.conn()?,
                        peer: self.addr()?,
                    },
                    1 => Input::TcpData {
                        conn: self.conn()?,
                        data: self.bytes()?,
                    },
                    2 => Input::TcpClosed { conn: self.conn()? },
                    3 => Input::Datagram {
                        from: self.addr()?,
                        data: self.bytes()?,
                    },
                    4 => Input::SendFailed {
                        to: self.addr()?,
                        cause: SendFailure::Refused,
                    },
                    7 => Input::SendFailed {
                        to: self.addr()?,
                        cause: SendFailure::Icmp,
                    },
                    5 => Input::Timeout,
                    6 => Input::Shutdown,
                    _ => return Err(TraceError::Malformed(self.at - 1)),
                };
                Ok(Some(Record::Input(at, input)))
            }
            TAG_OUTPUT => {
                match self.u8()? {
                    0 => {
                        self.conn()?;
                        self.bytes()?;
                    }
                    1 | 2 => {
                        self.conn()?;
                    }
                    3 => {
                        self.addr()?;
                        self.bytes()?;
                    }
                    4 => {
                        self.bytes()?;
                    }
                    _ => return Err(TraceError::Malformed(self.at - 1)),
                }
                Ok(Some(Record::Output(&self.bytes[start..self.at])))
            }
            _ => Err(TraceError::Malformed(start)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TraceError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(TraceError::Malformed(self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, TraceError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, TraceError> {
        let start = self.at;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TraceError::Malformed(start))
    }

    fn conn(&mut self) -> Result<ConnId, TraceError> {
        Ok(ConnId(self.varint()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], TraceError> {
        let len = usize::try_from(self.varint()?).map_err(|_| TraceError::Malformed(self.at))?;
        self.take(len)
    }

    fn addr(&mut self) -> Result<SocketAddr, TraceError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).unwrap())),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.take(16)?).unwrap(),
            )),
            _ => return Err(TraceError::Malformed(self.at - 1)),
        };
        let port = u16::from_be_bytes(self.take(2)?.try_into().unwrap());
        Ok(SocketAddr::new(ip, port))
    }
}

/// What a replay went through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inputs fed.
    pub inputs: u64,
    /// Output records compared (0 without compare).
    pub outputs_compared: u64,
    /// Time from the first input to the last.
    pub span: Duration,
    /// Rooms created.
    pub rooms_created: u64,
    /// Members joined (relay mode: clients registered).
    pub members_joined: u64,
    /// The most members held at once.
    pub peak_members: usize,
    /// The server's counters at the end.
    pub stats: Stats,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "inputs={} over {:.3} s, outputs compared={}",
            self.inputs,
            self.span.as_secs_f64(),
            self.outputs_compared
        )?;
        writeln!(
            f,
            "rooms created={} members joined={} peak members={}",
            self.rooms_created, self.members_joined, self.peak_members
        )?;
        let s = &self.stats;
        writeln!(
            f,
            "datagrams received={} relayed={} sent={} keepalives={} evictions={} send failures={}",
            s.datagrams_received,
            s.messages_relayed,
            s.datagrams_sent,
            s.keepalives,
            s.evictions,
            s.send_failures
        )?;
        write!(f, "dropped={}", s.dropped_total())?;
        for reason in DropReason::ALL {
            if s.dropped(reason) > 0 {
                write!(f, " {reason}={}", s.dropped(reason))?;
            }
        }
        Ok(())
    }
}

/// Feeds every input of `trace` to a fresh server made from its header, checking
/// [`invariants::check_step`] after every one; with `compare`, the outputs of each
/// input must be byte for byte the ones recorded after it.
pub fn replay(trace: &[u8], compare: bool) -> Result<Summary, TraceError> {
    let mut reader = TraceReader::new(trace)?;
    let header = reader.header().clone();
    if compare && !header.outputs {
        return Err(TraceError::NoOutputs);
    }
    let mut server = AnyServer::new(header.protocol, header.config, header.seed)
        .map_err(|e| TraceError::Config(e.to_string()))?;
    let base = Instant::now();
    let mut summary = Summary::default();
    let mut outputs = Vec::new();
    let mut expected: Vec<u8> = Vec::new();
    let mut produced: Vec<u8> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let check = |pending: &Option<(usize, String)>, expected: &[u8], produced: &[u8]| match pending
    {
        Some((input, what)) if compare && expected != produced => Err(TraceError::Mismatch {
            input: *input,
            what: what.clone(),
        }),
        _ => Ok(()),
    };
    while let Some(record) = reader.next_record()? {
        match record {
            Record::Output(bytes) => {
                expected.extend_from_slice(bytes);
                summary.outputs_compared += u64::from(compare);
            }
            Record::Input(at, input) => {
                check(&pending, &expected, &produced)?;
                expected.clear();
                produced.clear();
                let index = summary.inputs as usize;
                let what = format!("{input:?}");
                invariants::step(&mut server, base + at, input, &mut outputs)
                    .map_err(|what| TraceError::Violation { input: index, what })?;
                for output in &outputs {
                    encode_output(output, &mut produced);
                    match output {
                        Output::Event(Event::RoomCreated { .. }) => summary.rooms_created += 1,
                        Output::Event(Event::MemberJoined { .. }) => summary.members_joined += 1,
                        _ => {}
                    }
                }
                summary.peak_members = summary.peak_members.max(server.counts().members);
                summary.inputs += 1;
                summary.span = at;
                pending = Some((index, what));
            }
        }
    }
    check(&pending, &expected, &produced)?;
    summary.stats = server.stats().clone();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(protocol: Protocol) -> Header {
        Header {
            protocol,
            outputs: true,
            seed: [5; 32],
            config: Config {
                idle_timeout: Duration::from_secs(7),
                ..Config::default()
            },
        }
    }

    /// Records `inputs` through a live server, as a shell does, outputs included.
    fn record(protocol: Protocol, inputs: &[(u64, Input<&[u8]>)]) -> Vec<u8> {
        let header = header(protocol);
        let mut out = Vec::new();
        encode_header(&header, &mut out);
        let mut server = AnyServer::new(protocol, header.config, header.seed).unwrap();
        let base = Instant::now();
        for (ms, input) in inputs {
            let at = Duration::from_millis(*ms);
            encode_input(at, input, &mut out);
            server.handle(base + at, input.clone());
            while let Some(output) = server.poll_output() {
                encode_output(&output, &mut out);
            }
        }
        out
    }

    fn relay_session() -> Vec<(u64, Input<&'static [u8]>)> {
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::2]:4000".parse().unwrap();
        vec![
            (
                0,
                Input::Datagram {
                    from: a,
                    data: b"\x05alice",
                },
            ),
            (
                5,
                Input::Datagram {
                    from: b,
                    data: b"\x03bobhi alice",
                },
            ),
            (
                9,
                Input::SendFailed {
                    to: b,
                    cause: SendFailure::Refused,
                },
            ),
            (
                10,
                Input::SendFailed {
                    to: b,
                    cause: SendFailure::Icmp,
                },
            ),
            (8_000, Input::Timeout),
            (
                8_001,
                Input::TcpAccepted {
                    conn: ConnId(3),
                    peer: a,
                },
            ),
            (8_002, Input::Shutdown),
        ]
    }

    #[test]
    fn a_recorded_session_replays_with_identical_outputs() {
        let trace = record(Protocol::Relay, &relay_session());
        let summary = replay(&trace, true).unwrap();
        assert_eq!(summary.inputs, 7);
        assert_eq!(summary.members_joined, 2);
        assert_eq!(summary.stats.messages_relayed, 1);
        assert_eq!(summary.stats.evictions, 2, "both idle after 7 s");
        assert!(summary.outputs_compared > 0);
        assert_eq!(summary.span, Duration::from_millis(8_002));
    }

    #[test]
    fn the_header_and_every_input_read_back_as_written() {
        let trace = record(Protocol::Relay, &relay_session());
        let mut reader = TraceReader::new(&trace).unwrap();
        assert_eq!(reader.header(), &header(Protocol::Relay));
        let mut inputs = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            if let Record::Input(at, input) = record {
                inputs.push((at.as_millis() as u64, input));
            }
        }
        assert_eq!(inputs, relay_session());
    }

    #[test]
    fn a_changed_output_is_caught_with_the_input_that_caused_it() {
        let mut trace = record(Protocol::Relay, &relay_session());
        // bob's relayed line is the only copy of "hi alice" in the trace's outputs.
        let last = trace.len() - 8;
        let at = trace[..last]
            .windows(8)
            .rposition(|w| w == b"hi alice")
            .unwrap();
        trace[at] = b'H';
        assert_eq!(
            replay(&trace, false).map(|_| ()),
            Ok(()),
            "inputs alone still replay"
        );
        let err = replay(&trace, true).unwrap_err();
        assert!(
            matches!(err, TraceError::Mismatch { input: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors_not_panics() {
        let trace = record(Protocol::Rooms, &[(0, Input::Timeout)]);
        assert_eq!(
            TraceReader::new(b"hello").unwrap_err(),
            TraceError::NotATrace
        );
        let mut old = trace.clone();
        old[8] = 99;
        assert_eq!(TraceReader::new(&old).unwrap_err(), TraceError::Version(99));
        for cut in 0..trace.len() {
            let _ = replay(&trace[..cut], false);
        }
        let mut junk = trace.clone();
        junk.extend_from_slice(&[1, 0xff, 0xff]);
        assert!(matches!(
            replay(&junk, false),
            Err(TraceError::Malformed(_))
        ));
        // Outputs recorded, none caused: compare holds. Without them, it cannot run.
        assert!(replay(&trace, true).is_ok());
        let mut inputs_only = Vec::new();
        let header = Header {
            outputs: false,
            ..header(Protocol::Rooms)
        };
        encode_header(&header, &mut inputs_only);
        assert_eq!(
            replay(&inputs_only, true).unwrap_err(),
            TraceError::NoOutputs
        );
    }
}
