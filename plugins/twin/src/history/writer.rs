//! Recording on its own thread: the ECS hands each frame's applied values and alarm changes
//! over a channel and never waits on disk; the thread takes them into the current segment's
//! blocks ([`super::store::SEGMENT_MS`] of twin time a segment), keeps the running state, and
//! at the start of every hour of twin time ([`super::store::KEYFRAME_EVERY_MS`]) that holds
//! values closes the hour before and carries every series' state into the new one (its
//! keyframe). What was taken is written whenever the queue is empty, and at least once a second
//! while it is not. A write that fails stops the recording, says why and counts every value
//! not recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::store::{AlarmRow, HistoryStore, KEYFRAME_EVERY_MS, Row, Running, fold};

/// Values taken are written at least this often while batches keep coming (or, when writing
/// them takes longer, after four times as long as the last write took).
const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Values written per transaction at most.
const PART: usize = 100_000;

/// A value as the ECS hands it over: device and source by the ECS's own numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub t_ms: i64,
    pub device: u32,
    pub quantity: u8,
    pub value: f64,
    pub source: u16,
}

/// What goes to the writer.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Devices first seen in this batch: (ECS number, id, kind).
    pub new_devices: Vec<(u32, String, String)>,
    /// Sources first seen: (ECS number, name).
    pub new_sources: Vec<(u16, String)>,
    pub values: Vec<Value>,
    pub alarms: Vec<AlarmRow>,
    /// City metrics as they stood: (twin time, JSON).
    pub metrics: Vec<(i64, String)>,
    /// Traffic as it stood: (twin time, JSON).
    pub traffic: Vec<(i64, String)>,
    /// Alarm transitions for the audit log.
    pub audit: Vec<tvilling_metrics::lifecycle::Transition>,
    /// Everything taken so far is written before this batch counts as committed.
    pub sync: bool,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.new_devices.is_empty()
            && self.new_sources.is_empty()
            && self.values.is_empty()
            && self.alarms.is_empty()
            && self.metrics.is_empty()
            && self.traffic.is_empty()
            && self.audit.is_empty()
            && !self.sync
    }
}

/// How recording goes, shared with the ECS.
#[derive(Debug, Default)]
pub struct WriterStatus {
    /// Values written.
    pub recorded: AtomicU64,
    /// Alarm changes written.
    pub alarms: AtomicU64,
    /// Batches committed (a reader that must see a batch waits for this count).
    pub committed: AtomicU64,
    /// Values that could not be recorded (after a write error).
    pub lost: AtomicU64,
    pub keyframes: AtomicU64,
    /// Why recording stopped.
    pub error: Mutex<Option<String>>,
}

impl WriterStatus {
    pub fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The writer thread's handle: batches in, status out. Dropping it writes what is queued and
/// joins the thread.
pub struct Writer {
    tx: Option<Sender<Batch>>,
    pub status: Arc<WriterStatus>,
    /// Batches sent.
    pub sent: u64,
    /// A batch the channel had no room for, retried next frame (merged with the next one).
    pending: Option<Batch>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer over `store`; recording continues from the store's last state.
    pub fn start(mut store: Box<dyn HistoryStore>) -> std::io::Result<Writer> {
        let status = Arc::new(WriterStatus::default());
        let (tx, rx) = bounded::<Batch>(256);
        let st = status.clone();
        let thread = std::thread::Builder::new()
            .name("tvilling-history".into())
            .spawn(move || run(&mut *store, &rx, &st))?;
        Ok(Writer {
            tx: Some(tx),
            status,
            sent: 0,
            pending: None,
            thread: Some(thread),
        })
    }

