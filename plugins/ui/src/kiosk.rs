//! `--mode kiosk`: the twin on a public screen, unattended. A camera tour over the scene's
//! viewpoints, each with a caption that counts what stands there, live, first in one language
//! and then the other; a tap on a building, lamp or sensor shows it in a simple inspector with
//! large controls; untouched for a while, the screen returns to the tour. No settings, no
//! sources, no files, and only one way out by keyboard: Ctrl+Shift+Q.

use std::collections::BTreeMap;

use bevy::input::mouse::MouseWheel;
use bevy::input::touch::Touches;
use bevy::math::DVec3;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use tvilling_city::load::LoadProgress;
use tvilling_city::model::{Building, TwinEntity};
use tvilling_city::scene::Viewpoint;
use tvilling_geo::{GeoFrame, WorldPosition};
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::state::{Device, LampState};
use tvilling_view::camera::CameraCommand;
use tvilling_view::picking::{EntityPicked, Selection};

use crate::i18n::{Lang, tr, tr_str};
use crate::inspector::{display_name, rows_of_device};
use crate::panels::building_rows;

/// The kiosk: its tour and how long things last.
#[derive(Resource, Debug, Clone)]
pub struct Kiosk {
    pub viewpoints: Vec<Viewpoint>,
    /// Seconds at each viewpoint: the caption in the first language for the first half, in
    /// the other for the second.
    pub dwell_s: f64,
    /// Seconds without a touch before the screen returns to the tour.
    pub idle_s: f64,
    /// The caption's first language.
    pub first: Lang,
}

/// Where the tour is, and whether someone is using the screen. Times are seconds of real time.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct Tour {
    /// The viewpoint shown (or to return to).
    pub index: usize,
    /// When it was reached; `None` until the tour starts.
    pub since: Option<f64>,
    /// The last touch, while someone is using the screen.
    pub touched: Option<f64>,
    /// What the caption counts at the viewpoint shown, by name.
    pub counts: BTreeMap<&'static str, usize>,
    /// When the counts were last taken.
    counted: Option<(usize, f64)>,
}

/// What the tour does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TourStep {
    /// Show viewpoint `i` (fly there).
    Show(usize),
    /// Back from someone's use: clear what they chose and show viewpoint `i` again.
    Return(usize),
}

impl Tour {
    /// Moves the tour on at `now` over `n` viewpoints.
    pub fn step(&mut self, now: f64, n: usize, dwell_s: f64, idle_s: f64) -> Option<TourStep> {
        if n == 0 {
            return None;
        }
        if let Some(t) = self.touched {
            if now - t < idle_s {
                return None;
            }
            self.touched = None;
            self.since = Some(now);
            return Some(TourStep::Return(self.index));
        }
        match self.since {
            None => {
                self.since = Some(now);
                self.index = 0;
                Some(TourStep::Show(0))
            }
            Some(since) if now - since >= dwell_s => {
                self.index = (self.index + 1) % n;
                self.since = Some(now);
                Some(TourStep::Show(self.index))
            }
            Some(_) => None,
        }
    }

    /// Someone touched the screen (a tap, a click, a key, a wheel): the tour waits.
    pub fn touch(&mut self, now: f64) {
        self.touched = Some(now);
    }

    /// Seconds from `now` to the tour's next change (the caption's language, the next
    /// viewpoint, the return from idle); `None` before it starts.
    pub fn next_change_in(&self, now: f64, dwell_s: f64, idle_s: f64) -> Option<f64> {
        if let Some(t) = self.touched {
            return Some((t + idle_s - now).max(0.0));
        }
        let into = now - self.since?;
        let next = if into < dwell_s / 2.0 {
            dwell_s / 2.0
        } else {
            dwell_s
        };
        Some((next - into).max(0.0))
    }

    /// Whether the tour is running (no one using the screen).
    pub fn touring(&self) -> bool {
        self.touched.is_none() && self.since.is_some()
    }

