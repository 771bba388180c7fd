//! The history store behind one small interface ([`HistoryStore`]), with SQLite (bundled, one
//! file, no server) as its implementation.
//!
//! Tables: `devices` (id, kind), `sources`, `blocks` (the values, in hour segments of twin
//! time: one row per segment and block of neighbouring devices, holding each of their series'
//! state carried in from the hour before and its points in the hour, see [`super::block`]),
//! `segments` (each recorded hour and how many series carried a state into it), `alarms`
//! (raised and cleared, with their times), `alarm_audit`, `metrics` and `traffic`. The state
//! at any time t is the blocks of t's hour (or the last recorded hour before it): each
//! series' carried state with its points up to t folded in.
//!
//! Schema 1 stored one row per value (84 bytes a value with its two indexes), schema 2 a row
//! per series and hour with a keyframe of the whole city beside them; such a file is converted
//! in place when it is opened for recording or with `--migrate-history`, and refused with that
//! advice when it is only read.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::block::{self, BlockReader};
use super::chunk::{self, BitReader, Point, ValueState};
use super::segment::{self, Recording, SqliteSink};

/// Values are kept in segments of this much twin time (aligned to the epoch), one chunk per
/// series and segment: long enough that a series reporting every minute fills its chunk with
/// 60 values, so a chunk's row costs little per value.
pub const SEGMENT_MS: i64 = 60 * 60_000;
/// The full state is carried into every segment (hour) that holds values, so a moment is
/// rebuilt from one segment's blocks.
pub const KEYFRAME_EVERY_MS: i64 = SEGMENT_MS;

/// The segment a moment falls in.
pub fn segment_of(t_ms: i64) -> i64 {
    t_ms.div_euclid(SEGMENT_MS)
}

/// A series (one quantity of one device) as the chunks table numbers it.
pub(super) fn series_of(device: u32, quantity: u8) -> i64 {
    (i64::from(device) << 8) | i64::from(quantity)
}

