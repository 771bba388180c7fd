//! The fuzz corpora replayed on the stable toolchain: every committed seed (real samples and
//! the tests' payloads), every input the fuzzers kept for its coverage, and every input that
//! once crashed a target (fuzz/regressions/TARGET) goes through the same decoder or parser as
//! in `fuzz/fuzz_targets/`, and none may panic. The coverage-guided runs themselves are
//! `scripts/fuzz.sh` (cargo-fuzz, nightly).

use std::path::{Path, PathBuf};

use tvilling_city::import::ImportOptions;
use tvilling_geo::Crs;
use tvilling_sensors::apply::resolve;
use tvilling_sensors::codec::{DecodeContext, PayloadFormat, PlainMapping, decode};
use tvilling_sensors::registry::{CompiledRule, DeviceKind, default_rules};

use crate::common::repo;

/// Every input of a target: seeds, kept corpus, regressions.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(repo().join("fuzz").join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("input");
            out.push((path, bytes));
        }
    }
    out
}

/// Observations decoded, and values resolved under the kinds' default rules.
fn decode_and_resolve(format: &PayloadFormat, data: &[u8]) -> (usize, usize) {
    let ctx = DecodeContext {
        topic: "fuzz/topic",
        now_ms: 1_795_478_400_000,
        ..DecodeContext::default()
    };
    let Ok(observations) = decode(format, data, &ctx) else {
        return (0, 0);
    };
    let mut values = 0;
    for kind in [
        DeviceKind::SignalHead,
        DeviceKind::Lamp,
        DeviceKind::Meter,
        DeviceKind::AirSensor,
    ] {
        let rules: Vec<CompiledRule> = default_rules(kind).into_iter().map(Into::into).collect();
        for o in &observations {
            let r = resolve(o, &rules, |e| {
                let _ = e.to_string();
            });
            assert!(r.values.iter().all(|(_, v)| v.is_finite()));
            values += r.values.len();
        }
    }
    (observations.len(), values)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

#[test]
fn every_fuzz_corpus_input_decodes_or_is_refused_without_a_panic() {
    let plain = PayloadFormat::Plain(PlainMapping {
        device_path: "dev.id".into(),
        time_path: Some("ts".into()),
        fields: vec![
            ("no2".into(), "m.no2".into()),
            ("power".into(), "m.p".into()),
            ("dim_level".into(), "dim".into()),
        ],
    });
    let formats = [
        ("senml", PayloadFormat::SenMl),
        ("chirpstack", PayloadFormat::ChirpStack),
        ("tts", PayloadFormat::TheThingsStack),
        ("ngsi_ld", PayloadFormat::NgsiLd),
        ("sensorthings", PayloadFormat::SensorThings),
        ("plain", plain),
    ];
    for (target, format) in &formats {
        let all = inputs(target);
        assert!(all.len() >= 2, "{target}: {} inputs", all.len());
        let (observations, values) = all
            .iter()
            .map(|(_, d)| decode_and_resolve(format, d))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert!(observations > 0, "{target}: no input decoded");
        // SensorThings results are mapped by registry rules (`result`), not by kind defaults.
        assert!(
            values > 0 || *target == "sensorthings",
            "{target}: no input gave a value"
        );
    }
}

#[test]
fn every_fuzz_corpus_file_parses_or_is_refused_without_a_panic() {
    let path = Path::new("fuzz-input");
    let options = ImportOptions {
        scene_crs: Crs::WGS84,
        source_crs: None,
    };
    let mut buildings = 0;
    for (_, d) in inputs("registry") {
        if let Some(t) = text(&d) {
            let _ = tvilling_sensors::registry_file::parse_registry(t, "fuzz.toml");
        }
    }
    let env = |v: &str| (v == "TVILLING_MQTT_PASSWORD").then(|| "fuzz".to_string());
    let configs = inputs("config");
    assert!(!configs.is_empty());
    for (_, d) in configs {
        if let Some(t) = text(&d) {
            let _ = tvilling::config::parse(t, Path::new("/nonexistent"), &env);
        }
    }
    for (_, d) in inputs("osm") {
        if let Some(t) = text(&d) {
            buildings += tvilling_city::import::osm::import_osm(path, t, Crs::WGS84)
                .buildings
                .len();
        }
    }
    for (_, d) in inputs("geojson") {
        if let Some(t) = text(&d) {
            buildings += tvilling_city::import::geojson::import_geojson(path, t, &options)
                .buildings
                .len();
        }
    }
    for (_, d) in inputs("cityjson") {
        if let Some(t) = text(&d) {
            use tvilling_city::import::cityjson::{import_cityjson_seq, import_cityjson_with};
            buildings += import_cityjson_with(path, t, Crs::SWEREF99_TM, None)
                .buildings
                .len();
            buildings += import_cityjson_seq(path, t, Crs::SWEREF99_TM, None)
                .buildings
                .len();
        }
    }
    for (_, d) in inputs("gltf") {
        let placement = tvilling_city::import::gltf_model::ModelPlacement {
            path: "f.glb".into(),
            name: None,
            lon: 18.0686,
            lat: 59.3326,
            height: 0.0,
            heading: 30.0,
            scale: 1.0,
        };
        buildings +=
            tvilling_city::import::gltf_model::import_model_bytes(&placement, &d, Crs::WGS84)
                .buildings
                .len();
    }
    assert!(buildings > 5, "the real seeds load: {buildings} buildings");
}
