//! The segment (hour) being recorded: each series' chunk of points and the state it carried
//! in, kept by block; a block that grew is written again whole, and when the hour ends every
//! series carries its state into the next one.

use std::collections::HashMap;

use super::block::{self, BlockReader, Carry, Series};
use super::chunk::{ChunkWriter, Last, Point};
use super::store::{Held, Running, SEGMENT_MS, SeriesHasher, StoreError, fold_held};

/// A series in the segment being written.
#[derive(Debug, Clone)]
struct Open {
    /// The state it carried in from the hour before.
    carry: Option<Carry>,
    /// Its state now (the carried state with the points folded in).
    held: Option<Held>,
    chunk: ChunkWriter,
    /// Grown since its block was last written.
    dirty: bool,
}

#[derive(Debug, Default, Clone)]
struct BlockOpen {
    series: Vec<Series>,
    dirty: bool,
}

type Hasher = std::hash::BuildHasherDefault<SeriesHasher>;

/// The segment being recorded.
#[derive(Debug, Default)]
pub struct Recording {
    /// Its number (`None` before the first value).
    segment: Option<i64>,
    open: HashMap<Series, Open, Hasher>,
    blocks: HashMap<i64, BlockOpen, Hasher>,
    /// Blocks that grew since they were written, in the order they first did.
    dirty: Vec<i64>,
    /// The segment's row in `segments` is still to be written.
    new_segment: bool,
}

impl Recording {
    pub fn segment(&self) -> Option<i64> {
        self.segment
    }

    /// Starts segment `seg` with nothing carried in (the first one recorded).
    pub fn begin(&mut self, seg: i64) {
        self.clear();
        self.segment = Some(seg);
        self.new_segment = true;
    }

    pub fn clear(&mut self) {
        self.open.clear();
        self.blocks.clear();
        self.dirty.clear();
        self.segment = None;
        self.new_segment = false;
    }

    /// Takes one point into the segment being written (begun if none is).
    pub fn push(&mut self, series: Series, p: Point) {
        let seg = match self.segment {
            Some(s) => s,
            None => {
                let s = super::store::segment_of(p.t_ms);
                self.begin(s);
                s
            }
        };
        let o = match self.open.get_mut(&series) {
            Some(o) => o,
            None => {
                let b = block::block_of(series);
                self.blocks.entry(b).or_default().series.push(series);
                self.open.entry(series).or_insert(Open {
                    carry: None,
                    held: None,
                    chunk: ChunkWriter::resume(seg * SEGMENT_MS, Last::cyclic(seg * SEGMENT_MS)),
                    dirty: false,
                })
            }
        };
        o.chunk.push(p);
        fold_held(&mut o.held, &p);
        if !o.dirty {
            o.dirty = true;
            let b = block::block_of(series);
            if let Some(bo) = self.blocks.get_mut(&b)
                && !bo.dirty
            {
                bo.dirty = true;
                self.dirty.push(b);
            }
        }
    }

    /// Adds a carried state for each series of `running` the segment does not hold (a
    /// state handed in from outside, e.g. a keyframe of an older file).
    pub fn seed(&mut self, running: &Running) {
        let Some(seg) = self.segment else {
            return;
        };
        for (&(d, q), h) in running {
            let series = (i64::from(d) << 8) | i64::from(q);
            if self.open.contains_key(&series) {
                continue;
            }
            let carry = Carry {
                held: *h,
                interval: 0,
            };
            let b = block::block_of(series);
            let bo = self.blocks.entry(b).or_default();
            bo.series.push(series);
            if !bo.dirty {
                bo.dirty = true;
                self.dirty.push(b);
            }
            self.open.insert(
                series,
                Open {
                    carry: Some(carry),
                    held: Some(*h),
                    chunk: ChunkWriter::resume(seg * SEGMENT_MS, carry.last()),
                    dirty: true,
                },
            );
        }
        self.new_segment = true;
    }

    /// Takes applied values in order: a value of a later segment first ends the one being
    /// written (`roll`: in a transaction of the backend's) and begins its; a value older than
    /// the segment being written is kept with it.
    pub fn push_rows(
        &mut self,
        rows: &[super::store::Row],
        mut roll: impl FnMut(&mut Recording, i64) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for r in rows {
            let s = super::store::segment_of(r.t_ms);
            if let Some(open) = self.segment
                && s > open
            {
                roll(self, s)?;
            }
            self.push(
                super::store::series_of(r.device, r.quantity),
                Point {
                    t_ms: r.t_ms,
                    value: r.value,
                    source: r.source,
                },
            );
        }
        Ok(())
    }

