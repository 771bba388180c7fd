//! Importers: each turns one file into [`Imported`] features in the scene CRS, plus a report of
//! the features it had to skip and why. A broken feature never stops the rest from loading.

pub mod cityjson;
pub mod geojson;
pub mod gltf_model;
pub mod osm;

use std::fmt;
use std::path::{Path, PathBuf};

use bevy::math::{DVec2, DVec3};

use crate::mesh::MeshData;

/// Where a building's height came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeightSource {
    /// A `height` attribute in the data (metres).
    Measured,
    /// `building:levels` (or equivalent) times [`METRES_PER_LEVEL`].
    FromLevels,
    /// Neither was given: [`DEFAULT_BUILDING_HEIGHT_M`].
    Default,
    /// Taken from 3D geometry (CityJSON, glTF).
    Geometry,
}

impl HeightSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HeightSource::Measured => "measured",
            HeightSource::FromLevels => "from levels",
            HeightSource::Default => "default",
            HeightSource::Geometry => "3D geometry",
        }
    }
}

/// Storey height used to turn `building:levels` into metres.
pub const METRES_PER_LEVEL: f64 = 3.0;
/// Height given to a building with neither `height` nor `building:levels`: four storeys of
/// [`METRES_PER_LEVEL`], below the typical 5-7 storeys of Stockholm's inner city so that an
/// estimate never towers over surveyed neighbours.
pub const DEFAULT_BUILDING_HEIGHT_M: f64 = 12.0;

/// A polygon in the scene CRS (easting, northing): one outer ring and its holes. Rings are open
/// (the first point is not repeated).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Polygon2 {
    pub outer: Vec<DVec2>,
    pub holes: Vec<Vec<DVec2>>,
}

/// The shape of an imported building.
#[derive(Debug, Clone)]
pub enum BuildingShape {
    /// Footprint polygons extruded from `base` to `base + height` (flat roof).
    Extruded {
        polygons: Vec<Polygon2>,
        base: f64,
        height: f64,
    },
    /// Ready triangles in world coordinates (scene CRS, metres), e.g. CityJSON or glTF.
    Mesh { mesh: MeshData, origin: DVec3 },
}

/// A building (or landmark) as read from a file.
#[derive(Debug, Clone)]
pub struct ImportedBuilding {
    /// The source's id, e.g. `way/123`, `relation/45`, a CityJSON object id.
    pub id: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub levels: Option<f64>,
    pub height: f64,
    pub height_source: HeightSource,
    /// Footprint polygons (for area, picking outline and the snapshot).
    pub footprint: Vec<Polygon2>,
    pub shape: BuildingShape,
    /// Every other attribute, as text.
    pub attributes: Vec<(String, String)>,
    /// The file it came from (set by the loader).
    pub source_file: String,
}

/// Kind of a traffic-signal point from the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalType {
    /// `highway=traffic_signals`: signals controlling a junction or road section.
    Junction,
    /// `crossing=traffic_signals`: signals of a pedestrian or cycle crossing.
    Crossing,
}

impl SignalType {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::Junction => "junction",
            SignalType::Crossing => "crossing",
        }
    }
}

/// A traffic-signal point.
#[derive(Debug, Clone)]
pub struct ImportedSignal {
    pub id: String,
    pub position: DVec2,
    pub signal_type: SignalType,
    pub attributes: Vec<(String, String)>,
}

/// Street classes the city lights (OSM `highway` values), busiest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreetClass {
    Trunk,
    Primary,
    Secondary,
    Tertiary,
    Residential,
    Pedestrian,
}

