//! Device markers: every signal head, street lamp and air sensor is a small lit marker above
//! the street, coloured by its live state (signal aspect; lamp on, dimmed, off or in fault; NO2
//! level; grey while never seen, blue-grey when stale). Meters live on their buildings and are
//! not marked here.
//!
//! Markers are batched like buildings: one mesh per 250 m chunk with a per-chunk colour texture
//! indexed by a per-vertex tag, so a state change rewrites one texel of one chunk and never
//! re-meshes. The tag's surface class [`MARKER_SURFACE`] tells the shader to draw it unlit.

use std::collections::HashMap;

use bevy::asset::RenderAssetUsages;
use bevy::math::{DVec3, IVec2};
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use tvilling_city::mesh::{MeshData, to_local};
use tvilling_city::model::Building;
use tvilling_geo::WorldPosition;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::state::{
    AirQualityState, Device, Health, LampState, Liveness, MeterState, SignalAspect, SignalHeadState,
};

use crate::ViewSystems;
use crate::layers::{ColourBy, difference_colour};
use crate::selection::Selection;
use crate::tiles::{
    COLOR_TEXTURE_WIDTH, CityMaterial, CityParams, HIGHLIGHT, TexelWrites, texel, to_bevy_mesh,
};
use tvilling_twin::scenario::shown::ShownScenarios;

/// The Swedish limit value for NO2 as an hourly mean, µg/m³ (defined in `tvilling_metrics`).
pub const NO2_HOURLY_LIMIT: f32 = tvilling_metrics::limits::NO2_HOURLY.ugm3 as f32;

/// Surface class of marker vertices (high 8 bits of the tag): drawn unlit.
pub const MARKER_SURFACE: u32 = 4;

/// How a marker is drawn, carried in its colour texel's alpha (read by the shader): solid,
/// hatched (stale: its value is old, not to be trusted) or only outlined (never heard from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerPattern {
    Solid,
    Hatched,
    Outlined,
}

impl MarkerPattern {
    pub fn of(live: &Liveness) -> MarkerPattern {
        match live.health {
            Health::NeverSeen => MarkerPattern::Outlined,
            Health::Stale => MarkerPattern::Hatched,
            Health::Live | Health::Fault => MarkerPattern::Solid,
        }
    }

    /// The texel alpha the shader reads: 1 solid, 0.5 hatched, 0 outlined.
    pub fn alpha(self) -> f32 {
        match self {
            MarkerPattern::Solid => 1.0,
            MarkerPattern::Hatched => 0.5,
            MarkerPattern::Outlined => 0.0,
        }
    }

    /// `color` carrying the pattern.
    pub fn apply(self, color: Color) -> Color {
        color.with_alpha(self.alpha())
    }
}

/// One chunk of markers.
#[derive(Component, Debug, Clone)]
#[require(WorldPosition, Transform, Visibility)]
pub struct MarkerChunk {
    pub key: IVec2,
    /// One kind per chunk, so each kind's layer can be hidden on its own.
    pub kind: DeviceKind,
    /// Device entities in tag order.
    pub members: Vec<Entity>,
    colors: Handle<Image>,
    material: Handle<CityMaterial>,
}

/// Where a device's marker is: its chunk and index in that chunk.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerSlot {
    pub chunk: Entity,
    pub index: u32,
}

/// Marker shape of a kind: half-size (m) and height of its centre above ground (m). Larger
/// than life, so that a street's lamps still read from across the city.
pub fn marker_shape(kind: DeviceKind) -> Option<(f32, f32)> {
    match kind {
        DeviceKind::SignalHead => Some((2.2, 6.0)),
        DeviceKind::Lamp => Some((1.8, 10.0)),
        DeviceKind::AirSensor => Some((4.5, 8.0)),
        // Above the roof of its building (the building's height is added).
        DeviceKind::Meter => Some((2.0, 4.0)),
    }
}

/// Where a device's marker stands (world coordinates): above its position, or for a device
/// fitted to a building, above the roof at the footprint's centre.
pub fn marker_centre(kind: DeviceKind, pos: DVec3, building: Option<&Building>) -> Option<DVec3> {
    let (_, h) = marker_shape(kind)?;
    let base = match building {
        Some(b) => {
            let c = b.footprint.first().map_or(pos.truncate(), |p| p.centroid());
            DVec3::new(c.x, c.y, pos.z + b.height)
        }
        None => pos,
    };
    Some(base + DVec3::Z * f64::from(h))
}

