//! Orbit camera over the city, in world coordinates (f64) so it can fly anywhere; its render
//! transform is relative to the floating origin.
//!
//! Mouse: left-drag orbits, right- or middle-drag pans, wheel zooms, click picks.
//! Keys: W/A/S/D or arrows pan, Q/E turn, T/G tilt, +/- or PageUp/PageDown zoom,
//! Home frames the whole city, F flies to the selected building, N turns north up.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::math::DVec3;
use bevy::prelude::*;
use tvilling_city::load::{CityBounds, CityLoaded};
use tvilling_geo::{GeoFrame, RecenterOrigin, WorldPosition};

use crate::ViewSystems;
use crate::gesture::PointerGesture;
use crate::selection::Selection;

/// Where the camera looks from and at.
#[derive(Component, Debug, Clone, PartialEq)]
#[require(Camera3d)]
pub struct OrbitCamera {
    /// World point looked at (scene CRS).
    pub focus: DVec3,
    /// Metres from the focus.
    pub distance: f64,
    /// Compass bearing the camera looks along (degrees clockwise from grid north).
    pub yaw_deg: f64,
    /// Degrees below the horizon the camera looks down (5 = almost level, 89 = straight down).
    pub pitch_deg: f64,
    flight: Option<Flight>,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        Self {
            focus: DVec3::ZERO,
            distance: 1500.0,
            yaw_deg: 20.0,
            pitch_deg: 45.0,
            flight: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Flight {
    /// Focus, distance, pitch.
    from: (DVec3, f64, f64),
    to: (DVec3, f64, f64),
    t: f32,
}

/// Seconds a fly-to takes.
pub const FLIGHT_SECONDS: f32 = 1.2;

impl OrbitCamera {
    /// Render-space eye position and the focus, given the frame.
    pub fn eye_and_target(&self, frame: &GeoFrame) -> (Vec3, Vec3) {
        let target = frame.to_render(self.focus);
        let look = GeoFrame::bearing_to_render(self.yaw_deg);
        let pitch = self.pitch_deg.to_radians() as f32;
        let back = -look * pitch.cos() + Vec3::Y * pitch.sin();
        (target + back * self.distance as f32, target)
    }

    /// Starts a smooth flight to a focus and distance, keeping the pitch.
    pub fn fly_to(&mut self, focus: DVec3, distance: f64) {
        self.fly_to_view(focus, distance, self.pitch_deg);
    }

    /// Starts a smooth flight to a focus, distance and pitch.
    pub fn fly_to_view(&mut self, focus: DVec3, distance: f64, pitch_deg: f64) {
        self.flight = Some(Flight {
            from: (self.focus, self.distance, self.pitch_deg),
            to: (focus, distance, pitch_deg.clamp(5.0, 89.0)),
            t: 0.0,
        });
    }

    /// Moves the camera `factor` times as far from its focus (and a flight's end too).
    pub fn zoom(&mut self, factor: f64) {
        self.distance *= factor;
        if let Some(f) = &mut self.flight {
            f.from.1 *= factor;
            f.to.1 *= factor;
        }
    }

    pub fn is_flying(&self) -> bool {
        self.flight.is_some()
    }

    /// Advances a flight by `dt` seconds.
    pub fn advance(&mut self, dt: f32) {
        let Some(f) = &mut self.flight else { return };
        f.t = (f.t + dt / FLIGHT_SECONDS).min(1.0);
        let s = f64::from(f.t * f.t * (3.0 - 2.0 * f.t));
        // Rise while flying far so the city stays in view.
        let hop = (f.from.0 - f.to.0).truncate().length() * 0.5 * (std::f64::consts::PI * s).sin();
        self.focus = f.from.0.lerp(f.to.0, s);
        self.distance = f.from.1 + (f.to.1 - f.from.1) * s + hop;
        self.pitch_deg = f.from.2 + (f.to.2 - f.from.2) * s;
        if f.t >= 1.0 {
            (self.focus, self.distance, self.pitch_deg) = f.to;
            self.flight = None;
        }
    }
}

/// Requests to the camera (from keys, panels, tests).
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub enum CameraCommand {
    /// Fly to show the whole loaded city.
    FrameCity,
    /// Fly to a world point, from a distance (m).
    FlyTo { focus: DVec3, distance: f64 },
    /// Fly to an entity with a world position (sized by building height where known).
    FlyToEntity(Entity),
    /// Turn so north is up.
    NorthUp,
}

/// What the overlays need from the camera: its bearing and the ground scale at the focus.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq)]
pub struct ViewInfo {
    pub yaw_deg: f64,
    pub pitch_deg: f64,
    /// Ground metres per logical pixel at the focus.
    pub metres_per_pixel: f64,
    pub focus: DVec3,
}

/// Camera spawning, input and placement.
#[derive(Default)]
pub struct CameraPlugin;

impl Plugin for CameraPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<CameraCommand>()
            .init_resource::<ViewInfo>()
            .init_resource::<PointerGesture>()
            .add_systems(Startup, spawn_camera)
            .add_systems(
                Update,
                (
                    mouse_input.in_set(ViewSystems::Pointer),
                    keyboard_input.in_set(ViewSystems::Keyboard),
                ),
            )
            .add_systems(
                Update,
                (frame_when_loaded, apply_commands)
                    .chain()
                    .in_set(ViewSystems::Apply),
            )
            .add_systems(Update, place_camera.in_set(ViewSystems::Draw));
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Name::new("camera"),
        OrbitCamera::default(),
        lens(),
        crate::scenario::live_layers(),
    ));
}

