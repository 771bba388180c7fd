//! `--mode control-room`: the alarm list first, always visible on the left, a status strip at
//! the bottom (the clock, live or playback, each source's health, flood), and the keyboard:
//! N / P the next or previous alarm (selected and flown to), A acknowledges it, F flies to it
//! again. The view beside it uses the high-performance HMI palette (`HmiPalette`).

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_metrics::alarms::Alarms;
use tvilling_metrics::lifecycle::{AlarmAction, AlarmDesk};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::state::{Health, Liveness};
use tvilling_twin::history::ShownDesk;
use tvilling_twin::sources::SourceDiagnostics;
use tvilling_view::camera::CameraCommand;
use tvilling_view::picking::EntityPicked;

use crate::i18n::{Lang, tr, tr_str};

/// The control room's own state: the alarm the keyboard is on.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ControlRoom {
    pub selected: Option<String>,
    /// The reason typed for shelving.
    pub shelve_reason: String,
}

/// Where the alarm list begins: below the toolbar.
const LIST_TOP: f32 = 184.0;

/// What the alarm list keeps above the detail view: its top, 160 px of list, its margins and
/// the detail view's title.
pub const LIST_KEEP_PX: f32 = LIST_TOP + 160.0 + 44.0;

/// Stockholm local time of `t_ms`, HH:MM:SS.
fn local_hms(t_ms: i64) -> String {
    let l = tvilling_sensors::simulate::stockholm_local(t_ms);
    let s = (l.hour * 3600.0).floor() as i64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The alarm list on the left and the status strip at the bottom.
#[allow(clippy::too_many_arguments)]
pub(crate) fn control_room_panels(
    mut contexts: EguiContexts,
    mut room: ResMut<ControlRoom>,
    desk: Option<Res<AlarmDesk>>,
    shown_desk: Option<Res<ShownDesk>>,
    shared: Option<Res<tvilling_twin::shared::sync::SharedBook>>,
    alarms: Option<Res<Alarms>>,
    clock: Option<Res<TwinClock>>,
    diagnostics: Option<Res<SourceDiagnostics>>,
    devices: Query<&Liveness>,
    mut actions: MessageWriter<AlarmAction>,
    mut picks: MessageWriter<EntityPicked>,
    lang: Res<Lang>,
    selection: Res<tvilling_view::picking::Selection>,
    twins: Query<&tvilling_city::model::TwinEntity>,
    detail: Option<Res<tvilling_view::detail::DetailView>>,
) -> Result {
    let lang = *lang;
    let ctx = contexts.ctx_mut()?;
    let now_ms = clock.as_ref().map_or(0, |c| c.now_ms);
    let screen = ctx.content_rect();
    let style = ctx.global_style();
    // The status strip along the bottom, the full width.
    egui::Area::new(egui::Id::new("status-strip"))
        .anchor(egui::Align2::LEFT_BOTTOM, [0.0, 0.0])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            egui::Frame::window(&style)
                .corner_radius(0.0)
                .show(ui, |ui| {
                    ui.set_width(screen.width() - 16.0);
                    ui.horizontal(|ui| {
                        let (mode, colour) = match clock.as_ref().map(|c| c.is_live()) {
                            Some(false) => {
                                (tr(lang, "PLAYBACK"), egui::Color32::from_rgb(240, 160, 30))
                            }
                            _ => (tr(lang, "LIVE"), egui::Color32::from_gray(200)),
                        };
                        ui.label(egui::RichText::new(local_hms(now_ms)).monospace().strong());
                        ui.colored_label(colour, egui::RichText::new(mode).strong());
                        ui.separator();
                        for row in diagnostics.iter().flat_map(|d| d.sources.iter()) {
                            let down = row.down.is_some();
                            let text = match &row.state {
                                Some(s) => format!("{}: {}", row.name, tr_str(lang, s)),
                                None => format!("{}: {}", row.name, tr(lang, "running")),
                            };
                            if down {
                                ui.colored_label(egui::Color32::from_rgb(235, 50, 50), text);
                            } else {
                                ui.weak(text);
                            }
                        }
                        ui.separator();
                        let (mut stale, mut never) = (0, 0);
                        for l in &devices {
                            match l.health {
                                Health::Stale => stale += 1,
                                Health::NeverSeen => never += 1,
                                _ => {}
                            }
                        }
                        ui.label(format!(
                            "{stale} {} · {never} {}",
                            tr(lang, "stale"),
                            tr(lang, "never seen")
                        ));
                        let past = shown_desk.as_ref().and_then(|s| s.0.as_ref());
                        if past
                            .or(desk.as_ref().map(|d| &d.book))
                            .is_some_and(|b| b.flood)
                        {
                            ui.colored_label(
                                egui::Color32::from_rgb(235, 50, 50),
                                egui::RichText::new(tr(lang, "ALARM FLOOD")).strong(),
                            );
                        }
                    });
                });
        });
    // The detail view's title, just above it: what it follows.
    let above = detail
        .as_ref()
        .map_or(0.0, |d| d.height_in(screen.height(), 1.0) + d.bottom_px);
    if let Some(d) = &detail {
        // Its edge, so the two views read as two.
        let rect = egui::Rect::from_min_max(
            egui::pos2(0.0, screen.height() - above),
            egui::pos2(d.width_px, screen.height() - d.bottom_px),
        );
        ctx.layer_painter(egui::LayerId::new(
            egui::Order::Background,
            egui::Id::new("detail-edge"),
        ))
        .rect_stroke(
            rect,
            0.0,
            egui::Stroke::new(2.0, egui::Color32::from_gray(200)),
            egui::StrokeKind::Inside,
        );
    }
    egui::Area::new(egui::Id::new("detail-title"))
        .anchor(egui::Align2::LEFT_BOTTOM, [0.0, -above])
        .order(egui::Order::Foreground)
        .show(ctx, |ui| {
            egui::Frame::window(&style)
                .corner_radius(0.0)
                .show(ui, |ui| {
                    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
                    let followed = selection
                        .entity
                        .and_then(|e| twins.get(e).ok())
                        .map(|t| t.id.clone());
                    match followed {
                        Some(device) => ui.label(format!("{}: {device}", tr(lang, "Detail"))),
                        None => ui.weak(tr(lang, "Detail: select an alarm (N)")),
                    };
                });
        });
    // The alarm list down the left, below the toolbar and above the strip.
    egui::Area::new(egui::Id::new("alarm-list"))
        .anchor(egui::Align2::LEFT_TOP, [0.0, LIST_TOP])
        .show(ctx, |ui| {
            egui::Frame::window(&style)
                .corner_radius(0.0)
                .show(ui, |ui| {
                    ui.set_width(380.0);
                    // Down to the strip, or to the detail view's title under it.
                    let reserved = if above > 0.0 { above + 44.0 } else { 72.0 };
                    let height = (screen.height() - LIST_TOP - reserved).max(100.0);
                    ui.set_min_height(height);
                    ui.set_max_height(height);
                    egui::ScrollArea::vertical()
                        .id_salt("alarm-list")
                        .max_height(height)
                        .show(ui, |ui| {
                    ui.heading(tr(lang, "Alarms"));
                    let Some(desk) = desk.as_deref() else {
                        ui.label(tr(lang, "No live state."));
                        return;
                    };
                    let entity_of = |device: &str| {
                        alarms
                            .as_ref()
                            .and_then(|a| a.active.get(device).map(|x| x.entity))
                    };
                    let mut go_to = None;
                    let mut reason = std::mem::take(&mut room.shelve_reason);
                    crate::city::desk_section(
                        ui,
                        desk,
                        now_ms,
                        lang,
                        &mut reason,
                        &mut actions,
                        entity_of,
                        &mut go_to,
                        room.selected.as_deref(),
                        shown_desk.as_ref().and_then(|s| s.0.as_ref()),
                        shared.as_deref(),
                    );
                    room.shelve_reason = reason;
                    ui.separator();
                    ui.weak(tr(
                        lang,
                        "Keys: N next alarm, P previous (shown in the detail view), A acknowledge, F fly the overview to it.",
                    ));
                    if let Some(e) = go_to {
                        picks.write(EntityPicked(Some(e)));
                    }
                        });
                });
        });
    Ok(())
}

