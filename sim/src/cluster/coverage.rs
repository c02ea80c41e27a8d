//! What a cluster run exercised: a check that never fires proves nothing, so the CI test
//! asserts that its schedules crashed nodes, took Redis down, cut nodes off, delivered
//! across nodes and saw rooms close for each cluster reason.

use ocm_core::output::Event;
use ocm_core::rooms::ClusterStats;
use std::collections::BTreeMap;

/// Counts of what happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterCoverage {
    /// Node inputs fed.
    pub steps: u64,
    /// Envelopes the nodes published.
    pub published: u64,
    /// Chat lines delivered to a member on another node than the sender's.
    pub cross_node_deliveries: u64,
    /// Chat lines delivered to a member on the sender's node.
    pub local_deliveries: u64,
    /// Nodes crashed.
    pub crashes: u64,
    /// Nodes restarted.
    pub restarts: u64,
    /// Redis outages.
    pub outages: u64,
    /// Of which Redis lost its data.
    pub data_losses: u64,
    /// Nodes cut off from Redis.
    pub partitions: u64,
    /// Hosts that sent `/exit`.
    pub host_leaves: u64,
    /// Sessions ended by a notice from their node, by its text.
    pub ended: BTreeMap<String, u64>,
    /// TCRP answers, by status.
    pub statuses: BTreeMap<String, u64>,
    /// Rooms created.
    pub rooms_created: u64,
    /// Steps at which a node served an epoch the registry no longer held.
    pub stale_epochs_seen: u64,
    /// Steps at which two nodes hosted a name within the grace after a data loss.
    pub double_hosts_in_grace: u64,
    /// The nodes' cluster counters, summed (taken at each crash and at the end).
    pub fenced: u64,
    /// Rooms closed because their lease was lost or their host's node was gone.
    pub rooms_lost: u64,
    /// Envelopes dropped as duplicates or late.
    pub stale_envelopes: u64,
    /// Envelopes known lost (sequence gaps).
    pub missed_envelopes: u64,
    /// Creates and joins answered TRY_LATER.
    pub try_later: u64,
}

impl ClusterCoverage {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &ClusterCoverage) {
        for (mine, theirs) in [
            (&mut self.steps, o.steps),
            (&mut self.published, o.published),
            (&mut self.cross_node_deliveries, o.cross_node_deliveries),
            (&mut self.local_deliveries, o.local_deliveries),
            (&mut self.crashes, o.crashes),
            (&mut self.restarts, o.restarts),
            (&mut self.outages, o.outages),
            (&mut self.data_losses, o.data_losses),
            (&mut self.partitions, o.partitions),
            (&mut self.host_leaves, o.host_leaves),
            (&mut self.rooms_created, o.rooms_created),
            (&mut self.stale_epochs_seen, o.stale_epochs_seen),
            (&mut self.double_hosts_in_grace, o.double_hosts_in_grace),
            (&mut self.fenced, o.fenced),
            (&mut self.rooms_lost, o.rooms_lost),
            (&mut self.stale_envelopes, o.stale_envelopes),
            (&mut self.missed_envelopes, o.missed_envelopes),
            (&mut self.try_later, o.try_later),
        ] {
            *mine += theirs;
        }
        for (mine, theirs) in [
            (&mut self.ended, &o.ended),
            (&mut self.statuses, &o.statuses),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// Counts what an event shows.
    pub fn count(&mut self, event: &Event) {
        match event {
            Event::Handshake { status, .. } => {
                *self.statuses.entry(format!("{status:?}")).or_default() += 1
            }
            Event::RoomCreated { .. } => self.rooms_created += 1,
            _ => {}
        }
    }

    /// A session ended by this notice.
    pub fn ended_by_notice(&mut self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload).into_owned();
        *self.ended.entry(text).or_default() += 1;
    }

    /// Adds a node's cluster counters.
    pub fn harvest(&mut self, stats: &ClusterStats) {
        self.fenced += stats.fenced;
        self.rooms_lost += stats.rooms_lost;
        self.stale_envelopes += stats.stale;
        self.missed_envelopes += stats.missed;
        self.try_later += stats.try_later;
    }
}
