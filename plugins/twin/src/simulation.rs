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
use tvilling_sensors::observation::{FieldValue, Observation};
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::registry::DeviceRegistry;
use tvilling_sensors::replay::Recorder;
use tvilling_sensors::simulate::{
    PACK_SIZE, SIM_VALUES, SimDevice, SimProfile, SimReport, SimReporting, SimValue, Simulator,
    SimulatorRun, sim_field,
};
use tvilling_sensors::update::{Handed, Update};

use crate::binding::{city_layout, register_planned};
use crate::settings::{SimPath, SimSetup};

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
    pub path: SimPath,
    sender: IngestSender,
    recorder: Option<Recorder>,
    /// Each simulated device's slot in the registry's directory (`None`: not registered).
    slots: Vec<Option<u32>>,
    /// This step's reports, kept between frames (a frame allocates nothing).
    reports: Vec<SimReport>,
}

impl SimulatorState {
    /// A sender on the simulator's channel for another stepped source (SUMO).
    pub fn sender_for(&self, name: &str) -> IngestSender {
        self.sender.for_source(name)
    }
}

/// Starts the simulator over `devices` at the twin clock's edge and sets the clock running at
/// the simulator's speed. Its devices' keep-alives come from the health rules in the world.
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
    let rules = world
        .get_resource::<tvilling_sensors::health::HealthRules>()
        .cloned()
        .unwrap_or_default();
    let reporting = reporting(&rules, setup.heartbeat_ms);
    let slots = {
        let registry = world.get_resource_or_init::<DeviceRegistry>();
        let directory = registry.read();
        devices.iter().map(|d| directory.slot(&d.id)).collect()
    };
    world.insert_resource(SimulatorState {
        run: SimulatorRun::new(
            Simulator {
                seed: setup.seed,
                devices,
            },
            start_ms,
            reporting,
        ),
        path: setup.path,
        sender,
        recorder,
        slots,
        reports: Vec::new(),
    });
    info!(
        "simulator started: {n} devices, seed {}, {} reports{}",
        setup.seed,
        match setup.path {
            SimPath::Typed => "typed",
            SimPath::SenMl => "SenML",
        },
        setup.heartbeat_ms.map_or(String::new(), |h| format!(
            ", a heartbeat every {} s",
            h as f64 / 1000.0
        ))
    );
}

/// What the simulator reports besides changes under `rules`: a keep-alive after two of a
/// kind's intervals of silence (health calls a device stale after `stale_factor` of them).
pub fn reporting(
    rules: &tvilling_sensors::health::HealthRules,
    heartbeat_ms: Option<i64>,
) -> SimReporting {
    let kinds = [
        DeviceKind::SignalHead,
        DeviceKind::Lamp,
        DeviceKind::Meter,
        DeviceKind::AirSensor,
    ];
    let allowed = (rules.stale_factor - 1.0).clamp(0.5, 2.0);
    SimReporting {
        heartbeat_ms,
        keep_alive_ms: kinds.map(|k| ((rules.interval_ms(k) as f64 * allowed) as i64).max(1_000)),
    }
}

/// Steps the simulator to the clock's edge and hands its reports to apply in this frame: as
/// typed updates, or (the SenML path) as packs decoded by the SenML codec. A recording, when
/// one runs, gets the reports as SenML packs either way.
pub fn step_simulator(
    clock: Res<TwinClock>,
    mut state: ResMut<SimulatorState>,
    mut input: ResMut<SteppedInput>,
) {
    let state = &mut *state;
    let mut reports = std::mem::take(&mut state.reports);
    reports.clear();
    state.run.step(clock.edge_ms, |r| reports.push(*r));
    let (sender, recorder, sim) = (&state.sender, &state.recorder, &state.run.sim);
    let senml = state.path == SimPath::SenMl;
    if senml || recorder.is_some() {
        for pack in reports.chunks(PACK_SIZE) {
            let Some(last) = pack.last() else {
                continue;
            };
            let payload = sim.senml_pack(pack);
            if let Some(r) = recorder {
                r.record(
                    last.t_ms,
                    "simulator",
                    "simulator",
                    &PayloadFormat::SenMl,
                    &payload,
                );
            }
            if !senml {
                continue;
            }
            match SimulatorRun::decode(&payload, last.t_ms) {
                Ok(obs) => {
                    for o in obs {
                        for problem in &o.problems {
                            sender.stats.reject(problem, "simulator");
                        }
                        input.observations.push(sender.accept(o));
                    }
                }
                Err(e) => sender.stats.refuse(&e, "simulator"),
            }
        }
    }
    if !senml {
        let source = sender.index();
        let mut typed = 0u64;
        let mut pairs = [(tvilling_sensors::registry::Quantity::SignalAspect, 0.0); SIM_VALUES];
        for r in &reports {
            let Some(slot) = state.slots.get(r.device as usize).copied().flatten() else {
                // Not registered: handed over by its id, so apply counts and lists it.
                let id = sim.devices[r.device as usize].id.clone();
                let fields = r.values.iter().map(|(q, v)| {
                    let (name, value) = sim_field(q, v);
                    let value = match value {
                        SimValue::Number(x) => FieldValue::Number(x),
                        SimValue::Bool(b) => FieldValue::Bool(b),
                        SimValue::Text(t) => FieldValue::Text(t.to_string()),
                    };
                    (name.to_string(), value)
                });
                input.observations.push(sender.accept(Observation {
                    device: id,
                    time_ms: Some(r.t_ms),
                    fields: fields.collect(),
                    ..Default::default()
                }));
                continue;
            };
            let first = r.values.iter().next();
            let update = if let (true, Some(value)) = (r.keep_alive, first) {
                Update::keep_alive(slot, source, r.t_ms, value)
            } else {
                let n = r.values.len();
                for (p, qv) in pairs.iter_mut().zip(r.values.iter()) {
                    *p = qv;
                }
                Update::new(slot, source, Some(r.t_ms), &pairs[..n], 0, Vec::new())
            };
            input.updates.push(Handed::Update(update));
            typed += 1;
        }
        sender
            .stats
            .accepted
            .fetch_add(typed, std::sync::atomic::Ordering::Relaxed);
    }
    state.reports = reports;
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
