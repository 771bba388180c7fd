//! `tvilling --headless --snapshot FILE` through the real binary.

use std::process::Command;

use serde_json::Value;

use crate::common::temp_dir;

fn signed_area(ring: &[Value]) -> f64 {
    let p: Vec<(f64, f64)> = ring
        .iter()
        .map(|c| (c[0].as_f64().expect("x"), c[1].as_f64().expect("y")))
        .collect();
    p.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        / 2.0
}

#[test]
fn headless_snapshot_is_rfc7946_geojson_of_every_entity() {
    let out = temp_dir("snapshot").join("twin.geojson");
    let status = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(["--headless", "--snapshot"])
        .arg(&out)
        .status()
        .expect("run tvilling");
    assert!(status.success());
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("snapshot")).expect("json");
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().expect("features");
    let count = |kind: &str| {
        features
            .iter()
            .filter(|f| f["properties"]["kind"] == kind)
            .count()
    };
    assert_eq!(
        (count("building"), count("landmark"), count("signal_head")),
        (195, 1, 168)
    );
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert!(
            f["properties"]["id"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        let g = &f["geometry"];
        let polygons: Vec<&Value> = match g["type"].as_str() {
            Some("Point") => {
                let (lon, lat) = (
                    g["coordinates"][0].as_f64().expect("lon"),
                    g["coordinates"][1].as_f64().expect("lat"),
                );
                assert!(
                    (17.9..18.2).contains(&lon) && (59.3..59.4).contains(&lat),
                    "{lon} {lat}"
                );
                vec![]
            }
            Some("Polygon") => vec![&g["coordinates"]],
            Some("MultiPolygon") => g["coordinates"].as_array().expect("polys").iter().collect(),
            other => panic!("unexpected geometry {other:?}"),
        };
        for p in polygons {
            for (i, ring) in p.as_array().expect("rings").iter().enumerate() {
                let ring = ring.as_array().expect("ring");
                assert!(
                    ring.len() >= 4 && ring.first() == ring.last(),
                    "rings are closed"
                );
                // RFC 7946: exterior counter-clockwise, holes clockwise.
                assert_eq!(signed_area(ring) > 0.0, i == 0, "{}", f["id"]);
            }
        }
    }
    let church = features
        .iter()
        .find(|f| f["id"] == "way/27741605")
        .expect("church");
    assert_eq!(church["properties"]["height"], 66.0);
    assert_eq!(church["properties"]["height_source"], "measured");
    assert_eq!(church["properties"]["name"], "Hedvig Eleonora kyrka");
    // The extract's edge is a note, not a problem: no problem in the shipped extract.
    assert_eq!(
        doc["import_problems"].as_array().expect("problems").len(),
        0,
        "{}",
        doc["import_problems"]
    );
    let edge = &doc["extract_edge"];
    assert_eq!(edge["features_cut"], 15, "{edge}");
    assert_eq!(edge["drawn_from_parts_inside"], 15, "{edge}");
    assert_eq!(edge["not_drawn"], 0, "{edge}");
    assert!(
        edge["features"][0]
            .as_str()
            .is_some_and(|f| f.starts_with("relation/") && f.contains("outside the file")),
        "{edge}"
    );
}

#[test]
fn help_explains_every_flag_and_bad_flags_fail_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data",
        "--scene",
        "--crs",
        "--source-crs",
        "--sun",
        "--screenshot",
        "--frames",
        "--size",
        "--headless",
        "--snapshot",
        "--select",
        "--config",
        "--registry",
        "--mqtt",
        "--replay",
        "--record",
        "--simulate",
        "--no-simulate",
        "--sim-start",
        "--sim-speed",
        "--duration",
        "--mqtt-format",
        "--replay-speed",
        "--colour-by",
        "--lang",
        "--open",
        "--no-ui",
        "--frame-stats",
        "--extra-lamps",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    // Every flag the command line defines, with the words that explain it.
    use clap::CommandFactory;
    let command = tvilling::Cli::command();
    let mut flags = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || long == "version" {
            continue;
        }
        flags += 1;
        assert!(text.contains(&format!("--{long}")), "--help lacks --{long}");
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        assert!(!help.trim().is_empty(), "--{long} has no explanation");
        let first_words: String = help
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(&first_words),
            "--help does not explain --{long} ({first_words:?})"
        );
    }
    assert!(flags >= 29, "{flags} flags");
    let out = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(["--headless", "--crs", "EPSG:nope"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EPSG:nope"));
}
