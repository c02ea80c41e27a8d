//! Cluster schedules that once failed, frozen as plain tests so they run forever (the
//! cluster counterpart of `regressions.rs`). Each is the minimal schedule proptest
//! printed, pasted; the comment says what broke and where it was fixed. Those found
//! with a deliberate mutation of core pass on the real core and fail on the mutant.

use ocm_sim::cluster::bus::BusProfile;
use ocm_sim::cluster::run;
use ocm_sim::cluster::schedule::{ClusterOp::*, ClusterSchedule};

fn passes(schedule: ClusterSchedule) -> ocm_sim::cluster::ClusterOutcome {
    run(&schedule).unwrap_or_else(|f| panic!("{f}"))
}

/// Found with core's epoch check removed (an envelope accepted for any epoch of a room
/// of that name): after Redis lost its data, node 2 created ルーム anew while a mirror
/// of the old incarnation was still served, and a line of the old room reached a
/// member of the new one. With the check, the old epoch's envelopes match no room.
#[test]
fn a_recreated_room_never_gets_the_old_rooms_lines() {
    let outcome = passes(ClusterSchedule {
        seed: 7450546176967946671,
        nodes: 3,
        clocks: vec![926, 1028, 1011],
        bus: BusProfile {
            min_delay_ms: 5,
            max_delay_ms: 51,
            loss: 133,
            duplicate: 1,
        },
        ops: vec![
            Create {
                actor: 0,
                node: 0,
                room: 2,
                user: 3,
            },
            Send { actor: 0 },
            Advance { ms: 19 },
            Send { actor: 0 },
            Advance { ms: 5696 },
            Join {
                actor: 2,
                node: 0,
                room: 0,
                user: 0,
            },
            Send { actor: 0 },
            Send { actor: 0 },
            Join {
                actor: 0,
                node: 1,
                room: 0,
                user: 1,
            },
            Vanish { actor: 4 },
            Send { actor: 0 },
            Join {
                actor: 0,
                node: 1,
                room: 0,
                user: 0,
            },
            Send { actor: 0 },
            Leave { actor: 1 },
            Create {
                actor: 1,
                node: 0,
                room: 0,
                user: 1,
            },
            Join {
                actor: 0,
                node: 0,
                room: 0,
                user: 1,
            },
            Send { actor: 0 },
            Join {
                actor: 4,
                node: 2,
                room: 2,
                user: 2,
            },
            Join {
                actor: 0,
                node: 1,
                room: 1,
                user: 2,
            },
            Create {
                actor: 0,
                node: 0,
                room: 2,
                user: 0,
            },
            Create {
                actor: 0,
                node: 2,
                room: 2,
                user: 0,
            },
            Outage {
                ms: 865,
                lose_data: true,
            },
            Leave { actor: 2 },
            Crash { node: 0 },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Send { actor: 0 },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Create {
                actor: 2,
                node: 2,
                room: 2,
                user: 0,
            },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Send { actor: 1 },
        ],
    });
    assert!(outcome.coverage.data_losses == 1 && outcome.coverage.crashes == 1);
}

/// Also found with the epoch check removed, and smaller: the host leaves, the Closed
/// envelope to node 1 is lost (so node 1 keeps serving the old room until its next
/// renewal), the name is created again on node 0, and a member of the old room on
/// node 1 speaks: node 0 must drop that line, not hand it to the new room's host.
#[test]
fn a_line_of_a_closed_room_never_reaches_its_successor() {
    let outcome = passes(ClusterSchedule {
        seed: 5990182917196305945,
        nodes: 2,
        clocks: vec![900, 900],
        bus: BusProfile {
            min_delay_ms: 7,
            max_delay_ms: 14,
            loss: 55,
            duplicate: 0,
        },
        ops: vec![
            Create {
                actor: 0,
                node: 2,
                room: 0,
                user: 1,
            },
            Join {
                actor: 0,
                node: 1,
                room: 0,
                user: 0,
            },
            Leave { actor: 2 },
            Create {
                actor: 1,
                node: 0,
                room: 0,
                user: 0,
            },
            Send { actor: 2 },
        ],
    });
    assert_eq!(
        outcome.coverage.host_leaves, 0,
        "the host left through Leave"
    );
    assert!(outcome.coverage.cross_node_deliveries == 0);
}