impl StreetClass {
    /// The class of an OSM `highway` value; `None` for paths, footways, steps, service roads
    /// and everything that is not a street.
    pub fn from_osm(highway: &str) -> Option<StreetClass> {
        Some(match highway {
            "motorway" | "motorway_link" | "trunk" | "trunk_link" => StreetClass::Trunk,
            "primary" | "primary_link" => StreetClass::Primary,
            "secondary" | "secondary_link" => StreetClass::Secondary,
            "tertiary" | "tertiary_link" => StreetClass::Tertiary,
            "residential" | "unclassified" | "living_street" => StreetClass::Residential,
            "pedestrian" => StreetClass::Pedestrian,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreetClass::Trunk => "trunk",
            StreetClass::Primary => "primary",
            StreetClass::Secondary => "secondary",
            StreetClass::Tertiary => "tertiary",
            StreetClass::Residential => "residential",
            StreetClass::Pedestrian => "pedestrian",
        }
    }
}

/// A street centreline.
#[derive(Debug, Clone)]
pub struct ImportedStreet {
    pub id: String,
    pub name: Option<String>,
    pub class: StreetClass,
    /// At least two points, scene CRS.
    pub line: Vec<DVec2>,
}

/// A surveyed point feature (e.g. an OSM `highway=street_lamp` node).
#[derive(Debug, Clone)]
pub struct ImportedPoint {
    pub id: String,
    pub position: DVec2,
    pub attributes: Vec<(String, String)>,
}

/// Kinds of flat ground cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AreaKind {
    Water = 0,
    Park = 1,
}

/// A flat area drawn on the ground (water, parks).
#[derive(Debug, Clone)]
pub struct ImportedArea {
    pub id: String,
    pub kind: AreaKind,
    pub polygons: Vec<Polygon2>,
}

/// What one file yields.
#[derive(Debug, Default)]
pub struct Imported {
    pub buildings: Vec<ImportedBuilding>,
    pub signals: Vec<ImportedSignal>,
    pub areas: Vec<ImportedArea>,
    pub streets: Vec<ImportedStreet>,
    /// Surveyed street lamps.
    pub lamps: Vec<ImportedPoint>,
    pub report: ImportReport,
}

impl Imported {
    pub fn extend(&mut self, other: Imported) {
        self.buildings.extend(other.buildings);
        self.signals.extend(other.signals);
        self.areas.extend(other.areas);
        self.streets.extend(other.streets);
        self.lamps.extend(other.lamps);
        self.report.errors.extend(other.report.errors);
        self.report.cut.extend(other.report.cut);
        self.report.files.extend(other.report.files);
    }
}

/// Features skipped (with reasons), features cut at the extract's edge, and files read.
#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub files: Vec<PathBuf>,
    /// Problems: what is wrong in the data (a broken ring, a bad height, an unreadable file).
    pub errors: Vec<ImportError>,
    /// Not problems: features whose members or nodes lie outside the file, as every extract cut
    /// from a larger map has at its edge. Each is drawn from its parts inside, where it has any.
    pub cut: Vec<CutFeature>,
}

impl ImportReport {
    /// Features cut at the edge that are still drawn (from their parts inside the file).
    pub fn cut_drawn(&self) -> usize {
        self.cut.iter().filter(|c| c.drawn).count()
    }
}

/// A feature the extract cut at its edge: it references members (ways of a relation, nodes of a
/// way) that the file does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CutFeature {
    pub file: PathBuf,
    /// The feature's id, e.g. `relation/109895`.
    pub feature: String,
    /// What it references that is not in the file, e.g. `way/120023285`.
    pub missing: Vec<String>,
    /// True when it is drawn from the parts the file holds; false when nothing of it is inside.
    pub drawn: bool,
}

impl fmt::Display for CutFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} outside the file ({}); {}",
            self.feature,
            if self.missing.len() == 1 {
                "1 member".to_string()
            } else {
                format!("{} members", self.missing.len())
            },
            self.missing.join(", "),
            if self.drawn {
                "drawn from the parts inside"
            } else {
                "nothing of it inside, not drawn"
            }
        )
    }
}

/// Why a file or a feature could not be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportErrorKind {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("not well-formed {format}: {reason}")]
    Syntax {
        format: &'static str,
        reason: String,
    },
    #[error("unsupported file type (expected .osm, .geojson/.json, .city.json or .glb/.gltf)")]
    UnknownFormat,
    #[error("references {0} that is not in the file")]
    MissingReference(String),
    #[error("ring is not closed and could not be joined into a closed ring")]
    UnclosedRing,
    #[error("polygon has fewer than 3 distinct points")]
    DegeneratePolygon,
    #[error("no usable outer ring")]
    NoOuterRing,
    #[error("attribute {key}={value:?} is not a valid {expected}")]
    BadAttribute {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("geometry type {0} is not a building footprint")]
    UnsupportedGeometry(String),
    #[error("coordinates are invalid: {0}")]
    BadCoordinates(String),
    #[error(transparent)]
    Geo(#[from] tvilling_geo::GeoError),
}

