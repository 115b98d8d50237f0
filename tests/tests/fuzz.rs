//! Replays every input the fuzz targets keep through the same checks the
//! targets run (`dyndns_fuzz`): `fuzz/regressions/<target>/` holds inputs
//! that once crashed, hung or broke an invariant; `fuzz/seeds/<target>/`
//! the hand-written starting corpus. A regression comes back as a failure
//! here, in the normal suite, without nightly or a fuzzer.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn check_of(target: &str) -> fn(&[u8]) {
    dyndns_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("{target:?} is not a fuzz target"))
}

/// Runs every file under `fuzz/<kind>/<target>/`; returns how many ran.
fn replay(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    let root = fuzz_dir().join(kind);
    for dir in fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let check = check_of(&target);
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).unwrap();
            count += 1;
            if panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(format!("{target}: {}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing inputs:\n{}",
        failures.join("\n")
    );
    count
}

#[test]
fn every_target_has_seeds() {
    for (target, _) in dyndns_fuzz::TARGETS {
        let dir = fuzz_dir().join("seeds").join(target);
        let n = fs::read_dir(&dir)
            .map(|d| d.count())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(n > 0, "no seeds for {target}");
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "{target} has no fuzz_targets/{target}.rs"
        );
    }
}

#[test]
fn seeds_pass_the_checks() {
    assert!(replay("seeds") > 0);
}

#[test]
fn regressions_stay_fixed() {
    assert!(replay("regressions") > 0);
}
