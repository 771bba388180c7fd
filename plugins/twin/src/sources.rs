//! Running sources and their diagnostics. [`SourceDiagnostics`] is plain data refreshed once a
//! frame from the sources' counters and connection states, so panels and the snapshot read it
//! without locking anything.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use tvilling_sensors::apply::Ingest;
use tvilling_sensors::http::HttpSource;
use tvilling_sensors::mqtt::{Connection, MqttSource};
use tvilling_sensors::replay::ReplaySource;

/// Running sources, kept alive by the app.
#[derive(Resource, Default)]
pub struct LiveSources {
    pub mqtt: Vec<(String, MqttSource)>,
    pub http: Vec<(String, HttpSource)>,
    pub replay: Option<ReplaySource>,
    /// The recording every source writes to (`--record`).
    pub recording: Option<tvilling_sensors::replay::Recorder>,
}

/// One source's counters and state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRow {
    pub name: String,
    /// Its state in words ("connected", "3 polls", "finished"); `None`: running.
    pub state: Option<String>,
    pub accepted: u64,
    /// Rejections per reason.
    pub rejected: BTreeMap<&'static str, u64>,
    pub superseded: u64,
    /// Messages applied, and of them keep-alives (a device alive with nothing new).
    pub applied: u64,
    pub keep_alive: u64,
    /// The most recent rejections, oldest first.
    pub last_rejections: Vec<String>,
    /// MQTT: the connection as the client sees it.
    pub connection: Option<String>,
    /// HTTP: polls, failed requests, the last error.
    pub polls: Option<(u64, u64, Option<String>)>,
    /// Down, and why: an MQTT connection lost, an HTTP server whose last request failed.
    pub down: Option<String>,
}

impl SourceRow {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Every source's counters and state, in the order the sources were started.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct SourceDiagnostics {
    pub sources: Vec<SourceRow>,
}

impl SourceDiagnostics {
    /// Reads the counters and states now.
    pub fn collect(ingest: Option<&Ingest>, live: Option<&LiveSources>) -> SourceDiagnostics {
        let mut rows: Vec<SourceRow> = Vec::new();
        if let Some(ingest) = ingest {
            let table = ingest
                .0
                .sources
                .lock()
                .map(|t| t.clone())
                .unwrap_or_default();
            for (name, stats) in table {
                rows.push(SourceRow {
                    name,
                    accepted: stats.accepted.load(Ordering::Relaxed),
                    rejected: stats.rejected(),
                    superseded: stats.superseded.load(Ordering::Relaxed),
                    applied: stats.applied.load(Ordering::Relaxed),
                    keep_alive: stats.keep_alive.load(Ordering::Relaxed),
                    last_rejections: stats.last_rejections(),
                    ..default()
                });
            }
        }
        let Some(live) = live else {
            return SourceDiagnostics { sources: rows };
        };
        for (name, m) in &live.mqtt {
            let c = m.connection();
            let debug = format!("{c:?}");
            let mut down = None;
            let state = match c {
                Connection::Connecting => "connecting".to_string(),
                Connection::Connected => "connected".to_string(),
                Connection::Disconnected { reason, attempts } => {
                    down = Some(format!("disconnected: {reason}"));
                    format!("disconnected ({attempts} retries): {reason}")
                }
            };
            if let Some(r) = row(&mut rows, name) {
                r.state = Some(state);
                r.down = down;
                r.connection = Some(debug);
            }
        }
        for (name, h) in &live.http {
            let st = h.status();
            let text = match &st.last_error {
                Some(e) if st.failed_requests > 0 => {
                    format!("{} polls, {} failed: {e}", st.polls, st.failed_requests)
                }
                _ => format!("{} polls", st.polls),
            };
            if let Some(r) = row(&mut rows, name) {
                r.state = Some(text);
                r.down = st.is_failing().then(|| {
                    format!(
                        "the last request failed: {}",
                        st.last_error.as_deref().unwrap_or("?")
                    )
                });
                r.polls = Some((st.polls, st.failed_requests, st.last_error.clone()));
            }
        }
        if let Some(replay) = &live.replay
            && let Some(r) = row(&mut rows, "replay")
        {
            r.state = Some(
                if replay.is_finished() {
                    "finished"
                } else {
                    "playing"
                }
                .into(),
            );
        }
        SourceDiagnostics { sources: rows }
    }
}

/// The row of source `name`, added when the ingest table does not list it.
fn row<'a>(rows: &'a mut Vec<SourceRow>, name: &str) -> Option<&'a mut SourceRow> {
    if let Some(i) = rows.iter().position(|r| r.name == name) {
        return rows.get_mut(i);
    }
    rows.push(SourceRow {
        name: name.to_string(),
        ..default()
    });
    rows.last_mut()
}

/// Flushes the recording's waiting lines once they have waited long enough (each frame), so a
/// quiet stream's last messages are on disk too.
pub fn flush_recording(live: Option<Res<LiveSources>>) {
    if let Some(r) = live.as_ref().and_then(|l| l.recording.as_ref()) {
        r.flush_if_due();
    }
}

/// Refreshes [`SourceDiagnostics`] (once a frame, after apply).
pub fn refresh_diagnostics(
    ingest: Option<Res<Ingest>>,
    live: Option<Res<LiveSources>>,
    sumo: Option<Res<crate::sumo::SumoStatus>>,
    mut diagnostics: ResMut<SourceDiagnostics>,
    mut down: ResMut<tvilling_sensors::health::SourcesDown>,
) {
    let mut next = SourceDiagnostics::collect(ingest.as_deref(), live.as_deref());
    if let Some(s) = sumo
        && let Some(r) = row(&mut next.sources, "sumo")
    {
        r.state = Some(s.describe());
    }
    let now_down = tvilling_sensors::health::SourcesDown(
        next.sources
            .iter()
            .filter_map(|r| Some((r.name.clone(), r.down.clone()?)))
            .collect(),
    );
    if *down != now_down {
        *down = now_down;
    }
    if *diagnostics != next {
        *diagnostics = next;
    }
}
