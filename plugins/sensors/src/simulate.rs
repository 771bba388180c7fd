//! The built-in simulator: a source like any other. It computes each device's state as a pure
//! function of (seed, device, time), encodes it as SenML JSON (RFC 8428) and hands the bytes to
//! the same decoder a broker's messages go through. It is stepped by the ECS from the twin
//! clock ([`SimulatorRun::step`]), not run on a thread of its own.
//!
//! Models, all in Stockholm local time (CET/CEST):
//! - signal heads cycle the Swedish sequence red, red-amber (1 s), green, amber (3 s), with
//!   2 s all-red between the two phase groups of a controller; they report each change and a
//!   heartbeat every [`SIGNAL_HEARTBEAT_MS`];
//! - lamps switch on when the sun sinks below their photocell's threshold (between -0.5 and
//!   -1.5 degrees) and run at their [`LightingPolicy`]'s level: by default 100 %, dimmed to
//!   50 % from 00:00 to 05:00 (a scenario may give them another calendar, presence dimming or
//!   other fittings); they draw their rated power times that level; a few (by seed) are
//!   broken: burnt out (dark at night) or reporting a driver fault;
//! - building meters follow a daily profile by use (offices by working hours, homes with
//!   morning and evening peaks), heating follows the outdoor temperature;
//! - NO2 and PM follow traffic with weekday rush-hour peaks at 08:00 and 16:30 (PM10 with
//!   Stockholm's spring road-dust season), temperature a seasonal and daily curve.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::TAU;

use tvilling_geo::sun::{STOCKHOLM_LAT_LON, civil_from_days, days_from_civil, sun_position};

use crate::codec::{DecodeContext, PayloadFormat, decode};
use crate::registry::DeviceKind;
use crate::state::SignalAspect;

