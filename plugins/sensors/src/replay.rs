//! Recording and replay. A recording is JSON lines, one accepted message each:
//! `{"t": receive time (Unix ms), "source": "mqtt", "topic": "...", "format": "senml", "payload": "..."}`.
//! Replay reads a recording on its own thread and feeds the same decode path at 1x or faster.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::codec::{DecodeContext, PayloadFormat, PlainMapping, decode};
use crate::ingest::{IngestSender, SourceThread};
use crate::observation::DecodeError;

/// Appends accepted messages to a JSON-lines file (cheap to clone, thread-safe).
#[derive(Clone)]
pub struct Recorder {
    /// The file, when it was last flushed, and whether lines wait in its buffer.
    out: Arc<Mutex<(BufWriter<File>, std::time::Instant, bool)>>,
}

/// A recording is flushed this long after a line waits (on the next line, or by the app's
/// [`Recorder::flush_if_due`] each frame): a crash loses at most about this much of it.
pub const RECORDING_FLUSH: std::time::Duration = std::time::Duration::from_millis(250);

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder {
            out: Arc::new(Mutex::new((
                BufWriter::new(File::create(path)?),
                std::time::Instant::now(),
                false,
            ))),
        })
    }

    /// Records one message (the payload must be UTF-8 text: every format the twin reads is JSON).
    pub fn record(
        &self,
        t_ms: i64,
        source: &str,
        topic: &str,
        format: &PayloadFormat,
        payload: &[u8],
    ) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let line = json!({"t": t_ms, "source": source, "topic": topic, "format": format.name(), "payload": text});
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out.0, "{line}");
        out.2 = true;
        if out.1.elapsed() >= RECORDING_FLUSH {
            let _ = out.0.flush();
            (out.1, out.2) = (std::time::Instant::now(), false);
        }
    }

    /// Flushes lines that have waited [`RECORDING_FLUSH`] or more since the last flush.
    pub fn flush_if_due(&self) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if out.2 && out.1.elapsed() >= RECORDING_FLUSH {
            let _ = out.0.flush();
            (out.1, out.2) = (std::time::Instant::now(), false);
        }
    }

    pub fn flush(&self) {
        let _ = self
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .flush();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if Arc::strong_count(&self.out) == 1 {
            self.flush();
        }
    }
}

/// A running replay; `finished` turns true at the end of the file.
pub struct ReplaySource {
    pub finished: Arc<AtomicBool>,
    _thread: SourceThread,
}

/// Starts replaying `path` at `speed` (1.0 = as recorded; 0 or less = as fast as possible).
/// Decode times are the recorded receive times, so a replay judges freshness as the live run did.
pub fn start_replay(
    path: &Path,
    speed: f64,
    plain: Option<PlainMapping>,
    sender: IngestSender,
) -> std::io::Result<ReplaySource> {
    let file = BufReader::new(File::open(path)?);
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let thread = SourceThread::spawn("tvilling-replay", move |halt| {
        let started = Instant::now();
        let mut first_t: Option<i64> = None;
        for (n, line) in file.lines().enumerate() {
            if halt.load(Ordering::Relaxed) {
                break;
            }
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let where_ = format!("recording line {}", n + 1);
            let rec: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    sender
                        .stats
                        .reject(&DecodeError::Json(e.to_string()), &where_);
                    continue;
                }
            };
            let (Some(t), Some(topic), Some(fmt), Some(payload)) = (
                rec.get("t").and_then(Value::as_i64),
                rec.get("topic").and_then(Value::as_str),
                rec.get("format").and_then(Value::as_str),
                rec.get("payload").and_then(Value::as_str),
            ) else {
                sender.stats.reject(
                    &DecodeError::MissingField("t, topic, format or payload".into()),
                    &where_,
                );
                continue;
            };
            let Some(format) = PayloadFormat::from_name(fmt, plain.as_ref()) else {
                sender.stats.reject(
                    &DecodeError::WrongType {
                        field: "format".into(),
                        expected: "a known payload format",
                    },
                    &where_,
                );
                continue;
            };
            let t0 = *first_t.get_or_insert(t);
            if speed > 0.0 {
                let due = Duration::from_secs_f64(((t - t0).max(0) as f64 / 1000.0) / speed);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            // A recorded message was accepted when it arrived (under its source's own payload
            // limit, up to 256 KiB for MQTT, more for HTTP pages): replay it whatever its size.
            let ctx = DecodeContext {
                topic,
                now_ms: t,
                max_bytes: 64 << 20,
                ..Default::default()
            };
            match decode(&format, payload.as_bytes(), &ctx) {
                Ok(obs) => {
                    if !sender.send_decoded(obs, topic) {
                        return;
                    }
                }
                Err(e) => sender.stats.refuse(&e, topic),
            }
        }
        done.store(true, Ordering::Relaxed);
    })?;
    Ok(ReplaySource {
        finished,
        _thread: thread,
    })
}