/// The nearest marker a render-space ray passes through (a sphere of the marker's size, a
/// little generous so small markers can be clicked), with its distance.
pub fn pick_marker(
    markers: impl Iterator<Item = (Entity, Vec3, f32)>,
    ray: Ray3d,
) -> Option<(Entity, f32)> {
    let mut best: Option<(Entity, f32)> = None;
    for (e, centre, r) in markers {
        let to = centre - ray.origin;
        let along = to.dot(*ray.direction);
        if along <= 0.0 {
            continue;
        }
        let miss = (to - *ray.direction * along).length();
        let reach = r * 1.5;
        if miss <= reach && best.is_none_or(|(_, d)| along < d) {
            best = Some((e, along));
        }
    }
    best
}

/// The high-performance HMI palette (ISA-101), for the control room: a grey scene, colour only
/// for the abnormal.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Default)]
pub struct HmiPalette(pub bool);

/// A marker's colour under the HMI palette: normal states a muted grey (whatever the aspect,
/// level or reading); a fault, a dark signal or an air limit exceeded red; a stale device a
/// pale grey (its value is old, not to be trusted: greyed out, and hatched by its pattern);
/// a device never heard from white (and only outlined).
pub fn hmi_marker_color(
    live: &Liveness,
    signal: Option<&SignalHeadState>,
    air: Option<&AirQualityState>,
) -> Color {
    let alarm = Color::srgb(0.90, 0.12, 0.10);
    match live.health {
        Health::NeverSeen => return Color::srgb(0.97, 0.97, 0.97),
        Health::Stale => return Color::srgb(0.74, 0.74, 0.76),
        Health::Fault => return alarm,
        Health::Live => {}
    }
    if signal.is_some_and(|s| s.aspect == SignalAspect::Dark) {
        return alarm;
    }
    if air.is_some_and(|a| a.no2.is_some_and(|v| v as f32 > NO2_HOURLY_LIMIT)) {
        return alarm;
    }
    Color::srgb(0.42, 0.42, 0.44)
}

/// The colour a device's marker shows.
pub fn marker_color(
    live: &Liveness,
    signal: Option<&SignalHeadState>,
    lamp: Option<&LampState>,
    air: Option<&AirQualityState>,
    meter: Option<&MeterState>,
) -> Color {
    match live.health {
        Health::NeverSeen => return Color::srgb(0.62, 0.62, 0.62),
        Health::Stale => return Color::srgb(0.40, 0.46, 0.62),
        _ => {}
    }
    if let Some(s) = signal {
        return match s.aspect {
            SignalAspect::Red => Color::srgb(0.92, 0.08, 0.06),
            SignalAspect::RedAmber => Color::srgb(1.0, 0.42, 0.0),
            SignalAspect::Green => Color::srgb(0.05, 0.85, 0.25),
            SignalAspect::Amber | SignalAspect::FlashingAmber => Color::srgb(1.0, 0.74, 0.0),
            SignalAspect::Dark => Color::srgb(0.12, 0.12, 0.12),
        };
    }
    if let Some(l) = lamp {
        if live.health == Health::Fault {
            return Color::srgb(0.95, 0.1, 0.85);
        }
        return if l.on {
            let k = 0.55 + 0.45 * (l.dim_pct / 100.0).clamp(0.0, 1.0) as f32;
            Color::srgb(1.0 * k, 0.86 * k, 0.45 * k)
        } else {
            Color::srgb(0.22, 0.22, 0.25)
        };
    }
    if let Some(m) = meter {
        return crate::palette::ramp(crate::palette::power_scale(m.power_kw));
    }
    if let Some(a) = air {
        // NO2 against the Swedish hourly limit value (90 µg/m³, SFS 2010:477): green up to
        // half of it, yellow at the limit, red above it.
        let no2 = a.no2.unwrap_or(0.0) as f32;
        let t = ((no2 - NO2_HOURLY_LIMIT / 2.0) / (NO2_HOURLY_LIMIT / 2.0)).clamp(0.0, 1.0);
        if no2 > NO2_HOURLY_LIMIT {
            return Color::srgb(0.95, 0.12, 0.08);
        }
        return Color::srgb(0.1 + 0.85 * t, 0.8, 0.25 * (1.0 - t));
    }
    Color::srgb(0.8, 0.8, 0.8)
}

/// Draws device markers and keeps their colours live.
#[derive(Default)]
pub struct DeviceMarkerPlugin;

