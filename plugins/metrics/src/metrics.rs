//! City metrics integrated over twin time, from the live state at the edge: street lighting
//! (kWh, lamp-hours lit, lamp-hours dark at night), buildings (electricity and heating kWh),
//! air quality (sensor-hours above each limit value), signals (green share and cycle per
//! controller) and alarms raised. They restart at Stockholm's local midnight and on demand
//! ([`ResetMetrics`]). Panels only draw [`CityMetrics`].
//!
//! Lamps, meters and air sensors hold their state between reports, so their metrics integrate
//! the live edge's state ([`EdgeState`], kept from every applied value) over each frame's span
//! of twin time, also while the view plays back the past. Signal heads change faster than a frame of
//! a fast clock, so their metrics integrate every reported aspect change
//! ([`tvilling_sensors::apply::ValueApplied`]).

use std::collections::{BTreeMap, HashMap};

use bevy::ecs::entity::EntityHashMap;
use bevy::prelude::*;
use tvilling_geo::sun::sun_position;
use tvilling_sensors::apply::ValueApplied;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::simulate::stockholm_local;
use tvilling_sensors::state::{AirQualityState, DeviceInfo, LampState, MeterState, SignalAspect};

use crate::alarms::Alarms;
use crate::limits::{LIMITS, Pollutant};

/// A span of twin time longer than this between two frames is a jump (playback, a restart),
/// not something to integrate over.
pub const MAX_GAP_MS: i64 = 15 * 60_000;

/// One controller's signal figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalMetrics {
    /// Head-milliseconds green, and observed in any aspect.
    pub green_ms: i64,
    pub observed_ms: i64,
    /// Intervals between successive green starts of a head, summed, and how many.
    pub cycle_sum_ms: i64,
    pub cycles: u64,
}

impl SignalMetrics {
    /// Share of the observed time the controller's heads showed green.
    pub fn green_share(&self) -> Option<f64> {
        (self.observed_ms > 0).then(|| self.green_ms as f64 / self.observed_ms as f64)
    }

    /// Mean cycle, seconds.
    pub fn cycle_s(&self) -> Option<f64> {
        (self.cycles > 0).then(|| self.cycle_sum_ms as f64 / self.cycles as f64 / 1000.0)
    }
}

/// The city's metrics since [`CityMetrics::since_ms`].
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct CityMetrics {
    /// Start of the span (local midnight, or a reset), twin time.
    pub since_ms: i64,
    /// Integrated up to here.
    pub at_ms: i64,
    pub lighting_kwh: f64,
    pub lamp_hours_lit: f64,
    /// Lamp-hours dark while the sun was down (off, or reporting a fault).
    pub lamp_hours_dark_at_night: f64,
    pub building_kwh: f64,
    pub heating_kwh: f64,
    /// Sensor-hours with a reading above each limit value (indicative: the limits apply to
    /// hourly, daily or annual means).
    pub hours_over_limit: BTreeMap<Pollutant, f64>,
    /// By controller id.
    pub signals: BTreeMap<String, SignalMetrics>,
    pub alarms_raised: u64,
    /// The alarm counter when the span began.
    alarms_at_start: u64,
}

impl CityMetrics {
    /// Starts a new span at `t_ms`.
    pub fn restart(&mut self, t_ms: i64, alarms_total: u64) {
        *self = CityMetrics {
            since_ms: t_ms,
            at_ms: t_ms,
            alarms_at_start: alarms_total,
            ..default()
        };
        for l in LIMITS {
            self.hours_over_limit.insert(l.pollutant, 0.0);
        }
    }

    /// Green share over every controller.
    pub fn green_share(&self) -> Option<f64> {
        let (g, o) = self
            .signals
            .values()
            .fold((0, 0), |(g, o), s| (g + s.green_ms, o + s.observed_ms));
        (o > 0).then(|| g as f64 / o as f64)
    }
}

/// A request to restart the metrics now.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct ResetMetrics;

/// The live edge's device values as the metrics integrate them, kept from every applied value
/// ([`ValueApplied`]): also while someone plays back the past (when the components show that
/// past), so the metrics never miss a span of the live edge. The city's totals (power drawn,
/// lamps lit) are kept as each value arrives, in whole milliwatts, so a frame integrates them
/// without visiting every device and the sums come out the same, bit for bit, in any order.
#[derive(Resource, Debug, Default)]
pub struct EdgeState {
    lamps: EntityHashMap<LampState>,
    meters: EntityHashMap<MeterState>,
    // Ordered: the few air sensors are visited each frame.
    air: BTreeMap<Entity, AirQualityState>,
    totals: EdgeTotals,
}

