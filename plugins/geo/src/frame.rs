//! The scene frame: scene CRS, floating render origin, and f64 world positions.
//!
//! Axes: render X = easting, render Y = height, render -Z = northing (Bevy is Y-up, right-handed,
//! so north points along -Z and east along +X when looking down).

use bevy::math::{DVec3, Vec3};
use bevy::prelude::*;

use crate::crs::Crs;

/// A position in the scene CRS: x = easting (m), y = northing (m), z = height above the scene's
/// ground datum (m). Kept in f64 so centimetres survive at any distance from the origin.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default, Reflect)]
#[require(Transform)]
pub struct WorldPosition(pub DVec3);

/// The scene's CRS and the floating render origin (a point in that CRS).
#[derive(Resource, Debug, Clone, PartialEq, Reflect)]
pub struct GeoFrame {
    pub crs: Crs,
    /// Easting, northing, height of the render origin.
    pub origin: DVec3,
    /// When the camera focus is farther than this from the origin (m), the origin moves there.
    pub recenter_distance: f64,
}

impl Default for GeoFrame {
    fn default() -> Self {
        Self {
            crs: Crs::SWEREF99_TM,
            origin: DVec3::ZERO,
            recenter_distance: 2_000.0,
        }
    }
}

impl GeoFrame {
    /// Render-space offset (f32) of a world position.
    pub fn to_render(&self, world: DVec3) -> Vec3 {
        let d = world - self.origin;
        Vec3::new(d.x as f32, d.z as f32, -(d.y as f32))
    }

    /// World position of a render-space point.
    pub fn to_world(&self, render: Vec3) -> DVec3 {
        self.origin
            + DVec3::new(
                f64::from(render.x),
                -f64::from(render.z),
                f64::from(render.y),
            )
    }

    /// A direction in render space for a horizontal compass bearing (degrees clockwise from
    /// grid north).
    pub fn bearing_to_render(bearing_deg: f64) -> Vec3 {
        let b = bearing_deg.to_radians();
        Vec3::new(b.sin() as f32, 0.0, -(b.cos() as f32))
    }
}

/// Ask to move the render origin to a world position (e.g. the camera's new focus).
#[derive(Message, Debug, Clone, Copy)]
pub struct RecenterOrigin(pub DVec3);

/// System sets of [`GeoPlugin`], chained in this order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeoSystems {
    /// Moves the origin in answer to [`RecenterOrigin`] messages.
    Recenter,
    /// Writes `Transform::translation` from [`WorldPosition`] for changed positions, or for all
    /// when the origin moved.
    SyncTransforms,
}

/// Keeps render transforms in step with world positions and the floating origin.
#[derive(Default)]
pub struct GeoPlugin;

impl Plugin for GeoPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<GeoFrame>()
            .add_message::<RecenterOrigin>()
            .configure_sets(
                PostUpdate,
                (GeoSystems::Recenter, GeoSystems::SyncTransforms)
                    .chain()
                    .before(TransformSystems::Propagate),
            )
            .add_systems(
                PostUpdate,
                (
                    recenter_origin.in_set(GeoSystems::Recenter),
                    sync_transforms.in_set(GeoSystems::SyncTransforms),
                ),
            );
    }
}

fn recenter_origin(mut requests: MessageReader<RecenterOrigin>, mut frame: ResMut<GeoFrame>) {
    if let Some(RecenterOrigin(target)) = requests.read().last() {
        let moved = DVec3::new(target.x, target.y, frame.origin.z);
        if moved != frame.origin {
            frame.origin = moved;
        }
    }
}

fn sync_transforms(
    frame: Res<GeoFrame>,
    mut positions: Query<(Ref<WorldPosition>, &mut Transform)>,
) {
    let all = frame.is_changed();
    for (pos, mut t) in &mut positions {
        if all || pos.is_changed() {
            t.translation = frame.to_render(pos.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_offsets_stay_precise_far_from_the_origin() {
        let frame = GeoFrame {
            origin: DVec3::new(674_000.0, 6_580_000.0, 0.0),
            ..default()
        };
        // A point 20 km away with centimetre detail.
        let p = DVec3::new(694_000.01, 6_580_000.02, 10.0);
        let r = frame.to_render(p);
        assert_eq!(r, Vec3::new(20_000.01, 10.0, -0.02));
        let back = frame.to_world(r);
        assert!((back - p).length() < 0.005, "{back:?}");
        // Straight f32 of the absolute coordinate would lose the centimetres.
        assert!((p.y as f32 as f64 - p.y).abs() > 0.01);
    }

    #[test]
    fn north_is_minus_z_and_east_is_plus_x() {
        let n = GeoFrame::bearing_to_render(0.0);
        let e = GeoFrame::bearing_to_render(90.0);
        assert!((n - Vec3::NEG_Z).length() < 1e-6);
        assert!((e - Vec3::X).length() < 1e-6);
    }

    #[test]
    fn plugin_moves_transforms_when_the_origin_moves() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins).add_plugins(GeoPlugin);
        app.insert_resource(GeoFrame {
            origin: DVec3::new(1000.0, 2000.0, 0.0),
            ..default()
        });
        let e = app
            .world_mut()
            .spawn(WorldPosition(DVec3::new(1010.0, 2020.0, 5.0)))
            .id();
        app.update();
        let t = app
            .world()
            .get::<Transform>(e)
            .expect("transform")
            .translation;
        assert_eq!(t, Vec3::new(10.0, 5.0, -20.0));

        app.world_mut()
            .write_message(RecenterOrigin(DVec3::new(1010.0, 2000.0, 0.0)));
        app.update();
        let t = app
            .world()
            .get::<Transform>(e)
            .expect("transform")
            .translation;
        assert_eq!(t, Vec3::new(0.0, 5.0, -20.0));
    }
}
