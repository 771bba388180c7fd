//! Coordinate reference systems by EPSG code, transformed with PROJ.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

/// Errors from parsing a CRS name or transforming coordinates.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GeoError {
    #[error("unrecognised CRS '{0}': expected EPSG:NNNN, an OGC URN or an opengis.net CRS URL")]
    UnknownCrsName(String),
    #[error("PROJ cannot build a transformation from {from} to {to}: {reason}")]
    Create { from: Crs, to: Crs, reason: String },
    #[error("PROJ failed to transform ({x}, {y}) from {from} to {to}: {reason}")]
    Transform {
        from: Crs,
        to: Crs,
        x: f64,
        y: f64,
        reason: String,
    },
}

/// A coordinate reference system named by its EPSG code.
///
/// Geographic systems (4326) take and give longitude, latitude in degrees; projected systems
/// take and give easting, northing in metres, whatever the authority's axis order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bevy::reflect::Reflect)]
pub struct Crs(pub u32);

impl Crs {
    /// WGS 84, longitude/latitude in degrees.
    pub const WGS84: Crs = Crs(4326);
    /// SWEREF 99 TM, Sweden's national projected CRS.
    pub const SWEREF99_TM: Crs = Crs(3006);
    /// SWEREF 99 18 00, the local zone used by the City of Stockholm.
    pub const SWEREF99_1800: Crs = Crs(3011);
    /// Web Mercator.
    pub const WEB_MERCATOR: Crs = Crs(3857);

    /// The EPSG code.
    pub fn epsg(self) -> u32 {
        self.0
    }

    /// True for longitude/latitude systems this crate knows of (transforms then use degrees).
    pub fn is_geographic(self) -> bool {
        matches!(self.0, 4326 | 4258 | 4619 | 4979 | 4937)
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPSG:{}", self.0)
    }
}

impl FromStr for Crs {
    type Err = GeoError;

    /// Accepts `EPSG:3006`, `epsg:3006`, `3006`, `urn:ogc:def:crs:EPSG::3006`,
    /// `urn:ogc:def:crs:OGC:1.3:CRS84` (as 4326) and
    /// `https://www.opengis.net/def/crs/EPSG/0/7415` (the form CityJSON uses).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || GeoError::UnknownCrsName(s.to_string());
        let lower = t.to_ascii_lowercase();
        if lower.ends_with("crs84") {
            return Ok(Crs::WGS84);
        }
        let code = if let Some(rest) = lower.strip_prefix("epsg:") {
            rest
        } else if lower.starts_with("urn:ogc:def:crs:epsg:") {
            lower.rsplit(':').next().ok_or_else(bad)?
        } else if lower.contains("opengis.net/def/crs/epsg/") {
            lower
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .ok_or_else(bad)?
        } else {
            lower.as_str()
        };
        code.trim().parse::<u32>().map(Crs).map_err(|_| bad())
    }
}

/// A PROJ transformation between two CRSs, in "visualisation" axis order
/// (longitude/latitude, easting/northing).
///
/// PROJ objects are not thread-safe: each thread makes its own. Making one opens PROJ's
/// database (several milliseconds), so each thread keeps the ones it made, by CRS pair: a folder
/// of a thousand CityJSON tiles in one CRS makes one.
pub struct Transformer {
    from: Crs,
    to: Crs,
    proj: Option<Rc<proj::Proj>>,
}

thread_local! {
    /// This thread's PROJ transformations (or why PROJ could not make one), by (from, to).
    static MADE: RefCell<HashMap<(Crs, Crs), Result<Rc<proj::Proj>, GeoError>>> =
        RefCell::new(HashMap::new());
}

impl Transformer {
    /// Builds a transformation; identity when `from == to`.
    pub fn new(from: Crs, to: Crs) -> Result<Self, GeoError> {
        if from == to {
            return Ok(Self {
                from,
                to,
                proj: None,
            });
        }
        let made = MADE.with(|m| {
            m.borrow_mut()
                .entry((from, to))
                .or_insert_with(|| {
                    proj::Proj::new_known_crs(&from.to_string(), &to.to_string(), None)
                        .map(Rc::new)
                        .map_err(|e| GeoError::Create {
                            from,
                            to,
                            reason: e.to_string(),
                        })
                })
                .clone()
        });
        Ok(Self {
            from,
            to,
            proj: Some(made?),
        })
    }

