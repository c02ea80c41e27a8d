//! The simulator's test suite: proptest schedules under every invariant (a bounded
//! number in CI, 10 000+ in the deep run), the determinism check and targeted schedules
//! (chat storm, timer sweeps). Schedules that once failed live in `regressions.rs`.
//!
//! - `cargo test -p ocm-sim`: 256 schedules (set `OCM_SIM_CASES` for more or fewer).
//! - `cargo test -p ocm-sim --release --test schedules deep_run -- --ignored --nocapture`:
//!   the deep run (naming it keeps `--ignored` off the frozen core-bug tests),
//!   10 000 schedules (`OCM_SIM_DEEP` to change), printing a throughput figure.

use ocm_sim::schedule::{schedule, Network, Op, Schedule};
use ocm_sim::trace::Trace;
use ocm_sim::{run, run_with, run_with_config, Coverage, Failure, Outcome};
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use std::cell::RefCell;
use std::time::Instant;

fn env_cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` schedules generated from `generator_seed`; returns what they covered,
/// how many messages the server relayed and how many schedules ran.
fn explore(
    cases: u32,
    max_ops: usize,
    keep_tail: bool,
    generator_seed: u64,
) -> (Coverage, u64, u32) {
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&generator_seed.to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let total = RefCell::new((Coverage::default(), 0u64, 0u32));
    let result = runner.run(&schedule(max_ops), |s| {
        let trace = if keep_tail {
            Trace::default()
        } else {
            Trace::hash_only()
        };
        let outcome = run_with(&s, trace)
            .map_err(|f| TestCaseError::fail(format!("seed {} ({:?}): {f}", s.seed, s.network)))?;
        let mut total = total.borrow_mut();
        total.0.add(&outcome.coverage);
        total.1 += outcome.relayed;
        total.2 += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    total.into_inner()
}

/// The generator's seed: `OCM_SIM_SEED` if set, else `default`.
fn generator_seed(default: u64) -> u64 {
    std::env::var("OCM_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CI: the same 256 schedules every time (change them with `OCM_SIM_SEED`).
#[test]
fn ci_schedules_keep_every_invariant() {
    let (coverage, relayed, runs) =
        explore(env_cases("OCM_SIM_CASES", 256), 60, true, generator_seed(0));
    println!("{runs} schedules, {relayed} messages relayed\n{coverage:#?}");
    assert_covers_every_rule(&coverage);
}

/// The schedules must actually exercise what the invariants guard; a generator that
/// stopped producing evictions or refused tokens would make every check vacuous.
fn assert_covers_every_rule(c: &Coverage) {
    assert!(c.relayed > 100, "few messages relayed: {}", c.relayed);
    let seen = |counts: &std::collections::BTreeMap<String, u64>, keys: &[&str], what: &str| {
        for key in keys {
            let n = counts.get(*key).copied().unwrap_or(0);
            assert!(n > 0, "no {what} {key}");
        }
    };
    let reasons = [
        "TooLarge",
        "Truncated",
        "UnknownRoom",
        "UnknownToken",
        "WrongAddress",
        "NotUtf8",
        "ControlCharacter",
    ];
    seen(&c.refused, &reasons, "datagram refused as");
    assert!(
        c.refused.get("RateLimited").copied().unwrap_or(0) > 0,
        "no message over a rate"
    );
    let statuses = [
        "Ok",
        "RoomExists",
        "RoomNotFound",
        "InvalidPassword",
        "UsernameTaken",
        "InvalidRequest",
        "PayloadTooLarge",
        "ServerFull",
        "TryLater",
    ];
    seen(&c.statuses, &statuses, "handshake answered");
    seen(
        &c.evictions,
        &["idle", "send failures", "never registered"],
        "eviction for",
    );
    assert!(
        c.json_ports > 0,
        "no member got its address from a JSON port"
    );
    assert!(
        c.retired_token_probes > 0,
        "no retired token was ever tried again"
    );
    assert!(
        c.stranger_probes_answered > 0,
        "no stranger's liveness probe was answered"
    );
    assert!(c.rooms_closed > 0 && c.left > 0 && c.conns_refused > 0 && c.handshake_timeouts > 0);
    seen(
        &c.shed,
        &["Displaced", "RequestBudget"],
        "connection shed as",
    );
    assert!(
        c.rooms_per_source_refusals > 0,
        "no create was refused for the rooms-per-source limit alone"
    );
    assert!(
        c.lingered_to_deadline > 0 && c.linger_ended_by_peer > 0,
        "lingering connections: {} to the deadline, {} ended by the peer",
        c.lingered_to_deadline,
        c.linger_ended_by_peer
    );
    assert!(
        c.sessions_checked > 20,
        "few delivery logs checked: {}",
        c.sessions_checked
    );
}

#[test]
#[ignore = "deep run: cargo test -p ocm-sim --release --test schedules deep_run -- --ignored --nocapture"]
fn deep_run() {
    let cases = env_cases("OCM_SIM_DEEP", 10_000);
    let seed = generator_seed(rand_seed());
    println!("deep run: generator seed {seed} (OCM_SIM_SEED={seed} repeats it)");
    let start = Instant::now();
    let (coverage, relayed, runs) = explore(cases, 80, false, seed);
    let wall = start.elapsed().as_secs_f64();
    println!("deep run: {runs} schedules in {wall:.1} s, {relayed} messages relayed");
    println!("{coverage:#?}");
    let start = Instant::now();
    let outcome = run_storm(&storm(20_000), Trace::hash_only()).unwrap_or_else(|f| panic!("{f}"));
    let wall = start.elapsed().as_secs_f64();
    println!(
        "simulated throughput (chat storm, 3 members, every check on): {} messages in {wall:.2} s = {:.0} messages/wall-second, {:.0} server inputs/wall-second",
        outcome.relayed,
        outcome.relayed as f64 / wall,
        outcome.coverage.steps as f64 / wall
    );
    assert_covers_every_rule(&coverage);
}

/// A fresh generator seed for the deep run, from the clock (only picks which schedules
/// to try; each one printed on failure is fully reproducible on its own).
fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos as u64
}

/// Three members of one room, `messages` sends in turn, on a perfect network.
/// The storm under rates roomy enough for its pace (the schedules' own are low, so
/// that floods reach them).
fn run_storm(schedule: &Schedule, trace: Trace) -> Result<Outcome, Failure> {
    let limits = ocm_core::Config {
        member_messages_per_sec: 1_000,
        member_message_burst: 1_000,
        source_messages_per_sec: 1_000,
        source_message_burst: 1_000,
        room_fanout_per_sec: 10_000,
        room_fanout_burst: 10_000,
        ..ocm_sim::schedule::config()
    };
    run_with_config(schedule, limits, trace)
}

fn storm(messages: u32) -> Schedule {
    let mut ops = vec![
        Op::Create {
            actor: 0,
            room: 0,
            user: 0,
            password: false,
        },
        Op::Advance { ms: 500 },
        Op::Join {
            actor: 0,
            room: 0,
            user: 1,
            password: 0,
        },
        Op::Advance { ms: 500 },
        Op::Join {
            actor: 0,
            room: 0,
            user: 2,
            password: 0,
        },
        Op::Advance { ms: 500 },
    ];
    for i in 0..messages {
        ops.push(Op::Send {
            actor: (i % 3) as u8,
            text: (i % 2) as u8,
        });
    }
    Schedule {
        seed: 5,
        network: Network::Perfect,
        ops,
    }
}

#[test]
fn chat_storm_relays_every_message_to_every_member_once_in_order() {
    let outcome = run_storm(&storm(300), Trace::hash_only()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(outcome.relayed, 300);
    assert_eq!(outcome.coverage.sessions_checked, 3);
}

/// Malformed requests answered (kinds 2 and 7 are too large, the rest invalid).
fn answered_bad_requests(c: &Coverage) -> u64 {
    ["InvalidRequest", "PayloadTooLarge"]
        .iter()
        .map(|s| c.statuses.get(*s).copied().unwrap_or(0))
        .sum()
}

/// A host keeps its room while the attacker opens 120 connections, each closed at once:
/// their timer entries go stale faster than they expire, and the table must be swept
/// (the timer bound is checked after every timeout).
#[test]
fn stale_timers_are_swept_under_a_connection_flood() {
    let s = Schedule {
        seed: 11,
        network: Network::Perfect,
        ops: vec![
            Op::Create {
                actor: 0,
                room: 0,
                user: 0,
                password: false,
            },
            Op::Advance { ms: 500 },
            Op::Flood { conns: 120 },
            Op::Advance { ms: 10_000 },
        ],
    };
    let outcome = run(&s).unwrap_or_else(|f| panic!("{f}"));
    let answered = answered_bad_requests(&outcome.coverage);
    assert!(
        answered >= 80,
        "only {answered} flood requests were answered"
    );
}

/// The sweep threshold must grow with what is alive, not faster: five members and ten
/// open (slowloris) connections stay alive while 120 stale entries pile up; when the
/// members' timers fire, the table must be back under 2 per live object + 64.
#[test]
fn stale_timers_are_swept_with_many_live_connections_and_members() {
    let limits = ocm_core::Config {
        handshake_timeout: std::time::Duration::from_secs(30),
        max_handshakes: 64,
        max_handshakes_per_ip: 32,
        ..ocm_sim::schedule::config()
    };
    let mut ops = vec![
        Op::Create {
            actor: 0,
            room: 0,
            user: 0,
            password: false,
        },
        Op::Join {
            actor: 0,
            room: 0,
            user: 1,
            password: 0,
        },
        Op::Join {
            actor: 0,
            room: 0,
            user: 2,
            password: 0,
        },
        Op::Create {
            actor: 0,
            room: 1,
            user: 0,
            password: false,
        },
        Op::Join {
            actor: 0,
            room: 1,
            user: 1,
            password: 0,
        },
    ];
    ops.extend([Op::Slowloris; 10]);
    ops.extend([Op::Flood { conns: 120 }, Op::Advance { ms: 30_000 }]);
    let s = Schedule {
        seed: 12,
        network: Network::Perfect,
        ops,
    };
    let outcome = run_with_config(&s, limits, Trace::default()).unwrap_or_else(|f| panic!("{f}"));
    let joined = outcome.coverage.statuses.get("Ok").copied().unwrap_or(0);
    let flood = answered_bad_requests(&outcome.coverage);
    assert_eq!(joined, 5, "the five members did not all get in");
    assert_eq!(flood, 120, "not every flood request was answered");
}

#[test]
fn same_seed_gives_the_same_trace() {
    let s = Schedule {
        seed: 42,
        network: Network::Lossy {
            loss: 100,
            duplicate: 50,
            corrupt: 50,
        },
        ops: vec![
            Op::Create {
                actor: 0,
                room: 0,
                user: 0,
                password: true,
            },
            Op::Advance { ms: 500 },
            Op::Join {
                actor: 1,
                room: 0,
                user: 1,
                password: 1,
            },
            Op::Advance { ms: 500 },
            Op::Send { actor: 0, text: 1 },
            Op::Send { actor: 1, text: 0 },
            Op::Replay { index: 1 },
            Op::Advance { ms: 30_000 },
        ],
    };
    let a = run(&s).unwrap();
    let b = run(&s).unwrap();
    assert_eq!((a.trace_hash, a.trace_len), (b.trace_hash, b.trace_len));
    let other = run(&Schedule { seed: 43, ..s }).unwrap();
    assert_ne!(
        a.trace_hash, other.trace_hash,
        "the seed does not reach the trace"
    );
}
