//! From source threads to the ECS: a bounded mailbox of observations resolved on the sender's
//! thread ([`crate::update::hand`]: device slot, values under the device's rules). A sender
//! never waits for the ECS: when the mailbox is full, the update goes to a per-device overflow
//! slot where newer state supersedes older (counted), and the ECS takes the mailbox, then the
//! overflow. Counters per source are shared atomics the UI and the snapshot read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::observation::{DecodeError, Observation};
use crate::registry::DeviceDirectory;
use crate::update::{Handed, SourceIndex, hand};

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
    /// Of those applied, keep-alives: a device alive with nothing new (the simulator's).
    pub keep_alive: AtomicU64,
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

/// Where a full mailbox's updates wait: one per device (unknown devices by their id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OverflowKey {
    Slot(u32),
    Unknown(String),
}

/// Wakes the app when a source hands something over while it sleeps (render on change).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What waits for the ECS: updates in arrival order up to the capacity, then one per device.
#[derive(Default)]
struct Mailbox {
    items: Vec<Handed>,
    overflow: HashMap<OverflowKey, Handed>,
    /// The receiver is gone: senders stop.
    closed: bool,
    /// Called when the mailbox goes from empty to holding something.
    waker: Option<Waker>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("items", &self.items.len())
            .field("overflow", &self.overflow.len())
            .field("closed", &self.closed)
            .field("waker", &self.waker.is_some())
            .finish()
    }
}

type SharedMailbox = Arc<Mutex<Mailbox>>;

fn lock(m: &SharedMailbox) -> std::sync::MutexGuard<'_, Mailbox> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every source's name and counters, in the order of their [`SourceIndex`].
pub type SourceTable = Arc<Mutex<Vec<(String, Arc<SourceStats>)>>>;

/// The sending half, one per source (cheap to clone).
#[derive(Clone)]
pub struct IngestSender {
    mailbox: SharedMailbox,
    capacity: usize,
    sources: SourceTable,
    directory: DeviceDirectory,
    name: String,
    index: SourceIndex,
    pub stats: Arc<SourceStats>,
}

/// The receiving half, drained by the ECS each frame.
pub struct IngestReceiver {
    mailbox: SharedMailbox,
    /// Counters of every source that has a sender on this channel.
    pub sources: SourceTable,
}

impl Drop for IngestReceiver {
    fn drop(&mut self) {
        let mut m = lock(&self.mailbox);
        m.closed = true;
        m.items = Vec::new();
        m.overflow = HashMap::new();
    }
}

/// A channel holding at most `capacity` updates before coalescing starts, whose senders resolve
/// what they send against `directory` (the registry's: [`crate::registry::DeviceRegistry::directory`]);
/// the first sender is for the source `name`. It is a mailbox: senders append under a short
/// lock, the ECS takes everything at once by swapping buffers, so a frame neither receives
/// item by item nor allocates.
pub fn ingest_channel(
    capacity: usize,
    name: &str,
    directory: DeviceDirectory,
) -> (IngestSender, IngestReceiver) {
    let mailbox: SharedMailbox = Arc::default();
    let sources: SourceTable = Arc::default();
    let receiver = IngestReceiver {
        mailbox: mailbox.clone(),
        sources: sources.clone(),
    };
    let first = IngestSender {
        mailbox,
        capacity: capacity.max(1),
        sources,
        directory,
        name: String::new(),
        index: 0,
        stats: Arc::default(),
    };
    (first.for_source(name), receiver)
}

impl IngestSender {
    /// A sender for another source on the same channel, with its own counters.
    pub fn for_source(&self, name: &str) -> IngestSender {
        let stats: Arc<SourceStats> = Arc::default();
        let mut table = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let index = SourceIndex::try_from(table.len()).unwrap_or(SourceIndex::MAX);
        table.push((name.to_string(), stats.clone()));
        IngestSender {
            mailbox: self.mailbox.clone(),
            capacity: self.capacity,
            sources: self.sources.clone(),
            directory: self.directory.clone(),
            name: name.to_string(),
            index,
            stats,
        }
    }

