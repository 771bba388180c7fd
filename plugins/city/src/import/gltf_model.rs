//! glTF 2.0 / GLB models (e.g. a landmark) placed at a geographic coordinate with a heading and a
//! scale. Triangle primitives of the default scene are read with their node transforms; buffers
//! come from the GLB's BIN chunk or from files beside the model. Materials and textures are not
//! read: the model is drawn like a building, coloured per building.

use std::path::{Path, PathBuf};

use bevy::math::{DVec3, Mat3, Mat4, Quat, Vec3};
use serde::Deserialize;
use tvilling_geo::{Crs, Transformer};

use super::{
    BuildingShape, HeightSource, ImportError, ImportErrorKind, Imported, ImportedBuilding,
};
use crate::mesh::{MeshData, Surface, vertex_tag};

/// Where and how a model stands in the city.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelPlacement {
    pub path: PathBuf,
    /// Shown in the inspector.
    #[serde(default)]
    pub name: Option<String>,
    /// WGS 84 longitude and latitude of the model's origin.
    pub lon: f64,
    pub lat: f64,
    /// Height of the model's origin above the scene datum (m).
    #[serde(default)]
    pub height: f64,
    /// Degrees clockwise from grid north that the model's -Z axis (its "north") is turned.
    #[serde(default)]
    pub heading: f64,
    /// Uniform scale (glTF units are metres).
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

fn fail(out: &mut Imported, path: &Path, kind: ImportErrorKind) {
    out.report.errors.push(ImportError {
        file: path.to_path_buf(),
        feature: String::new(),
        kind,
        feature_skipped: true,
    });
}

/// Reads the model file and places it.
pub fn import_model(p: &ModelPlacement, scene_crs: Crs) -> Imported {
    match std::fs::read(&p.path) {
        Ok(bytes) => import_model_bytes(p, &bytes, scene_crs),
        Err(e) => {
            let mut out = Imported::default();
            out.report.files.push(p.path.clone());
            fail(&mut out, &p.path, ImportErrorKind::Io(e.to_string()));
            out
        }
    }
}

/// The glTF JSON of a `.gltf` file or of a GLB's first chunk.
fn gltf_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let json = if bytes.starts_with(b"glTF") {
        let len = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?) as usize;
        bytes.get(20..20usize.checked_add(len)?)?
    } else {
        bytes
    };
    serde_json::from_slice(json).ok()
}

