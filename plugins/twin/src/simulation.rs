//! The simulator in the twin: over the registry file's devices, or over a registry generated
//! from the city once it has loaded. A source stepped by the ECS from the twin clock: the
//! same seed, start and steps give the same twin.

use bevy::prelude::*;
use tvilling_city::load::LoadProgress;
use tvilling_sensors::apply::SteppedInput;
use tvilling_sensors::clock::{Edge, TwinClock};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::generate::{PlannedDevice, generate_registry};
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::replay::Recorder;
use tvilling_sensors::simulate::{SimDevice, SimProfile, Simulator, SimulatorRun};

use crate::binding::{city_layout, register_planned};
use crate::settings::SimSetup;

/// A simulator waiting for the city: it generates its registry from what loaded.
#[derive(Resource)]
pub struct PendingSimulation {
    pub setup: SimSetup,
    /// `None`: only generate and register the devices (playback of a recorded twin).
    pub sender: Option<IngestSender>,
    pub recorder: Option<Recorder>,
}

/// Changes to the devices planned for the city, made before they are registered and
/// simulated (a scenario's edits): the lines say what changed; an error stops the run.
#[derive(Resource, Clone)]
pub struct PlanEdits(
    #[allow(clippy::type_complexity)]
    pub  std::sync::Arc<
        dyn Fn(&mut Vec<PlannedDevice>, tvilling_geo::Crs) -> Result<Vec<String>, String>
            + Send
            + Sync,
    >,
);

/// The planned edits were refused (why): nothing was registered or simulated.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct PlanRefused(pub String);

/// What the edits did, once applied.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub struct PlanApplied(pub Vec<String>);

/// The running simulator, stepped each frame to the twin clock's edge.
#[derive(Resource)]
pub struct SimulatorState {
    pub run: SimulatorRun,
    sender: IngestSender,
    recorder: Option<Recorder>,
}

impl SimulatorState {
    /// A sender on the simulator's channel for another stepped source (SUMO).
    pub fn sender_for(&self, name: &str) -> IngestSender {
        self.sender.for_source(name)
    }
}

/// Starts the simulator over `devices` at the twin clock's edge and sets the clock running at
/// the simulator's speed.
pub fn start(
    world: &mut World,
    setup: SimSetup,
    devices: Vec<SimDevice>,
    sender: IngestSender,
    recorder: Option<Recorder>,
) {
    let n = devices.len();
    let mut clock = world.get_resource_or_insert_with(TwinClock::live);
    clock.edge = Edge::Simulated(setup.clock.speed);
    let start_ms = clock.edge_ms;
    world.insert_resource(SimulatorState {
        run: SimulatorRun::new(
            Simulator {
                seed: setup.seed,
                devices,
            },
            start_ms,
        ),
        sender,
        recorder,
    });
    info!("simulator started: {n} devices, seed {}", setup.seed);
}

/// Steps the simulator to the clock's edge: its packs are decoded as SenML (recorded when a
/// recording runs) and handed to apply in this frame.
pub fn step_simulator(
    clock: Res<TwinClock>,
    mut state: ResMut<SimulatorState>,
    mut input: ResMut<SteppedInput>,
) {
    let state = &mut *state;
    let (sender, recorder) = (&state.sender, &state.recorder);
    state.run.step(clock.edge_ms, |payload, t| {
        match SimulatorRun::decode(&payload, t) {
            Ok(obs) => {
                if let Some(r) = recorder {
                    r.record(t, "simulator", "simulator", &PayloadFormat::SenMl, &payload);
                }
                for o in obs {
                    for problem in &o.problems {
                        sender.stats.reject(problem, "simulator");
                    }
                    input.0.push(sender.accept(o));
                }
            }
            Err(e) => sender.stats.refuse(&e, "simulator"),
        }
    });
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
    if let Some(edits) = world.get_resource::<PlanEdits>().cloned() {
        let crs = world
            .get_resource::<tvilling_geo::GeoFrame>()
            .map_or(tvilling_geo::Crs::SWEREF99_TM, |f| f.crs);
        match (edits.0)(&mut planned, crs) {
            Ok(lines) => {
                for line in &lines {
                    info!("scenario: {line}");
                }
                world.insert_resource(PlanApplied(lines));
            }
            Err(reason) => {
                error!("scenario refused: {reason}");
                world.insert_resource(PlanRefused(reason));
                return;
            }
        }
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
    if let Some(sender) = pending.sender {
        start(world, pending.setup, devices, sender, pending.recorder);
    }
}
