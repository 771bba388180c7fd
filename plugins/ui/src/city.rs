//! The city window: tabs for lighting, building energy, air quality, traffic signals, alarms
//! and search. Each tab reads the model through [`crate::summary`]; clicking a row writes a
//! pick and a fly-to, never a model change.

use std::collections::VecDeque;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use egui_plot::{Line, Plot};
use tvilling_city::model::{Building, TwinEntity};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::state::{
    AirQualityState, Device, DeviceInfo, DeviceSlot, LampState, LiveEdge, Liveness, MeterState,
    SignalHeadState,
};
use tvilling_view::camera::CameraCommand;
use tvilling_view::layers::Layers;
use tvilling_view::picking::EntityPicked;

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};
use crate::inspector::display_name as label;
use crate::summary::{energy, intersections, lighting, search};
use tvilling_metrics::alarms::{Alarms, Severity};
use tvilling_metrics::lifecycle::{
    AlarmAction, AlarmBook, AlarmDesk, AlarmState, EEMUA_RATE_PER_HOUR, Priority,
};
use tvilling_metrics::limits::{LIMITS, exceedances};
use tvilling_metrics::metrics::{CityMetrics, ResetMetrics};
use tvilling_sensors::time::format_rfc3339;

/// The tabs of the city window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CityTab {
    #[default]
    Alarms,
    Today,
    Lighting,
    Energy,
    Air,
    Signals,
    Search,
}

impl CityTab {
    pub(crate) const ALL: [CityTab; 7] = [
        CityTab::Alarms,
        CityTab::Today,
        CityTab::Lighting,
        CityTab::Energy,
        CityTab::Air,
        CityTab::Signals,
        CityTab::Search,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            CityTab::Alarms => "Alarms",
            CityTab::Today => "Today",
            CityTab::Lighting => "Lighting",
            CityTab::Energy => "Energy",
            CityTab::Air => "Air quality",
            CityTab::Signals => "Traffic signals",
            CityTab::Search => "Search",
        }
    }
}

/// The city window's own state.
#[derive(Resource, Debug, Default)]
pub struct CityPanel {
    pub tab: CityTab,
    pub query: String,
    pub only_faulty_lamps: bool,
    /// The city's total building power, sampled once a clock second: (Unix ms, kW).
    pub power_history: VecDeque<(i64, f64)>,
    /// The controller whose phase timeline is shown.
    pub controller: Option<String>,
    /// The reason typed for shelving an alarm.
    pub shelve_reason: String,
}

/// Samples kept of the city total.
pub const POWER_HISTORY: usize = 600;

fn attr<'a>(info: Option<&'a DeviceInfo>, key: &str) -> Option<&'a str> {
    info?
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

type Row<'a> = (
    Entity,
    &'a TwinEntity,
    Option<&'a Building>,
    Option<&'a Device>,
    Option<&'a Liveness>,
    Option<&'a DeviceInfo>,
);

type StateRow<'a> = (
    Option<&'a LampState>,
    Option<&'a MeterState>,
    Option<&'a AirQualityState>,
    Option<&'a SignalHeadState>,
    Option<&'a DeviceSlot>,
);

/// Samples the city's total building power for the energy chart.
pub(crate) fn sample_power(
    clock: Option<Res<TwinClock>>,
    meters: Query<&MeterState>,
    mut panel: ResMut<CityPanel>,
) {
    let Some(clock) = clock else { return };
    let last = panel.power_history.back().map(|p| p.0);
    if last.is_some_and(|t| clock.now_ms - t < 1000) {
        return;
    }
    let total: f64 = meters.iter().map(|m| m.power_kw).sum();
    if panel.power_history.len() == POWER_HISTORY {
        panel.power_history.pop_front();
    }
    panel.power_history.push_back((clock.now_ms, total));
}

