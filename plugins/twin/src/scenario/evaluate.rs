//! A scenario's metrics integrated from its models instead of stepped through a twin: each
//! simulated device's values are a pure function of (seed, device, time) that holds between its
//! events, so its metrics are sums over those events, worked out device by device, on every
//! core, outside the ECS (`tvilling scenario run|compare`, the default engine).
//!
//! What each kind contributes, as the stepped twin's [`tvilling_metrics::metrics`] measure it:
//! - lamps: on while their photocell's minute of sun is below their threshold (found by binary
//!   search in the month's minutes, split where the sun turns), at their calendar's level
//!   between its steps; standby otherwise; lit while on and not faulty; dark at night while
//!   not lit and the sun (to the second) is below health's threshold; an alarm while in fault
//!   or dark at night;
//! - meters: each quarter hour's power and heating, as reported (rounded);
//! - air sensors: each ten minutes' means against the limit values, an alarm at each change of
//!   the first limit exceeded;
//! - signal heads: green time and green starts by their plan's cycle arithmetic, in whole
//!   milliseconds.
//!
//! The span is worked through a month at a time (local months), both sides of a comparison in
//! turn, so a run stopped early has whole months done. Devices go to the cores in fixed
//! chunks whose sums are added in chunk order: the same plans give the same figures, bit for
//! bit, on any number of cores.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tvilling_geo::sun::{civil_from_days, days_from_civil, sun_position};
use tvilling_metrics::limits::{LIMITS, Pollutant};
use tvilling_metrics::metrics::{MAX_GAP_MS, SignalMetrics};
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::simulate::{
    AIR_INTERVAL_MS, BuildingUse, LAMP_STANDBY_W, LampBreak, LightingPolicy, METER_INTERVAL_MS,
    PHOTOCELL_MS, PRESENCE_SPAN_MS, SimProfile, Simulator, heating_kw, load_share,
    meter_power_with_share, next_calendar_step, outdoor_temperature, photocell_sun, round,
    stockholm_local,
};
use tvilling_sensors::state::SignalAspect;

use super::report::{MonthFigures, RunResult};

const MS_PER_HOUR: f64 = 3_600_000.0;

/// What the evaluator needs to know of one simulated device besides its model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceMeta {
    /// Its district (of the shipped districts), for energy by district.
    pub district: Option<String>,
    /// A signal head's controller.
    pub controller: Option<String>,
}

/// One side of a comparison: its simulated devices (edits applied) and what is known of each.
#[derive(Debug, Clone)]
pub struct Plan {
    pub sim: Arc<Simulator>,
    /// One per device of `sim`, in its order.
    pub meta: Vec<DeviceMeta>,
    /// Health's rules (when the sun is down, where).
    pub rules: HealthRules,
}

/// How far an evaluation has come, for a progress bar: device-months done of all of them.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

/// An evaluation's result for one side.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub result: RunResult,
    /// Each lamp's and meter's energy over the span, kWh, by device id.
    pub device_kwh: HashMap<String, f64>,
}

/// Local month boundaries from `from` to `to`: `from`, each local first of the month's
/// midnight after it, and `to`.
pub fn month_bounds(from: i64, to: i64) -> Vec<i64> {
    let mut out = vec![from];
    let l = stockholm_local(from);
    let days = local_days(l.midnight_ms);
    let (mut y, mut m, _) = civil_from_days(days);
    loop {
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let t = local_midnight(days_from_civil(y, m, 1));
        if t >= to {
            break;
        }
        out.push(t);
    }
    out.push(to);
    out
}

/// The local calendar day (days since 1970-01-01) of a local midnight.
fn local_days(midnight_ms: i64) -> i64 {
    // A local midnight is 22:00 or 23:00 UTC the day before.
    (midnight_ms + 3 * 3_600_000).div_euclid(86_400_000)
}

/// Unix ms of the local midnight that begins local calendar day `days`.
fn local_midnight(days: i64) -> i64 {
    let guess = days * 86_400_000;
    stockholm_local(guess + 12 * 3_600_000)
        .midnight_ms
        .min(guess)
}

/// `YYYY-MM` of the local month `t_ms` is in.
pub fn month_label(t_ms: i64) -> String {
    let (y, m, _) = civil_from_days(local_days(stockholm_local(t_ms).midnight_ms));
    format!("{y:04}-{m:02}")
}

/// Intervals [start, end) in ms, sorted and disjoint.
type Spans = Vec<(i64, i64)>;

fn spans_len(s: &[(i64, i64)]) -> i64 {
    s.iter().map(|(a, b)| b - a).sum()
}

