//! GeoJSON (RFC 7946) footprints: Polygon and MultiPolygon features, extruded by `height`, else
//! `building:levels` (or `levels`), else the default height. The CRS is WGS 84 unless the file
//! names another in the (pre-RFC 7946) `crs` member, or the loader is told one.

use std::path::Path;

use bevy::math::DVec2;
use serde_json::Value;
use tvilling_geo::{Crs, Transformer};

use super::{
    AreaKind, BuildingShape, ImportError, ImportErrorKind, ImportOptions, Imported, ImportedArea,
    ImportedBuilding, Polygon2, clean_ring, height_from_tags, parse_length,
};

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn ring(v: &Value, t: &Transformer) -> Result<Vec<DVec2>, ImportErrorKind> {
    let arr = v
        .as_array()
        .ok_or_else(|| ImportErrorKind::BadCoordinates("ring is not an array".into()))?;
    let mut pts = Vec::with_capacity(arr.len());
    for p in arr {
        let xy = p
            .as_array()
            .and_then(|c| Some((c.first()?.as_f64()?, c.get(1)?.as_f64()?)));
        let Some((x, y)) = xy.filter(|(x, y)| x.is_finite() && y.is_finite()) else {
            return Err(ImportErrorKind::BadCoordinates(format!(
                "position {p} is not [x, y]"
            )));
        };
        pts.push((x, y));
    }
    t.convert_all(&mut pts)?;
    Ok(pts.into_iter().map(|(x, y)| DVec2::new(x, y)).collect())
}

fn polygon(v: &Value, t: &Transformer) -> Result<Polygon2, ImportErrorKind> {
    let rings = v.as_array().ok_or_else(|| {
        ImportErrorKind::BadCoordinates("polygon is not an array of rings".into())
    })?;
    let outer = rings.first().ok_or(ImportErrorKind::NoOuterRing)?;
    let outer = clean_ring(ring(outer, t)?).ok_or(ImportErrorKind::DegeneratePolygon)?;
    let mut holes = Vec::new();
    for r in &rings[1..] {
        if let Some(h) = clean_ring(ring(r, t)?) {
            holes.push(h);
        }
    }
    Ok(Polygon2 { outer, holes })
}

/// The CRS a FeatureCollection names in its `crs` member, if any.
pub fn declared_crs(doc: &Value) -> Option<Result<Crs, ImportErrorKind>> {
    let name = doc.get("crs")?.get("properties")?.get("name")?.as_str()?;
    Some(name.parse::<Crs>().map_err(ImportErrorKind::Geo))
}

