//! The three ways to run: window, screenshot, headless snapshot.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::{ExitCondition, WindowResolution};
use tvilling_city::load::LoadProgress;
use tvilling_city::model::TwinEntity;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::state::Device;
use tvilling_view::camera::CameraCommand;
use tvilling_view::picking::EntityPicked;

use tvilling_twin::scenario::shown::{ShowMode, ShownScenarios};

use crate::{Cli, Setup, add_model, add_view};

fn window_plugins(cli: &Cli) -> Result<impl PluginGroup> {
    let (w, h) = cli.window_size()?;
    // A screenshot must show the city, so it waits for shaders to compile rather than
    // drawing frames without them (pipelines compile in the background otherwise).
    let render = bevy::render::RenderPlugin {
        synchronous_pipeline_compilation: cli.screenshot.is_some(),
        ..default()
    };
    // The control room and the kiosk fill their screen (a screenshot keeps its size).
    let mode = if ["control-room", "kiosk"].contains(&cli.mode.as_str()) && cli.screenshot.is_none()
    {
        bevy::window::WindowMode::BorderlessFullscreen(bevy::window::MonitorSelection::Primary)
    } else {
        bevy::window::WindowMode::Windowed
    };
    Ok(DefaultPlugins.set(render).set(WindowPlugin {
        primary_window: Some(Window {
            title: "Tvilling: Stockholm digital twin".into(),
            resolution: WindowResolution::new(w, h),
            mode,
            ..default()
        }),
        exit_condition: ExitCondition::OnPrimaryClosed,
        ..default()
    }))
}

/// Builds the interactive app (also used by `--screenshot`).
pub fn windowed_app(cli: &Cli, setup: &Setup) -> Result<App> {
    let (control_room, kiosk) = match cli.mode.as_str() {
        "normal" => (false, false),
        "control-room" => (true, false),
        "kiosk" => (false, true),
        other => anyhow::bail!("--mode {other:?}: expected normal, control-room or kiosk"),
    };
    if kiosk {
        anyhow::ensure!(
            !setup.viewpoints.is_empty(),
            "--mode kiosk: the scene has no [[viewpoint]] to tour (see scenes/stockholm.toml)"
        );
        anyhow::ensure!(
            cli.kiosk_dwell >= 2.0 && cli.kiosk_idle >= 1.0,
            "--kiosk-dwell {} --kiosk-idle {}: at least 2 s at a viewpoint and 1 s idle",
            cli.kiosk_dwell,
            cli.kiosk_idle
        );
    }
    let mut setup = setup.clone();
    if control_room {
        // A steady daylight, whatever the hour: the HMI palette needs an even light.
        setup.sun_unix = Some(tvilling_geo::sun::unix_seconds(2026, 6, 21, 11, 0));
        setup.sun_fixed = true;
    }
    let setup = &setup;
    let mut app = App::new();
    app.add_plugins(window_plugins(cli)?);
    add_model(&mut app, setup)?;
    // The kiosk has its own few controls instead of the panels.
    add_view(&mut app, setup, !cli.no_ui && !kiosk);
    anyhow::ensure!(
        cli.marker_chunk_m >= 10.0,
        "--marker-chunk-m {}: at least 10 m",
        cli.marker_chunk_m
    );
    app.insert_resource(tvilling_view::devices::MarkerChunkSize(cli.marker_chunk_m));
    if kiosk {
        use bevy_egui::input::egui_wants_any_pointer_input;
        app.insert_resource(tvilling_ui::kiosk::Kiosk {
            viewpoints: setup.viewpoints.clone(),
            dwell_s: cli.kiosk_dwell,
            idle_s: cli.kiosk_idle,
            first: setup.lang,
        })
        .add_plugins(tvilling_ui::kiosk::KioskPlugin)
        .configure_sets(
            Update,
            tvilling_view::ViewSystems::Pointer.run_if(not(egui_wants_any_pointer_input)),
        );
    }
    if control_room {
        app.insert_resource(tvilling_view::devices::HmiPalette(true))
            .insert_resource(tvilling_view::layers::ColourBy::Abnormal)
            .insert_resource(tvilling_ui::control_room::ControlRoom::default())
            // Two views of one twin: the overview, and a detail on the selected alarm.
            .insert_resource(tvilling_view::detail::DetailView {
                // The alarm list over it keeps 160 px (and its title row).
                keep_above_px: tvilling_ui::control_room::LIST_KEEP_PX,
                ..Default::default()
            });
        if cli.open.is_empty() {
            // The alarm list and the strip say what the Live window would.
            app.world_mut()
                .resource_mut::<tvilling_ui::PanelState>()
                .live_open = false;
        }
    }
    // Scenarios in the window: the files beside the scene (or in scenes/), compared by the
    // integrating engine on a thread of its own.
    let folder = cli
        .scene
        .as_ref()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| "scenes".into());
    let runner: tvilling_twin::scenario::jobs::Runner =
        std::sync::Arc::new(|a, b, seed, from, to| {
            let stop = std::sync::atomic::AtomicBool::new(false);
            crate::scenario::compare_integrated(
                a,
                b,
                seed,
                from,
                to,
                &Default::default(),
                &stop,
                false,
            )
            .map_err(|e| format!("{e:#}"))
        });
    let mut jobs = tvilling_twin::scenario::jobs::ScenarioJobs::new(runner, folder);
    if !cli.compare.is_empty() {
        start_comparison(&mut app, cli, &mut jobs)?;
    }
    app.insert_resource(jobs)
        .add_plugins(tvilling_twin::scenario::jobs::ScenarioPlugin);
    match cli.look_at.as_slice() {
        [] => {}
        &[lon, lat, distance] if distance > 0.0 => {
            app.insert_resource(LookAtOnLoad { lon, lat, distance })
                .add_systems(
                    Update,
                    look_at_on_load.after(tvilling_city::CitySystems::Spawn),
                );
        }
        other => anyhow::bail!("--look-at {other:?}: expected LON,LAT,METRES (metres above 0)"),
    }
    if let Some(id) = &cli.select {
        app.insert_resource(SelectOnLoad(id.clone(), 0));
        app.add_systems(
            Update,
            select_on_load.after(tvilling_city::CitySystems::Spawn),
        );
    }
    Ok(app)
}

