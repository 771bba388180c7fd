//! What the co-simulation needs of a SUMO network file (`*.net.xml`): its location (the offset
//! from the projection's coordinates to SUMO's, and the projection), and each traffic light's
//! place and signal links, so that SUMO's lights can be matched to the twin's controllers.

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

/// A traffic light of the network: its id, where it stands (the mean of the junctions it
/// controls, in the projection's coordinates) and how many signal links it has.
#[derive(Debug, Clone, PartialEq)]
pub struct NetLight {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub links: usize,
    pub junctions: Vec<String>,
    /// Per link index: where its incoming lane meets the junction (the stop line, in SUMO's
    /// coordinates) and SUMO's direction letter (`s` straight, `l`, `r`, `t` turn...).
    pub link_stops: Vec<Option<LinkStop>>,
    /// Its static program: (duration s, state string) per phase.
    pub phases: Vec<(f64, String)>,
    pub program_id: String,
    pub offset_s: f64,
}

/// Where a signal link begins: the end of its incoming lane.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStop {
    pub x: f64,
    pub y: f64,
    pub dir: char,
    /// The incoming lane.
    pub lane: String,
}

/// A network's location and lights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Net {
    /// Added to projected coordinates to give SUMO's (so projected = SUMO's - offset).
    pub offset: (f64, f64),
    pub proj: String,
    pub lights: Vec<NetLight>,
}

/// Why a network file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Bad { path: String, reason: String },
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

impl Net {
    /// Reads a `.net.xml` file.
    pub fn load(path: &Path) -> Result<Net, NetError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Net::parse(&text).map_err(|reason| NetError::Bad {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Reads a network's text.
    pub fn parse(text: &str) -> Result<Net, String> {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut net = Net::default();
        let mut located = false;
        let mut junctions: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        // Light id → (max link index + 1, junctions of its links).
        let mut lights: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        let mut logics: Vec<String> = Vec::new();
        // Lane id → its last shape point (non-internal edges).
        let mut lane_ends: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let mut internal = false;
        // Light → (index, from lane, dir).
        let mut link_lanes: BTreeMap<String, Vec<(usize, String, char)>> = BTreeMap::new();
        // Light → (program id, offset, phases).
        let mut programs: BTreeMap<String, (String, f64, Vec<(f64, String)>)> = BTreeMap::new();
        let mut program: Option<String> = None;
        loop {
            let e = match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(e) | Event::Empty(e)) => e,
                Ok(_) => continue,
                Err(e) => {
                    return Err(format!(
                        "XML error at byte {}: {e}",
                        reader.buffer_position()
                    ));
                }
            };
            match e.name().as_ref() {
                "location" => {
                    let offset = attr(&e, "netOffset").ok_or("location without netOffset")?;
                    let (x, y) = offset
                        .split_once(',')
                        .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
                        .ok_or_else(|| format!("netOffset {offset:?}"))?;
                    net.offset = (x, y);
                    net.proj = attr(&e, "projParameter").unwrap_or_default();
                    located = true;
                }
                "junction" => {
                    let (Some(id), Some(x), Some(y)) =
                        (attr(&e, "id"), attr(&e, "x"), attr(&e, "y"))
                    else {
                        continue;
                    };
                    if let (Ok(x), Ok(y)) = (x.parse(), y.parse()) {
                        junctions.insert(id, (x, y));
                    }
                }
                "edge" => internal = attr(&e, "function").is_some_and(|f| f == "internal"),
                "lane" if !internal => {
                    let (Some(id), Some(shape)) = (attr(&e, "id"), attr(&e, "shape")) else {
                        continue;
                    };
                    let end = shape.split_whitespace().next_back().and_then(|p| {
                        let (x, y) = p.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    });
                    if let Some(end) = end {
                        lane_ends.insert(id, end);
                    }
                }
                "tlLogic" => {
                    let Some(id) = attr(&e, "id") else { continue };
                    let offset = attr(&e, "offset")
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(0.0);
                    let pid = attr(&e, "programID").unwrap_or_default();
                    programs
                        .entry(id.clone())
                        .or_insert((pid, offset, Vec::new()));
                    program = Some(id.clone());
                    logics.push(id);
                }
                "phase" => {
                    let (Some(id), Some(d), Some(state)) =
                        (&program, attr(&e, "duration"), attr(&e, "state"))
                    else {
                        continue;
                    };
                    let d: f64 = d
                        .parse()
                        .map_err(|_| format!("light {id}: phase duration {d:?}"))?;
                    if let Some(p) = programs.get_mut(id) {
                        p.2.push((d, state));
                    }
                }
                "connection" => {
                    let (Some(tl), Some(index)) = (attr(&e, "tl"), attr(&e, "linkIndex")) else {
                        continue;
                    };
                    let index: usize = index
                        .parse()
                        .map_err(|_| format!("connection of light {tl}: linkIndex {index:?}"))?;
                    if let (Some(from), Some(lane)) = (attr(&e, "from"), attr(&e, "fromLane")) {
                        let dir = attr(&e, "dir")
                            .and_then(|d| d.chars().next())
                            .unwrap_or('s');
                        link_lanes.entry(tl.clone()).or_default().push((
                            index,
                            format!("{from}_{lane}"),
                            dir,
                        ));
                    }
                    let entry = lights.entry(tl).or_default();
                    entry.0 = entry.0.max(index + 1);
                    // The internal lane it passes through names its junction (":J_0_0").
                    if let Some(j) = attr(&e, "via")
                        .and_then(|v| v.strip_prefix(':').map(str::to_string))
                        .and_then(|v| v.rsplitn(3, '_').nth(2).map(str::to_string))
                        && !entry.1.contains(&j)
                    {
                        entry.1.push(j);
                    }
                }
                _ => {}
            }
        }
        if !located {
            return Err("no <location> (not a SUMO network?)".into());
        }
        logics.sort();
        logics.dedup();
        for id in logics {
            let (links, mut js) = lights.remove(&id).unwrap_or_default();
            if js.is_empty() && junctions.contains_key(&id) {
                js.push(id.clone());
            }
            let places: Vec<(f64, f64)> = js
                .iter()
                .filter_map(|j| junctions.get(j))
                .copied()
                .collect();
            if places.is_empty() {
                return Err(format!(
                    "traffic light {id}: no junction of its links found"
                ));
            }
            let n = places.len() as f64;
            let (x, y) = places
                .iter()
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
            let mut link_stops = vec![None; links];
            for (i, lane, dir) in link_lanes.remove(&id).unwrap_or_default() {
                if let (Some(slot), Some(&(x, y))) = (link_stops.get_mut(i), lane_ends.get(&lane)) {
                    *slot = Some(LinkStop { x, y, dir, lane });
                }
            }
            let (program_id, offset_s, phases) = programs.remove(&id).unwrap_or_default();
            net.lights.push(NetLight {
                id,
                x,
                y,
                links,
                junctions: js,
                link_stops,
                phases,
                program_id,
                offset_s,
            });
        }
        Ok(net)
    }

