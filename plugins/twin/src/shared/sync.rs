//! A twin's desk kept in step with the shared alarm book ([`SharedBookPlugin`]).
//!
//! Each frame, after the desk has annunciated (`MetricsSystems::Integrate`) and before the
//! history takes its transitions, [`forward`] hands the desk's new transitions to the store's
//! worker thread: the conditions this twin raised and cleared, and what its operator did.
//! The worker makes them in the store ([`book::record`], [`book::act`]); a second thread
//! LISTENs, and every alarm announced (by any twin, any desk, a script) is read back and put
//! on this desk as the store holds it ([`mirror`]): one book on every screen.
//!
//! One twin records a city's alarms: the one holding the store's advisory lock
//! [`LEADER_LOCK`]. The others keep their last [`BACKLOG_MS`] of changes and try for the lock
//! every second; when the recorder stops, its session ends, the lock is free, and the next
//! twin takes it within a second or two and writes its backlog. The model makes a change
//! already in the store a no-op (a raise of an active alarm, a clear of a cleared one), so
//! nothing is stored twice. While the store is unreachable, changes wait in order in a spool
//! file ([`SharedBookSettings::spool`]; counted, shown) and are written when it returns, by
//! this run or, after a restart, the next.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use tvilling_metrics::lifecycle::{Action, AlarmDesk, Transition};

use super::book::{self, Actor, BookError, OperatorAction, StoredAlarm};
use super::schema::{self, Role};
use super::{StoreError, connect};

/// The advisory lock whose holder records the alarms (the two keys of `pg_try_advisory_lock`).
pub const LEADER_LOCK: (i32, i32) = (0x7476_696c, 1);
/// Most recorder's changes written in one transaction.
const RECORD_BATCH: usize = 1_000;
/// How far back a twin that does not record keeps its changes, ms of wall time.
pub const BACKLOG_MS: u64 = 30_000;

/// Where this twin's desk shares its book.
#[derive(Debug, Clone)]
pub struct SharedBookSettings {
    pub url: String,
    /// The station this screen is (kept with each action in the audit log).
    pub station: String,
    /// Where changes wait on disk while the store cannot be reached (JSON lines, one change a
    /// line, oldest first); a twin started with a spool left there writes it first.
    pub spool: std::path::PathBuf,
}

/// The shared book as this twin sees it: plain data for panels.
#[derive(Resource, Debug, Clone, Default)]
pub struct SharedBook {
    pub url: String,
    pub station: String,
    pub connected: bool,
    /// This twin records the city's alarms (holds [`LEADER_LOCK`]).
    pub recording: bool,
    pub role: Option<Role>,
    /// Since when (wall ms) the store is unreachable, and why.
    pub down_since_ms: Option<i64>,
    pub down_reason: String,
    /// Changes waiting for the store (in the spool file while it is down).
    pub waiting: usize,
    /// Lines of a spool left by an earlier run that could not be read (kept beside it as
    /// `.unreadable`).
    pub spool_unreadable: usize,
    /// Changes written to the store by this twin, and alarms read back from it.
    pub written: u64,
    pub mirrored: u64,
    /// Actions the store refused (the reasons are on the desk's refused list).
    pub refused: u64,
}

enum Cmd {
    Record(Transition),
    Act {
        key: String,
        at_ms: i64,
        action: OperatorAction,
        by: Actor,
    },
    /// An alarm announced on the channel: read it back.
    Fetch(String),
    /// The listener (re)connected: read the whole list again.
    Resync,
}

enum Event {
    Alarm(String, Option<StoredAlarm>),
    All(Vec<StoredAlarm>),
    Refused(String),
    Unreadable(usize),
    Status {
        connected: bool,
        recording: bool,
        role: Option<Role>,
        reason: String,
        waiting: usize,
        written: u64,
    },
}