pub(super) fn series_parts(series: i64) -> (u32, u8) {
    ((series >> 8) as u32, (series & 0xff) as u8)
}

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("history {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("history: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared store's server refused or failed (its own message).
    #[error("history store: {0}")]
    Server(String),
    #[error("history: keyframe at {0} is damaged")]
    Keyframe(i64),
    #[error("history: the values of {device} in the hour from {at_ms} ms: {damaged}")]
    Chunk {
        device: String,
        at_ms: i64,
        damaged: String,
    },
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
    /// Chunks that could not be read (device, quantity, the hour, why); the rest of the
    /// state is read without them.
    pub damaged: Vec<String>,
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
    /// Takes applied values (into the current segment's chunks, written by [`Self::persist`]
    /// and [`Self::keyframe`]) and writes alarm changes.
    fn write(&mut self, rows: &[Row], alarms: &[AlarmRow]) -> Result<(), StoreError>;
    /// Writes the values taken and `running`, the state as it stood at `t_ms` (the last
    /// moment before a keyframe interval begins), as a keyframe; a segment that ends there is
    /// closed.
    fn keyframe(&mut self, t_ms: i64, running: &Running) -> Result<(), StoreError>;
    /// Writes the values taken since the last call (the current segment's chunks that grew).
    fn persist(&mut self) -> Result<(), StoreError>;
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
    /// Deletes everything older than `days` before the newest value; returns the values
    /// deleted.
    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError>;
    /// The last keyframe's state and time (to continue recording after a restart).
    fn resume(&mut self) -> Result<(i64, Running), StoreError>;
    /// The time of the recorded value just after (`forward`) or before `t_ms`.
    fn neighbour(&mut self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError>;
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

/// A hasher for series numbers (dense numbers the store gives out).
#[derive(Debug, Default, Clone, Copy)]
pub struct SeriesHasher(u64);

impl std::hash::Hasher for SeriesHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, i: i64) {
        self.0 = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
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
    /// The segment being written.
    rec: Recording,
    /// Further read-only connections, for reading a long span on several cores.
    aux: Vec<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices(id INTEGER PRIMARY KEY, device TEXT UNIQUE NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS alarms(t INTEGER NOT NULL, device TEXT NOT NULL, severity TEXT NOT NULL, text TEXT NOT NULL, raised INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alarms_t ON alarms(t);
CREATE TABLE IF NOT EXISTS metrics(t INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traffic(t INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_audit(t INTEGER NOT NULL, key TEXT NOT NULL, device TEXT NOT NULL, priority TEXT NOT NULL, from_state TEXT, to_state TEXT, operator TEXT, note TEXT NOT NULL, action TEXT, until_ms INTEGER);
CREATE INDEX IF NOT EXISTS alarm_audit_t ON alarm_audit(t);
";

/// The blocks (schema 3): a block's row id is its segment and block number
/// ([`segment::block_id`]), so a segment's blocks are one range of the table; `k` counts the
/// series that carried a state in, `n` the points, `t_first` and `t_last` their times (none
/// without points).
const BLOCKS: &str = "
CREATE TABLE IF NOT EXISTS blocks(id INTEGER PRIMARY KEY, seg INTEGER NOT NULL, block INTEGER NOT NULL, k INTEGER NOT NULL, n INTEGER NOT NULL, t_first INTEGER, t_last INTEGER, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_block ON blocks(block, seg);
CREATE TABLE IF NOT EXISTS segments(seg INTEGER PRIMARY KEY, carried INTEGER NOT NULL);
";

/// The schema's version, kept in `meta`: 3 is the block layout.
pub const SCHEMA_VERSION: &str = "3";

/// The bytes of a schema 2 keyframe's state: a format byte and a count, then the entries
/// ordered by quantity and device, each as differences from the one before (device), from the
/// keyframe's time (since, last), the value coded as in a chunk, and the source when it
/// changes (written only to make such files in tests).
#[cfg(test)]
fn encode(t_ms: i64, running: &Running) -> Vec<u8> {
    let mut entries: Vec<(&(u32, u8), &Held)> = running.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| (k.1, k.0));
    let mut w = chunk::BitWriter::default();
    w.put(2, 8);
    w.put(entries.len() as u64, 32);
    let (mut device, mut quantity, mut source) = (-1i64, 0u8, 0u16);
    let mut value = ValueState::default();
    for ((d, q), h) in entries {
        if *q != quantity {
            w.put(1, 1);
            w.put(u64::from(*q), 8);
            quantity = *q;
            device = -1;
        } else {
            w.put(0, 1);
        }
        chunk::put_signed(&mut w, i64::from(*d) - device - 1);
        device = i64::from(*d);
        chunk::put_signed(&mut w, t_ms.wrapping_sub(h.since_ms));
        chunk::put_signed(&mut w, t_ms.wrapping_sub(h.last_ms));
        chunk::put_value(&mut w, &mut value, h.value.to_bits());
        if h.source == source {
            w.put(0, 1);
        } else {
            w.put(1, 1);
            w.put(u64::from(h.source), 16);
            source = h.source;
        }
    }
    w.bytes().to_vec()
}

/// Hands each of a schema 2 keyframe's entries to `each`, with the keyframe's count of
/// entries.
fn decode_entries(
    t: i64,
    bytes: &[u8],
    mut each: impl FnMut(usize, u32, u8, Held),
) -> Result<(), StoreError> {
    if bytes.first() != Some(&2) {
        return Err(StoreError::Keyframe(t));
    }
    let mut r = BitReader::new(&bytes[1..]);
    (|| {
        let n = r.get(32)? as usize;
        let (mut device, mut quantity, mut source) = (-1i64, 0u8, 0u16);
        let mut value = ValueState::default();
        for _ in 0..n {
            if r.get(1)? == 1 {
                quantity = r.get(8)? as u8;
                device = -1;
            }
            device = device
                .checked_add(chunk::get_signed(&mut r)?)?
                .checked_add(1)?;
            let since_ms = t.wrapping_sub(chunk::get_signed(&mut r)?);
            let last_ms = t.wrapping_sub(chunk::get_signed(&mut r)?);
            chunk::get_value(&mut r, &mut value)?;
            if r.get(1)? == 1 {
                source = r.get(16)? as u16;
            }
            each(
                n,
                u32::try_from(device).ok()?,
                quantity,
                Held {
                    since_ms,
                    last_ms,
                    value: f64::from_bits(value.bits),
                    source,
                },
            );
        }
        Some(())
    })()
    .ok_or(StoreError::Keyframe(t))
}

const HELD_BYTES: usize = 4 + 1 + 8 + 8 + 8 + 2;

/// A schema 1 keyframe: fixed-size entries.
fn decode_v1(t: i64, bytes: &[u8]) -> Result<Running, StoreError> {
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
        out.insert(
            (u32_at(0), c[4]),
            Held {
                since_ms: i64_at(5),
                last_ms: i64_at(13),
                value: f64::from_bits(i64_at(21) as u64),
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
    fold_into(
        e,
        &Point {
            t_ms: r.t_ms,
            value: r.value,
            source: r.source,
        },
    );
}

/// Folds one point of a series into its held value (none yet: the point starts it).
pub fn fold_held(held: &mut Option<Held>, p: &Point) {
    match held {
        Some(e) => fold_into(e, p),
        None => {
            *held = Some(Held {
                since_ms: p.t_ms,
                last_ms: p.t_ms,
                value: p.value,
                source: p.source,
            })
        }
    }
}

fn fold_into(e: &mut Held, r: &Point) {
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

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // The writer leaves one self-contained file: everything in the write-ahead log is
        // copied into the file and the log emptied (SQLite deletes it when the last
        // connection closes, as this one is once the readers have gone).
        if self._lock.is_some() {
            // The hour being written, whole and in order (its pages filled), and the pages it
            // leaves free given back: the file as small as what it holds.
            let compacted = (|| -> Result<(), StoreError> {
                let tx = self.conn.unchecked_transaction()?;
                self.rec.compact(&mut SqliteSink(&tx))?;
                tx.commit()?;
                self.conn.execute_batch("PRAGMA incremental_vacuum")?;
                Ok(())
            })();
            if let Err(e) = compacted {
                bevy::log::warn!("history: compacting the last hour failed: {e}");
            }
        }
        if self._lock.is_some()
            && let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
        {
            bevy::log::warn!("history: the final checkpoint failed: {e}");
        }
        if self._lock.is_none() {
            // A reader's connection cannot remove the `-wal` and `-shm` files SQLite makes
            // beside the file; when no Tvilling records to it, a moment's read-write
            // connection, closed as the last one, lets SQLite tidy them away (it keeps them
            // while any other connection is open).
            let Some(path) = self.conn.path().map(std::path::PathBuf::from) else {
                return;
            };
            let Ok(memory) = Connection::open_in_memory() else {
                return;
            };
            drop(std::mem::replace(&mut self.conn, memory));
            let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
            if !wal.exists() {
                return;
            }
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            else {
                return;
            };
            if file.try_lock().is_ok()
                && let Ok(conn) = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
            {
                let _ = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0));
                drop(conn);
            }
        }
    }
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
            rec: Recording::default(),
            aux: Vec::new(),
        };
        store.check_version().map_err(|e| match e {
            StoreError::Sqlite(e) => err(describe(&e)),
            StoreError::Open { reason, .. } => err(reason),
            other => other,
        })?;
        Ok(store)
    }

    /// The times of the keyframes (the moment before each recorded hour that carried a
    /// state in), oldest first.
    pub fn keyframe_times(&self) -> Result<Vec<i64>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT seg FROM segments WHERE carried > 0 ORDER BY seg")?;
        let times = q.query_map([], |r| Ok(r.get::<_, i64>(0)? * SEGMENT_MS - 1))?;
        Ok(times.collect::<Result<_, _>>()?)
    }

    fn setup(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        // A new file gives its free pages back when asked (after the last hour is compacted
        // at close); it has to be said before its first table.
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables == 0 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        }
        // Readers (the playback thread, another screen) read while the writer writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A page cache of 64 MiB (SQLite's default is 2 MiB): the whole city's chunks of a
        // segment are rewritten as they grow, and the index pages they touch stay in memory.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.execute_batch(SCHEMA)?;
        if !audit_has_actions(&conn)? {
            // Logs written before the action was kept: the columns are added (old rows have
            // none; their action is read from their states and note).
            conn.execute_batch(
                "ALTER TABLE alarm_audit ADD COLUMN action TEXT; \
                 ALTER TABLE alarm_audit ADD COLUMN until_ms INTEGER;",
            )?;
        }
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let mut conn = conn;
        match version.as_deref() {
            Some("1") => {
                migrate(&mut conn, 1)?;
            }
            Some("2") => {
                migrate(&mut conn, 2)?;
            }
            Some(_) => {}
            None => {
                conn.execute_batch(BLOCKS)?;
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
        }
        let mut store = SqliteStore {
            conn,
            _lock: None,
            names: std::sync::Arc::new(Vec::new()),
            devices: HashMap::new(),
            sources: HashMap::new(),
            rec: Recording::default(),
            aux: Vec::new(),
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
        let tables: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if tables == 0 {
            let path = self.conn.path().unwrap_or("?").to_string();
            let empty = std::fs::metadata(&path).is_ok_and(|m| m.len() == 0);
            return Err(StoreError::Open {
                path,
                reason: if empty {
                    "the file is empty (0 bytes): not a Tvilling history".into()
                } else {
                    "an SQLite file, but not a Tvilling history (it has no meta table)".into()
                },
            });
        }
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match v.as_deref() {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(old @ ("1" | "2")) => Err(StoreError::Open {
                path: self.conn.path().unwrap_or("?").to_string(),
                reason: format!(
                    "schema version {old} ({}), this build reads {SCHEMA_VERSION} \
                     (blocks of an hour's series); convert it in place with `tvilling \
                     --history {} --migrate-history`, or record to it once",
                    if old == "1" {
                        "a row per value"
                    } else {
                        "a chunk per series and hour"
                    },
                    self.conn.path().unwrap_or("FILE")
                ),
            }),
            Some(other) => Err(StoreError::Open {
                path: self.conn.path().unwrap_or("?").to_string(),
                reason: format!(
                    "schema version {other}, this build reads {SCHEMA_VERSION} (written by \
                     another Tvilling: read it with the build that wrote it)"
                ),
            }),
            None => Err(StoreError::Open {
                path: self.conn.path().unwrap_or("?").to_string(),
                reason: "not a Tvilling history (no schema version)".into(),
            }),
        }
    }

    /// What the blocks hold: (segments, series carried into them, blocks, their bytes).
    pub fn breakdown(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        let (segments, carried): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(carried), 0) FROM segments",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (blocks, bytes): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((segments as u64, carried as u64, blocks as u64, bytes as u64))
    }

    /// Bytes the file takes (pages in use).
    pub fn bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }

    /// Bytes of the file's pages that are free (left by blocks written again as they grew;
    /// taken again by later writes).
    pub fn free_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }

    /// The last recorded segment at or before `seg`.
    fn segment_at_or_before(&self, seg: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT max(seg) FROM segments WHERE seg <= ?1")?
            .query_row([seg], |r| r.get(0))?)
    }

    /// The time of the recorded value just after (`forward`) or before `t_ms`.
    pub fn neighbour(&self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError> {
        let seg = segment_of(t_ms);
        let (lo, hi) = segment::segment_ids(seg);
        // First within t's own segment...
        let sql = if forward {
            "SELECT block, data FROM blocks WHERE id >= ?1 AND id < ?2 AND t_last > ?3"
        } else {
            "SELECT block, data FROM blocks WHERE id >= ?1 AND id < ?2 AND t_first < ?3"
        };
        let mut best: Option<i64> = None;
        let mut q = self.conn.prepare_cached(sql)?;
        let mut rows = q.query(params![lo, hi, t_ms])?;
        while let Some(r) = rows.next()? {
            nearest_in_block(seg, blob(r, 1)?, t_ms, forward, &mut best);
        }
        if best.is_some() {
            return Ok(best);
        }
        // ...then the nearest segment that holds values.
        let sql = if forward {
            "SELECT seg FROM blocks WHERE id >= ?1 AND n > 0 ORDER BY id LIMIT 1"
        } else {
            "SELECT seg FROM blocks WHERE id < ?1 AND n > 0 ORDER BY id DESC LIMIT 1"
        };
        let from = if forward { hi } else { lo };
        let Some(next): Option<i64> = self
            .conn
            .prepare_cached(sql)?
            .query_row([from], |r| r.get(0))
            .optional()?
        else {
            return Ok(None);
        };
        let (lo, hi) = segment::segment_ids(next);
        let sql = if forward {
            "SELECT min(t_first) FROM blocks WHERE id >= ?1 AND id < ?2"
        } else {
            "SELECT max(t_last) FROM blocks WHERE id >= ?1 AND id < ?2"
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row([lo, hi], |r| r.get(0))?)
    }

    /// The number of stored values.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(sum(n), 0) FROM blocks", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Writes the current segment's blocks that grew.
    fn write_open(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        self.rec.write_dirty(&mut SqliteSink(&tx))?;
        tx.commit()?;
        Ok(())
    }
}

