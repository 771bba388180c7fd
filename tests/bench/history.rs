//! History and simulated-time benchmarks (`cargo bench -p tvilling_twin --bench history`),
//! release build, printed figures:
//!
//! - store write rate for the whole city (261,100 devices: 150,000 lamps, 11,000 signal
//!   heads, 100,000 meters, 100 air sensors; the simulator's values): Tvilling's writer
//!   (its own thread, batches, keyframes) against a bare `rusqlite` batched insert of the same
//!   rows into the same table layout, in the same run; bytes per stored value;
//! - the state of the whole city rebuilt at random moments (keyframe plus values after it);
//! - one device's year recorded, then read back whole and a day of it;
//! - simulated time through the ECS (the event-driven simulator's typed reports, apply,
//!   health, alarms, metrics, and recording): wall time and speed-up over real time for the
//!   whole city (`TVILLING_BENCH_ONLY=sim` measures only this, `TVILLING_BENCH_SIM_MIN` sets
//!   its span, default 10 minutes, `TVILLING_BENCH_RECORD=no|only` leaves out or keeps only
//!   the recording run; `TVILLING_BENCH_ONLY=year` measures only one device's year).

use std::time::Instant;

use bevy::prelude::*;
use rusqlite::{Connection, params};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::simulate::{SimDevice, SimValue, Simulator, whole_city};
use tvilling_sensors::state::{SignalAspect, spawn_registered};
use tvilling_twin::history::store::{HistoryStore, SqliteStore};
use tvilling_twin::history::writer::{Batch, Value, Writer};

const START_MS: i64 = 1_795_000_000_000;

/// The simulator's field names as the default rules map them.
fn quantity(name: &str) -> Option<Quantity> {
    Some(match name {
        "state" => Quantity::SignalAspect,
        "on" => Quantity::LampOn,
        "dim" => Quantity::LampDimPct,
        "power_w" => Quantity::LampPowerW,
        "fault" => Quantity::LampFault,
        "power_kw" => Quantity::PowerKw,
        "energy_today_kwh" => Quantity::EnergyTodayKwh,
        "heating_kw" => Quantity::HeatingKw,
        "no2" => Quantity::No2,
        "pm10" => Quantity::Pm10,
        "pm25" => Quantity::Pm25,
        "temperature" => Quantity::TemperatureC,
        _ => return None,
    })
}