/// How every 3D view of the city sees: a 45° perspective to 60 km, no tonemapping (the
/// colours are the palette's), 4x multisampling.
pub(crate) fn lens() -> (
    Projection,
    bevy::core_pipeline::tonemapping::Tonemapping,
    Msaa,
) {
    (
        Projection::Perspective(PerspectiveProjection {
            fov: 45f32.to_radians(),
            near: 1.0,
            far: 60_000.0,
            ..default()
        }),
        bevy::core_pipeline::tonemapping::Tonemapping::None,
        Msaa::Sample4,
    )
}

pub(crate) fn mouse_input(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    window: Single<&Window>,
    mut gesture: ResMut<PointerGesture>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    let Ok(mut cam) = cameras.single_mut() else {
        return;
    };
    if buttons.just_pressed(MouseButton::Left) {
        gesture.pressed_at = window.cursor_position();
        gesture.dragged = false;
    }
    if let (Some(start), Some(now)) = (gesture.pressed_at, window.cursor_position())
        && start.distance(now) > 4.0
    {
        gesture.dragged = true;
    }
    let d = motion.delta;
    if d != Vec2::ZERO {
        if buttons.pressed(MouseButton::Left) && gesture.dragged {
            cam.flight = None;
            cam.yaw_deg = (cam.yaw_deg + f64::from(d.x) * 0.3).rem_euclid(360.0);
            cam.pitch_deg = (cam.pitch_deg + f64::from(d.y) * 0.2).clamp(5.0, 89.0);
        } else if buttons.pressed(MouseButton::Right) || buttons.pressed(MouseButton::Middle) {
            cam.flight = None;
            let scale = cam.distance * 0.0015;
            pan(&mut cam, -f64::from(d.x) * scale, f64::from(d.y) * scale);
        }
    }
    if scroll.delta.y != 0.0 {
        let steps = match scroll.unit {
            MouseScrollUnit::Line => f64::from(scroll.delta.y),
            MouseScrollUnit::Pixel => f64::from(scroll.delta.y) / 40.0,
        };
        cam.flight = None;
        cam.distance = (cam.distance * 0.85f64.powf(steps)).clamp(20.0, 40_000.0);
    }
}

/// Moves the focus right and forward (metres) relative to the camera's bearing.
fn pan(cam: &mut OrbitCamera, right: f64, forward: f64) {
    let yaw = cam.yaw_deg.to_radians();
    let fwd = DVec3::new(yaw.sin(), yaw.cos(), 0.0);
    let rgt = DVec3::new(yaw.cos(), -yaw.sin(), 0.0);
    cam.focus += rgt * right + fwd * forward;
}

