//! The state at a moment, rebuilt from one hour's blocks on all cores.
//!
//! Each block holds its series' states as the hour began and their points in the hour, so
//! the blocks are read independently: each series' carried state with its points up to the
//! moment folded in (no lookup at all), the blocks shared out among threads in contiguous
//! runs. Blocks come in block order and each block's series in series order, so the runs
//! joined are the state in series order.

use super::block::{self, BlockReader};
use super::chunk;
use super::store::{Held, fold_held};

/// A series key: device number above, quantity in the low byte.
pub type Series = i64;

/// The state: each series' held value, ordered by series.
pub type Sorted = Vec<(Series, Held)>;

/// One hour's blocks as read from the store: their bytes in one arena, in block order.
#[derive(Debug, Default)]
pub struct SegmentBlocks {
    /// (block, where its bytes start in `bytes`), ordered by block.
    pub blocks: Vec<(i64, usize)>,
    pub bytes: Vec<u8>,
}

impl SegmentBlocks {
    pub fn push(&mut self, block: i64, data: &[u8]) {
        self.blocks.push((block, self.bytes.len()));
        self.bytes.extend_from_slice(data);
    }

    fn data(&self, i: usize) -> &[u8] {
        let start = self.blocks[i].1;
        let end = self.blocks.get(i + 1).map_or(self.bytes.len(), |c| c.1);
        &self.bytes[start..end]
    }
}

/// What could not be read: a series' points, or a block past some of its series.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    Series(Series, chunk::Damaged),
    Block(i64, block::Damaged),
}

/// The cores to share a read among, at most `most`.
pub fn cores(most: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, most)
}

/// Blocks below this many are read on the calling thread.
const PARALLEL_FROM: usize = 2_000;

/// The state at `to_ms` from one hour's blocks (the hour from `base_ms`): what could not be
/// read is returned beside it (a damaged series gives what it held before the damage; a
/// damaged block the series before it).
pub fn state_of(seg: &SegmentBlocks, base_ms: i64, to_ms: i64) -> (Sorted, Vec<Damage>) {
    let n = seg.blocks.len();
    let threads = if n < PARALLEL_FROM { 1 } else { cores(8) };
    if threads == 1 {
        return read_run(seg, base_ms, 0..n, to_ms);
    }
    let per = n.div_ceil(threads);
    let parts: Vec<(Sorted, Vec<Damage>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let run = (k * per).min(n)..((k + 1) * per).min(n);
                s.spawn(move || read_run(seg, base_ms, run, to_ms))
            })
            .collect();
        // A thread that panicked takes the read down with it: its share is never lost
        // quietly.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut state = Sorted::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut damaged = Vec::new();
    for (s, d) in parts {
        state.extend(s);
        damaged.extend(d);
    }
    (state, damaged)
}

/// Reads the blocks `run` of `seg`.
fn read_run(
    seg: &SegmentBlocks,
    base_ms: i64,
    run: std::ops::Range<usize>,
    to_ms: i64,
) -> (Sorted, Vec<Damage>) {
    let mut out: Sorted = Vec::with_capacity(run.len() * 64);
    let mut damaged = Vec::new();
    for i in run {
        let from = out.len();
        let b = seg.blocks[i].0;
        match BlockReader::new(base_ms, seg.data(i)) {
            Err(e) => damaged.push(Damage::Block(b, e)),
            Ok(mut r) => loop {
                let h = match r.next_head() {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(e) => {
                        damaged.push(Damage::Block(b, e));
                        break;
                    }
                };
                let mut held = h.carry.map(|c| c.held);
                let read = r.points(&h, |p| {
                    if p.t_ms <= to_ms {
                        fold_held(&mut held, &p);
                    }
                });
                if let Some(held) = held {
                    out.push((h.series, held));
                }
                if let Err(e) = read {
                    damaged.push(Damage::Series(h.series, e));
                    break;
                }
            },
        }
        // A block's series come in series order (a file not written by Tvilling may not).
        if !out[from..].is_sorted_by_key(|e| e.0) {
            out[from..].sort_unstable_by_key(|e| e.0);
        }
    }
    (out, damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::block::Carry;
    use crate::history::chunk::{ChunkWriter, Last, Point};
    use crate::history::store::{Row, Running, fold};

    /// Many blocks of series with carried states and points in and out of order, repeats
    /// and changes, read on several threads: the same state as folding each value into a map.
    #[test]
    fn the_state_from_blocks_equals_folding_each_value() {
        let base = 3_600_000;
        let mut x: u64 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut map = Running::default();
        let mut seg = SegmentBlocks::default();
        let mut rows = Vec::new();
        // 3,000 blocks of 16 devices: enough to be shared among threads.
        for b in 0..3_000i64 {
            let mut chunks: Vec<(Series, Option<Carry>, ChunkWriter)> = Vec::new();
            for d in (b * 16)..(b * 16 + 16) {
                for q in [1i64, 4] {
                    let series = (d << 8) | q;
                    let carry = (next() % 3 != 0).then(|| Carry {
                        held: Held {
                            since_ms: base - 10_000,
                            last_ms: base - (next() % 5_000) as i64,
                            value: (next() % 3) as f64,
                            source: 0,
                        },
                        interval: 60_000,
                    });
                    if let Some(c) = carry {
                        map.insert(((series >> 8) as u32, q as u8), c.held);
                    }
                    let mut w =
                        ChunkWriter::resume(base, carry.map_or(Last::cyclic(base), |c| c.last()));
                    let mut t = base;
                    for _ in 0..(next() % 5) {
                        t += (next() % 400_000) as i64 - 50_000;
                        let p = Point {
                            t_ms: t,
                            value: (next() % 3) as f64,
                            source: (next() % 2) as u16,
                        };
                        w.push(p);
                        rows.push((series, p));
                    }
                    chunks.push((series, carry, w));
                }
            }
            let mut entries: Vec<(Series, Option<Carry>, &ChunkWriter)> =
                chunks.iter().map(|(s, c, w)| (*s, *c, w)).collect();
            seg.push(b, &block::encode(base, &mut entries));
        }
        let to = base + 500_000;
        for (s, p) in &rows {
            if p.t_ms <= to {
                fold(
                    &mut map,
                    &Row {
                        t_ms: p.t_ms,
                        device: (*s >> 8) as u32,
                        quantity: (*s & 0xff) as u8,
                        value: p.value,
                        source: p.source,
                    },
                );
            }
        }
        let (state, damaged) = state_of(&seg, base, to);
        assert!(damaged.is_empty());
        let mut want: Sorted = map
            .into_iter()
            .map(|((d, q), h)| ((i64::from(d) << 8) | i64::from(q), h))
            .collect();
        want.sort_unstable_by_key(|e| e.0);
        assert_eq!(state.len(), want.len());
        assert_eq!(state, want);
    }
}
