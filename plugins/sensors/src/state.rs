//! Live state components. Every device entity has a [`Device`] and a [`Liveness`] from the
//! moment it is registered (health "never seen" until its first message), and the state
//! component of its kind.

use bevy::prelude::*;

use crate::registry::{DeviceKind, Quantity};

/// A device of the twin, by the id its source uses.
#[derive(Component, Debug, Clone, PartialEq)]
#[require(Liveness)]
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
    /// Why the source that feeds it ([`Liveness::source`]) is down: its value is not being
    /// kept current (the device is stale at once).
    pub source_down: Option<String>,
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

/// One recent value of a device: (time ms, quantity, value).
pub type Sample = (i64, Quantity, f64);

/// Samples kept per device: the live edge for the inspector's "recent" chart (a lamp's last
/// twenty minutes, a signal head's last minute) and for recognising redeliveries. Longer spans
/// come from the history on disk.
pub const HISTORY_CAPACITY: usize = 64;

/// Devices per block of the [`LiveEdge`].
const EDGE_BLOCK: usize = 1024;

/// A registered device's slot in the registry's directory: where its recent values are kept
/// in the [`LiveEdge`].
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceSlot(pub u32);

/// The last [`HISTORY_CAPACITY`] values of every device, by slot. Kept time-major: the n-th
/// sample of the devices of a block of [`EDGE_BLOCK`] slots lie side by side, so a frame that
/// updates many devices writes a few dense runs of memory rather than one scattered ring per
/// device. A block is allocated when one of its devices first reports.
#[derive(Resource, Debug, Default)]
pub struct LiveEdge {
    blocks: Vec<Option<Box<EdgeBlock>>>,
}

/// A block's samples as three arrays (times, quantities, values: 17 bytes a sample, where a
/// `Sample` tuple takes 24 with its padding).
#[derive(Debug)]
struct EdgeBlock {
    /// Sample `n` of column `c` at `(n % HISTORY_CAPACITY) * EDGE_BLOCK + c` in each.
    times: Vec<i64>,
    quantities: Vec<Quantity>,
    values: Vec<f64>,
    /// Samples pushed per column, ever.
    pushed: Vec<u64>,
}

impl LiveEdge {
    fn place(slot: u32) -> (usize, usize) {
        let slot = slot as usize;
        (slot / EDGE_BLOCK, slot % EDGE_BLOCK)
    }

    /// Adds a device's value, dropping its oldest beyond [`HISTORY_CAPACITY`].
    pub fn push(&mut self, slot: u32, t: i64, q: Quantity, v: f64) {
        let (b, c) = Self::place(slot);
        if self.blocks.len() <= b {
            self.blocks.resize_with(b + 1, || None);
        }
        let block = self.blocks[b].get_or_insert_with(|| {
            Box::new(EdgeBlock {
                times: vec![0; HISTORY_CAPACITY * EDGE_BLOCK],
                quantities: vec![Quantity::SignalAspect; HISTORY_CAPACITY * EDGE_BLOCK],
                values: vec![0.0; HISTORY_CAPACITY * EDGE_BLOCK],
                pushed: vec![0; EDGE_BLOCK],
            })
        });
        let n = block.pushed[c];
        let i = (n % HISTORY_CAPACITY as u64) as usize * EDGE_BLOCK + c;
        block.times[i] = t;
        block.quantities[i] = q;
        block.values[i] = v;
        block.pushed[c] = n + 1;
    }

    /// A device's recent values, oldest first.
    pub fn samples(&self, slot: u32) -> impl DoubleEndedIterator<Item = Sample> + '_ {
        let (b, c) = Self::place(slot);
        let block = self.blocks.get(b).and_then(Option::as_deref);
        let pushed = block.map_or(0, |k| k.pushed[c]);
        let from = pushed.saturating_sub(HISTORY_CAPACITY as u64);
        (from..pushed).filter_map(move |n| {
            block.map(|k| {
                let i = (n % HISTORY_CAPACITY as u64) as usize * EDGE_BLOCK + c;
                (k.times[i], k.quantities[i], k.values[i])
            })
        })
    }

    /// The series of one quantity of a device, oldest first.
    pub fn series(&self, slot: u32, q: Quantity) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.samples(slot)
            .filter(move |s| s.1 == q)
            .map(|s| (s.0, s.2))
    }

    /// How many samples a device has (at most [`HISTORY_CAPACITY`]).
    pub fn len(&self, slot: u32) -> usize {
        let (b, c) = Self::place(slot);
        self.blocks
            .get(b)
            .and_then(Option::as_deref)
            .map_or(0, |k| k.pushed[c].min(HISTORY_CAPACITY as u64) as usize)
    }
}

/// A device entity's recent values of one quantity (oldest first), from the [`LiveEdge`].
pub fn recent_series(world: &World, device: Entity, q: Quantity) -> Vec<(i64, f64)> {
    match (
        world.get::<DeviceSlot>(device),
        world.get_resource::<LiveEdge>(),
    ) {
        (Some(slot), Some(edge)) => edge.series(slot.0, q).collect(),
        _ => Vec::new(),
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
    register_entity(world, entity, id, kind, rules);
    entity
}

/// Registers an existing entity as the device `id` and gives it its [`DeviceSlot`].
pub fn register_entity(
    world: &mut World,
    entity: Entity,
    id: impl Into<String>,
    kind: DeviceKind,
    rules: Vec<crate::registry::FieldRule>,
) -> u32 {
    let slot = world
        .get_resource_or_init::<crate::registry::DeviceRegistry>()
        .register(id, kind, entity, rules);
    world.entity_mut(entity).insert(DeviceSlot(slot));
    slot
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
    fn the_live_edge_keeps_each_devices_newest_samples_in_order() {
        let mut edge = LiveEdge::default();
        // Two devices in one block, one in a far block (allocated when it first reports).
        let far = 5 * EDGE_BLOCK as u32 + 7;
        for n in 0..100i64 {
            edge.push(0, n, Quantity::PowerKw, n as f64);
            if n % 2 == 0 {
                edge.push(1, n, Quantity::No2, -(n as f64));
            }
        }
        edge.push(far, 42, Quantity::LampOn, 1.0);
        let zero: Vec<Sample> = edge.samples(0).collect();
        assert_eq!(zero.len(), HISTORY_CAPACITY);
        assert_eq!(zero[0], (36, Quantity::PowerKw, 36.0), "the oldest kept");
        assert_eq!(zero[HISTORY_CAPACITY - 1], (99, Quantity::PowerKw, 99.0));
        assert!(zero.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
        assert_eq!(edge.len(1), 50);
        assert_eq!(edge.series(1, Quantity::No2).last(), Some((98, -98.0)));
        assert_eq!(edge.series(1, Quantity::PowerKw).count(), 0);
        assert_eq!(
            edge.samples(far).collect::<Vec<_>>(),
            vec![(42, Quantity::LampOn, 1.0)]
        );
        assert_eq!(
            edge.samples(far + 1).count(),
            0,
            "a device that never reported"
        );
        assert_eq!(
            edge.samples(99 * EDGE_BLOCK as u32).count(),
            0,
            "beyond every block"
        );
        assert_eq!(edge.samples(0).next_back().map(|s| s.0), Some(99));
    }

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