impl Plugin for DeviceMarkerPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<MarkerChunks>()
            .init_resource::<MarkerChunkSize>()
            .add_systems(
                Update,
                (place_markers, color_markers)
                    .chain()
                    .in_set(ViewSystems::Draw),
            );
    }
}

/// The side of a marker chunk (m). A size beyond the city merges each kind's markers into one
/// mesh (`--marker-chunk-m`, for measuring the renderer's limit).
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct MarkerChunkSize(pub f64);

/// The default chunk side: 2 km. Measured on the whole city (scripts/bench-city.sh: 100,000
/// buildings, 250,000 markers), it draws 6.9x faster than the tiles' 250 m and 1.4x faster than
/// one mesh per kind (whose colour texture is uploaded whole on every change).
pub const MARKER_CHUNK_M: f64 = 2_000.0;

impl Default for MarkerChunkSize {
    fn default() -> Self {
        MarkerChunkSize(MARKER_CHUNK_M)
    }
}

/// Chunk entities by key.
#[derive(Resource, Debug, Default)]
pub struct MarkerChunks(pub HashMap<(IVec2, DeviceKind), Entity>);

/// An octahedron around `c` (local render frame), every vertex tagged `tag`.
fn octahedron(c: Vec3, r: f32, tag: u32, out: &mut MeshData) {
    let (x, y, z) = (Vec3::X * r, Vec3::Y * r * 1.4, Vec3::Z * r);
    for (a, b) in [(x, z), (z, -x), (-x, -z), (-z, x)] {
        for top in [y, -y] {
            let (p, q) = if top.y > 0.0 { (b, a) } else { (a, b) };
            out.push_barycentric_triangle([c + p, c + q, c + top], tag);
        }
    }
}

/// New devices get markers: each chunk they fall in is (re)built with all its members.
pub(crate) fn place_markers(
    mut commands: Commands,
    added: Query<(), Added<Device>>,
    devices: Query<(
        Entity,
        &Device,
        &WorldPosition,
        &Liveness,
        Option<&Building>,
    )>,
    mut chunks: ResMut<MarkerChunks>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    size: Res<MarkerChunkSize>,
) {
    if added.is_empty() {
        return;
    }
    let size = size.0.max(1.0);
    let key_of = |p: DVec3| IVec2::new((p.x / size).floor() as i32, (p.y / size).floor() as i32);
    let mut by_chunk: HashMap<(IVec2, DeviceKind), Vec<(Entity, DeviceKind, DVec3)>> =
        HashMap::new();
    let mut touched: Vec<(IVec2, DeviceKind)> = Vec::new();
    for (e, device, pos, _, building) in &devices {
        let Some(at) = marker_centre(device.kind, pos.0, building) else {
            continue;
        };
        let key = (key_of(at), device.kind);
        by_chunk.entry(key).or_default().push((e, device.kind, at));
        if added.contains(e) && !touched.contains(&key) {
            touched.push(key);
        }
    }
    for key in touched {
        let members = by_chunk.remove(&key).unwrap_or_default();
        // A chunk's corner, or for a merged chunk its members' middle (to the metre), so that
        // its vertices stay small numbers.
        let origin = if size <= 10_000.0 {
            DVec3::new(f64::from(key.0.x) * size, f64::from(key.0.y) * size, 0.0)
        } else {
            let sum = members.iter().fold(DVec3::ZERO, |s, m| s + m.2.with_z(0.0));
            (sum / members.len().max(1) as f64).round()
        };
        let mut mesh = MeshData::default();
        let height = (members.len() as u32).div_ceil(COLOR_TEXTURE_WIDTH).max(1);
        let mut image = Image::new_fill(
            Extent3d {
                width: COLOR_TEXTURE_WIDTH,
                height,
                depth_or_array_layers: 1,
            },
            TextureDimension::D2,
            &texel(Color::srgb(0.62, 0.62, 0.62)),
            TextureFormat::Rgba8UnormSrgb,
            RenderAssetUsages::default(),
        );
        let chunk = match chunks.0.get(&key) {
            Some(&c) => c,
            None => {
                let c = commands
                    .spawn((
                        Name::new(format!("{:?} markers {}", key.1, key.0)),
                        WorldPosition(origin),
                        // The twin's own state: the live view's (scenarios draw their own).
                        bevy::camera::visibility::RenderLayers::layer(crate::scenario::LIVE_LAYER),
                    ))
                    .id();
                chunks.0.insert(key, c);
                c
            }
        };
        for (i, (e, kind, p)) in members.iter().enumerate() {
            let Some((r, _)) = marker_shape(*kind) else {
                continue;
            };
            let c = to_local(origin, p.x, p.y, p.z);
            octahedron(c, r, i as u32 | (MARKER_SURFACE << 24), &mut mesh);
            commands.entity(*e).insert(MarkerSlot {
                chunk,
                index: i as u32,
            });
            if let (Some(data), Ok((_, _, _, live, _))) = (image.data.as_mut(), devices.get(*e)) {
                let color =
                    MarkerPattern::of(live).apply(marker_color(live, None, None, None, None));
                data[i * 4..i * 4 + 4].copy_from_slice(&texel(color));
            }
        }
        let colors = images.add(image);
        let material = materials.add(CityMaterial {
            params: CityParams::default(),
            colors: colors.clone(),
        });
        commands.entity(chunk).insert((
            Mesh3d(meshes.add(to_bevy_mesh(&mesh))),
            MeshMaterial3d(material.clone()),
            MarkerChunk {
                key: key.0,
                kind: key.1,
                members: members.iter().map(|m| m.0).collect(),
                colors,
                material,
            },
        ));
    }
}

