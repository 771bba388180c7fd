//! Payload codecs: pure functions from bytes to [`Observation`]s.

pub mod lorawan;
pub mod ngsi_ld;
pub mod plain;
pub mod senml;
pub mod sensorthings;

pub use plain::PlainMapping;

use serde_json::Value;

use crate::observation::{DecodeError, Observation};
use crate::time::parse_rfc3339;

/// The payload formats the twin understands.
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadFormat {
    /// SenML JSON (RFC 8428).
    SenMl,
    /// ChirpStack v4 uplink event.
    ChirpStack,
    /// The Things Stack v3 uplink message.
    TheThingsStack,
    /// FIWARE NGSI-LD entity (normalized or key-values), e.g. smart-data-models.
    NgsiLd,
    /// OGC SensorThings API v1.1 Observation (or a `{"value": [...]}` page of them).
    SensorThings,
    /// Plain JSON with configured field paths.
    Plain(PlainMapping),
}

impl PayloadFormat {
    /// The name used in config and recordings (`plain` needs its mapping from config).
    pub fn name(&self) -> &'static str {
        match self {
            PayloadFormat::SenMl => "senml",
            PayloadFormat::ChirpStack => "chirpstack",
            PayloadFormat::TheThingsStack => "tts",
            PayloadFormat::NgsiLd => "ngsi-ld",
            PayloadFormat::SensorThings => "sensorthings",
            PayloadFormat::Plain(_) => "plain",
        }
    }

    /// A format by name; `plain` takes the given mapping.
    pub fn from_name(name: &str, plain: Option<&PlainMapping>) -> Option<PayloadFormat> {
        Some(match name {
            "senml" => PayloadFormat::SenMl,
            "chirpstack" => PayloadFormat::ChirpStack,
            "tts" => PayloadFormat::TheThingsStack,
            "ngsi-ld" => PayloadFormat::NgsiLd,
            "sensorthings" => PayloadFormat::SensorThings,
            "plain" => PayloadFormat::Plain(plain?.clone()),
            _ => return None,
        })
    }
}

/// What a codec may need besides the bytes.
#[derive(Debug, Clone)]
pub struct DecodeContext<'a> {
    /// MQTT topic or HTTP path the payload came from.
    pub topic: &'a str,
    /// Receive time, Unix ms.
    pub now_ms: i64,
    /// Payloads larger than this are refused unread.
    pub max_bytes: usize,
    /// Observation times further ahead of `now_ms` than this are refused.
    pub max_future_ms: i64,
}

impl Default for DecodeContext<'_> {
    fn default() -> Self {
        Self {
            topic: "",
            now_ms: 0,
            max_bytes: 64 * 1024,
            max_future_ms: 5 * 60 * 1000,
        }
    }
}

/// Decodes one payload. An `Err` means nothing of it was usable; problems with single fields
/// are reported in each observation's `problems`.
pub fn decode(
    format: &PayloadFormat,
    bytes: &[u8],
    ctx: &DecodeContext<'_>,
) -> Result<Vec<Observation>, DecodeError> {
    if bytes.len() > ctx.max_bytes {
        return Err(DecodeError::Oversized {
            bytes: bytes.len(),
            limit: ctx.max_bytes,
        });
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut obs = match format {
        PayloadFormat::SenMl => senml::decode(&doc, ctx)?,
        PayloadFormat::ChirpStack => vec![lorawan::decode_chirpstack(&doc)?],
        PayloadFormat::TheThingsStack => vec![lorawan::decode_tts(&doc)?],
        PayloadFormat::NgsiLd => ngsi_ld::decode(&doc)?,
        PayloadFormat::SensorThings => sensorthings::decode(&doc, ctx)?,
        PayloadFormat::Plain(m) => vec![m.decode(&doc)?],
    };
    for o in &mut obs {
        // A payload without a time is as of when it was received.
        let t = *o.time_ms.get_or_insert(ctx.now_ms);
        if t.saturating_sub(ctx.now_ms) > ctx.max_future_ms {
            return Err(DecodeError::FutureTimestamp {
                field: "time".into(),
                seconds_ahead: t.saturating_sub(ctx.now_ms) / 1000,
            });
        }
    }
    Ok(obs)
}

/// Reads an RFC 3339 time from a JSON string field.
pub(crate) fn time_field(field: &str, v: &Value) -> Result<i64, DecodeError> {
    let s = v.as_str().ok_or_else(|| DecodeError::WrongType {
        field: field.into(),
        expected: "an RFC 3339 time string",
    })?;
    parse_rfc3339(s).map_err(|reason| DecodeError::BadTimestamp {
        field: field.into(),
        value: s.into(),
        reason,
    })
}

/// A required string member.
pub(crate) fn string_at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, DecodeError> {
    let name = path.join(".");
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .ok_or_else(|| DecodeError::MissingField(name.clone()))?;
    }
    cur.as_str().ok_or(DecodeError::WrongType {
        field: name,
        expected: "a string",
    })
}

#[cfg(test)]
mod tests;
