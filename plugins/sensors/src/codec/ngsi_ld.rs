//! FIWARE NGSI-LD entities, as smart-data-models publish them, in normalized form
//! (`{"type": "Property", "value": ...}`, with `observedAt`) or key-values form, and arrays of
//! entities (a `GET /ngsi-ld/v1/entities` answer). The device is the entity `id`; the time is
//! the first valid of `dateObservedTo`, `dateObserved` (the end of an interval),
//! `observationDateTime`, then the newest `observedAt`. DateTime values may be plain strings,
//! `{"@type": "DateTime", "@value": ...}` or `{"type": "DateTime", "value": ...}`. A bad time or
//! location is reported and the other attributes are kept.

use serde_json::Value;

use super::time_field;
use crate::observation::{DecodeError, Observation, flatten};

/// Attributes that describe the entity rather than measure something.
const META: &[&str] = &[
    "id",
    "type",
    "@context",
    "location",
    "address",
    "dateObserved",
    "dateObservedFrom",
    "dateObservedTo",
    "observationDateTime",
    "dateLastLampChange",
    "dateModified",
    "dateCreated",
];

/// The plain value of an attribute in either form, with its `observedAt` if normalized.
fn attribute_value(v: &Value) -> (Option<&Value>, Option<&Value>) {
    match v.get("type").and_then(Value::as_str) {
        Some("Property" | "GeoProperty") => (v.get("value"), v.get("observedAt")),
        Some("Relationship") => (None, None),
        _ => (Some(v), None),
    }
}

/// The text of a DateTime in any of its spellings.
fn datetime_text(v: &Value) -> Option<&Value> {
    if v.is_string() {
        return Some(v);
    }
    v.get("@value").or_else(|| {
        v.get("value")
            .filter(|_| v.get("type").and_then(Value::as_str) == Some("DateTime"))
    })
}

fn one(doc: &Value) -> Result<Observation, DecodeError> {
    let id = doc
        .get("id")
        .ok_or_else(|| DecodeError::MissingField("id".into()))?;
    let id = id.as_str().ok_or(DecodeError::WrongType {
        field: "id".into(),
        expected: "a string",
    })?;
    let obj = doc.as_object().ok_or(DecodeError::WrongType {
        field: "(root)".into(),
        expected: "an entity object",
    })?;
    let mut o = Observation {
        device: id.to_string(),
        ..Default::default()
    };
    let mut newest_observed_at: Option<i64> = None;
    for (k, v) in obj {
        let (value, observed_at) = attribute_value(v);
        if let Some(t) = observed_at {
            match time_field(&format!("{k}.observedAt"), t) {
                Ok(t) => newest_observed_at = Some(newest_observed_at.map_or(t, |n| n.max(t))),
                Err(e) => o.problems.push(e),
            }
        }
        if META.contains(&k.as_str()) || k.starts_with('@') {
            continue;
        }
        if let Some(value) = value {
            flatten(k, value, &mut o.fields);
        }
    }
    for key in ["dateObservedTo", "dateObserved", "observationDateTime"] {
        let Some(raw) = obj
            .get(key)
            .and_then(|v| attribute_value(v).0)
            .and_then(datetime_text)
        else {
            continue;
        };
        // An ISO 8601 interval "start/end": the end is when the observation was complete.
        let text = raw
            .as_str()
            .map(|s| s.rsplit('/').next().unwrap_or(s).to_string());
        match text.map(|t| time_field(key, &Value::String(t))) {
            Some(Ok(t)) => {
                o.time_ms = Some(t);
                break;
            }
            Some(Err(e)) => o.problems.push(e),
            None => o.problems.push(DecodeError::WrongType {
                field: key.into(),
                expected: "a DateTime",
            }),
        }
    }
    if o.time_ms.is_none() {
        o.time_ms = newest_observed_at;
    }
    if let Some(loc) = obj.get("location").and_then(|v| attribute_value(v).0) {
        match (
            loc.get("type").and_then(Value::as_str),
            loc.get("coordinates").and_then(Value::as_array),
        ) {
            (Some("Point"), Some(c)) => match (
                c.first().and_then(Value::as_f64),
                c.get(1).and_then(Value::as_f64),
            ) {
                (Some(x), Some(y))
                    if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) =>
                {
                    o.location = Some((x, y))
                }
                _ => o.problems.push(DecodeError::WrongType {
                    field: "location.coordinates".into(),
                    expected: "[longitude, latitude] in degrees",
                }),
            },
            // Lines and areas (e.g. a TrafficFlowObserved road segment) are not a device position.
            (Some(_), Some(_)) => {}
            _ => o.problems.push(DecodeError::WrongType {
                field: "location".into(),
                expected: "a GeoJSON geometry",
            }),
        }
    }
    Ok(o)
}

pub(crate) fn decode(doc: &Value) -> Result<Vec<Observation>, DecodeError> {
    match doc {
        Value::Array(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(doc)?]),
    }
}
