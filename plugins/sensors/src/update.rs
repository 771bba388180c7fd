//! What a source hands the ECS: an observation already resolved on the source's own thread
//! against the shared [`Directory`] (device id to slot, payload fields to quantities, units
//! converted, bad fields refused and counted there). An [`Update`] is small and owns no heap
//! memory in the common case, so the apply system only writes state: it neither parses, hashes
//! strings, nor frees what another thread allocated.

use crate::apply::resolve;
use crate::observation::{DecodeError, Observation};
use crate::registry::{Directory, Quantity};

/// Values kept inline in an [`Update`]; more (a device with many rules of its own) go to the heap.
pub const INLINE_VALUES: usize = 4;

/// The index a sender's source has in its channel's table ([`crate::ingest::IngestReceiver`]).
pub type SourceIndex = u16;

/// One registered device's values at one time, resolved under its rules: 64 bytes, so that a
/// frame reading ten thousand of them, written on a source's thread, moves little memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The device's slot in the [`Directory`].
    pub slot: u32,
    pub source: SourceIndex,
    /// Fields that matched a rule but were refused (already counted with their reasons),
    /// saturating at 255.
    pub refused: u8,
    len: u8,
    /// A keep-alive: the device repeats a value it holds, to say it is alive.
    keep_alive: bool,
    /// Observation time, Unix milliseconds; [`NO_TIME`]: the live edge applies.
    time_ms: i64,
    quantities: [Quantity; INLINE_VALUES],
    values: [f64; INLINE_VALUES],
    rest: Option<Box<Rest>>,
}

/// The stored time of an update whose payload gave none.
const NO_TIME: i64 = i64::MIN;

/// The rare parts of an update: values beyond [`INLINE_VALUES`], fields no rule maps.
#[derive(Debug, Clone, PartialEq, Default)]
struct Rest {
    values: Vec<(Quantity, f64)>,
    unmapped: Vec<String>,
}

impl Update {
    pub fn new(
        slot: u32,
        source: SourceIndex,
        time_ms: Option<i64>,
        values: &[(Quantity, f64)],
        refused: usize,
        unmapped: Vec<String>,
    ) -> Update {
        let mut u = Update {
            slot,
            source,
            refused: refused.min(usize::from(u8::MAX)) as u8,
            len: 0,
            keep_alive: false,
            // A payload's time is never i64::MIN ms (292 million years BC).
            time_ms: time_ms.unwrap_or(NO_TIME),
            quantities: [Quantity::SignalAspect; INLINE_VALUES],
            values: [0.0; INLINE_VALUES],
            rest: None,
        };
        if values.len() <= INLINE_VALUES {
            for (i, (q, v)) in values.iter().enumerate() {
                u.quantities[i] = *q;
                u.values[i] = *v;
            }
            u.len = values.len() as u8;
        }
        if values.len() > INLINE_VALUES || !unmapped.is_empty() {
            u.rest = Some(Box::new(Rest {
                values: if values.len() > INLINE_VALUES {
                    values.to_vec()
                } else {
                    Vec::new()
                },
                unmapped,
            }));
        }
        u
    }

    /// A device's word that it is alive at `time_ms`: a value it holds, repeated.
    pub fn keep_alive(
        slot: u32,
        source: SourceIndex,
        time_ms: i64,
        value: (Quantity, f64),
    ) -> Update {
        let mut u = Update::new(slot, source, Some(time_ms), &[value], 0, Vec::new());
        u.keep_alive = true;
        u
    }

    pub fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Observation time, Unix milliseconds (None: the live edge applies).
    pub fn time_ms(&self) -> Option<i64> {
        (self.time_ms != NO_TIME).then_some(self.time_ms)
    }

    /// One value per quantity, in rule order, as a slice: in `buf` when they are inline.
    pub fn values_in<'a>(
        &'a self,
        buf: &'a mut [(Quantity, f64); INLINE_VALUES],
    ) -> &'a [(Quantity, f64)] {
        match &self.rest {
            Some(rest) if !rest.values.is_empty() => &rest.values,
            _ => {
                let n = usize::from(self.len);
                for (i, slot) in buf.iter_mut().enumerate().take(n) {
                    *slot = (self.quantities[i], self.values[i]);
                }
                &buf[..n]
            }
        }
    }

    /// One value per quantity, in rule order (a copy).
    pub fn values(&self) -> Vec<(Quantity, f64)> {
        let mut buf = [(Quantity::SignalAspect, 0.0); INLINE_VALUES];
        self.values_in(&mut buf).to_vec()
    }

    /// Names of the fields no rule maps, as the payload wrote them.
    pub fn unmapped(&self) -> &[String] {
        self.rest.as_ref().map_or(&[], |r| &r.unmapped)
    }
}

/// A message from a device the directory did not know when its source resolved it: kept
/// whole, so the ECS resolves it again if the device was registered meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownDevice {
    pub observation: Observation,
    pub source: SourceIndex,
}

/// What a sender hands over for one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Handed {
    Update(Update),
    /// Counted and listed by the ECS (boxed: rare, and it keeps every item 64 bytes).
    Unknown(Box<UnknownDevice>),
}

impl Handed {
    pub fn time_ms(&self) -> Option<i64> {
        match self {
            Handed::Update(u) => u.time_ms(),
            Handed::Unknown(u) => u.observation.time_ms,
        }
    }

