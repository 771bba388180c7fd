//! tts: decode a payload, then resolve every observation under each kind's rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tvilling_fuzz::decode_and_resolve;
#[allow(unused_imports)]
use tvilling_sensors::codec::{PayloadFormat, PlainMapping};

fuzz_target!(|data: &[u8]| {
    decode_and_resolve(&PayloadFormat::TheThingsStack, data);
});