/// The simulator's seed when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// A signal head reports at least this often (ms).
pub const SIGNAL_HEARTBEAT_MS: i64 = 5_000;
/// Lamps, meters and air sensors report this often (ms), each at its own phase.
pub const REPORT_INTERVAL_MS: i64 = 60_000;
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
        broken: Option<LampBreak>,
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
            policy: LightingPolicy::shared_baseline(),
        }
    }

    /// A signal head's aspect at `t_ms` and the seconds until it changes; `None` for others.
    pub fn signal_at(&self, t_ms: i64) -> Option<(SignalAspect, f64)> {
        match self {
            SimProfile::Signal {
                cycle_s,
                offset_s,
                split,
                group,
            } => Some(signal_aspect(
                *cycle_s,
                *split,
                *group,
                t_ms as f64 / 1000.0 - offset_s,
            )),
            _ => None,
        }
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
        midnight_ms: days * 86_400_000 - offset * 1000,
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
fn load_share(u: BuildingUse, local: &LocalTime) -> f64 {
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

/// A value of a simulated reading.
#[derive(Debug, Clone, PartialEq)]
pub enum SimValue {
    Number(f64),
    Bool(bool),
    Text(&'static str),
}

/// The simulator's model: its devices and seed. Readings are pure functions of time.
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

/// A meter's electrical power at `t_ms`, kW.
fn meter_power_kw(seed: u64, key: u64, floor_area_m2: f64, u: BuildingUse, t_ms: i64) -> f64 {
    let l = stockholm_local(t_ms);
    floor_area_m2
        * peak_kw_per_m2(u)
        * load_share(u, &l)
        * (1.0 + 0.05 * noise(seed, key, t_ms, 900_000))
}

/// An air sensor's NO2 at `t_ms` (`rush`: the traffic intensity then), µg/m³, unrounded.
fn air_no2(seed: u64, key: u64, traffic: f64, rush: f64, t_ms: i64) -> f64 {
    8.0 + traffic * 55.0 * rush + 4.0 * noise(seed, key ^ (1 << 40), t_ms, 600_000)
}

impl Simulator {
    /// Lamp `i` at `t_ms` (`sun`: the sun's elevation then, degrees); `None` for others.
    pub fn lamp_now(&self, i: usize, t_ms: i64, local: &LocalTime, sun: f64) -> Option<LampNow> {
        let SimProfile::Lamp {
            rated_w,
            on_below_deg,
            broken,
            policy,
        } = &self.devices[i].profile
        else {
            return None;
        };
        let key = i as u64;
        let wants_on = sun < *on_below_deg;
        let on = wants_on && *broken != Some(LampBreak::BurntOut);
        // Presence is drawn per lamp and 10-minute span, apart from the power noise.
        let span = t_ms.div_euclid(PRESENCE_SPAN_MS);
        let passing = (mix(self.seed ^ mix(key ^ mix(span as u64 ^ 0x7072_6573))) >> 11) as f64
            / (1u64 << 53) as f64;
        let dim_pct = if on {
            policy.level(local, passing)
        } else {
            100.0
        };
        let power_w = if on {
            rated_w * dim_pct / 100.0 * (1.0 + 0.02 * noise(self.seed, key, t_ms, 600_000))
        } else {
            0.5
        };
        Some(LampNow {
            on,
            dim_pct,
            power_w,
            fault: on && *broken == Some(LampBreak::DriverFault),
        })
    }

    /// What every device shows at `t_ms`, in device order (the sun and the local time are
    /// worked out once).
    pub fn looks(&self, t_ms: i64) -> Vec<SimLook> {
        let local = stockholm_local(t_ms);
        let sun = sun_position(
            STOCKHOLM_LAT_LON.0,
            STOCKHOLM_LAT_LON.1,
            t_ms.div_euclid(1000),
        )
        .elevation_deg;
        let rush = traffic_intensity(&local);
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
                        power_kw: meter_power_kw(
                            self.seed,
                            i as u64,
                            *floor_area_m2,
                            *building_use,
                            t_ms,
                        ),
                    },
                    SimProfile::Air { traffic } => SimLook::Air {
                        no2: air_no2(self.seed, i as u64, *traffic, rush, t_ms).max(0.5),
                    },
                    p => SimLook::Signal(p.signal_at(t_ms).map_or(SignalAspect::Dark, |(a, _)| a)),
                }
            })
            .collect()
    }

    /// The reading of device `i` at `t_ms`: (field, value) pairs, the names the kind's default
    /// field rules read.
    pub fn reading(&self, i: usize, t_ms: i64) -> Vec<(&'static str, SimValue)> {
        let d = &self.devices[i];
        let key = i as u64;
        let local = stockholm_local(t_ms);
        if let Some((a, _)) = d.profile.signal_at(t_ms) {
            return vec![("state", SimValue::Text(aspect_name(a)))];
        }
        if matches!(d.profile, SimProfile::Lamp { .. }) {
            let sun = sun_position(
                STOCKHOLM_LAT_LON.0,
                STOCKHOLM_LAT_LON.1,
                t_ms.div_euclid(1000),
            )
            .elevation_deg;
            if let Some(l) = self.lamp_now(i, t_ms, &local, sun) {
                return vec![
                    ("on", SimValue::Bool(l.on)),
                    ("dim", SimValue::Number(if l.on { l.dim_pct } else { 0.0 })),
                    ("power_w", SimValue::Number(round(l.power_w, 1))),
                    ("fault", SimValue::Bool(l.fault)),
                ];
            }
        }
        match &d.profile {
            SimProfile::Signal { .. } => Vec::new(),
            SimProfile::Lamp { .. } => Vec::new(),
            SimProfile::Meter {
                floor_area_m2,
                building_use,
            } => {
                let power =
                    |t: i64| meter_power_kw(self.seed, key, *floor_area_m2, *building_use, t);
                // Energy since local midnight: the profile integrated in 15-minute steps.
                let step = 900_000;
                let mut energy = 0.0;
                let mut s = local.midnight_ms;
                while s < t_ms {
                    let e = (s + step).min(t_ms);
                    energy += power((s + e) / 2) * (e - s) as f64 / 3_600_000.0;
                    s = e;
                }
                // District heating: 35 W/m² at -20 °C, nothing above 17 °C.
                let out = outdoor_temperature(&local);
                let heating = floor_area_m2 * 0.035 * ((17.0 - out) / 37.0).clamp(0.0, 1.0);
                vec![
                    ("power_kw", SimValue::Number(round(power(t_ms), 2))),
                    ("energy_today_kwh", SimValue::Number(round(energy, 2))),
                    ("heating_kw", SimValue::Number(round(heating, 2))),
                ]
            }
            SimProfile::Air { traffic } => {
                let rush = traffic_intensity(&local);
                let n = |salt: u64| noise(self.seed, key ^ (salt << 40), t_ms, 600_000);
                let no2 = air_no2(self.seed, key, *traffic, rush, t_ms);
                // Studded tyres grind the streets: PM10 peaks in March-April.
                let dust = (-((f64::from(local.day_of_year) - 95.0) / 25.0).powi(2) / 2.0).exp();
                let pm10 = 9.0 + traffic * rush * (12.0 + 60.0 * dust) + 3.0 * n(2);
                let pm25 = 4.0 + 0.25 * (pm10 - 9.0) + 1.5 * n(3);
                let temp = outdoor_temperature(&local) + 0.8 * n(4);
                vec![
                    ("no2", SimValue::Number(round(no2.max(0.5), 1))),
                    ("pm10", SimValue::Number(round(pm10.max(0.5), 1))),
                    ("pm25", SimValue::Number(round(pm25.max(0.3), 1))),
                    ("temperature", SimValue::Number(round(temp, 1))),
                ]
            }
        }
    }

    /// When device `i`, having reported at `t_ms`, reports next.
    pub fn next_report(&self, i: usize, t_ms: i64) -> i64 {
        match self.devices[i].profile.signal_at(t_ms) {
            Some((_, left)) => {
                let change = t_ms + (left * 1000.0).ceil() as i64;
                change.min(t_ms + SIGNAL_HEARTBEAT_MS).max(t_ms + 1)
            }
            None => t_ms + REPORT_INTERVAL_MS,
        }
    }

    /// A SenML pack of the readings of `devices` (index, time), one base name per device.
    pub fn senml_pack(&self, devices: &[(usize, i64)]) -> Vec<u8> {
        let mut s = String::with_capacity(devices.len() * 160);
        s.push('[');
        for (k, &(i, t)) in devices.iter().enumerate() {
            for (j, (name, value)) in self.reading(i, t).into_iter().enumerate() {
                if k > 0 || j > 0 {
                    s.push(',');
                }
                s.push('{');
                if j == 0 {
                    // Ids are the registry's (ASCII without quotes or backslashes).
                    s.push_str(&format!(
                        "\"bn\":\"{}:\",\"bt\":{}.{:03},",
                        self.devices[i].id,
                        t.div_euclid(1000),
                        t.rem_euclid(1000)
                    ));
                }
                s.push_str(&format!("\"n\":\"{name}\","));
                match value {
                    SimValue::Number(v) => s.push_str(&format!("\"v\":{v}")),
                    SimValue::Bool(b) => s.push_str(&format!("\"vb\":{b}")),
                    SimValue::Text(t) => s.push_str(&format!("\"vs\":\"{t}\"")),
                }
                s.push('}');
            }
        }
        s.push(']');
        s.into_bytes()
    }
}