/// The channels to the worker.
#[derive(Resource)]
struct Link {
    commands: Sender<Cmd>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the worker holds: the connection, the changes waiting, the backlog of a non-recorder.
struct Worker {
    url: String,
    client: Option<postgres::Client>,
    recording: bool,
    role: Option<Role>,
    reason: String,
    waiting: VecDeque<Cmd>,
    backlog: VecDeque<(Instant, Transition)>,
    written: u64,
    events: Sender<Event>,
    spool: std::path::PathBuf,
    /// `waiting` changed since the spool was last written.
    dirty: bool,
}

impl Worker {
    fn status(&self) {
        let _ = self.events.send(Event::Status {
            connected: self.client.is_some(),
            recording: self.recording,
            role: self.role,
            reason: self.reason.clone(),
            waiting: self.waiting.len(),
            written: self.written,
        });
    }

    fn lost(&mut self, e: &StoreError) {
        self.client = None;
        self.recording = false;
        self.reason = e.to_string();
    }

    /// Connects (checking the schema) when not connected; `false` if the store is down.
    fn ensure(&mut self) -> bool {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return true;
        }
        self.client = None;
        self.recording = false;
        let opened = connect(&self.url).and_then(|mut c| {
            schema::check(&mut c, &self.url)?;
            let role = schema::role_of(&mut c, &self.url)?;
            Ok((c, role))
        });
        match opened {
            Ok((c, role)) => {
                self.client = Some(c);
                self.role = role;
                self.reason.clear();
                true
            }
            Err(e) => {
                self.reason = e.to_string();
                false
            }
        }
    }

    /// Tries for the recorder's lock (operators and engineers only); on taking it, writes
    /// the backlog.
    fn try_lead(&mut self) {
        if self.recording || self.role.is_none_or(|r| r < Role::Operator) {
            return;
        }
        let Some(c) = &mut self.client else { return };
        match c.query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LEADER_LOCK.0, &LEADER_LOCK.1],
        ) {
            Ok(row) if row.get::<_, bool>(0) => {
                self.recording = true;
                // What it kept while another recorded goes first, oldest first.
                let mut waiting: VecDeque<Cmd> =
                    self.backlog.drain(..).map(|b| Cmd::Record(b.1)).collect();
                waiting.extend(self.waiting.drain(..));
                self.waiting = waiting;
            }
            Ok(_) => {}
            Err(e) => self.lost(&StoreError::Unreachable {
                url: self.url.clone(),
                reason: super::describe(&e),
            }),
        }
    }

    /// Records a run of the recorder's changes in one transaction.
    fn record(&mut self, batch: &[Transition]) -> Result<(), StoreError> {
        let Some(c) = &mut self.client else {
            return Err(StoreError::Unreachable {
                url: self.url.clone(),
                reason: "not connected".into(),
            });
        };
        let n = book::record(c, &self.url, batch, &|_| false, "recorder")?;
        self.written += n as u64;
        Ok(())
    }

    /// Makes one command in the store; `Err` when the store went away (the command is kept).
    fn run(&mut self, cmd: &Cmd) -> Result<(), StoreError> {
        let Some(c) = &mut self.client else {
            return Err(StoreError::Unreachable {
                url: self.url.clone(),
                reason: "not connected".into(),
            });
        };
        let url = self.url.clone();
        match cmd {
            Cmd::Record(t) => {
                if !self.recording {
                    self.backlog.push_back((Instant::now(), t.clone()));
                    return Ok(());
                }
                let n = book::record(c, &url, std::slice::from_ref(t), &|_| false, "recorder")?;
                self.written += n as u64;
            }
            Cmd::Act {
                key,
                at_ms,
                action,
                by,
            } => match book::act(c, &url, key, *at_ms, action, by) {
                Ok(after) => {
                    self.written += 1;
                    let _ = self.events.send(Event::Alarm(key.clone(), after));
                }
                Err(BookError::Refused { reason }) => {
                    let _ = self.events.send(Event::Refused(reason));
                    // The desk shows the store's state again.
                    let after = book::get(c, &url, key)?;
                    let _ = self.events.send(Event::Alarm(key.clone(), after));
                }
                Err(BookError::Store(e @ StoreError::NotAllowed { .. })) => {
                    let _ = self.events.send(Event::Refused(e.to_string()));
                    let after = book::get(c, &url, key)?;
                    let _ = self.events.send(Event::Alarm(key.clone(), after));
                }
                Err(BookError::Store(e)) => return Err(e),
            },
            Cmd::Fetch(key) => {
                let after = book::get(c, &url, key)?;
                let _ = self.events.send(Event::Alarm(key.clone(), after));
            }
            Cmd::Resync => {
                let all = book::list(c, &url)?;
                let _ = self.events.send(Event::All(all));
            }
        }
        Ok(())
    }

    fn main(mut self, commands: Receiver<Cmd>, stop: Arc<AtomicBool>) {
        let mut last_try = Instant::now() - Duration::from_secs(10);
        let (spooled, unreadable) = read_spool(&self.spool);
        if unreadable > 0 {
            let _ = self.events.send(Event::Unreadable(unreadable));
        }
        self.waiting.extend(spooled);
        while !stop.load(Ordering::Relaxed) {
            let queued = self.waiting.len();
            match commands.recv_timeout(Duration::from_millis(200)) {
                Ok(cmd) => self.waiting.push_back(cmd),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(cmd) = commands.try_recv() {
                self.waiting.push_back(cmd);
            }
            let before = (self.client.is_some(), self.recording, self.waiting.len());
            if last_try.elapsed() >= Duration::from_secs(1) {
                last_try = Instant::now();
                if self.ensure() {
                    self.try_lead();
                }
            }
            let mut ran = 0;
            while self.client.is_some() && !self.waiting.is_empty() {
                // A run of records in one transaction (up to RECORD_BATCH).
                if self.recording && matches!(self.waiting.front(), Some(Cmd::Record(_))) {
                    let mut batch = Vec::new();
                    while batch.len() < RECORD_BATCH
                        && matches!(self.waiting.front(), Some(Cmd::Record(_)))
                    {
                        if let Some(Cmd::Record(t)) = self.waiting.pop_front() {
                            batch.push(t);
                        }
                    }
                    if let Err(e) = self.record(&batch) {
                        for t in batch.into_iter().rev() {
                            self.waiting.push_front(Cmd::Record(t));
                        }
                        self.lost(&e);
                        break;
                    }
                    ran += batch.len();
                    continue;
                }
                let Some(cmd) = self.waiting.pop_front() else {
                    break;
                };
                if let Err(e) = self.run(&cmd) {
                    self.waiting.push_front(cmd);
                    self.lost(&e);
                    break;
                }
                ran += 1;
            }
            self.dirty |= ran > 0 || self.waiting.len() != queued;
            self.keep_spool();
            let cutoff = Instant::now() - Duration::from_millis(BACKLOG_MS);
            while self.backlog.front().is_some_and(|b| b.0 < cutoff) {
                self.backlog.pop_front();
            }
            if before != (self.client.is_some(), self.recording, self.waiting.len())
                || self.client.is_none()
            {
                self.status();
            }
        }
    }
}

