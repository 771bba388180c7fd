//! A scenario's signal timing measured in SUMO: each side's retimed controllers become SUMO
//! programs (an additional file loaded over the network's own), SUMO runs the same demand
//! with the same seed over the compared span, and its trip and edge outputs give delay
//! (SUMO's timeLoss), waiting, stops, throughput, CO2 and fuel, for the whole network and for
//! each controller's approaches. Read-only towards the city: SUMO is a local simulator, and
//! programs are written only into this run's own files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tvilling_traci::net::{Net, NetLight};

use crate::sumo::{MATCH_REACH_M, SUMO_WARMUP_S, match_to_controllers, net_file};

/// The emission model SUMO 1.15 applies to the demand's vehicles (its default passenger car
/// type): CO2 and fuel figures are only comparable under one model (SUMO #13250).
pub const EMISSION_MODEL: &str = "HBEFA3/PC_G_EU4";

/// A controller's timing as the twin plans it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub cycle_s: f64,
    /// Group 0's share of the green time.
    pub split: f64,
    pub offset_s: f64,
}

/// A signal head of the twin: its controller, position (scene CRS = the network's
/// projection), phase group, and its timing without and with the scenario's edits.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPlan {
    pub id: String,
    pub controller: String,
    pub position: (f64, f64),
    pub group: u8,
    pub base: Timing,
    pub side: Timing,
}

/// What SUMO measured over the span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficResult {
    /// Trips that departed within the span, and those of them that arrived within it.
    pub trips: u64,
    pub arrived: u64,
    /// Means per trip, s: time lost against free flow, time standing, and stops (counts).
    pub mean_time_loss_s: f64,
    pub mean_waiting_s: f64,
    pub mean_stops: f64,
    pub co2_kg: f64,
    pub fuel_kg: f64,
    /// By controller: vehicles entering its approaches, and their time loss and waiting, s.
    pub controllers: BTreeMap<String, ApproachTraffic>,
    /// The programs written, a line each.
    pub programs: Vec<String>,
}

/// Traffic on a controller's approaches (the edges its links leave from).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ApproachTraffic {
    pub vehicles: f64,
    pub time_loss_s: f64,
    pub waiting_s: f64,
}

impl ApproachTraffic {
    /// Mean delay per vehicle on the approaches, s.
    pub fn mean_delay_s(&self) -> Option<f64> {
        (self.vehicles > 0.0).then(|| self.time_loss_s / self.vehicles)
    }
}

/// Whether a state letter lets traffic go.
fn is_green(c: char) -> bool {
    matches!(c, 'G' | 'g' | 's')
}

/// A light's program under changed timing: clearance phases (amber, red-amber, all-red) keep
/// their length; the green phases share what is left of the new cycle, in proportion to
/// their lengths in SUMO's program, except that with a new split the phases serving only
/// group 0's links get `split` of that green and those serving only group 1's the rest.
/// Every green phase keeps at least 5 s.
pub fn retimed_phases(
    light: &NetLight,
    cycle_s: Option<f64>,
    split: Option<f64>,
    group_links: [&[usize]; 2],
) -> Vec<(f64, String)> {
    let green_phase = |s: &str| s.chars().any(is_green) && !s.contains(['y', 'Y', 'u']);
    let serves = |s: &str, links: &[usize]| {
        links
            .iter()
            .any(|&i| s.chars().nth(i).is_some_and(is_green))
    };
    let clearance: f64 = light
        .phases
        .iter()
        .filter(|(_, s)| !green_phase(s))
        .map(|(d, _)| d)
        .sum();
    let green: f64 = light
        .phases
        .iter()
        .filter(|(_, s)| green_phase(s))
        .map(|(d, _)| d)
        .sum();
    let cycle = cycle_s.unwrap_or(clearance + green);
    let n_green = light.phases.iter().filter(|(_, s)| green_phase(s)).count() as f64;
    let target = (cycle - clearance).max(5.0 * n_green);
    // Each green phase's class: 0 or 1 (serves only that group), 2 (both or neither).
    let class = |s: &str| match (serves(s, group_links[0]), serves(s, group_links[1])) {
        (true, false) => 0,
        (false, true) => 1,
        _ => 2,
    };
    let total_of = |k: usize| -> f64 {
        light
            .phases
            .iter()
            .filter(|(_, s)| green_phase(s) && class(s) == k)
            .map(|(d, _)| d)
            .sum()
    };
    let (g0, g1, g2) = (total_of(0), total_of(1), total_of(2));
    let scale = target / green.max(1e-9);
    let split_applies = split.is_some() && g0 > 0.0 && g1 > 0.0;
    let shared = g2 * scale;
    light
        .phases
        .iter()
        .map(|(d, s)| {
            if !green_phase(s) {
                return (*d, s.clone());
            }
            let new = match (split_applies, class(s)) {
                (true, 0) => d / g0 * split.unwrap_or(0.5) * (target - shared),
                (true, 1) => d / g1 * (1.0 - split.unwrap_or(0.5)) * (target - shared),
                _ => d * scale,
            };
            (new.round().max(5.0), s.clone())
        })
        .collect()
}

