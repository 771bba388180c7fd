//! The Tvilling application: puts the plugins together, orders their system sets, and runs one
//! of three modes: the interactive window, `--screenshot`, or `--headless --snapshot`.

pub mod alarms;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod export;
pub mod idle;
pub mod modes;
pub mod plot_png;
pub mod scenario;
pub mod settings;
pub mod sumo;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bevy::prelude::*;
use tvilling_city::load::{CitySources, DataSource};
use tvilling_city::scene::Scene;
use tvilling_geo::{Crs, GeoFrame};
use tvilling_view::environment::SunSettings;

pub use cli::Cli;

/// What to load and how, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Setup {
    pub sources: CitySources,
    pub live: tvilling_twin::LiveSettings,
    pub crs: Crs,
    pub sun_unix: Option<i64>,
    /// The sun was set on the command line: it stays put instead of following the live clock.
    pub sun_fixed: bool,
    pub colour_by: tvilling_view::layers::ColourBy,
    pub lang: tvilling_ui::i18n::Lang,
    /// Panels to open at start (`--open`).
    pub open: Vec<String>,
    /// SUMO co-simulation (`--sumo`, `--sumo-attach`).
    pub sumo: Option<tvilling_twin::sumo::SumoSetup>,
    /// `--sumo-overrides`: hand-written light → controller pairs.
    pub sumo_overrides: Vec<(String, String)>,
    /// The scene's viewpoints (the kiosk's tour).
    pub viewpoints: Vec<tvilling_city::scene::Viewpoint>,
}

/// Resolves data sources, CRS and sun time from the command line and scene file.
pub fn setup_from_cli(cli: &Cli) -> Result<Setup> {
    let (scene, base, embedded): (Option<Scene>, PathBuf, bool) = if let Some(path) = &cli.scene {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scene file {}", path.display()))?;
        let scene = Scene::parse(&text, &path.display().to_string())?;
        (
            Some(scene),
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            false,
        )
    } else if cli.data.is_empty() {
        (
            Some(Scene::parse(
                embedded::DEFAULT_SCENE,
                "embedded scenes/stockholm.toml",
            )?),
            PathBuf::from("scenes"),
            true,
        )
    } else {
        (None, PathBuf::new(), false)
    };
    let mut crs = match &scene {
        Some(s) => s.crs()?,
        None => Crs::SWEREF99_TM,
    };
    if let Some(c) = &cli.crs {
        crs = c.parse().with_context(|| format!("--crs {c}"))?;
    }
    let source_crs = match &cli.source_crs {
        Some(c) => Some(
            c.parse::<Crs>()
                .with_context(|| format!("--source-crs {c}"))?,
        ),
        None => None,
    };
    let sources = match &scene {
        Some(s) if embedded => s.sources(&base, &embedded::lookup),
        Some(s) => s.sources(&base, &|_| None),
        None => cli.data.iter().cloned().map(DataSource::Path).collect(),
    };
    let sun_unix = match &cli.sun {
        Some(t) => Some(
            tvilling_city::scene::parse_utc_minute(t)
                .ok_or_else(|| anyhow::anyhow!("--sun {t:?}: expected YYYY-MM-DDTHH:MM (UTC)"))?,
        ),
        None => scene.as_ref().and_then(Scene::sun_unix),
    };
    Ok(Setup {
        viewpoints: scene
            .as_ref()
            .map(|s| s.viewpoint.clone())
            .unwrap_or_default(),
        sumo_overrides: match &cli.sumo_overrides {
            Some(p) => sumo::read_overrides(p)?,
            None => Vec::new(),
        },
        sumo: match (&cli.sumo, cli.sumo_attach) {
            (None, _) => None,
            (Some(c), None) => Some(tvilling_twin::sumo::SumoSetup::Start(c.clone())),
            (Some(c), Some(addr)) => Some(tvilling_twin::sumo::SumoSetup::Attach {
                addr,
                config: c.clone(),
            }),
        },
        live: settings::live_settings(cli)?,
        sun_fixed: cli.sun.is_some(),
        colour_by: match cli.colour_by.as_str() {
            "type" => tvilling_view::layers::ColourBy::Type,
            "power" => tvilling_view::layers::ColourBy::Power,
            "intensity" => tvilling_view::layers::ColourBy::EnergyIntensity,
            "freshness" => tvilling_view::layers::ColourBy::Freshness,
            "difference" => tvilling_view::layers::ColourBy::Difference,
            other => {
                anyhow::bail!(
                    "--colour-by {other:?}: expected type, power, intensity, freshness or difference"
                )
            }
        },
        open: {
            for p in &cli.open {
                anyhow::ensure!(
                    [
                        "city",
                        "layers",
                        "live",
                        "scenarios",
                        "editor",
                        "problems",
                        "none"
                    ]
                    .contains(&p.as_str()),
                    "--open {p:?}: expected city, layers, live, scenarios, editor, problems or none"
                );
            }
            cli.open.clone()
        },
        lang: match cli.lang.as_str() {
            "en" => tvilling_ui::i18n::Lang::English,
            "sv" => tvilling_ui::i18n::Lang::Swedish,
            other => anyhow::bail!("--lang {other:?}: expected en or sv"),
        },
        sources: CitySources {
            sources,
            source_crs,
        },
        crs,
        sun_unix,
    })
}

