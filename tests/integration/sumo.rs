//! The SUMO network built from the shipped extract (`scripts/sumo-network.sh`, real netconvert,
//! randomTrips.py and duarouter) and its traffic lights matched to the twin's controllers.

use std::process::Command;

use tvilling::sumo::{match_report, read_overrides};

use crate::common::{free_port, read_json, temp_dir};

#[test]
fn the_network_builds_from_the_shipped_extract_and_every_light_finds_its_controller() {
    let cfg = network("sumo-net");
    let dir = cfg.parent().expect("dir").to_path_buf();
    let (net, r) = match_report(&cfg, None, 40.0, &[]).expect("match");
    // SWEREF 99 TM: SUMO's origin sits at the extract's south-west corner.
    assert!(
        (673_000.0..674_500.0).contains(&-net.offset.0),
        "{:?}",
        net.offset
    );
    assert!(
        (6_580_000.0..6_582_000.0).contains(&-net.offset.1),
        "{:?}",
        net.offset
    );
    assert_eq!(net.lights.len(), 61);
    // Every SUMO light stands within 40 m of one of the twin's 40 controllers; 33 controllers
    // have a light, 7 have none (on streets SUMO's passenger network leaves out).
    assert_eq!((r.matched.len(), r.sumo_only.len()), (61, 0), "{r:?}");
    assert_eq!(r.twin_only.len(), 7, "{:?}", r.twin_only);
    assert!(r.matched.iter().all(|m| m.2 <= 40.0));
    // An override file pairs a light by hand, even beyond reach.
    let file = dir.join("overrides.txt");
    // A light whose controller keeps another light.
    let shared = |c: &str| r.matched.iter().filter(|m| m.1 == c).count() > 1;
    let (light, _, _) = r
        .matched
        .iter()
        .find(|m| shared(&m.1))
        .cloned()
        .expect("a controller with two lights");
    let ctrl = r.twin_only[0].clone();
    std::fs::write(&file, format!("# by hand\n{light} {ctrl}\n")).expect("write");
    let overrides = read_overrides(&file).expect("overrides");
    let (_, r2) = match_report(&cfg, None, 40.0, &overrides).expect("match");
    assert!(r2.matched.iter().any(|m| m.0 == light && m.1 == ctrl));
    assert_eq!(r2.twin_only.len(), 6);
    std::fs::write(&file, "only-one-word\n").expect("write");
    let e = read_overrides(&file).expect_err("refused").to_string();
    assert!(
        e.contains(":1: expected SUMO_LIGHT_ID CONTROLLER_ID"),
        "{e}"
    );
}

/// Builds the network into a test folder.
fn network(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/sumo-network.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("stockholm.sumocfg")
}

/// `tvilling --headless` for 07:30-07:40 local on 23 November with extra arguments; the
/// snapshot.
fn headless(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let snap = dir.join("snap.geojson");
    let out = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args([
            "--headless",
            "--simulate",
            "1",
            "--sim-start",
            "2026-11-23T06:30",
        ])
        .args(["--until", "2026-11-23T06:40", "--snapshot"])
        .arg(&snap)
        .args(extra)
        .output()
        .expect("tvilling");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_json(&snap)
}

