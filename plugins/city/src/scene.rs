//! Scene files (TOML, in `scenes/`): which data to load, which models to place, and the scene's
//! CRS and sun time. Paths are relative to the scene file.
//!
//! ```toml
//! name = "Stockholm: Norrmalm and Östermalm"
//! crs = "EPSG:3006"
//! sun_utc = "2026-06-21T12:00"
//! [[data]]
//! path = "../assets/osm/stockholm-norrmalm-ostermalm.osm"
//! [[model]]
//! path = "../assets/models/obelisk.glb"
//! lon = 18.0636
//! lat = 59.3324
//! heading = 0.0
//! [[viewpoint]]
//! name = "Humlegården"
//! lon = 18.0718
//! lat = 59.3401
//! distance = 500.0
//! radius = 250.0
//! caption_sv = "Humlegården: {lamps_lit} av {lamps} lampor tända"
//! caption_en = "Humlegården: {lamps_lit} of {lamps} lamps lit"
//! ```
//!
//! Viewpoints are the kiosk's tour. A caption's `{...}` counts what stands within `radius`
//! metres of the viewpoint, live: see [`CAPTION_COUNTS`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tvilling_geo::Crs;

use crate::import::gltf_model::ModelPlacement;
use crate::load::DataSource;

/// A data file of a scene.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SceneData {
    pub path: PathBuf,
}

/// What a viewpoint's caption may count within its radius.
pub const CAPTION_COUNTS: [&str; 6] = [
    "air_sensors",
    "lamps",
    "lamps_lit",
    "signals",
    "buildings",
    "meters",
];

fn default_distance() -> f64 {
    500.0
}

fn default_radius() -> f64 {
    300.0
}

/// A named place the kiosk's tour shows, with a caption in Swedish and English.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewpoint {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    /// The camera's distance from the place (m).
    #[serde(default = "default_distance")]
    pub distance: f64,
    /// How far around the place the caption counts (m).
    #[serde(default = "default_radius")]
    pub radius: f64,
    pub caption_sv: String,
    pub caption_en: String,
}

