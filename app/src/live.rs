//! The live pipeline in the app: registry file, sources, and live values in the snapshot.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bevy::math::DVec3;
use bevy::prelude::*;
use serde_json::{Map, Value, json};
use tvilling_city::model::{TwinEntity, TwinKind};
use tvilling_geo::{Crs, Transformer, WorldPosition};
use tvilling_sensors::apply::{ApplyStats, Ingest, SensorApplyPlugin};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::health::HealthPlugin;
use tvilling_sensors::ingest::{IngestSender, ingest_channel};
use tvilling_sensors::mqtt::{MqttConfig, MqttSource};
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry};
use tvilling_sensors::registry_file::{DeviceSpec, parse_registry};
use tvilling_sensors::replay::{Recorder, ReplaySource, start_replay};
use tvilling_sensors::simulate::{SimClockSettings, SimulatorSource};
use tvilling_sensors::state::{
    AirQualityState, Device, DeviceInfo, LampState, Liveness, MeterState, SignalHeadState,
    device_bundle,
};
use tvilling_sensors::time::format_rfc3339;

use crate::Cli;
use crate::simulation::{self, PendingSimulation, SimSetup};

/// Live sources and devices from the command line.
#[derive(Debug, Clone, Default)]
pub struct LiveSetup {
    pub devices: Vec<DeviceSpec>,
    pub mqtt: Option<MqttConfig>,
    pub replay: Option<(PathBuf, f64)>,
    pub record: Option<PathBuf>,
    /// The built-in simulator: over the registry's devices, or over a registry generated from
    /// the city when there is no registry.
    pub simulate: Option<SimSetup>,
}

