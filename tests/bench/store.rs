//! Shared alarm book benchmark (`scripts/bench-store.sh`, which starts a PostgreSQL 15 server
//! on a free loopback port and passes its URL in `TVILLING_BENCH_STORE`), release build,
//! printed figures, beside its peer in one run:
//! - an acknowledgement made at one desk ([`book::act`]: row lock, the lifecycle model, row,
//!   audit and NOTIFY in one transaction) until another desk's listener has its key: p50, p99;
//! - the peer: the server's own fastest path for the same announcement, a bare
//!   `SELECT pg_notify(…)` on one connection until the other connection's LISTEN has it;
//! - recording: alarms raised per second through [`book::record`] (a batch in one transaction,
//!   each row locked and changed through the lifecycle model), and
//!   the same rows' audit by a bare `COPY` (the server's fastest way in) for scale.
//!
//! - history: the same values (`TVILLING_BENCH_DEVICES` devices, default 20,000, each
//!   reporting a new value every minute for an hour and a quarter) written through the history
//!   interface to PostgreSQL ([`PgHistory`]: blocks) and to a SQLite file, beside a bare
//!   `COPY` of the same rows (time, device, quantity, value, source) into a plain table: the
//!   server's own fastest way in.
//!
//! Last line: `ack_p50_ms=<ms> ack_p99_ms=<ms> notify_p50_ms=<ms> notify_p99_ms=<ms>
//! record_per_s=<n> copy_rows_per_s=<n> pg_values_per_s=<n> sqlite_values_per_s=<n>
//! copy_values_per_s=<n>`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tvilling_metrics::alarms::Severity;
use tvilling_metrics::lifecycle::{AlarmBook, Priority};
use tvilling_twin::history::pg::PgHistory;
use tvilling_twin::history::store::{HistoryStore, Row, Running, SqliteStore, fold};
use tvilling_twin::shared::book::{self, Actor, OperatorAction};
use tvilling_twin::shared::{connect, schema};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Until the listener has announced `key` (earlier announcements passed over).
fn wait_for(rx: &crossbeam_channel::Receiver<String>, key: &str) {
    while rx.recv_timeout(Duration::from_secs(5)).expect("announced") != key {}
}