    /// The source's index in its channel's table (what updates it resolves itself carry).
    pub fn index(&self) -> SourceIndex {
        self.index
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

    /// Resolves one observation on this (the source's) thread and hands it over; never waits
    /// for the ECS. Returns false when the receiver is gone.
    pub fn send(&self, o: Observation) -> bool {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let handed = hand(o, &self.directory.read(), self.index, |e, device| {
            self.stats.reject(e, device)
        });
        let mut m = lock(&self.mailbox);
        if m.closed {
            return false;
        }
        // The first item since the ECS last drained: wake it if it sleeps.
        if m.items.is_empty()
            && m.overflow.is_empty()
            && let Some(wake) = &m.waker
        {
            wake();
        }
        if m.items.len() < self.capacity {
            m.items.push(handed);
            return true;
        }
        let key = match &handed {
            Handed::Update(u) => OverflowKey::Slot(u.slot),
            Handed::Unknown(u) => OverflowKey::Unknown(u.observation.device.clone()),
        };
        match m.overflow.get(&key) {
            // Keep the newer of the two (by observation time; equal times: the later).
            Some(old) if old.time_ms() > handed.time_ms() => {
                self.stats.superseded.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {
                self.stats.superseded.fetch_add(1, Ordering::Relaxed);
                m.overflow.insert(key, handed);
            }
            None => {
                m.overflow.insert(key, handed);
            }
        }
        true
    }
}

impl IngestReceiver {
    /// Wakes the app (`wake`) whenever a source hands something over to an empty mailbox.
    pub fn set_waker(&self, wake: Waker) {
        lock(&self.mailbox).waker = Some(wake);
    }

    /// The counters of a source, by name.
    pub fn stats(&self, name: &str) -> Option<Arc<SourceStats>> {
        let table = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        table
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        let m = lock(&self.mailbox);
        m.items.is_empty() && m.overflow.is_empty()
    }

    /// Everything waiting, appended to `out`: the updates in arrival order, then the coalesced
    /// overflow. An empty `out` is swapped with the mailbox's buffer (give it back empty, with
    /// its capacity, and the next frame swaps again without allocating). Apply them in this
    /// order; one older than the state already applied for its device should be skipped by
    /// the applier.
    pub fn drain_into(&self, out: &mut Vec<Handed>) {
        let mut m = lock(&self.mailbox);
        if out.is_empty() {
            std::mem::swap(out, &mut m.items);
        } else {
            out.append(&mut m.items);
        }
        if !m.overflow.is_empty() {
            out.extend(m.overflow.drain().map(|(_, h)| h));
        }
    }

    /// Everything waiting, as [`IngestReceiver::drain_into`].
    pub fn drain(&self) -> Vec<Handed> {
        let mut out = Vec::new();
        self.drain_into(&mut out);
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
    use crate::registry::{DeviceKind, DeviceRegistry};
    use bevy::prelude::Entity;

    fn obs(device: usize, t: i64) -> Observation {
        Observation {
            device: format!("d{device}"),
            time_ms: Some(t),
            fields: vec![("power".into(), FieldValue::Number(t as f64))],
            ..Default::default()
        }
    }

    /// A channel whose senders know the meters `d0` .. `d{devices - 1}` (in slots 0 ..).
    fn channel(capacity: usize, devices: usize) -> (IngestSender, IngestReceiver) {
        let mut registry = DeviceRegistry::default();
        for i in 0..devices {
            registry.register(
                format!("d{i}"),
                DeviceKind::Meter,
                Entity::PLACEHOLDER,
                vec![],
            );
        }
        ingest_channel(capacity, "a", registry.directory())
    }

    fn slot(h: &Handed) -> Option<u32> {
        match h {
            Handed::Update(u) => Some(u.slot),
            Handed::Unknown(_) => None,
        }
    }

    #[test]
    fn a_full_channel_coalesces_per_device_and_keeps_the_newest() {
        let (tx, rx) = channel(4, 3);
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
                .filter(|h| slot(h) == Some(d as u32))
                .map(Handed::time_ms)
                .max();
            assert_eq!(last, Some(Some(9)), "the newest state of d{d} survives");
        }
        // An older observation never replaces a newer one in the overflow.
        let (tx, rx) = channel(1, 3);
        tx.send(obs(0, 0));
        tx.send(obs(1, 5));
        tx.send(obs(1, 3));
        let got = rx.drain();
        assert_eq!(
            got.iter()
                .find(|h| slot(h) == Some(1))
                .and_then(Handed::time_ms),
            Some(5)
        );
    }

    #[test]
    fn a_slow_consumer_loses_no_device_and_ends_on_each_ones_last_value() {
        let devices = 500;
        let (tx, rx) = channel(64, devices);
        let producer = std::thread::spawn(move || {
            for t in 0..200 {
                for d in 0..devices {
                    tx.send(obs(d, t));
                }
            }
            tx
        });
        let mut last: HashMap<Option<u32>, i64> = HashMap::new();
        let mut received = 0usize;
        loop {
            let done = producer.is_finished();
            for h in rx.drain() {
                received += 1;
                let t = h.time_ms().unwrap_or(-1);
                let e = last.entry(slot(&h)).or_insert(t);
                *e = (*e).max(t);
            }
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for h in rx.drain() {
            received += 1;
            let e = last.entry(slot(&h)).or_insert(-1);
            *e = (*e).max(h.time_ms().unwrap_or(-1));
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
        let (tx, _rx) = channel(1, 0);
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
