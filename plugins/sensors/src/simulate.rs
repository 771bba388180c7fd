//! The built-in simulator: a source like any other, driven by events. Each device's values are
//! a pure function of (seed, device, time) that holds between its events, and each device has
//! its next change scheduled ([`SimulatorRun`]): the run reports what changed, when it changed,
//! as the twin's own quantities ([`SimReport`]), which the twin hands straight to the apply
//! stage; one mode still encodes them as SenML JSON (RFC 8428) for the same decoder a broker's
//! messages go through. It is stepped by the ECS from the twin clock ([`SimulatorRun::step`]),
//! not run on a thread of its own.
//!
//! Models, all in Stockholm local time (CET/CEST):
//! - signal heads cycle the Swedish sequence red, red-amber (1 s), green, amber (3 s), with
//!   2 s all-red between the two phase groups of a controller; their next change is
//!   arithmetic on the plan (cycle, offset, split);
//! - lamps switch on when their photocell, reading the sun once a minute, sees it below its
//!   threshold (between -0.5 and -1.5 degrees) and run at their [`LightingPolicy`]'s level:
//!   by default 100 %, dimmed to 50 % from 00:00 to 05:00 (a scenario may give them another
//!   calendar, presence dimming or other fittings); they draw their rated power times that
//!   level; a few (by seed) are broken from the start, burnt out (dark at night) or reporting
//!   a driver fault, and each lamp develops such faults during a run at seeded times (about
//!   one in ten years, [`LAMP_FAULTS_PER_YEAR`]), repaired one to seven days later;
//! - building meters send quarter-hour interval data: a daily profile by use (offices by
//!   working hours, homes with morning and evening peaks), heating from the outdoor
//!   temperature, each held for its quarter hour;
//! - air sensors send 10-minute means: NO2 and PM follow traffic with weekday rush-hour peaks
//!   at 08:00 and 16:30 (PM10 with Stockholm's spring road-dust season), temperature a
//!   seasonal and daily curve.
//!
//! Besides changes, a device that would otherwise be silent long enough to look stale says it
//! is alive ([`SimReporting::keep_alive_ms`]); full heartbeats are a setting.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::TAU;

use tvilling_geo::sun::{STOCKHOLM_LAT_LON, civil_from_days, days_from_civil, sun_position};

use crate::codec::{DecodeContext, PayloadFormat, decode};
use crate::registry::{DeviceKind, Quantity};
use crate::state::SignalAspect;

/// The simulator's seed when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// A signal head driven by a coupled simulator (SUMO) reports at least this often (ms).
pub const SIGNAL_HEARTBEAT_MS: i64 = 5_000;
/// Devices per SenML pack.
pub const PACK_SIZE: usize = 100;

const RED_AMBER_S: f64 = 1.0;
const AMBER_S: f64 = 3.0;
const ALL_RED_S: f64 = 2.0;

/// The whole city as the mission sizes it, by kind: about 150,000 street lamps, 11,000
/// signal heads, 10^5 buildings with a meter each, and 100 air sensors.
pub const WHOLE_CITY: [(DeviceKind, usize, &str); 4] = [
    (DeviceKind::Lamp, 150_000, "lamp"),
    (DeviceKind::SignalHead, 11_000, "signal"),
    (DeviceKind::Meter, 100_000, "meter"),
    (DeviceKind::AirSensor, 100, "air"),
];

/// Simulated devices for the whole city ([`WHOLE_CITY`]), ids `kind/n`, each with its kind's
/// default profile (for measurements at city scale).
pub fn whole_city(seed: u64) -> Vec<SimDevice> {
    let mut devices = Vec::new();
    for (kind, n, prefix) in WHOLE_CITY {
        for i in 0..n {
            let id = format!("{prefix}/{i}");
            devices.push(SimDevice {
                profile: SimProfile::default_for(seed, &id, kind),
                id,
                kind,
            });
        }
    }
    devices
}

/// A uniform number in [0, 1) from a seed, a key and a salt (SplitMix64 over FNV-1a).
pub fn unit_hash(seed: u64, key: &str, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (mix(seed ^ h.rotate_left(17) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 11) as f64
        / (1u64 << 53) as f64
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Smooth noise in [-1, 1] over time (linear between values every `period_ms`).
fn noise(seed: u64, device: u64, t_ms: i64, period_ms: i64) -> f64 {
    let k = t_ms.div_euclid(period_ms);
    let f = t_ms.rem_euclid(period_ms) as f64 / period_ms as f64;
    let at = |k: i64| (mix(seed ^ mix(device ^ mix(k as u64))) >> 11) as f64 / (1u64 << 53) as f64;
    if f == 0.0 {
        // The same value as below (a * 1 + b * 0 is a): the next one is not needed.
        return at(k) * 2.0 - 1.0;
    }
    (at(k) * (1.0 - f) + at(k + 1) * f) * 2.0 - 1.0
}

/// What a building is used for, from OSM's `building` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildingUse {
    Homes,
    Offices,
    Retail,
    Public,
}

impl BuildingUse {
    pub fn from_osm(v: Option<&str>) -> BuildingUse {
        match v {
            Some("apartments" | "residential" | "house" | "dormitory" | "terrace") => {
                BuildingUse::Homes
            }
            Some("office" | "commercial" | "industrial" | "hotel") => BuildingUse::Offices,
            Some("retail" | "supermarket" | "kiosk") => BuildingUse::Retail,
            Some(
                "church" | "school" | "university" | "public" | "civic" | "government" | "hospital"
                | "train_station" | "museum",
            ) => BuildingUse::Public,
            // Inner Stockholm's untyped blocks are mostly flats above shops.
            _ => BuildingUse::Homes,
        }
    }
}

/// How the simulator drives one device.
#[derive(Debug, Clone, PartialEq)]
pub enum SimProfile {
    Signal {
        cycle_s: f64,
        offset_s: f64,
        /// Share of the cycle's green time that goes to group 0.
        split: f64,
        /// Phase group 0 or 1 of its controller.
        group: u8,
    },
    Lamp {
        rated_w: f64,
        /// Switches on below this sun elevation, degrees.
        on_below_deg: f64,
        /// Broken from before the run starts, for all of it.
        broken: Option<LampBreak>,
        /// Draws the faults it develops during a run, at seeded times, each repaired some days
        /// later ([`LAMP_FAULTS_PER_YEAR`]); `None`: it develops none.
        fault_key: Option<u64>,
        /// Its level through the night (shared by the lamps that follow one policy).
        policy: std::sync::Arc<LightingPolicy>,
    },
    Meter {
        floor_area_m2: f64,
        building_use: BuildingUse,
    },
    Air {
        /// 0 (quiet street) to 1 (busiest).
        traffic: f64,
    },
}

/// How a lamp is run while it is on: a dimming calendar (a level from each time of day, for
/// weekdays and for weekends) and optional presence (adaptive) dimming.
#[derive(Debug, Clone, PartialEq)]
pub struct LightingPolicy {
    /// (minute of the local day, level in percent of rated power) from that minute on; the
    /// first step is at minute 0, steps ascend.
    pub weekdays: Vec<(u16, f64)>,
    pub weekends: Vec<(u16, f64)>,
    pub presence: Option<Presence>,
}

/// Presence (adaptive) dimming: the lamp runs at `base_pct` (or the calendar's level when that
/// is lower) except for the share of time someone passes, when it runs at the calendar's level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Presence {
    pub base_pct: f64,
    /// 0..=1: the share of 10-minute spans in which the lamp is raised.
    pub raised_share: f64,
}

/// How long a presence-raised lamp stays up, ms (the span the share counts in).
pub const PRESENCE_SPAN_MS: i64 = 600_000;

impl LightingPolicy {
    /// Today's practice in the model: full level, dimmed to 50 % from 00:00 to 05:00, every day.
    pub fn baseline() -> LightingPolicy {
        let steps = vec![(0, 50.0), (300, 100.0)];
        LightingPolicy {
            weekdays: steps.clone(),
            weekends: steps,
            presence: None,
        }
    }

    /// One shared baseline policy (the default of every lamp).
    pub fn shared_baseline() -> std::sync::Arc<LightingPolicy> {
        static BASELINE: std::sync::LazyLock<std::sync::Arc<LightingPolicy>> =
            std::sync::LazyLock::new(|| std::sync::Arc::new(LightingPolicy::baseline()));
        BASELINE.clone()
    }

    /// The calendar's level at a local time, percent.
    pub fn calendar_level(&self, local: &LocalTime) -> f64 {
        let steps = if local.weekday == 0 || local.weekday == 6 {
            &self.weekends
        } else {
            &self.weekdays
        };
        let minute = (local.hour * 60.0).floor() as u16;
        steps
            .iter()
            .take_while(|(from, _)| *from <= minute)
            .last()
            .map_or(100.0, |(_, level)| *level)
    }

    /// The level of a lit lamp at `t_ms`, percent: the calendar's, lowered by presence dimming
    /// outside the spans someone passes (`passing`: 0..1, drawn per lamp and span).
    pub fn level(&self, local: &LocalTime, passing: f64) -> f64 {
        let level = self.calendar_level(local);
        match self.presence {
            Some(p) if passing >= p.raised_share => level.min(p.base_pct),
            _ => level,
        }
    }
}

/// How a simulated lamp is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LampBreak {
    /// Stays dark and draws nothing (the lamp is spent).
    BurntOut,
    /// Reports a driver fault while lit.
    DriverFault,
}

/// Faults a simulated lamp develops a year, on average (the model's assumption: a lamp out
/// or faulty about once in ten years; for the city's 150,000 lamps some 40 a day).
pub const LAMP_FAULTS_PER_YEAR: f64 = 0.1;
/// Faults are drawn for each lamp and window of this length (at most one fault a window).
const FAULT_WINDOW_MS: i64 = 28 * 86_400_000;
/// A fault is repaired between one and seven days after it begins.
const REPAIR_MIN_MS: i64 = 86_400_000;
const REPAIR_MAX_MS: i64 = 7 * 86_400_000;
/// Of the faults drawn, the share that leave the lamp dark (the rest: driver faults).
const BURNT_OUT_SHARE: f64 = 0.6;