/// `--compare A,B`: both files offered (added when they lie elsewhere), chosen, and their
/// comparison started; the Scenarios window opens.
fn start_comparison(
    app: &mut App,
    cli: &Cli,
    jobs: &mut tvilling_twin::scenario::jobs::ScenarioJobs,
) -> Result<()> {
    let [a, b] = cli.compare.as_slice() else {
        anyhow::bail!("--compare: give two scenario files, A.toml,B.toml");
    };
    let mut index = |p: &std::path::PathBuf| -> Result<usize> {
        let want =
            std::fs::canonicalize(p).with_context(|| format!("--compare {}", p.display()))?;
        if let Some(i) = jobs
            .files
            .iter()
            .position(|(f, _)| std::fs::canonicalize(f).is_ok_and(|f| f == want))
        {
            return Ok(i);
        }
        let s = crate::scenario::load(p)?;
        jobs.files.push((p.clone(), Ok(s)));
        Ok(jobs.files.len() - 1)
    };
    let (ia, ib) = (index(a)?, index(b)?);
    let day = cli
        .compare_day
        .clone()
        .unwrap_or_else(|| "2026-11-23".into());
    let from = tvilling_ui::scenarios::local_midnight_ms(&day)
        .with_context(|| format!("--compare-day {day:?}: expected YYYY-MM-DD"))?;
    let to = match cli.compare_hours {
        Some(h) if h > 0.0 && h <= 24.0 => from + (h * 3_600_000.0) as i64,
        Some(h) => anyhow::bail!("--compare-hours {h}: expected 0-24"),
        None => tvilling_sensors::simulate::stockholm_local(from + 36 * 3_600_000).midnight_ms,
    };
    let seed = cli
        .simulate
        .unwrap_or(tvilling_sensors::simulate::DEFAULT_SEED);
    let mode = match cli.show.as_deref() {
        None | Some("live") => ShowMode::Live,
        Some("a") => ShowMode::A,
        Some("b") => ShowMode::B,
        Some("split") => ShowMode::Split,
        Some(other) => anyhow::bail!("--show {other:?}: expected a, b, split or live"),
    };
    let first_moment_ms = match cli.show_at.as_deref() {
        None => None,
        Some(t) => {
            let minutes = t
                .split_once(':')
                .and_then(|(h, m)| Some(h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?))
                .filter(|m| (0..24 * 60).contains(m))
                .with_context(|| format!("--show-at {t:?}: expected HH:MM"))?;
            // Local wall time of the day: the local midnight, then the minutes (the day's
            // offset can change at 02:00 or 03:00 on the two days a year it does).
            Some(
                crate::scenario::local_time_ms(&format!(
                    "{day}T{:02}:{:02}",
                    minutes / 60,
                    minutes % 60
                ))
                .with_context(|| format!("--show-at {t:?}"))?,
            )
        }
    };
    app.insert_resource(ShownScenarios {
        mode,
        first_moment_ms,
        ..Default::default()
    });
    jobs.start(ia, ib, seed, from, to);
    app.insert_resource(tvilling_ui::scenarios::ScenarioChoice {
        a: ia,
        b: ib,
        day,
        seed,
    });
    app.world_mut()
        .resource_mut::<tvilling_ui::PanelState>()
        .scenarios_open = true;
    Ok(())
}

