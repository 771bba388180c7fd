//! The simulator in the app: the generated registry once the city has loaded (or the registry
//! file's devices), then the simulator source on the shared ingest channel.

use std::collections::HashMap;

use bevy::math::DVec3;
use bevy::prelude::*;
use tvilling_city::load::LoadProgress;
use tvilling_city::model::{
    Building, CityStreets, StreetLamp, TrafficSignal, TwinEntity, TwinKind,
};
use tvilling_geo::WorldPosition;
use tvilling_sensors::generate::{
    CityLayout, LayoutBuilding, LayoutSignal, LayoutStreet, PlannedDevice, generate_registry,
};
use tvilling_sensors::health::SimClock;
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry};
use tvilling_sensors::replay::Recorder;
use tvilling_sensors::simulate::{
    SimClockSettings, SimDevice, SimProfile, Simulator, SimulatorSource, start_simulator,
};
use tvilling_sensors::state::{Device, DeviceInfo};

use crate::live::{LiveSources, twin_kind};

/// Simulator settings from the command line or config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSetup {
    pub seed: u64,
    pub clock: SimClockSettings,
    /// Extra lamps on a grid around the city (`--extra-lamps`), for measurements.
    pub extra_lamps: usize,
}

/// A simulator waiting for the city: it generates its registry from what loaded.
#[derive(Resource)]
pub struct PendingSimulation {
    pub setup: SimSetup,
    pub sender: IngestSender,
    pub recorder: Option<Recorder>,
}

/// Starts the simulator over `devices` and keeps it (and its clock) in the world.
pub fn start(
    world: &mut World,
    setup: SimSetup,
    devices: Vec<SimDevice>,
    sender: IngestSender,
    recorder: Option<Recorder>,
) -> std::io::Result<()> {
    let n = devices.len();
    let source: SimulatorSource = start_simulator(
        Simulator {
            seed: setup.seed,
            devices,
        },
        setup.clock,
        sender,
        recorder,
    )?;
    world.insert_resource(SimClock(source.clock.clone(), setup.clock.speed));
    world
        .get_resource_or_insert_with(LiveSources::default)
        .simulator = Some(source);
    info!("simulator started: {n} devices, seed {}", setup.seed);
    Ok(())
}

/// Simulated devices for a registry file's devices (profiles from their ids and kinds).
pub fn devices_for_registry(
    seed: u64,
    devices: &[tvilling_sensors::registry_file::DeviceSpec],
) -> Vec<SimDevice> {
    devices
        .iter()
        .map(|d| SimDevice {
            id: d.id.clone(),
            kind: d.kind,
            profile: SimProfile::default_for(seed, &d.id, d.kind),
        })
        .collect()
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
        world
            .resource_mut::<DeviceRegistry>()
            .register(d.id.clone(), d.kind, entity, Vec::new());
        registered += 1;
    }
    registered
}

/// Once the city has loaded: generate the registry, register it, start the simulator.
pub fn start_when_city_loaded(world: &mut World) {
    if !world.resource::<LoadProgress>().is_done() {
        return;
    }
    let Some(pending) = world.remove_resource::<PendingSimulation>() else {
        return;
    };
    let layout = city_layout(world);
    let mut planned = generate_registry(&layout, pending.setup.seed);
    if pending.setup.extra_lamps > 0 {
        let n = layout.buildings.len().max(1) as f64;
        let centre = layout
            .buildings
            .iter()
            .map(|b| b.centroid)
            .fold(bevy::math::DVec2::ZERO, |a, c| a + c)
            / n;
        planned.extend(tvilling_sensors::generate::lamp_grid(
            centre,
            pending.setup.extra_lamps,
            30.0,
            pending.setup.seed,
        ));
    }
    let n = register_planned(world, &planned);
    let count = |k: DeviceKind| planned.iter().filter(|d| d.kind == k).count();
    info!(
        "generated registry: {n} devices ({} signal heads, {} lamps, {} meters, {} air sensors)",
        count(DeviceKind::SignalHead),
        count(DeviceKind::Lamp),
        count(DeviceKind::Meter),
        count(DeviceKind::AirSensor)
    );
    let devices = planned
        .into_iter()
        .map(|d| SimDevice {
            id: d.id,
            kind: d.kind,
            profile: d.profile,
        })
        .collect();
    if let Err(e) = start(
        world,
        pending.setup,
        devices,
        pending.sender,
        pending.recorder,
    ) {
        error!("cannot start the simulator thread: {e}");
    }
}