    /// The keyframe at `t_ms` (the last moment before an hour): the hour after it begins,
    /// every series (and any of `running` not held, as after a restart) carrying its state
    /// into it; what grew is written.
    pub fn keyframe(
        &mut self,
        sink: &mut dyn BlockSink,
        t_ms: i64,
        running: &Running,
    ) -> Result<(), StoreError> {
        let next = super::store::segment_of(t_ms.saturating_add(1));
        match self.segment {
            Some(open) if next > open => {
                self.roll(sink, next)?;
                self.seed(running);
            }
            Some(_) => {}
            None => {
                self.begin(next);
                self.seed(running);
            }
        }
        self.write_dirty(sink)
    }

    /// Ends the segment being written (its blocks that grew written with `conn`) and begins
    /// `next`, every series carrying its state into it.
    pub fn roll(&mut self, conn: &mut dyn BlockSink, next: i64) -> Result<(), StoreError> {
        let Some(seg) = self.segment else {
            self.begin(next);
            return Ok(());
        };
        if next <= seg {
            return Ok(());
        }
        // Its blocks were written again and again as they grew, into pages left part
        // full: written once more, whole and in order, they fill their pages.
        self.compact(conn)?;
        let base = next * SEGMENT_MS;
        self.open.retain(|_, o| o.held.is_some());
        for o in self.open.values_mut() {
            let Some(held) = o.held else { continue };
            let interval = if o.chunk.n > 0 {
                o.chunk.last().delta
            } else {
                o.carry.map_or(0, |c| c.interval)
            };
            let carry = Carry { held, interval };
            o.carry = Some(carry);
            o.chunk = ChunkWriter::resume(base, carry.last());
            o.dirty = true;
        }
        self.blocks.retain(|_, b| {
            b.series.clear();
            true
        });
        for s in self.open.keys() {
            self.blocks
                .entry(block::block_of(*s))
                .or_default()
                .series
                .push(*s);
        }
        self.blocks.retain(|_, b| !b.series.is_empty());
        self.dirty.clear();
        for (b, bo) in self.blocks.iter_mut() {
            bo.dirty = true;
            self.dirty.push(*b);
        }
        self.segment = Some(next);
        self.new_segment = true;
        Ok(())
    }

    /// Writes all the segment's blocks again, in block order, in place of those stored (the
    /// segment's rows are the table's last, so they go into pages one after another, each
    /// filled; the pages they held are free for the next segment's).
    pub fn compact(&mut self, conn: &mut dyn BlockSink) -> Result<(), StoreError> {
        let Some(seg) = self.segment else {
            return Ok(());
        };
        let (lo, hi) = segment_ids(seg);
        conn.delete_blocks(lo, hi)?;
        self.dirty.clear();
        for (b, bo) in self.blocks.iter_mut() {
            bo.dirty = true;
            self.dirty.push(*b);
        }
        self.write_dirty(conn)
    }

