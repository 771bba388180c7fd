//! The default scene and its data, compiled into the binary so `tvilling` runs from anywhere.

use std::path::Path;

/// `scenes/stockholm.toml`.
pub const DEFAULT_SCENE: &str = include_str!("../../scenes/stockholm.toml");

/// Files the default scene names, by their path in the scene file.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "../assets/osm/stockholm-norrmalm-ostermalm.osm",
        "stockholm-norrmalm-ostermalm.osm",
        include_bytes!("../../assets/osm/stockholm-norrmalm-ostermalm.osm"),
    ),
    (
        "../assets/water/vatten.geojson",
        "vatten.geojson",
        include_bytes!("../../assets/water/vatten.geojson"),
    ),
    (
        "../assets/models/obelisk.glb",
        "obelisk.glb",
        include_bytes!("../../assets/models/obelisk.glb"),
    ),
];

/// The embedded bytes for a path named in the default scene.
pub fn lookup(path: &Path) -> Option<(&'static str, &'static [u8])> {
    FILES
        .iter()
        .find(|(p, _, _)| Path::new(p) == path)
        .map(|(_, name, bytes)| (*name, *bytes))
}
