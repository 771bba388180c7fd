//! Scenarios in the 3D view: the city under scenario A, under B, or both side by side (split
//! view: A left, B right, one camera each, locked together), at the moment the model's
//! [`ShownScenarios`] holds.
//!
//! - Every marker chunk gets one sibling per side: the same mesh, its own colour texture,
//!   coloured from that side's [`SimLook`]s (or by the energy difference under
//!   [`ColourBy::Difference`]). Render layers choose what each camera sees: [`SHARED_LAYER`]
//!   (buildings, ground) for all, [`LIVE_LAYER`] for the twin's own markers, and one layer per
//!   side.
//! - A planned building joins the tile it stands in: that tile alone is re-meshed with it, as a
//!   variant drawn on its side's layer, while the original tile stays for the other side and
//!   the live view. Its colour is a texel past the tile's buildings in the tile's own colour
//!   texture, so colourings of the other buildings still reach the variant.

use std::collections::HashMap;

use bevy::camera::Viewport;
use bevy::camera::visibility::RenderLayers;
use bevy::math::{DVec2, DVec3, IVec2};
use bevy::prelude::*;
use bevy::render::render_resource::Extent3d;
use tvilling_city::import::Polygon2;
use tvilling_city::mesh::{MeshData, extrude};
use tvilling_city::model::CityTile;
use tvilling_city::tiles::{TILE_SIZE_M, tile_key};
use tvilling_geo::WorldPosition;
use tvilling_sensors::simulate::SimLook;
use tvilling_sensors::state::{
    AirQualityState, Health, LampState, Liveness, MeterState, SignalHeadState,
};
use tvilling_twin::scenario::draft::ScenarioDraft;
use tvilling_twin::scenario::shown::{ShowMode, ShownScenarios};

use crate::ViewSystems;
use crate::camera::OrbitCamera;
use crate::devices::{MarkerChunk, marker_color};
use crate::layers::{ColourBy, difference_colour};
use crate::tiles::{
    COLOR_TEXTURE_WIDTH, CityMaterial, CityParams, TileDrawing, texel, to_bevy_mesh,
};

/// Drawn for every camera: buildings, ground cover, the ground.
pub const SHARED_LAYER: usize = 0;
/// Scenario A's and B's markers and re-meshed tiles.
pub const SIDE_LAYERS: [usize; 2] = [1, 2];
/// The twin's own markers, and tiles a side has re-meshed: the live view only.
pub const LIVE_LAYER: usize = 3;

/// The colour of a planned building (not yet built): a light blue, apart from every colouring.
pub const PLANNED: Color = Color::srgb(0.42, 0.68, 0.96);

/// The layers the main camera sees in the live view.
pub fn live_layers() -> RenderLayers {
    RenderLayers::from_layers(&[SHARED_LAYER, LIVE_LAYER])
}

fn side_layers(side: usize) -> RenderLayers {
    RenderLayers::from_layers(&[SHARED_LAYER, SIDE_LAYERS[side]])
}

/// The right-hand camera of the split view (scenario B), following the main camera.
#[derive(Component, Debug)]
pub struct SplitCamera;

/// A marker chunk's sibling drawn for one side.
#[derive(Component, Debug, Clone)]
pub struct SideChunk {
    pub side: usize,
    /// The twin's own chunk, whose mesh and members it shares.
    pub of: Entity,
    colors: Handle<Image>,
    material: Handle<CityMaterial>,
}

/// A tile re-meshed with one side's planned buildings.
#[derive(Component, Debug, Clone)]
pub struct PlannedTile {
    pub side: usize,
    /// The tile it stands in for (`None`: no tile there, the planned buildings stand alone).
    pub of: Option<Entity>,
    /// Triangles of the planned buildings added.
    pub added_triangles: usize,
}

/// Draws the scenarios shown.
#[derive(Default)]
pub struct ScenarioViewPlugin;

impl Plugin for ScenarioViewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ShownScenarios>().add_systems(
            Update,
            (
                arrange_cameras,
                side_chunks,
                colour_sides,
                planned_tiles,
                draft_preview,
            )
                .chain()
                .after(crate::camera::place_camera)
                .after(crate::devices::place_markers)
                .in_set(ViewSystems::Draw),
        );
    }
}