    /// A SUMO position in the projection's coordinates (for a network built in the scene's
    /// CRS, the twin's easting and northing).
    pub fn to_projected(&self, x: f64, y: f64) -> (f64, f64) {
        (x - self.offset.0, y - self.offset.1)
    }
}

/// How SUMO's lights and the twin's controllers were matched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchReport {
    /// (SUMO light, twin controller, distance in m), nearest pairs first.
    pub matched: Vec<(String, String, f64)>,
    /// SUMO lights with no twin controller within reach, with the nearest one's distance.
    pub sumo_only: Vec<(String, Option<f64>)>,
    /// Twin controllers with no SUMO light within reach.
    pub twin_only: Vec<String>,
}

/// Matches each light to the nearest controller within `reach_m` (positions in one CRS).
/// Several lights may share a controller: SUMO gives a light to each junction node (a
/// pedestrian crossing beside a junction has its own), where the twin has one controller for
/// a crossing's cluster of nodes. Overrides (SUMO light → controller) are taken as given.
pub fn match_lights(
    lights: &[(String, (f64, f64))],
    controllers: &[(String, (f64, f64))],
    reach_m: f64,
    overrides: &[(String, String)],
) -> MatchReport {
    let mut report = MatchReport::default();
    let mut ctrl_used = vec![false; controllers.len()];
    let dist = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).hypot(a.1 - b.1);
    for (id, p) in lights {
        let forced = overrides
            .iter()
            .find(|(l, _)| l == id)
            .and_then(|(_, c)| controllers.iter().position(|(cid, _)| cid == c));
        let nearest = controllers
            .iter()
            .enumerate()
            .map(|(j, (_, q))| (j, dist(*p, *q)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match (forced, nearest) {
            (Some(j), _) => {
                ctrl_used[j] = true;
                let d = dist(*p, controllers[j].1);
                report
                    .matched
                    .push((id.clone(), controllers[j].0.clone(), d));
            }
            (None, Some((j, d))) if d <= reach_m => {
                ctrl_used[j] = true;
                report
                    .matched
                    .push((id.clone(), controllers[j].0.clone(), d));
            }
            (None, nearest) => report.sumo_only.push((id.clone(), nearest.map(|n| n.1))),
        }
    }
    report.matched.sort_by(|a, b| a.2.total_cmp(&b.2));
    for (j, (id, _)) in controllers.iter().enumerate() {
        if !ctrl_used[j] {
            report.twin_only.push(id.clone());
        }
    }
    report
}

/// A twin signal head mirrored from one of SUMO's signal links.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadLink {
    pub head: String,
    pub light: String,
    /// Link index into the light's state string.
    pub index: usize,
    /// From the head to the link's stop line, m.
    pub distance_m: f64,
}

