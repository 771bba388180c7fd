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
//! ```

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