/// Length of the overlap of two sorted, disjoint span lists.
fn overlap_len(a: &[(i64, i64)], b: &[(i64, i64)]) -> i64 {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if hi > lo {
            n += hi - lo;
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    n
}

/// Union of two sorted, disjoint span lists.
fn union(a: &[(i64, i64)], b: &[(i64, i64)]) -> Spans {
    let mut all: Spans = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Spans = Vec::with_capacity(all.len());
    for (s, e) in all {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `a` less `b`, both sorted and disjoint.
fn minus(a: &[(i64, i64)], b: &[(i64, i64)]) -> Spans {
    let mut out = Vec::new();
    let mut j = 0;
    for &(s, e) in a {
        let mut s = s;
        while j < b.len() && b[j].1 <= s {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].0 < e {
            if b[k].0 > s {
                out.push((s, b[k].0));
            }
            s = s.max(b[k].1);
            k += 1;
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// The month's shared tables: the sun each minute as the photocells read it (split into runs
/// where it turns), when the sun is down as health judges it, and each quarter hour's load
/// shares and outdoor temperature.
struct MonthTables {
    from: i64,
    to: i64,
    /// The span's start and end.
    span_from: i64,
    span_to: i64,
    /// First minute (Unix minutes) and the photocell sun of each minute covering the month.
    first_minute: i64,
    sun: Vec<f64>,
    /// Runs of minutes (indices into `sun`, end exclusive) over which the sun only rises or
    /// only sets.
    runs: Vec<(usize, usize, bool)>,
    /// When the sun is down as health judges it (to the second), within the month.
    night: Spans,
    /// Each quarter hour of the meters (its reading's start, its part within the month, and
    /// its hour bin where it lies in one), its load share by use and outdoor temperature.
    quarters: Vec<Quarter>,
    shares: Vec<[f64; 4]>,
    outdoor_c: Vec<f64>,
    /// Hours of the span before the month (for hourly bins) and the hour bins it spans.
    hour0: usize,
    hours: usize,
    /// Local midnights within the month (days for the signals' cycle counts).
    days: Vec<i64>,
}

/// A meter reading's quarter hour within a month.
#[derive(Debug, Clone, Copy)]
struct Quarter {
    start: i64,
    from: i64,
    to: i64,
    hours: f64,
    /// Its hour bin (of the month's), when it lies in one.
    bin: Option<usize>,
}

fn use_index(u: BuildingUse) -> usize {
    match u {
        BuildingUse::Homes => 0,
        BuildingUse::Offices => 1,
        BuildingUse::Retail => 2,
        BuildingUse::Public => 3,
    }
}

const USES: [BuildingUse; 4] = [
    BuildingUse::Homes,
    BuildingUse::Offices,
    BuildingUse::Retail,
    BuildingUse::Public,
];

impl MonthTables {
    fn new(span: (i64, i64), from: i64, to: i64, rules: &HealthRules) -> MonthTables {
        let (span_from, span_to) = span;
        let first_minute = from.div_euclid(PHOTOCELL_MS);
        let last_minute = (to - 1).div_euclid(PHOTOCELL_MS);
        let sun: Vec<f64> = (first_minute..=last_minute)
            .map(|m| photocell_sun(m * PHOTOCELL_MS))
            .collect();
        let mut runs = Vec::new();
        let mut start = 0;
        while start < sun.len() {
            let mut end = start + 1;
            let mut rising: Option<bool> = None;
            while end < sun.len() {
                let d = sun[end] - sun[end - 1];
                if d != 0.0 {
                    match rising {
                        None => rising = Some(d > 0.0),
                        Some(up) if up != (d > 0.0) => break,
                        _ => {}
                    }
                }
                end += 1;
            }
            runs.push((start, end, rising.unwrap_or(true)));
            start = end;
        }
        let (lat, lon) = rules.lat_lon;
        let down = |s: i64| sun_position(lat, lon, s).elevation_deg < rules.lamp_on_below_deg;
        let (s0, s1) = (from.div_euclid(1000), (to - 1).div_euclid(1000) + 1);
        let mut night = Vec::new();
        let mut state = down(s0);
        let mut open = state.then_some(s0);
        let mut s = s0;
        while s < s1 {
            let next = (s + 60).min(s1);
            if down(next) != state {
                // The first second within (s, next] on the other side, by bisection.
                let (mut lo, mut hi) = (s, next);
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if down(mid) == state {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                state = !state;
                if state {
                    open = Some(hi);
                } else if let Some(o) = open.take() {
                    night.push((o * 1000, hi * 1000));
                }
            }
            s = next;
        }
        if let Some(o) = open {
            night.push((o * 1000, s1 * 1000));
        }
        let night: Spans = night
            .into_iter()
            .map(|(a, b)| (a.max(from), b.min(to)))
            .filter(|(a, b)| b > a)
            .collect();
        let hour0 = ((from - span_from) as f64 / MS_PER_HOUR).floor() as usize;
        let hours = ((to - span_from) as f64 / MS_PER_HOUR).ceil() as usize - hour0;
        let mut quarters = Vec::new();
        let mut shares = Vec::new();
        let mut outdoor_c = Vec::new();
        let mut q = from.div_euclid(METER_INTERVAL_MS) * METER_INTERVAL_MS;
        while q < to {
            let l = stockholm_local(q);
            shares.push(USES.map(|u| load_share(u, &l)));
            outdoor_c.push(outdoor_temperature(&l));
            let (a, b) = (q.max(from), (q + METER_INTERVAL_MS).min(to));
            let bin = |t: i64| (t - span_from).div_euclid(3_600_000) as usize;
            quarters.push(Quarter {
                start: q,
                from: a,
                to: b,
                hours: (b - a) as f64 / MS_PER_HOUR,
                bin: (bin(a) == bin(b - 1)).then(|| bin(a) - hour0),
            });
            q += METER_INTERVAL_MS;
        }
        let mut days = Vec::new();
        let mut d = stockholm_local(from).midnight_ms;
        while d < to {
            if d > from {
                days.push(d);
            }
            d = stockholm_local(d + 30 * 3_600_000).midnight_ms;
        }
        MonthTables {
            from,
            to,
            span_from,
            span_to,
            first_minute,
            sun,
            runs,
            night,
            quarters,
            shares,
            outdoor_c,
            hour0,
            hours,
            days,
        }
    }

    /// The photocell's sun at `t_ms` (within the month).
    fn sun_at(&self, t_ms: i64) -> f64 {
        self.sun[(t_ms.div_euclid(PHOTOCELL_MS) - self.first_minute) as usize]
    }

    /// When a photocell with `threshold` has its lamp wanting to be on, within the month.
    fn wants_on(&self, threshold: f64) -> Spans {
        let mut out: Spans = Vec::new();
        for &(s, e, rising) in &self.runs {
            let below = |k: usize| self.sun[k] < threshold;
            // Within a run the minutes below the threshold are a prefix (rising) or a suffix.
            let (lo, hi) = if rising {
                (s, s + self.sun[s..e].partition_point(|v| *v < threshold))
            } else {
                (s + self.sun[s..e].partition_point(|v| *v >= threshold), e)
            };
            debug_assert!((lo..hi).all(below));
            if hi > lo {
                let a = (self.first_minute + lo as i64) * PHOTOCELL_MS;
                let b = (self.first_minute + hi as i64) * PHOTOCELL_MS;
                let (a, b) = (a.max(self.from), b.min(self.to));
                match out.last_mut() {
                    Some(last) if last.1 >= a => last.1 = b,
                    _ if b > a => out.push((a, b)),
                    _ => {}
                }
            }
        }
        out
    }

    fn is_night(&self, t_ms: i64, rules: &HealthRules) -> bool {
        let (lat, lon) = rules.lat_lon;
        sun_position(lat, lon, t_ms.div_euclid(1000)).elevation_deg < rules.lamp_on_below_deg
    }
}

/// One chunk of devices' sums over a month.
#[derive(Debug, Default, Clone)]
struct Partial {
    lighting_kwh: f64,
    lamp_hours_lit: f64,
    lamp_hours_dark_at_night: f64,
    building_kwh: f64,
    heating_kwh: f64,
    hours_over_limit: [f64; 3],
    /// PM2.5 sensor-hours weighted sum (µg/m³·h) and sensor-hours.
    pm25: (f64, f64),
    alarms: u64,
    signals: BTreeMap<String, SignalMetrics>,
    hourly_lighting: Vec<f64>,
    hourly_building: Vec<f64>,
    /// (device index, kWh) of lamps and meters.
    device_kwh: Vec<(usize, f64)>,
    /// Lamps whose standby is still to be added to the hours.
    standby_lamps: usize,
}

/// Each lighting calendar's levels over a month (start, end, percent), by policy.
type Calendars = HashMap<usize, Vec<(i64, i64, f64)>>;

fn policy_key(p: &Arc<LightingPolicy>) -> usize {
    Arc::as_ptr(p) as usize
}

/// The levels of the calendars of `plan`'s lamps over [from, to), split where they may step.
fn calendars(plan: &Plan, from: i64, to: i64) -> Calendars {
    let mut out = Calendars::new();
    for d in &plan.sim.devices {
        let SimProfile::Lamp { policy, .. } = &d.profile else {
            continue;
        };
        out.entry(policy_key(policy)).or_insert_with(|| {
            let mut levels = Vec::new();
            let mut t = from;
            while t < to {
                let local = stockholm_local(t);
                let next = next_calendar_step(policy, t, &local).min(to);
                levels.push((t, next, policy.calendar_level(&local)));
                t = next;
            }
            levels
        });
    }
    out
}

/// Adds `kw` over [a, b) to hourly bins (bin 0 starts at `span` + `hour0` hours).
fn add_hourly(bins: &mut [f64], span: i64, hour0: usize, a: i64, b: i64, kw: f64) {
    let mut t = a;
    while t < b {
        let h = ((t - span) / 3_600_000) as usize;
        let end = (span + (h as i64 + 1) * 3_600_000).min(b);
        if let Some(bin) = bins.get_mut(h - hour0) {
            *bin += kw * (end - t) as f64 / MS_PER_HOUR;
        }
        t = end;
    }
}

fn pollutant_index(p: Pollutant) -> usize {
    match p {
        Pollutant::No2 => 0,
        Pollutant::Pm10 => 1,
        Pollutant::Pm25 => 2,
    }
}

impl Partial {
    fn new(t: &MonthTables) -> Partial {
        Partial {
            hourly_lighting: vec![0.0; t.hours],
            hourly_building: vec![0.0; t.hours],
            ..Default::default()
        }
    }

    fn lamp(&mut self, plan: &Plan, i: usize, t: &MonthTables, calendars: &Calendars) {
        let profile = &plan.sim.devices[i].profile;
        let SimProfile::Lamp {
            rated_w,
            on_below_deg,
            policy,
            ..
        } = profile
        else {
            return;
        };
        let rules = &plan.rules;
        // Its faults over the month: dark while burnt out, reporting a fault while lit.
        let breaks = profile.lamp_breaks(t.from, t.to);
        let of = |how: LampBreak| -> Spans {
            breaks
                .iter()
                .filter(|b| b.2 == how)
                .map(|b| (b.0, b.1))
                .collect()
        };
        let (burnt, faulty) = (of(LampBreak::BurntOut), of(LampBreak::DriverFault));
        let on = minus(&t.wants_on(*on_below_deg), &burnt);
        let on_faulty = minus(&on, &minus(&on, &faulty));
        // Its spans on, each whole with or without a fault.
        let mut segments: Vec<(i64, i64, bool)> =
            on_faulty.iter().map(|&(a, b)| (a, b, true)).collect();
        segments.extend(minus(&on, &faulty).into_iter().map(|(a, b)| (a, b, false)));
        segments.sort_unstable_by_key(|s| s.0);
        // Standby all month (added to the hours once for the chunk), and above it while on.
        let span_h = (t.to - t.from) as f64 / MS_PER_HOUR;
        let mut kwh = LAMP_STANDBY_W / 1000.0 * span_h;
        self.standby_lamps += 1;
        let mut lit: Spans = Vec::new();
        let mut add = |s: i64, next: i64, power_w: f64, lit_now: bool, part: &mut Partial| {
            let kw = (power_w - LAMP_STANDBY_W) / 1000.0;
            kwh += kw * (next - s) as f64 / MS_PER_HOUR;
            add_hourly(&mut part.hourly_lighting, t.span_from, t.hour0, s, next, kw);
            if lit_now {
                match lit.last_mut() {
                    Some(last) if last.1 == s => last.1 = next,
                    _ => lit.push((s, next)),
                }
            }
        };
        match calendars.get(&policy_key(policy)) {
            // A calendar without presence dimming: its levels over the month, worked out once.
            Some(levels) if policy.presence.is_none() => {
                for &(a, b, faulty) in &segments {
                    let first = levels.partition_point(|l| l.1 <= a);
                    for &(l0, l1, level) in &levels[first..] {
                        if l0 >= b {
                            break;
                        }
                        // As the simulator's lamp draws it at that level.
                        let power_w = round(rated_w * level / 100.0, 1);
                        add(l0.max(a), l1.min(b), power_w, !faulty, self);
                    }
                }
            }
            _ => {
                for &(a, b, _) in &segments {
                    let mut s = a;
                    while s < b {
                        let local = stockholm_local(s);
                        let Some(now) = plan.sim.lamp_now(i, s, &local, t.sun_at(s)) else {
                            return;
                        };
                        let mut next = next_calendar_step(policy, s, &local).min(b);
                        if policy.presence.is_some() {
                            next =
                                next.min((s.div_euclid(PRESENCE_SPAN_MS) + 1) * PRESENCE_SPAN_MS);
                        }
                        add(s, next, now.power_w, now.on && !now.fault, self);
                        s = next;
                    }
                }
            }
        }
        self.lighting_kwh += kwh;
        self.device_kwh.push((i, kwh));
        self.lamp_hours_lit += spans_len(&lit) as f64 / MS_PER_HOUR;
        let night = &t.night;
        self.lamp_hours_dark_at_night +=
            (spans_len(night) - overlap_len(night, &lit)) as f64 / MS_PER_HOUR;
        // In alarm: reporting a fault (a driver fault while on), or not lit at night.
        let alarm = union(&on_faulty, &minus(night, &on));
        let before = |at: i64| {
            let broken = profile.lamp_break_at(at);
            let on = broken != Some(LampBreak::BurntOut) && photocell_sun(at) < *on_below_deg;
            let night = t.is_night(at, rules);
            (on && broken == Some(LampBreak::DriverFault)) || (!on && night)
        };
        self.alarms += raised(&alarm, t, before);
    }

    fn meter(&mut self, plan: &Plan, i: usize, t: &MonthTables) {
        let SimProfile::Meter {
            floor_area_m2,
            building_use,
        } = &plan.sim.devices[i].profile
        else {
            return;
        };
        let u = use_index(*building_use);
        let (mut kwh, mut heat) = (0.0, 0.0);
        for (k, q) in t.quarters.iter().enumerate() {
            let power = meter_power_with_share(
                plan.sim.seed,
                i as u64,
                *floor_area_m2,
                *building_use,
                t.shares[k][u],
                q.start,
            );
            let power = round(power, 2);
            let heating = round(heating_kw(*floor_area_m2, t.outdoor_c[k]), 2);
            kwh += power * q.hours;
            heat += heating * q.hours;
            match q.bin {
                Some(bin) => self.hourly_building[bin] += power * q.hours,
                None => add_hourly(
                    &mut self.hourly_building,
                    t.span_from,
                    t.hour0,
                    q.from,
                    q.to,
                    power,
                ),
            }
        }
        self.building_kwh += kwh;
        self.heating_kwh += heat;
        self.device_kwh.push((i, kwh));
    }

    fn air(&mut self, plan: &Plan, i: usize, t: &MonthTables) {
        let cause = |at: i64| {
            let v = plan.sim.values(i, at);
            LIMITS.iter().find_map(|l| {
                let q = match l.pollutant {
                    Pollutant::No2 => Quantity::No2,
                    Pollutant::Pm10 => Quantity::Pm10,
                    Pollutant::Pm25 => Quantity::Pm25,
                };
                v.get(q).filter(|x| *x > l.ugm3).map(|_| l.pollutant)
            })
        };
        let mut last = if t.from > t.span_from {
            cause(t.from - 1)
        } else {
            None
        };
        let mut q0 = t.from.div_euclid(AIR_INTERVAL_MS) * AIR_INTERVAL_MS;
        while q0 < t.to {
            let (a, b) = (q0.max(t.from), (q0 + AIR_INTERVAL_MS).min(t.to));
            let h = (b - a) as f64 / MS_PER_HOUR;
            let v = plan.sim.values(i, a);
            for l in LIMITS {
                let q = match l.pollutant {
                    Pollutant::No2 => Quantity::No2,
                    Pollutant::Pm10 => Quantity::Pm10,
                    Pollutant::Pm25 => Quantity::Pm25,
                };
                if v.get(q).is_some_and(|x| x > l.ugm3) {
                    self.hours_over_limit[pollutant_index(l.pollutant)] += h;
                }
            }
            if let Some(pm) = v.get(Quantity::Pm25) {
                self.pm25.0 += pm * h;
                self.pm25.1 += h;
            }
            let now = cause(a);
            if now != last && now.is_some() {
                self.alarms += 1;
            }
            last = now;
            q0 += AIR_INTERVAL_MS;
        }
    }

    fn signal(&mut self, plan: &Plan, i: usize, t: &MonthTables) {
        let profile = &plan.sim.devices[i].profile;
        let SimProfile::Signal { cycle_s, .. } = profile else {
            return;
        };
        let cycle = ((cycle_s * 1000.0).round() as i64).max(1);
        // One green of the plan, from the simulator's own steps: its start and length.
        let Some((green_start, green_len)) = first_green(profile, t.from - cycle - 1) else {
            return;
        };
        let g = |at: i64| {
            let d = at - green_start;
            d.div_euclid(cycle) * green_len + d.rem_euclid(cycle).min(green_len)
        };
        // Green starts in [a, b).
        let starts = |a: i64, b: i64| {
            let k = |at: i64| (at - green_start + cycle - 1).div_euclid(cycle);
            (k(b) - k(a)).max(0)
        };
        let name = plan.meta[i]
            .controller
            .clone()
            .unwrap_or_else(|| plan.sim.devices[i].id.clone());
        let s = self.signals.entry(name).or_default();
        // A head's time counts from one report to the next: at the span's end, up to its
        // last change.
        let end = if t.to == t.span_to {
            last_change(profile, t.to, cycle)
                .unwrap_or(t.to)
                .max(t.from)
        } else {
            t.to
        };
        s.observed_ms += end - t.from;
        s.green_ms += g(end) - g(t.from);
        if cycle <= MAX_GAP_MS {
            // The metrics restart at local midnight: a head's first green start of a day has
            // no cycle before it.
            let mut day_starts = vec![t.from];
            day_starts.extend(&t.days);
            day_starts.push(t.to);
            for w in day_starts.windows(2) {
                let n = starts(w[0] + cycle, w[1]) as u64;
                s.cycles += n;
                s.cycle_sum_ms += n as i64 * cycle;
            }
            // At the span's start a head showing green counts from its first report.
            let into = (t.from - green_start).rem_euclid(cycle);
            if t.from == t.span_from && into > 0 && into < green_len {
                let next = t.from - into + cycle;
                if next < day_starts[1] {
                    s.cycles += 1;
                    s.cycle_sum_ms += next - t.from;
                }
            }
        }
    }
}

/// A signal head's last change of aspect at or before `t_ms` (within a cycle of it).
fn last_change(profile: &SimProfile, t_ms: i64, cycle: i64) -> Option<i64> {
    let mut at = t_ms - cycle - 1;
    let mut aspect = profile.signal_at(at)?.0;
    let mut last = None;
    loop {
        let next = profile.signal_change_after(at)?;
        if next > t_ms {
            return last;
        }
        let now = profile.signal_at(next)?.0;
        if now != aspect {
            last = Some(next);
            aspect = now;
        }
        at = next;
    }
}

/// A signal head's first green at or after `t_ms`: its start and length, ms.
fn first_green(profile: &SimProfile, t_ms: i64) -> Option<(i64, i64)> {
    let mut at = t_ms;
    let mut start = None;
    for _ in 0..64 {
        let next = profile.signal_change_after(at)?;
        let (aspect, _) = profile.signal_at(next)?;
        match (start, aspect == SignalAspect::Green) {
            (None, true) => start = Some(next),
            (Some(s), false) => return Some((s, next - s)),
            _ => {}
        }
        at = next;
    }
    None
}

/// How many spans of `alarm` begin in the month, not continuing one that was on before it
/// (`before`: the alarm's state just before an instant). Those on at the span's start count:
/// the twin raises them when it first judges its devices.
fn raised(alarm: &[(i64, i64)], t: &MonthTables, before: impl Fn(i64) -> bool) -> u64 {
    alarm
        .iter()
        .filter(|(a, _)| !(*a == t.from && t.from > t.span_from && before(t.from - 1)))
        .count() as u64
}

/// Evaluates one month of one side into `out`, on `threads` cores.
fn evaluate_month(
    plan: &Plan,
    tables: &MonthTables,
    threads: usize,
    progress: &Progress,
    stop: &AtomicBool,
) -> Option<Partial> {
    let n = plan.sim.devices.len();
    let calendars = calendars(plan, tables.from, tables.to);
    let chunk = 2_048;
    let chunks = n.div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Option<Partial>> = vec![None; chunks];
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        return;
                    }
                    let mut p = Partial::new(tables);
                    let range = c * chunk..((c + 1) * chunk).min(n);
                    let len = range.len() as u64;
                    for i in range {
                        match plan.sim.devices[i].profile {
                            SimProfile::Lamp { .. } => p.lamp(plan, i, tables, &calendars),
                            SimProfile::Meter { .. } => p.meter(plan, i, tables),
                            SimProfile::Air { .. } => p.air(plan, i, tables),
                            SimProfile::Signal { .. } => p.signal(plan, i, tables),
                        }
                    }
                    progress.done.fetch_add(len, Ordering::Relaxed);
                    if let Ok(mut r) = results.lock() {
                        r.push((c, p));
                    }
                }
            });
        }
    });
    for (c, p) in results.into_inner().ok()? {
        parts[c] = Some(p);
    }
    if stop.load(Ordering::Relaxed) || parts.iter().any(Option::is_none) {
        return None;
    }
    let mut total = Partial::new(tables);
    for p in parts.into_iter().flatten() {
        total.lighting_kwh += p.lighting_kwh;
        total.lamp_hours_lit += p.lamp_hours_lit;
        total.lamp_hours_dark_at_night += p.lamp_hours_dark_at_night;
        total.building_kwh += p.building_kwh;
        total.heating_kwh += p.heating_kwh;
        for k in 0..3 {
            total.hours_over_limit[k] += p.hours_over_limit[k];
        }
        total.pm25.0 += p.pm25.0;
        total.pm25.1 += p.pm25.1;
        total.alarms += p.alarms;
        for (k, v) in p.signals {
            let s = total.signals.entry(k).or_default();
            s.green_ms += v.green_ms;
            s.observed_ms += v.observed_ms;
            s.cycle_sum_ms += v.cycle_sum_ms;
            s.cycles += v.cycles;
        }
        for (h, v) in p.hourly_lighting.iter().enumerate() {
            total.hourly_lighting[h] += v;
        }
        for (h, v) in p.hourly_building.iter().enumerate() {
            total.hourly_building[h] += v;
        }
        total.device_kwh.extend(p.device_kwh);
        total.standby_lamps += p.standby_lamps;
    }
    let standby_kw = total.standby_lamps as f64 * LAMP_STANDBY_W / 1000.0;
    add_hourly(
        &mut total.hourly_lighting,
        tables.span_from,
        tables.hour0,
        tables.from,
        tables.to,
        standby_kw,
    );
    Some(total)
}

