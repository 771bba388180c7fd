//! The SUMO network built from the shipped extract (`scripts/sumo-network.sh`, real netconvert,
//! randomTrips.py and duarouter) and its traffic lights matched to the twin's controllers.

use std::process::Command;

use tvilling::sumo::{match_report, read_overrides};

use crate::common::{free_port, read_json, temp_dir, tvilling_ok};

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
    let snap_s = snap.display().to_string();
    let mut args = vec![
        "--headless",
        "--simulate",
        "1",
        "--sim-start",
        "2026-11-23T06:30",
        "--until",
        "2026-11-23T06:40",
        "--snapshot",
        &snap_s,
    ];
    args.extend_from_slice(extra);
    tvilling_ok(args);
    read_json(&snap)
}

#[test]
fn vehicles_from_sumo_join_the_snapshot_where_sumo_has_them() {
    let cfg = network("sumo-cosim");
    // SUMO's own record of the same run: vehicles in longitude and latitude, and every
    // light's state at every step.
    let fcd = cfg.with_file_name("fcd.xml");
    let tls = cfg.with_file_name("tls.xml");
    std::fs::write(
        cfg.with_file_name("tls.add.xml"),
        format!(
            "<additional>\n    <timedEvent type=\"SaveTLSStates\" dest=\"{}\"/>\n</additional>\n",
            tls.display()
        ),
    )
    .expect("additional");
    let text = std::fs::read_to_string(&cfg).expect("cfg").replace(
        "</configuration>",
        &format!(
            "  <output>\n    <fcd-output value=\"{}\"/>\n    <fcd-output.geo value=\"true\"/>\n  </output>\n  <input>\n    <additional-files value=\"tls.add.xml\"/>\n  </input>\n</configuration>",
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
    assert!(vehicles.len() > 20, "{} vehicles", vehicles.len());
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
    signal_heads_show_sumos_states(&doc, &tls);
    // Each intersection's queues are SUMO's halting vehicles (below 0.1 m/s) on the lanes of
    // its approaches at the last step.
    let mut halting: std::collections::HashMap<String, u64> = Default::default();
    let mut lanes_seen = 0;
    for line in last.lines().filter(|l| l.contains("<vehicle ")) {
        let lane = line
            .split(" lane=\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        let (Some(lane), Some(speed)) = (lane, attr(line, "speed")) else {
            continue;
        };
        lanes_seen += 1;
        if speed < 0.1
            && let Some((edge, _)) = lane.rsplit_once('_')
        {
            *halting.entry(edge.to_string()).or_default() += 1;
        }
    }
    assert_eq!(lanes_seen, truth.len(), "FCD gives every vehicle's lane");
    let intersections: Vec<&serde_json::Value> = doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == "signal_controller")
        .map(|f| &f["properties"])
        .collect();
    assert_eq!(
        intersections.len(),
        33,
        "one per controller with a SUMO light"
    );
    let mut queued = 0;
    for x in &intersections {
        for a in x["approaches"].as_array().expect("approaches") {
            let edge = a["edge"].as_str().expect("edge");
            let q = a["queue"].as_u64().expect("queue");
            assert_eq!(
                q,
                halting.get(edge).copied().unwrap_or(0),
                "{} {edge}",
                x["id"]
            );
            queued += q;
        }
        assert_eq!(
            x["queue"].as_u64(),
            Some(
                x["approaches"]
                    .as_array()
                    .expect("a")
                    .iter()
                    .map(|a| a["queue"].as_u64().expect("q"))
                    .sum()
            )
        );
    }
    assert!(queued > 0, "some vehicles queue at the lights");
    assert!(
        intersections
            .iter()
            .any(|x| x["phase_changes"].as_array().is_some_and(|p| p.len() > 3)),
        "the lights' timelines"
    );
}

/// Every head mirrored from SUMO shows its link's state after the last step, and began
/// showing it when SUMO's `--tls` output says the link changed to it (SUMO labels a state by
/// the step it holds through, the twin by the time reached: one second apart, as for FCD).
fn signal_heads_show_sumos_states(doc: &serde_json::Value, tls: &std::path::Path) {
    let text = std::fs::read_to_string(tls).expect("tls output");
    let attr = |line: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        Some(line.split(&key).nth(1)?.split('"').next()?.to_string())
    };
    // (second of the day, light) → state string.
    let mut states = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.contains("<tlsState ")) {
        let (Some(t), Some(id), Some(state)) =
            (attr(line, "time"), attr(line, "id"), attr(line, "state"))
        else {
            continue;
        };
        states.insert((t.parse::<f64>().expect("time") as i64, id), state);
    }
    let class = |letter: char| match letter {
        'r' => "Red",
        'u' => "RedAmber",
        'y' | 'Y' => "Amber",
        'G' | 'g' | 's' => "Green",
        'o' => "FlashingAmber",
        _ => "Dark",
    };
    let sumo = &doc["diagnostics"]["sumo"];
    let end = sumo["time_s"].as_f64().expect("time") as i64;
    let links = sumo["head_links"].as_object().expect("head links");
    assert!(links.len() > 100, "{} heads mirrored", links.len());
    assert_eq!(sumo["heads_mirrored"], links.len());
    let heads: std::collections::HashMap<&str, &serde_json::Value> = doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == "signal_head")
        .map(|f| {
            (
                f["properties"]["device_id"].as_str().expect("id"),
                &f["properties"],
            )
        })
        .collect();
    let letter = |t: i64, light: &str, i: usize| -> char {
        let s = &states[&(t, light.to_string())];
        s.chars().nth(i).expect("link index within the state")
    };
    let (mut changes, mut aspects) = (0, std::collections::BTreeSet::new());
    for (head, link) in links {
        let (light, i) = (
            link[0].as_str().expect("light"),
            link[1].as_u64().expect("index") as usize,
        );
        let p = heads[head.as_str()];
        assert_eq!(p["source"], "sumo", "{head}");
        let aspect = p["aspect"].as_str().expect("aspect");
        assert_eq!(
            aspect,
            class(letter(end - 1, light, i)),
            "{head} at the end"
        );
        aspects.insert(aspect.to_string());
        // 2026-11-23 is in CET: local second of the day = UTC + 3600.
        let since = p["aspect_since"].as_str().expect("since");
        let hms: Vec<i64> = since[11..19]
            .split(':')
            .map(|x| x.parse().expect("hms"))
            .collect();
        let since_s = hms[0] * 3600 + hms[1] * 60 + hms[2] + 3600;
        if since_s > 27_100 {
            changes += 1;
            assert_eq!(
                aspect,
                class(letter(since_s - 1, light, i)),
                "{head} at {since}"
            );
            assert_ne!(
                aspect,
                class(letter(since_s - 2, light, i)),
                "{head} changed at {since}"
            );
        }
    }
    assert!(changes > 50, "{changes} heads changed during the run");
    assert!(
        aspects.contains("Red") && aspects.contains("Green"),
        "{aspects:?}"
    );
    // The heads left to the twin's simulator are listed, not dropped.
    let unmatched = sumo["heads_unmatched"].as_array().expect("unmatched");
    assert_eq!(unmatched.len() + links.len(), heads.len());
    for h in unmatched {
        assert_eq!(heads[h.as_str().expect("id")]["source"], "simulator");
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

/// A stopped vehicle's box (the speed ramp's red, lit or in shade): darker than a red signal.
fn is_stopped_vehicle(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    (70..=200).contains(&r) && g < 50 && b < 50 && r > 2 * g + 40
}

#[test]
fn a_screenshot_shows_vehicles_queued_at_red_lights() {
    let cfg = network("sumo-screenshot");
    // 08:00 in Stockholm, looking down on a junction at Sveavägen's north end that queues at
    // the morning peak (found with SUMO's halting counts); SUMO warms up 15 minutes first.
    let view = |name: &str, sumo: &[&str]| {
        let mut args = vec![
            "--simulate",
            "1",
            "--look-at",
            "18.06597,59.34072,150",
            "--open",
            "none",
            "--frames",
            "4",
            // Shown at 07:01 whatever the machine's speed: the queues are those of that
            // moment's signal phases, not of however many seconds the machine took to load.
            "--until",
            "2026-11-23T07:01",
            "--sim-speed",
            "10",
        ];
        args.extend_from_slice(sumo);
        crate::screenshot::screenshot(name, "2026-11-23T07:00", &args)
    };
    let cfg_arg = cfg.display().to_string();
    let with = view("sumo-screenshot-with", &["--sumo", &cfg_arg]);
    let without = view("sumo-screenshot-without", &[]);
    let stopped =
        |pic: &crate::screenshot::Picture| pic.share(0.0, 0.0, 1.0, 1.0, is_stopped_vehicle);
    let red_signals = |pic: &crate::screenshot::Picture| {
        pic.share(0.0, 0.0, 1.0, 1.0, |p| {
            let [r, g, b] = p.map(i32::from);
            crate::screenshot::is_signal(p) && r > g && r > b
        })
    };
    let (s1, s0) = (stopped(&with), stopped(&without));
    assert!(
        s1 > 0.003 && s1 > 3.0 * s0,
        "stopped vehicles cover {s1} of the picture, {s0} without SUMO"
    );
    assert!(
        red_signals(&with) > 0.0005,
        "red signals cover {}",
        red_signals(&with)
    ); // The intersection selected: the inspector on the right lists its approaches and draws
    // its lights' timeline as red and green squares.
    let inspected = crate::screenshot::screenshot(
        "sumo-screenshot-inspector",
        "2026-11-23T07:00",
        &[
            "--simulate",
            "1",
            "--sumo",
            &cfg_arg,
            "--select",
            "controller/node/1467953359",
            "--open",
            "none",
            "--frames",
            "8",
        ],
    );
    let panel = inspected.share(0.6, 0.2, 1.0, 0.95, crate::screenshot::is_panel);
    let (red, green) = (
        inspected.share(0.6, 0.6, 1.0, 1.0, |p| {
            let [r, g, b] = p.map(i32::from);
            r > 180 && g < 80 && b < 80
        }),
        inspected.share(0.6, 0.6, 1.0, 1.0, |p| {
            let [r, g, b] = p.map(i32::from);
            g > 160 && r < 100 && b < 120
        }),
    );
    assert!(
        panel > 0.3,
        "the inspector covers {panel} of the right side"
    );
    assert!(
        red > 0.002 && green > 0.0002,
        "timeline squares: red {red}, green {green}"
    );
}

/// `tvilling scenario compare A B --sumo CONFIG` for 07:30-08:30 local; metrics.csv's rows
/// as metric → (a, b).
fn compare_in_sumo(
    cfg: &std::path::Path,
    b_edits: &str,
    name: &str,
) -> std::collections::HashMap<String, (f64, f64)> {
    let dir = cfg.parent().expect("dir").join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let scene = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenes/stockholm.toml");
    let write = |file: &str, title: &str, edits: &str| {
        let p = dir.join(file);
        std::fs::write(
            &p,
            format!("name = \"{title}\"\nbase = \"{scene}\"\n{edits}"),
        )
        .expect("scenario");
        p
    };
    let a = write("a.toml", "Baseline", "");
    let b = write("b.toml", name, b_edits);
    let report = dir.join("report");
    let path = |p: &std::path::Path| p.display().to_string();
    let (a, b, report_s, cfg) = (path(&a), path(&b), path(&report), path(cfg));
    tvilling_ok([
        "scenario",
        "compare",
        &a,
        &b,
        "--from",
        "2026-11-23T07:30",
        "--to",
        "2026-11-23T08:30",
        "--report",
        &report_s,
        "--sumo",
        &cfg,
    ]);
    let csv = std::fs::read_to_string(report.join("metrics.csv")).expect("metrics.csv");
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            // metric,unit,a,b,difference,percent (metrics here have no commas)
            let f: Vec<&str> = l.split(',').collect();
            Some((f[0].to_string(), (f[2].parse().ok()?, f[3].parse().ok()?)))
        })
        .collect()
}

