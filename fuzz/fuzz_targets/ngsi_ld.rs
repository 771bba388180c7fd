//! ngsi_ld: FIWARE NGSI-LD entities, decoded and resolved under every kind's rules. The body is `tvilling_fuzz::targets::run`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tvilling_fuzz::run("ngsi_ld", data));
