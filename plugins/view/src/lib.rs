//! The 3D view of the twin: draws what the city model holds, and turns mouse and keys into
//! camera moves and picks. Reads the model; never writes it.
//!
//! - [`tiles`]: each [`tvilling_city::model::CityTile`] becomes one mesh with a [`tiles::CityMaterial`]
//!   (WGSL in `shaders/city.wgsl`); buildings are coloured through a per-tile colour texture
//!   indexed by the building's vertex tag, so [`tiles::BuildingColor`] changes never re-mesh.
//! - [`camera`]: orbit / pan / zoom with mouse and keys, frame-the-city, fly-to, floating
//!   origin recentring, and [`camera::ViewInfo`] for the north arrow and scale bar.
//! - [`devices`]: signal heads, street lamps and air sensors as markers batched per 250 m chunk,
//!   coloured by live state through the same per-chunk colour texture (one texel per change).
//! - [`layers`]: which layers show, and buildings coloured by type, live power, energy intensity
//!   or data freshness (texel writes, instant), with the legend's scale.
//! - [`picking`]: a click casts a ray into the tile meshes and selects the building hit.
//! - [`selection`], [`gesture`], [`palette`]: leaf modules shared by the others (what is
//!   selected, a press that may become a click or a drag, colour ramps and scales).
//! - [`environment`]: sun from Stockholm's latitude and a chosen date/time, sky, ground.
//! - [`vehicles`]: SUMO's vehicles as boxes along their headings, coloured by speed.
//! - [`scenario`]: the city under scenario A, B, or both side by side (split view), with the
//!   planned buildings re-meshed into their tiles.
//!
//! Data flow: input (in [`ViewSystems::Pointer`] and [`ViewSystems::Keyboard`], which `app/`
//! gates off while egui wants the pointer or the keyboard) writes [`camera::CameraCommand`] and [`picking::EntityPicked`] messages; the
//! camera and selection systems apply them; tile colours follow [`picking::Selection`] and
//! [`tiles::BuildingColor`].

pub mod camera;
pub mod detail;
pub mod devices;
pub mod environment;
pub mod gesture;
pub mod layers;
pub mod palette;
pub mod picking;
pub mod scenario;
pub mod selection;
pub mod tiles;
pub mod vehicles;

use bevy::prelude::*;

/// System sets of [`ViewPlugin`], chained in `Update`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewSystems {
    /// Reads the mouse (gated by the app while a panel wants the pointer).
    Pointer,
    /// Reads keyboard shortcuts (gated by the app while a panel wants the keyboard).
    Keyboard,
    /// Applies camera commands and selection changes.
    Apply,
    /// Writes camera transforms, tile colours, sun.
    Draw,
}

/// All of the 3D view.
#[derive(Default)]
pub struct ViewPlugin;

impl Plugin for ViewPlugin {
    fn build(&self, app: &mut App) {
        app.configure_sets(
            Update,
            (
                ViewSystems::Pointer,
                ViewSystems::Keyboard,
                ViewSystems::Apply,
                ViewSystems::Draw,
            )
                .chain(),
        )
        .add_plugins((
            tiles::TileRenderPlugin,
            devices::DeviceMarkerPlugin,
            layers::LayersPlugin,
            camera::CameraPlugin,
            picking::PickingPlugin,
            environment::EnvironmentPlugin,
            scenario::ScenarioViewPlugin,
            vehicles::VehiclePlugin,
            detail::DetailViewPlugin,
        ));
    }
}

pub mod prelude {
    pub use crate::camera::{CameraCommand, OrbitCamera, ViewInfo};
    pub use crate::environment::SunSettings;
    pub use crate::layers::{ColourBy, Layers};
    pub use crate::selection::{EntityPicked, Selection};
    pub use crate::tiles::{BuildingColor, CityMaterial};
    pub use crate::{ViewPlugin, ViewSystems};
}