/// Runs the window until it is closed.
pub fn run_window(cli: &Cli, setup: &Setup) -> Result<()> {
    let mut app = windowed_app(cli, setup)?;
    // Render on change unless asked to redraw continuously.
    if !cli.continuous {
        app.add_plugins(crate::idle::IdlePlugin { window: true });
    }
    exit_result(app.run())
}

fn exit_result(exit: AppExit) -> Result<()> {
    match exit {
        AppExit::Success => Ok(()),
        AppExit::Error(code) if code.get() == 130 => {
            anyhow::bail!("interrupted (Ctrl+C); what was recorded is written and closed")
        }
        AppExit::Error(code) => anyhow::bail!("tvilling exited with error code {code}"),
    }
}

/// `--look-at`: where the camera goes once the city has loaded.
#[derive(Resource)]
struct LookAtOnLoad {
    lon: f64,
    lat: f64,
    distance: f64,
}

fn look_at_on_load(
    mut commands: Commands,
    want: Option<Res<LookAtOnLoad>>,
    progress: Res<LoadProgress>,
    frame: Res<tvilling_geo::GeoFrame>,
    mut camera: MessageWriter<CameraCommand>,
) {
    let Some(want) = want else { return };
    if !progress.is_done() {
        return;
    }
    commands.remove_resource::<LookAtOnLoad>();
    let placed = tvilling_geo::Transformer::new(tvilling_geo::Crs::WGS84, frame.crs)
        .and_then(|t| t.convert(want.lon, want.lat));
    match placed {
        Ok((e, n)) => {
            camera.write(CameraCommand::FlyTo {
                focus: bevy::math::DVec3::new(e, n, 0.0),
                distance: want.distance,
            });
        }
        Err(e) => error!("--look-at {}, {}: {e}", want.lon, want.lat),
    }
}

#[derive(Resource)]
struct SelectOnLoad(String, u32);

fn select_on_load(
    mut commands: Commands,
    want: Option<ResMut<SelectOnLoad>>,
    progress: Res<LoadProgress>,
    twins: Query<(Entity, &TwinEntity, Option<&Device>)>,
    mut picks: MessageWriter<EntityPicked>,
    mut camera: MessageWriter<CameraCommand>,
) {
    let Some(mut want) = want else { return };
    if !progress.is_done() {
        return;
    }
    // Devices generated from the city appear a frame or two after it has loaded.
    want.1 += 1;
    let found = twins
        .iter()
        .find(|(_, t, d)| t.id == want.0 || d.is_some_and(|d| d.id == want.0));
    match found {
        Some((e, _, _)) => {
            commands.remove_resource::<SelectOnLoad>();
            picks.write(EntityPicked(Some(e)));
            camera.write(CameraCommand::FlyToEntity(e));
        }
        None if want.1 > 30 => {
            commands.remove_resource::<SelectOnLoad>();
            error!("--select {}: no entity with that id", want.0);
        }
        None => {}
    }
}

/// Screenshot plan: frames to wait after loading, then where to save.
#[derive(Resource, Debug)]
struct ScreenshotPlan {
    path: PathBuf,
    frames_after_load: u32,
    seen: u32,
    requested: bool,
    /// Updates before giving up (a load that never finishes must not hang CI).
    budget: u32,
    /// Frame times after load (with `--frame-stats`), seconds.
    frame_times: Option<Vec<f64>>,
}