/// Reads a GeoJSON FeatureCollection (or a single Feature) of building footprints.
pub fn import_geojson(path: &Path, text: &str, options: &ImportOptions) -> Imported {
    let mut out = Imported::default();
    out.report.files.push(path.to_path_buf());
    let err = |feature: String, kind, skipped| ImportError {
        file: path.to_path_buf(),
        feature,
        kind,
        feature_skipped: skipped,
    };
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.report.errors.push(err(
                String::new(),
                ImportErrorKind::Syntax {
                    format: "GeoJSON",
                    reason: e.to_string(),
                },
                true,
            ));
            return out;
        }
    };
    let source_crs = match declared_crs(&doc) {
        Some(Ok(c)) => c,
        Some(Err(k)) => {
            out.report.errors.push(err(String::new(), k, true));
            return out;
        }
        None => options.source_crs.unwrap_or(Crs::WGS84),
    };
    let t = match Transformer::new(source_crs, options.scene_crs) {
        Ok(t) => t,
        Err(e) => {
            out.report.errors.push(err(String::new(), e.into(), true));
            return out;
        }
    };
    let features: Vec<&Value> = match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => match doc.get("features").and_then(Value::as_array) {
            Some(f) => f.iter().collect(),
            None => {
                out.report.errors.push(err(
                    String::new(),
                    ImportErrorKind::Syntax {
                        format: "GeoJSON",
                        reason: "FeatureCollection without a features array".into(),
                    },
                    true,
                ));
                return out;
            }
        },
        Some("Feature") => vec![&doc],
        other => {
            out.report.errors.push(err(
                String::new(),
                ImportErrorKind::Syntax {
                    format: "GeoJSON",
                    reason: format!(
                        "expected a FeatureCollection or Feature, found type {other:?}"
                    ),
                },
                true,
            ));
            return out;
        }
    };
    for (i, f) in features.into_iter().enumerate() {
        let props = f.get("properties").and_then(Value::as_object);
        let id = f
            .get("id")
            .and_then(value_text)
            .or_else(|| props.and_then(|p| p.get("id")).and_then(value_text))
            .unwrap_or_else(|| format!("feature/{i}"));
        let geom = f.get("geometry");
        let gtype = geom
            .and_then(|g| g.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("null");
        let coords = geom.and_then(|g| g.get("coordinates"));
        let polys = match (gtype, coords) {
            ("Polygon", Some(c)) => polygon(c, &t).map(|p| vec![p]),
            ("MultiPolygon", Some(c)) => match c.as_array() {
                Some(ps) => ps.iter().map(|p| polygon(p, &t)).collect(),
                None => Err(ImportErrorKind::BadCoordinates(
                    "MultiPolygon coordinates are not an array".into(),
                )),
            },
            (other, _) => Err(ImportErrorKind::UnsupportedGeometry(other.to_string())),
        };
        let polys = match polys.and_then(|p| {
            if p.is_empty() {
                Err(ImportErrorKind::NoOuterRing)
            } else {
                Ok(p)
            }
        }) {
            Ok(p) => p,
            Err(k) => {
                out.report.errors.push(err(id.clone(), k, true));
                continue;
            }
        };
        let attributes: Vec<(String, String)> = props
            .map(|p| {
                p.iter()
                    .filter_map(|(k, v)| Some((k.clone(), value_text(v)?)))
                    .collect()
            })
            .unwrap_or_default();
        let get = |k: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        // Ground cover, by OpenStreetMap's tags: water and parks lie flat on the ground.
        let cover = match (get("natural"), get("leisure"), get("landuse")) {
            (Some("water"), ..) | (_, _, Some("basin" | "reservoir")) => Some(AreaKind::Water),
            (_, Some("park" | "garden"), _) => Some(AreaKind::Park),
            _ => None,
        };
        if let Some(kind) = cover {
            out.areas.push(ImportedArea {
                id,
                kind,
                polygons: polys,
            });
            continue;
        }
        let mut bad = Vec::new();
        let (height, height_source, levels) = height_from_tags(
            get("height"),
            get("building:levels").or(get("levels")),
            |k| bad.push(k),
        );
        for k in bad {
            out.report.errors.push(err(id.clone(), k, false));
        }
        let base = get("min_height")
            .and_then(parse_length)
            .unwrap_or(0.0)
            .clamp(0.0, (height - 0.5).max(0.0));
        let address = match (get("addr:street"), get("addr:housenumber")) {
            (Some(s), Some(n)) => Some(format!("{s} {n}")),
            (Some(s), None) => Some(s.to_string()),
            _ => get("address").map(str::to_string),
        };
        out.buildings.push(ImportedBuilding {
            id,
            name: get("name").map(str::to_string),
            address,
            levels,
            height,
            height_source,
            footprint: polys.clone(),
            shape: BuildingShape::Extruded {
                polygons: polys,
                base,
                height: height - base,
            },
            attributes,
            source_file: String::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::HeightSource;

    #[test]
    fn water_and_parks_are_ground_cover_not_buildings() {
        let text = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"natural": "water"}, "geometry": {"type": "MultiPolygon",
             "coordinates": [[[[18.0, 59.0], [18.01, 59.0], [18.01, 59.01], [18.0, 59.01], [18.0, 59.0]]]]}},
            {"type": "Feature", "properties": {"leisure": "park"}, "geometry": {"type": "Polygon",
             "coordinates": [[[18.02, 59.0], [18.03, 59.0], [18.03, 59.01], [18.02, 59.0]]]}},
            {"type": "Feature", "properties": {"height": 12}, "geometry": {"type": "Polygon",
             "coordinates": [[[18.04, 59.0], [18.0401, 59.0], [18.0401, 59.0001], [18.04, 59.0]]]}}
        ]}"#;
        let out = import_geojson(Path::new("t.geojson"), text, &ImportOptions::default());
        let kinds: Vec<AreaKind> = out.areas.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AreaKind::Water, AreaKind::Park]);
        assert_eq!(out.buildings.len(), 1, "the rest are buildings");
        assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
    }

    #[test]
    fn reads_polygons_multipolygons_and_reports_bad_features() {
        let text = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","id":"a","properties":{"height":"30","name":"A"},
           "geometry":{"type":"Polygon","coordinates":[[[18.06,59.33],[18.061,59.33],[18.061,59.3305],[18.06,59.3305],[18.06,59.33]]]}},
          {"type":"Feature","properties":{"building:levels":4},
           "geometry":{"type":"MultiPolygon","coordinates":[[[[18.07,59.33],[18.071,59.33],[18.071,59.331],[18.07,59.33]]]]}},
          {"type":"Feature","id":"pt","properties":{},"geometry":{"type":"Point","coordinates":[18.0,59.0]}},
          {"type":"Feature","id":"bad","properties":{},"geometry":{"type":"Polygon","coordinates":[[["x",1]]]}}
        ]}"#;
        let out = import_geojson(Path::new("t.geojson"), text, &ImportOptions::default());
        assert_eq!(out.buildings.len(), 2);
        assert_eq!(out.buildings[0].id, "a");
        assert_eq!(out.buildings[0].height_source, HeightSource::Measured);
        assert_eq!(out.buildings[1].id, "feature/1");
        assert_eq!(
            (out.buildings[1].height, out.buildings[1].height_source),
            (12.0, HeightSource::FromLevels)
        );
        let errs: Vec<_> = out
            .report
            .errors
            .iter()
            .map(|e| e.feature.as_str())
            .collect();
        assert_eq!(errs, ["pt", "bad"]);
    }

    #[test]
    fn honours_a_declared_projected_crs() {
        // A 10 m square in SWEREF 99 TM, declared the old way.
        let text = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3006"}},
          "features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[674000,6580000],[674010,6580000],[674010,6580010],[674000,6580010],[674000,6580000]]]}}]}"#;
        let out = import_geojson(Path::new("t.geojson"), text, &ImportOptions::default());
        assert_eq!(out.buildings.len(), 1);
        assert!((out.buildings[0].footprint[0].area() - 100.0).abs() < 1e-6);
        let out = import_geojson(
            Path::new("t.geojson"),
            "{not json",
            &ImportOptions::default(),
        );
        assert!(matches!(
            out.report.errors[0].kind,
            ImportErrorKind::Syntax { .. }
        ));
    }
}
