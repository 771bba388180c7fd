//! Applying observations to components, every frame, without waiting on any source.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use bevy::prelude::*;

use crate::ingest::{IngestReceiver, IngestSender, SourceStats};
use crate::observation::{DecodeError, FieldValue, Observation};
use crate::registry::{CompiledRule, DeviceKind, DeviceRegistry, Quantity};
use crate::state::{
    AirQualityState, Health, LampState, LiveEdge, Liveness, MeterState, SignalAspect,
    SignalHeadState,
};
use crate::update::{Handed, SourceIndex, hand};

/// The channel the sources feed.
#[derive(Resource)]
pub struct Ingest(pub IngestReceiver);

/// Observations from sources stepped by the ECS this frame (the simulator), applied before
/// the channel's, in the order given.
#[derive(Resource, Debug, Default)]
pub struct SteppedInput {
    /// Observations as a payload carried them (resolved under the devices' rules here).
    pub observations: Vec<Observation>,
    /// Updates a stepped source resolved itself (the simulator's typed values: no payload).
    pub updates: Vec<Handed>,
}

/// One value applied to a device (every value, in the order applied): the history records
/// them, the signal metrics integrate aspect changes from them.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct ValueApplied {
    pub entity: Entity,
    pub time_ms: i64,
    pub quantity: Quantity,
    pub value: f64,
}

/// System sets of the sensor pipeline, chained in `PreUpdate`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorSystems {
    /// Stepped sources produce this frame's observations (the simulator).
    Step,
    /// Drains the stepped input and the ingest channel, and writes components.
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
    /// From registered devices, but with no field the device's rules map.
    pub no_known_field: u64,
    /// Redeliveries: the same device, time and values as already applied.
    pub duplicate: u64,
    /// Of those applied, keep-alives: the device is alive, with nothing new.
    pub keep_alive: u64,
}

/// Drains observations into components each frame.
#[derive(Default)]
pub struct SensorApplyPlugin;

impl Plugin for SensorApplyPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<DeviceRegistry>()
            .init_resource::<LiveEdge>()
            .init_resource::<ApplyStats>()
            .init_resource::<SteppedInput>()
            .add_message::<ValueApplied>()
            .configure_sets(
                PreUpdate,
                (SensorSystems::Step, SensorSystems::Apply).chain(),
            )
            .add_observer(crate::state::add_kind_state)
            .add_systems(PreUpdate, apply_observations.in_set(SensorSystems::Apply));
    }
}

/// Connects a new ingest channel to a world: its senders resolve what they send against the
/// world's [`DeviceRegistry`] (created if missing), its receiver becomes the [`Ingest`]
/// resource. Returns the sender of the first source, `name`.
pub fn connect_ingest(world: &mut World, capacity: usize, name: &str) -> IngestSender {
    let directory = world.get_resource_or_init::<DeviceRegistry>().directory();
    let (tx, rx) = crate::ingest::ingest_channel(capacity, name, directory);
    world.insert_resource(Ingest(rx));
    tx
}

