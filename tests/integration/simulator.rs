//! The built-in simulator on the shipped Stockholm extract: the generated registry, the
//! values it drives through the SenML decoder, health judged in simulated time, determinism.

use std::process::Command;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use serde_json::Value;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::state::{Device, DeviceSlot, LiveEdge, SignalAspect};

use crate::common::{loaded_app, temp_dir};

/// `tvilling --headless` with the simulator; returns the snapshot.
fn run(name: &str, args: &[&str]) -> Value {
    let out = temp_dir(name).join("twin.geojson");
    let status = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(["--headless", "--snapshot"])
        .arg(&out)
        .args(args)
        .status()
        .expect("run tvilling");
    assert!(status.success(), "{args:?}");
    serde_json::from_str(&std::fs::read_to_string(&out).expect("snapshot")).expect("json")
}

fn features<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == kind)
        .collect()
}

/// Metres between two WGS 84 points (equirectangular; fine at street scale).
fn metres(a: &Value, b: &Value) -> f64 {
    let (lon1, lat1) = (a[0].as_f64().expect("lon"), a[1].as_f64().expect("lat"));
    let (lon2, lat2) = (b[0].as_f64().expect("lon"), b[1].as_f64().expect("lat"));
    let x = (lon2 - lon1).to_radians() * (lat1.to_radians().cos()) * 6_371_000.0;
    let y = (lat2 - lat1).to_radians() * 6_371_000.0;
    x.hypot(y)
}

