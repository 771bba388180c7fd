//! A second view of the same twin: a detail camera close on the selected thing, in a corner of
//! the window, beside the overview the main camera keeps (the control room's two views).
//! Selection, time and state are the twin's own, so the two views never disagree.

use bevy::camera::Viewport;
use bevy::camera::visibility::RenderLayers;
use bevy::prelude::*;
use tvilling_city::model::Building;
use tvilling_geo::{GeoFrame, WorldPosition};

use crate::ViewSystems;
use crate::camera::OrbitCamera;
use crate::selection::Selection;

/// The detail view's place: at the window's bottom left (the control room's left column, under
/// its alarm list), so wide, and as high as what is kept above it leaves, within a share of
/// the window's height. Sizes in logical pixels.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct DetailView {
    pub width_px: f32,
    /// Its height: at least and at most these shares of the window's.
    pub min_height: f32,
    pub max_height: f32,
    /// Kept free above it where the window allows (the panels over it, e.g. an alarm list).
    pub keep_above_px: f32,
    /// Kept free below it (for a status strip).
    pub bottom_px: f32,
}

impl Default for DetailView {
    fn default() -> Self {
        DetailView {
            width_px: 396.0,
            min_height: 0.25,
            max_height: 0.36,
            keep_above_px: 0.0,
            bottom_px: 40.0,
        }
    }
}

impl DetailView {
    /// Its height in a window `window_h` high (both in the same pixels).
    pub fn height_in(&self, window_h: f32, scale: f32) -> f32 {
        let left = window_h - (self.keep_above_px + self.bottom_px) * scale;
        (left / window_h.max(1.0)).clamp(self.min_height, self.max_height) * window_h
    }

    /// Its viewport in a window of `size` physical pixels at `scale` physical pixels per
    /// logical one.
    pub fn viewport(&self, size: UVec2, scale: f32) -> Viewport {
        let w = ((self.width_px * scale) as u32).clamp(1, size.x.max(1));
        let h = (self.height_in(size.y as f32, scale) as u32).clamp(1, size.y.max(1));
        let top = size.y.saturating_sub(h + (self.bottom_px * scale) as u32);
        Viewport {
            physical_position: UVec2::new(0, top),
            physical_size: UVec2::new(w, h),
            ..default()
        }
    }
}

/// The detail view's camera.
#[derive(Component, Debug)]
pub struct DetailCamera;

/// How close the detail view stands (m) and how steeply it looks down (degrees).
pub const DETAIL_DISTANCE_M: f64 = 90.0;
pub const DETAIL_PITCH_DEG: f64 = 40.0;

/// Draws the detail view while [`DetailView`] exists.
pub struct DetailViewPlugin;

impl Plugin for DetailViewPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            follow_selection
                .after(crate::camera::place_camera)
                .in_set(ViewSystems::Draw)
                .run_if(resource_exists::<DetailView>),
        );
    }
}

/// Keeps the detail camera on the selected thing, looking the way the overview looks; idle
/// while nothing is selected.
#[allow(clippy::type_complexity)]
fn follow_selection(
    mut commands: Commands,
    detail: Res<DetailView>,
    selection: Res<Selection>,
    frame: Res<GeoFrame>,
    windows: Query<&Window>,
    things: Query<(&WorldPosition, Option<&Building>)>,
    main: Query<(&OrbitCamera, &RenderLayers), Without<DetailCamera>>,
    mut cameras: Query<(&mut Camera, &mut Transform, &mut RenderLayers), With<DetailCamera>>,
) {
    let Ok((overview, layers)) = main.single() else {
        return;
    };
    let (size, scale) = windows
        .iter()
        .next()
        .map_or((UVec2::new(1280, 720), 1.0), |w| {
            (w.physical_size(), w.scale_factor())
        });
    let viewport = detail.viewport(size, scale);
    let target = selection.entity.and_then(|e| things.get(e).ok());
    let Ok((mut camera, mut transform, mut drawn)) = cameras.single_mut() else {
        commands.spawn((
            Name::new("detail camera"),
            DetailCamera,
            Camera3d::default(),
            Camera {
                order: 2,
                viewport: Some(viewport),
                is_active: false,
                ..default()
            },
            crate::camera::lens(),
            layers.clone(),
        ));
        return;
    };
    let active = target.is_some();
    if camera.is_active != active {
        camera.is_active = active;
    }
    let rect = |v: &Option<Viewport>| v.as_ref().map(|v| (v.physical_position, v.physical_size));
    if rect(&camera.viewport) != rect(&Some(viewport.clone())) {
        camera.viewport = Some(viewport);
    }
    if *drawn != *layers {
        *drawn = layers.clone();
    }
    let Some((pos, building)) = target else {
        return;
    };
    // A building is seen whole; anything else from the detail distance.
    let distance = building.map_or(DETAIL_DISTANCE_M, |b| {
        (b.height.max(b.area_m2.sqrt()) * 4.0).max(DETAIL_DISTANCE_M)
    });
    let mut view = OrbitCamera::default();
    (view.focus, view.distance) = (pos.0.with_z(0.0), distance);
    (view.yaw_deg, view.pitch_deg) = (overview.yaw_deg, DETAIL_PITCH_DEG);
    let (eye, look) = view.eye_and_target(&frame);
    let placed = Transform::from_translation(eye).looking_at(look, Vec3::Y);
    if *transform != placed {
        *transform = placed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_view_sits_bottom_left_above_the_status_strip() {
        let v = DetailView::default().viewport(UVec2::new(1000, 500), 1.0);
        assert_eq!(v.physical_size, UVec2::new(396, 180));
        assert_eq!(v.physical_position, UVec2::new(0, 280));
        // On a screen of two physical pixels per logical one, the same place.
        let v = DetailView::default().viewport(UVec2::new(2000, 1000), 2.0);
        assert_eq!(v.physical_size, UVec2::new(792, 360));
        assert_eq!(v.physical_position, UVec2::new(0, 560));
        // What must stay free above it takes its height, down to a quarter of the window.
        let list = DetailView {
            keep_above_px: 388.0,
            ..default()
        };
        assert_eq!(
            list.viewport(UVec2::new(1000, 500), 1.0).physical_size.y,
            125
        );
        assert_eq!(
            list.viewport(UVec2::new(1000, 1000), 1.0).physical_size.y,
            360
        );
        assert_eq!(
            list.viewport(UVec2::new(1000, 600), 1.0).physical_size.y,
            172
        );
        // A tiny window still gets a view inside it.
        let v = DetailView::default().viewport(UVec2::new(10, 10), 1.0);
        assert!(v.physical_position.x + v.physical_size.x <= 10);
        assert!(v.physical_position.y + v.physical_size.y <= 10);
    }
}
