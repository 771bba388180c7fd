//! LoRaWAN network-server uplinks: ChirpStack v4 (`deviceInfo.devEui`, `time`, decoded
//! `object`) and The Things Stack v3 (`end_device_ids.dev_eui`, `uplink_message.decoded_payload`,
//! `received_at`). The device id is the DevEUI, upper-case hex.

use serde_json::Value;

use super::{string_at, time_field};
use crate::observation::{DecodeError, Observation, flatten};

fn dev_eui(s: &str, field: &str) -> Result<String, DecodeError> {
    let ok = s.len() == 16 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(DecodeError::WrongType {
            field: field.into(),
            expected: "a 16-digit hex DevEUI",
        })
    }
}

fn decoded(obj: Option<&Value>, field: &str) -> Result<Observation, DecodeError> {
    let obj = obj.ok_or_else(|| {
        DecodeError::MissingField(format!(
            "{field} (no payload decoder on the network server?)"
        ))
    })?;
    if !obj.is_object() {
        return Err(DecodeError::WrongType {
            field: field.into(),
            expected: "an object",
        });
    }
    let mut o = Observation::default();
    flatten("", obj, &mut o.fields);
    Ok(o)
}

pub(crate) fn decode_chirpstack(doc: &Value) -> Result<Observation, DecodeError> {
    let eui = dev_eui(
        string_at(doc, &["deviceInfo", "devEui"])?,
        "deviceInfo.devEui",
    )?;
    let mut o = decoded(doc.get("object"), "object")?;
    o.device = eui;
    match doc.get("time").map(|t| time_field("time", t)) {
        Some(Ok(t)) => o.time_ms = Some(t),
        Some(Err(e)) => o.problems.push(e),
        None => {}
    }
    Ok(o)
}

pub(crate) fn decode_tts(doc: &Value) -> Result<Observation, DecodeError> {
    let eui = dev_eui(
        string_at(doc, &["end_device_ids", "dev_eui"])?,
        "end_device_ids.dev_eui",
    )?;
    let up = doc
        .get("uplink_message")
        .ok_or_else(|| DecodeError::MissingField("uplink_message".into()))?;
    let mut o = decoded(up.get("decoded_payload"), "uplink_message.decoded_payload")?;
    o.device = eui;
    let t = up
        .get("received_at")
        .map(|t| ("uplink_message.received_at", t))
        .or(doc.get("received_at").map(|t| ("received_at", t)));
    match t.map(|(name, v)| time_field(name, v)) {
        Some(Ok(t)) => o.time_ms = Some(t),
        Some(Err(e)) => o.problems.push(e),
        None => {}
    }
    Ok(o)
}
