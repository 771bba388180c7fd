//! Sun, sky and ground. The sun stands where it would over Stockholm at [`SunSettings`]'s time;
//! the tile shader and a directional light follow it.

use bevy::math::DVec3;
use bevy::prelude::*;
use tvilling_city::load::CityLoaded;
use tvilling_geo::WorldPosition;
use tvilling_geo::sun::{STOCKHOLM_LAT_LON, sun_position};

use crate::ViewSystems;
use tvilling_city::mesh::{MeshData, Surface, vertex_tag};
use tvilling_city::model::GroundCover;

use crate::tiles::{CityMaterial, CityParams, palette_material, to_bevy_mesh};

/// Ground, water and park colours.
pub const GROUND: Color = Color::srgb(0.50, 0.52, 0.47);
pub const WATER: Color = Color::srgb(0.36, 0.55, 0.70);
pub const PARK: Color = Color::srgb(0.52, 0.66, 0.42);

/// Where and when the sun is computed.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct SunSettings {
    pub lat: f64,
    pub lon: f64,
    /// UTC time, Unix seconds.
    pub unix_time: i64,
    /// Whether the app moves `unix_time` with the live clock.
    pub follow_clock: bool,
}

impl Default for SunSettings {
    fn default() -> Self {
        Self {
            lat: STOCKHOLM_LAT_LON.0,
            lon: STOCKHOLM_LAT_LON.1,
            // 2026-06-21 12:00 UTC: an early-afternoon midsummer sun.
            unix_time: tvilling_geo::sun::unix_seconds(2026, 6, 21, 12, 0),
            follow_clock: false,
        }
    }
}

impl SunSettings {
    /// Unit vector towards the sun in render space, and its elevation (degrees).
    pub fn direction(&self) -> (Vec3, f64) {
        let s = sun_position(self.lat, self.lon, self.unix_time);
        let az = s.azimuth_deg.to_radians();
        let el = s.elevation_deg.to_radians();
        let d = Vec3::new(
            (az.sin() * el.cos()) as f32,
            el.sin() as f32,
            -(az.cos() * el.cos()) as f32,
        );
        (d.normalize(), s.elevation_deg)
    }

    /// Lighting parameters for the tile shader: full sun above 10 degrees, fading to a dim
    /// blue night below -6 (civil twilight).
    pub fn params(&self) -> CityParams {
        let (dir, elevation) = self.direction();
        let day = ((elevation + 6.0) / 16.0).clamp(0.0, 1.0) as f32;
        let sun_strength = ((elevation / 10.0).clamp(0.0, 1.0) as f32) * 0.75;
        let night = Vec3::new(0.10, 0.12, 0.20);
        let dayamb = Vec3::new(0.42, 0.45, 0.50);
        let ambient = night.lerp(dayamb, day);
        let haze = Vec3::new(0.08, 0.10, 0.16).lerp(Vec3::new(0.72, 0.80, 0.88), day);
        CityParams {
            sun: dir.extend(sun_strength),
            ambient: ambient.extend(0.55),
            haze: haze.extend(12_000.0),
        }
    }

    /// Sky colour for the clear colour.
    pub fn sky(&self) -> Color {
        let h = self.params().haze;
        Color::linear_rgb(h.x, h.y, h.z)
    }
}

/// Marks the sun light.
#[derive(Component)]
pub struct Sun;

/// Marks the ground plane.
#[derive(Component)]
pub struct Ground;

/// Sun, sky and ground.
#[derive(Default)]
pub struct EnvironmentPlugin;

impl Plugin for EnvironmentPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SunSettings>()
            .add_systems(Startup, spawn_sun)
            .add_observer(upload_ground_cover)
            .add_systems(Update, spawn_ground.in_set(ViewSystems::Apply))
            .add_systems(Update, follow_sun.in_set(ViewSystems::Draw));
    }
}