    /// The caption's language at `now`: `first` for the first half of the dwell, then the
    /// other.
    pub fn caption_lang(&self, now: f64, dwell_s: f64, first: Lang) -> Lang {
        let into = self.since.map_or(0.0, |s| now - s);
        if into < dwell_s / 2.0 {
            first
        } else {
            match first {
                Lang::English => Lang::Swedish,
                Lang::Swedish => Lang::English,
            }
        }
    }
}

/// The kiosk's own systems, over a bare 3D view (no toolbar or panels).
pub struct KioskPlugin;

impl Plugin for KioskPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<EguiPlugin>() {
            app.add_plugins(EguiPlugin::default());
        }
        app.world_mut()
            .resource_mut::<bevy_egui::EguiGlobalSettings>()
            .auto_create_primary_context = false;
        app.add_systems(Startup, crate::spawn_panel_camera)
            .init_resource::<Tour>()
            .init_resource::<Lang>()
            .init_resource::<Foci>()
            .add_systems(
                Update,
                (kiosk_input, kiosk_tour, kiosk_counts)
                    .chain()
                    .run_if(resource_exists::<Kiosk>),
            )
            .add_systems(
                EguiPrimaryContextPass,
                kiosk_panels.run_if(resource_exists::<Kiosk>),
            );
    }
}

/// The viewpoints' places in the scene's frame (once the city has loaded).
#[derive(Resource, Debug, Default)]
struct Foci(Option<Vec<DVec3>>);

/// Any touch, click, key or wheel holds the tour; Ctrl+Shift+Q (only) quits.
fn kiosk_input(
    time: Res<Time<Real>>,
    mut tour: ResMut<Tour>,
    mouse: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    touches: Option<Res<Touches>>,
    mut wheel: MessageReader<MouseWheel>,
    mut exit: MessageWriter<AppExit>,
) {
    let now = time.elapsed_secs_f64();
    let touched = mouse.get_just_pressed().next().is_some()
        || keys.get_just_pressed().next().is_some()
        || touches.is_some_and(|t| t.iter_just_pressed().next().is_some())
        || wheel.read().count() > 0;
    if touched && tour.since.is_some() {
        tour.touch(now);
    }
    let ctrl = keys.any_pressed([KeyCode::ControlLeft, KeyCode::ControlRight]);
    let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
    if ctrl && shift && keys.just_pressed(KeyCode::KeyQ) {
        info!("kiosk: quit with Ctrl+Shift+Q");
        exit.write(AppExit::Success);
    }
}

/// Moves the tour: flies to each viewpoint in turn, and back after someone's use.
#[allow(clippy::too_many_arguments)]
fn kiosk_tour(
    time: Res<Time<Real>>,
    kiosk: Res<Kiosk>,
    mut tour: ResMut<Tour>,
    mut foci: ResMut<Foci>,
    progress: Res<LoadProgress>,
    frame: Option<Res<GeoFrame>>,
    mut camera: MessageWriter<CameraCommand>,
    mut picks: MessageWriter<EntityPicked>,
) {
    if !progress.is_done() {
        return;
    }
    let Some(frame) = frame else { return };
    let foci = foci.0.get_or_insert_with(|| {
        let to = tvilling_geo::Transformer::new(tvilling_geo::Crs::WGS84, frame.crs);
        kiosk
            .viewpoints
            .iter()
            .map(|v| {
                match to
                    .as_ref()
                    .map_err(|e| e.to_string())
                    .and_then(|t| t.convert(v.lon, v.lat).map_err(|e| e.to_string()))
                {
                    Ok((e, n)) => DVec3::new(e, n, 0.0),
                    Err(why) => {
                        error!("kiosk: viewpoint {:?} cannot be placed: {why}", v.name);
                        frame.origin
                    }
                }
            })
            .collect()
    });
    let now = time.elapsed_secs_f64();
    let step = tour.step(now, foci.len(), kiosk.dwell_s, kiosk.idle_s);
    let i = match step {
        None => return,
        Some(TourStep::Show(i)) => i,
        Some(TourStep::Return(i)) => {
            picks.write(EntityPicked(None));
            i
        }
    };
    if let (Some(focus), Some(v)) = (foci.get(i), kiosk.viewpoints.get(i)) {
        camera.write(CameraCommand::FlyTo {
            focus: *focus,
            distance: v.distance,
        });
    }
}

