//! The history on a PostgreSQL store ([`PgHistory`]): the same layout as the SQLite file
//! ([`super::store`]: an hour's blocks of 16 neighbouring devices, each series with the state
//! it carried in and its points coded after it), in the shared store's schema `tvilling`
//! (tables `blocks`, `segments`, `history_devices`, `history_sources`, `history_alarms`,
//! `metrics`, `traffic`; see [`crate::shared::schema`]). The blocks are written by the same
//! segment writer through a [`BlockSink`] on the server's transaction, and read back by the
//! same decoders.
//!
//! The alarm desk of a moment is rebuilt from the shared book's audit log (which the book
//! writes itself, with operator and station, for every twin): this backend does not write a
//! second copy of the desk's transitions.

use std::collections::HashMap;

use postgres::{Client, Transaction};

use super::segment::{self, BlockRow, BlockSink, Recording};
use super::store::{
    AlarmRow, HistoryStore, Running, SEGMENT_MS, StateAt, StoreError, damage_text, in_time_order,
    merge_runs, nearest_in_block, segment_of, series_in_block, series_of, series_parts,
    splice_signals,
};
use super::{block, state};
use crate::shared::{connect, describe, schema};

fn pg(e: postgres::Error) -> StoreError {
    StoreError::Server(describe(&e))
}

/// The segment writer's rows on a server transaction, the blocks sent in one statement a
/// flush (arrays unnested on the server) rather than a round trip each.
struct PgSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    ids: Vec<i64>,
    segs: Vec<i64>,
    blocks: Vec<i64>,
    ks: Vec<i64>,
    ns: Vec<i64>,
    firsts: Vec<Option<i64>>,
    lasts: Vec<Option<i64>>,
    data: Vec<Vec<u8>>,
}

impl<'a, 'b> PgSink<'a, 'b> {
    fn new(tx: &'a mut Transaction<'b>) -> Self {
        PgSink {
            tx,
            ids: Vec::new(),
            segs: Vec::new(),
            blocks: Vec::new(),
            ks: Vec::new(),
            ns: Vec::new(),
            firsts: Vec::new(),
            lasts: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Sends the blocks put since the last flush.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        self.tx
            .execute(
                "INSERT INTO tvilling.blocks(id, seg, block, k, n, t_first, t_last, data)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                     $5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[])
                 ON CONFLICT (id) DO UPDATE SET k = excluded.k, n = excluded.n,
                     t_first = excluded.t_first, t_last = excluded.t_last, data = excluded.data",
                &[
                    &self.ids,
                    &self.segs,
                    &self.blocks,
                    &self.ks,
                    &self.ns,
                    &self.firsts,
                    &self.lasts,
                    &self.data,
                ],
            )
            .map_err(pg)?;
        self.ids.clear();
        self.segs.clear();
        self.blocks.clear();
        self.ks.clear();
        self.ns.clear();
        self.firsts.clear();
        self.lasts.clear();
        self.data.clear();
        Ok(())
    }
}

impl BlockSink for PgSink<'_, '_> {
    fn put_block(&mut self, r: &BlockRow<'_>) -> Result<(), StoreError> {
        // One id once a statement (ON CONFLICT cannot touch a row twice): the waiting ids
        // ascend, so an id not above the last may repeat one and is sent after a flush.
        if self.ids.last().is_some_and(|last| *last >= r.id) {
            self.flush()?;
        }
        self.ids.push(r.id);
        self.segs.push(r.seg);
        self.blocks.push(r.block);
        self.ks.push(r.k);
        self.ns.push(r.n);
        self.firsts.push(r.t_first);
        self.lasts.push(r.t_last);
        self.data.push(r.data.to_vec());
        if self.ids.len() >= 4_096 {
            self.flush()?;
        }
        Ok(())
    }

    fn put_segment(&mut self, seg: i64, carried: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO tvilling.segments(seg, carried) VALUES ($1, $2)
                 ON CONFLICT (seg) DO UPDATE SET carried = excluded.carried",
                &[&seg, &carried],
            )
            .map_err(pg)?;
        Ok(())
    }

