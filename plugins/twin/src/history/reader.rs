//! Reading the history on its own thread: the state at a moment is rebuilt there (keyframe
//! plus the values after it) and handed back, so scrubbing never stalls a frame on disk. Small
//! lookups (the recorded range, the neighbouring message) use a second read-only connection.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::store::{HistoryStore, SqliteStore, StateAt, StoreError};
use super::writer::WriterStatus;

/// A request to the reader thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadRequest {
    /// The state at `t_ms`, once the writer has committed `after` batches.
    State { t_ms: i64, after: u64 },
}

/// Its answer.
#[derive(Debug)]
pub enum ReadResult {
    State(Result<StateAt, StoreError>),
}

/// The reader thread and a connection for small lookups.
pub struct Reader {
    tx: Option<Sender<ReadRequest>>,
    rx: Receiver<ReadResult>,
    lookups: Mutex<Connection>,
    range: Mutex<(Instant, Option<(i64, i64)>)>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub fn start(path: &Path, writer: Option<Arc<WriterStatus>>) -> Result<Reader, StoreError> {
        let mut store = SqliteStore::open_read_only(path)?;
        let lookups = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (tx, requests) = unbounded::<ReadRequest>();
        let (results, rx) = unbounded::<ReadResult>();
        let thread = std::thread::Builder::new()
            .name("tvilling-history-reader".into())
            .spawn(move || {
                for req in &requests {
                    // Only the newest request matters when several are queued (scrubbing).
                    let req = requests.try_iter().last().unwrap_or(req);
                    let ReadRequest::State { t_ms, after } = req;
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
            let conn = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
            let found: Option<(Option<i64>, Option<i64>)> = conn
                .query_row("SELECT min(t), max(t) FROM obs", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .unwrap_or(None);
            r.1 = match found {
                Some((Some(a), Some(b))) => Some((a, b)),
                _ => r.1,
            };
            r.0 = Instant::now();
        }
        r.1
    }

    /// The time of the recorded message just after (or before) `t_ms`.
    pub fn neighbour(&self, t_ms: i64, forward: bool) -> Option<i64> {
        let conn = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        let sql = if forward {
            "SELECT min(t) FROM obs WHERE t > ?1"
        } else {
            "SELECT max(t) FROM obs WHERE t < ?1"
        };
        conn.query_row(sql, [t_ms], |r| r.get::<_, Option<i64>>(0))
            .ok()
            .flatten()
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
