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
use tvilling_sensors::health::{HealthPlugin, HealthRules};
use tvilling_sensors::http::{HttpConfig, HttpSource, start_http};
use tvilling_sensors::ingest::{IngestSender, SourceStatus, ingest_channel};
use tvilling_sensors::mqtt::{Connection, MqttConfig, MqttSource};
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry};
use tvilling_sensors::registry_file::{DeviceSpec, parse_registry};
use tvilling_sensors::replay::{Recorder, ReplaySource, start_replay};
use tvilling_sensors::simulate::{SimClockSettings, SimulatorSource};
use tvilling_sensors::state::{
    AirQualityState, Device, DeviceInfo, LampState, Liveness, MeterState, SignalHeadState,
    spawn_registered,
};
use tvilling_sensors::time::format_rfc3339;

use crate::Cli;
use crate::simulation::{self, PendingSimulation, SimSetup};

/// Live sources and devices from the command line and the configuration file.
#[derive(Debug, Clone, Default)]
pub struct LiveSetup {
    pub devices: Vec<DeviceSpec>,
    pub mqtt: Vec<MqttConfig>,
    pub http: Vec<HttpConfig>,
    pub replay: Option<(PathBuf, f64)>,
    pub record: Option<PathBuf>,
    /// The built-in simulator: over the registry's devices, or over a registry generated from
    /// the city when there is no registry.
    pub simulate: Option<SimSetup>,
    /// Health rules from the configuration (default otherwise).
    pub health: Option<HealthRules>,
}

fn sim_start_ms(text: &str, what: &str) -> Result<i64> {
    tvilling_city::scene::parse_utc_minute(text)
        .map(|s| s * 1000)
        .ok_or_else(|| anyhow::anyhow!("{what} {text:?}: expected YYYY-MM-DDTHH:MM (UTC)"))
}

