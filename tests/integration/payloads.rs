//! Real payloads from real networks through a real Mosquitto, as a newcomer would send them: a
//! registry written by hand with DevEUIs copied from either network server's console, the
//! field spellings of real decoders, SenML units, payloads without a time, fields the twin does
//! not know, and a payload larger than the limit between good ones at QoS 0.

use std::time::{SystemTime, UNIX_EPOCH};

use bevy::prelude::*;
use tvilling_sensors::apply::{Ingest, SensorApplyPlugin, connect_ingest};
use tvilling_sensors::codec::PayloadFormat;
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::mqtt::{Connection, MqttConfig, MqttSource, Subscription};
use tvilling_sensors::registry::DeviceRegistry;
use tvilling_sensors::registry_file::parse_registry;
use tvilling_sensors::state::{
    AirQualityState, Device, Health, LampState, Liveness, MeterState, recent_series,
    spawn_registered,
};

use crate::broker::Broker;
use crate::common::{update_until, wait};

/// What a newcomer writes: ids copied from ChirpStack (lower case) and The Things Stack
/// (upper case, with dashes as its console groups them), no field rules.
const REGISTRY: &str = r#"
[[device]]
id = "a1b2c3d4e5f60708"        # from ChirpStack's console; the uplinks come via The Things Stack
kind = "air_sensor"
name = "Hornsgatan 108"
lon = 18.0445
lat = 59.3171

[[device]]
id = "70-B3-D5-7E-D0-00-00-01" # from The Things Stack's console; uplinks via ChirpStack
kind = "lamp"
name = "Odengatan 2"
lon = 18.0560
lat = 59.3440

[[device]]
id = "meter-hornsgatan-108"
kind = "meter"
lon = 18.0445
lat = 59.3171

[[device]]
id = "lamp-kista-7"
kind = "lamp"
lon = 17.9490
lat = 59.4030
"#;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// The app with the registry's devices spawned and registered as the binary does.
fn registry_app() -> (App, IngestSender) {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(SensorApplyPlugin);
    let tx = connect_ingest(app.world_mut(), 4096, "mqtt");
    for d in parse_registry(REGISTRY, "registry.toml").expect("registry") {
        spawn_registered(app.world_mut(), d.id, d.kind, d.rule);
    }
    app.update();
    (app, tx)
}

/// The registry app fed by a live MQTT source subscribed as a city would subscribe.
fn twin(broker: &Broker, client_id: &str, max_payload_bytes: usize) -> (App, MqttSource) {
    let (app, tx) = registry_app();
    let config = MqttConfig {
        client_id: client_id.into(),
        max_payload_bytes,
        subscriptions: vec![
            Subscription {
                filter: "city/#".into(),
                format: PayloadFormat::SenMl,
                qos: 1,
            },
            Subscription {
                filter: "application/+/device/+/event/up".into(),
                format: PayloadFormat::ChirpStack,
                qos: 1,
            },
            Subscription {
                filter: "v3/+/devices/+/up".into(),
                format: PayloadFormat::TheThingsStack,
                qos: 1,
            },
        ],
        ..MqttConfig::from_url(
            &format!("mqtt://127.0.0.1:{}", broker.port),
            PayloadFormat::SenMl,
        )
        .expect("url")
    };
    let source = MqttSource::start(config, tx);
    wait(|| source.subscribed(), "connect and subscribe");
    (app, source)
}

fn rejected(app: &App) -> std::collections::BTreeMap<&'static str, u64> {
    app.world()
        .resource::<Ingest>()
        .0
        .stats("mqtt")
        .expect("stats")
        .rejected()
}

fn last_rejections(app: &App) -> Vec<String> {
    app.world()
        .resource::<Ingest>()
        .0
        .stats("mqtt")
        .expect("stats")
        .last_rejections()
}

fn entity(app: &App, id: &str) -> Entity {
    app.world()
        .resource::<DeviceRegistry>()
        .get(id)
        .unwrap_or_else(|| panic!("{id} registered"))
        .entity
}

