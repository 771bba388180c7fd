//! CityJSON 1.1 and 2.0: `Building` objects (with their `BuildingPart` children merged in),
//! geometry types Solid, MultiSolid/CompositeSolid, MultiSurface and CompositeSurface, at the
//! highest LoD each object has. Vertices are decoded with the file's `transform`, moved from
//! its `referenceSystem` to the scene CRS. With no terrain in the twin yet, each building stands
//! on the ground at its own lowest vertex (its elevation is kept as `base_elevation_m`). Semantic surfaces (RoofSurface, WallSurface, GroundSurface)
//! tag the triangles. Textures and materials are not read (a missing texture is no error).

use std::path::Path;

use bevy::math::{DVec2, DVec3, Vec3};
use serde_json::Value;
use tvilling_geo::{Crs, Transformer};

use super::{
    BuildingShape, HeightSource, ImportError, ImportErrorKind, Imported, ImportedBuilding,
    Polygon2, clean_ring,
};
use crate::mesh::{MeshData, Surface, to_local, vertex_tag};

/// One planar surface: rings of vertex indices (outer first) and its semantic class.
struct Face {
    rings: Vec<Vec<usize>>,
    surface: Surface,
}

fn semantic(sem: Option<&Value>, value: Option<&Value>) -> Surface {
    let (Some(sem), Some(idx)) = (sem, value.and_then(Value::as_u64)) else {
        return Surface::Other;
    };
    match sem
        .get("surfaces")
        .and_then(|s| s.get(idx as usize))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
    {
        Some("RoofSurface") => Surface::Roof,
        Some("WallSurface") => Surface::Wall,
        Some("GroundSurface") => Surface::Ground,
        _ => Surface::Other,
    }
}

fn rings_of(surface: &Value) -> Result<Vec<Vec<usize>>, ImportErrorKind> {
    let bad = || {
        ImportErrorKind::BadCoordinates("surface is not an array of rings of vertex indices".into())
    };
    surface
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|r| {
            r.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|i| i.as_u64().map(|i| i as usize).ok_or_else(bad))
                .collect()
        })
        .collect()
}

/// Flattens a geometry's boundaries into faces, following its type's nesting depth.
fn faces(geom: &Value) -> Result<Vec<Face>, ImportErrorKind> {
    let gtype = geom.get("type").and_then(Value::as_str).unwrap_or("");
    let depth = match gtype {
        "MultiSurface" | "CompositeSurface" => 1,
        "Solid" => 2,
        "MultiSolid" | "CompositeSolid" => 3,
        other => return Err(ImportErrorKind::UnsupportedGeometry(other.to_string())),
    };
    let sem = geom.get("semantics");
    let mut out = Vec::new();
    fn walk(
        b: &Value,
        v: Option<&Value>,
        depth: usize,
        sem: Option<&Value>,
        out: &mut Vec<Face>,
    ) -> Result<(), ImportErrorKind> {
        if depth == 0 {
            out.push(Face {
                rings: rings_of(b)?,
                surface: semantic(sem, v),
            });
            return Ok(());
        }
        let arr = b.as_array().ok_or_else(|| {
            ImportErrorKind::BadCoordinates(
                "boundaries nesting does not match the geometry type".into(),
            )
        })?;
        for (i, child) in arr.iter().enumerate() {
            walk(child, v.and_then(|v| v.get(i)), depth - 1, sem, out)?;
        }
        Ok(())
    }
    let boundaries = geom
        .get("boundaries")
        .ok_or_else(|| ImportErrorKind::BadCoordinates("no boundaries".into()))?;
    walk(
        boundaries,
        sem.and_then(|s| s.get("values")),
        depth,
        sem,
        &mut out,
    )?;
    Ok(out)
}

