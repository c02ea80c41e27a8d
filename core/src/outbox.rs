//! The queue of outputs a server fills and its shell drains, and the counters that go
//! with them: both servers send, drop and report through one [`Outbox`], so a datagram
//! sent or dropped is counted the same way in rooms and relay mode.
//!
//! Datagrams, most of what a server sends (a message to a room of 64 is 63 of them),
//! are kept apart from other outputs, as destination and payload (64 bytes each), and
//! the queue itself holds only runs: so many datagrams, then so many other outputs,
//! and so on. A fan-out is pushed without building an [`Output`] per datagram, a shell
//! sends a run's datagrams from where they are queued ([`Outbox::front_datagrams`], then
//! [`Outbox::datagrams_sent`]), and every other output is moved once on its way out. The
//! order of all outputs is the order they were queued in.

use crate::output::{ConnId, DropReason, Event, Output};
use crate::stats::Stats;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// A run of the queue: how many of the next outputs are datagrams, or others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    datagrams: bool,
    len: usize,
}

/// Outputs not yet polled, and the counters since start.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// The order of everything queued, in runs (none empty).
    runs: VecDeque<Run>,
    /// The datagrams, in order.
    datagrams: VecDeque<(SocketAddr, Bytes)>,
    /// Every other output, in order.
    others: VecDeque<Output>,
    /// Counters; the server bumps the ones no output stands for (keepalives, ...).
    pub(crate) stats: Stats,
    /// Whether a dropped datagram is reported as an event, or only counted.
    pub(crate) report_drops: bool,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            runs: VecDeque::new(),
            datagrams: VecDeque::new(),
            others: VecDeque::new(),
            stats: Stats::default(),
            report_drops: true,
        }
    }
}

impl Outbox {
    /// The next output, oldest first.
    pub(crate) fn pop(&mut self) -> Option<Output> {
        let run = self.runs.front_mut()?;
        let datagram = run.datagrams;
        run.len -= 1;
        if run.len == 0 {
            self.runs.pop_front();
        }
        match datagram {
            true => {
                let (to, payload) = self.datagrams.pop_front()?;
                Some(Output::Datagram { to, payload })
            }
            false => self.others.pop_front(),
        }
    }

    /// The datagrams at the front of the queue, up to `max`, where they are queued: see
    /// [`crate::Machine::front_datagrams`]. (Those that are contiguous in the ring: a run
    /// that wraps around comes in two.)
    pub(crate) fn front_datagrams(&self, max: usize) -> &[(SocketAddr, Bytes)] {
        match self.runs.front() {
            Some(run) if run.datagrams => {
                let (front, _) = self.datagrams.as_slices();
                &front[..front.len().min(run.len).min(max)]
            }
            _ => &[],
        }
    }

    /// The first `n` datagrams [`Outbox::front_datagrams`] gave, taken off the queue and
    /// dropped (no more than the run at the front holds).
    pub(crate) fn datagrams_sent(&mut self, n: usize) {
        let Some(run) = self.runs.front_mut().filter(|run| run.datagrams) else {
            debug_assert_eq!(n, 0, "no datagram at the front");
            return;
        };
        debug_assert!(n <= run.len, "{n} sent of a run of {}", run.len);
        let n = n.min(run.len);
        run.len -= n;
        if run.len == 0 {
            self.runs.pop_front();
        }
        self.datagrams.drain(..n);
    }

    /// Outputs queued.
    pub(crate) fn len(&self) -> usize {
        self.others.len() + self.datagrams.len()
    }

    /// The last `len` outputs pushed (datagrams or not) join the run of their kind at the
    /// back of the queue, or start one.
    fn extend_runs(&mut self, datagrams: bool, len: usize) {
        match self.runs.back_mut() {
            Some(run) if run.datagrams == datagrams => run.len += len,
            _ if len == 0 => {}
            _ => self.runs.push_back(Run { datagrams, len }),
        }
    }

    /// The last `n` datagrams pushed, queued and counted as sent.
    fn queued_datagrams(&mut self, n: usize) {
        self.stats.datagrams_sent += n as u64;
        self.extend_runs(true, n);
    }