/// The city's totals at the live edge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EdgeTotals {
    /// Lamps' power, mW.
    pub lamp_mw: i64,
    /// Lamps lit and working.
    pub lamps_lit: i64,
    /// Lamps not lit (or faulty).
    pub lamps_unlit: i64,
    /// Buildings' electrical and heating power, mW.
    pub meter_mw: i64,
    pub heating_mw: i64,
}

fn milliwatts(w: f64) -> i64 {
    (w * 1000.0).round() as i64
}

impl EdgeTotals {
    fn lamp(&mut self, l: &LampState, sign: i64) {
        self.lamp_mw += sign * milliwatts(l.power_w);
        if l.on && !l.fault {
            self.lamps_lit += sign;
        } else {
            self.lamps_unlit += sign;
        }
    }

    fn meter(&mut self, m: &MeterState, sign: i64) {
        self.meter_mw += sign * milliwatts(m.power_kw * 1000.0);
        self.heating_mw += sign * milliwatts(m.heating_kw.unwrap_or(0.0) * 1000.0);
    }
}

impl EdgeState {
    pub fn totals(&self) -> EdgeTotals {
        self.totals
    }

    fn lamp(&mut self, e: Entity, change: impl FnOnce(&mut LampState)) {
        let EdgeState { lamps, totals, .. } = self;
        let l = lamps.entry(e).or_insert_with(|| {
            let l = LampState::default();
            totals.lamp(&l, 1);
            l
        });
        totals.lamp(l, -1);
        change(l);
        totals.lamp(l, 1);
    }

    fn meter(&mut self, e: Entity, change: impl FnOnce(&mut MeterState)) {
        let EdgeState { meters, totals, .. } = self;
        let m = meters.entry(e).or_insert_with(|| {
            let m = MeterState::default();
            totals.meter(&m, 1);
            m
        });
        totals.meter(m, -1);
        change(m);
        totals.meter(m, 1);
    }
}

/// Keeps [`EdgeState`] from this frame's applied values.
pub fn track_edge(mut applied: MessageReader<ValueApplied>, mut edge: ResMut<EdgeState>) {
    for v in applied.read() {
        let x = v.value;
        let e = v.entity;
        match v.quantity {
            Quantity::LampOn => edge.lamp(e, |l| l.on = x >= 0.5),
            Quantity::LampDimPct => edge.lamp(e, |l| l.dim_pct = x),
            Quantity::LampPowerW => edge.lamp(e, |l| l.power_w = x),
            Quantity::LampFault => edge.lamp(e, |l| l.fault = x >= 0.5),
            Quantity::PowerKw => edge.meter(e, |m| m.power_kw = x),
            Quantity::EnergyTodayKwh => edge.meter(e, |m| m.energy_today_kwh = x),
            Quantity::HeatingKw => edge.meter(e, |m| m.heating_kw = Some(x)),
            Quantity::No2 => edge.air.entry(e).or_default().no2 = Some(x),
            Quantity::Pm10 => edge.air.entry(e).or_default().pm10 = Some(x),
            Quantity::Pm25 => edge.air.entry(e).or_default().pm25 = Some(x),
            Quantity::TemperatureC => {
                edge.air.entry(e).or_default().temperature_c = Some(x);
            }
            Quantity::SignalAspect => {}
        }
    }
}

/// Each signal head's last reported aspect and since when, with its controller (by number),
/// and the controllers' figures gathered in this frame.
#[derive(Resource, Debug, Default)]
pub struct SignalTrack {
    heads: EntityHashMap<HeadTrack>,
    controllers: Vec<String>,
    numbers: HashMap<String, u32>,
    /// This frame's additions per controller, and which controllers have them.
    frame: Vec<SignalMetrics>,
    touched: Vec<u32>,
    /// Whether each controller is in `touched`.
    is_touched: Vec<bool>,
}

#[derive(Debug, Clone, Copy)]
struct HeadTrack {
    controller: u32,
    aspect: SignalAspect,
    since_ms: i64,
    last_green_ms: Option<i64>,
}

const MS_PER_HOUR: f64 = 3_600_000.0;

