//! The simulated network: packets in flight, ordered by delivery time, with faults.
//!
//! UDP datagrams may be lost, duplicated, delayed (and so reordered), corrupted (bit
//! flips or truncation), or cut off by a partition of their host. TCP is reliable and in
//! order per direction, but each write is split into random chunks that arrive at
//! random later times; a connection can be reset, which discards what is in flight.
//! Every random choice comes from the caller's seeded generator, so a run is a pure
//! function of its seed. Times are offsets from the start of the run.
//!
//! ```
//! use ocm_sim::net::{Faults, Net, Packet};
//! use rand_core::SeedableRng;
//! use std::time::Duration;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let mut net = Net::new(Faults::perfect());
//! let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
//! net.send_udp(&mut rng, Duration::ZERO, a, b, bytes::Bytes::from_static(b"hi"));
//! let due = net.next_due().unwrap();
//! assert!(matches!(net.pop_due(due), Some(Packet::Udp { .. })));
//! ```

use bytes::Bytes;
use ocm_core::ConnId;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A uniform draw in `0..n` (`n > 0`).
pub fn below(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// True with probability `per_mille / 1000`.
pub fn chance(rng: &mut ChaCha20Rng, per_mille: u16) -> bool {
    per_mille > 0 && below(rng, 1000) < u64::from(per_mille)
}

/// How hostile the network is. Probabilities are per mille, per datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Datagram lost.
    pub loss: u16,
    /// Datagram delivered twice.
    pub duplicate: u16,
    /// Datagram damaged: bits flipped or the tail cut off.
    pub corrupt: u16,
    /// Datagrams on one path may overtake each other.
    pub reorder: bool,
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay.
    pub max_delay: Duration,
}

impl Faults {
    /// No loss, no duplicates, no damage, FIFO per path.
    pub fn perfect() -> Faults {
        Faults {
            loss: 0,
            duplicate: 0,
            corrupt: 0,
            reorder: false,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(40),
        }
    }

    /// True when nothing is ever lost or damaged (partitions are ignored too).
    pub fn is_perfect(&self) -> bool {
        self.loss == 0 && self.duplicate == 0 && self.corrupt == 0 && !self.reorder
    }
}

/// TCP data or end of stream, in one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Bytes.
    Data(Bytes),
    /// The sender will write no more (FIN): shutdown of the write side, or close.
    Fin,
}

/// Something arriving somewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// A datagram.
    Udp {
        /// Source.
        from: SocketAddr,
        /// Destination.
        to: SocketAddr,
        /// Bytes as they arrive (possibly damaged).
        payload: Bytes,
        /// True if the network damaged it.
        corrupted: bool,
    },
    /// A TCP segment on a connection.
    Tcp {
        /// The connection.
        conn: ConnId,
        /// Client to server, or server to client.
        to_server: bool,
        /// What arrives.
        segment: Segment,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    Udp(SocketAddr, SocketAddr),
    Tcp(ConnId, bool),
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub datagrams: u64,
    /// Lost (including partitions).
    pub lost: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Damaged.
    pub corrupted: u64,
    /// TCP segments (chunks) delivered.
    pub segments: u64,
}

/// Packets in flight and the state of the links.
#[derive(Debug)]
pub struct Net {
    faults: Faults,
    queue: BTreeMap<(Duration, u64), Packet>,
    seq: u64,
    last: BTreeMap<Path, Duration>,
    partitions: BTreeMap<IpAddr, Duration>,
    reset: BTreeSet<ConnId>,
    /// What happened so far.
    pub stats: NetStats,
}