impl ReplaySource {
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestReceiver, IngestSender, ingest_channel};
    use crate::registry::{DeviceKind, DeviceRegistry, FieldRule, Quantity};

    /// A channel for the source `replay` that knows the air sensor `aq-1` and the meter `d`
    /// (whose field `x` is its power).
    fn channel() -> (IngestSender, IngestReceiver) {
        let mut registry = DeviceRegistry::default();
        let e = bevy::prelude::Entity::PLACEHOLDER;
        registry.register("aq-1", DeviceKind::AirSensor, e, vec![]);
        registry.register(
            "d",
            DeviceKind::Meter,
            e,
            vec![FieldRule::new("x", Quantity::PowerKw)],
        );
        ingest_channel(64, "replay", registry.directory())
    }

    #[test]
    fn a_recording_replays_in_order_and_bad_lines_are_counted() {
        let dir = std::env::temp_dir().join(format!("tvilling-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("rec.jsonl");
        let rec = Recorder::create(&path).expect("create");
        for (i, v) in [10.0, 20.0, 30.0].iter().enumerate() {
            let payload = format!(r#"[{{"bn":"aq-1:","n":"no2","v":{v}}}]"#);
            rec.record(
                1_000_000 + i as i64 * 1000,
                "mqtt",
                "city/air",
                &PayloadFormat::SenMl,
                payload.as_bytes(),
            );
        }
        drop(rec);
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(
            "{broken\n{\"t\":1,\"topic\":\"x\",\"format\":\"morse\",\"payload\":\"[]\"}\n",
        );
        std::fs::write(&path, text).expect("write");

        let (tx, rx) = channel();
        let replay = start_replay(&path, 0.0, None, tx.clone()).expect("replay");
        let start = Instant::now();
        while !replay.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = rx.drain();
        let values: Vec<f64> = got
            .iter()
            .flat_map(|h| h.values())
            .filter(|(q, _)| *q == Quantity::No2)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values, vec![10.0, 20.0, 30.0]);
        assert_eq!(got[0].source(), 0, "the channel's first source, `replay`");
        assert_eq!(
            got[2].time_ms(),
            Some(1_002_000),
            "SenML without bt takes the recorded receive time"
        );
        let r = tx.stats.rejected();
        assert_eq!(
            (r.get("malformed_json"), r.get("wrong_type")),
            (Some(&1), Some(&1)),
            "{r:?}"
        );
    }

    #[test]
    fn replay_at_1x_keeps_the_recorded_pace() {
        let dir = std::env::temp_dir().join(format!("tvilling-replay-pace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("rec.jsonl");
        let rec = Recorder::create(&path).expect("create");
        rec.record(
            0,
            "mqtt",
            "a",
            &PayloadFormat::SenMl,
            br#"[{"bn":"d:","n":"x","v":1}]"#,
        );
        rec.record(
            300,
            "mqtt",
            "a",
            &PayloadFormat::SenMl,
            br#"[{"bn":"d:","n":"x","v":2}]"#,
        );
        drop(rec);
        let (tx, rx) = channel();
        let start = Instant::now();
        let replay = start_replay(&path, 1.0, None, tx).expect("replay");
        // The first message is delivered at once, the second only after its 300 ms.
        let mut first = Vec::new();
        while first.is_empty() {
            first = rx.drain();
            assert!(start.elapsed() < Duration::from_secs(10), "first message");
            std::thread::sleep(Duration::from_millis(1));
        }
        let first_at = start.elapsed();
        while !replay.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let rest = rx.drain();
        let values = |got: &[crate::update::Handed]| -> Vec<f64> {
            got.iter()
                .flat_map(|h| h.values().into_iter().map(|(_, v)| v))
                .collect()
        };
        assert_eq!(
            values(&first),
            vec![1.0],
            "only the first before its peer's time"
        );
        assert_eq!(values(&rest), vec![2.0], "the second arrived too");
        assert_eq!(
            (first[0].time_ms(), rest[0].time_ms()),
            (Some(0), Some(300)),
            "each at its recorded time"
        );
        assert!(
            first_at < Duration::from_millis(250),
            "the first was not held back: {first_at:?}"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "second message waited its 300 ms"
        );
    }
}