/// A device's series (device number `device`) over `span` (first and last segment, from and
/// to), each series' values in time order (its block of each segment, by segment; checked).
fn read_series(
    conn: &Connection,
    id: u32,
    (seg_from, seg_to, from_ms, to_ms): (i64, i64, i64, i64),
    device: &str,
) -> Result<Vec<(u8, Vec<(i64, f64)>)>, StoreError> {
    let mut q = conn.prepare_cached(
        "SELECT seg, data FROM blocks WHERE block = ?1 AND seg >= ?2 AND seg <= ?3 \
         AND t_last >= ?4 AND t_first <= ?5 ORDER BY seg",
    )?;
    let block_no = block::block_of(series_of(id, 0));
    let mut rows = q.query(params![block_no, seg_from, seg_to, from_ms, to_ms])?;
    let mut per_series = Vec::new();
    while let Some(r) = rows.next()? {
        series_in_block(
            &mut per_series,
            r.get(0)?,
            blob(r, 1)?,
            id,
            (from_ms, to_ms),
            device,
        )?;
    }
    Ok(in_time_order(per_series))
}

/// Device `id`'s series in one of its blocks (of segment `seg`) between two times, added to
/// `per_series` (by quantity): what any backend reads a device's span from, block by block
/// in segment order, then [`in_time_order`].
pub(super) fn series_in_block(
    per_series: &mut Vec<(u8, Vec<(i64, f64)>)>,
    seg: i64,
    bytes: &[u8],
    id: u32,
    (from_ms, to_ms): (i64, i64),
    device: &str,
) -> Result<(), StoreError> {
    let mine = i64::from(id);
    let damaged = |e: String| StoreError::Chunk {
        device: device.to_string(),
        at_ms: seg * SEGMENT_MS,
        damaged: e,
    };
    let mut b = BlockReader::new(seg * SEGMENT_MS, bytes).map_err(|e| damaged(e.to_string()))?;
    while let Some(h) = b.next_head().map_err(|e| damaged(e.to_string()))? {
        // In series order: past the device, the rest of the block is not its.
        if h.series >> 8 > mine {
            break;
        }
        if h.series >> 8 != mine || h.n == 0 {
            continue;
        }
        let quantity = series_parts(h.series).1;
        let i = match per_series.iter().position(|(q, _)| *q == quantity) {
            Some(i) => i,
            None => {
                per_series.push((quantity, Vec::new()));
                per_series.len() - 1
            }
        };
        let values = &mut per_series[i].1;
        values.reserve(h.n as usize);
        b.points(&h, |p| {
            if p.t_ms >= from_ms && p.t_ms <= to_ms {
                values.push((p.t_ms, p.value));
            }
        })
        .map_err(|e| {
            let q = tvilling_sensors::registry::Quantity::from_index(quantity)
                .map_or("?", tvilling_sensors::registry::Quantity::key);
            damaged(format!("{q}: {e}"))
        })?;
    }
    Ok(())
}

/// Each series' values in time order (a value kept late in a later hour sorted in).
pub(super) fn in_time_order(
    mut per_series: Vec<(u8, Vec<(i64, f64)>)>,
) -> Vec<(u8, Vec<(i64, f64)>)> {
    for (_, v) in &mut per_series {
        if !v.is_sorted_by_key(|p| p.0) {
            v.sort_by_key(|p| p.0);
        }
    }
    per_series
}

/// The time of the point of a block (of segment `seg`) nearest after (`forward`) or before
/// `t_ms`, if nearer than `best`. A damaged block has no neighbour to give past its damage.
pub(super) fn nearest_in_block(
    seg: i64,
    bytes: &[u8],
    t_ms: i64,
    forward: bool,
    best: &mut Option<i64>,
) {
    let Ok(mut b) = BlockReader::new(seg * SEGMENT_MS, bytes) else {
        return;
    };
    while let Ok(Some(h)) = b.next_head() {
        let read = b.points(&h, |p| {
            if forward && p.t_ms > t_ms {
                *best = Some(best.map_or(p.t_ms, |b| b.min(p.t_ms)));
            } else if !forward && p.t_ms < t_ms {
                *best = Some(best.map_or(p.t_ms, |b| b.max(p.t_ms)));
            }
        });
        if read.is_err() {
            break;
        }
    }
}