#[test]
fn a_longer_cycle_measured_in_sumo_adds_delay_and_a_blank_scenario_changes_nothing() {
    let cfg = network("sumo-scenario");
    let controller = "controller/node/1486022394";
    let blank = compare_in_sumo(&cfg, "", "blank");
    let traffic: Vec<(&String, &(f64, f64))> = blank
        .iter()
        .filter(|(m, _)| m.starts_with("traffic: "))
        .collect();
    assert!(traffic.len() > 20, "{traffic:?}");
    for (m, (a, b)) in &traffic {
        assert_eq!(a, b, "{m}: a blank scenario runs SUMO's own programs");
    }
    let (trips, _) = blank["traffic: trips completed"];
    assert!(trips > 200.0, "{trips} trips in the peak hour");
    assert!(blank.contains_key("traffic: CO2 (HBEFA3/PC_G_EU4)"));
    let longer = compare_in_sumo(
        &cfg,
        &format!(
            "[[edit]]\nkind = \"signal_timing\"\ncontrollers = [\"{controller}\"]\ncycle_s = 180\n"
        ),
        "longer cycle",
    );
    let (a, b) = longer[&format!("traffic: delay at {controller}")];
    assert_eq!(a, blank[&format!("traffic: delay at {controller}")].0);
    assert!(b > a + 5.0, "a 180 s cycle waits longer: {a} s, then {b} s");
    let program = std::fs::read_to_string(
        cfg.parent()
            .expect("dir")
            .join("longer cycle/report/sumo-b/programs.add.xml"),
    )
    .expect("B's programs");
    let cycle: f64 = program
        .lines()
        .filter_map(|l| {
            l.split("duration=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum();
    assert_eq!(cycle, 180.0, "{program}");
}

#[test]
fn a_recorded_co_simulation_plays_back_its_vehicles_from_the_history() {
    let cfg = network("sumo-history");
    let dir = cfg.parent().expect("dir").to_path_buf();
    let db = dir.join("history.sqlite");
    let live = headless(
        &dir,
        &[
            "--sumo",
            &cfg.display().to_string(),
            "--history",
            &db.display().to_string(),
        ],
    );
    let vehicles = |doc: &serde_json::Value,
                    source: &str|
     -> std::collections::HashMap<String, (f64, f64)> {
        doc["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter(|f| f["properties"]["kind"] == "vehicle" && f["properties"]["source"] == source)
            .map(|f| {
                let c = &f["geometry"]["coordinates"];
                (
                    f["properties"]["vehicle_id"]
                        .as_str()
                        .expect("id")
                        .to_string(),
                    (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat")),
                )
            })
            .collect()
    };
    let at_end = vehicles(&live, "sumo");
    assert!(at_end.len() > 20);
    // Played back from the store alone (no SUMO).
    let play = |at: &str| {
        let snap = dir.join(format!("played-{}.geojson", at.replace(':', "")));
        let (db_s, snap_s) = (db.display().to_string(), snap.display().to_string());
        tvilling_ok([
            "--headless",
            "--at",
            at,
            "--history",
            &db_s,
            "--snapshot",
            &snap_s,
        ]);
        read_json(&snap)
    };
    // The moment recorded at the end.
    let recorded = vehicles(&play("2026-11-23T06:40"), "history");
    assert_eq!(
        recorded.keys().collect::<std::collections::BTreeSet<_>>(),
        at_end.keys().collect(),
        "the same vehicles"
    );
    for (id, (lon, lat)) in &recorded {
        let (a, b) = at_end[id];
        // 1e-6 degrees: about 0.1 m.
        assert!((lon - a).abs() < 1e-6 && (lat - b).abs() < 1e-6, "{id}");
    }
    // Five minutes earlier, other vehicles stood elsewhere.
    let earlier = play("2026-11-23T06:35");
    let before = vehicles(&earlier, "history");
    assert!(!before.is_empty() && before != recorded);
    let when = earlier["features"]
        .as_array()
        .expect("f")
        .iter()
        .find(|f| f["properties"]["source"] == "history")
        .map(|f| f["properties"]["recorded"].clone());
    assert_eq!(when, Some(serde_json::json!("2026-11-23T06:35:00.000Z")));
}
