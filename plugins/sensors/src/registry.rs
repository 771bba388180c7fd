//! The device registry: device id -> kind, entity, and which payload field is which quantity
//! (with a unit scale). Each kind has default field names covering the formats the twin reads
//! (FIWARE smart-data-models names, common LoRaWAN decoder names); a registry file can add more.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bevy::prelude::*;
use serde::Deserialize;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Reflect)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    SignalHead,
    Lamp,
    Meter,
    AirSensor,
}

impl DeviceKind {
    /// The name used in registry files and messages (`signal_head`, `lamp`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::SignalHead => "signal_head",
            DeviceKind::Lamp => "lamp",
            DeviceKind::Meter => "meter",
            DeviceKind::AirSensor => "air_sensor",
        }
    }
}

/// A live value the twin keeps, with its unit and valid range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Reflect)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Signal aspect (text such as "red", "red-amber", or a code 0..5).
    SignalAspect,
    LampOn,
    /// Dim level, percent.
    LampDimPct,
    /// Lamp power draw, W.
    LampPowerW,
    LampFault,
    /// Building power, kW.
    PowerKw,
    /// Energy used today, kWh.
    EnergyTodayKwh,
    /// Heating power, kW.
    HeatingKw,
    /// Nitrogen dioxide, µg/m³.
    No2,
    /// Particulate matter below 10 µm, µg/m³.
    Pm10,
    /// Particulate matter below 2.5 µm, µg/m³.
    Pm25,
    /// Air temperature, °C.
    TemperatureC,
}

impl Quantity {
    /// Every quantity, in index order.
    pub const ALL: [Quantity; 12] = [
        Quantity::SignalAspect,
        Quantity::LampOn,
        Quantity::LampDimPct,
        Quantity::LampPowerW,
        Quantity::LampFault,
        Quantity::PowerKw,
        Quantity::EnergyTodayKwh,
        Quantity::HeatingKw,
        Quantity::No2,
        Quantity::Pm10,
        Quantity::Pm25,
        Quantity::TemperatureC,
    ];

    /// A short name with its unit, as the snapshot and exports write it.
    pub fn key(self) -> &'static str {
        match self {
            Quantity::SignalAspect => "aspect",
            Quantity::LampOn => "on",
            Quantity::LampDimPct => "dim_pct",
            Quantity::LampPowerW => "power_w",
            Quantity::LampFault => "lamp_fault",
            Quantity::PowerKw => "power_kw",
            Quantity::EnergyTodayKwh => "energy_today_kwh",
            Quantity::HeatingKw => "heating_kw",
            Quantity::No2 => "no2_ugm3",
            Quantity::Pm10 => "pm10_ugm3",
            Quantity::Pm25 => "pm25_ugm3",
            Quantity::TemperatureC => "temperature_c",
        }
    }

    /// Its place in [`Quantity::ALL`] (stored in the history).
    pub fn index(self) -> u8 {
        Quantity::ALL.iter().position(|q| *q == self).unwrap_or(0) as u8
    }

    pub fn from_index(i: u8) -> Option<Quantity> {
        Quantity::ALL.get(usize::from(i)).copied()
    }

    /// The physically plausible range; values outside are refused as out of range.
    pub fn range(self) -> (f64, f64) {
        match self {
            Quantity::SignalAspect => (0.0, 5.0),
            Quantity::LampOn | Quantity::LampFault => (0.0, 1.0),
            Quantity::LampDimPct => (0.0, 100.0),
            Quantity::LampPowerW => (0.0, 2_000.0),
            Quantity::PowerKw | Quantity::HeatingKw => (0.0, 50_000.0),
            Quantity::EnergyTodayKwh => (0.0, 1_200_000.0),
            Quantity::No2 | Quantity::Pm10 | Quantity::Pm25 => (0.0, 2_000.0),
            Quantity::TemperatureC => (-60.0, 60.0),
        }
    }

    /// What units a payload may give for the quantity, for error messages.
    pub fn unit_name(self) -> &'static str {
        match self {
            Quantity::SignalAspect => "no unit (a signal aspect)",
            Quantity::LampOn | Quantity::LampFault => "no unit (on/off)",
            Quantity::LampDimPct => "a ratio (%, /)",
            Quantity::LampPowerW | Quantity::PowerKw | Quantity::HeatingKw => "a power (W, kW, MW)",
            Quantity::EnergyTodayKwh => "an energy (Wh, kWh, MWh, J)",
            Quantity::No2 | Quantity::Pm10 | Quantity::Pm25 => "a concentration (ug/m3, mg/m3)",
            Quantity::TemperatureC => "a temperature (Cel, K, degF)",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Quantity::SignalAspect | Quantity::LampOn | Quantity::LampFault => "",
            Quantity::LampDimPct => "%",
            Quantity::LampPowerW => "W",
            Quantity::PowerKw | Quantity::HeatingKw => "kW",
            Quantity::EnergyTodayKwh => "kWh",
            Quantity::No2 | Quantity::Pm10 | Quantity::Pm25 => "µg/m³",
            Quantity::TemperatureC => "°C",
        }
    }
}

