//! OpenStreetMap XML (API 0.6 / Overpass `out meta` style): buildings as closed ways and as
//! `type=multipolygon` relations (ways joined into rings by shared nodes), and traffic-signal
//! nodes (`highway=traffic_signals`, `crossing=traffic_signals`); street centrelines (`highway`
//! ways of the classes in [`StreetClass`]) and surveyed street lamps (`highway=street_lamp`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bevy::math::DVec2;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use tvilling_geo::{Crs, Transformer};

use super::{
    AreaKind, BuildingShape, CutFeature, ImportError, ImportErrorKind, Imported, ImportedArea,
    ImportedBuilding, ImportedPoint, ImportedSignal, ImportedStreet, Polygon2, SignalType,
    StreetClass, clean_ring, height_from_tags, parse_length, ring_signed_area,
};

type Tags = Vec<(String, String)>;

fn tag<'a>(tags: &'a Tags, key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[derive(Default)]
struct Way {
    nodes: Vec<i64>,
    tags: Tags,
}

struct Member {
    kind: String,
    id: i64,
    role: String,
}

#[derive(Default)]
struct Relation {
    members: Vec<Member>,
    tags: Tags,
}

/// Raw OSM elements, keyed by id.
#[derive(Default)]
struct OsmDoc {
    node_pos: HashMap<i64, (f64, f64)>,
    signal_nodes: Vec<(i64, Tags)>,
    lamp_nodes: Vec<(i64, Tags)>,
    ways: HashMap<i64, Way>,
    way_order: Vec<i64>,
    relations: Vec<(i64, Relation)>,
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

enum Open {
    None,
    Node(i64, Tags),
    Way(i64, Way),
    Relation(i64, Relation),
}

fn parse_doc(text: &str, progress: &mut dyn FnMut(f32)) -> Result<OsmDoc, ImportErrorKind> {
    let mut reader = Reader::from_str(text);
    let mut doc = OsmDoc::default();
    let mut open = Open::None;
    let syntax = |r: &Reader<&[u8]>, m: String| ImportErrorKind::Syntax {
        format: "OSM XML",
        reason: format!("{m} at byte {}", r.buffer_position()),
    };
    let mut saw_osm = false;
    let mut closed_osm = false;
    let mut events = 0u32;
    let total = text.len().max(1) as f32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(65_536) {
            progress(reader.buffer_position() as f32 / total);
        }
        let ev = reader
            .read_event()
            .map_err(|e| syntax(&reader, e.to_string()))?;
        let (e, is_empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                let name = e.name();
                if name.as_ref() == "osm" {
                    closed_osm = true;
                }
                if matches!(name.as_ref(), "node" | "way" | "relation") {
                    finish(&mut doc, std::mem::replace(&mut open, Open::None));
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let id = || attr(e, "id").and_then(|v| v.parse::<i64>().ok());
        match e.name().as_ref() {
            "osm" => saw_osm = true,
            "node" => {
                let (Some(id), Some(lat), Some(lon)) = (
                    id(),
                    attr(e, "lat").and_then(|v| v.parse::<f64>().ok()),
                    attr(e, "lon").and_then(|v| v.parse::<f64>().ok()),
                ) else {
                    return Err(syntax(&reader, "node without numeric id/lat/lon".into()));
                };
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
                    doc.node_pos.insert(id, (lon, lat));
                }
                open = Open::Node(id, Vec::new());
                if is_empty {
                    finish(&mut doc, std::mem::replace(&mut open, Open::None));
                }
            }
            "way" => {
                let Some(id) = id() else {
                    return Err(syntax(&reader, "way without numeric id".into()));
                };
                open = Open::Way(id, Way::default());
                if is_empty {
                    finish(&mut doc, std::mem::replace(&mut open, Open::None));
                }
            }
            "relation" => {
                let Some(id) = id() else {
                    return Err(syntax(&reader, "relation without numeric id".into()));
                };
                open = Open::Relation(id, Relation::default());
                if is_empty {
                    finish(&mut doc, std::mem::replace(&mut open, Open::None));
                }
            }
            "tag" => {
                if let (Some(k), Some(v)) = (attr(e, "k"), attr(e, "v")) {
                    match &mut open {
                        Open::Node(_, t) => t.push((k, v)),
                        Open::Way(_, w) => w.tags.push((k, v)),
                        Open::Relation(_, r) => r.tags.push((k, v)),
                        Open::None => {}
                    }
                }
            }
            "nd" => {
                if let (Open::Way(_, w), Some(r)) =
                    (&mut open, attr(e, "ref").and_then(|v| v.parse().ok()))
                {
                    w.nodes.push(r);
                }
            }
            "member" => {
                if let (Open::Relation(_, rel), Some(kind), Some(id)) = (
                    &mut open,
                    attr(e, "type"),
                    attr(e, "ref").and_then(|v| v.parse().ok()),
                ) {
                    rel.members.push(Member {
                        kind,
                        id,
                        role: attr(e, "role").unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
    }
    if !saw_osm {
        return Err(ImportErrorKind::Syntax {
            format: "OSM XML",
            reason: "no <osm> root element".into(),
        });
    }
    if !closed_osm {
        return Err(ImportErrorKind::Syntax {
            format: "OSM XML",
            reason: "the file ends before </osm> (truncated?)".into(),
        });
    }
    Ok(doc)
}

fn finish(doc: &mut OsmDoc, open: Open) {
    match open {
        Open::Node(id, tags) => {
            let signal = tag(&tags, "highway") == Some("traffic_signals")
                || tag(&tags, "crossing") == Some("traffic_signals");
            if signal {
                doc.signal_nodes.push((id, tags));
            } else if tag(&tags, "highway") == Some("street_lamp") {
                doc.lamp_nodes.push((id, tags));
            }
        }
        Open::Way(id, w) => {
            doc.way_order.push(id);
            doc.ways.insert(id, w);
        }
        Open::Relation(id, r) => doc.relations.push((id, r)),
        Open::None => {}
    }
}

/// Joins open node sequences into closed rings by their shared end nodes. Returns the closed
/// rings and the number of pieces that could not be closed.
fn join_rings(mut pieces: Vec<Vec<i64>>) -> (Vec<Vec<i64>>, usize) {
    let mut rings = Vec::new();
    let mut unclosed = 0;
    while let Some(mut cur) = pieces.pop() {
        loop {
            if cur.len() >= 4 && cur.first() == cur.last() {
                rings.push(cur);
                break;
            }
            let Some(&end) = cur.last() else { break };
            let next = pieces
                .iter()
                .position(|p| p.first() == Some(&end) || p.last() == Some(&end));
            let Some(i) = next else {
                unclosed += 1;
                break;
            };
            let mut p = pieces.swap_remove(i);
            if p.first() != Some(&end) {
                p.reverse();
            }
            cur.extend_from_slice(&p[1..]);
        }
    }
    (rings, unclosed)
}

/// Ground cover class of an element's tags, if any.
fn area_kind(tags: &Tags) -> Option<AreaKind> {
    let water = tag(tags, "natural") == Some("water")
        || tag(tags, "waterway") == Some("riverbank")
        || matches!(tag(tags, "landuse"), Some("basin" | "reservoir"))
        || tag(tags, "place") == Some("sea");
    let park = matches!(tag(tags, "leisure"), Some("park" | "garden" | "playground"))
        || matches!(
            tag(tags, "landuse"),
            Some("grass" | "recreation_ground" | "cemetery" | "forest")
        )
        || tag(tags, "natural") == Some("wood");
    if water {
        Some(AreaKind::Water)
    } else if park {
        Some(AreaKind::Park)
    } else {
        None
    }
}

fn address(tags: &Tags) -> Option<String> {
    match (tag(tags, "addr:street"), tag(tags, "addr:housenumber")) {
        (Some(s), Some(n)) => Some(format!("{s} {n}")),
        (Some(s), None) => Some(s.to_string()),
        _ => None,
    }
}

/// Reads an OSM XML document and returns buildings and signals in `scene_crs`.
pub fn import_osm(path: &Path, text: &str, scene_crs: Crs) -> Imported {
    import_osm_with_progress(path, text, scene_crs, &mut |_| {})
}

/// As [`import_osm`], reporting the parsed share of the text (0..1) as it goes.
pub fn import_osm_with_progress(
    path: &Path,
    text: &str,
    scene_crs: Crs,
    progress: &mut dyn FnMut(f32),
) -> Imported {
    let mut out = Imported::default();
    out.report.files.push(path.to_path_buf());
    let file_err = |kind| ImportError {
        file: path.to_path_buf(),
        feature: String::new(),
        kind,
        feature_skipped: true,
    };
    let doc = match parse_doc(text, progress) {
        Ok(d) => d,
        Err(kind) => {
            out.report.errors.push(file_err(kind));
            return out;
        }
    };
    // Project every node once, in a batch.
    let transformer = match Transformer::new(Crs::WGS84, scene_crs) {
        Ok(t) => t,
        Err(e) => {
            out.report.errors.push(file_err(e.into()));
            return out;
        }
    };
    let ids: Vec<i64> = doc.node_pos.keys().copied().collect();
    let mut pts: Vec<(f64, f64)> = ids.iter().map(|id| doc.node_pos[id]).collect();
    if let Err(e) = transformer.convert_all(&mut pts) {
        out.report.errors.push(file_err(e.into()));
        return out;
    }
    let projected: HashMap<i64, DVec2> = ids
        .into_iter()
        .zip(pts)
        .map(|(id, (x, y))| (id, DVec2::new(x, y)))
        .collect();

    for (id, tags) in &doc.signal_nodes {
        let Some(p) = projected.get(id) else { continue };
        let signal_type = if tag(tags, "highway") == Some("traffic_signals") {
            SignalType::Junction
        } else {
            SignalType::Crossing
        };
        out.signals.push(ImportedSignal {
            id: format!("node/{id}"),
            position: *p,
            signal_type,
            attributes: tags.clone(),
        });
    }

    for (id, tags) in &doc.lamp_nodes {
        let Some(p) = projected.get(id) else { continue };
        out.lamps.push(ImportedPoint {
            id: format!("node/{id}"),
            position: *p,
            attributes: tags.clone(),
        });
    }

    let ring_points = |nodes: &[i64]| -> Result<Vec<DVec2>, ImportErrorKind> {
        nodes
            .iter()
            .map(|n| {
                projected
                    .get(n)
                    .copied()
                    .ok_or_else(|| ImportErrorKind::MissingReference(format!("node/{n}")))
            })
            .collect()
    };

    for wid in &doc.way_order {
        let w = &doc.ways[wid];
        if let Some(class) = tag(&w.tags, "highway").and_then(StreetClass::from_osm)
            && tag(&w.tags, "area") != Some("yes")
        {
            // Nodes outside the extract are left out; the street keeps the run it has.
            let line: Vec<DVec2> = w
                .nodes
                .iter()
                .filter_map(|n| projected.get(n).copied())
                .collect();
            if line.len() >= 2 {
                out.streets.push(ImportedStreet {
                    id: format!("way/{wid}"),
                    name: tag(&w.tags, "name").map(str::to_string),
                    class,
                    line,
                });
            }
            continue;
        }
        if tag(&w.tags, "building").is_none() {
            if let Some(kind) = area_kind(&w.tags)
                && w.nodes.len() >= 4
                && w.nodes.first() == w.nodes.last()
                && let Ok(Some(ring)) = ring_points(&w.nodes).map(clean_ring)
            {
                out.areas.push(ImportedArea {
                    id: format!("way/{wid}"),
                    kind,
                    polygons: vec![Polygon2 {
                        outer: ring,
                        holes: vec![],
                    }],
                });
            }
            continue;
        }
        let feature = format!("way/{wid}");
        // A building crossing the extract's edge: its nodes outside are not in the file.
        let outside: Vec<String> = w
            .nodes
            .iter()
            .filter(|n| !projected.contains_key(n))
            .map(|n| format!("node/{n}"))
            .collect();
        if !outside.is_empty() {
            out.report.cut.push(CutFeature {
                file: path.to_path_buf(),
                feature,
                missing: outside,
                drawn: false,
            });
            continue;
        }
        let mut errs = Vec::new();
        let polygon = (|| {
            if w.nodes.len() < 4 || w.nodes.first() != w.nodes.last() {
                return Err(ImportErrorKind::UnclosedRing);
            }
            let ring =
                clean_ring(ring_points(&w.nodes)?).ok_or(ImportErrorKind::DegeneratePolygon)?;
            Ok(Polygon2 {
                outer: ring,
                holes: vec![],
            })
        })();
        match polygon {
            Ok(p) => out
                .buildings
                .push(building(feature, &w.tags, vec![p], &mut errs)),
            Err(kind) => errs.push((kind, true)),
        }
        push_errors(&mut out, path, &format!("way/{wid}"), errs);
    }

    for (rid, rel) in &doc.relations {
        let area = if tag(&rel.tags, "building").is_none() {
            area_kind(&rel.tags)
        } else {
            None
        };
        if tag(&rel.tags, "type") != Some("multipolygon")
            || (tag(&rel.tags, "building").is_none() && area.is_none())
        {
            continue;
        }
        let feature = format!("relation/{rid}");
        let mut errs = Vec::new();
        let mut outer_pieces = Vec::new();
        let mut inner_pieces = Vec::new();
        // Members the extract cut off at its edge, and which rings they belonged to: a ring left
        // open where a piece is missing is the cut's doing, not a broken ring.
        let mut outside = Vec::new();
        let (mut outer_cut, mut inner_cut) = (false, false);
        for m in rel.members.iter().filter(|m| m.kind == "way") {
            let cut = match doc.ways.get(&m.id) {
                None => Some(format!("way/{}", m.id)),
                Some(w) => w
                    .nodes
                    .iter()
                    .find(|n| !projected.contains_key(n))
                    .map(|n| format!("node/{n} of way/{}", m.id)),
            };
            if let Some(cut) = cut {
                outside.push(cut);
                if m.role == "inner" {
                    inner_cut = true;
                } else {
                    outer_cut = true;
                }
                continue;
            }
            let w = &doc.ways[&m.id];
            if m.role == "inner" {
                inner_pieces.push(w.nodes.clone());
            } else {
                outer_pieces.push(w.nodes.clone());
            }
        }
        let (outer_rings, unclosed_o) = join_rings(outer_pieces);
        let (inner_rings, unclosed_i) = join_rings(inner_pieces);
        let unclosed =
            if outer_cut { 0 } else { unclosed_o } + if inner_cut { 0 } else { unclosed_i };
        for _ in 0..unclosed {
            errs.push((ImportErrorKind::UnclosedRing, false));
        }
        let mut polygons: Vec<Polygon2> = Vec::new();
        for r in &outer_rings {
            match ring_points(r).map(clean_ring) {
                Ok(Some(ring)) => polygons.push(Polygon2 {
                    outer: ring,
                    holes: vec![],
                }),
                Ok(None) => errs.push((ImportErrorKind::DegeneratePolygon, false)),
                Err(k) => errs.push((k, false)),
            }
        }
        let mut note_cut = |out: &mut Imported, drawn: bool| {
            if !outside.is_empty() {
                out.report.cut.push(CutFeature {
                    file: path.to_path_buf(),
                    feature: feature.clone(),
                    missing: std::mem::take(&mut outside),
                    drawn,
                });
            }
        };
        if polygons.is_empty() {
            note_cut(&mut out, false);
            if area.is_some() {
                continue;
            }
            // With its outer members outside the file, the cut is the whole story.
            if !outer_cut {
                errs.push((ImportErrorKind::NoOuterRing, true));
            }
            push_errors(&mut out, path, &feature, errs);
            continue;
        }
        note_cut(&mut out, true);
        for r in &inner_rings {
            let Ok(Some(hole)) = ring_points(r).map(clean_ring) else {
                errs.push((ImportErrorKind::DegeneratePolygon, false));
                continue;
            };
            // The hole belongs to the smallest outer ring that contains its first point.
            let host = polygons
                .iter_mut()
                .filter(|p| point_in_ring(hole[0], &p.outer))
                .min_by(|a, b| {
                    ring_signed_area(&a.outer)
                        .abs()
                        .total_cmp(&ring_signed_area(&b.outer).abs())
                });
            match host {
                Some(p) => p.holes.push(hole),
                None => errs.push((
                    ImportErrorKind::BadCoordinates(
                        "inner ring lies outside every outer ring".into(),
                    ),
                    false,
                )),
            }
        }
        match area {
            // Water and parks are ground cover, not buildings.
            Some(kind) => out.areas.push(ImportedArea {
                id: feature.clone(),
                kind,
                polygons,
            }),
            None => out
                .buildings
                .push(building(feature.clone(), &rel.tags, polygons, &mut errs)),
        }
        push_errors(&mut out, path, &feature, errs);
    }
    out
}

fn push_errors(out: &mut Imported, path: &Path, feature: &str, errs: Vec<(ImportErrorKind, bool)>) {
    let mut seen = HashSet::new();
    for (kind, skipped) in errs {
        if seen.insert(kind.to_string()) {
            out.report.errors.push(ImportError {
                file: path.to_path_buf(),
                feature: feature.to_string(),
                kind,
                feature_skipped: skipped,
            });
        }
    }
}

/// Even-odd point-in-ring test.
pub fn point_in_ring(p: DVec2, ring: &[DVec2]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn building(
    id: String,
    tags: &Tags,
    polygons: Vec<Polygon2>,
    errs: &mut Vec<(ImportErrorKind, bool)>,
) -> ImportedBuilding {
    let (height, height_source, levels) =
        height_from_tags(tag(tags, "height"), tag(tags, "building:levels"), |k| {
            errs.push((k, false))
        });
    let base = tag(tags, "min_height")
        .and_then(parse_length)
        .unwrap_or(0.0)
        .min(height - 0.5)
        .max(0.0);
    ImportedBuilding {
        id,
        name: tag(tags, "name").map(str::to_string),
        address: address(tags),
        levels,
        height,
        height_source,
        footprint: polygons.clone(),
        shape: BuildingShape::Extruded {
            polygons,
            base,
            height: height - base,
        },
        attributes: tags.clone(),
        source_file: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::HeightSource;

    const SMALL: &str = r#"<?xml version="1.0"?>
<osm version="0.6">
 <node id="1" lat="59.3300" lon="18.0600"/>
 <node id="2" lat="59.3300" lon="18.0610"/>
 <node id="3" lat="59.3305" lon="18.0610"/>
 <node id="4" lat="59.3305" lon="18.0600"/>
 <node id="5" lat="59.3301" lon="18.0602"/>
 <node id="6" lat="59.3301" lon="18.0604"/>
 <node id="7" lat="59.3302" lon="18.0604"/>
 <node id="8" lat="59.3310" lon="18.0600"><tag k="highway" v="traffic_signals"/></node>
 <node id="9" lat="59.3311" lon="18.0600"><tag k="crossing" v="traffic_signals"/><tag k="highway" v="crossing"/></node>
 <node id="30" lat="59.3312" lon="18.0605"><tag k="highway" v="street_lamp"/><tag k="lamp_mount" v="bent_mast"/></node>
 <way id="40"><nd ref="8"/><nd ref="9"/><nd ref="98"/><tag k="highway" v="secondary"/><tag k="name" v="Sveavägen"/></way>
 <way id="41"><nd ref="8"/><nd ref="9"/><tag k="highway" v="footway"/></way>
 <way id="42"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/><tag k="highway" v="pedestrian"/><tag k="area" v="yes"/></way>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
   <tag k="building" v="yes"/><tag k="building:levels" v="6"/><tag k="name" v="Test &amp; Co"/>
   <tag k="addr:street" v="Kungsgatan"/><tag k="addr:housenumber" v="1"/></way>
 <way id="11"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="building" v="yes"/></way>
 <way id="12"><nd ref="1"/><nd ref="2"/><nd ref="3"/></way>
 <way id="13"><nd ref="3"/><nd ref="4"/><nd ref="1"/></way>
 <way id="14"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="5"/></way>
 <way id="15"><nd ref="1"/><nd ref="99"/><nd ref="3"/><nd ref="1"/><tag k="building" v="yes"/></way>
 <relation id="20"><member type="way" ref="12" role="outer"/><member type="way" ref="13" role="outer"/>
   <member type="way" ref="14" role="inner"/><member type="way" ref="777" role="outer"/>
   <tag k="type" v="multipolygon"/><tag k="building" v="yes"/><tag k="height" v="21 m"/></relation>
 <relation id="21"><member type="way" ref="12" role="outer"/>
   <tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>
 <relation id="22"><member type="way" ref="12" role="outer"/><member type="way" ref="778" role="outer"/>
   <tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>
 <relation id="23"><member type="way" ref="12" role="outer"/><member type="way" ref="779" role="inner"/>
   <tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>
 <relation id="24"><member type="way" ref="12" role="outer"/><member type="way" ref="13" role="outer"/>
   <member type="way" ref="14" role="inner"/><tag k="type" v="multipolygon"/><tag k="natural" v="water"/></relation>
</osm>"#;

    #[test]
    fn reads_ways_relations_and_signals_and_reports_broken_features() {
        let out = import_osm(Path::new("small.osm"), SMALL, Crs::SWEREF99_TM);
        let ids: Vec<_> = out.buildings.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["way/10", "relation/20"]);
        let w = &out.buildings[0];
        assert_eq!(w.name.as_deref(), Some("Test & Co"));
        assert_eq!(w.address.as_deref(), Some("Kungsgatan 1"));
        assert_eq!(
            (w.height, w.height_source),
            (18.0, HeightSource::FromLevels)
        );
        // 0.001 deg lon x 0.0005 deg lat at 59.33 N: about 56.9 m x 55.7 m.
        let area = w.footprint[0].area();
        assert!((area - 3170.0).abs() < 60.0, "area {area}");
        let r = &out.buildings[1];
        assert_eq!((r.height, r.height_source), (21.0, HeightSource::Measured));
        assert_eq!(r.footprint.len(), 1);
        assert_eq!(r.footprint[0].holes.len(), 1, "inner ring assigned");

        // A water multipolygon is ground cover with its hole, not a building.
        let water: Vec<_> = out
            .areas
            .iter()
            .map(|a| {
                (
                    a.id.as_str(),
                    a.kind,
                    a.polygons.len(),
                    a.polygons[0].holes.len(),
                )
            })
            .collect();
        assert_eq!(water, [("relation/24", AreaKind::Water, 1, 1)]);

        assert_eq!(out.signals.len(), 2);
        assert_eq!(out.signals[0].signal_type, SignalType::Junction);
        assert_eq!(out.signals[1].signal_type, SignalType::Crossing);

        // One street (the footway and the pedestrian area are not streets); its node outside
        // the extract is left out. One surveyed lamp.
        assert_eq!(out.streets.len(), 1);
        let street = &out.streets[0];
        assert_eq!(
            (street.id.as_str(), street.name.as_deref(), street.class),
            ("way/40", Some("Sveavägen"), StreetClass::Secondary)
        );
        assert_eq!(street.line.len(), 2);
        assert!((street.line[0].distance(street.line[1]) - 11.1).abs() < 0.5);
        assert_eq!(out.lamps.len(), 1);
        assert_eq!(out.lamps[0].id, "node/30");

        let errs: Vec<_> = out
            .report
            .errors
            .iter()
            .map(|e| (e.feature.as_str(), e.kind.clone(), e.feature_skipped))
            .collect();
        assert!(
            errs.contains(&("way/11", ImportErrorKind::UnclosedRing, true)),
            "{errs:?}"
        );
        // A ring that does not close is a problem; so is a relation with nothing to draw,
        // where no member is missing (21) or only an inner one is (23).
        assert!(errs.contains(&("relation/21", ImportErrorKind::UnclosedRing, false)));
        assert!(errs.contains(&("relation/21", ImportErrorKind::NoOuterRing, true)));
        assert!(errs.contains(&("relation/23", ImportErrorKind::UnclosedRing, false)));
        assert!(errs.contains(&("relation/23", ImportErrorKind::NoOuterRing, true)));
        assert_eq!(errs.len(), 5, "{errs:?}");
        // What lies outside the extract is a note, not a problem: the way with a node outside
        // (not drawn), relation 20 drawn from its parts inside, relation 22 whose open outer ring
        // is the cut's doing (not drawn, and no unclosed-ring problem), 23's inner member.
        let cut: Vec<_> = out
            .report
            .cut
            .iter()
            .map(|c| (c.feature.as_str(), c.missing.clone(), c.drawn))
            .collect();
        assert_eq!(
            cut,
            [
                ("way/15", vec!["node/99".to_string()], false),
                ("relation/20", vec!["way/777".to_string()], true),
                ("relation/22", vec!["way/778".to_string()], false),
                ("relation/23", vec!["way/779".to_string()], false),
            ]
        );
        assert_eq!(out.report.cut_drawn(), 1);
        assert_eq!(
            out.report.cut[1].to_string(),
            "relation/20: 1 member outside the file (way/777); drawn from the parts inside"
        );
    }

    #[test]
    fn malformed_xml_is_an_error_with_position_not_a_panic() {
        let out = import_osm(
            Path::new("bad.osm"),
            "<osm><node id=\"1\" lat=",
            Crs::SWEREF99_TM,
        );
        assert!(out.buildings.is_empty());
        assert_eq!(out.report.errors.len(), 1);
        assert!(matches!(
            out.report.errors[0].kind,
            ImportErrorKind::Syntax { .. }
        ));
        let out = import_osm(Path::new("empty.osm"), "", Crs::SWEREF99_TM);
        assert!(matches!(
            out.report.errors[0].kind,
            ImportErrorKind::Syntax { .. }
        ));
    }

    #[test]
    fn joins_rings_in_either_direction() {
        let (rings, unclosed) = join_rings(vec![vec![1, 2, 3], vec![1, 4, 3], vec![7, 8]]);
        assert_eq!(unclosed, 1);
        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].len(), 5);
    }
}