fn round(v: f64, places: i32) -> f64 {
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

/// A simulator being stepped: which device reports next, and when. Each step emits, in time
/// order, every report due up to the step's end as SenML packs of up to [`PACK_SIZE`] devices.
/// The same simulator, start and steps give the same packs, whatever the steps' real timing.
pub struct SimulatorRun {
    pub sim: Simulator,
    due: BinaryHeap<Reverse<(i64, usize)>>,
    first: bool,
    /// Simulated time reached, Unix ms.
    pub reached_ms: i64,
    /// Devices another simulator now drives (SUMO's signal heads): no longer reported here.
    handed_over: Vec<bool>,
}

impl SimulatorRun {
    /// Every device reports at `start_ms`, then on its own schedule.
    pub fn new(sim: Simulator, start_ms: i64) -> SimulatorRun {
        let due = (0..sim.devices.len())
            .map(|i| Reverse((start_ms, i)))
            .collect();
        let n = sim.devices.len();
        SimulatorRun {
            sim,
            due,
            first: true,
            reached_ms: start_ms,
            handed_over: vec![false; n],
        }
    }

    /// When the next report is due (Unix ms), if any device reports at all.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.due.peek().map(|std::cmp::Reverse((t, _))| *t)
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

    /// Emits every report due at or before `to_ms`: `pack(payload, last report time)` per
    /// SenML pack.
    pub fn step(&mut self, to_ms: i64, mut pack: impl FnMut(Vec<u8>, i64)) {
        let mut batch: Vec<(usize, i64)> = Vec::with_capacity(PACK_SIZE);
        let sim = &self.sim;
        let mut flush = |batch: &mut Vec<(usize, i64)>| {
            if let Some(&(_, t)) = batch.last() {
                pack(sim.senml_pack(batch), t);
                batch.clear();
            }
        };
        while let Some(&Reverse((t, i))) = self.due.peek() {
            if t > to_ms {
                break;
            }
            self.due.pop();
            if self.handed_over[i] {
                continue;
            }
            batch.push((i, t));
            if batch.len() == PACK_SIZE {
                flush(&mut batch);
            }
            // Spread the periodic reporters over their interval after the first round; far
            // behind (a large step), skip ahead rather than emit every missed report.
            let mut next = sim.next_report(i, t);
            if self.first && !matches!(sim.devices[i].profile, SimProfile::Signal { .. }) {
                next = t
                    + 1
                    + (unit_hash(sim.seed, &sim.devices[i].id, 9) * REPORT_INTERVAL_MS as f64)
                        as i64;
            }
            if next < to_ms - REPORT_INTERVAL_MS {
                next = to_ms;
            }
            self.due.push(Reverse((next, i)));
        }
        flush(&mut batch);
        self.first = false;
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
        let mut run = SimulatorRun::new(sim, start);
        let reported = |run: &mut SimulatorRun, to: i64| {
            let mut ids = Vec::new();
            run.step(to, |p, t| {
                for o in SimulatorRun::decode(&p, t).expect("pack") {
                    ids.push(o.device);
                }
            });
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
        let pack = s.senml_pack(&[(0, t), (1, t)]);
        assert_eq!(pack, s.clone().senml_pack(&[(0, t), (1, t)]));
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
        // Next report of a signal: its next change or the heartbeat, whichever comes first.
        let next = s.next_report(0, t);
        assert!(next > t && next <= t + SIGNAL_HEARTBEAT_MS);
        assert_eq!(s.next_report(1, t), t + REPORT_INTERVAL_MS);
    }
}
