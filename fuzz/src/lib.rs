//! What the fuzz targets share: their bodies (`targets.rs`, also replayed by the integration
//! tests on stable) and the binary's own config parser (app/src/config.rs, read as the binary
//! reads it).

pub mod targets;

/// The app's config module, compiled here without the rest of the binary (it needs only the
/// sensors crate, serde, toml and anyhow).
#[path = "../../app/src/config.rs"]
#[allow(dead_code)]
pub mod config;

/// Runs one input through `target`, the config target through the app's own parser with a
/// fixed fake environment (nothing is read from the real one, nothing is connected to).
pub fn run(target: &str, data: &[u8]) {
    targets::run(target, data, &|text| {
        let env = |var: &str| var.starts_with("TVILLING_").then(|| "fuzz".to_string());
        let _ = config::parse(text, std::path::Path::new("/nonexistent"), &env);
    });
}
