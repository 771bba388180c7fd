//! The device registry file (TOML):
//!
//! ```toml
//! [[device]]
//! id = "0101010101010101"        # the id its payloads carry (DevEUI, NGSI-LD id, SenML bn, ...)
//! kind = "air_sensor"            # signal_head, lamp, meter, air_sensor
//! name = "Hornsgatan 108"
//! lon = 18.0445
//! lat = 59.3171
//! [[device.rule]]                # optional, checked before the kind's default field names
//! field = "nitrogen"
//! quantity = "no2"
//! scale = 1.0                    # optional: value × scale, then from `unit`
//! unit = "W"                     # optional: the unit when the payload gives none
//! ```
//!
//! DevEUIs may be written in either case and with or without `-`/`:` between the byte pairs:
//! they are kept as 16 upper-case hex digits and match payloads written either way.

use serde::Deserialize;

use crate::registry::{DeviceKind, FieldRule};

/// One device of a registry file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub id: String,
    pub kind: DeviceKind,
    #[serde(default)]
    pub name: Option<String>,
    pub lon: f64,
    pub lat: f64,
    #[serde(default)]
    pub rule: Vec<FieldRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    device: Vec<DeviceSpec>,
}

/// Why a registry file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryFileError {
    #[error("registry {0}: {1}")]
    Parse(String, String),
    #[error("registry {file}: device {id:?}: {reason}")]
    Device {
        file: String,
        id: String,
        reason: String,
    },
}

/// Parses a registry file; `origin` names it in errors. Duplicate ids and positions outside
/// WGS 84 are refused with the device named.
pub fn parse_registry(text: &str, origin: &str) -> Result<Vec<DeviceSpec>, RegistryFileError> {
    let mut file: RegistryFile =
        toml::from_str(text).map_err(|e| RegistryFileError::Parse(origin.into(), e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for d in &mut file.device {
        // DevEUIs copied from either network server's console are shown one way.
        d.id = crate::registry::canonical_id(&d.id).into_owned();
        let bad = |reason: &str| RegistryFileError::Device {
            file: origin.into(),
            id: d.id.clone(),
            reason: reason.into(),
        };
        if d.id.trim().is_empty() {
            return Err(bad("empty id"));
        }
        if !seen.insert(d.id.clone()) {
            return Err(bad("listed twice"));
        }
        if !(-180.0..=180.0).contains(&d.lon) || !(-90.0..=90.0).contains(&d.lat) {
            return Err(bad("lon/lat outside WGS 84 ranges"));
        }
    }
    Ok(file.device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Quantity;

    #[test]
    fn parses_devices_and_rules_and_refuses_bad_ones() {
        let text = "[[device]]\nid = \"a\"\nkind = \"air_sensor\"\nlon = 18.04\nlat = 59.31\n[[device.rule]]\nfield = \"nitrogen\"\nquantity = \"no2\"\n\n[[device]]\nid = \"b\"\nkind = \"lamp\"\nlon = 18.0\nlat = 59.3\n";
        let d = parse_registry(text, "r.toml").expect("parse");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].rule, vec![FieldRule::new("nitrogen", Quantity::No2)]);
        assert_eq!(d[1].kind, DeviceKind::Lamp);
        let e = parse_registry(
            "[[device]]\nid = \"a\"\nkind = \"toaster\"\nlon = 1\nlat = 1\n",
            "r.toml",
        )
        .expect_err("kind");
        assert!(e.to_string().contains("r.toml"), "{e}");
        let dup = "[[device]]\nid = \"a\"\nkind = \"lamp\"\nlon = 1\nlat = 1\n[[device]]\nid = \"a\"\nkind = \"lamp\"\nlon = 1\nlat = 1\n";
        assert!(
            parse_registry(dup, "r.toml")
                .expect_err("dup")
                .to_string()
                .contains("twice")
        );
        let swapped = "[[device]]\nid = \"a\"\nkind = \"lamp\"\nlon = 18\nlat = 159.3\n";
        assert!(
            parse_registry(swapped, "r.toml")
                .expect_err("lat")
                .to_string()
                .contains("WGS 84")
        );
    }
}