fn lod_of(g: &Value) -> f64 {
    match g.get("lod") {
        Some(Value::String(s)) => s.parse().unwrap_or(0.0),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn best_geometry(obj: &Value) -> Option<&Value> {
    obj.get("geometry")?
        .as_array()?
        .iter()
        .filter(|g| {
            g.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "GeometryInstance")
        })
        .max_by(|a, b| lod_of(a).total_cmp(&lod_of(b)))
}

/// Newell's normal of a ring (not normalised).
fn newell(points: &[Vec3]) -> Vec3 {
    let mut n = Vec3::ZERO;
    for i in 0..points.len() {
        let a = points[i];
        let b = points[(i + 1) % points.len()];
        n += Vec3::new(
            (a.y - b.y) * (a.z + b.z),
            (a.z - b.z) * (a.x + b.x),
            (a.x - b.x) * (a.y + b.y),
        );
    }
    n
}

/// Reads a CityJSON document. `fallback_crs` is used when it has no `referenceSystem`.
pub fn import_cityjson(path: &Path, text: &str, scene_crs: Crs) -> Imported {
    import_cityjson_with(path, text, scene_crs, None)
}

/// What a CityJSON document's header says about all its vertices: where they are and how they
/// are encoded. A CityJSON Sequence shares its first line's header with every feature.
struct Header {
    to_scene: Transformer,
    scale: DVec3,
    translate: DVec3,
}

fn syntax(reason: String) -> ImportErrorKind {
    ImportErrorKind::Syntax {
        format: "CityJSON",
        reason,
    }
}

fn error(path: &Path, feature: &str, kind: ImportErrorKind, skipped: bool) -> ImportError {
    ImportError {
        file: path.to_path_buf(),
        feature: feature.to_string(),
        kind,
        feature_skipped: skipped,
    }
}

/// Reads the header members (`type`, `metadata.referenceSystem`, `transform`) of a CityJSON
/// document or of a sequence's first line.
fn header(
    doc: &Value,
    scene_crs: Crs,
    fallback_crs: Option<Crs>,
) -> Result<Header, ImportErrorKind> {
    match doc.get("type").and_then(Value::as_str) {
        Some("CityJSON") => {}
        Some(other) => return Err(syntax(format!("\"type\" is {other:?}, not \"CityJSON\""))),
        None => return Err(syntax("no \"type\": \"CityJSON\" member".into())),
    }
    let crs = match doc
        .get("metadata")
        .and_then(|m| m.get("referenceSystem"))
        .and_then(Value::as_str)
    {
        Some(name) => name.parse::<Crs>()?,
        None => fallback_crs.unwrap_or(scene_crs),
    };
    let to_scene = Transformer::new(crs, scene_crs)?;
    let (scale, translate) = match doc.get("transform") {
        Some(tr) => {
            let v3 = |k: &str, d: f64| {
                let a = tr.get(k).and_then(Value::as_array);
                let g = |i: usize| {
                    a.and_then(|a| a.get(i))
                        .and_then(Value::as_f64)
                        .unwrap_or(d)
                };
                DVec3::new(g(0), g(1), g(2))
            };
            (v3("scale", 1.0), v3("translate", 0.0))
        }
        None => (DVec3::ONE, DVec3::ZERO),
    };
    Ok(Header {
        to_scene,
        scale,
        translate,
    })
}

/// As [`import_cityjson`], with the CRS to assume when the file names none.
pub fn import_cityjson_with(
    path: &Path,
    text: &str,
    scene_crs: Crs,
    fallback_crs: Option<Crs>,
) -> Imported {
    let mut out = Imported::default();
    out.report.files.push(path.to_path_buf());
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.report
                .errors
                .push(error(path, "", syntax(e.to_string()), true));
            return out;
        }
    };
    match header(&doc, scene_crs, fallback_crs) {
        Ok(h) => import_objects(path, &doc, &h, "", &mut out),
        Err(k) => out.report.errors.push(error(path, "", k, true)),
    }
    out
}

