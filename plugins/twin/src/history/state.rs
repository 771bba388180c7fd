//! The state at a moment, rebuilt from a keyframe and the chunks after it, on all cores.
//!
//! A keyframe's entries and a segment's chunks are both ordered by series (device, then
//! quantity), so the state is a sorted list and each segment's chunks are folded into it by a
//! merge, not by a lookup a value. Each chunk is folded on its own (its points, in the order
//! written, into its series' held value: one lookup a chunk), the chunks of a segment shared
//! out among threads in contiguous runs of series.

use super::chunk::{self, Damaged};
use super::store::{Held, fold_held};

/// A series key: device number above, quantity in the low byte (the chunks table's `series`).
pub type Series = i64;

/// The state being rebuilt: each series' held value, ordered by series.
pub type Sorted = Vec<(Series, Held)>;

/// One segment's chunks as read from the store: their bytes in one arena, in series order.
#[derive(Debug, Default)]
pub struct SegmentChunks {
    /// (series, point count, where its bytes start in `bytes`), ordered by series.
    pub chunks: Vec<(Series, u32, usize)>,
    pub bytes: Vec<u8>,
}

impl SegmentChunks {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.bytes.clear();
    }

    pub fn push(&mut self, series: Series, n: u32, data: &[u8]) {
        self.chunks.push((series, n, self.bytes.len()));
        self.bytes.extend_from_slice(data);
    }

    fn data(&self, i: usize) -> &[u8] {
        let start = self.chunks[i].2;
        let end = self.chunks.get(i + 1).map_or(self.bytes.len(), |c| c.2);
        &self.bytes[start..end]
    }
}

/// The cores to share a read among, at most `most`.
pub fn cores(most: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, most)
}

/// Chunks below this many are folded on the calling thread.
const PARALLEL_FROM: usize = 20_000;

/// Folds one segment's chunks (values after `from_ms`, up to and including `to_ms`) into
/// `state`; chunks that cannot be read wholly give what they held before the damage and are
/// returned with their series.
pub fn fold_segment(
    state: &mut Sorted,
    base_ms: i64,
    seg: &SegmentChunks,
    from_ms: i64,
    to_ms: i64,
) -> Vec<(Series, Damaged)> {
    let n = seg.chunks.len();
    if n == 0 {
        return Vec::new();
    }
    let threads = if n < PARALLEL_FROM { 1 } else { cores(8) };
    let per = n.div_ceil(threads);
    let parts: Vec<(Sorted, Vec<(Series, Damaged)>)> = if threads == 1 {
        vec![fold_run(state, base_ms, seg, 0..n, from_ms, to_ms)]
    } else {
        let state: &Sorted = state;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let run = (k * per).min(n)..((k + 1) * per).min(n);
                    s.spawn(move || fold_run(state, base_ms, seg, run, from_ms, to_ms))
                })
                .collect();
            // A thread that panicked takes the read down with it: its share is never lost
            // quietly.
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut damaged = Vec::new();
    let mut updates: Sorted = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    for (u, d) in parts {
        updates.extend(u);
        damaged.extend(d);
    }
    merge(state, updates);
    damaged
}

/// Folds the chunks `run` of `seg`, each from its series' held value in `state`: the series'
/// new held values, in series order.
fn fold_run(
    state: &Sorted,
    base_ms: i64,
    seg: &SegmentChunks,
    run: std::ops::Range<usize>,
    from_ms: i64,
    to_ms: i64,
) -> (Sorted, Vec<(Series, Damaged)>) {
    let mut out = Vec::with_capacity(run.len());
    let mut damaged = Vec::new();
    let Some(&(first, _, _)) = seg.chunks.get(run.start) else {
        return (out, damaged);
    };
    // The state's cursor, walked forward with the chunks (both in series order).
    let mut at = state.partition_point(|(s, _)| *s < first);
    for i in run {
        let (series, n, _) = seg.chunks[i];
        while at < state.len() && state[at].0 < series {
            at += 1;
        }
        let mut held = state.get(at).filter(|(s, _)| *s == series).map(|e| e.1);
        let before = held;
        let result = chunk::decode_each(base_ms, n, seg.data(i), |p| {
            if p.t_ms > from_ms && p.t_ms <= to_ms {
                fold_held(&mut held, &p);
            }
        });
        if let Err(e) = result {
            damaged.push((series, e));
        }
        if let Some(h) = held
            && held != before
        {
            out.push((series, h));
        }
    }
    (out, damaged)
}

/// Merges `updates` (series order, each series once) into `state`: an update replaces the
/// series' entry or joins the list in its place.
fn merge(state: &mut Sorted, updates: Sorted) {
    if updates.is_empty() {
        return;
    }
    // Most updates replace an entry: those are written in place, the rest gathered.
    let mut added: Sorted = Vec::new();
    let mut at = 0;
    for (series, h) in updates {
        while at < state.len() && state[at].0 < series {
            at += 1;
        }
        if at < state.len() && state[at].0 == series {
            state[at].1 = h;
        } else {
            added.push((series, h));
        }
    }
    if added.is_empty() {
        return;
    }
    let old = std::mem::take(state);
    state.reserve(old.len() + added.len());
    let (mut a, mut b) = (old.into_iter().peekable(), added.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.0 < y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        state.extend(if take_a { a.next() } else { b.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::chunk::{ChunkWriter, Point};
    use crate::history::store::{Row, Running, fold};

    /// A few series with values in and out of order, repeats and changes, folded by the
    /// sorted merge (many threads' worth of chunks) and by `fold` a value at a time into a
    /// map: the same state.
    #[test]
    fn folding_chunks_by_series_equals_folding_each_value() {
        let base = 3_600_000;
        let mut seg = SegmentChunks::default();
        let mut rows = Vec::new();
        let mut x: u64 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Series 0..60,000 (every other one), enough to be shared among threads.
        for s in (0..60_000i64).step_by(2) {
            let mut w = ChunkWriter::new(base);
            let mut t = base;
            for _ in 0..(next() % 5) {
                t += (next() % 400_000) as i64 - 50_000;
                let p = Point {
                    t_ms: t,
                    value: (next() % 3) as f64,
                    source: (next() % 2) as u16,
                };
                w.push(p);
                rows.push((s, p));
            }
            if w.n > 0 {
                seg.push(s, w.n, w.bytes());
            }
        }
        // A prior state: every third series known, some not in the segment at all.
        let mut prior: Sorted = (0..60_001i64)
            .step_by(3)
            .map(|s| {
                (
                    s,
                    Held {
                        since_ms: base - 10,
                        last_ms: base - 5,
                        value: 1.0,
                        source: 0,
                    },
                )
            })
            .collect();
        let mut map: Running = prior
            .iter()
            .map(|(s, h)| (((*s >> 8) as u32, (*s & 0xff) as u8), *h))
            .collect();
        let (from, to) = (base - 1, base + 500_000);
        for (s, p) in &rows {
            if p.t_ms > from && p.t_ms <= to {
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
        assert!(fold_segment(&mut prior, base, &seg, from, to).is_empty());
        let mut want: Sorted = map
            .into_iter()
            .map(|((d, q), h)| ((i64::from(d) << 8) | i64::from(q), h))
            .collect();
        want.sort_unstable_by_key(|e| e.0);
        assert_eq!(prior.len(), want.len());
        assert_eq!(prior, want);
    }
}
