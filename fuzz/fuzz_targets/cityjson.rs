//! cityjson: CityJSON documents and CityJSON Sequences (the same bytes read both ways). The body is `tvilling_fuzz::targets::run`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tvilling_fuzz::run("cityjson", data));