impl Worker {
    /// The spool on disk holds what waits, when anything waits while the store is down or
    /// a spool is being written back; gone once all is written.
    fn keep_spool(&mut self) {
        if !self.dirty {
            return;
        }
        let exists = self.spool.exists();
        if self.waiting.is_empty() {
            if exists {
                let _ = std::fs::remove_file(&self.spool);
            }
            self.dirty = false;
        } else if self.client.is_none() || exists {
            if write_spool(&self.spool, &self.waiting).is_ok() {
                self.dirty = false;
            }
        } else {
            self.dirty = false;
        }
    }
}

fn transition_json(t: &Transition) -> serde_json::Value {
    serde_json::json!({
        "at_ms": t.at_ms, "action": t.action.as_str(), "key": t.key, "device": t.device,
        "priority": t.priority.as_str(), "from": t.from, "to": t.to, "operator": t.operator,
        "note": t.note, "until_ms": t.until_ms,
    })
}

fn cmd_json(c: &Cmd) -> Option<serde_json::Value> {
    match c {
        Cmd::Record(t) => Some(serde_json::json!({"record": transition_json(t)})),
        Cmd::Act {
            key,
            at_ms,
            action,
            by,
        } => {
            let (kind, reason, until_ms) = match action {
                OperatorAction::Acknowledge => ("acknowledge", None, None),
                OperatorAction::Shelve { reason, until_ms } => {
                    ("shelve", Some(reason.as_str()), Some(*until_ms))
                }
                OperatorAction::Unshelve => ("unshelve", None, None),
                OperatorAction::Note(text) => ("note", Some(text.as_str()), None),
            };
            Some(serde_json::json!({"act": {
                "key": key, "at_ms": at_ms, "action": kind, "text": reason, "until_ms": until_ms,
                "operator": by.operator, "station": by.station,
            }}))
        }
        // Reading back is asked again when the store returns.
        Cmd::Fetch(_) | Cmd::Resync => None,
    }
}