/// Counts what stands within the shown viewpoint's radius: on reaching it, then each second.
#[allow(clippy::type_complexity)]
fn kiosk_counts(
    time: Res<Time<Real>>,
    kiosk: Res<Kiosk>,
    mut tour: ResMut<Tour>,
    foci: Res<Foci>,
    devices: Query<(&Device, &WorldPosition, Option<&LampState>)>,
    buildings: Query<&Building>,
) {
    let now = time.elapsed_secs_f64();
    let (Some(foci), Some(_)) = (&foci.0, tour.since) else {
        return;
    };
    let i = tour.index;
    if tour.counted.is_some_and(|(at, t)| at == i && now - t < 1.0) {
        return;
    }
    let (Some(focus), Some(v)) = (foci.get(i), kiosk.viewpoints.get(i)) else {
        return;
    };
    let near = |p: DVec3| p.truncate().distance(focus.truncate()) <= v.radius;
    let mut counts: BTreeMap<&'static str, usize> = tvilling_city::scene::CAPTION_COUNTS
        .iter()
        .map(|k| (*k, 0))
        .collect();
    let mut add = |k: &'static str| *counts.entry(k).or_default() += 1;
    for (d, pos, lamp) in &devices {
        if !near(pos.0) {
            continue;
        }
        match d.kind {
            DeviceKind::AirSensor => add("air_sensors"),
            DeviceKind::SignalHead => add("signals"),
            DeviceKind::Meter => add("meters"),
            DeviceKind::Lamp => {
                add("lamps");
                if lamp.is_some_and(|l| l.on) {
                    add("lamps_lit");
                }
            }
        }
    }
    for b in &buildings {
        if let Some(c) = b.footprint.first().map(|p| p.centroid())
            && near(c.extend(0.0))
        {
            add("buildings");
        }
    }
    tour.counts = counts;
    tour.counted = Some((i, now));
}

/// The rows a visitor is shown of what they tapped.
const SIMPLE_ROWS: [&str; 12] = [
    "Address",
    "Height",
    "Levels",
    "Health",
    "Aspect",
    "On",
    "Dim level",
    "NO2",
    "PM10",
    "Power",
    "Heating",
    "Temperature",
];

