//! Soak of the live pipeline against a real Mosquitto (run by `scripts/soak.sh`, which starts
//! the broker, restarts it once in the middle and prints the verdict). Two roles of one binary:
//!
//! - `soak twin PORT SUMMARY`: the whole city registered (150,000 lamps, 11,000 signal heads,
//!   100,000 meters, 100 air sensors) and fed by two MQTT sources: SenML (`soak/senml/#`) and
//!   ChirpStack (`application/+/device/+/event/up`), QoS 1 with persistent sessions. It samples
//!   its own RSS every 10 s and, once the publisher's summary file appears and the stream has
//!   drained, prints the RSS series and slope (with every device's history ring filled first,
//!   as in a twin that has run for hours; `SOAK_PREFILL=0` starts empty) and, per source, the
//!   accounting of every message
//!   sent: refused whole + applied + superseded + out of order + duplicate + unknown device +
//!   not applied = received, and received - duplicates = sent.
//! - `soak publish PORT MINUTES RATE SUMMARY`: publishes RATE messages/s for MINUTES, each one
//!   device's state with a time later than any before, half SenML (lamps, signal heads), half
//!   ChirpStack uplinks (meters, air sensors, DevEUIs in lower case), 1% garbage (malformed
//!   JSON, a SenML array of numbers, a broken DevEUI, unknown devices), at QoS 1; waits for
//!   every acknowledgement and writes what it sent to SUMMARY.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bevy::prelude::*;
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
use tvilling_sensors::apply::{ApplyStats, Ingest, SensorApplyPlugin, connect_ingest};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::ingest::SourceStats;
use tvilling_sensors::mqtt::{MqttConfig, MqttSource, Subscription};
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry, Quantity};
use tvilling_sensors::state::{DeviceSlot, HISTORY_CAPACITY, LiveEdge, spawn_registered};

const LAMPS: u64 = 150_000;
const HEADS: u64 = 11_000;
const METERS: u64 = 100_000;
const AIR: u64 = 100;

fn lamp_id(i: u64) -> String {
    format!("lamp-{i}")
}
fn head_id(i: u64) -> String {
    format!("sig-{i}")
}
/// Meters and air sensors are LoRaWAN devices: DevEUIs.
fn meter_eui(i: u64) -> String {
    format!("70B3D57E{i:08X}")
}
fn air_eui(i: u64) -> String {
    format!("A84041{i:010X}")
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("twin") if args.len() == 3 => twin(args[1].parse().expect("port"), &args[2]),
        Some("publish") if args.len() == 5 => publish(
            args[1].parse().expect("port"),
            args[2].parse().expect("minutes"),
            args[3].parse().expect("rate"),
            &args[4],
        ),
        _ => {
            eprintln!(
                "usage: soak twin PORT SUMMARY | soak publish PORT MINUTES RATE SUMMARY (see scripts/soak.sh)"
            );
            std::process::exit(2);
        }
    }
}

