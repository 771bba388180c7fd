//! Applying observations to components, every frame, without waiting on any source.

use bevy::prelude::*;

use crate::ingest::IngestReceiver;
use crate::observation::{DecodeError, FieldValue, Observation};
use crate::registry::{DeviceKind, DeviceRegistry, Quantity};
use crate::state::{
    AirQualityState, Health, History, LampState, Liveness, MeterState, SignalAspect,
    SignalHeadState,
};

/// The channel the sources feed.
#[derive(Resource)]
pub struct Ingest(pub IngestReceiver);

/// System sets of the sensor pipeline, chained in `PreUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorSystems {
    /// Drains the ingest channel and writes components.
    Apply,
    /// Judges health (stale, fault) against the sensor clock.
    Health,
}

/// Observations applied and skipped, for the status bar and tests.
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct ApplyStats {
    pub applied: u64,
    /// Older than the state already applied for that device.
    pub out_of_order: u64,
    pub unknown_device: u64,
}

/// Drains observations into components each frame.
#[derive(Default)]
pub struct SensorApplyPlugin;

impl Plugin for SensorApplyPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<DeviceRegistry>()
            .init_resource::<ApplyStats>()
            .add_observer(crate::state::add_kind_state)
            .add_systems(PreUpdate, apply_observations.in_set(SensorSystems::Apply));
    }
}

/// Converts a field value to a number for `q`, or says why not.
pub fn quantity_value(
    q: Quantity,
    field: &str,
    v: &FieldValue,
    scale: f64,
) -> Result<f64, DecodeError> {
    let wrong = |expected| DecodeError::WrongType {
        field: field.into(),
        expected,
    };
    let value = match (q, v) {
        (Quantity::SignalAspect, FieldValue::Text(t)) => SignalAspect::parse(t)
            .ok_or(wrong(
                "a signal aspect (red, red-amber, green, amber, flashing-amber, dark)",
            ))?
            .code(),
        (Quantity::LampOn | Quantity::LampFault, FieldValue::Text(t)) => {
            match t.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "fault" | "defective" | "broken" => 1.0,
                "off" | "false" | "0" | "ok" => 0.0,
                _ => return Err(wrong("on/off")),
            }
        }
        (_, FieldValue::Text(t)) => t.trim().parse::<f64>().map_err(|_| wrong("a number"))? * scale,
        (_, v) => v.as_f64().ok_or(wrong("a number"))? * scale,
    };
    let (min, max) = q.range();
    if !value.is_finite() || value < min || value > max {
        return Err(DecodeError::OutOfRange {
            field: field.into(),
            value,
            min,
            max,
        });
    }
    Ok(value)
}

fn apply_observations(
    ingest: Option<Res<Ingest>>,
    mut registry: ResMut<DeviceRegistry>,
    mut stats: ResMut<ApplyStats>,
    mut devices: Query<(
        &mut Liveness,
        &mut History,
        Option<&mut SignalHeadState>,
        Option<&mut LampState>,
        Option<&mut MeterState>,
        Option<&mut AirQualityState>,
    )>,
) {
    let Some(ingest) = ingest else { return };
    let batch = ingest.0.drain();
    if batch.is_empty() {
        return;
    }
    let now_ms = batch.iter().filter_map(|o| o.time_ms).max().unwrap_or(0);
    for o in batch {
        let Some(dev) = registry.get(&o.device).cloned() else {
            registry.note_unknown(&o.device);
            stats.unknown_device += 1;
            continue;
        };
        let Ok((mut live, mut history, signal, lamp, meter, air)) = devices.get_mut(dev.entity)
        else {
            continue;
        };
        let t = o.time_ms.unwrap_or(now_ms);
        if live.last_seen_ms.is_some_and(|seen| t < seen) {
            stats.out_of_order += 1;
            continue;
        }
        let values = resolve(&o, &dev.rules, |e| {
            if let Some(s) = ingest.0.stats(&o.source) {
                s.reject(&e, &o.device);
            }
        });
        if values.is_empty() {
            continue;
        }
        write_state(dev.kind, t, &values, signal, lamp, meter, air);
        for (q, v) in &values {
            history.push(t, *q, *v);
        }
        live.last_seen_ms = Some(t);
        live.source = Some(o.source.clone());
        live.health = Health::Live;
        stats.applied += 1;
    }
}

/// The values of an observation under the device's rules (first matching rule per quantity);
/// bad ones are passed to `reject` and left out.
pub fn resolve(
    o: &Observation,
    rules: &[crate::registry::FieldRule],
    mut reject: impl FnMut(DecodeError),
) -> Vec<(Quantity, f64)> {
    let mut out: Vec<(Quantity, f64)> = Vec::new();
    for rule in rules {
        if out.iter().any(|(q, _)| *q == rule.quantity) {
            continue;
        }
        let Some(v) = o.field(&rule.field) else {
            continue;
        };
        match quantity_value(rule.quantity, &rule.field, v, rule.scale) {
            Ok(x) => out.push((rule.quantity, x)),
            Err(e) => reject(e),
        }
    }
    out
}