/// The caption at the bottom and, when something was tapped, a simple inspector with a large
/// button back to the tour.
#[allow(clippy::too_many_arguments)]
fn kiosk_panels(
    mut contexts: EguiContexts,
    time: Res<Time<Real>>,
    kiosk: Res<Kiosk>,
    mut tour: ResMut<Tour>,
    selection: Res<Selection>,
    shown: Query<crate::inspector::Inspected<'static>>,
    states: Query<crate::inspector::States<'static>>,
    clock: Option<Res<tvilling_sensors::clock::TwinClock>>,
    rules: Option<Res<tvilling_sensors::health::HealthRules>>,
    mut picks: MessageWriter<EntityPicked>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let now = time.elapsed_secs_f64();
    let screen = ctx.content_rect();
    let style = ctx.global_style();
    let big = |text: String, size: f32| egui::RichText::new(text).size(size);
    let lang = tour.caption_lang(now, kiosk.dwell_s, kiosk.first);
    if let (true, Some(v)) = (tour.touring(), kiosk.viewpoints.get(tour.index)) {
        let caption = match lang {
            Lang::Swedish => &v.caption_sv,
            Lang::English => &v.caption_en,
        };
        let counts = &tour.counts;
        let text = Viewpoint::fill(caption, |k| counts.get(k).copied().unwrap_or(0));
        egui::Area::new(egui::Id::new("kiosk-caption"))
            .anchor(egui::Align2::CENTER_BOTTOM, [0.0, -32.0])
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                egui::Frame::window(&style)
                    .inner_margin(egui::Margin::symmetric(28, 16))
                    .show(ui, |ui| {
                        ui.set_max_width(screen.width() - 96.0);
                        ui.label(big(text, 30.0).strong());
                    });
            });
    }
    let hint = format!(
        "{}  ·  {}",
        tr(Lang::Swedish, "Tap a building, lamp or sensor"),
        tr(Lang::English, "Tap a building, lamp or sensor")
    );
    egui::Area::new(egui::Id::new("kiosk-hint"))
        .anchor(egui::Align2::RIGHT_TOP, [-16.0, 16.0])
        .show(ctx, |ui| {
            egui::Frame::window(&style).show(ui, |ui| {
                ui.label(big(hint, 18.0));
            });
        });
    let Some(e) = selection.entity else {
        return Ok(());
    };
    let Ok((twin, building, device, live, info, ..)) = shown.get(e) else {
        return Ok(());
    };
    // The screen's language (--lang), whatever the caption shows at that moment.
    let lang = kiosk.first;
    let mut rows: Vec<(&'static str, String)> = match building {
        Some(b) => building_rows(twin, b),
        None => Vec::new(),
    };
    rows.extend(rows_of_device(
        device,
        live,
        states.get(e).unwrap_or_default(),
        clock.map_or(0, |c| c.now_ms),
        rules.as_deref(),
    ));
    let mut back = false;
    egui::Window::new(egui::RichText::new(display_name(twin, building, info)).size(28.0))
        .id(egui::Id::new("kiosk-inspector"))
        .anchor(egui::Align2::LEFT_TOP, [24.0, 24.0])
        .collapsible(false)
        .resizable(false)
        .min_width(420.0)
        .show(ctx, |ui| {
            ui.label(big(tr(lang, kind_name(twin)).to_string(), 22.0));
            ui.add_space(8.0);
            egui::Grid::new("kiosk-rows")
                .spacing([24.0, 10.0])
                .show(ui, |ui| {
                    for (label, value) in rows.iter().filter(|(l, _)| SIMPLE_ROWS.contains(l)) {
                        ui.label(big(tr(lang, label).to_string(), 22.0));
                        ui.label(big(tr_str(lang, value), 22.0).strong());
                        ui.end_row();
                    }
                });
            ui.add_space(16.0);
            let button = egui::Button::new(big(tr(lang, "Back to the tour").to_string(), 26.0))
                .min_size(egui::vec2(320.0, 72.0));
            back = ui.add(button).clicked();
        });
    if back {
        picks.write(EntityPicked(None));
        // Straight back: as if the screen had been idle long enough.
        tour.touched = Some(now - kiosk.idle_s);
    }
    Ok(())
}

