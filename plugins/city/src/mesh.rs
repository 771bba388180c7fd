//! Triangle meshes as plain data (no rendering types): extrusion of footprints with earcut
//! (from the `geo` crate), re-basing of ready meshes, and per-vertex building tags.
//!
//! Coordinates are render-space offsets (f32, metres) from a tile's world origin: X = east,
//! Y = up, Z = south (see `tvilling_geo::GeoFrame`). Triangles are counter-clockwise seen from
//! the side their normal points to, which is what the renderer culls by.

use bevy::math::{DVec2, DVec3, Vec3};
use geo::TriangulateEarcut;

use crate::import::Polygon2;

/// Surface class carried in the top 8 bits of each vertex tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Surface {
    Wall = 0,
    Roof = 1,
    Ground = 2,
    Other = 3,
}

/// Bits of a vertex tag that hold the building's index within its tile.
pub const BUILDING_INDEX_MASK: u32 = 0x00FF_FFFF;

/// Packs a building index and a surface class into one vertex tag.
pub fn vertex_tag(building: u32, surface: Surface) -> u32 {
    (building & BUILDING_INDEX_MASK) | ((surface as u32) << 24)
}

/// An indexed triangle list with flat normals and a per-vertex building tag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeshData {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    /// `building index | surface << 24`, see [`vertex_tag`].
    pub tags: Vec<u32>,
    pub indices: Vec<u32>,
}

impl MeshData {
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Bytes held by the vertex and index buffers.
    pub fn byte_size(&self) -> usize {
        self.positions.len() * 12
            + self.normals.len() * 12
            + self.tags.len() * 4
            + self.indices.len() * 4
    }

    fn push_vertex(&mut self, p: Vec3, n: Vec3, tag: u32) -> u32 {
        let i = self.positions.len() as u32;
        self.positions.push(p.to_array());
        self.normals.push(n.to_array());
        self.tags.push(tag);
        i
    }

    /// Adds an unlit triangle as given (counter-clockwise seen from outside), whose vertices
    /// carry their barycentric corners (1,0,0), (0,1,0), (0,0,1) in place of normals: the
    /// shader draws device markers' outlines from them.
    pub fn push_barycentric_triangle(&mut self, p: [Vec3; 3], tag: u32) {
        for (k, corner) in [Vec3::X, Vec3::Y, Vec3::Z].into_iter().enumerate() {
            let i = self.push_vertex(p[k], corner, tag);
            self.indices.push(i);
        }
    }

    /// Adds a triangle facing `normal` (its winding is fixed to match).
    pub fn push_triangle(&mut self, p: [Vec3; 3], normal: Vec3, tag: u32) {
        let geometric = (p[1] - p[0]).cross(p[2] - p[0]);
        if geometric.length_squared() < 1e-12 {
            return;
        }
        let order = if geometric.dot(normal) >= 0.0 {
            [0, 1, 2]
        } else {
            [0, 2, 1]
        };
        let n = normal.normalize_or(geometric.normalize());
        for k in order {
            let i = self.push_vertex(p[k], n, tag);
            self.indices.push(i);
        }
    }

    /// Axis-aligned bounds of the positions.
    pub fn bounds(&self) -> Option<(Vec3, Vec3)> {
        let mut it = self.positions.iter().map(|p| Vec3::from_array(*p));
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), p| (lo.min(p), hi.max(p))))
    }
}

/// World (easting, northing, height) to render offset from `origin`.
pub fn to_local(origin: DVec3, e: f64, n: f64, h: f64) -> Vec3 {
    Vec3::new(
        (e - origin.x) as f32,
        (h - origin.z) as f32,
        -((n - origin.y) as f32),
    )
}