/// State changes rewrite their marker's texel.
fn color_markers(
    changed: Query<
        Entity,
        Or<(
            Changed<Liveness>,
            Changed<SignalHeadState>,
            Changed<LampState>,
            Changed<AirQualityState>,
            Changed<MeterState>,
            Added<MarkerSlot>,
        )>,
    >,
    markers: Query<(
        &MarkerSlot,
        &Liveness,
        Option<&SignalHeadState>,
        Option<&LampState>,
        Option<&AirQualityState>,
        Option<&MeterState>,
    )>,
    selection: Res<Selection>,
    mut last_selected: Local<Option<Entity>>,
    chunks: Query<&MarkerChunk>,
    all: Query<Entity, With<MarkerSlot>>,
    by: Option<Res<ColourBy>>,
    shown: Option<Res<ShownScenarios>>,
    hmi: Option<Res<HmiPalette>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) {
    let grey = hmi.as_ref().is_some_and(|h| h.0);
    // Under the difference colouring, each marker shows its energy difference; a switch of
    // colouring, or a new comparison under it, recolours every marker.
    let difference = by.as_ref().is_some_and(|b| **b == ColourBy::Difference);
    let recolour = by.as_ref().is_some_and(|b| b.is_changed())
        || hmi.as_ref().is_some_and(|h| h.is_changed())
        || (difference && shown.as_ref().is_some_and(|s| s.is_changed()));
    let scale = shown.as_ref().map_or(0.0, |s| s.largest_difference());
    let mut dirty: Vec<Entity> = if recolour {
        all.iter().collect()
    } else {
        changed.iter().collect()
    };
    if selection.entity != *last_selected {
        dirty.extend(last_selected.take());
        dirty.extend(selection.entity);
        *last_selected = selection.entity;
    }
    let mut writes = TexelWrites::default();
    for e in dirty {
        let Ok((slot, live, signal, lamp, air, meter)) = markers.get(e) else {
            continue;
        };
        let Ok(chunk) = chunks.get(slot.chunk) else {
            continue;
        };
        let color = if selection.entity == Some(e) {
            HIGHLIGHT
        } else if let (true, Some(s)) = (difference, &shown) {
            difference_colour(s.difference.get(&e).copied(), scale)
        } else if grey {
            MarkerPattern::of(live).apply(hmi_marker_color(live, signal, air))
        } else {
            MarkerPattern::of(live).apply(marker_color(live, signal, lamp, air, meter))
        };
        writes.write(
            &mut images,
            &chunk.colors,
            &chunk.material,
            slot.index,
            color,
        );
    }
    writes.finish(&mut materials);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hmi_palette_greys_the_normal_and_marks_the_abnormal() {
        let with = |health| Liveness {
            health,
            ..Default::default()
        };
        let head = |aspect| SignalHeadState {
            aspect,
            ..Default::default()
        };
        let normal = hmi_marker_color(&with(Health::Live), Some(&head(SignalAspect::Green)), None);
        assert_eq!(
            normal,
            hmi_marker_color(&with(Health::Live), Some(&head(SignalAspect::Red)), None),
            "aspects are normal states: one muted grey"
        );
        let stale = hmi_marker_color(&with(Health::Stale), Some(&head(SignalAspect::Green)), None);
        let never = hmi_marker_color(&with(Health::NeverSeen), None, None);
        let fault = hmi_marker_color(&with(Health::Fault), None, None);
        let dark = hmi_marker_color(&with(Health::Live), Some(&head(SignalAspect::Dark)), None);
        let all = [normal, stale, never, fault];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "stale, never seen, fault and live differ");
            }
        }
        assert_eq!(dark, fault, "a dark signal is an alarm colour");
        let s = normal.to_srgba();
        assert!(
            (s.red - s.green).abs() < 0.05 && (s.green - s.blue).abs() < 0.05,
            "grey"
        );
    }

    #[test]
    fn colours_follow_state_and_health() {
        let live = Liveness {
            health: Health::Live,
            ..Default::default()
        };
        let red = marker_color(
            &live,
            Some(&SignalHeadState {
                aspect: SignalAspect::Red,
                ..Default::default()
            }),
            None,
            None,
            None,
        );
        assert_eq!(red, Color::srgb(0.92, 0.08, 0.06));
        let never = Liveness::default();
        assert_eq!(
            marker_color(&never, None, Some(&LampState::default()), None, None),
            Color::srgb(0.62, 0.62, 0.62)
        );
        let fault = Liveness {
            health: Health::Fault,
            ..Default::default()
        };
        assert_eq!(
            marker_color(&fault, None, Some(&LampState::default()), None, None),
            Color::srgb(0.95, 0.1, 0.85)
        );
        let lit = LampState {
            on: true,
            dim_pct: 100.0,
            ..Default::default()
        };
        let dimmed = LampState {
            on: true,
            dim_pct: 50.0,
            ..Default::default()
        };
        let bright = marker_color(&live, None, Some(&lit), None, None).to_srgba();
        let half = marker_color(&live, None, Some(&dimmed), None, None).to_srgba();
        assert!(bright.red > half.red);
        let clean = marker_color(
            &live,
            None,
            None,
            Some(&AirQualityState {
                no2: Some(10.0),
                ..Default::default()
            }),
            None,
        )
        .to_srgba();
        let dirty = marker_color(
            &live,
            None,
            None,
            Some(&AirQualityState {
                no2: Some(250.0),
                ..Default::default()
            }),
            None,
        )
        .to_srgba();
        assert!(clean.green > clean.red && dirty.red > dirty.green);
    }

    #[test]
    fn stale_markers_are_hatched_and_never_seen_ones_outlined() {
        let with = |health| Liveness {
            health,
            ..Default::default()
        };
        let pattern = |h| MarkerPattern::of(&with(h));
        assert_eq!(pattern(Health::Live), MarkerPattern::Solid);
        assert_eq!(pattern(Health::Fault), MarkerPattern::Solid);
        assert_eq!(pattern(Health::Stale), MarkerPattern::Hatched);
        assert_eq!(pattern(Health::NeverSeen), MarkerPattern::Outlined);
        // The texel's alpha carries it to the shader: 255 solid, 128 hatched, 0 outlined.
        let alpha = |p: MarkerPattern| texel(p.apply(Color::srgb(0.5, 0.5, 0.5)))[3];
        assert_eq!(
            [
                alpha(MarkerPattern::Solid),
                alpha(MarkerPattern::Hatched),
                alpha(MarkerPattern::Outlined)
            ],
            [255, 128, 0]
        );
    }

    #[test]
    fn an_octahedron_has_eight_outward_faces() {
        let mut m = MeshData::default();
        octahedron(Vec3::new(5.0, 8.0, -3.0), 1.0, 7, &mut m);
        assert_eq!(m.triangle_count(), 8);
        for (i, t) in m.indices.chunks_exact(3).enumerate() {
            let p = |k: usize| Vec3::from_array(m.positions[t[k] as usize]);
            let centre = (p(0) + p(1) + p(2)) / 3.0 - Vec3::new(5.0, 8.0, -3.0);
            let n = (p(1) - p(0)).cross(p(2) - p(0));
            assert!(n.dot(centre) > 0.0, "face {i} faces outward");
            // Its corners carry (1,0,0), (0,1,0), (0,0,1): the shader's outline.
            let corners: Vec<[f32; 3]> = t.iter().map(|&k| m.normals[k as usize]).collect();
            assert_eq!(corners, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        }
        assert!(m.tags.iter().all(|&t| t == 7));
    }
}
