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
//! Last line: `ack_p50_ms=<ms> ack_p99_ms=<ms> notify_p50_ms=<ms> notify_p99_ms=<ms>
//! record_per_s=<n> copy_rows_per_s=<n>`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tvilling_metrics::alarms::Severity;
use tvilling_metrics::lifecycle::{AlarmBook, Priority};
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
    println!("recording: {n} alarms raised, one transaction each: {record_per_s:.0}/s");
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
    println!(
        "ack_p50_ms={a50:.2} ack_p99_ms={a99:.2} notify_p50_ms={b50:.2} notify_p99_ms={b99:.2} record_per_s={record_per_s:.0} copy_rows_per_s={copy_per_s:.0}"
    );
}
