//! History on disk and time travel. Every applied value and every alarm change is recorded
//! (on the writer thread, [`writer`]) to a store behind [`store::HistoryStore`] (SQLite in one
//! file). When the twin clock plays back a past moment, the device components show the state
//! rebuilt from the store for that moment (read on a reader thread, [`reader`]); live values
//! keep being recorded meanwhile, and going back to live rebuilds the state at the edge.
//!
//! Systems (in `PreUpdate`): [`HistorySystems::Record`] after the metrics (it reads
//! [`ValueApplied`] and [`AlarmChanged`]); [`HistorySystems::Show`] after apply and before
//! health (so health and alarms judge the state shown); clock requests from panels
//! ([`ClockRequest`]) are applied in `First`, after the clock has advanced.

pub mod block;
pub mod chunk;
pub mod conformance;
pub mod parquet;
pub mod pg;
pub mod reader;
pub mod segment;
pub mod state;
pub mod store;
pub mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use tvilling_metrics::alarms::{Alarm, AlarmChanged, Alarms, Cause, Severity};
use tvilling_metrics::metrics::{CityMetrics, SignalMetrics};
use tvilling_sensors::apply::{ValueApplied, write_state};
use tvilling_sensors::clock::{ClockSystems, TwinClock};
use tvilling_sensors::registry::{DeviceRegistry, Quantity};
use tvilling_sensors::state::{
    AirQualityState, Device, Health, LampState, Liveness, MeterState, SignalHeadState,
};

use reader::{ReadRequest, ReadResult, Reader};
use store::{AlarmRow, SqliteStore, StateAt, StoreError};
use writer::{Batch, Value, Writer};

/// Where history is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySettings {
    pub path: PathBuf,
    /// Values older than this (before the newest) are deleted, days.
    pub retention_days: f64,
    /// Only read: show the history (`--at`), record nothing.
    pub read_only: bool,
    /// Deleted when the twin closes (the demo's own store).
    pub temporary: bool,
}

/// The default retention, days.
pub const DEFAULT_RETENTION_DAYS: f64 = 30.0;

/// How recording and playback go, for panels (plain data, refreshed once a frame).
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct HistoryStatus {
    pub path: Option<PathBuf>,
    pub recording: bool,
    pub recorded: u64,
    pub alarms: u64,
    pub keyframes: u64,
    /// Values not recorded (after an error).
    pub lost: u64,
    /// Why there is no history, or why recording stopped.
    pub error: Option<String>,
    /// First and last recorded times.
    pub range: Option<(i64, i64)>,
    /// The moment whose state the components show, when playing back.
    pub shown_ms: Option<i64>,
    /// Devices registered when that state was written.
    pub shown_devices: usize,
}

/// Requests to the clock from panels and keys (intent; [`apply_clock_requests`] applies them).
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub enum ClockRequest {
    /// Back to the live edge.
    GoLive,
    /// Pause where the twin is (entering playback when live).
    Pause,
    /// Play from where the twin is, at a speed (twin seconds per second).
    Play(f64),
    /// Show this moment (Unix ms), paused.
    Seek(i64),
    /// Move by this many ms, paused.
    Step(i64),
    /// To the next (`true`) or previous recorded message, paused.
    StepMessage(bool),
}

/// The city metrics of the moment played back (`None` at the live edge): the panels and the
/// snapshot show these instead of the live edge's while someone plays back the past.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ShownMetrics(pub Option<CityMetrics>);

/// The alarm desk as it stood at the moment played back, rebuilt from the audit log (`None`
/// at the live edge): the alarm list shows it instead of the live desk's, and takes no action.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ShownDesk(pub Option<tvilling_metrics::lifecycle::AlarmBook>);

/// Minutes between the metrics rows that hold each signal head's figures (the rows between
/// hold the city's totals; playback takes the heads' from the last row that has them).
pub const SIGNALS_EVERY_MIN: i64 = 15;

/// City metrics as stored.
pub fn metrics_to_json(m: &CityMetrics) -> serde_json::Value {
    let signals: serde_json::Map<String, serde_json::Value> = m
        .signals
        .iter()
        .map(|(c, s)| {
            (
                c.clone(),
                serde_json::json!([s.green_ms, s.observed_ms, s.cycle_sum_ms, s.cycles]),
            )
        })
        .collect();
    let over: serde_json::Map<String, serde_json::Value> = m
        .hours_over_limit
        .iter()
        .map(|(p, h)| (p.as_str().to_string(), serde_json::json!(h)))
        .collect();
    serde_json::json!({
        "since": m.since_ms,
        "at": m.at_ms,
        "lighting_kwh": m.lighting_kwh,
        "lamp_hours_lit": m.lamp_hours_lit,
        "lamp_hours_dark_at_night": m.lamp_hours_dark_at_night,
        "building_kwh": m.building_kwh,
        "heating_kwh": m.heating_kwh,
        "over": over,
        "signals": signals,
        "alarms_raised": m.alarms_raised,
    })
}