/// Writes `minutes` of values of `devices` devices (a new value each a minute) as the writer
/// does (a keyframe at each hour, persisted after a second of wall time or four times the last
/// persist's cost); values a second.
fn write_history(store: &mut dyn HistoryStore, devices: usize, minutes: i64) -> f64 {
    let t0 = 1_795_392_000_000;
    let ids: Vec<u32> = (0..devices)
        .map(|i| {
            store
                .device_index(&format!("lamp/{i}"), "lamp")
                .expect("device")
        })
        .collect();
    let src = store.source_index("simulator").expect("source");
    let mut running = Running::default();
    let mut slot = t0 / 3_600_000;
    let started = Instant::now();
    let (mut persisted, mut cost) = (Instant::now(), Duration::ZERO);
    let mut n = 0usize;
    for m in 0..minutes {
        let t = t0 + m * 60_000;
        if t / 3_600_000 > slot {
            slot = t / 3_600_000;
            store
                .keyframe(slot * 3_600_000 - 1, &running)
                .expect("keyframe");
        }
        let rows: Vec<Row> = ids
            .iter()
            .enumerate()
            .map(|(i, d)| Row {
                t_ms: t + (i as i64 % 1_000) * 7,
                device: *d,
                quantity: 2,
                value: 40.0 + ((m + i as i64) % 9) as f64 * 0.5,
                source: src,
            })
            .collect();
        for r in &rows {
            fold(&mut running, r);
        }
        store.write(&rows, &[]).expect("write");
        n += rows.len();
        // As the writer persists: after a second, or four times the last persist's cost.
        if persisted.elapsed() >= Duration::from_secs(1).max(cost * 4) {
            let t = Instant::now();
            store.persist().expect("persist");
            cost = t.elapsed();
            persisted = Instant::now();
        }
    }
    store.persist().expect("persist");
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let Ok(url) = std::env::var("TVILLING_BENCH_STORE") else {
        eprintln!("TVILLING_BENCH_STORE=postgres://… is not set: run scripts/bench-store.sh");
        return;
    };
    let n: usize = std::env::var("TVILLING_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut c = connect(&url).expect("connect");
    schema::install(&mut c, &url).expect("schema");
    c.batch_execute("TRUNCATE tvilling.alarms, tvilling.alarm_audit")
        .expect("empty");
    // n alarms raised, one transaction each, as a recording twin writes them.
    let t0 = 1_795_400_000_000;
    let mut b = AlarmBook::default();
    for i in 0..n {
        b.raise(
            t0,
            &format!("lamp/{i}"),
            Severity::Fault,
            Priority::Low,
            "off while the sun is down",
        );
    }
    let raises = b.take_transitions();
    let t = Instant::now();
    book::record(&mut c, &url, &raises, &|_| false, "bench").expect("record");
    let record_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "recording: {n} alarms raised in one transaction, each row locked and changed through the model: {record_per_s:.0}/s"
    );
    // The same number of audit rows by a bare COPY.
    let t = Instant::now();
    {
        let mut w = c
            .copy_in("COPY tvilling.alarm_audit(t, action, key, device, priority, note) FROM STDIN")
            .expect("copy");
        for i in 0..n {
            writeln!(w, "{t0}\traise\tlamp/{i}#fault\tlamp/{i}\tlow\tcopied").expect("row");
        }
        w.finish().expect("copy done");
    }
    let copy_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!("bare COPY of {n} audit rows: {copy_per_s:.0} rows/s");
    // The other desk listens.
    let (tx, rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || book::listen(&url, &tx, &stop))
    };
    std::thread::sleep(Duration::from_millis(500));
    let by = Actor {
        operator: "bench".into(),
        station: "desk-1".into(),
    };
    let mut ack = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("lamp/{i}#fault");
        let t = Instant::now();
        book::act(
            &mut c,
            &url,
            &key,
            t0 + 1,
            &OperatorAction::Acknowledge,
            &by,
        )
        .expect("ack");
        wait_for(&rx, &key);
        ack.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // The peer: a bare NOTIFY on the same channel until the listener has it.
    let mut bare = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("bare/{i}");
        let t = Instant::now();
        c.execute("SELECT pg_notify($1, $2)", &[&book::CHANNEL, &key])
            .expect("notify");
        wait_for(&rx, &key);
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = listener.join();
    ack.sort_by(f64::total_cmp);
    bare.sort_by(f64::total_cmp);
    let (a50, a99) = (percentile(&ack, 0.5), percentile(&ack, 0.99));
    let (b50, b99) = (percentile(&bare, 0.5), percentile(&bare, 0.99));
    println!(
        "acknowledgement at one desk until the other has it, {n} times: p50 {a50:.2} ms, p99 {a99:.2} ms (bar 1,000 ms)"
    );
    println!(
        "peer, a bare NOTIFY until the listener has it: p50 {b50:.2} ms, p99 {b99:.2} ms; acknowledgement/peer at p50 {:.1}x",
        a50 / b50
    );
    // History: the same values to PostgreSQL's blocks, to a SQLite file, and by a bare COPY.
    let devices: usize = std::env::var("TVILLING_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let minutes = 75;
    c.batch_execute(
        "TRUNCATE tvilling.blocks, tvilling.segments, tvilling.history_devices,
             tvilling.history_sources;
         DROP TABLE IF EXISTS bench_values;
         CREATE TABLE bench_values(t bigint, device integer, q smallint, v double precision,
             src smallint);",
    )
    .expect("tables");
    let mut h = PgHistory::open(&url).expect("history");
    let pg_per_s = write_history(&mut h, devices, minutes);
    drop(h);
    let blocks_bytes: i64 = c
        .query_one("SELECT pg_total_relation_size('tvilling.blocks')", &[])
        .expect("size")
        .get(0);
    let dir = std::env::temp_dir().join(format!("tvilling-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut sq = SqliteStore::open(&dir.join("h.sqlite")).expect("sqlite");
    let sqlite_per_s = write_history(&mut sq, devices, minutes);
    drop(sq);
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let mut copied = 0usize;
    {
        let t0 = 1_795_392_000_000i64;
        let mut w = c.copy_in("COPY bench_values FROM STDIN").expect("copy");
        let mut line = String::new();
        for m in 0..minutes {
            let t = t0 + m * 60_000;
            for i in 0..devices {
                use std::fmt::Write as _;
                line.clear();
                let _ = writeln!(
                    line,
                    "{}\t{}\t2\t{}\t1",
                    t + (i as i64 % 1_000) * 7,
                    i + 1,
                    40.0 + ((m + i as i64) % 9) as f64 * 0.5
                );
                w.write_all(line.as_bytes()).expect("row");
                copied += 1;
            }
        }
        w.finish().expect("copy done");
    }
    let copy_values_per_s = copied as f64 / t.elapsed().as_secs_f64();
    let raw_bytes: i64 = c
        .query_one("SELECT pg_total_relation_size('bench_values')", &[])
        .expect("size")
        .get(0);
    let values = devices as f64 * minutes as f64;
    println!(
        "history, {devices} devices a new value each minute for {minutes} minutes ({values:.0} values):"
    );
    println!(
        "  PostgreSQL, blocks: {pg_per_s:.0} values/s ({:.2} bytes a value on the server)",
        blocks_bytes as f64 / values
    );
    println!("  SQLite file: {sqlite_per_s:.0} values/s");
    println!(
        "  peer, a bare COPY of the same rows: {copy_values_per_s:.0} values/s ({:.1} bytes a value); PostgreSQL blocks / COPY {:.2}",
        raw_bytes as f64 / values,
        pg_per_s / copy_values_per_s
    );
    c.batch_execute("DROP TABLE bench_values").expect("drop");
    println!(
        "ack_p50_ms={a50:.2} ack_p99_ms={a99:.2} notify_p50_ms={b50:.2} notify_p99_ms={b99:.2} record_per_s={record_per_s:.0} copy_rows_per_s={copy_per_s:.0} pg_values_per_s={pg_per_s:.0} sqlite_values_per_s={sqlite_per_s:.0} copy_values_per_s={copy_values_per_s:.0}"
    );
}
