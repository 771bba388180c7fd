//! Alarms as model state. Each frame at the live edge, devices whose liveness or air quality
//! changed are judged: a device in fault, silent for longer than expected, or reading above a
//! limit value ([`crate::limits`]) has an alarm. An alarm is raised once, with the twin time it
//! started, and cleared with the time it ended; each change is an [`AlarmChanged`] message
//! (the history records them) and a line of the in-memory [`Alarms::log`].

use std::collections::{BTreeMap, VecDeque};

use bevy::prelude::*;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::state::{AirQualityState, Device, Health, Liveness};

use crate::limits::{Pollutant, exceedances};

/// How bad an alarm is (ordered: the worst last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Silent longer than expected.
    Stale,
    /// A limit value exceeded.
    Exceedance,
    /// A device in fault.
    Fault,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Stale => "stale",
            Severity::Exceedance => "exceedance",
            Severity::Fault => "fault",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [Severity::Stale, Severity::Exceedance, Severity::Fault]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What an alarm is about: two judgements with the same cause are one alarm going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cause {
    pub severity: Severity,
    pub pollutant: Option<Pollutant>,
}

/// One active alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub device: String,
    pub entity: Entity,
    pub cause: Cause,
    /// What is wrong, in words (as judged when raised, then kept current).
    pub text: String,
    /// When it was raised, twin time (Unix ms).
    pub raised_ms: i64,
}

/// An alarm raised or cleared.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct AlarmChanged {
    pub at_ms: i64,
    pub device: String,
    pub severity: Severity,
    pub text: String,
    /// `true`: raised; `false`: cleared.
    pub raised: bool,
}

/// Active alarms by device, the recent changes, and counters.
#[derive(Resource, Debug, Clone, Default)]
pub struct Alarms {
    pub active: BTreeMap<String, Alarm>,
    /// The most recent changes, oldest first (at most [`Alarms::LOG_CAPACITY`]; the history
    /// keeps all of them).
    pub log: VecDeque<AlarmChanged>,
    pub raised_total: u64,
    pub cleared_total: u64,
}

impl Alarms {
    pub const LOG_CAPACITY: usize = 10_000;

    fn note(&mut self, change: AlarmChanged) {
        if change.raised {
            self.raised_total += 1;
        } else {
            self.cleared_total += 1;
        }
        if self.log.len() == Self::LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(change);
    }

    /// Active alarms, most severe first, then newest first, then by device.
    pub fn ordered(&self) -> Vec<&Alarm> {
        let mut v: Vec<&Alarm> = self.active.values().collect();
        v.sort_by(|a, b| {
            b.cause
                .severity
                .cmp(&a.cause.severity)
                .then(b.raised_ms.cmp(&a.raised_ms))
                .then(a.device.cmp(&b.device))
        });
        v
    }
}

/// The alarm a device's state calls for, if any.
pub fn judge(live: &Liveness, air: Option<&AirQualityState>) -> Option<(Cause, String)> {
    let cause = |severity, pollutant| Cause {
        severity,
        pollutant,
    };
    match live.health {
        Health::Fault => Some((
            cause(Severity::Fault, None),
            live.fault.clone().unwrap_or_else(|| "fault".into()),
        )),
        Health::Stale => Some((
            cause(Severity::Stale, None),
            "silent longer than expected".into(),
        )),
        Health::Live | Health::NeverSeen => {
            let ex = air.map(exceedances).unwrap_or_default();
            let (limit, v) = ex.first()?;
            Some((
                cause(Severity::Exceedance, Some(limit.pollutant)),
                format!(
                    "{} {v:.0} µg/m³, limit {:.0} µg/m³ ({})",
                    limit.pollutant.as_str(),
                    limit.ugm3,
                    limit.averaging
                ),
            ))
        }
    }
}

