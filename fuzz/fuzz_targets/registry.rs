//! registry: the device registry file (TOML).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(devices) = tvilling_sensors::registry_file::parse_registry(text, "fuzz.toml") {
        for d in devices {
            assert!(!d.id.trim().is_empty());
            assert!((-180.0..=180.0).contains(&d.lon) && (-90.0..=90.0).contains(&d.lat));
        }
    }
});