/// An error with where it happened: file and feature.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    pub file: PathBuf,
    /// The feature's id, or empty when the whole file failed.
    pub feature: String,
    pub kind: ImportErrorKind,
    /// False when the feature still loaded (e.g. a broken inner ring or a bad attribute).
    pub feature_skipped: bool,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.feature.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.kind)
        } else {
            write!(
                f,
                "{}: {}: {}{}",
                self.file.display(),
                self.feature,
                self.kind,
                if self.feature_skipped {
                    " (skipped)"
                } else {
                    " (loaded without it)"
                }
            )
        }
    }
}

impl std::error::Error for ImportError {}

/// Options for reading files whose CRS is not in the file itself.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The scene CRS every coordinate is transformed to.
    pub scene_crs: tvilling_geo::Crs,
    /// CRS of GeoJSON files without a `crs` member (RFC 7946 says WGS 84).
    pub source_crs: Option<tvilling_geo::Crs>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            scene_crs: tvilling_geo::Crs::SWEREF99_TM,
            source_crs: None,
        }
    }
}

/// File formats by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Osm,
    GeoJson,
    CityJson,
    /// CityJSON Sequence (CityJSONL): a header line, then one `CityJSONFeature` per line.
    CityJsonSeq,
    Gltf,
}

impl Format {
    /// Guesses the format from the file name, then (for `.json` and `.jsonl`) from the
    /// content: CityJSON names itself in its `"type"` and always has `"CityObjects"`, which may
    /// come after megabytes of vertices, so the whole text is scanned for either; a file with
    /// `"CityJSONFeature"` lines is a sequence. A CityJSON file that lost its `type` is still
    /// read (and reported) as CityJSON.
    pub fn detect(path: &Path, head: &[u8]) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let has = |token: &[u8]| head.windows(token.len()).any(|w| w == token);
        if name.ends_with(".osm") || name.ends_with(".osm.xml") {
            Some(Format::Osm)
        } else if name.ends_with(".glb") || name.ends_with(".gltf") {
            Some(Format::Gltf)
        } else if name.ends_with(".city.jsonl") || name.ends_with(".cityjsonl") {
            Some(Format::CityJsonSeq)
        } else if name.ends_with(".city.json") || name.ends_with(".cityjson") {
            Some(Format::CityJson)
        } else if name.ends_with(".geojson") {
            Some(Format::GeoJson)
        } else if name.ends_with(".json") || name.ends_with(".jsonl") {
            Some(if has(b"\"CityJSONFeature\"") {
                Format::CityJsonSeq
            } else if has(b"\"CityJSON\"") || has(b"\"CityObjects\"") {
                Format::CityJson
            } else {
                Format::GeoJson
            })
        } else {
            None
        }
    }
}

/// Signed area of an open ring (positive when counter-clockwise).
pub fn ring_signed_area(ring: &[DVec2]) -> f64 {
    let n = ring.len();
    if n < 3 {
        return 0.0;
    }
    let mut a = 0.0;
    for i in 0..n {
        let p = ring[i];
        let q = ring[(i + 1) % n];
        a += p.x * q.y - q.x * p.y;
    }
    a * 0.5
}

/// Removes a repeated closing point and consecutive duplicates; `None` if fewer than 3 remain or
/// the ring has no area.
pub fn clean_ring(mut ring: Vec<DVec2>) -> Option<Vec<DVec2>> {
    ring.dedup_by(|a, b| a.distance_squared(*b) < 1e-12);
    while ring.len() > 1 && ring[0].distance_squared(ring[ring.len() - 1]) < 1e-12 {
        ring.pop();
    }
    if ring.len() < 3 || ring_signed_area(&ring).abs() < 1e-6 {
        return None;
    }
    Some(ring)
}

impl Polygon2 {
    /// Area in square metres (outer minus holes).
    pub fn area(&self) -> f64 {
        ring_signed_area(&self.outer).abs()
            - self
                .holes
                .iter()
                .map(|h| ring_signed_area(h).abs())
                .sum::<f64>()
    }