/// Integrates the metrics from the previous frame's live edge to this frame's.
pub fn integrate_metrics(
    clock: Res<TwinClock>,
    rules: Option<Res<HealthRules>>,
    alarms: Option<Res<Alarms>>,
    mut metrics: ResMut<CityMetrics>,
    mut resets: MessageReader<ResetMetrics>,
    edge: Res<EdgeState>,
) {
    let now = clock.edge_ms;
    let alarms_total = alarms.as_ref().map_or(0, |a| a.raised_total);
    let reset = resets.read().count() > 0;
    let midnight = stockholm_local(now).midnight_ms;
    if reset || metrics.since_ms == 0 || metrics.since_ms < midnight || now < metrics.at_ms {
        let start = if reset || metrics.since_ms == 0 {
            now
        } else {
            midnight.max(metrics.since_ms).min(now)
        };
        metrics.restart(start, alarms_total);
    }
    let dt = now - metrics.at_ms;
    metrics.alarms_raised = alarms_total.saturating_sub(metrics.alarms_at_start);
    if dt <= 0 {
        return;
    }
    metrics.at_ms = now;
    if dt > MAX_GAP_MS {
        return;
    }
    let h = dt as f64 / MS_PER_HOUR;
    let rules = rules.map(|r| r.clone()).unwrap_or_default();
    let sun = sun_position(rules.lat_lon.0, rules.lat_lon.1, now.div_euclid(1000)).elevation_deg;
    let dark = sun < rules.lamp_on_below_deg;
    let totals = edge.totals;
    metrics.lighting_kwh += totals.lamp_mw as f64 / 1e6 * h;
    metrics.lamp_hours_lit += totals.lamps_lit as f64 * h;
    if dark {
        metrics.lamp_hours_dark_at_night += totals.lamps_unlit as f64 * h;
    }
    metrics.building_kwh += totals.meter_mw as f64 / 1e6 * h;
    metrics.heating_kwh += totals.heating_mw as f64 / 1e6 * h;
    for a in edge.air.values() {
        for l in LIMITS {
            if l.pollutant.reading(a).is_some_and(|v| v > l.ugm3) {
                *metrics.hours_over_limit.entry(l.pollutant).or_default() += h;
            }
        }
    }
}

/// Integrates every reported signal aspect change into its controller's figures (gathered by
/// controller number in the frame, added to [`CityMetrics::signals`] once per controller).
pub fn integrate_signals(
    mut applied: MessageReader<ValueApplied>,
    mut track: ResMut<SignalTrack>,
    mut metrics: ResMut<CityMetrics>,
    info: Query<&DeviceInfo>,
) {
    let since = metrics.since_ms;
    let track = &mut *track;
    for v in applied.read() {
        if v.quantity != Quantity::SignalAspect {
            continue;
        }
        let Some(aspect) = SignalAspect::from_code(v.value) else {
            continue;
        };
        let head = match track.heads.get_mut(&v.entity) {
            Some(h) => h,
            None => {
                let name = info
                    .get(v.entity)
                    .ok()
                    .and_then(|i| {
                        i.attributes
                            .iter()
                            .find(|(k, _)| k == "controller")
                            .map(|(_, c)| c.clone())
                    })
                    .unwrap_or_else(|| format!("head {}", v.entity));
                let controller = match track.numbers.get(&name) {
                    Some(n) => *n,
                    None => {
                        let n = track.controllers.len() as u32;
                        track.numbers.insert(name.clone(), n);
                        track.controllers.push(name);
                        track.frame.push(SignalMetrics::default());
                        track.is_touched.push(false);
                        n
                    }
                };
                let green = (aspect == SignalAspect::Green).then_some(v.time_ms);
                track.heads.entry(v.entity).or_insert(HeadTrack {
                    controller,
                    aspect,
                    since_ms: v.time_ms,
                    last_green_ms: green,
                })
            }
        };
        if v.time_ms <= head.since_ms && aspect == head.aspect {
            continue;
        }
        let c = head.controller as usize;
        let s = &mut track.frame[c];
        if !track.is_touched[c] {
            track.is_touched[c] = true;
            track.touched.push(head.controller);
        }
        let from = head.since_ms.max(since);
        let span = v.time_ms - from;
        if span > 0 && span <= MAX_GAP_MS {
            s.observed_ms += span;
            if head.aspect == SignalAspect::Green {
                s.green_ms += span;
            }
        }
        if aspect == SignalAspect::Green && head.aspect != SignalAspect::Green {
            if let Some(g) = head.last_green_ms {
                let cycle = v.time_ms - g;
                if cycle > 0 && cycle <= MAX_GAP_MS && g >= since {
                    s.cycle_sum_ms += cycle;
                    s.cycles += 1;
                }
            }
            head.last_green_ms = Some(v.time_ms);
        }
        if aspect != head.aspect || v.time_ms > head.since_ms {
            head.aspect = aspect;
            head.since_ms = v.time_ms;
        }
    }
    for c in track.touched.drain(..) {
        track.is_touched[c as usize] = false;
        let add = std::mem::take(&mut track.frame[c as usize]);
        let name = &track.controllers[c as usize];
        let s = match metrics.signals.get_mut(name) {
            Some(s) => s,
            None => metrics.signals.entry(name.clone()).or_default(),
        };
        s.green_ms += add.green_ms;
        s.observed_ms += add.observed_ms;
        s.cycle_sum_ms += add.cycle_sum_ms;
        s.cycles += add.cycles;
    }
}