/// Reads a CityJSON Sequence (CityJSONL, `.city.jsonl`): a CityJSON header line (with its
/// `transform` and `referenceSystem`, no objects), then one `CityJSONFeature` per line with its
/// own `CityObjects` and `vertices`. A broken line is reported by its number; the other lines
/// load.
pub fn import_cityjson_seq(
    path: &Path,
    text: &str,
    scene_crs: Crs,
    fallback_crs: Option<Crs>,
) -> Imported {
    let mut out = Imported::default();
    out.report.files.push(path.to_path_buf());
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        out.report.errors.push(error(
            path,
            "",
            syntax("empty CityJSON Sequence".into()),
            true,
        ));
        return out;
    };
    let h = match serde_json::from_str::<Value>(first)
        .map_err(|e| syntax(format!("line 1 (the header): {e}")))
        .and_then(|doc| header(&doc, scene_crs, fallback_crs))
    {
        Ok(h) => h,
        Err(k) => {
            out.report.errors.push(error(path, "", k, true));
            return out;
        }
    };
    for (i, line) in lines {
        let place = format!("line {}", i + 1);
        let feature: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.report
                    .errors
                    .push(error(path, &place, syntax(e.to_string()), true));
                continue;
            }
        };
        if feature.get("type").and_then(Value::as_str) != Some("CityJSONFeature") {
            out.report.errors.push(error(
                path,
                &place,
                syntax("not a \"CityJSONFeature\"".into()),
                true,
            ));
            continue;
        }
        import_objects(path, &feature, &h, &place, &mut out);
    }
    out
}