    /// Area-weighted centroid of the outer ring.
    pub fn centroid(&self) -> DVec2 {
        let r = &self.outer;
        let a = ring_signed_area(r);
        if a.abs() < 1e-9 {
            return r.iter().copied().sum::<DVec2>() / r.len().max(1) as f64;
        }
        let mut c = DVec2::ZERO;
        for i in 0..r.len() {
            let p = r[i];
            let q = r[(i + 1) % r.len()];
            let k = p.x * q.y - q.x * p.y;
            c += (p + q) * k;
        }
        c / (6.0 * a)
    }
}

/// Parses a length such as `12`, `12.5`, `12 m`, `12,5` (metres); feet (`40'`) are converted.
pub fn parse_length(s: &str) -> Option<f64> {
    let t = s.trim().replace(',', ".");
    let (num, factor) = if let Some(v) = t.strip_suffix('\'') {
        (v.trim().to_string(), 0.3048)
    } else if let Some(v) = t.strip_suffix("ft") {
        (v.trim().to_string(), 0.3048)
    } else if let Some(v) = t.strip_suffix('m') {
        (v.trim().to_string(), 1.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && (0.0..1000.0).contains(&v)).then_some(v * factor)
}

/// Height of a building from its `height` and `building:levels` attributes, with where it came
/// from; bad values are reported in `errors` and the next source is tried.
pub fn height_from_tags(
    height: Option<&str>,
    levels: Option<&str>,
    mut report: impl FnMut(ImportErrorKind),
) -> (f64, HeightSource, Option<f64>) {
    let lv = levels.and_then(|l| {
        let v = l
            .trim()
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 300.0);
        if v.is_none() {
            report(ImportErrorKind::BadAttribute {
                key: "building:levels".into(),
                value: l.into(),
                expected: "number of storeys",
            });
        }
        v
    });
    if let Some(h) = height {
        match parse_length(h) {
            Some(v) if v > 0.0 => return (v, HeightSource::Measured, lv),
            _ => report(ImportErrorKind::BadAttribute {
                key: "height".into(),
                value: h.into(),
                expected: "length in metres",
            }),
        }
    }
    if let Some(l) = lv.filter(|l| *l > 0.0) {
        return (l * METRES_PER_LEVEL, HeightSource::FromLevels, lv);
    }
    (DEFAULT_BUILDING_HEIGHT_M, HeightSource::Default, lv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_length("12"), Some(12.0));
        assert_eq!(parse_length("12,5 m"), Some(12.5));
        assert_eq!(parse_length("100'"), Some(30.48));
        assert_eq!(parse_length("tall"), None);
        assert_eq!(parse_length("-3"), None);
        assert_eq!(parse_length("NaN"), None);
    }

    #[test]
    fn height_prefers_measured_then_levels_then_default() {
        let mut errs = vec![];
        assert_eq!(
            height_from_tags(Some("66"), Some("5"), |e| errs.push(e)),
            (66.0, HeightSource::Measured, Some(5.0))
        );
        assert_eq!(
            height_from_tags(None, Some("5"), |e| errs.push(e)),
            (15.0, HeightSource::FromLevels, Some(5.0))
        );
        assert!(errs.is_empty());
        assert_eq!(
            height_from_tags(Some("high"), None, |e| errs.push(e)),
            (DEFAULT_BUILDING_HEIGHT_M, HeightSource::Default, None)
        );
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn polygon_area_and_centroid() {
        let sq = |x0: f64, y0: f64, s: f64| {
            vec![
                DVec2::new(x0, y0),
                DVec2::new(x0 + s, y0),
                DVec2::new(x0 + s, y0 + s),
                DVec2::new(x0, y0 + s),
            ]
        };
        let p = Polygon2 {
            outer: sq(0.0, 0.0, 10.0),
            holes: vec![sq(2.0, 2.0, 2.0)],
        };
        assert!((p.area() - 96.0).abs() < 1e-9);
        assert!((p.centroid() - DVec2::new(5.0, 5.0)).length() < 1e-9);
        assert!(clean_ring(vec![DVec2::ZERO, DVec2::X, DVec2::X * 2.0]).is_none());
    }
}