fn cmd_from_json(v: &serde_json::Value) -> Option<Cmd> {
    use tvilling_metrics::lifecycle::Priority;
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    if let Some(t) = v.get("record") {
        return Some(Cmd::Record(Transition {
            at_ms: t.get("at_ms")?.as_i64()?,
            action: Action::parse(t.get("action")?.as_str()?)?,
            key: text(t, "key")?,
            device: text(t, "device")?,
            priority: Priority::parse(t.get("priority")?.as_str()?)?,
            from: text(t, "from"),
            to: text(t, "to"),
            operator: text(t, "operator"),
            note: text(t, "note")?,
            until_ms: t.get("until_ms").and_then(serde_json::Value::as_i64),
        }));
    }
    let a = v.get("act")?;
    let action = match a.get("action")?.as_str()? {
        "acknowledge" => OperatorAction::Acknowledge,
        "shelve" => OperatorAction::Shelve {
            reason: text(a, "text")?,
            until_ms: a.get("until_ms")?.as_i64()?,
        },
        "unshelve" => OperatorAction::Unshelve,
        "note" => OperatorAction::Note(text(a, "text")?),
        _ => return None,
    };
    Some(Cmd::Act {
        key: text(a, "key")?,
        at_ms: a.get("at_ms")?.as_i64()?,
        action,
        by: Actor {
            operator: text(a, "operator")?,
            station: text(a, "station")?,
        },
    })
}

fn write_spool(path: &std::path::Path, waiting: &VecDeque<Cmd>) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for c in waiting {
        if let Some(v) = cmd_json(c) {
            writeln!(f, "{v}")?;
        }
    }
    f.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A spool left on disk: its changes, oldest first, and how many lines could not be read
/// (those are kept in a file beside it, never dropped silently).
fn read_spool(path: &std::path::Path) -> (Vec<Cmd>, usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (Vec::new(), 0);
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line)
            .ok()
            .as_ref()
            .and_then(cmd_from_json)
        {
            Some(c) => out.push(c),
            None => bad.push(line),
        }
    }
    if !bad.is_empty() {
        let _ = std::fs::write(path.with_extension("unreadable"), bad.join("\n") + "\n");
    }
    (out, bad.len())
}

/// Listens on the book's channel and hands each key to the worker; reconnects every second
/// while the store is down, then asks for the whole list again.
fn listener(url: String, commands: Sender<Cmd>, stop: Arc<AtomicBool>) {
    let (keys, announced) = crossbeam_channel::unbounded::<String>();
    let forward = {
        let commands = commands.clone();
        std::thread::spawn(move || {
            for k in announced {
                if commands.send(Cmd::Fetch(k)).is_err() {
                    break;
                }
            }
        })
    };
    while !stop.load(Ordering::Relaxed) {
        if commands.send(Cmd::Resync).is_err() {
            break;
        }
        if book::listen(&url, &keys, &stop).is_err() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(keys);
    let _ = forward.join();
}

/// Keeps this twin's [`AlarmDesk`] in step with the shared book in a PostgreSQL store.
pub struct SharedBookPlugin {
    pub settings: SharedBookSettings,
}

impl Plugin for SharedBookPlugin {
    fn build(&self, app: &mut App) {
        let (commands, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, events) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            url: self.settings.url.clone(),
            client: None,
            recording: false,
            role: None,
            reason: String::new(),
            waiting: VecDeque::new(),
            backlog: VecDeque::new(),
            written: 0,
            events: ev_tx,
            spool: self.settings.spool.clone(),
            dirty: false,
        };
        {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("shared book".into())
                .spawn(move || worker.main(cmd_rx, stop))
                .expect("the shared book's thread");
        }
        {
            let (url, commands, stop) = (self.settings.url.clone(), commands.clone(), stop.clone());
            std::thread::Builder::new()
                .name("shared book listener".into())
                .spawn(move || listener(url, commands, stop))
                .expect("the shared book's listener");
        }
        app.insert_resource(Link {
            commands,
            events,
            stop,
        })
        .insert_resource(SharedBook {
            url: self.settings.url.clone(),
            station: self.settings.station.clone(),
            ..default()
        })
        .add_systems(
            PreUpdate,
            (
                (forward, mirror)
                    .chain()
                    .after(tvilling_metrics::MetricsSystems::Integrate)
                    .before(crate::history::HistorySystems::Record),
                // Forwarded once: the history takes them for its own log when it runs.
                clear_forwarded.after(crate::history::HistorySystems::Record),
            ),
        );
    }
}