#[test]
fn a_hand_written_registry_with_ids_from_either_console_comes_alive() {
    let broker = Broker::start("newcomer");
    let (mut app, source) = twin(&broker, "tvilling-test-newcomer", 256 * 1024);
    let (air, lamp, meter, kista) = (
        entity(&app, "A1B2C3D4E5F60708"),
        entity(&app, "70B3D57ED0000001"),
        entity(&app, "meter-hornsgatan-108"),
        entity(&app, "lamp-kista-7"),
    );
    assert_eq!(
        app.world().get::<Device>(lamp).expect("device").id,
        "70B3D57ED0000001",
        "DevEUIs are shown one way"
    );
    // The Things Stack: upper-case DevEUI, its decoder's spellings (NO2, pm2_5, temp).
    let fresh = tvilling_sensors::time::format_rfc3339(now_ms() - 30_000);
    broker.publish(
        "v3/hornsgatan@ttn/devices/air-108/up",
        format!(r#"{{"end_device_ids":{{"device_id":"air-108","dev_eui":"A1B2C3D4E5F60708"}},"received_at":"{fresh}","uplink_message":{{"f_port":2,"decoded_payload":{{"NO2":38.5,"pm2_5":11.2,"temp":4.5}},"received_at":"{fresh}"}}}}"#).as_bytes(),
    );
    // ChirpStack: lower-case DevEUI, `dimLevel` and a power in watts, and no `time` at all.
    broker.publish(
        "application/7/device/70b3d57ed0000001/event/up",
        br#"{"deviceInfo":{"deviceName":"odengatan-2","devEui":"70b3d57ed0000001"},"fPort":10,"object":{"dimLevel":60,"activePower":42.5,"on":true}}"#,
    );
    // SenML with units: power in W, energy in kWh.
    broker.publish(
        "city/energy/hornsgatan-108",
        br#"[{"bn":"meter-hornsgatan-108:","n":"power","u":"W","v":12500},{"n":"energy","u":"kWh","v":80.5}]"#,
    );
    // A lamp controller that reports only what the twin does not know.
    broker.publish(
        "city/lighting/kista-7",
        br#"[{"bn":"lamp-kista-7:","n":"lux","v":12},{"n":"battery_v","u":"V","v":3.6}]"#,
    );
    update_until(
        &mut app,
        |w| {
            w.get::<AirQualityState>(air).and_then(|a| a.no2).is_some()
                && w.get::<LampState>(lamp).is_some_and(|l| l.on)
                && w.get::<MeterState>(meter).is_some_and(|m| m.power_kw > 0.0)
                && w.get::<Liveness>(kista)
                    .is_some_and(|l| l.unmapped_messages > 0)
        },
        "all four devices heard",
    );
    let w = app.world();
    let a = w.get::<AirQualityState>(air).expect("air");
    assert_eq!(
        (a.no2, a.pm25, a.temperature_c),
        (Some(38.5), Some(11.2), Some(4.5))
    );
    let l = w.get::<LampState>(lamp).expect("lamp");
    assert_eq!((l.dim_pct, l.power_w), (60.0, 42.5));
    let m = w.get::<MeterState>(meter).expect("meter");
    assert!(
        (m.power_kw - 12.5).abs() < 1e-9,
        "12,500 W is 12.5 kW: {m:?}"
    );
    assert!((m.energy_today_kwh - 80.5).abs() < 1e-9, "{m:?}");
    // No time in the payload: applied at its receive time, so live, not 1970.
    let seen = w
        .get::<Liveness>(lamp)
        .and_then(|l| l.last_seen_ms)
        .expect("seen");
    assert!(
        (now_ms() - seen).abs() < 60_000,
        "applied at its receive time, not {}",
        tvilling_sensors::time::format_rfc3339(seen)
    );
    for e in [air, lamp, meter] {
        assert_eq!(w.get::<Liveness>(e).expect("live").health, Health::Live);
    }
    // The unknown fields are counted and named, the device is still 'never seen'.
    let k = w.get::<Liveness>(kista).expect("live");
    assert_eq!(k.health, Health::NeverSeen);
    assert_eq!(k.unmapped_fields, vec!["lux", "battery_v"]);
    let r = rejected(&app);
    assert_eq!(r.get("no_known_field"), Some(&1), "{r:?}");
    assert_eq!(r.values().sum::<u64>(), 1, "nothing else refused: {r:?}");
    assert!(
        last_rejections(&app)
            .iter()
            .any(|l| l.contains("lamp-kista-7") && l.contains("lux, battery_v")),
        "{:?}",
        last_rejections(&app)
    );
    assert!(w.resource::<DeviceRegistry>().unknown.is_empty());
    drop(source);
}

#[test]
fn an_oversized_message_is_refused_and_counted_and_nothing_after_it_is_lost() {
    let broker = Broker::start("oversized");
    let (mut app, source) = twin(&broker, "tvilling-test-oversized", 4096);
    let air = entity(&app, "A1B2C3D4E5F60708");
    let topic = "application/7/device/a1b2c3d4e5f60708/event/up";
    let up = |i: i64| {
        let t = tvilling_sensors::time::format_rfc3339(now_ms() - 120_000 + i * 1000);
        format!(
            r#"{{"time":"{t}","deviceInfo":{{"devEui":"a1b2c3d4e5f60708"}},"object":{{"no2":{i}}}}}"#
        )
    };
    broker.publish_qos0(topic, up(1).as_bytes());
    // 2 MB: over the twin's 4 KiB limit and over what the MQTT client used to accept.
    let mut big = br#"{"deviceInfo":{"devEui":"a1b2c3d4e5f60708"},"object":{"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2_000_000));
    big.extend(br#""}}"#);
    broker.publish_qos0(topic, &big);
    for i in 2..=21 {
        broker.publish_qos0(topic, up(i).as_bytes());
    }
    update_until(
        &mut app,
        |w| {
            w.get::<AirQualityState>(air)
                .is_some_and(|a| a.no2 == Some(21.0))
        },
        "the last good message",
    );
    let values: Vec<f64> =
        recent_series(app.world(), air, tvilling_sensors::registry::Quantity::No2)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
    assert_eq!(
        values,
        (1..=21).map(f64::from).collect::<Vec<_>>(),
        "every good message applied, in order"
    );
    let r = rejected(&app);
    assert_eq!(r.get("oversized"), Some(&1), "{r:?}");
    let last = last_rejections(&app);
    assert!(
        last.iter()
            .any(|l| l.contains(topic) && l.contains(&big.len().to_string())),
        "size and topic kept: {last:?}"
    );
    assert_eq!(source.connects(), 1, "the connection stayed up");
    assert_eq!(source.connection(), Connection::Connected);
    drop(source);
}