/// Gives each head (id, controller, position in the projection's coordinates) the signal link
/// of its controller's SUMO lights whose stop line is nearest, within `reach_m`; among the
/// links leaving that lane, the straight one (else the lowest index). Returns the pairs and the
/// heads left without a link (their controller has no light, or none within reach).
pub fn match_heads(
    net: &Net,
    report: &MatchReport,
    heads: &[(String, String, (f64, f64))],
    reach_m: f64,
) -> (Vec<HeadLink>, Vec<String>) {
    let mut links = Vec::new();
    let mut unmatched = Vec::new();
    for (head, controller, p) in heads {
        let mut best: Option<(f64, &str, usize, &LinkStop)> = None;
        for light in report
            .matched
            .iter()
            .filter(|(_, c, _)| c == controller)
            .filter_map(|(l, _, _)| net.lights.iter().find(|n| &n.id == l))
        {
            for (i, stop) in light.link_stops.iter().enumerate() {
                let Some(stop) = stop else { continue };
                let (x, y) = net.to_projected(stop.x, stop.y);
                let d = (x - p.0).hypot(y - p.1);
                let better = match best {
                    None => true,
                    Some((_, bl, _, bs)) if bl == light.id && bs.lane == stop.lane => {
                        // The same lane: straight first, else the first index.
                        stop.dir == 's' && bs.dir != 's'
                    }
                    Some((bd, ..)) => d < bd - 1e-9,
                };
                if better && d <= reach_m {
                    best = Some((d, &light.id, i, stop));
                }
            }
        }
        match best {
            Some((d, light, index, _)) => links.push(HeadLink {
                head: head.clone(),
                light: light.to_string(),
                index,
                distance_m: d,
            }),
            None => unmatched.push(head.clone()),
        }
    }
    (links, unmatched)
}