/// City metrics from their stored form (`None` when it is not that form).
pub fn metrics_from_json(text: &str) -> Option<CityMetrics> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let mut m = CityMetrics::default();
    m.since_ms = v.get("since")?.as_i64()?;
    m.at_ms = v.get("at")?.as_i64()?;
    m.lighting_kwh = f("lighting_kwh")?;
    m.lamp_hours_lit = f("lamp_hours_lit")?;
    m.lamp_hours_dark_at_night = f("lamp_hours_dark_at_night")?;
    m.building_kwh = f("building_kwh")?;
    m.heating_kwh = f("heating_kwh")?;
    m.alarms_raised = v.get("alarms_raised")?.as_u64()?;
    for (name, h) in v.get("over")?.as_object()? {
        if let Some(l) = tvilling_metrics::limits::LIMITS
            .iter()
            .find(|l| l.pollutant.as_str() == name)
        {
            m.hours_over_limit.insert(l.pollutant, h.as_f64()?);
        }
    }
    // A row between the quarters has no heads' figures.
    let none = serde_json::Map::new();
    let signals = match v.get("signals") {
        Some(s) => s.as_object()?,
        None => &none,
    };
    for (c, s) in signals {
        let a = s.as_array()?;
        let n = |i: usize| a.get(i).and_then(serde_json::Value::as_i64);
        m.signals.insert(
            c.clone(),
            SignalMetrics {
                green_ms: n(0)?,
                observed_ms: n(1)?,
                cycle_sum_ms: n(2)?,
                cycles: n(3)? as u64,
            },
        );
    }
    Some(m)
}

/// A request for one device's recorded series (intent from the inspector's chart).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct SeriesRequest {
    pub device: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The last series read from the history, for the inspector's chart: (time, quantity, value),
/// at most [`reader::SERIES_POINTS`] per quantity.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct RecordedSeries {
    pub device: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub points: Vec<(i64, u8, f64)>,
    pub error: Option<String>,
}

/// Hands series requests to the reader thread.
pub fn request_series(
    mut requests: MessageReader<SeriesRequest>,
    recorder: Option<Res<HistoryRecorder>>,
) {
    let Some(reader) = recorder.as_ref().and_then(|r| r.reader.as_ref()) else {
        requests.clear();
        return;
    };
    if let Some(req) = requests.read().last() {
        reader.request(ReadRequest::Series {
            device: req.device.clone(),
            from_ms: req.from_ms,
            to_ms: req.to_ms,
        });
    }
}

/// The running recorder and reader.
#[derive(Resource)]
pub struct HistoryRecorder {
    writer: Option<Writer>,
    reader: Option<Reader>,
    devices: bevy::ecs::entity::EntityHashMap<u32>,
    sources: HashMap<String, u16>,
    /// The state request in flight and the newest moment wanted.
    in_flight: Option<i64>,
    wanted: Option<i64>,
    /// Going live: the state at the edge is being rebuilt.
    restoring: bool,
    /// The moment whose state is shown in playback.
    shown: Option<i64>,
    was_live: bool,
    /// Devices registered when the shown state was written (a registry generated later is
    /// shown again).
    shown_devices: usize,
    /// A temporary store's file, deleted on drop.
    temporary: Option<PathBuf>,
    /// The alarms an earlier run left on its list, to be ended in the audit log when this
    /// run records its first moment (its desk starts empty).
    left_by_last_run: Option<tvilling_metrics::lifecycle::AlarmBook>,
}