/// The physical size of the window, when there is one.
fn window_size(windows: &Query<&Window>) -> Option<UVec2> {
    windows.iter().next().map(|w| w.physical_size())
}

/// The mode drawn: the one asked for once a comparison is there, else live.
fn drawn_mode(shown: &ShownScenarios) -> ShowMode {
    if shown.sides.is_some() {
        shown.mode
    } else {
        ShowMode::Live
    }
}

/// Main camera's layers and viewport by mode; the split camera made, placed and removed.
#[allow(clippy::type_complexity)]
fn arrange_cameras(
    mut commands: Commands,
    shown: Res<ShownScenarios>,
    windows: Query<&Window>,
    mut main: Query<
        (
            &mut Camera,
            &mut OrbitCamera,
            &Transform,
            &Projection,
            &mut RenderLayers,
        ),
        Without<SplitCamera>,
    >,
    mut split: Query<(Entity, &mut Camera, &mut Transform, &mut Projection), With<SplitCamera>>,
    mut was_split: Local<bool>,
) {
    let Ok((mut camera, mut orbit, transform, projection, mut layers)) = main.single_mut() else {
        return;
    };
    let mode = drawn_mode(&shown);
    // Each half is half as wide: the camera steps back on splitting, so each half shows the
    // width the whole window did, and forward again after.
    if (mode == ShowMode::Split) != *was_split {
        *was_split = mode == ShowMode::Split;
        orbit.zoom(if *was_split { 2.0 } else { 0.5 });
    }
    let want = match mode {
        ShowMode::Live => live_layers(),
        ShowMode::A | ShowMode::Split => side_layers(0),
        ShowMode::B => side_layers(1),
    };
    if *layers != want {
        *layers = want;
    }
    let size = window_size(&windows).unwrap_or(UVec2::new(1280, 720));
    let half = UVec2::new((size.x / 2).max(1), size.y.max(1));
    let left = (mode == ShowMode::Split).then(|| Viewport {
        physical_position: UVec2::ZERO,
        physical_size: half,
        ..default()
    });
    let rect = |v: &Option<Viewport>| v.as_ref().map(|v| (v.physical_position, v.physical_size));
    if rect(&camera.viewport) != rect(&left) {
        camera.viewport = left;
    }
    let right = Viewport {
        physical_position: UVec2::new(size.x - half.x, 0),
        physical_size: half,
        ..default()
    };
    match (mode == ShowMode::Split, split.single_mut()) {
        (true, Ok((_, mut cam, mut t, mut p))) => {
            let right = Some(right);
            if rect(&cam.viewport) != rect(&right) {
                cam.viewport = right;
            }
            *t = *transform;
            *p = projection.clone();
        }
        (true, Err(_)) => {
            commands.spawn((
                Name::new("split camera (scenario B)"),
                SplitCamera,
                Camera3d::default(),
                Camera {
                    order: 1,
                    viewport: Some(right),
                    ..default()
                },
                *transform,
                projection.clone(),
                bevy::core_pipeline::tonemapping::Tonemapping::None,
                Msaa::Sample4,
                side_layers(1),
            ));
        }
        (false, Ok((e, ..))) => commands.entity(e).despawn(),
        (false, Err(_)) => {}
    }
}

