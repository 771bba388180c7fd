//! OGC SensorThings API v1.1 Observations: one Observation (an MQTT message on
//! `v1.1/Datastreams(ID)/Observations`), or a page `{"value": [...]}` from
//! `GET .../Datastreams(ID)/Observations`. The device is `Datastreams(ID)`, from the
//! observation's own `Datastream` member or navigation link, else from the topic/path; the
//! field is `result` (objects are flattened, e.g. `result.no2`); the time is `phenomenonTime`
//! (the end of an interval), else `resultTime`.

use serde_json::Value;

use super::{DecodeContext, time_field};
use crate::observation::{DecodeError, Observation, flatten};

/// `Datastreams(42)` or `Datastreams('abc')` found in a topic, path or link.
pub fn datastream_in(text: &str) -> Option<String> {
    let start = text.rfind("Datastreams(")?;
    let rest = &text[start..];
    let end = rest.find(')')?;
    Some(rest[..=end].to_string())
}

fn one(v: &Value, ctx: &DecodeContext<'_>) -> Result<Observation, DecodeError> {
    let device = v
        .get("Datastream")
        .and_then(|d| d.get("@iot.id"))
        .map(|id| match id {
            Value::String(s) => format!("Datastreams('{s}')"),
            other => format!("Datastreams({other})"),
        })
        .or_else(|| {
            v.get("Datastream@iot.navigationLink")
                .and_then(Value::as_str)
                .and_then(datastream_in)
        })
        .or_else(|| datastream_in(ctx.topic))
        .ok_or_else(|| {
            DecodeError::MissingField(
                "Datastream (in the observation, its navigation link or the topic)".into(),
            )
        })?;
    let result = v
        .get("result")
        .ok_or_else(|| DecodeError::MissingField("result".into()))?;
    let mut o = Observation {
        device,
        ..Default::default()
    };
    flatten("result", result, &mut o.fields);
    if o.fields.is_empty() {
        return Err(DecodeError::WrongType {
            field: "result".into(),
            expected: "a number, boolean, string or object of them",
        });
    }
    for key in ["phenomenonTime", "resultTime"] {
        let Some(t) = v.get(key).and_then(Value::as_str) else {
            continue;
        };
        let end = t.rsplit('/').next().unwrap_or(t);
        match time_field(key, &Value::String(end.into())) {
            Ok(ms) => {
                o.time_ms = Some(ms);
                break;
            }
            Err(e) => o.problems.push(e),
        }
    }
    Ok(o)
}

pub(crate) fn decode(
    doc: &Value,
    ctx: &DecodeContext<'_>,
) -> Result<Vec<Observation>, DecodeError> {
    match doc.get("value").and_then(Value::as_array) {
        Some(page) if doc.get("result").is_none() => page.iter().map(|v| one(v, ctx)).collect(),
        _ => Ok(vec![one(doc, ctx)?]),
    }
}