/// Raises and clears alarms for devices whose state changed (live edge only: in playback the
/// state shown is the past, and the alarms of that moment come from the history).
pub fn derive_alarms(
    clock: Res<TwinClock>,
    mut alarms: ResMut<Alarms>,
    devices: Query<
        (Entity, &Device, &Liveness, Option<&AirQualityState>),
        Or<(Changed<Liveness>, Changed<AirQualityState>)>,
    >,
    mut changes: MessageWriter<AlarmChanged>,
) {
    if !clock.is_live() {
        return;
    }
    let now = clock.now_ms;
    for (entity, device, live, air) in &devices {
        let want = judge(live, air);
        let have = alarms.active.get(&device.id).map(|a| a.cause);
        match (have, want) {
            (Some(have), Some((cause, text))) if have == cause => {
                if let Some(a) = alarms.active.get_mut(&device.id)
                    && a.text != text
                {
                    a.text = text;
                }
            }
            (have, want) => {
                if have.is_some()
                    && let Some(old) = alarms.active.remove(&device.id)
                {
                    let change = AlarmChanged {
                        at_ms: now,
                        device: old.device,
                        severity: old.cause.severity,
                        text: old.text,
                        raised: false,
                    };
                    changes.write(change.clone());
                    alarms.note(change);
                }
                if let Some((cause, text)) = want {
                    let change = AlarmChanged {
                        at_ms: now,
                        device: device.id.clone(),
                        severity: cause.severity,
                        text: text.clone(),
                        raised: true,
                    };
                    alarms.active.insert(
                        device.id.clone(),
                        Alarm {
                            device: device.id.clone(),
                            entity,
                            cause,
                            text,
                            raised_ms: now,
                        },
                    );
                    changes.write(change.clone());
                    alarms.note(change);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_sensors::registry::DeviceKind;
    use tvilling_sensors::state::device_bundle;

    #[test]
    fn an_alarm_is_raised_once_and_cleared_with_its_times() {
        let mut app = App::new();
        app.add_plugins(tvilling_sensors::apply::SensorApplyPlugin)
            .add_message::<AlarmChanged>()
            .init_resource::<Alarms>()
            .insert_resource(TwinClock::held(1_000))
            .add_systems(Update, derive_alarms);
        let air = app
            .world_mut()
            .spawn(device_bundle("air-1", DeviceKind::AirSensor))
            .id();
        let set = |app: &mut App, no2: f64, t: i64| {
            app.world_mut().resource_mut::<TwinClock>().set(t);
            let mut a = app
                .world_mut()
                .get_mut::<AirQualityState>(air)
                .expect("air");
            a.no2 = Some(no2);
            app.world_mut().get_mut::<Liveness>(air).expect("l").health = Health::Live;
            app.update();
        };
        set(&mut app, 40.0, 1_000);
        assert!(app.world().resource::<Alarms>().active.is_empty());
        set(&mut app, 120.0, 2_000);
        set(&mut app, 130.0, 3_000);
        let alarms = app.world().resource::<Alarms>();
        let a = &alarms.active["air-1"];
        assert_eq!(a.raised_ms, 2_000, "raised once, when it began");
        assert!(a.text.contains("130"), "{}", a.text);
        assert_eq!(alarms.raised_total, 1);
        set(&mut app, 30.0, 4_000);
        let alarms = app.world().resource::<Alarms>();
        assert!(alarms.active.is_empty());
        let log: Vec<(i64, bool)> = alarms.log.iter().map(|c| (c.at_ms, c.raised)).collect();
        assert_eq!(log, [(2_000, true), (4_000, false)]);
        // A fault replaces the exceedance: one cleared, one raised.
        app.world_mut().resource_mut::<TwinClock>().set(5_000);
        {
            let mut l = app.world_mut().get_mut::<Liveness>(air).expect("l");
            l.health = Health::Fault;
            l.fault = Some("sensor error".into());
        }
        app.update();
        let alarms = app.world().resource::<Alarms>();
        assert_eq!(alarms.active["air-1"].cause.severity, Severity::Fault);
        assert_eq!(alarms.active["air-1"].raised_ms, 5_000);
    }

    #[test]
    fn in_playback_no_alarm_changes() {
        let mut app = App::new();
        let mut clock = TwinClock::held(10_000);
        clock.play_back(5_000, 1.0, true);
        app.add_plugins(tvilling_sensors::apply::SensorApplyPlugin)
            .add_message::<AlarmChanged>()
            .init_resource::<Alarms>()
            .insert_resource(clock)
            .add_systems(Update, derive_alarms);
        let d = app
            .world_mut()
            .spawn(device_bundle("l", DeviceKind::Lamp))
            .id();
        app.world_mut().get_mut::<Liveness>(d).expect("l").health = Health::Stale;
        app.update();
        assert!(app.world().resource::<Alarms>().active.is_empty());
    }
}