fn number(v: &SimValue) -> f64 {
    match v {
        SimValue::Number(x) => *x,
        SimValue::Bool(b) => f64::from(u8::from(*b)),
        SimValue::Text(t) => SignalAspect::parse(t).map_or(0.0, SignalAspect::code),
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tvilling-bench-{}-{name}", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

fn file_bytes(p: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|ext| std::fs::metadata(format!("{}{ext}", p.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let seed = 1;
    let devices = whole_city(seed);
    if std::env::var("TVILLING_BENCH_ONLY").as_deref() == Ok("year") {
        device_year();
        return;
    }
    if std::env::var("TVILLING_BENCH_ONLY").as_deref() == Ok("sim") {
        // Only the simulated time through the ECS.
        simulated_time(devices);
        return;
    }
    let total = devices.len();
    let sim = Simulator { seed, devices };
    // Every device reports once a minute for `minutes` minutes; frames of 10,000 values.
    let minutes = 12;
    // `TVILLING_BENCH_ACROSS_HOUR=1`: the 12 minutes cross an hour (from 6 minutes before
    // it), so the writer closes one hour and carries the whole city's state into the next.
    let start_ms = if std::env::var_os("TVILLING_BENCH_ACROSS_HOUR").is_some() {
        (START_MS.div_euclid(3_600_000) + 1) * 3_600_000 - 6 * 60_000
    } else {
        START_MS
    };
    let t_gen = Instant::now();
    let mut values: Vec<Value> = Vec::new();
    for m in 0..minutes {
        for i in 0..total {
            let t = start_ms + m * 60_000 + (i as i64 * 7) % 60_000;
            for (name, v) in sim.reading(i, t) {
                if let Some(q) = quantity(name) {
                    values.push(Value {
                        t_ms: t,
                        device: i as u32,
                        quantity: q.index(),
                        value: number(&v),
                        source: 0,
                    });
                }
            }
        }
    }
    values.sort_by_key(|v| v.t_ms);
    let n = values.len();
    println!(
        "rows: {n} values of {total} devices over {minutes} simulated minutes (generated in {:.1} s)",
        t_gen.elapsed().as_secs_f64()
    );
    const FRAME: usize = 10_000;

    // Bare rusqlite before and after Tvilling's writer (the mean is the peer's figure: the
    // page cache favours neither).
    let bare_path = temp("bare.sqlite");
    let bare_before = bare_insert(&bare_path, &sim, &values);
    // Tvilling's writer: the same rows, handed over a frame at a time.
    let path = temp("tvilling.sqlite");
    let store = SqliteStore::open(&path).expect("open");
    let t = Instant::now();
    let mut writer = Writer::start(Box::new(store)).expect("writer");
    let mut first = Batch {
        new_devices: sim
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u32, d.id.clone(), d.kind.as_str().to_string()))
            .collect(),
        new_sources: vec![(0, "simulator".into())],
        ..Batch::default()
    };
    let mut handed_s = 0.0;
    for (k, chunk) in values.chunks(FRAME).enumerate() {
        let h = Instant::now();
        let mut batch = if k == 0 {
            std::mem::take(&mut first)
        } else {
            Batch::default()
        };
        batch.values.extend_from_slice(chunk);
        writer.send(batch);
        handed_s += h.elapsed().as_secs_f64();
    }
    writer.flush();
    let ours_s = t.elapsed().as_secs_f64();
    let status = writer.status.clone();
    drop(writer);
    let bare_after = bare_insert(&bare_path, &sim, &values);
    let bare_s = (bare_before + bare_after) / 2.0;
    let recorded = status.recorded.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(recorded as usize, n, "every value recorded");
    println!(
        "store write, whole city: tvilling {n} values in {ours_s:.2} s = {:.0}/s ({} keyframes); bare rusqlite {bare_s:.2} s = {:.0}/s (runs before and after: {bare_before:.2} s, {bare_after:.2} s); ratio {:.2} (goal >= 0.8)",
        n as f64 / ours_s,
        status.keyframes.load(std::sync::atomic::Ordering::Relaxed),
        n as f64 / bare_s,
        bare_s / ours_s
    );
    println!(
        "handing over: {:.1} ms in all, {:.3} ms per frame of {FRAME} values on the ECS side",
        handed_s * 1000.0,
        handed_s * 1000.0 / (n / FRAME) as f64
    );
    let mut reader = SqliteStore::open_read_only(&path).expect("read");
    let bytes = reader.bytes().expect("bytes");
    println!(
        "bytes per stored value: tvilling {:.1} (file {:.0} MB, each hour's carried state included); bare {:.1}",
        bytes as f64 / n as f64,
        bytes as f64 / 1e6,
        file_bytes(&bare_path) as f64 / n as f64
    );

    // The whole city's state at random moments.
    let (first_t, last_t) = reader.range().expect("range").expect("rows");
    let mut times = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = first_t + (x % (last_t - first_t) as u64) as i64;
        let s = Instant::now();
        let state = reader.state_at(t).expect("state");
        let took = s.elapsed().as_secs_f64();
        times.push(took);
        println!(
            "state at +{:.1} min: {} values of {} devices in {:.3} s",
            (t - first_t) as f64 / 60_000.0,
            state.values.len(),
            state
                .values
                .iter()
                .map(|v| &v.0)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            took
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "rebuild the whole city at a random moment: median {:.3} s, worst {:.3} s (goal <= 1 s)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    drop(reader);
    device_year();
    for p in [&path, &bare_path] {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
        }
    }

    simulated_time(sim.devices);
}

/// One device's year: a lamp reporting its four quantities every minute, recorded through the
/// writer, then its whole year and one day of it read back.
fn device_year() {
    let path = temp("year.sqlite");
    let mut writer =
        Writer::start(Box::new(SqliteStore::open(&path).expect("open"))).expect("writer");
    let minutes = 365 * 24 * 60;
    let mut batch = Batch {
        new_devices: vec![(0, "lamp-year".into(), "lamp".into())],
        new_sources: vec![(0, "simulator".into())],
        ..Batch::default()
    };
    for m in 0..minutes {
        let t = START_MS + m * 60_000;
        // Lit from 15:00 to 07:00 UTC, dimmed to 50 % after midnight.
        let hour = (m / 60) % 24;
        let on = !(7..15).contains(&hour);
        let dim = if hour < 7 { 50.0 } else { 100.0 };
        for (q, v) in [
            (Quantity::LampOn, f64::from(u8::from(on))),
            (Quantity::LampDimPct, dim),
            (Quantity::LampPowerW, if on { 0.4 * dim } else { 0.0 }),
            (Quantity::LampFault, 0.0),
        ] {
            batch.values.push(Value {
                t_ms: t,
                device: 0,
                quantity: q.index(),
                value: v,
                source: 0,
            });
        }
        if batch.values.len() >= 40_000 {
            writer.send(std::mem::take(&mut batch));
        }
    }
    writer.send(batch);
    writer.flush();
    drop(writer);
    let n = minutes * 4;
    let mut reader = SqliteStore::open_read_only(&path).expect("read");
    let bytes = reader.bytes().expect("bytes");
    let mut took = Vec::new();
    let mut got = 0;
    for _ in 0..5 {
        let t = Instant::now();
        got = reader
            .series("lamp-year", START_MS, START_MS + minutes * 60_000)
            .expect("year")
            .len();
        took.push(t.elapsed().as_secs_f64());
    }
    took.sort_by(f64::total_cmp);
    let t = Instant::now();
    let day = reader
        .series(
            "lamp-year",
            START_MS + 200 * 86_400_000,
            START_MS + 201 * 86_400_000,
        )
        .expect("day")
        .len();
    let day_s = t.elapsed().as_secs_f64();
    assert_eq!(got as i64, n, "every value of the year read back");
    println!(
        "one device's year: {n} values ({:.2} bytes a value, each hour's carried state included) read in {:.1} ms median of 5 (goal <= 50 ms); one day of it ({day} values) in {:.2} ms",
        bytes as f64 / n as f64,
        took[2] * 1000.0,
        day_s * 1000.0
    );
    drop(reader);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

/// A bare `rusqlite` batched insert of the same rows into the same table layout and indexes,
/// one transaction per frame; returns its seconds.
fn bare_insert(path: &std::path::Path, sim: &Simulator, values: &[Value]) -> f64 {
    const FRAME: usize = 10_000;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    let bare_path = path;
    let t = Instant::now();
    {
        let mut conn = Connection::open(bare_path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("sync");
        conn.execute_batch(
            "CREATE TABLE devices(id INTEGER PRIMARY KEY, device TEXT UNIQUE NOT NULL, kind TEXT NOT NULL);
             CREATE TABLE obs(t INTEGER NOT NULL, device INTEGER NOT NULL, q INTEGER NOT NULL, v REAL NOT NULL, src INTEGER NOT NULL);
             CREATE INDEX obs_t ON obs(t);
             CREATE INDEX obs_device ON obs(device, t);",
        )
        .expect("schema");
        let tx = conn.transaction().expect("tx");
        {
            let mut ins = tx
                .prepare("INSERT INTO devices(id, device, kind) VALUES (?1, ?2, ?3)")
                .expect("prepare");
            for (i, d) in sim.devices.iter().enumerate() {
                ins.execute(params![i as i64 + 1, d.id, d.kind.as_str()])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        for chunk in values.chunks(FRAME) {
            let tx = conn.transaction().expect("tx");
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO obs(t, device, q, v, src) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .expect("prepare");
                for v in chunk {
                    ins.execute(params![v.t_ms, v.device + 1, v.quantity, v.value, 1])
                        .expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
    }

    t.elapsed().as_secs_f64()
}

/// Simulated time through the ECS, as fast as the machine runs.
fn simulated_time(devices: Vec<SimDevice>) {
    use tvilling_twin::history::{HistoryPlugin, HistorySettings};
    // `TVILLING_BENCH_RECORD=no|only`: without the recording run, or only it.
    let runs: &[bool] = match std::env::var("TVILLING_BENCH_RECORD").as_deref() {
        Ok("no") => &[false],
        Ok("only") => &[true],
        _ => &[false, true],
    };
    for &record in runs {
        let mut app = App::new();
        let path = temp("simulated.sqlite");
        app.add_plugins(MinimalPlugins)
            .insert_resource(TwinClock::held(START_MS))
            .add_plugins((
                tvilling_sensors::apply::SensorApplyPlugin,
                tvilling_sensors::health::HealthPlugin,
                tvilling_metrics::MetricsPlugin,
                HistoryPlugin {
                    settings: record.then(|| HistorySettings {
                        path: path.clone(),
                        retention_days: 30.0,
                        read_only: false,
                        temporary: false,
                    }),
                },
            ));
        app.add_systems(
            PreUpdate,
            tvilling_twin::simulation::step_simulator
                .run_if(resource_exists::<tvilling_twin::simulation::SimulatorState>)
                .in_set(tvilling_sensors::apply::SensorSystems::Step),
        );
        for d in &devices {
            spawn_registered(app.world_mut(), d.id.clone(), d.kind, vec![]);
        }
        let tx = tvilling_sensors::apply::connect_ingest(app.world_mut(), 16, "simulator");
        let setup = tvilling_twin::SimSetup {
            seed: 1,
            clock: tvilling_sensors::simulate::SimClockSettings {
                start_ms: Some(START_MS),
                speed: None,
            },
            extra_lamps: 0,
            path: tvilling_twin::SimPath::Typed,
            heartbeat_ms: None,
        };
        tvilling_twin::simulation::start(app.world_mut(), setup, devices.clone(), tx, None);
        // `TVILLING_BENCH_SIM_MIN`: simulated minutes (default 10; 1440: a day).
        let minutes: i64 = std::env::var("TVILLING_BENCH_SIM_MIN")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(10);
        let span_ms = minutes * 60_000;
        app.world_mut().resource_mut::<TwinClock>().until_ms = Some(START_MS + span_ms);
        let t = Instant::now();
        let mut frames = 0;
        while !app.world().resource::<TwinClock>().finished() {
            app.update();
            frames += 1;
        }
        app.update();
        if let Some(mut r) = app
            .world_mut()
            .get_resource_mut::<tvilling_twin::history::HistoryRecorder>()
        {
            r.flush();
        }
        let wall = t.elapsed().as_secs_f64();
        let recorded = app
            .world_mut()
            .get_resource_mut::<tvilling_twin::history::HistoryRecorder>()
            .and_then(|mut r| r.written())
            .map_or(0, |w| w.values);
        let stats = app
            .world()
            .resource::<tvilling_sensors::apply::ApplyStats>();
        let (applied, alive) = (stats.applied, stats.keep_alive);
        println!(
            "simulated {minutes} min of the whole city ({} devices){}: {wall:.1} s wall, {:.1}x real time, {frames} frames, {applied} reports applied ({alive} keep-alives), {recorded} values recorded",
            devices.len(),
            if record { " with recording" } else { "" },
            span_ms as f64 / 1000.0 / wall
        );
        // The twin closed: the file as it is left (its log copied in, the last hour compacted).
        drop(app);
        if record && recorded > 0 {
            // The database's pages, what the blocks hold, and where their bits go.
            let store = SqliteStore::open_read_only(&path).expect("read the history");
            let bytes = store.bytes().expect("bytes");
            let (segments, carried, blocks, block_bytes) = store.breakdown().expect("breakdown");
            let free = store.free_bytes().expect("free");
            let wal =
                file_bytes(&path).saturating_sub(std::fs::metadata(&path).map_or(0, |m| m.len()));
            drop(store);
            block_bits(&path, recorded);
            println!(
                "history of the simulated span: {:.2} bytes a value ({:.1} MB, its state carried into each hour included; {segments} hours, {carried} series' states carried in, {blocks} blocks {:.1} MB; free pages {:.1} MB, taken again by later writes; without them {:.2} bytes a value; a write-ahead log of {:.1} MB beside it until the file is closed)",
                bytes as f64 / recorded as f64,
                bytes as f64 / 1e6,
                block_bytes as f64 / 1e6,
                free as f64 / 1e6,
                bytes.saturating_sub(free) as f64 / recorded as f64,
                wal as f64 / 1e6
            );
        }
        if std::env::var_os("TVILLING_BENCH_KEEP").is_some() {
            println!("kept {}", path.display());
            continue;
        }
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }
}

/// Where a recorded span's block bits go: the series' places and carried states, their
/// points, by series with few and many points.
fn block_bits(path: &std::path::Path, recorded: u64) {
    use tvilling_twin::history::block::BlockReader;
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    let mut q = conn
        .prepare("SELECT seg, data FROM blocks ORDER BY id")
        .expect("blocks");
    let mut rows = q.query([]).expect("rows");
    let (mut heads, mut carried_heads, mut head_bits, mut point_bits) = (0u64, 0u64, 0u64, 0u64);
    let mut by_n = [(0u64, 0u64, 0u64); 4];
    while let Some(r) = rows.next().expect("row") {
        let seg: i64 = r.get(0).expect("seg");
        let data: Vec<u8> = r.get(1).expect("data");
        let mut b = BlockReader::new(seg * 3_600_000, &data).expect("block");
        loop {
            let p0 = b.position();
            let Some(h) = b.next_head().expect("head") else {
                break;
            };
            let p1 = b.position();
            b.points(&h, |_| {}).expect("points");
            let p2 = b.position();
            heads += 1;
            carried_heads += u64::from(h.carry.is_some());
            head_bits += (p1 - p0) as u64;
            point_bits += (p2 - p1) as u64;
            let k = match h.n {
                0 => 0,
                1..=4 => 1,
                5..=60 => 2,
                _ => 3,
            };
            by_n[k].0 += 1;
            by_n[k].1 += u64::from(h.n);
            by_n[k].2 += (p2 - p0) as u64;
        }
    }
    println!(
        "blocks' bits: {heads} series-hours ({carried_heads} with a carried state), their places and states {:.1} MB ({:.1} bits each), points {:.1} MB ({:.2} bytes a value); by points in the hour (series, values, MB): 0 {:?}, 1-4 {:?}, 5-60 {:?}, more {:?}",
        head_bits as f64 / 8e6,
        head_bits as f64 / heads.max(1) as f64,
        point_bits as f64 / 8e6,
        point_bits as f64 / 8.0 / recorded.max(1) as f64,
        (by_n[0].0, by_n[0].1, by_n[0].2 as f64 / 8e6),
        (by_n[1].0, by_n[1].1, by_n[1].2 as f64 / 8e6),
        (by_n[2].0, by_n[2].1, by_n[2].2 as f64 / 8e6),
        (by_n[3].0, by_n[3].1, by_n[3].2 as f64 / 8e6),
    );
}