/// One field-to-quantity rule. A payload field matches when its name, with case and the
/// separators `_`, `-`, `.` and spaces ignored, equals `field`, or equals it followed by a unit
/// suffix (`power_w`, `power_kw`, `temperature_c`). The value is multiplied by `scale`, then
/// converted from its unit: the payload's own (SenML `u`, a `unit` beside the value, the name's
/// suffix), else this rule's `unit`, else it is taken to be in the quantity's unit already.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    pub field: String,
    pub quantity: Quantity,
    #[serde(default = "one")]
    pub scale: f64,
    /// The unit the field is written in when the payload does not say (e.g. `"W"`).
    #[serde(default)]
    pub unit: Option<String>,
}

impl FieldRule {
    /// A rule with scale 1 and no unit of its own.
    pub fn new(field: &str, quantity: Quantity) -> FieldRule {
        FieldRule {
            field: field.into(),
            quantity,
            scale: 1.0,
            unit: None,
        }
    }

    /// The same rule, reading fields without a unit as `unit`.
    pub fn in_unit(mut self, unit: &str) -> FieldRule {
        self.unit = Some(unit.into());
        self
    }
}

fn one() -> f64 {
    1.0
}

/// A field name reduced for matching: lower case, letters and digits only (`PM2.5`, `pm2_5`
/// and `pm25` are all `pm25`; `dim_level` and `dimLevel` are `dimlevel`).
pub fn field_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A rule with its matching key computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    pub rule: FieldRule,
    pub key: String,
}

impl From<FieldRule> for CompiledRule {
    fn from(rule: FieldRule) -> Self {
        CompiledRule {
            key: field_key(&rule.field),
            rule,
        }
    }
}