/// Deletes temporary stores beside `path` left by earlier demo runs that did not close (their
/// process is gone): `tvilling-demo-PID.sqlite` and its `-wal`/`-shm` files.
fn remove_stale_temporaries(path: &std::path::Path) {
    let Some(dir) = path.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("tvilling-demo-") else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let gone = !pid.is_empty()
            && rest[pid.len()..].starts_with(".sqlite")
            && !std::path::Path::new("/proc").join(&pid).exists();
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for HistoryRecorder {
    fn drop(&mut self) {
        // Stop the reader first, so the writer's connection is the last one and closing it
        // leaves one self-contained file (no `-wal` beside it); then write what is queued and
        // stop the writer, before a temporary file goes.
        self.reader = None;
        self.writer = None;
        if let Some(path) = &self.temporary {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
        }
    }
}

impl HistoryRecorder {
    /// Opens the store for recording (and reading), or for reading only.
    pub fn open(settings: &HistorySettings) -> Result<HistoryRecorder, StoreError> {
        if settings.temporary {
            remove_stale_temporaries(&settings.path);
        }
        let mut left_by_last_run = None;
        let writer = if settings.read_only {
            None
        } else {
            let mut store = SqliteStore::open(&settings.path)?;
            let log = store.audit(i64::MIN, i64::MAX, None)?;
            if let Some(last) = log.last() {
                let book = tvilling_metrics::lifecycle::AlarmBook::replay(&log, last.at_ms);
                if !book.alarms.is_empty() {
                    left_by_last_run = Some(book);
                }
            }
            let dropped = store::HistoryStore::retain_days(&mut store, settings.retention_days)?;
            if dropped > 0 {
                info!(
                    "history: {dropped} values older than {} days deleted",
                    settings.retention_days
                );
            }
            Some(
                Writer::start(Box::new(store)).map_err(|e| StoreError::Open {
                    path: settings.path.display().to_string(),
                    reason: format!("cannot start the writer thread: {e}"),
                })?,
            )
        };
        let reader = Reader::start(&settings.path, writer.as_ref().map(|w| w.status.clone()))?;
        Ok(HistoryRecorder {
            writer,
            reader: Some(reader),
            devices: Default::default(),
            sources: HashMap::new(),
            in_flight: None,
            wanted: None,
            restoring: false,
            shown: None,
            was_live: true,
            shown_devices: 0,
            temporary: settings.temporary.then(|| settings.path.clone()),
            left_by_last_run,
        })
    }

    /// Waits until everything handed over is written.
    pub fn flush(&mut self) {
        if let Some(w) = &mut self.writer {
            w.flush();
        }
    }

    /// What this run has written (after waiting for everything handed over to be written).
    pub fn written(&mut self) -> Option<Written> {
        self.flush();
        self.writer.as_ref().map(|w| Written {
            values: w.status.recorded.load(Ordering::Relaxed),
            alarm_changes: w.status.alarms.load(Ordering::Relaxed),
            keyframes: w.status.keyframes.load(Ordering::Relaxed),
            values_lost: w.status.lost.load(Ordering::Relaxed),
        })
    }
}

/// What one run has written to its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Values written to the file by this run (each value applied to a device once).
    pub values: u64,
    /// Alarm raises and clears written.
    pub alarm_changes: u64,
    /// Keyframes (the state of every device at the start of an hour) written.
    pub keyframes: u64,
    /// Values that could not be written (after a write error; the reason is the error).
    pub values_lost: u64,
}

/// What a history file holds, whoever wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub values: u64,
    pub keyframes: u64,
    /// The first and last recorded values' times.
    pub range: Option<(i64, i64)>,
    /// Bytes in use in the file.
    pub bytes: u64,
}

/// What the history at `path` holds (read through a reader's connection).
pub fn file_summary(path: &std::path::Path) -> Result<FileSummary, StoreError> {
    let mut store = SqliteStore::open_read_only(path)?;
    let summary = (|| {
        Ok::<_, StoreError>(FileSummary {
            values: store.count()?,
            keyframes: store.keyframe_times()?.len() as u64,
            range: store::HistoryStore::range(&mut store)?,
            bytes: store.bytes()?,
        })
    })();
    // A file damaged past its first pages fails here, not when opened: said with its name.
    summary.map_err(|e| match e {
        StoreError::Sqlite(e) => StoreError::Open {
            path: path.display().to_string(),
            reason: store::describe(&e),
        },
        other => other,
    })
}

/// A minute as the messages name it: `2026-11-23T14:40`, or `14:40` on the same day as `day`.
fn minute_text(t_ms: i64, day: Option<i64>) -> String {
    let full = tvilling_sensors::time::format_rfc3339(t_ms);
    let minute = full.get(..16).unwrap_or(&full);
    match day {
        Some(d) if d.div_euclid(86_400_000) == t_ms.div_euclid(86_400_000) => {
            minute.get(11..).unwrap_or(minute).to_string()
        }
        _ => minute.to_string(),
    }
}

/// Checks that the history at `path` can show the moment `at_ms`: the file can be read as a
/// Tvilling history of this schema and holds values around it. Returns the span it holds, or
/// one line saying why not (naming the span it does hold).
pub fn check_moment(path: &std::path::Path, at_ms: i64) -> Result<(i64, i64), String> {
    let summary = file_summary(path).map_err(|e| e.to_string())?;
    let Some((first, last)) = summary.range else {
        return Err(format!(
            "history {} holds no recorded values; nothing to show at {}",
            path.display(),
            minute_text(at_ms, None)
        ));
    };
    // A moment from the start of the first recorded minute to the end of the last one.
    if at_ms < first.div_euclid(60_000) * 60_000
        || at_ms > (last + 59_999).div_euclid(60_000) * 60_000
    {
        return Err(format!(
            "history {} holds {} to {}; {} is outside it",
            path.display(),
            minute_text(first, None),
            minute_text(last, Some(first)),
            minute_text(at_ms, Some(first))
        ));
    }
    Ok((first, last))
}

