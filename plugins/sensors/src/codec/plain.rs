//! Plain JSON with field paths from the configuration, for systems with their own format:
//! `device` and `time` paths and a list of `name = path` fields. Paths are dotted member names
//! with `[i]` for array items, e.g. `meta.id`, `readings[0].value`.

use serde_json::Value;

use super::time_field;
use crate::observation::{DecodeError, FieldValue, Observation};

/// Where a plain JSON payload keeps its device id, time and values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlainMapping {
    pub device_path: String,
    /// RFC 3339 string, or a number of Unix milliseconds.
    pub time_path: Option<String>,
    pub fields: Vec<(String, String)>,
}

/// Follows a path through a JSON value.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            cur = cur.get(idx.parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

impl PlainMapping {
    pub(crate) fn decode(&self, doc: &Value) -> Result<Observation, DecodeError> {
        let device = match lookup(doc, &self.device_path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(DecodeError::WrongType {
                    field: self.device_path.clone(),
                    expected: "a string or number device id",
                });
            }
            None => return Err(DecodeError::MissingField(self.device_path.clone())),
        };
        let mut o = Observation {
            device,
            ..Default::default()
        };
        if let Some(tp) = &self.time_path {
            match lookup(doc, tp) {
                Some(Value::Number(n)) => o.time_ms = n.as_i64(),
                Some(v) => match time_field(tp, v) {
                    Ok(t) => o.time_ms = Some(t),
                    Err(e) => o.problems.push(e),
                },
                None => o.problems.push(DecodeError::MissingField(tp.clone())),
            }
        }
        for (name, path) in &self.fields {
            match lookup(doc, path) {
                Some(Value::Number(n)) => o.fields.push((
                    name.clone(),
                    FieldValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                )),
                Some(Value::Bool(b)) => o.fields.push((name.clone(), FieldValue::Bool(*b))),
                Some(Value::String(s)) => {
                    o.fields.push((name.clone(), FieldValue::Text(s.clone())))
                }
                Some(_) => o.problems.push(DecodeError::WrongType {
                    field: path.clone(),
                    expected: "a number, boolean or string",
                }),
                None => o.problems.push(DecodeError::MissingField(path.clone())),
            }
        }
        if o.fields.is_empty() {
            return Err(DecodeError::MissingField(format!(
                "any of the mapped fields ({})",
                self.fields
                    .iter()
                    .map(|f| f.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(o)
    }
}
