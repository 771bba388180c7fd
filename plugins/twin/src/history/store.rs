//! The history store behind one small interface ([`HistoryStore`]), with SQLite (bundled, one
//! file, no server) as its implementation.
//!
//! Tables: `devices` (id, kind), `sources`, `obs` (time, device, quantity, value, source:
//! every applied value, clustered by time), `keyframes` (the full state every
//! [`KEYFRAME_EVERY_MS`] of twin time: per device and quantity the value, since when it has
//! held and when it was last reported) and `alarms` (raised and cleared, with their times).
//! The state at any time t is the keyframe at or before t plus the values after it up to t.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// Full state is written at least this often (twin time)...
pub const KEYFRAME_EVERY_MS: i64 = 10 * 60_000;
/// ...and after at most this many values (a whole city reports this many in about two
/// minutes), so rebuilding any moment reads one keyframe and at most this many values.
pub const KEYFRAME_EVERY_ROWS: usize = 1_500_000;

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("history {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("history: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("history: keyframe at {0} is damaged")]
    Keyframe(i64),
}

/// One applied value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub t_ms: i64,
    /// The store's number for the device ([`HistoryStore::device_index`]).
    pub device: u32,
    /// [`tvilling_sensors::registry::Quantity`] as its index.
    pub quantity: u8,
    pub value: f64,
    pub source: u16,
}

/// A device's value of one quantity at some moment: since when it has held, when it was last
/// reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    pub since_ms: i64,
    pub last_ms: i64,
    pub value: f64,
    pub source: u16,
}

/// An alarm change as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub t_ms: i64,
    pub device: String,
    pub severity: String,
    pub text: String,
    pub raised: bool,
}

/// The twin's recorded state at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateAt {
    pub t_ms: i64,
    /// Device ids and kinds by the store's device number (shared: read once per store).
    pub devices: std::sync::Arc<Vec<(String, String)>>,
    /// (device number, quantity index, value), ordered by device number and quantity.
    pub values: Vec<(u32, u8, Held)>,
    /// Alarms active at t, as raised.
    pub alarms: Vec<AlarmRow>,
    /// The alarm desk as it stood at t, rebuilt from the audit log.
    pub desk: tvilling_metrics::lifecycle::AlarmBook,
    pub sources: Vec<String>,
    /// The city metrics last recorded at or before t (JSON), with their time.
    pub metrics: Option<(i64, String)>,
    /// The traffic (SUMO's vehicles and queues) last recorded at or before t, if within
    /// [`TRAFFIC_REACH_MS`] (JSON), with its time.
    pub traffic: Option<(i64, String)>,
}

/// How far back a recorded traffic moment still stands for `t` (twice its recording interval).
pub const TRAFFIC_REACH_MS: i64 = 20_000;

/// The state being recorded: (device, quantity) -> held value.
pub type Running = HashMap<(u32, u8), Held, std::hash::BuildHasherDefault<KeyHasher>>;