/// System sets of the history.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistorySystems {
    /// Shows the recorded state of the moment played back (after apply, before health).
    Show,
    /// Hands this frame's values and alarm changes to the writer (after the metrics).
    Record,
}

/// Hands this frame's applied values and alarm changes to the writer thread.
pub fn record(
    clock: Res<TwinClock>,
    recorder: Option<ResMut<HistoryRecorder>>,
    mut applied: MessageReader<ValueApplied>,
    mut alarms: MessageReader<AlarmChanged>,
    devices: Query<(&Device, &Liveness)>,
    metrics: Option<Res<CityMetrics>>,
    mut last_minute: Local<i64>,
    mut last_heads: Local<Option<usize>>,
    mut traffic: Option<ResMut<crate::sumo::TrafficRecord>>,
    mut desk: Option<ResMut<tvilling_metrics::lifecycle::AlarmDesk>>,
) {
    let traffic = traffic
        .as_mut()
        .map(|t| std::mem::take(&mut t.0))
        .unwrap_or_default();
    let mut audit = desk
        .as_mut()
        .map(|d| d.book.take_transitions())
        .unwrap_or_default();
    let Some(mut recorder) = recorder else {
        applied.clear();
        alarms.clear();
        return;
    };
    let r = &mut *recorder;
    let Some(writer) = &mut r.writer else {
        applied.clear();
        alarms.clear();
        return;
    };
    let mut batch = Batch::default();
    for v in applied.read() {
        let Ok((device, live)) = devices.get(v.entity) else {
            continue;
        };
        let next = r.devices.len() as u32;
        let d = *r.devices.entry(v.entity).or_insert_with(|| {
            batch
                .new_devices
                .push((next, device.id.clone(), device.kind.as_str().to_string()));
            next
        });
        let name = live.source.as_deref().unwrap_or("");
        let s = match r.sources.get(name) {
            Some(s) => *s,
            None => {
                let s = r.sources.len() as u16;
                r.sources.insert(name.to_string(), s);
                batch.new_sources.push((s, name.to_string()));
                s
            }
        };
        batch.values.push(Value {
            t_ms: v.time_ms,
            device: d,
            quantity: v.quantity.index(),
            value: v.value,
            source: s,
        });
    }
    // The metrics once a minute of twin time, for playback; each signal head's figures (the
    // whole city's are half a megabyte) once every quarter of an hour, the first minute
    // recorded and when heads come or go.
    if let Some(m) = metrics.as_deref()
        && m.at_ms.div_euclid(60_000) != *last_minute
    {
        let minute = m.at_ms.div_euclid(60_000);
        let quarter = minute.div_euclid(SIGNALS_EVERY_MIN)
            != last_minute.div_euclid(SIGNALS_EVERY_MIN)
            || last_heads.is_none_or(|h| h != m.signals.len());
        *last_minute = minute;
        *last_heads = Some(m.signals.len());
        let mut json = metrics_to_json(m);
        if !quarter && let Some(o) = json.as_object_mut() {
            o.remove("signals");
        }
        batch.metrics.push((m.at_ms, json.to_string()));
    }
    batch.traffic = traffic;
    if let Some(mut old) = r.left_by_last_run.take() {
        // The earlier run's alarms end where this run's record begins.
        let at = audit
            .first()
            .map_or(clock.edge_ms, |t| t.at_ms.min(clock.edge_ms));
        let mut closing = old.close_for_restart(at);
        closing.append(&mut audit);
        audit = closing;
    }
    batch.audit = audit;
    for a in alarms.read() {
        batch.alarms.push(AlarmRow {
            t_ms: a.at_ms,
            device: a.device.clone(),
            severity: a.severity.as_str().to_string(),
            text: a.text.clone(),
            raised: a.raised,
        });
    }
    writer.send(batch);
}

/// Applies clock requests (intent from panels and keys).
pub fn apply_clock_requests(
    mut requests: MessageReader<ClockRequest>,
    mut clock: ResMut<TwinClock>,
    recorder: Option<ResMut<HistoryRecorder>>,
    status: Option<Res<HistoryStatus>>,
) {
    let mut recorder = recorder;
    for req in requests.read() {
        let speed = clock.playback.map_or(1.0, |p| p.speed);
        let now = clock.now_ms;
        let earliest = status.as_ref().and_then(|s| s.range).map_or(now, |r| r.0);
        match *req {
            ClockRequest::GoLive => clock.go_live(),
            ClockRequest::Pause => clock.play_back(now, speed, true),
            ClockRequest::Play(s) => clock.play_back(now, s, false),
            ClockRequest::Seek(t) => clock.play_back(t.max(earliest), speed, true),
            ClockRequest::Step(ms) => clock.play_back((now + ms).max(earliest), speed, true),
            ClockRequest::StepMessage(forward) => {
                if let Some(r) = recorder.as_deref_mut().and_then(|r| r.reader.as_ref()) {
                    match r.neighbour(now, forward) {
                        Some(t) => clock.play_back(t, speed, true),
                        None if forward => clock.go_live(),
                        None => {}
                    }
                }
            }
        }
    }
}

