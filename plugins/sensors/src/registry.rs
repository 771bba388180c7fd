//! The device registry: device id -> kind, entity, and which payload field is which quantity
//! (with a unit scale). Each kind has default field names covering the formats the twin reads
//! (FIWARE smart-data-models names, common LoRaWAN decoder names); a registry file can add more.

use std::collections::HashMap;

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

/// One field-to-quantity rule: value × `scale` (e.g. W to kW: 0.001).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldRule {
    pub field: String,
    pub quantity: Quantity,
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// The default rules of a kind.
pub fn default_rules(kind: DeviceKind) -> Vec<FieldRule> {
    let r = |field: &str, quantity, scale| FieldRule {
        field: field.into(),
        quantity,
        scale,
    };
    match kind {
        DeviceKind::SignalHead => vec![
            r("state", Quantity::SignalAspect, 1.0),
            r("aspect", Quantity::SignalAspect, 1.0),
        ],
        DeviceKind::Lamp => vec![
            r("on", Quantity::LampOn, 1.0),
            r("powerState", Quantity::LampOn, 1.0),
            r("dim", Quantity::LampDimPct, 1.0),
            r("dimLevel", Quantity::LampDimPct, 1.0),
            r("power_w", Quantity::LampPowerW, 1.0),
            r("powerConsumption", Quantity::LampPowerW, 1.0),
            r("fault", Quantity::LampFault, 1.0),
        ],
        DeviceKind::Meter => vec![
            r("power_kw", Quantity::PowerKw, 1.0),
            r("totalActivePower", Quantity::PowerKw, 0.001),
            r("energy_today_kwh", Quantity::EnergyTodayKwh, 1.0),
            r("heating_kw", Quantity::HeatingKw, 1.0),
        ],
        DeviceKind::AirSensor => vec![
            r("NO2", Quantity::No2, 1.0),
            r("no2", Quantity::No2, 1.0),
            r("PM10", Quantity::Pm10, 1.0),
            r("pm10", Quantity::Pm10, 1.0),
            r("PM2.5", Quantity::Pm25, 1.0),
            r("pm25", Quantity::Pm25, 1.0),
            r("temperature", Quantity::TemperatureC, 1.0),
        ],
    }
}

/// A registered device.
#[derive(Debug, Clone)]
pub struct RegisteredDevice {
    pub kind: DeviceKind,
    pub entity: Entity,
    pub rules: Vec<FieldRule>,
}

/// Device id -> registered device; plus what arrived from devices nobody registered.
#[derive(Resource, Debug, Default)]
pub struct DeviceRegistry {
    devices: HashMap<String, RegisteredDevice>,
    /// Unknown device ids with their message counts (shown in the UI, never silently dropped).
    pub unknown: HashMap<String, u64>,
}

/// At most this many distinct unknown ids are listed (a flood of random ids must not grow
/// memory without bound); further ones are still counted under `"(more)"`.
pub const MAX_UNKNOWN_LISTED: usize = 1000;

impl DeviceRegistry {
    /// Registers a device with its kind's default rules plus `extra` rules (checked first).
    pub fn register(
        &mut self,
        id: impl Into<String>,
        kind: DeviceKind,
        entity: Entity,
        extra: Vec<FieldRule>,
    ) {
        let mut rules = extra;
        rules.extend(default_rules(kind));
        self.devices.insert(
            id.into(),
            RegisteredDevice {
                kind,
                entity,
                rules,
            },
        );
    }

    pub fn get(&self, id: &str) -> Option<&RegisteredDevice> {
        self.devices.get(id)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Notes a message from an unregistered device.
    pub fn note_unknown(&mut self, id: &str) {
        if let Some(n) = self.unknown.get_mut(id) {
            *n += 1;
        } else if self.unknown.len() < MAX_UNKNOWN_LISTED {
            self.unknown.insert(id.to_string(), 1);
        } else {
            *self.unknown.entry("(more)".into()).or_default() += 1;
        }
    }
}
