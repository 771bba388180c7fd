//! From source threads to the ECS: a bounded crossbeam channel of decoded observations. A
//! sender never blocks: when the channel is full, the observation goes to a per-device overflow
//! slot where newer state supersedes older (counted), and the ECS drains the channel, then the
//! overflow. Counters per source are shared atomics the UI and the snapshot read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::observation::{DecodeError, Observation};

/// Counters of one source. Every message a source receives ends in exactly one of: refused
/// whole (`refused_messages`, by reason in `rejected`), or accepted and then applied, superseded
/// by a newer one of the same device, out of order, a duplicate, from an unknown device, or not
/// applied (no known field, or every field refused).
#[derive(Debug, Default)]
pub struct SourceStats {
    pub accepted: AtomicU64,
    pub superseded: AtomicU64,
    /// Messages refused whole (unreadable, oversized, no device id, ...).
    pub refused_messages: AtomicU64,
    /// Of those, messages the source marked as redelivered (MQTT's DUP flag): a repeat of a
    /// message refused before, as far as the protocol tells.
    pub refused_redeliveries: AtomicU64,
    pub applied: AtomicU64,
    pub out_of_order: AtomicU64,
    /// Delivered again (e.g. an MQTT redelivery): same device, time and values as applied.
    pub duplicate: AtomicU64,
    pub unknown_device: AtomicU64,
    /// Accepted but nothing applied: no field the device's rules map, or every one refused.
    pub not_applied: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    last_rejections: Mutex<Vec<String>>,
}

/// How many recent rejection reasons are kept per source for the diagnostics view.
pub const KEPT_REJECTIONS: usize = 50;

impl SourceStats {
    /// Counts a refused payload under its reason and keeps its text.
    pub fn reject(&self, error: &DecodeError, context: &str) {
        *self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(error.reason_key())
            .or_default() += 1;
        let mut last = self
            .last_rejections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.len() == KEPT_REJECTIONS {
            last.remove(0);
        }
        last.push(format!("{context}: {error}"));
    }

    /// Counts a message refused whole (nothing of it was usable).
    pub fn refuse(&self, error: &DecodeError, context: &str) {
        self.refused_messages.fetch_add(1, Ordering::Relaxed);
        self.reject(error, context);
    }

