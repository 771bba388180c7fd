//! The live configuration file (`--config FILE`, TOML): sources, registry, recording, the
//! simulator, health rules and plain-JSON mappings. Relative paths are read from the file's
//! folder. Secrets never live in the file: passwords and tokens are named by the environment
//! variable that holds them. See `docs/config.example.toml`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use tvilling_sensors::codec::{PayloadFormat, PlainMapping};
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::http::{HttpApi, HttpConfig};
use tvilling_sensors::mqtt::{MqttConfig, Subscription, TlsFiles};
use tvilling_sensors::registry::DeviceKind;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Device registry (TOML); without one the simulator generates one from the city.
    pub registry: Option<PathBuf>,
    /// Record every accepted message to this JSON-lines file.
    pub record: Option<PathBuf>,
    pub replay: Option<ReplayEntry>,
    pub simulator: Option<SimulatorEntry>,
    #[serde(default)]
    pub mqtt: Vec<MqttEntry>,
    #[serde(default)]
    pub http: Vec<HttpEntry>,
    /// Plain-JSON mappings by name, for subscriptions with `format = "plain"`.
    #[serde(default)]
    pub plain: BTreeMap<String, PlainEntry>,
    pub health: Option<HealthEntry>,
    /// Record every applied value and alarm change to this SQLite file (history, playback).
    pub history: Option<PathBuf>,
    /// Keep this many days of history (default 30).
    pub history_retention_days: Option<f64>,
    /// The alarm desk: the operator at this screen and priority rules.
    pub alarms: Option<AlarmsEntry>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlarmsEntry {
    /// Who acknowledgements and shelving at this screen are recorded as.
    pub operator: Option<String>,
    /// Priority rules, the first match wins (then the built-in ones).
    #[serde(default)]
    pub priority: Vec<PriorityEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityEntry {
    /// A device kind (`signal_head`, `lamp`, `meter`, `air_sensor`); none: any.
    pub kind: Option<String>,
    /// `fault`, `stale` or `exceedance`; none: any.
    pub severity: Option<String>,
    #[serde(default)]
    pub night_only: bool,
    /// `high`, `medium` or `low`.
    pub priority: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayEntry {
    pub file: PathBuf,
    #[serde(default = "one")]
    pub speed: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorEntry {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "seed")]
    pub seed: u64,
    /// UTC, YYYY-MM-DDTHH:MM; default now.
    pub start: Option<String>,
    #[serde(default = "one")]
    pub speed: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttEntry {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub url: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive_s: Option<f64>,
    /// Larger payloads are refused and counted (`oversized`); the connection stays up.
    pub max_payload_bytes: Option<usize>,
    #[serde(default)]
    pub subscribe: Vec<SubscribeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeEntry {
    pub filter: String,
    #[serde(default = "senml")]
    pub format: String,
    #[serde(default = "qos1")]
    pub qos: u8,
    /// For `format = "plain"`: the name of a `[plain.NAME]` mapping.
    pub mapping: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEntry {
    /// SensorThings service root, or the NGSI-LD broker's root.
    pub url: String,
    /// `sensorthings` or `ngsi-ld`.
    pub api: String,
    /// NGSI-LD entity types to ask for.
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default = "sixty")]
    pub interval_s: f64,
    /// The environment variable that holds a bearer token.
    pub token_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub page_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainEntry {
    pub device: String,
    pub time: Option<String>,
    /// Field name = path in the payload.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthEntry {
    pub stale_factor: Option<f64>,
    pub lamp_on_below_deg: Option<f64>,
    pub lamp_standby_w: Option<f64>,
    /// Expected reporting interval per kind, seconds.
    #[serde(default)]
    pub interval_s: HashMap<DeviceKind, f64>,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn seed() -> u64 {
    tvilling_sensors::simulate::DEFAULT_SEED
}
fn senml() -> String {
    "senml".into()
}
fn qos1() -> u8 {
    1
}
fn sixty() -> f64 {
    60.0
}

/// What a configuration file resolves to.
#[derive(Debug, Clone, Default)]
pub struct LiveConfig {
    pub registry: Option<PathBuf>,
    pub record: Option<PathBuf>,
    pub replay: Option<(PathBuf, f64)>,
    /// `Some(None)`: the simulator is switched off; `Some(Some(..))`: its settings.
    pub simulator: Option<Option<(u64, Option<String>, f64)>>,
    pub mqtt: Vec<MqttConfig>,
    pub http: Vec<HttpConfig>,
    pub health: Option<HealthRules>,
    pub history: Option<PathBuf>,
    pub history_retention_days: Option<f64>,
    pub operator: Option<String>,
    pub alarm_rules: Vec<tvilling_metrics::lifecycle::PriorityRule>,
}

/// The configured alarm priority rules, each checked (a bad one says which and why).
fn alarm_rules(entry: &AlarmsEntry) -> Result<Vec<tvilling_metrics::lifecycle::PriorityRule>> {
    use tvilling_metrics::alarms::Severity;
    use tvilling_metrics::lifecycle::{Priority, PriorityRule};
    let kinds = ["signal_head", "lamp", "meter", "air_sensor"];
    entry
        .priority
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("alarms.priority rule {}", i + 1);
            if let Some(k) = &p.kind
                && !kinds.contains(&k.as_str())
            {
                bail!("{what}: kind {k:?}: expected one of {}", kinds.join(", "));
            }
            let severity = match &p.severity {
                Some(s) => Some(Severity::parse(s).with_context(|| {
                    format!("{what}: severity {s:?}: expected fault, stale or exceedance")
                })?),
                None => None,
            };
            let priority = Priority::parse(&p.priority).with_context(|| {
                format!(
                    "{what}: priority {:?}: expected high, medium or low",
                    p.priority
                )
            })?;
            Ok(PriorityRule {
                kind: p.kind.clone(),
                severity,
                night_only: p.night_only,
                priority,
            })
        })
        .collect()
}

/// Looks up an environment variable (tests pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn secret(env: Env<'_>, var: &str, what: &str) -> Result<String> {
    env(var).with_context(|| {
        format!("{what}: the environment variable {var} is not set (secrets are read from the environment, never from the file)")
    })
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<LiveConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")), &|v| {
        std::env::var(v).ok()
    })
    .with_context(|| format!("config {}", path.display()))
}

