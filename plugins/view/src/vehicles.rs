//! SUMO's vehicles drawn as boxes along their headings, coloured by speed (red when stopped,
//! through amber, to green at 50 km/h and above). All vehicles are one mesh, rebuilt when any of
//! them moves: a few hundred boxes are cheaper to rebuild than to track one by one. Larger than
//! life (7 x 3 m), like the device markers, so that traffic reads from across the city.
//! Each signalled intersection SUMO runs stands as a column whose height is its queue (2.5 m
//! a queued vehicle above a 3 m base), green when nothing waits and red from six vehicles.

use bevy::camera::visibility::RenderLayers;
use bevy::math::{DVec2, DVec3};
use bevy::prelude::*;
use tvilling_city::import::Polygon2;
use tvilling_city::mesh::{MeshData, extrude};
use tvilling_geo::WorldPosition;
use tvilling_twin::sumo::{Intersection, ShownTraffic, Vehicle};

use crate::ViewSystems;
use crate::tiles::{CityMaterial, palette_material, to_bevy_mesh};

/// Speed classes, m/s upper bounds (the last is open).
const SPEED_BINS: [f64; 5] = [0.5, 3.0, 7.0, 11.0, 14.0];

/// The colour of each speed class, stopped first.
pub fn speed_palette() -> [Color; 6] {
    [
        Color::srgb(0.92, 0.10, 0.08),
        Color::srgb(1.00, 0.45, 0.05),
        Color::srgb(1.00, 0.78, 0.10),
        Color::srgb(0.75, 0.90, 0.20),
        Color::srgb(0.30, 0.85, 0.30),
        Color::srgb(0.10, 0.75, 0.45),
    ]
}

/// A vehicle's speed class (index into [`speed_palette`]).
pub fn speed_class(speed: f64) -> u32 {
    SPEED_BINS.iter().take_while(|b| speed >= **b).count() as u32
}

/// The footprint of a vehicle box at `at` heading `angle_deg` (clockwise from north).
pub fn vehicle_footprint(at: DVec2, angle_deg: f64) -> Vec<DVec2> {
    let (len, wid) = (3.5, 1.5);
    let a = angle_deg.to_radians();
    let fwd = DVec2::new(a.sin(), a.cos());
    let side = DVec2::new(fwd.y, -fwd.x);
    vec![
        at - fwd * len - side * wid,
        at + fwd * len - side * wid,
        at + fwd * len + side * wid,
        at - fwd * len + side * wid,
    ]
}

/// The one entity drawing every vehicle.
#[derive(Component, Debug)]
pub struct VehicleBatch {
    pub count: usize,
}

/// Draws SUMO's vehicles.
#[derive(Default)]
pub struct VehiclePlugin;

impl Plugin for VehiclePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            (draw_vehicles, draw_queues).in_set(ViewSystems::Draw),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_vehicles(
    mut commands: Commands,
    changed: Query<(), Or<(Changed<Vehicle>, Changed<WorldPosition>)>>,
    mut removed: RemovedComponents<Vehicle>,
    vehicles: Query<(&Vehicle, &WorldPosition)>,
    shown: Option<Res<ShownTraffic>>,
    batch: Query<Entity, With<VehicleBatch>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    mut material: Local<Option<Handle<CityMaterial>>>,
) {
    let gone = removed.read().count() > 0;
    if changed.is_empty() && !gone && !shown.as_ref().is_some_and(|s| s.is_changed()) {
        return;
    }
    // Playing back: the recorded moment's vehicles; else SUMO's live ones.
    let boxes: Vec<(bevy::math::DVec2, f64, f64)> = match shown.as_ref().and_then(|s| s.0.as_ref())
    {
        Some(rec) => rec
            .vehicles
            .iter()
            .map(|v| (v.position, v.angle_deg, v.speed))
            .collect(),
        None => vehicles
            .iter()
            .map(|(v, p)| (p.0.truncate(), v.angle_deg, v.speed))
            .collect(),
    };
    for e in &batch {
        commands.entity(e).despawn();
    }
    let n = boxes.len();
    if n == 0 {
        return;
    }
    let mean = boxes
        .iter()
        .fold(DVec2::ZERO, |a, (p, ..)| a + *p / n as f64);
    let origin = DVec3::new(mean.x, mean.y, 0.0);
    let mut mesh = MeshData::default();
    for (p, angle, speed) in &boxes {
        let poly = Polygon2 {
            outer: vehicle_footprint(*p, *angle),
            holes: Vec::new(),
        };
        extrude(&[poly], 0.0, 2.5, origin, speed_class(*speed), &mut mesh);
    }
    let material = material
        .get_or_insert_with(|| palette_material(&speed_palette(), &mut images, &mut materials))
        .clone();
    commands.spawn((
        Name::new("vehicles"),
        VehicleBatch { count: n },
        WorldPosition(origin),
        Mesh3d(meshes.add(to_bevy_mesh(&mesh))),
        MeshMaterial3d(material),
        RenderLayers::layer(crate::scenario::LIVE_LAYER),
    ));
}

