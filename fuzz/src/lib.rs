//! What the fuzz targets share: the decode-then-resolve path every live message takes, and the
//! binary's own config parser (app/src/config.rs, read as the binary reads it).

use tvilling_sensors::apply::resolve;
use tvilling_sensors::codec::{DecodeContext, PayloadFormat, decode};
use tvilling_sensors::registry::{CompiledRule, DeviceKind, default_rules};

/// The app's config module, compiled here without the rest of the binary (it needs only the
/// sensors crate, serde, toml and anyhow).
#[path = "../../app/src/config.rs"]
#[allow(dead_code)]
pub mod config;

/// Decodes `data` as `format` (receive time 2026-11-24T00:00Z, the default payload limit) and
/// resolves every observation under every kind's default rules, as the apply system would.
pub fn decode_and_resolve(format: &PayloadFormat, data: &[u8]) {
    let ctx = DecodeContext {
        topic: "fuzz/topic",
        now_ms: 1_795_478_400_000,
        ..DecodeContext::default()
    };
    let Ok(observations) = decode(format, data, &ctx) else {
        return;
    };
    let kinds = [
        DeviceKind::SignalHead,
        DeviceKind::Lamp,
        DeviceKind::Meter,
        DeviceKind::AirSensor,
    ];
    let rules: Vec<Vec<CompiledRule>> = kinds
        .iter()
        .map(|k| default_rules(*k).into_iter().map(Into::into).collect())
        .collect();
    for o in &observations {
        for r in &rules {
            let resolved = resolve(o, r, |e| {
                let _ = e.to_string();
            });
            for (_, v) in resolved.values {
                assert!(v.is_finite(), "a resolved value is finite");
            }
        }
    }
}
