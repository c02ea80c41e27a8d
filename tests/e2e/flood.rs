//! A flood of 100 000 junk datagrams while 8 members chat: every message reaches every
//! member, the server sends nothing to the junk sockets (no amplification) nor anything
//! beyond the chat, every junk datagram is counted as a drop with its reason, and what
//! the core holds (rooms, members, connections, queued outputs, timers) stays bounded.
//!
//! The flood is paced by the server itself: the sender keeps at most [`IN_FLIGHT`] junk
//! datagrams ahead of the server's drop counter, so the kernel's receive buffer (about
//! 200 KiB by default on Linux) never overflows and the test is deterministic. Without
//! pacing the kernel drops datagrams, members' messages included; the figures are in
//! the report this test prints.

use crate::common::hostile::{ip_available, pending_datagrams, udp_rcvbuf_errors, Rng};
use crate::common::{raw, Runtime, TestClient, TestServer, WAIT};
use ocm_core::{Counts, DropReason};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(junk_floods_change_nothing_for_the_members);

/// Junk datagrams sent in one test.
const JUNK: usize = 100_000;
/// Chat messages sent during the flood, each to 7 receivers.
const MESSAGES: usize = 160;
/// Most junk datagrams sent and not yet counted by the server.
const IN_FLIGHT: usize = 32;
const ROOM: &str = "flood";

/// The kinds of junk, sent in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Junk {
    /// 0..=512 random bytes.
    Random,
    /// Valid framing, the real room, a well-formed token nobody was given.
    WrongToken,
    /// Valid framing, a room that does not exist.
    UnknownRoom,
    /// 4097..=5096 random bytes.
    Oversize,
    /// Size fields promising more than the datagram holds.
    Truncated,
    /// A real member's token from its own IP (another port), message not UTF-8.
    NotUtf8,
    /// A real member's token from another IP (127.0.0.2).
    Stolen,
    /// The real token in upper case: malformed.
    UpperCaseToken,
}

const KINDS: [Junk; 8] = [
    Junk::Random,
    Junk::WrongToken,
    Junk::UnknownRoom,
    Junk::Oversize,
    Junk::Truncated,
    Junk::NotUtf8,
    Junk::Stolen,
    Junk::UpperCaseToken,
];

fn junk(kind: Junk, rng: &mut Rng, token: &[u8]) -> Vec<u8> {
    match kind {
        Junk::Random => {
            let len = rng.below(513);
            rng.bytes(len)
        }
        Junk::WrongToken => raw::room_datagram(ROOM, &rng.token(), "let me in"),
        Junk::UnknownRoom => {
            let room = format!("nowhere-{}", rng.below(1000));
            raw::room_datagram(&room, &rng.token(), "hello?")
        }
        Junk::Oversize => {
            let len = 4097 + rng.below(1000);
            let mut data = raw::room_datagram(ROOM, token, "");
            data.resize(len, b'a');
            data
        }
        Junk::Truncated => {
            let mut data = raw::room_datagram(ROOM, token, "");
            data.truncate(2 + rng.below(ROOM.len() + token.len() - 1));
            data
        }
        Junk::NotUtf8 => {
            let mut data = raw::room_datagram(ROOM, token, "");
            data.extend_from_slice(&[b'x', 0xff, 0xfe, 0xc0]);
            data
        }
        Junk::Stolen => raw::room_datagram(ROOM, token, "I am raw now"),
        Junk::UpperCaseToken => raw::room_datagram(ROOM, &token.to_ascii_uppercase(), "hi"),
    }
}

/// One member: a real client, or the raw one whose token the junk abuses.
enum Member {
    Client(TestClient),
    Raw { socket: UdpSocket, token: Vec<u8> },
}

impl Member {
    fn name(&self) -> &str {
        match self {
            Member::Client(c) => c.name(),
            Member::Raw { .. } => "raw",
        }
    }

    fn say(&self, text: &str, server: SocketAddr) {
        match self {
            Member::Client(c) => c.say(text),
            Member::Raw { socket, token } => {
                socket
                    .send_to(&raw::room_datagram(ROOM, token, text), server)
                    .unwrap();
            }
        }
    }