/// Median, 95th percentile and mean of frame times (seconds), in milliseconds.
pub fn frame_stats(times: &[f64]) -> (f64, f64, f64) {
    let mut t: Vec<f64> = times.to_vec();
    t.sort_by(f64::total_cmp);
    if t.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let at = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize] * 1000.0;
    (
        at(0.5),
        at(0.95),
        t.iter().sum::<f64>() / t.len() as f64 * 1000.0,
    )
}

/// Renders, saves a screenshot, exits.
pub fn run_screenshot(cli: &Cli, setup: &Setup, path: PathBuf) -> Result<()> {
    let mut app = windowed_app(cli, setup)?;
    // A fly-to takes FLIGHT_SECONDS; with --select or --look-at allow it to land first.
    let extra = if cli.select.is_some() || !cli.look_at.is_empty() {
        90
    } else {
        0
    };
    app.insert_resource(ScreenshotPlan {
        path: path.clone(),
        frames_after_load: cli.frames.max(1) + extra,
        seen: 0,
        requested: false,
        budget: 3000 + cli.frames,
        frame_times: cli.frame_stats.then(Vec::new),
    })
    .add_systems(Last, take_screenshot);
    exit_result(app.run())?;
    anyhow::ensure!(
        path.exists(),
        "the screenshot {} was not written",
        path.display()
    );
    Ok(())
}

fn take_screenshot(
    mut commands: Commands,
    progress: Res<LoadProgress>,
    mut plan: ResMut<ScreenshotPlan>,
    time: Res<Time<Real>>,
    mut exit: MessageWriter<AppExit>,
    jobs: Option<Res<tvilling_twin::scenario::jobs::ScenarioJobs>>,
    clock: Option<Res<TwinClock>>,
) {
    plan.budget = plan.budget.saturating_sub(1);
    if plan.budget == 0 {
        error!(
            "screenshot: gave up waiting for the city to load ({})",
            progress.message
        );
        exit.write(AppExit::error());
        return;
    }
    if plan.requested || !progress.is_done() {
        return;
    }
    // A comparison asked for on the command line is shown finished.
    if jobs.is_some_and(|j| j.running().is_some()) {
        plan.budget = plan.budget.max(2);
        return;
    }
    plan.seen += 1;
    // The first frames after load still upload the city; frame times count from the fifth.
    // Real time: the virtual clock clamps a frame to 250 ms.
    let dt = time.delta_secs_f64();
    if plan.seen > 5
        && let Some(t) = plan.frame_times.as_mut()
    {
        t.push(dt);
    }
    // A simulated clock run to an end (`--until`) is shown at that moment, however long the
    // machine takes to get there: what the picture shows does not depend on its speed.
    if clock.is_some_and(|c| c.until_ms.is_some() && !c.finished()) {
        plan.budget = plan.budget.max(2);
        return;
    }
    if plan.seen < plan.frames_after_load {
        return;
    }
    plan.requested = true;
    if let Some(t) = &plan.frame_times {
        let (median, p95, mean) = frame_stats(t);
        println!(
            "frame time over {} frames: median {median:.1} ms, p95 {p95:.1} ms, mean {mean:.1} ms",
            t.len()
        );
    }
    let path = plan.path.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
            let saved = captured
                .image
                .clone()
                .try_into_dynamic()
                .map_err(|e| e.to_string())
                .and_then(|img| img.to_rgb8().save(&path).map_err(|e| e.to_string()));
            match saved {
                Ok(()) => {
                    info!("screenshot saved to {}", path.display());
                    exit.write(AppExit::Success);
                }
                Err(e) => {
                    error!("cannot save screenshot {}: {e}", path.display());
                    exit.write(AppExit::error());
                }
            }
        },
    );
}

/// A headless app: no window, no rendering; the model (and the live pipeline) only.
pub fn headless_app(setup: &Setup) -> Result<App> {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        bevy::log::LogPlugin::default(),
        TransformPlugin,
        // Ctrl+C ends the run as a clean exit (the history written and closed), as in the window.
        bevy::app::TerminalCtrlCHandlerPlugin,
    ));
    add_model(&mut app, setup)?;
    Ok(app)
}

#[derive(Resource)]
struct SnapshotPlan {
    path: Option<PathBuf>,
    budget: u32,
    /// How long to run the live pipeline after the city has loaded.
    duration: std::time::Duration,
    loaded_at: Option<std::time::Instant>,
    /// The simulated clock when the run began (`--until`).
    started_ms: Option<i64>,
}