/// Hands the desk's new transitions to the store: conditions to record, operators' actions
/// to make there.
fn forward(desk: Option<Res<AlarmDesk>>, link: Res<Link>, shared: Res<SharedBook>) {
    let Some(desk) = desk else { return };
    for t in &desk.book.pending {
        let cmd = match t.action {
            Action::Raise | Action::Clear | Action::Expire | Action::Restart => {
                Cmd::Record(t.clone())
            }
            Action::Acknowledge | Action::Shelve | Action::Unshelve => Cmd::Act {
                key: t.key.clone(),
                at_ms: t.at_ms,
                action: match t.action {
                    Action::Acknowledge => OperatorAction::Acknowledge,
                    Action::Shelve => OperatorAction::Shelve {
                        reason: t.note.clone(),
                        until_ms: t.until_ms.unwrap_or(i64::MAX),
                    },
                    _ => OperatorAction::Unshelve,
                },
                by: Actor {
                    operator: t.operator.clone().unwrap_or_else(|| desk.operator.clone()),
                    station: shared.station.clone(),
                },
            },
        };
        let _ = link.commands.send(cmd);
    }
}

fn clear_forwarded(desk: Option<ResMut<AlarmDesk>>) {
    if let Some(mut desk) = desk
        && !desk.book.pending.is_empty()
    {
        desk.book.pending.clear();
    }
}

/// Puts on the desk what the store holds, and the worker's state on [`SharedBook`].
fn mirror(desk: Option<ResMut<AlarmDesk>>, link: Res<Link>, mut shared: ResMut<SharedBook>) {
    let Some(mut desk) = desk else {
        while link.events.try_recv().is_ok() {}
        return;
    };
    while let Ok(ev) = link.events.try_recv() {
        match ev {
            Event::Alarm(key, Some(a)) => {
                desk.book.alarms.insert(key, a.alarm);
                shared.mirrored += 1;
            }
            Event::Alarm(key, None) => {
                desk.book.alarms.remove(&key);
                shared.mirrored += 1;
            }
            Event::All(all) => {
                // The store's list is the list (an alarm this twin raised comes back as soon
                // as the store has it).
                let keys: std::collections::HashSet<String> =
                    all.iter().map(|a| a.alarm.key.clone()).collect();
                desk.book.alarms.retain(|k, _| keys.contains(k));
                for a in all {
                    desk.book.alarms.insert(a.alarm.key.clone(), a.alarm);
                }
                shared.mirrored += keys.len() as u64;
            }
            Event::Unreadable(n) => {
                bevy::log::warn!(
                    "{n} lines of the alarm spool could not be read; kept beside it as .unreadable"
                );
                shared.spool_unreadable += n;
            }
            Event::Refused(why) => {
                bevy::log::warn!("alarm action refused by the shared book: {why}");
                if desk.refused.len() == 50 {
                    desk.refused.pop_front();
                }
                desk.refused.push_back(why);
                shared.refused += 1;
            }
            Event::Status {
                connected,
                recording,
                role,
                reason,
                waiting,
                written,
            } => {
                if connected {
                    shared.down_since_ms = None;
                } else if shared.down_since_ms.is_none() {
                    shared.down_since_ms = Some(wall_ms());
                }
                shared.connected = connected;
                shared.recording = recording;
                shared.role = role.or(shared.role);
                shared.down_reason = reason;
                shared.waiting = waiting;
                shared.written = written;
            }
        }
    }
}
