//! Replays the fuzz corpus on stable Rust, without libFuzzer: every file under
//! `fuzz/corpus/TARGET/` and `fuzz/regressions/TARGET/` goes through the same
//! `ocm_testkit::fuzz` function the cargo-fuzz target calls, so `cargo test` guards
//! every input the fuzzers ever kept or crashed on.
//!
//! The seed files (`fuzz/corpus/TARGET/seed-*`) are generated from
//! `ocm_testkit::fuzz::seeds`; after changing the seeds, rewrite them with
//! `OCM_WRITE_SEEDS=1 cargo test -p ocm-testkit --test fuzz_corpus`.

use ocm_testkit::fuzz::{seeds, TARGETS};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Inputs that still fail because of a core bug not fixed yet: `(path under fuzz/,
/// reason)`. Each is skipped with its reason printed; remove the line with the fix.
const KNOWN_BUGS: &[(&str, &str)] = &[];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/KIND/TARGET/`, sorted; none when the folder does not exist.
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable folder").path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs every file of `fuzz/KIND/*/` through its target; returns how many ran and the
/// failures (path and panic message).
fn replay(kind: &str) -> (usize, Vec<String>) {
    let (mut ran, mut failures) = (0, Vec::new());
    for (target, run) in TARGETS {
        for path in files(kind, target) {
            let name = format!(
                "{kind}/{target}/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            if let Some((_, reason)) = KNOWN_BUGS.iter().find(|(known, _)| *known == name) {
                eprintln!("skipping {name}: {reason}");
                continue;
            }
            let data = std::fs::read(&path).expect("readable corpus file");
            ran += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name}: {message}"));
            }
        }
    }
    (ran, failures)
}

#[test]
fn corpus_replays_without_a_failure() {
    let (ran, failures) = replay("corpus");
    assert!(
        failures.is_empty(),
        "{} corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= seeds::all().len(), "only {ran} corpus files found");
    eprintln!("replayed {ran} corpus inputs");
}

#[test]
fn regressions_replay_without_a_failure() {
    let (ran, failures) = replay("regressions");
    assert!(
        failures.is_empty(),
        "{} regressions fail again:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("replayed {ran} regression inputs");
}

#[test]
fn seed_files_match_the_generator() {
    let write = std::env::var_os("OCM_WRITE_SEEDS").is_some_and(|v| v == "1");
    let seeds = seeds::all();
    let mut expected = BTreeSet::new();
    for seed in &seeds {
        let dir = fuzz_dir().join("corpus").join(seed.target);
        let path = dir.join(format!("seed-{}", seed.name));
        assert!(
            expected.insert(path.clone()),
            "two seeds named {}",
            path.display()
        );
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &seed.bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == seed.bytes,
            "{} is stale: run with OCM_WRITE_SEEDS=1",
            path.display()
        );
    }
    for (target, _) in TARGETS {
        for path in files("corpus", target) {
            let seed_file = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-");
            if seed_file && !expected.contains(&path) {
                assert!(
                    write,
                    "{} is no longer generated: run with OCM_WRITE_SEEDS=1",
                    path.display()
                );
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
}

#[test]
fn every_target_has_a_one_line_fuzz_binary() {
    for (target, _) in TARGETS {
        let path = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} missing", path.display()));
        let call = format!("ocm_testkit::fuzz::{target}(data)");
        assert!(
            source.contains(&call),
            "{} does not call {call}",
            path.display()
        );
    }
}

#[test]
fn empty_input_passes_every_target() {
    for (_, run) in TARGETS {
        run(&[]);
    }
}
