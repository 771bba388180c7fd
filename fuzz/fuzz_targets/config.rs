//! config: the live configuration file (TOML), parsed by the binary's own code. The body is `tvilling_fuzz::targets::run`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tvilling_fuzz::run("config", data));
