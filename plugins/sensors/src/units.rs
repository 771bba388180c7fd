//! Units of measurement as payloads write them, converted to the unit each [`Quantity`] is kept
//! in. Three places name a unit: a SenML record's `u` / `bu` (RFC 8428 section 12.1 names such
//! as `W`, `kWh`, `Cel`, `%`, `/`), a `{"value": .., "unit": ..}` pair from a decoder (FIWARE's
//! UN/CEFACT `unitCode` too: `WTT`, `KWT`, `KWH`, `CEL`, `GQ`, `P1`), and a field name's suffix
//! (`power_w`, `power_kw`, `temperature_c`, `no2_ugm3`). A unit that measures something else than
//! the quantity (a `power` record in `Cel`) is refused, never scaled by guess.

use crate::registry::Quantity;

/// What a unit measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Power,
    Energy,
    Temperature,
    Ratio,
    Concentration,
}

/// A unit: `value × factor + offset` is the value in the dimension's base unit (W, Wh, °C,
/// %, µg/m³).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    pub dimension: Dimension,
    factor: f64,
    offset: f64,
}

const fn unit(dimension: Dimension, factor: f64, offset: f64) -> Unit {
    Unit {
        dimension,
        factor,
        offset,
    }
}

/// A unit by any of its written forms, or `None` for a unit the twin does not know.
pub fn parse_unit(text: &str) -> Option<Unit> {
    use Dimension::*;
    // Spellings differ in the micro sign, the superscript and the degree sign only.
    let t: String = text
        .trim()
        .chars()
        .map(|c| match c {
            'µ' | 'μ' => 'u',
            '³' => '3',
            c => c,
        })
        .filter(|c| !matches!(c, '°' | '^' | ' '))
        .collect();
    Some(match t.as_str() {
        "W" | "w" | "WTT" => unit(Power, 1.0, 0.0),
        "kW" | "kw" | "KW" | "KWT" => unit(Power, 1e3, 0.0),
        "MW" | "MAW" => unit(Power, 1e6, 0.0),
        "Wh" | "wh" | "WH" | "WHR" => unit(Energy, 1.0, 0.0),
        "kWh" | "kwh" | "KWH" => unit(Energy, 1e3, 0.0),
        "MWh" | "MWH" => unit(Energy, 1e6, 0.0),
        "J" | "JOU" => unit(Energy, 1.0 / 3600.0, 0.0),
        "kJ" | "KJO" => unit(Energy, 1.0 / 3.6, 0.0),
        "MJ" => unit(Energy, 1e6 / 3600.0, 0.0),
        "Cel" | "C" | "degC" | "CEL" | "celsius" | "Celsius" => unit(Temperature, 1.0, 0.0),
        "K" | "KEL" => unit(Temperature, 1.0, -273.15),
        "degF" | "F" | "FAH" => unit(Temperature, 5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "%" | "P1" | "pct" | "percent" => unit(Ratio, 1.0, 0.0),
        "/" | "ratio" => unit(Ratio, 100.0, 0.0),
        "ug/m3" | "GQ" => unit(Concentration, 1.0, 0.0),
        "mg/m3" | "GP" => unit(Concentration, 1e3, 0.0),
        _ => return None,
    })
}

/// Unit suffixes of field names (already reduced to lower-case letters and digits), longest
/// first so that `kwh` wins over `wh` and `h`.
pub const NAME_SUFFIXES: [(&str, &str); 11] = [
    ("celsius", "Cel"),
    ("percent", "%"),
    ("ugm3", "ug/m3"),
    ("mgm3", "mg/m3"),
    ("degc", "Cel"),
    ("kwh", "kWh"),
    ("pct", "%"),
    ("wh", "Wh"),
    ("kw", "kW"),
    ("w", "W"),
    ("c", "Cel"),
];

impl Quantity {
    /// What the quantity measures, and the factor from that dimension's base unit to the
    /// quantity's own unit; `None` for states without a unit (aspects, on/off, faults).
    pub fn dimension(self) -> Option<(Dimension, f64)> {
        Some(match self {
            Quantity::SignalAspect | Quantity::LampOn | Quantity::LampFault => return None,
            Quantity::LampDimPct => (Dimension::Ratio, 1.0),
            Quantity::LampPowerW => (Dimension::Power, 1.0),
            Quantity::PowerKw | Quantity::HeatingKw => (Dimension::Power, 1e-3),
            Quantity::EnergyTodayKwh => (Dimension::Energy, 1e-3),
            Quantity::No2 | Quantity::Pm10 | Quantity::Pm25 => (Dimension::Concentration, 1.0),
            Quantity::TemperatureC => (Dimension::Temperature, 1.0),
        })
    }
}

/// `value` written in `unit_text`, in `q`'s own unit; `Err` with the reason when the unit is
/// unknown or measures something else.
pub fn convert(value: f64, unit_text: &str, q: Quantity) -> Result<f64, String> {
    let Some(u) = parse_unit(unit_text) else {
        return Err(format!("unknown unit {unit_text:?}"));
    };
    match q.dimension() {
        // The quantity's own unit: the value as written (no round trip through the base
        // unit, which would turn 176.95 kW into 176.95000000000002).
        Some((dim, to_own))
            if dim == u.dimension && u.offset == 0.0 && (u.factor * to_own - 1.0).abs() < 1e-12 =>
        {
            Ok(value)
        }
        Some((dim, to_own)) if dim == u.dimension => Ok((value * u.factor + u.offset) * to_own),
        Some((dim, _)) => Err(format!(
            "unit {unit_text:?} measures {:?}, not {:?}",
            u.dimension, dim
        )),
        None => Err(format!(
            "unit {unit_text:?} given for a state without a unit"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_to_each_quantitys_own_unit() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            convert(1500.0, "W", Quantity::PowerKw).expect("W"),
            1.5
        ));
        assert_eq!(
            convert(176.95, "kW", Quantity::PowerKw),
            Ok(176.95),
            "exactly"
        );
        assert!(close(
            convert(0.2, "kW", Quantity::LampPowerW).expect("kW"),
            200.0
        ));
        assert!(close(
            convert(2500.0, "Wh", Quantity::EnergyTodayKwh).expect("Wh"),
            2.5
        ));
        assert!(close(
            convert(3.6e6, "J", Quantity::EnergyTodayKwh).expect("J"),
            1.0
        ));
        assert!(close(
            convert(275.15, "K", Quantity::TemperatureC).expect("K"),
            2.0
        ));
        assert!(close(
            convert(50.0, "degF", Quantity::TemperatureC).expect("F"),
            10.0
        ));
        assert!(close(
            convert(0.6, "/", Quantity::LampDimPct).expect("ratio"),
            60.0
        ));
        assert!(close(
            convert(41.0, "µg/m³", Quantity::No2).expect("µg"),
            41.0
        ));
        assert!(close(
            convert(0.041, "mg/m3", Quantity::No2).expect("mg"),
            41.0
        ));
        assert!(close(
            convert(3.0, "KWT", Quantity::PowerKw).expect("UN/CEFACT"),
            3.0
        ));
    }

    #[test]
    fn a_unit_of_another_dimension_or_an_unknown_one_is_refused() {
        assert!(
            convert(21.0, "Cel", Quantity::PowerKw)
                .expect_err("Cel is no power")
                .contains("Temperature")
        );
        assert!(convert(5.0, "W", Quantity::No2).is_err());
        assert!(convert(1.0, "%", Quantity::LampOn).is_err());
        assert!(
            convert(1.0, "furlong", Quantity::PowerKw)
                .expect_err("unknown")
                .contains("unknown unit")
        );
    }
}