fn spawn_sun(mut commands: Commands) {
    commands.spawn((
        Name::new("sun"),
        Sun,
        DirectionalLight {
            illuminance: 10_000.0,
            shadow_maps_enabled: false,
            ..default()
        },
        Transform::default(),
    ));
}

fn follow_sun(
    sun: Res<SunSettings>,
    mut materials: ResMut<Assets<CityMaterial>>,
    mut lights: Query<&mut Transform, With<Sun>>,
    mut clear: ResMut<ClearColor>,
    new_materials: Query<(), Added<MeshMaterial3d<CityMaterial>>>,
    hmi: Option<Res<crate::devices::HmiPalette>>,
) {
    let grey = hmi.as_ref().is_some_and(|h| h.0);
    if !sun.is_changed() && new_materials.is_empty() && !hmi.is_some_and(|h| h.is_changed()) {
        return;
    }
    let params = sun.params();
    for (_, m) in materials.iter_mut() {
        m.params = params;
    }
    let (dir, _) = sun.direction();
    for mut t in &mut lights {
        *t = Transform::from_translation(dir).looking_at(Vec3::ZERO, Vec3::Y);
    }
    // The HMI palette's background is a plain mid grey, whatever the hour.
    clear.0 = if grey {
        Color::srgb(0.36, 0.37, 0.39)
    } else {
        sun.sky()
    };
}

fn spawn_ground(
    mut loaded: MessageReader<CityLoaded>,
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    old: Query<Entity, With<Ground>>,
) {
    let Some(l) = loaded.read().last() else {
        return;
    };
    for e in &old {
        commands.entity(e).despawn();
    }
    let (lo, hi) = l.bounds;
    let centre = ((lo + hi) * 0.5).with_z(0.0);
    let half = ((hi - lo).truncate().max_element() * 0.5 + 3_000.0) as f32;
    let mut quad = MeshData::default();
    let tag = vertex_tag(0, Surface::Ground);
    let c = [
        Vec3::new(-half, 0.0, -half),
        Vec3::new(half, 0.0, -half),
        Vec3::new(half, 0.0, half),
        Vec3::new(-half, 0.0, half),
    ];
    quad.push_triangle([c[0], c[1], c[2]], Vec3::Y, tag);
    quad.push_triangle([c[0], c[2], c[3]], Vec3::Y, tag);
    commands.spawn((
        Name::new("ground"),
        Ground,
        WorldPosition(DVec3::new(centre.x, centre.y, 0.0)),
        Mesh3d(meshes.add(to_bevy_mesh(&quad))),
        MeshMaterial3d(palette_material(&[GROUND], &mut images, &mut materials)),
    ));
}

fn upload_ground_cover(
    add: On<Add, GroundCover>,
    mut commands: Commands,
    covers: Query<&GroundCover>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    hmi: Option<Res<crate::devices::HmiPalette>>,
) -> Result {
    let cover = covers.get(add.entity)?;
    // Under the HMI palette, water and parks are greys a shade apart.
    let colours = if hmi.is_some_and(|h| h.0) {
        [Color::srgb(0.46, 0.48, 0.51), Color::srgb(0.52, 0.53, 0.51)]
    } else {
        [WATER, PARK]
    };
    let material = palette_material(&colours, &mut images, &mut materials);
    commands.entity(add.entity).insert((
        Mesh3d(meshes.add(to_bevy_mesh(&cover.mesh))),
        MeshMaterial3d(material),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midsummer_noon_sun_is_high_in_the_south_and_midnight_is_dark() {
        let noon = SunSettings {
            unix_time: tvilling_geo::sun::unix_seconds(2026, 6, 21, 10, 48),
            ..default()
        };
        let (d, el) = noon.direction();
        assert!(el > 50.0);
        assert!(d.z > 0.3, "south is +Z: {d:?}");
        let night = SunSettings {
            unix_time: tvilling_geo::sun::unix_seconds(2026, 12, 21, 23, 0),
            ..default()
        };
        assert_eq!(night.params().sun.w, 0.0);
        assert!(night.params().ambient.x < noon.params().ambient.x);
    }
}