fn twin(port: u16, summary: &str) {
    let started = Instant::now();
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let senml_tx = connect_ingest(app.world_mut(), 65_536, "senml");
    let world = app.world_mut();
    let mut ids: Vec<(String, DeviceKind)> = Vec::with_capacity(261_100);
    ids.extend((0..LAMPS).map(|i| (lamp_id(i), DeviceKind::Lamp)));
    ids.extend((0..HEADS).map(|i| (head_id(i), DeviceKind::SignalHead)));
    // Registered in lower case, as copied from ChirpStack's console.
    ids.extend((0..METERS).map(|i| (meter_eui(i).to_lowercase(), DeviceKind::Meter)));
    ids.extend((0..AIR).map(|i| (air_eui(i).to_lowercase(), DeviceKind::AirSensor)));
    for (id, kind) in ids {
        spawn_registered(world, id, kind, vec![]);
    }
    app.update();
    let registered = app.world().resource::<DeviceRegistry>().len();
    // A twin that has run for hours has every device's history ring full: fill them first, so
    // that what is measured is the steady state, not the rings filling up.
    let prefill = std::env::var("SOAK_PREFILL").map_or(true, |v| v != "0");
    if prefill {
        let old = wall_ms() - 86_400_000;
        let slots: Vec<u32> = app
            .world_mut()
            .query::<&DeviceSlot>()
            .iter(app.world())
            .map(|s| s.0)
            .collect();
        let mut edge = app.world_mut().resource_mut::<LiveEdge>();
        for slot in slots {
            for i in 0..HISTORY_CAPACITY {
                edge.push(slot, old + i as i64, Quantity::LampDimPct, 0.0);
            }
        }
        println!(
            "twin: history rings filled ({HISTORY_CAPACITY} samples per device, as after hours of running): RSS {:.0} MB",
            rss_mb()
        );
    }
    let url = format!("mqtt://127.0.0.1:{port}");
    let source =
        |tx: tvilling_sensors::ingest::IngestSender, filter: &str, format: PayloadFormat| {
            let name = tx.name().to_string();
            let config = MqttConfig {
                client_id: format!("tvilling-soak-{name}"),
                subscriptions: vec![Subscription {
                    filter: filter.into(),
                    format,
                    qos: 1,
                }],
                ..MqttConfig::from_url(&url, PayloadFormat::SenMl).expect("url")
            };
            MqttSource::start(config, tx)
        };
    let chirpstack_tx = senml_tx.for_source("chirpstack");
    let sources = [
        source(senml_tx, "soak/senml/#", PayloadFormat::SenMl),
        source(
            chirpstack_tx,
            "application/+/device/+/event/up",
            PayloadFormat::ChirpStack,
        ),
    ];
    println!(
        "twin: {registered} devices registered in {:.1} s, RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        rss_mb()
    );
    let stats = |app: &App, name: &str| -> Arc<SourceStats> {
        app.world()
            .resource::<Ingest>()
            .0
            .stats(name)
            .expect("source stats")
    };
    let received = |app: &App| -> u64 {
        ["senml", "chirpstack"]
            .iter()
            .map(|n| {
                let s = stats(app, n);
                s.accepted.load(Ordering::Relaxed) + s.refused_messages.load(Ordering::Relaxed)
            })
            .sum()
    };
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut next_sample = Instant::now();
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        app.update();
        if Instant::now() >= next_sample {
            let t = started.elapsed().as_secs_f64();
            let mb = rss_mb();
            samples.push((t, mb));
            let conns: Vec<String> = sources
                .iter()
                .map(|s| format!("{:?}", s.connection()))
                .collect();
            println!(
                "t {t:6.0} s  RSS {mb:7.1} MB  received {}  applied {}  {}",
                received(&app),
                app.world().resource::<ApplyStats>().applied,
                conns.join(" / ")
            );
            next_sample += Duration::from_secs(10);
        }
        let n = received(&app);
        if n != last_count {
            last_count = n;
            last_change = Instant::now();
        }
        // Done when the publisher has written what it sent and nothing arrived for 10 s.
        if std::path::Path::new(summary).exists() && last_change.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    app.update();
    report(&app, &samples, summary, &stats);
}

