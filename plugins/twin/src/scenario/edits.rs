//! A scenario's edits applied to the devices planned for a city, before they are registered and
//! simulated: lamps selected by street, street class or district get another dimming calendar,
//! presence dimming, fittings or photocell threshold. All or nothing: any refusal leaves the
//! plan as it was.

use std::collections::HashMap;
use std::sync::Arc;

use bevy::math::DVec2;
use tvilling_geo::{Crs, Transformer};
use tvilling_sensors::generate::PlannedDevice;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::simulate::{LightingPolicy, SimProfile};

use super::file::{Edit, LightingEdit, ON_STREET_M, Scenario, ScenarioError};
use crate::simulation::PlanEdits;

/// The districts shipped with the app (Stockholm's stadsdelar, CC0).
pub const SHIPPED_DISTRICTS: &str =
    include_str!("../../../../assets/districts/stadsdelar.geo.json");

/// Named districts as WGS 84 polygons (rings of longitude, latitude; outer rings and holes).
#[derive(Debug, Clone, Default)]
pub struct Districts {
    districts: Vec<(String, Vec<Vec<(f64, f64)>>)>,
}

impl Districts {
    /// From a GeoJSON FeatureCollection of Polygons and MultiPolygons with a `name` property.
    pub fn from_geojson(text: &str) -> Result<Districts, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("districts: {e}"))?;
        let features = v["features"]
            .as_array()
            .ok_or("districts: no features array")?;
        let ring = |r: &serde_json::Value| -> Option<Vec<(f64, f64)>> {
            r.as_array()?
                .iter()
                .map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                .collect()
        };
        let mut districts = Vec::new();
        for f in features {
            let name = f["properties"]["name"]
                .as_str()
                .ok_or("districts: a feature without a name")?
                .to_string();
            let g = &f["geometry"];
            let polygons: Vec<&serde_json::Value> = match g["type"].as_str() {
                Some("Polygon") => vec![&g["coordinates"]],
                Some("MultiPolygon") => g["coordinates"]
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default(),
                other => return Err(format!("districts: {name}: geometry {other:?}")),
            };
            let mut rings = Vec::new();
            for p in polygons {
                for r in p.as_array().into_iter().flatten() {
                    rings.push(ring(r).ok_or_else(|| format!("districts: {name}: bad ring"))?);
                }
            }
            districts.push((name, rings));
        }
        Ok(Districts { districts })
    }

    /// The districts shipped in `assets/districts/`.
    pub fn shipped() -> Districts {
        Districts::from_geojson(SHIPPED_DISTRICTS).unwrap_or_default()
    }

    /// The districts' names, in the file's order.
    pub fn names(&self) -> Vec<&str> {
        self.districts.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Whether a district of that name (case ignored) exists.
    pub fn knows(&self, name: &str) -> bool {
        self.rings(name).is_some()
    }

    fn rings(&self, name: &str) -> Option<&[Vec<(f64, f64)>]> {
        self.districts
            .iter()
            .find(|(n, _)| n.to_lowercase() == name.to_lowercase())
            .map(|(_, r)| r.as_slice())
    }

    /// The district a point (longitude, latitude) lies in, if any.
    pub fn name_at(&self, lon: f64, lat: f64) -> Option<&str> {
        self.districts
            .iter()
            .find(|(n, _)| self.contains(n, lon, lat))
            .map(|(n, _)| n.as_str())
    }

    /// Whether a point (longitude, latitude) lies in the district (even-odd over its rings).
    pub fn contains(&self, name: &str, lon: f64, lat: f64) -> bool {
        let Some(rings) = self.rings(name) else {
            return false;
        };
        let mut inside = false;
        for ring in rings {
            for (i, &(x1, y1)) in ring.iter().enumerate() {
                let (x0, y0) = ring[(i + ring.len() - 1) % ring.len()];
                if (y0 > lat) != (y1 > lat) && lon < x0 + (lat - y0) / (y1 - y0) * (x1 - x0) {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

fn attribute<'a>(d: &'a PlannedDevice, key: &str) -> Option<&'a str> {
    d.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// What the edits did, a line per edit.
pub type Summary = Vec<String>;

/// Id prefix of a planned building's meter (the edit's number follows).
pub const PLANNED_METER_PREFIX: &str = "meter/scenario/";

/// How far outside the city's devices a new building may stand, metres.
pub const CITY_MARGIN_M: f64 = 200.0;

/// Area of a ring of (longitude, latitude) corners, square metres (local equirectangular: a
/// block's footprint is far smaller than the curvature matters for).
pub fn footprint_area_m2(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len() as f64;
    let lat0 = ring.iter().map(|p| p.1).sum::<f64>() / n;
    let (mx, my) = (111_320.0 * lat0.to_radians().cos(), 110_574.0);
    let xy: Vec<(f64, f64)> = ring.iter().map(|(lon, lat)| (lon * mx, lat * my)).collect();
    let twice: f64 = (0..xy.len())
        .map(|i| {
            let (a, b) = (xy[i], xy[(i + 1) % xy.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    twice.abs() / 2.0
}

/// Applies a scenario's edits to planned devices (positions in the scene's CRS; `to_wgs84`
/// and `from_wgs84` convert to and from longitude, latitude). All or nothing.
pub fn apply_edits(
    scenario: &Scenario,
    planned: &mut Vec<PlannedDevice>,
    to_wgs84: impl Fn(DVec2) -> Option<(f64, f64)>,
    from_wgs84: impl Fn(f64, f64) -> Option<DVec2>,
    districts: &Districts,
) -> Result<Summary, ScenarioError> {
    let err = |e: &Edit, reason: String| ScenarioError {
        file: scenario.path.display().to_string(),
        line: Some(e.line),
        edit: Some(e.number),
        reason,
    };
    let lamps: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].kind == DeviceKind::Lamp)
        .collect();
    let positions: Vec<Option<(f64, f64)>> = lamps
        .iter()
        .map(|&i| to_wgs84(planned[i].position))
        .collect();
    // Signal controllers: their heads (indices into `planned`), in the plan's order.
    let mut controllers: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, d) in planned.iter().enumerate() {
        if d.kind != DeviceKind::SignalHead {
            continue;
        }
        let id = attribute(d, "controller").unwrap_or(&d.id).to_string();
        match controllers.iter_mut().find(|(c, _)| *c == id) {
            Some((_, heads)) => heads.push(i),
            None => controllers.push((id, vec![i])),
        }
    }
    let on_street = |street: &str| -> Vec<DVec2> {
        lamps
            .iter()
            .filter(|&&i| {
                attribute(&planned[i], "street").is_some_and(|s| s.eq_ignore_ascii_case(street))
            })
            .map(|&i| planned[i].position)
            .collect()
    };
    // What each edit selects: indices into `lamps`, or into `controllers` for signal edits.
    let mut selected: Vec<Vec<usize>> = Vec::new();
    for e in &scenario.edits {
        let sel = &e.lamps;
        let mut street_lamps: Vec<Vec<DVec2>> = Vec::new();
        for street in &sel.streets {
            let points = on_street(street);
            if points.is_empty() {
                return Err(err(
                    e,
                    format!("no street lamp on a street named {street:?} in this city"),
                ));
            }
            street_lamps.push(points);
        }
        for d in &sel.districts {
            if !districts.knows(d) {
                return Err(err(e, format!("no district named {d:?}")));
            }
        }
        for c in &sel.controllers {
            if !controllers.iter().any(|(id, _)| id == c) {
                return Err(err(e, format!("no signal controller {c:?} in this city")));
            }
        }
        let in_districts = |p: DVec2| {
            sel.districts.is_empty()
                || to_wgs84(p).is_some_and(|(lon, lat)| {
                    sel.districts
                        .iter()
                        .any(|n| districts.contains(n, lon, lat))
                })
        };
        let chosen: Vec<usize> = if e.change.is_building() {
            Vec::new()
        } else if e.change.is_signal() {
            (0..controllers.len())
                .filter(|&c| {
                    let (id, heads) = &controllers[c];
                    let id_ok = sel.controllers.is_empty() || sel.controllers.contains(id);
                    let street_ok = street_lamps.iter().all(|points| {
                        heads.iter().any(|&h| {
                            points
                                .iter()
                                .any(|p| p.distance(planned[h].position) <= ON_STREET_M)
                        })
                    });
                    let district_ok = heads.iter().any(|&h| in_districts(planned[h].position));
                    id_ok && street_ok && district_ok
                })
                .collect()
        } else {
            (0..lamps.len())
                .filter(|&k| {
                    let d = &planned[lamps[k]];
                    let street_ok = sel.streets.is_empty()
                        || attribute(d, "street")
                            .is_some_and(|s| sel.streets.iter().any(|w| s.eq_ignore_ascii_case(w)));
                    let class_ok = sel.street_classes.is_empty()
                        || attribute(d, "street_class").is_some_and(|c| {
                            sel.street_classes.iter().any(|w| c.eq_ignore_ascii_case(w))
                        });
                    let district_ok = sel.districts.is_empty()
                        || positions[k].is_some_and(|(lon, lat)| {
                            sel.districts
                                .iter()
                                .any(|n| districts.contains(n, lon, lat))
                        });
                    street_ok && class_ok && district_ok
                })
                .collect()
        };
        if chosen.is_empty() && !e.change.is_building() {
            let what = if e.change.is_signal() {
                "signal controller"
            } else {
                "street lamp"
            };
            return Err(err(e, format!("selects no {what} in this city")));
        }
        selected.push(chosen);
    }
    // Two edits of one class may not both apply to a device (which would win is not data).
    for (a, ea) in scenario.edits.iter().enumerate() {
        for (b, eb) in scenario.edits.iter().enumerate().skip(a + 1) {
            if ea.change.class() != eb.change.class() {
                continue;
            }
            let both: Vec<usize> = selected[b]
                .iter()
                .filter(|k| selected[a].binary_search(k).is_ok())
                .copied()
                .collect();
            if let Some(first) = both.first() {
                let example = if eb.change.is_signal() {
                    controllers[*first].0.clone()
                } else {
                    planned[lamps[*first]].id.clone()
                };
                let what = if eb.change.is_signal() {
                    "controllers"
                } else {
                    "lamps"
                };
                return Err(err(
                    eb,
                    format!(
                        "overlaps edit {}: both give {} {what} (e.g. {example}) a {} edit",
                        ea.number,
                        both.len(),
                        eb.change.class()
                    ),
                ));
            }
        }
    }
    // Apply to a copy; the plan changes only when every edit applied.
    let mut out: Vec<PlannedDevice> = planned.to_vec();
    let mut policies: HashMap<(Option<usize>, Option<usize>), Arc<LightingPolicy>> = HashMap::new();
    let mut calendar_of = vec![None; lamps.len()];
    let mut presence_of = vec![None; lamps.len()];
    let mut summary = Vec::new();
    // The city's extent: new buildings must stand within it.
    let (lo, hi) = planned.iter().fold(
        (DVec2::splat(f64::INFINITY), DVec2::splat(f64::NEG_INFINITY)),
        |(lo, hi), d| (lo.min(d.position), hi.max(d.position)),
    );
    for (n, e) in scenario.edits.iter().enumerate() {
        if let LightingEdit::Building {
            name,
            footprint,
            storeys,
            building_use,
        } = &e.change
        {
            let k = footprint.len() as f64;
            let (lon, lat) = footprint
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p.0 / k, y + p.1 / k));
            let at = from_wgs84(lon, lat)
                .filter(|p| {
                    p.x >= lo.x - CITY_MARGIN_M
                        && p.x <= hi.x + CITY_MARGIN_M
                        && p.y >= lo.y - CITY_MARGIN_M
                        && p.y <= hi.y + CITY_MARGIN_M
                })
                .ok_or_else(|| {
                    err(
                        e,
                        format!("the footprint (centre {lon:.5}, {lat:.5}) lies outside the city"),
                    )
                })?;
            let area = footprint_area_m2(footprint);
            if area < 20.0 {
                return Err(err(e, format!("the footprint is only {area:.1} m²")));
            }
            let floor = area * storeys;
            let use_name = format!("{building_use:?}").to_lowercase();
            out.push(PlannedDevice {
                id: format!("{PLANNED_METER_PREFIX}{}", e.number),
                name: format!("Energy meter of {name}"),
                kind: DeviceKind::Meter,
                position: at,
                host: None,
                attributes: vec![
                    ("origin".into(), "scenario".into()),
                    ("placement".into(), format!("new building: {name}")),
                    ("building_use".into(), use_name.clone()),
                    ("floor_area_m2".into(), format!("{floor:.0}")),
                ],
                profile: SimProfile::Meter {
                    floor_area_m2: floor,
                    building_use: *building_use,
                },
            });
            summary.push(format!(
                "edit {} (building): {name}, {area:.0} m² x {storeys} storeys = {floor:.0} m² of {use_name}",
                e.number
            ));
            continue;
        }
        if e.change.is_signal() {
            let street = e.lamps.streets.first().map(|s| on_street(s));
            summary.push(apply_signal_edit(
                e,
                &selected[n],
                &controllers,
                street.as_deref(),
                &mut out,
            ));
            continue;
        }
        let mut changed = 0usize;
        for &k in &selected[n] {
            let SimProfile::Lamp {
                rated_w,
                on_below_deg,
                ..
            } = &mut out[lamps[k]].profile
            else {
                continue;
            };
            match &e.change {
                LightingEdit::Dimming { .. } => {
                    calendar_of[k] = Some(n);
                    changed += 1;
                }
                LightingEdit::Presence(_) => {
                    presence_of[k] = Some(n);
                    changed += 1;
                }
                LightingEdit::Retrofit(watts) => {
                    if let Some((_, new)) =
                        watts.iter().find(|(old, _)| (old - *rated_w).abs() < 0.05)
                    {
                        *rated_w = *new;
                        changed += 1;
                    }
                }
                LightingEdit::Photocell(deg) => {
                    *on_below_deg = *deg;
                    changed += 1;
                }
                LightingEdit::SignalTiming { .. }
                | LightingEdit::GreenWave { .. }
                | LightingEdit::Building { .. } => {}
            }
        }
        summary.push(format!(
            "edit {} ({}): {changed} of the {} lamps it selects changed",
            e.number,
            e.change.kind(),
            selected[n].len()
        ));
    }
    for (k, &i) in lamps.iter().enumerate() {
        let key = (calendar_of[k], presence_of[k]);
        if key == (None, None) {
            continue;
        }
        let policy = policies
            .entry(key)
            .or_insert_with(|| {
                let mut p = LightingPolicy::baseline();
                if let Some(LightingEdit::Dimming { weekdays, weekends }) =
                    key.0.map(|n| &scenario.edits[n].change)
                {
                    p.weekdays = weekdays.clone();
                    p.weekends = weekends.clone();
                }
                if let Some(LightingEdit::Presence(presence)) =
                    key.1.map(|n| &scenario.edits[n].change)
                {
                    p.presence = Some(*presence);
                }
                Arc::new(p)
            })
            .clone();
        if let SimProfile::Lamp { policy: slot, .. } = &mut out[i].profile {
            *slot = policy;
        }
    }
    *planned = out;
    Ok(summary)
}

/// Changes the timing (cycle, split, offset) of signal heads.
fn retime(
    out: &mut [PlannedDevice],
    heads: &[usize],
    mut change: impl FnMut(&mut f64, &mut f64, &mut f64),
) {
    for &h in heads {
        if let SimProfile::Signal {
            cycle_s,
            offset_s,
            split,
            ..
        } = &mut out[h].profile
        {
            change(cycle_s, split, offset_s);
        }
    }
}

/// Applies a signal edit to the heads of the selected controllers; returns its summary line.
fn apply_signal_edit(
    e: &Edit,
    selected: &[usize],
    controllers: &[(String, Vec<usize>)],
    street: Option<&[DVec2]>,
    out: &mut [PlannedDevice],
) -> String {
    let heads: usize = selected.iter().map(|&c| controllers[c].1.len()).sum();
    match &e.change {
        LightingEdit::SignalTiming {
            cycle_s,
            split,
            offset_s,
        } => {
            for &c in selected {
                retime(out, &controllers[c].1, |cycle, share, offset| {
                    *cycle = cycle_s.unwrap_or(*cycle);
                    *share = split.unwrap_or(*share);
                    *offset = offset_s.unwrap_or(*offset).rem_euclid(*cycle);
                });
            }
            format!(
                "edit {} (signal_timing): {} controllers ({heads} heads) retimed",
                e.number,
                selected.len()
            )
        }
        LightingEdit::GreenWave {
            cycle_s,
            speed_kmh,
            split,
        } => {
            // The street's direction from its lamps: north-south streets run in phase group 0,
            // east-west ones in group 1 (as the generator groups heads).
            let points = street.unwrap_or_default();
            let (lo, hi) = points.iter().fold(
                (DVec2::splat(f64::INFINITY), DVec2::splat(f64::NEG_INFINITY)),
                |(lo, hi), p| (lo.min(*p), hi.max(*p)),
            );
            let north_south = (hi.y - lo.y) >= (hi.x - lo.x);
            let group = u8::from(!north_south);
            let along = |p: DVec2| if north_south { p.y } else { p.x };
            let centre = |c: usize| {
                let heads = &controllers[c].1;
                heads.iter().map(|&h| out[h].position).sum::<DVec2>() / heads.len() as f64
            };
            let distance: Vec<f64> = selected.iter().map(|&c| along(centre(c))).collect();
            let first = distance.iter().copied().fold(f64::INFINITY, f64::min);
            let speed = speed_kmh / 3.6;
            for (&c, d) in selected.iter().zip(&distance) {
                let s = d - first;
                retime(out, &controllers[c].1, |cycle, share, offset| {
                    *cycle = *cycle_s;
                    *share = split.unwrap_or(*share);
                    let start = tvilling_sensors::simulate::green_start_s(*cycle, *share, group);
                    *offset = (s / speed - start).rem_euclid(*cycle);
                });
            }
            format!(
                "edit {} (green_wave): {} controllers ({heads} heads) along {} at {speed_kmh} km/h on a {cycle_s} s cycle",
                e.number,
                selected.len(),
                e.lamps.streets.first().map_or("", String::as_str)
            )
        }
        _ => String::new(),
    }
}

/// The twin's hook for a scenario: its edits applied to the planned devices of the city.
pub fn plan_edits(scenario: Scenario, districts: Arc<Districts>) -> PlanEdits {
    PlanEdits(Arc::new(
        move |planned: &mut Vec<PlannedDevice>, crs: Crs| {
            let to_wgs84 = Transformer::new(crs, Crs::WGS84).map_err(|e| e.to_string())?;
            let from_wgs84 = Transformer::new(Crs::WGS84, crs).map_err(|e| e.to_string())?;
            apply_edits(
                &scenario,
                planned,
                |p| to_wgs84.convert(p.x, p.y).ok(),
                |lon, lat| {
                    from_wgs84
                        .convert(lon, lat)
                        .ok()
                        .map(|(x, y)| DVec2::new(x, y))
                },
                &districts,
            )
            .map_err(|e| e.to_string())
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tvilling_sensors::simulate::SimProfile;
    use tvilling_sensors::state::SignalAspect;

    fn lamp(id: &str, street: &str, class: &str, x: f64, watts: f64) -> PlannedDevice {
        PlannedDevice {
            id: id.into(),
            kind: DeviceKind::Lamp,
            position: DVec2::new(x, 0.0),
            host: None,
            name: id.into(),
            attributes: vec![
                ("street".into(), street.into()),
                ("street_class".into(), class.into()),
            ],
            profile: SimProfile::lamp(1, id, watts),
        }
    }

    /// Three lamps: two on Kungsgatan (primary, x 0 and 1), one on a residential lane (x 2).
    fn plan() -> Vec<PlannedDevice> {
        vec![
            lamp("a", "Kungsgatan", "primary", 0.0, 100.0),
            lamp("b", "Kungsgatan", "primary", 1.0, 60.0),
            lamp("c", "Gränd", "residential", 2.0, 60.0),
        ]
    }

    /// A district `EAST` covering x >= 0.5 (as longitude), latitude -1..1.
    fn districts() -> Districts {
        Districts::from_geojson(
            r#"{"features":[{"properties":{"name":"EAST"},"geometry":{"type":"Polygon","coordinates":[[[0.5,-1],[5,-1],[5,1],[0.5,1],[0.5,-1]]]}}]}"#,
        )
        .expect("districts")
    }

    fn run(text: &str, plan: &mut Vec<PlannedDevice>) -> Result<Summary, ScenarioError> {
        let s = Scenario::parse(text, Path::new("s.toml")).expect("parses");
        apply_edits(
            &s,
            plan,
            |p| Some((p.x, p.y)),
            // A degree is a kilometre here: a footprint a few degrees away is off the map.
            |lon, lat| Some(DVec2::new(lon * 1000.0, lat * 1000.0)),
            &districts(),
        )
    }

    fn watts(d: &PlannedDevice) -> f64 {
        match &d.profile {
            SimProfile::Lamp { rated_w, .. } => *rated_w,
            _ => f64::NAN,
        }
    }

    #[test]
    fn edits_reach_the_lamps_they_select_and_no_others() {
        let mut p = plan();
        let summary = run(
            r#"name = "t"
[[edit]]
kind = "retrofit"
streets = ["kungsgatan"]
watts = [[100, 56]]
[[edit]]
kind = "dimming"
districts = ["east"]
weekdays = [["00:00", 30]]
[[edit]]
kind = "presence"
street_classes = ["residential"]
base_pct = 20
raised_share = 0.1
"#,
            &mut p,
        )
        .expect("applies");
        assert_eq!(summary.len(), 3);
        assert_eq!(
            summary[0],
            "edit 1 (retrofit): 1 of the 2 lamps it selects changed"
        );
        assert_eq!(
            (watts(&p[0]), watts(&p[1]), watts(&p[2])),
            (56.0, 60.0, 60.0)
        );
        let policy = |d: &PlannedDevice| match &d.profile {
            SimProfile::Lamp { policy, .. } => (**policy).clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            policy(&p[0]),
            LightingPolicy::baseline(),
            "outside the district"
        );
        assert_eq!(policy(&p[1]).weekdays, vec![(0, 30.0)]);
        assert_eq!(policy(&p[2]).weekdays, vec![(0, 30.0)]);
        assert_eq!(policy(&p[2]).presence.map(|x| x.base_pct), Some(20.0));
        assert_eq!(policy(&p[1]).presence, None);
    }

    #[test]
    fn refused_edits_change_nothing_and_say_why() {
        let cases = [
            (
                "name = \"t\"\n[[edit]]\nkind = \"photocell\"\nstreets = [\"Nowhere\"]\non_below_deg = -3\n",
                "s.toml:2: edit 1: no street lamp on a street named \"Nowhere\" in this city",
            ),
            (
                "name = \"t\"\n[[edit]]\nkind = \"photocell\"\ndistricts = [\"KISTA\"]\non_below_deg = -3\n",
                "s.toml:2: edit 1: no district named \"KISTA\"",
            ),
            (
                "name = \"t\"\n[[edit]]\nkind = \"photocell\"\nstreets = [\"Gränd\"]\ndistricts = [\"EAST\"]\nstreet_classes = [\"primary\"]\non_below_deg = -3\n",
                "s.toml:2: edit 1: selects no street lamp in this city",
            ),
            (
                "name = \"t\"\n[[edit]]\nkind = \"retrofit\"\nwatts = [[60, 30]]\n[[edit]]\nkind = \"dimming\"\nstreets = [\"Gränd\"]\nweekdays = [[\"00:00\", 40]]\n[[edit]]\nkind = \"dimming\"\ndistricts = [\"EAST\"]\nweekdays = [[\"00:00\", 30]]\n",
                "s.toml:9: edit 3: overlaps edit 2: both give 1 lamps (e.g. c) a dimming edit",
            ),
        ];
        for (text, want) in cases {
            let mut p = plan();
            let before = p.clone();
            let e = run(text, &mut p).expect_err(text).to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
            assert_eq!(p, before, "nothing half-applied");
        }
    }

    fn head(id: &str, controller: &str, x: f64, y: f64) -> PlannedDevice {
        PlannedDevice {
            id: id.into(),
            kind: DeviceKind::SignalHead,
            position: DVec2::new(x, y),
            host: None,
            name: id.into(),
            attributes: vec![("controller".into(), controller.into())],
            profile: SimProfile::Signal {
                cycle_s: 60.0,
                offset_s: 7.0,
                split: 0.5,
                group: 0,
            },
        }
    }

    /// A north-south street (lamps every 30 m, x = 0) with controllers at y = 0, 200 and 400,
    /// and one off the street.
    fn avenue() -> Vec<PlannedDevice> {
        let mut p: Vec<PlannedDevice> = (0..21)
            .map(|k| {
                let mut l = lamp(&format!("l{k}"), "Sveavägen", "primary", 0.0, 100.0);
                l.position = DVec2::new(0.0, 30.0 * f64::from(k));
                l
            })
            .collect();
        for (c, y) in [
            ("c0", 0.0),
            ("c200", 200.0),
            ("c400", 400.0),
            ("away", 1000.0),
        ] {
            p.push(head(&format!("{c}-w"), c, -5.0, y));
            p.push(head(&format!("{c}-e"), c, 5.0, y));
        }
        p
    }

    #[test]
    fn a_green_wave_turns_green_as_traffic_at_its_speed_arrives() {
        let mut p = avenue();
        let summary = run(
            "name = \"wave\"\n[[edit]]\nkind = \"green_wave\"\nstreets = [\"Sveavägen\"]\ncycle_s = 90\nspeed_kmh = 36\nsplit = 0.5\n",
            &mut p,
        )
        .expect("applies");
        assert_eq!(
            summary[0],
            "edit 1 (green_wave): 3 controllers (6 heads) along Sveavägen at 36 km/h on a 90 s cycle"
        );
        // At 10 m/s the controller 200 m on turns green 20 s after the first, 400 m on 40 s.
        let green_at = |id: &str| {
            let d = p.iter().find(|d| d.id == id).expect(id);
            (0..90_000)
                .step_by(100)
                .find(|&t| {
                    d.profile.signal_at(t - 100).map(|a| a.0) != Some(SignalAspect::Green)
                        && d.profile.signal_at(t).map(|a| a.0) == Some(SignalAspect::Green)
                })
                .expect("turns green")
        };
        let (g0, g200, g400) = (green_at("c0-w"), green_at("c200-e"), green_at("c400-w"));
        assert_eq!((g200 - g0 + 90_000) % 90_000, 20_000);
        assert_eq!((g400 - g0 + 90_000) % 90_000, 40_000);
        // The controller off the street keeps its timing.
        let away = p.iter().find(|d| d.id == "away-w").expect("away");
        assert!(
            matches!(away.profile, SimProfile::Signal { cycle_s, offset_s, .. } if cycle_s == 60.0 && offset_s == 7.0)
        );
        // Retiming by controller id; a second timing edit on it is an overlap.
        let mut p = avenue();
        run(
            "name = \"t\"\n[[edit]]\nkind = \"signal_timing\"\ncontrollers = [\"away\"]\ncycle_s = 75\n",
            &mut p,
        )
        .expect("applies");
        assert!(
            p.iter().filter(|d| d.id.starts_with("away")).all(
                |d| matches!(d.profile, SimProfile::Signal { cycle_s, .. } if cycle_s == 75.0)
            )
        );
        for (text, want) in [
            (
                "name = \"t\"\n[[edit]]\nkind = \"signal_timing\"\ncontrollers = [\"nowhere\"]\nsplit = 0.6\n",
                "s.toml:2: edit 1: no signal controller \"nowhere\" in this city",
            ),
            (
                "name = \"t\"\n[[edit]]\nkind = \"green_wave\"\nstreets = [\"Sveavägen\"]\ncycle_s = 90\nspeed_kmh = 40\n[[edit]]\nkind = \"signal_timing\"\ncontrollers = [\"c200\"]\nsplit = 0.6\n",
                "s.toml:7: edit 2: overlaps edit 1: both give 1 controllers (e.g. c200) a signal timing edit",
            ),
        ] {
            let mut p = avenue();
            let before = p.clone();
            let e = run(text, &mut p).expect_err(text).to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
            assert_eq!(p, before);
        }
    }

    #[test]
    fn a_new_building_brings_its_meter_with_its_use_and_floor_area() {
        let square = "[[0.0, 0.0], [0.0005, 0.0], [0.0005, 0.0005], [0.0, 0.0005], [0.0, 0.0]]";
        let mut p = plan();
        let summary = run(
            &format!("name = \"b\"\n[[edit]]\nkind = \"building\"\nname = \"Office block\"\nfootprint = {square}\nstoreys = 6\nuse = \"offices\"\n"),
            &mut p,
        )
        .expect("applies");
        assert_eq!(p.len(), 4, "the three lamps and the new meter");
        let meter = &p[3];
        assert_eq!(
            (meter.kind, meter.id.as_str()),
            (DeviceKind::Meter, "meter/scenario/1")
        );
        // 0.0005 degrees at the equator: 55.66 m by 55.29 m, six storeys.
        let SimProfile::Meter {
            floor_area_m2,
            building_use,
        } = meter.profile
        else {
            panic!("a meter")
        };
        assert!(
            (floor_area_m2 - 6.0 * 3077.5).abs() < 20.0,
            "{floor_area_m2}"
        );
        assert_eq!(
            building_use,
            tvilling_sensors::simulate::BuildingUse::Offices
        );
        assert_eq!(
            summary[0],
            "edit 1 (building): Office block, 3077 m² x 6 storeys = 18464 m² of offices"
        );
        let mut p = plan();
        let before = p.clone();
        let e = run(
            "name = \"b\"\n[[edit]]\nkind = \"building\"\nfootprint = [[0, 5], [0.001, 5], [0.001, 5.001]]\nstoreys = 3\nuse = \"homes\"\n",
            &mut p,
        )
        .expect_err("off the map")
        .to_string();
        assert!(
            e.starts_with(
                "s.toml:2: edit 1: the footprint (centre 0.00067, 5.00033) lies outside the city"
            ),
            "{e}"
        );
        assert_eq!(p, before);
    }

    #[test]
    fn the_shipped_districts_place_central_stockholm() {
        let d = Districts::shipped();
        // Sergels torg lies in Norrmalm, Stureplan in Östermalm.
        assert!(d.contains("NORRMALM", 18.0686, 59.3325));
        assert!(d.contains("östermalm", 18.0740, 59.3357));
        assert!(!d.contains("ÖSTERMALM", 18.0686, 59.3325));
        assert!(d.knows("Kista"));
    }
}