/// Loads the city without a window, runs the live pipeline for `duration_s` seconds, writes
/// the snapshot, exits.
pub fn run_headless(setup: &Setup, snapshot: Option<PathBuf>, duration_s: f64) -> Result<()> {
    let mut app = headless_app(setup)?;
    let duration = std::time::Duration::from_secs_f64(duration_s.clamp(0.0, 86_400.0));
    app.insert_resource(SnapshotPlan {
        path: snapshot,
        budget: 200_000,
        duration,
        loaded_at: None,
        started_ms: None,
    })
    .add_systems(Last, write_snapshot);
    exit_result(app.run())
}

fn write_snapshot(world: &mut World) {
    let done = world.resource::<LoadProgress>().is_done();
    let mut plan = world.resource_mut::<SnapshotPlan>();
    plan.budget = plan.budget.saturating_sub(1);
    if plan.budget == 0 {
        error!("headless: gave up waiting for the city to load");
        world.write_message(AppExit::error());
        return;
    }
    if !done {
        return;
    }
    let loaded_at = *plan.loaded_at.get_or_insert_with(std::time::Instant::now);
    // A simulated run to an end (`--until`) runs until its clock gets there.
    let clock = world.get_resource::<TwinClock>().cloned();
    let running_until = clock.as_ref().is_some_and(|c| c.until_ms.is_some());
    // Playing back a recorded moment (`--at`): wait until its state is shown.
    if let Some(c) = clock.as_ref().filter(|c| !c.is_live()) {
        let registered = world
            .get_resource::<tvilling_sensors::registry::DeviceRegistry>()
            .map_or(0, |r| r.len());
        // Shown for the devices registered now (the registry may come after the first state).
        let shown = world
            .get_resource::<tvilling_twin::history::HistoryStatus>()
            .filter(|s| s.shown_devices == registered)
            .and_then(|s| s.shown_ms);
        let failed = world
            .get_resource::<tvilling_twin::history::HistoryStatus>()
            .is_none_or(|s| s.error.is_some());
        let pending = world.contains_resource::<tvilling_twin::simulation::PendingSimulation>();
        if !failed && (pending || shown != Some(c.now_ms)) {
            let mut plan = world.resource_mut::<SnapshotPlan>();
            plan.budget = plan.budget.clamp(2, 100_000);
            return;
        }
    }
    let mut plan = world.resource_mut::<SnapshotPlan>();
    if running_until {
        if let Some(c) = clock.as_ref().filter(|c| !c.finished()) {
            plan.budget = plan.budget.max(2);
            plan.started_ms.get_or_insert(c.edge_ms);
            return;
        }
        if let (Some(c), Some(start)) = (&clock, plan.started_ms) {
            let wall = loaded_at.elapsed().as_secs_f64();
            let span = (c.edge_ms - start) as f64 / 1000.0;
            info!(
                "simulated {:.1} h in {wall:.2} s of wall time: {:.0}x real time ({} steps)",
                span / 3600.0,
                span / wall.max(1e-9),
                c.steps
            );
        }
    } else if loaded_at.elapsed() < plan.duration {
        plan.budget = plan.budget.max(2);
        return;
    }
    let path = plan.path.take();
    // The twin's own memory, before the snapshot's document (a JSON tree of every feature,
    // as large again as the twin for a whole city) is built.
    if let Some(kib) = tvilling_twin::snapshot::resident_kib() {
        info!("memory before the snapshot: {kib} KiB resident");
    }
    let result = match path {
        Some(path) => snapshot_to_file(world, &path),
        None => Ok(()),
    };
    match result {
        Ok(()) => {
            world.write_message(AppExit::Success);
        }
        Err(e) => {
            error!("{e:#}");
            world.write_message(AppExit::error());
        }
    }
}

/// Writes the twin's snapshot to a file.
pub fn snapshot_to_file(world: &mut World, path: &std::path::Path) -> Result<()> {
    let mut value = tvilling_city::snapshot::snapshot(world)?;
    tvilling_twin::snapshot::add_live_to_snapshot(world, &mut value);
    let text = serde_json::to_string(&value)?;
    std::fs::write(path, text)
        .with_context(|| format!("cannot write snapshot {}", path.display()))?;
    info!("snapshot written to {}", path.display());
    if let Some(kib) = tvilling_twin::snapshot::resident_kib() {
        info!("memory: {kib} KiB resident");
    }
    Ok(())
}
