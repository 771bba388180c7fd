//! gltf: the glTF/GLB model importer, placed at Sergels torg.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_city::import::gltf_model::{ModelPlacement, import_model_bytes};
use tvilling_geo::Crs;

fuzz_target!(|data: &[u8]| {
    let placement = ModelPlacement {
        path: "f.glb".into(),
        name: None,
        lon: 18.0686,
        lat: 59.3326,
        height: 0.0,
        heading: 30.0,
        scale: 1.0,
    };
    let _ = import_model_bytes(&placement, data, Crs::WGS84);
});
