//! egui panels of Tvilling: load progress, toolbar with counts and sun time, building
//! inspector (with its meter's live values), the live panel (sources, device health,
//! rejections, unknown devices), the timeline (live, pause, scrub, play, and a playback banner),
//! north arrow and scale bar, import problems, and the about box with the data's
//! attribution. Panels read the model and write requests (camera commands, picks); they never
//! edit model components.

pub mod city;
pub mod control_room;
pub mod i18n;
pub mod inspector;
pub mod kiosk;
pub mod layers;
pub mod live;
pub mod overlay;
pub mod panels;
pub mod scenario_editor;
pub mod scenarios;
pub mod summary;
pub mod timeline;

use bevy::prelude::*;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};

/// Which windows are open.
#[derive(Resource, Debug, Clone)]
pub struct PanelState {
    pub about_open: bool,
    pub problems_open: bool,
    pub attributes_open: bool,
    pub live_open: bool,
    pub layers_open: bool,
    pub city_open: bool,
    pub scenarios_open: bool,
    pub editor_open: bool,
}

impl Default for PanelState {
    fn default() -> Self {
        Self {
            about_open: false,
            problems_open: false,
            attributes_open: false,
            live_open: true,
            layers_open: false,
            city_open: false,
            scenarios_open: false,
            editor_open: false,
        }
    }
}

/// The egui user interface.
#[derive(Default)]
pub struct UiPlugin;

impl Plugin for UiPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<EguiPlugin>() {
            app.add_plugins(EguiPlugin::default());
        }
        // Messages the City window writes (the alarm desk's actions, metric resets), whether
        // or not a live pipeline (and with it the metrics) runs: a still city has none.
        app.add_message::<tvilling_metrics::lifecycle::AlarmAction>()
            .add_message::<tvilling_metrics::metrics::ResetMetrics>();
        // The panels draw on a camera of their own over the whole window, so that the 3D view
        // may be split between cameras (scenario A | B) without splitting the panels.
        app.world_mut()
            .resource_mut::<bevy_egui::EguiGlobalSettings>()
            .auto_create_primary_context = false;
        app.add_systems(Startup, spawn_panel_camera);
        app.init_resource::<PanelState>()
            .init_resource::<i18n::Lang>()
            .init_resource::<city::CityPanel>()
            .init_resource::<scenarios::ScenarioChoice>()
            .init_resource::<scenario_editor::EditorForm>()
            .init_resource::<scenario_editor::DistrictNames>()
            .add_message::<tvilling_twin::scenario::draft::DraftRequest>()
            .add_message::<tvilling_twin::scenario::shown::ShowRequest>()
            .add_message::<tvilling_twin::history::ClockRequest>()
            .add_message::<tvilling_twin::history::SeriesRequest>()
            .add_systems(Update, city::sample_power)
            .add_message::<tvilling_twin::scenario::jobs::CompareRequest>()
            .add_systems(
                Update,
                control_room::control_room_keys
                    .run_if(resource_exists::<control_room::ControlRoom>),
            )
            .add_systems(
                EguiPrimaryContextPass,
                (
                    control_room::control_room_panels
                        .run_if(resource_exists::<control_room::ControlRoom>),
                    timeline::timeline_bar,
                    panels::toolbar,
                    panels::progress_window,
                    inspector::inspector,
                    panels::problems_window,
                    live::live_window,
                    layers::layers_window,
                    city::city_window,
                    scenarios::scenarios_window,
                    scenario_editor::scenario_editor,
                    panels::about_window,
                    overlay::compass_and_scale,
                )
                    .chain(),
            );
    }
}

/// The camera the panels are drawn with: nothing of the 3D scene, after every 3D camera,
/// blended over what they drew.
pub(crate) fn spawn_panel_camera(mut commands: Commands) {
    commands.spawn((
        Name::new("panel camera"),
        bevy_egui::PrimaryEguiContext,
        Camera2d,
        bevy::camera::visibility::RenderLayers::none(),
        // Panels are flat: no multisampling (text is drawn as before, crisp).
        Msaa::Off,
        Camera {
            order: 10,
            output_mode: bevy::camera::CameraOutputMode::Write {
                blend_state: Some(bevy::render::render_resource::BlendState::ALPHA_BLENDING),
                clear_color: ClearColorConfig::None,
            },
            clear_color: ClearColorConfig::Custom(Color::NONE),
            ..default()
        },
    ));
}

pub mod prelude {
    pub use crate::{PanelState, UiPlugin};
}