#[test]
fn the_default_demo_generates_devices_and_drives_them_live_at_night() {
    // 17:00 UTC on 23 November is 18:00 in Stockholm, an hour and a half after sunset.
    let doc = run(
        "sim-night",
        &[
            "--simulate",
            "7",
            "--sim-start",
            "2026-11-23T17:00",
            "--duration",
            "2",
        ],
    );
    let lamps = features(&doc, "lamp");
    let heads = features(&doc, "signal_head");
    let air = features(&doc, "air_sensor");
    let buildings = features(&doc, "building");
    // The extract's streets are about 28 km long: at 25-40 m, some 700-1100 lamps.
    assert!((700..=1100).contains(&lamps.len()), "{} lamps", lamps.len());
    assert_eq!(heads.len(), 168);
    assert!((3..=10).contains(&air.len()), "{} air sensors", air.len());
    // The 6 lamps surveyed in OSM are kept and marked so; every other one says it is generated.
    let origin = |f: &Value| {
        f["properties"]["device_origin"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        lamps
            .iter()
            .filter(|f| origin(f).as_deref() == Some("surveyed"))
            .count(),
        6
    );
    assert!(
        lamps
            .iter()
            .chain(&air)
            .all(|f| origin(f).is_some_and(|o| o == "generated" || o == "surveyed"))
    );
    assert!(
        buildings
            .iter()
            .all(|f| origin(f).as_deref() == Some("generated")
                && f["properties"]["power_kw"].is_number()),
        "one meter per building, with a value"
    );
    // No two lamps closer than the clearance (12 m), checked on a sample against all.
    for a in lamps.iter().step_by(17) {
        for b in &lamps {
            if a["id"] != b["id"] {
                let d = metres(&a["geometry"]["coordinates"], &b["geometry"]["coordinates"]);
                assert!(d > 11.5, "{} and {}: {d:.1} m", a["id"], b["id"]);
            }
        }
    }
    // Every device has reported through the simulator, in simulated time.
    for f in lamps.iter().chain(&heads).chain(&air).chain(&buildings) {
        let p = &f["properties"];
        assert_eq!(p["source"], "simulator", "{}", f["id"]);
        assert!(
            p["last_seen"]
                .as_str()
                .is_some_and(|t| t.starts_with("2026-11-23T17:0")),
            "{}: {}",
            f["id"],
            p["last_seen"]
        );
    }
    // At night lamps are lit; a lamp that is dark or reports a driver fault is in fault, with
    // a reason, and every lit, healthy lamp is live.
    let mut dark = 0;
    for f in &lamps {
        let p = &f["properties"];
        let on = p["on"].as_bool().expect("on");
        let flagged = p["lamp_fault"].as_bool().expect("lamp_fault");
        if !on || flagged {
            dark += usize::from(!on);
            assert_eq!(p["health"], "fault", "{}", f["id"]);
            assert!(p["fault"].as_str().is_some_and(|r| !r.is_empty()));
        } else {
            assert_eq!(p["health"], "live", "{}", f["id"]);
            assert_eq!(p["dim_pct"], 100.0);
            assert!(p["power_w"].as_f64().expect("power") > 25.0);
        }
    }
    assert!(
        dark * 50 < lamps.len(),
        "{dark} dark lamps: a few, not many"
    );
    for f in &heads {
        let aspect = f["properties"]["aspect"].as_str().expect("aspect");
        assert!(
            ["Red", "RedAmber", "Green", "Amber"].contains(&aspect),
            "{aspect}"
        );
    }
    // 18:00 on a weekday: NO2 above the clean background on the busiest streets.
    for f in &air {
        let no2 = f["properties"]["no2_ugm3"].as_f64().expect("no2");
        assert!((10.0..80.0).contains(&no2), "{no2}");
    }
    let sim = &doc["diagnostics"]["sources"]["simulator"];
    let devices = lamps.len() + heads.len() + air.len() + buildings.len();
    assert!(sim["accepted"].as_u64().expect("accepted") >= devices as u64);
    assert_eq!(sim["rejected"], serde_json::json!({}));
    assert_eq!(doc["diagnostics"]["unknown_devices"], serde_json::json!([]));
}

#[test]
fn one_seed_places_the_same_devices_and_lamps_are_dark_at_noon() {
    let args = |seed: &'static str| {
        [
            "--simulate",
            seed,
            "--sim-start",
            "2026-11-23T11:00",
            "--duration",
            "1",
        ]
    };
    let a = run("sim-a", &args("7"));
    let b = run("sim-b", &args("7"));
    let c = run("sim-c", &args("8"));
    let placed = |doc: &Value| -> Vec<(String, String)> {
        features(doc, "lamp")
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().expect("id").to_string(),
                    f["geometry"]["coordinates"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(placed(&a), placed(&b));
    assert_ne!(placed(&a), placed(&c), "another seed, other spacings");
    // Midday in November (sun about 8 degrees up): every lamp is off and none is in fault.
    for f in features(&a, "lamp") {
        assert_eq!(f["properties"]["on"], false, "{}", f["id"]);
        assert_ne!(f["properties"]["health"], "fault", "{}", f["id"]);
    }
}

#[test]
fn signal_heads_run_the_swedish_sequence_through_the_decoder() {
    // Ten simulated seconds per second: a few seconds cover a whole cycle. Every report
    // is encoded as SenML and decoded by the codec a broker's messages go through.
    let mut app = loaded_app(&[
        "--simulate",
        "3",
        "--sim-start",
        "2026-11-23T07:00",
        "--sim-speed",
        "10",
        "--sim-path",
        "senml",
    ]);
    let start = Instant::now();
    let mut q = app.world_mut().query::<(&Device, &DeviceSlot)>();
    let aspects = |w: &World, slot: &DeviceSlot| -> Vec<(i64, SignalAspect)> {
        w.resource::<LiveEdge>()
            .series(slot.0, Quantity::SignalAspect)
            .filter_map(|(t, v)| SignalAspect::from_code(v).map(|a| (t, a)))
            .collect()
    };
    let changes =
        |series: &[(i64, SignalAspect)]| series.windows(2).filter(|w| w[0].1 != w[1].1).count();
    loop {
        let cycled = q
            .iter(app.world())
            .filter(|(_, s)| changes(&aspects(app.world(), s)) >= 4)
            .count();
        if cycled >= 50 {
            break;
        }
        app.update();
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "signals did not cycle: {cycled} heads with 4 changes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each head's changes follow red -> red-amber -> green -> amber -> red; keep-alives repeat
    // the current aspect.
    let next = |a: SignalAspect| match a {
        SignalAspect::Red => SignalAspect::RedAmber,
        SignalAspect::RedAmber => SignalAspect::Green,
        SignalAspect::Green => SignalAspect::Amber,
        _ => SignalAspect::Red,
    };
    let mut checked = 0;
    for (device, slot) in q.iter(app.world()) {
        let series = aspects(app.world(), slot);
        for w in series.windows(2) {
            assert!(w[1].0 >= w[0].0, "{}: time goes forward", device.id);
            if w[1].1 != w[0].1 {
                assert_eq!(w[1].1, next(w[0].1), "{}: {:?}", device.id, w);
                checked += 1;
            }
        }
    }
    assert!(checked >= 200, "{checked} changes checked");
}

#[test]
fn a_stepped_run_to_an_end_is_bit_identical_per_seed() {
    // An hour of simulated evening, as fast as the machine runs, three times.
    let run_text = |name: &str, seed: &str| -> String {
        let out = temp_dir(name).join("twin.geojson");
        let status = Command::new(env!("CARGO_BIN_EXE_tvilling"))
            .args(["--headless", "--snapshot"])
            .arg(&out)
            .args([
                "--simulate",
                seed,
                "--sim-start",
                "2026-11-23T15:30",
                "--until",
                "2026-11-23T16:30",
            ])
            .status()
            .expect("run tvilling");
        assert!(status.success());
        std::fs::read_to_string(&out).expect("snapshot")
    };
    let a = run_text("until-a", "7");
    let b = run_text("until-b", "7");
    let c = run_text("until-c", "8");
    assert!(
        a == b,
        "same seed, start and steps: the same twin, byte for byte"
    );
    assert!(a != c, "another seed, another twin");
    // It ran to its end: every signal head's last change came within its longest phase
    // before 16:30, every lamp is live (heard within its keep-alive), lamps are lit (sunset
    // about 13:55 UTC) and signal heads report each change.
    let doc: Value = serde_json::from_str(&a).expect("json");
    for f in features(&doc, "signal_head") {
        let seen = f["properties"]["last_seen"].as_str().expect("last_seen");
        assert!(
            ("2026-11-23T16:28:30"..="2026-11-23T16:30:00.000Z").contains(&seen),
            "{seen}"
        );
    }
    for f in features(&doc, "lamp") {
        assert_ne!(f["properties"]["health"], "stale", "{}", f["id"]);
    }
    let lit = features(&doc, "lamp")
        .iter()
        .filter(|f| f["properties"]["on"] == true)
        .count();
    assert!(
        lit * 10 > features(&doc, "lamp").len() * 9,
        "{lit} lamps lit"
    );
    let sim = &doc["diagnostics"]["sources"]["simulator"];
    // An hour: 168 heads change four times a cycle of at most 90 s, each change a report.
    let accepted = sim["accepted"].as_u64().expect("accepted");
    let alive = sim["keep_alive"].as_u64().expect("keep-alives");
    assert!(
        accepted - alive > 168 * 4 * 40,
        "{accepted} reports, {alive} keep-alives"
    );
    assert_eq!(
        sim["superseded"], 0,
        "nothing coalesced: the simulator is stepped"
    );
}

#[test]
fn metrics_and_alarms_are_model_state_in_twin_time() {
    // The evening rush hour, as fast as the machine runs.
    let doc = run(
        "metrics",
        &[
            "--simulate",
            "7",
            "--sim-start",
            "2026-11-23T15:00",
            "--until",
            "2026-11-23T17:00",
        ],
    );
    let m = &doc["metrics"];
    let lamps = features(&doc, "lamp");
    let lit = lamps
        .iter()
        .filter(|f| f["properties"]["on"] == true)
        .count() as f64;
    // Sunset about 13:55 UTC: lamps are lit for the whole span (two hours from 15:00).
    let hours = m["lamp_hours_lit"].as_f64().expect("lamp hours");
    assert!(
        (hours - 2.0 * lit).abs() < 0.05 * 2.0 * lit,
        "{hours} lamp-hours for {lit} lit lamps over 2 h"
    );
    let kwh = m["lighting_kwh"].as_f64().expect("kWh");
    let watts: f64 = lamps
        .iter()
        .filter_map(|f| f["properties"]["power_w"].as_f64())
        .sum();
    assert!(
        (kwh - 2.0 * watts / 1000.0).abs() < 0.1 * 2.0 * watts / 1000.0,
        "{kwh} kWh against {watts} W now"
    );
    // Lamps that are dark at night (off, or reporting a fault) count their hours; they raise
    // alarms with their times.
    let dark = lamps
        .iter()
        .filter(|f| f["properties"]["on"] == false || f["properties"]["lamp_fault"] == true)
        .count() as f64;
    let dark_h = m["lamp_hours_dark_at_night"].as_f64().expect("dark");
    assert!(
        dark_h > 0.0 && dark_h <= 2.0 * dark + 0.01,
        "{dark_h} h for {dark} dark lamps"
    );
    let alarms = doc["alarms"].as_array().expect("alarms");
    let faults: Vec<&Value> = alarms.iter().filter(|a| a["severity"] == "fault").collect();
    assert!(!faults.is_empty());
    for a in &faults {
        let raised = a["raised"].as_str().expect("raised");
        assert!(
            raised.starts_with("2026-11-23T15:0"),
            "raised at the start: {raised}"
        );
    }
    assert!(m["alarms_raised"].as_u64().expect("raised") >= faults.len() as u64);
    // Buildings used electricity; the signals' green share and cycle are measured.
    assert!(m["building_kwh"].as_f64().expect("kWh") > 100.0);
    let green = m["green_share"].as_f64().expect("green share");
    assert!((0.2..0.6).contains(&green), "{green}");
    let cycles: Vec<f64> = m["signals"]
        .as_object()
        .expect("signals")
        .values()
        .filter_map(|s| s["cycle_s"].as_f64())
        .collect();
    assert!(cycles.len() > 10);
    assert!(
        cycles.iter().all(|c| (40.0..=95.0).contains(c)),
        "{cycles:?}"
    );
    // The Swedish limit values are judged (NO2 at rush hour stays under 90 µg/m³ here).
    assert!(m["sensor_hours_over_limit"]["NO2"].is_number());
}

#[test]
fn the_typed_path_and_the_senml_codec_path_give_the_same_twin() {
    // Half an hour of the evening rush with the lamps coming on, both ways.
    let args = |path: &'static str| {
        [
            "--simulate",
            "7",
            "--sim-start",
            "2026-11-23T13:45",
            "--until",
            "2026-11-23T14:15",
            "--sim-path",
            path,
        ]
    };
    let typed = run("path-typed", &args("typed"));
    let senml = run("path-senml", &args("senml"));
    // The same devices and values, feature by feature.
    let (a, b) = (
        typed["features"].as_array().expect("features"),
        senml["features"].as_array().expect("features"),
    );
    assert_eq!(a.len(), b.len());
    for (fa, fb) in a.iter().zip(b) {
        assert_eq!(fa["properties"], fb["properties"], "{}", fa["id"]);
    }
    assert_eq!(typed["metrics"], senml["metrics"], "the same metrics");
    let lit = features(&typed, "lamp")
        .iter()
        .filter(|f| f["properties"]["on"] == true)
        .count();
    assert!(lit > 100, "{lit} lamps came on");
    let (t, s) = (
        &typed["diagnostics"]["sources"]["simulator"],
        &senml["diagnostics"]["sources"]["simulator"],
    );
    // Every report ends applied: typed keep-alives say only that a device is alive, the
    // codec path carries what the device holds instead.
    for d in [t, s] {
        assert_eq!(d["accepted"], d["applied"], "{d}");
        assert_eq!(d["rejected"], serde_json::json!({}), "{d}");
    }
    assert!(
        t["keep_alive"].as_u64().expect("keep-alives") > 1_000,
        "{t}"
    );
    assert_eq!(s["keep_alive"], 0);
    assert_eq!(
        t["accepted"], s["accepted"],
        "one report, one message, either way"
    );
}
