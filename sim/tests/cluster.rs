//! The cluster simulator's suite: generated schedules over 2 and 3 nodes under every
//! cluster invariant, a coverage check that they reach what the invariants guard, the
//! determinism check, and a fault-free completeness check. Schedules that once failed
//! are frozen in `cluster_regressions.rs`.
//!
//! - `cargo test -p ocm-sim --test cluster`: 512 schedules (`OCM_SIM_CLUSTER_CASES` for
//!   more or fewer, `OCM_SIM_SEED` to draw others).
//! - `cargo test -p ocm-sim --release --test cluster cluster_deep_run -- --ignored --nocapture`:
//!   2 000 schedules (`OCM_SIM_CLUSTER_DEEP`) from a fresh generator seed, printed.

use ocm_sim::cluster::bus::BusProfile;
use ocm_sim::cluster::coverage::ClusterCoverage;
use ocm_sim::cluster::schedule::{cluster_schedule, ClusterOp::*, ClusterSchedule};
use ocm_sim::cluster::{run, run_with};
use ocm_sim::trace::Trace;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use std::cell::RefCell;
use std::time::Instant;

fn env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` schedules drawn from `generator_seed`; what they covered, and how many.
fn explore(cases: u32, max_ops: usize, generator_seed: u64) -> (ClusterCoverage, u32) {
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&generator_seed.to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let total = RefCell::new((ClusterCoverage::default(), 0u32));
    let result = runner.run(&cluster_schedule(max_ops), |s| {
        let outcome = run(&s).map_err(|f| {
            TestCaseError::fail(format!(
                "seed {} ({} nodes, clocks {:?}, {:?}): {f}",
                s.seed, s.nodes, s.clocks, s.bus
            ))
        })?;
        let mut total = total.borrow_mut();
        total.0.add(&outcome.coverage);
        total.1 += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("generator seed {generator_seed}: {e}");
    }
    total.into_inner()
}

/// CI: the same 512 schedules every time (about 4 s in a debug build).
#[test]
fn cluster_schedules_keep_every_invariant() {
    let cases = env("OCM_SIM_CLUSTER_CASES", 512) as u32;
    let start = Instant::now();
    let (coverage, runs) = explore(cases, 80, env("OCM_SIM_SEED", 0));
    println!(
        "{runs} cluster schedules in {:.1} s\n{coverage:#?}",
        start.elapsed().as_secs_f64()
    );
    assert_covers_the_cluster(&coverage);
}

/// The schedules must reach what the invariants guard, or every check is vacuous.
fn assert_covers_the_cluster(c: &ClusterCoverage) {
    assert!(c.crashes > 0, "no node crashed");
    assert!(c.restarts > 0, "no node restarted");
    assert!(
        c.outages > 0 && c.data_losses > 0,
        "no Redis outage or data loss"
    );
    assert!(c.partitions > 0, "no node cut off");
    assert!(
        c.cross_node_deliveries > 50,
        "few lines across nodes: {}",
        c.cross_node_deliveries
    );
    assert!(c.local_deliveries > 0, "no line within a node");
    assert!(c.host_leaves > 0, "no host left");
    assert!(c.fenced > 0, "no node fenced itself");
    assert!(
        c.rooms_lost > 0,
        "no room lost to a dead host or a lost lease"
    );
    assert!(c.stale_envelopes > 0, "no duplicate envelope dropped");
    assert!(c.missed_envelopes > 0, "no envelope loss counted");
    assert!(
        c.stale_epochs_seen > 0,
        "no node ever served an epoch past its lease (the bound was never tested)"
    );
    for status in [
        "Ok",
        "RoomExists",
        "RoomNotFound",
        "UsernameTaken",
        "TryLater",
    ] {
        assert!(
            c.statuses.get(status).copied().unwrap_or(0) > 0,
            "no handshake answered {status}"
        );
    }
    for notice in [
        "* room closed: host left",
        "* room closed: host's server is gone",
        "* room closed: cluster unreachable",
    ] {
        assert!(
            c.ended.get(notice).copied().unwrap_or(0) > 0,
            "no session ended by {notice:?}"
        );
    }
}

#[test]
#[ignore = "deep run: cargo test -p ocm-sim --release --test cluster cluster_deep_run -- --ignored --nocapture"]
fn cluster_deep_run() {
    let cases = env("OCM_SIM_CLUSTER_DEEP", 2_000) as u32;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = env("OCM_SIM_SEED", nanos);
    println!("cluster deep run: generator seed {seed} (OCM_SIM_SEED={seed} repeats it)");
    let start = Instant::now();
    let (coverage, runs) = explore(cases, 80, seed);
    println!(
        "{runs} schedules in {:.1} s\n{coverage:#?}",
        start.elapsed().as_secs_f64()
    );
    assert_covers_the_cluster(&coverage);
}

#[test]
fn the_same_schedule_gives_the_same_trace() {
    let s = ClusterSchedule {
        seed: 42,
        nodes: 3,
        clocks: vec![1000, 930, 1080],
        bus: BusProfile {
            min_delay_ms: 2,
            max_delay_ms: 60,
            loss: 100,
            duplicate: 50,
        },
        ops: vec![
            Create {
                actor: 0,
                node: 0,
                room: 0,
                user: 0,
            },
            Join {
                actor: 0,
                node: 1,
                room: 0,
                user: 1,
            },
            Join {
                actor: 0,
                node: 2,
                room: 0,
                user: 2,
            },
            Send { actor: 0 },
            Send { actor: 1 },
            Partition {
                node: 2,
                ms: 3_000,
                hold: true,
            },
            Send { actor: 2 },
            Advance { ms: 5_000 },
        ],
    };
    let (a, b) = (run_with(&s, Trace::default()).unwrap(), run(&s).unwrap());
    assert_eq!(a.trace_hash, b.trace_hash);
    let other = run(&ClusterSchedule { seed: 43, ..s }).unwrap();
    assert_ne!(
        a.trace_hash, other.trace_hash,
        "the seed does not reach the trace"
    );
}

fn passes(schedule: ClusterSchedule) -> ocm_sim::cluster::ClusterOutcome {
    run(&schedule).unwrap_or_else(|f| panic!("{f}"))
}

/// Three nodes, a perfect bus, no faults: every line reaches every other member, on
/// every node, exactly once (the completeness the safety rules cannot see).
#[test]
fn without_faults_every_line_reaches_every_member_on_every_node() {
    let mut ops = vec![
        Create {
            actor: 0,
            node: 0,
            room: 0,
            user: 0,
        },
        Join {
            actor: 0,
            node: 1,
            room: 0,
            user: 1,
        },
        Join {
            actor: 0,
            node: 2,
            room: 0,
            user: 2,
        },
        Join {
            actor: 0,
            node: 1,
            room: 0,
            user: 3,
        },
    ];
    for i in 0..40u8 {
        ops.push(Send { actor: i % 4 });
    }
    let outcome = passes(ClusterSchedule {
        seed: 5,
        nodes: 3,
        clocks: vec![1000, 910, 1090],
        bus: BusProfile::perfect(),
        ops,
    });
    let c = &outcome.coverage;
    // 40 lines, each to the 3 other members; ann (node 0) alone on her node, the two
    // members of node 1 get each other's lines locally.
    assert_eq!(c.cross_node_deliveries + c.local_deliveries, 120, "{c:#?}");
    assert_eq!(c.local_deliveries, 20, "{c:#?}");
    assert_eq!(c.missed_envelopes + c.stale_envelopes, 0, "{c:#?}");
}