impl Net {
    /// An empty network with these faults.
    pub fn new(faults: Faults) -> Net {
        Net {
            faults,
            queue: BTreeMap::new(),
            seq: 0,
            last: BTreeMap::new(),
            partitions: BTreeMap::new(),
            reset: BTreeSet::new(),
            stats: NetStats::default(),
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// When the next packet arrives.
    pub fn next_due(&self) -> Option<Duration> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// True when nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// The next packet due at or before `now`, in arrival order.
    pub fn pop_due(&mut self, now: Duration) -> Option<Packet> {
        loop {
            let (&key, _) = self.queue.iter().next().filter(|((at, _), _)| *at <= now)?;
            let packet = self.queue.remove(&key).expect("key just seen");
            if let Packet::Tcp { conn, .. } = &packet {
                if self.reset.contains(conn) {
                    continue;
                }
                self.stats.segments += 1;
            }
            return Some(packet);
        }
    }

    /// Cuts `ip` off the UDP network until `until` (TCP is not affected).
    pub fn partition(&mut self, ip: IpAddr, until: Duration) {
        if !self.faults.is_perfect() {
            let end = self.partitions.entry(ip).or_default();
            *end = (*end).max(until);
        }
    }

    fn cut_off(&self, now: Duration, ip: IpAddr) -> bool {
        self.partitions.get(&ip).is_some_and(|until| now < *until)
    }

    fn delay(&mut self, rng: &mut ChaCha20Rng, now: Duration, path: Path, fifo: bool) -> Duration {
        let (lo, hi) = (self.faults.min_delay, self.faults.max_delay);
        let spread = (hi - lo).as_micros() as u64 + 1;
        let mut at = now + lo + Duration::from_micros(below(rng, spread));
        if fifo {
            let last = self.last.entry(path).or_default();
            at = at.max(*last);
            *last = at;
        }
        at
    }

    fn push(&mut self, at: Duration, packet: Packet) {
        self.seq += 1;
        self.queue.insert((at, self.seq), packet);
    }

    /// Sends a datagram through the faults.
    pub fn send_udp(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
        from: SocketAddr,
        to: SocketAddr,
        payload: Bytes,
    ) {
        self.stats.datagrams += 1;
        let f = self.faults;
        if self.cut_off(now, from.ip()) || self.cut_off(now, to.ip()) || chance(rng, f.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if chance(rng, f.duplicate) { 2 } else { 1 };
        self.stats.duplicated += copies - 1;
        for _ in 0..copies {
            let (payload, corrupted) = if chance(rng, f.corrupt) {
                self.stats.corrupted += 1;
                (corrupt(rng, &payload), true)
            } else {
                (payload.clone(), false)
            };
            let at = self.delay(rng, now, Path::Udp(from, to), !f.reorder);
            self.push(
                at,
                Packet::Udp {
                    from,
                    to,
                    payload,
                    corrupted,
                },
            );
        }
    }

    /// Writes bytes on a connection: they arrive in order, in random chunks.
    pub fn send_tcp(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
        conn: ConnId,
        to_server: bool,
        data: &Bytes,
    ) {
        let mut rest = data.clone();
        while !rest.is_empty() {
            let take = if rest.len() == 1 || chance(rng, 300) {
                rest.len()
            } else {
                1 + below(rng, rest.len() as u64) as usize
            };
            let chunk = rest.split_to(take);
            let at = self.delay(rng, now, Path::Tcp(conn, to_server), true);
            self.push(
                at,
                Packet::Tcp {
                    conn,
                    to_server,
                    segment: Segment::Data(chunk),
                },
            );
        }
    }

    /// Ends one direction of a connection after what was written on it.
    pub fn send_fin(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
        conn: ConnId,
        to_server: bool,
    ) {
        let at = self.delay(rng, now, Path::Tcp(conn, to_server), true);
        self.push(
            at,
            Packet::Tcp {
                conn,
                to_server,
                segment: Segment::Fin,
            },
        );
    }

    /// Resets a connection: everything in flight on it is lost, in both directions.
    pub fn reset(&mut self, conn: ConnId) {
        self.reset.insert(conn);
    }
}

/// A damaged copy: one to three bits flipped, or the tail cut off.
fn corrupt(rng: &mut ChaCha20Rng, payload: &Bytes) -> Bytes {
    let mut bytes = payload.to_vec();
    if bytes.is_empty() {
        return Bytes::from_static(&[0]);
    }
    if chance(rng, 500) {
        bytes.truncate(below(rng, bytes.len() as u64) as usize);
    } else {
        for _ in 0..=below(rng, 3) {
            let bit = below(rng, bytes.len() as u64 * 8) as usize;
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
    }
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tcp_arrives_whole_and_in_order_in_chunks() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut net = Net::new(Faults::perfect());
        let data = Bytes::from((0..=255u8).collect::<Vec<_>>());
        net.send_tcp(&mut rng, Duration::ZERO, ConnId(1), true, &data);
        net.send_fin(&mut rng, Duration::ZERO, ConnId(1), true);
        let (mut got, mut chunks) = (Vec::new(), 0);
        while let Some(Packet::Tcp { segment, .. }) = net.pop_due(Duration::from_secs(1)) {
            match segment {
                Segment::Data(d) => {
                    got.extend_from_slice(&d);
                    chunks += 1;
                }
                Segment::Fin => assert_eq!(got.len(), 256, "FIN came before the data"),
            }
        }
        assert_eq!(got, data.to_vec());
        assert!(chunks > 1, "256 bytes were never split");
    }

    #[test]
    fn perfect_udp_is_fifo_per_path_and_faults_lose_and_damage() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut net = Net::new(Faults::perfect());
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        for i in 0..50u8 {
            net.send_udp(&mut rng, Duration::ZERO, a, b, Bytes::from(vec![i]));
        }
        let order: Vec<u8> = std::iter::from_fn(|| net.pop_due(Duration::from_secs(1)))
            .map(|p| match p {
                Packet::Udp { payload, .. } => payload[0],
                Packet::Tcp { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());

        let lossy = Faults {
            loss: 300,
            corrupt: 300,
            duplicate: 100,
            reorder: true,
            ..Faults::perfect()
        };
        let mut net = Net::new(lossy);
        for _ in 0..200 {
            net.send_udp(&mut rng, Duration::ZERO, a, b, Bytes::from_static(b"hello"));
        }
        let s = net.stats;
        assert!(s.lost > 20 && s.corrupted > 20 && s.duplicated > 5, "{s:?}");
    }

    #[test]
    fn reset_discards_in_flight_segments_and_partitions_cut_udp() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut net = Net::new(Faults {
            reorder: true,
            ..Faults::perfect()
        });
        net.send_tcp(
            &mut rng,
            Duration::ZERO,
            ConnId(7),
            true,
            &Bytes::from_static(b"abcdef"),
        );
        net.reset(ConnId(7));
        assert_eq!(net.pop_due(Duration::from_secs(1)), None);
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        net.partition(a.ip(), Duration::from_secs(5));
        net.send_udp(
            &mut rng,
            Duration::from_secs(1),
            a,
            b,
            Bytes::from_static(b"x"),
        );
        net.send_udp(
            &mut rng,
            Duration::from_secs(1),
            b,
            a,
            Bytes::from_static(b"y"),
        );
        assert!(net.is_idle());
        net.send_udp(
            &mut rng,
            Duration::from_secs(5),
            a,
            b,
            Bytes::from_static(b"z"),
        );
        assert!(!net.is_idle());
    }
}