/// What a visitor is told the thing is.
fn kind_name(twin: &TwinEntity) -> &'static str {
    use tvilling_city::model::TwinKind;
    match twin.kind {
        TwinKind::Building => "Building",
        TwinKind::Landmark => "Landmark",
        TwinKind::SignalHead => "Traffic signal",
        TwinKind::SignalController => "Signalled intersection",
        TwinKind::Lamp => "Street lamp",
        TwinKind::Meter => "Electricity meter",
        TwinKind::AirSensor => "Air sensor",
        TwinKind::Vehicle => "Vehicle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ctrl_shift_q_quits_and_any_input_holds_the_tour() {
        let kiosk_app = || {
            let mut app = App::new();
            app.add_plugins(MinimalPlugins)
                .add_message::<MouseWheel>()
                .add_message::<AppExit>()
                .init_resource::<ButtonInput<MouseButton>>()
                .init_resource::<ButtonInput<KeyCode>>()
                .insert_resource(Tour {
                    since: Some(0.0),
                    ..Default::default()
                })
                .add_systems(Update, kiosk_input);
            app
        };
        let mut app = kiosk_app();
        let exits = |app: &App| app.world().resource::<Messages<AppExit>>().len();
        let press = |app: &mut App, keys: &[KeyCode]| {
            let mut k = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
            k.reset_all();
            for key in keys {
                k.press(*key);
            }
            app.update();
        };
        for keys in [
            &[KeyCode::Escape][..],
            &[KeyCode::KeyQ],
            &[KeyCode::ControlLeft, KeyCode::KeyQ],
            &[KeyCode::AltLeft, KeyCode::F4],
            &[KeyCode::ControlLeft, KeyCode::KeyW],
        ] {
            press(&mut app, keys);
            assert_eq!(exits(&app), 0, "{keys:?} does not quit a kiosk");
        }
        assert!(
            !app.world().resource::<Tour>().touring(),
            "a key holds the tour"
        );
        press(
            &mut app,
            &[KeyCode::ControlLeft, KeyCode::ShiftLeft, KeyCode::KeyQ],
        );
        assert_eq!(exits(&app), 1, "the documented combination quits");
        // A tap (a click) holds the tour too.
        let mut app2 = kiosk_app();
        app2.update();
        assert!(app2.world().resource::<Tour>().touring());
        app2.world_mut()
            .resource_mut::<ButtonInput<MouseButton>>()
            .press(MouseButton::Left);
        app2.update();
        assert!(!app2.world().resource::<Tour>().touring());
    }

    #[test]
    fn the_tour_moves_on_waits_for_a_visitor_and_returns_when_idle() {
        let mut t = Tour::default();
        let (dwell, idle) = (20.0, 60.0);
        assert_eq!(t.step(0.0, 0, dwell, idle), None, "no viewpoints: no tour");
        assert_eq!(t.step(1.0, 3, dwell, idle), Some(TourStep::Show(0)));
        assert_eq!(t.step(20.0, 3, dwell, idle), None);
        assert_eq!(t.step(21.0, 3, dwell, idle), Some(TourStep::Show(1)));
        assert_eq!(t.step(41.0, 3, dwell, idle), Some(TourStep::Show(2)));
        assert_eq!(
            t.step(61.0, 3, dwell, idle),
            Some(TourStep::Show(0)),
            "round"
        );
        // Captions: the first language for half the dwell, then the other.
        assert_eq!(t.caption_lang(70.0, dwell, Lang::Swedish), Lang::Swedish);
        assert_eq!(t.caption_lang(72.0, dwell, Lang::Swedish), Lang::English);
        // A visitor taps at 65: the tour holds while they keep using it.
        t.touch(65.0);
        assert!(!t.touring());
        assert_eq!(t.step(100.0, 3, dwell, idle), None);
        t.touch(110.0);
        assert_eq!(
            t.next_change_in(150.0, dwell, idle),
            Some(20.0),
            "the idle return"
        );
        assert_eq!(t.step(169.0, 3, dwell, idle), None, "59 s idle");
        assert_eq!(
            t.step(170.0, 3, dwell, idle),
            Some(TourStep::Return(0)),
            "60 s idle: back to the viewpoint it left"
        );
        assert!(t.touring());
        assert_eq!(
            t.next_change_in(175.0, dwell, idle),
            Some(5.0),
            "the caption's turn"
        );
        assert_eq!(
            t.next_change_in(181.0, dwell, idle),
            Some(9.0),
            "the next viewpoint"
        );
        assert_eq!(t.step(189.0, 3, dwell, idle), None, "a full dwell there");
        assert_eq!(t.step(190.0, 3, dwell, idle), Some(TourStep::Show(1)));
    }
}
