//! Live state components. Every device entity has a [`Device`] and a [`Liveness`] from the
//! moment it is registered (health "never seen" until its first message), and the state
//! component of its kind.

use std::collections::VecDeque;

use bevy::prelude::*;

use crate::registry::{DeviceKind, Quantity};

/// A device of the twin, by the id its source uses.
#[derive(Component, Debug, Clone, PartialEq)]
#[require(Liveness, History)]
pub struct Device {
    pub id: String,
    pub kind: DeviceKind,
}

/// What the registry says of a device besides its id: a name and attributes such as `origin`
/// (`generated` or `surveyed`) and `placement` (the rule that placed a generated one).
#[derive(Component, Debug, Clone, Default, PartialEq)]
pub struct DeviceInfo {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// How current a device's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Reflect)]
pub enum Health {
    #[default]
    NeverSeen,
    Live,
    Stale,
    Fault,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::NeverSeen => "never seen",
            Health::Live => "live",
            Health::Stale => "stale",
            Health::Fault => "fault",
        }
    }
}

/// When and from where a device was last heard, and its health.
#[derive(Component, Debug, Clone, PartialEq, Default)]
pub struct Liveness {
    pub last_seen_ms: Option<i64>,
    pub source: Option<String>,
    pub health: Health,
    /// Why the device is in fault, when it is.
    pub fault: Option<String>,
    /// Field names the device reports that none of its rules map (newest message first, at
    /// most [`MAX_UNMAPPED_FIELDS`]), so a user sees which rule to add.
    pub unmapped_fields: Vec<String>,
    /// Messages of this device that carried no field its rules map.
    pub unmapped_messages: u64,
}

/// How many unmapped field names a device keeps.
pub const MAX_UNMAPPED_FIELDS: usize = 16;

impl Liveness {
    /// Notes fields no rule maps; `nothing_mapped`: the whole message said nothing known.
    pub fn note_unmapped(&mut self, fields: &[String], nothing_mapped: bool) {
        if nothing_mapped {
            self.unmapped_messages += 1;
        }
        if self.unmapped_fields.as_slice() == fields {
            return;
        }
        let mut merged: Vec<String> = fields.to_vec();
        for f in &self.unmapped_fields {
            if merged.len() < MAX_UNMAPPED_FIELDS && !merged.contains(f) {
                merged.push(f.clone());
            }
        }
        merged.truncate(MAX_UNMAPPED_FIELDS);
        self.unmapped_fields = merged;
    }
}

/// The aspect a signal head shows (Swedish sequence: red, red-amber, green, amber).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Reflect)]
pub enum SignalAspect {
    Red,
    RedAmber,
    Green,
    Amber,
    FlashingAmber,
    #[default]
    Dark,
}

impl SignalAspect {
    /// From a code 0..=5 (the order above) or a name such as `red-amber`, `RED_AMBER`, `flashing amber`.
    pub fn parse(text: &str) -> Option<SignalAspect> {
        let t: String = text
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Some(match t.as_str() {
            "red" | "0" => SignalAspect::Red,
            "redamber" | "redyellow" | "1" => SignalAspect::RedAmber,
            "green" | "2" => SignalAspect::Green,
            "amber" | "yellow" | "3" => SignalAspect::Amber,
            "flashingamber" | "flashingyellow" | "4" => SignalAspect::FlashingAmber,
            "dark" | "off" | "5" => SignalAspect::Dark,
            _ => return None,
        })
    }

    /// The code of [`SignalAspect::parse`]'s numeric form (0 red .. 5 dark).
    pub fn code(self) -> f64 {
        self as u8 as f64
    }

    /// Every aspect, in code order.
    pub const ALL: [SignalAspect; 6] = [
        SignalAspect::Red,
        SignalAspect::RedAmber,
        SignalAspect::Green,
        SignalAspect::Amber,
        SignalAspect::FlashingAmber,
        SignalAspect::Dark,
    ];

    /// The aspect of a code 0..=5 (fractions truncate); `None` outside.
    pub fn from_code(code: f64) -> Option<SignalAspect> {
        (0.0..6.0).contains(&code).then(|| Self::ALL[code as usize])
    }
}

