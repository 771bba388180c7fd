//! cityjson: CityJSON documents and CityJSON Sequences (the same bytes are read both ways).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_city::import::cityjson::{import_cityjson_seq, import_cityjson_with};
use tvilling_geo::Crs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("f.city.json");
    for out in [
        import_cityjson_with(path, text, Crs::SWEREF99_TM, None),
        import_cityjson_seq(path, text, Crs::SWEREF99_TM, None),
    ] {
        for b in &out.buildings {
            assert!(b.height.is_finite(), "{}", b.id);
        }
    }
});