    fn delete_blocks(&mut self, lo: i64, hi: i64) -> Result<(), StoreError> {
        self.flush()?;
        self.tx
            .execute(
                "DELETE FROM tvilling.blocks WHERE id >= $1 AND id < $2",
                &[&lo, &hi],
            )
            .map_err(pg)?;
        Ok(())
    }
}

/// Runs `f` with a sink on a new transaction, then flushes and commits.
fn with_sink(
    client: &mut Client,
    f: impl FnOnce(&mut PgSink<'_, '_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    {
        let mut sink = PgSink::new(&mut tx);
        f(&mut sink)?;
        sink.flush()?;
    }
    tx.commit().map_err(pg)
}

/// A history in a PostgreSQL store.
pub struct PgHistory {
    url: String,
    client: Client,
    devices: HashMap<String, u32>,
    sources: HashMap<String, u16>,
    names: std::sync::Arc<Vec<(String, String)>>,
    rec: Recording,
}

impl PgHistory {
    /// Opens the history of the store at `url` (its schema checked).
    pub fn open(url: &str) -> Result<PgHistory, StoreError> {
        let open = |reason: String| StoreError::Open {
            path: url.to_string(),
            reason,
        };
        let mut client = connect(url).map_err(|e| open(e.to_string()))?;
        schema::check(&mut client, url).map_err(|e| open(e.to_string()))?;
        let mut h = PgHistory {
            url: url.to_string(),
            client,
            devices: HashMap::new(),
            sources: HashMap::new(),
            names: std::sync::Arc::new(Vec::new()),
            rec: Recording::default(),
        };
        for r in h
            .client
            .query("SELECT id, device FROM tvilling.history_devices", &[])
            .map_err(pg)?
        {
            h.devices.insert(r.get(1), r.get::<_, i32>(0) as u32);
        }
        for r in h
            .client
            .query("SELECT id, name FROM tvilling.history_sources", &[])
            .map_err(pg)?
        {
            h.sources.insert(r.get(1), r.get::<_, i32>(0) as u16);
        }
        Ok(h)
    }

    /// The store's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn segment_at_or_before(&mut self, seg: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .client
            .query_one(
                "SELECT max(seg) FROM tvilling.segments WHERE seg <= $1",
                &[&seg],
            )
            .map_err(pg)?
            .get(0))
    }

    pub(super) fn write_moment(
        &mut self,
        table: &str,
        t_ms: i64,
        json: &str,
    ) -> Result<(), StoreError> {
        self.client
            .execute(
                &format!(
                    "INSERT INTO tvilling.{table}(t, json) VALUES ($1, $2)
                     ON CONFLICT (t) DO UPDATE SET json = excluded.json"
                ),
                &[&t_ms, &json],
            )
            .map_err(pg)?;
        Ok(())
    }

    /// The shared book's audit log up to `t_ms`, as the lifecycle's transitions (notes and
    /// refused attempts changed nothing and are left out).
    fn desk_log(
        &mut self,
        t_ms: i64,
    ) -> Result<Vec<tvilling_metrics::lifecycle::Transition>, StoreError> {
        use tvilling_metrics::lifecycle::{Action, Priority, Transition};
        let rows = self
            .client
            .query(
                "SELECT t, action, key, device, priority, from_state, to_state, operator, note,
                        until_ms
                 FROM tvilling.alarm_audit WHERE t <= $1 ORDER BY t, id",
                &[&t_ms],
            )
            .map_err(pg)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Transition {
                    at_ms: r.get(0),
                    action: Action::parse(r.get(1))?,
                    key: r.get(2),
                    device: r.get(3),
                    priority: Priority::parse(r.get(4)).unwrap_or(Priority::Low),
                    from: r.get(5),
                    to: r.get(6),
                    operator: r.get(7),
                    note: r.get(8),
                    until_ms: r.get(9),
                })
            })
            .collect())
    }
}