/// The colour a device shows under a side: its look (as its live state would colour it), or
/// its energy difference under [`ColourBy::Difference`]; `None` (grey) where the side does not
/// simulate it.
pub fn side_colour(look: Option<SimLook>, difference: Option<Option<f64>>, scale: f64) -> Color {
    if let Some(d) = difference {
        return difference_colour(d, scale);
    }
    let Some(look) = look else {
        return marker_color(&Liveness::default(), None, None, None, None);
    };
    let live = Liveness {
        health: Health::Live,
        ..Default::default()
    };
    match look {
        SimLook::Signal(aspect) => marker_color(
            &live,
            Some(&SignalHeadState {
                aspect,
                ..Default::default()
            }),
            None,
            None,
            None,
        ),
        SimLook::Lamp(l) => {
            let live = Liveness {
                health: if l.fault { Health::Fault } else { Health::Live },
                ..Default::default()
            };
            marker_color(
                &live,
                None,
                Some(&LampState {
                    on: l.on,
                    dim_pct: l.dim_pct,
                    power_w: l.power_w,
                    fault: l.fault,
                }),
                None,
                None,
            )
        }
        SimLook::Meter { power_kw } => marker_color(
            &live,
            None,
            None,
            None,
            Some(&MeterState {
                power_kw,
                ..Default::default()
            }),
        ),
        SimLook::Air { no2 } => marker_color(
            &live,
            None,
            None,
            Some(&AirQualityState {
                no2: Some(no2),
                ..Default::default()
            }),
            None,
        ),
    }
}

/// One sibling per side for every marker chunk, once a comparison is there (made again when
/// the chunk is rebuilt).
fn side_chunks(
    mut commands: Commands,
    shown: Res<ShownScenarios>,
    chunks: Query<(Entity, Ref<MarkerChunk>, &Mesh3d, &WorldPosition)>,
    siblings: Query<(Entity, &SideChunk)>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) {
    if shown.sides.is_none() {
        return;
    }
    let mut have: HashMap<(Entity, usize), Entity> = HashMap::new();
    for (e, s) in &siblings {
        if chunks.get(s.of).is_ok_and(|(_, c, ..)| !c.is_changed()) {
            have.insert((s.of, s.side), e);
        } else {
            commands.entity(e).despawn();
        }
    }
    for (chunk, marker, mesh, pos) in &chunks {
        for (side, layer) in SIDE_LAYERS.into_iter().enumerate() {
            if have.contains_key(&(chunk, side)) {
                continue;
            }
            let rows = (marker.members.len() as u32)
                .div_ceil(COLOR_TEXTURE_WIDTH)
                .max(1);
            let image = Image::new_fill(
                Extent3d {
                    width: COLOR_TEXTURE_WIDTH,
                    height: rows,
                    depth_or_array_layers: 1,
                },
                bevy::render::render_resource::TextureDimension::D2,
                &texel(Color::srgb(0.62, 0.62, 0.62)),
                bevy::render::render_resource::TextureFormat::Rgba8UnormSrgb,
                bevy::asset::RenderAssetUsages::default(),
            );
            let colors = images.add(image);
            let material = materials.add(CityMaterial {
                params: CityParams::default(),
                colors: colors.clone(),
            });
            commands.spawn((
                Name::new(format!(
                    "{:?} markers {} (side {side})",
                    marker.kind, marker.key
                )),
                SideChunk {
                    side,
                    of: chunk,
                    colors,
                    material: material.clone(),
                },
                *pos,
                mesh.clone(),
                MeshMaterial3d(material),
                RenderLayers::layer(layer),
            ));
        }
    }
}

/// Recolours each side's markers when the moment, the colouring or the chunks change.
#[allow(clippy::too_many_arguments)]
fn colour_sides(
    shown: Res<ShownScenarios>,
    by: Res<ColourBy>,
    layers: Res<crate::layers::Layers>,
    new: Query<(), Added<SideChunk>>,
    mut siblings: Query<(&SideChunk, &mut Visibility)>,
    chunks: Query<&MarkerChunk>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    mut last: Local<Option<(Option<i64>, u64, ColourBy)>>,
) {
    let Some(sides) = shown.sides.as_ref() else {
        return;
    };
    let key = (shown.looked_at_ms, shown.comparison, *by);
    if layers.is_changed() || !new.is_empty() {
        for (s, mut vis) in &mut siblings {
            let on = chunks.get(s.of).is_ok_and(|c| layers.shows(c.kind));
            vis.set_if_neq(if on {
                Visibility::Inherited
            } else {
                Visibility::Hidden
            });
        }
    }
    if *last == Some(key) && new.is_empty() {
        return;
    }
    *last = Some(key);
    let scale = shown.largest_difference();
    for (s, _) in &siblings {
        let Ok(chunk) = chunks.get(s.of) else {
            continue;
        };
        let Some(mut image) = images.get_mut(&s.colors) else {
            continue;
        };
        let Some(data) = image.data.as_mut() else {
            continue;
        };
        for (i, e) in chunk.members.iter().enumerate() {
            let difference =
                (*by == ColourBy::Difference).then(|| shown.difference.get(e).copied());
            let c = side_colour(sides[s.side].look(*e), difference, scale);
            if let Some(px) = data.get_mut(i * 4..i * 4 + 4) {
                px.copy_from_slice(&texel(c));
            }
        }
        materials.get_mut(&s.material);
    }
}