/// The additional file of programs for every light whose controller the scenario retimed
/// (cycle, split or offset differing from the twin's plan without edits), and a line per
/// program. Lights of controllers it left alone keep SUMO's own program, so a scenario
/// without signal edits runs exactly the network's programs.
pub fn programs(net: &Net, heads: &[HeadPlan]) -> (String, Vec<String>) {
    let positions: Vec<(String, String, (f64, f64))> = heads
        .iter()
        .map(|h| (h.id.clone(), h.controller.clone(), h.position))
        .collect();
    let report = match_to_controllers(net, &positions, MATCH_REACH_M, &[]);
    let (links, _) =
        tvilling_traci::net::match_heads(net, &report, &positions, crate::sumo::HEAD_REACH_M);
    let mut xml = String::from("<additional>\n");
    let mut lines = Vec::new();
    for (light_id, controller, _) in &report.matched {
        let Some(head) = heads.iter().find(|h| &h.controller == controller) else {
            continue;
        };
        let changed = |a: f64, b: f64| (a - b).abs() > 1e-9;
        let cycle = changed(head.side.cycle_s, head.base.cycle_s).then_some(head.side.cycle_s);
        let split = changed(head.side.split, head.base.split).then_some(head.side.split);
        let offset = changed(head.side.offset_s, head.base.offset_s).then_some(head.side.offset_s);
        if cycle.is_none() && split.is_none() && offset.is_none() {
            continue;
        }
        let Some(light) = net.lights.iter().find(|l| &l.id == light_id) else {
            continue;
        };
        if light.phases.is_empty() {
            continue;
        }
        let group = |g: u8| -> Vec<usize> {
            links
                .iter()
                .filter(|l| &l.light == light_id)
                .filter(|l| heads.iter().any(|h| h.id == l.head && h.group == g))
                .map(|l| l.index)
                .collect()
        };
        let (l0, l1) = (group(0), group(1));
        let phases = retimed_phases(light, cycle, split, [&l0, &l1]);
        let offset_s = offset.unwrap_or(light.offset_s);
        xml.push_str(&format!(
            "    <tlLogic id=\"{}\" type=\"static\" programID=\"scenario\" offset=\"{offset_s}\">\n",
            xml_escape(light_id)
        ));
        for (d, s) in &phases {
            xml.push_str(&format!(
                "        <phase duration=\"{d}\" state=\"{s}\"/>\n"
            ));
        }
        xml.push_str("    </tlLogic>\n");
        let cycle_now: f64 = phases.iter().map(|(d, _)| d).sum();
        lines.push(format!(
            "SUMO light {light_id} ({controller}): cycle {:.0} s (was {:.0} s), offset {offset_s:.0} s",
            cycle_now,
            light.phases.iter().map(|(d, _)| d).sum::<f64>()
        ));
    }
    xml.push_str("</additional>\n");
    (xml, lines)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An attribute of one XML element's text (SUMO's outputs: one element a line).
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = line.find(&key)? + key.len();
    line[at..].split('"').next()
}

fn num(line: &str, name: &str) -> f64 {
    attr(line, name).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Reads SUMO's `--tripinfo-output` (with emissions): trips departing at or after `from_s`.
pub fn read_tripinfo(text: &str, from_s: f64, to_s: f64, out: &mut TrafficResult) {
    let (mut loss, mut wait, mut stops) = (0.0, 0.0, 0.0);
    let mut counted = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("<tripinfo ") {
            counted = num(line, "depart") >= from_s;
            if !counted {
                continue;
            }
            out.trips += 1;
            let arrival = num(line, "arrival");
            if arrival >= from_s && arrival <= to_s {
                out.arrived += 1;
            }
            loss += num(line, "timeLoss");
            wait += num(line, "waitingTime");
            stops += num(line, "waitingCount");
        } else if line.starts_with("<emissions ") && counted {
            // mg, as SUMO 1.15 writes them.
            out.co2_kg += num(line, "CO2_abs") / 1e6;
            out.fuel_kg += num(line, "fuel_abs") / 1e6;
        }
    }
    let n = out.trips.max(1) as f64;
    out.mean_time_loss_s = loss / n;
    out.mean_waiting_s = wait / n;
    out.mean_stops = stops / n;
}