/// Converts a field value to a number for `q` (times `scale`, then from `unit` to `q`'s own
/// unit when a unit is given), or says why not.
pub fn quantity_value(
    q: Quantity,
    field: &str,
    v: &FieldValue,
    scale: f64,
    unit: Option<&str>,
) -> Result<f64, DecodeError> {
    let wrong = |expected| DecodeError::WrongType {
        field: field.into(),
        expected,
    };
    let raw = match (q, v) {
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
    let value = match unit.filter(|u| !u.trim().is_empty()) {
        Some(u) => {
            crate::units::convert(raw, u, q).map_err(|reason| DecodeError::UnitMismatch {
                field: field.into(),
                reason,
                expected: q.unit_name(),
            })?
        }
        None => raw,
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

/// A source as one frame of apply sees it: its name and shared counters, and what it counted in
/// this frame (added to the shared atomics once, at the end of the frame, so the ECS and the
/// source's thread do not contend for them on every message).
#[derive(Default)]
struct FrameSource {
    name: String,
    stats: Option<Arc<SourceStats>>,
    applied: u64,
    out_of_order: u64,
    duplicate: u64,
    unknown_device: u64,
    not_applied: u64,
    keep_alive: u64,
}

impl FrameSource {
    fn flush(&self) {
        let Some(s) = &self.stats else {
            return;
        };
        for (counter, n) in [
            (&s.applied, self.applied),
            (&s.out_of_order, self.out_of_order),
            (&s.duplicate, self.duplicate),
            (&s.unknown_device, self.unknown_device),
            (&s.not_applied, self.not_applied),
            (&s.keep_alive, self.keep_alive),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// What apply keeps between frames: its buffers, so a frame allocates nothing.
#[derive(Default)]
struct ApplyBuffers {
    /// The stepped sources' observations, resolved.
    stepped: Vec<Handed>,
    /// The mailbox's (swapped with it each frame).
    handed: Vec<Handed>,
    sources: Vec<FrameSource>,
    unknown: Vec<String>,
    /// This frame's messages, written at once at its end.
    applied: Vec<ValueApplied>,
}

fn apply_observations(
    ingest: Option<Res<Ingest>>,
    mut stepped: ResMut<SteppedInput>,
    mut registry: ResMut<DeviceRegistry>,
    mut stats: ResMut<ApplyStats>,
    clock: Option<Res<crate::clock::TwinClock>>,
    mut out: MessageWriter<ValueApplied>,
    mut buffers: Local<ApplyBuffers>,
    mut edge: ResMut<LiveEdge>,
    mut devices: Query<(
        &mut Liveness,
        Option<&mut SignalHeadState>,
        Option<&mut LampState>,
        Option<&mut MeterState>,
        Option<&mut AirQualityState>,
    )>,
) {
    let ApplyBuffers {
        stepped: stepped_handed,
        handed,
        sources,
        unknown,
        applied: messages,
    } = &mut *buffers;
    stepped_handed.clear();
    handed.clear();
    sources.clear();
    unknown.clear();
    if stepped.observations.is_empty()
        && stepped.updates.is_empty()
        && ingest.as_ref().is_none_or(|i| i.0.is_empty())
    {
        return;
    }
    // The channel's sources by index (read after its senders registered them, before draining).
    if let Some(ingest) = &ingest {
        let table = ingest
            .0
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sources.extend(table.iter().map(|(name, s)| FrameSource {
            name: name.clone(),
            stats: Some(s.clone()),
            ..Default::default()
        }));
    }
    let directory = registry.read();
    // Stepped sources (the simulator) hand raw observations: resolved here, applied first.
    stepped_handed.append(&mut stepped.updates);
    for o in std::mem::take(&mut stepped.observations) {
        let index = match sources.iter().position(|s| s.name == o.source) {
            Some(i) => i,
            None => {
                let stats = ingest.as_ref().and_then(|i| i.0.stats(&o.source));
                sources.push(FrameSource {
                    name: o.source.clone(),
                    stats,
                    ..Default::default()
                });
                sources.len() - 1
            }
        };
        let stats = sources[index].stats.clone();
        let index = SourceIndex::try_from(index).unwrap_or(SourceIndex::MAX);
        stepped_handed.push(hand(o, &directory, index, |e, device| {
            if let Some(s) = &stats {
                s.reject(e, device);
            }
        }));
    }
    if let Some(ingest) = &ingest {
        ingest.0.drain_into(handed);
    }
    // A sender the table did not list yet (never expected): counted under no source.
    let orphan = sources.len();
    sources.push(FrameSource::default());
    // Decoders stamp payloads without a time with their receive time; anything else that
    // arrives without one is taken as of the twin clock's live edge.
    let now_ms = clock.as_ref().map_or_else(
        || {
            (stepped_handed.iter().chain(handed.iter()))
                .filter_map(Handed::time_ms)
                .max()
                .unwrap_or(0)
        },
        |c| c.edge_ms,
    );
    // While someone plays back the past, the components show that past: values are counted
    // and handed on (the history records them) but not written; going live rebuilds the state.
    let record_only = clock.as_ref().is_some_and(|c| !c.is_live());
    // By reference: an update is read once, in place, never moved.
    let mut buf = [(Quantity::SignalAspect, 0.0); crate::update::INLINE_VALUES];
    for h in stepped_handed.iter_mut().chain(handed.iter_mut()) {
        // From a device registered after its source resolved the message: resolved again.
        if let Handed::Unknown(u) = h
            && directory.slot(&u.observation.device).is_some()
        {
            let stats = sources
                .get(usize::from(u.source))
                .and_then(|s| s.stats.clone());
            let again = hand(
                std::mem::take(&mut u.observation),
                &directory,
                u.source,
                |e, device| {
                    if let Some(s) = &stats {
                        s.reject(e, device);
                    }
                },
            );
            *h = again;
        }
        let source = match sources.get_mut(usize::from(h.source())) {
            Some(s) => s,
            None => &mut sources[orphan],
        };
        let u = match h {
            Handed::Update(u) => &*u,
            Handed::Unknown(u) => {
                unknown.push(std::mem::take(&mut u.observation.device));
                stats.unknown_device += 1;
                source.unknown_device += 1;
                continue;
            }
        };
        let Some(dev) = directory.device(u.slot) else {
            stats.unknown_device += 1;
            source.unknown_device += 1;
            continue;
        };
        let Ok((mut live, signal, lamp, meter, air)) = devices.get_mut(dev.entity) else {
            // A registered device whose entity is gone: counted, never silently dropped.
            stats.unknown_device += 1;
            source.unknown_device += 1;
            continue;
        };
        let t = u.time_ms().unwrap_or(now_ms);
        let values = u.values_in(&mut buf);
        if !u.unmapped().is_empty() {
            live.note_unmapped(u.unmapped(), values.is_empty());
        }
        if values.is_empty() {
            source.not_applied += 1;
            if u.refused == 0 {
                // Nothing the twin knows (the reason went to the source's log when resolved).
                stats.no_known_field += 1;
            }
            continue;
        }
        if record_only {
            source.applied += 1;
            messages.extend(applied(dev.entity, t, values));
            stats.applied += 1;
            continue;
        }
        // Values the device already had at that time (an at-least-once redelivery): nothing
        // new. Any other message older than the state applied is out of order.
        let seen = live.last_seen_ms;
        if seen.is_some_and(|seen| t <= seen) && is_duplicate(&edge, u.slot, t, values) {
            stats.duplicate += 1;
            source.duplicate += 1;
            continue;
        }
        if seen.is_some_and(|seen| t < seen) {
            stats.out_of_order += 1;
            source.out_of_order += 1;
            continue;
        }
        source.applied += 1;
        if u.is_keep_alive() {
            source.keep_alive += 1;
            stats.keep_alive += 1;
        }
        write_state(dev.kind, t, values, signal, lamp, meter, air);
        for (q, v) in values {
            edge.push(u.slot, t, *q, *v);
        }
        messages.extend(applied(dev.entity, t, values));
        live.last_seen_ms = Some(t);
        if live.source.as_deref() != Some(source.name.as_str()) {
            live.source = Some(source.name.clone());
        }
        live.health = Health::Live;
        stats.applied += 1;
    }
    stepped_handed.clear();
    handed.clear();
    out.write_batch(messages.drain(..));
    drop(directory);
    for s in sources.iter() {
        s.flush();
    }
    for id in unknown.iter() {
        registry.note_unknown(id);
    }
}

/// The messages for values applied to `entity` at `t`.
fn applied(
    entity: Entity,
    t: i64,
    values: &[(Quantity, f64)],
) -> impl Iterator<Item = ValueApplied> + '_ {
    values.iter().map(move |&(quantity, value)| ValueApplied {
        entity,
        time_ms: t,
        quantity,
        value,
    })
}

/// Whether the device's recent values already hold every one of `values` at time `t`.
fn is_duplicate(edge: &LiveEdge, slot: u32, t: i64, values: &[(Quantity, f64)]) -> bool {
    values.iter().all(|(q, v)| {
        edge.samples(slot)
            .rev()
            .take_while(|(at, _, _)| *at >= t)
            .any(|(at, hq, hv)| at == t && hq == *q && hv == *v)
    })
}

/// What an observation said under a device's rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    /// One value per quantity (the first matching rule wins).
    pub values: Vec<(Quantity, f64)>,
    /// Fields that matched a rule but were refused (each passed to `reject`).
    pub refused: usize,
    /// Names of the fields no rule maps, as the payload wrote them.
    pub unmapped: Vec<String>,
}

/// A payload field as rules see it: `x.value` with `x.unit` / `x.unitCode` beside it is `x`
/// in that unit; SenML units come with the observation.
struct Candidate<'a> {
    name: &'a str,
    /// The name without a `.value` suffix, as written (matched by [`key_match`]).
    base: &'a str,
    value: &'a FieldValue,
    unit: Option<&'a str>,
    used: bool,
    /// `base` as rules compare it (ASCII letters and digits, lower case), when it is ASCII and
    /// short: computed once per field, not once per rule.
    key: Option<([u8; KEY_BUF], u8)>,
}

/// Longest field key kept on the stack; longer ones are compared char by char by
/// [`key_match`].
const KEY_BUF: usize = 128;

/// A field name's rule key, if it is ASCII and fits [`KEY_BUF`].
fn ascii_key(name: &str) -> Option<([u8; KEY_BUF], u8)> {
    if !name.is_ascii() {
        return None;
    }
    let mut buf = [0u8; KEY_BUF];
    let mut n = 0;
    for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
        if n == KEY_BUF {
            return None;
        }
        buf[n] = b.to_ascii_lowercase();
        n += 1;
    }
    Some((buf, n as u8))
}

/// [`key_match`] on a key already normalised by [`ascii_key`].
fn key_match_key(rule: &str, key: &[u8]) -> Option<Option<&'static str>> {
    suffix_unit(key.strip_prefix(rule.as_bytes())?)
}

/// What follows a rule's key in a field's key: nothing (`Some(None)`), or a unit suffix
/// (`Some(Some(unit))`); anything else does not match.
fn suffix_unit(rest: &[u8]) -> Option<Option<&'static str>> {
    if rest.is_empty() {
        return Some(None);
    }
    crate::units::NAME_SUFFIXES
        .iter()
        .find(|(suffix, _)| suffix.as_bytes() == rest)
        .map(|(_, unit)| Some(*unit))
}