impl HistoryStore for PgHistory {
    fn device_index(&mut self, id: &str, kind: &str) -> Result<u32, StoreError> {
        if let Some(i) = self.devices.get(id) {
            return Ok(*i);
        }
        // Several twins may add devices at once: a number another took is tried again.
        for _ in 0..8 {
            let row = self
                .client
                .query_opt(
                    "WITH added AS (
                         INSERT INTO tvilling.history_devices(id, device, kind)
                         SELECT coalesce(max(id), 0) + 1, $1, $2 FROM tvilling.history_devices
                         ON CONFLICT DO NOTHING RETURNING id)
                     SELECT id FROM added
                     UNION ALL SELECT id FROM tvilling.history_devices WHERE device = $1
                     LIMIT 1",
                    &[&id, &kind],
                )
                .map_err(pg)?;
            if let Some(row) = row {
                let i = row.get::<_, i32>(0) as u32;
                self.devices.insert(id.to_string(), i);
                return Ok(i);
            }
        }
        Err(StoreError::Server(format!(
            "device {id}: no number after 8 tries"
        )))
    }

    fn source_index(&mut self, name: &str) -> Result<u16, StoreError> {
        if let Some(i) = self.sources.get(name) {
            return Ok(*i);
        }
        let row = self
            .client
            .query_one(
                "WITH added AS (
                     INSERT INTO tvilling.history_sources(id, name)
                     SELECT coalesce(max(id), 0) + 1, $1 FROM tvilling.history_sources
                     ON CONFLICT (name) DO NOTHING RETURNING id)
                 SELECT id FROM added
                 UNION ALL SELECT id FROM tvilling.history_sources WHERE name = $1
                 LIMIT 1",
                &[&name],
            )
            .map_err(pg)?;
        let i = row.get::<_, i32>(0) as u16;
        self.sources.insert(name.to_string(), i);
        Ok(i)
    }

    fn write(&mut self, rows: &[super::store::Row], alarms: &[AlarmRow]) -> Result<(), StoreError> {
        let client = &mut self.client;
        self.rec
            .push_rows(rows, |rec, s| with_sink(client, |sink| rec.roll(sink, s)))?;
        if !alarms.is_empty() {
            let mut tx = self.client.transaction().map_err(pg)?;
            for a in alarms {
                tx.execute(
                    "INSERT INTO tvilling.history_alarms(t, device, severity, text, raised)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&a.t_ms, &a.device, &a.severity, &a.text, &a.raised],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
        }
        Ok(())
    }

    fn keyframe(&mut self, t_ms: i64, running: &Running) -> Result<(), StoreError> {
        let rec = &mut self.rec;
        with_sink(&mut self.client, |sink| rec.keyframe(sink, t_ms, running))
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        let rec = &mut self.rec;
        with_sink(&mut self.client, |sink| rec.write_dirty(sink))
    }

    fn write_metrics(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.write_moment("metrics", t_ms, json)
    }

    fn write_traffic(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.write_moment("traffic", t_ms, json)
    }

    fn write_audit(
        &mut self,
        _rows: &[tvilling_metrics::lifecycle::Transition],
    ) -> Result<(), StoreError> {
        // The shared book writes every change itself (with the station): see the module.
        Ok(())
    }

    fn state_at(&mut self, t_ms: i64) -> Result<StateAt, StoreError> {
        let mut sorted: state::Sorted = Vec::new();
        let mut damaged = Vec::new();
        if let Some(seg) = self.segment_at_or_before(segment_of(t_ms))? {
            let (lo, hi) = segment::segment_ids(seg);
            let mut blocks = state::SegmentBlocks::default();
            for r in self
                .client
                .query(
                    "SELECT block, data FROM tvilling.blocks WHERE id >= $1 AND id < $2 ORDER BY id",
                    &[&lo, &hi],
                )
                .map_err(pg)?
            {
                blocks.push(r.get(0), r.get(1));
            }
            let (s, d) = state::state_of(&blocks, seg * SEGMENT_MS, t_ms);
            sorted = s;
            damaged = d.into_iter().map(|d| (d, seg)).collect();
        }
        // Device names: only those added since the last read.
        let known = self.names.len() as i32;
        let added = self
            .client
            .query(
                "SELECT id, device, kind FROM tvilling.history_devices WHERE id >= $1 ORDER BY id",
                &[&known.max(1)],
            )
            .map_err(pg)?;
        if !added.is_empty() {
            let names = std::sync::Arc::make_mut(&mut self.names);
            for r in added {
                let i = r.get::<_, i32>(0) as usize;
                if names.len() <= i {
                    names.resize(i + 1, (String::new(), String::new()));
                }
                names[i] = (r.get(1), r.get(2));
            }
        }
        let known = self.names.len();
        let values = sorted
            .into_iter()
            .map(|(series, h)| {
                let (d, q) = series_parts(series);
                (d, q, h)
            })
            .filter(|(d, _, _)| (*d as usize) < known)
            .collect();
        let alarms = self
            .client
            .query(
                "SELECT DISTINCT ON (device) t, device, severity, text, raised
                 FROM tvilling.history_alarms WHERE t <= $1 ORDER BY device, id DESC",
                &[&t_ms],
            )
            .map_err(pg)?
            .iter()
            .map(|r| AlarmRow {
                t_ms: r.get(0),
                device: r.get(1),
                severity: r.get(2),
                text: r.get(3),
                raised: r.get(4),
            })
            .filter(|a| a.raised)
            .collect();
        let mut sources = Vec::new();
        for r in self
            .client
            .query(
                "SELECT id, name FROM tvilling.history_sources ORDER BY id",
                &[],
            )
            .map_err(pg)?
        {
            let i = r.get::<_, i32>(0) as usize;
            if sources.len() <= i {
                sources.resize(i + 1, String::new());
            }
            sources[i] = r.get(1);
        }
        let mut metrics: Option<(i64, String)> = self
            .client
            .query_opt(
                "SELECT t, json FROM tvilling.metrics WHERE t <= $1 ORDER BY t DESC LIMIT 1",
                &[&t_ms],
            )
            .map_err(pg)?
            .map(|r| (r.get(0), r.get(1)));
        if let Some((t, json)) = metrics.as_mut()
            && !json.contains("\"signals\"")
        {
            let full: Option<String> = self
                .client
                .query_opt(
                    "SELECT json FROM tvilling.metrics WHERE t <= $1
                         AND json LIKE '%\"signals\":%' ORDER BY t DESC LIMIT 1",
                    &[&*t],
                )
                .map_err(pg)?
                .map(|r| r.get(0));
            splice_signals(json, full);
        }
        let traffic = self
            .client
            .query_opt(
                "SELECT t, json FROM tvilling.traffic WHERE t <= $1 AND t > $2
                 ORDER BY t DESC LIMIT 1",
                &[&t_ms, &t_ms.saturating_sub(super::store::TRAFFIC_REACH_MS)],
            )
            .map_err(pg)?
            .map(|r| (r.get(0), r.get(1)));
        let desk = tvilling_metrics::lifecycle::AlarmBook::replay(&self.desk_log(t_ms)?, t_ms);
        Ok(StateAt {
            t_ms,
            damaged: damage_text(&self.names, damaged),
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
        let Some(id) = self
            .client
            .query_opt(
                "SELECT id FROM tvilling.history_devices WHERE device = $1",
                &[&device],
            )
            .map_err(pg)?
            .map(|r| r.get::<_, i32>(0) as u32)
        else {
            return Ok(Vec::new());
        };
        let block_no = block::block_of(series_of(id, 0));
        let rows = self
            .client
            .query(
                "SELECT seg, data FROM tvilling.blocks WHERE block = $1 AND seg >= $2
                     AND seg <= $3 AND t_last >= $4 AND t_first <= $5 ORDER BY seg",
                &[
                    &block_no,
                    &segment_of(from_ms),
                    &segment_of(to_ms),
                    &from_ms,
                    &to_ms,
                ],
            )
            .map_err(pg)?;
        let mut per_series = Vec::new();
        for r in &rows {
            series_in_block(
                &mut per_series,
                r.get(0),
                r.get(1),
                id,
                (from_ms, to_ms),
                device,
            )?;
        }
        let mut part = in_time_order(per_series);
        part.sort_by_key(|(q, _)| *q);
        Ok(merge_runs(vec![part]))
    }

    fn range(&mut self) -> Result<Option<(i64, i64)>, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT (SELECT seg FROM tvilling.blocks WHERE n > 0 ORDER BY id LIMIT 1),
                        (SELECT seg FROM tvilling.blocks WHERE n > 0 ORDER BY id DESC LIMIT 1)",
                &[],
            )
            .map_err(pg)?;
        let (Some(a), Some(b)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1))
        else {
            return Ok(None);
        };
        let (alo, ahi) = segment::segment_ids(a);
        let (blo, bhi) = segment::segment_ids(b);
        let row = self
            .client
            .query_one(
                "SELECT (SELECT min(t_first) FROM tvilling.blocks WHERE id >= $1 AND id < $2),
                        (SELECT max(t_last) FROM tvilling.blocks WHERE id >= $3 AND id < $4)",
                &[&alo, &ahi, &blo, &bhi],
            )
            .map_err(pg)?;
        Ok(row
            .get::<_, Option<i64>>(0)
            .zip(row.get::<_, Option<i64>>(1)))
    }

    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError> {
        let Some((_, newest)) = self.range()? else {
            return Ok(0);
        };
        let cut = newest - (days * 86_400_000.0) as i64;
        let Some(first_kept) = self.segment_at_or_before(segment_of(cut))? else {
            return Ok(0);
        };
        let cut = cut.min(first_kept * SEGMENT_MS - 1);
        let (lo, _) = segment::segment_ids(first_kept);
        let mut tx = self.client.transaction().map_err(pg)?;
        let n: i64 = tx
            .query_one(
                "SELECT coalesce(sum(n), 0)::bigint FROM tvilling.blocks WHERE id < $1",
                &[&lo],
            )
            .map_err(pg)?
            .get(0);
        tx.execute("DELETE FROM tvilling.blocks WHERE id < $1", &[&lo])
            .map_err(pg)?;
        tx.execute(
            "DELETE FROM tvilling.segments WHERE seg < $1",
            &[&first_kept],
        )
        .map_err(pg)?;
        for table in ["history_alarms", "metrics", "traffic"] {
            tx.execute(
                &format!("DELETE FROM tvilling.{table} WHERE t < $1"),
                &[&cut],
            )
            .map_err(pg)?;
        }
        tx.commit().map_err(pg)?;
        Ok(n as u64)
    }

    fn neighbour(&mut self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError> {
        let seg = segment_of(t_ms);
        let (lo, hi) = segment::segment_ids(seg);
        // First within t's own segment...
        let sql = if forward {
            "SELECT data FROM tvilling.blocks WHERE id >= $1 AND id < $2 AND t_last > $3"
        } else {
            "SELECT data FROM tvilling.blocks WHERE id >= $1 AND id < $2 AND t_first < $3"
        };
        let mut best = None;
        for r in self.client.query(sql, &[&lo, &hi, &t_ms]).map_err(pg)? {
            nearest_in_block(seg, r.get(0), t_ms, forward, &mut best);
        }
        if best.is_some() {
            return Ok(best);
        }
        // ...then the nearest segment that holds values.
        let sql = if forward {
            "WITH s AS (SELECT seg FROM tvilling.blocks WHERE id >= $1 AND n > 0
                        ORDER BY id LIMIT 1)
             SELECT min(b.t_first) FROM tvilling.blocks b, s
             WHERE b.id >= s.seg << 28 AND b.id < (s.seg + 1) << 28"
        } else {
            "WITH s AS (SELECT seg FROM tvilling.blocks WHERE id < $1 AND n > 0
                        ORDER BY id DESC LIMIT 1)
             SELECT max(b.t_last) FROM tvilling.blocks b, s
             WHERE b.id >= s.seg << 28 AND b.id < (s.seg + 1) << 28"
        };
        let from = if forward { hi } else { lo };
        Ok(self
            .client
            .query_one(sql, &[&from])
            .map_err(pg)?
            .get::<_, Option<i64>>(0))
    }

    fn resume(&mut self) -> Result<(i64, Running), StoreError> {
        let newest = self.range()?.map_or(i64::MIN, |r| r.1);
        self.rec.clear();
        let last: Option<i64> = self
            .client
            .query_one("SELECT max(seg) FROM tvilling.segments", &[])
            .map_err(pg)?
            .get(0);
        if let Some(seg) = last {
            let (lo, hi) = segment::segment_ids(seg);
            let blocks: Vec<(i64, Vec<u8>)> = self
                .client
                .query(
                    "SELECT block, data FROM tvilling.blocks WHERE id >= $1 AND id < $2",
                    &[&lo, &hi],
                )
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            self.rec.take_up(seg, &blocks);
        }
        Ok((newest, self.rec.held()))
    }
}