/// One side's sums so far.
struct Side<'a> {
    plan: &'a Plan,
    result: RunResult,
    device_kwh: Vec<f64>,
    pm25: (f64, f64),
}

impl<'a> Side<'a> {
    fn new(plan: &'a Plan) -> Side<'a> {
        let mut result = RunResult::default();
        for l in LIMITS {
            result
                .hours_over_limit
                .insert(l.pollutant.as_str().to_string(), 0.0);
        }
        Side {
            plan,
            result,
            device_kwh: vec![0.0; plan.sim.devices.len()],
            pm25: (0.0, 0.0),
        }
    }

    fn add(&mut self, m: Partial, t: &MonthTables) {
        let r = &mut self.result;
        r.lighting_kwh += m.lighting_kwh;
        r.lamp_hours_lit += m.lamp_hours_lit;
        r.lamp_hours_dark_at_night += m.lamp_hours_dark_at_night;
        r.building_kwh += m.building_kwh;
        r.heating_kwh += m.heating_kwh;
        for l in LIMITS {
            *r.hours_over_limit
                .entry(l.pollutant.as_str().to_string())
                .or_default() += m.hours_over_limit[pollutant_index(l.pollutant)];
        }
        r.alarms_raised += m.alarms;
        let (mut green, mut observed) = (0, 0);
        for (k, v) in &m.signals {
            let s = r.signals.entry(k.clone()).or_default();
            s.green_ms += v.green_ms;
            s.observed_ms += v.observed_ms;
            s.cycle_sum_ms += v.cycle_sum_ms;
            s.cycles += v.cycles;
            green += v.green_ms;
            observed += v.observed_ms;
        }
        // Hour bins: the first may be shared with the month before (a span not starting on
        // the hour).
        for (h, (l, b)) in m.hourly_lighting.iter().zip(&m.hourly_building).enumerate() {
            let k = t.hour0 + h;
            if r.hourly_lighting_kwh.len() <= k {
                r.hourly_lighting_kwh.resize(k + 1, 0.0);
                r.hourly_building_kwh.resize(k + 1, 0.0);
            }
            r.hourly_lighting_kwh[k] += l;
            r.hourly_building_kwh[k] += b;
        }
        for (i, kwh) in &m.device_kwh {
            self.device_kwh[*i] += kwh;
            let d = self.plan.meta[*i]
                .district
                .as_deref()
                .unwrap_or("outside the districts");
            let e = r.by_district.entry(d.to_string()).or_default();
            match self.plan.sim.devices[*i].profile {
                SimProfile::Lamp { .. } => e.lighting_kwh += kwh,
                _ => e.building_kwh += kwh,
            }
        }
        self.pm25.0 += m.pm25.0;
        self.pm25.1 += m.pm25.1;
        r.pm25_mean_ugm3 = (self.pm25.1 > 0.0).then(|| self.pm25.0 / self.pm25.1);
        r.months.push(MonthFigures {
            month: month_label(t.from),
            from_ms: t.from,
            to_ms: t.to,
            lighting_kwh: m.lighting_kwh,
            building_kwh: m.building_kwh,
            heating_kwh: m.heating_kwh,
            lamp_hours_dark_at_night: m.lamp_hours_dark_at_night,
            hours_over_limit: m.hours_over_limit.iter().sum(),
            alarms_raised: m.alarms,
            green_share: (observed > 0).then(|| green as f64 / observed as f64),
            pm25_mean_ugm3: (m.pm25.1 > 0.0).then(|| m.pm25.0 / m.pm25.1),
        });
    }

    fn finish(self, complete: bool) -> Evaluated {
        let mut result = self.result;
        result.incomplete = !complete;
        let device_kwh = self
            .plan
            .sim
            .devices
            .iter()
            .zip(self.device_kwh)
            .filter(|(d, _)| {
                matches!(
                    d.profile,
                    SimProfile::Lamp { .. } | SimProfile::Meter { .. }
                )
            })
            .map(|(d, k)| (d.id.clone(), k))
            .collect();
        Evaluated { result, device_kwh }
    }
}

/// Evaluates `plans` (a comparison's two sides, or one) from `from` to `to`, a month at a time,
/// each month on `threads` cores; `stop` ends it after the months done (the results say they
/// are incomplete), `on_month` hears of each month done (its label and the months so far).
pub fn evaluate(
    plans: &[&Plan],
    from: i64,
    to: i64,
    threads: usize,
    progress: &Progress,
    stop: &AtomicBool,
    mut on_month: impl FnMut(&str, usize, usize),
) -> Vec<Evaluated> {
    let bounds = month_bounds(from, to);
    let months = bounds.len() - 1;
    let devices: usize = plans.iter().map(|p| p.sim.devices.len()).sum();
    progress
        .total
        .store((devices * months) as u64, Ordering::Relaxed);
    let mut sides: Vec<Side> = plans.iter().map(|p| Side::new(p)).collect();
    let rules = plans
        .first()
        .map_or_else(HealthRules::default, |p| p.rules.clone());
    let mut complete = true;
    'months: for (k, w) in bounds.windows(2).enumerate() {
        let tables = MonthTables::new((from, to), w[0], w[1], &rules);
        let mut done = Vec::new();
        for side in &sides {
            // A side whose health judges the sun elsewhere gets tables of its own.
            let own;
            let t = if side.plan.rules == rules {
                &tables
            } else {
                own = MonthTables::new((from, to), w[0], w[1], &side.plan.rules);
                &own
            };
            match evaluate_month(side.plan, t, threads, progress, stop) {
                Some(p) => done.push(p),
                None => {
                    complete = false;
                    break 'months;
                }
            }
        }
        for (side, p) in sides.iter_mut().zip(done) {
            side.add(p, &tables);
        }
        on_month(&month_label(w[0]), k + 1, months);
    }
    sides.into_iter().map(|s| s.finish(complete)).collect()
}