impl LiveSetup {
    /// The configuration file first (`--config`), then the command line's flags over it.
    pub fn from_cli(cli: &Cli) -> Result<LiveSetup> {
        let config = match &cli.config {
            Some(p) => crate::config::load(p)?,
            None => crate::config::LiveConfig::default(),
        };
        let registry = cli.registry.clone().or(config.registry);
        let devices = match &registry {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read registry {}", p.display()))?;
                parse_registry(&text, &p.display().to_string())?
            }
            None => Vec::new(),
        };
        let mut mqtt = config.mqtt;
        if let Some(url) = &cli.mqtt {
            let format = PayloadFormat::from_name(&cli.mqtt_format, None).ok_or_else(|| {
                anyhow::anyhow!(
                    "--mqtt-format {:?}: expected senml, chirpstack, tts, ngsi-ld or sensorthings",
                    cli.mqtt_format
                )
            })?;
            mqtt.push(
                MqttConfig::from_url(url, format).map_err(|e| anyhow::anyhow!("--mqtt {e}"))?,
            );
        }
        let replay = cli
            .replay
            .clone()
            .map(|p| (p, cli.replay_speed))
            .or(config.replay);
        let configured = !mqtt.is_empty() || !config.http.is_empty() || replay.is_some();
        anyhow::ensure!(
            cli.sim_speed.is_finite() && cli.sim_speed > 0.0,
            "--sim-speed {}: must be a positive number",
            cli.sim_speed
        );
        let from_cli = |seed: u64| -> Result<SimSetup> {
            Ok(SimSetup {
                seed,
                extra_lamps: cli.extra_lamps,
                clock: SimClockSettings {
                    start_ms: cli
                        .sim_start
                        .as_deref()
                        .map(|t| sim_start_ms(t, "--sim-start"))
                        .transpose()?,
                    speed: cli.sim_speed,
                },
            })
        };
        let simulate = match (cli.simulate, cli.no_simulate, &config.simulator) {
            (Some(seed), _, _) => Some(from_cli(seed)?),
            (None, true, _) | (None, false, Some(None)) => None,
            (None, false, Some(Some((seed, start, speed)))) => Some(SimSetup {
                seed: *seed,
                extra_lamps: cli.extra_lamps,
                clock: SimClockSettings {
                    start_ms: match (&cli.sim_start, start) {
                        (Some(t), _) => Some(sim_start_ms(t, "--sim-start")?),
                        (None, Some(t)) => Some(sim_start_ms(t, "simulator.start")?),
                        (None, None) => None,
                    },
                    speed: if cli.sim_speed != 1.0 {
                        cli.sim_speed
                    } else {
                        *speed
                    },
                },
            }),
            (None, false, None) if !configured => Some(from_cli(DEFAULT_SEED)?),
            (None, false, None) => None,
        };
        Ok(LiveSetup {
            devices,
            mqtt,
            http: config.http,
            replay,
            record: cli.record.clone().or(config.record),
            simulate,
            health: config.health,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.mqtt.is_empty()
            && self.http.is_empty()
            && self.replay.is_none()
            && self.simulate.is_none()
    }
}

pub use tvilling_sensors::simulate::DEFAULT_SEED;

/// Running sources, kept alive by the app.
#[derive(Resource, Default)]
pub struct LiveSources {
    pub mqtt: Vec<(String, MqttSource)>,
    pub http: Vec<(String, HttpSource)>,
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
    if let Some(rules) = &live.health {
        app.insert_resource(rules.clone());
    }
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
    let mut names: Vec<String> = Vec::new();
    let mut name = |base: &str| {
        let n = names
            .iter()
            .filter(|n| n.split('-').next() == Some(base))
            .count();
        let name = if n == 0 {
            base.to_string()
        } else {
            format!("{base}-{}", n + 1)
        };
        names.push(name.clone());
        name
    };
    let mqtt_names: Vec<String> = live.mqtt.iter().map(|_| name("mqtt")).collect();
    let http_names: Vec<String> = live.http.iter().map(|h| name(h.source_name())).collect();
    let replay_name = live.replay.as_ref().map(|_| name("replay"));
    let sim_name = live.simulate.as_ref().map(|_| name("simulator"));
    let mut senders: HashMap<String, IngestSender> = HashMap::new();
    if let Some(first) = names.first() {
        let (tx, rx) = ingest_channel(65_536, first);
        app.insert_resource(Ingest(rx));
        for name in &names[1..] {
            senders.insert(name.clone(), tx.for_source(name));
        }
        senders.insert(first.clone(), tx);
    }
    let mut sender = |name: &str| {
        senders
            .remove(name)
            .ok_or_else(|| anyhow::anyhow!("no channel for source {name}"))
    };
    for (cfg, name) in live.mqtt.iter().zip(&mqtt_names) {
        let source = MqttSource::start_recording(cfg.clone(), sender(name)?, recorder.clone());
        sources.mqtt.push((name.clone(), source));
    }
    for (cfg, name) in live.http.iter().zip(&http_names) {
        let source = start_http(cfg.clone(), sender(name)?, recorder.clone())
            .map_err(|e| anyhow::anyhow!("{name} {}: {e}", cfg.base_url))?;
        sources.http.push((name.clone(), source));
    }
    if let (Some((path, speed)), Some(name)) = (&live.replay, &replay_name) {
        let replay = start_replay(path, *speed, None, sender(name)?)
            .with_context(|| format!("cannot open recording {}", path.display()))?;
        sources.replay = Some(replay);
    }
    let sim_sender = match &sim_name {
        Some(name) => Some(sender(name)?),
        None => None,
    };
    app.insert_resource(sources)
        .init_resource::<SourceStatus>()
        .add_systems(Update, update_source_status);
    let to_scene = Transformer::new(Crs::WGS84, crs)?;
    let world = app.world_mut();
    for d in &live.devices {
        let (e, n) = to_scene
            .convert(d.lon, d.lat)
            .with_context(|| format!("device {}", d.id))?;
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
    if let (Some(sim), Some(tx)) = (live.simulate, sim_sender) {
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

/// Keeps [`SourceStatus`] current for the live panel: MQTT connection state, HTTP polls.
pub fn update_source_status(sources: Res<LiveSources>, mut status: ResMut<SourceStatus>) {
    let mut next = std::collections::BTreeMap::new();
    for (name, m) in &sources.mqtt {
        let text = match m.connection() {
            Connection::Connecting => "connecting".to_string(),
            Connection::Connected => "connected".to_string(),
            Connection::Disconnected { reason, attempts } => {
                format!("disconnected ({attempts} retries): {reason}")
            }
        };
        next.insert(name.clone(), text);
    }
    for (name, h) in &sources.http {
        let st = h.status();
        let text = match &st.last_error {
            Some(e) if st.failed_requests > 0 => {
                format!("{} polls, {} failed: {e}", st.polls, st.failed_requests)
            }
            _ => format!("{} polls", st.polls),
        };
        next.insert(name.clone(), text);
    }
    if let Some(r) = &sources.replay {
        next.insert(
            "replay".into(),
            if r.is_finished() {
                "finished"
            } else {
                "playing"
            }
            .into(),
        );
    }
    if next != status.0 {
        status.0 = next;
    }
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
    // How each networked source is doing: MQTT connection state, HTTP poll status.
    if let Some(live) = world.get_resource::<LiveSources>() {
        for (name, m) in &live.mqtt {
            if let Some(entry) = sources.get_mut(name) {
                entry["connection"] = json!(format!("{:?}", m.connection()));
            }
        }
        for (name, h) in &live.http {
            if let Some(entry) = sources.get_mut(name) {
                let st = h.status();
                entry["polls"] = json!(st.polls);
                entry["failed_requests"] = json!(st.failed_requests);
                entry["last_error"] = json!(st.last_error);
            }
        }
    }
    doc["diagnostics"] = json!({
        "sources": sources,
        "unknown_devices": unknown,
        "applied": applied.applied,
        "out_of_order": applied.out_of_order,
    });
}