/// The fault drawn for a lamp (its `fault_key`) in window `w`: [start, repaired) on whole
/// minutes, and how it is broken.
fn drawn_fault(key: u64, w: i64) -> Option<(i64, i64, LampBreak)> {
    let draw = |salt: u64| {
        (mix(key ^ mix((w as u64) ^ mix(salt ^ 0x6661_756c_7473))) >> 11) as f64
            / (1u64 << 53) as f64
    };
    let p = LAMP_FAULTS_PER_YEAR * FAULT_WINDOW_MS as f64 / (365.25 * 86_400_000.0);
    if draw(1) >= p {
        return None;
    }
    let minutes = |share: f64, span_ms: i64| (share * (span_ms / 60_000) as f64) as i64 * 60_000;
    let start = w * FAULT_WINDOW_MS + minutes(draw(2), FAULT_WINDOW_MS);
    let repair = REPAIR_MIN_MS + minutes(draw(3), REPAIR_MAX_MS - REPAIR_MIN_MS);
    let how = if draw(4) < BURNT_OUT_SHARE {
        LampBreak::BurntOut
    } else {
        LampBreak::DriverFault
    };
    Some((start, start + repair, how))
}

/// The fault of window `w` as it holds: from its start, or from the repair of the one drawn
/// in the window before when that is later (a lamp has one fault at a time). A fault never
/// reaches past the next window, so at any instant only two windows' faults can hold.
fn lamp_fault(key: u64, w: i64) -> Option<(i64, i64, LampBreak)> {
    let (start, end, how) = drawn_fault(key, w)?;
    let start = drawn_fault(key, w - 1).map_or(start, |before| start.max(before.1));
    (start < end).then_some((start, end, how))
}

impl SimProfile {
    /// A lamp of `rated_w` with a seeded photocell threshold; 0.5 % are broken.
    pub fn lamp(seed: u64, id: &str, rated_w: f64) -> SimProfile {
        let h = unit_hash(seed, id, 4);
        SimProfile::Lamp {
            rated_w,
            on_below_deg: -0.5 - unit_hash(seed, id, 5),
            broken: if h < 0.003 {
                Some(LampBreak::BurntOut)
            } else if h < 0.005 {
                Some(LampBreak::DriverFault)
            } else {
                None
            },
            fault_key: Some(mix(unit_hash(seed, id, 8).to_bits())),
            policy: LightingPolicy::shared_baseline(),
        }
    }

    /// How a lamp is broken at `t_ms`, if it is: broken from the start, or by a fault it
    /// developed then; `None` for others.
    pub fn lamp_break_at(&self, t_ms: i64) -> Option<LampBreak> {
        let SimProfile::Lamp {
            broken, fault_key, ..
        } = self
        else {
            return None;
        };
        if broken.is_some() {
            return *broken;
        }
        let key = (*fault_key)?;
        let w = t_ms.div_euclid(FAULT_WINDOW_MS);
        [w - 1, w]
            .into_iter()
            .filter_map(|w| lamp_fault(key, w))
            .find(|(a, b, _)| (*a..*b).contains(&t_ms))
            .map(|(_, _, how)| how)
    }

    /// The spans of [from, to) in which a lamp is broken and how, sorted and disjoint (a lamp
    /// broken from the start: all of it); empty for others.
    pub fn lamp_breaks(&self, from: i64, to: i64) -> Vec<(i64, i64, LampBreak)> {
        let SimProfile::Lamp {
            broken, fault_key, ..
        } = self
        else {
            return Vec::new();
        };
        if let Some(how) = broken {
            return if from < to {
                vec![(from, to, *how)]
            } else {
                Vec::new()
            };
        }
        let Some(key) = *fault_key else {
            return Vec::new();
        };
        let first = from.div_euclid(FAULT_WINDOW_MS) - 1;
        let last = to.div_euclid(FAULT_WINDOW_MS);
        (first..=last)
            .filter_map(|w| lamp_fault(key, w))
            .map(|(a, b, how)| (a.max(from), b.min(to), how))
            .filter(|(a, b, _)| a < b)
            .collect()
    }

    /// The next moment after `t_ms` at which a lamp's faults may change what it does (a fault
    /// beginning or repaired; else a moment to look again); `i64::MAX` for one that never
    /// changes by them.
    pub fn next_break_change(&self, t_ms: i64) -> i64 {
        let SimProfile::Lamp {
            broken: None,
            fault_key: Some(key),
            ..
        } = self
        else {
            return i64::MAX;
        };
        let w = t_ms.div_euclid(FAULT_WINDOW_MS);
        (w - 1..=w + 1)
            .filter_map(|w| lamp_fault(*key, w))
            .flat_map(|(a, b, _)| [a, b])
            .filter(|m| *m > t_ms)
            .min()
            .unwrap_or((w + 2) * FAULT_WINDOW_MS)
    }

    /// A signal head's aspect at `t_ms` and the seconds until it changes; `None` for others.
    pub fn signal_at(&self, t_ms: i64) -> Option<(SignalAspect, f64)> {
        match self {
            SimProfile::Signal {
                cycle_s,
                offset_s,
                split,
                group,
            } => {
                // In whole milliseconds first: seconds since 1970 as a float blur the plan's
                // steps by a fraction of a microsecond.
                let cycle_ms = ((cycle_s * 1000.0).round() as i64).max(1);
                let offset_ms = (offset_s * 1000.0).round() as i64;
                let into = (t_ms - offset_ms).rem_euclid(cycle_ms) as f64 / 1000.0;
                Some(signal_aspect(*cycle_s, *split, *group, into))
            }
            _ => None,
        }
    }

    /// When a signal head's aspect may next change after `t_ms` (at least a millisecond on),
    /// Unix ms, as the simulator schedules it; `None` for others.
    pub fn signal_change_after(&self, t_ms: i64) -> Option<i64> {
        let (_, left) = self.signal_at(t_ms)?;
        // Plans step on whole milliseconds; a left of 2.9999999 s is 3 s (and if the model
        // still holds the old aspect then, the next millisecond asks again).
        let ms = left * 1000.0;
        let ms = if (ms - ms.round()).abs() < 1e-6 {
            ms.round()
        } else {
            ms.ceil()
        };
        Some((t_ms + ms as i64).max(t_ms + 1))
    }

    /// A profile for a device of `kind` known only by its id (a registry file's device).
    pub fn default_for(seed: u64, id: &str, kind: DeviceKind) -> SimProfile {
        match kind {
            DeviceKind::SignalHead => {
                let cycle_s = (60.0 + 30.0 * unit_hash(seed, id, 1)).round();
                SimProfile::Signal {
                    cycle_s,
                    offset_s: (unit_hash(seed, id, 2) * cycle_s).round(),
                    split: 0.55,
                    group: 0,
                }
            }
            DeviceKind::Lamp => SimProfile::lamp(seed, id, 60.0),
            DeviceKind::Meter => SimProfile::Meter {
                floor_area_m2: 2_000.0 + 8_000.0 * unit_hash(seed, id, 6),
                building_use: BuildingUse::Homes,
            },
            DeviceKind::AirSensor => SimProfile::Air {
                traffic: 0.5 + 0.5 * unit_hash(seed, id, 7),
            },
        }
    }
}

/// Stockholm's offset from UTC at `unix_s`: CEST (+2 h) from the last Sunday of March 01:00 UTC
/// to the last Sunday of October 01:00 UTC, else CET (+1 h).
pub fn stockholm_utc_offset_s(unix_s: i64) -> i64 {
    let days = unix_s.div_euclid(86_400);
    let (year, _, _) = civil_from_days(days);
    let last_sunday = |month: u32| {
        let d = days_from_civil(year, month, 31);
        d - weekday(d) as i64 // weekday: 0 = Sunday
    };
    let start = last_sunday(3) * 86_400 + 3_600;
    let end = last_sunday(10) * 86_400 + 3_600;
    if (start..end).contains(&unix_s) {
        7_200
    } else {
        3_600
    }
}

/// Day of the week, 0 = Sunday (1970-01-01 was a Thursday).
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Local time of day and calendar facts in Stockholm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalTime {
    /// Hours since local midnight, 0..24.
    pub hour: f64,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
    /// 0-based day of the year.
    pub day_of_year: u32,
    /// Unix ms of the local midnight that began this day.
    pub midnight_ms: i64,
}

pub fn stockholm_local(t_ms: i64) -> LocalTime {
    let offset = stockholm_utc_offset_s(t_ms.div_euclid(1000));
    let local_ms = t_ms + offset * 1000;
    let days = local_ms.div_euclid(86_400_000);
    let (year, _, _) = civil_from_days(days);
    LocalTime {
        hour: local_ms.rem_euclid(86_400_000) as f64 / 3_600_000.0,
        weekday: weekday(days),
        day_of_year: (days - days_from_civil(year, 1, 1)) as u32,
        // The offset at that midnight (the clocks change at 01:00 UTC, after it).
        midnight_ms: days * 86_400_000 - stockholm_utc_offset_s(days * 86_400 - 7_200) * 1000,
    }
}

/// Outdoor temperature model for Stockholm, °C: a seasonal curve (about -3 in late January,
/// 18 in late July) and a daily swing peaking at 15:00.
pub fn outdoor_temperature(local: &LocalTime) -> f64 {
    let season = (TAU * (f64::from(local.day_of_year) - 202.0) / 365.0).cos();
    let day = (TAU * (local.hour - 15.0) / 24.0).cos();
    7.5 + 10.5 * season + (2.0 + 2.0 * season) * day
}

