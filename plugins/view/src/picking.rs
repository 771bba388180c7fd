//! Clicking a building: a ray from the cursor is tested against each tile's bounds, then its
//! buildings' bounds, then their triangles (CPU, in the tiles' local frames).

use bevy::prelude::*;
use tvilling_city::model::CityTile;

use crate::ViewSystems;
use crate::camera::{OrbitCamera, PointerGesture};

/// A pick from the pointer or a panel: `None` clears the selection.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct EntityPicked(pub Option<Entity>);

/// The selected building (view state, drives the highlight and the inspector).
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct Selection {
    pub building: Option<Entity>,
}

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
    picked.write(EntityPicked(
        pick_building(tiles.iter(), ray).map(|(e, _)| e),
    ));
}

fn apply_pick(mut picks: MessageReader<EntityPicked>, mut selection: ResMut<Selection>) {
    if let Some(EntityPicked(e)) = picks.read().last() {
        selection.building = *e;
    }
}
