//! The queue of outputs a server fills and its shell drains, and the counters that go
//! with them: both servers send, drop and report through one [`Outbox`], so a datagram
//! sent or dropped is counted the same way in rooms and relay mode.

use crate::output::{ConnId, DropReason, Event, Output};
use crate::stats::Stats;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Outputs not yet polled, and the counters since start.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Output>,
    /// Counters; the server bumps the ones no output stands for (keepalives, ...).
    pub(crate) stats: Stats,
    /// Whether a dropped datagram is reported as an event, or only counted.
    pub(crate) report_drops: bool,
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            stats: Stats::default(),
            report_drops: true,
        }
    }
}

impl Outbox {
    /// The next output, oldest first.
    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// The datagrams at the front of the queue, up to `max`, moved into `into`: see
    /// [`crate::Machine::drain_datagrams`].
    pub(crate) fn drain_datagrams(
        &mut self,
        into: &mut Vec<(SocketAddr, Bytes)>,
        max: usize,
    ) -> usize {
        let mut moved = 0;
        while moved < max {
            match self.queue.pop_front() {
                Some(Output::Datagram { to, payload }) => into.push((to, payload)),
                Some(other) => {
                    self.queue.push_front(other);
                    break;
                }
                None => break,
            }
            moved += 1;
        }
        moved
    }

    /// Outputs queued.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// One datagram to `to`, counted as sent.
    pub(crate) fn datagram(&mut self, to: SocketAddr, payload: Bytes) {
        self.stats.datagrams_sent += 1;
        self.queue.push_back(Output::Datagram { to, payload });
    }

    /// The same payload to each address (one shared buffer), each counted as sent. The
    /// last address gets `payload` itself: a buffer sent to one member is never shared.
    pub(crate) fn fan_out(&mut self, to: impl IntoIterator<Item = SocketAddr>, payload: Bytes) {
        let mut to = to.into_iter().peekable();
        while let Some(addr) = to.next() {
            if to.peek().is_none() {
                return self.datagram(addr, payload);
            }
            self.datagram(addr, payload.clone());
        }
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
        self.queue.push_back(Output::TcpSend { conn, data });
    }

    /// FIN on a connection once its bytes are written.
    pub(crate) fn tcp_shutdown_write(&mut self, conn: ConnId) {
        self.queue.push_back(Output::TcpShutdownWrite { conn });
    }

    /// Close a connection the server has forgotten.
    pub(crate) fn tcp_close(&mut self, conn: ConnId) {
        self.queue.push_back(Output::TcpClose { conn });
    }

    /// Something that happened, for logs and tests.
    pub(crate) fn cluster(&mut self, output: crate::cluster::node::ClusterOutput) {
        self.queue.push_back(Output::Cluster(output));
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.queue.push_back(Output::Event(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
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
        assert_eq!(out.drain_datagrams(&mut into, 2), 2);
        assert_eq!(out.drain_datagrams(&mut into, 5), 1);
        let sent: Vec<_> = into.iter().map(|(to, p)| (to.port(), &p[..])).collect();
        assert_eq!(sent, vec![(1, &b"a"[..]), (2, b"b"), (3, b"c")]);
        // the close is next, and stays first until polled
        assert_eq!(out.drain_datagrams(&mut into, 5), 0);
        assert!(matches!(
            out.pop(),
            Some(Output::TcpClose { conn: ConnId(7) })
        ));
        assert_eq!(out.drain_datagrams(&mut into, 5), 1);
        assert_eq!(into[3].0, addr(4));
        assert_eq!(out.drain_datagrams(&mut into, 5), 0);
        assert_eq!(out.len(), 0);
    }
}