/// The tile a point stands in.
fn key_of(p: DVec2) -> IVec2 {
    tile_key(p, TILE_SIZE_M)
}

/// The planned buildings of each side joined to their tiles (made again for each comparison).
#[allow(clippy::too_many_arguments)]
fn planned_tiles(
    mut commands: Commands,
    shown: Res<ShownScenarios>,
    mut done: Local<u64>,
    old: Query<Entity, With<PlannedTile>>,
    tiles: Query<(Entity, &CityTile, &WorldPosition, Option<&TileDrawing>)>,
    layered: Query<Entity, (With<CityTile>, With<RenderLayers>)>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) {
    let Some(sides) = shown.sides.as_ref() else {
        return;
    };
    if *done == shown.comparison {
        return;
    }
    *done = shown.comparison;
    // The last comparison's variants go; every tile is drawn for every camera again.
    for e in &old {
        commands.entity(e).despawn();
    }
    for e in &layered {
        commands.entity(e).remove::<RenderLayers>();
    }
    let by_key: HashMap<IVec2, Entity> = tiles.iter().map(|(e, t, ..)| (t.key, e)).collect();
    // Each side's buildings by the tile they stand in.
    let mut per_tile: HashMap<IVec2, [Vec<usize>; 2]> = HashMap::new();
    for (side, s) in sides.iter().enumerate() {
        for (i, b) in s.buildings.iter().enumerate() {
            let n = b.ring.len().max(1) as f64;
            let c = b.ring.iter().fold(DVec2::ZERO, |a, p| a + *p) / n;
            per_tile.entry(key_of(c)).or_default()[side].push(i);
        }
    }
    for (key, members) in per_tile {
        let tile = by_key.get(&key).and_then(|&e| tiles.get(e).ok());
        let origin = DVec3::new(
            (f64::from(key.x) + 0.5) * TILE_SIZE_M,
            (f64::from(key.y) + 0.5) * TILE_SIZE_M,
            0.0,
        );
        let origin = tile.map_or(origin, |(_, _, p, ..)| p.0);
        let first = tile.map_or(0, |(_, t, ..)| t.buildings.len());
        // Texels past the tile's buildings: A's planned buildings first, then B's.
        let needed = first + members[0].len() + members[1].len();
        let (colors, material) = match tile.and_then(|(.., d)| d.cloned()) {
            Some(d) => (d.colors, d.material),
            None => {
                let colors = images.add(Image::new_fill(
                    Extent3d {
                        width: COLOR_TEXTURE_WIDTH,
                        height: 1,
                        depth_or_array_layers: 1,
                    },
                    bevy::render::render_resource::TextureDimension::D2,
                    &texel(PLANNED),
                    bevy::render::render_resource::TextureFormat::Rgba8UnormSrgb,
                    bevy::asset::RenderAssetUsages::default(),
                ));
                let material = materials.add(CityMaterial {
                    params: CityParams::default(),
                    colors: colors.clone(),
                });
                (colors, material)
            }
        };
        grow_colours(&mut images, &colors, needed);
        let mut index = first;
        for (side, list) in members.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let mut mesh = tile.map_or_else(MeshData::default, |(_, t, ..)| t.mesh.clone());
            let before = mesh.triangle_count();
            for &i in list {
                let b = &sides[side].buildings[i];
                let poly = Polygon2 {
                    outer: b.ring.clone(),
                    holes: Vec::new(),
                };
                extrude(&[poly], 0.0, b.height_m, origin, index as u32, &mut mesh);
                crate::tiles::write_texel(&mut images, &colors, index as u32, PLANNED);
                index += 1;
            }
            commands.spawn((
                Name::new(format!("tile {key} with side {side}'s planned buildings")),
                PlannedTile {
                    side,
                    of: tile.map(|(e, ..)| e),
                    added_triangles: mesh.triangle_count() - before,
                },
                WorldPosition(origin),
                Mesh3d(meshes.add(to_bevy_mesh(&mesh))),
                MeshMaterial3d(material.clone()),
                RenderLayers::layer(SIDE_LAYERS[side]),
            ));
        }
        materials.get_mut(&material);
        // The original tile stays for the live view and for a side without planned
        // buildings here.
        if let Some((e, ..)) = tile {
            let mut keep = vec![LIVE_LAYER];
            keep.extend(
                (0..2)
                    .filter(|&s| members[s].is_empty())
                    .map(|s| SIDE_LAYERS[s]),
            );
            commands.entity(e).insert(RenderLayers::from_layers(&keep));
        }
    }
}