/// The aspect letter of SUMO's state string as the twin's aspect name: `r` red, `u`
/// red-amber, `y`/`Y` amber, `G`/`g`/`s` green, `o` flashing amber (off, blinking), `O`
/// dark (off).
pub fn aspect_of(state: char) -> Option<&'static str> {
    Some(match state {
        'r' => "red",
        'u' => "red-amber",
        'y' | 'Y' => "amber",
        'G' | 'g' | 's' => "green",
        'o' => "flashing-amber",
        'O' => "dark",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = r#"<net>
    <location netOffset="-100.00,-200.50" convBoundary="0,0,10,10" projParameter="+proj=utm +zone=33"/>
    <junction id="A" type="traffic_light" x="10.0" y="20.0"/>
    <junction id="B" type="traffic_light" x="30.0" y="20.0"/>
    <junction id="C" type="priority" x="50.0" y="50.0"/>
    <edge id=":A_0" function="internal">
        <lane id=":A_0_0" shape="0,0 1,1"/>
    </edge>
    <edge id="e1" from="X" to="A">
        <lane id="e1_0" shape="-50.0,20.0 5.0,20.0"/>
    </edge>
    <edge id="e8" from="Y" to="A">
        <lane id="e8_0" shape="10.0,80.0 10.0,25.0"/>
    </edge>
    <tlLogic id="A" type="static" programID="0" offset="7">
        <phase duration="30" state="GGr"/>
        <phase duration="3" state="yyr"/>
        <phase duration="27" state="rrG"/>
    </tlLogic>
    <tlLogic id="joined" type="static" programID="0" offset="0"/>
    <connection from="e1" to="e3" fromLane="0" toLane="0" tl="A" linkIndex="1" dir="r" via=":A_1_0"/>
    <connection from="e1" to="e2" fromLane="0" toLane="0" tl="A" linkIndex="0" dir="s" via=":A_0_0"/>
    <connection from="e8" to="e2" fromLane="0" toLane="0" tl="A" linkIndex="2" dir="l" via=":A_2_0"/>
    <connection from="e4" to="e5" tl="joined" linkIndex="0" via=":B_0_0"/>
    <connection from="e6" to="e7" tl="joined" linkIndex="1" via=":C_10_0"/>
</net>"#;

    #[test]
    fn lights_stand_at_their_junctions_and_positions_project_back() {
        let net = Net::parse(NET).expect("net");
        assert_eq!(net.offset, (-100.0, -200.5));
        assert_eq!(net.to_projected(10.0, 20.0), (110.0, 220.5));
        assert_eq!(net.lights.len(), 2);
        let a = &net.lights[0];
        assert_eq!((a.id.as_str(), a.x, a.y, a.links), ("A", 10.0, 20.0, 3));
        let j = &net.lights[1];
        assert_eq!((j.x, j.y, j.links), (40.0, 35.0, 2), "{j:?}");
        assert_eq!(j.junctions, ["B", "C"]);
        assert_eq!(a.phases.len(), 3);
        assert_eq!(a.phases[2], (27.0, "rrG".to_string()));
        assert_eq!(a.offset_s, 7.0);
        let stop = a.link_stops[2].as_ref().expect("link 2");
        assert_eq!((stop.x, stop.y, stop.dir), (10.0, 25.0, 'l'));
        assert_eq!(j.link_stops, [None, None], "no lanes given");
        assert!(Net::parse("<net/>").is_err_and(|e| e.contains("no <location>")));
        assert!(Net::parse("<net><location netOffset=\"x\"/></net>").is_err());
    }

    #[test]
    fn each_head_takes_the_nearest_stop_line_of_its_controllers_lights() {
        let net = Net::parse(NET).expect("net");
        let report = MatchReport {
            matched: vec![("A".into(), "c1".into(), 3.0)],
            ..Default::default()
        };
        // Projected = SUMO - offset: lane e1 ends at (105, 220.5), e8 at (110, 225.5).
        let heads = vec![
            ("west".to_string(), "c1".to_string(), (103.0, 218.0)),
            ("north".to_string(), "c1".to_string(), (111.0, 228.0)),
            ("far".to_string(), "c1".to_string(), (400.0, 400.0)),
            ("other".to_string(), "c2".to_string(), (105.0, 220.5)),
        ];
        let (links, unmatched) = match_heads(&net, &report, &heads, 40.0);
        let pairs: Vec<(&str, usize)> = links.iter().map(|l| (l.head.as_str(), l.index)).collect();
        assert_eq!(
            pairs,
            [("west", 0), ("north", 2)],
            "straight first on lane e1"
        );
        assert_eq!(unmatched, ["far", "other"]);
        assert_eq!(aspect_of('g'), Some("green"));
        assert_eq!(aspect_of('u'), Some("red-amber"));
        assert_eq!(aspect_of('x'), None);
    }

    #[test]
    fn each_light_goes_to_its_nearest_controller_and_the_rest_is_reported() {
        let lights = vec![
            ("s1".to_string(), (0.0, 0.0)),
            ("s2".to_string(), (100.0, 0.0)),
            ("s3".to_string(), (500.0, 0.0)),
            ("s4".to_string(), (12.0, 0.0)),
        ];
        let ctrls = vec![
            ("c1".to_string(), (5.0, 0.0)),
            ("c2".to_string(), (300.0, 0.0)),
            ("c3".to_string(), (98.0, 0.0)),
        ];
        let r = match_lights(&lights, &ctrls, 40.0, &[]);
        assert_eq!(
            r.matched,
            [
                ("s2".to_string(), "c3".to_string(), 2.0),
                ("s1".to_string(), "c1".to_string(), 5.0),
                ("s4".to_string(), "c1".to_string(), 7.0),
            ],
            "two lights of one crossing share its controller"
        );
        assert_eq!(r.sumo_only, [("s3".to_string(), Some(200.0))]);
        assert_eq!(r.twin_only, ["c2"]);
        // An override wins over distance and reach.
        let r = match_lights(&lights, &ctrls, 40.0, &[("s3".into(), "c2".into())]);
        assert!(
            r.matched
                .contains(&("s3".to_string(), "c2".to_string(), 200.0))
        );
        assert!(r.sumo_only.is_empty() && r.twin_only.is_empty());
    }
}