fn candidates(o: &Observation) -> Vec<Candidate<'_>> {
    let text = |name: &str| match o.field(name) {
        Some(FieldValue::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    o.fields
        .iter()
        .filter(|(name, _)| !name.ends_with(".unit") && !name.ends_with(".unitCode"))
        .map(|(name, value)| {
            let (base, unit) = match name.strip_suffix(".value") {
                Some(base) => (
                    base,
                    text(&format!("{base}.unit")).or_else(|| text(&format!("{base}.unitCode"))),
                ),
                None => (name.as_str(), None),
            };
            Candidate {
                name,
                base,
                value,
                unit: unit.or_else(|| o.unit(name)),
                used: false,
                key: ascii_key(base),
            }
        })
        .collect()
}

/// Whether a field name matches a rule key: its key ([`crate::registry::field_key`]) equals
/// the rule's, or the rule's followed by a unit suffix (whose unit is returned).
fn key_match(rule: &str, field: &str) -> Option<Option<&'static str>> {
    if let Some((buf, n)) = ascii_key(field) {
        return key_match_key(rule, &buf[..usize::from(n)]);
    }
    // Non-ASCII (or very long) names, char by char.
    let mut chars = field
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase);
    for r in rule.chars() {
        if chars.next()? != r {
            return None;
        }
    }
    // The rest: nothing, or one of the unit suffixes (at most 7 ASCII letters).
    let mut rest = [0u8; 8];
    let mut n = 0;
    for c in chars {
        if n == rest.len() || !c.is_ascii() {
            return None;
        }
        rest[n] = c as u8;
        n += 1;
    }
    suffix_unit(&rest[..n])
}