/// The signal heads' figures of `full` (the last metrics row that has them) put into `json`
/// (a row between the quarters, with the totals only).
pub(super) fn splice_signals(json: &mut String, full: Option<String>) {
    let signals = full
        .and_then(|f| serde_json::from_str::<serde_json::Value>(&f).ok())
        .and_then(|mut f| f.get_mut("signals").map(serde_json::Value::take));
    if let (Some(signals), Ok(mut v)) = (signals, serde_json::from_str::<serde_json::Value>(json))
        && let Some(o) = v.as_object_mut()
    {
        o.insert("signals".into(), signals);
        *json = v.to_string();
    }
}

/// What could not be read of a moment's blocks, in words (the device and quantity, or the
/// devices of a block, and the hour).
pub(super) fn damage_text(
    names: &[(String, String)],
    damaged: Vec<(super::state::Damage, i64)>,
) -> Vec<String> {
    let name = |d: u32| names.get(d as usize).map_or("?", |n| n.0.as_str());
    damaged
        .into_iter()
        .map(|(d, seg)| {
            let hour = tvilling_sensors::time::format_rfc3339(seg * SEGMENT_MS);
            match d {
                super::state::Damage::Series(series, e) => {
                    let (d, q) = series_parts(series);
                    let quantity = tvilling_sensors::registry::Quantity::from_index(q)
                        .map_or("?", tvilling_sensors::registry::Quantity::key);
                    format!("{} {quantity}, the hour from {hour}: {e}", name(d))
                }
                super::state::Damage::Block(b, e) => {
                    // The devices whose series the block holds, as far as known.
                    let (lo, hi) = block::block_series(b);
                    let devices: Vec<&str> = ((lo >> 8)..(hi >> 8))
                        .filter_map(|d| u32::try_from(d).ok())
                        .filter(|d| (*d as usize) < names.len() && *d > 0)
                        .map(name)
                        .filter(|n| !n.is_empty())
                        .collect();
                    format!(
                        "the block of {}, the hour from {hour}: {e} (those before the damage read)",
                        devices.join(", ")
                    )
                }
            }
        })
        .collect()
}

/// Series each in time order merged into one by time; ties in the order of the series. A
/// long merge is shared among threads by spans of time, each writing its own part of the
/// result (the result's fresh pages taken on all cores).
fn merge_by_time(series: &[(u8, Vec<(i64, f64)>)]) -> Vec<(i64, u8, f64)> {
    let total: usize = series.iter().map(|(_, v)| v.len()).sum();
    // All zero bits: the pages are handed out as the parts are written.
    let mut out = vec![(0i64, 0u8, 0.0f64); total];
    let threads = if total >= 1 << 20 {
        super::state::cores(4)
    } else {
        1
    };
    // Where each part begins: times taken from the longest series at even steps, and each
    // series' first value at or after them.
    let longest = series
        .iter()
        .map(|(_, v)| v.as_slice())
        .max_by_key(|v| v.len());
    let mut cuts: Vec<Vec<usize>> = vec![vec![0; series.len()]];
    if let Some(longest) = longest {
        for k in 1..threads {
            let t = longest[longest.len() * k / threads].0;
            cuts.push(
                series
                    .iter()
                    .map(|(_, v)| v.partition_point(|p| p.0 < t))
                    .collect(),
            );
        }
    }
    cuts.push(series.iter().map(|(_, v)| v.len()).collect());
    cuts.dedup();
    let mut rest = out.as_mut_slice();
    let mut parts = Vec::new();
    for w in cuts.windows(2) {
        let n: usize = w[1].iter().zip(&w[0]).map(|(b, a)| b - a).sum();
        let (part, tail) = rest.split_at_mut(n);
        rest = tail;
        parts.push((w[0].clone(), w[1].clone(), part));
    }
    if parts.len() <= 1 {
        for (from, to, part) in parts {
            merge_into(series, from, &to, part);
        }
    } else {
        std::thread::scope(|s| {
            for (from, to, part) in parts {
                s.spawn(move || merge_into(series, from, &to, part));
            }
        });
    }
    out
}

/// Runs of hours read one after another (each its series in time order) merged by time: when
/// each run's values all come before the next run's (they do unless a value was kept in a
/// later hour than its own), each run is merged into its own part of the result on its own
/// thread; otherwise the runs are joined per quantity and merged as one.
pub(super) fn merge_runs(runs: Vec<Vec<(u8, Vec<(i64, f64)>)>>) -> Vec<(i64, u8, f64)> {
    let bounds: Vec<Option<(i64, i64)>> = runs
        .iter()
        .map(|r| {
            let first = r.iter().filter_map(|(_, v)| v.first().map(|p| p.0)).min()?;
            let last = r.iter().filter_map(|(_, v)| v.last().map(|p| p.0)).max()?;
            Some((first, last))
        })
        .collect();
    let kept: Vec<(i64, i64)> = bounds.iter().flatten().copied().collect();
    let ordered = kept.windows(2).all(|w| w[0].1 < w[1].0);
    if runs.len() <= 1 || !ordered {
        let mut joined: Vec<(u8, Vec<(i64, f64)>)> = Vec::new();
        for run in runs {
            for (q, mut v) in run {
                match joined.iter_mut().find(|(jq, _)| *jq == q) {
                    Some((_, all)) => all.append(&mut v),
                    None => joined.push((q, v)),
                }
            }
        }
        for (_, v) in &mut joined {
            if !v.is_sorted_by_key(|p| p.0) {
                v.sort_by_key(|p| p.0);
            }
        }
        joined.sort_by_key(|(q, _)| *q);
        return merge_by_time(&joined);
    }
    let sizes: Vec<usize> = runs
        .iter()
        .map(|r| r.iter().map(|(_, v)| v.len()).sum())
        .collect();
    let mut out = vec![(0i64, 0u8, 0.0f64); sizes.iter().sum()];
    let mut rest = out.as_mut_slice();
    std::thread::scope(|s| {
        for (run, n) in runs.iter().zip(&sizes) {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(*n);
            rest = tail;
            let to: Vec<usize> = run.iter().map(|(_, v)| v.len()).collect();
            s.spawn(move || merge_into(run, vec![0; run.len()], &to, part));
        }
    });
    out
}

/// Merges each series' values from `at` up to `to` into `out` (exactly as many places).
fn merge_into(
    series: &[(u8, Vec<(i64, f64)>)],
    mut at: Vec<usize>,
    to: &[usize],
    out: &mut [(i64, u8, f64)],
) {
    let mut o = 0;
    // A moment at a time: the earliest next time among the series, then each series' values
    // at that moment in the series' order (a device reports its quantities together, so a
    // moment usually takes one value from each).
    while let Some(t) = series
        .iter()
        .zip(at.iter().zip(to))
        .filter_map(|((_, v), (&i, &end))| (i < end).then(|| v[i].0))
        .min()
    {
        for (((q, v), i), &end) in series.iter().zip(at.iter_mut()).zip(to) {
            while *i < end && v[*i].0 == t {
                out[o] = (t, *q, v[*i].1);
                o += 1;
                *i += 1;
            }
        }
    }
}

/// A chunk's bytes as SQLite holds them (not copied).
fn blob<'a>(r: &'a rusqlite::Row, i: usize) -> Result<&'a [u8], StoreError> {
    r.get_ref(i)?.as_blob().map_err(|e| {
        StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            Box::new(e),
        ))
    })
}

