//! The SUMO network built from the shipped extract (`scripts/sumo-network.sh`, real netconvert,
//! randomTrips.py and duarouter) and its traffic lights matched to the twin's controllers.

use std::process::Command;

use tvilling::sumo::{match_report, read_overrides};

use crate::common::temp_dir;

#[test]
fn the_network_builds_from_the_shipped_extract_and_every_light_finds_its_controller() {
    let dir = temp_dir("sumo-net");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/sumo-network.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "sumo-network.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("61 traffic lights"), "{said}");
    let cfg = dir.join("stockholm.sumocfg");
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