/// The advisory lock whose holder records a store's history (beside the alarm book's).
pub const HISTORY_LOCK: (i32, i32) = (crate::shared::sync::LEADER_LOCK.0, 2);
/// How long a twin that does not record keeps what it would have written, wall time.
const STANDBY_KEEP: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many values are kept on standby (a fast simulated run fills 30 s quickly).
const STANDBY_MOST: usize = 4_000_000;

/// One recorder a store: the twin holding [`HISTORY_LOCK`] writes the history; every other
/// twin keeps its last 30 s of values (and metrics, traffic, alarm changes) on standby and
/// tries for the lock every second. The twin that takes it over continues the store's newest
/// hour and first writes what it kept that the store does not hold: for each series, the
/// values after the last one stored (at least once, never twice).
pub struct RecorderGate {
    inner: PgHistory,
    leading: bool,
    last_try: std::time::Instant,
    rows: std::collections::VecDeque<(std::time::Instant, super::store::Row)>,
    alarms: std::collections::VecDeque<(std::time::Instant, AlarmRow)>,
    moments: std::collections::VecDeque<(std::time::Instant, bool, i64, String)>,
}

impl RecorderGate {
    pub fn open(url: &str) -> Result<RecorderGate, StoreError> {
        let mut g = RecorderGate {
            inner: PgHistory::open(url)?,
            leading: false,
            last_try: std::time::Instant::now() - std::time::Duration::from_secs(10),
            rows: Default::default(),
            alarms: Default::default(),
            moments: Default::default(),
        };
        g.try_lead()?;
        Ok(g)
    }

