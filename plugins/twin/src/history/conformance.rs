//! One set of checks every history backend passes ([`check`]): the SQLite file's unit tests
//! and the PostgreSQL store's integration tests run it, so the two stay one history.
//!
//! It records 40 devices over three and a half hours as the writer does (values folded into
//! the running state, a keyframe at each hour, persisted every half hour), alarms, metrics
//! (the signal heads' figures every quarter hour only) and traffic, and then asks: the state
//! at moments within and across hours equals folding the values; a device's series is its
//! values; the recorded value next to a moment; the range; the alarms active; the metrics with the heads' figures spliced in;
//! resuming gives the state at the end; retention keeps the state at the cut.

use super::store::{AlarmRow, Held, HistoryStore, Row, Running, fold};

/// 2026-11-23 00:00 UTC: an hour's start.
const T0: i64 = 1_795_392_000_000;
const MINUTES: i64 = 210;

/// The state at `t` by folding `rows` (each series' held value), in series order.
pub fn folded(rows: &[Row], t: i64) -> Vec<(u32, u8, Held)> {
    let mut running = Running::default();
    for r in rows.iter().filter(|r| r.t_ms <= t) {
        fold(&mut running, r);
    }
    let mut v: Vec<_> = running.into_iter().map(|((d, q), h)| (d, q, h)).collect();
    v.sort_unstable_by_key(|v| (v.0, v.1));
    v
}

