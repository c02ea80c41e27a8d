//! At most once, in the sender's order: the receiving side of envelope sequences.
//!
//! Every node numbers what it publishes for a room epoch 1, 2, 3, ... A receiver keeps
//! the highest number seen from each (room epoch, origin) and accepts only a higher one;
//! the numbers skipped on the way are the messages lost (a bus that dropped them, a
//! subscriber that was reconnecting), counted but never waited for. A number not above
//! the highest is a duplicate or a late arrival and is dropped, so no member ever gets a
//! message twice or out of its sender's order.
//!
//! The first number heard from an origin is a baseline, not a gap: a node that starts
//! serving a room (its first member there joined) hears the other nodes mid-stream,
//! and what they published before was never meant for it. (Counting it made every
//! join through a new node report the room's whole history as lost; the cluster
//! simulator found it.)
//!
//! ```
//! use ocm_core::cluster::sequence::{Sequences, Verdict};
//! use ocm_core::cluster::{Epoch, NodeId};
//!
//! let mut seen = Sequences::default();
//! let a = NodeId::new("node-a").unwrap();
//! assert_eq!(seen.check(Epoch(7), &a, 5), Verdict::Accept { missed: 0 });
//! assert_eq!(seen.check(Epoch(7), &a, 8), Verdict::Accept { missed: 2 });
//! assert_eq!(seen.check(Epoch(7), &a, 7), Verdict::Stale);
//! seen.forget(Epoch(7)); // the room closed
//! ```
//!
//! State is one number per origin node for each room epoch the node serves, dropped
//! when the room closes: bounded by rooms × nodes.

use super::{Epoch, NodeId};
use std::collections::BTreeMap;

/// What to do with an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Newer than anything seen from its origin: deliver it. `missed` envelopes from
    /// that origin were skipped on the way (lost).
    Accept {
        /// How many numbers were skipped.
        missed: u64,
    },
    /// Not newer than what was seen: a duplicate or a late arrival; drop it.
    Stale,
}

/// The highest sequence seen per (room epoch, origin).
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    highest: BTreeMap<(Epoch, NodeId), u64>,
}

impl Sequences {
    /// Decides on envelope `seq` from `origin` for room `epoch`, and remembers it when
    /// accepted. Sequences start at 1; a 0 is stale. The first envelope from an origin
    /// misses nothing (see the module's note).
    pub fn check(&mut self, epoch: Epoch, origin: &NodeId, seq: u64) -> Verdict {
        if seq == 0 {
            return Verdict::Stale;
        }
        let Some(highest) = self.highest.get_mut(&(epoch, origin.clone())) else {
            self.highest.insert((epoch, origin.clone()), seq);
            return Verdict::Accept { missed: 0 };
        };
        if seq <= *highest {
            return Verdict::Stale;
        }
        let missed = seq - *highest - 1;
        *highest = seq;
        Verdict::Accept { missed }
    }

    /// Forgets a room epoch (the room closed here).
    pub fn forget(&mut self, epoch: Epoch) {
        let doomed: Vec<_> = self
            .highest
            .range((epoch, NodeId::min())..)
            .take_while(|((e, _), _)| *e == epoch)
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.highest.remove(&key);
        }
    }

    /// How many (room epoch, origin) pairs are remembered.
    pub fn len(&self) -> usize {
        self.highest.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.highest.is_empty()
    }
}

impl NodeId {
    /// The smallest id in the order of [`NodeId`]'s `Ord` (a range bound, never a node).
    fn min() -> NodeId {
        NodeId("".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    #[test]
    fn each_origin_and_epoch_has_its_own_sequence() {
        let mut seen = Sequences::default();
        let (a, b) = (node("a"), node("b"));
        assert_eq!(seen.check(Epoch(1), &a, 1), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(1), &b, 1), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(2), &a, 1), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(1), &a, 1), Verdict::Stale, "a duplicate");
        assert_eq!(seen.check(Epoch(1), &a, 2), Verdict::Accept { missed: 0 });
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn a_gap_is_counted_once_and_what_arrives_late_is_dropped() {
        let mut seen = Sequences::default();
        let a = node("a");
        assert_eq!(
            seen.check(Epoch(1), &a, 0),
            Verdict::Stale,
            "sequences start at 1"
        );
        assert_eq!(seen.check(Epoch(1), &a, 1), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(1), &a, 5), Verdict::Accept { missed: 3 });
        for late in 1..=5 {
            assert_eq!(seen.check(Epoch(1), &a, late), Verdict::Stale);
        }
        assert_eq!(seen.check(Epoch(1), &a, 6), Verdict::Accept { missed: 0 });
        assert_eq!(
            seen.check(Epoch(1), &a, u64::MAX),
            Verdict::Accept {
                missed: u64::MAX - 7
            }
        );
        assert_eq!(seen.check(Epoch(1), &a, u64::MAX), Verdict::Stale);
    }

    #[test]
    fn the_first_number_from_an_origin_is_a_baseline_not_a_gap() {
        let mut seen = Sequences::default();
        let (a, b) = (node("a"), node("b"));
        // This node started serving the room after a had published 41 envelopes.
        assert_eq!(seen.check(Epoch(1), &a, 42), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(1), &a, 44), Verdict::Accept { missed: 1 });
        assert_eq!(seen.check(Epoch(1), &a, 41), Verdict::Stale);
        // Each origin, and each epoch, has its own baseline.
        assert_eq!(seen.check(Epoch(1), &b, 7), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(2), &a, 3), Verdict::Accept { missed: 0 });
        // A room closed and served again starts from a new baseline.
        seen.forget(Epoch(1));
        assert_eq!(seen.check(Epoch(1), &a, 90), Verdict::Accept { missed: 0 });
    }

    #[test]
    fn forgetting_an_epoch_keeps_the_others() {
        let mut seen = Sequences::default();
        let (a, b) = (node("a"), node("b"));
        for epoch in [Epoch(0), Epoch(1), Epoch(u64::MAX)] {
            seen.check(epoch, &a, 3);
            seen.check(epoch, &b, 3);
        }
        seen.forget(Epoch(1));
        assert_eq!(seen.len(), 4);
        assert_eq!(seen.check(Epoch(1), &a, 1), Verdict::Accept { missed: 0 });
        assert_eq!(seen.check(Epoch(0), &a, 3), Verdict::Stale);
        assert_eq!(seen.check(Epoch(u64::MAX), &b, 3), Verdict::Stale);
        seen.forget(Epoch(0));
        seen.forget(Epoch(1));
        seen.forget(Epoch(u64::MAX));
        assert!(seen.is_empty());
    }

    proptest! {
        /// Whatever a bus does to one sender's stream (loss, duplication, reordering),
        /// what is accepted is strictly increasing, and accepted + missed accounts for
        /// every number from the first accepted to the highest.
        #[test]
        fn what_is_accepted_is_in_order_and_once(arrivals in proptest::collection::vec(1u64..40, 0..80)) {
            let mut seen = Sequences::default();
            let a = node("a");
            let mut accepted = Vec::new();
            let mut missed_total = 0;
            for seq in arrivals {
                if let Verdict::Accept { missed } = seen.check(Epoch(9), &a, seq) {
                    accepted.push(seq);
                    missed_total += missed;
                }
            }
            prop_assert!(accepted.windows(2).all(|w| w[0] < w[1]));
            let span = match (accepted.first(), accepted.last()) {
                (Some(first), Some(last)) => last - first + 1,
                _ => 0,
            };
            prop_assert_eq!(accepted.len() as u64 + missed_total, span);
        }
    }
}