/// Sim bug, the same one on one node: a ghost member of ルーム at the port of actor
/// 0's session in lobby was evicted, and its notice ended the actor's real session.
#[test]
fn a_ghost_members_eviction_never_reaches_a_live_session() {
    let ops = vec![
        Send { actor: 0 },
        Outage {
            ms: 1500,
            lose_data: false,
        },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 2,
            room: 0,
            user: 0,
        },
        Advance { ms: 22 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 2,
        },
        Send { actor: 0 },
        Outage {
            ms: 1809,
            lose_data: false,
        },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 2,
            room: 2,
            user: 2,
        },
        Advance { ms: 3262 },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Partition {
            node: 0,
            ms: 213,
            hold: false,
        },
        Create {
            actor: 0,
            node: 2,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Create {
            actor: 2,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Restart { node: 0 },
        Advance { ms: 50 },
        Create {
            actor: 4,
            node: 1,
            room: 1,
            user: 0,
        },
        Partition {
            node: 2,
            ms: 209,
            hold: true,
        },
        Create {
            actor: 0,
            node: 0,
            room: 2,
            user: 0,
        },
        Vanish { actor: 3 },
        Send { actor: 0 },
        Leave { actor: 1 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 2,
        },
        Advance { ms: 2582 },
        Advance { ms: 6218 },
        Advance { ms: 8502 },
        Join {
            actor: 0,
            node: 1,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
    ];
    passes(ClusterSchedule {
        seed: 3212419150707215282,
        nodes: 2,
        clocks: vec![1064, 1082],
        bus: BusProfile {
            min_delay_ms: 17,
            max_delay_ms: 131,
            loss: 0,
            duplicate: 0,
        },
        ops,
    });
}

/// Sim bug: node 2 was killed while cut off from Redis behind connections that hold;
/// its last renewal, sent during the partition, reached Redis when the partition
/// healed and kept the name for a lease from then. The crash bound was counted from
/// the kill; it is now counted from when what the node had sent left it.
#[test]
fn a_node_killed_behind_a_holding_partition_renews_once_more_at_the_heal() {
    let mut ops = vec![
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Leave { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Outage {
            ms: 115,
            lose_data: false,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
    ];
    ops.extend(
        [Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        }; 6],
    );
    ops.extend([
        Send { actor: 0 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 2,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 1,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Partition {
            node: 2,
            ms: 2056,
            hold: true,
        },
        Advance { ms: 314 },
        Create {
            actor: 0,
            node: 0,
            room: 1,
            user: 0,
        },
        Vanish { actor: 0 },
        Crash { node: 2 },
    ]);
    let outcome = passes(ClusterSchedule {
        seed: 6226572297968698579,
        nodes: 3,
        clocks: vec![909, 935, 1022],
        bus: BusProfile::perfect(),
        ops,
    });
    assert!(outcome
        .coverage
        .ended
        .contains_key("* room closed: host's server is gone"));
}

/// Sim bug: a client that vanished mid-join had named its next UDP port in the JSON
/// request; node 0 admitted it at that address, and the actor's next session (through
/// node 1) took the same port, so node 0's line for the ghost member reached it. An
/// actor now never reuses a port an abandoned handshake named (`host.rs`).
#[test]
fn a_port_named_by_a_vanished_client_is_never_taken_again() {
    passes(ClusterSchedule {
        seed: 7518662894926204538,
        nodes: 3,
        clocks: vec![900, 909, 1049],
        bus: BusProfile {
            min_delay_ms: 14,
            max_delay_ms: 128,
            loss: 5,
            duplicate: 1,
        },
        ops: vec![
            Send { actor: 0 },
            Send { actor: 0 },
            Send { actor: 0 },
            Send { actor: 0 },
            Send { actor: 0 },
            Create {
                actor: 3,
                node: 0,
                room: 2,
                user: 1,
            },
            Advance { ms: 201 },
            Send { actor: 0 },
            Join {
                actor: 2,
                node: 0,
                room: 0,
                user: 0,
            },
            Vanish { actor: 2 },
            Advance { ms: 0 },
            Create {
                actor: 2,
                node: 1,
                room: 0,
                user: 0,
            },
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Send { actor: 5 },
        ],
    });
}

/// Found by the deep run (generator seed 1): Redis down again and again, and a node's
/// timer table went over its bound: each failed renewal's retry left the pending renewal
/// entry behind, which rescheduled itself forever (fixed in core's renew_timer).
#[test]
fn repeated_outages_leave_the_timer_table_within_its_bound() {
    let ops = vec![
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 1,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 0,
            room: 2,
            user: 0,
        },
        Outage {
            ms: 4201,
            lose_data: false,
        },
        Advance { ms: 1719 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 2,
        },
        Advance { ms: 98 },
        Send { actor: 0 },
        Send { actor: 0 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 1,
            user: 2,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Outage {
            ms: 5144,
            lose_data: false,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Restart { node: 0 },
        Send { actor: 0 },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Advance { ms: 3633 },
        Send { actor: 0 },
        Advance { ms: 187 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Outage {
            ms: 752,
            lose_data: false,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Outage {
            ms: 3057,
            lose_data: false,
        },
    ];
    let outcome = passes(ClusterSchedule {
        seed: 1,
        nodes: 2,
        clocks: vec![900, 1001],
        bus: BusProfile::perfect(),
        ops,
    });
    assert!(outcome.coverage.outages >= 4);
}

/// Sim bug: a node was cut off after it had crashed, behind connections that hold, so
/// the requests it had sent before dying reached Redis at the heal, long after the crash
/// bound assumed. A crashed node cannot be partitioned any more.
#[test]
fn a_dead_node_cannot_be_partitioned() {
    let mut ops = vec![
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 2,
            user: 1,
        },
    ];
    ops.extend([Send { actor: 0 }; 4]);
    ops.extend([
        Join {
            actor: 0,
            node: 1,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Leave { actor: 0 },
        Leave { actor: 0 },
        Advance { ms: 109 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Send { actor: 0 },
        Send { actor: 0 },
        Join {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
    ]);
    ops.extend([Send { actor: 0 }; 4]);
    ops.extend([
        Crash { node: 0 },
        Partition {
            node: 0,
            ms: 1500,
            hold: true,
        },
        Join {
            actor: 0,
            node: 1,
            room: 0,
            user: 1,
        },
    ]);
    let outcome = passes(ClusterSchedule {
        seed: 6310576598407224093,
        nodes: 3,
        clocks: vec![1090, 906, 1006],
        bus: BusProfile {
            min_delay_ms: 6,
            max_delay_ms: 120,
            loss: 136,
            duplicate: 1,
        },
        ops,
    });
    assert_eq!(outcome.coverage.partitions, 0);
}
