//! What the live pipeline runs: devices, sources, recording, simulator and health rules. Plain
//! settings, filled by the app from its command line and configuration file (a leaf module).

use std::path::PathBuf;

use bevy::prelude::*;
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::http::HttpConfig;
use tvilling_sensors::mqtt::MqttConfig;
use tvilling_sensors::registry_file::DeviceSpec;
use tvilling_sensors::simulate::SimClockSettings;

/// Simulator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSetup {
    pub seed: u64,
    pub clock: SimClockSettings,
    /// Extra lamps on a grid around the city (`--extra-lamps`), for measurements.
    pub extra_lamps: usize,
    /// How its reports reach the apply stage.
    pub path: SimPath,
    /// Every device also sends all its values at least this often (ms); `None`: changes and
    /// the keep-alives health needs.
    pub heartbeat_ms: Option<i64>,
}

/// How the simulator's reports reach the apply stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimPath {
    /// As typed values, straight to apply (no payload between).
    #[default]
    Typed,
    /// Encoded as SenML packs and decoded by the codec a broker's messages go through.
    SenMl,
}

/// Live sources and devices.
#[derive(Resource, Debug, Clone, Default)]
pub struct LiveSettings {
    pub devices: Vec<DeviceSpec>,
    pub mqtt: Vec<MqttConfig>,
    pub http: Vec<HttpConfig>,
    /// A recording to replay and its speed.
    pub replay: Option<(PathBuf, f64)>,
    pub record: Option<PathBuf>,
    /// The built-in simulator: over the registry's devices, or over a registry generated from
    /// the city when there is no registry.
    pub simulate: Option<SimSetup>,
    /// Health rules from the configuration (default otherwise).
    pub health: Option<HealthRules>,
    /// A simulated run stops its clock here (`--until`), Unix ms.
    pub until_ms: Option<i64>,
    /// Where history is recorded (and read).
    pub history: Option<crate::history::HistorySettings>,
    /// Show the recorded twin as it was at this moment (`--at`, Unix ms): no source runs.
    pub at_ms: Option<i64>,
    /// The operator at this screen (acknowledgements and shelving are recorded as them).
    pub operator: Option<String>,
    /// Alarm priority rules from the configuration, checked before the defaults.
    pub alarm_rules: Vec<tvilling_metrics::lifecycle::PriorityRule>,
    /// The alarm book shared with other twins in a PostgreSQL store (`--store postgres://…`).
    pub shared: Option<crate::shared::sync::SharedBookSettings>,
}

impl LiveSettings {
    /// Nothing live: no device and no source.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.mqtt.is_empty()
            && self.http.is_empty()
            && self.replay.is_none()
            && self.simulate.is_none()
    }
}