/// Parses a configuration; relative paths are taken from `dir`, secrets from `env`.
pub fn parse(text: &str, dir: &Path, env: Env<'_>) -> Result<LiveConfig> {
    let file: ConfigFile = toml::from_str(text)?;
    let at = |p: &PathBuf| -> PathBuf {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.join(p)
        }
    };
    let mut out = LiveConfig {
        registry: file.registry.as_ref().map(at),
        record: file.record.as_ref().map(at),
        replay: file.replay.as_ref().map(|r| (at(&r.file), r.speed)),
        simulator: file
            .simulator
            .as_ref()
            .map(|s| s.enabled.then(|| (s.seed, s.start.clone(), s.speed))),
        history: file.history.as_ref().map(at),
        history_retention_days: file.history_retention_days,
        operator: file.alarms.as_ref().and_then(|a| a.operator.clone()),
        alarm_rules: match &file.alarms {
            Some(a) => alarm_rules(a)?,
            None => Vec::new(),
        },
        ..LiveConfig::default()
    };
    let mappings: BTreeMap<String, PlainMapping> = file
        .plain
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                PlainMapping {
                    device_path: p.device.clone(),
                    time_path: p.time.clone(),
                    fields: p
                        .fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                },
            )
        })
        .collect();
    for (i, m) in file.mqtt.iter().enumerate() {
        let what = format!("mqtt source {} ({})", i + 1, m.url);
        let mut cfg = MqttConfig::from_url(&m.url, PayloadFormat::SenMl)
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        if let Some(id) = &m.client_id {
            cfg.client_id.clone_from(id);
        }
        cfg.username.clone_from(&m.username);
        if let Some(var) = &m.password_env {
            cfg.password = Some(secret(env, var, &what)?);
        }
        if let Some(k) = m.keep_alive_s {
            cfg.keep_alive = Duration::from_secs_f64(k.clamp(5.0, 3600.0));
        }
        if let Some(limit) = m.max_payload_bytes {
            if limit == 0 {
                bail!("{what}: max_payload_bytes must be at least 1");
            }
            cfg.max_payload_bytes = limit;
        }
        let tls_files = TlsFiles {
            ca_file: m.ca_file.as_ref().map(at),
            client_cert_file: m.client_cert_file.as_ref().map(at),
            client_key_file: m.client_key_file.as_ref().map(at),
        };
        if tls_files != TlsFiles::default() {
            if cfg.tls.is_none() {
                bail!("{what}: TLS files are given but the URL is not mqtts://");
            }
            cfg.tls = Some(Arc::new(
                tls_files
                    .client_config()
                    .map_err(|e| anyhow::anyhow!("{what}: {e}"))?,
            ));
        }
        if !m.subscribe.is_empty() {
            cfg.subscriptions = m
                .subscribe
                .iter()
                .map(|s| {
                    let mapping = match (&s.mapping, s.format.as_str()) {
                        (Some(name), _) => Some(mappings.get(name).ok_or_else(|| {
                            anyhow::anyhow!("{what}: subscription {:?} names mapping {name:?}, but there is no [plain.{name}]", s.filter)
                        })?),
                        (None, "plain") => bail!("{what}: subscription {:?} is plain but names no mapping", s.filter),
                        (None, _) => None,
                    };
                    let format = PayloadFormat::from_name(&s.format, mapping).ok_or_else(|| {
                        anyhow::anyhow!("{what}: subscription {:?}: format {:?} is not one of senml, chirpstack, tts, ngsi-ld, sensorthings, plain", s.filter, s.format)
                    })?;
                    if s.qos > 1 {
                        bail!("{what}: subscription {:?}: qos {} (0 or 1)", s.filter, s.qos);
                    }
                    Ok(Subscription {
                        filter: s.filter.clone(),
                        format,
                        qos: s.qos,
                    })
                })
                .collect::<Result<_>>()?;
        }
        out.mqtt.push(cfg);
    }
    for (i, h) in file.http.iter().enumerate() {
        let what = format!("http source {} ({})", i + 1, h.url);
        if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
            bail!("{what}: the URL must start with http:// or https://");
        }
        let api = match h.api.as_str() {
            "sensorthings" => HttpApi::SensorThings,
            "ngsi-ld" if h.types.is_empty() => {
                bail!("{what}: ngsi-ld needs `types`, the entity types to ask for")
            }
            "ngsi-ld" => HttpApi::NgsiLd {
                types: h.types.clone(),
            },
            other => bail!("{what}: api {other:?} is not sensorthings or ngsi-ld"),
        };
        let mut cfg = HttpConfig::new(&h.url, api);
        if !(h.interval_s.is_finite() && h.interval_s >= 1.0) {
            bail!("{what}: interval_s {} must be at least 1", h.interval_s);
        }
        cfg.interval = Duration::from_secs_f64(h.interval_s);
        if let Some(var) = &h.token_env {
            cfg.bearer_token = Some(secret(env, var, &what)?);
        }
        cfg.ca_file = h.ca_file.as_ref().map(at);
        if let Some(n) = h.page_size {
            cfg.page_size = n.clamp(1, 1000);
        }
        out.http.push(cfg);
    }
    if let Some(h) = &file.health {
        let mut rules = HealthRules::default();
        if let Some(f) = h.stale_factor {
            rules.stale_factor = f;
        }
        if let Some(d) = h.lamp_on_below_deg {
            rules.lamp_on_below_deg = d;
        }
        if let Some(w) = h.lamp_standby_w {
            rules.lamp_standby_w = w;
        }
        for (kind, s) in &h.interval_s {
            for entry in &mut rules.interval_s {
                if entry.0 == *kind {
                    entry.1 = *s;
                }
            }
        }
        out.health = Some(rules);
    }
    Ok(out)
}
