//! Reading the history on its own thread: the state at a moment is rebuilt there (keyframe
//! plus the values after it) and handed back, so scrubbing never stalls a frame on disk. Small
//! lookups (the recorded range, the neighbouring message) use a second read-only connection.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::store::{HistoryStore, SqliteStore, StateAt, StoreError};
use super::writer::WriterStatus;

/// A request to the reader thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadRequest {
    /// The state at `t_ms`, once the writer has committed `after` batches.
    State { t_ms: i64, after: u64 },
    /// One device's values between two times (at most [`SERIES_POINTS`] per quantity).
    Series {
        device: String,
        from_ms: i64,
        to_ms: i64,
    },
}

/// Points per quantity a series request returns at most (evenly thinned beyond).
pub const SERIES_POINTS: usize = 2_000;

/// A device's recorded series: (time, quantity index, value).
pub type Series = Vec<(i64, u8, f64)>;

/// Its answer.
#[derive(Debug)]
pub enum ReadResult {
    State(Result<StateAt, StoreError>),
    Series {
        device: String,
        from_ms: i64,
        to_ms: i64,
        points: Result<Series, StoreError>,
    },
}

/// At most `n` points per quantity, evenly spaced through each quantity's values (the first
/// and last kept).
pub fn thin(points: Series, n: usize) -> Series {
    let mut per: std::collections::BTreeMap<u8, Vec<(i64, u8, f64)>> = Default::default();
    for p in points {
        per.entry(p.1).or_default().push(p);
    }
    let mut out = Vec::new();
    for (_, v) in per {
        if v.len() <= n || n < 2 {
            out.extend(v);
            continue;
        }
        let step = (v.len() - 1) as f64 / (n - 1) as f64;
        out.extend((0..n).map(|i| v[((i as f64 * step).round() as usize).min(v.len() - 1)]));
    }
    out.sort_by_key(|p| p.0);
    out
}

/// The reader thread and a connection for small lookups.
pub struct Reader {
    tx: Option<Sender<ReadRequest>>,
    rx: Receiver<ReadResult>,
    lookups: Mutex<SqliteStore>,
    range: Mutex<(Instant, Option<(i64, i64)>)>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub fn start(path: &Path, writer: Option<Arc<WriterStatus>>) -> Result<Reader, StoreError> {
        let mut store = SqliteStore::open_read_only(path)?;
        let lookups = SqliteStore::open_read_only(path)?;
        let (tx, requests) = unbounded::<ReadRequest>();
        let (results, rx) = unbounded::<ReadResult>();
        let thread = std::thread::Builder::new()
            .name("tvilling-history-reader".into())
            .spawn(move || {
                for req in &requests {
                    // Only the newest request of each kind matters when several are queued
                    // (scrubbing, a chart's span changing).
                    let mut state = None;
                    let mut series = None;
                    for r in std::iter::once(req).chain(requests.try_iter()) {
                        match r {
                            ReadRequest::State { .. } => state = Some(r),
                            ReadRequest::Series { .. } => series = Some(r),
                        }
                    }
                    if let Some(ReadRequest::Series {
                        device,
                        from_ms,
                        to_ms,
                    }) = series
                    {
                        let points = store
                            .series(&device, from_ms, to_ms)
                            .map(|p| thin(p, SERIES_POINTS));
                        let answer = ReadResult::Series {
                            device,
                            from_ms,
                            to_ms,
                            points,
                        };
                        if results.send(answer).is_err() {
                            break;
                        }
                    }
                    let Some(ReadRequest::State { t_ms, after }) = state else {
                        continue;
                    };
                    if let Some(w) = &writer {
                        while w.committed.load(Ordering::Acquire) < after && w.error().is_none() {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    if results
                        .send(ReadResult::State(store.state_at(t_ms)))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: format!("cannot start the reader thread: {e}"),
            })?;
        Ok(Reader {
            tx: Some(tx),
            rx,
            lookups: Mutex::new(lookups),
            range: Mutex::new((Instant::now() - Duration::from_secs(10), None)),
            thread: Some(thread),
        })
    }

    pub fn request(&self, req: ReadRequest) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(req);
        }
    }

    /// An answer, if one has come.
    pub fn poll(&self) -> Option<ReadResult> {
        self.rx.try_recv().ok()
    }

    /// Waits for an answer (headless runs).
    pub fn wait(&self, timeout: Duration) -> Option<ReadResult> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The first and last recorded times (looked up at most twice a second).
    pub fn range(&self) -> Option<(i64, i64)> {
        let mut r = self.range.lock().unwrap_or_else(PoisonError::into_inner);
        if r.0.elapsed() >= Duration::from_millis(500) {
            let mut store = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
            if let Ok(Some(found)) = store.range() {
                r.1 = Some(found);
            }
            r.0 = Instant::now();
        }
        r.1
    }

    /// The time of the recorded message just after (or before) `t_ms`.
    pub fn neighbour(&self, t_ms: i64, forward: bool) -> Option<i64> {
        let store = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        store.neighbour(t_ms, forward).ok().flatten()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_is_thinned_per_quantity_keeping_its_ends() {
        let points: Series = (0..10_000)
            .flat_map(|t| [(t, 1u8, t as f64), (t, 2u8, -(t as f64))])
            .chain([(5, 3u8, 7.0)])
            .collect();
        let thinned = thin(points, 100);
        for q in [1u8, 2] {
            let v: Vec<&(i64, u8, f64)> = thinned.iter().filter(|p| p.1 == q).collect();
            assert_eq!(v.len(), 100);
            assert_eq!(v[0].0, 0);
            assert_eq!(v[99].0, 9_999);
        }
        assert_eq!(
            thinned.iter().filter(|p| p.1 == 3).count(),
            1,
            "short ones stay whole"
        );
        assert!(
            thinned.windows(2).all(|w| w[0].0 <= w[1].0),
            "in time order"
        );
    }
}
