//! The simulator in the twin: over the registry file's devices, or over a registry generated
//! from the city once it has loaded; a source on the shared ingest channel.

use bevy::prelude::*;
use tvilling_city::load::LoadProgress;
use tvilling_sensors::generate::generate_registry;
use tvilling_sensors::health::SimClock;
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::replay::Recorder;
use tvilling_sensors::simulate::{
    SimDevice, SimProfile, Simulator, SimulatorSource, start_simulator,
};

use crate::binding::{city_layout, register_planned};
use crate::settings::SimSetup;
use crate::sources::LiveSources;

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
