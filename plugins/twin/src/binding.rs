//! Binding registered devices to city entities: a device fitted to the building it meters, or
//! an entity of its own at its surveyed position; and what the loaded city offers for placing
//! generated devices (a leaf module).

use std::collections::HashMap;

use bevy::math::DVec3;
use bevy::prelude::*;
use tvilling_city::model::{
    Building, CityStreets, StreetLamp, TrafficSignal, TwinEntity, TwinKind,
};
use tvilling_geo::{Transformer, WorldPosition};
use tvilling_sensors::generate::{
    CityLayout, LayoutBuilding, LayoutSignal, LayoutStreet, PlannedDevice,
};
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::registry_file::DeviceSpec;
use tvilling_sensors::state::{Device, DeviceInfo, register_entity, spawn_registered};

use crate::LiveError;

/// The city entity kind of a device kind.
pub fn twin_kind(kind: DeviceKind) -> TwinKind {
    match kind {
        DeviceKind::SignalHead => TwinKind::SignalHead,
        DeviceKind::Lamp => TwinKind::Lamp,
        DeviceKind::Meter => TwinKind::Meter,
        DeviceKind::AirSensor => TwinKind::AirSensor,
    }
}

/// Spawns the registry file's devices at their positions (WGS 84 to the scene's CRS).
pub fn spawn_devices(
    world: &mut World,
    devices: &[DeviceSpec],
    to_scene: &Transformer,
) -> Result<(), LiveError> {
    for d in devices {
        let (e, n) = to_scene
            .convert(d.lon, d.lat)
            .map_err(|e| LiveError::Position(d.id.clone(), e))?;
        let entity = spawn_registered(world, d.id.clone(), d.kind, d.rule.clone());
        world.entity_mut(entity).insert((
            TwinEntity {
                kind: twin_kind(d.kind),
                id: d.id.clone(),
            },
            WorldPosition(DVec3::new(e, n, 0.0)),
        ));
        if let Some(name) = &d.name {
            world.entity_mut(entity).insert(Name::new(name.clone()));
        }
    }
    Ok(())
}

/// What the loaded city offers for placing devices.
pub fn city_layout(world: &mut World) -> CityLayout {
    let mut layout = CityLayout::default();
    if let Some(streets) = world.get_resource::<CityStreets>() {
        layout.streets = streets
            .0
            .iter()
            .map(|s| LayoutStreet {
                id: s.id.clone(),
                name: s.name.clone(),
                rank: s.class as u8,
                line: s.line.clone(),
            })
            .collect();
    }
    let mut buildings = world.query::<(&TwinEntity, &WorldPosition, &Building)>();
    for (twin, pos, b) in buildings.iter(world) {
        if twin.kind != TwinKind::Building {
            continue;
        }
        let levels = b.levels.unwrap_or((b.height / 3.0).round().max(1.0));
        layout.buildings.push(LayoutBuilding {
            id: twin.id.clone(),
            centroid: b
                .footprint
                .first()
                .map_or(pos.0.truncate(), |p| p.centroid()),
            floor_area_m2: b.area_m2 * levels,
            building_use: b
                .attributes
                .iter()
                .find(|(k, _)| k == "building")
                .map(|(_, v)| v.clone()),
        });
    }
    let mut signals = world.query::<(&TwinEntity, &WorldPosition, &TrafficSignal)>();
    for (twin, pos, s) in signals.iter(world) {
        layout.signals.push(LayoutSignal {
            id: twin.id.clone(),
            position: pos.0.truncate(),
            junction: s.signal_type == tvilling_city::import::SignalType::Junction,
        });
    }
    let mut lamps = world.query_filtered::<(&TwinEntity, &WorldPosition), With<StreetLamp>>();
    for (twin, pos) in lamps.iter(world) {
        layout.lamps.push((twin.id.clone(), pos.0.truncate()));
    }
    // Query order is not stable across runs: sort, so a seed gives one registry.
    layout.buildings.sort_by(|a, b| a.id.cmp(&b.id));
    layout.signals.sort_by(|a, b| a.id.cmp(&b.id));
    layout.lamps.sort_by(|a, b| a.0.cmp(&b.0));
    layout
}

/// Registers planned devices: fitted to their host entity, or spawned as entities of their own.
pub fn register_planned(world: &mut World, planned: &[PlannedDevice]) -> usize {
    let mut by_id: HashMap<String, Entity> = HashMap::new();
    let mut q = world.query::<(Entity, &TwinEntity)>();
    for (e, twin) in q.iter(world) {
        by_id.insert(twin.id.clone(), e);
    }
    let mut registered = 0;
    for d in planned {
        let device = Device {
            id: d.id.clone(),
            kind: d.kind,
        };
        let info = DeviceInfo {
            name: d.name.clone(),
            attributes: d.attributes.clone(),
        };
        let entity = match d.host.as_ref().and_then(|h| by_id.get(h)) {
            Some(&host) => {
                world.entity_mut(host).insert((device, info));
                host
            }
            None => world
                .spawn((
                    Name::new(d.name.clone()),
                    TwinEntity {
                        kind: twin_kind(d.kind),
                        id: d.id.clone(),
                    },
                    WorldPosition(DVec3::new(d.position.x, d.position.y, 0.0)),
                    device,
                    info,
                ))
                .id(),
        };
        register_entity(world, entity, d.id.clone(), d.kind, Vec::new());
        registered += 1;
    }
    registered
}
