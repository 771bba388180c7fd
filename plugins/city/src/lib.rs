//! The city model of Tvilling. No rendering.
//!
//! Owns the importers ([`import`]: OSM XML, GeoJSON, CityJSON, glTF placements), the
//! triangulation and tiling of building geometry into plain [`mesh::MeshData`], the ECS
//! components of the city ([`model`]), the background loader ([`load`]) and the GeoJSON
//! snapshot of the twin ([`snapshot`]).
//!
//! Data flow: [`load::CitySources`] names the inputs. At startup [`CityPlugin`] reads and
//! imports them on the async compute pool (progress in [`load::LoadProgress`]), tiles the
//! buildings, then spawns, across frames, one entity per building ([`model::Building`],
//! [`model::TileSlot`]), per traffic signal ([`model::TrafficSignal`]) and per tile
//! ([`model::CityTile`], holding the batched mesh). It sends [`load::CityLoaded`] when done.
//! Renderers read tiles and buildings; they never write them.

pub mod import;
pub mod load;
pub mod mesh;
pub mod model;
pub mod scene;
pub mod snapshot;
pub mod tiles;

pub use load::{CityPlugin, CitySystems};

pub mod prelude {
    pub use crate::import::{HeightSource, ImportError, ImportErrorKind, Polygon2, SignalType};
    pub use crate::load::{
        CityBounds, CityLoaded, CityPlugin, CitySources, CitySystems, DataSource, LoadProgress,
        LoadReport, LoadStage,
    };
    pub use crate::model::{Building, CityTile, TileSlot, TrafficSignal, TwinEntity, TwinKind};
    pub use crate::scene::Scene;
}