/// N / P move through the alarm list (selecting the alarm's device and flying to it), A
/// acknowledges the alarm the keyboard is on, F flies to it again.
#[allow(clippy::too_many_arguments)]
pub(crate) fn control_room_keys(
    keys: Res<ButtonInput<KeyCode>>,
    mut room: ResMut<ControlRoom>,
    desk: Option<Res<AlarmDesk>>,
    shown_desk: Option<Res<ShownDesk>>,
    alarms: Option<Res<Alarms>>,
    mut actions: MessageWriter<AlarmAction>,
    mut picks: MessageWriter<EntityPicked>,
    mut camera: MessageWriter<CameraCommand>,
    egui_wants: Option<Res<bevy_egui::input::EguiWantsInput>>,
) {
    if egui_wants.is_some_and(|w| w.wants_any_keyboard_input()) {
        return;
    }
    let Some(desk) = desk else { return };
    // In playback, the list as it stood then (an acknowledgement is refused by the desk).
    let book = shown_desk
        .as_ref()
        .and_then(|s| s.0.as_ref())
        .unwrap_or(&desk.book);
    let list: Vec<String> = book.ordered().iter().map(|a| a.key.clone()).collect();
    let at = room
        .selected
        .as_ref()
        .and_then(|k| list.iter().position(|x| x == k));
    let step = |d: isize| -> Option<String> {
        if list.is_empty() {
            return None;
        }
        let n = list.len() as isize;
        let i = at.map_or(if d > 0 { 0 } else { n - 1 }, |i| {
            (i as isize + d).rem_euclid(n)
        });
        list.get(i as usize).cloned()
    };
    // N and P select (the detail view follows; the overview stays), F flies the overview.
    let mut select = false;
    if keys.just_pressed(KeyCode::KeyN) {
        room.selected = step(1);
        select = true;
    }
    if keys.just_pressed(KeyCode::KeyP) {
        room.selected = step(-1);
        select = true;
    }
    let fly = keys.just_pressed(KeyCode::KeyF);
    if keys.just_pressed(KeyCode::KeyA)
        && let Some(k) = &room.selected
    {
        actions.write(AlarmAction::Acknowledge(vec![k.clone()]));
    }
    if (select || fly)
        && let Some(k) = &room.selected
        && let Some(device) = book.alarms.get(k).map(|a| a.device.clone())
        && let Some(e) = alarms.and_then(|a| a.active.get(&device).map(|x| x.entity))
    {
        picks.write(EntityPicked(Some(e)));
        if fly {
            camera.write(CameraCommand::FlyToEntity(e));
        }
    }
}
