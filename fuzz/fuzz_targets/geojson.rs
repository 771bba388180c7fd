//! geojson: the GeoJSON importer (footprints with heights, `crs` member).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_city::import::ImportOptions;
use tvilling_geo::Crs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = ImportOptions {
        scene_crs: Crs::WGS84,
        source_crs: None,
    };
    let out = tvilling_city::import::geojson::import_geojson(std::path::Path::new("f.geojson"), text, &options);
    for b in &out.buildings {
        assert!(b.height.is_finite(), "{}", b.id);
    }
});