/// A hasher for (device number, quantity) keys: a multiply-rotate over the two small integers
/// (the keys are dense numbers the store itself gives out, not outside input).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Where history lives. One implementation today (SQLite); a shared store for several screens
/// (PostgreSQL) would be another.
pub trait HistoryStore: Send {
    /// The number of a device (added on first use).
    fn device_index(&mut self, id: &str, kind: &str) -> Result<u32, StoreError>;
    /// The number of a source (added on first use).
    fn source_index(&mut self, name: &str) -> Result<u16, StoreError>;
    /// Writes applied values and alarm changes in one transaction; a keyframe of `running`
    /// when one is due.
    fn write(
        &mut self,
        rows: &[Row],
        alarms: &[AlarmRow],
        keyframe: Option<(i64, &Running)>,
    ) -> Result<(), StoreError>;
    /// Records the city metrics as they stood at `t_ms` (JSON).
    fn write_metrics(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError>;
    /// Records the traffic as it stood at `t_ms` (JSON).
    fn write_traffic(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError>;
    /// Appends alarm transitions to the audit log.
    fn write_audit(
        &mut self,
        rows: &[tvilling_metrics::lifecycle::Transition],
    ) -> Result<(), StoreError>;
    /// The state at `t_ms`.
    fn state_at(&mut self, t_ms: i64) -> Result<StateAt, StoreError>;
    /// One device's values between two times: (time, quantity index, value).
    fn series(
        &mut self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u8, f64)>, StoreError>;
    /// Times of the first and last recorded values.
    fn range(&mut self) -> Result<Option<(i64, i64)>, StoreError>;
    /// Deletes everything older than `days` before the newest value; returns the rows deleted.
    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError>;
    /// The last keyframe's state and time (to continue recording after a restart).
    fn resume(&mut self) -> Result<(i64, Running), StoreError>;
}

/// Whether the audit log keeps each transition's action (logs from before it do not).
fn audit_has_actions(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let mut q = conn.prepare("SELECT name FROM pragma_table_info('alarm_audit')")?;
    let names = q.query_map([], |r| r.get::<_, String>(0))?;
    for n in names {
        if n? == "action" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    /// Device ids and kinds by number, as far as read (grows as devices are added).
    names: std::sync::Arc<Vec<(String, String)>>,
    /// The writer's lock on the file (none for readers): one Tvilling records to a file.
    _lock: Option<std::fs::File>,
    devices: HashMap<String, u32>,
    sources: HashMap<String, u16>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices(id INTEGER PRIMARY KEY, device TEXT UNIQUE NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS obs(t INTEGER NOT NULL, device INTEGER NOT NULL, q INTEGER NOT NULL, v REAL NOT NULL, src INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS obs_t ON obs(t);
CREATE INDEX IF NOT EXISTS obs_device ON obs(device, t);
CREATE TABLE IF NOT EXISTS keyframes(t INTEGER PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS alarms(t INTEGER NOT NULL, device TEXT NOT NULL, severity TEXT NOT NULL, text TEXT NOT NULL, raised INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alarms_t ON alarms(t);
CREATE TABLE IF NOT EXISTS metrics(t INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traffic(t INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_audit(t INTEGER NOT NULL, key TEXT NOT NULL, device TEXT NOT NULL, priority TEXT NOT NULL, from_state TEXT, to_state TEXT, operator TEXT, note TEXT NOT NULL, action TEXT, until_ms INTEGER);
CREATE INDEX IF NOT EXISTS alarm_audit_t ON alarm_audit(t);
";

/// The schema's version, kept in `meta`.
pub const SCHEMA_VERSION: &str = "1";

const HELD_BYTES: usize = 4 + 1 + 8 + 8 + 8 + 2;

fn encode(running: &Running) -> Vec<u8> {
    let mut out = Vec::with_capacity(running.len() * HELD_BYTES);
    for (k, h) in running {
        out.extend_from_slice(&k.0.to_le_bytes());
        out.push(k.1);
        out.extend_from_slice(&h.since_ms.to_le_bytes());
        out.extend_from_slice(&h.last_ms.to_le_bytes());
        out.extend_from_slice(&h.value.to_le_bytes());
        out.extend_from_slice(&h.source.to_le_bytes());
    }
    out
}

fn decode(t: i64, bytes: &[u8]) -> Result<Running, StoreError> {
    if !bytes.len().is_multiple_of(HELD_BYTES) {
        return Err(StoreError::Keyframe(t));
    }
    let mut out = Running::with_capacity_and_hasher(bytes.len() / HELD_BYTES, Default::default());
    for c in bytes.chunks_exact(HELD_BYTES) {
        let u32_at = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&c[i..i + 8]);
            i64::from_le_bytes(b)
        };
        let f64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&c[i..i + 8]);
            f64::from_le_bytes(b)
        };
        out.insert(
            (u32_at(0), c[4]),
            Held {
                since_ms: i64_at(5),
                last_ms: i64_at(13),
                value: f64_at(21),
                source: u16::from_le_bytes([c[29], c[30]]),
            },
        );
    }
    Ok(out)
}

/// Folds one value into a running state: a new value starts a new "since".
pub fn fold(running: &mut Running, r: &Row) {
    let e = running.entry((r.device, r.quantity)).or_insert(Held {
        since_ms: r.t_ms,
        last_ms: r.t_ms,
        value: r.value,
        source: r.source,
    });
    if r.t_ms < e.last_ms {
        return;
    }
    if e.value != r.value {
        e.since_ms = r.t_ms;
        e.value = r.value;
    }
    e.last_ms = r.t_ms;
    e.source = r.source;
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`. A file that is not a Tvilling history, is
    /// damaged, or is locked by another writer is an error with the reason.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| err(format!("cannot be opened for writing: {e}")))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(err(
                    "locked by another program (is another Tvilling recording to it?)".into(),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(err(format!("cannot be locked: {e}")));
            }
        }
        let conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        let mut store = Self::setup(conn).map_err(|e| match e {
            StoreError::Sqlite(e) => err(describe(&e)),
            other => other,
        })?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// The alarm audit log between two times (inclusive), oldest first; with `filter`, only
    /// the rows whose device, key, priority, states, operator or note contain it.
    pub fn audit(
        &self,
        from_ms: i64,
        to_ms: i64,
        filter: Option<&str>,
    ) -> Result<Vec<tvilling_metrics::lifecycle::Transition>, StoreError> {
        use tvilling_metrics::lifecycle::Action;
        let sql = if audit_has_actions(&self.conn)? {
            "SELECT t, key, device, priority, from_state, to_state, operator, note, action, until_ms FROM alarm_audit WHERE t >= ?1 AND t <= ?2 ORDER BY t, rowid"
        } else {
            "SELECT t, key, device, priority, from_state, to_state, operator, note, NULL, NULL FROM alarm_audit WHERE t >= ?1 AND t <= ?2 ORDER BY t, rowid"
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([from_ms, to_ms], |r| {
            let to: Option<String> = r.get(5)?;
            let operator: Option<String> = r.get(6)?;
            let note: String = r.get(7)?;
            let action = r
                .get::<_, Option<String>>(8)?
                .and_then(|a| Action::parse(&a))
                .unwrap_or(match note.as_str() {
                    // A row from before the action was kept.
                    "cleared" => Action::Clear,
                    "acknowledged" => Action::Acknowledge,
                    "unshelved" => Action::Unshelve,
                    "shelving expired" => Action::Expire,
                    _ if to.as_deref() == Some("shelved") && operator.is_some() => Action::Shelve,
                    _ => Action::Raise,
                });
            Ok(tvilling_metrics::lifecycle::Transition {
                at_ms: r.get(0)?,
                action,
                until_ms: r.get(9)?,
                key: r.get(1)?,
                device: r.get(2)?,
                priority: tvilling_metrics::lifecycle::Priority::parse(&r.get::<_, String>(3)?)
                    .unwrap_or(tvilling_metrics::lifecycle::Priority::Medium),
                from: r.get(4)?,
                to,
                operator,
                note,
            })
        })?;
        let mut out = Vec::new();
        for r in rows {
            let r = r?;
            let keep = filter.is_none_or(|f| {
                let f = f.to_lowercase();
                [
                    Some(r.key.as_str()),
                    Some(r.device.as_str()),
                    Some(r.priority.as_str()),
                    r.from.as_deref(),
                    r.to.as_deref(),
                    r.operator.as_deref(),
                    Some(r.note.as_str()),
                ]
                .into_iter()
                .flatten()
                .any(|v| v.to_lowercase().contains(&f))
            });
            if keep {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Writes one moment's JSON (the metrics, the traffic) with `sql` (`t`, `json`).
    fn write_moment(&mut self, sql: &str, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)?
            .execute(params![t_ms, json])?;
        Ok(())
    }

    /// Opens an existing store for reading only.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            return Err(err("no such file".into()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| err(describe(&e)))?;
        let mut store = SqliteStore {
            conn,
            _lock: None,
            names: std::sync::Arc::new(Vec::new()),
            devices: HashMap::new(),
            sources: HashMap::new(),
        };
        store.check_version().map_err(|e| match e {
            StoreError::Sqlite(e) => err(describe(&e)),
            other => other,
        })?;
        Ok(store)
    }

    fn setup(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        // Readers (the playback thread, another screen) read while the writer writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        if !audit_has_actions(&conn)? {
            // Logs written before the action was kept: the columns are added (old rows have
            // none; their action is read from their states and note).
            conn.execute_batch(
                "ALTER TABLE alarm_audit ADD COLUMN action TEXT; \
                 ALTER TABLE alarm_audit ADD COLUMN until_ms INTEGER;",
            )?;
        }
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?1)",
            [SCHEMA_VERSION],
        )?;
        let mut store = SqliteStore {
            conn,
            _lock: None,
            names: std::sync::Arc::new(Vec::new()),
            devices: HashMap::new(),
            sources: HashMap::new(),
        };
        store.check_version()?;
        {
            let mut q = store.conn.prepare("SELECT id, device FROM devices")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, u32>(0)?)))?;
            for row in rows {
                let (d, i) = row?;
                store.devices.insert(d, i);
            }
            let mut q = store.conn.prepare("SELECT id, name FROM sources")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, u16>(0)?)))?;
            for row in rows {
                let (n, i) = row?;
                store.sources.insert(n, i);
            }
        }
        Ok(store)
    }

    fn check_version(&mut self) -> Result<(), StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match v.as_deref() {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(other) => Err(StoreError::Open {
                path: self.conn.path().unwrap_or("?").to_string(),
                reason: format!("schema version {other}, this build reads {SCHEMA_VERSION}"),
            }),
            None => Err(StoreError::Open {
                path: self.conn.path().unwrap_or("?").to_string(),
                reason: "not a Tvilling history (no schema version)".into(),
            }),
        }
    }

    /// Bytes the file takes (pages in use).
    pub fn bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }

    /// The time of the recorded value just after (`forward`) or before `t_ms`.
    pub fn neighbour(&self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError> {
        let sql = if forward {
            "SELECT min(t) FROM obs WHERE t > ?1"
        } else {
            "SELECT max(t) FROM obs WHERE t < ?1"
        };
        Ok(self.conn.query_row(sql, [t_ms], |r| r.get(0))?)
    }

    /// The number of stored values.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM obs", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

/// An SQLite error in words a user can act on.
fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "not an SQLite file, or damaged".into(),
        Some(ErrorCode::DatabaseCorrupt) => "the file is damaged".into(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "locked by another program (is another Tvilling recording to it?)".into()
        }
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            format!("cannot be opened for writing: {e}")
        }
        _ => e.to_string(),
    }
}

impl HistoryStore for SqliteStore {
    fn device_index(&mut self, id: &str, kind: &str) -> Result<u32, StoreError> {
        if let Some(i) = self.devices.get(id) {
            return Ok(*i);
        }
        self.conn.execute(
            "INSERT INTO devices(device, kind) VALUES (?1, ?2)",
            params![id, kind],
        )?;
        let i = self.conn.last_insert_rowid() as u32;
        self.devices.insert(id.to_string(), i);
        Ok(i)
    }

    fn source_index(&mut self, name: &str) -> Result<u16, StoreError> {
        if let Some(i) = self.sources.get(name) {
            return Ok(*i);
        }
        self.conn
            .execute("INSERT INTO sources(name) VALUES (?1)", params![name])?;
        let i = self.conn.last_insert_rowid() as u16;
        self.sources.insert(name.to_string(), i);
        Ok(i)
    }

    fn write(
        &mut self,
        rows: &[Row],
        alarms: &[AlarmRow],
        keyframe: Option<(i64, &Running)>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO obs(t, device, q, v, src) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in rows {
                ins.execute(params![r.t_ms, r.device, r.quantity, r.value, r.source])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO alarms(t, device, severity, text, raised) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for a in alarms {
                ins.execute(params![a.t_ms, a.device, a.severity, a.text, a.raised])?;
            }
            if let Some((t, running)) = keyframe {
                tx.execute(
                    "INSERT OR REPLACE INTO keyframes(t, state) VALUES (?1, ?2)",
                    params![t, encode(running)],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn write_metrics(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.write_moment(
            "INSERT OR REPLACE INTO metrics(t, json) VALUES (?1, ?2)",
            t_ms,
            json,
        )
    }

    fn write_audit(
        &mut self,
        rows: &[tvilling_metrics::lifecycle::Transition],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO alarm_audit(t, key, device, priority, from_state, to_state, operator, note, action, until_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in rows {
                st.execute(params![
                    r.at_ms,
                    r.key,
                    r.device,
                    r.priority.as_str(),
                    r.from,
                    r.to,
                    r.operator,
                    r.note,
                    r.action.as_str(),
                    r.until_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn write_traffic(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.write_moment(
            "INSERT OR REPLACE INTO traffic(t, json) VALUES (?1, ?2)",
            t_ms,
            json,
        )
    }

    fn state_at(&mut self, t_ms: i64) -> Result<StateAt, StoreError> {
        let kf: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT t, state FROM keyframes WHERE t <= ?1 ORDER BY t DESC LIMIT 1",
                [t_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (from, mut running) = match kf {
            Some((t, bytes)) => (t, decode(t, &bytes)?),
            None => (i64::MIN, Running::default()),
        };
        {
            let mut q = self.conn.prepare_cached(
                "SELECT t, device, q, v, src FROM obs WHERE t > ?1 AND t <= ?2 ORDER BY t, rowid",
            )?;
            let rows = q.query_map(params![from, t_ms], |r| {
                Ok(Row {
                    t_ms: r.get(0)?,
                    device: r.get(1)?,
                    quantity: r.get(2)?,
                    value: r.get(3)?,
                    source: r.get(4)?,
                })
            })?;
            for r in rows {
                fold(&mut running, &r?);
            }
        }
        // Device names: only those added since the last read.
        {
            let known = self.names.len() as i64;
            let mut q = self.conn.prepare_cached(
                "SELECT id, device, kind FROM devices WHERE id >= ?1 ORDER BY id",
            )?;
            let rows = q.query_map([known.max(1)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut added: Vec<(i64, String, String)> = Vec::new();
            for r in rows {
                added.push(r?);
            }
            if !added.is_empty() {
                let names = std::sync::Arc::make_mut(&mut self.names);
                for (i, d, k) in added {
                    let i = i as usize;
                    if names.len() <= i {
                        names.resize(i + 1, (String::new(), String::new()));
                    }
                    names[i] = (d, k);
                }
            }
        }
        let known = self.names.len();
        let mut values: Vec<(u32, u8, Held)> = running
            .into_iter()
            .filter(|((d, _), _)| (*d as usize) < known)
            .map(|((d, q), h)| (d, q, h))
            .collect();
        values.sort_unstable_by_key(|v| (v.0, v.1));
        let mut alarms: Vec<AlarmRow> = Vec::new();
        {
            // Each device's last alarm change at or before t; active when it was a raise.
            let mut q = self.conn.prepare_cached(
                "SELECT t, device, severity, text, raised, max(rowid) FROM alarms \
                 WHERE t <= ?1 GROUP BY device",
            )?;
            let rows = q.query_map([t_ms], |r| {
                Ok(AlarmRow {
                    t_ms: r.get(0)?,
                    device: r.get(1)?,
                    severity: r.get(2)?,
                    text: r.get(3)?,
                    raised: r.get(4)?,
                })
            })?;
            for r in rows {
                let r = r?;
                if r.raised {
                    alarms.push(r);
                }
            }
        }
        let mut sources = Vec::new();
        {
            let mut q = self
                .conn
                .prepare_cached("SELECT id, name FROM sources ORDER BY id")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, u16>(0)?, r.get::<_, String>(1)?)))?;
            for r in rows {
                let (i, n) = r?;
                if sources.len() <= i as usize {
                    sources.resize(i as usize + 1, String::new());
                }
                sources[i as usize] = n;
            }
        }
        let metrics: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT t, json FROM metrics WHERE t <= ?1 ORDER BY t DESC LIMIT 1")?
            .query_row([t_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let traffic: Option<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT t, json FROM traffic WHERE t <= ?1 AND t > ?2 ORDER BY t DESC LIMIT 1",
            )?
            .query_row([t_ms, t_ms.saturating_sub(TRAFFIC_REACH_MS)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let desk = tvilling_metrics::lifecycle::AlarmBook::replay(
            &self.audit(i64::MIN, t_ms, None)?,
            t_ms,
        );
        Ok(StateAt {
            t_ms,
            desk,
            metrics,
            traffic,
            devices: self.names.clone(),
            values,
            alarms,
            sources,
        })
    }

    fn series(
        &mut self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u8, f64)>, StoreError> {
        let mut q = self.conn.prepare_cached(
            "SELECT o.t, o.q, o.v FROM obs o JOIN devices d ON d.id = o.device \
             WHERE d.device = ?1 AND o.t >= ?2 AND o.t <= ?3 ORDER BY o.t, o.rowid",
        )?;
        let rows = q.query_map(params![device, from_ms, to_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn range(&mut self) -> Result<Option<(i64, i64)>, StoreError> {
        let r: (Option<i64>, Option<i64>) =
            self.conn
                .query_row("SELECT min(t), max(t) FROM obs", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        Ok(match r {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError> {
        let Some((_, newest)) = self.range()? else {
            return Ok(0);
        };
        let cut = newest - (days * 86_400_000.0) as i64;
        // Keep the newest keyframe at or before the cut, so the state at the cut still builds.
        let keep: Option<i64> =
            self.conn
                .query_row("SELECT max(t) FROM keyframes WHERE t <= ?1", [cut], |r| {
                    r.get(0)
                })?;
        let cut = keep.map_or(cut, |k| k.min(cut));
        let n = self.conn.execute("DELETE FROM obs WHERE t < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM keyframes WHERE t < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM alarms WHERE t < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM metrics WHERE t < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM traffic WHERE t < ?1", [cut])?;
        self.conn
            .execute("DELETE FROM alarm_audit WHERE t < ?1", [cut])?;
        Ok(n as u64)
    }

    fn resume(&mut self) -> Result<(i64, Running), StoreError> {
        let newest = self.range()?.map_or(i64::MIN, |r| r.1);
        let state = self.state_at(newest)?;
        let mut running = Running::default();
        for (d, q, h) in state.values {
            running.insert((d, q), h);
        }
        Ok((newest, running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tvilling-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join("h.sqlite")
    }

    fn rows(store: &mut SqliteStore, from: i64, to: i64, step: i64) -> Vec<Row> {
        let d = store.device_index("lamp-1", "lamp").expect("device");
        let s = store.source_index("simulator").expect("source");
        (from..to)
            .step_by(step as usize)
            .map(|t| Row {
                t_ms: t,
                device: d,
                quantity: 1,
                value: ((t / step) % 2) as f64,
                source: s,
            })
            .collect()
    }

    #[test]
    fn the_state_at_any_time_is_rebuilt_from_keyframes_and_values() {
        let path = temp("state");
        let mut store = SqliteStore::open(&path).expect("open");
        let all = rows(&mut store, 0, 3_600_000, 60_000);
        let mut running = Running::default();
        // Written in batches of 10 minutes, a keyframe with each.
        for chunk in all.chunks(10) {
            for r in chunk {
                fold(&mut running, r);
            }
            let t = chunk.last().expect("row").t_ms;
            store.write(chunk, &[], Some((t, &running))).expect("write");
        }
        for t in [0, 59_999, 60_000, 1_234_567, 3_540_000, 9_999_999] {
            let s = store.state_at(t).expect("state");
            let expect_t = (t.min(3_540_000) / 60_000) * 60_000;
            let (d, q, h) = &s.values[0];
            assert_eq!(s.devices[*d as usize].0, "lamp-1");
            assert_eq!(*q, 1);
            assert_eq!(h.last_ms, expect_t, "at {t}");
            assert_eq!(h.value, ((expect_t / 60_000) % 2) as f64);
            assert_eq!(h.since_ms, expect_t, "the value changes every minute");
            assert_eq!(s.sources[h.source as usize], "simulator");
        }
        assert!(store.state_at(-1).expect("state").values.is_empty());
        assert_eq!(store.range().expect("range"), Some((0, 3_540_000)));
        let series = store.series("lamp-1", 60_000, 180_000).expect("series");
        assert_eq!(series.len(), 3);
    }

    #[test]
    fn retention_drops_old_rows_and_keeps_the_state_at_the_cut() {
        let path = temp("retention");
        let mut store = SqliteStore::open(&path).expect("open");
        let day = 86_400_000;
        let all = rows(&mut store, 0, 10 * day, 3_600_000);
        let mut running = Running::default();
        for chunk in all.chunks(24) {
            for r in chunk {
                fold(&mut running, r);
            }
            let t = chunk.last().expect("row").t_ms;
            store.write(chunk, &[], Some((t, &running))).expect("write");
        }
        let before = store.count().expect("count");
        let dropped = store.retain_days(3.0).expect("retain");
        assert!(dropped > 0);
        assert_eq!(store.count().expect("count"), before - dropped);
        let (first, last) = store.range().expect("range").expect("rows");
        assert_eq!(last, 10 * day - 3_600_000);
        assert!(
            first >= last - 3 * day - day,
            "{first}: older than the cut and its keyframe"
        );
        assert!(first < last - 3 * day + 1, "the cut itself is kept");
        // The state at the cut still builds.
        let s = store.state_at(last - 3 * day).expect("state");
        assert_eq!(s.values.len(), 1);
    }

    #[test]
    fn alarms_active_at_a_time_come_from_their_changes() {
        let path = temp("alarms");
        let mut store = SqliteStore::open(&path).expect("open");
        let a = |t: i64, device: &str, raised: bool| AlarmRow {
            t_ms: t,
            device: device.into(),
            severity: "fault".into(),
            text: "dark".into(),
            raised,
        };
        store
            .write(
                &[],
                &[a(10, "x", true), a(20, "y", true), a(30, "x", false)],
                None,
            )
            .expect("write");
        let active = |t| -> Vec<String> {
            let mut s = SqliteStore::open_read_only(&path).expect("read");
            s.state_at(t)
                .expect("state")
                .alarms
                .into_iter()
                .map(|a| a.device)
                .collect()
        };
        assert_eq!(active(5), Vec::<String>::new());
        assert_eq!(active(25), ["x", "y"]);
        assert_eq!(active(35), ["y"]);
    }

    #[test]
    fn a_damaged_or_locked_file_is_refused_with_the_reason() {
        let path = temp("bad");
        std::fs::write(
            &path,
            b"this is not a database, it is a shopping list\n".repeat(100),
        )
        .expect("write");
        let e = SqliteStore::open(&path).err().expect("refused").to_string();
        assert!(e.contains("not an SQLite file, or damaged"), "{e}");
        let path = temp("locked");
        let first = SqliteStore::open(&path).expect("first writer");
        let e = SqliteStore::open(&path).err().expect("refused").to_string();
        assert!(e.contains("locked by another program"), "{e}");
        drop(first);
        assert!(SqliteStore::open(&path).is_ok(), "free again");
        let e = SqliteStore::open_read_only(&temp("missing"))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("no such file"), "{e}");
    }
}
