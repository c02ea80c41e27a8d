//! Every committed trace under `tests/traces/` replays through a fresh core with the
//! outputs it was recorded with: a session from the field, once committed, is a
//! regression test. The traces are written by the e2e suite
//! (`OCM_WRITE_TRACES=1 cargo test -p ocm --test e2e record`); a change that makes the
//! core answer differently fails here until the traces are written again, on purpose.

use ocm_core::record::{replay, TraceError};
use std::path::PathBuf;

fn traces() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable folder").path())
        .filter(|path| path.extension().is_some_and(|e| e == "trace"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn committed_traces_replay_with_their_recorded_outputs() {
    let paths = traces();
    assert!(paths.len() >= 2, "the rooms and relay traces are committed");
    for path in paths {
        let trace = std::fs::read(&path).unwrap();
        let summary = replay(&trace, true).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(summary.stats.messages_relayed > 0, "{}", path.display());
        eprintln!("{}:\n{summary}", path.display());
    }
}

#[test]
fn a_committed_trace_with_one_byte_changed_no_longer_matches() {
    let path = &traces()[0];
    let mut trace = std::fs::read(path).unwrap();
    // The last byte belongs to an output record (the server's last words): flip it.
    *trace.last_mut().unwrap() ^= 0x20;
    assert!(matches!(
        replay(&trace, true),
        Err(TraceError::Mismatch { .. })
    ));
    assert!(replay(&trace, false).is_ok(), "its inputs still replay");
}
