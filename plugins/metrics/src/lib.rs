//! What the city's state adds up to, as model state: metrics integrated over twin time and
//! alarms raised and cleared at twin times. Render-free; panels only draw them.
//!
//! - [`limits`]: the Swedish limit values for outdoor air (SFS 2010:477), defined once.
//! - [`alarms`]: [`alarms::Alarms`] (active alarms, the recent log) and
//!   [`alarms::AlarmChanged`] messages, derived from health and the limits.
//! - [`lifecycle`]: alarm management after ISA-18.2 (priorities by rule, acknowledgement,
//!   shelving, flood and chatter, the audit's transitions), a pure model.
//! - [`metrics`]: [`metrics::CityMetrics`], restarted at local midnight and on
//!   [`metrics::ResetMetrics`].
//!
//! Data flow: after the sensors crate has applied this frame's values and judged health
//! ([`tvilling_sensors::apply::SensorSystems::Health`]), [`MetricsSystems::Alarms`] derives the
//! alarms and [`MetricsSystems::Integrate`] integrates the metrics, in `PreUpdate`.

pub mod alarms;
pub mod lifecycle;
pub mod limits;
pub mod metrics;

use bevy::prelude::*;
use tvilling_sensors::apply::{SensorSystems, ValueApplied};

/// System sets of [`MetricsPlugin`], chained in `PreUpdate` after the sensors' health.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricsSystems {
    /// Raises and clears alarms.
    Alarms,
    /// Integrates the metrics.
    Integrate,
}

/// Alarms and metrics.
#[derive(Default)]
pub struct MetricsPlugin;

impl Plugin for MetricsPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<alarms::AlarmChanged>()
            .add_message::<metrics::ResetMetrics>()
            .add_message::<ValueApplied>()
            .init_resource::<alarms::Alarms>()
            .init_resource::<lifecycle::AlarmDesk>()
            .add_message::<lifecycle::AlarmAction>()
            .init_resource::<metrics::CityMetrics>()
            .init_resource::<metrics::SignalTrack>()
            .init_resource::<metrics::EdgeState>()
            .configure_sets(
                PreUpdate,
                (MetricsSystems::Alarms, MetricsSystems::Integrate)
                    .chain()
                    .after(SensorSystems::Health),
            )
            .add_systems(
                PreUpdate,
                (
                    (alarms::derive_alarms, lifecycle::annunciate)
                        .chain()
                        .in_set(MetricsSystems::Alarms),
                    (
                        metrics::track_edge,
                        metrics::integrate_metrics,
                        metrics::integrate_signals,
                    )
                        .chain()
                        .in_set(MetricsSystems::Integrate),
                ),
            );
    }
}