/// Triangulates a footprint (outer ring and holes) with earcut. Returns triangles as index
/// triples into the concatenated rings (outer first, then holes in order).
pub fn triangulate(poly: &Polygon2) -> Vec<[usize; 3]> {
    // A ring with a non-finite point is not a ring (geo's earcut asserts on it; found by
    // fuzzing): it has no triangles, and the caller reports the face as degenerate.
    let finite = |r: &[DVec2]| r.iter().all(|p| p.is_finite());
    if !finite(&poly.outer) || !poly.holes.iter().all(|h| finite(h)) {
        return Vec::new();
    }
    let to_ring =
        |r: &[DVec2]| geo::LineString::from(r.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
    let gp = geo::Polygon::new(
        to_ring(&poly.outer),
        poly.holes.iter().map(|h| to_ring(h)).collect(),
    );
    let raw = gp.earcut_triangles_raw();
    // Map earcut's vertex list back onto our ring points by position.
    let all: Vec<DVec2> = poly
        .outer
        .iter()
        .chain(poly.holes.iter().flatten())
        .copied()
        .collect();
    let lookup = |v: [f64; 2]| {
        all.iter()
            .position(|p| p.x == v[0] && p.y == v[1])
            .unwrap_or(0)
    };
    let map: Vec<usize> = if raw.vertices.len() == all.len() {
        (0..all.len()).collect()
    } else {
        raw.vertices.iter().map(|v| lookup(*v)).collect()
    };
    raw.triangle_indices
        .chunks_exact(3)
        .map(|t| [map[t[0]], map[t[1]], map[t[2]]])
        .collect()
}

/// Extrudes footprints from `base` to `base + height` (metres above the datum): a flat roof
/// (earcut), walls for every ring edge facing away from the interior, and no floor (never seen
/// from above ground).
pub fn extrude(
    polys: &[Polygon2],
    base: f64,
    height: f64,
    origin: DVec3,
    building: u32,
    out: &mut MeshData,
) {
    let top = base + height;
    let roof_tag = vertex_tag(building, Surface::Roof);
    let wall_tag = vertex_tag(building, Surface::Wall);
    for poly in polys {
        let all: Vec<DVec2> = poly
            .outer
            .iter()
            .chain(poly.holes.iter().flatten())
            .copied()
            .collect();
        let roof: Vec<Vec3> = all
            .iter()
            .map(|p| to_local(origin, p.x, p.y, top))
            .collect();
        for t in triangulate(poly) {
            out.push_triangle([roof[t[0]], roof[t[1]], roof[t[2]]], Vec3::Y, roof_tag);
        }
        let outer_ccw = crate::import::ring_signed_area(&poly.outer) > 0.0;
        let rings = std::iter::once((&poly.outer, outer_ccw)).chain(
            poly.holes
                .iter()
                .map(|h| (h, crate::import::ring_signed_area(h) < 0.0)),
        );
        for (ring, interior_left) in rings {
            let n = ring.len();
            for i in 0..n {
                let a = ring[i];
                let b = ring[(i + 1) % n];
                let d = b - a;
                // Outward = right of the direction when the interior is on the left.
                let out_en = if interior_left {
                    DVec2::new(d.y, -d.x)
                } else {
                    DVec2::new(-d.y, d.x)
                };
                let normal =
                    Vec3::new(out_en.x as f32, 0.0, -(out_en.y as f32)).normalize_or_zero();
                let a0 = to_local(origin, a.x, a.y, base);
                let b0 = to_local(origin, b.x, b.y, base);
                let a1 = to_local(origin, a.x, a.y, top);
                let b1 = to_local(origin, b.x, b.y, top);
                out.push_triangle([a0, b0, b1], normal, wall_tag);
                out.push_triangle([a0, b1, a1], normal, wall_tag);
            }
        }
    }
}

/// Adds flat polygons at `height`, facing up, tagged `index` as ground.
pub fn flat(polys: &[Polygon2], height: f64, origin: DVec3, index: u32, out: &mut MeshData) {
    let tag = vertex_tag(index, Surface::Ground);
    for poly in polys {
        let all: Vec<Vec3> = poly
            .outer
            .iter()
            .chain(poly.holes.iter().flatten())
            .map(|p| to_local(origin, p.x, p.y, height))
            .collect();
        for t in triangulate(poly) {
            out.push_triangle([all[t[0]], all[t[1]], all[t[2]]], Vec3::Y, tag);
        }
    }
}

/// Appends a mesh whose positions are offsets from `src_origin` (world), re-based to
/// `dst_origin` and re-tagged with `building`.
pub fn append_rebased(
    src: &MeshData,
    src_origin: DVec3,
    dst_origin: DVec3,
    building: u32,
    out: &mut MeshData,
) {
    let shift = to_local(dst_origin, src_origin.x, src_origin.y, src_origin.z);
    let base = out.positions.len() as u32;
    out.positions.extend(
        src.positions
            .iter()
            .map(|p| (Vec3::from_array(*p) + shift).to_array()),
    );
    out.normals.extend_from_slice(&src.normals);
    out.tags.extend(
        src.tags
            .iter()
            .map(|t| (t & !BUILDING_INDEX_MASK) | (building & BUILDING_INDEX_MASK)),
    );
    out.indices.extend(src.indices.iter().map(|i| i + base));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(s: f64) -> Vec<DVec2> {
        vec![
            DVec2::new(0.0, 0.0),
            DVec2::new(s, 0.0),
            DVec2::new(s, s),
            DVec2::new(0.0, s),
        ]
    }

    fn check_winding(m: &MeshData) {
        for t in m.indices.chunks_exact(3) {
            let p: Vec<Vec3> = t
                .iter()
                .map(|&i| Vec3::from_array(m.positions[i as usize]))
                .collect();
            let g = (p[1] - p[0]).cross(p[2] - p[0]);
            let n = Vec3::from_array(m.normals[t[0] as usize]);
            assert!(g.dot(n) > 0.0, "triangle wound against its normal");
        }
    }

    #[test]
    fn box_with_courtyard_has_roof_walls_and_outward_normals() {
        let mut hole = vec![
            DVec2::new(4.0, 4.0),
            DVec2::new(6.0, 4.0),
            DVec2::new(6.0, 6.0),
            DVec2::new(4.0, 6.0),
        ];
        hole.reverse();
        let poly = Polygon2 {
            outer: square(10.0),
            holes: vec![hole],
        };
        let mut m = MeshData::default();
        extrude(&[poly], 0.0, 9.0, DVec3::new(5.0, 5.0, 0.0), 7, &mut m);
        check_winding(&m);
        let roof_tris = m
            .indices
            .chunks_exact(3)
            .filter(|t| m.tags[t[0] as usize] >> 24 == Surface::Roof as u32)
            .count();
        // A square with a square hole triangulates into 8 triangles; 8 wall quads = 16 triangles.
        assert_eq!(roof_tris, 8);
        assert_eq!(m.triangle_count(), 8 + 16);
        // Roof area equals footprint area (100 - 4).
        let area: f32 = m
            .indices
            .chunks_exact(3)
            .filter(|t| m.tags[t[0] as usize] >> 24 == Surface::Roof as u32)
            .map(|t| {
                let p: Vec<Vec3> = t
                    .iter()
                    .map(|&i| Vec3::from_array(m.positions[i as usize]))
                    .collect();
                (p[1] - p[0]).cross(p[2] - p[0]).length() / 2.0
            })
            .sum();
        assert!((area - 96.0).abs() < 1e-3, "{area}");
        // Outer walls face away from the centre, courtyard walls face into the courtyard centre.
        for (i, n) in m.normals.iter().enumerate() {
            if m.tags[i] >> 24 != Surface::Wall as u32 {
                continue;
            }
            let p = Vec3::from_array(m.positions[i]);
            let n = Vec3::from_array(*n);
            let radial = Vec3::new(p.x, 0.0, p.z);
            let in_courtyard = p.x.abs() <= 1.0 + 1e-4 && p.z.abs() <= 1.0 + 1e-4;
            if in_courtyard {
                assert!(n.dot(radial) <= 1e-4, "courtyard wall must face inward");
            } else {
                assert!(n.dot(radial) >= -1e-4, "outer wall must face outward");
            }
        }
        assert!(m.tags.iter().all(|t| t & BUILDING_INDEX_MASK == 7));
        let (lo, hi) = m.bounds().expect("bounds");
        assert_eq!(lo, Vec3::new(-5.0, 0.0, -5.0));
        assert_eq!(hi, Vec3::new(5.0, 9.0, 5.0));
    }

    #[test]
    fn clockwise_footprints_are_handled_too() {
        let mut ring = square(4.0);
        ring.reverse();
        let mut m = MeshData::default();
        extrude(
            &[Polygon2 {
                outer: ring,
                holes: vec![],
            }],
            2.0,
            3.0,
            DVec3::ZERO,
            0,
            &mut m,
        );
        check_winding(&m);
        // Two roof triangles and four wall quads: a mesh, not an empty one.
        let of = |s: Surface| {
            m.indices
                .chunks_exact(3)
                .filter(|t| m.tags[t[0] as usize] >> 24 == s as u32)
                .count()
        };
        assert_eq!((of(Surface::Roof), of(Surface::Wall)), (2, 8));
        assert_eq!(m.triangle_count(), 10);
        let roof_normals: Vec<[f32; 3]> = m
            .normals
            .iter()
            .zip(&m.tags)
            .filter(|(_, t)| **t >> 24 == Surface::Roof as u32)
            .map(|(n, _)| *n)
            .collect();
        assert!(!roof_normals.is_empty());
        assert!(roof_normals.iter().all(|n| n[1] > 0.99), "{roof_normals:?}");
        let (lo, hi) = m.bounds().expect("bounds");
        assert_eq!((lo.y, hi.y), (2.0, 5.0), "from base 2 m up 3 m");
    }

    #[test]
    fn rebase_moves_positions_and_retags() {
        let mut src = MeshData::default();
        src.push_triangle(
            [Vec3::ZERO, Vec3::X, Vec3::NEG_Z],
            Vec3::Y,
            vertex_tag(0, Surface::Other),
        );
        let mut out = MeshData::default();
        append_rebased(
            &src,
            DVec3::new(110.0, 200.0, 0.0),
            DVec3::new(100.0, 200.0, 0.0),
            3,
            &mut out,
        );
        assert_eq!(out.positions[0], [10.0, 0.0, 0.0]);
        assert_eq!(out.tags[0], vertex_tag(3, Surface::Other));
    }

    /// Found by `scripts/fuzz.sh` (target cityjson): a face with an infinite or NaN point made
    /// geo's earcut panic.
    #[test]
    fn a_ring_with_a_non_finite_point_has_no_triangles() {
        for bad in [f64::NAN, f64::INFINITY] {
            let mut ring = square(4.0);
            ring[2].x = bad;
            let poly = Polygon2 {
                outer: ring,
                holes: vec![],
            };
            assert!(triangulate(&poly).is_empty());
            let mut hole_poly = Polygon2 {
                outer: square(10.0),
                holes: vec![square(2.0)],
            };
            hole_poly.holes[0][1].y = bad;
            assert!(triangulate(&hole_poly).is_empty());
        }
        assert_eq!(
            triangulate(&Polygon2 {
                outer: square(4.0),
                holes: vec![]
            })
            .len(),
            2
        );
    }
}
