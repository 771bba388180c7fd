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

use super::file::{Edit, LightingEdit, Scenario, ScenarioError};
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

/// Applies a scenario's edits to planned devices (positions in the scene's CRS, `to_wgs84`
/// turns them into longitude, latitude). All or nothing.
pub fn apply_edits(
    scenario: &Scenario,
    planned: &mut [PlannedDevice],
    to_wgs84: impl Fn(DVec2) -> Option<(f64, f64)>,
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
    // Which lamps each edit selects (indices into `lamps`).
    let mut selected: Vec<Vec<usize>> = Vec::new();
    for e in &scenario.edits {
        let sel = &e.lamps;
        for street in &sel.streets {
            let known = lamps.iter().any(|&i| {
                attribute(&planned[i], "street").is_some_and(|s| s.eq_ignore_ascii_case(street))
            });
            if !known {
                return Err(err(
                    e,
                    format!("no street lamp on a street named {street:?} in this city"),
                ));
            }
        }
        for d in &sel.districts {
            if !districts.knows(d) {
                return Err(err(e, format!("no district named {d:?}")));
            }
        }
        let chosen: Vec<usize> = (0..lamps.len())
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
            .collect();
        if chosen.is_empty() {
            return Err(err(e, "selects no street lamp in this city".into()));
        }
        selected.push(chosen);
    }
    // Two edits of one kind may not both apply to a lamp (which would win is not data).
    for (a, ea) in scenario.edits.iter().enumerate() {
        for (b, eb) in scenario.edits.iter().enumerate().skip(a + 1) {
            if ea.change.kind() != eb.change.kind() {
                continue;
            }
            let both: Vec<usize> = selected[b]
                .iter()
                .filter(|k| selected[a].binary_search(k).is_ok())
                .copied()
                .collect();
            if let Some(first) = both.first() {
                return Err(err(
                    eb,
                    format!(
                        "overlaps edit {}: both give {} lamps (e.g. {}) a {} edit",
                        ea.number,
                        both.len(),
                        planned[lamps[*first]].id,
                        eb.change.kind()
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
    for (n, e) in scenario.edits.iter().enumerate() {
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
    planned.clone_from_slice(&out);
    Ok(summary)
}

/// The twin's hook for a scenario: its edits applied to the planned devices of the city.
pub fn plan_edits(scenario: Scenario, districts: Arc<Districts>) -> PlanEdits {
    PlanEdits(Arc::new(
        move |planned: &mut Vec<PlannedDevice>, crs: Crs| {
            let to_wgs84 = Transformer::new(crs, Crs::WGS84).map_err(|e| e.to_string())?;
            apply_edits(
                &scenario,
                planned,
                |p| to_wgs84.convert(p.x, p.y).ok(),
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

    fn run(text: &str, plan: &mut [PlannedDevice]) -> Result<Summary, ScenarioError> {
        let s = Scenario::parse(text, Path::new("s.toml")).expect("parses");
        apply_edits(&s, plan, |p| Some((p.x, p.y)), &districts())
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