/// Every accessor a mesh primitive names (its attributes and indices) exists. gltf 1.4 reads
/// the POSITION accessor while validating, before it checks the index (found by fuzzing).
fn check_accessor_references(bytes: &[u8]) -> Result<(), String> {
    let Some(doc) = gltf_json(bytes) else {
        return Ok(()); // not JSON: the parser says why
    };
    let accessors = doc
        .get("accessors")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    let meshes = doc.get("meshes").and_then(serde_json::Value::as_array);
    for (m, mesh) in meshes.into_iter().flatten().enumerate() {
        let primitives = mesh.get("primitives").and_then(serde_json::Value::as_array);
        for (p, prim) in primitives.into_iter().flatten().enumerate() {
            let attributes = prim
                .get("attributes")
                .and_then(serde_json::Value::as_object);
            let named = attributes
                .into_iter()
                .flat_map(|a| a.values())
                .chain(prim.get("indices"));
            for index in named {
                match index.as_u64() {
                    Some(i) if (i as usize) < accessors => {}
                    _ => {
                        return Err(format!(
                            "mesh {m} primitive {p} names accessor {index}, but the file has {accessors}"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Places a model given its bytes (GLB, or glTF JSON with buffers beside `p.path`).
pub fn import_model_bytes(p: &ModelPlacement, bytes: &[u8], scene_crs: Crs) -> Imported {
    let mut out = Imported::default();
    out.report.files.push(p.path.clone());
    // A GLB header whose total length is below the header's own 12 bytes makes gltf 1.4
    // subtract past zero (found by fuzzing): refuse it here with the reason.
    if let Some(length) = bytes
        .strip_prefix(b"glTF")
        .and_then(|rest| rest.get(4..8))
        .and_then(|l| <[u8; 4]>::try_from(l).ok())
        .map(u32::from_le_bytes)
        .filter(|&l| l < 12)
    {
        fail(
            &mut out,
            &p.path,
            ImportErrorKind::Syntax {
                format: "glTF",
                reason: format!("GLB length {length} is shorter than its 12-byte header"),
            },
        );
        return out;
    }
    if let Err(reason) = check_accessor_references(bytes) {
        fail(
            &mut out,
            &p.path,
            ImportErrorKind::Syntax {
                format: "glTF",
                reason,
            },
        );
        return out;
    }
    // gltf 1.4's validation indexes some arrays before checking the index: any panic left in
    // it is caught and reported as a broken file, never taken down with the app.
    let parsed = std::panic::catch_unwind(|| gltf::Gltf::from_slice(bytes)).unwrap_or_else(|_| {
        Err(gltf::Error::Io(std::io::Error::other(
            "the glTF parser failed on this file",
        )))
    });
    let gltf = match parsed {
        Ok(g) => g,
        Err(e) => {
            fail(
                &mut out,
                &p.path,
                ImportErrorKind::Syntax {
                    format: "glTF",
                    reason: e.to_string(),
                },
            );
            return out;
        }
    };
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    for b in gltf.buffers() {
        let data = match b.source() {
            gltf::buffer::Source::Bin => gltf
                .blob
                .clone()
                .ok_or_else(|| ImportErrorKind::MissingReference("GLB BIN chunk".into())),
            gltf::buffer::Source::Uri(uri) if uri.starts_with("data:") => {
                Err(ImportErrorKind::UnsupportedGeometry(
                    "embedded data: URI buffers (use GLB or a .bin file)".into(),
                ))
            }
            gltf::buffer::Source::Uri(uri) => {
                let file = p.path.parent().unwrap_or(Path::new(".")).join(uri);
                std::fs::read(&file)
                    .map_err(|e| ImportErrorKind::Io(format!("{}: {e}", file.display())))
            }
        };
        match data {
            Ok(d) if d.len() >= b.length() => buffers.push(d),
            Ok(_) => {
                fail(
                    &mut out,
                    &p.path,
                    ImportErrorKind::BadCoordinates(format!(
                        "buffer {} is shorter than declared",
                        b.index()
                    )),
                );
                return out;
            }
            Err(k) => {
                fail(&mut out, &p.path, k);
                return out;
            }
        }
    }
    let origin_xy =
        match Transformer::new(Crs::WGS84, scene_crs).and_then(|t| t.convert(p.lon, p.lat)) {
            Ok(xy) => xy,
            Err(e) => {
                fail(&mut out, &p.path, e.into());
                return out;
            }
        };
    let origin = DVec3::new(origin_xy.0, origin_xy.1, p.height);
    let place = Mat4::from_scale_rotation_translation(
        Vec3::splat(p.scale as f32),
        Quat::from_rotation_y(-(p.heading as f32).to_radians()),
        Vec3::ZERO,
    );
    let mut mesh = MeshData::default();
    let Some(scene) = gltf.default_scene().or_else(|| gltf.scenes().next()) else {
        fail(&mut out, &p.path, ImportErrorKind::NoOuterRing);
        return out;
    };
    let mut stack: Vec<(gltf::Node<'_>, Mat4)> = scene.nodes().map(|n| (n, place)).collect();
    while let Some((node, parent)) = stack.pop() {
        let m = parent * Mat4::from_cols_array_2d(&node.transform().matrix());
        let normal_m = Mat3::from_mat4(m).inverse().transpose();
        if let Some(gm) = node.mesh() {
            for prim in gm.primitives() {
                if prim.mode() != gltf::mesh::Mode::Triangles {
                    continue;
                }
                // gltf 1.4 reads accessors of the wrong type with `unreachable!` (found by
                // fuzzing): check the types the glTF spec requires first.
                use gltf::accessor::{DataType, Dimensions};
                let of = |s: gltf::Semantic| prim.get(&s).map(|a| (a.data_type(), a.dimensions()));
                let float_vec3 = |t: Option<(DataType, Dimensions)>| {
                    t.is_none_or(|t| t == (DataType::F32, Dimensions::Vec3))
                };
                let index_ok = prim.indices().is_none_or(|a| {
                    matches!(a.data_type(), DataType::U8 | DataType::U16 | DataType::U32)
                        && a.dimensions() == Dimensions::Scalar
                });
                if !float_vec3(of(gltf::Semantic::Positions))
                    || !float_vec3(of(gltf::Semantic::Normals))
                    || !index_ok
                {
                    fail(
                        &mut out,
                        &p.path,
                        ImportErrorKind::Syntax {
                            format: "glTF",
                            reason: format!(
                                "mesh {}: positions and normals must be float VEC3, indices unsigned integer SCALAR",
                                gm.index()
                            ),
                        },
                    );
                    return out;
                }
                let reader = prim.reader(|b| buffers.get(b.index()).map(Vec::as_slice));
                let Some(pos) = reader.read_positions() else {
                    continue;
                };
                let pos: Vec<Vec3> = pos
                    .map(|p| m.transform_point3(Vec3::from_array(p)))
                    .collect();
                // NaN or infinite positions (or node transforms) would give the model a NaN
                // height and bounds (found by fuzzing).
                if !pos.iter().all(|p| p.is_finite()) {
                    fail(
                        &mut out,
                        &p.path,
                        ImportErrorKind::BadCoordinates(format!(
                            "mesh {}: a position is not a finite number",
                            gm.index()
                        )),
                    );
                    return out;
                }
                let idx: Vec<u32> = match reader.read_indices() {
                    Some(i) => i.into_u32().collect(),
                    None => (0..pos.len() as u32).collect(),
                };
                let normals: Option<Vec<Vec3>> = reader.read_normals().map(|n| {
                    n.map(|n| (normal_m * Vec3::from_array(n)).normalize_or_zero())
                        .collect()
                });
                for t in idx.chunks_exact(3) {
                    let Some(tri) = t
                        .iter()
                        .map(|&i| pos.get(i as usize).copied())
                        .collect::<Option<Vec<_>>>()
                    else {
                        fail(
                            &mut out,
                            &p.path,
                            ImportErrorKind::MissingReference(format!(
                                "vertex index out of range in mesh {}",
                                gm.index()
                            )),
                        );
                        return out;
                    };
                    let geometric = (tri[1] - tri[0]).cross(tri[2] - tri[0]);
                    // The file's winding is authoritative; its normals only pick the smooth direction.
                    let n = normals
                        .as_ref()
                        .and_then(|ns| ns.get(t[0] as usize))
                        .copied()
                        .filter(|n| n.dot(geometric) > 0.0)
                        .unwrap_or(geometric);
                    let surface = if n.normalize_or_zero().y > 0.7 {
                        Surface::Roof
                    } else {
                        Surface::Wall
                    };
                    mesh.push_triangle([tri[0], tri[1], tri[2]], n, vertex_tag(0, surface));
                }
            }
        }
        stack.extend(node.children().map(|c| (c, m)));
    }
    let Some((lo, hi)) = mesh.bounds() else {
        fail(
            &mut out,
            &p.path,
            ImportErrorKind::UnsupportedGeometry("no triangle meshes".into()),
        );
        return out;
    };
    let name = p
        .name
        .clone()
        .or_else(|| p.path.file_stem().map(|s| s.to_string_lossy().into_owned()));
    out.buildings.push(ImportedBuilding {
        id: format!(
            "model/{}",
            p.path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        name,
        address: None,
        levels: None,
        height: f64::from(hi.y - lo.y.min(0.0)) + p.height,
        height_source: HeightSource::Geometry,
        footprint: Vec::new(),
        shape: BuildingShape::Mesh { mesh, origin },
        attributes: vec![
            ("tvilling:landmark".into(), "yes".into()),
            ("lon".into(), p.lon.to_string()),
            ("lat".into(), p.lat.to_string()),
            ("heading".into(), p.heading.to_string()),
            ("scale".into(), p.scale.to_string()),
        ],
        source_file: p.path.display().to_string(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::BuildingShape;

    const OBELISK: &[u8] = include_bytes!("../../../../assets/models/obelisk.glb");

    /// A model file placed at Sergels torg.
    fn at_sergels_torg(path: &str, heading: f64, scale: f64) -> ModelPlacement {
        ModelPlacement {
            path: PathBuf::from(path),
            name: None,
            lon: 18.0636,
            lat: 59.3324,
            height: 0.0,
            heading,
            scale,
        }
    }

    fn placed(heading: f64, scale: f64) -> (MeshData, DVec3, f64) {
        let p = at_sergels_torg("obelisk.glb", heading, scale);
        let out = import_model_bytes(&p, OBELISK, Crs::SWEREF99_TM);
        assert!(out.report.errors.is_empty(), "{:?}", out.report.errors);
        let b = &out.buildings[0];
        let BuildingShape::Mesh { mesh, origin } = &b.shape else {
            panic!("mesh")
        };
        (mesh.clone(), *origin, b.height)
    }

    #[test]
    fn model_is_placed_scaled_and_turned() {
        let (mesh, origin, height) = placed(0.0, 1.0);
        assert!((height - 37.5).abs() < 1e-3, "{height}");
        assert_eq!(mesh.triangle_count(), 48);
        // Sergels torg in SWEREF 99 TM, as cs2cs 9.1.1 gives it: E 674271.667 N 6581074.877.
        assert!(
            (origin.x - 674_271.667).abs() < 0.01 && (origin.y - 6_581_074.877).abs() < 0.01,
            "{origin:?}"
        );
        let (_, _, h2) = placed(0.0, 2.0);
        assert!((h2 - 75.0).abs() < 1e-3);
        // The octagon has a vertex on its local +X axis (east). Turning the model 22.5 degrees
        // clockwise (seen from above) moves that vertex towards the south (+Z in render space),
        // and no vertex is left on the +X axis.
        let has = |m: &MeshData, q: Vec3| {
            m.positions
                .iter()
                .any(|p| (Vec3::from_array(*p) - q).length() < 1e-3)
        };
        let (m0, _, _) = placed(0.0, 1.0);
        let (m22, _, _) = placed(22.5, 1.0);
        let a = 22.5f32.to_radians();
        assert!(has(&m0, Vec3::new(6.0, 0.0, 0.0)));
        assert!(!has(&m22, Vec3::new(6.0, 0.0, 0.0)));
        assert!(has(&m22, Vec3::new(6.0 * a.cos(), 0.0, 6.0 * a.sin())));
    }

    #[test]
    fn a_corrupt_model_is_reported() {
        let p = at_sergels_torg("bad.glb", 0.0, 1.0);
        let out = import_model_bytes(&p, &OBELISK[..OBELISK.len() / 2], Crs::SWEREF99_TM);
        assert!(out.buildings.is_empty());
        assert!(
            matches!(
                out.report.errors[0].kind,
                ImportErrorKind::Syntax { format: "glTF", .. }
            ),
            "{:?}",
            out.report.errors
        );
        let missing = import_model(
            &ModelPlacement {
                path: PathBuf::from("/nonexistent/x.glb"),
                ..p
            },
            Crs::SWEREF99_TM,
        );
        assert!(matches!(
            missing.report.errors[0].kind,
            ImportErrorKind::Io(_)
        ));
    }

    /// A crash input the fuzzer found (fuzz/regressions/gltf/NAME): refused with `reason`.
    fn refused_with(name: &str, reason: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/gltf")
            .join(name);
        let bytes = std::fs::read(&path).expect("crash input");
        assert_eq!(&bytes[..4], b"glTF");
        let p = at_sergels_torg(name, 0.0, 1.0);
        let out = import_model_bytes(&p, &bytes, Crs::SWEREF99_TM);
        assert!(out.buildings.is_empty(), "{name}");
        assert!(
            out.report.errors[0].to_string().contains(reason),
            "{name}: {}",
            out.report.errors[0]
        );
    }

    /// Found by `scripts/fuzz.sh` (target gltf), each once a panic inside gltf 1.4: a GLB
    /// length below its header (subtraction past zero), a primitive naming an accessor the file
    /// lacks (index out of bounds in validation), indices stored as floats (`unreachable!`);
    /// and a NaN position that gave the model a NaN height.
    #[test]
    fn broken_models_the_fuzzer_found_are_refused_not_a_panic() {
        refused_with(
            "glb-length-below-header.glb",
            "shorter than its 12-byte header",
        );
        refused_with("missing-accessor.glb", "names accessor");
        refused_with("float-indices.glb", "unsigned integer SCALAR");
        refused_with("non-finite-position.glb", "not a finite number");
    }
}
