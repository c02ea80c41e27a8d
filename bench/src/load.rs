//! The loopback load generator: one sender and M receivers, a bounded window of messages
//! in flight, and one-way latency measured at the receivers.
//!
//! Each message carries its sequence number and send time as hex text (rooms relay
//! UTF-8 only). The sender keeps at most `window` messages ahead of the slowest
//! receiver, so the figure is a sustained delivery rate, not socket-buffer overflow; a
//! lost message holds the sender back only for a short grace, and losses are counted
//! at the end.

use polling::{Event, Events, Poller};
use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How messages are framed for the server under test.
pub trait Framing: Send + Sync + 'static {
    /// The datagram that carries `text` from the sender.
    fn encode(&self, text: &str) -> Vec<u8>;
    /// The message text inside a datagram a receiver got, or `None` if it is not a
    /// chat message (a notice, say).
    fn decode<'a>(&self, datagram: &'a [u8]) -> Option<&'a str>;
}

/// The sockets of one run: `sender` and every receiver connected to the server, the
/// receivers already registered.
pub struct Sockets {
    /// Sends every message.
    pub sender: UdpSocket,
    /// Receive every message.
    pub receivers: Vec<UdpSocket>,
}

/// Parameters of one run.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Messages to send after warm-up.
    pub messages: u64,
    /// Most messages ahead of the slowest receiver.
    pub window: u64,
    /// Message text size in bytes (at least 33).
    pub size: usize,
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Deliveries expected: messages × receivers.
    pub expected: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// From the first timed send to the last delivery.
    pub elapsed: Duration,
    /// Median one-way latency.
    pub p50: Duration,
    /// 99th percentile one-way latency.
    pub p99: Duration,
}

impl Report {
    /// Delivered datagrams per second.
    pub fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Fraction of expected deliveries that never arrived.
    pub fn loss(&self) -> f64 {
        1.0 - self.delivered as f64 / self.expected.max(1) as f64
    }
}

/// Longest a lost message holds the sender back.
const GRACE: Duration = Duration::from_millis(20);
/// A receiver that hears nothing for this long after the last send is done.
const QUIET: Duration = Duration::from_millis(500);
/// Every how many messages a latency sample is kept.
const SAMPLE_EVERY: u64 = 8;

/// The text of message `seq`: `m`, 16 hex digits of sequence, 16 of nanoseconds since
/// `epoch`, then padding to `size` bytes.
pub fn message(seq: u64, nanos: u64, size: usize) -> String {
    let mut text = format!("m{seq:016x}{nanos:016x}");
    let pad = size.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// Reads back what [`message`] wrote.
pub fn parse(text: &str) -> Option<(u64, u64)> {
    let rest = text.strip_prefix('m')?;
    let seq = u64::from_str_radix(rest.get(..16)?, 16).ok()?;
    let nanos = u64::from_str_radix(rest.get(16..32)?, 16).ok()?;
    Some((seq, nanos))
}

/// Shared between the sender and the receiving thread.
struct Progress {
    /// Messages every receiver has got, as counted by the slowest one.
    slowest: AtomicU64,
    /// The sender has sent everything.
    sent_all: AtomicBool,
}

/// Sends `load.messages` messages and measures their delivery.
pub fn run(load: Load, sockets: Sockets, framing: Arc<dyn Framing>) -> io::Result<Report> {
    let epoch = Instant::now();
    let progress = Arc::new(Progress {
        slowest: AtomicU64::new(0),
        sent_all: AtomicBool::new(false),
    });
    let receivers = sockets.receivers;
    let count = receivers.len() as u64;
    let receiving = {
        let (progress, framing) = (progress.clone(), framing.clone());
        std::thread::spawn(move || receive(receivers, &*framing, epoch, &progress))
    };
    let start = Instant::now();
    for seq in 0..load.messages {
        let held = Instant::now();
        while seq >= progress.slowest.load(Ordering::Acquire) + load.window
            && held.elapsed() < GRACE
        {
            std::thread::yield_now();
        }
        let nanos = epoch.elapsed().as_nanos() as u64;
        sockets
            .sender
            .send(&framing.encode(&message(seq, nanos, load.size)))?;
    }
    progress.sent_all.store(true, Ordering::Release);
    let outcome = receiving
        .join()
        .map_err(|_| io::Error::other("receiver thread panicked"))??;
    let mut samples = outcome.latencies;
    samples.sort_unstable();
    let quantile = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
        samples
            .get(i)
            .map_or(Duration::ZERO, |n| Duration::from_nanos(*n))
    };
    Ok(Report {
        expected: load.messages * count,
        delivered: outcome.delivered,
        elapsed: outcome.last.saturating_duration_since(start),
        p50: quantile(0.50),
        p99: quantile(0.99),
    })
}

struct Received {
    delivered: u64,
    latencies: Vec<u64>,
    last: Instant,
}

fn receive(
    receivers: Vec<UdpSocket>,
    framing: &dyn Framing,
    epoch: Instant,
    progress: &Progress,
) -> io::Result<Received> {
    let poller = Poller::new()?;
    for (key, socket) in receivers.iter().enumerate() {
        socket.set_nonblocking(true)?;
        poller_add(&poller, socket, key)?;
    }
    let mut counts = vec![0u64; receivers.len()];
    let mut received = Received {
        delivered: 0,
        latencies: Vec::new(),
        last: Instant::now(),
    };
    let mut events = Events::new();
    let mut buf = [0u8; 4097];
    loop {
        events.clear();
        poller.wait(&mut events, Some(Duration::from_millis(50)))?;
        let now = Instant::now();
        for event in events.iter() {
            let socket = &receivers[event.key];
            loop {
                let len = match socket.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                };
                let Some((seq, nanos)) = framing.decode(&buf[..len]).and_then(parse) else {
                    continue;
                };
                counts[event.key] += 1;
                received.delivered += 1;
                received.last = now;
                if seq % SAMPLE_EVERY == 0 {
                    let at = now.saturating_duration_since(epoch).as_nanos() as u64;
                    received.latencies.push(at.saturating_sub(nanos));
                }
            }
            poller.modify(socket, Event::readable(event.key))?;
        }
        let slowest = counts.iter().copied().min().unwrap_or(0);
        progress.slowest.store(slowest, Ordering::Release);
        if progress.sent_all.load(Ordering::Acquire) && now.duration_since(received.last) > QUIET {
            break;
        }
    }
    for socket in &receivers {
        poller.delete(socket)?;
    }
    Ok(received)
}

#[allow(unsafe_code)]
fn poller_add(poller: &Poller, socket: &UdpSocket, key: usize) -> io::Result<()> {
    // SAFETY: the socket is deleted from the poller before it is dropped (end of `receive`).
    unsafe { poller.add(socket, Event::readable(key)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips_and_pads() {
        let text = message(42, 7, 100);
        assert_eq!(text.len(), 100);
        assert_eq!(parse(&text), Some((42, 7)));
        assert_eq!(parse("x0000"), None);
    }
}