    /// An output that is not a datagram, queued.
    fn push(&mut self, output: Output) {
        self.others.push_back(output);
        self.extend_runs(false, 1);
    }

    /// One datagram to `to`, counted as sent.
    pub(crate) fn datagram(&mut self, to: SocketAddr, payload: Bytes) {
        self.datagrams.push_back((to, payload));
        self.queued_datagrams(1);
    }

    /// The same payload to each address (one shared buffer), each counted as sent. The
    /// last address gets `payload` itself: a buffer sent to one member is never shared.
    pub(crate) fn fan_out(&mut self, to: impl IntoIterator<Item = SocketAddr>, payload: Bytes) {
        let mut to = to.into_iter();
        let Some(mut last) = to.next() else {
            return;
        };
        let before = self.datagrams.len();
        // (one behind the iterator, so that the last address is known without a peek)
        for next in to {
            self.datagrams.push_back((last, payload.clone()));
            last = next;
        }
        self.datagrams.push_back((last, payload));
        self.queued_datagrams(self.datagrams.len() - before);
    }

    /// A dropped inbound datagram: counted by reason, and reported unless
    /// [`Outbox::report_drops`] is off.
    pub(crate) fn drop_datagram(&mut self, from: SocketAddr, reason: DropReason) {
        self.stats.dropped[reason.index()] += 1;
        if self.report_drops {
            self.emit(Event::DatagramDropped { from, reason });
        }
    }

    /// Bytes for a connection.
    pub(crate) fn tcp_send(&mut self, conn: ConnId, data: Bytes) {
        self.push(Output::TcpSend { conn, data });
    }

    /// FIN on a connection once its bytes are written.
    pub(crate) fn tcp_shutdown_write(&mut self, conn: ConnId) {
        self.push(Output::TcpShutdownWrite { conn });
    }

    /// Close a connection the server has forgotten.
    pub(crate) fn tcp_close(&mut self, conn: ConnId) {
        self.push(Output::TcpClose { conn });
    }

