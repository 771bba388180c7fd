//! Components of the city model. Every located thing in the twin is a [`TwinEntity`] with a
//! source id and a [`WorldPosition`]; buildings and signals add their own attributes.

use bevy::math::{DVec3, Vec3};
use bevy::prelude::*;
use tvilling_geo::WorldPosition;

use crate::import::{HeightSource, Polygon2, SignalType};
use crate::mesh::MeshData;

/// What kind of thing an entity of the twin is. `as_str` gives the `kind` used in snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Reflect)]
pub enum TwinKind {
    Building,
    Landmark,
    SignalHead,
    SignalController,
    Lamp,
    Meter,
    AirSensor,
    /// A vehicle of a traffic simulation (SUMO).
    Vehicle,
}

impl TwinKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TwinKind::Building => "building",
            TwinKind::Landmark => "landmark",
            TwinKind::SignalHead => "signal_head",
            TwinKind::SignalController => "signal_controller",
            TwinKind::Lamp => "lamp",
            TwinKind::Meter => "meter",
            TwinKind::AirSensor => "air_sensor",
            TwinKind::Vehicle => "vehicle",
        }
    }
}

/// Identity of a thing in the twin: its kind and the source's id (e.g. `way/123`).
#[derive(Component, Debug, Clone, PartialEq, Reflect)]
#[require(WorldPosition, Name)]
pub struct TwinEntity {
    pub kind: TwinKind,
    pub id: String,
}

/// A building's attributes. Its geometry is drawn as part of its tile's batched mesh.
#[derive(Component, Debug, Clone)]
pub struct Building {
    pub name: Option<String>,
    pub address: Option<String>,
    pub levels: Option<f64>,
    /// Height above ground (m), from `height_source`.
    pub height: f64,
    pub height_source: HeightSource,
    /// Footprint area (m2), holes excluded.
    pub area_m2: f64,
    /// Footprint polygons in the scene CRS.
    pub footprint: Vec<Polygon2>,
    /// Every attribute of the source feature.
    pub attributes: Vec<(String, String)>,
    /// The file it came from.
    pub source_file: String,
}

impl Building {
    /// Bytes this component holds: itself and what its strings, footprint and attributes
    /// hold on the heap (by capacity). Its mesh is not counted: it lives in its tile's.
    pub fn held_bytes(&self) -> usize {
        let string = |s: &String| s.capacity();
        let ring =
            |r: &Vec<bevy::math::DVec2>| r.capacity() * std::mem::size_of::<bevy::math::DVec2>();
        std::mem::size_of::<Building>()
            + self.name.as_ref().map_or(0, string)
            + self.address.as_ref().map_or(0, string)
            + self.footprint.capacity() * std::mem::size_of::<crate::import::Polygon2>()
            + self
                .footprint
                .iter()
                .map(|p| {
                    ring(&p.outer)
                        + p.holes.capacity() * std::mem::size_of::<Vec<bevy::math::DVec2>>()
                        + p.holes.iter().map(ring).sum::<usize>()
                })
                .sum::<usize>()
            + self.attributes.capacity() * std::mem::size_of::<(String, String)>()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity())
                .sum::<usize>()
            + string(&self.source_file)
    }
}

/// Where a building is drawn: its tile entity and its index in that tile's colour buffer and
/// vertex tags. This is the building's pickable identity in the batched meshes.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileSlot {
    pub tile: Entity,
    pub index: u32,
}

/// A traffic-signal point from the source data (live state arrives with the sensor pipeline).
#[derive(Component, Debug, Clone)]
pub struct TrafficSignal {
    pub signal_type: SignalType,
    pub attributes: Vec<(String, String)>,
}

/// A surveyed street lamp from the source data (live state arrives with the sensor pipeline).
#[derive(Component, Debug, Clone)]
pub struct StreetLamp {
    pub attributes: Vec<(String, String)>,
}

/// The city's street centrelines (scene CRS), for placing devices along them and for drawing.
#[derive(Resource, Debug, Clone, Default)]
pub struct CityStreets(pub Vec<crate::import::ImportedStreet>);

/// A spatial tile of the city: one batched mesh for all its buildings.
#[derive(Component, Debug, Clone)]
#[require(WorldPosition)]
pub struct CityTile {
    /// Grid cell (easting, northing) / tile size.
    pub key: IVec2,
    pub mesh: MeshData,
    /// Building entities in tile order (index = vertex tag index).
    pub buildings: Vec<Entity>,
    /// Per building: its triangle index range in `mesh.indices` and its bounds (tile-local).
    pub parts: Vec<TilePart>,
}

/// Flat ground cover (water, parks) in one mesh; the vertex tag index is the
/// [`crate::import::AreaKind`].
#[derive(Component, Debug, Clone)]
#[require(WorldPosition)]
pub struct GroundCover {
    pub mesh: MeshData,
    /// Number of areas of each kind (water, park).
    pub counts: [usize; 2],
}

/// One building's share of a tile mesh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilePart {
    pub indices: (u32, u32),
    pub min: Vec3,
    pub max: Vec3,
}

/// A ray hit on a building.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildingHit {
    pub building: Entity,
    pub distance: f32,
    pub point: Vec3,
}

