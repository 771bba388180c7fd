//! Render on change: the wake plan of a still city, a change, and things that move
//! (`tvilling::idle`, as the window uses it).

use bevy::prelude::*;
use tvilling::idle::{IdlePlugin, MAX_WAIT, WakePlan};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::state::{Health, Liveness, SignalHeadState, device_bundle};

/// Health rules with a signal head expected every 5 s (a configured control room's), so it
/// turns stale within the longest wait.
fn rules() -> HealthRules {
    let mut rules = HealthRules::default();
    for (kind, s) in &mut rules.interval_s {
        if *kind == DeviceKind::SignalHead {
            *s = 5.0;
        }
    }
    rules
}

fn app(clock: TwinClock) -> App {
    let mut app = App::new();
    app.add_plugins(tvilling_sensors::apply::SensorApplyPlugin)
        .insert_resource(clock)
        .insert_resource(rules())
        .add_plugins(IdlePlugin { window: false });
    app
}

#[test]
fn a_still_city_requests_no_redraw_and_a_change_requests_one() {
    let t0 = 1_795_435_200_000;
    let mut a = app(TwinClock::held(t0));
    let head = a
        .world_mut()
        .spawn(device_bundle("head-1", DeviceKind::SignalHead))
        .id();
    a.update();
    let settle = a.world().resource::<WakePlan>().requested;
    for _ in 0..50 {
        a.update();
    }
    let plan = a.world().resource::<WakePlan>().clone();
    assert_eq!(
        plan.requested, settle,
        "no redraw over 50 ticks of a still city"
    );
    assert_eq!(plan.continuous, None);
    assert_eq!((plan.wait, plan.reason), (MAX_WAIT, "the clocks shown"));
    // A value arrives: one redraw, then still again.
    a.world_mut()
        .get_mut::<SignalHeadState>(head)
        .expect("head")
        .since_ms = t0;
    {
        let mut l = a.world_mut().get_mut::<Liveness>(head).expect("l");
        l.last_seen_ms = Some(t0);
        l.health = Health::Live;
    }
    a.update();
    a.update();
    let plan = a.world().resource::<WakePlan>().clone();
    assert_eq!(plan.requested, settle + 1);
    // The live head turns stale after its interval x the factor (15 s): the app wakes
    // then, not before.
    let rules = rules();
    let allowance = rules.interval_ms(DeviceKind::SignalHead) as f64 * rules.stale_factor;
    assert_eq!(plan.reason, "a device would turn stale");
    assert_eq!(plan.wait.as_millis() as f64, allowance + 1.0);
}

#[test]
fn moving_things_redraw_continuously() {
    let mut clock = TwinClock::held(1_000_000);
    clock.play_back(500_000, 1.0, false);
    let mut a = app(clock);
    a.update();
    a.update();
    let plan = a.world().resource::<WakePlan>();
    assert_eq!(plan.continuous, Some("playback is playing"));
    assert_eq!(plan.requested, 2);
}
