//! The middle layer of the twin: what joins the city model and the sensor pipeline. Render-free;
//! the app turns its command line and configuration into [`LiveSettings`] and adds
//! [`LivePlugin`].
//!
//! - [`settings`]: what runs (devices, sources, recording, simulator, health rules).
//! - [`binding`]: registered devices bound to city entities (fitted to their building, or at
//!   their own position), and the city's layout for generated registries.
//! - [`sources`]: the running sources and [`sources::SourceDiagnostics`], plain data refreshed
//!   once a frame for panels and the snapshot.
//! - [`simulation`]: the built-in simulator over the registry, or over a registry generated
//!   once the city has loaded.
//! - [`history`]: every applied value and alarm change recorded to one SQLite file on its own
//!   thread, keyframes, and the state at any past moment for playback.
//! - [`shared`]: the store several twins share (`--store postgres://…`): one alarm book for
//!   every screen, with roles the server enforces.
//! - [`snapshot`]: the snapshot's live part (values, health, last seen, diagnostics).
//! - [`sumo`]: SUMO stepped with the twin clock over TraCI, its vehicles as entities.
//!
//! Data flow: sources decode on their threads and hand observations to the sensors crate's
//! ingest channel; [`tvilling_sensors::apply::SensorSystems`] applies them to device
//! components and judges health; [`LiveSystems::Diagnostics`] then copies the sources'
//! counters into [`sources::SourceDiagnostics`].

pub mod binding;
pub mod history;
pub mod scenario;
pub mod settings;
pub mod shared;
pub mod simulation;
pub mod snapshot;
pub mod sources;
pub mod sumo;

use std::collections::HashMap;

use bevy::prelude::*;
use tvilling_geo::{Crs, GeoError, GeoFrame, Transformer};
use tvilling_sensors::apply::{SensorApplyPlugin, SensorSystems, connect_ingest};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::health::HealthPlugin;
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::mqtt::MqttSource;
use tvilling_sensors::replay::{Recorder, start_replay};

pub use settings::{LiveSettings, SimPath, SimSetup};
use simulation::PendingSimulation;
use sources::{LiveSources, SourceDiagnostics};

/// Why the live pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot create recording {path}: {source}")]
    Record {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open recording {path}: {source}")]
    Replay {
        path: String,
        source: std::io::Error,
    },
    #[error("{name} {url}: {reason}")]
    Http {
        name: String,
        url: String,
        reason: String,
    },
    #[error("no channel for source {0}")]
    Channel(String),
    #[error("device {0}: {1}")]
    Position(String, GeoError),
    #[error("scene CRS: {0}")]
    Crs(GeoError),
}

/// System sets of [`LivePlugin`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveSystems {
    /// Binds generated devices to the city once it has loaded (`Update`, after the city's
    /// spawn).
    Bind,
    /// Copies the sources' counters and states into [`SourceDiagnostics`] (`PreUpdate`, after
    /// the sensors' health).
    Diagnostics,
}

/// The live pipeline: the sensors' apply and health plugins, diagnostics, the simulator.
/// Sources start with [`start_live`] once the plugin is added.
#[derive(Default)]
pub struct LivePlugin {
    pub settings: LiveSettings,
}

impl Plugin for LivePlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            SensorApplyPlugin,
            HealthPlugin,
            tvilling_metrics::MetricsPlugin,
        ))
        .insert_resource(self.settings.clone())
        .insert_resource({
            let mut desk = tvilling_metrics::lifecycle::AlarmDesk::default();
            if let Some(op) = &self.settings.operator {
                desk.operator.clone_from(op);
            }
            let mut rules = self.settings.alarm_rules.clone();
            rules.append(&mut desk.rules);
            desk.rules = rules;
            desk
        })
        .init_resource::<LiveSources>()
        .init_resource::<SourceDiagnostics>()
        .configure_sets(
            PreUpdate,
            LiveSystems::Diagnostics.after(SensorSystems::Health),
        )
        .configure_sets(
            Update,
            LiveSystems::Bind.after(tvilling_city::CitySystems::Spawn),
        )
        .add_systems(
            PreUpdate,
            (sources::refresh_diagnostics, sources::flush_recording)
                .in_set(LiveSystems::Diagnostics),
        )
        .add_systems(
            PreUpdate,
            simulation::step_simulator
                .run_if(resource_exists::<simulation::SimulatorState>)
                .in_set(SensorSystems::Step),
        )
        .add_systems(
            Update,
            simulation::start_when_city_loaded
                .run_if(resource_exists::<PendingSimulation>)
                .in_set(LiveSystems::Bind),
        );
        if let Some(rules) = &self.settings.health {
            app.insert_resource(rules.clone());
        }
        app.add_plugins(history::HistoryPlugin {
            settings: self.settings.history.clone(),
        });
        // Playback (`--at`) reads the past; the shared book is the live list.
        if let (Some(shared), None) = (&self.settings.shared, self.settings.at_ms) {
            app.add_plugins(shared::sync::SharedBookPlugin {
                settings: shared.clone(),
            });
        }
        if let Some(at) = self.settings.at_ms {
            // A moment the history cannot show is not pretended: the clock stays live and the
            // reason is the history's error (on screen, in the snapshot).
            let checked = match &self.settings.history {
                Some(h) => history::check_moment(&h.path, at),
                None => Err("--at needs a history (--history FILE)".into()),
            };
            if let Err(e) = checked {
                error!("{e}");
                if let Some(mut status) =
                    app.world_mut().get_resource_mut::<history::HistoryStatus>()
                {
                    status.error = Some(e);
                    status.range = None;
                }
                return;
            }
            // The recorded twin at a moment: the clock plays back there, paused, with the
            // newest recorded moment as its edge.
            let newest = app
                .world()
                .get_resource::<history::HistoryStatus>()
                .and_then(|s| s.range)
                .map_or(at, |r| r.1.max(at));
            let mut clock = TwinClock::held(newest);
            clock.play_back(at, 1.0, true);
            app.insert_resource(clock);
            return;
        }
        // A simulated twin's clock stands at the simulator's start until the simulator runs
        // (the city may take a while to load); then it moves at the simulator's speed.
        if let Some(sim) = &self.settings.simulate {
            let start = sim
                .clock
                .start_ms
                .unwrap_or_else(tvilling_sensors::clock::wall_ms);
            let mut clock = TwinClock::held(start);
            clock.until_ms = self.settings.until_ms;
            app.insert_resource(clock);
        }
    }
}

