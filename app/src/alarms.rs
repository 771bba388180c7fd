//! `tvilling alarms list|ack|shelve|unshelve|note` and `tvilling store init|user`: the alarm
//! book and the shared store from a terminal or a script, headless.
//!
//! On a PostgreSQL store (`--store postgres://…`) every action is made in the store, seen by
//! every twin's desk within a second, with the operator and station in the audit log. A
//! single twin's SQLite file (`--store sqlite:PATH`) can be listed; it is acted on only at
//! that twin's own desk.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tvilling_sensors::time::format_rfc3339;
use tvilling_twin::shared::book::{self, Actor, OperatorAction, StoredAlarm};
use tvilling_twin::shared::schema::{self, Role};
use tvilling_twin::shared::{StoreUrl, connect};

/// The alarm book from the command line.
#[derive(Parser, Debug, Clone)]
#[command(name = "tvilling alarms")]
pub struct AlarmsCli {
    #[command(subcommand)]
    pub command: AlarmsCommand,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The store: sqlite:PATH (a twin's history file) or postgres://USER@HOST:PORT/DB (the
    /// password, if any, in PGPASSWORD).
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
    /// Who acts (kept in the audit log).
    #[arg(long, global = true, value_name = "NAME")]
    pub operator: Option<String>,
    /// Where they act from (default: this machine's name).
    #[arg(long, global = true, value_name = "S")]
    pub station: Option<String>,
    /// JSON instead of a table: one object per alarm.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AlarmsCommand {
    /// The alarms on the list, most urgent and newest first.
    List,
    /// Acknowledge an alarm by its key, or a device's newest unacknowledged alarm.
    Ack {
        key: Option<String>,
        #[arg(long, value_name = "ID", conflicts_with = "key")]
        device: Option<String>,
    },
    /// Shelve an alarm for a while, with a reason.
    Shelve {
        key: String,
        #[arg(long)]
        reason: String,
        /// How long, minutes.
        #[arg(long = "for", value_name = "MINUTES")]
        minutes: u32,
    },
    /// Take an alarm off the shelf.
    Unshelve { key: String },
    /// Add a note to an alarm (kept in the audit log).
    Note {
        key: String,
        #[arg(long)]
        text: String,
    },
}

/// Setting up a shared store.
#[derive(Parser, Debug, Clone)]
#[command(name = "tvilling store")]
pub struct StoreCli {
    #[command(subcommand)]
    pub command: StoreCommand,
    /// The store, postgres://OWNER@HOST:PORT/DB.
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum StoreCommand {
    /// Create or upgrade the schema and its roles (as the database's owner).
    Init,
    /// Give a login one of the roles viewer, operator, engineer (creating the login).
    User {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Cut the alarm audit log to its last DAYS (counted back from its newest row; an
    /// engineer's right).
    Retain {
        #[arg(long)]
        days: f64,
    },
}

/// This station's name: given, else this machine's name.
pub fn station(given: Option<&str>) -> String {
    given.map(str::to_string).unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    })
}

fn store_url(given: Option<&str>) -> Result<StoreUrl> {
    let Some(text) = given else {
        bail!("--store URL is needed: sqlite:PATH or postgres://USER@HOST:PORT/DB");
    };
    Ok(StoreUrl::parse(text)?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `tvilling store …`.
pub fn store_main(cli: StoreCli) -> Result<()> {
    let StoreUrl::Postgres(url) = store_url(cli.store.as_deref())? else {
        bail!("a SQLite store needs no setting up: the twin creates its file");
    };
    let mut client = connect(&url)?;
    match cli.command {
        StoreCommand::Init => {
            schema::install(&mut client, &url)?;
            println!(
                "store {url}: schema version {} with roles {}",
                schema::SCHEMA_VERSION,
                Role::ALL.map(Role::group).join(", ")
            );
        }
        StoreCommand::User { name, role } => {
            let Some(r) = Role::parse(&role) else {
                bail!("--role {role:?}: expected viewer, operator or engineer");
            };
            schema::check(&mut client, &url)?;
            schema::add_user(&mut client, &url, &name, r)?;
            println!("store {url}: {name} is now {}", r.as_str());
        }
        StoreCommand::Retain { days } => {
            schema::check(&mut client, &url)?;
            let n = book::retain_audit(&mut client, &url, days)?;
            println!("store {url}: {n} audit rows older than {days} days deleted");
        }
    }
    Ok(())
}

/// `tvilling alarms …`.
pub fn main(cli: AlarmsCli) -> Result<()> {
    let c = &cli.common;
    match store_url(c.store.as_deref())? {
        StoreUrl::Sqlite(path) => {
            let AlarmsCommand::List = cli.command else {
                bail!(
                    "{}: a single twin's file is acted on at that twin's own desk; to act from another screen or a script, share the twin's store on PostgreSQL (--store postgres://…)",
                    path.display()
                );
            };
            let store = tvilling_twin::history::store::SqliteStore::open_read_only(&path)?;
            let now = now_ms();
            let log = store.audit(i64::MIN, now, None)?;
            let book = tvilling_metrics::lifecycle::AlarmBook::replay(&log, now);
            let alarms: Vec<StoredAlarm> = book
                .ordered()
                .into_iter()
                .map(|a| StoredAlarm {
                    alarm: a.clone(),
                    ack_station: None,
                    changed_ms: a.raised_ms,
                    last_note: None,
                })
                .collect();
            print_alarms(&alarms, c.json)
        }
        StoreUrl::Postgres(url) => {
            let mut client = connect(&url)?;
            schema::check(&mut client, &url)?;
            let action = match &cli.command {
                AlarmsCommand::List => {
                    return print_alarms(&book::list(&mut client, &url)?, c.json);
                }
                AlarmsCommand::Ack { .. } => OperatorAction::Acknowledge,
                AlarmsCommand::Shelve {
                    reason, minutes, ..
                } => OperatorAction::Shelve {
                    reason: reason.clone(),
                    until_ms: now_ms() + i64::from(*minutes) * 60_000,
                },
                AlarmsCommand::Unshelve { .. } => OperatorAction::Unshelve,
                AlarmsCommand::Note { text, .. } => OperatorAction::Note(text.clone()),
            };
            let key = match &cli.command {
                AlarmsCommand::Ack { key: Some(k), .. } => k.clone(),
                AlarmsCommand::Ack {
                    device: Some(d), ..
                } => book::newest_of_device(&mut client, &url, d)?
                    .with_context(|| format!("device {d} has no alarm to acknowledge"))?,
                AlarmsCommand::Ack { .. } => bail!("ack: give the alarm's key or --device ID"),
                AlarmsCommand::Shelve { key, .. }
                | AlarmsCommand::Unshelve { key }
                | AlarmsCommand::Note { key, .. } => key.clone(),
                AlarmsCommand::List => unreachable!("listed above"),
            };
            let Some(operator) = c.operator.clone().filter(|o| !o.trim().is_empty()) else {
                bail!("--operator NAME is needed: the audit log keeps who acted");
            };
            let by = Actor {
                operator,
                station: station(c.station.as_deref()),
            };
            let after = book::act(&mut client, &url, &key, now_ms(), &action, &by)?;
            match after {
                Some(a) => print_alarms(&[a], c.json),
                None if c.json => print_alarms(&[], true),
                None => {
                    println!("{key}: back to normal, off the list");
                    Ok(())
                }
            }
        }
    }
}

/// One alarm as a JSON object.
pub fn alarm_json(a: &StoredAlarm) -> serde_json::Value {
    let m = &a.alarm;
    let (operator, ack_ms) = match &m.acknowledged {
        Some((t, o)) => (Some(o.clone()), Some(format_rfc3339(*t))),
        None => (None, None),
    };
    let shelf = match &m.state {
        tvilling_metrics::lifecycle::AlarmState::Shelved {
            reason, until_ms, ..
        } => serde_json::json!({"reason": reason, "until": format_rfc3339(*until_ms)}),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "key": m.key,
        "device": m.device,
        "severity": m.severity.as_str(),
        "priority": m.priority.as_str(),
        "state": m.state.as_str(),
        "text": m.text,
        "raised": format_rfc3339(m.raised_ms),
        "cleared": m.cleared_ms.map(format_rfc3339),
        "operator": operator,
        "station": a.ack_station,
        "acknowledged": ack_ms,
        "shelved": shelf,
        "chattering": m.chattering,
        "note": a.last_note.as_ref().map(|(o, s, t)| serde_json::json!({"operator": o, "station": s, "text": t})),
    })
}

fn print_alarms(alarms: &[StoredAlarm], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<serde_json::Value> = alarms.iter().map(alarm_json).collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<34} {:<7} {:<23} {:<20} {:<12} {:<12} text",
        "key", "prio", "state", "raised", "operator", "station"
    )?;
    for a in alarms {
        let m = &a.alarm;
        writeln!(
            out,
            "{:<34} {:<7} {:<23} {:<20} {:<12} {:<12} {}",
            m.key,
            m.priority.as_str(),
            m.state.as_str(),
            format_rfc3339(m.raised_ms),
            m.acknowledged.as_ref().map_or("-", |(_, o)| o.as_str()),
            a.ack_station.as_deref().unwrap_or("-"),
            m.text
        )?;
    }
    writeln!(out, "{} alarms", alarms.len())?;
    Ok(())
}