/// The one entity drawing every intersection's queue.
#[derive(Component, Debug)]
pub struct QueueBatch {
    pub queued: usize,
}

/// A queue column's height, m.
pub fn queue_height(queue: usize) -> f64 {
    3.0 + 2.5 * queue as f64
}

/// A queue's colour class (index into [`speed_palette`]: red is long, green is none).
pub fn queue_class(queue: usize) -> u32 {
    match queue {
        0 => 5,
        1..=2 => 3,
        3..=5 => 1,
        _ => 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_queues(
    mut commands: Commands,
    changed: Query<(), Changed<Intersection>>,
    intersections: Query<(&Intersection, &WorldPosition)>,
    shown: Option<Res<ShownTraffic>>,
    batch: Query<Entity, With<QueueBatch>>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut images: ResMut<Assets<Image>>,
    mut materials: ResMut<Assets<CityMaterial>>,
    mut material: Local<Option<Handle<CityMaterial>>>,
) {
    if changed.is_empty() && !shown.as_ref().is_some_and(|s| s.is_changed()) {
        return;
    }
    for e in &batch {
        commands.entity(e).despawn();
    }
    let Some((_, first)) = intersections.iter().next() else {
        return;
    };
    let origin = DVec3::new(first.0.x, first.0.y, 0.0);
    let mut mesh = MeshData::default();
    let mut queued = 0;
    for (x, p) in &intersections {
        // Playing back: the recorded moment's queue.
        let q = match shown.as_ref().and_then(|s| s.0.as_ref()) {
            Some(rec) => rec.queues.get(&x.controller).copied().unwrap_or(0),
            None => x.queue(),
        };
        queued += q;
        let c = p.0.truncate();
        let h = DVec2::splat(2.5);
        let poly = Polygon2 {
            outer: vec![
                c - h,
                c + DVec2::new(h.x, -h.y),
                c + h,
                c + DVec2::new(-h.x, h.y),
            ],
            holes: Vec::new(),
        };
        extrude(
            &[poly],
            0.0,
            queue_height(q),
            origin,
            queue_class(q),
            &mut mesh,
        );
    }
    let material = material
        .get_or_insert_with(|| palette_material(&speed_palette(), &mut images, &mut materials))
        .clone();
    commands.spawn((
        Name::new("intersection queues"),
        QueueBatch { queued },
        WorldPosition(origin),
        Mesh3d(meshes.add(to_bevy_mesh(&mesh))),
        MeshMaterial3d(material),
        RenderLayers::layer(crate::scenario::LIVE_LAYER),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_fall_into_classes_and_boxes_point_along_the_heading() {
        assert_eq!(speed_class(0.0), 0, "stopped");
        assert_eq!(speed_class(5.0), 2);
        assert_eq!(speed_class(20.0), 5);
        // Heading east (90°): the box is long along x.
        let f = vehicle_footprint(DVec2::new(10.0, 20.0), 90.0);
        let (dx, dy) = ((f[1] - f[0]).x, (f[1] - f[0]).y);
        assert!((dx - 7.0).abs() < 1e-9 && dy.abs() < 1e-9, "{f:?}");
        let centre = f.iter().fold(DVec2::ZERO, |a, p| a + *p) / 4.0;
        assert!((centre - DVec2::new(10.0, 20.0)).length() < 1e-9);
        // Queues: taller and redder with each queued vehicle.
        assert!(queue_height(4) > queue_height(1));
        assert_eq!(
            [0, 2, 4, 9].map(queue_class),
            [5, 3, 1, 0],
            "green, yellow-green, orange, red"
        );
    }
}