    /// Writes the blocks that grew since they were last written (in block order).
    pub fn write_dirty(&mut self, conn: &mut dyn BlockSink) -> Result<(), StoreError> {
        let Some(seg) = self.segment else {
            return Ok(());
        };
        if self.new_segment {
            let carried = self.open.values().filter(|o| o.carry.is_some()).count();
            conn.put_segment(seg, carried as i64)?;
            self.new_segment = false;
        }
        if self.dirty.is_empty() {
            return Ok(());
        }
        let base = seg * SEGMENT_MS;
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        let mut entries: Vec<(Series, Option<Carry>, &ChunkWriter)> = Vec::new();
        for b in &dirty {
            let Some(bo) = self.blocks.get_mut(b) else {
                continue;
            };
            bo.dirty = false;
            entries.clear();
            let (mut k, mut n, mut first, mut last) = (0i64, 0i64, i64::MAX, i64::MIN);
            for s in &bo.series {
                if let Some(o) = self.open.get(s) {
                    k += i64::from(o.carry.is_some());
                    n += i64::from(o.chunk.n);
                    if o.chunk.n > 0 {
                        first = first.min(o.chunk.first_ms);
                        last = last.max(o.chunk.last_ms);
                    }
                    entries.push((*s, o.carry, &o.chunk));
                }
            }
            let data = block::encode(base, &mut entries);
            conn.put_block(&BlockRow {
                id: block_id(seg, *b),
                seg,
                block: *b,
                k,
                n,
                t_first: (n > 0).then_some(first),
                t_last: (n > 0).then_some(last),
                data: &data,
            })?;
        }
        for b in &dirty {
            if let Some(bo) = self.blocks.get(b) {
                for s in &bo.series {
                    if let Some(o) = self.open.get_mut(s) {
                        o.dirty = false;
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes up segment `seg` as stored (its blocks' bytes), to go on writing it; blocks that
    /// cannot be read wholly give what they held before the damage.
    pub fn take_up(&mut self, seg: i64, blocks: &[(i64, Vec<u8>)]) {
        self.clear();
        self.segment = Some(seg);
        let base = seg * SEGMENT_MS;
        for (b, bytes) in blocks {
            let Ok(mut r) = BlockReader::new(base, bytes) else {
                continue;
            };
            let bo = self.blocks.entry(*b).or_default();
            while let Ok(Some(h)) = r.next_head() {
                let last = h.carry.map_or(Last::cyclic(base), |c| c.last());
                let mut chunk = ChunkWriter::resume(base, last);
                let mut held = h.carry.map(|c| c.held);
                let ok = r
                    .points(&h, |p| {
                        chunk.push(p);
                        fold_held(&mut held, &p);
                    })
                    .is_ok();
                if held.is_some() {
                    bo.series.push(h.series);
                    self.open.insert(
                        h.series,
                        Open {
                            carry: h.carry,
                            held,
                            chunk,
                            dirty: false,
                        },
                    );
                }
                if !ok {
                    break;
                }
            }
        }
    }

    /// Each series' state now.
    pub fn held(&self) -> Running {
        let mut out = Running::with_capacity_and_hasher(self.open.len(), Default::default());
        for (s, o) in &self.open {
            if let Some(h) = o.held {
                out.insert(((*s >> 8) as u32, (*s & 0xff) as u8), h);
            }
        }
        out
    }
}

/// A block's row id: the segment above, the block below (a block number is under 2^28).
/// One row of the `blocks` table.
#[derive(Debug, Clone, Copy)]
pub struct BlockRow<'a> {
    pub id: i64,
    pub seg: i64,
    pub block: i64,
    /// Series carrying a state in, and points, in the block.
    pub k: i64,
    pub n: i64,
    pub t_first: Option<i64>,
    pub t_last: Option<i64>,
    pub data: &'a [u8],
}

/// Where a recording's rows go: the one thing a backend gives the segment writer (within
/// the backend's own transaction).
pub trait BlockSink {
    /// Writes (or replaces) a block row.
    fn put_block(&mut self, row: &BlockRow<'_>) -> Result<(), StoreError>;
    /// Writes (or replaces) a segment's row: how many series carried a state into it.
    fn put_segment(&mut self, seg: i64, carried: i64) -> Result<(), StoreError>;
    /// Deletes the block rows with ids in [lo, hi).
    fn delete_blocks(&mut self, lo: i64, hi: i64) -> Result<(), StoreError>;
}

/// The SQLite backend's sink: a connection (or a transaction on one).
pub struct SqliteSink<'a>(pub &'a rusqlite::Connection);

impl BlockSink for SqliteSink<'_> {
    fn put_block(&mut self, r: &BlockRow<'_>) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT OR REPLACE INTO blocks(id, seg, block, k, n, t_first, t_last, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(rusqlite::params![
                r.id, r.seg, r.block, r.k, r.n, r.t_first, r.t_last, r.data
            ])?;
        Ok(())
    }

    fn put_segment(&mut self, seg: i64, carried: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("INSERT OR REPLACE INTO segments(seg, carried) VALUES (?1, ?2)")?
            .execute([seg, carried])?;
        Ok(())
    }

    fn delete_blocks(&mut self, lo: i64, hi: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM blocks WHERE id >= ?1 AND id < ?2")?
            .execute([lo, hi])?;
        Ok(())
    }
}

pub fn block_id(seg: i64, block: i64) -> i64 {
    (seg << 28) | block
}

/// The row ids of a segment's blocks: from, and up to (not including).
pub fn segment_ids(seg: i64) -> (i64, i64) {
    (seg << 28, (seg + 1) << 28)
}
