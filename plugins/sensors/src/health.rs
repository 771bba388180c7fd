//! Health: a device is stale when silent for longer than its kind's expected interval times a
//! factor; a lamp that reports itself faulty, is off while the sun is down, or draws power while
//! off is in fault. Runs after apply each frame at the twin clock's shown moment.

use bevy::prelude::*;
use tvilling_geo::sun::{STOCKHOLM_LAT_LON, sun_position};

use crate::apply::SensorSystems;
use crate::clock::{ClockPlugin, TwinClock};
use crate::registry::DeviceKind;
use crate::state::{Device, Health, LampState, Liveness};

/// Health settings (config).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct HealthRules {
    /// Expected reporting interval per kind, seconds.
    pub interval_s: [(DeviceKind, f64); 4],
    /// Stale after `interval × factor` of silence.
    pub stale_factor: f64,
    /// A lamp should be on when the sun is below this elevation (degrees). -2 is past sunset
    /// (-0.83) with a margin for photocell delays.
    pub lamp_on_below_deg: f64,
    /// Power a lamp may draw while off (driver standby), W.
    pub lamp_standby_w: f64,
    /// Where the sun is judged (the city centre).
    pub lat_lon: (f64, f64),
}

impl Default for HealthRules {
    fn default() -> Self {
        Self {
            interval_s: [
                // Heads report each change (a phase lasts up to a minute), and a controller's
                // watchdog runs on that scale: stale after a minute of silence.
                (DeviceKind::SignalHead, 20.0),
                (DeviceKind::Lamp, 900.0),
                (DeviceKind::Meter, 900.0),
                (DeviceKind::AirSensor, 600.0),
            ],
            stale_factor: 3.0,
            lamp_on_below_deg: -2.0,
            lamp_standby_w: 2.0,
            lat_lon: STOCKHOLM_LAT_LON,
        }
    }
}

impl HealthRules {
    pub fn interval_ms(&self, kind: DeviceKind) -> i64 {
        let s = self
            .interval_s
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(900.0, |(_, s)| *s);
        (s * 1000.0) as i64
    }
}

/// The fault of a lamp in its state at `sun_elevation_deg`, if any.
pub fn lamp_fault(lamp: &LampState, sun_elevation_deg: f64, rules: &HealthRules) -> Option<String> {
    if lamp.fault {
        return Some("the lamp reports a fault".into());
    }
    if !lamp.on && sun_elevation_deg < rules.lamp_on_below_deg {
        return Some(format!(
            "off while the sun is down ({sun_elevation_deg:.1}° elevation)"
        ));
    }
    if !lamp.on && lamp.power_w > rules.lamp_standby_w {
        return Some(format!("drawing {:.1} W while off", lamp.power_w));
    }
    None
}

/// Sources that are down now, by name, with why (set from the sources' connection states).
/// Every device a down source feeds is stale at once, with the reason, however recently it
/// was heard: its value is no longer being kept current.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct SourcesDown(pub std::collections::BTreeMap<String, String>);

/// Keeps [`Liveness::health`] up to date against [`TwinClock`].
#[derive(Default)]
pub struct HealthPlugin;

impl Plugin for HealthPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<ClockPlugin>() {
            app.add_plugins(ClockPlugin);
        }
        app.init_resource::<HealthRules>()
            .init_resource::<SourcesDown>()
            .configure_sets(PreUpdate, SensorSystems::Health.after(SensorSystems::Apply))
            .add_systems(PreUpdate, judge_health.in_set(SensorSystems::Health));
    }
}

/// What health judged every device against last, and when each live device turns stale: a
/// frame judges again only the devices whose state changed or whose silence ran out, and every
/// device when the basis changes (the sun crossing the lamps' threshold, a source going down or
/// up, the rules, the clock's speed, playback).
#[derive(Default)]
struct HealthBasis {
    judged_once: bool,
    dark: bool,
    down: std::collections::BTreeMap<String, String>,
    speed: f64,
    /// When each judged device's silence runs out, per kind (an interval of its own): in the
    /// order judged, which is the order heard within a frame's span (entries may be outdated:
    /// those devices are judged again; a device turns stale at most a frame late).
    stale_at: [std::collections::VecDeque<(i64, Entity)>; 4],
    /// This frame's new entries, sorted before they join.
    pushed: Vec<(usize, i64, Entity)>,
    due: bevy::ecs::entity::EntityHashSet,
}