/// The default rules of a kind: the spellings field decoders, FIWARE smart-data-models and
/// SenML packs use (each also matches with a unit suffix and in any case or separator style).
pub fn default_rules(kind: DeviceKind) -> Vec<FieldRule> {
    let r = FieldRule::new;
    match kind {
        DeviceKind::SignalHead => vec![
            r("state", Quantity::SignalAspect),
            r("aspect", Quantity::SignalAspect),
            r("signal_state", Quantity::SignalAspect),
            r("signal_aspect", Quantity::SignalAspect),
        ],
        DeviceKind::Lamp => vec![
            r("on", Quantity::LampOn),
            r("power_state", Quantity::LampOn),
            r("lamp_on", Quantity::LampOn),
            r("dim", Quantity::LampDimPct),
            r("dim_level", Quantity::LampDimPct),
            r("dimming", Quantity::LampDimPct),
            r("dimming_level", Quantity::LampDimPct),
            r("power", Quantity::LampPowerW).in_unit("W"),
            r("active_power", Quantity::LampPowerW).in_unit("W"),
            r("power_consumption", Quantity::LampPowerW).in_unit("W"),
            r("fault", Quantity::LampFault),
            r("lamp_fault", Quantity::LampFault),
        ],
        DeviceKind::Meter => vec![
            // A building meter's bare `power` is read in kW; FIWARE's ACMeasurement powers in W.
            r("power", Quantity::PowerKw),
            r("active_power", Quantity::PowerKw).in_unit("W"),
            r("total_active_power", Quantity::PowerKw).in_unit("W"),
            r("energy_today", Quantity::EnergyTodayKwh).in_unit("kWh"),
            r("energy", Quantity::EnergyTodayKwh).in_unit("kWh"),
            r("heating", Quantity::HeatingKw),
            r("heating_power", Quantity::HeatingKw),
        ],
        DeviceKind::AirSensor => vec![
            r("no2", Quantity::No2),
            r("nitrogen_dioxide", Quantity::No2),
            r("pm10", Quantity::Pm10),
            r("pm25", Quantity::Pm25),
            r("temperature", Quantity::TemperatureC),
            r("temp", Quantity::TemperatureC),
        ],
    }
}

/// The canonical form of a device id: an EUI-64 (16 hex digits, optionally in pairs separated
/// by `-`, `:` or spaces, as ChirpStack (lower case) and The Things Stack (upper case) show
/// DevEUIs) is written as 16 upper-case hex digits; any other id is kept as written.
pub fn canonical_id(id: &str) -> std::borrow::Cow<'_, str> {
    let id = id.trim();
    let digits = id.bytes().filter(u8::is_ascii_hexdigit).count();
    let separators = id
        .bytes()
        .filter(|b| matches!(b, b'-' | b':' | b' '))
        .count();
    let eui = digits == 16
        && digits + separators == id.len()
        && (separators == 0
            || (separators == 7 && id.split(['-', ':', ' ']).all(|pair| pair.len() == 2)));
    if eui {
        std::borrow::Cow::Owned(
            id.chars()
                .filter(char::is_ascii_hexdigit)
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(id)
    }
}

/// A registered device.
#[derive(Debug, Clone)]
pub struct RegisteredDevice {
    pub kind: DeviceKind,
    pub entity: Entity,
    /// The device's own rules, then its kind's defaults (shared by every device without rules).
    pub rules: Arc<[CompiledRule]>,
}

/// Registered devices by canonical id ([`canonical_id`]), each in a numbered slot: sources read
/// it on their own threads to resolve what they receive (id to slot, fields to quantities), so
/// the ECS gets compact updates ([`crate::update::Update`]); the ECS registers devices in it.
#[derive(Debug, Default)]
pub struct Directory {
    slots: HashMap<String, u32>,
    devices: Vec<RegisteredDevice>,
    defaults: HashMap<DeviceKind, Arc<[CompiledRule]>>,
}

impl Directory {
    /// The slot of the device a payload's id names (EUI-64 ids in any case or separator style).
    pub fn slot(&self, id: &str) -> Option<u32> {
        self.slots.get(canonical_id(id).as_ref()).copied()
    }

    /// The device in a slot from [`Directory::slot`].
    pub fn device(&self, slot: u32) -> Option<&RegisteredDevice> {
        self.devices.get(slot as usize)
    }