    /// Something that happened, for logs and tests.
    pub(crate) fn cluster(&mut self, output: crate::cluster::node::ClusterOutput) {
        self.push(Output::Cluster(output));
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.push(Output::Event(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// What a shell does: the front datagrams, up to `max`, copied out and marked sent.
    fn take(out: &mut Outbox, into: &mut Vec<(SocketAddr, Bytes)>, max: usize) -> usize {
        let front = out.front_datagrams(max);
        let n = front.len();
        into.extend_from_slice(front);
        out.datagrams_sent(n);
        n
    }

    #[test]
    fn draining_gives_the_leading_datagrams_in_order_and_stops_at_anything_else() {
        let mut out = Outbox::default();
        out.datagram(addr(1), Bytes::from_static(b"a"));
        out.datagram(addr(2), Bytes::from_static(b"b"));
        out.datagram(addr(3), Bytes::from_static(b"c"));
        out.tcp_close(ConnId(7));
        out.datagram(addr(4), Bytes::from_static(b"d"));
        let mut into = Vec::new();
        // at most `max`
        assert_eq!(take(&mut out, &mut into, 2), 2);
        assert_eq!(take(&mut out, &mut into, 5), 1);
        let sent: Vec<_> = into.iter().map(|(to, p)| (to.port(), &p[..])).collect();
        assert_eq!(sent, vec![(1, &b"a"[..]), (2, b"b"), (3, b"c")]);
        // the close is next, and stays first until polled
        assert_eq!(take(&mut out, &mut into, 5), 0);
        assert!(matches!(
            out.pop(),
            Some(Output::TcpClose { conn: ConnId(7) })
        ));
        assert_eq!(take(&mut out, &mut into, 5), 1);
        assert_eq!(into[3].0, addr(4));
        assert_eq!(take(&mut out, &mut into, 5), 0);
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn polling_one_by_one_and_draining_can_take_turns_within_a_run() {
        let mut out = Outbox::default();
        for port in 1..=4 {
            out.datagram(addr(port), Bytes::from_static(b"x"));
        }
        out.emit(Event::RoomClosed {
            room: "lobby".into(),
            reason: crate::wire::notice::CloseReason::HostLeft,
        });
        assert_eq!(out.len(), 5);
        let to = |output: Option<Output>| match output {
            Some(Output::Datagram { to, .. }) => to.port(),
            other => panic!("{other:?}"),
        };
        assert_eq!(to(out.pop()), 1);
        let mut into = Vec::new();
        assert_eq!(take(&mut out, &mut into, 2), 2);
        assert_eq!(to(out.pop()), 4);
        assert_eq!(out.len(), 1);
        assert!(matches!(out.pop(), Some(Output::Event(_))));
        assert!(out.pop().is_none());
        assert_eq!(out.len(), 0);
        assert_eq!(
            into.iter().map(|(to, _)| to.port()).collect::<Vec<_>>(),
            [2, 3]
        );
    }

    #[test]
    fn a_fan_out_to_nobody_queues_and_counts_nothing_and_runs_join_up() {
        let mut out = Outbox::default();
        out.fan_out([], Bytes::from_static(b"x"));
        assert_eq!((out.len(), out.stats.datagrams_sent), (0, 0));
        assert!(out.pop().is_none());
        out.datagram(addr(1), Bytes::from_static(b"a"));
        out.fan_out([addr(2), addr(3)], Bytes::from_static(b"b"));
        assert_eq!((out.len(), out.stats.datagrams_sent), (3, 3));
        // one run of three: drained at once
        let mut into = Vec::new();
        assert_eq!(take(&mut out, &mut into, 10), 3);
        let sent: Vec<_> = into.iter().map(|(to, p)| (to.port(), &p[..])).collect();
        assert_eq!(sent, vec![(1, &b"a"[..]), (2, b"b"), (3, b"b")]);
    }

    /// What one step queues or takes (see the proptest below).
    #[derive(Clone, Debug)]
    enum Step {
        Datagram,
        FanOut(u8),
        Other,
        Take(u8),
        Pop,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Step::Datagram),
            (0..6u8).prop_map(Step::FanOut),
            Just(Step::Other),
            (0..9u8).prop_map(Step::Take),
            Just(Step::Pop),
        ]
    }

    proptest::proptest! {
        /// Whatever the mix of queuing, taking from the front (runs that wrap around the
        /// ring included) and polling one by one, outputs come out once each, in the
        /// order they were queued, and the front never runs past a non-datagram.
        #[test]
        fn outputs_come_out_in_the_order_queued(steps in proptest::collection::vec(step(), 0..200)) {
            let mut out = Outbox::default();
            // Each output is numbered: a datagram by its port, another by a room name.
            let (mut queued, mut came) = (Vec::new(), Vec::new());
            let mut next = 0u16;
            let mut number = || { next += 1; next };
            for step in steps {
                match step {
                    Step::Datagram => {
                        let n = number();
                        out.datagram(addr(n), Bytes::from_static(b"d"));
                        queued.push(n);
                    }
                    Step::FanOut(k) => {
                        let ports: Vec<u16> = (0..k).map(|_| number()).collect();
                        out.fan_out(ports.iter().map(|&p| addr(p)), Bytes::from_static(b"f"));
                        queued.extend(ports);
                    }
                    Step::Other => {
                        let n = number();
                        out.emit(Event::RoomClosed {
                            room: n.to_string().into(),
                            reason: crate::wire::notice::CloseReason::HostLeft,
                        });
                        queued.push(n);
                    }
                    Step::Take(max) => {
                        let mut into = Vec::new();
                        let n = take(&mut out, &mut into, max as usize);
                        proptest::prop_assert!(n <= max as usize);
                        came.extend(into.iter().map(|(to, _)| to.port()));
                    }
                    Step::Pop => match out.pop() {
                        Some(Output::Datagram { to, .. }) => came.push(to.port()),
                        Some(Output::Event(Event::RoomClosed { room, .. })) => {
                            came.push(room.parse().unwrap())
                        }
                        Some(other) => proptest::prop_assert!(false, "{other:?}"),
                        None => proptest::prop_assert_eq!(out.len(), 0),
                    },
                }
                proptest::prop_assert_eq!(out.len(), queued.len() - came.len());
                proptest::prop_assert_eq!(&queued[..came.len()], &came[..]);
            }
        }
    }
}