    pub fn from_crs(&self) -> Crs {
        self.from
    }

    pub fn to_crs(&self) -> Crs {
        self.to
    }

    /// Transforms one point.
    pub fn convert(&self, x: f64, y: f64) -> Result<(f64, f64), GeoError> {
        let Some(proj) = &self.proj else {
            return Ok((x, y));
        };
        let out = proj.convert((x, y)).map_err(|e| GeoError::Transform {
            from: self.from,
            to: self.to,
            x,
            y,
            reason: e.to_string(),
        })?;
        if !out.0.is_finite() || !out.1.is_finite() {
            return Err(GeoError::Transform {
                from: self.from,
                to: self.to,
                x,
                y,
                reason: "result is not finite (outside the CRS's area of use?)".into(),
            });
        }
        Ok(out)
    }

    /// Transforms points in place; on error nothing is promised about `points`.
    pub fn convert_all(&self, points: &mut [(f64, f64)]) -> Result<(), GeoError> {
        let Some(proj) = &self.proj else {
            return Ok(());
        };
        let first = points.first().copied().unwrap_or((0.0, 0.0));
        proj.convert_array(points)
            .map_err(|e| GeoError::Transform {
                from: self.from,
                to: self.to,
                x: first.0,
                y: first.1,
                reason: e.to_string(),
            })
            .map(|_| ())?;
        if let Some(bad) = points.iter().find(|p| !p.0.is_finite() || !p.1.is_finite()) {
            return Err(GeoError::Transform {
                from: self.from,
                to: self.to,
                x: bad.0,
                y: bad.1,
                reason: "result is not finite (outside the CRS's area of use?)".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crs_names() {
        assert_eq!("EPSG:3006".parse::<Crs>(), Ok(Crs(3006)));
        assert_eq!("epsg:3011".parse::<Crs>(), Ok(Crs(3011)));
        assert_eq!("urn:ogc:def:crs:EPSG::3857".parse::<Crs>(), Ok(Crs(3857)));
        assert_eq!(
            "https://www.opengis.net/def/crs/EPSG/0/7415".parse::<Crs>(),
            Ok(Crs(7415))
        );
        assert_eq!(
            "urn:ogc:def:crs:OGC:1.3:CRS84".parse::<Crs>(),
            Ok(Crs::WGS84)
        );
        assert!(matches!(
            "SWEREF".parse::<Crs>(),
            Err(GeoError::UnknownCrsName(_))
        ));
    }

    #[test]
    fn reference_point_matches_published_cs2cs_values() {
        // Values from PROJ's cs2cs 9.1.1 (see shared data README) for 18.0686 E, 59.3293 N.
        let t = Transformer::new(Crs::WGS84, Crs::SWEREF99_TM).expect("3006");
        let (e, n) = t.convert(18.0686, 59.3293).expect("convert");
        assert!((e - 674571.866).abs() < 0.01, "E {e}");
        assert!((n - 6580743.008).abs() < 0.01, "N {n}");
        let t = Transformer::new(Crs::WGS84, Crs::SWEREF99_1800).expect("3011");
        let (e, n) = t.convert(18.0686, 59.3293).expect("convert");
        assert!((e - 153905.093).abs() < 0.01, "E {e}");
        assert!((n - 6579354.448).abs() < 0.01, "N {n}");
    }

    #[test]
    fn round_trip_and_batch_agree() {
        let fwd = Transformer::new(Crs::WGS84, Crs::SWEREF99_TM).expect("fwd");
        let back = Transformer::new(Crs::SWEREF99_TM, Crs::WGS84).expect("back");
        let mut pts = vec![(18.06, 59.33), (18.08, 59.34), (17.95, 59.40)];
        let single: Vec<_> = pts
            .iter()
            .map(|p| fwd.convert(p.0, p.1).expect("one"))
            .collect();
        fwd.convert_all(&mut pts).expect("batch");
        assert_eq!(pts, single);
        let (lon, lat) = back.convert(pts[0].0, pts[0].1).expect("back");
        assert!((lon - 18.06).abs() < 1e-9 && (lat - 59.33).abs() < 1e-9);
    }

    #[test]
    fn unknown_epsg_code_is_an_error_not_a_panic() {
        let err = Transformer::new(Crs(999_999), Crs::WGS84)
            .err()
            .expect("error");
        assert!(matches!(err, GeoError::Create { .. }), "{err}");
    }
}