/// Runs the checks on an empty `store`; the first that fails, said.
pub fn check(store: &mut dyn HistoryStore) -> Result<(), String> {
    let e = |e: super::store::StoreError| e.to_string();
    let (newest, _) = store.resume().map_err(e)?;
    if newest != i64::MIN {
        return Err("the store is not empty".into());
    }
    let devices: Vec<u32> = (0..40)
        .map(|i| store.device_index(&format!("lamp/{i}"), "lamp"))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    let source = store.source_index("simulator").map_err(e)?;
    let mut all: Vec<Row> = Vec::new();
    let mut running = Running::default();
    let mut slot = T0 / 3_600_000;
    for m in 0..MINUTES {
        let mut rows = Vec::new();
        for (i, d) in devices.iter().enumerate() {
            let i = i as i64;
            if (m + i) % (1 + i % 5) != 0 {
                continue;
            }
            rows.push(Row {
                t_ms: T0 + m * 60_000 + i * 100,
                device: *d,
                quantity: (i % 3) as u8,
                value: ((m / (1 + i % 4)) * 7 + i) as f64 % 13.0,
                source,
            });
        }
        let t = T0 + m * 60_000;
        let s = t / 3_600_000;
        if s > slot {
            store.keyframe(s * 3_600_000 - 1, &running).map_err(e)?;
            slot = s;
        }
        let alarms: Vec<AlarmRow> = match m {
            20 | 100 => vec![AlarmRow {
                t_ms: t,
                device: "lamp/3".into(),
                severity: "fault".into(),
                text: "off while the sun is down".into(),
                raised: m == 20,
            }],
            _ => Vec::new(),
        };
        for r in &rows {
            fold(&mut running, r);
        }
        store.write(&rows, &alarms).map_err(e)?;
        all.extend(rows);
        if m % 5 == 0 {
            let json = if m % 15 == 0 {
                format!("{{\"lighting_kwh\":{m},\"signals\":{{\"k1\":{m}}}}}")
            } else {
                format!("{{\"lighting_kwh\":{m}}}")
            };
            store.write_metrics(t, &json).map_err(e)?;
        }
        if m == 200 {
            store.write_traffic(t, "{\"vehicles\":3}").map_err(e)?;
        }
        if m % 30 == 29 {
            store.persist().map_err(e)?;
        }
    }
    store.persist().map_err(e)?;
    let last = all.last().map_or(0, |r| r.t_ms);
    // The state at moments within and across the hours.
    for t in [
        T0 - 1,
        T0,
        T0 + 30 * 60_000 + 50,
        T0 + 3_600_000 - 1,
        T0 + 3_600_000,
        T0 + 2 * 3_600_000 + 61_000,
        last,
        last + 3_600_000,
    ] {
        let s = store.state_at(t).map_err(e)?;
        let want = folded(&all, t);
        if s.values != want {
            return Err(format!(
                "state at {t}: {} values, {} folded",
                s.values.len(),
                want.len()
            ));
        }
        if let Some((d, _, h)) = s.values.first()
            && (s.devices.get(*d as usize).map(|n| n.0.as_str()) != Some("lamp/0")
                || s.sources.get(h.source as usize).map(String::as_str) != Some("simulator"))
        {
            return Err(format!("state at {t}: names of devices or sources"));
        }
        if !s.damaged.is_empty() {
            return Err(format!("state at {t}: damaged {:?}", s.damaged));
        }
    }
    // Alarms active, metrics with the heads' figures from the quarter before, traffic.
    let s = store.state_at(T0 + 50 * 60_000).map_err(e)?;
    if s.alarms
        .iter()
        .map(|a| a.device.as_str())
        .collect::<Vec<_>>()
        != ["lamp/3"]
    {
        return Err(format!("alarms at minute 50: {:?}", s.alarms));
    }
    match &s.metrics {
        Some((t, json))
            if *t == T0 + 50 * 60_000
                && json.contains("\"lighting_kwh\":50")
                && json.contains("\"k1\":45") => {}
        other => return Err(format!("metrics at minute 50: {other:?}")),
    }
    if s.traffic.is_some() {
        return Err("traffic at minute 50".into());
    }
    let s = store.state_at(T0 + 200 * 60_000 + 5_000).map_err(e)?;
    if !s.alarms.is_empty() || s.traffic.as_ref().map(|t| t.1.as_str()) != Some("{\"vehicles\":3}")
    {
        return Err(format!(
            "at minute 200: alarms {:?}, traffic {:?}",
            s.alarms, s.traffic
        ));
    }
    // A device's series, across the hours.
    for dev in ["lamp/7", "lamp/0"] {
        let d = store.device_index(dev, "lamp").map_err(e)?;
        let (from, to) = (T0 + 10 * 60_000, T0 + 190 * 60_000);
        let got = store.series(dev, from, to).map_err(e)?;
        let want: Vec<(i64, u8, f64)> = all
            .iter()
            .filter(|r| r.device == d && r.t_ms >= from && r.t_ms <= to)
            .map(|r| (r.t_ms, r.quantity, r.value))
            .collect();
        if got != want {
            return Err(format!(
                "series of {dev}: {} values, {} written",
                got.len(),
                want.len()
            ));
        }
    }
    if store.series("no/such", T0, last).map_err(e)? != Vec::new() {
        return Err("the series of an unknown device".into());
    }
    // The recorded value next to a moment, within an hour and across hours.
    for (t, forward) in [
        (T0 + 30 * 60_000 + 50, true),
        (T0 + 30 * 60_000 + 50, false),
        (T0 + 3_600_000 - 1, true),
        (T0 + 3_600_000, false),
        (T0 - 5_000_000, true),
        (last, true),
        (T0, false),
    ] {
        let want = if forward {
            all.iter().map(|r| r.t_ms).filter(|x| *x > t).min()
        } else {
            all.iter().map(|r| r.t_ms).filter(|x| *x < t).max()
        };
        let got = store.neighbour(t, forward).map_err(e)?;
        if got != want {
            return Err(format!(
                "neighbour of {t} (forward {forward}): {got:?}, want {want:?}"
            ));
        }
    }
    match store.range().map_err(e)? {
        Some((a, b)) if a == T0 && b == last => {}
        other => return Err(format!("range {other:?}, want ({T0}, {last})")),
    }
    // Resuming gives the state at the end.
    let (newest, held) = store.resume().map_err(e)?;
    let mut held: Vec<_> = held.into_iter().map(|((d, q), h)| (d, q, h)).collect();
    held.sort_unstable_by_key(|v| (v.0, v.1));
    if newest != last || held != folded(&all, last) {
        return Err(format!("resume: newest {newest}, {} series", held.len()));
    }
    // Retention of an hour and a bit: the hours before the cut's go, the state at the end
    // and at the cut stay.
    let deleted = store.retain_days(1.25 / 24.0).map_err(e)?;
    if deleted == 0 {
        return Err("retention deleted nothing".into());
    }
    let cut = last - 75 * 60_000;
    for t in [cut, last] {
        if store.state_at(t).map_err(e)?.values != folded(&all, t) {
            return Err(format!("state at {t} after retention"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sqlite_file_passes_the_checks_every_backend_passes() {
        let dir = std::env::temp_dir().join(format!("tvilling-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut store =
            super::super::store::SqliteStore::open(&dir.join("h.sqlite")).expect("open");
        super::check(&mut store).expect("the checks");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