    pub fn get(&self, id: &str) -> Option<&RegisteredDevice> {
        self.slot(id).and_then(|s| self.device(s))
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Registers (or re-registers, in the same slot) a device; returns its slot.
    pub fn register(
        &mut self,
        id: &str,
        kind: DeviceKind,
        entity: Entity,
        extra: Vec<FieldRule>,
    ) -> u32 {
        let defaults = self
            .defaults
            .entry(kind)
            .or_insert_with(|| default_rules(kind).into_iter().map(Into::into).collect())
            .clone();
        let rules = if extra.is_empty() {
            defaults
        } else {
            extra
                .into_iter()
                .map(CompiledRule::from)
                .chain(defaults.iter().cloned())
                .collect()
        };
        let device = RegisteredDevice {
            kind,
            entity,
            rules,
        };
        let id = canonical_id(id).into_owned();
        match self.slots.get(&id) {
            Some(&slot) => {
                self.devices[slot as usize] = device;
                slot
            }
            None => {
                let slot = self.devices.len() as u32;
                self.devices.push(device);
                self.slots.insert(id, slot);
                slot
            }
        }
    }
}

/// A handle on the [`Directory`] shared by the registry and every source (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct DeviceDirectory(Arc<RwLock<Directory>>);

impl DeviceDirectory {
    /// Reading it: sources once per message, the apply system once per frame.
    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Directory> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Device id -> registered device; plus what arrived from devices nobody registered.
#[derive(Resource, Debug, Default)]
pub struct DeviceRegistry {
    directory: DeviceDirectory,
    /// Unknown device ids with their message counts (shown in the UI, never silently dropped).
    pub unknown: HashMap<String, u64>,
}

/// At most this many distinct unknown ids are listed (a flood of random ids must not grow
/// memory without bound); further ones are still counted under `"(more)"`.
pub const MAX_UNKNOWN_LISTED: usize = 1000;

impl DeviceRegistry {
    /// Registers a device with its kind's default rules plus `extra` rules (checked first).
    /// EUI-64 ids are matched in any case ([`canonical_id`]). Returns its slot: give the entity
    /// a [`crate::state::DeviceSlot`] with it.
    pub fn register(
        &mut self,
        id: impl Into<String>,
        kind: DeviceKind,
        entity: Entity,
        extra: Vec<FieldRule>,
    ) -> u32 {
        let id: String = id.into();
        self.directory.write().register(&id, kind, entity, extra)
    }

    /// The device a payload's id names (EUI-64 ids in any case or separator style).
    pub fn get(&self, id: &str) -> Option<RegisteredDevice> {
        self.directory.read().get(id).cloned()
    }

    /// The directory, for a channel whose senders resolve against it.
    pub fn directory(&self) -> DeviceDirectory {
        self.directory.clone()
    }

    /// Reading the directory (for many lookups at once).
    pub fn read(&self) -> RwLockReadGuard<'_, Directory> {
        self.directory.read()
    }

    pub fn len(&self) -> usize {
        self.directory.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.directory.read().is_empty()
    }

    /// Notes a message from an unregistered device.
    pub fn note_unknown(&mut self, id: &str) {
        let id = canonical_id(id);
        let id = id.as_ref();
        if let Some(n) = self.unknown.get_mut(id) {
            *n += 1;
        } else if self.unknown.len() < MAX_UNKNOWN_LISTED {
            self.unknown.insert(id.to_string(), 1);
        } else {
            *self.unknown.entry("(more)".into()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_ids_are_written_one_way_and_other_ids_are_kept() {
        for written in [
            "a1b2c3d4e5f60708",
            "A1B2C3D4E5F60708",
            "a1-b2-c3-d4-e5-f6-07-08",
            "A1:B2:C3:D4:E5:F6:07:08",
            " a1b2c3d4e5f60708 ",
        ] {
            assert_eq!(canonical_id(written), "A1B2C3D4E5F60708", "{written:?}");
        }
        for kept in [
            "sig-1",
            "urn:ngsi-ld:Streetlight:1",
            "a1b2c3d4e5f6070",
            "a1b2-c3d4e5f60708",
        ] {
            assert_eq!(canonical_id(kept), kept.trim());
        }
    }

    #[test]
    fn field_keys_ignore_case_and_separators() {
        for (a, b) in [
            ("PM2.5", "pm2_5"),
            ("dimLevel", "dim_level"),
            ("NO2", "no2"),
        ] {
            assert_eq!(field_key(a), field_key(b));
        }
    }
}