pub(crate) fn city_window(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    mut panel: ResMut<CityPanel>,
    rows: Query<Row<'static>>,
    states: Query<StateRow<'static>>,
    clock: Option<Res<TwinClock>>,
    model: (
        Option<Res<Alarms>>,
        Option<Res<CityMetrics>>,
        Option<Res<tvilling_twin::history::ShownMetrics>>,
        Option<Res<LiveEdge>>,
        Option<Res<AlarmDesk>>,
        MessageWriter<AlarmAction>,
        Option<Res<tvilling_twin::history::ShownDesk>>,
    ),
    shared: Option<Res<tvilling_twin::shared::sync::SharedBook>>,
    mut resets: MessageWriter<ResetMetrics>,
    mut layers: ResMut<Layers>,
    mut picks: MessageWriter<EntityPicked>,
    mut camera: MessageWriter<CameraCommand>,
    lang: Res<Lang>,
) -> Result {
    let lang = *lang;
    let now_ms = clock.map_or(0, |c| c.now_ms);
    let (alarms, live_metrics, shown_metrics, edge, desk, mut actions, shown_desk) = model;
    // In playback, the metrics of the moment shown; live, the edge's.
    let metrics: Option<CityMetrics> = shown_metrics
        .and_then(|s| s.0.clone())
        .or_else(|| live_metrics.map(|m| m.clone()));
    let hhmm = |t: i64| {
        let l = tvilling_sensors::simulate::stockholm_local(t);
        format!(
            "{} {:02}:{:02}",
            &format_rfc3339(t)[..10],
            l.hour as u32,
            (l.hour.fract() * 60.0) as u32
        )
    };
    let ctx = contexts.ctx_mut()?;
    let mut open = panels.city_open;
    let mut go_to: Option<Entity> = None;
    // An alarm's device clicked in the desk's list.
    let mut desk_pick: Option<Entity> = None;
    egui::Window::new(tr(lang, "City"))
        .id(egui::Id::new("city"))
        .open(&mut open)
        .default_width(380.0)
        .default_pos([360.0, 8.0])
        .show(ctx, |ui| {
            ui.horizontal_wrapped(|ui| {
                for t in CityTab::ALL {
                    if ui
                        .selectable_label(panel.tab == t, tr(lang, t.name()))
                        .clicked()
                    {
                        panel.tab = t;
                    }
                }
            });
            ui.separator();
            let mut link = |ui: &mut egui::Ui, e: Entity, text: String| {
                if ui.link(text).clicked() {
                    go_to = Some(e);
                }
            };
            match panel.tab {
                CityTab::Alarms => {
                    let Some(alarms) = alarms.as_deref() else {
                        ui.label(tr(lang, "No live state."));
                        return;
                    };
                    if let Some(desk) = desk.as_deref() {
                        let mut shelve_reason = std::mem::take(&mut panel.shelve_reason);
                        desk_section(
                            ui,
                            desk,
                            now_ms,
                            lang,
                            &mut shelve_reason,
                            &mut actions,
                            |device| alarms.active.get(device).map(|a| a.entity),
                            &mut desk_pick,
                            None,
                            shown_desk.as_ref().and_then(|s| s.0.as_ref()),
                            shared.as_deref(),
                        );
                        panel.shelve_reason = shelve_reason;
                        ui.separator();
                    }
                    let active = alarms.ordered();
                    ui.label(format!(
                        "{} {} · {} {}",
                        active.len(),
                        tr(lang, "alarms"),
                        alarms.raised_total,
                        tr(lang, "raised in all")
                    ));
                    egui::ScrollArea::vertical()
                        .id_salt("active")
                        .max_height(240.0)
                        .show(ui, |ui| {
                            for a in active.iter().take(200) {
                                // Wrapped, so the window keeps its width.
                                ui.horizontal_wrapped(|ui| {
                                    let (colour, kind) = severity_style(a.cause.severity);
                                    ui.colored_label(colour, tr(lang, kind));
                                    let name = rows
                                        .get(a.entity)
                                        .map(|(_, twin, b, _, _, info)| label(twin, b, info))
                                        .unwrap_or_else(|_| a.device.clone());
                                    link(ui, a.entity, name);
                                    ui.label(tr_str(lang, &a.text));
                                    ui.weak(format!(
                                        "{} {}",
                                        tr(lang, "since"),
                                        &hhmm(a.raised_ms)[11..]
                                    ));
                                });
                            }
                        });
                    egui::CollapsingHeader::new(tr(lang, "Alarm log"))
                        .id_salt("alarm-log")
                        .show(ui, |ui| {
                            egui::ScrollArea::vertical()
                                .id_salt("log")
                                .max_height(160.0)
                                .show(ui, |ui| {
                                    for c in alarms.log.iter().rev().take(100) {
                                        ui.horizontal_wrapped(|ui| {
                                            ui.weak(hhmm(c.at_ms));
                                            ui.label(tr(
                                                lang,
                                                if c.raised { "raised" } else { "cleared" },
                                            ));
                                            ui.label(&c.device);
                                            ui.label(tr_str(lang, &c.text));
                                        });
                                    }
                                });
                        });
                }
                CityTab::Today => {
                    let Some(m) = metrics.as_ref() else {
                        ui.label(tr(lang, "No live state."));
                        return;
                    };
                    ui.label(format!(
                        "{} {} – {}",
                        tr(lang, "Since"),
                        hhmm(m.since_ms),
                        hhmm(m.at_ms)
                    ));
                    let mut rows: Vec<(String, String)> = vec![
                        (
                            tr(lang, "Street lighting").into(),
                            format!("{:.1} kWh", m.lighting_kwh),
                        ),
                        (
                            tr(lang, "Lamp-hours lit").into(),
                            format!("{:.0} h", m.lamp_hours_lit),
                        ),
                        (
                            tr(lang, "Lamp-hours dark at night").into(),
                            format!("{:.1} h", m.lamp_hours_dark_at_night),
                        ),
                        (
                            tr(lang, "Buildings, electricity").into(),
                            format!("{:.0} kWh", m.building_kwh),
                        ),
                        (
                            tr(lang, "Buildings, heating").into(),
                            format!("{:.0} kWh", m.heating_kwh),
                        ),
                    ];
                    for l in LIMITS {
                        let h = m.hours_over_limit.get(&l.pollutant).copied().unwrap_or(0.0);
                        rows.push((
                            format!("{} > {:.0} µg/m³", l.pollutant.as_str(), l.ugm3),
                            format!("{h:.1} {}", tr(lang, "sensor-hours")),
                        ));
                    }
                    rows.push((
                        tr(lang, "Signals, green share").into(),
                        m.green_share()
                            .map_or("-".into(), |g| format!("{:.0} %", g * 100.0)),
                    ));
                    rows.push((
                        tr(lang, "Alarms raised").into(),
                        m.alarms_raised.to_string(),
                    ));
                    egui::Grid::new("today").striped(true).show(ui, |ui| {
                        for (k, v) in rows {
                            ui.label(k);
                            ui.label(v);
                            ui.end_row();
                        }
                    });
                    if ui.button(tr(lang, "Reset")).clicked() {
                        resets.write(ResetMetrics);
                    }
                }
                CityTab::Lighting => {
                    let lamps: Vec<(Entity, &LampState, &Liveness)> = rows
                        .iter()
                        .filter_map(|(e, _, _, _, live, _)| {
                            let lamp = states.get(e).ok()?.0?;
                            Some((e, lamp, live?))
                        })
                        .collect();
                    let s = lighting(lamps.iter().map(|(_, l, live)| (*l, *live)));
                    egui::Grid::new("lighting").show(ui, |ui| {
                        for (k, v) in [
                            ("on", s.on),
                            ("off", s.off),
                            ("dimmed", s.dimmed),
                            ("fault", s.faulty),
                            ("stale", s.stale),
                            ("never seen", s.never_seen),
                        ] {
                            ui.label(tr(lang, k));
                            ui.label(v.to_string());
                            ui.end_row();
                        }
                        ui.label(tr(lang, "Power now"));
                        ui.label(format!("{:.1} kW", s.power_w / 1000.0));
                        ui.end_row();
                    });
                    ui.checkbox(&mut panel.only_faulty_lamps, tr(lang, "Only faulty lamps"));
                    if panel.only_faulty_lamps {
                        for (e, _, live) in lamps
                            .iter()
                            .filter(|(_, _, l)| l.health == tvilling_sensors::state::Health::Fault)
                        {
                            let name = rows
                                .get(*e)
                                .map(|(_, twin, b, _, _, info)| label(twin, b, info))
                                .unwrap_or_default();
                            ui.horizontal(|ui| {
                                link(ui, *e, name);
                                ui.label(live.fault.clone().unwrap_or_default());
                            });
                        }
                    }
                }
                CityTab::Energy => {
                    let (total, top) = energy(
                        rows.iter().filter_map(|(e, twin, b, _, _, info)| {
                            let m = states.get(e).ok()?.1?;
                            Some((e, label(twin, b, info), m.power_kw))
                        }),
                        10,
                    );
                    ui.label(format!("{}: {total:.0} kW", tr(lang, "Total power now")));
                    let pts: Vec<[f64; 2]> = panel
                        .power_history
                        .iter()
                        .map(|(t, kw)| [(t - now_ms) as f64 / 60_000.0, *kw])
                        .collect();
                    Plot::new("city-power")
                        .height(110.0)
                        .x_axis_label(tr(lang, "minutes ago"))
                        .allow_scroll(false)
                        .show(ui, |p| p.line(Line::new("kW", pts)));
                    ui.label(egui::RichText::new(tr(lang, "Top consumers")).strong());
                    for (e, name, kw) in top {
                        ui.horizontal(|ui| {
                            link(ui, e, name);
                            ui.label(format!("{kw:.1} kW"));
                        });
                    }
                }
                CityTab::Air => {
                    ui.label(format!(
                        "{} (SFS 2010:477): {}",
                        tr(lang, "Swedish limit values"),
                        LIMITS
                            .iter()
                            .map(|l| format!(
                                "{} {:.0} µg/m³ {}",
                                l.pollutant.as_str(),
                                l.ugm3,
                                tr(lang, l.averaging)
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    egui::Grid::new("air").striped(true).show(ui, |ui| {
                        for h in ["Sensor", "NO2", "PM10", "PM2.5"] {
                            ui.label(egui::RichText::new(tr(lang, h)).strong());
                        }
                        ui.end_row();
                        for (e, twin, b, _, _, info) in &rows {
                            let Some(a) = states.get(e).ok().and_then(|s| s.2) else {
                                continue;
                            };
                            link(ui, e, label(twin, b, info));
                            let over = exceedances(a);
                            for l in LIMITS {
                                let text = l
                                    .pollutant
                                    .reading(a)
                                    .map_or("-".into(), |v| format!("{v:.1}"));
                                if over.iter().any(|(o, _)| o.pollutant == l.pollutant) {
                                    ui.colored_label(egui::Color32::from_rgb(240, 120, 40), text);
                                } else {
                                    ui.label(text);
                                }
                            }
                            ui.end_row();
                        }
                    });
                }
                CityTab::Signals => {
                    let list = intersections(
                        rows.iter().filter_map(|(e, _, _, _, _, info)| {
                            let s = states.get(e).ok()?.3?;
                            Some((
                                e,
                                attr(info, "controller")
                                    .unwrap_or(tr(lang, "(own)"))
                                    .to_string(),
                                s.aspect,
                                s.since_ms,
                                attr(info, "cycle_s").and_then(|c| c.parse().ok()),
                            ))
                        }),
                        now_ms,
                    );
                    ui.label(format!("{} {}", list.len(), tr(lang, "intersections")));
                    egui::ScrollArea::vertical()
                        .max_height(180.0)
                        .show(ui, |ui| {
                            for i in &list {
                                ui.horizontal(|ui| {
                                    if ui
                                        .selectable_label(
                                            panel.controller.as_deref() == Some(&i.controller),
                                            &i.controller,
                                        )
                                        .clicked()
                                    {
                                        panel.controller = Some(i.controller.clone());
                                        go_to = i.head;
                                    }
                                    let aspects: Vec<String> = i
                                        .aspects
                                        .iter()
                                        .map(|(a, n)| format!("{n} {}", tr_str(lang, a)))
                                        .collect();
                                    // Measured today (the metrics): green share and mean cycle.
                                    let measured =
                                        metrics.as_ref().and_then(|m| m.signals.get(&i.controller));
                                    ui.label(format!(
                                        "{} · {} s · {} · {} {} · {} {}",
                                        aspects.join(", "),
                                        i.longest_in_state_s.round(),
                                        i.cycle_s.map_or("-".into(), |c| format!("{c} s")),
                                        tr(lang, "green"),
                                        measured
                                            .and_then(|m| m.green_share())
                                            .map_or("-".into(), |g| format!("{:.0} %", g * 100.0)),
                                        tr(lang, "cycle"),
                                        measured
                                            .and_then(|m| m.cycle_s())
                                            .map_or("-".into(), |c| format!("{c:.0} s")),
                                    ));
                                });
                            }
                        });
                    // Phase timeline of the chosen intersection: each head's aspect code
                    // (0 red, 1 red-amber, 2 green, 3 amber) over the last minutes.
                    if let Some(ctrl) = panel.controller.clone() {
                        ui.label(format!("{}: {ctrl}", tr(lang, "Phase timeline")));
                        let heads: Vec<(String, Vec<[f64; 2]>)> = rows
                            .iter()
                            .filter(|(_, _, _, _, _, info)| {
                                attr(*info, "controller") == Some(&ctrl)
                            })
                            .filter_map(|(e, twin, _, _, _, _)| {
                                let slot = states.get(e).ok()?.4?;
                                let pts = (edge.as_deref()?)
                                    .series(slot.0, Quantity::SignalAspect)
                                    .map(|(t, v)| [(t - now_ms) as f64 / 60_000.0, v])
                                    .collect();
                                Some((twin.id.clone(), pts))
                            })
                            .collect();
                        Plot::new(("phases", ctrl.as_str()))
                            .height(120.0)
                            .x_axis_label(tr(lang, "minutes ago"))
                            .allow_scroll(false)
                            .show(ui, |p| {
                                for (id, pts) in heads {
                                    p.line(Line::new(id, pts));
                                }
                            });
                    }
                }
                CityTab::Search => {
                    ui.text_edit_singleline(&mut panel.query);
                    let items: Vec<(Entity, String, String)> = rows
                        .iter()
                        .map(|(e, twin, b, d, _, info)| {
                            let mut words = label(twin, b, info);
                            if let Some(a) = b.and_then(|b| b.address.clone()) {
                                words.push(' ');
                                words.push_str(&a);
                            }
                            if let Some(d) = d {
                                words.push(' ');
                                words.push_str(&d.id);
                            }
                            (e, twin.id.clone(), words)
                        })
                        .collect();
                    let hits = search(
                        &panel.query,
                        items.iter().map(|(e, id, w)| (*e, id.as_str(), w.as_str())),
                        30,
                    );
                    for (e, id, text) in hits {
                        ui.horizontal(|ui| {
                            link(ui, e, text);
                            ui.label(egui::RichText::new(id).weak());
                        });
                    }
                }
            }
        });
    if let Some(e) = go_to.or(desk_pick) {
        picks.write(EntityPicked(Some(e)));
        camera.write(CameraCommand::FlyToEntity(e));
        // A lamp picked from the faulty list should be visible.
        if !layers.lamps && panel.only_faulty_lamps {
            layers.lamps = true;
        }
    }
    panels.city_open = open;
    Ok(())
}

/// The colour and word of a severity.
/// The colour of an alarm priority.
pub fn priority_colour(p: Priority) -> egui::Color32 {
    match p {
        Priority::High => egui::Color32::from_rgb(235, 50, 50),
        Priority::Medium => egui::Color32::from_rgb(240, 160, 30),
        Priority::Low => egui::Color32::from_rgb(120, 170, 230),
    }
}

/// Where this desk's alarm book is shared, who records it, and, while the store cannot be
/// reached, since when and how many changes wait here to be written.
fn shared_status(ui: &mut egui::Ui, s: &tvilling_twin::shared::sync::SharedBook, lang: Lang) {
    if let Some(since) = s.down_since_ms {
        let local = tvilling_sensors::simulate::stockholm_local(since);
        let (h, m) = (local.hour as u32, ((local.hour * 60.0) as u32) % 60);
        ui.colored_label(
            egui::Color32::from_rgb(235, 50, 50),
            egui::RichText::new(format!(
                "{} {h:02}:{m:02}; {}: {}",
                tr(lang, "Alarm store unreachable since"),
                tr(lang, "changes kept here, written when it returns"),
                s.waiting
            ))
            .strong(),
        );
        ui.weak(&s.down_reason);
        return;
    }
    let who = if s.recording {
        tr(lang, "this twin records the alarms")
    } else {
        tr(lang, "another twin records the alarms")
    };
    ui.label(format!(
        "{} {} · {} {} · {who}",
        tr(lang, "Shared alarm book"),
        s.url,
        tr(lang, "station"),
        s.station
    ));
}

/// The operator's alarm list: flood banner, the rate against EEMUA 191, each annunciated alarm
/// (priority, state, chatter) with acknowledge and shelve, and refusals with their reasons.
#[allow(clippy::too_many_arguments)]
pub(crate) fn desk_section(
    ui: &mut egui::Ui,
    desk: &AlarmDesk,
    now_ms: i64,
    lang: Lang,
    reason: &mut String,
    actions: &mut MessageWriter<AlarmAction>,
    entity_of: impl Fn(&str) -> Option<Entity>,
    go_to: &mut Option<Entity>,
    selected: Option<&str>,
    past: Option<&AlarmBook>,
    shared: Option<&tvilling_twin::shared::sync::SharedBook>,
) {
    // In playback, the desk as it stood then (from the audit log): read, not acted on.
    let book = past.unwrap_or(&desk.book);
    let acting = past.is_none();
    if let Some(s) = shared {
        shared_status(ui, s, lang);
    }
    if !acting {
        ui.colored_label(
            egui::Color32::from_rgb(240, 160, 30),
            tr(
                lang,
                "Playback: the alarm list as it stood then. Go live to act on alarms.",
            ),
        );
    }
    if book.flood {
        ui.colored_label(
            egui::Color32::from_rgb(235, 50, 50),
            egui::RichText::new(tr(lang, "ALARM FLOOD: more than 10 alarms in 10 minutes"))
                .strong(),
        );
    }
    let rate = book.rate_per_hour(now_ms);
    ui.label(format!(
        "{} {rate:.0} {} ({} {EEMUA_RATE_PER_HOUR:.0}) · {} {}",
        tr(lang, "Alarm rate"),
        tr(lang, "an hour"),
        tr(lang, "EEMUA 191 benchmark"),
        tr(lang, "operator"),
        desk.operator
    ));
    let list = book.ordered();
    let unacked: Vec<String> = list
        .iter()
        .filter(|a| a.state.needs_acknowledgement())
        .map(|a| a.key.clone())
        .collect();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                acting && !unacked.is_empty(),
                egui::Button::new(tr(lang, "Acknowledge all")),
            )
            .clicked()
        {
            actions.write(AlarmAction::Acknowledge(unacked.clone()));
        }
        ui.label(tr(lang, "Shelving reason"));
        ui.text_edit_singleline(reason);
    });
    egui::ScrollArea::vertical()
        .id_salt("desk")
        .max_height(260.0)
        .show(ui, |ui| {
            for a in list.iter().take(200) {
                ui.horizontal_wrapped(|ui| {
                    if selected == Some(a.key.as_str()) {
                        ui.label(egui::RichText::new("▶").strong());
                    }
                    ui.colored_label(priority_colour(a.priority), tr(lang, a.priority.as_str()));
                    let state = tr(lang, a.state.as_str());
                    if a.state.needs_acknowledgement() {
                        ui.label(egui::RichText::new(state).strong());
                    } else {
                        ui.weak(state);
                    }
                    if a.chattering {
                        ui.colored_label(
                            egui::Color32::from_rgb(240, 160, 30),
                            tr(lang, "chattering"),
                        );
                    }
                    match entity_of(&a.device) {
                        Some(e) => {
                            if ui.link(&a.device).clicked() {
                                *go_to = Some(e);
                            }
                        }
                        None => {
                            ui.label(&a.device);
                        }
                    }
                    ui.label(tr_str(lang, &a.text));
                    if a.state.needs_acknowledgement()
                        && ui
                            .add_enabled(acting, egui::Button::new(tr(lang, "Acknowledge")).small())
                            .clicked()
                    {
                        actions.write(AlarmAction::Acknowledge(vec![a.key.clone()]));
                    }
                    match &a.state {
                        AlarmState::Shelved { reason: why, .. } => {
                            ui.weak(why);
                            if ui
                                .add_enabled(
                                    acting,
                                    egui::Button::new(tr(lang, "Unshelve")).small(),
                                )
                                .clicked()
                            {
                                actions.write(AlarmAction::Unshelve(a.key.clone()));
                            }
                        }
                        _ => {
                            if ui
                                .add_enabled(
                                    acting && !reason.trim().is_empty(),
                                    egui::Button::new(tr(lang, "Shelve 1 h")).small(),
                                )
                                .clicked()
                            {
                                actions.write(AlarmAction::Shelve {
                                    key: a.key.clone(),
                                    reason: reason.clone(),
                                    until_ms: now_ms + 3_600_000,
                                });
                            }
                        }
                    }
                });
            }
        });
    for why in desk.refused.iter().rev().take(3) {
        ui.colored_label(egui::Color32::from_rgb(235, 50, 50), tr_str(lang, why));
    }
}

fn severity_style(s: Severity) -> (egui::Color32, &'static str) {
    match s {
        Severity::Fault => (egui::Color32::from_rgb(230, 60, 200), "fault"),
        Severity::Exceedance => (egui::Color32::from_rgb(240, 120, 40), "limit"),
        Severity::Stale => (egui::Color32::from_rgb(120, 140, 200), "stale"),
    }
}