/// A device's state components, as playback writes them.
type DeviceState<'a> = (
    Entity,
    &'a Device,
    &'a mut Liveness,
    Option<&'a mut SignalHeadState>,
    Option<&'a mut LampState>,
    Option<&'a mut MeterState>,
    Option<&'a mut AirQualityState>,
);

/// The state of the moment shown: asks the reader for it when the moment changes, and
/// writes it into the device components when it comes. Going back to live rebuilds the state
/// at the edge (everything recorded meanwhile).
pub fn show_recorded_state(
    clock: Res<TwinClock>,
    recorder: Option<ResMut<HistoryRecorder>>,
    registry: Res<DeviceRegistry>,
    mut alarms: Option<ResMut<Alarms>>,
    mut series: ResMut<RecordedSeries>,
    mut shown_metrics: ResMut<ShownMetrics>,
    mut shown_desk: ResMut<ShownDesk>,
    mut shown_traffic: ResMut<crate::sumo::ShownTraffic>,
    mut devices: Query<DeviceState<'static>>,
) {
    let Some(mut recorder) = recorder else { return };
    let r = &mut *recorder;
    let live = clock.is_live();
    if registry.len() != r.shown_devices {
        r.shown = None;
    }
    if live && shown_metrics.0.is_some() {
        shown_metrics.0 = None;
    }
    if live && shown_traffic.0.is_some() {
        shown_traffic.0 = None;
    }
    if live && shown_desk.0.is_some() {
        shown_desk.0 = None;
    }
    if live && !r.was_live {
        // Back to live: the values recorded during playback were not shown; rebuild.
        r.restoring = true;
        r.wanted = Some(clock.edge_ms);
        r.shown = None;
    } else if !live && r.shown != Some(clock.now_ms) {
        r.wanted = Some(clock.now_ms);
    }
    r.was_live = live;
    let Some(reader) = &r.reader else { return };
    if r.in_flight.is_none()
        && let Some(t) = r.wanted.take()
    {
        let after = r.writer.as_ref().map_or(0, |w| w.sent);
        if r.restoring
            && let Some(w) = &mut r.writer
        {
            // The edge's state includes this frame's values: hand them over first.
            w.send(Batch::default());
        }
        reader.request(ReadRequest::State { t_ms: t, after });
        r.in_flight = Some(t);
    }
    let mut state = None;
    while let Some(result) = reader.poll() {
        match result {
            ReadResult::State(s) => state = Some(s),
            ReadResult::Series {
                device,
                from_ms,
                to_ms,
                points,
            } => {
                *series = match points {
                    Ok(points) => RecordedSeries {
                        device,
                        from_ms,
                        to_ms,
                        points,
                        error: None,
                    },
                    Err(e) => RecordedSeries {
                        device,
                        from_ms,
                        to_ms,
                        points: Vec::new(),
                        error: Some(e.to_string()),
                    },
                };
            }
        }
    }
    let Some(state) = state else { return };
    r.in_flight = None;
    let state = match state {
        Ok(state) => state,
        Err(e) => {
            error!("history: {e}");
            return;
        }
    };
    if live && !r.restoring {
        return;
    }
    write_recorded(&state, live, &mut devices);
    if let Some(alarms) = alarms.as_deref_mut() {
        alarms.active = state
            .alarms
            .iter()
            .filter_map(|a| {
                let entity = registry.get(&a.device)?.entity;
                Some((
                    a.device.clone(),
                    Alarm {
                        device: a.device.clone(),
                        entity,
                        cause: Cause {
                            severity: Severity::parse(&a.severity)?,
                            pollutant: None,
                        },
                        text: a.text.clone(),
                        raised_ms: a.t_ms,
                    },
                ))
            })
            .collect();
    }
    if live {
        r.restoring = false;
    } else {
        shown_metrics.0 = state
            .metrics
            .as_ref()
            .and_then(|(_, json)| metrics_from_json(json));
        let traffic = state
            .traffic
            .as_ref()
            .and_then(|(t, json)| crate::sumo::RecordedTraffic::from_json(*t, json));
        if shown_traffic.0 != traffic {
            shown_traffic.0 = traffic;
        }
        shown_desk.0 = Some(state.desk);
        r.shown = Some(state.t_ms);
        r.shown_devices = registry.len();
    }
}