fn write_state(
    kind: DeviceKind,
    t: i64,
    values: &[(Quantity, f64)],
    signal: Option<Mut<SignalHeadState>>,
    lamp: Option<Mut<LampState>>,
    meter: Option<Mut<MeterState>>,
    air: Option<Mut<AirQualityState>>,
) {
    match kind {
        DeviceKind::SignalHead => {
            if let Some(mut s) = signal {
                for (q, v) in values {
                    if *q == Quantity::SignalAspect
                        && let Some(aspect) = SignalAspect::from_code(*v)
                        && aspect != s.aspect
                    {
                        *s = SignalHeadState {
                            aspect,
                            since_ms: t,
                        };
                    }
                }
            }
        }
        DeviceKind::Lamp => {
            if let Some(mut l) = lamp {
                for (q, v) in values {
                    match q {
                        Quantity::LampOn => l.on = *v >= 0.5,
                        Quantity::LampDimPct => l.dim_pct = *v,
                        Quantity::LampPowerW => l.power_w = *v,
                        Quantity::LampFault => l.fault = *v >= 0.5,
                        _ => {}
                    }
                }
            }
        }
        DeviceKind::Meter => {
            if let Some(mut m) = meter {
                for (q, v) in values {
                    match q {
                        Quantity::PowerKw => m.power_kw = *v,
                        Quantity::EnergyTodayKwh => m.energy_today_kwh = *v,
                        Quantity::HeatingKw => m.heating_kw = Some(*v),
                        _ => {}
                    }
                }
            }
        }
        DeviceKind::AirSensor => {
            if let Some(mut a) = air {
                for (q, v) in values {
                    match q {
                        Quantity::No2 => a.no2 = Some(*v),
                        Quantity::Pm10 => a.pm10 = Some(*v),
                        Quantity::Pm25 => a.pm25 = Some(*v),
                        Quantity::TemperatureC => a.temperature_c = Some(*v),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeContext, PayloadFormat, decode};
    use crate::ingest::{IngestSender, ingest_channel};
    use crate::registry::FieldRule;
    use crate::state::device_bundle;

    fn shared(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/ngsi-ld")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn app() -> (App, IngestSender, [Entity; 4]) {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(SensorApplyPlugin);
        let (tx, rx) = ingest_channel(1024, "mqtt");
        app.insert_resource(Ingest(rx));
        let w = app.world_mut();
        let lamp = w
            .spawn(device_bundle(
                "urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567",
                DeviceKind::Lamp,
            ))
            .id();
        let meter = w
            .spawn(device_bundle(
                "urn:ngsi-ld:ACMeasurement:ACMeasurement:MNCA-ACM-001",
                DeviceKind::Meter,
            ))
            .id();
        let air = w
            .spawn(device_bundle("0101010101010101", DeviceKind::AirSensor))
            .id();
        let signal = w.spawn(device_bundle("sig-1", DeviceKind::SignalHead)).id();
        let mut reg = w.resource_mut::<DeviceRegistry>();
        reg.register(
            "urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567",
            DeviceKind::Lamp,
            lamp,
            vec![],
        );
        reg.register(
            "urn:ngsi-ld:ACMeasurement:ACMeasurement:MNCA-ACM-001",
            DeviceKind::Meter,
            meter,
            vec![],
        );
        reg.register(
            "0101010101010101",
            DeviceKind::AirSensor,
            air,
            vec![FieldRule {
                field: "nitrogen".into(),
                quantity: Quantity::No2,
                scale: 1.0,
            }],
        );
        reg.register("sig-1", DeviceKind::SignalHead, signal, vec![]);
        app.update();
        (app, tx, [lamp, meter, air, signal])
    }

    fn send(tx: &IngestSender, format: PayloadFormat, bytes: &[u8], now_ms: i64) {
        let ctx = DecodeContext {
            now_ms,
            ..Default::default()
        };
        match decode(&format, bytes, &ctx) {
            Ok(obs) => obs.into_iter().for_each(|o| {
                tx.send(o);
            }),
            Err(e) => tx.stats.reject(&e, "test"),
        }
    }

    #[test]
    fn real_payloads_reach_components_with_history_and_liveness() {
        let (mut app, tx, [lamp, meter, air, signal]) = app();
        // Before any message: every device exists, never seen.
        for e in [lamp, meter, air, signal] {
            assert_eq!(
                app.world().get::<Liveness>(e).expect("liveness").health,
                Health::NeverSeen
            );
        }
        let now = crate::time::parse_rfc3339("2026-11-23T12:00:00Z").expect("now");
        send(
            &tx,
            PayloadFormat::NgsiLd,
            &shared("Streetlight.example-normalized.jsonld"),
            now,
        );
        send(
            &tx,
            PayloadFormat::NgsiLd,
            &shared("ACMeasurement.example-normalized.jsonld"),
            now,
        );
        let cs = br#"{"time":"2026-11-23T11:59:00Z","deviceInfo":{"devEui":"0101010101010101"},"object":{"nitrogen":41.5,"pm10":18,"temperature":4.5}}"#;
        send(&tx, PayloadFormat::ChirpStack, cs, now);
        send(
            &tx,
            PayloadFormat::SenMl,
            br#"[{"bn":"sig-1:","n":"state","vs":"red-amber","bt":1795435140}]"#,
            now,
        );
        app.update();

        let l = app.world().get::<LampState>(lamp).expect("lamp");
        assert_eq!(
            (l.on, l.power_w),
            (false, 10.0),
            "FIWARE powerState off, powerConsumption 10 W"
        );
        let m = app.world().get::<MeterState>(meter).expect("meter");
        assert!(
            (m.power_kw - 31.700269531).abs() < 1e-9,
            "totalActivePower W -> kW: {}",
            m.power_kw
        );
        let a = app.world().get::<AirQualityState>(air).expect("air");
        assert_eq!(
            (a.no2, a.pm10, a.temperature_c),
            (Some(41.5), Some(18.0), Some(4.5)),
            "registry rule 'nitrogen' -> NO2"
        );
        let s = app.world().get::<SignalHeadState>(signal).expect("signal");
        assert_eq!(s.aspect, SignalAspect::RedAmber);
        let live = app.world().get::<Liveness>(air).expect("live");
        assert_eq!(
            (live.health, live.source.as_deref()),
            (Health::Live, Some("mqtt"))
        );
        assert_eq!(
            live.last_seen_ms,
            crate::time::parse_rfc3339("2026-11-23T11:59:00Z").ok()
        );
        let h = app.world().get::<History>(air).expect("history");
        assert_eq!(
            h.series(Quantity::No2).collect::<Vec<_>>(),
            vec![(live.last_seen_ms.expect("t"), 41.5)]
        );
        assert_eq!(app.world().resource::<ApplyStats>().applied, 4);
    }

    #[test]
    fn bad_values_unknown_devices_and_stale_messages_never_undo_good_state() {
        let (mut app, tx, [_, _, air, _]) = app();
        let good = br#"{"time":"2026-11-23T11:59:00Z","deviceInfo":{"devEui":"0101010101010101"},"object":{"no2":41.5,"pm10":18}}"#;
        send(&tx, PayloadFormat::ChirpStack, good, 1_795_478_400_000);
        app.update();
        // Out of range NO2 and a word for PM10: both refused with reasons, nothing overwritten.
        let bad = br#"{"time":"2026-11-23T11:59:30Z","deviceInfo":{"devEui":"0101010101010101"},"object":{"no2":-5,"pm10":"lots"}}"#;
        send(&tx, PayloadFormat::ChirpStack, bad, 1_795_478_400_000);
        // An older message arriving late.
        let old = br#"{"time":"2026-11-23T11:00:00Z","deviceInfo":{"devEui":"0101010101010101"},"object":{"no2":99}}"#;
        send(&tx, PayloadFormat::ChirpStack, old, 1_795_478_400_000);
        // Unknown device, malformed JSON.
        send(
            &tx,
            PayloadFormat::ChirpStack,
            br#"{"deviceInfo":{"devEui":"ffffffffffffffff"},"object":{"no2":1}}"#,
            1_795_478_400_000,
        );
        send(&tx, PayloadFormat::ChirpStack, b"{oops", 1_795_478_400_000);
        app.update();
        let a = app.world().get::<AirQualityState>(air).expect("air");
        assert_eq!((a.no2, a.pm10), (Some(41.5), Some(18.0)), "good state kept");
        let stats = tx.stats.rejected();
        assert_eq!(stats.get("out_of_range"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("wrong_type"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("malformed_json"), Some(&1), "{stats:?}");
        let applied = app.world().resource::<ApplyStats>().clone();
        assert_eq!((applied.out_of_order, applied.unknown_device), (1, 1));
        assert_eq!(
            app.world()
                .resource::<DeviceRegistry>()
                .unknown
                .get("FFFFFFFFFFFFFFFF"),
            Some(&1)
        );
        assert!(
            tx.stats.last_rejections().iter().any(|r| r.contains("-5")),
            "{:?}",
            tx.stats.last_rejections()
        );
    }
}