fn report(
    app: &App,
    samples: &[(f64, f64)],
    summary: &str,
    stats: &dyn Fn(&App, &str) -> Arc<SourceStats>,
) {
    // RSS slope after warm-up (the first fifth of the run, at least 60 s): least squares.
    let end = samples.last().map_or(0.0, |s| s.0);
    let warm = (end / 5.0).max(60.0);
    let after: Vec<(f64, f64)> = samples.iter().copied().filter(|s| s.0 >= warm).collect();
    if after.len() >= 3 {
        let n = after.len() as f64;
        let (mx, my) = (
            after.iter().map(|s| s.0).sum::<f64>() / n,
            after.iter().map(|s| s.1).sum::<f64>() / n,
        );
        let slope = after.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum::<f64>()
            / after.iter().map(|s| (s.0 - mx).powi(2)).sum::<f64>();
        let span = after[after.len() - 1].0 - after[0].0;
        let change = slope * span / my * 100.0;
        let (lo, hi) = after
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), s| (l.min(s.1), h.max(s.1)));
        println!(
            "RSS after warm-up ({:.0} s on, {} samples): mean {my:.1} MB, min {lo:.1}, max {hi:.1}; slope {:.3} MB/min = {change:+.2}% over {span:.0} s ({})",
            warm,
            after.len(),
            slope * 60.0,
            if change.abs() <= 5.0 {
                "flat within ±5%"
            } else {
                "NOT flat within ±5%"
            }
        );
    } else {
        println!("RSS: too few samples after warm-up for a slope");
    }
    let sent: BTreeMap<String, BTreeMap<String, u64>> =
        serde_json::from_str(&std::fs::read_to_string(summary).expect("publisher summary"))
            .expect("summary json");
    let mut all_ok = true;
    for name in ["senml", "chirpstack"] {
        let s = stats(app, name);
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let refused = n(&s.refused_messages);
        let accepted = n(&s.accepted);
        let outcomes = [
            ("applied", n(&s.applied)),
            ("superseded", n(&s.superseded)),
            ("out of order", n(&s.out_of_order)),
            ("duplicate", n(&s.duplicate)),
            ("unknown device", n(&s.unknown_device)),
            ("not applied", n(&s.not_applied)),
        ];
        let accounted: u64 = outcomes.iter().map(|(_, v)| v).sum();
        let received = accepted + refused;
        let published = sent[name]["sent"];
        let acked = sent[name].get("acknowledged").copied().unwrap_or(0);
        // A redelivery is told apart by its content (the same device, time and values) when it
        // applies, and by MQTT's DUP flag when it is refused whole.
        let repeats = n(&s.duplicate) + n(&s.refused_redeliveries);
        let unaccounted = acked as i64 - (received - repeats) as i64;
        println!(
            "{name}: published {published}, acknowledged by the broker {acked} (garbage {}, unknown ids {}); received {received} = refused whole {refused} + accepted {accepted}; accepted = {}; accepted - outcomes = {}; refused redeliveries {}; unaccounted (acknowledged - received + duplicates + refused redeliveries) = {unaccounted}",
            sent[name]["garbage"],
            sent[name]["unknown"],
            outcomes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" + "),
            accepted as i64 - accounted as i64,
            n(&s.refused_redeliveries),
        );
        println!("  refused by reason: {:?}", s.rejected());
        all_ok &= unaccounted == 0 && accepted == accounted;
    }
    println!(
        "accounting: {}",
        if all_ok {
            "every message sent is accounted for"
        } else {
            "MESSAGES UNACCOUNTED"
        }
    );
}

/// A publishing client of its own per source, so the broker's acknowledgements count per
/// source; returns the client and its acknowledgement counter.
fn publisher(port: u16, name: &str) -> (Client, Arc<AtomicU64>) {
    let mut options = MqttOptions::new(format!("soak-publisher-{name}"), "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_inflight(1000);
    let (client, mut connection) = Client::new(options, 10_000);
    let acked = Arc::new(AtomicU64::new(0));
    let thread_acked = acked.clone();
    let name = name.to_string();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    thread_acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("publisher {name}: {e}; reconnecting");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    });
    (client, acked)
}