/// Writes a recorded state into the device components: every registered device starts from
/// "never seen", then takes each recorded value as of when it began to hold. Going live, a
/// device that has had a newer value since is left as it is.
fn write_recorded(state: &StateAt, live: bool, devices: &mut Query<DeviceState<'static>>) {
    // Each device's values: a run of the (device-ordered) values.
    let mut by_device: HashMap<&str, &[(u32, u8, store::Held)]> = HashMap::new();
    let mut rest = state.values.as_slice();
    while let Some(&(d, _, _)) = rest.first() {
        let n = rest.iter().take_while(|v| v.0 == d).count();
        let (run, next) = rest.split_at(n);
        if let Some((id, _)) = state.devices.get(d as usize) {
            by_device.insert(id.as_str(), run);
        }
        rest = next;
    }
    for (_, device, mut l, signal, lamp, meter, air) in devices.iter_mut() {
        if live && l.last_seen_ms.is_some_and(|s| s > state.t_ms) {
            continue;
        }
        let values = by_device.get(device.id.as_str());
        let mut signal = signal;
        let mut lamp = lamp;
        let mut meter = meter;
        let mut air = air;
        if let Some(s) = signal.as_deref_mut() {
            *s = SignalHeadState::default();
        }
        if let Some(s) = lamp.as_deref_mut() {
            *s = LampState::default();
        }
        if let Some(s) = meter.as_deref_mut() {
            *s = MeterState::default();
        }
        if let Some(s) = air.as_deref_mut() {
            *s = AirQualityState::default();
        }
        let mut seen: Option<(i64, u16)> = None;
        for (_, q, h) in values.into_iter().flat_map(|v| v.iter()) {
            let Some(q) = Quantity::from_index(*q) else {
                continue;
            };
            write_state(
                device.kind,
                h.since_ms,
                &[(q, h.value)],
                signal.as_mut().map(|s| s.reborrow()),
                lamp.as_mut().map(|s| s.reborrow()),
                meter.as_mut().map(|s| s.reborrow()),
                air.as_mut().map(|s| s.reborrow()),
            );
            if seen.is_none_or(|(t, _)| h.last_ms > t) {
                seen = Some((h.last_ms, h.source));
            }
        }
        let source = seen.and_then(|(_, s)| state.sources.get(s as usize).cloned());
        let health = if seen.is_some() {
            Health::Live
        } else {
            Health::NeverSeen
        };
        if l.last_seen_ms != seen.map(|s| s.0) || l.source != source || l.health != health {
            l.last_seen_ms = seen.map(|s| s.0);
            l.source = source;
            l.health = health;
            l.fault = None;
        }
    }
}

/// Refreshes [`HistoryStatus`] once a frame.
pub fn refresh_status(
    recorder: Option<Res<HistoryRecorder>>,
    status: Option<ResMut<HistoryStatus>>,
) {
    let (Some(r), Some(mut status)) = (recorder, status) else {
        return;
    };
    let mut next = status.clone();
    if let Some(w) = &r.writer {
        next.recording = w.status.error().is_none();
        next.recorded = w.status.recorded.load(Ordering::Relaxed);
        next.alarms = w.status.alarms.load(Ordering::Relaxed);
        next.keyframes = w.status.keyframes.load(Ordering::Relaxed);
        next.lost = w.status.lost.load(Ordering::Relaxed);
        if let Some(e) = w.status.error() {
            next.error = Some(e);
        }
    }
    if let Some(reader) = &r.reader {
        next.range = reader.range();
    }
    next.shown_ms = r.shown;
    next.shown_devices = r.shown_devices;
    if next != *status {
        *status = next;
    }
}

/// Recording, playback and clock requests.
pub struct HistoryPlugin {
    pub settings: Option<HistorySettings>,
}