/// Converts a schema 1 (a row per value) or schema 2 (a chunk per series and hour, keyframes
/// beside them) file in place into blocks: its values, with the oldest keyframe's state (what
/// held before the first value kept, where retention cut) carried in and on hour by hour. The
/// old tables are dropped and the file compacted. Returns the values converted.
fn migrate(conn: &mut Connection, from: u8) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute_batch(BLOCKS)?;
    let mut rec = Recording::default();
    let first: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT t, state FROM keyframes ORDER BY t LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let mut seed = match first {
        Some((t, bytes)) if from == 1 => Some((t, decode_v1(t, &bytes)?)),
        Some((t, bytes)) => {
            let mut running = Running::default();
            decode_entries(t, &bytes, |_, d, q, h| {
                running.insert((d, q), h);
            })?;
            Some((t, running))
        }
        None => None,
    };
    let mut n = 0u64;
    let mut take = |rec: &mut Recording,
                    tx: &Connection,
                    seg: i64,
                    series: i64,
                    p: Point|
     -> Result<(), StoreError> {
        if let Some((_, running)) = seed.take() {
            seed_from(rec, seg, p.t_ms, &running);
        }
        if let Some(s) = rec.segment()
            && seg > s
        {
            rec.roll(&mut SqliteSink(tx), seg)?;
        }
        rec.push(series, p);
        n += 1;
        Ok(())
    };
    if from == 1 {
        let mut q = tx.prepare("SELECT t, device, q, v, src FROM obs ORDER BY t, rowid")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let (t, device, quantity, value, source): (i64, u32, u8, f64, u16) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            take(
                &mut rec,
                &tx,
                segment_of(t),
                series_of(device, quantity),
                Point {
                    t_ms: t,
                    value,
                    source,
                },
            )?;
        }
    } else {
        let mut q = tx.prepare("SELECT seg, series, n, data FROM chunks ORDER BY seg, series")?;
        let mut rows = q.query([])?;
        let mut points = Vec::new();
        while let Some(r) = rows.next()? {
            let (seg, series, count): (i64, i64, u32) = (r.get(0)?, r.get(1)?, r.get(2)?);
            points.clear();
            if let Err(e) =
                chunk::decode_each(seg * SEGMENT_MS, count, blob(r, 3)?, |p| points.push(p))
            {
                // What could be read is kept; the rest was lost before.
                bevy::log::warn!(
                    "history: converting, the chunk of series {series} in the hour from {}: {e}",
                    seg * SEGMENT_MS
                );
            }
            for p in &points {
                take(&mut rec, &tx, seg, series, *p)?;
            }
        }
    }
    if let Some((t, running)) = seed.take() {
        // A keyframe and no values: its state is carried into the hour after it.
        seed_from(
            &mut rec,
            segment_of(t.saturating_add(1)),
            i64::MAX,
            &running,
        );
    }
    rec.write_dirty(&mut SqliteSink(&tx))?;
    let old = if from == 1 { "obs" } else { "chunks" };
    tx.execute_batch(&format!(
        "DROP TABLE {old}; DROP TABLE keyframes; UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema';"
    ))?;
    tx.commit()?;
    conn.execute_batch("VACUUM")?;
    Ok(n)
}

/// Begins converting at segment `seg` (of the first value kept, at `first_ms`) from an old
/// keyframe's state: what was last reported before the segment is carried into it, what was
/// reported in it before the first value kept (cut by retention) is taken as a value then.
fn seed_from(rec: &mut Recording, seg: i64, first_ms: i64, running: &Running) {
    rec.begin(seg);
    let start = seg.saturating_mul(SEGMENT_MS);
    let mut carried = Running::default();
    let mut points: Vec<(i64, Point)> = Vec::new();
    for (&(d, q), h) in running {
        if h.last_ms < start {
            carried.insert((d, q), *h);
        } else if h.last_ms < first_ms {
            points.push((
                series_of(d, q),
                Point {
                    t_ms: h.last_ms,
                    value: h.value,
                    source: h.source,
                },
            ));
        }
    }
    rec.seed(&carried);
    points.sort_by_key(|p| (p.1.t_ms, p.0));
    for (series, p) in points {
        rec.push(series, p);
    }
}

