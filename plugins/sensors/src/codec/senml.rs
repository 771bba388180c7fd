//! SenML JSON (RFC 8428): an array of records with base fields (`bn`, `bt`, `bu`, `bv`) that
//! apply to the records after them. The base name `bn` names the device (e.g.
//! `urn:dev:ow:10e2073a01080063:`) and `n` the measurement (e.g. `temp`); a record without a
//! base name names a whole device with one value (field `value`). Times below 2^28 s are
//! relative to now (RFC 8428 section 4.5.3).

use serde_json::Value;

use super::DecodeContext;
use crate::observation::{DecodeError, FieldValue, Observation};

/// (device, field) of a record: the base name is the device, the name the measurement.
fn device_and_field(bn: &str, n: &str) -> (String, String) {
    let device = bn.trim_end_matches([':', '/', '.']);
    if device.is_empty() {
        (n.to_string(), "value".to_string())
    } else if n.is_empty() {
        (device.to_string(), "value".to_string())
    } else {
        (device.to_string(), n.to_string())
    }
}

pub(crate) fn decode(
    doc: &Value,
    ctx: &DecodeContext<'_>,
) -> Result<Vec<Observation>, DecodeError> {
    let records = doc.as_array().ok_or(DecodeError::WrongType {
        field: "(root)".into(),
        expected: "a SenML array of records",
    })?;
    let (mut bn, mut bt, mut bv, mut bu) = (String::new(), 0.0f64, 0.0f64, String::new());
    let mut out: Vec<Observation> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let at = |k: &str| format!("[{i}].{k}");
        let obj = r.as_object().ok_or(DecodeError::WrongType {
            field: format!("[{i}]"),
            expected: "a SenML record object",
        })?;
        if let Some(v) = obj.get("bn") {
            bn = v
                .as_str()
                .ok_or(DecodeError::WrongType {
                    field: at("bn"),
                    expected: "a string",
                })?
                .to_string();
        }
        if let Some(v) = obj.get("bt") {
            bt = v.as_f64().ok_or(DecodeError::WrongType {
                field: at("bt"),
                expected: "a number",
            })?;
        }
        if let Some(v) = obj.get("bu") {
            bu = v
                .as_str()
                .ok_or(DecodeError::WrongType {
                    field: at("bu"),
                    expected: "a string",
                })?
                .to_string();
        }
        if let Some(v) = obj.get("bv") {
            bv = v.as_f64().ok_or(DecodeError::WrongType {
                field: at("bv"),
                expected: "a number",
            })?;
        }
        let n = match obj.get("n") {
            Some(v) => v.as_str().ok_or(DecodeError::WrongType {
                field: at("n"),
                expected: "a string",
            })?,
            None => "",
        };
        let value = if let Some(v) = obj.get("v") {
            FieldValue::Number(
                bv + v.as_f64().ok_or(DecodeError::WrongType {
                    field: at("v"),
                    expected: "a number",
                })?,
            )
        } else if let Some(v) = obj.get("vb") {
            FieldValue::Bool(v.as_bool().ok_or(DecodeError::WrongType {
                field: at("vb"),
                expected: "a boolean",
            })?)
        } else if let Some(v) = obj.get("vs") {
            FieldValue::Text(
                v.as_str()
                    .ok_or(DecodeError::WrongType {
                        field: at("vs"),
                        expected: "a string",
                    })?
                    .to_string(),
            )
        } else if obj.contains_key("s") || obj.contains_key("vd") {
            continue; // sums and data values are not state
        } else if obj.keys().all(|k| k.starts_with('b')) {
            continue; // a record of base fields only
        } else {
            return Err(DecodeError::MissingField(at("v")));
        };
        if bn.is_empty() && n.is_empty() {
            return Err(DecodeError::MissingField(at("n")));
        }
        let t = bt + obj.get("t").and_then(Value::as_f64).unwrap_or(0.0);
        let time_ms = if t.abs() < f64::from(1u32 << 28) {
            ctx.now_ms + (t * 1000.0) as i64
        } else {
            (t * 1000.0) as i64
        };
        let (device, mut field) = device_and_field(&bn, n);
        let unit = match obj.get("u") {
            Some(u) => u.as_str().ok_or(DecodeError::WrongType {
                field: at("u"),
                expected: "a string",
            })?,
            None => &bu,
        };
        if field == "value" && !unit.is_empty() {
            // Unnamed values of one device are told apart by their unit (RFC 8428, 5.1.2).
            field = unit.to_string();
        }
        // Records of one device are usually adjacent: search from the end.
        let o = match out
            .iter_mut()
            .rposition(|o| o.device == device && o.time_ms == Some(time_ms))
        {
            Some(i) => &mut out[i],
            None => {
                out.push(Observation {
                    device,
                    time_ms: Some(time_ms),
                    ..Default::default()
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        // Units measure numbers: a base unit says nothing of a text or boolean record.
        if !unit.is_empty() && unit != field && matches!(value, FieldValue::Number(_)) {
            o.units.push((field.clone(), unit.to_string()));
        }
        o.fields.push((field, value));
    }
    if out.is_empty() {
        return Err(DecodeError::MissingField(
            "a SenML record with a value".into(),
        ));
    }
    Ok(out)
}