/// How long a device of `kind` may be silent before it is stale, ms.
fn allowance_ms(rules: &HealthRules, kind: DeviceKind, speed: f64) -> i64 {
    // A clock faster than real time moves further between two frames than a device's interval
    // allows: two real seconds of silence never count.
    (rules.interval_ms(kind) as f64 * rules.stale_factor).max(speed * 2000.0) as i64
}

fn judge_health(
    clock: Res<TwinClock>,
    rules: Res<HealthRules>,
    down: Option<Res<SourcesDown>>,
    mut basis: Local<HealthBasis>,
    mut devices: Query<(Entity, &Device, &mut Liveness, Option<Ref<LampState>>)>,
) {
    // A source's state is the live edge's: in playback the recorded values stand as they were.
    let down = down.filter(|_| clock.is_live());
    let sun = sun_position(
        rules.lat_lon.0,
        rules.lat_lon.1,
        clock.now_ms.div_euclid(1000),
    )
    .elevation_deg;
    let dark = sun < rules.lamp_on_below_deg;
    let empty = std::collections::BTreeMap::new();
    let down_now = down.as_ref().map_or(&empty, |d| &d.0);
    let speed = clock.speed();
    let basis = &mut *basis;
    let full = !basis.judged_once
        || !clock.is_live()
        || rules.is_changed()
        || dark != basis.dark
        || *down_now != basis.down
        || speed != basis.speed;
    if full {
        basis.judged_once = true;
        basis.dark = dark;
        basis.down.clone_from(down_now);
        basis.speed = speed;
        for q in &mut basis.stale_at {
            q.clear();
        }
    }
    basis.due.clear();
    for q in &mut basis.stale_at {
        while let Some(&(t, e)) = q.front() {
            if t > clock.now_ms {
                break;
            }
            q.pop_front();
            basis.due.insert(e);
        }
    }
    for (entity, device, mut live, lamp) in &mut devices {
        if !(full
            || live.is_changed()
            || lamp.as_ref().is_some_and(Ref::is_changed)
            || basis.due.contains(&entity))
        {
            continue;
        }
        let source_down = live.source.as_ref().and_then(|s| down_now.get(s).cloned());
        let allowance = allowance_ms(&rules, device.kind, speed);
        let (health, fault) = match live.last_seen_ms {
            None => (Health::NeverSeen, None),
            Some(_) if source_down.is_some() => (Health::Stale, None),
            Some(seen) if clock.now_ms - seen > allowance => (Health::Stale, None),
            Some(seen) => {
                basis
                    .pushed
                    .push((kind_index(device.kind), seen + allowance + 1, entity));
                match lamp.and_then(|l| lamp_fault(&l, sun, &rules)) {
                    Some(reason) => (Health::Fault, Some(reason)),
                    None => (Health::Live, None),
                }
            }
        };
        // Write only on change, so change detection means "health changed".
        if live.health != health || live.fault != fault || live.source_down != source_down {
            live.health = health;
            live.fault = fault;
            live.source_down = source_down;
        }
    }
    basis.pushed.sort_unstable_by_key(|&(k, t, e)| (k, t, e));
    let HealthBasis {
        pushed, stale_at, ..
    } = basis;
    for (k, t, e) in pushed.drain(..) {
        stale_at[k].push_back((t, e));
    }
}