/// Reads SUMO's edge-based output: per edge, (vehicles entering or departing, time loss,
/// waiting), summed over intervals.
pub fn read_edge_data(text: &str) -> HashMap<String, ApproachTraffic> {
    let mut out: HashMap<String, ApproachTraffic> = HashMap::new();
    for line in text.lines().map(str::trim) {
        if !line.starts_with("<edge ") {
            continue;
        }
        let Some(id) = attr(line, "id") else { continue };
        let e = out.entry(id.to_string()).or_default();
        e.vehicles += num(line, "entered") + num(line, "departed");
        e.time_loss_s += num(line, "timeLoss");
        e.waiting_s += num(line, "waitingTime");
    }
    out
}

/// The edges each controller's lights are entered from.
pub fn approaches(net: &Net, heads: &[HeadPlan]) -> BTreeMap<String, Vec<String>> {
    let positions: Vec<(String, String, (f64, f64))> = heads
        .iter()
        .map(|h| (h.id.clone(), h.controller.clone(), h.position))
        .collect();
    let report = match_to_controllers(net, &positions, MATCH_REACH_M, &[]);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (light_id, controller, _) in &report.matched {
        let Some(light) = net.lights.iter().find(|l| &l.id == light_id) else {
            continue;
        };
        let edges = out.entry(controller.clone()).or_default();
        for stop in light.link_stops.iter().flatten() {
            let edge = stop
                .lane
                .rsplit_once('_')
                .map_or(stop.lane.as_str(), |(e, _)| e);
            if !edges.iter().any(|e| e == edge) {
                edges.push(edge.to_string());
            }
        }
    }
    out
}