/// Imports the `Building`s of a document or feature: its `vertices` (decoded with the header's
/// transform) and `CityObjects`. `place` names the feature's line in errors about the whole
/// feature.
fn import_objects(path: &Path, doc: &Value, h: &Header, place: &str, out: &mut Imported) {
    let err = |feature: &str, kind, skipped| error(path, feature, kind, skipped);
    let (scale, translate, t) = (h.scale, h.translate, &h.to_scene);
    let Some(raw) = doc.get("vertices").and_then(Value::as_array) else {
        out.report
            .errors
            .push(err(place, syntax("no vertices array".into()), true));
        return;
    };
    let mut xy = Vec::with_capacity(raw.len());
    let mut zs = Vec::with_capacity(raw.len());
    let mut bad_vertex = None;
    for (i, v) in raw.iter().enumerate() {
        let c = v.as_array().and_then(|c| {
            Some((
                c.first()?.as_f64()?,
                c.get(1)?.as_f64()?,
                c.get(2)?.as_f64()?,
            ))
        });
        let (x, y, z) = c.unwrap_or_else(|| {
            bad_vertex.get_or_insert(i);
            (0.0, 0.0, 0.0)
        });
        let (x, y, z) = (
            x * scale.x + translate.x,
            y * scale.y + translate.y,
            z * scale.z + translate.z,
        );
        if !(x.is_finite() && y.is_finite() && z.is_finite()) {
            bad_vertex.get_or_insert(i);
        }
        xy.push((x, y));
        zs.push(z);
    }
    if let Some(i) = bad_vertex {
        out.report.errors.push(err(
            place,
            ImportErrorKind::BadCoordinates(format!(
                "vertex {i} is not [x, y, z] of finite numbers"
            )),
            false,
        ));
    }
    if let Err(e) = t.convert_all(&mut xy) {
        out.report.errors.push(err(place, e.into(), true));
        return;
    }
    let world: Vec<DVec3> = xy
        .iter()
        .zip(&zs)
        .map(|(p, z)| DVec3::new(p.0, p.1, *z))
        .collect();
    let Some(objects) = doc.get("CityObjects").and_then(Value::as_object) else {
        out.report
            .errors
            .push(err(place, syntax("no CityObjects".into()), true));
        return;
    };

    // Each Building with the faces of itself and its BuildingPart children.
    let mut buildings: Vec<(&String, &Value, Vec<Face>, Vec<ImportErrorKind>)> = Vec::new();
    for (id, obj) in objects {
        if obj.get("type").and_then(Value::as_str) != Some("Building") {
            continue;
        }
        let mut fs = Vec::new();
        let mut errs = Vec::new();
        let mut members = vec![obj];
        for child in obj
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(c) = child.as_str().and_then(|c| objects.get(c))
                && c.get("type").and_then(Value::as_str) == Some("BuildingPart")
            {
                members.push(c);
            }
        }
        for m in members {
            if let Some(g) = best_geometry(m) {
                match faces(g) {
                    Ok(f) => fs.extend(f),
                    Err(k) => errs.push(k),
                }
            }
        }
        buildings.push((id, obj, fs, errs));
    }
    for (id, obj, fs, errs) in buildings {
        for k in errs {
            out.report.errors.push(err(id, k, fs.is_empty()));
        }
        if fs.is_empty() {
            out.report
                .errors
                .push(err(id, ImportErrorKind::NoOuterRing, true));
            continue;
        }
        if let Some(&i) = fs
            .iter()
            .flat_map(|f| f.rings.iter().flatten())
            .find(|&&i| i >= world.len())
        {
            out.report.errors.push(err(
                id,
                ImportErrorKind::MissingReference(format!("vertex {i}")),
                true,
            ));
            continue;
        }
        let pts: Vec<DVec3> = fs
            .iter()
            .flat_map(|f| f.rings.iter().flatten())
            .map(|&i| world[i])
            .collect();
        let (lo, hi) = pts.iter().fold(
            (DVec3::splat(f64::MAX), DVec3::splat(f64::MIN)),
            |(l, h), p| (l.min(*p), h.max(*p)),
        );
        let origin = DVec3::new((lo.x + hi.x) / 2.0, (lo.y + hi.y) / 2.0, 0.0);
        // The twin has no terrain yet: each building stands on the ground plane at its own
        // lowest vertex; its elevation is kept as the `base_elevation_m` attribute.
        let datum = lo.z;
        let local = |i: usize| {
            let p = world[i];
            to_local(origin, p.x, p.y, p.z - datum)
        };
        let mut mesh = MeshData::default();
        let mut footprint = Vec::new();
        let mut skipped_faces = 0;
        for f in &fs {
            let Some(outer) = f.rings.first() else {
                continue;
            };
            let outer_pts: Vec<Vec3> = outer.iter().map(|&i| local(i)).collect();
            let n = newell(&outer_pts);
            if n.length_squared() < 1e-12 {
                skipped_faces += 1;
                continue;
            }
            let n = n.normalize();
            // Project onto the face's plane for earcut.
            let u = if n.y.abs() < 0.9 {
                Vec3::Y.cross(n).normalize()
            } else {
                Vec3::X.cross(n).normalize()
            };
            let v = n.cross(u);
            let all: Vec<usize> = f.rings.iter().flatten().copied().collect();
            let poly = Polygon2 {
                outer: outer
                    .iter()
                    .map(|&i| local(i))
                    .map(|p| DVec2::new(f64::from(p.dot(u)), f64::from(p.dot(v))))
                    .collect(),
                holes: f.rings[1..]
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|&i| local(i))
                            .map(|p| DVec2::new(f64::from(p.dot(u)), f64::from(p.dot(v))))
                            .collect()
                    })
                    .collect(),
            };
            let surface = match f.surface {
                Surface::Other if n.y > 0.7 => Surface::Roof,
                Surface::Other if n.y < -0.7 => Surface::Ground,
                Surface::Other => Surface::Wall,
                s => s,
            };
            let tag = vertex_tag(0, surface);
            let tris = crate::mesh::triangulate(&poly);
            if tris.is_empty() {
                skipped_faces += 1;
            }
            for tri in tris {
                mesh.push_triangle(
                    [local(all[tri[0]]), local(all[tri[1]]), local(all[tri[2]])],
                    n,
                    tag,
                );
            }
            if surface == Surface::Ground {
                let ring2 = |r: &Vec<usize>| {
                    r.iter()
                        .map(|&i| DVec2::new(world[i].x, world[i].y))
                        .collect::<Vec<_>>()
                };
                if let Some(outer) = clean_ring(ring2(outer)) {
                    footprint.push(Polygon2 {
                        outer,
                        holes: f.rings[1..]
                            .iter()
                            .filter_map(|r| clean_ring(ring2(r)))
                            .collect(),
                    });
                }
            }
        }
        if skipped_faces > 0 {
            out.report.errors.push(err(
                id,
                ImportErrorKind::BadCoordinates(format!(
                    "{skipped_faces} degenerate surface(s) left out"
                )),
                false,
            ));
        }
        if mesh.is_empty() {
            out.report
                .errors
                .push(err(id, ImportErrorKind::DegeneratePolygon, true));
            continue;
        }
        let mut attributes: Vec<(String, String)> = obj
            .get("attributes")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => return None,
                        };
                        Some((k.clone(), s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        attributes.push(("base_elevation_m".into(), format!("{:.2}", lo.z)));
        let get = |k: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        out.buildings.push(ImportedBuilding {
            id: id.clone(),
            name: get("name"),
            address: None,
            levels: get("storeysAboveGround").and_then(|s| s.parse().ok()),
            height: hi.z - lo.z,
            height_source: HeightSource::Geometry,
            footprint,
            shape: BuildingShape::Mesh { mesh, origin },
            attributes,
            source_file: String::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUBE: &str = r#"{"type":"CityJSON","version":"2.0",
      "transform":{"scale":[0.01,0.01,0.01],"translate":[674000,6580000,10]},
      "metadata":{"referenceSystem":"https://www.opengis.net/def/crs/EPSG/0/3006"},
      "vertices":[[0,0,0],[1000,0,0],[1000,1000,0],[0,1000,0],[0,0,500],[1000,0,500],[1000,1000,500],[0,1000,500]],
      "CityObjects":{
        "b1":{"type":"Building","attributes":{"name":"Kub"},"geometry":[{"type":"Solid","lod":"1.2",
          "boundaries":[[[[0,3,2,1]],[[4,5,6,7]],[[0,1,5,4]],[[1,2,6,5]],[[2,3,7,6]],[[3,0,4,7]]]],
          "semantics":{"surfaces":[{"type":"GroundSurface"},{"type":"RoofSurface"},{"type":"WallSurface"}],"values":[[0,1,2,2,2,2]]}}]},
        "b2":{"type":"Building","children":["p1"]},
        "p1":{"type":"BuildingPart","parents":["b2"],"geometry":[{"type":"MultiSurface","lod":2,"boundaries":[[[0,1,5,4]]]}]},
        "b3":{"type":"Building","geometry":[{"type":"MultiSurface","lod":2,"boundaries":[[[0,1,99]]]}]},
        "r1":{"type":"Road","geometry":[{"type":"MultiSurface","lod":1,"boundaries":[[[0,1,2]]]}]}
      }}"#;

    #[test]
    fn solid_with_semantics_becomes_a_closed_mesh_with_footprint() {
        let out = import_cityjson(Path::new("c.city.json"), CUBE, Crs::SWEREF99_TM);
        let ids: Vec<_> = out.buildings.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["b1", "b2"]);
        let b = &out.buildings[0];
        assert_eq!(b.name.as_deref(), Some("Kub"));
        assert!((b.height - 5.0).abs() < 1e-9);
        assert_eq!(b.footprint.len(), 1);
        assert!((b.footprint[0].area() - 100.0).abs() < 1e-6);
        let BuildingShape::Mesh { mesh, .. } = &b.shape else {
            panic!("mesh expected")
        };
        assert_eq!(mesh.triangle_count(), 12);
        // It stands on the ground at its own base; its elevation (10 m) is kept.
        let (lo, hi) = mesh.bounds().expect("bounds");
        assert_eq!((lo.y, hi.y), (0.0, 5.0));
        assert!(
            b.attributes
                .contains(&("base_elevation_m".to_string(), "10.00".to_string()))
        );
        // Normals point out of the cube: roof up, ground down.
        let roof = mesh
            .tags
            .iter()
            .zip(&mesh.normals)
            .filter(|(t, _)| **t >> 24 == Surface::Roof as u32);
        assert!(roof.clone().count() == 6 && roof.into_iter().all(|(_, n)| n[1] > 0.99));
        let ground = mesh
            .tags
            .iter()
            .zip(&mesh.normals)
            .filter(|(t, _)| **t >> 24 == Surface::Ground as u32);
        assert!(ground.into_iter().all(|(_, n)| n[1] < -0.99));
        // b3 refers to a missing vertex: skipped and reported.
        assert!(out.report.errors.iter().any(|e| e.feature == "b3"
            && e.kind == ImportErrorKind::MissingReference("vertex 99".into())));
    }

    #[test]
    fn not_cityjson_is_a_clear_error() {
        let out = import_cityjson(
            Path::new("x.json"),
            r#"{"type":"FeatureCollection"}"#,
            Crs::SWEREF99_TM,
        );
        assert!(out.buildings.is_empty());
        assert!(out.report.errors[0].to_string().contains("CityJSON"));
    }
}
