//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use tvilling::{Cli, Setup, setup_from_cli};
use tvilling_city::load::LoadProgress;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A file of the project's shared data (`../shared/data` beside the repository).
pub fn shared_data(name: &str) -> PathBuf {
    let p = repo().join("../shared/data").join(name);
    assert!(
        p.exists(),
        "shared data file {} is missing: clone the project with shared/ beside it",
        p.display()
    );
    p
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tvilling-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Setup for command-line arguments (as `tvilling ARGS`).
pub fn setup(args: &[&str]) -> Setup {
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once("tvilling").chain(args.iter().copied()))
        .expect("arguments");
    setup_from_cli(&cli).expect("setup")
}

/// A headless app (MinimalPlugins + model plugins), updated until the city has loaded.
pub fn loaded_app(args: &[&str]) -> App {
    let mut app = tvilling::modes::headless_app(&setup(args)).expect("app");
    let start = Instant::now();
    while !app.world().resource::<LoadProgress>().is_done() {
        app.update();
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "city did not load in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    app.update();
    app
}

/// Updates `app` until `done` holds (45 s at most: the machine may be busy with other tests).
pub fn update_until(app: &mut App, mut done: impl FnMut(&World) -> bool, what: &str) {
    let start = Instant::now();
    loop {
        app.update();
        if done(app.world()) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `done` holds (45 s at most), polling every 20 ms.
pub fn wait(mut done: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A JSON file (a snapshot) read and parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("file")).expect("json")
}

/// The snapshot feature with this id.
pub fn feature(doc: &serde_json::Value, id: &str) -> serde_json::Value {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no feature {id}"))
}

/// A loopback port nobody listens on now (for a broker or SUMO the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `tvilling ARGS` and requires it to succeed (its stderr in the failure message).
pub fn tvilling_ok<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(args)
        .output()
        .expect("run tvilling");
    assert!(
        out.status.success(),
        "tvilling failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
