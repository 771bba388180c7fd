//! config: the live configuration file (TOML), parsed by the binary's own code. Secrets come
//! from a fixed fake environment; nothing is connected to.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |var: &str| (var == "TVILLING_MQTT_PASSWORD").then(|| "fuzz".to_string());
    let _ = tvilling_fuzz::config::parse(text, std::path::Path::new("/nonexistent"), &env);
});