/// Model plugins and resources shared by every mode, and the live pipeline when configured.
pub fn add_model(app: &mut App, setup: &Setup) -> Result<()> {
    app.insert_resource(GeoFrame {
        crs: setup.crs,
        ..default()
    })
    .insert_resource(setup.sources.clone())
    .add_plugins((tvilling_geo::GeoPlugin, tvilling_city::CityPlugin));
    if !setup.live.is_empty() {
        app.add_plugins(tvilling_twin::LivePlugin {
            settings: setup.live.clone(),
        });
        tvilling_twin::start_live(app.world_mut())?;
    }
    if let Some(sumo) = &setup.sumo {
        app.insert_resource(sumo.clone())
            .insert_resource(tvilling_twin::sumo::SumoOverrides(
                setup.sumo_overrides.clone(),
            ))
            .add_plugins(tvilling_twin::sumo::SumoPlugin);
    }
    Ok(())
}

/// View and UI plugins (the UI only with `ui`), with the order of the crates' sets.
pub fn add_view(app: &mut App, setup: &Setup, ui: bool) {
    use bevy_egui::input::{egui_wants_any_keyboard_input, egui_wants_any_pointer_input};
    use tvilling_view::ViewSystems;
    let mut sun = SunSettings::default();
    if let Some(t) = setup.sun_unix {
        sun.unix_time = t;
    }
    // With live state, the sun follows the live clock (the simulator's, or the wall clock)
    // unless the command line fixed it; the toolbar's slider takes it over.
    sun.follow_clock = !setup.sun_fixed && !setup.live.is_empty();
    app.insert_resource(sun)
        .insert_resource(setup.colour_by)
        .insert_resource(setup.lang)
        // The legend matters as soon as buildings are coloured by a live value.
        .insert_resource(tvilling_ui::PanelState {
            layers_open: setup.colour_by != tvilling_view::layers::ColourBy::Type
                || setup.open.iter().any(|p| p == "layers"),
            city_open: setup.open.iter().any(|p| p == "city"),
            scenarios_open: setup.open.iter().any(|p| p == "scenarios"),
            editor_open: setup.open.iter().any(|p| p == "editor"),
            problems_open: setup.open.iter().any(|p| p == "problems"),
            live_open: setup.open.is_empty() || setup.open.iter().any(|p| p == "live"),
            ..default()
        })
        .add_plugins(tvilling_view::ViewPlugin)
        .configure_sets(
            Update,
            tvilling_city::CitySystems::Spawn.before(ViewSystems::Pointer),
        )
        .add_systems(Update, sun_follows_clock.before(ViewSystems::Draw));
    if ui {
        app.add_plugins(tvilling_ui::UiPlugin).configure_sets(
            Update,
            (
                ViewSystems::Pointer.run_if(not(egui_wants_any_pointer_input)),
                ViewSystems::Keyboard.run_if(not(egui_wants_any_keyboard_input)),
            ),
        );
    }
}

/// Moves the sun with the twin clock while [`SunSettings::follow_clock`] is on (with the moment
/// of the scenarios shown, while they are).
fn sun_follows_clock(
    clock: Option<Res<tvilling_sensors::clock::TwinClock>>,
    shown: Option<Res<tvilling_twin::scenario::shown::ShownScenarios>>,
    mut sun: ResMut<SunSettings>,
) {
    let now = match (&shown, &clock) {
        (Some(s), _) if s.is_shown() => Some(s.t_ms),
        (_, Some(c)) => Some(c.now_ms),
        _ => None,
    };
    if let Some(now_ms) = now
        && sun.follow_clock
        && now_ms != 0
    {
        let t = now_ms.div_euclid(1000);
        if sun.unix_time != t {
            sun.unix_time = t;
        }
    }
}