/// An SQLite error in words a user can act on.
pub(crate) fn describe(e: &rusqlite::Error) -> String {
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

    fn write(&mut self, rows: &[Row], alarms: &[AlarmRow]) -> Result<(), StoreError> {
        // A new segment: the one before is written and closed, every series carrying its
        // state into the new one.
        let conn = &mut self.conn;
        self.rec.push_rows(rows, |rec, s| {
            let tx = conn.transaction()?;
            rec.roll(&mut SqliteSink(&tx), s)?;
            tx.commit()?;
            Ok(())
        })?;
        if !alarms.is_empty() {
            let tx = self.conn.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO alarms(t, device, severity, text, raised) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for a in alarms {
                    ins.execute(params![a.t_ms, a.device, a.severity, a.text, a.raised])?;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn keyframe(&mut self, t_ms: i64, running: &Running) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        self.rec.keyframe(&mut SqliteSink(&tx), t_ms, running)?;
        tx.commit()?;
        Ok(())
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.write_open()
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
        // The blocks of t's hour (or of the last recorded hour before it), each series'
        // carried state with its points up to t folded in, on all cores.
        let mut state: super::state::Sorted = Vec::new();
        let mut damaged: Vec<(super::state::Damage, i64)> = Vec::new();
        if let Some(seg) = self.segment_at_or_before(segment_of(t_ms))? {
            let (lo, hi) = segment::segment_ids(seg);
            let mut q = self.conn.prepare_cached(
                "SELECT block, data FROM blocks WHERE id >= ?1 AND id < ?2 ORDER BY id",
            )?;
            let mut rows = q.query([lo, hi])?;
            let mut blocks = super::state::SegmentBlocks::default();
            while let Some(r) = rows.next()? {
                blocks.push(r.get(0)?, blob(r, 1)?);
            }
            let (s, d) = super::state::state_of(&blocks, seg * SEGMENT_MS, t_ms);
            state = s;
            damaged = d.into_iter().map(|d| (d, seg)).collect();
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
        // In series order: by device number, then quantity.
        let values: Vec<(u32, u8, Held)> = state
            .into_iter()
            .map(|(series, h)| {
                let (d, q) = series_parts(series);
                (d, q, h)
            })
            .filter(|(d, _, _)| (*d as usize) < known)
            .collect();
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
        let mut metrics: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT t, json FROM metrics WHERE t <= ?1 ORDER BY t DESC LIMIT 1")?
            .query_row([t_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        // A row between the quarters holds the totals only: the signal heads' figures come from
        // the last row that has them.
        if let Some((t, json)) = metrics.as_mut()
            && !json.contains("\"signals\"")
        {
            let full: Option<String> = self
                .conn
                .prepare_cached(
                    "SELECT json FROM metrics WHERE t <= ?1 AND json LIKE '%\"signals\":%' \
                     ORDER BY t DESC LIMIT 1",
                )?
                .query_row([*t], |r| r.get(0))
                .optional()?;
            splice_signals(json, full);
        }
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
        let damaged = damage_text(&self.names, damaged);
        Ok(StateAt {
            t_ms,
            damaged,
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
        let id: Option<u32> = self
            .conn
            .prepare_cached("SELECT id FROM devices WHERE device = ?1")?
            .query_row([device], |r| r.get(0))
            .optional()?;
        let Some(id) = id else {
            return Ok(Vec::new());
        };
        // A long span is read on all cores, each thread with a connection of its own and its
        // share of the hours (each connection sees the file as last committed).
        let (seg_from, seg_to) = (segment_of(from_ms), segment_of(to_ms));
        let threads = if seg_to.saturating_sub(seg_from) >= 24 * 7 {
            super::state::cores(4)
        } else {
            1
        };
        if let Some(path) = self.conn.path().filter(|p| !p.is_empty()).map(String::from) {
            while self.aux.len() + 1 < threads {
                let c = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(2))?;
                self.aux.push(c);
            }
        }
        let conns: Vec<&mut Connection> = std::iter::once(&mut self.conn)
            .chain(self.aux.iter_mut())
            .take(threads)
            .collect();
        let shares = conns.len() as i64;
        let parts: Vec<Result<Vec<(u8, Vec<(i64, f64)>)>, StoreError>> = if shares <= 1 {
            vec![read_series(
                &*conns[0],
                id,
                (seg_from, seg_to, from_ms, to_ms),
                device,
            )]
        } else {
            // Contiguous runs of hours, in order.
            let per = (seg_to - seg_from + 1).div_euclid(shares) + 1;
            std::thread::scope(|s| {
                let handles: Vec<_> = conns
                    .into_iter()
                    .enumerate()
                    .map(|(k, conn)| {
                        let lo = seg_from.saturating_add(per.saturating_mul(k as i64));
                        let hi = lo.saturating_add(per - 1).min(seg_to);
                        s.spawn(move || read_series(conn, id, (lo, hi, from_ms, to_ms), device))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let mut runs = Vec::with_capacity(parts.len());
        for part in parts {
            let mut part = part?;
            part.sort_by_key(|(q, _)| *q);
            runs.push(part);
        }
        Ok(merge_runs(runs))
    }

    fn range(&mut self) -> Result<Option<(i64, i64)>, StoreError> {
        // The first and last blocks with values give their segments; within them, the
        // earliest and latest times.
        let edge = |sql: &str| -> Result<Option<i64>, StoreError> {
            Ok(self
                .conn
                .prepare_cached(sql)?
                .query_row([], |r| r.get(0))
                .optional()?)
        };
        let (Some(a), Some(b)) = (
            edge("SELECT seg FROM blocks WHERE n > 0 ORDER BY id LIMIT 1")?,
            edge("SELECT seg FROM blocks WHERE n > 0 ORDER BY id DESC LIMIT 1")?,
        ) else {
            return Ok(None);
        };
        let (alo, ahi) = segment::segment_ids(a);
        let (blo, bhi) = segment::segment_ids(b);
        let first: Option<i64> = self.conn.query_row(
            "SELECT min(t_first) FROM blocks WHERE id >= ?1 AND id < ?2",
            [alo, ahi],
            |r| r.get(0),
        )?;
        let last: Option<i64> = self.conn.query_row(
            "SELECT max(t_last) FROM blocks WHERE id >= ?1 AND id < ?2",
            [blo, bhi],
            |r| r.get(0),
        )?;
        Ok(first.zip(last))
    }

    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError> {
        let Some((_, newest)) = self.range()? else {
            return Ok(0);
        };
        let cut = newest - (days * 86_400_000.0) as i64;
        // Keep the hour the cut falls in (or the last recorded one before it): its blocks
        // carry the state in, so the state at the cut still builds.
        let Some(first_kept) = self.segment_at_or_before(segment_of(cut))? else {
            return Ok(0);
        };
        let cut = cut.min(first_kept * SEGMENT_MS - 1);
        let (lo, _) = segment::segment_ids(first_kept);
        let tx = self.conn.transaction()?;
        let n: i64 = tx.query_row(
            "SELECT coalesce(sum(n), 0) FROM blocks WHERE id < ?1",
            [lo],
            |r| r.get(0),
        )?;
        tx.execute("DELETE FROM blocks WHERE id < ?1", [lo])?;
        tx.execute("DELETE FROM segments WHERE seg < ?1", [first_kept])?;
        for table in ["alarms", "metrics", "traffic", "alarm_audit"] {
            tx.execute(&format!("DELETE FROM {table} WHERE t < ?1"), [cut])?;
        }
        tx.commit()?;
        Ok(n as u64)
    }

    fn neighbour(&mut self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError> {
        SqliteStore::neighbour(self, t_ms, forward)
    }

    fn resume(&mut self) -> Result<(i64, Running), StoreError> {
        let newest = self.range()?.map_or(i64::MIN, |r| r.1);
        // The newest recorded hour goes on being written: its blocks are taken up again.
        self.rec.clear();
        let last: Option<i64> = self
            .conn
            .query_row("SELECT max(seg) FROM segments", [], |r| r.get(0))?;
        if let Some(seg) = last {
            let (lo, hi) = segment::segment_ids(seg);
            let mut q = self
                .conn
                .prepare("SELECT block, data FROM blocks WHERE id >= ?1 AND id < ?2")?;
            let blocks: Vec<(i64, Vec<u8>)> = q
                .query_map([lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            self.rec.take_up(seg, &blocks);
        }
        Ok((newest, self.rec.held()))
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

    /// Runs of hours merged on their own threads, or joined when a late value makes them
    /// overlap: the same as a stable sort by time with ties in quantity order.
    #[test]
    fn runs_of_hours_merge_like_a_stable_sort_whether_or_not_they_overlap() {
        let run = |from: i64, n: i64, late: bool| -> Vec<(u8, Vec<(i64, f64)>)> {
            (0..3u8)
                .map(|q| {
                    let mut v: Vec<(i64, f64)> = (0..n)
                        .map(|i| (from + i * (1 + i64::from(q)), f64::from(q) + i as f64))
                        .collect();
                    if late && q == 1 {
                        v.insert(0, (from - 10_000_000, -1.0));
                    }
                    (q, v)
                })
                .collect()
        };
        for late in [false, true] {
            let runs = vec![run(0, 400_000, false), run(5_000_000, 400_000, late)];
            let mut want: Vec<(i64, u8, f64)> = runs
                .iter()
                .flatten()
                .flat_map(|(q, v)| v.iter().map(move |p| (p.0, *q, p.1)))
                .collect();
            want.sort_by_key(|p| (p.0, p.1));
            assert_eq!(merge_runs(runs), want, "late {late}");
        }
    }

    #[test]
    fn a_devices_series_merge_by_time_with_ties_in_quantity_order() {
        // Four quantities at their own rates over eight days (read on several threads, each
        // with a connection of its own), with equal times across quantities.
        let path = temp("series-merge");
        let mut store = SqliteStore::open(&path).expect("open");
        let d = store.device_index("lamp-1", "lamp").expect("device");
        let mut rows = Vec::new();
        for (q, step) in [(3u8, 12_000i64), (1, 20_000), (7, 5_000), (2, 60_000)] {
            for t in (0..8 * 24 * SEGMENT_MS).step_by(step as usize) {
                rows.push(Row {
                    t_ms: t,
                    device: d,
                    quantity: q,
                    value: (t / step % 5) as f64,
                    source: 0,
                });
            }
        }
        rows.sort_by_key(|r| r.t_ms);
        store.write(&rows, &[]).expect("write");
        store.persist().expect("persist");
        let (from, to) = (1_234, 8 * 24 * SEGMENT_MS - 777);
        let mut want: Vec<(i64, u8, f64)> = rows
            .iter()
            .filter(|r| r.t_ms >= from && r.t_ms <= to)
            .map(|r| (r.t_ms, r.quantity, r.value))
            .collect();
        want.sort_by_key(|p| (p.0, p.1));
        assert!(want.len() > 200_000, "{}", want.len());
        assert_eq!(store.series("lamp-1", from, to).expect("series"), want);
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
            store.write(chunk, &[]).expect("write");
            store.keyframe(t, &running).expect("keyframe");
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
            store.write(chunk, &[]).expect("write");
            store.keyframe(t, &running).expect("keyframe");
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

    /// A lamp every minute (on and off for half an hour each, quiet in the minutes `quiet`)
    /// and a meter's power in tenths every 5 minutes, over `minutes`.
    fn lamp_and_meter(minutes: i64, quiet: std::ops::Range<i64>) -> Vec<Row> {
        let mut rows = Vec::new();
        for m in 0..minutes {
            if !quiet.contains(&m) {
                rows.push(Row {
                    t_ms: m * 60_000 + 17,
                    device: 1,
                    quantity: 1,
                    value: f64::from(u8::from((m / 30) % 2 == 0)),
                    source: 1,
                });
            }
            if m % 5 == 0 {
                rows.push(Row {
                    t_ms: m * 60_000 + 1_000,
                    device: 2,
                    quantity: 7,
                    value: f64::from((m * 37 % 500) as i32) / 10.0,
                    source: 1,
                });
            }
        }
        rows
    }

    /// The state at `t` of `rows` folded a value at a time, in series order.
    use super::super::conformance::folded;

    /// An older file's common tables (its schema version, the lamp and the meter, the source,
    /// an empty keyframe table) and `tables`.
    fn old_file(path: &Path, version: &str, tables: &str) -> Connection {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(&format!(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema', '{version}');
             CREATE TABLE devices(id INTEGER PRIMARY KEY, device TEXT UNIQUE NOT NULL, kind TEXT NOT NULL);
             INSERT INTO devices VALUES (1, 'lamp-1', 'lamp'), (2, 'meter-1', 'meter');
             CREATE TABLE sources(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
             INSERT INTO sources VALUES (1, 'simulator');
             CREATE TABLE keyframes(t INTEGER PRIMARY KEY, state BLOB NOT NULL);
             {tables}"
        ))
        .expect("schema");
        conn
    }

    /// An older file (schema `version`) at `path`: refused when only read, with the way to
    /// convert it; converted when opened for recording, after which it holds `kept`'s values,
    /// its state at each of `times` is `rows` folded up to then, device `device` (number
    /// `number`) reads back its kept values, `more` holds of it, and it reads as schema 3.
    fn converts_in_place(
        path: &Path,
        version: &str,
        (rows, kept): (&[Row], &[Row]),
        times: &[i64],
        (device, number): (&str, u32),
        more: impl FnOnce(&mut SqliteStore),
    ) {
        let e = SqliteStore::open_read_only(path)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains(&format!("schema version {version}")) && e.contains("--migrate-history"),
            "{e}"
        );
        let mut store = SqliteStore::open(path).expect("converted");
        assert_eq!(store.count().expect("count"), kept.len() as u64);
        for &t in times {
            let s = store.state_at(t).expect("state");
            assert_eq!(s.values, folded(rows, t), "at {t}");
            assert!(s.damaged.is_empty());
        }
        let series = store.series(device, 0, i64::MAX).expect("series");
        let want: Vec<(i64, u8, f64)> = kept
            .iter()
            .filter(|r| r.device == number)
            .map(|r| (r.t_ms, r.quantity, r.value))
            .collect();
        assert_eq!(series, want);
        more(&mut store);
        drop(store);
        assert!(SqliteStore::open_read_only(path).is_ok(), "now schema 3");
    }

    /// A schema 1 file as earlier builds wrote it: a row per value, fixed-size keyframes.
    fn v1_file(path: &Path, rows: &[Row], keyframes: &[(i64, Running)]) {
        let conn = old_file(
            path,
            "1",
            "CREATE TABLE obs(t INTEGER NOT NULL, device INTEGER NOT NULL, q INTEGER NOT NULL, v REAL NOT NULL, src INTEGER NOT NULL);
             CREATE INDEX obs_t ON obs(t);
             CREATE INDEX obs_device ON obs(device, t);",
        );
        for r in rows {
            conn.execute(
                "INSERT INTO obs VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.t_ms, r.device, r.quantity, r.value, r.source],
            )
            .expect("row");
        }
        for (t, running) in keyframes {
            let mut bytes = Vec::new();
            for (k, h) in running {
                bytes.extend_from_slice(&k.0.to_le_bytes());
                bytes.push(k.1);
                bytes.extend_from_slice(&h.since_ms.to_le_bytes());
                bytes.extend_from_slice(&h.last_ms.to_le_bytes());
                bytes.extend_from_slice(&h.value.to_le_bytes());
                bytes.extend_from_slice(&h.source.to_le_bytes());
            }
            conn.execute("INSERT INTO keyframes VALUES (?1, ?2)", params![t, bytes])
                .expect("keyframe");
        }
    }

    #[test]
    fn a_row_per_value_file_is_converted_in_place_and_reads_the_same() {
        let path = temp("v1");
        // Two devices over three hours: a lamp every minute (on and off), a meter's power in
        // tenths every 5 minutes; keyframes every 25 minutes at odd times, as schema 1 had.
        let rows = lamp_and_meter(180, 0..0);
        let mut keyframes = Vec::new();
        let mut running = Running::default();
        for r in &rows {
            fold(&mut running, r);
            if r.t_ms % (25 * 60_000) == 17 {
                keyframes.push((r.t_ms, running.clone()));
            }
        }
        v1_file(&path, &rows, &keyframes);
        converts_in_place(
            &path,
            "1",
            (&rows, &rows),
            &[
                0, 17, 1_500_017, 1_500_018, 3_600_000, 7_777_777, 10_800_000, 99_999_999,
            ],
            ("meter-1", 2),
            |store| {
                let has_obs: i64 = store
                    .conn
                    .query_row(
                        "SELECT count(*) FROM sqlite_master WHERE name = 'obs'",
                        [],
                        |r| r.get(0),
                    )
                    .expect("tables");
                assert_eq!(has_obs, 0, "the rows are gone");
                assert_eq!(store.range().expect("range"), Some((17, 179 * 60_000 + 17)));
            },
        );
    }

    /// A schema 2 file as the build before wrote it: a chunk per series and hour (coded from
    /// the hour's start), the whole state as a keyframe before each hour.
    fn v2_file(path: &Path, rows: &[Row], keyframes: &[(i64, Running)]) {
        let conn = old_file(
            path,
            "2",
            "CREATE TABLE chunks(seg INTEGER NOT NULL, series INTEGER NOT NULL, n INTEGER NOT NULL, t_first INTEGER NOT NULL, t_last INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(seg, series)) WITHOUT ROWID;
             CREATE INDEX chunks_series ON chunks(series, seg);",
        );
        let mut chunks: std::collections::BTreeMap<(i64, i64), chunk::ChunkWriter> =
            Default::default();
        for r in rows {
            let seg = segment_of(r.t_ms);
            chunks
                .entry((seg, series_of(r.device, r.quantity)))
                .or_insert_with(|| chunk::ChunkWriter::new(seg * SEGMENT_MS))
                .push(Point {
                    t_ms: r.t_ms,
                    value: r.value,
                    source: r.source,
                });
        }
        for ((seg, series), w) in &chunks {
            conn.execute(
                "INSERT INTO chunks VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![seg, series, w.n, w.first_ms, w.last_ms, w.bytes()],
            )
            .expect("chunk");
        }
        for (t, running) in keyframes {
            conn.execute(
                "INSERT INTO keyframes VALUES (?1, ?2)",
                params![t, encode(*t, running)],
            )
            .expect("keyframe");
        }
    }

    #[test]
    fn a_chunk_per_series_file_is_converted_in_place_and_reads_the_same() {
        let path = temp("v2");
        // Four hours: a lamp every minute that goes quiet in the third hour, a meter every 5
        // minutes; the first hour's chunks were cut by retention, its keyframe kept.
        let rows = lamp_and_meter(240, 120..180);
        let mut keyframes = Vec::new();
        let mut running = Running::default();
        for h in 1..4 {
            let end = h * SEGMENT_MS - 1;
            for r in rows
                .iter()
                .filter(|r| r.t_ms <= end && r.t_ms > end - SEGMENT_MS)
            {
                fold(&mut running, r);
            }
            keyframes.push((end, running.clone()));
        }
        let kept: Vec<Row> = rows
            .iter()
            .filter(|r| r.t_ms >= SEGMENT_MS)
            .copied()
            .collect();
        v2_file(&path, &kept, &keyframes);
        converts_in_place(
            &path,
            "2",
            (&rows, &kept),
            &[
                SEGMENT_MS,
                SEGMENT_MS + 1_017,
                2 * SEGMENT_MS + 5,
                9_000_000,
                3 * SEGMENT_MS + 60_017,
                99_999_999,
            ],
            ("lamp-1", 1),
            |store| {
                assert_eq!(
                    store.keyframe_times().expect("keyframes"),
                    vec![SEGMENT_MS - 1, 2 * SEGMENT_MS - 1, 3 * SEGMENT_MS - 1]
                );
            },
        );
    }

    #[test]
    fn a_minute_of_totals_only_takes_the_signal_heads_from_the_last_quarter() {
        let path = temp("metrics");
        let mut store = SqliteStore::open(&path).expect("open");
        store
            .write_metrics(
                0,
                r#"{"at":0,"lighting_kwh":1.0,"signals":{"h1":[1,2,3,4]}}"#,
            )
            .expect("full");
        store
            .write_metrics(60_000, r#"{"at":60000,"lighting_kwh":2.0}"#)
            .expect("totals");
        let m = store
            .state_at(90_000)
            .expect("state")
            .metrics
            .expect("metrics");
        assert_eq!(m.0, 60_000);
        let v: serde_json::Value = serde_json::from_str(&m.1).expect("json");
        assert_eq!(v["lighting_kwh"], 2.0, "{v}");
        assert_eq!(v["signals"]["h1"], serde_json::json!([1, 2, 3, 4]), "{v}");
        // Before any row with the heads, the totals as they are.
        let mut store2 = SqliteStore::open(&temp("metrics-none")).expect("open");
        store2
            .write_metrics(5, r#"{"at":5,"lighting_kwh":2.0}"#)
            .expect("totals");
        let m = store2.state_at(9).expect("state").metrics.expect("metrics");
        assert!(!m.1.contains("signals"), "{}", m.1);
    }

    #[test]
    fn recording_again_into_the_same_ten_minutes_keeps_what_was_there() {
        let path = temp("resume");
        let mut store = SqliteStore::open(&path).expect("open");
        let first = rows(&mut store, 0, 300_000, 10_000);
        store.write(&first, &[]).expect("write");
        store.persist().expect("persist");
        drop(store);
        let mut store = SqliteStore::open(&path).expect("again");
        let (newest, running) = store.resume().expect("resume");
        assert_eq!(newest, 290_000);
        assert_eq!(running.len(), 1);
        let more = rows(&mut store, 300_000, 500_000, 10_000);
        store.write(&more, &[]).expect("write");
        store.persist().expect("persist");
        assert_eq!(store.count().expect("count"), 50);
        let series = store.series("lamp-1", 0, i64::MAX).expect("series");
        assert_eq!(series.len(), 50);
        assert!(series.windows(2).all(|w| w[1].0 - w[0].0 == 10_000));
    }

    #[test]
    fn a_damaged_chunk_is_reported_with_its_series_and_time_and_the_rest_still_reads() {
        let path = temp("damaged");
        let mut store = SqliteStore::open(&path).expect("open");
        let lamp = store.device_index("lamp-1", "lamp").expect("device");
        let meter = store.device_index("meter-1", "meter").expect("device");
        let all: Vec<Row> = (0..40)
            .flat_map(|i| {
                [lamp, meter].map(|device| Row {
                    t_ms: i * 180_000,
                    device,
                    quantity: 5,
                    value: f64::from(i as i32) * 1.37,
                    source: 0,
                })
            })
            .collect();
        store.write(&all, &[]).expect("write");
        store.persist().expect("persist");
        // The hour from 01:00 loses its block's last 100 bytes: the meter's last points (the
        // lamp's series comes before it in the block).
        store
            .conn
            .execute(
                "UPDATE blocks SET data = substr(data, 1, length(data) - 100) WHERE seg = 1",
                [],
            )
            .expect("damage");
        let mut reader = SqliteStore::open_read_only(&path).expect("read");
        let s = reader.state_at(6_000_000).expect("state");
        assert_eq!(s.damaged.len(), 1, "{:?}", s.damaged);
        assert!(
            s.damaged[0].starts_with("meter-1 power_kw, the hour from 1970-01-01T01:00:00"),
            "{}",
            s.damaged[0]
        );
        assert!(s.damaged[0].contains("damaged"), "{}", s.damaged[0]);
        let lamp_value = s.values.iter().find(|v| v.0 == lamp).expect("lamp read");
        assert_eq!(lamp_value.2.last_ms, 5_940_000);
        // What the meter carried into the hour and its points before the damage.
        let meter_value = s.values.iter().find(|v| v.0 == meter).expect("meter kept");
        assert!(
            (3_420_000..5_940_000).contains(&meter_value.2.last_ms),
            "{:?}",
            meter_value
        );
        let e = reader.series("meter-1", 0, i64::MAX).expect_err("damaged");
        assert!(e.to_string().contains("meter-1"), "{e}");
        assert_eq!(
            reader.series("lamp-1", 0, i64::MAX).expect("whole").len(),
            40
        );
    }
}