    /// Whether this twin records the store's history now.
    pub fn leading(&self) -> bool {
        self.leading
    }

    fn try_lead(&mut self) -> Result<(), StoreError> {
        if self.leading || self.last_try.elapsed() < std::time::Duration::from_secs(1) {
            return Ok(());
        }
        self.last_try = std::time::Instant::now();
        let got: bool = self
            .inner
            .client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&HISTORY_LOCK.0, &HISTORY_LOCK.1],
            )
            .map_err(pg)?
            .get(0);
        if !got {
            return Ok(());
        }
        self.leading = true;
        // Continue the newest hour; write what was kept that the store does not hold.
        let (_, held) = self.inner.resume()?;
        let rows: Vec<super::store::Row> = self
            .rows
            .drain(..)
            .map(|r| r.1)
            .filter(|r| {
                held.get(&(r.device, r.quantity))
                    .is_none_or(|h| r.t_ms > h.last_ms)
            })
            .collect();
        let mut alarms = Vec::new();
        for (_, a) in self.alarms.drain(..) {
            let stored: bool = self
                .inner
                .client
                .query_one(
                    "SELECT EXISTS(SELECT 1 FROM tvilling.history_alarms WHERE t = $1
                         AND device = $2 AND severity = $3 AND raised = $4)",
                    &[&a.t_ms, &a.device, &a.severity, &a.raised],
                )
                .map_err(pg)?
                .get(0);
            if !stored {
                alarms.push(a);
            }
        }
        self.inner.write(&rows, &alarms)?;
        for (_, metrics, t, json) in std::mem::take(&mut self.moments) {
            // Written by time: one already there is the same moment again.
            self.inner
                .write_moment(if metrics { "metrics" } else { "traffic" }, t, &json)?;
        }
        self.inner.persist()
    }

    /// A recorded moment of the metrics (`metrics`) or the traffic: written when recording,
    /// else kept on standby.
    fn moment(&mut self, metrics: bool, t_ms: i64, json: &str) -> Result<(), StoreError> {
        if self.leading {
            return self.inner.write_moment(
                if metrics { "metrics" } else { "traffic" },
                t_ms,
                json,
            );
        }
        self.moments
            .push_back((std::time::Instant::now(), metrics, t_ms, json.to_string()));
        Ok(())
    }

    fn forget_old(&mut self) {
        let now = std::time::Instant::now();
        let old = |t: &std::time::Instant| now.duration_since(*t) > STANDBY_KEEP;
        while self.rows.front().is_some_and(|r| old(&r.0)) || self.rows.len() > STANDBY_MOST {
            self.rows.pop_front();
        }
        while self.alarms.front().is_some_and(|r| old(&r.0)) {
            self.alarms.pop_front();
        }
        while self.moments.front().is_some_and(|r| old(&r.0)) {
            self.moments.pop_front();
        }
    }
}

