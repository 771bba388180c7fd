//! The twin as an RFC 7946 GeoJSON FeatureCollection in WGS 84: one feature per entity with
//! `properties.kind`, `properties.id` and its attributes. Buildings are (Multi)Polygons of
//! their footprints (a Point where a model has none), everything else a Point.

use bevy::math::DVec2;
use bevy::prelude::*;
use serde_json::{Map, Value, json};
use tvilling_geo::{Crs, GeoError, GeoFrame, Transformer, WorldPosition};

use crate::import::ring_signed_area;
use crate::load::LoadReport;
use crate::model::{Building, StreetLamp, TrafficSignal, TwinEntity};

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// Builds the FeatureCollection from every [`TwinEntity`] in the world, sorted by kind and id.
pub fn snapshot(world: &mut World) -> Result<Value, GeoError> {
    let crs = world.resource::<GeoFrame>().crs;
    let t = Transformer::new(crs, Crs::WGS84)?;
    let mut q = world.query::<(
        &TwinEntity,
        &WorldPosition,
        Option<&Building>,
        Option<&TrafficSignal>,
        Option<&StreetLamp>,
    )>();
    let mut rows: Vec<_> = q.iter(world).collect();
    rows.sort_by(|a, b| (a.0.kind.as_str(), &a.0.id).cmp(&(b.0.kind.as_str(), &b.0.id)));
    let mut features = Vec::with_capacity(rows.len());
    let lonlat = |p: DVec2| -> Result<Value, GeoError> {
        let (lon, lat) = t.convert(p.x, p.y)?;
        Ok(json!([round7(lon), round7(lat)]))
    };
    // RFC 7946 3.1.6: exterior rings counter-clockwise, holes clockwise, first = last.
    let ring = |r: &[DVec2], ccw: bool| -> Result<Value, GeoError> {
        let mut pts: Vec<DVec2> = r.to_vec();
        if (ring_signed_area(&pts) > 0.0) != ccw {
            pts.reverse();
        }
        let mut out = pts
            .iter()
            .map(|p| lonlat(*p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(first) = out.first().cloned() {
            out.push(first);
        }
        Ok(Value::Array(out))
    };
    for (entity, pos, building, signal, lamp) in rows {
        let mut props = Map::new();
        let mut attrs: &[(String, String)] = &[];
        let geometry = if let Some(b) = building {
            props.insert("name".into(), json!(b.name));
            props.insert("address".into(), json!(b.address));
            props.insert("height".into(), json!((b.height * 100.0).round() / 100.0));
            props.insert("height_source".into(), json!(b.height_source.as_str()));
            props.insert("levels".into(), json!(b.levels));
            props.insert("area_m2".into(), json!((b.area_m2 * 10.0).round() / 10.0));
            props.insert("source_file".into(), json!(b.source_file));
            attrs = &b.attributes;
            let polys = b
                .footprint
                .iter()
                .map(|p| {
                    let mut rings = vec![ring(&p.outer, true)?];
                    for h in &p.holes {
                        rings.push(ring(h, false)?);
                    }
                    Ok(Value::Array(rings))
                })
                .collect::<Result<Vec<_>, GeoError>>()?;
            match polys.len() {
                0 => json!({"type": "Point", "coordinates": lonlat(pos.0.truncate())?}),
                1 => json!({"type": "Polygon", "coordinates": polys[0]}),
                _ => json!({"type": "MultiPolygon", "coordinates": polys}),
            }
        } else {
            if let Some(s) = signal {
                props.insert("signal_type".into(), json!(s.signal_type.as_str()));
                attrs = &s.attributes;
            }
            if let Some(l) = lamp {
                attrs = &l.attributes;
            }
            json!({"type": "Point", "coordinates": lonlat(pos.0.truncate())?})
        };
        for (k, v) in attrs {
            props.entry(k.clone()).or_insert_with(|| json!(v));
        }
        props.insert("kind".into(), json!(entity.kind.as_str()));
        props.insert("id".into(), json!(entity.id));
        features.push(
            json!({"type": "Feature", "id": entity.id, "geometry": geometry, "properties": props}),
        );
    }
    let report = world.get_resource::<LoadReport>().map(|r| &r.0);
    let errors: Vec<String> = report
        .map(|r| r.errors.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    // The extract's edge is a note about the file, kept apart from the problems.
    let cut: Vec<String> = report
        .map(|r| r.cut.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let drawn = report.map_or(0, |r| r.cut_drawn());
    Ok(json!({
        "type": "FeatureCollection",
        "features": features,
        "import_problems": errors,
        "extract_edge": {
            "features_cut": cut.len(),
            "drawn_from_parts_inside": drawn,
            "not_drawn": cut.len() - drawn,
            "features": cut,
        },
    }))
}
