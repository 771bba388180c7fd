//! Georeferencing for Tvilling. No rendering.
//!
//! Owns:
//! - [`Crs`] and [`Transformer`]: coordinate reference systems by EPSG code, transformed by PROJ
//!   (WGS 84 EPSG:4326 in longitude/latitude order, SWEREF 99 TM EPSG:3006, SWEREF 99 18 00
//!   EPSG:3011, Web Mercator EPSG:3857, and any other code PROJ knows).
//! - [`GeoFrame`]: the scene CRS and the floating render origin. Every located entity keeps its
//!   position as a [`WorldPosition`] in f64 metres of the scene CRS (easting, northing, height);
//!   its `Transform` is an f32 offset from the origin, so nothing jitters kilometres away.
//! - [`sun`]: the sun's elevation and azimuth for a place and time (lighting, lamp health).
//!
//! Data flow: importers transform source coordinates into the scene CRS with a [`Transformer`];
//! spawned entities carry a [`WorldPosition`]; [`GeoPlugin`] keeps `Transform`s in step with the
//! origin in [`GeoSystems::SyncTransforms`], and moves the origin when asked by a
//! [`RecenterOrigin`] message.

pub mod crs;
pub mod frame;
pub mod sun;

pub use crs::{Crs, GeoError, Transformer};
pub use frame::{GeoFrame, GeoPlugin, GeoSystems, RecenterOrigin, WorldPosition};

pub mod prelude {
    pub use crate::crs::{Crs, GeoError, Transformer};
    pub use crate::frame::{GeoFrame, GeoPlugin, GeoSystems, RecenterOrigin, WorldPosition};
}
