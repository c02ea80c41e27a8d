//! Record and replay: a session over real sockets, recorded by the server
//! (`--record` with outputs), replays through a fresh core with identical outputs.
//!
//! With `OCM_WRITE_TRACES=1` the smol runs also write their traces to `tests/traces/`,
//! the committed traces that `core/tests/traces.rs` replays on every `cargo test`.

use crate::common::{Runtime, TestServer};
use ocm_core::record::{self, TraceReader};
use ocm_core::Protocol;
use std::path::PathBuf;

crate::on_both_runtimes!(
    a_recorded_room_session_replays_with_identical_outputs,
    a_recorded_relay_session_replays_with_identical_outputs,
);

/// Lines each of the two talkers says.
const LINES: usize = 150;

fn trace_path(name: &str, runtime: Runtime) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ocm-e2e-{}-{name}-{}.trace",
        std::process::id(),
        runtime.flag()
    ))
}

/// Replays `path` with compare; keeps it under `tests/traces/` when asked to.
fn check_and_keep(path: &PathBuf, name: &str, runtime: Runtime) -> record::Summary {
    let trace = std::fs::read(path).expect("the trace was written");
    let _ = std::fs::remove_file(path);
    assert!(TraceReader::new(&trace).unwrap().header().outputs);
    let summary = record::replay(&trace, true).unwrap_or_else(|e| panic!("replay: {e}"));
    let write = std::env::var_os("OCM_WRITE_TRACES").is_some_and(|v| v == "1");
    if write && runtime == Runtime::Smol {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/traces");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.trace")), &trace).unwrap();
    }
    summary
}

fn a_recorded_room_session_replays_with_identical_outputs(runtime: Runtime) {
    let path = trace_path("rooms", runtime);
    let server = TestServer::recording(runtime, Protocol::Rooms, &path);
    let alice = server.create("lobby", "alice");
    let bob = server.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    for i in 0..LINES {
        bob.say(&format!("line {i} from bob"));
        alice.expect(&[&format!("bob: line {i} from bob")]);
        alice.say(&format!("reply {i}, ünïcödé ✓"));
        bob.expect(&[&format!("alice: reply {i}, ünïcödé ✓")]);
    }
    let stats = server.stop();
    let summary = check_and_keep(&path, "rooms-session", runtime);
    assert_eq!(
        summary.stats, stats,
        "the replayed core counts what the live one did"
    );
    assert_eq!(summary.stats.messages_relayed, 2 * LINES as u64);
    assert_eq!((summary.rooms_created, summary.members_joined), (1, 1));
    assert!(summary.outputs_compared > 2 * LINES as u64);
}

fn a_recorded_relay_session_replays_with_identical_outputs(runtime: Runtime) {
    let path = trace_path("relay", runtime);
    let server = TestServer::recording(runtime, Protocol::Relay, &path);
    let a = server.relay_client("a");
    let b = server.relay_client("b");
    a.expect(&["* b joined"]);
    for i in 0..LINES {
        a.say(&format!("ping {i}"));
        b.expect(&[&format!("a: ping {i}")]);
        b.say(&format!("pong {i}"));
        a.expect(&[&format!("b: pong {i}")]);
    }
    let stats = server.stop();
    let summary = check_and_keep(&path, "relay-session", runtime);
    assert_eq!(summary.stats, stats);
    assert_eq!(summary.stats.messages_relayed, 2 * LINES as u64);
    assert_eq!(summary.members_joined, 2);
}