#[test]
fn vehicles_from_sumo_join_the_snapshot_where_sumo_has_them() {
    let cfg = network("sumo-cosim");
    // SUMO's own record of the same run, in longitude and latitude.
    let fcd = cfg.with_file_name("fcd.xml");
    let text = std::fs::read_to_string(&cfg).expect("cfg").replace(
        "</configuration>",
        &format!(
            "  <output>\n    <fcd-output value=\"{}\"/>\n    <fcd-output.geo value=\"true\"/>\n  </output>\n</configuration>",
            fcd.display()
        ),
    );
    std::fs::write(&cfg, text).expect("cfg");
    let doc = headless(
        cfg.parent().expect("dir"),
        &["--sumo", &cfg.display().to_string()],
    );
    let sumo = &doc["diagnostics"]["sumo"];
    assert_eq!(sumo["time_s"], 27600.0, "{sumo}");
    assert!(sumo["ended"].is_null(), "{sumo}");
    let vehicles: Vec<&serde_json::Value> = doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == "vehicle")
        .collect();
    assert!(vehicles.len() > 50, "{} vehicles", vehicles.len());
    assert_eq!(sumo["vehicles"], vehicles.len());
    // The last step's positions in SUMO's FCD output (labelled by the time the step began).
    let text = std::fs::read_to_string(&fcd).expect("fcd");
    let last = text
        .split("<timestep time=\"27599.00\">")
        .nth(1)
        .and_then(|t| t.split("</timestep>").next())
        .expect("the last step in SUMO's output");
    let attr = |line: &str, name: &str| -> Option<f64> {
        let key = format!(" {name}=\"");
        line.split(&key).nth(1)?.split('"').next()?.parse().ok()
    };
    let mut truth = std::collections::HashMap::new();
    for line in last.lines().filter(|l| l.contains("<vehicle ")) {
        let id = line
            .split(" id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        if let (Some(id), Some(x), Some(y)) = (id, attr(line, "x"), attr(line, "y")) {
            truth.insert(id.to_string(), (x, y));
        }
    }
    assert_eq!(truth.len(), vehicles.len(), "the same vehicles");
    for v in vehicles {
        let p = &v["properties"];
        assert_eq!(p["source"], "sumo");
        let id = p["vehicle_id"].as_str().expect("id");
        let (lon, lat) = truth[id];
        let c = &v["geometry"]["coordinates"];
        let (vlon, vlat) = (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat"));
        // 1e-6 degrees: about 0.1 m here.
        assert!(
            (vlon - lon).abs() < 2e-6 && (vlat - lat).abs() < 1e-6,
            "{id}: twin {vlon},{vlat}, SUMO {lon},{lat}"
        );
        assert!(p["speed_ms"].as_f64().is_some() && p["waiting_s"].as_f64().is_some());
    }
}

#[test]
fn sumo_killed_mid_run_is_reported_and_the_twin_goes_on() {
    let cfg = network("sumo-killed");
    let dir = cfg.parent().expect("dir").to_path_buf();
    // A SUMO of our own, attached to, killed once the twin has connected and stepped a while;
    // the twin runs two simulated hours (about 7,200 SUMO steps, several seconds).
    let port = free_port();
    let mut sumo = Command::new("sumo")
        .env("SUMO_HOME", "/usr/share/sumo")
        .arg("-c")
        .arg(&cfg)
        .args(["--remote-port", &port.to_string(), "--begin", "27000"])
        .args(["--no-step-log", "--no-warnings"])
        .spawn()
        .expect("sumo");
    let snap = dir.join("snap.geojson");
    let mut twin = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args([
            "--headless",
            "--simulate",
            "1",
            "--sim-start",
            "2026-11-23T06:30",
        ])
        .args(["--until", "2026-11-23T08:30", "--snapshot"])
        .arg(&snap)
        .arg("--sumo")
        .arg(&cfg)
        .args(["--sumo-attach", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tvilling");
    let stderr = twin.stderr.take().expect("stderr");
    let mut log = Vec::new();
    let mut killed = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        if !killed && line.contains("traffic lights, from") {
            std::thread::sleep(std::time::Duration::from_millis(500));
            sumo.kill().expect("kill sumo");
            killed = true;
        }
        log.push(line);
    }
    let _ = sumo.wait();
    assert!(killed, "the twin never connected: {}", log.join("\n"));
    assert!(twin.wait().expect("twin").success(), "{}", log.join("\n"));
    let doc = read_json(&snap);
    let s = &doc["diagnostics"]["sumo"];
    assert!(
        s["ended"]
            .as_str()
            .is_some_and(|e| e.contains("SUMO ended")),
        "{s}"
    );
    assert!(
        s["time_s"]
            .as_f64()
            .is_some_and(|t| t > 27000.0 && t < 34_200.0),
        "{s}"
    );
    assert_eq!(s["vehicles"], 0, "its vehicles are gone with it");
    // The twin went on to the end: the simulator's devices are in the snapshot.
    assert!(doc["features"].as_array().expect("f").len() > 1000);
    assert!(
        log.iter()
            .any(|l| l.contains("the twin goes on without it"))
    );
}