    /// Rejections per reason.
    pub fn rejected(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The most recent rejections, oldest first.
    pub fn last_rejections(&self) -> Vec<String> {
        self.last_rejections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type Overflow = Arc<Mutex<HashMap<String, Observation>>>;

/// Every source's counters, by source name.
pub type SourceTable = Arc<Mutex<Vec<(String, Arc<SourceStats>)>>>;

/// The sending half, one per source (cheap to clone).
#[derive(Clone)]
pub struct IngestSender {
    tx: Sender<Observation>,
    overflow: Overflow,
    sources: SourceTable,
    name: String,
    pub stats: Arc<SourceStats>,
}

/// The receiving half, drained by the ECS each frame.
pub struct IngestReceiver {
    rx: Receiver<Observation>,
    overflow: Overflow,
    /// Counters of every source that has a sender on this channel.
    pub sources: SourceTable,
}

/// A channel holding at most `capacity` observations before coalescing starts; the first
/// sender is for the source `name`.
pub fn ingest_channel(capacity: usize, name: &str) -> (IngestSender, IngestReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let overflow: Overflow = Arc::default();
    let sources: SourceTable = Arc::default();
    let receiver = IngestReceiver {
        rx,
        overflow: overflow.clone(),
        sources: sources.clone(),
    };
    let first = IngestSender {
        tx,
        overflow,
        sources,
        name: String::new(),
        stats: Arc::default(),
    };
    (first.for_source(name), receiver)
}

impl IngestSender {
    /// A sender for another source on the same channel, with its own counters.
    pub fn for_source(&self, name: &str) -> IngestSender {
        let stats: Arc<SourceStats> = Arc::default();
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_string(), stats.clone()));
        IngestSender {
            tx: self.tx.clone(),
            overflow: self.overflow.clone(),
            sources: self.sources.clone(),
            name: name.to_string(),
            stats,
        }
    }

    /// The source this sender is for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands over every observation of one decoded message, counting the per-field problems
    /// each carries (its good fields go on); false when the receiver is gone.
    pub fn send_decoded(&self, observations: Vec<Observation>, context: &str) -> bool {
        for o in observations {
            for problem in &o.problems {
                self.stats.reject(problem, context);
            }
            if !self.send(o) {
                return false;
            }
        }
        true
    }

    /// Tags and counts an observation as this source's without sending it: for a source
    /// stepped by the ECS, which hands its observations to apply in the same frame
    /// ([`crate::apply::SteppedInput`]).
    pub fn accept(&self, mut o: Observation) -> Observation {
        o.source.clone_from(&self.name);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        o
    }

    /// Hands one observation over, tagged with this source's name; never blocks. Returns false
    /// when the receiver is gone.
    pub fn send(&self, mut o: Observation) -> bool {
        o.source.clone_from(&self.name);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(o) {
            Ok(()) => true,
            Err(TrySendError::Full(o)) => {
                let mut slot = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
                match slot.get(&o.device) {
                    // Keep the newer of the two (by observation time; equal times: the later).
                    Some(old) if old.time_ms > o.time_ms => {
                        self.stats.superseded.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {
                        self.stats.superseded.fetch_add(1, Ordering::Relaxed);
                        slot.insert(o.device.clone(), o);
                    }
                    None => {
                        slot.insert(o.device.clone(), o);
                    }
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

impl IngestReceiver {
    /// The counters of a source, by name.
    pub fn stats(&self, name: &str) -> Option<Arc<SourceStats>> {
        let table = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// Everything waiting: the channel's observations in order, then the coalesced overflow.
    /// Apply them in this order; an observation older than the state already applied for its
    /// device should be skipped by the applier.
    pub fn drain(&self) -> Vec<Observation> {
        let mut out: Vec<Observation> = self.rx.try_iter().collect();
        let overflow =
            std::mem::take(&mut *self.overflow.lock().unwrap_or_else(PoisonError::into_inner));
        out.extend(overflow.into_values());
        out
    }
}

/// A source's own thread: told to stop and joined when dropped. The body polls the flag it is
/// given between units of work.
pub struct SourceThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SourceThread {
    pub fn spawn(
        name: &str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> std::io::Result<SourceThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(flag))?;
        Ok(SourceThread {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop without waiting for it.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for SourceThread {
    fn drop(&mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::FieldValue;

    fn obs(device: usize, t: i64) -> Observation {
        Observation {
            device: format!("d{device}"),
            time_ms: Some(t),
            fields: vec![("v".into(), FieldValue::Number(t as f64))],
            ..Default::default()
        }
    }

    #[test]
    fn a_full_channel_coalesces_per_device_and_keeps_the_newest() {
        let (tx, rx) = ingest_channel(4, "a");
        for t in 0..10 {
            for d in 0..3 {
                assert!(tx.send(obs(d, t)));
            }
        }
        let got = rx.drain();
        // 4 went through the channel; the other 26 coalesced into one slot per device.
        assert_eq!(got.len(), 4 + 3);
        assert_eq!(tx.stats.accepted.load(Ordering::Relaxed), 30);
        assert_eq!(tx.stats.superseded.load(Ordering::Relaxed), 26 - 3);
        for d in 0..3 {
            let last = got
                .iter()
                .filter(|o| o.device == format!("d{d}"))
                .map(|o| o.time_ms)
                .max();
            assert_eq!(last, Some(Some(9)), "the newest state of d{d} survives");
        }
        // An older observation never replaces a newer one in the overflow.
        let (tx, rx) = ingest_channel(1, "a");
        tx.send(obs(0, 0));
        tx.send(obs(1, 5));
        tx.send(obs(1, 3));
        let got = rx.drain();
        assert_eq!(
            got.iter()
                .find(|o| o.device == "d1")
                .and_then(|o| o.time_ms),
            Some(5)
        );
    }

    #[test]
    fn a_slow_consumer_loses_no_device_and_ends_on_each_ones_last_value() {
        let (tx, rx) = ingest_channel(64, "a");
        let devices = 500;
        let producer = std::thread::spawn(move || {
            for t in 0..200 {
                for d in 0..devices {
                    tx.send(obs(d, t));
                }
            }
            tx
        });
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut received = 0usize;
        loop {
            let done = producer.is_finished();
            for o in rx.drain() {
                received += 1;
                let t = o.time_ms.unwrap_or(-1);
                let e = last.entry(o.device).or_insert(t);
                *e = (*e).max(t);
            }
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for o in rx.drain() {
            received += 1;
            let e = last.entry(o.device).or_insert(-1);
            *e = (*e).max(o.time_ms.unwrap_or(-1));
        }
        let tx = producer.join().expect("producer");
        assert_eq!(last.len(), devices);
        assert!(
            last.values().all(|&t| t == 199),
            "every device ends on its last value"
        );
        let accepted = tx.stats.accepted.load(Ordering::Relaxed) as usize;
        let superseded = tx.stats.superseded.load(Ordering::Relaxed) as usize;
        assert_eq!(accepted, 200 * devices);
        assert_eq!(
            received + superseded,
            accepted,
            "each observation was either delivered or superseded"
        );
    }

    #[test]
    fn rejections_are_counted_per_reason_and_the_last_ones_kept() {
        let (tx, _rx) = ingest_channel(1, "a");
        for i in 0..60 {
            tx.stats
                .reject(&DecodeError::Json(format!("bad {i}")), "topic/a");
        }
        tx.stats
            .reject(&DecodeError::MissingField("id".into()), "topic/b");
        let counts = tx.stats.rejected();
        assert_eq!(counts.get("malformed_json"), Some(&60));
        assert_eq!(counts.get("missing_field"), Some(&1));
        let last = tx.stats.last_rejections();
        assert_eq!(last.len(), KEPT_REJECTIONS);
        assert_eq!(
            last.last().map(String::as_str),
            Some("topic/b: missing field id")
        );
    }
}
