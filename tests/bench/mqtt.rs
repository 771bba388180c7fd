//! Live pipeline benchmark against a real Mosquitto on loopback:
//! - publish N SenML messages as fast as possible (QoS 0) to `bench/meters`;
//! - Tvilling (MQTT source -> decode -> ingest -> apply to components) and `mosquitto_sub`
//!   drain the same stream in the same run; report both rates and their ratio;
//! - latency from publish to component, p50 and p99, over the messages that were applied
//!   (coalescing may supersede some, and says how many);
//! - the apply system's time per frame for 10,000 updates;
//! - city scale in process: the whole city registered (150,000 lamps, 11,000 signal heads,
//!   100,000 meters, 100 air sensors), the simulator's SenML packs decoded and applied as fast
//!   as the pipeline goes (no broker in the way): observations/s end to end, against the
//!   100,000 messages/s target, and the apply time per frame at that rate.
//!
//! Run: `cargo bench -p tvilling_sensors --bench mqtt` (needs Debian `mosquitto` and
//! `mosquitto-clients`); `TVILLING_BENCH_ONLY=apply` measures only the apply frame. `TVILLING_BENCH_MESSAGES` sets N (default 100,000).

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use rumqttc::{Client, MqttOptions, QoS};
use tvilling_sensors::apply::{ApplyStats, SensorApplyPlugin, connect_ingest};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::mqtt::{Connection, MqttConfig, MqttSource};
use tvilling_sensors::observation::{FieldValue, Observation};
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::state::{MeterState, spawn_registered};

const DEVICES: usize = 10_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn meters_app(capacity: usize) -> (App, tvilling_sensors::ingest::IngestSender) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let tx = connect_ingest(app.world_mut(), capacity, "mqtt");
    for d in 0..DEVICES {
        spawn_registered(
            app.world_mut(),
            format!("meter-{d}"),
            DeviceKind::Meter,
            vec![],
        );
    }
    app.update();
    (app, tx)
}

