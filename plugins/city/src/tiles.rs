//! Spatial tiling: buildings are batched into one mesh per grid cell, so the city draws in a few
//! hundred calls, not one per building. Pure functions, run off the main thread.

use std::collections::BTreeMap;

use bevy::math::{DVec2, DVec3, IVec2, Vec3};

use crate::import::{BuildingShape, ImportedBuilding};
use crate::mesh::{MeshData, append_rebased, extrude};
use crate::model::TilePart;

/// Edge of a square tile (m). 250 m keeps a tile's mesh well under 2^24 buildings and lets the
/// camera cull what it does not see.
pub const TILE_SIZE_M: f64 = 250.0;

/// A tile ready to spawn: its mesh, and which buildings (indices into the import list) it holds.
#[derive(Debug, Clone)]
pub struct TileBuild {
    pub key: IVec2,
    /// World position of the tile's local origin (its centre, at datum height).
    pub origin: DVec3,
    pub mesh: MeshData,
    pub parts: Vec<TilePart>,
    pub members: Vec<usize>,
}

/// Where a building stands (its anchor for tiling, the inspector and the snapshot point).
pub fn anchor(b: &ImportedBuilding) -> DVec3 {
    if let Some(p) = b
        .footprint
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
    {
        let c = p.centroid();
        return DVec3::new(c.x, c.y, 0.0);
    }
    match &b.shape {
        BuildingShape::Mesh { origin, .. } => *origin,
        BuildingShape::Extruded { .. } => DVec3::ZERO,
    }
}

/// Grid cell of a world point.
pub fn tile_key(p: DVec2, size: f64) -> IVec2 {
    IVec2::new((p.x / size).floor() as i32, (p.y / size).floor() as i32)
}

/// Builds every tile's mesh. `progress` is called with the number of buildings done so far.
pub fn build_tiles(
    buildings: &[ImportedBuilding],
    size: f64,
    mut progress: impl FnMut(usize),
) -> Vec<TileBuild> {
    let mut cells: BTreeMap<(i32, i32), Vec<usize>> = BTreeMap::new();
    for (i, b) in buildings.iter().enumerate() {
        let a = anchor(b);
        let k = tile_key(DVec2::new(a.x, a.y), size);
        cells.entry((k.x, k.y)).or_default().push(i);
    }
    let mut done = 0;
    let mut tiles = Vec::with_capacity(cells.len());
    for ((kx, ky), members) in cells {
        let origin = DVec3::new(
            (f64::from(kx) + 0.5) * size,
            (f64::from(ky) + 0.5) * size,
            0.0,
        );
        let mut mesh = MeshData::default();
        let mut parts = Vec::with_capacity(members.len());
        for (local, &i) in members.iter().enumerate() {
            let b = &buildings[i];
            let (first_index, first_vertex) = (mesh.indices.len(), mesh.positions.len());
            match &b.shape {
                BuildingShape::Extruded {
                    polygons,
                    base,
                    height,
                } => {
                    extrude(polygons, *base, *height, origin, local as u32, &mut mesh);
                }
                BuildingShape::Mesh { mesh: m, origin: o } => {
                    append_rebased(m, *o, origin, local as u32, &mut mesh);
                }
            }
            let (min, max) = mesh.positions[first_vertex..]
                .iter()
                .map(|p| Vec3::from_array(*p))
                .fold(
                    (Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)),
                    |(lo, hi), p| (lo.min(p), hi.max(p)),
                );
            parts.push(TilePart {
                indices: (first_index as u32, mesh.indices.len() as u32),
                min,
                max,
            });
            done += 1;
            if done % 1024 == 0 {
                progress(done);
            }
        }
        tiles.push(TileBuild {
            key: IVec2::new(kx, ky),
            origin,
            mesh,
            parts,
            members,
        });
    }
    progress(done);
    tiles
}
