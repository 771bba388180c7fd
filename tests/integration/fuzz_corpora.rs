//! The fuzz corpora replayed on the stable toolchain: every committed seed (real samples and
//! the tests' payloads), every input the fuzzers kept for its coverage, and every input that
//! once crashed a target (fuzz/regressions/TARGET) goes through the fuzz targets' own body
//! (`fuzz/src/targets.rs`, included here), and none may panic. The coverage-guided runs
//! themselves are `scripts/fuzz.sh` (cargo-fuzz, nightly).

use std::path::Path;

use crate::common::repo;

#[path = "../../fuzz/src/targets.rs"]
mod targets;

/// Every input of a target: seeds, kept corpus, regressions.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(repo().join("fuzz").join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            out.push(std::fs::read(e.expect("entry").path()).expect("input"));
        }
    }
    out
}

#[test]
fn every_fuzz_seed_and_crash_input_runs_through_its_target_without_a_panic() {
    let env = |v: &str| v.starts_with("TVILLING_").then(|| "fuzz".to_string());
    let (mut configs, mut buildings) = (0, 0);
    let parse_config = |text: &str| {
        let _ = tvilling::config::parse(text, Path::new("/nonexistent"), &env);
    };
    for target in targets::TARGETS {
        let all = inputs(target);
        assert!(!all.is_empty(), "{target}: no seeds");
        let mut found = targets::Found::default();
        for data in &all {
            let f = targets::run(target, data, &parse_config);
            found.observations += f.observations;
            found.values += f.values;
            found.buildings += f.buildings;
        }
        // The real seeds decode and load: a target that reads nothing checks nothing.
        if targets::format(target).is_some() {
            assert!(found.observations > 0, "{target}: no input decoded");
            // SensorThings results are mapped by registry rules (`result`), not kind defaults.
            assert!(
                found.values > 0 || target == "sensorthings",
                "{target}: no input gave a value"
            );
        }
        if ["osm", "geojson", "cityjson", "gltf"].contains(&target) {
            assert!(found.buildings > 0, "{target}: no building loaded");
        }
        buildings += found.buildings;
        if target == "config" {
            configs = all.len();
        }
    }
    assert!(configs > 0);
    assert!(buildings > 5, "the real seeds load: {buildings} buildings");
    // The config parser itself accepts the example seed: the seed is a real config.
    let example = std::fs::read_to_string(repo().join("fuzz/seeds/config/example.toml"))
        .expect("config seed");
    assert!(tvilling::config::parse(&example, Path::new("/nonexistent"), &env).is_ok());
}
