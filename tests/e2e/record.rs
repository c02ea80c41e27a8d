//! Record and replay: a session over real sockets, recorded by the server
//! (`--record` with outputs), replays through a fresh core with identical outputs.
//!
//! With `OCM_WRITE_TRACES=1` the smol runs also write their traces to `tests/traces/`,
//! the committed traces that `core/tests/traces.rs` replays on every `cargo test`.

use crate::common::{Runtime, TestClient, TestServer};
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

/// The two talk in turn, each line waited for before the next.
fn talk(a: &TestClient, b: &TestClient) {
    for i in 0..LINES {
        for (speaker, listener) in [(b, a), (a, b)] {
            let text = format!("line {i} from {}, ünïcödé ✓", speaker.name());
            speaker.say(&text);
            listener.expect(&[&format!("{}: {text}", speaker.name())]);
        }
    }
}

/// Stops the server, replays its trace with compare, and checks the replayed core
/// counted exactly what the live one did.
fn stop_and_replay(
    server: TestServer,
    path: &PathBuf,
    name: &str,
    runtime: Runtime,
) -> record::Summary {
    let stats = server.stop();
    let summary = check_and_keep(path, name, runtime);
    assert_eq!(
        summary.stats, stats,
        "the replayed core counts what the live one did"
    );
    assert_eq!(summary.stats.messages_relayed, 2 * LINES as u64);
    assert!(summary.outputs_compared > 2 * LINES as u64);
    summary
}

fn a_recorded_room_session_replays_with_identical_outputs(runtime: Runtime) {
    let path = trace_path("rooms", runtime);
    let server = TestServer::recording(runtime, Protocol::Rooms, &path);
    let alice = server.create("lobby", "alice");
    let bob = server.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    talk(&alice, &bob);
    let summary = stop_and_replay(server, &path, "rooms-session", runtime);
    assert_eq!((summary.rooms_created, summary.members_joined), (1, 1));
}

fn a_recorded_relay_session_replays_with_identical_outputs(runtime: Runtime) {
    let path = trace_path("relay", runtime);
    let server = TestServer::recording(runtime, Protocol::Relay, &path);
    let a = server.relay_client("a");
    let b = server.relay_client("b");
    a.expect(&["* b joined"]);
    talk(&a, &b);
    let summary = stop_and_replay(server, &path, "relay-session", runtime);
    assert_eq!(summary.members_joined, 2);
}
