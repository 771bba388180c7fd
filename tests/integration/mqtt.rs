//! The live pipeline against a real Mosquitto broker: real payload formats published with
//! `mosquitto_pub`, decoded by the MQTT source, applied to components.

use bevy::prelude::*;
use tvilling_sensors::apply::{ApplyStats, Ingest, SensorApplyPlugin, connect_ingest};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::mqtt::{Connection, MqttConfig, MqttSource, Subscription, TlsFiles};
use tvilling_sensors::registry::{DeviceKind, DeviceRegistry, Quantity};
use tvilling_sensors::state::{
    AirQualityState, Health, LampState, Liveness, recent_series, spawn_registered,
};

use crate::broker::Broker;
use crate::common::{update_until, wait};

struct Twin {
    app: App,
    source: MqttSource,
    lamp: Entity,
    air: Entity,
}

fn twin(broker: &Broker, client_id: &str) -> Twin {
    twin_recording(broker, client_id, None)
}

/// A fresh app with the two test devices registered, fed by `rx`.
fn devices_app() -> (App, Entity, Entity) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let w = app.world_mut();
    let lamp = spawn_registered(w, "lamp-kungsgatan-1", DeviceKind::Lamp, vec![]);
    let air = spawn_registered(w, "0101010101010101", DeviceKind::AirSensor, vec![]);
    (app, lamp, air)
}

fn twin_recording(
    broker: &Broker,
    client_id: &str,
    recorder: Option<tvilling_sensors::replay::Recorder>,
) -> Twin {
    let (mut app, lamp, air) = devices_app();
    let tx = connect_ingest(app.world_mut(), 4096, "mqtt");
    let config = MqttConfig {
        client_id: client_id.into(),
        subscriptions: vec![
            Subscription {
                filter: "city/lighting/#".into(),
                format: PayloadFormat::SenMl,
                qos: 1,
            },
            Subscription {
                filter: "application/+/device/+/event/up".into(),
                format: PayloadFormat::ChirpStack,
                qos: 1,
            },
        ],
        ..MqttConfig::from_url(
            &format!("mqtt://127.0.0.1:{}", broker.port),
            PayloadFormat::SenMl,
        )
        .expect("url")
    };
    let source = MqttSource::start_recording(config, tx, recorder);
    // Publish only once the broker holds the subscriptions (its SUBACK), however busy the
    // machine is.
    wait(|| source.subscribed(), "connect and subscribe");
    app.update();
    Twin {
        app,
        source,
        lamp,
        air,
    }
}

