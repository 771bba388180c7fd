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

/// Click picking and selection.
#[derive(Default)]
pub struct PickingPlugin;

impl Plugin for PickingPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<EntityPicked>()
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
    let Ok(ray) = camera.viewport_to_world(cam_gt, cursor) else {
        return;
    };
    let building = if layers.buildings {
        pick_building(tiles.iter(), ray)
    } else {
        None
    };
    let marker = pick_marker(
        markers.iter().filter_map(|(e, d, pos, b)| {
            if !layers.shows(d.kind) {
                return None;
            }
            let (r, _) = marker_shape(d.kind)?;
            let centre = marker_centre(d.kind, pos.0, b)?;
            Some((e, frame.to_render(centre), r))
        }),
        ray,
    );
    let nearest = match (building, marker) {
        (Some(b), Some(m)) => Some(if m.1 <= b.1 { m } else { b }),
        (b, m) => b.or(m),
    };
    picked.write(EntityPicked(nearest.map(|(e, _)| e)));
}

fn apply_pick(mut picks: MessageReader<EntityPicked>, mut selection: ResMut<Selection>) {
    if let Some(EntityPicked(e)) = picks.read().last() {
        selection.entity = *e;
    }
}