/// Traffic intensity 0..1: weekday rush hours at 08:00 and 16:30, a daytime base, quieter
/// weekends and nights.
pub fn traffic_intensity(local: &LocalTime) -> f64 {
    let g = |centre: f64, width: f64| (-((local.hour - centre) / width).powi(2) / 2.0).exp();
    let daytime = g(13.0, 4.0);
    if local.weekday == 0 || local.weekday == 6 {
        0.1 + 0.45 * daytime
    } else {
        0.1 + 0.35 * daytime + 0.6 * g(8.0, 0.9) + 0.55 * g(16.5, 1.2)
    }
}

/// Share of peak electrical load of a building of `u` at `local`.
pub fn load_share(u: BuildingUse, local: &LocalTime) -> f64 {
    let h = local.hour;
    let weekend = local.weekday == 0 || local.weekday == 6;
    let g = |centre: f64, width: f64| (-((h - centre) / width).powi(2) / 2.0).exp();
    match u {
        BuildingUse::Homes => 0.3 + 0.35 * g(7.5, 1.2) + 0.6 * g(19.0, 2.0) + 0.1 * g(13.0, 3.0),
        BuildingUse::Offices | BuildingUse::Public => {
            let open = if weekend {
                0.1
            } else {
                (1.0 / (1.0 + (-(h - 7.5) * 2.0).exp())) * (1.0 / (1.0 + ((h - 17.5) * 2.0).exp()))
            };
            0.25 + 0.75 * open
        }
        BuildingUse::Retail => {
            let open =
                (1.0 / (1.0 + (-(h - 9.5) * 3.0).exp())) * (1.0 / (1.0 + ((h - 19.5) * 3.0).exp()));
            0.2 + 0.8 * open
        }
    }
}

/// Peak electrical load per m² of floor, kW.
fn peak_kw_per_m2(u: BuildingUse) -> f64 {
    match u {
        BuildingUse::Homes => 0.006,
        BuildingUse::Offices => 0.012,
        BuildingUse::Retail => 0.02,
        BuildingUse::Public => 0.01,
    }
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    pub id: String,
    pub kind: DeviceKind,
    pub profile: SimProfile,
}

/// A value of a simulated reading, as a payload writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum SimValue {
    Number(f64),
    Bool(bool),
    Text(&'static str),
}

/// A lamp's photocell samples the sun once a minute: its state holds from one minute to the
/// next.
pub const PHOTOCELL_MS: i64 = 60_000;
/// A meter reads its registers every 15 minutes (interval data, as AMR meters send it): its
/// values hold from one reading to the next.
pub const METER_INTERVAL_MS: i64 = 900_000;
/// An air sensor reports 10-minute means.
pub const AIR_INTERVAL_MS: i64 = 600_000;

/// Values a simulated device holds at most.
pub const SIM_VALUES: usize = 4;

/// A device's values at one instant as the twin's own quantities (at most [`SIM_VALUES`]),
/// in its kind's order: what the simulator hands the apply stage, with no payload between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimValues {
    len: u8,
    quantities: [Quantity; SIM_VALUES],
    values: [f64; SIM_VALUES],
}

impl Default for SimValues {
    fn default() -> Self {
        SimValues::EMPTY
    }
}

impl SimValues {
    pub const EMPTY: SimValues = SimValues {
        len: 0,
        quantities: [Quantity::SignalAspect; SIM_VALUES],
        values: [0.0; SIM_VALUES],
    };

    fn push(&mut self, q: Quantity, v: f64) {
        let n = usize::from(self.len);
        if n < SIM_VALUES {
            self.quantities[n] = q;
            self.values[n] = v;
            self.len += 1;
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (quantity, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (Quantity, f64)> + '_ {
        (0..self.len()).map(|i| (self.quantities[i], self.values[i]))
    }

    pub fn get(&self, q: Quantity) -> Option<f64> {
        self.iter().find(|(x, _)| *x == q).map(|(_, v)| v)
    }

    /// The values of `self` that differ from `before` (all of them where `before` lacks the
    /// quantity), in order.
    pub fn changed_from(&self, before: &SimValues) -> SimValues {
        let mut out = SimValues::EMPTY;
        for (q, v) in self.iter() {
            if before.get(q) != Some(v) {
                out.push(q, v);
            }
        }
        out
    }
}

/// The field a simulated value travels under in a SenML pack (the names the kinds' default
/// field rules read) and how it is written.
pub fn sim_field(q: Quantity, v: f64) -> (&'static str, SimValue) {
    let number = SimValue::Number(v);
    match q {
        Quantity::SignalAspect => (
            "state",
            SimValue::Text(aspect_name(
                SignalAspect::from_code(v).unwrap_or(SignalAspect::Dark),
            )),
        ),
        Quantity::LampOn => ("on", SimValue::Bool(v >= 0.5)),
        Quantity::LampDimPct => ("dim", number),
        Quantity::LampPowerW => ("power_w", number),
        Quantity::LampFault => ("fault", SimValue::Bool(v >= 0.5)),
        Quantity::PowerKw => ("power_kw", number),
        Quantity::EnergyTodayKwh => ("energy_today_kwh", number),
        Quantity::HeatingKw => ("heating_kw", number),
        Quantity::No2 => ("no2", number),
        Quantity::Pm10 => ("pm10", number),
        Quantity::Pm25 => ("pm25", number),
        Quantity::TemperatureC => ("temperature", number),
    }
}

/// The simulator's model: its devices and seed. Every value is a pure function of (seed,
/// device, time) that holds between the device's events (its signal plan's steps, its
/// photocell's minutes, its meter's quarter hours, its air sensor's ten minutes).
#[derive(Debug, Clone)]
pub struct Simulator {
    pub seed: u64,
    pub devices: Vec<SimDevice>,
}

fn aspect_name(a: SignalAspect) -> &'static str {
    match a {
        SignalAspect::Red => "red",
        SignalAspect::RedAmber => "red-amber",
        SignalAspect::Green => "green",
        SignalAspect::Amber => "amber",
        SignalAspect::FlashingAmber => "flashing-amber",
        SignalAspect::Dark => "dark",
    }
}

/// When a phase group's red-amber starts in its controller's cycle, and how long its green is,
/// seconds.
fn group_timing(cycle_s: f64, split: f64, group: u8) -> (f64, f64) {
    // Group 0: red-amber, green, amber, then red while group 1 runs; 2 s all-red between.
    let per_group = RED_AMBER_S + AMBER_S + ALL_RED_S;
    let greens = (cycle_s - 2.0 * per_group).max(2.0);
    let g0 = (greens * split).max(1.0);
    let g1 = (greens - g0).max(1.0);
    if group == 0 {
        (0.0, g0)
    } else {
        (per_group + g0, g1)
    }
}

/// Seconds into its controller's cycle (before the offset) at which a group's green begins.
pub fn green_start_s(cycle_s: f64, split: f64, group: u8) -> f64 {
    group_timing(cycle_s, split, group).0 + RED_AMBER_S
}

/// The aspect of a head and the seconds until it changes, `t_s` seconds into its controller's
/// cycle (already offset).
pub fn signal_aspect(cycle_s: f64, split: f64, group: u8, t_s: f64) -> (SignalAspect, f64) {
    let (start, green) = group_timing(cycle_s, split, group);
    let u = (t_s - start).rem_euclid(cycle_s);
    let bounds = [
        (RED_AMBER_S, SignalAspect::RedAmber),
        (RED_AMBER_S + green, SignalAspect::Green),
        (RED_AMBER_S + green + AMBER_S, SignalAspect::Amber),
        (cycle_s, SignalAspect::Red),
    ];
    for (end, aspect) in bounds {
        if u < end {
            return (aspect, end - u);
        }
    }
    (SignalAspect::Red, cycle_s - u)
}

/// A simulated lamp at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampNow {
    pub on: bool,
    /// Level while on, percent of rated power (100 while off).
    pub dim_pct: f64,
    pub power_w: f64,
    pub fault: bool,
}

/// What a simulated device shows at an instant, without its report or its totals: enough to
/// draw a scenario's city at any moment of its span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimLook {
    Signal(SignalAspect),
    Lamp(LampNow),
    Meter { power_kw: f64 },
    Air { no2: f64 },
}

/// A lamp's standby draw while off, W.
pub const LAMP_STANDBY_W: f64 = 0.5;

/// The sun's elevation as a photocell reads it at `t_ms`: at the start of that minute, degrees.
pub fn photocell_sun(t_ms: i64) -> f64 {
    let minute_s = t_ms.div_euclid(PHOTOCELL_MS) * (PHOTOCELL_MS / 1000);
    sun_position(STOCKHOLM_LAT_LON.0, STOCKHOLM_LAT_LON.1, minute_s).elevation_deg
}

/// A meter's electrical power over the reading interval that begins at `t0_ms`, kW.
fn meter_power_kw(seed: u64, key: u64, floor_area_m2: f64, u: BuildingUse, t0_ms: i64) -> f64 {
    let l = stockholm_local(t0_ms);
    meter_power_with_share(seed, key, floor_area_m2, u, load_share(u, &l), t0_ms)
}

/// As a meter's power over the reading that begins at `t0_ms` ([`Simulator::values`] gives it
/// rounded), from its use's [`load_share`] then (worked out once for many meters), kW: the
/// same arithmetic, bit for bit.
pub fn meter_power_with_share(
    seed: u64,
    key: u64,
    floor_area_m2: f64,
    u: BuildingUse,
    share: f64,
    t0_ms: i64,
) -> f64 {
    floor_area_m2
        * peak_kw_per_m2(u)
        * share
        * (1.0 + 0.05 * noise(seed, key, t0_ms, METER_INTERVAL_MS))
}

/// District heating of a building at an outdoor temperature: 35 W/m² at -20 °C, nothing above
/// 17 °C, kW (unrounded).
pub fn heating_kw(floor_area_m2: f64, outdoor_c: f64) -> f64 {
    floor_area_m2 * 0.035 * ((17.0 - outdoor_c) / 37.0).clamp(0.0, 1.0)
}