/// The values of an observation under the device's rules; bad ones are passed to `reject`
/// and left out, fields no rule maps are listed.
pub fn resolve(
    o: &Observation,
    rules: &[CompiledRule],
    mut reject: impl FnMut(DecodeError),
) -> Resolved {
    let mut out = Resolved::default();
    let mut fields = candidates(o);
    for rule in rules {
        let mut done = out.values.iter().any(|(q, _)| *q == rule.rule.quantity);
        for c in fields.iter_mut() {
            let matched = match &c.key {
                Some((buf, n)) => key_match_key(&rule.key, &buf[..usize::from(*n)]),
                None => key_match(&rule.key, c.base),
            };
            let Some(unit_of_suffix) = matched else {
                continue;
            };
            let first = !c.used;
            c.used = true;
            if done || !first {
                continue;
            }
            let unit = c.unit.or(unit_of_suffix).or(rule.rule.unit.as_deref());
            match quantity_value(rule.rule.quantity, c.name, c.value, rule.rule.scale, unit) {
                Ok(x) => {
                    out.values.push((rule.rule.quantity, x));
                    done = true;
                }
                Err(e) => {
                    out.refused += 1;
                    reject(e);
                }
            }
        }
    }
    out.unmapped = fields
        .into_iter()
        .filter(|c| !c.used)
        .map(|c| c.name.to_string())
        .collect();
    out
}