impl Viewpoint {
    /// Why the viewpoint cannot be used, if it cannot.
    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a viewpoint needs a name".into());
        }
        if !(-180.0..=180.0).contains(&self.lon) || !(-90.0..=90.0).contains(&self.lat) {
            return Err(format!(
                "viewpoint {:?}: lon {} lat {} is not a place on Earth",
                self.name, self.lon, self.lat
            ));
        }
        if !(self.distance > 0.0 && self.radius > 0.0) {
            return Err(format!(
                "viewpoint {:?}: distance and radius must be above 0 m",
                self.name
            ));
        }
        for (lang, caption) in [
            ("caption_sv", &self.caption_sv),
            ("caption_en", &self.caption_en),
        ] {
            if caption.trim().is_empty() {
                return Err(format!("viewpoint {:?}: {lang} is empty", self.name));
            }
            let mut rest = caption.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    return Err(format!(
                        "viewpoint {:?}: {lang} has a {{ without a }}",
                        self.name
                    ));
                };
                let key = &rest[open + 1..open + close];
                if !CAPTION_COUNTS.contains(&key) {
                    return Err(format!(
                        "viewpoint {:?}: {lang} counts {{{key}}}; it may count {}",
                        self.name,
                        CAPTION_COUNTS.map(|k| format!("{{{k}}}")).join(", ")
                    ));
                }
                rest = &rest[open + close + 1..];
            }
        }
        Ok(())
    }

    /// A caption with its counts filled in (`count` answers each name of
    /// [`CAPTION_COUNTS`]).
    pub fn fill(caption: &str, count: impl Fn(&str) -> usize) -> String {
        let mut out = String::new();
        let mut rest = caption;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            match rest[open..].find('}') {
                Some(close) => {
                    out.push_str(&count(&rest[open + 1..open + close]).to_string());
                    rest = &rest[open + close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A parsed scene file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    pub name: String,
    /// Scene CRS (default SWEREF 99 TM).
    #[serde(default)]
    pub crs: Option<String>,
    /// Sun time, UTC, `YYYY-MM-DDTHH:MM`.
    #[serde(default)]
    pub sun_utc: Option<String>,
    #[serde(default)]
    pub data: Vec<SceneData>,
    #[serde(default)]
    pub model: Vec<ModelPlacement>,
    /// The kiosk's tour.
    #[serde(default)]
    pub viewpoint: Vec<Viewpoint>,
}

/// Why a scene file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("scene file {0}: {1}")]
    Parse(String, String),
    #[error("scene file {0}: {1}")]
    Crs(String, tvilling_geo::GeoError),
    #[error("scene file {0}: sun_utc {1:?} is not YYYY-MM-DDTHH:MM")]
    Time(String, String),
    #[error("scene file {0}: {1}")]
    Viewpoint(String, String),
}

impl Scene {
    /// Parses a scene; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scene, SceneError> {
        let scene: Scene =
            toml::from_str(text).map_err(|e| SceneError::Parse(origin.into(), e.to_string()))?;
        scene.crs().map_err(|e| SceneError::Crs(origin.into(), e))?;
        if let Some(t) = &scene.sun_utc
            && parse_utc_minute(t).is_none()
        {
            return Err(SceneError::Time(origin.into(), t.clone()));
        }
        for v in &scene.viewpoint {
            v.check()
                .map_err(|why| SceneError::Viewpoint(origin.into(), why))?;
        }
        Ok(scene)
    }

    /// The scene CRS.
    pub fn crs(&self) -> Result<Crs, tvilling_geo::GeoError> {
        self.crs.as_deref().map_or(Ok(Crs::SWEREF99_TM), str::parse)
    }

    /// Sun time as Unix seconds, if set.
    pub fn sun_unix(&self) -> Option<i64> {
        self.sun_utc.as_deref().and_then(parse_utc_minute)
    }

    /// The load list. `embedded` may supply the bytes of a path compiled into the binary.
    pub fn sources(
        &self,
        base: &Path,
        embedded: &dyn Fn(&Path) -> Option<(&'static str, &'static [u8])>,
    ) -> Vec<DataSource> {
        let mut out = Vec::new();
        for d in &self.data {
            let path = base.join(&d.path);
            out.push(match embedded(&d.path) {
                Some((name, bytes)) => DataSource::Embedded {
                    name: name.to_string(),
                    bytes,
                },
                None => DataSource::Path(path),
            });
        }
        for m in &self.model {
            let mut placed = m.clone();
            placed.path = base.join(&m.path);
            out.push(DataSource::Model(placed, embedded(&m.path).map(|(_, b)| b)));
        }
        out
    }
}

/// Parses `YYYY-MM-DDTHH:MM` (UTC) into Unix seconds.
pub fn parse_utc_minute(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(['T', ' '])?;
    let mut d = date.split('-');
    let (y, mo, da) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let mut t = time.trim_end_matches('Z').split(':');
    let (h, mi) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 {
        return None;
    }
    Some(tvilling_geo::sun::unix_seconds(y, mo, da, h, mi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewpoints_are_checked_and_their_captions_count() {
        let scene = |v: &str| {
            Scene::parse(
                &format!(
                    "name = \"t\"\n[[viewpoint]]\nname = \"Humlegården\"\nlon = 18.07\nlat = 59.34\n{v}"
                ),
                "t.toml",
            )
        };
        let ok = scene(
            "caption_sv = \"{lamps_lit} av {lamps} lampor tända\"\ncaption_en = \"{lamps_lit} of {lamps} lamps lit\"",
        )
        .expect("scene");
        let v = &ok.viewpoint[0];
        assert_eq!((v.distance, v.radius), (500.0, 300.0));
        let count = |k: &str| match k {
            "lamps_lit" => 182,
            "lamps" => 190,
            _ => 0,
        };
        assert_eq!(
            Viewpoint::fill(&v.caption_en, count),
            "182 of 190 lamps lit"
        );
        assert_eq!(
            Viewpoint::fill(&v.caption_sv, count),
            "182 av 190 lampor tända"
        );
        let err = scene("caption_sv = \"{trees} träd\"\ncaption_en = \"x\"")
            .expect_err("unknown count")
            .to_string();
        assert!(
            err.contains("counts {trees}") && err.contains("{lamps_lit}"),
            "{err}"
        );
        let err = scene("caption_sv = \"\"\ncaption_en = \"x\"")
            .expect_err("empty")
            .to_string();
        assert!(err.contains("caption_sv is empty"), "{err}");
        let err = scene("distance = -1.0\ncaption_sv = \"x\"\ncaption_en = \"x\"")
            .expect_err("distance")
            .to_string();
        assert!(err.contains("above 0 m"), "{err}");
    }

    #[test]
    fn parses_a_scene_and_resolves_paths() {
        let s = Scene::parse(
            "name = \"t\"\ncrs = \"EPSG:3011\"\nsun_utc = \"2026-06-21T12:00\"\n[[data]]\npath = \"a.osm\"\n[[model]]\npath = \"m.glb\"\nlon = 18.0\nlat = 59.3\n",
            "t.toml",
        )
        .expect("scene");
        assert_eq!(s.crs().expect("crs"), Crs::SWEREF99_1800);
        assert_eq!(
            s.sun_unix(),
            Some(tvilling_geo::sun::unix_seconds(2026, 6, 21, 12, 0))
        );
        assert_eq!(s.model[0].scale, 1.0);
        let src = s.sources(Path::new("/x"), &|_| None);
        assert!(matches!(&src[0], DataSource::Path(p) if p == Path::new("/x/a.osm")));
        assert!(matches!(&src[1], DataSource::Model(m, None) if m.path == Path::new("/x/m.glb")));
    }

    #[test]
    fn bad_scenes_say_why() {
        let e = Scene::parse("name = 1", "bad.toml").expect_err("error");
        assert!(e.to_string().contains("bad.toml"), "{e}");
        let e = Scene::parse("name = \"x\"\nsun_utc = \"noon\"", "bad.toml").expect_err("error");
        assert!(e.to_string().contains("noon"), "{e}");
        let e = Scene::parse("name = \"x\"\ncrs = \"WGS\"", "bad.toml").expect_err("error");
        assert!(e.to_string().contains("WGS"), "{e}");
    }
}