/// Runs SUMO (`config`, its demand and seed) from `from_s - SUMO_WARMUP_S` to `to_s` (seconds of
/// the day) with the scenario's programs, writing into `dir`, and reads what it measured.
pub fn run(
    config: &Path,
    heads: &[HeadPlan],
    from_s: f64,
    to_s: f64,
    dir: &Path,
) -> Result<TrafficResult, String> {
    let net = Net::load(&net_file(config)?).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (xml, lines) = programs(&net, heads);
    let abs = |name: &str| -> PathBuf {
        let p = dir.join(name);
        std::path::absolute(&p).unwrap_or(p)
    };
    let (programs_file, edges_file, trips_file, meas_file) = (
        abs("programs.add.xml"),
        abs("edges.xml"),
        abs("tripinfo.xml"),
        abs("measures.add.xml"),
    );
    std::fs::write(&programs_file, xml).map_err(|e| e.to_string())?;
    std::fs::write(
        &meas_file,
        format!(
            "<additional>\n    <edgeData id=\"twin\" file=\"{}\" begin=\"{from_s}\" end=\"{to_s}\" excludeEmpty=\"true\"/>\n</additional>\n",
            xml_escape(&edges_file.display().to_string())
        ),
    )
    .map_err(|e| e.to_string())?;
    let begin = (from_s - SUMO_WARMUP_S).max(0.0);
    let out = crate::sumo::sumo_command(config)
        .args(["--begin", &begin.to_string(), "--end", &to_s.to_string()])
        .arg("--additional-files")
        .arg(format!(
            "{},{}",
            programs_file.display(),
            meas_file.display()
        ))
        .arg("--tripinfo-output")
        .arg(&trips_file)
        .args([
            "--tripinfo-output.write-unfinished",
            "true",
            "--device.emissions.probability",
            "1",
            "--no-step-log",
            "--no-warnings",
        ])
        .output()
        .map_err(|e| format!("cannot start sumo (Debian package sumo): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "SUMO failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let mut result = TrafficResult {
        programs: lines,
        ..Default::default()
    };
    read_tripinfo(&read(&trips_file)?, from_s, to_s, &mut result);
    let edges = read_edge_data(&read(&edges_file)?);
    for (controller, approach) in approaches(&net, heads) {
        let t = result.controllers.entry(controller).or_default();
        for e in approach.iter().filter_map(|e| edges.get(e)) {
            t.vehicles += e.vehicles;
            t.time_loss_s += e.time_loss_s;
            t.waiting_s += e.waiting_s;
        }
    }
    Ok(result)
}

/// Every signal head of the city the twin has loaded in `world`, with its controller's timing
/// as planned without edits (the registry generated from the city with `seed`) and as `plan`
/// runs it (the side's edits applied).
pub fn head_plans(
    world: &mut bevy::prelude::World,
    seed: u64,
    plan: &tvilling_sensors::simulate::Simulator,
) -> Vec<HeadPlan> {
    use tvilling_sensors::simulate::SimProfile;
    let timing = |p: &SimProfile| match p {
        SimProfile::Signal {
            cycle_s,
            offset_s,
            split,
            group,
        } => Some((
            Timing {
                cycle_s: *cycle_s,
                split: *split,
                offset_s: *offset_s,
            },
            *group,
        )),
        _ => None,
    };
    let side: HashMap<&str, Timing> = plan
        .devices
        .iter()
        .filter_map(|d| Some((d.id.as_str(), timing(&d.profile)?.0)))
        .collect();
    let layout = crate::binding::city_layout(world);
    tvilling_sensors::generate::generate_registry(&layout, seed)
        .into_iter()
        .filter_map(|d| {
            let (base, group) = timing(&d.profile)?;
            let controller = d
                .attributes
                .iter()
                .find(|(k, _)| k == "controller")?
                .1
                .clone();
            Some(HeadPlan {
                side: side.get(d.id.as_str()).copied().unwrap_or(base),
                id: d.id,
                controller,
                position: (d.position.x, d.position.y),
                group,
                base,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light(phases: &[(f64, &str)]) -> NetLight {
        NetLight {
            id: "L".into(),
            x: 0.0,
            y: 0.0,
            links: 4,
            junctions: vec!["L".into()],
            link_stops: vec![None; 4],
            phases: phases.iter().map(|(d, s)| (*d, s.to_string())).collect(),
            program_id: "0".into(),
            offset_s: 0.0,
        }
    }

    #[test]
    fn a_new_cycle_stretches_the_greens_and_keeps_the_clearances() {
        // Links 0, 1 north-south (group 0), 2, 3 east-west (group 1).
        let l = light(&[
            (42.0, "GGrr"),
            (3.0, "yyrr"),
            (2.0, "rrrr"),
            (36.0, "rrGG"),
            (3.0, "rryy"),
            (4.0, "rrrr"),
        ]);
        let p = retimed_phases(&l, Some(120.0), None, [&[0, 1], &[2, 3]]);
        let d: Vec<f64> = p.iter().map(|(d, _)| *d).collect();
        assert_eq!(d.iter().sum::<f64>(), 120.0);
        assert_eq!((d[1], d[2], d[4], d[5]), (3.0, 2.0, 3.0, 4.0));
        assert_eq!((d[0], d[3]), (58.0, 50.0), "greens in proportion (42:36)");
        // A new split on the same cycle: group 0 gets 70 % of the 78 s of green.
        let p = retimed_phases(&l, None, Some(0.7), [&[0, 1], &[2, 3]]);
        let d: Vec<f64> = p.iter().map(|(d, _)| *d).collect();
        assert_eq!((d[0], d[3]), (55.0, 23.0));
        // Nothing asked: the program as it was.
        let same = retimed_phases(&l, None, None, [&[0, 1], &[2, 3]]);
        assert_eq!(same, l.phases);
        // A cycle too short for its greens: 5 s each at least.
        let p = retimed_phases(&l, Some(10.0), None, [&[], &[]]);
        assert_eq!((p[0].0, p[3].0), (5.0, 5.0));
    }

    #[test]
    fn trips_are_counted_from_the_span_and_edges_summed() {
        let trips = r#"<tripinfos>
    <tripinfo id="a" depart="100.00" arrival="200.00" waitingTime="10.00" waitingCount="2" timeLoss="30.00">
        <emissions CO2_abs="2000000" fuel_abs="1000000"/>
    </tripinfo>
    <tripinfo id="b" depart="1000.00" arrival="1100.00" waitingTime="4.00" waitingCount="1" timeLoss="12.00">
        <emissions CO2_abs="3000000" fuel_abs="1000000"/>
    </tripinfo>
    <tripinfo id="c" depart="1200.00" arrival="-1.00" waitingTime="20.00" waitingCount="3" timeLoss="40.00">
        <emissions CO2_abs="1000000" fuel_abs="500000"/>
    </tripinfo>
</tripinfos>"#;
        let mut r = TrafficResult::default();
        read_tripinfo(trips, 900.0, 1800.0, &mut r);
        assert_eq!((r.trips, r.arrived), (2, 1), "a departed in the warm-up");
        assert_eq!(r.mean_time_loss_s, 26.0);
        assert_eq!((r.mean_waiting_s, r.mean_stops), (12.0, 2.0));
        assert!((r.co2_kg - 4.0).abs() < 1e-9 && (r.fuel_kg - 1.5).abs() < 1e-9);
        let edges = read_edge_data(
            r#"<interval begin="0" end="10">
        <edge id="e1" entered="4" departed="1" timeLoss="50.5" waitingTime="20"/>
        <edge id="e2" entered="2" timeLoss="4"/>
    </interval>"#,
        );
        assert_eq!(edges["e1"].vehicles, 5.0);
        assert_eq!(edges["e1"].mean_delay_s(), Some(10.1));
        assert_eq!(edges["e2"].waiting_s, 0.0);
    }
}