/// Writes values observed at `t` into a device's state components.
pub fn write_state(
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
    use crate::ingest::IngestSender;
    use crate::registry::FieldRule;
    use crate::state::{recent_series, spawn_registered};

    #[test]
    fn field_names_match_rule_keys_in_any_spelling_length_or_script() {
        assert_eq!(key_match("pm25", "PM2.5"), Some(None));
        assert_eq!(key_match("power", "power_kw"), Some(Some("kW")));
        assert_eq!(key_match("power", "powerState"), None);
        assert_eq!(key_match("no2", "NO₂"), None, "a subscript is not a digit");
        // Non-ASCII names go char by char.
        assert_eq!(key_match("temperatur", "Temperatur_°C"), Some(Some("Cel")));
        assert_eq!(key_match("lufttryck", "Lufttryck"), Some(None));
        assert_eq!(key_match("flöde", "Flöde"), Some(None));
        // Longer than the stack key: still matched, char by char.
        let long = format!("{}_power_kw", "vendor".repeat(30));
        let rule = format!("{}power", "vendor".repeat(30));
        assert_eq!(key_match(&rule, &long), Some(Some("kW")));
        assert_eq!(key_match("power", &long), None);
    }

    fn shared(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/ngsi-ld")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The apply plugin fed by an ingest channel whose first source is `mqtt`.
    fn pipeline() -> (App, IngestSender) {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(SensorApplyPlugin);
        let tx = connect_ingest(app.world_mut(), 1024, "mqtt");
        (app, tx)
    }

    fn app() -> (App, IngestSender, [Entity; 4]) {
        let (mut app, tx) = pipeline();
        let w = app.world_mut();
        let lamp = spawn_registered(
            w,
            "urn:ngsi-ld:Streetlight:streetlight:guadalajara:4567",
            DeviceKind::Lamp,
            vec![],
        );
        let meter = spawn_registered(
            w,
            "urn:ngsi-ld:ACMeasurement:ACMeasurement:MNCA-ACM-001",
            DeviceKind::Meter,
            vec![],
        );
        let air = spawn_registered(
            w,
            "0101010101010101",
            DeviceKind::AirSensor,
            vec![FieldRule::new("nitrogen", Quantity::No2)],
        );
        let signal = spawn_registered(w, "sig-1", DeviceKind::SignalHead, vec![]);
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
            Err(e) => tx.stats.refuse(&e, "test"),
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
        assert_eq!(
            recent_series(app.world(), air, Quantity::No2),
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

    fn lamp_app() -> (App, IngestSender, Entity) {
        let (mut app, tx) = pipeline();
        let w = app.world_mut();
        let lamp = spawn_registered(w, "lamp-1", DeviceKind::Lamp, vec![]);
        spawn_registered(w, "meter-1", DeviceKind::Meter, vec![]);
        spawn_registered(w, "air-1", DeviceKind::AirSensor, vec![]);
        app.update();
        (app, tx, lamp)
    }

    fn entity_of(app: &App, id: &str) -> Entity {
        app.world()
            .resource::<DeviceRegistry>()
            .get(id)
            .expect("registered")
            .entity
    }

    #[test]
    fn a_message_with_no_known_field_is_counted_with_the_fields_it_carried() {
        let (mut app, tx, lamp) = lamp_app();
        let payload = br#"[{"bn":"lamp-1:","n":"lux","v":12},{"n":"battery_v","v":3.6}]"#;
        send(&tx, PayloadFormat::SenMl, payload, 1_795_478_400_000);
        app.update();
        let r = tx.stats.rejected();
        assert_eq!(r.get("no_known_field"), Some(&1), "{r:?}");
        let last = tx.stats.last_rejections();
        assert!(
            last.iter()
                .any(|l| l.contains("lamp-1") && l.contains("lux, battery_v")),
            "{last:?}"
        );
        let live = app.world().get::<Liveness>(lamp).expect("live");
        assert_eq!(live.unmapped_fields, vec!["lux", "battery_v"]);
        assert_eq!(live.unmapped_messages, 1);
        assert_eq!(live.health, Health::NeverSeen, "nothing was applied");
        assert_eq!(app.world().resource::<ApplyStats>().no_known_field, 1);
        // A later message with a known field applies; the unknown one stays listed.
        send(
            &tx,
            PayloadFormat::SenMl,
            br#"[{"bn":"lamp-1:","n":"dim_level","v":40},{"n":"lux","v":3}]"#,
            1_795_478_460_000,
        );
        app.update();
        let live = app.world().get::<Liveness>(lamp).expect("live");
        assert_eq!(live.health, Health::Live);
        assert_eq!(live.unmapped_fields, vec!["lux", "battery_v"]);
        assert_eq!(live.unmapped_messages, 1);
        assert_eq!(tx.stats.rejected().get("no_known_field"), Some(&1));
    }

    /// Sends `{fields}` (JSON members) as an observation of `device` at `t`, and applies it.
    fn apply_fields(app: &mut App, tx: &IngestSender, device: &str, t: i64, fields: &str) {
        let mut o = Observation {
            device: device.into(),
            time_ms: Some(t),
            ..Default::default()
        };
        let doc: serde_json::Value = serde_json::from_str(&format!("{{{fields}}}")).expect("json");
        crate::observation::flatten("", &doc, &mut o.fields);
        tx.send(o);
        app.update();
    }

    #[test]
    fn the_spellings_field_decoders_use_all_map() {
        let (mut app, tx, lamp) = lamp_app();
        let (meter, air) = (entity_of(&app, "meter-1"), entity_of(&app, "air-1"));
        let now = 1_795_478_400_000;
        // Lamps: dim_level, dimLevel, dim, DIM-LEVEL; power with and without a unit suffix.
        for (i, (fields, dim, watts)) in [
            (r#""dim_level":10,"power":20"#, 10.0, 20.0),
            (r#""dimLevel":20,"power_w":30"#, 20.0, 30.0),
            (r#""dim":30,"powerW":40"#, 30.0, 40.0),
            (r#""DIM-LEVEL":40,"activePower":50"#, 40.0, 50.0),
            (r#""Dimming Level":50,"power_kw":0.06"#, 50.0, 60.0),
        ]
        .into_iter()
        .enumerate()
        {
            let t = now + i as i64 * 1000;
            apply_fields(&mut app, &tx, "lamp-1", t, fields);
            let l = app.world().get::<LampState>(lamp).expect("lamp");
            assert_eq!(l.dim_pct, dim, "{fields}");
            assert!((l.power_w - watts).abs() < 1e-9, "{fields}: {}", l.power_w);
        }
        // Air: no2 / NO2, pm2_5 / pm25 / PM2.5, temperature / temp, with units beside values.
        for (i, fields) in [
            r#""no2":41,"pm2_5":12,"temp":3.5"#,
            r#""NO2":41,"PM2.5":12,"temperature":3.5"#,
            r#""no2_ugm3":41,"pm25":12,"temperature_c":3.5"#,
            r#""no2":{"value":41,"unit":"µg/m³"},"pm25":{"value":0.012,"unit":"mg/m3"},"temp":{"value":276.65,"unit":"K"}"#,
        ]
        .into_iter()
        .enumerate()
        {
            apply_fields(&mut app, &tx, "air-1", now + i as i64 * 1000, fields);
            let a = app.world().get::<AirQualityState>(air).expect("air");
            let close = |v: Option<f64>, w: f64| v.is_some_and(|v| (v - w).abs() < 1e-9);
            assert!(close(a.no2, 41.0), "{fields}: {a:?}");
            assert!(close(a.pm25, 12.0), "{fields}: {a:?}");
            assert!(close(a.temperature_c, 3.5), "{fields}: {a:?}");
            *app.world_mut().get_mut::<AirQualityState>(air).expect("air") =
                AirQualityState::default();
        }
        // Meters: power (kW), activePower (W), energy (kWh), energy_today_kwh.
        for (i, (fields, kw, kwh)) in [
            (r#""power":12.5,"energy":100"#, 12.5, 100.0),
            (r#""activePower":12500,"energy_today_kwh":100"#, 12.5, 100.0),
            (r#""power_kw":12.5,"energyWh":100000"#, 12.5, 100.0),
        ]
        .into_iter()
        .enumerate()
        {
            apply_fields(&mut app, &tx, "meter-1", now + i as i64 * 1000, fields);
            let m = app.world().get::<MeterState>(meter).expect("meter");
            assert!((m.power_kw - kw).abs() < 1e-9, "{fields}: {m:?}");
            assert!((m.energy_today_kwh - kwh).abs() < 1e-9, "{fields}: {m:?}");
        }
        assert!(
            tx.stats.rejected().is_empty(),
            "{:?}",
            tx.stats.last_rejections()
        );
    }

    #[test]
    fn senml_units_convert_and_a_contradicting_unit_is_refused() {
        let (mut app, tx, _) = lamp_app();
        let meter = entity_of(&app, "meter-1");
        // Sends a SenML pack and returns the meter's state after it is applied.
        let mut after = |pack: &[u8]| {
            send(&tx, PayloadFormat::SenMl, pack, 1_795_478_400_000);
            app.update();
            *app.world().get::<MeterState>(meter).expect("meter")
        };
        let m = after(
            br#"[{"bn":"meter-1:","bt":1795478400,"n":"power","u":"W","v":2500},{"n":"energy","u":"Wh","v":12000}]"#,
        );
        assert!((m.power_kw - 2.5).abs() < 1e-9, "W -> kW: {m:?}");
        assert!((m.energy_today_kwh - 12.0).abs() < 1e-9, "Wh -> kWh: {m:?}");
        let m = after(br#"[{"bn":"meter-1:","bt":1795478401,"bu":"kW","n":"power","v":3.5}]"#);
        assert!((m.power_kw - 3.5).abs() < 1e-9, "kW as base unit: {m:?}");
        // A power in degrees Celsius: refused with its reason, the good value kept.
        let m = after(br#"[{"bn":"meter-1:","bt":1795478402,"n":"power","u":"Cel","v":21}]"#);
        assert!((m.power_kw - 3.5).abs() < 1e-9, "{m:?}");
        let r = tx.stats.rejected();
        assert_eq!(r.get("unit_mismatch"), Some(&1), "{r:?}");
        assert_eq!(
            r.get("no_known_field"),
            None,
            "a refused field is not 'unknown'"
        );
        assert!(
            tx.stats
                .last_rejections()
                .iter()
                .any(|l| l.contains("Cel") && l.contains("power")),
            "{:?}",
            tx.stats.last_rejections()
        );
    }

    #[test]
    fn a_payload_without_a_time_is_applied_at_its_receive_time() {
        let (mut app, tx, _) = lamp_app();
        let air = entity_of(&app, "air-1");
        let received = 1_795_478_400_000;
        // ChirpStack without `time` (its id written as the registry's).
        let mut o = crate::codec::decode(
            &PayloadFormat::Plain(crate::codec::PlainMapping {
                device_path: "dev".into(),
                time_path: None,
                fields: vec![("no2".into(), "n".into())],
            }),
            br#"{"dev":"air-1","n":33}"#,
            &DecodeContext {
                now_ms: received,
                ..Default::default()
            },
        )
        .expect("decoded");
        assert_eq!(o[0].time_ms, Some(received));
        tx.send(o.remove(0));
        app.update();
        let live = app.world().get::<Liveness>(air).expect("live");
        assert_eq!(live.last_seen_ms, Some(received), "not 1970");
        assert_eq!(
            app.world().get::<AirQualityState>(air).expect("air").no2,
            Some(33.0)
        );
    }

    #[test]
    fn eui_ids_match_in_either_case_and_separator_style() {
        let (mut app, tx) = pipeline();
        let w = app.world_mut();
        // Registered as ChirpStack shows it (lower case) and as a console shows it with dashes.
        let a = spawn_registered(w, "a1b2c3d4e5f60708", DeviceKind::AirSensor, vec![]);
        let b = spawn_registered(w, "70-B3-D5-7E-D0-00-00-01", DeviceKind::AirSensor, vec![]);
        app.update();
        assert_eq!(
            app.world()
                .get::<crate::state::Device>(a)
                .expect("device")
                .id,
            "A1B2C3D4E5F60708",
            "shown one way"
        );
        // The Things Stack writes upper case; a SenML base name may be lower case.
        let tts = br#"{"end_device_ids":{"dev_eui":"A1B2C3D4E5F60708"},"uplink_message":{"decoded_payload":{"no2":20}}}"#;
        send(&tx, PayloadFormat::TheThingsStack, tts, 1_795_478_400_000);
        let senml = br#"[{"bn":"70b3d57ed0000001:","n":"no2","v":30}]"#;
        send(&tx, PayloadFormat::SenMl, senml, 1_795_478_400_000);
        app.update();
        let no2 = |e| app.world().get::<AirQualityState>(e).expect("air").no2;
        assert_eq!((no2(a), no2(b)), (Some(20.0), Some(30.0)));
        assert_eq!(app.world().resource::<ApplyStats>().unknown_device, 0);
    }

    #[test]
    fn a_device_registered_after_its_message_was_sent_still_gets_it() {
        let (mut app, tx) = pipeline();
        let meter = |id: &str, kw: f64| Observation {
            device: id.into(),
            time_ms: Some(1_795_478_400_000),
            fields: vec![("power".into(), FieldValue::Number(kw))],
            ..Default::default()
        };
        // Resolved by the source before either device exists.
        tx.send(meter("late-1", 3.5));
        tx.send(meter("never-1", 1.0));
        let late = spawn_registered(app.world_mut(), "late-1", DeviceKind::Meter, vec![]);
        app.update();
        let w = app.world();
        assert_eq!(w.get::<MeterState>(late).expect("meter").power_kw, 3.5);
        let stats = w.resource::<ApplyStats>();
        assert_eq!((stats.applied, stats.unknown_device), (1, 1));
        let registry = w.resource::<DeviceRegistry>();
        assert_eq!(
            registry.unknown.keys().collect::<Vec<_>>(),
            vec!["never-1"],
            "only the device nobody registered is listed"
        );
    }

    #[test]
    fn every_message_ends_in_exactly_one_account() {
        use std::sync::atomic::Ordering::Relaxed;
        let (mut app, tx, _) = lamp_app();
        let now = 1_795_478_400_000;
        let up = |no2: u32, time: &str| {
            format!(
                r#"{{"time":"{time}","deviceInfo":{{"devEui":"0101010101010101"}},"object":{{"no2":{no2}}}}}"#
            )
        };
        let reg_air = entity_of(&app, "air-1");
        crate::state::register_entity(
            app.world_mut(),
            reg_air,
            "0101010101010101",
            DeviceKind::AirSensor,
            vec![],
        );
        let sent: Vec<Vec<u8>> = vec![
            up(10, "2026-11-23T12:00:00Z").into_bytes(),
            up(10, "2026-11-23T12:00:00Z").into_bytes(), // redelivered: a duplicate
            up(11, "2026-11-23T11:00:00Z").into_bytes(), // older: out of order
            up(12, "2026-11-23T12:00:01Z").into_bytes(), // applied
            br#"{"deviceInfo":{"devEui":"ffffffffffffffff"},"object":{"no2":1}}"#.to_vec(),
            br#"{"deviceInfo":{"devEui":"0101010101010101"},"object":{"lux":1}}"#.to_vec(),
            b"{oops".to_vec(),
        ];
        for p in &sent {
            send(&tx, PayloadFormat::ChirpStack, p, now);
            app.update();
        }
        let s = &tx.stats;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        assert_eq!(
            (
                n(&s.applied),
                n(&s.duplicate),
                n(&s.out_of_order),
                n(&s.unknown_device),
                n(&s.not_applied),
                n(&s.refused_messages)
            ),
            (2, 1, 1, 1, 1, 1)
        );
        let accounted = n(&s.applied)
            + n(&s.superseded)
            + n(&s.out_of_order)
            + n(&s.duplicate)
            + n(&s.unknown_device)
            + n(&s.not_applied);
        assert_eq!(accounted, n(&s.accepted));
        assert_eq!(n(&s.accepted) + n(&s.refused_messages), sent.len() as u64);
        assert_eq!(
            recent_series(app.world(), reg_air, Quantity::No2)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>(),
            vec![10.0, 12.0],
            "the duplicate and the older message changed nothing"
        );
    }
}