    /// The values resolved (none for an unknown device; a copy).
    pub fn values(&self) -> Vec<(Quantity, f64)> {
        match self {
            Handed::Update(u) => u.values(),
            Handed::Unknown(_) => Vec::new(),
        }
    }

    pub fn source(&self) -> SourceIndex {
        match self {
            Handed::Update(u) => u.source,
            Handed::Unknown(u) => u.source,
        }
    }
}

/// Resolves an observation against the directory: its device's slot and its values under the
/// device's rules. Each refused field, and a message with no field the rules map, is passed to
/// `reject` with the device id.
pub fn hand(
    o: Observation,
    directory: &Directory,
    source: SourceIndex,
    mut reject: impl FnMut(&DecodeError, &str),
) -> Handed {
    let Some((slot, device)) = directory
        .slot(&o.device)
        .and_then(|slot| Some((slot, directory.device(slot)?)))
    else {
        return Handed::Unknown(Box::new(UnknownDevice {
            observation: o,
            source,
        }));
    };
    let resolved = resolve(&o, &device.rules, |e| reject(&e, &o.device));
    if resolved.values.is_empty() && resolved.refused == 0 {
        // Nothing the twin knows: shown with the fields the message did carry.
        reject(
            &DecodeError::NoKnownField {
                kind: device.kind.as_str(),
                fields: resolved.unmapped.clone(),
            },
            &o.device,
        );
    }
    Handed::Update(Update::new(
        slot,
        source,
        o.time_ms,
        &resolved.values,
        resolved.refused,
        resolved.unmapped,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::FieldValue;
    use crate::registry::{DeviceKind, FieldRule};
    use bevy::prelude::Entity;

    fn directory() -> Directory {
        let mut d = Directory::default();
        d.register("lamp-1", DeviceKind::Lamp, Entity::PLACEHOLDER, vec![]);
        let extra = [
            Quantity::No2,
            Quantity::Pm10,
            Quantity::Pm25,
            Quantity::TemperatureC,
            Quantity::PowerKw,
        ]
        .iter()
        .enumerate()
        .map(|(i, q)| FieldRule::new(&format!("v{i}"), *q))
        .collect();
        d.register("many", DeviceKind::AirSensor, Entity::PLACEHOLDER, extra);
        d
    }

    fn obs(device: &str, fields: &[(&str, FieldValue)]) -> Observation {
        Observation {
            device: device.into(),
            time_ms: Some(7),
            fields: fields
                .iter()
                .map(|(n, v)| ((*n).to_string(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn observations_resolve_to_slots_values_and_reasons() {
        let d = directory();
        let mut rejected = Vec::new();
        let mut reject = |e: &DecodeError, dev: &str| rejected.push(format!("{dev}: {e}"));
        let o = obs(
            "lamp-1",
            &[
                ("on", FieldValue::Bool(true)),
                ("dim", FieldValue::Number(250.0)),
                ("colour", FieldValue::Text("warm".into())),
            ],
        );
        let Handed::Update(u) = hand(o, &d, 3, &mut reject) else {
            panic!("a registered device")
        };
        assert_eq!(
            (u.slot, u.source, u.time_ms(), u.refused),
            (0, 3, Some(7), 1)
        );
        assert_eq!(u.values(), vec![(Quantity::LampOn, 1.0)]);
        assert_eq!(u.unmapped(), &["colour".to_string()]);
        // Five values: more than fit inline, all kept in rule order.
        let many: Vec<(String, FieldValue)> = (0..5)
            .map(|i| (format!("v{i}"), FieldValue::Number(f64::from(i))))
            .chain([("no2".to_string(), FieldValue::Number(9.0))])
            .collect();
        let fields: Vec<(&str, FieldValue)> =
            many.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let Handed::Update(u) = hand(obs("many", &fields), &d, 0, &mut reject) else {
            panic!("registered")
        };
        let values = u.values();
        assert_eq!(values.len(), 5, "v0 is the No2 rule that wins over no2");
        assert_eq!(values[0], (Quantity::No2, 0.0));
        assert_eq!(values[4], (Quantity::PowerKw, 4.0));
        assert!(u.unmapped().is_empty());
        // Nothing known: an update with no values, and the reason given.
        let Handed::Update(u) = hand(
            obs("lamp-1", &[("colour", FieldValue::Number(1.0))]),
            &d,
            0,
            &mut reject,
        ) else {
            panic!("registered")
        };
        assert!(u.values().is_empty() && u.refused == 0);
        // Unknown devices keep their id for the list of unknown ids.
        assert_eq!(
            hand(obs("nobody", &[]), &d, 1, &mut reject),
            Handed::Unknown(Box::new(UnknownDevice {
                observation: obs("nobody", &[]),
                source: 1,
            }))
        );
        // No time given: the live edge's applies later.
        let mut untimed = obs("lamp-1", &[("on", FieldValue::Bool(false))]);
        untimed.time_ms = None;
        assert_eq!(hand(untimed, &d, 0, &mut reject).time_ms(), None);
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(rejected[0].starts_with("lamp-1: field dim = 250"));
        assert!(rejected[1].contains("colour"), "{rejected:?}");
        assert_eq!(
            std::mem::size_of::<Handed>(),
            64,
            "an update stays one cache line"
        );
    }
}
