//! Clicking anything: a ray from the cursor is tested against each tile's bounds, then its
//! buildings' bounds, then their triangles (CPU, in the tiles' local frames), and against the
//! visible device markers; the nearest hit is selected.

use bevy::prelude::*;
use tvilling_city::model::{Building, CityTile};
use tvilling_geo::{GeoFrame, WorldPosition};
use tvilling_sensors::state::Device;

use crate::ViewSystems;
use crate::camera::OrbitCamera;
use crate::devices::{MarkerSlot, marker_centre, marker_shape, pick_marker};
use crate::gesture::PointerGesture;
use crate::layers::Layers;
pub use crate::selection::{EntityPicked, Selection};
use tvilling_twin::scenario::draft::{DraftRequest, ScenarioDraft};
use tvilling_twin::sumo::{Intersection, Vehicle};

/// Click picking and selection.
#[derive(Default)]
pub struct PickingPlugin;

impl Plugin for PickingPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<EntityPicked>()
            .add_message::<DraftRequest>()
            .init_resource::<Selection>()
            .add_systems(
                Update,
                click_to_pick
                    .in_set(ViewSystems::Pointer)
                    .after(crate::camera::mouse_input),
            )
            .add_systems(Update, apply_pick.in_set(ViewSystems::Apply));
    }
}

/// Nearest building along a render-space ray, with its distance.
pub fn pick_building<'a>(
    tiles: impl Iterator<Item = (&'a CityTile, &'a GlobalTransform)>,
    ray: Ray3d,
) -> Option<(Entity, f32)> {
    let mut best: Option<(Entity, f32)> = None;
    for (tile, gt) in tiles {
        let local_origin = ray.origin - gt.translation();
        if let Some((i, d)) = tile.raycast(local_origin, *ray.direction)
            && best.is_none_or(|(_, bd)| d < bd)
            && let Some(&e) = tile.buildings.get(i)
        {
            best = Some((e, d));
        }
    }
    best
}

fn click_to_pick(
    buttons: Res<ButtonInput<MouseButton>>,
    mut gesture: ResMut<PointerGesture>,
    window: Single<&Window>,
    cameras: Query<(&Camera, &GlobalTransform), With<OrbitCamera>>,
    tiles: Query<(&CityTile, &GlobalTransform)>,
    markers: Query<(Entity, &Device, &WorldPosition, Option<&Building>), With<MarkerSlot>>,
    layers: Res<Layers>,
    frame: Res<GeoFrame>,
    mut picked: MessageWriter<EntityPicked>,
    draft: Option<Res<ScenarioDraft>>,
    mut corners: MessageWriter<DraftRequest>,
    traffic: Query<(Entity, &WorldPosition, Has<Vehicle>), Or<(With<Vehicle>, With<Intersection>)>>,
) {
    if !buttons.just_released(MouseButton::Left) {
        return;
    }
    let was_click = gesture.pressed_at.is_some() && !gesture.dragged;
    gesture.pressed_at = None;
    if !was_click {
        return;
    }
    let (Some(cursor), Ok((camera, cam_gt))) = (window.cursor_position(), cameras.single()) else {
        return;
    };
    let Ok(ray) = camera.viewport_to_world(cam_gt, in_viewport(camera, cursor)) else {
        return;
    };
    // While a footprint is drawn, a click on the ground is its next corner.
    if draft.as_ref().is_some_and(|d| d.drawing.is_some()) {
        if let Some(p) = ground_point(ray, &frame) {
            corners.write(DraftRequest::Corner(p.truncate()));
        }
        return;
    }
    let building = if layers.buildings {
        pick_building(tiles.iter(), ray)
    } else {
        None
    };
    let marker = pick_marker(
        markers
            .iter()
            .filter_map(|(e, d, pos, b)| {
                if !layers.shows(d.kind) {
                    return None;
                }
                let (r, _) = marker_shape(d.kind)?;
                let centre = marker_centre(d.kind, pos.0, b)?;
                Some((e, frame.to_render(centre), r))
            })
            .chain(traffic.iter().map(|(e, pos, vehicle)| {
                // A vehicle's box, or an intersection's queue column (its lower part).
                let (up, r) = if vehicle { (1.25, 3.5) } else { (3.0, 4.0) };
                let centre = bevy::math::DVec3::new(pos.0.x, pos.0.y, up);
                (e, frame.to_render(centre), r)
            })),
        ray,
    );
    let nearest = match (building, marker) {
        (Some(b), Some(m)) => Some(if m.1 <= b.1 { m } else { b }),
        (b, m) => b.or(m),
    };
    picked.write(EntityPicked(nearest.map(|(e, _)| e)));
}

/// The cursor in the camera's viewport. In the split view both halves show the same view, so
/// a click in the right half is taken at the same place in the left.
pub fn in_viewport(camera: &Camera, cursor: Vec2) -> Vec2 {
    match camera.logical_viewport_rect() {
        Some(r) if r.width() > 0.0 => {
            let x = (cursor.x - r.min.x).rem_euclid(r.width());
            Vec2::new(x, cursor.y - r.min.y)
        }
        _ => cursor,
    }
}

/// Where a render-space ray meets the ground (height 0 in the scene's CRS), world coordinates.
pub fn ground_point(ray: Ray3d, frame: &GeoFrame) -> Option<bevy::math::DVec3> {
    let ground_y = frame
        .to_render(bevy::math::DVec3::new(frame.origin.x, frame.origin.y, 0.0))
        .y;
    if ray.direction.y >= -1e-6 {
        return None;
    }
    let t = (ground_y - ray.origin.y) / ray.direction.y;
    (t > 0.0).then(|| frame.to_world(ray.origin + *ray.direction * t))
}

fn apply_pick(mut picks: MessageReader<EntityPicked>, mut selection: ResMut<Selection>) {
    if let Some(EntityPicked(e)) = picks.read().last() {
        selection.entity = *e;
    }
}