impl Plugin for HistoryPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<ClockRequest>()
            .add_message::<SeriesRequest>()
            .init_resource::<RecordedSeries>()
            .init_resource::<ShownMetrics>()
            .init_resource::<ShownDesk>()
            .init_resource::<crate::sumo::ShownTraffic>()
            .add_message::<ValueApplied>()
            .add_message::<AlarmChanged>()
            .configure_sets(
                PreUpdate,
                (
                    HistorySystems::Show
                        .after(tvilling_sensors::apply::SensorSystems::Apply)
                        .before(tvilling_sensors::apply::SensorSystems::Health),
                    HistorySystems::Record.after(tvilling_metrics::MetricsSystems::Integrate),
                ),
            )
            .add_systems(
                First,
                apply_clock_requests
                    .after(ClockSystems::Advance)
                    .run_if(resource_exists::<TwinClock>),
            )
            .add_systems(
                PreUpdate,
                (
                    (request_series, show_recorded_state)
                        .chain()
                        .in_set(HistorySystems::Show),
                    (record, refresh_status)
                        .chain()
                        .in_set(HistorySystems::Record),
                ),
            );
        let Some(settings) = &self.settings else {
            return;
        };
        let mut status = HistoryStatus {
            path: Some(settings.path.clone()),
            ..default()
        };
        match HistoryRecorder::open(settings) {
            Ok(r) => {
                status.recording = r.writer.is_some();
                status.range = r.reader.as_ref().and_then(Reader::range);
                app.insert_resource(r);
            }
            Err(e) => {
                // The twin runs on without history and says so.
                error!("{e}; the twin runs on without history");
                status.error = Some(format!("{e}; running without history"));
            }
        }
        app.insert_resource(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_sensors::apply::{SensorApplyPlugin, SteppedInput};
    use tvilling_sensors::health::HealthPlugin;
    use tvilling_sensors::observation::{FieldValue, Observation};
    use tvilling_sensors::registry::DeviceKind;
    use tvilling_sensors::state::spawn_registered;

    const T0: i64 = 1_795_000_000_000;

    #[test]
    fn the_demos_temporary_store_is_deleted_when_the_twin_closes() {
        let path =
            std::env::temp_dir().join(format!("tvilling-temp-{}.sqlite", std::process::id()));
        let settings = |temporary| HistorySettings {
            path: path.clone(),
            retention_days: 1.0,
            read_only: false,
            temporary,
        };
        let kept = HistoryRecorder::open(&settings(false)).expect("open");
        drop(kept);
        assert!(path.exists(), "a named history stays");
        let temp = HistoryRecorder::open(&settings(true)).expect("open");
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists(), "the demo's store is gone");
        assert!(!std::path::Path::new(&format!("{}-wal", path.display())).exists());
    }

    #[test]
    fn stores_left_by_demo_runs_that_are_gone_are_removed() {
        let dir = std::env::temp_dir().join(format!("tvilling-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let ours = format!("tvilling-demo-{}.sqlite", std::process::id());
        for name in [
            "tvilling-demo-999999999.sqlite",
            "tvilling-demo-999999999.sqlite-wal",
            ours.as_str(),
            "tvilling-demo-notes.txt",
            "city.sqlite",
        ] {
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        remove_stale_temporaries(&dir.join(&ours));
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expect = vec![
            "city.sqlite".to_string(),
            ours.clone(),
            "tvilling-demo-notes.txt".into(),
        ];
        expect.sort();
        assert_eq!(left, expect);
    }

    #[test]
    fn metrics_keep_every_figure_through_their_stored_form() {
        let mut m = CityMetrics::default();
        m.since_ms = T0;
        m.at_ms = T0 + 60_000;
        m.lighting_kwh = 1.25;
        m.lamp_hours_lit = 3.5;
        m.lamp_hours_dark_at_night = 0.5;
        m.building_kwh = 100.0;
        m.heating_kwh = 200.0;
        m.alarms_raised = 4;
        m.hours_over_limit
            .insert(tvilling_metrics::limits::Pollutant::No2, 0.25);
        m.signals.insert(
            "controller/1".into(),
            SignalMetrics {
                green_ms: 20_000,
                observed_ms: 60_000,
                cycle_sum_ms: 120_000,
                cycles: 2,
            },
        );
        let back = metrics_from_json(&metrics_to_json(&m).to_string()).expect("parses");
        assert_eq!(back, m);
        assert_eq!(
            metrics_from_json("{\"since\": 1}"),
            None,
            "not the stored form"
        );
    }

    fn until(app: &mut App, what: &str, mut done: impl FnMut(&World) -> bool) {
        for _ in 0..2_000 {
            app.update();
            if done(app.world()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("timed out waiting for {what}");
    }

    /// `--at` in the window: a moment the file holds is played back; one outside it, or a
    /// file that is not a history, leaves the clock live and the reason in the status (which
    /// the timeline shows as a banner), with the span the file holds.
    #[test]
    fn a_moment_the_history_cannot_show_is_not_pretended_in_the_window() {
        use store::HistoryStore;
        let dir = std::env::temp_dir().join(format!("tvilling-history-at-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("h.sqlite");
        {
            let mut store = SqliteStore::open(&path).expect("open");
            let device = store.device_index("lamp-1", "lamp").expect("device");
            let rows: Vec<store::Row> = (0..=30)
                .map(|m| store::Row {
                    t_ms: T0 + m * 60_000,
                    device,
                    quantity: Quantity::LampOn.index(),
                    value: (m % 2) as f64,
                    source: 0,
                })
                .collect();
            store.write(&rows, &[]).expect("write");
            store.persist().expect("persist");
        }
        let not_history = dir.join("text.sqlite");
        std::fs::write(&not_history, "not a database\n".repeat(300)).expect("write");
        let twin = |file: &std::path::Path, at: i64| {
            let mut app = App::new();
            app.add_plugins(MinimalPlugins)
                .add_plugins(crate::LivePlugin {
                    settings: crate::LiveSettings {
                        history: Some(HistorySettings {
                            path: file.to_path_buf(),
                            retention_days: 30.0,
                            read_only: true,
                            temporary: false,
                        }),
                        at_ms: Some(at),
                        ..default()
                    },
                });
            let clock = app.world().resource::<TwinClock>().clone();
            let status = app.world().resource::<HistoryStatus>().clone();
            (clock, status)
        };
        let (clock, status) = twin(&path, T0 + 10 * 60_000);
        assert!(!clock.is_live());
        assert_eq!(clock.now_ms, T0 + 10 * 60_000);
        assert_eq!(status.error, None);
        for at in [T0 - 86_400_000, T0 + 3_600_000] {
            let (clock, status) = twin(&path, at);
            assert!(clock.is_live(), "playing back {at}, outside the file");
            let e = status.error.expect("the reason");
            assert!(e.contains(" holds ") && e.contains("is outside it"), "{e}");
            assert_eq!(status.range, None, "the timeline offers no span");
        }
        let (clock, status) = twin(&not_history, T0);
        assert!(clock.is_live());
        assert!(
            status
                .error
                .expect("the reason")
                .contains("not an SQLite file")
        );
    }

    /// A lamp that is on at even minutes and off at odd ones, recorded for an hour through the
    /// real plugins; then played back, charted from the store, and back to live.
    #[test]
    fn playback_shows_the_recorded_state_and_going_live_restores_the_edge() {
        let dir = std::env::temp_dir().join(format!("tvilling-history-app-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TwinClock::held(T0))
            .add_plugins((
                SensorApplyPlugin,
                HealthPlugin,
                tvilling_metrics::MetricsPlugin,
                HistoryPlugin {
                    settings: Some(HistorySettings {
                        path: dir.join("h.sqlite"),
                        retention_days: 30.0,
                        read_only: false,
                        temporary: false,
                    }),
                },
            ));
        let lamp = spawn_registered(
            app.world_mut(),
            "lamp-1".to_string(),
            DeviceKind::Lamp,
            vec![],
        );
        for m in 0..=60 {
            let t = T0 + m * 60_000;
            app.world_mut().resource_mut::<TwinClock>().set(t);
            app.world_mut()
                .resource_mut::<SteppedInput>()
                .observations
                .push(Observation {
                    source: "test".into(),
                    device: "lamp-1".into(),
                    time_ms: Some(t),
                    fields: vec![
                        ("on".into(), FieldValue::Bool(m % 2 == 0)),
                        ("power_w".into(), FieldValue::Number(m as f64)),
                    ],
                    ..Default::default()
                });
            app.update();
        }
        app.world_mut().resource_mut::<HistoryRecorder>().flush();
        let lamp_state = |w: &World| *w.get::<LampState>(lamp).expect("lamp");
        assert_eq!(lamp_state(app.world()).power_w, 60.0);
        // Back to 00:17: off, 17 W, last seen then.
        app.world_mut()
            .resource_mut::<TwinClock>()
            .play_back(T0 + 17 * 60_000 + 30_000, 1.0, true);
        until(&mut app, "the state at 00:17", |w| {
            w.get_resource::<HistoryStatus>()
                .is_some_and(|s| s.shown_ms == Some(T0 + 17 * 60_000 + 30_000))
        });
        let s = lamp_state(app.world());
        assert!(!s.on);
        assert_eq!(s.power_w, 17.0);
        let l = app.world().get::<Liveness>(lamp).expect("live");
        assert_eq!(l.last_seen_ms, Some(T0 + 17 * 60_000));
        assert_eq!(l.source.as_deref(), Some("test"));
        // New values while playing back are recorded, not shown.
        app.world_mut().resource_mut::<TwinClock>().edge_ms = T0 + 61 * 60_000;
        app.world_mut()
            .resource_mut::<SteppedInput>()
            .observations
            .push(Observation {
                source: "test".into(),
                device: "lamp-1".into(),
                time_ms: Some(T0 + 61 * 60_000),
                fields: vec![("power_w".into(), FieldValue::Number(61.0))],
                ..Default::default()
            });
        app.update();
        assert_eq!(lamp_state(app.world()).power_w, 17.0, "still the past");
        // The chart's series for the last hour, from the store.
        app.world_mut().write_message(SeriesRequest {
            device: "lamp-1".into(),
            from_ms: T0,
            to_ms: T0 + 30 * 60_000,
        });
        until(&mut app, "the series", |w| {
            w.resource::<RecordedSeries>().device == "lamp-1"
        });
        let series = app.world().resource::<RecordedSeries>().clone();
        let power: Vec<f64> = series
            .points
            .iter()
            .filter(|p| p.1 == Quantity::LampPowerW.index())
            .map(|p| p.2)
            .collect();
        assert_eq!(power, (0..=30).map(f64::from).collect::<Vec<_>>());
        // Live again: the edge's state, including the value recorded during playback.
        app.world_mut().resource_mut::<TwinClock>().go_live();
        until(&mut app, "the live edge", |w| {
            w.get::<LampState>(lamp).is_some_and(|s| s.power_w == 61.0)
        });
        assert!(lamp_state(app.world()).on, "on since minute 60");
    }
}