    /// Hands a batch over without waiting: when the channel is full the batch waits here and
    /// goes with the next one.
    pub fn send(&mut self, batch: Batch) {
        let mut batch = match self.pending.take() {
            Some(mut p) => {
                p.new_devices.extend(batch.new_devices);
                p.new_sources.extend(batch.new_sources);
                p.values.extend(batch.values);
                p.alarms.extend(batch.alarms);
                p.metrics.extend(batch.metrics);
                p.traffic.extend(batch.traffic);
                p.audit.extend(batch.audit);
                p.sync |= batch.sync;
                p
            }
            None => batch,
        };
        if batch.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(std::mem::take(&mut batch)) {
            Ok(()) => self.sent += 1,
            Err(TrySendError::Full(b)) => self.pending = Some(b),
            Err(TrySendError::Disconnected(b)) => {
                self.status
                    .lost
                    .fetch_add(b.values.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every batch sent so far is written (tests, exit).
    pub fn flush(&mut self) {
        let mut last = self.pending.take().unwrap_or_default();
        last.sync = true;
        if let Some(tx) = &self.tx
            && tx.send(last).is_ok()
        {
            self.sent += 1;
        }
        while self.status.committed.load(Ordering::Acquire) < self.sent
            && self.status.error().is_none()
            && self.thread.as_ref().is_some_and(|t| !t.is_finished())
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(store: &mut dyn HistoryStore, rx: &Receiver<Batch>, status: &WriterStatus) {
    let fail = |e: String| {
        *status.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
    };
    let (newest, mut running): (i64, Running) = match store.resume() {
        Ok((t, r)) => (t, r),
        Err(e) => {
            fail(e.to_string());
            (i64::MIN, Running::default())
        }
    };
    // The keyframe slot (hour) being written.
    let mut slot = if newest == i64::MIN {
        i64::MIN
    } else {
        newest.div_euclid(KEYFRAME_EVERY_MS)
    };
    let mut persisted = std::time::Instant::now();
    let mut persist_cost = std::time::Duration::ZERO;
    let mut devices: Vec<u32> = Vec::new();
    let mut sources: Vec<u16> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    for batch in rx {
        if status.error().is_some() {
            status
                .lost
                .fetch_add(batch.values.len() as u64, Ordering::Relaxed);
            status.committed.fetch_add(1, Ordering::Release);
            continue;
        }
        let mut written = 0usize;
        let result = (|| {
            for (i, id, kind) in &batch.new_devices {
                let s = store.device_index(id, kind)?;
                let i = *i as usize;
                if devices.len() <= i {
                    devices.resize(i + 1, u32::MAX);
                }
                devices[i] = s;
            }
            for (i, name) in &batch.new_sources {
                let s = store.source_index(name)?;
                let i = *i as usize;
                if sources.len() <= i {
                    sources.resize(i + 1, 0);
                }
                sources[i] = s;
            }
            let mut alarms = batch.alarms.as_slice();
            for part in batch.values.chunks(PART) {
                rows.clear();
                for v in part {
                    let Some(&device) = devices.get(v.device as usize).filter(|d| **d != u32::MAX)
                    else {
                        continue;
                    };
                    let r = Row {
                        t_ms: v.t_ms,
                        device,
                        quantity: v.quantity,
                        value: v.value,
                        source: sources.get(v.source as usize).copied().unwrap_or(0),
                    };
                    let s = r.t_ms.div_euclid(KEYFRAME_EVERY_MS);
                    if slot == i64::MIN {
                        slot = s;
                    } else if s > slot {
                        // A new slot: what came before is written, with the state as
                        // they ended as their keyframe (a new segment starts on one too).
                        store.write(&rows, alarms)?;
                        alarms = &[];
                        written += rows.len();
                        rows.clear();
                        store.keyframe(s * KEYFRAME_EVERY_MS - 1, &running)?;
                        status.keyframes.fetch_add(1, Ordering::Relaxed);
                        slot = s;
                    }
                    fold(&mut running, &r);
                    rows.push(r);
                }
                store.write(&rows, alarms)?;
                alarms = &[];
                written += rows.len();
            }
            if !alarms.is_empty() {
                store.write(&[], alarms)?;
            }
            for (t, json) in &batch.metrics {
                store.write_metrics(*t, json)?;
            }
            for (t, json) in &batch.traffic {
                store.write_traffic(*t, json)?;
            }
            if !batch.audit.is_empty() {
                store.write_audit(&batch.audit)?;
            }
            // Writing the chunks being filled costs a row per series that grew, however
            // many values it took: when batches keep coming it is done at most a fifth of
            // the time.
            let since = persisted.elapsed();
            if batch.sync
                || since >= PERSIST_EVERY.max(persist_cost * 4)
                || (rx.is_empty() && since >= persist_cost * 4)
            {
                let t = std::time::Instant::now();
                store.persist()?;
                persist_cost = t.elapsed();
                persisted = std::time::Instant::now();
            }
            Ok::<(), super::store::StoreError>(())
        })();
        match result {
            Ok(()) => {
                status.recorded.fetch_add(written as u64, Ordering::Relaxed);
                status
                    .alarms
                    .fetch_add(batch.alarms.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                status
                    .lost
                    .fetch_add(batch.values.len() as u64, Ordering::Relaxed);
                fail(format!("recording stopped: {e}"));
            }
        }
        status.committed.fetch_add(1, Ordering::Release);
    }
}