/// An air sensor's NO2 over the interval that begins at `t0_ms` (`rush`: the traffic intensity
/// then), µg/m³, unrounded.
fn air_no2(seed: u64, key: u64, traffic: f64, rush: f64, t0_ms: i64) -> f64 {
    8.0 + traffic * 55.0 * rush + 4.0 * noise(seed, key ^ (1 << 40), t0_ms, AIR_INTERVAL_MS)
}

/// Whether lamps `presence` dimming raises at `t_ms` (drawn per lamp and span, apart from
/// anything else the seed draws).
fn passing(seed: u64, key: u64, t_ms: i64) -> f64 {
    let span = t_ms.div_euclid(PRESENCE_SPAN_MS);
    (mix(seed ^ mix(key ^ mix(span as u64 ^ 0x7072_6573))) >> 11) as f64 / (1u64 << 53) as f64
}

impl Simulator {
    /// Lamp `i` at `t_ms` (`sun`: [`photocell_sun`] then, degrees); `None` for others.
    pub fn lamp_now(&self, i: usize, t_ms: i64, local: &LocalTime, sun: f64) -> Option<LampNow> {
        let profile = &self.devices[i].profile;
        let SimProfile::Lamp {
            rated_w,
            on_below_deg,
            policy,
            ..
        } = profile
        else {
            return None;
        };
        let broken = profile.lamp_break_at(t_ms);
        let wants_on = sun < *on_below_deg;
        let on = wants_on && broken != Some(LampBreak::BurntOut);
        let dim_pct = if on {
            policy.level(local, passing(self.seed, i as u64, t_ms))
        } else {
            100.0
        };
        let power_w = if on {
            round(rated_w * dim_pct / 100.0, 1)
        } else {
            LAMP_STANDBY_W
        };
        Some(LampNow {
            on,
            dim_pct,
            power_w,
            fault: on && broken == Some(LampBreak::DriverFault),
        })
    }

    /// What every device shows at `t_ms`, in device order (the sun and the local time are
    /// worked out once).
    pub fn looks(&self, t_ms: i64) -> Vec<SimLook> {
        let local = stockholm_local(t_ms);
        let sun = photocell_sun(t_ms);
        let t_air = t_ms.div_euclid(AIR_INTERVAL_MS) * AIR_INTERVAL_MS;
        let rush = traffic_intensity(&stockholm_local(t_air));
        let t_meter = t_ms.div_euclid(METER_INTERVAL_MS) * METER_INTERVAL_MS;
        (0..self.devices.len())
            .map(|i| {
                if let Some(l) = self.lamp_now(i, t_ms, &local, sun) {
                    return SimLook::Lamp(l);
                }
                match &self.devices[i].profile {
                    SimProfile::Meter {
                        floor_area_m2,
                        building_use,
                    } => SimLook::Meter {
                        power_kw: round(
                            meter_power_kw(
                                self.seed,
                                i as u64,
                                *floor_area_m2,
                                *building_use,
                                t_meter,
                            ),
                            2,
                        ),
                    },
                    SimProfile::Air { traffic } => SimLook::Air {
                        no2: round(
                            air_no2(self.seed, i as u64, *traffic, rush, t_air).max(0.5),
                            1,
                        ),
                    },
                    p => SimLook::Signal(p.signal_at(t_ms).map_or(SignalAspect::Dark, |(a, _)| a)),
                }
            })
            .collect()
    }

    /// A meter's energy since local midnight at the reading that begins at `t0_ms`: the
    /// readings of the day before it, each held for its quarter hour, kWh (unrounded).
    fn energy_today(&self, i: usize, t0_ms: i64) -> f64 {
        let SimProfile::Meter {
            floor_area_m2,
            building_use,
        } = &self.devices[i].profile
        else {
            return 0.0;
        };
        let mut energy = 0.0;
        let mut s = stockholm_local(t0_ms).midnight_ms;
        while s < t0_ms {
            energy += meter_power_kw(self.seed, i as u64, *floor_area_m2, *building_use, s) * 0.25;
            s += METER_INTERVAL_MS;
        }
        energy
    }

    /// Device `i`'s values at `t_ms`, as the twin's quantities.
    pub fn values(&self, i: usize, t_ms: i64) -> SimValues {
        self.values_with(i, t_ms, None)
    }

    /// As [`Simulator::values`]; `energy` is a meter's unrounded energy today at the
    /// reading's start when the caller keeps it running (the same sum, added in the same
    /// order).
    fn values_with(&self, i: usize, t_ms: i64, energy: Option<f64>) -> SimValues {
        let mut out = SimValues::EMPTY;
        let key = i as u64;
        match &self.devices[i].profile {
            p @ SimProfile::Signal { .. } => {
                let a = p.signal_at(t_ms).map_or(SignalAspect::Dark, |(a, _)| a);
                out.push(Quantity::SignalAspect, a.code());
            }
            SimProfile::Lamp { .. } => {
                let local = stockholm_local(t_ms);
                if let Some(l) = self.lamp_now(i, t_ms, &local, photocell_sun(t_ms)) {
                    out.push(Quantity::LampOn, f64::from(u8::from(l.on)));
                    out.push(Quantity::LampDimPct, if l.on { l.dim_pct } else { 0.0 });
                    out.push(Quantity::LampPowerW, l.power_w);
                    out.push(Quantity::LampFault, f64::from(u8::from(l.fault)));
                }
            }
            SimProfile::Meter {
                floor_area_m2,
                building_use,
            } => {
                let t0 = t_ms.div_euclid(METER_INTERVAL_MS) * METER_INTERVAL_MS;
                let local = stockholm_local(t0);
                let power = meter_power_kw(self.seed, key, *floor_area_m2, *building_use, t0);
                let energy = energy.unwrap_or_else(|| self.energy_today(i, t0));
                let heating = heating_kw(*floor_area_m2, outdoor_temperature(&local));
                out.push(Quantity::PowerKw, round(power, 2));
                out.push(Quantity::EnergyTodayKwh, round(energy, 2));
                out.push(Quantity::HeatingKw, round(heating, 2));
            }
            SimProfile::Air { traffic } => {
                let t0 = t_ms.div_euclid(AIR_INTERVAL_MS) * AIR_INTERVAL_MS;
                let local = stockholm_local(t0);
                let rush = traffic_intensity(&local);
                let n = |salt: u64| noise(self.seed, key ^ (salt << 40), t0, AIR_INTERVAL_MS);
                let no2 = air_no2(self.seed, key, *traffic, rush, t0);
                // Studded tyres grind the streets: PM10 peaks in March-April.
                let dust = (-((f64::from(local.day_of_year) - 95.0) / 25.0).powi(2) / 2.0).exp();
                let pm10 = 9.0 + traffic * rush * (12.0 + 60.0 * dust) + 3.0 * n(2);
                let pm25 = 4.0 + 0.25 * (pm10 - 9.0) + 1.5 * n(3);
                let temp = outdoor_temperature(&local) + 0.8 * n(4);
                out.push(Quantity::No2, round(no2.max(0.5), 1));
                out.push(Quantity::Pm10, round(pm10.max(0.5), 1));
                out.push(Quantity::Pm25, round(pm25.max(0.3), 1));
                out.push(Quantity::TemperatureC, round(temp, 1));
            }
        }
        out
    }

    /// The reading of device `i` at `t_ms` as a payload carries it: (field, value) pairs, the
    /// names the kind's default field rules read.
    pub fn reading(&self, i: usize, t_ms: i64) -> Vec<(&'static str, SimValue)> {
        self.values(i, t_ms)
            .iter()
            .map(|(q, v)| sim_field(q, v))
            .collect()
    }

    /// A SenML pack of `reports`, one base name per device.
    pub fn senml_pack(&self, reports: &[SimReport]) -> Vec<u8> {
        use std::fmt::Write;
        let mut s = String::with_capacity(reports.len() * 160);
        s.push('[');
        let mut first = true;
        for r in reports {
            for (j, (q, v)) in r.values.iter().enumerate() {
                if !first {
                    s.push(',');
                }
                first = false;
                s.push('{');
                if j == 0 {
                    // Ids are the registry's (ASCII without quotes or backslashes).
                    let _ = write!(
                        s,
                        "\"bn\":\"{}:\",\"bt\":{}.{:03},",
                        self.devices[r.device as usize].id,
                        r.t_ms.div_euclid(1000),
                        r.t_ms.rem_euclid(1000)
                    );
                }
                let (name, value) = sim_field(q, v);
                let _ = match value {
                    SimValue::Number(v) => write!(s, "\"n\":\"{name}\",\"v\":{v}"),
                    SimValue::Bool(b) => write!(s, "\"n\":\"{name}\",\"vb\":{b}"),
                    SimValue::Text(t) => write!(s, "\"n\":\"{name}\",\"vs\":\"{t}\""),
                };
                s.push('}');
            }
        }
        s.push(']');
        s.into_bytes()
    }

    /// The full reports of `devices` at their times (index, time), as a SenML pack.
    pub fn senml_pack_at(&self, devices: &[(usize, i64)]) -> Vec<u8> {
        let reports: Vec<SimReport> = devices
            .iter()
            .map(|&(i, t)| SimReport {
                device: i as u32,
                t_ms: t,
                values: self.values(i, t),
                keep_alive: false,
            })
            .collect();
        self.senml_pack(&reports)
    }
}

/// `v` rounded to `places` decimals, as the simulator rounds what it reports.
pub fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// How the simulator's clock runs (the twin clock's simulated edge).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimClockSettings {
    /// Simulated time at start, Unix ms; `None`: the wall clock.
    pub start_ms: Option<i64>,
    /// Simulated seconds per wall second; `None`: as fast as the machine runs.
    pub speed: Option<f64>,
}

impl Default for SimClockSettings {
    fn default() -> Self {
        Self {
            start_ms: None,
            speed: Some(1.0),
        }
    }
}

