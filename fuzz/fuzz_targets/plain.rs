//! plain: decode a payload, then resolve every observation under each kind's rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_fuzz::decode_and_resolve;
#[allow(unused_imports)]
use tvilling_sensors::codec::{PayloadFormat, PlainMapping};

fuzz_target!(|data: &[u8]| {
    decode_and_resolve(&PayloadFormat::Plain(PlainMapping {
        device_path: "dev.id".into(),
        time_path: Some("ts".into()),
        fields: vec![
            ("no2".into(), "m.no2".into()),
            ("power".into(), "m.p".into()),
            ("dim_level".into(), "dim".into()),
        ],
    }), data);
});