pub mod prelude {
    pub use crate::alarms::{Alarm, AlarmChanged, Alarms, Severity};
    pub use crate::limits::{LIMITS, Limit, Pollutant, exceedances};
    pub use crate::metrics::{CityMetrics, ResetMetrics, SignalMetrics};
    pub use crate::{MetricsPlugin, MetricsSystems};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CityMetrics, ResetMetrics};
    use tvilling_geo::sun::unix_seconds;
    use tvilling_sensors::apply::SensorApplyPlugin;
    use tvilling_sensors::clock::TwinClock;
    use tvilling_sensors::health::HealthPlugin;
    use tvilling_sensors::registry::{DeviceKind, Quantity};
    use tvilling_sensors::state::{DeviceInfo, Liveness, SignalAspect, device_bundle};

    fn app(t_ms: i64) -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TwinClock::held(t_ms))
            .add_plugins((SensorApplyPlugin, HealthPlugin, MetricsPlugin));
        app
    }

    fn step(app: &mut App, t_ms: i64) {
        app.world_mut().resource_mut::<TwinClock>().set(t_ms);
        // Keep the devices fresh: this test is about the sums, not health.
        let mut q = app.world_mut().query::<&mut Liveness>();
        for mut l in q.iter_mut(app.world_mut()) {
            l.last_seen_ms = Some(t_ms);
        }
        app.update();
    }

    #[test]
    fn lamps_and_meters_integrate_over_twin_time_and_restart_at_midnight() {
        // 21 December, 20:00 local (19:00 UTC): dark.
        let t0 = unix_seconds(2026, 12, 21, 19, 0) * 1000;
        let mut app = app(t0);
        let lamp = app
            .world_mut()
            .spawn(device_bundle("lamp", DeviceKind::Lamp))
            .id();
        let dark = app
            .world_mut()
            .spawn(device_bundle("dark", DeviceKind::Lamp))
            .id();
        let meter = app
            .world_mut()
            .spawn(device_bundle("meter", DeviceKind::Meter))
            .id();
        step(&mut app, t0);
        for (entity, quantity, value) in [
            (lamp, Quantity::LampOn, 1.0),
            (lamp, Quantity::LampPowerW, 50.0),
            (dark, Quantity::LampOn, 0.0),
            (dark, Quantity::LampPowerW, 0.0),
            (meter, Quantity::PowerKw, 20.0),
            (meter, Quantity::HeatingKw, 10.0),
        ] {
            app.world_mut().write_message(ValueApplied {
                entity,
                time_ms: t0,
                quantity,
                value,
            });
        }
        // Two hours in 10-minute frames.
        for k in 1..=12 {
            step(&mut app, t0 + k * 600_000);
        }
        let m = app.world().resource::<CityMetrics>().clone();
        assert!(
            (m.lighting_kwh - 0.1).abs() < 1e-9,
            "50 W × 2 h: {}",
            m.lighting_kwh
        );
        assert!((m.lamp_hours_lit - 2.0).abs() < 1e-9);
        assert!(
            (m.lamp_hours_dark_at_night - 2.0).abs() < 1e-9,
            "the other lamp was off in the dark"
        );
        assert!((m.building_kwh - 40.0).abs() < 1e-9);
        assert!((m.heating_kwh - 20.0).abs() < 1e-9);
        // Past local midnight (23:00 UTC): a new day starts at midnight.
        let after = unix_seconds(2026, 12, 21, 23, 10) * 1000;
        for t in (t0 + 2 * 3_600_000..=after).step_by(600_000) {
            step(&mut app, t);
        }
        let m = app.world().resource::<CityMetrics>().clone();
        assert_eq!(m.since_ms, unix_seconds(2026, 12, 21, 23, 0) * 1000);
        assert!(
            (m.lamp_hours_lit - 10.0 / 60.0).abs() < 1e-6,
            "only the 10 minutes since midnight: {}",
            m.lamp_hours_lit
        );
        // On demand.
        app.world_mut().write_message(ResetMetrics);
        step(&mut app, after + 600_000);
        let m = app.world().resource::<CityMetrics>();
        assert_eq!(m.since_ms, after + 600_000);
        assert_eq!(m.lamp_hours_lit, 0.0);
        // Someone plays back the past: the live edge's metrics go on.
        app.world_mut()
            .resource_mut::<TwinClock>()
            .play_back(t0, 1.0, true);
        step(&mut app, after + 1_200_000);
        let m = app.world().resource::<CityMetrics>();
        assert!(
            (m.lamp_hours_lit - 1.0 / 6.0).abs() < 1e-9,
            "{}",
            m.lamp_hours_lit
        );
    }

    #[test]
    fn signal_green_share_and_cycle_come_from_each_aspect_change() {
        let t0 = unix_seconds(2026, 6, 1, 10, 0) * 1000;
        let mut app = app(t0);
        let head = app
            .world_mut()
            .spawn((
                device_bundle("h1", DeviceKind::SignalHead),
                DeviceInfo {
                    name: "h1".into(),
                    attributes: vec![("controller".into(), "controller/c1".into())],
                },
            ))
            .id();
        step(&mut app, t0);
        // Two 60 s cycles, green 20 s of each, all reported within one 10-minute frame.
        let mut changes = Vec::new();
        for c in 0..3 {
            let base = t0 + c * 60_000;
            changes.push((base, SignalAspect::Green));
            changes.push((base + 20_000, SignalAspect::Amber));
            changes.push((base + 23_000, SignalAspect::Red));
        }
        for (t, a) in changes {
            app.world_mut().write_message(ValueApplied {
                entity: head,
                time_ms: t,
                quantity: Quantity::SignalAspect,
                value: a.code(),
            });
        }
        step(&mut app, t0 + 600_000);
        let m = app.world().resource::<CityMetrics>();
        let s = &m.signals["controller/c1"];
        assert_eq!(
            s.observed_ms, 143_000,
            "from the first green to the last red"
        );
        assert_eq!(s.green_ms, 60_000);
        assert_eq!(s.cycle_s(), Some(60.0));
        assert_eq!(s.cycles, 2);
    }
}