/// Seconds an evaluation of `sim` over `span_ms` on `threads` cores is expected to take (a
/// rough guide from this engine's rates on one core, by kind).
pub fn estimate_s(sim: &Simulator, span_ms: i64, threads: usize) -> f64 {
    let months = span_ms as f64 / (30.44 * 86_400_000.0);
    let per_month_s: f64 = sim
        .devices
        .iter()
        .map(|d| match d.profile {
            // Quarter hours of a month, about 15 ns each.
            SimProfile::Meter { .. } => 2_976.0 * 15e-9,
            SimProfile::Lamp { .. } => 20e-6,
            SimProfile::Air { .. } => 4_464.0 * 300e-9,
            SimProfile::Signal { .. } => 5e-6,
        })
        .sum();
    per_month_s * months / threads.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_sensors::simulate::whole_city;

    fn plan(step: usize) -> Plan {
        let devices: Vec<_> = whole_city(3).into_iter().step_by(step).collect();
        Plan {
            meta: vec![DeviceMeta::default(); devices.len()],
            sim: Arc::new(Simulator { seed: 3, devices }),
            rules: HealthRules::default(),
        }
    }

    fn ms(text: &str) -> i64 {
        let t = tvilling_city::scene::parse_utc_minute(text).expect("time");
        t * 1000
    }

    #[test]
    fn months_begin_at_local_midnight_on_the_first() {
        let from = ms("2026-01-10T23:00");
        let to = ms("2026-04-02T12:00");
        let b = month_bounds(from, to);
        let labels: Vec<String> = b.windows(2).map(|w| month_label(w[0])).collect();
        assert_eq!(labels, ["2026-01", "2026-02", "2026-03", "2026-04"]);
        // 1 February 00:00 CET is 31 January 23:00 UTC; 1 April 00:00 CEST is 31 March 22:00.
        assert_eq!(b[1], ms("2026-01-31T23:00"));
        assert_eq!(b[3], ms("2026-03-31T22:00"));
        assert_eq!((b[0], b[4]), (from, to));
    }

    #[test]
    fn span_lists_add_and_subtract() {
        let a = vec![(0, 10), (20, 30)];
        let b = vec![(5, 25)];
        assert_eq!(union(&a, &b), vec![(0, 30)]);
        assert_eq!(minus(&a, &b), vec![(0, 5), (25, 30)]);
        assert_eq!(minus(&b, &a), vec![(10, 20)]);
        assert_eq!(overlap_len(&a, &b), 10);
        assert_eq!(spans_len(&a), 20);
    }

    #[test]
    fn a_lamp_is_on_exactly_the_minutes_its_photocell_sees_the_sun_below_its_threshold() {
        let from = ms("2026-03-01T00:00");
        let to = ms("2026-03-04T00:00");
        let t = MonthTables::new((from, to), from, to, &HealthRules::default());
        for threshold in [-0.5, -0.93, -1.5] {
            let on = t.wants_on(threshold);
            assert_eq!(on.len(), 4, "three nights, one split at each end: {on:?}");
            let mut m = from;
            while m < to {
                let inside = on.iter().any(|(a, b)| (*a..*b).contains(&m));
                assert_eq!(inside, photocell_sun(m) < threshold, "minute {m}");
                m += PHOTOCELL_MS;
            }
        }
    }

    #[test]
    fn the_same_plans_give_the_same_figures_on_any_number_of_cores() {
        let p = plan(211);
        let from = ms("2026-11-22T23:00");
        let to = ms("2026-12-02T23:00");
        let stop = AtomicBool::new(false);
        let run = |threads| {
            evaluate(
                &[&p, &p],
                from,
                to,
                threads,
                &Progress::default(),
                &stop,
                |_, _, _| {},
            )
        };
        let one = run(1);
        let three = run(3);
        assert_eq!(one[0].result, one[1].result, "blank is baseline");
        assert_eq!(one[0].result, three[0].result);
        let r = &one[0].result;
        assert_eq!(r.months.len(), 2);
        assert!(r.lighting_kwh > 0.0 && r.building_kwh > 0.0 && r.heating_kwh > 0.0);
        assert!(r.lamp_hours_lit > 0.0 && r.alarms_raised > 0);
        assert_eq!(r.hourly_lighting_kwh.len(), 240);
        let hourly: f64 = r.hourly_lighting_kwh.iter().sum();
        assert!((hourly - r.lighting_kwh).abs() < 1e-6 * r.lighting_kwh);
        let hourly: f64 = r.hourly_building_kwh.iter().sum();
        assert!((hourly - r.building_kwh).abs() < 1e-6 * r.building_kwh);
        let months: f64 = r.months.iter().map(|m| m.lighting_kwh).sum();
        assert!((months - r.lighting_kwh).abs() < 1e-6 * r.lighting_kwh);
        assert!(!r.incomplete);
    }

    #[test]
    fn a_stopped_evaluation_is_marked_incomplete() {
        let p = plan(997);
        let stop = AtomicBool::new(true);
        let out = evaluate(
            &[&p],
            ms("2026-01-01T00:00"),
            ms("2026-03-01T00:00"),
            2,
            &Progress::default(),
            &stop,
            |_, _, _| {},
        );
        assert!(out[0].result.incomplete && out[0].result.months.is_empty());
    }

    #[test]
    fn a_calendar_worked_out_once_gives_each_lamp_what_its_own_steps_give() {
        let p = plan(1);
        let from = ms("2026-03-27T23:00");
        let to = ms("2026-04-03T22:00");
        let t = MonthTables::new((from, to), from, to, &p.rules);
        let lamps: Vec<usize> = (0..p.sim.devices.len())
            .filter(|&i| matches!(p.sim.devices[i].profile, SimProfile::Lamp { .. }))
            .step_by(997)
            .collect();
        assert!(lamps.len() > 100);
        let (mut fast, mut walked) = (Partial::new(&t), Partial::new(&t));
        let table = calendars(&p, from, to);
        for &i in &lamps {
            fast.lamp(&p, i, &t, &table);
            walked.lamp(&p, i, &t, &Calendars::new());
        }
        // Across the change to summer time, with the calendar's steps in local time.
        assert!((fast.lighting_kwh - walked.lighting_kwh).abs() < 1e-9 * walked.lighting_kwh);
        assert_eq!(fast.lamp_hours_lit, walked.lamp_hours_lit);
        assert_eq!(fast.alarms, walked.alarms);
        for (a, b) in fast.hourly_lighting.iter().zip(&walked.hourly_lighting) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn signal_green_follows_the_plan_to_the_millisecond() {
        let p = plan(1);
        let head = p
            .sim
            .devices
            .iter()
            .position(|d| matches!(d.profile, SimProfile::Signal { .. }))
            .expect("a head");
        let from = ms("2026-11-23T07:00");
        let to = from + 3_600_000;
        // Walk the simulator's own steps over the hour.
        let profile = &p.sim.devices[head].profile;
        let mut green = 0;
        let mut at = from;
        while at < to {
            let next = profile.signal_change_after(at).expect("steps").min(to);
            if profile.signal_at(at).expect("aspect").0 == SignalAspect::Green {
                green += next - at;
            }
            at = next;
        }
        // A month before the span's end: its heads count to its end.
        let t = MonthTables::new((from, to + 1), from, to, &p.rules);
        let mut part = Partial::new(&t);
        part.signal(&p, head, &t);
        let s = part.signals.values().next().expect("one controller");
        assert_eq!(s.observed_ms, 3_600_000);
        assert_eq!(s.green_ms, green);
        assert!(s.cycles > 30, "{} cycles", s.cycles);
    }
}