fn publish(port: u16, minutes: f64, rate: u64, summary: &str) {
    let clients: BTreeMap<&str, (Client, Arc<AtomicU64>)> = ["senml", "chirpstack"]
        .into_iter()
        .map(|n| (n, publisher(port, n)))
        .collect();
    let acked = || -> u64 {
        clients
            .values()
            .map(|(_, a)| a.load(Ordering::Relaxed))
            .sum()
    };
    let mut counts: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let start = Instant::now();
    let total = (minutes * 60.0 * rate as f64) as u64;
    let mut k: u64 = 0;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    while k < total {
        // Pace: k messages by k / rate seconds.
        let due = Duration::from_secs_f64(k as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // The time of sending; a device is picked again only seconds later, so each device's
        // messages have times of their own.
        let t_ms = wall_ms();
        let senml = k.is_multiple_of(2);
        let source = if senml { "senml" } else { "chirpstack" };
        let c = counts.entry(source).or_default();
        *c.entry("sent").or_default() += 1;
        let garbage = rng.is_multiple_of(100);
        let (topic, payload) = if garbage {
            *c.entry("garbage").or_default() += 1;
            let kind = (rng >> 8) % 4;
            if kind == 3 {
                *c.entry("unknown").or_default() += 1;
            }
            match (senml, kind) {
                (true, 0) => ("soak/senml/x".to_string(), b"[{\"bn\":".to_vec()),
                (true, 1) => ("soak/senml/x".to_string(), b"[1,2,3]".to_vec()),
                (true, 2) => ("soak/senml/x".to_string(), vec![0xff, 0xfe, 0x00]),
                (true, _) => (
                    "soak/senml/x".to_string(),
                    format!(r#"[{{"bn":"lamp-999999999:","bt":{},"n":"dim","v":50}}]"#, t_ms as f64 / 1000.0).into_bytes(),
                ),
                (false, 0) => ("application/1/device/x/event/up".to_string(), b"{\"deviceInfo\":".to_vec()),
                (false, 1) => (
                    "application/1/device/x/event/up".to_string(),
                    br#"{"deviceInfo":{"devEui":"not-an-eui"},"object":{"power":1}}"#.to_vec(),
                ),
                (false, 2) => ("application/1/device/x/event/up".to_string(), b"\"just a string\"".to_vec()),
                (false, _) => (
                    "application/1/device/x/event/up".to_string(),
                    format!(
                        r#"{{"time":"{}","deviceInfo":{{"devEui":"ffffffffffffff00"}},"object":{{"power":1}}}}"#,
                        tvilling_sensors::time::format_rfc3339(t_ms)
                    )
                    .into_bytes(),
                ),
            }
        } else if senml {
            let i = (rng >> 8) % (LAMPS + HEADS);
            let bt = t_ms as f64 / 1000.0;
            if i < LAMPS {
                let dim = (rng >> 40) % 101;
                (
                    format!("soak/senml/lamps/{}", i % 100),
                    format!(
                        r#"[{{"bn":"{}:","bt":{bt:.3},"n":"on","vb":{}}},{{"n":"dim","u":"%","v":{dim}}},{{"n":"power","u":"W","v":{}}}]"#,
                        lamp_id(i),
                        dim > 0,
                        dim as f64 * 0.8
                    )
                    .into_bytes(),
                )
            } else {
                let aspect = ["red", "red-amber", "green", "amber"][((rng >> 40) % 4) as usize];
                (
                    format!("soak/senml/signals/{}", i % 100),
                    format!(
                        r#"[{{"bn":"{}:","bt":{bt:.3},"n":"state","vs":"{aspect}"}}]"#,
                        head_id(i - LAMPS)
                    )
                    .into_bytes(),
                )
            }
        } else {
            let i = (rng >> 8) % (METERS + AIR);
            let time = tvilling_sensors::time::format_rfc3339(t_ms);
            let (eui, object) = if i < METERS {
                (
                    meter_eui(i).to_lowercase(),
                    format!(
                        r#"{{"activePower":{},"energy":{}}}"#,
                        (rng >> 40) % 90_000,
                        (rng >> 20) % 5000
                    ),
                )
            } else {
                (
                    air_eui(i - METERS).to_lowercase(),
                    format!(
                        r#"{{"NO2":{},"pm2_5":{},"temp":3.5}}"#,
                        (rng >> 40) % 120,
                        (rng >> 30) % 40
                    ),
                )
            };
            (
                format!("application/7/device/{eui}/event/up"),
                format!(r#"{{"time":"{time}","deviceInfo":{{"devEui":"{eui}"}},"fPort":2,"object":{object}}}"#)
                    .into_bytes(),
            )
        };
        if clients[source]
            .0
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .is_err()
        {
            eprintln!("publisher: the client is gone");
            break;
        }
        k += 1;
        if k.is_multiple_of(rate * 10) {
            println!(
                "published {k} of {total} in {:.0} s, acknowledged {}",
                start.elapsed().as_secs_f64(),
                acked()
            );
        }
    }
    let sent_s = start.elapsed().as_secs_f64();
    // Every message acknowledged by the broker before the summary is written.
    let wait = Instant::now();
    while acked() < k && wait.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "published {k} messages in {sent_s:.0} s ({:.0}/s); {} acknowledged",
        k as f64 / sent_s,
        acked()
    );
    for (source, (client, n)) in &clients {
        let _ = client.disconnect();
        counts
            .entry(source)
            .or_default()
            .insert("acknowledged", n.load(Ordering::Relaxed));
    }
    let tmp = format!("{summary}.tmp");
    std::fs::write(&tmp, serde_json::to_string(&counts).expect("json")).expect("summary");
    std::fs::rename(&tmp, summary).expect("summary");
}