impl LiveSetup {
    pub fn from_cli(cli: &Cli) -> Result<LiveSetup> {
        let devices = match &cli.registry {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read registry {}", p.display()))?;
                parse_registry(&text, &p.display().to_string())?
            }
            None => Vec::new(),
        };
        let mqtt = match &cli.mqtt {
            Some(url) => {
                let format = PayloadFormat::from_name(&cli.mqtt_format, None)
                    .ok_or_else(|| anyhow::anyhow!("--mqtt-format {:?}: expected senml, chirpstack, tts, ngsi-ld or sensorthings", cli.mqtt_format))?;
                Some(MqttConfig::from_url(url, format).map_err(|e| anyhow::anyhow!("--mqtt {e}"))?)
            }
            None => None,
        };
        let configured = mqtt.is_some() || cli.replay.is_some();
        let seed = match (cli.simulate, cli.no_simulate, configured) {
            (Some(seed), _, _) => Some(seed),
            (None, false, false) => Some(DEFAULT_SEED),
            _ => None,
        };
        let start_ms = match &cli.sim_start {
            Some(t) => Some(
                tvilling_city::scene::parse_utc_minute(t).ok_or_else(|| {
                    anyhow::anyhow!("--sim-start {t:?}: expected YYYY-MM-DDTHH:MM (UTC)")
                })? * 1000,
            ),
            None => None,
        };
        anyhow::ensure!(
            cli.sim_speed.is_finite() && cli.sim_speed > 0.0,
            "--sim-speed {}: must be a positive number",
            cli.sim_speed
        );
        Ok(LiveSetup {
            devices,
            mqtt,
            replay: cli.replay.clone().map(|p| (p, cli.replay_speed)),
            record: cli.record.clone(),
            simulate: seed.map(|seed| SimSetup {
                seed,
                clock: SimClockSettings {
                    start_ms,
                    speed: cli.sim_speed,
                },
            }),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.mqtt.is_none()
            && self.replay.is_none()
            && self.simulate.is_none()
    }
}

/// The simulator's seed when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// Running sources, kept alive by the app.
#[derive(Resource, Default)]
pub struct LiveSources {
    pub mqtt: Option<MqttSource>,
    pub replay: Option<ReplaySource>,
    pub simulator: Option<SimulatorSource>,
}

pub fn twin_kind(kind: DeviceKind) -> TwinKind {
    match kind {
        DeviceKind::SignalHead => TwinKind::SignalHead,
        DeviceKind::Lamp => TwinKind::Lamp,
        DeviceKind::Meter => TwinKind::Meter,
        DeviceKind::AirSensor => TwinKind::AirSensor,
    }
}

/// Adds the sensor plugins, spawns registered devices and starts the sources.
pub fn add_live(app: &mut App, live: &LiveSetup, crs: Crs) -> Result<()> {
    app.add_plugins((SensorApplyPlugin, HealthPlugin));
    let recorder = match &live.record {
        Some(p) => Some(
            Recorder::create(p)
                .with_context(|| format!("cannot create recording {}", p.display()))?,
        ),
        None => None,
    };
    let mut sources = LiveSources::default();
    // One channel for every source; each sender is named after its source, so diagnostics
    // list exactly the sources that run. With no source (a registry alone), no channel.
    let mut names = Vec::new();
    if live.mqtt.is_some() {
        names.push("mqtt");
    }
    if live.replay.is_some() {
        names.push("replay");
    }
    if live.simulate.is_some() {
        names.push("simulator");
    }
    let mut senders: HashMap<&str, IngestSender> = HashMap::new();
    if let Some(first) = names.first() {
        let (tx, rx) = ingest_channel(65_536, first);
        app.insert_resource(Ingest(rx));
        for name in &names[1..] {
            senders.insert(name, tx.for_source(name));
        }
        senders.insert(first, tx);
    }
    if let (Some(cfg), Some(tx)) = (&live.mqtt, senders.remove("mqtt")) {
        sources.mqtt = Some(MqttSource::start_recording(
            cfg.clone(),
            tx,
            recorder.clone(),
        ));
    }
    if let (Some((path, speed)), Some(tx)) = (&live.replay, senders.remove("replay")) {
        let replay = start_replay(path, *speed, None, tx)
            .with_context(|| format!("cannot open recording {}", path.display()))?;
        sources.replay = Some(replay);
    }
    app.insert_resource(sources);
    let to_scene = Transformer::new(Crs::WGS84, crs)?;
    let world = app.world_mut();
    for d in &live.devices {
        let (e, n) = to_scene
            .convert(d.lon, d.lat)
            .with_context(|| format!("device {}", d.id))?;
        let entity = world
            .spawn((
                device_bundle(d.id.clone(), d.kind),
                TwinEntity {
                    kind: twin_kind(d.kind),
                    id: d.id.clone(),
                },
                WorldPosition(DVec3::new(e, n, 0.0)),
            ))
            .id();
        if let Some(name) = &d.name {
            world.entity_mut(entity).insert(Name::new(name.clone()));
        }
        world.resource_mut::<DeviceRegistry>().register(
            d.id.clone(),
            d.kind,
            entity,
            d.rule.clone(),
        );
    }
    if let (Some(sim), Some(tx)) = (live.simulate, senders.remove("simulator")) {
        if live.devices.is_empty() {
            // No registry: generate one from the city once it has loaded.
            app.insert_resource(PendingSimulation {
                setup: sim,
                sender: tx,
                recorder,
            })
            .add_systems(
                Update,
                simulation::start_when_city_loaded
                    .run_if(resource_exists::<PendingSimulation>)
                    .after(tvilling_city::CitySystems::Spawn),
            );
        } else {
            let devices = simulation::devices_for_registry(sim.seed, &live.devices);
            simulation::start(app.world_mut(), sim, devices, tx, recorder)
                .context("cannot start the simulator thread")?;
        }
    }
    Ok(())
}

/// Adds live values, `health` and `last_seen` to the snapshot's device features and the
/// `diagnostics` foreign member (per source: accepted, rejected per reason, superseded, recent
/// rejections; unknown device ids).
pub fn add_live_to_snapshot(world: &mut World, doc: &mut Value) {
    let mut q = world.query::<(
        &TwinEntity,
        &Device,
        Option<&DeviceInfo>,
        &Liveness,
        Option<&LampState>,
        Option<&MeterState>,
        Option<&AirQualityState>,
        Option<&SignalHeadState>,
    )>();
    let mut live: std::collections::HashMap<String, Map<String, Value>> =
        std::collections::HashMap::new();
    for (twin, device, info, l, lamp, meter, air, signal) in q.iter(world) {
        let mut p = Map::new();
        p.insert("device_id".into(), json!(device.id));
        if let Some(info) = info {
            p.insert("device_name".into(), json!(info.name));
            for (k, v) in &info.attributes {
                p.insert(format!("device_{k}"), json!(v));
            }
        }
        p.insert("health".into(), json!(l.health.as_str()));
        p.insert(
            "last_seen".into(),
            json!(l.last_seen_ms.map(format_rfc3339)),
        );
        p.insert("source".into(), json!(l.source));
        p.insert("fault".into(), json!(l.fault));
        if let Some(s) = lamp {
            p.extend([
                ("on".into(), json!(s.on)),
                ("dim_pct".into(), json!(s.dim_pct)),
                ("power_w".into(), json!(s.power_w)),
                ("lamp_fault".into(), json!(s.fault)),
            ]);
        }
        if let Some(s) = meter {
            p.extend([
                ("power_kw".into(), json!(s.power_kw)),
                ("energy_today_kwh".into(), json!(s.energy_today_kwh)),
                ("heating_kw".into(), json!(s.heating_kw)),
            ]);
        }
        if let Some(s) = air {
            p.extend([
                ("no2_ugm3".into(), json!(s.no2)),
                ("pm10_ugm3".into(), json!(s.pm10)),
                ("pm25_ugm3".into(), json!(s.pm25)),
                ("temperature_c".into(), json!(s.temperature_c)),
            ]);
        }
        if let Some(s) = signal {
            p.extend([
                ("aspect".into(), json!(format!("{:?}", s.aspect))),
                ("aspect_since".into(), json!(format_rfc3339(s.since_ms))),
            ]);
        }
        live.insert(twin.id.clone(), p);
    }
    if let Some(features) = doc.get_mut("features").and_then(Value::as_array_mut) {
        for f in features {
            let id = f["properties"]["id"].as_str().map(str::to_string);
            if let (Some(id), Some(props)) =
                (id, f.get_mut("properties").and_then(Value::as_object_mut))
                && let Some(extra) = live.remove(&id)
            {
                props.extend(extra);
            }
        }
    }
    let mut sources = Map::new();
    if let Some(ingest) = world.get_resource::<Ingest>() {
        let table = ingest
            .0
            .sources
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        for (name, stats) in table {
            let accepted = stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
            sources.insert(
                name,
                json!({
                    "accepted": accepted,
                    "rejected": stats.rejected(),
                    "superseded": stats.superseded.load(std::sync::atomic::Ordering::Relaxed),
                    "last_rejections": stats.last_rejections(),
                }),
            );
        }
    }
    let unknown: Vec<String> = world
        .get_resource::<DeviceRegistry>()
        .map(|r| {
            let mut v: Vec<String> = r.unknown.keys().cloned().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let applied = world
        .get_resource::<ApplyStats>()
        .cloned()
        .unwrap_or_default();
    doc["diagnostics"] = json!({
        "sources": sources,
        "unknown_devices": unknown,
        "applied": applied.applied,
        "out_of_order": applied.out_of_order,
    });
}