fn kind_index(kind: DeviceKind) -> usize {
    match kind {
        DeviceKind::SignalHead => 0,
        DeviceKind::Lamp => 1,
        DeviceKind::Meter => 2,
        DeviceKind::AirSensor => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::SensorApplyPlugin;
    use crate::state::device_bundle;
    use tvilling_geo::sun::unix_seconds;

    fn app(now_ms: i64) -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins((SensorApplyPlugin, HealthPlugin));
        app.insert_resource(TwinClock::held(now_ms));
        app
    }

    #[test]
    fn a_fast_clock_allows_two_real_seconds_of_silence() {
        let mut app = app(1_000_000);
        let head = app
            .world_mut()
            .spawn(device_bundle("s", DeviceKind::SignalHead))
            .id();
        app.world_mut()
            .get_mut::<Liveness>(head)
            .expect("live")
            .last_seen_ms = Some(930_000);
        app.update();
        // Silent 70 s at 1x: past 20 s × 3.
        assert_eq!(
            app.world().get::<Liveness>(head).expect("live").health,
            Health::Stale
        );
        // At 300x a frame moves minutes of simulated time: 70 s is within 2 real s.
        app.world_mut().resource_mut::<TwinClock>().edge =
            crate::clock::Edge::Simulated(Some(300.0));
        app.update();
        assert_eq!(
            app.world().get::<Liveness>(head).expect("live").health,
            Health::Live
        );
    }

    #[test]
    fn a_down_source_makes_every_device_it_feeds_stale_with_the_reason() {
        let now = 1_000_000_000;
        let mut app = app(now);
        let fed = |app: &mut App, id: &str, source: &str| {
            let e = app
                .world_mut()
                .spawn(device_bundle(id, DeviceKind::AirSensor))
                .id();
            let mut l = app.world_mut().get_mut::<Liveness>(e).expect("l");
            l.last_seen_ms = Some(now - 1_000);
            l.source = Some(source.into());
            e
        };
        let a = fed(&mut app, "air/a", "mqtt-city");
        let b = fed(&mut app, "air/b", "http-sta");
        let state = |app: &App, e| {
            let l = app.world().get::<Liveness>(e).expect("l");
            (l.health, l.source_down.clone())
        };
        app.update();
        assert_eq!(state(&app, a), (Health::Live, None));
        app.world_mut()
            .resource_mut::<SourcesDown>()
            .0
            .insert("mqtt-city".into(), "connection refused".into());
        app.update();
        assert_eq!(
            state(&app, a),
            (Health::Stale, Some("connection refused".into())),
            "heard a second ago, but its source is down"
        );
        assert_eq!(state(&app, b), (Health::Live, None), "another source's");
        // Played back, the recorded moment stands as it was.
        app.world_mut()
            .resource_mut::<TwinClock>()
            .play_back(now - 500, 1.0, true);
        app.update();
        assert_eq!(state(&app, a), (Health::Live, None));
        // Live again and the source back: live.
        app.world_mut().insert_resource(TwinClock::held(now));
        app.world_mut().resource_mut::<SourcesDown>().0.clear();
        app.update();
        assert_eq!(state(&app, a), (Health::Live, None));
    }

    #[test]
    fn silence_makes_a_device_stale_and_a_message_makes_it_live() {
        let noon = unix_seconds(2026, 6, 21, 11, 0) * 1000;
        let mut app = app(noon);
        let meter = app
            .world_mut()
            .spawn(device_bundle("m1", DeviceKind::Meter))
            .id();
        app.update();
        assert_eq!(
            app.world().get::<Liveness>(meter).expect("l").health,
            Health::NeverSeen
        );
        app.world_mut()
            .get_mut::<Liveness>(meter)
            .expect("l")
            .last_seen_ms = Some(noon - 10 * 60_000);
        app.update();
        assert_eq!(
            app.world().get::<Liveness>(meter).expect("l").health,
            Health::Live,
            "10 min < 3 x 15 min"
        );
        app.world_mut()
            .resource_mut::<TwinClock>()
            .set(noon + 40 * 60_000);
        app.update();
        assert_eq!(
            app.world().get::<Liveness>(meter).expect("l").health,
            Health::Stale,
            "50 min of silence > 45 min"
        );
    }

    #[test]
    fn lamp_faults_follow_the_sun_and_the_power_draw() {
        let rules = HealthRules::default();
        let off = LampState {
            on: false,
            ..Default::default()
        };
        assert!(
            lamp_fault(&off, 30.0, &rules).is_none(),
            "off by day is fine"
        );
        assert!(
            lamp_fault(&off, -8.0, &rules)
                .expect("fault")
                .contains("sun is down")
        );
        let leaking = LampState {
            on: false,
            power_w: 35.0,
            ..Default::default()
        };
        assert!(
            lamp_fault(&leaking, 30.0, &rules)
                .expect("fault")
                .contains("35.0 W")
        );
        let on = LampState {
            on: true,
            dim_pct: 50.0,
            power_w: 20.0,
            fault: false,
        };
        assert!(lamp_fault(&on, -8.0, &rules).is_none());

        // Through the plugin: a lamp off at midnight in December in Stockholm is in fault.
        let midnight = unix_seconds(2026, 12, 21, 23, 0) * 1000;
        let mut app = app(midnight);
        let lamp = app
            .world_mut()
            .spawn(device_bundle("l1", DeviceKind::Lamp))
            .id();
        app.update();
        app.world_mut()
            .get_mut::<Liveness>(lamp)
            .expect("l")
            .last_seen_ms = Some(midnight - 60_000);
        app.update();
        let live = app.world().get::<Liveness>(lamp).expect("l").clone();
        assert_eq!(live.health, Health::Fault);
        assert!(live.fault.expect("reason").contains("sun is down"));
        // Switched on: healthy again.
        app.world_mut().get_mut::<LampState>(lamp).expect("lamp").on = true;
        app.update();
        assert_eq!(
            app.world().get::<Liveness>(lamp).expect("l").health,
            Health::Live
        );
    }
}
