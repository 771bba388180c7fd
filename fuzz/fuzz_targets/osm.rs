//! osm: the OSM XML importer (ways, multipolygon relations, signals, streets, lamps).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_geo::Crs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = tvilling_city::import::osm::import_osm(std::path::Path::new("f.osm"), text, Crs::WGS84);
    tvilling_fuzz_check(&out);
});

fn tvilling_fuzz_check(out: &tvilling_city::import::Imported) {
    for b in &out.buildings {
        assert!(b.height.is_finite(), "{}", b.id);
    }
}