/// One report of a simulated device: the values that changed (all of them in its first
/// report and at a heartbeat), or, for a keep-alive, the values it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimReport {
    /// The device's index in the simulator.
    pub device: u32,
    pub t_ms: i64,
    pub values: SimValues,
    /// Nothing changed: the device says it is alive by repeating the first value it holds.
    pub keep_alive: bool,
}

/// What the simulator reports besides changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimReporting {
    /// Every device also reports all its values at least this often (ms); `None`: only
    /// changes.
    pub heartbeat_ms: Option<i64>,
    /// A device that has said nothing for this long (ms, per kind: signal heads, lamps,
    /// meters, air sensors) says it is alive, so health can tell it from a stale one.
    pub keep_alive_ms: [i64; 4],
}

impl Default for SimReporting {
    /// Only changes, and a keep-alive after two of health's default intervals of silence
    /// (a device is stale after three).
    fn default() -> Self {
        SimReporting {
            heartbeat_ms: None,
            keep_alive_ms: [40_000, 1_800_000, 1_800_000, 1_200_000],
        }
    }
}

impl SimReporting {
    fn keep_alive(&self, kind: DeviceKind) -> i64 {
        let i = match kind {
            DeviceKind::SignalHead => 0,
            DeviceKind::Lamp => 1,
            DeviceKind::Meter => 2,
            DeviceKind::AirSensor => 3,
        };
        self.keep_alive_ms[i].max(1)
    }
}

/// The sun's elevation at each minute, from a first minute on, worked out once: the lamps'
/// photocells all read it.
#[derive(Debug, Default)]
struct SunMinutes {
    first: i64,
    elevation: std::collections::VecDeque<f64>,
}

impl SunMinutes {
    fn at(&mut self, minute: i64) -> f64 {
        if self.elevation.is_empty() || minute < self.first {
            self.first = minute;
            self.elevation.clear();
        }
        // Minutes more than a day behind the ones asked for are not asked for again.
        let behind = (minute - self.first - 1_440).max(0) as usize;
        if behind > 0 {
            let n = behind.min(self.elevation.len());
            self.elevation.drain(..n);
            self.first += n as i64;
            if self.elevation.is_empty() {
                self.first = minute;
            }
        }
        while self.first + (self.elevation.len() as i64) <= minute {
            let m = self.first + self.elevation.len() as i64;
            self.elevation.push_back(photocell_sun(m * PHOTOCELL_MS));
        }
        self.elevation[(minute - self.first) as usize]
    }

    /// The first minute after `minute` at which `sun < threshold` differs from what it is
    /// at `minute` (looked for over two days).
    fn next_flip(&mut self, minute: i64, threshold: f64) -> i64 {
        let now = self.at(minute) < threshold;
        for m in minute + 1..=minute + 2_880 {
            if (self.at(m) < threshold) != now {
                return m;
            }
        }
        minute + 2_880
    }
}

/// The next moment after `t_ms` at which a lamp's calendar may step (its next step of the
/// local day, else the next local midnight, where the calendar may change with the day).
pub fn next_calendar_step(policy: &LightingPolicy, t_ms: i64, local: &LocalTime) -> i64 {
    let steps = if local.weekday == 0 || local.weekday == 6 {
        &policy.weekends
    } else {
        &policy.weekdays
    };
    let minute = (local.hour * 60.0).floor() as u16;
    let next = match steps.iter().map(|(m, _)| *m).find(|m| *m > minute) {
        Some(m) => {
            // That local minute, on a day that may change its offset from UTC.
            let guess = local.midnight_ms + i64::from(m) * 60_000;
            let shift = stockholm_utc_offset_s(guess.div_euclid(1000))
                - stockholm_utc_offset_s(local.midnight_ms.div_euclid(1000));
            guess - shift * 1000
        }
        None => stockholm_local(local.midnight_ms + 26 * 3_600_000).midnight_ms,
    };
    if next > t_ms { next } else { t_ms + 60_000 }
}

/// No report yet.
const NEVER: i64 = i64::MIN;

/// A meter's running energy today: at the reading that began at `at_ms`, with the power that
/// reading held (both unrounded).
#[derive(Debug, Clone, Copy)]
struct RunningEnergy {
    at_ms: i64,
    energy_kwh: f64,
    power_kw: f64,
}

/// A simulator being stepped, event by event: each device's next change is scheduled (a
/// signal head's next aspect from its plan's cycle arithmetic, a lamp's next photocell
/// minute, calendar step or presence span, a meter's next quarter hour, an air sensor's next
/// ten minutes) with its keep-alive and heartbeat, and each step emits, in time order, every
/// report due up to its end: the values that changed. The same simulator, start and steps
/// give the same reports, whatever the steps' real timing.
pub struct SimulatorRun {
    pub sim: Simulator,
    pub reporting: SimReporting,
    due: BinaryHeap<Reverse<(i64, u32)>>,
    /// Simulated time reached, Unix ms.
    pub reached_ms: i64,
    /// Devices another simulator now drives (SUMO's signal heads): no longer reported here.
    handed_over: Vec<bool>,
    /// What each device last reported it holds.
    last: Vec<SimValues>,
    /// When each device last reported anything, and all its values (heartbeats only).
    last_sent: Vec<i64>,
    last_full: Vec<i64>,
    /// When each device's values may next change.
    next_change: Vec<i64>,
    /// Each lamp's next photocell flip, ms.
    next_flip: Vec<i64>,
    energy: Vec<Option<RunningEnergy>>,
    sun: SunMinutes,
    /// Reports emitted, and of them keep-alives.
    pub reports: u64,
    pub keep_alives: u64,
}

impl SimulatorRun {
    /// Every device reports all it holds at `start_ms`, then what changes.
    pub fn new(sim: Simulator, start_ms: i64, reporting: SimReporting) -> SimulatorRun {
        let n = sim.devices.len();
        let due = (0..n as u32).map(|i| Reverse((start_ms, i))).collect();
        let meters = sim
            .devices
            .iter()
            .any(|d| matches!(d.profile, SimProfile::Meter { .. }));
        SimulatorRun {
            due,
            reached_ms: start_ms,
            handed_over: vec![false; n],
            last: vec![SimValues::EMPTY; n],
            last_sent: vec![NEVER; n],
            last_full: if reporting.heartbeat_ms.is_some() {
                vec![NEVER; n]
            } else {
                Vec::new()
            },
            next_change: vec![NEVER; n],
            next_flip: vec![NEVER; n],
            energy: if meters { vec![None; n] } else { Vec::new() },
            sun: SunMinutes::default(),
            reports: 0,
            keep_alives: 0,
            sim,
            reporting,
        }
    }