impl CityTile {
    /// Nearest building hit by a ray given in this tile's local (render) frame.
    pub fn raycast(&self, origin: Vec3, dir: Vec3) -> Option<(usize, f32)> {
        let mut best: Option<(usize, f32)> = None;
        for (i, part) in self.parts.iter().enumerate() {
            let Some(t_box) = ray_aabb(origin, dir, part.min, part.max) else {
                continue;
            };
            if best.is_some_and(|(_, d)| t_box > d) {
                continue;
            }
            let tris = &self.mesh.indices[part.indices.0 as usize..part.indices.1 as usize];
            for t in tris.chunks_exact(3) {
                let p = |k: usize| Vec3::from_array(self.mesh.positions[t[k] as usize]);
                if let Some(d) = ray_triangle(origin, dir, p(0), p(1), p(2))
                    && best.is_none_or(|(_, bd)| d < bd)
                {
                    best = Some((i, d));
                }
            }
        }
        best
    }
}

/// Entry distance of a ray into a box, if it hits.
pub fn ray_aabb(o: Vec3, d: Vec3, min: Vec3, max: Vec3) -> Option<f32> {
    let inv = d.recip();
    let t1 = (min - o) * inv;
    let t2 = (max - o) * inv;
    let tmin = t1.min(t2).max_element();
    let tmax = t1.max(t2).min_element();
    (tmax >= tmin.max(0.0)).then_some(tmin.max(0.0))
}

/// Möller–Trumbore ray/triangle distance (either side).
pub fn ray_triangle(o: Vec3, d: Vec3, a: Vec3, b: Vec3, c: Vec3) -> Option<f32> {
    let e1 = b - a;
    let e2 = c - a;
    let p = d.cross(e2);
    let det = e1.dot(p);
    if det.abs() < 1e-9 {
        return None;
    }
    let inv = 1.0 / det;
    let s = o - a;
    let u = s.dot(p) * inv;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    let q = s.cross(e1);
    let v = d.dot(q) * inv;
    if v < 0.0 || u + v > 1.0 {
        return None;
    }
    let t = e2.dot(q) * inv;
    (t > 0.0).then_some(t)
}

/// Bundle for a building entity.
pub fn building_bundle(
    id: String,
    kind: TwinKind,
    building: Building,
    position: DVec3,
    slot: TileSlot,
) -> impl Bundle {
    let label = building
        .name
        .clone()
        .or_else(|| building.address.clone())
        .unwrap_or_else(|| id.clone());
    (
        Name::new(format!("{} {label}", kind.as_str())),
        TwinEntity { kind, id },
        WorldPosition(position),
        building,
        slot,
    )
}

/// Bundle for a traffic-signal entity.
pub fn signal_bundle(id: String, signal: TrafficSignal, position: DVec3) -> impl Bundle {
    (
        Name::new(format!("signal_head {id}")),
        TwinEntity {
            kind: TwinKind::SignalHead,
            id,
        },
        WorldPosition(position),
        signal,
    )
}

/// Bundle for a surveyed street-lamp entity.
pub fn lamp_bundle(id: String, lamp: StreetLamp, position: DVec3) -> impl Bundle {
    (
        Name::new(format!("lamp {id}")),
        TwinEntity {
            kind: TwinKind::Lamp,
            id,
        },
        WorldPosition(position),
        lamp,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_building_counts_what_it_holds() {
        use bevy::math::DVec2;
        let square = vec![DVec2::ZERO, DVec2::X, DVec2::ONE, DVec2::Y, DVec2::ZERO];
        let mut b = Building {
            name: None,
            address: None,
            levels: Some(4.0),
            height: 12.0,
            height_source: crate::import::HeightSource::FromLevels,
            area_m2: 1.0,
            footprint: vec![crate::import::Polygon2 {
                outer: square,
                holes: Vec::new(),
            }],
            attributes: Vec::new(),
            source_file: String::new(),
        };
        let bare = b.held_bytes();
        assert_eq!(
            bare,
            std::mem::size_of::<Building>()
                + std::mem::size_of::<crate::import::Polygon2>()
                + 5 * std::mem::size_of::<DVec2>()
        );
        b.name = Some(String::from("Tekniska högskolan"));
        b.attributes.push(("building".into(), "university".into()));
        b.attributes.shrink_to_fit();
        assert_eq!(
            b.held_bytes(),
            bare + "Tekniska högskolan".len()
                + std::mem::size_of::<(String, String)>()
                + "building".len()
                + "university".len()
        );
    }

    #[test]
    fn ray_hits_triangle_and_box() {
        let hit = ray_triangle(
            Vec3::new(0.2, 5.0, -0.2),
            Vec3::NEG_Y,
            Vec3::ZERO,
            Vec3::X,
            Vec3::NEG_Z,
        );
        assert_eq!(hit, Some(5.0));
        assert_eq!(
            ray_triangle(
                Vec3::new(2.0, 5.0, 0.0),
                Vec3::NEG_Y,
                Vec3::ZERO,
                Vec3::X,
                Vec3::NEG_Z
            ),
            None
        );
        assert_eq!(
            ray_aabb(
                Vec3::new(0.5, 10.0, 0.5),
                Vec3::NEG_Y,
                Vec3::ZERO,
                Vec3::ONE
            ),
            Some(9.0)
        );
        assert_eq!(
            ray_aabb(
                Vec3::new(5.0, 10.0, 0.5),
                Vec3::NEG_Y,
                Vec3::ZERO,
                Vec3::ONE
            ),
            None
        );
    }
}