/// Spawns the registered devices and starts the sources of [`LiveSettings`], in the scene's
/// CRS ([`GeoFrame`]).
pub fn start_live(world: &mut World) -> Result<(), LiveError> {
    let live = world.resource::<LiveSettings>().clone();
    let crs = world
        .get_resource::<GeoFrame>()
        .map_or(Crs::SWEREF99_TM, |f| f.crs);
    if live.at_ms.is_some() {
        // Playback only: the devices, and no source.
        let to_scene = Transformer::new(Crs::WGS84, crs).map_err(LiveError::Crs)?;
        binding::spawn_devices(world, &live.devices, &to_scene)?;
        if let Some(sim) = live.simulate
            && live.devices.is_empty()
        {
            world.insert_resource(PendingSimulation {
                setup: sim,
                sender: None,
                recorder: None,
            });
        }
        return Ok(());
    }
    let recorder = match &live.record {
        Some(p) => Some(Recorder::create(p).map_err(|source| LiveError::Record {
            path: p.display().to_string(),
            source,
        })?),
        None => None,
    };
    // The devices first: a source resolves what it receives against the registry.
    let to_scene = Transformer::new(Crs::WGS84, crs).map_err(LiveError::Crs)?;
    binding::spawn_devices(world, &live.devices, &to_scene)?;
    let mut sources = LiveSources {
        recording: recorder.clone(),
        ..Default::default()
    };
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
        // Senders resolve what they receive against the registry's devices, on their threads.
        let tx = connect_ingest(world, 65_536, first);
        for name in &names[1..] {
            senders.insert(name.clone(), tx.for_source(name));
        }
        senders.insert(first.clone(), tx);
    }
    let mut sender = |name: &str| {
        senders
            .remove(name)
            .ok_or_else(|| LiveError::Channel(name.to_string()))
    };
    for (cfg, name) in live.mqtt.iter().zip(&mqtt_names) {
        let source = MqttSource::start_recording(cfg.clone(), sender(name)?, recorder.clone());
        sources.mqtt.push((name.clone(), source));
    }
    for (cfg, name) in live.http.iter().zip(&http_names) {
        let source =
            tvilling_sensors::http::start_http(cfg.clone(), sender(name)?, recorder.clone())
                .map_err(|reason| LiveError::Http {
                    name: name.clone(),
                    url: cfg.base_url.clone(),
                    reason,
                })?;
        sources.http.push((name.clone(), source));
    }
    if let (Some((path, speed)), Some(name)) = (&live.replay, &replay_name) {
        let replay = start_replay(path, *speed, None, sender(name)?).map_err(|source| {
            LiveError::Replay {
                path: path.display().to_string(),
                source,
            }
        })?;
        sources.replay = Some(replay);
    }
    let sim_sender = match &sim_name {
        Some(name) => Some(sender(name)?),
        None => None,
    };
    world.insert_resource(sources);
    if let (Some(sim), Some(tx)) = (live.simulate, sim_sender) {
        if live.devices.is_empty() {
            // No registry: generate one from the city once it has loaded.
            world.insert_resource(PendingSimulation {
                setup: sim,
                sender: Some(tx),
                recorder,
            });
        } else {
            let devices = simulation::devices_for_registry(sim.seed, &live.devices);
            simulation::start(world, sim, devices, tx, recorder);
        }
    }
    Ok(())
}

pub mod prelude {
    pub use crate::history::{ClockRequest, HistorySettings, HistoryStatus};
    pub use crate::settings::{LiveSettings, SimPath, SimSetup};
    pub use crate::sources::{LiveSources, SourceDiagnostics, SourceRow};
    pub use crate::{LiveError, LivePlugin, LiveSystems, start_live};
}
