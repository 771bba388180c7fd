//! The fuzz targets' bodies, one function for all: `run(target, data)` feeds `data` to the
//! decoder or parser the target is named after and checks what comes out. cargo-fuzz runs it
//! from `fuzz/fuzz_targets/` (nightly); the integration tests include this file and replay the
//! seeds and crash inputs through the same function on the stable toolchain.

use std::path::Path;

use tvilling_city::import::{ImportOptions, Imported};
use tvilling_geo::Crs;
use tvilling_sensors::apply::resolve;
use tvilling_sensors::codec::{DecodeContext, PayloadFormat, PlainMapping, decode};
use tvilling_sensors::registry::{CompiledRule, DeviceKind, default_rules};

/// Every target, by name.
pub const TARGETS: [&str; 12] = [
    "senml",
    "chirpstack",
    "tts",
    "ngsi_ld",
    "sensorthings",
    "plain",
    "registry",
    "config",
    "osm",
    "geojson",
    "cityjson",
    "gltf",
];

/// What a run found: observations decoded, values resolved, buildings imported.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Found {
    pub observations: usize,
    pub values: usize,
    pub buildings: usize,
}

/// The payload format of a decoder target; `plain` with a mapping like a config's.
pub fn format(target: &str) -> Option<PayloadFormat> {
    Some(match target {
        "senml" => PayloadFormat::SenMl,
        "chirpstack" => PayloadFormat::ChirpStack,
        "tts" => PayloadFormat::TheThingsStack,
        "ngsi_ld" => PayloadFormat::NgsiLd,
        "sensorthings" => PayloadFormat::SensorThings,
        "plain" => PayloadFormat::Plain(PlainMapping {
            device_path: "dev.id".into(),
            time_path: Some("ts".into()),
            fields: vec![
                ("no2".into(), "m.no2".into()),
                ("power".into(), "m.p".into()),
                ("dim_level".into(), "dim".into()),
            ],
        }),
        _ => return None,
    })
}

/// Decodes as the live pipeline does (receive time 2026-11-24T00:00Z, the default payload
/// limit), then resolves every observation under every kind's default rules.
fn decode_and_resolve(format: &PayloadFormat, data: &[u8]) -> Found {
    let ctx = DecodeContext {
        topic: "fuzz/topic",
        now_ms: 1_795_478_400_000,
        ..DecodeContext::default()
    };
    let Ok(observations) = decode(format, data, &ctx) else {
        return Found::default();
    };
    let mut found = Found {
        observations: observations.len(),
        ..Found::default()
    };
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
            assert!(r.values.iter().all(|(_, v)| v.is_finite()), "finite values");
            found.values += r.values.len();
        }
    }
    found
}

fn buildings(out: &Imported) -> usize {
    for b in &out.buildings {
        assert!(b.height.is_finite(), "{}: height {}", b.id, b.height);
    }
    out.buildings.len()
}

/// Runs one input through `target`. Importers read into SWEREF 99 TM, the twin's scene CRS: a
/// footprint in degrees would be too small to mesh, and the meshing would go unfuzzed. `parse_config` is the binary's config parser (the fuzz
/// crate compiles `app/src/config.rs` itself; the tests call the app library's).
pub fn run(target: &str, data: &[u8], parse_config: &dyn Fn(&str)) -> Found {
    if let Some(format) = format(target) {
        return decode_and_resolve(&format, data);
    }
    let path = Path::new("fuzz-input");
    if target == "gltf" {
        let placement = tvilling_city::import::gltf_model::ModelPlacement {
            path: "f.glb".into(),
            name: None,
            lon: 18.0686,
            lat: 59.3326,
            height: 0.0,
            heading: 30.0,
            scale: 1.0,
        };
        let out = tvilling_city::import::gltf_model::import_model_bytes(
            &placement,
            data,
            Crs::SWEREF99_TM,
        );
        return Found {
            buildings: buildings(&out),
            ..Found::default()
        };
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return Found::default();
    };
    let imported = match target {
        "registry" => {
            if let Ok(devices) = tvilling_sensors::registry_file::parse_registry(text, "fuzz.toml")
            {
                for d in devices {
                    assert!(!d.id.trim().is_empty());
                    assert!((-180.0..=180.0).contains(&d.lon) && (-90.0..=90.0).contains(&d.lat));
                }
            }
            0
        }
        "config" => {
            parse_config(text);
            0
        }
        "osm" => buildings(&tvilling_city::import::osm::import_osm(
            path,
            text,
            Crs::SWEREF99_TM,
        )),
        "geojson" => {
            let options = ImportOptions {
                scene_crs: Crs::SWEREF99_TM,
                source_crs: None,
            };
            buildings(&tvilling_city::import::geojson::import_geojson(
                path, text, &options,
            ))
        }
        "cityjson" => {
            use tvilling_city::import::cityjson::{import_cityjson_seq, import_cityjson_with};
            buildings(&import_cityjson_with(path, text, Crs::SWEREF99_TM, None))
                + buildings(&import_cityjson_seq(path, text, Crs::SWEREF99_TM, None))
        }
        other => panic!("no fuzz target {other:?}"),
    };
    Found {
        buildings: imported,
        ..Found::default()
    }
}