fn keyboard_input(
    keys: Res<ButtonInput<KeyCode>>,
    time: Res<Time>,
    selection: Res<Selection>,
    mut cameras: Query<&mut OrbitCamera>,
    mut commands: MessageWriter<CameraCommand>,
) {
    let Ok(mut cam) = cameras.single_mut() else {
        return;
    };
    let dt = f64::from(time.delta_secs());
    let speed = cam.distance * 0.8 * dt;
    let axis = |a: &[KeyCode], b: &[KeyCode]| {
        f64::from(u8::from(keys.any_pressed(a.iter().copied())))
            - f64::from(u8::from(keys.any_pressed(b.iter().copied())))
    };
    let right = axis(
        &[KeyCode::KeyD, KeyCode::ArrowRight],
        &[KeyCode::KeyA, KeyCode::ArrowLeft],
    );
    let fwd = axis(
        &[KeyCode::KeyW, KeyCode::ArrowUp],
        &[KeyCode::KeyS, KeyCode::ArrowDown],
    );
    let turn = axis(&[KeyCode::KeyE], &[KeyCode::KeyQ]);
    let tilt = axis(&[KeyCode::KeyT], &[KeyCode::KeyG]);
    let zoom = axis(
        &[KeyCode::Equal, KeyCode::NumpadAdd, KeyCode::PageUp],
        &[KeyCode::Minus, KeyCode::NumpadSubtract, KeyCode::PageDown],
    );
    if right != 0.0 || fwd != 0.0 {
        cam.flight = None;
        pan(&mut cam, right * speed, fwd * speed);
    }
    cam.yaw_deg = (cam.yaw_deg + turn * 60.0 * dt).rem_euclid(360.0);
    cam.pitch_deg = (cam.pitch_deg + tilt * 40.0 * dt).clamp(5.0, 89.0);
    if zoom != 0.0 {
        cam.distance = (cam.distance * (1.0 - zoom * 1.5 * dt).max(0.1)).clamp(20.0, 40_000.0);
    }
    if keys.just_pressed(KeyCode::Home) {
        commands.write(CameraCommand::FrameCity);
    }
    if keys.just_pressed(KeyCode::KeyN) {
        commands.write(CameraCommand::NorthUp);
    }
    if keys.just_pressed(KeyCode::KeyF)
        && let Some(b) = selection.entity
    {
        commands.write(CameraCommand::FlyToEntity(b));
    }
}

/// Distance that shows a square of `extent` metres with a 45-degree field of view.
pub fn distance_for_extent(extent: f64) -> f64 {
    (extent * 0.5 / (22.5f64).to_radians().tan() * 1.1).clamp(60.0, 40_000.0)
}

/// Tilt of the whole-city overview.
pub const OVERVIEW_PITCH_DEG: f64 = 45.0;

/// Distance of the whole-city overview for a city `extent` metres across (seen obliquely, so a
/// little closer than the straight-down framing).
pub fn city_distance(extent: f64) -> f64 {
    distance_for_extent(extent) * 0.8
}

fn frame_when_loaded(
    mut loaded: MessageReader<CityLoaded>,
    mut commands: MessageWriter<CameraCommand>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    for l in loaded.read() {
        // Jump (no flight) to the city on first load.
        let (lo, hi) = l.bounds;
        if let Ok(mut cam) = cameras.single_mut() {
            cam.focus = ((lo + hi) * 0.5).with_z(0.0);
            cam.distance = city_distance((hi - lo).truncate().max_element());
            cam.pitch_deg = OVERVIEW_PITCH_DEG;
            cam.flight = None;
        }
        let _ = &mut commands;
    }
}

fn apply_commands(
    mut commands: MessageReader<CameraCommand>,
    bounds: Res<CityBounds>,
    positions: Query<(&WorldPosition, Option<&tvilling_city::model::Building>)>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    let Ok(mut cam) = cameras.single_mut() else {
        return;
    };
    for c in commands.read() {
        match *c {
            CameraCommand::FrameCity => {
                let centre = ((bounds.min + bounds.max) * 0.5).with_z(0.0);
                let extent = (bounds.max - bounds.min).truncate().max_element();
                cam.fly_to_view(centre, city_distance(extent), OVERVIEW_PITCH_DEG);
            }
            CameraCommand::FlyTo { focus, distance } => cam.fly_to(focus, distance),
            CameraCommand::FlyToEntity(e) => {
                if let Ok((pos, building)) = positions.get(e) {
                    let size = building.map_or(40.0, |b| b.height.max(b.area_m2.sqrt()));
                    // Keep the user's tilt unless it is too flat to see the building from.
                    let pitch = cam.pitch_deg.max(35.0);
                    cam.fly_to_view(
                        pos.0.with_z(0.0),
                        distance_for_extent(size * 3.0).max(120.0),
                        pitch,
                    );
                }
            }
            CameraCommand::NorthUp => cam.yaw_deg = 0.0,
        }
    }
}