    fn line(&self) -> String {
        match self {
            Member::Client(c) => c.line(),
            Member::Raw { socket, .. } => raw::recv_text(socket),
        }
    }
}

/// What the flood thread measured.
struct FloodReport {
    sent: [usize; KINDS.len()],
    max: Counts,
    pauses: usize,
    elapsed: Duration,
}

fn junk_floods_change_nothing_for_the_members(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let thief_ip = ip_available("127.0.0.2");
    if !thief_ip {
        eprintln!("note: cannot bind 127.0.0.2; stolen-token junk is sent as wrong tokens");
    }

    // 7 real clients and one raw member, in join order. No liveness probes: then every
    // datagram the server sends is a line a member reads.
    let quiet = |operation, name: &str| {
        let mut options = server.target(operation, ROOM, name, None);
        options.liveness = false;
        Member::Client(server.client(options))
    };
    let mut members = vec![quiet(ocm_core::Operation::Create, "m0")];
    for i in 1..7 {
        members.push(quiet(ocm_core::Operation::Join, &format!("m{i}")));
    }
    let socket = raw::udp("127.0.0.1").unwrap();
    let port = socket.local_addr().unwrap().port();
    let token = raw::handshake(server.tcp(), raw::JOIN, ROOM, "raw", "", Some(port)).unwrap();
    server.wait_known(ROOM, "raw");
    members.push(Member::Raw { socket, token });
    let mut lines_received = 0;
    for (i, member) in members.iter().enumerate().take(7) {
        for later in members.iter().skip(i + 1) {
            assert_eq!(member.line(), format!("* {} joined", later.name()));
            lines_received += 1;
        }
    }
    let Member::Raw { token, .. } = &members[7] else {
        unreachable!()
    };
    let token = token.clone();
    let rcvbuf_errors_before = udp_rcvbuf_errors();

    // The flood, on its own thread, paced by the server's drop counter.
    let progress = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (inspector, to, progress) = (server.inspector(), server.udp, progress.clone());
        thread::spawn(move || {
            let sockets: Vec<UdpSocket> = (0..3).map(|_| raw::udp("127.0.0.1").unwrap()).collect();
            let thief = thief_ip.then(|| raw::udp("127.0.0.2").unwrap());
            let mut rng = Rng::new(0x0c3_f100d);
            let mut report = FloodReport {
                sent: [0; KINDS.len()],
                max: Counts::default(),
                pauses: 0,
                elapsed: Duration::ZERO,
            };
            let start = Instant::now();
            let mut counted = 0;
            for i in 0..JUNK {
                let mut kind = KINDS[i % KINDS.len()];
                if kind == Junk::Stolen && thief.is_none() {
                    kind = Junk::WrongToken;
                }
                let data = junk(kind, &mut rng, &token);
                let socket = match kind {
                    Junk::Stolen => thief.as_ref().unwrap(),
                    _ => &sockets[i % sockets.len()],
                };
                socket.send_to(&data, to).unwrap();
                report.sent[KINDS.iter().position(|k| *k == kind).unwrap()] += 1;
                progress.store(i + 1, Ordering::Relaxed);
                // Wait until the server has caught up to within IN_FLIGHT datagrams.
                let give_up = Instant::now() + WAIT;
                while i + 1 - counted >= IN_FLIGHT {
                    let (dropped, counts) = crate::common::hostile::ask(&inspector, |d| {
                        (d.stats().dropped_total() as usize, d.counts())
                    });
                    counted = dropped;
                    let max = &mut report.max;
                    max.rooms = max.rooms.max(counts.rooms);
                    max.members = max.members.max(counts.members);
                    max.connections = max.connections.max(counts.connections);
                    max.queued_outputs = max.queued_outputs.max(counts.queued_outputs);
                    max.timers = max.timers.max(counts.timers);
                    report.pauses += 1;
                    assert!(
                        Instant::now() < give_up,
                        "the server counted {counted} of {} junk datagrams and no more \
                         within {WAIT:?}: lost by the kernel, or not counted",
                        i + 1
                    );
                }
            }
            report.elapsed = start.elapsed();
            (report, sockets, thief)
        })
    };

    // The chat, spread over the flood: message k waits until k/MESSAGES of it is sent.
    for k in 0..MESSAGES {
        let due = k * JUNK / MESSAGES;
        let give_up = Instant::now() + WAIT;
        while progress.load(Ordering::Relaxed) < due && !flood.is_finished() {
            assert!(Instant::now() < give_up, "the flood stalled");
            thread::sleep(Duration::from_micros(200));
        }
        let speaker = &members[k % members.len()];
        let text = format!("message {k} from {}", speaker.name());
        speaker.say(&text, server.udp);
        let expected = format!("{}: {text}", speaker.name());
        for listener in members.iter().filter(|m| m.name() != speaker.name()) {
            assert_eq!(
                listener.line(),
                expected,
                "{} missed or misread a line",
                listener.name()
            );
            lines_received += 1;
        }
    }
    let (report, sockets, thief) = flood.join().expect("the flood thread");
    let rcvbuf_errors_after = udp_rcvbuf_errors();

    // Everything the server ever sent went to members, as the lines they read.
    let inspector = server.inspector();
    crate::common::hostile::wait_for(&inspector, "all junk counted", |d| {
        d.stats().dropped_total() as usize >= JUNK
    });
    let (stats, counts) = server.ask(|d| (d.stats().clone(), d.counts()));
    for socket in sockets.iter().chain(&thief) {
        assert_eq!(pending_datagrams(socket), 0, "the server answered junk");
    }
    for member in &members {
        if let Member::Raw { socket, .. } = member {
            assert_eq!(pending_datagrams(socket), 0, "raw got more than the chat");
        }
    }
    assert_eq!(
        stats.datagrams_sent as usize, lines_received,
        "the server sent exactly the lines the members read: nothing to anyone else"
    );
    assert_eq!(stats.messages_relayed as usize, MESSAGES);

    // Every junk datagram is a counted drop, with the reason its kind must give.
    let sent = |kind| report.sent[KINDS.iter().position(|k| *k == kind).unwrap()] as u64;
    assert_eq!(stats.dropped_total(), JUNK as u64, "{stats:?}");
    assert_eq!(stats.dropped(DropReason::TooLarge), sent(Junk::Oversize));
    assert_eq!(stats.dropped(DropReason::NotUtf8), sent(Junk::NotUtf8));
    assert_eq!(stats.dropped(DropReason::WrongAddress), sent(Junk::Stolen));
    assert!(stats.dropped(DropReason::Truncated) >= sent(Junk::Truncated));
    assert!(stats.dropped(DropReason::UnknownRoom) >= sent(Junk::UnknownRoom));
    assert!(
        stats.dropped(DropReason::UnknownToken)
            >= sent(Junk::WrongToken) + sent(Junk::UpperCaseToken)
    );

    // What the core holds never grew with the flood.
    let max = report.max;
    assert_eq!((max.rooms, max.members), (1, 8), "{max:?}");
    assert!(max.connections <= 8, "{max:?}");
    assert!(max.queued_outputs <= 16, "{max:?}");
    assert!(max.timers <= 2 * (8 + 8) + 64, "{max:?}");
    assert_eq!(
        (counts.rooms, counts.members, counts.connections),
        (1, 8, 0)
    );
    let members_now = server.ask(|d| d.server().rooms().unwrap().members_of(ROOM).unwrap());
    let raw_now = members_now.iter().find(|m| &*m.username == "raw").unwrap();
    let Member::Raw { socket, .. } = &members[7] else {
        unreachable!()
    };
    assert_eq!(
        raw_now.udp,
        Some(socket.local_addr().unwrap()),
        "junk moved raw"
    );

    let rate = JUNK as f64 / report.elapsed.as_secs_f64();
    let kernel = match (rcvbuf_errors_before, rcvbuf_errors_after) {
        (Some(a), Some(b)) => format!("{} (system-wide RcvbufErrors)", b - a),
        _ => "unknown".into(),
    };
    eprintln!(
        "flood ({runtime:?}): {JUNK} junk datagrams in {:.2?} ({rate:.0}/s, {} pauses at {IN_FLIGHT} \
         in flight), all counted as drops; {MESSAGES} messages, {lines_received} lines delivered, \
         0 lost; replies to junk: 0; max held: {max:?}; kernel drops meanwhile: {kernel}",
        report.elapsed, report.pauses,
    );
}
