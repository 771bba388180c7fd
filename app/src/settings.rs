//! The command line and the configuration file turned into the live pipeline's settings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::mqtt::MqttConfig;
use tvilling_sensors::registry_file::parse_registry;
use tvilling_sensors::simulate::{DEFAULT_SEED, SimClockSettings};
use tvilling_twin::history::{DEFAULT_RETENTION_DAYS, HistorySettings};
use tvilling_twin::shared::StoreUrl;
use tvilling_twin::shared::sync::SharedBookSettings;
use tvilling_twin::{LiveSettings, SimPath, SimSetup};

use crate::Cli;
use crate::cli::SimSpeed;

fn sim_start_ms(text: &str, what: &str) -> Result<i64> {
    tvilling_city::scene::parse_utc_minute(text)
        .map(|s| s * 1000)
        .ok_or_else(|| anyhow::anyhow!("{what} {text:?}: expected YYYY-MM-DDTHH:MM (UTC)"))
}

/// The configuration file first (`--config`), then the command line's flags over it.
/// Where a station's alarm changes wait while the shared store is down:
/// `$XDG_STATE_HOME/tvilling/` (else `~/.local/state/tvilling/`) `alarm-spool-STATION.jsonl`.
pub fn spool_path(station: &str) -> PathBuf {
    let dir = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tvilling");
    let name: String = station
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("alarm-spool-{name}.jsonl"))
}

pub fn live_settings(cli: &Cli) -> Result<LiveSettings> {
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
        mqtt.push(MqttConfig::from_url(url, format).map_err(|e| anyhow::anyhow!("--mqtt {e}"))?);
    }
    let replay = cli
        .replay
        .clone()
        .map(|p| (p, cli.replay_speed))
        .or(config.replay);
    let configured = !mqtt.is_empty() || !config.http.is_empty() || replay.is_some();
    let at_ms = cli
        .at
        .as_deref()
        .map(|t| sim_start_ms(t, "--at"))
        .transpose()?;
    if let Some(d) = cli.retention_days {
        anyhow::ensure!(
            d.is_finite() && d > 0.0,
            "--retention-days {d}: must be a positive number"
        );
    }
    let until_ms = cli
        .until
        .as_deref()
        .map(|t| sim_start_ms(t, "--until"))
        .transpose()?;
    // A run to an end goes as fast as the machine allows unless a speed is given.
    let cli_speed = match cli.sim_speed {
        Some(SimSpeed::Times(x)) => Some(Some(x)),
        Some(SimSpeed::Max) => Some(None),
        None if until_ms.is_some() => Some(None),
        None => None,
    };
    let path = match cli.sim_path {
        crate::cli::SimPathArg::Typed => SimPath::Typed,
        crate::cli::SimPathArg::Senml => SimPath::SenMl,
    };
    let heartbeat_ms = cli.sim_heartbeat.map(|s| (s * 1000.0).round() as i64);
    let from_cli = |seed: u64| -> Result<SimSetup> {
        Ok(SimSetup {
            seed,
            extra_lamps: cli.extra_lamps,
            path,
            heartbeat_ms,
            clock: SimClockSettings {
                start_ms: cli
                    .sim_start
                    .as_deref()
                    .map(|t| sim_start_ms(t, "--sim-start"))
                    .transpose()?,
                speed: cli_speed.unwrap_or(Some(1.0)),
            },
        })
    };
    let simulate = match (cli.simulate, cli.no_simulate, &config.simulator) {
        (Some(seed), _, _) => Some(from_cli(seed)?),
        (None, true, _) | (None, false, Some(None)) => None,
        (None, false, Some(Some((seed, start, speed)))) => Some(SimSetup {
            seed: *seed,
            extra_lamps: cli.extra_lamps,
            path,
            heartbeat_ms,
            clock: SimClockSettings {
                start_ms: match (&cli.sim_start, start) {
                    (Some(t), _) => Some(sim_start_ms(t, "--sim-start")?),
                    (None, Some(t)) => Some(sim_start_ms(t, "simulator.start")?),
                    (None, None) => None,
                },
                speed: cli_speed.unwrap_or(Some(*speed)),
            },
        }),
        (None, false, None) if !configured => Some(from_cli(DEFAULT_SEED)?),
        (None, false, None) => None,
    };
    // --store: a SQLite file is this twin's history; a PostgreSQL store shares the alarm book.
    let (history_path, shared) = match cli.store.as_deref().map(StoreUrl::parse).transpose()? {
        Some(StoreUrl::Sqlite(path)) => {
            if let Some(h) = cli.history.as_ref().filter(|h| **h != path) {
                anyhow::bail!(
                    "--store sqlite:{} and --history {} name two files: give one",
                    path.display(),
                    h.display()
                );
            }
            (Some(path), None)
        }
        Some(StoreUrl::Postgres(url)) => (cli.history.clone(), {
            let station = crate::alarms::station(cli.station.as_deref());
            Some(SharedBookSettings {
                url,
                spool: spool_path(&station),
                station,
            })
        }),
        None => (cli.history.clone(), None),
    };
    Ok(LiveSettings {
        devices,
        mqtt,
        http: config.http,
        replay,
        record: cli.record.clone().or(config.record),
        simulate,
        health: config.health,
        until_ms,
        history: match history_path.or(config.history) {
            Some(path) => Some(HistorySettings {
                path,
                retention_days: cli
                    .retention_days
                    .or(config.history_retention_days)
                    .unwrap_or(DEFAULT_RETENTION_DAYS),
                read_only: at_ms.is_some(),
                temporary: false,
            }),
            // The simulated demo in a window records to a temporary store, so a new user can
            // scrub back from the first minute; it is deleted when the window closes.
            None if simulate.is_some() && !cli.headless && cli.screenshot.is_none() => {
                Some(HistorySettings {
                    path: std::env::temp_dir()
                        .join(format!("tvilling-demo-{}.sqlite", std::process::id())),
                    retention_days: 1.0,
                    read_only: false,
                    temporary: true,
                })
            }
            None => None,
        },
        at_ms,
        operator: cli.operator.clone().or(config.operator),
        alarm_rules: config.alarm_rules,
        shared,
    })
}
