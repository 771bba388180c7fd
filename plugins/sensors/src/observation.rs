//! What a codec yields: observations with named values, and typed errors.

use serde_json::Value;

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(f64),
    Bool(bool),
    Text(String),
}

impl FieldValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Number(v) => Some(*v),
            FieldValue::Bool(b) => Some(f64::from(u8::from(*b))),
            FieldValue::Text(_) => None,
        }
    }
}

/// One device's values at one time, as a payload carried them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Name of the source that delivered it (set on hand-over to the ECS).
    pub source: String,
    /// The source's device id (DevEUI, NGSI-LD entity id, SenML base name, Datastream id, ...).
    pub device: String,
    /// Observation time, Unix milliseconds (None: the receive time applies).
    pub time_ms: Option<i64>,
    /// Flattened values: nested objects become `outer.inner` (e.g. `activePower.L1`).
    pub fields: Vec<(String, FieldValue)>,
    /// Position the payload gave (longitude, latitude as written), if any.
    pub location: Option<(f64, f64)>,
    /// Problems with single fields; the rest of the observation is good.
    pub problems: Vec<DecodeError>,
    /// The unit a field's value was written in, where the payload said (SenML `u` / `bu`).
    pub units: Vec<(String, String)>,
}

impl Observation {
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The unit the payload gave for a field, if it gave one.
    pub fn unit(&self, name: &str) -> Option<&str> {
        self.units
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.as_str())
    }
}

/// Why a payload, or a field of it, was refused. `reason_key` names the kind for counters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {bytes} bytes exceeds the {limit}-byte limit")]
    Oversized { bytes: usize, limit: usize },
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("missing field {0}")]
    MissingField(String),
    #[error("field {field} should be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("field {field}: {value:?} is not a valid RFC 3339 time ({reason})")]
    BadTimestamp {
        field: String,
        value: String,
        reason: String,
    },
    #[error("field {field} is {seconds_ahead} s in the future")]
    FutureTimestamp { field: String, seconds_ahead: i64 },
    #[error("field {field} = {value} is outside {min}..={max}")]
    OutOfRange {
        field: String,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("field {field}: {reason}; expected {expected}")]
    UnitMismatch {
        field: String,
        reason: String,
        expected: &'static str,
    },
    #[error("reports {}; none mapped to a {kind} quantity", fields.join(", "))]
    NoKnownField {
        kind: &'static str,
        fields: Vec<String>,
    },
}

impl DecodeError {
    /// A short stable name of the kind of error, for per-reason counters.
    pub fn reason_key(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Json(_) => "malformed_json",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::BadTimestamp { .. } => "bad_timestamp",
            DecodeError::FutureTimestamp { .. } => "future_timestamp",
            DecodeError::OutOfRange { .. } => "out_of_range",
            DecodeError::UnitMismatch { .. } => "unit_mismatch",
            DecodeError::NoKnownField { .. } => "no_known_field",
        }
    }
}

/// Flattens a JSON value into named fields under `prefix`; arrays get `[i]` suffixes.
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, FieldValue)>) {
    let name = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                out.push((prefix.to_string(), FieldValue::Number(f)));
            }
        }
        Value::Bool(b) => out.push((prefix.to_string(), FieldValue::Bool(*b))),
        Value::String(s) => out.push((prefix.to_string(), FieldValue::Text(s.clone()))),
        Value::Object(map) => {
            for (k, child) in map {
                flatten(&name(k), child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        Value::Null => {}
    }
}