impl HistoryStore for RecorderGate {
    fn device_index(&mut self, id: &str, kind: &str) -> Result<u32, StoreError> {
        self.inner.device_index(id, kind)
    }

    fn source_index(&mut self, name: &str) -> Result<u16, StoreError> {
        self.inner.source_index(name)
    }

    fn write(&mut self, rows: &[super::store::Row], alarms: &[AlarmRow]) -> Result<(), StoreError> {
        self.try_lead()?;
        if self.leading {
            return self.inner.write(rows, alarms);
        }
        let now = std::time::Instant::now();
        self.rows.extend(rows.iter().map(|r| (now, *r)));
        self.alarms.extend(alarms.iter().map(|a| (now, a.clone())));
        self.forget_old();
        Ok(())
    }

    fn keyframe(&mut self, t_ms: i64, running: &Running) -> Result<(), StoreError> {
        if self.leading {
            self.inner.keyframe(t_ms, running)
        } else {
            Ok(())
        }
    }

    fn persist(&mut self) -> Result<(), StoreError> {
        self.try_lead()?;
        if self.leading {
            self.inner.persist()
        } else {
            Ok(())
        }
    }

    fn write_metrics(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.moment(true, t_ms, json)
    }

    fn write_traffic(&mut self, t_ms: i64, json: &str) -> Result<(), StoreError> {
        self.moment(false, t_ms, json)
    }

    fn write_audit(
        &mut self,
        rows: &[tvilling_metrics::lifecycle::Transition],
    ) -> Result<(), StoreError> {
        self.inner.write_audit(rows)
    }

    fn state_at(&mut self, t_ms: i64) -> Result<StateAt, StoreError> {
        self.inner.state_at(t_ms)
    }

    fn series(
        &mut self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u8, f64)>, StoreError> {
        self.inner.series(device, from_ms, to_ms)
    }

    fn range(&mut self) -> Result<Option<(i64, i64)>, StoreError> {
        self.inner.range()
    }

    fn retain_days(&mut self, days: f64) -> Result<u64, StoreError> {
        self.inner.retain_days(days)
    }

    fn resume(&mut self) -> Result<(i64, Running), StoreError> {
        if self.leading {
            self.inner.resume()
        } else {
            Ok((i64::MIN, Running::default()))
        }
    }

    fn neighbour(&mut self, t_ms: i64, forward: bool) -> Result<Option<i64>, StoreError> {
        self.inner.neighbour(t_ms, forward)
    }
}