/// Signal head state.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct SignalHeadState {
    pub aspect: SignalAspect,
    /// When the current aspect began (Unix ms).
    pub since_ms: i64,
}

/// Street lamp state.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct LampState {
    pub on: bool,
    pub dim_pct: f64,
    pub power_w: f64,
    pub fault: bool,
}

/// Building energy meter state.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct MeterState {
    pub power_kw: f64,
    pub energy_today_kwh: f64,
    pub heating_kw: Option<f64>,
}

/// Air quality sensor state (µg/m³, °C).
#[derive(Component, Debug, Clone, Copy, PartialEq, Default)]
pub struct AirQualityState {
    pub no2: Option<f64>,
    pub pm10: Option<f64>,
    pub pm25: Option<f64>,
    pub temperature_c: Option<f64>,
}

/// Recent values for charts: a bounded ring of (time ms, quantity, value).
#[derive(Component, Debug, Clone)]
pub struct History {
    pub capacity: usize,
    pub samples: VecDeque<(i64, Quantity, f64)>,
}

/// Samples kept per entity by default: the live edge for the inspector's "recent" chart (a
/// lamp's last twenty minutes, a signal head's last minute). Longer spans come from the
/// history on disk; a smaller ring is a quarter of the memory and cheaper to write.
pub const HISTORY_CAPACITY: usize = 64;

impl Default for History {
    fn default() -> Self {
        Self {
            capacity: HISTORY_CAPACITY,
            samples: VecDeque::new(),
        }
    }
}

impl History {
    pub fn push(&mut self, t: i64, q: Quantity, v: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back((t, q, v));
    }

    /// The series of one quantity, oldest first.
    pub fn series(&self, q: Quantity) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.samples
            .iter()
            .filter(move |s| s.1 == q)
            .map(|s| (s.0, s.2))
    }
}

/// Components of a device entity of `kind`; [`add_kind_state`] adds its kind's state.
pub fn device_bundle(id: impl Into<String>, kind: DeviceKind) -> impl Bundle {
    let id: String = id.into();
    let id = crate::registry::canonical_id(&id).into_owned();
    (Name::new(format!("{kind:?} {id}")), Device { id, kind })
}

/// Spawns a device entity and registers it under its id with its own `rules` (checked before
/// its kind's defaults); returns the entity, for the caller to add position and the like.
pub fn spawn_registered(
    world: &mut World,
    id: impl Into<String>,
    kind: DeviceKind,
    rules: Vec<crate::registry::FieldRule>,
) -> Entity {
    let id: String = id.into();
    let entity = world.spawn(device_bundle(id.clone(), kind)).id();
    world
        .resource_mut::<crate::registry::DeviceRegistry>()
        .register(id, kind, entity, rules);
    entity
}

/// Observer: a new [`Device`] gets the state component of its kind.
pub fn add_kind_state(add: On<Add, Device>, devices: Query<&Device>, mut commands: Commands) {
    let Ok(device) = devices.get(add.entity) else {
        return;
    };
    let mut e = commands.entity(add.entity);
    match device.kind {
        DeviceKind::SignalHead => e.insert(SignalHeadState::default()),
        DeviceKind::Lamp => e.insert(LampState::default()),
        DeviceKind::Meter => e.insert(MeterState::default()),
        DeviceKind::AirSensor => e.insert(AirQualityState::default()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspects_round_trip_through_names_and_codes() {
        for (name, aspect) in [
            ("red", SignalAspect::Red),
            ("Red-Amber", SignalAspect::RedAmber),
            ("GREEN", SignalAspect::Green),
            ("yellow", SignalAspect::Amber),
            ("flashing amber", SignalAspect::FlashingAmber),
            ("dark", SignalAspect::Dark),
        ] {
            assert_eq!(SignalAspect::parse(name), Some(aspect), "{name}");
            assert_eq!(SignalAspect::from_code(aspect.code()), Some(aspect));
        }
        assert_eq!(SignalAspect::parse("blue"), None);
        assert_eq!(SignalAspect::from_code(6.0), None);
        assert_eq!(SignalAspect::from_code(-1.0), None);
    }
}