fn main() {
    if std::env::var("TVILLING_BENCH_ONLY").as_deref() == Ok("apply") {
        apply_frame();
        return;
    }
    let n: usize = std::env::var("TVILLING_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // A broker of our own on a free loopback port.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let dir = std::env::temp_dir().join(format!("tvilling-bench-mqtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nuser root\n"
        ),
    )
    .expect("conf");
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto must be installed");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Tvilling: 10,000 meters, MQTT source, apply plugin.
    let (mut app, tx) = meters_app(65_536);
    let mut cfg = MqttConfig::from_url(
        &format!("mqtt://127.0.0.1:{port}/bench/#"),
        PayloadFormat::SenMl,
    )
    .expect("url");
    cfg.client_id = format!("tvilling-bench-{}", std::process::id());
    cfg.subscriptions[0].qos = 0;
    let source = MqttSource::start(cfg, tx.clone());
    let wait_start = Instant::now();
    while source.connection() != Connection::Connected {
        assert!(
            wait_start.elapsed() < Duration::from_secs(10),
            "no connection: {:?}",
            source.connection()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("connected to mosquitto on port {port}");
    // The peer: mosquitto_sub, exiting after N messages.
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "bench/#",
            "-C",
            &n.to_string(),
            "-q",
            "0",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("mosquitto_sub must be installed");
    std::thread::sleep(Duration::from_millis(500));

    // Publisher: one message per meter round-robin; energy_today_kwh carries the sequence number.
    let mut opts = MqttOptions::new("tvilling-bench-pub", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = Client::new(opts, 10_000);
    let pub_thread = std::thread::spawn(move || for _ in conn.iter().take_while(Result::is_ok) {});
    let mut sent_at: Vec<Instant> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let payload = format!(
            r#"[{{"bn":"meter-{}:","n":"energy_today_kwh","v":{i}}}]"#,
            i % DEVICES
        );
        sent_at.push(Instant::now());
        client
            .publish("bench/meters", QoS::AtMostOnce, false, payload)
            .expect("publish");
    }
    let publish_s = t0.elapsed().as_secs_f64();
    eprintln!("published {n} in {publish_s:.3} s");

    // Drain: update the app until every message was applied or superseded.
    let mut latencies_ms: Vec<f64> = Vec::new();
    let mut q = app.world_mut().query::<&MeterState>();
    let mut previous: Vec<f64> = vec![-1.0; DEVICES];
    let mut last_progress = Instant::now();
    let mut done_at = None;
    let mut prev = 0u64;
    loop {
        app.update();
        let now = Instant::now();
        // A meter whose value moved shows a newly applied message (its sequence number).
        for (slot, m) in previous.iter_mut().zip(q.iter(app.world())) {
            if m.energy_today_kwh != *slot {
                *slot = m.energy_today_kwh;
                if let Some(s) = sent_at.get(m.energy_today_kwh as usize) {
                    latencies_ms.push(now.duration_since(*s).as_secs_f64() * 1000.0);
                }
            }
        }
        let applied = app.world().resource::<ApplyStats>().applied;
        let superseded = tx
            .stats
            .superseded
            .load(std::sync::atomic::Ordering::Relaxed);
        if applied != prev {
            prev = applied;
            last_progress = now;
        }
        if applied + superseded >= n as u64 {
            done_at = Some(now);
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let ours_s = done_at.map(|d| d.duration_since(t0).as_secs_f64());
    // mosquitto_sub exits after N messages; if the broker dropped some, it never will.
    let mut sub_s = None;
    while t0.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(_)) = sub.try_wait() {
            sub_s = Some(t0.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if sub_s.is_none() {
        let _ = sub.kill();
        let _ = sub.wait();
    }
    let applied = app.world().resource::<ApplyStats>().applied;
    let superseded = tx
        .stats
        .superseded
        .load(std::sync::atomic::Ordering::Relaxed);
    let accepted = tx.stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
    drop(source);
    // Dropping a client does not end its connection; disconnecting does.
    let _ = client.disconnect();
    let _ = pub_thread.join();

    latencies_ms.sort_by(f64::total_cmp);
    println!(
        "messages published: {n} in {publish_s:.3} s ({:.0}/s), {DEVICES} meters",
        n as f64 / publish_s
    );
    match ours_s {
        Some(s) => println!(
            "tvilling: {accepted} received, {applied} applied + {superseded} superseded in {s:.3} s from first publish = {:.0} messages/s",
            n as f64 / s
        ),
        None => println!(
            "tvilling: stalled after {accepted} received ({applied} applied, {superseded} superseded); the broker dropped messages?"
        ),
    }
    match sub_s {
        Some(sub_s) => {
            println!(
                "mosquitto_sub: {n} messages drained in {sub_s:.3} s = {:.0} messages/s",
                n as f64 / sub_s
            );
            if let Some(s) = ours_s {
                println!("ratio tvilling / mosquitto_sub: {:.2}x", sub_s / s);
            }
        }
        None => println!("mosquitto_sub: did not receive all {n} messages within 60 s"),
    }
    println!(
        "latency publish -> component: p50 {:.1} ms, p99 {:.1} ms over {} applied messages",
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.99),
        latencies_ms.len()
    );

    apply_frame();
    let _ = broker.kill();
    let _ = broker.wait();
    city_scale();
}

/// Apply time per frame for 10,000 updates (one per meter), against an empty frame.
fn apply_frame() {
    // Apply time per frame for 10,000 updates (one per meter), against an empty frame: while
    // the devices' recent-value rings still fill (the first minutes of a run: 60 frames), and
    // once they are full (a twin that has run for a while: `TVILLING_BENCH_APPLY_ROUNDS`
    // frames, default 200). Each figure is the median frame less the median empty frame, with
    // the 10th and 90th percentiles of the frames beside it.
    let (mut app, tx) = meters_app(20_000);
    let rounds: i64 = std::env::var("TVILLING_BENCH_APPLY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let capacity = tvilling_sensors::state::HISTORY_CAPACITY as i64;
    let mut measure = |from: i64, to: i64| -> [f64; 4] {
        let (mut empty, mut full) = (Vec::new(), Vec::new());
        for round in from..to {
            let t = Instant::now();
            app.update();
            empty.push(t.elapsed().as_secs_f64());
            for d in 0..DEVICES {
                tx.send(Observation {
                    device: format!("meter-{d}"),
                    time_ms: Some(1_000_000 + round),
                    fields: vec![("power_kw".into(), FieldValue::Number(d as f64 * 0.01))],
                    ..Default::default()
                });
            }
            let t = Instant::now();
            app.update();
            full.push(t.elapsed().as_secs_f64());
        }
        empty.sort_by(f64::total_cmp);
        full.sort_by(f64::total_cmp);
        let base = percentile(&empty, 0.5);
        [
            (percentile(&full, 0.5) - base) * 1000.0,
            (percentile(&full, 0.1) - base) * 1000.0,
            (percentile(&full, 0.9) - base) * 1000.0,
            base * 1000.0,
        ]
    };
    let growing = measure(0, capacity - 4);
    measure(capacity - 4, capacity + 1);
    let steady = measure(capacity + 1, capacity + 1 + rounds);
    println!(
        "apply: 10,000 updates in one frame: median {:.2} ms (p10 {:.2}, p90 {:.2}) while the rings fill, {} frames; {:.2} ms (p10 {:.2}, p90 {:.2}) once they are full, {rounds} frames (empty frame {:.3} ms)",
        growing[0],
        growing[1],
        growing[2],
        capacity - 4,
        steady[0],
        steady[1],
        steady[2],
        steady[3]
    );
}

/// The whole city through decode, ingest and apply, without a broker.
fn city_scale() {
    use tvilling_sensors::codec::{DecodeContext, decode};
    use tvilling_sensors::simulate::{Simulator, whole_city};
    let seed = 1;
    let devices = whole_city(seed);
    let total = devices.len();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let tx = connect_ingest(app.world_mut(), 65_536, "simulator");
    for d in &devices {
        spawn_registered(app.world_mut(), d.id.clone(), d.kind, vec![]);
    }
    app.update();
    let sim = Simulator { seed, devices };
    // Encode every pack first, so the measured run is decode + ingest + apply only; each
    // device reports `rounds` times, a minute apart.
    let rounds = 4usize;
    let t0 = 1_795_000_000_000i64;
    let mut packs = Vec::new();
    let t_encode = Instant::now();
    for r in 0..rounds {
        let t = t0 + r as i64 * 60_000;
        for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
            let batch: Vec<(usize, i64)> = chunk.iter().map(|&i| (i, t)).collect();
            packs.push((t, sim.senml_pack_at(&batch)));
        }
    }
    let encode_s = t_encode.elapsed().as_secs_f64();
    let bytes: usize = packs.iter().map(|(_, p)| p.len()).sum();
    let n = total * rounds;
    eprintln!(
        "city scale: {total} devices, {n} observations in {} packs ({:.0} MB), encoded in {encode_s:.2} s",
        packs.len(),
        bytes as f64 / 1e6
    );
    let stats = tx.stats.clone();
    let started = Instant::now();
    let producer = std::thread::spawn(move || {
        for (t, p) in &packs {
            let ctx = DecodeContext {
                topic: "bench/city",
                now_ms: *t,
                max_bytes: 1 << 20,
                ..DecodeContext::default()
            };
            if let Ok(obs) = decode(&PayloadFormat::SenMl, p, &ctx) {
                tx.send_decoded(obs, "bench/city");
            }
        }
        started.elapsed().as_secs_f64()
    });
    let mut frames = Vec::new();
    loop {
        let f = Instant::now();
        app.update();
        frames.push(f.elapsed().as_secs_f64());
        let done = producer.is_finished();
        let a = app.world().resource::<ApplyStats>();
        let settled = a.applied + stats.superseded.load(std::sync::atomic::Ordering::Relaxed);
        if done && settled >= n as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            eprintln!("city scale: gave up after 300 s");
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let decode_s = producer.join().unwrap_or(f64::NAN);
    let a = app.world().resource::<ApplyStats>().clone();
    let superseded = stats.superseded.load(std::sync::atomic::Ordering::Relaxed);
    frames.sort_by(f64::total_cmp);
    println!(
        "city scale ({total} devices): {n} observations decoded and handed over in {decode_s:.2} s = {:.0}/s; \
         all applied or superseded in {elapsed:.2} s = {:.0}/s end to end (target 100,000/s: {:.2}x); \
         applied {}, superseded {superseded}, out of order {}",
        n as f64 / decode_s,
        n as f64 / elapsed,
        n as f64 / elapsed / 100_000.0,
        a.applied,
        a.out_of_order
    );
    println!(
        "city scale: {} frames, apply frame time median {:.1} ms, p99 {:.1} ms",
        frames.len(),
        percentile(&frames, 0.5) * 1000.0,
        percentile(&frames, 0.99) * 1000.0
    );
}