pub(crate) fn place_camera(
    time: Res<Time>,
    frame: Res<GeoFrame>,
    windows: Query<&Window>,
    mut info: ResMut<ViewInfo>,
    mut recenter: MessageWriter<RecenterOrigin>,
    mut cameras: Query<(&mut OrbitCamera, &mut Transform, &Projection)>,
) {
    let Ok((mut cam, mut transform, projection)) = cameras.single_mut() else {
        return;
    };
    cam.advance(time.delta_secs());
    let (eye, target) = cam.eye_and_target(&frame);
    *transform = Transform::from_translation(eye).looking_at(target, Vec3::Y);
    if (cam.focus - frame.origin).truncate().length() > frame.recenter_distance {
        recenter.write(RecenterOrigin(cam.focus));
    }
    let height_px = windows
        .iter()
        .next()
        .map_or(720.0, |w| f64::from(w.height()));
    let fov = match projection {
        Projection::Perspective(p) => f64::from(p.fov),
        _ => 45f64.to_radians(),
    };
    *info = ViewInfo {
        yaw_deg: cam.yaw_deg,
        pitch_deg: cam.pitch_deg,
        metres_per_pixel: 2.0 * cam.distance * (fov / 2.0).tan() / height_px.max(1.0),
        focus: cam.focus,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eye_sits_behind_and_above_the_focus() {
        let frame = GeoFrame::default();
        let cam = OrbitCamera {
            focus: DVec3::new(100.0, 200.0, 0.0),
            distance: 100.0,
            yaw_deg: 0.0,
            pitch_deg: 90.0 - 1e-9,
            ..default()
        };
        let (eye, target) = cam.eye_and_target(&frame);
        assert!((eye - target - Vec3::Y * 100.0).length() < 1e-3);
        // Looking north at 45 degrees: the eye is south (+Z) of the focus.
        let cam = OrbitCamera {
            pitch_deg: 45.0,
            ..cam
        };
        let (eye, target) = cam.eye_and_target(&frame);
        assert!(eye.z > target.z && eye.y > target.y);
    }

    #[test]
    fn flight_ends_exactly_at_its_target() {
        let mut cam = OrbitCamera::default();
        cam.fly_to(DVec3::new(500.0, 0.0, 0.0), 300.0);
        assert!(cam.is_flying());
        for _ in 0..200 {
            cam.advance(0.01);
        }
        assert!(!cam.is_flying());
        assert_eq!(cam.focus, DVec3::new(500.0, 0.0, 0.0));
        assert_eq!(cam.distance, 300.0);
        cam.fly_to_view(DVec3::ZERO, 1000.0, 60.0);
        for _ in 0..200 {
            cam.advance(0.01);
        }
        assert_eq!(cam.pitch_deg, 60.0);
    }

    #[test]
    fn f_flies_to_the_selection_without_tilting() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_message::<CameraCommand>()
            .init_resource::<ButtonInput<KeyCode>>()
            .add_systems(Update, keyboard_input);
        let building = app.world_mut().spawn_empty().id();
        app.insert_resource(Selection {
            entity: Some(building),
        });
        let cam = app.world_mut().spawn(OrbitCamera::default()).id();
        app.update();
        // Hold F for several frames, as a person does.
        app.world_mut()
            .resource_mut::<ButtonInput<KeyCode>>()
            .press(KeyCode::KeyF);
        // Collect after every update: messages expire after two updates of the fixed clock,
        // which a busy machine may run between frames.
        let mut commands: Vec<CameraCommand> = Vec::new();
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            app.update();
            app.world_mut()
                .resource_mut::<ButtonInput<KeyCode>>()
                .clear();
            commands.extend(
                app.world_mut()
                    .resource_mut::<Messages<CameraCommand>>()
                    .drain(),
            );
        }
        assert_eq!(commands, vec![CameraCommand::FlyToEntity(building)]);
        let pitch = app
            .world()
            .get::<OrbitCamera>(cam)
            .expect("camera")
            .pitch_deg;
        assert_eq!(pitch, OrbitCamera::default().pitch_deg, "F must not tilt");
        // G tilts down.
        app.world_mut()
            .resource_mut::<ButtonInput<KeyCode>>()
            .press(KeyCode::KeyG);
        std::thread::sleep(std::time::Duration::from_millis(20));
        app.update();
        let pitch = app
            .world()
            .get::<OrbitCamera>(cam)
            .expect("camera")
            .pitch_deg;
        assert!(pitch < OrbitCamera::default().pitch_deg);
    }

    #[test]
    fn panning_follows_the_bearing() {
        let mut cam = OrbitCamera {
            yaw_deg: 90.0,
            ..default()
        };
        pan(&mut cam, 0.0, 10.0);
        assert!(
            (cam.focus - DVec3::new(10.0, 0.0, 0.0)).length() < 1e-9,
            "forward is east when facing east"
        );
    }
}