/// The footprint being drawn, in the planned colour: a post at each corner, and the
/// footprint's slab once it has three.
#[derive(Component, Debug)]
pub struct DraftPreview {
    pub corners: usize,
}

fn draft_preview(
    mut commands: Commands,
    draft: Option<Res<ScenarioDraft>>,
    old: Query<Entity, With<DraftPreview>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
) {
    let Some(draft) = draft else {
        return;
    };
    if !draft.is_changed() {
        return;
    }
    for e in &old {
        commands.entity(e).despawn();
    }
    let Some(corners) = draft.drawing.as_ref().filter(|c| !c.is_empty()) else {
        return;
    };
    let origin = DVec3::new(corners[0].x, corners[0].y, 0.0);
    let mut mesh = MeshData::default();
    for c in corners {
        let post = Polygon2 {
            outer: [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
                .iter()
                .map(|(x, y)| *c + DVec2::new(*x, *y))
                .collect(),
            holes: Vec::new(),
        };
        extrude(&[post], 0.0, 12.0, origin, 0, &mut mesh);
    }
    if corners.len() >= 3 {
        let slab = Polygon2 {
            outer: corners.clone(),
            holes: Vec::new(),
        };
        extrude(&[slab], 0.0, 1.0, origin, 0, &mut mesh);
    }
    commands.spawn((
        Name::new("footprint being drawn"),
        DraftPreview {
            corners: corners.len(),
        },
        WorldPosition(origin),
        Mesh3d(meshes.add(to_bevy_mesh(&mesh))),
        MeshMaterial3d(crate::tiles::palette_material(
            &[PLANNED],
            &mut images,
            &mut materials,
        )),
    ));
}

/// Makes a colour texture hold at least `texels` texels (rows added, the old ones kept).
fn grow_colours(images: &mut Assets<Image>, colors: &Handle<Image>, texels: usize) {
    let Some(mut image) = images.get_mut(colors) else {
        return;
    };
    let rows = (texels as u32).div_ceil(COLOR_TEXTURE_WIDTH).max(1);
    if rows <= image.height() {
        return;
    }
    let mut data = image.data.clone().unwrap_or_default();
    data.resize((COLOR_TEXTURE_WIDTH * rows * 4) as usize, 255);
    image.resize(Extent3d {
        width: COLOR_TEXTURE_WIDTH,
        height: rows,
        depth_or_array_layers: 1,
    });
    image.data = Some(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy::ecs::system::RunSystemOnce;
    use std::sync::Arc;
    use tvilling_city::mesh::MeshData;
    use tvilling_sensors::simulate::{BuildingUse, LampNow, Simulator};
    use tvilling_twin::scenario::shown::{PlannedBuilding, ShownSide};

    fn side(name: &str, buildings: Vec<PlannedBuilding>) -> ShownSide {
        let sim = Arc::new(Simulator {
            seed: 1,
            devices: Vec::new(),
        });
        ShownSide::new(name.into(), sim, HashMap::new(), buildings)
    }

    /// A 30 x 20 m block in tile (0, 0), 18 m high.
    fn block() -> PlannedBuilding {
        PlannedBuilding {
            name: "Block".into(),
            ring: vec![
                DVec2::new(40.0, 40.0),
                DVec2::new(70.0, 40.0),
                DVec2::new(70.0, 60.0),
                DVec2::new(40.0, 60.0),
            ],
            height_m: 18.0,
            building_use: BuildingUse::Offices,
        }
    }

    fn shown(mode: ShowMode, b: Vec<PlannedBuilding>) -> ShownScenarios {
        ShownScenarios {
            mode,
            sides: Some([side("A", Vec::new()), side("B", b)]),
            comparison: 1,
            ..Default::default()
        }
    }

    #[test]
    fn a_planned_building_re_meshes_its_own_tile_for_its_side_only() {
        let mut world = World::new();
        world.init_resource::<Assets<Mesh>>();
        world.init_resource::<Assets<Image>>();
        world.init_resource::<Assets<CityMaterial>>();
        world.insert_resource(shown(ShowMode::Split, vec![block()]));
        // Two tiles, each with one building already (a 1 m box's worth of triangles).
        let mut mesh = MeshData::default();
        let unit = Polygon2 {
            outer: vec![
                DVec2::new(0.0, 0.0),
                DVec2::new(10.0, 0.0),
                DVec2::new(10.0, 10.0),
                DVec2::new(0.0, 10.0),
            ],
            holes: Vec::new(),
        };
        extrude(&[unit], 0.0, 10.0, DVec3::ZERO, 0, &mut mesh);
        let before = mesh.triangle_count();
        let colors = world.resource_mut::<Assets<Image>>().add(Image::new_fill(
            Extent3d {
                width: COLOR_TEXTURE_WIDTH,
                height: 1,
                depth_or_array_layers: 1,
            },
            bevy::render::render_resource::TextureDimension::D2,
            &[9, 9, 9, 255],
            bevy::render::render_resource::TextureFormat::Rgba8UnormSrgb,
            bevy::asset::RenderAssetUsages::default(),
        ));
        let material = world
            .resource_mut::<Assets<CityMaterial>>()
            .add(CityMaterial {
                params: CityParams::default(),
                colors: colors.clone(),
            });
        let spawn_tile = |world: &mut World, key: IVec2| {
            let building = world.spawn_empty().id();
            world
                .spawn((
                    CityTile {
                        key,
                        mesh: mesh.clone(),
                        buildings: vec![building],
                        parts: Vec::new(),
                    },
                    WorldPosition(DVec3::new(
                        (f64::from(key.x) + 0.5) * TILE_SIZE_M,
                        (f64::from(key.y) + 0.5) * TILE_SIZE_M,
                        0.0,
                    )),
                    TileDrawing {
                        colors: colors.clone(),
                        material: material.clone(),
                    },
                ))
                .id()
        };
        let here = spawn_tile(&mut world, IVec2::new(0, 0));
        let other = spawn_tile(&mut world, IVec2::new(1, 0));
        world.run_system_once(planned_tiles).expect("run");
        let mut q = world.query::<(&PlannedTile, &RenderLayers, &Mesh3d)>();
        let variants: Vec<_> = q.iter(&world).collect();
        assert_eq!(variants.len(), 1, "one side, one tile");
        let (variant, layers, mesh3d) = variants[0];
        assert_eq!((variant.side, variant.of), (1, Some(here)));
        assert_eq!(*layers, RenderLayers::layer(SIDE_LAYERS[1]));
        // A box: two roof triangles and eight wall triangles, added to the tile's own.
        assert_eq!(variant.added_triangles, 10);
        let uploaded = world
            .resource::<Assets<Mesh>>()
            .get(&mesh3d.0)
            .expect("mesh")
            .indices()
            .expect("indices")
            .len();
        assert_eq!(uploaded, (before + 10) * 3);
        // The original tile is for the live view and side A; the other tile is untouched.
        assert_eq!(
            world.get::<RenderLayers>(here),
            Some(&RenderLayers::from_layers(&[LIVE_LAYER, SIDE_LAYERS[0]]))
        );
        assert_eq!(world.get::<RenderLayers>(other), None);
        // Its colour is the texel after the tile's one building, in the tile's own texture.
        let image = world.resource::<Assets<Image>>().get(&colors).expect("img");
        let data = image.data.as_ref().expect("data");
        assert_eq!(data[4..8], texel(PLANNED));
        assert_eq!(
            data[0..4],
            [9, 9, 9, 255],
            "the tile's building keeps its colour"
        );
        // Done once per comparison.
        world.run_system_once(planned_tiles).expect("run");
        assert_eq!(world.query::<&PlannedTile>().iter(&world).count(), 1);
    }

    #[test]
    fn split_view_halves_the_window_between_two_locked_cameras() {
        let mut app = App::new();
        app.insert_resource(shown(ShowMode::Split, Vec::new()))
            .add_systems(Update, arrange_cameras);
        let main = app
            .world_mut()
            .spawn((
                OrbitCamera::default(),
                Camera::default(),
                Transform::from_xyz(1.0, 2.0, 3.0),
                Projection::default(),
                live_layers(),
            ))
            .id();
        app.update();
        app.update();
        let mut q = app
            .world_mut()
            .query_filtered::<(&Camera, &Transform, &RenderLayers), With<SplitCamera>>();
        let (right, t, layers) = q.single(app.world()).expect("a split camera");
        let vp = right.viewport.as_ref().expect("viewport");
        // No window here: 1280 x 720 is assumed.
        assert_eq!(
            (vp.physical_position, vp.physical_size),
            (UVec2::new(640, 0), UVec2::new(640, 720))
        );
        assert_eq!(
            *t,
            Transform::from_xyz(1.0, 2.0, 3.0),
            "locked to the main camera"
        );
        assert_eq!(*layers, side_layers(1));
        let world = app.world();
        let left = world
            .get::<Camera>(main)
            .and_then(|c| c.viewport.clone())
            .expect("left");
        assert_eq!(
            (left.physical_position, left.physical_size),
            (UVec2::ZERO, UVec2::new(640, 720))
        );
        assert_eq!(world.get::<RenderLayers>(main), Some(&side_layers(0)));
        assert_eq!(
            world.get::<OrbitCamera>(main).map(|c| c.distance),
            Some(3000.0)
        );
        // Back to the twin's own state: one camera, the whole window, the live layers.
        app.world_mut().resource_mut::<ShownScenarios>().mode = ShowMode::Live;
        app.update();
        app.update();
        let world = app.world_mut();
        assert_eq!(world.query::<&SplitCamera>().iter(world).count(), 0);
        assert!(
            world
                .get::<Camera>(main)
                .is_some_and(|c| c.viewport.is_none())
        );
        assert_eq!(world.get::<RenderLayers>(main), Some(&live_layers()));
        assert_eq!(
            world.get::<OrbitCamera>(main).map(|c| c.distance),
            Some(1500.0)
        );
        // B alone: the main camera sees B's layer.
        world.resource_mut::<ShownScenarios>().mode = ShowMode::B;
        app.update();
        assert_eq!(app.world().get::<RenderLayers>(main), Some(&side_layers(1)));
    }

    #[test]
    fn a_side_colours_its_devices_by_their_look_or_by_the_difference() {
        let lamp = |dim_pct: f64| {
            Some(SimLook::Lamp(LampNow {
                on: true,
                dim_pct,
                power_w: dim_pct,
                fault: false,
            }))
        };
        let (full, dimmed) = (
            side_colour(lamp(100.0), None, 1.0),
            side_colour(lamp(30.0), None, 1.0),
        );
        assert!(
            full.to_srgba().red > dimmed.to_srgba().red,
            "dimmer is darker"
        );
        let unseen = side_colour(None, None, 1.0);
        assert_eq!(
            unseen,
            marker_color(&Liveness::default(), None, None, None, None)
        );
        // The difference colouring wins over the look: green for less, grey for the same.
        let less = side_colour(lamp(100.0), Some(Some(-2.0)), 2.0).to_srgba();
        assert!(less.green > less.red + 0.3);
        assert_eq!(
            side_colour(lamp(100.0), Some(None), 2.0),
            crate::layers::UNCHANGED
        );
    }
}