    /// When the next report is due (Unix ms), if any device reports at all.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.due.peek().map(|Reverse((t, _))| *t)
    }

    /// Stops reporting the devices `ids` (another simulator drives them from now); returns
    /// how many of them this simulator had.
    pub fn hand_over(&mut self, ids: &std::collections::HashSet<String>) -> usize {
        let mut n = 0;
        for (i, d) in self.sim.devices.iter().enumerate() {
            if ids.contains(&d.id) && !self.handed_over[i] {
                self.handed_over[i] = true;
                n += 1;
            }
        }
        n
    }

    /// Device `i`'s values at `t_ms`, a meter's energy kept running.
    fn values_now(&mut self, i: usize, t_ms: i64) -> SimValues {
        let SimProfile::Meter {
            floor_area_m2,
            building_use,
        } = self.sim.devices[i].profile
        else {
            return self.sim.values(i, t_ms);
        };
        let t0 = t_ms.div_euclid(METER_INTERVAL_MS) * METER_INTERVAL_MS;
        let energy = match self.energy[i] {
            Some(e) if e.at_ms == t0 => e.energy_kwh,
            Some(e)
                if e.at_ms + METER_INTERVAL_MS == t0 && stockholm_local(t0).midnight_ms < t0 =>
            {
                e.energy_kwh + e.power_kw * 0.25
            }
            _ => self.sim.energy_today(i, t0),
        };
        self.energy[i] = Some(RunningEnergy {
            at_ms: t0,
            energy_kwh: energy,
            power_kw: meter_power_kw(self.sim.seed, i as u64, floor_area_m2, building_use, t0),
        });
        self.sim.values_with(i, t_ms, Some(energy))
    }

    /// When device `i`'s values may next change after `t_ms` (its values then: `now`).
    fn schedule_change(&mut self, i: usize, t_ms: i64, now: &SimValues) -> i64 {
        let next = match &self.sim.devices[i].profile {
            p @ SimProfile::Signal { .. } => {
                p.signal_change_after(t_ms).unwrap_or(t_ms + 3_600_000)
            }
            p @ SimProfile::Lamp {
                on_below_deg,
                policy,
                ..
            } => {
                if self.next_flip[i] <= t_ms {
                    let minute = t_ms.div_euclid(PHOTOCELL_MS);
                    self.next_flip[i] = self.sun.next_flip(minute, *on_below_deg) * PHOTOCELL_MS;
                }
                let mut next = self.next_flip[i].min(p.next_break_change(t_ms));
                if now.get(Quantity::LampOn) == Some(1.0) {
                    let local = stockholm_local(t_ms);
                    next = next.min(next_calendar_step(policy, t_ms, &local));
                    if policy.presence.is_some() {
                        next = next.min((t_ms.div_euclid(PRESENCE_SPAN_MS) + 1) * PRESENCE_SPAN_MS);
                    }
                }
                next
            }
            SimProfile::Meter { .. } => {
                (t_ms.div_euclid(METER_INTERVAL_MS) + 1) * METER_INTERVAL_MS
            }
            SimProfile::Air { .. } => (t_ms.div_euclid(AIR_INTERVAL_MS) + 1) * AIR_INTERVAL_MS,
        };
        next.max(t_ms + 1)
    }

    /// Emits every report due at or before `to_ms`, in time order.
    pub fn step(&mut self, to_ms: i64, mut emit: impl FnMut(&SimReport)) {
        let heartbeat = self.reporting.heartbeat_ms.map(|h| h.max(1));
        while let Some(&Reverse((t, d))) = self.due.peek() {
            if t > to_ms {
                break;
            }
            self.due.pop();
            let i = d as usize;
            if self.handed_over[i] {
                continue;
            }
            let first = self.last_sent[i] == NEVER;
            let full = first || heartbeat.is_some_and(|h| t - self.last_full[i] >= h);
            let mut values = SimValues::EMPTY;
            if t >= self.next_change[i] {
                let now = self.values_now(i, t);
                values = if full {
                    now
                } else {
                    now.changed_from(&self.last[i])
                };
                self.next_change[i] = self.schedule_change(i, t, &now);
                self.last[i] = now;
            } else if full {
                values = self.last[i];
            }
            let keep_alive_ms = self.reporting.keep_alive(self.sim.devices[i].kind);
            let keep_alive = values.is_empty() && t - self.last_sent[i] >= keep_alive_ms;
            if keep_alive {
                // The first value it holds (aspect, on, power, NO2), repeated.
                values = SimValues::EMPTY;
                if let Some((q, v)) = self.last[i].iter().next() {
                    values.push(q, v);
                }
            }
            if !values.is_empty() {
                self.last_sent[i] = t;
                if full && heartbeat.is_some() {
                    self.last_full[i] = t;
                }
                self.reports += 1;
                self.keep_alives += u64::from(keep_alive);
                emit(&SimReport {
                    device: d,
                    t_ms: t,
                    values,
                    keep_alive,
                });
            }
            let mut next = self.next_change[i].min(self.last_sent[i] + keep_alive_ms);
            if let Some(h) = heartbeat {
                next = next.min(self.last_full[i] + h);
            }
            self.due.push(Reverse((next.max(t + 1), d)));
        }
        self.reached_ms = self.reached_ms.max(to_ms);
    }

    /// Decodes a pack the way a broker's SenML message is decoded.
    pub fn decode(
        payload: &[u8],
        now_ms: i64,
    ) -> Result<Vec<crate::observation::Observation>, crate::observation::DecodeError> {
        let ctx = DecodeContext {
            topic: "simulator",
            now_ms,
            max_bytes: 1 << 20,
            ..DecodeContext::default()
        };
        decode(&PayloadFormat::SenMl, payload, &ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::FieldValue;
    use tvilling_geo::sun::unix_seconds;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        unix_seconds(y, mo, d, h, mi) * 1000
    }

    #[test]
    fn looks_agree_with_the_readings_at_every_hour() {
        let sim = Simulator {
            seed: 5,
            devices: whole_city(5).into_iter().step_by(97).collect(),
        };
        let kinds = |k: DeviceKind| sim.devices.iter().filter(|d| d.kind == k).count();
        assert!(kinds(DeviceKind::Lamp) > 100 && kinds(DeviceKind::Meter) > 100);
        assert!(kinds(DeviceKind::SignalHead) > 10 && kinds(DeviceKind::AirSensor) > 0);
        let number = |r: &[(&str, SimValue)], f: &str| {
            r.iter().find_map(|(n, v)| match v {
                SimValue::Number(x) if *n == f => Some(*x),
                _ => None,
            })
        };
        let mut lit = 0;
        for h in 0..24 {
            let t = ms(2026, 11, 23, h, 7);
            for (i, look) in sim.looks(t).into_iter().enumerate() {
                let r = sim.reading(i, t);
                match look {
                    SimLook::Signal(a) => {
                        assert_eq!(r, vec![("state", SimValue::Text(aspect_name(a)))]);
                    }
                    SimLook::Lamp(l) => {
                        lit += usize::from(l.on);
                        assert!(r.contains(&("on", SimValue::Bool(l.on))));
                        assert_eq!(number(&r, "power_w"), Some(round(l.power_w, 1)));
                        let dim = if l.on { l.dim_pct } else { 0.0 };
                        assert_eq!(number(&r, "dim"), Some(dim));
                    }
                    SimLook::Meter { power_kw } => {
                        assert_eq!(number(&r, "power_kw"), Some(round(power_kw, 2)));
                    }
                    SimLook::Air { no2 } => {
                        assert_eq!(number(&r, "no2"), Some(round(no2, 1)));
                    }
                }
            }
        }
        assert!(lit > 0, "lamps are lit at night");
    }

    #[test]
    fn devices_handed_over_are_no_longer_reported() {
        let sim = Simulator {
            seed: 5,
            devices: whole_city(5).into_iter().step_by(997).collect(),
        };
        let head = sim
            .devices
            .iter()
            .find(|d| d.kind == DeviceKind::SignalHead)
            .expect("a head")
            .id
            .clone();
        let start = ms(2026, 11, 23, 7, 0);
        let mut run = SimulatorRun::new(sim, start, SimReporting::default());
        let reported = |run: &mut SimulatorRun, to: i64| {
            let mut ids = Vec::new();
            let mut devices = Vec::new();
            run.step(to, |r| devices.push(r.device as usize));
            for i in devices {
                ids.push(run.sim.devices[i].id.clone());
            }
            ids
        };
        assert!(reported(&mut run, start + 60_000).contains(&head));
        let ids = std::collections::HashSet::from([head.clone(), "not a device".to_string()]);
        assert_eq!(run.hand_over(&ids), 1);
        assert_eq!(run.hand_over(&ids), 0, "once");
        let later = reported(&mut run, start + 600_000);
        assert!(!later.is_empty() && !later.contains(&head));
    }

    #[test]
    fn stockholm_local_time_follows_summer_time() {
        // 2026: CEST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(stockholm_utc_offset_s(ms(2026, 3, 29, 0, 59) / 1000), 3600);
        assert_eq!(stockholm_utc_offset_s(ms(2026, 3, 29, 1, 0) / 1000), 7200);
        assert_eq!(stockholm_utc_offset_s(ms(2026, 10, 25, 0, 59) / 1000), 7200);
        assert_eq!(stockholm_utc_offset_s(ms(2026, 10, 25, 1, 0) / 1000), 3600);
        let l = stockholm_local(ms(2026, 6, 21, 12, 0));
        assert!((l.hour - 14.0).abs() < 1e-9);
        assert_eq!(l.weekday, 0, "21 June 2026 is a Sunday");
        assert_eq!(l.day_of_year, 171);
        assert_eq!(l.midnight_ms, ms(2026, 6, 20, 22, 0));
        // The days the clocks change began at the midnight before the change.
        assert_eq!(
            stockholm_local(ms(2026, 3, 29, 12, 0)).midnight_ms,
            ms(2026, 3, 28, 23, 0)
        );
        assert_eq!(
            stockholm_local(ms(2026, 10, 25, 12, 0)).midnight_ms,
            ms(2026, 10, 24, 22, 0)
        );
        for days in [-1000, 0, 19_000, 20_500] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn a_head_runs_the_swedish_sequence_and_its_cross_street_never_shares_green() {
        let (cycle, split) = (70.0, 0.55);
        let mut seen = Vec::new();
        let mut t = 0.0;
        while t < cycle {
            let (a0, _) = signal_aspect(cycle, split, 0, t);
            let (a1, _) = signal_aspect(cycle, split, 1, t);
            let go = |a| {
                matches!(
                    a,
                    SignalAspect::Green | SignalAspect::RedAmber | SignalAspect::Amber
                )
            };
            assert!(!(go(a0) && go(a1)), "conflict at {t} s: {a0:?} {a1:?}");
            if seen.last() != Some(&a0) {
                seen.push(a0);
            }
            t += 0.25;
        }
        assert_eq!(
            seen,
            [
                SignalAspect::RedAmber,
                SignalAspect::Green,
                SignalAspect::Amber,
                SignalAspect::Red
            ]
        );
        // Time left counts down to the change.
        let (a, left) = signal_aspect(cycle, split, 0, 0.5);
        assert_eq!(a, SignalAspect::RedAmber);
        assert!((left - 0.5).abs() < 1e-9);
    }

    fn sim(profile: SimProfile) -> Simulator {
        Simulator {
            seed: 1,
            devices: vec![SimDevice {
                id: "d".into(),
                kind: DeviceKind::Lamp,
                profile,
            }],
        }
    }

    fn number(r: &[(&str, SimValue)], name: &str) -> f64 {
        match r.iter().find(|(n, _)| *n == name).map(|(_, v)| v) {
            Some(SimValue::Number(v)) => *v,
            Some(SimValue::Bool(b)) => f64::from(u8::from(*b)),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn lamps_follow_the_sun_and_dim_after_midnight() {
        let s = sim(SimProfile::Lamp {
            rated_w: 80.0,
            on_below_deg: -1.0,
            broken: None,
            fault_key: None,
            policy: LightingPolicy::shared_baseline(),
        });
        let noon = s.reading(0, ms(2026, 11, 23, 11, 0));
        assert_eq!(number(&noon, "on"), 0.0);
        let evening = s.reading(0, ms(2026, 11, 23, 18, 0)); // 19:00 local, dark
        assert_eq!(number(&evening, "on"), 1.0);
        assert_eq!(number(&evening, "dim"), 100.0);
        assert!((number(&evening, "power_w") - 80.0).abs() < 2.0);
        let night = s.reading(0, ms(2026, 11, 24, 1, 0)); // 02:00 local
        assert_eq!(number(&night, "dim"), 50.0);
        assert!((number(&night, "power_w") - 40.0).abs() < 1.0);
        let burnt = sim(SimProfile::Lamp {
            rated_w: 80.0,
            on_below_deg: -1.0,
            broken: Some(LampBreak::BurntOut),
            fault_key: None,
            policy: LightingPolicy::shared_baseline(),
        });
        assert_eq!(
            number(&burnt.reading(0, ms(2026, 11, 23, 18, 0)), "on"),
            0.0
        );
    }

    #[test]
    fn lighting_policies_set_the_level_by_calendar_and_presence() {
        // D60-style: 100 % to 22:00, 60 % to 06:00 on weekdays; 100 % all night at weekends.
        let policy = |presence| LightingPolicy {
            weekdays: vec![(0, 60.0), (360, 100.0), (1320, 60.0)],
            weekends: vec![(0, 100.0)],
            presence,
        };
        let lamp = |p: LightingPolicy| {
            sim(SimProfile::Lamp {
                rated_w: 100.0,
                on_below_deg: -1.0,
                broken: None,
                fault_key: None,
                policy: std::sync::Arc::new(p),
            })
        };
        let s = lamp(policy(None));
        // Monday 23 November 2026, 23:00 local; Saturday 28 November, 23:00 local.
        assert_eq!(number(&s.reading(0, ms(2026, 11, 23, 22, 0)), "dim"), 60.0);
        assert_eq!(number(&s.reading(0, ms(2026, 11, 23, 18, 0)), "dim"), 100.0);
        assert_eq!(number(&s.reading(0, ms(2026, 11, 28, 22, 0)), "dim"), 100.0);
        // Presence: 20 % at rest, raised a quarter of the time; over a night of 10-minute
        // spans the mean level is near 0.75 * 20 + 0.25 * 60 = 30 %.
        let p = lamp(LightingPolicy {
            weekdays: vec![(0, 60.0)],
            weekends: vec![(0, 60.0)],
            presence: Some(Presence {
                base_pct: 20.0,
                raised_share: 0.25,
            }),
        });
        let spans: Vec<f64> = (0..300)
            .map(|k| {
                number(
                    &p.reading(0, ms(2026, 11, 23, 22, 0) + k * PRESENCE_SPAN_MS),
                    "dim",
                )
            })
            .filter(|d| *d > 0.0)
            .collect();
        let mean = spans.iter().sum::<f64>() / spans.len() as f64;
        assert!((mean - 30.0).abs() < 4.0, "mean level {mean}");
        assert!(spans.iter().all(|d| *d == 20.0 || *d == 60.0));
        // The baseline is today's model: 50 % from 00:00 to 05:00, else 100 %.
        let b = LightingPolicy::baseline();
        for (hour, level) in [(0.0, 50.0), (4.99, 50.0), (5.0, 100.0), (23.5, 100.0)] {
            let local = LocalTime {
                hour,
                weekday: 2,
                day_of_year: 0,
                midnight_ms: 0,
            };
            assert_eq!(b.level(&local, 0.0), level, "{hour}");
        }
    }

    #[test]
    fn presence_control_saves_about_what_kungsholmen_measured() {
        // Stockholm measured about 40 % lower energy with presence-controlled LED lighting on
        // Kungsholmen. In the model: 40 % when nobody passes, raised a quarter of the time,
        // against the same lamp without it, over a November day minute by minute.
        let energy = |presence| {
            let s = sim(SimProfile::Lamp {
                rated_w: 60.0,
                on_below_deg: -1.0,
                broken: None,
                fault_key: None,
                policy: std::sync::Arc::new(LightingPolicy {
                    presence,
                    ..LightingPolicy::baseline()
                }),
            });
            let start = ms(2026, 11, 23, 0, 0);
            (0..24 * 60)
                .map(|m| number(&s.reading(0, start + m * 60_000), "power_w") / 60.0)
                .sum::<f64>()
        };
        let without = energy(None);
        let with = energy(Some(Presence {
            base_pct: 40.0,
            raised_share: 0.25,
        }));
        let saving = 1.0 - with / without;
        assert!((0.35..0.45).contains(&saving), "saving {saving}");
    }

    #[test]
    fn meters_and_air_follow_the_day() {
        let office = sim(SimProfile::Meter {
            floor_area_m2: 10_000.0,
            building_use: BuildingUse::Offices,
        });
        // Monday 23 November 2026: 10:00 local vs 03:00 local.
        let day = office.reading(0, ms(2026, 11, 23, 9, 0));
        let night = office.reading(0, ms(2026, 11, 23, 2, 0));
        assert!(number(&day, "power_kw") > 2.5 * number(&night, "power_kw"));
        assert!(number(&day, "energy_today_kwh") > number(&night, "energy_today_kwh"));
        assert!(number(&day, "heating_kw") > 0.0, "November needs heat");
        let summer = office.reading(0, ms(2026, 7, 20, 12, 0));
        assert_eq!(number(&summer, "heating_kw"), 0.0);
        let air = sim(SimProfile::Air { traffic: 1.0 });
        let rush = air.reading(0, ms(2026, 11, 23, 7, 0)); // 08:00 local
        let small_hours = air.reading(0, ms(2026, 11, 23, 2, 0));
        assert!(number(&rush, "no2") > number(&small_hours, "no2") + 25.0);
        let april = air.reading(0, ms(2026, 4, 6, 6, 0));
        assert!(
            number(&april, "pm10") > number(&rush, "pm10"),
            "spring dust"
        );
    }

    #[test]
    fn packs_decode_with_the_senml_codec_and_repeat_for_a_seed() {
        let s = Simulator {
            seed: 5,
            devices: vec![
                SimDevice {
                    id: "signal/node/1".into(),
                    kind: DeviceKind::SignalHead,
                    profile: SimProfile::default_for(5, "signal/node/1", DeviceKind::SignalHead),
                },
                SimDevice {
                    id: "air/1".into(),
                    kind: DeviceKind::AirSensor,
                    profile: SimProfile::Air { traffic: 0.8 },
                },
            ],
        };
        let t = ms(2026, 11, 23, 7, 0) + 123;
        let pack = s.senml_pack_at(&[(0, t), (1, t)]);
        assert_eq!(pack, s.clone().senml_pack_at(&[(0, t), (1, t)]));
        let obs = decode(
            &PayloadFormat::SenMl,
            &pack,
            &DecodeContext {
                now_ms: t,
                ..DecodeContext::default()
            },
        )
        .expect("decodes");
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].device, "signal/node/1");
        assert_eq!(obs[0].time_ms, Some(t));
        assert_eq!(obs[1].device, "air/1");
        assert_eq!(obs[1].fields.len(), 4);
        // The decoded values are the simulator's, bit for bit.
        let decoded: Vec<FieldValue> = obs[1].fields.iter().map(|(_, v)| v.clone()).collect();
        let typed: Vec<FieldValue> = s
            .values(1, t)
            .iter()
            .map(|(_, v)| FieldValue::Number(v))
            .collect();
        assert_eq!(decoded, typed);
    }

    /// A mixed sample of the city, with lamps on calendars and presence dimming of their own.
    fn sample(seed: u64) -> Simulator {
        let mut devices: Vec<SimDevice> = whole_city(seed).into_iter().step_by(211).collect();
        let policy = std::sync::Arc::new(LightingPolicy {
            weekdays: vec![(0, 60.0), (120, 30.0), (360, 100.0), (1320, 60.0)],
            weekends: vec![(0, 100.0), (300, 40.0)],
            presence: Some(Presence {
                base_pct: 20.0,
                raised_share: 0.3,
            }),
        });
        for (k, d) in devices.iter_mut().enumerate() {
            if let SimProfile::Lamp { policy: p, .. } = &mut d.profile
                && k % 2 == 0
            {
                *p = policy.clone();
            }
        }
        Simulator { seed, devices }
    }

    /// Runs `sim` from `start` to `end` in steps of `step_ms`; returns the reports.
    fn reports(
        sim: &Simulator,
        start: i64,
        end: i64,
        step_ms: i64,
        r: SimReporting,
    ) -> Vec<SimReport> {
        let mut run = SimulatorRun::new(sim.clone(), start, r);
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            t = (t + step_ms).min(end);
            run.step(t, |r| out.push(*r));
        }
        out
    }

    /// A lamp that develops faults drawn by `key`.
    fn faulting_lamp(key: u64) -> SimProfile {
        SimProfile::Lamp {
            rated_w: 60.0,
            on_below_deg: -1.0,
            broken: None,
            fault_key: Some(key),
            policy: LightingPolicy::shared_baseline(),
        }
    }

    /// A fault key whose lamp's fault begins (`repaired`: is repaired) within [from, to) while
    /// the sun is well down, a driver fault or (`dark`) one that leaves the lamp dark.
    fn key_with_fault_in_the_dark(from: i64, to: i64, repaired: bool, dark: bool) -> u64 {
        let week = 8 * 86_400_000;
        (0u64..)
            .find(|&k| {
                faulting_lamp(k)
                    .lamp_breaks(from - week, to + week)
                    .iter()
                    .any(|&(a, b, how)| {
                        let at = if repaired { b } else { a };
                        (from..to).contains(&at)
                            && photocell_sun(at) < -2.0
                            && (how == LampBreak::BurntOut) == dark
                    })
            })
            .expect("a key")
    }

    #[test]
    fn lamps_develop_faults_at_seeded_times_and_are_repaired_days_later() {
        let (from, to) = (ms(2027, 1, 1, 0, 0), ms(2028, 1, 1, 0, 0));
        let lamps: Vec<SimProfile> = whole_city(1)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Lamp)
            .step_by(10)
            .map(|d| d.profile)
            .collect();
        assert_eq!(lamps.len(), 15_000);
        let (mut faults, mut dark) = (0usize, 0usize);
        for (n, p) in lamps.iter().enumerate() {
            if p.lamp_break_at(from - 1).is_some() && p.lamp_break_at(from).is_some() {
                // Broken from before the run (0.5 %), or a fault under way at new year.
                continue;
            }
            let breaks = p.lamp_breaks(from, to);
            for w in breaks.windows(2) {
                assert!(w[0].1 < w[1].0, "one fault at a time: {breaks:?}");
            }
            for &(a, b, how) in &breaks {
                if b < to {
                    let days = (b - a) as f64 / 86_400_000.0;
                    assert!((1.0..=7.0).contains(&days), "{days} days");
                }
                assert_eq!(a % 60_000, 0, "on a whole minute");
                assert_eq!(p.lamp_break_at(a), Some(how));
                assert_eq!(p.lamp_break_at(a - 1), None);
                assert_eq!(p.lamp_break_at(b - 1), Some(how));
                faults += 1;
                dark += usize::from(how == LampBreak::BurntOut);
            }
            // Walking the changes the simulator schedules visits every start and repair.
            if n % 50 == 0 || !breaks.is_empty() {
                let mut t = from;
                let mut seen = Vec::new();
                while t < to {
                    let next = p.next_break_change(t).min(to);
                    assert!(next > t);
                    let now = p.lamp_break_at(t);
                    if now != p.lamp_break_at(t - 1) {
                        seen.push(t);
                    }
                    assert_eq!(p.lamp_break_at(next - 1), now, "holds until {next}");
                    t = next;
                }
                let want: Vec<i64> = breaks
                    .iter()
                    .flat_map(|(a, b, _)| [*a, *b])
                    .filter(|m| (from + 1..to).contains(m))
                    .collect();
                assert_eq!(seen, want);
            }
        }
        // About one fault a lamp in ten years; six in ten leave it dark.
        let rate = faults as f64 / lamps.len() as f64;
        assert!((0.09..0.11).contains(&rate), "{faults} faults a year");
        let share = dark as f64 / faults as f64;
        assert!((0.55..0.65).contains(&share), "{share}");
        // The same seed, the same faults; another seed, others.
        let again = SimProfile::lamp(1, "lamp/7", 60.0);
        assert_eq!(again.lamp_breaks(from, to), lamps[0].lamp_breaks(from, to));
        let other: usize = whole_city(2)
            .into_iter()
            .filter(|d| d.kind == DeviceKind::Lamp)
            .step_by(10)
            .zip(&lamps)
            .filter(|(d, p)| d.profile.lamp_breaks(from, to) != p.lamp_breaks(from, to))
            .count();
        assert!(other > 1_000, "{other}");
    }

    #[test]
    fn a_lamp_that_develops_a_fault_at_night_reports_it_then_and_its_repair() {
        let (from, to) = (ms(2026, 11, 23, 12, 0), ms(2026, 12, 23, 12, 0));
        for dark in [true, false] {
            let key = key_with_fault_in_the_dark(from, to, false, dark);
            let s = sim(faulting_lamp(key));
            let &(a, b, _) = s.devices[0]
                .profile
                .lamp_breaks(from, to + 8 * 86_400_000)
                .iter()
                .find(|(a, _, _)| (from..to).contains(a))
                .expect("the fault");
            let got = reports(
                &s,
                a - 3_600_000,
                b + 86_400_000,
                60_000,
                SimReporting::default(),
            );
            let at = |t: i64| {
                got.iter()
                    .find(|r| r.t_ms == t && !r.keep_alive)
                    .map(|r| r.values)
            };
            let change = at(a).expect("a report when the fault begins");
            if dark {
                assert_eq!(change.get(Quantity::LampOn), Some(0.0));
                assert_eq!(change.get(Quantity::LampPowerW), Some(LAMP_STANDBY_W));
            } else {
                assert_eq!(change.get(Quantity::LampFault), Some(1.0));
                assert_eq!(change.get(Quantity::LampOn), None, "still lit");
            }
            // Repaired: lit and sound again at the repair if it is dark then, else the next
            // time the photocell switches it on.
            let lit = |v: &SimValues| v.get(Quantity::LampOn) == Some(1.0);
            let sound = got
                .iter()
                .filter(|r| r.t_ms >= b && !r.keep_alive)
                .find(|r| lit(&r.values) || (!dark && r.values.get(Quantity::LampFault).is_some()))
                .expect("reported again after the repair");
            assert_eq!(s.values(0, sound.t_ms).get(Quantity::LampFault), Some(0.0));
            if photocell_sun(b) < -1.0 {
                assert_eq!(sound.t_ms, b);
            }
        }
    }

    #[test]
    fn events_hold_what_the_models_say_at_every_moment_across_summer_time() {
        let sim = sample(3);
        let kinds = |k: DeviceKind| sim.devices.iter().filter(|d| d.kind == k).count();
        assert!(kinds(DeviceKind::Lamp) > 500 && kinds(DeviceKind::Meter) > 400);
        assert!(kinds(DeviceKind::SignalHead) > 40);
        // Saturday noon to Sunday evening over the night the clocks go forward (29 March
        // 2026), and over the night they go back (25 October).
        for (start, end) in [
            (ms(2026, 3, 28, 11, 0), ms(2026, 3, 29, 18, 0)),
            (ms(2026, 10, 24, 11, 0), ms(2026, 10, 25, 18, 0)),
        ] {
            // Some lamps develop a fault in the dark of the span, some are repaired in it.
            let mut sim = sim.clone();
            let lamps: Vec<usize> = (0..sim.devices.len())
                .filter(|&i| sim.devices[i].kind == DeviceKind::Lamp)
                .collect();
            for (n, &i) in lamps.iter().take(8).enumerate() {
                let key = key_with_fault_in_the_dark(start, end, n % 2 == 1, n / 2 % 2 == 1);
                if let SimProfile::Lamp { fault_key, .. } = &mut sim.devices[i].profile {
                    *fault_key = Some(key);
                }
            }
            let got = reports(&sim, start, end, 60_000, SimReporting::default());
            // The state the reports leave, replayed against the models at every minute (and
            // every second for the signal heads over the first ten minutes).
            let mut held = vec![SimValues::EMPTY; sim.devices.len()];
            let mut k = 0;
            let mut t = start;
            let mut checked = 0;
            while t <= end {
                while k < got.len() && got[k].t_ms <= t {
                    let r = &got[k];
                    let h = &mut held[r.device as usize];
                    for (q, v) in r.values.iter() {
                        match (0..h.len()).find(|&j| h.quantities[j] == q) {
                            Some(j) => h.values[j] = v,
                            None => h.push(q, v),
                        }
                    }
                    k += 1;
                }
                for (i, d) in sim.devices.iter().enumerate() {
                    let fine = d.kind == DeviceKind::SignalHead && t < start + 600_000;
                    if t % 60_000 == 0 || fine {
                        assert_eq!(held[i], sim.values(i, t), "{} at {t}", d.id);
                        checked += 1;
                    }
                }
                t += 1_000;
            }
            assert!(checked > 1_000_000, "{checked}");
        }
    }

    #[test]
    fn reports_carry_changes_only_keep_devices_alive_and_repeat_whatever_the_steps() {
        let sim = sample(4);
        let (start, end) = (ms(2026, 11, 23, 12, 0), ms(2026, 11, 24, 12, 0));
        let r = SimReporting::default();
        let fine = reports(&sim, start, end, 1_000, r);
        // The same reports whether the twin steps a second or a quarter of an hour at a time.
        assert_eq!(fine, reports(&sim, start, end, 900_000, r));
        assert_eq!(fine, reports(&sim, start, end, 10_000, r));
        let mut last_t = vec![None; sim.devices.len()];
        let mut held = vec![SimValues::EMPTY; sim.devices.len()];
        let (mut changes, mut alive) = (0, 0);
        for rep in &fine {
            let i = rep.device as usize;
            let d = &sim.devices[i];
            assert!(!rep.values.is_empty());
            match last_t[i] {
                None => {
                    assert_eq!(rep.t_ms, start, "everyone reports at the start");
                    assert_eq!(rep.values, sim.values(i, start), "all it holds");
                }
                Some(prev) => {
                    let gap = rep.t_ms - prev;
                    assert!(gap <= r.keep_alive(d.kind), "{} silent {gap} ms", d.id);
                    if rep.keep_alive {
                        alive += 1;
                        let first = held[i].iter().next().expect("a value");
                        assert_eq!(rep.values.iter().collect::<Vec<_>>(), vec![first]);
                    } else {
                        changes += 1;
                        for (q, v) in rep.values.iter() {
                            assert_ne!(held[i].get(q), Some(v), "{}: {q:?} unchanged", d.id);
                        }
                    }
                }
            }
            if !rep.keep_alive {
                let mut h = held[i];
                for (q, v) in rep.values.iter() {
                    match (0..h.len()).find(|&j| h.quantities[j] == q) {
                        Some(j) => h.values[j] = v,
                        None => h.push(q, v),
                    }
                }
                held[i] = h;
            }
            last_t[i] = Some(rep.t_ms);
        }
        assert!(
            changes > 10_000 && alive > 1_000,
            "{changes} changes, {alive} keep-alives"
        );
        // A lamp changes a few times a day, a meter every quarter hour.
        let per = |kind: DeviceKind| {
            let n = sim.devices.iter().filter(|d| d.kind == kind).count();
            let c = fine
                .iter()
                .filter(|r| !r.keep_alive && sim.devices[r.device as usize].kind == kind)
                .count();
            c as f64 / n as f64
        };
        assert!(per(DeviceKind::Meter) > 90.0 && per(DeviceKind::Meter) < 98.0);
        assert!(per(DeviceKind::Lamp) < 40.0, "{}", per(DeviceKind::Lamp));
        // With a heartbeat every minute, every device sends all it holds at least that often.
        let hb = SimReporting {
            heartbeat_ms: Some(60_000),
            ..r
        };
        let beats = reports(&sim, start, start + 3_600_000, 10_000, hb);
        let mut full = vec![start; sim.devices.len()];
        for rep in &beats {
            let i = rep.device as usize;
            if rep.values.len() == sim.values(i, rep.t_ms).len() {
                assert!(rep.t_ms - full[i] <= 60_000);
                full[i] = rep.t_ms;
            }
        }
        assert!(beats.len() > fine.iter().filter(|r| r.t_ms < start + 3_600_000).count());
    }
}