fn chirpstack(no2: f64, time: &str) -> Vec<u8> {
    format!(r#"{{"time":"{time}","deviceInfo":{{"deviceName":"hornsgatan-1","devEui":"0101010101010101"}},"fPort":10,"object":{{"no2":{no2},"pm10":17}}}}"#).into_bytes()
}

#[test]
fn payloads_published_to_mosquitto_reach_components_and_bad_ones_are_counted() {
    let broker = Broker::start("live");
    let mut t = twin(&broker, "tvilling-test-live");
    assert_eq!(
        t.app.world().get::<Liveness>(t.lamp).expect("live").health,
        Health::NeverSeen
    );

    broker.publish("city/lighting/kungsgatan", br#"[{"bn":"lamp-kungsgatan-1:","n":"on","vb":true},{"n":"dim","v":60},{"n":"power_w","v":42.5}]"#);
    broker.publish(
        "application/7/device/0101010101010101/event/up",
        &chirpstack(38.5, "2026-11-23T08:00:00Z"),
    );
    let (lamp, air) = (t.lamp, t.air);
    update_until(
        &mut t.app,
        |w| {
            w.get::<AirQualityState>(air).and_then(|a| a.no2).is_some()
                && w.get::<LampState>(lamp).is_some_and(|l| l.on)
        },
        "values",
    );
    let l = *t.app.world().get::<LampState>(lamp).expect("lamp");
    assert_eq!((l.on, l.dim_pct, l.power_w), (true, 60.0, 42.5));
    assert_eq!(
        t.app.world().get::<AirQualityState>(air).expect("air").pm10,
        Some(17.0)
    );

    // Every kind of bad input through the broker: counted per reason, good state kept.
    broker.publish("city/lighting/kungsgatan", b"{not json");
    broker.publish("city/lighting/kungsgatan", &vec![b'['; 300_000]);
    broker.publish(
        "city/lighting/kungsgatan",
        br#"[{"bn":"lamp-kungsgatan-1:","n":"dim","v":140}]"#,
    );
    broker.publish(
        "city/lighting/kungsgatan",
        br#"[{"bn":"lamp-kungsgatan-1:","n":"dim","v":10,"bt":4102444800}]"#,
    );
    broker.publish(
        "application/7/device/ffffffffffffffff/event/up",
        br#"{"deviceInfo":{"devEui":"ffffffffffffffff"},"object":{"no2":1}}"#,
    );
    broker.publish(
        "application/7/device/0101010101010101/event/up",
        br#"{"deviceInfo":{"devEui":"0101010101010101"},"object":{"no2":"high"}}"#,
    );
    let rx_stats = |w: &World| {
        w.resource::<Ingest>()
            .0
            .stats("mqtt")
            .expect("stats")
            .rejected()
    };
    update_until(
        &mut t.app,
        |w| {
            let r = rx_stats(w);
            [
                "malformed_json",
                "oversized",
                "out_of_range",
                "future_timestamp",
                "wrong_type",
            ]
            .iter()
            .all(|k| r.contains_key(k))
                && w.resource::<ApplyStats>().unknown_device == 1
        },
        "every rejection",
    );
    let r = rx_stats(t.app.world());
    assert_eq!(r.values().sum::<u64>(), 5, "{r:?}");
    let l = *t.app.world().get::<LampState>(lamp).expect("lamp");
    assert_eq!(l.dim_pct, 60.0, "refused values never overwrite good state");
    assert!(
        t.app
            .world()
            .resource::<DeviceRegistry>()
            .unknown
            .contains_key("FFFFFFFFFFFFFFFF")
    );
    drop(t.source);
}

#[test]
fn a_broker_restart_mid_stream_reconnects_and_loses_no_state() {
    let mut broker = Broker::start("restart");
    let mut t = twin(&broker, "tvilling-test-restart");
    let air = t.air;
    broker.publish(
        "application/7/device/0101010101010101/event/up",
        &chirpstack(20.0, "2026-11-23T08:00:00Z"),
    );
    update_until(
        &mut t.app,
        |w| w.get::<AirQualityState>(air).and_then(|a| a.no2) == Some(20.0),
        "first value",
    );

    broker.stop();
    wait(
        || matches!(t.source.connection(), Connection::Disconnected { .. }),
        "the twin to notice",
    );
    for _ in 0..5 {
        t.app.update();
    }
    assert_eq!(
        t.app
            .world()
            .get::<AirQualityState>(air)
            .and_then(|a| a.no2),
        Some(20.0),
        "state kept while the broker is down"
    );

    broker.restart();
    wait(
        || t.source.connection() == Connection::Connected,
        "reconnection",
    );
    // The restarted broker restored the twin's session (subscriptions) from its store, or the
    // twin subscribed again: either way the source says so.
    wait(|| t.source.subscribed(), "subscriptions after reconnection");
    broker.publish(
        "application/7/device/0101010101010101/event/up",
        &chirpstack(25.0, "2026-11-23T08:05:00Z"),
    );
    update_until(
        &mut t.app,
        |w| w.get::<AirQualityState>(air).and_then(|a| a.no2) == Some(25.0),
        "value after restart",
    );
    let series: Vec<f64> = recent_series(t.app.world(), air, Quantity::No2)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(series, vec![20.0, 25.0], "nothing lost, nothing doubled");
}

#[test]
fn a_recorded_live_run_replays_to_the_same_final_state() {
    let broker = Broker::start("record");
    let path = crate::common::temp_dir("record").join("run.jsonl");
    let recorder = tvilling_sensors::replay::Recorder::create(&path).expect("recording");
    let mut t = twin_recording(&broker, "tvilling-test-record", Some(recorder));
    for (i, no2) in [12.0, 18.5, 25.25].iter().enumerate() {
        broker.publish(
            "application/7/device/0101010101010101/event/up",
            &chirpstack(*no2, &format!("2026-11-23T08:0{i}:00Z")),
        );
    }
    broker.publish(
        "city/lighting/kungsgatan",
        br#"[{"bn":"lamp-kungsgatan-1:","n":"on","vb":true},{"n":"dim","v":35}]"#,
    );
    broker.publish("city/lighting/kungsgatan", b"{broken");
    let (lamp, air) = (t.lamp, t.air);
    update_until(
        &mut t.app,
        |w| {
            w.get::<AirQualityState>(air).and_then(|a| a.no2) == Some(25.25)
                && w.get::<LampState>(lamp).is_some_and(|l| l.on)
        },
        "live run",
    );
    let live_air = *t.app.world().get::<AirQualityState>(air).expect("air");
    let live_lamp = *t.app.world().get::<LampState>(lamp).expect("lamp");
    let live_hist = recent_series(t.app.world(), air, Quantity::No2);
    drop(t.source); // stops the thread, dropping its recorder (flushed)
    drop(t.app);
    let lines = std::fs::read_to_string(&path)
        .expect("recording")
        .lines()
        .count();
    assert_eq!(
        lines, 4,
        "accepted messages only (the broken one is not recorded)"
    );

    let (mut app, lamp, air) = devices_app();
    let tx = connect_ingest(app.world_mut(), 4096, "replay");
    let replay = tvilling_sensors::replay::start_replay(&path, 0.0, None, tx).expect("replay");
    update_until(
        &mut app,
        |w| {
            replay.is_finished() && w.get::<AirQualityState>(air).and_then(|a| a.no2) == Some(25.25)
        },
        "replay",
    );
    app.update();
    assert_eq!(
        *app.world().get::<AirQualityState>(air).expect("air"),
        live_air
    );
    assert_eq!(
        *app.world().get::<LampState>(lamp).expect("lamp"),
        live_lamp
    );
    let hist = recent_series(app.world(), air, Quantity::No2);
    assert_eq!(hist, live_hist, "same values at the same times");
}

/// `tvilling --headless` for `secs` seconds against `broker` (ChirpStack payloads), with an
/// air sensor and a lamp registered, a snapshot and a recording in `dir`: the command, and
/// the snapshot's and the recording's paths.
fn headless_against(
    broker: &Broker,
    dir: &std::path::Path,
    secs: &str,
) -> (
    std::process::Command,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let registry = dir.join("registry.toml");
    std::fs::write(
        &registry,
        "[[device]]\nid = \"0101010101010101\"\nkind = \"air_sensor\"\nname = \"Hornsgatan 108\"\nlon = 18.0445\nlat = 59.3171\n\n\
         [[device]]\nid = \"lamp-kungsgatan-1\"\nkind = \"lamp\"\nlon = 18.0660\nlat = 59.3360\n",
    )
    .expect("registry");
    let (snapshot, recording) = (dir.join("twin.geojson"), dir.join("run.jsonl"));
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_tvilling"));
    run.args([
        "--headless",
        "--duration",
        secs,
        "--mqtt-format",
        "chirpstack",
    ])
    .arg("--registry")
    .arg(&registry)
    .arg("--mqtt")
    .arg(format!("mqtt://127.0.0.1:{}/application/#", broker.port))
    .arg("--snapshot")
    .arg(&snapshot)
    .arg("--record")
    .arg(&recording);
    (run, snapshot, recording)
}

#[test]
fn headless_run_against_mosquitto_writes_live_values_health_and_diagnostics() {
    let broker = Broker::start("headless");
    let dir = crate::common::temp_dir("headless-live");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let fresh = tvilling_sensors::time::format_rfc3339(now - 60_000);
    // Retained, so the twin receives them when it subscribes, whenever that is.
    broker.publish_retained(
        "application/7/device/0101010101010101/event/up",
        &chirpstack(38.5, &fresh),
    );
    broker.publish_retained(
        "application/7/device/ffffffffffffffff/event/up",
        br#"{"deviceInfo":{"devEui":"ffffffffffffffff"},"object":{"no2":1}}"#,
    );
    broker.publish_retained(
        "application/7/device/0202020202020202/event/up",
        b"{truncated",
    );
    let (mut run, snapshot, recording) = headless_against(&broker, &dir, "3");
    let out = run.output().expect("run tvilling");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = crate::common::read_json(&snapshot);
    let feature = |id: &str| crate::common::feature(&doc, id);
    let air = feature("0101010101010101");
    assert_eq!(air["properties"]["kind"], "air_sensor");
    assert_eq!(air["properties"]["no2_ugm3"], 38.5);
    assert_eq!(air["properties"]["health"], "live");
    assert_eq!(
        air["properties"]["last_seen"]
            .as_str()
            .map(|s| s[..19].to_string()),
        Some(fresh[..19].to_string())
    );
    let c = &air["geometry"]["coordinates"];
    assert!(
        (c[0].as_f64().expect("lon") - 18.0445).abs() < 1e-6
            && (c[1].as_f64().expect("lat") - 59.3171).abs() < 1e-6
    );
    let lamp = feature("lamp-kungsgatan-1");
    assert_eq!(lamp["properties"]["health"], "never seen");
    assert!(lamp["properties"]["last_seen"].is_null());
    let diag = &doc["diagnostics"];
    assert_eq!(diag["sources"]["mqtt"]["accepted"], 2);
    assert_eq!(
        diag["sources"].as_object().map(|o| o.len()),
        Some(1),
        "only the running source is listed"
    );
    assert_eq!(diag["sources"]["mqtt"]["rejected"]["malformed_json"], 1);
    assert_eq!(
        diag["unknown_devices"],
        serde_json::json!(["FFFFFFFFFFFFFFFF"])
    );
    assert_eq!(
        std::fs::read_to_string(&recording)
            .expect("recording")
            .lines()
            .count(),
        2,
        "accepted messages recorded"
    );
    // The city is still all there.
    assert_eq!(
        doc["features"]
            .as_array()
            .expect("f")
            .iter()
            .filter(|f| f["properties"]["kind"] == "building")
            .count(),
        195
    );
}

/// A source for the TLS listener with the given CA and client certificate choice.
fn tls_source(
    broker: &Broker,
    client_id: &str,
    ca: &std::path::Path,
    with_client_cert: bool,
    world: &mut World,
) -> MqttSource {
    let tls = broker.tls.as_ref().expect("TLS listener");
    let files = TlsFiles {
        ca_file: Some(ca.to_path_buf()),
        client_cert_file: with_client_cert.then(|| tls.client_cert.clone()),
        client_key_file: with_client_cert.then(|| tls.client_key.clone()),
    };
    let config = MqttConfig {
        client_id: client_id.into(),
        tls: Some(std::sync::Arc::new(
            files.client_config().expect("TLS config"),
        )),
        ..MqttConfig::from_url(
            &format!("mqtts://127.0.0.1:{}/city/lighting/#", tls.port),
            PayloadFormat::SenMl,
        )
        .expect("url")
    };
    MqttSource::start(config, connect_ingest(world, 4096, "mqtt"))
}

#[test]
fn tls_with_a_client_certificate_delivers_and_a_wrong_ca_or_no_certificate_is_refused() {
    let broker = Broker::start_tls("tls");
    let tls = broker.tls.as_ref().expect("TLS listener");
    // The right CA and a client certificate: connected, and messages reach components.
    let (mut app, lamp, _) = devices_app();
    let source = tls_source(&broker, "tvilling-test-tls", &tls.ca, true, app.world_mut());
    wait(
        || source.connection() == Connection::Connected && source.subscribed(),
        "TLS connect and subscribe",
    );
    broker.publish(
        "city/lighting/kungsgatan",
        br#"[{"bn":"lamp-kungsgatan-1:","n":"on","vb":true},{"n":"dim","v":70}]"#,
    );
    update_until(
        &mut app,
        |w| {
            w.get::<LampState>(lamp)
                .is_some_and(|l| l.on && l.dim_pct == 70.0)
        },
        "the lamp over TLS",
    );
    // A broker certificate from another CA: the handshake fails, and says why.
    let mut elsewhere = World::new();
    let wrong_ca = tls_source(
        &broker,
        "tvilling-test-tls-ca",
        &tls.other_ca,
        true,
        &mut elsewhere,
    );
    wait(
        || matches!(wrong_ca.connection(), Connection::Disconnected { .. }),
        "refusal of an unknown CA",
    );
    let Connection::Disconnected { reason, .. } = wrong_ca.connection() else {
        unreachable!()
    };
    assert!(
        reason.to_lowercase().contains("certificate") || reason.to_lowercase().contains("issuer"),
        "{reason}"
    );
    // No client certificate: the broker requires one and closes the connection.
    let anonymous = tls_source(
        &broker,
        "tvilling-test-tls-anon",
        &tls.ca,
        false,
        &mut elsewhere,
    );
    wait(
        || matches!(anonymous.connection(), Connection::Disconnected { .. }),
        "refusal without a client certificate",
    );
    assert_eq!(source.connection(), Connection::Connected);
}

#[test]
fn a_broker_gone_makes_the_devices_it_fed_stale_with_the_reason() {
    // The twin hears an air sensor, then its broker goes away: the sensor, heard seconds ago,
    // is stale at once, and says why; a device no source ever fed stays never seen.
    let mut broker = Broker::start("gone");
    let dir = crate::common::temp_dir("broker-gone");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    broker.publish_retained(
        "application/7/device/0101010101010101/event/up",
        &chirpstack(21.0, &tvilling_sensors::time::format_rfc3339(now)),
    );
    let (mut run, snapshot, recording) = headless_against(&broker, &dir, "12");
    let child = run
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tvilling");
    // Once the value is in (the recording has it), the broker goes.
    wait(
        || std::fs::read_to_string(&recording).is_ok_and(|r| r.lines().count() == 1),
        "the value to arrive",
    );
    broker.stop();
    let out = child.wait_with_output().expect("tvilling");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = crate::common::read_json(&snapshot);
    let air = crate::common::feature(&doc, "0101010101010101");
    assert_eq!(air["properties"]["no2_ugm3"], 21.0, "its value is kept");
    assert_eq!(
        air["properties"]["health"], "stale",
        "{}",
        air["properties"]
    );
    let why = air["properties"]["source_down"]
        .as_str()
        .unwrap_or_default();
    assert!(why.starts_with("disconnected"), "{}", air["properties"]);
    let lamp = crate::common::feature(&doc, "lamp-kungsgatan-1");
    assert_eq!(lamp["properties"]["health"], "never seen");
    assert!(lamp["properties"]["source_down"].is_null());
}
