//! The inspector: click anything (a building, signal head, lamp, meter or air sensor) to see
//! its attributes, live values with units, last seen, source and health, and a chart of its
//! recent history.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use egui_plot::{Legend, Line, Plot};
use tvilling_city::model::{Building, StreetLamp, TrafficSignal, TwinEntity};
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::health::HealthRules;
use tvilling_sensors::registry::Quantity;
use tvilling_sensors::state::{
    AirQualityState, Device, DeviceInfo, DeviceSlot, LampState, LiveEdge, Liveness, MeterState,
    Sample, SignalHeadState,
};
use tvilling_sensors::time::format_rfc3339;
use tvilling_twin::history::{HistoryStatus, RecordedSeries, SeriesRequest};
use tvilling_twin::sumo::{Intersection, Vehicle};
use tvilling_view::camera::CameraCommand;
use tvilling_view::picking::{EntityPicked, Selection};

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};
use crate::panels::building_rows;

/// The live state components an entity may carry.
#[derive(Default, Clone, Copy)]
pub struct LiveState<'a> {
    pub signal: Option<&'a SignalHeadState>,
    pub lamp: Option<&'a LampState>,
    pub meter: Option<&'a MeterState>,
    pub air: Option<&'a AirQualityState>,
}

/// What an entity is called in the panels: a building's name or address, a device's name,
/// else its id.
pub fn display_name(twin: &TwinEntity, b: Option<&Building>, info: Option<&DeviceInfo>) -> String {
    b.and_then(|b| b.name.clone().or_else(|| b.address.clone()))
        .or_else(|| info.map(|i| i.name.clone()))
        .unwrap_or_else(|| twin.id.clone())
}

fn value(v: f64, q: Quantity) -> String {
    let unit = q.unit();
    if unit.is_empty() {
        format!("{v:.1}")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn opt(v: Option<f64>, q: Quantity) -> String {
    v.map_or("-".into(), |v| value(v, q))
}

/// Rows for a SUMO vehicle: its source, speed, waiting time, type, route and lane.
pub fn vehicle_rows(v: &Vehicle) -> Vec<(&'static str, String)> {
    vec![
        ("Source", "sumo".to_string()),
        ("Speed", format!("{:.0} km/h", v.speed * 3.6)),
        ("Waiting", format!("{:.0} s", v.waiting_s)),
        ("Vehicle type", v.vtype.clone()),
        ("Route", v.route.clone()),
        ("Lane", v.lane.clone()),
    ]
}

/// The colour a SUMO signal letter shows.
fn letter_colour(c: char) -> egui::Color32 {
    match c {
        'G' | 'g' | 's' => egui::Color32::from_rgb(60, 200, 80),
        'y' | 'Y' | 'u' | 'o' => egui::Color32::from_rgb(240, 190, 40),
        'r' => egui::Color32::from_rgb(220, 50, 40),
        _ => egui::Color32::from_gray(90),
    }
}

/// An intersection's approaches (vehicles, queued, the queued vehicles' mean wait) and the
/// timeline of its lights' changes, newest first, each link a coloured square.
fn intersection_details(ui: &mut egui::Ui, x: &Intersection, lang: Lang) {
    ui.separator();
    ui.label(egui::RichText::new(tr(lang, "Approaches")).strong());
    egui::Grid::new("approaches").striped(true).show(ui, |ui| {
        for h in ["edge", "vehicles", "queued", "mean wait"] {
            ui.label(egui::RichText::new(tr(lang, h)).strong());
        }
        ui.end_row();
        for a in &x.approaches {
            ui.label(&a.edge);
            ui.label(a.vehicles.to_string());
            ui.label(a.queue.to_string());
            ui.label(format!("{:.0} s", a.mean_wait_s));
            ui.end_row();
        }
    });
    ui.separator();
    ui.label(egui::RichText::new(tr(lang, "Phase timeline")).strong());
    for (t, light, state) in x.phases.iter().rev().take(12) {
        ui.horizontal(|ui| {
            // Stockholm local time, to the second.
            let l = tvilling_sensors::simulate::stockholm_local(*t);
            let sec = (l.hour * 3600.0).round() as i64;
            let hms = format!("{:02}:{:02}:{:02}", sec / 3600, sec / 60 % 60, sec % 60);
            ui.label(egui::RichText::new(hms).monospace());
            let mut job = egui::text::LayoutJob::default();
            for c in state.chars() {
                job.append(
                    "■",
                    0.0,
                    egui::TextFormat {
                        color: letter_colour(c),
                        ..Default::default()
                    },
                );
            }
            ui.label(job).on_hover_text(format!("{light}: {state}"));
        });
    }
}

/// Rows for a device: id, health, last seen, source, fault, and its live values with units.
pub fn device_rows(
    device: &Device,
    live: &Liveness,
    state: LiveState<'_>,
    now_ms: i64,
    rules: Option<&HealthRules>,
) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Device", device.id.clone()),
        ("Health", live.health.as_str().to_string()),
        (
            "Last seen",
            live.last_seen_ms.map_or("never".into(), |t| {
                format!(
                    "{} ({} s ago)",
                    format_rfc3339(t),
                    (now_ms - t).max(0) / 1000
                )
            }),
        ),
    ];
    // Its age against what is expected of its kind: a value to trust, or not.
    if let (Some(t), Some(r)) = (live.last_seen_ms, rules) {
        let every = r.interval_ms(device.kind);
        let limit = (every as f64 * r.stale_factor) as i64;
        rows.push((
            "Age",
            format!(
                "{} s of {} s (reports every {} s)",
                (now_ms - t).max(0) / 1000,
                limit / 1000,
                every / 1000
            ),
        ));
    }
    if let Some(s) = &live.source {
        rows.push(("Reported via", s.clone()));
    }
    if let (Some(s), Some(why)) = (&live.source, &live.source_down) {
        rows.push(("Source down", format!("{s}: {why}")));
    }
    if let Some(reason) = &live.fault {
        rows.push(("Fault", reason.clone()));
    }
    if !live.unmapped_fields.is_empty() {
        // What the device sends that no rule maps: the rule to add is in plain sight.
        rows.push(("Reports, not mapped", live.unmapped_fields.join(", ")));
    }
    if live.unmapped_messages > 0 {
        rows.push((
            "Messages with no known field",
            live.unmapped_messages.to_string(),
        ));
    }
    if let Some(s) = state.signal {
        rows.push(("Aspect", format!("{:?}", s.aspect)));
        rows.push((
            "Time in state",
            format!("{:.0} s", (now_ms - s.since_ms).max(0) as f64 / 1000.0),
        ));
    }
    if let Some(l) = state.lamp {
        rows.push(("On", if l.on { "yes" } else { "no" }.into()));
        rows.push(("Dim level", value(l.dim_pct, Quantity::LampDimPct)));
        rows.push(("Lamp power", value(l.power_w, Quantity::LampPowerW)));
        rows.push(("Lamp fault", if l.fault { "yes" } else { "no" }.into()));
    }
    if let Some(m) = state.meter {
        rows.push(("Power", value(m.power_kw, Quantity::PowerKw)));
        rows.push((
            "Energy today",
            value(m.energy_today_kwh, Quantity::EnergyTodayKwh),
        ));
        rows.push(("Heating", opt(m.heating_kw, Quantity::HeatingKw)));
    }
    if let Some(a) = state.air {
        rows.push(("NO2", opt(a.no2, Quantity::No2)));
        rows.push(("PM10", opt(a.pm10, Quantity::Pm10)));
        rows.push(("PM2.5", opt(a.pm25, Quantity::Pm25)));
        rows.push(("Temperature", opt(a.temperature_c, Quantity::TemperatureC)));
    }
    rows
}

/// The quantities of a device's recent samples (oldest first), each as (minutes before
/// `now_ms`, value) points; signal aspects as their codes.
pub fn history_series(
    samples: impl IntoIterator<Item = Sample>,
    now_ms: i64,
) -> Vec<(Quantity, Vec<[f64; 2]>)> {
    let mut out: Vec<(Quantity, Vec<[f64; 2]>)> = Vec::new();
    for (t, q, v) in samples {
        let p = [(t - now_ms) as f64 / 60_000.0, v];
        match out.iter_mut().find(|(k, _)| *k == q) {
            Some((_, pts)) => pts.push(p),
            None => out.push((q, vec![p])),
        }
    }
    out
}

/// A quantity's name in the chart legend (English; shown through `tr`).
pub fn quantity_name(q: Quantity) -> &'static str {
    match q {
        Quantity::SignalAspect => "aspect (0 red, 1 red-amber, 2 green, 3 amber)",
        Quantity::LampOn => "on",
        Quantity::LampDimPct => "dim %",
        Quantity::LampPowerW => "power W",
        Quantity::LampFault => "fault",
        Quantity::PowerKw => "power kW",
        Quantity::EnergyTodayKwh => "energy today kWh",
        Quantity::HeatingKw => "heating kW",
        Quantity::No2 => "NO2 µg/m³",
        Quantity::Pm10 => "PM10 µg/m³",
        Quantity::Pm25 => "PM2.5 µg/m³",
        Quantity::TemperatureC => "temperature °C",
    }
}

pub(crate) type Inspected<'a> = (
    &'a TwinEntity,
    Option<&'a Building>,
    Option<&'a Device>,
    Option<&'a Liveness>,
    Option<&'a DeviceInfo>,
    Option<&'a DeviceSlot>,
    Option<&'a TrafficSignal>,
    Option<&'a StreetLamp>,
);

/// A device's rows, if the entity is one (its states as queried by [`States`]).
pub(crate) fn rows_of_device(
    device: Option<&Device>,
    live: Option<&Liveness>,
    (signal, lamp, meter, air): States<'_>,
    now_ms: i64,
    rules: Option<&HealthRules>,
) -> Vec<(&'static str, String)> {
    match (device, live) {
        (Some(d), Some(l)) => device_rows(
            d,
            l,
            LiveState {
                signal,
                lamp,
                meter,
                air,
            },
            now_ms,
            rules,
        ),
        _ => Vec::new(),
    }
}

pub(crate) type States<'a> = (
    Option<&'a SignalHeadState>,
    Option<&'a LampState>,
    Option<&'a MeterState>,
    Option<&'a AirQualityState>,
);

/// What the inspector's chart spans: the live edge's recent samples (kept in memory), or the
/// last hour, day or week read from the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChartSpan {
    #[default]
    Recent,
    Hour,
    Day,
    Week,
}

impl ChartSpan {
    pub const ALL: [ChartSpan; 4] = [
        ChartSpan::Recent,
        ChartSpan::Hour,
        ChartSpan::Day,
        ChartSpan::Week,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChartSpan::Recent => "Recent",
            ChartSpan::Hour => "Last hour",
            ChartSpan::Day => "Last day",
            ChartSpan::Week => "Last week",
        }
    }

    /// The span, ms, and the x axis's unit (ms) and label.
    pub fn extent(self) -> Option<(i64, f64, &'static str)> {
        match self {
            ChartSpan::Recent => None,
            ChartSpan::Hour => Some((3_600_000, 60_000.0, "minutes ago")),
            ChartSpan::Day => Some((86_400_000, 3_600_000.0, "hours ago")),
            ChartSpan::Week => Some((7 * 86_400_000, 86_400_000.0, "days ago")),
        }
    }
}

/// The chart's span and the last series asked for.
#[derive(Debug, Default)]
pub struct ChartState {
    pub span: ChartSpan,
    asked: Option<(String, ChartSpan, i64)>,
}

/// A recorded series as chart lines: (quantity, points at `unit` ms before `now_ms`).
pub fn recorded_lines(
    points: &[(i64, u8, f64)],
    now_ms: i64,
    unit_ms: f64,
) -> Vec<(Quantity, Vec<[f64; 2]>)> {
    let mut out: Vec<(Quantity, Vec<[f64; 2]>)> = Vec::new();
    for &(t, q, v) in points {
        let Some(q) = Quantity::from_index(q) else {
            continue;
        };
        let p = [(t - now_ms) as f64 / unit_ms, v];
        match out.iter_mut().find(|(k, _)| *k == q) {
            Some((_, pts)) => pts.push(p),
            None => out.push((q, vec![p])),
        }
    }
    out
}

pub(crate) fn inspector(
    mut contexts: EguiContexts,
    selection: Res<Selection>,
    entities: Query<Inspected<'static>>,
    states: Query<States<'static>>,
    clock: Option<Res<TwinClock>>,
    mut panels: ResMut<PanelState>,
    mut camera: MessageWriter<CameraCommand>,
    mut picks: MessageWriter<EntityPicked>,
    recorded: (
        Option<Res<HistoryStatus>>,
        Option<Res<RecordedSeries>>,
        MessageWriter<SeriesRequest>,
        Option<Res<LiveEdge>>,
    ),
    mut chart: Local<ChartState>,
    lang: Res<Lang>,
    traffic: Query<(Option<&Vehicle>, Option<&Intersection>)>,
    rules: Option<Res<HealthRules>>,
) -> Result {
    let lang = *lang;
    let (history_status, recorded, mut series_requests, edge) = recorded;
    let Some(e) = selection.entity else {
        return Ok(());
    };
    let Ok((twin, building, device, live, info, slot, signal_point, lamp_point)) = entities.get(e)
    else {
        return Ok(());
    };
    let now_ms = clock.map_or(0, |c| c.now_ms);
    let (signal, lamp, meter, air) = states.get(e).unwrap_or_default();
    let ctx = contexts.ctx_mut()?;
    let title = display_name(twin, building, info);
    let mut rows: Vec<(&'static str, String)> = match building {
        Some(b) => building_rows(twin, b),
        None => vec![("Id", twin.id.clone()), ("Kind", twin.kind.as_str().into())],
    };
    let (vehicle, intersection) = traffic.get(e).unwrap_or_default();
    if let Some(v) = vehicle {
        rows.extend(vehicle_rows(v));
    }
    if let Some(x) = intersection {
        rows.extend([
            ("Source", "sumo".to_string()),
            ("Queued vehicles", x.queue().to_string()),
            ("SUMO lights", x.lights.join(", ")),
        ]);
    }
    rows.extend(rows_of_device(
        device,
        live,
        (signal, lamp, meter, air),
        now_ms,
        rules.as_deref(),
    ));
    let attributes: Vec<(String, String)> = building
        .map(|b| b.attributes.clone())
        .or_else(|| signal_point.map(|s| s.attributes.clone()))
        .or_else(|| lamp_point.map(|s| s.attributes.clone()))
        .unwrap_or_default()
        .into_iter()
        .chain(info.map(|i| i.attributes.clone()).unwrap_or_default())
        .collect();
    egui::Window::new(title)
        .id(egui::Id::new("inspector"))
        .anchor(egui::Align2::RIGHT_TOP, [-8.0, 8.0])
        .default_width(320.0)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("inspected")
                .num_columns(2)
                .striped(true)
                .show(ui, |ui| {
                    for (k, v) in &rows {
                        ui.label(egui::RichText::new(tr_str(lang, k)).strong());
                        ui.label(tr_str(lang, v));
                        ui.end_row();
                    }
                });
            if let Some(x) = intersection {
                intersection_details(ui, x, lang);
            }
            // With a history, the chart can span the last hour, day or week from the store.
            let recorded_span = history_status
                .as_deref()
                .filter(|h| h.error.is_none())
                .and(device)
                .map(|d| d.id.clone());
            if recorded_span.is_some() {
                ui.horizontal(|ui| {
                    for span in ChartSpan::ALL {
                        if ui
                            .selectable_label(chart.span == span, tr(lang, span.name()))
                            .clicked()
                        {
                            chart.span = span;
                        }
                    }
                });
            } else {
                chart.span = ChartSpan::Recent;
            }
            let (series, axis) = match (chart.span.extent(), &recorded_span) {
                (Some((span_ms, unit_ms, axis)), Some(id)) => {
                    // Ask again when the device or span changes, or the clock has moved on.
                    let stale = chart.asked.as_ref().is_none_or(|(d, s, t)| {
                        d != id || *s != chart.span || (now_ms - t).abs() > span_ms / 100
                    });
                    if stale {
                        series_requests.write(SeriesRequest {
                            device: id.clone(),
                            from_ms: now_ms - span_ms,
                            to_ms: now_ms,
                        });
                        chart.asked = Some((id.clone(), chart.span, now_ms));
                    }
                    let lines = recorded
                        .as_deref()
                        .filter(|r| r.device == *id)
                        .map(|r| recorded_lines(&r.points, now_ms, unit_ms))
                        .unwrap_or_default();
                    (lines, axis)
                }
                _ => (
                    edge.as_deref()
                        .zip(slot)
                        .map(|(edge, slot)| history_series(edge.samples(slot.0), now_ms))
                        .unwrap_or_default(),
                    "minutes ago",
                ),
            };
            if !series.is_empty() {
                Plot::new(("history", e))
                    .height(130.0)
                    .legend(Legend::default())
                    .x_axis_label(tr(lang, axis))
                    .allow_scroll(false)
                    .show(ui, |plot| {
                        for (q, pts) in series {
                            plot.line(Line::new(tr(lang, quantity_name(q)), pts));
                        }
                    });
            }
            ui.horizontal(|ui| {
                if ui.button(tr(lang, "Fly to (F)")).clicked() {
                    camera.write(CameraCommand::FlyToEntity(e));
                }
                if ui.button(tr(lang, "Close")).clicked() {
                    picks.write(EntityPicked(None));
                }
            });
            egui::CollapsingHeader::new(format!(
                "{} ({})",
                tr(lang, "All attributes"),
                attributes.len()
            ))
            .open(Some(panels.attributes_open))
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .max_height(220.0)
                    .show(ui, |ui| {
                        egui::Grid::new("attrs")
                            .num_columns(2)
                            .striped(true)
                            .show(ui, |ui| {
                                for (k, v) in &attributes {
                                    ui.label(k);
                                    ui.label(v);
                                    ui.end_row();
                                }
                            });
                    });
            })
            .header_response
            .clicked()
            .then(|| panels.attributes_open = !panels.attributes_open);
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_series_becomes_one_line_per_quantity_in_the_spans_unit() {
        let now = 10 * 3_600_000;
        let points = [
            (now - 2 * 3_600_000, Quantity::LampPowerW.index(), 40.0),
            (now - 3_600_000, Quantity::LampOn.index(), 1.0),
            (now - 1_800_000, Quantity::LampPowerW.index(), 20.0),
            (now, 200, 1.0),
        ];
        let lines = recorded_lines(&points, now, 3_600_000.0);
        assert_eq!(lines.len(), 2, "an unknown quantity index is left out");
        assert_eq!(lines[0].0, Quantity::LampPowerW);
        assert_eq!(lines[0].1, vec![[-2.0, 40.0], [-0.5, 20.0]]);
        assert_eq!(lines[1].1, vec![[-1.0, 1.0]]);
        assert_eq!(ChartSpan::Day.extent().map(|e| e.2), Some("hours ago"));
    }
    use tvilling_sensors::registry::DeviceKind;
    use tvilling_sensors::state::Health;

    #[test]
    fn device_rows_carry_units_and_history_splits_by_quantity() {
        let d = Device {
            id: "air/1".into(),
            kind: DeviceKind::AirSensor,
        };
        let l = Liveness {
            last_seen_ms: Some(60_000),
            source: Some("simulator".into()),
            health: Health::Live,
            fault: None,
            ..Default::default()
        };
        let a = AirQualityState {
            no2: Some(41.26),
            ..Default::default()
        };
        let rows = device_rows(
            &d,
            &l,
            LiveState {
                air: Some(&a),
                ..Default::default()
            },
            90_000,
            Some(&HealthRules::default()),
        );
        assert!(rows.contains(&("NO2", "41.3 µg/m³".into())));
        assert!(
            rows.contains(&("Age", "30 s of 1800 s (reports every 600 s)".into())),
            "{rows:?}"
        );
        assert!(rows.contains(&("PM10", "-".into())));
        assert!(rows.contains(&("Reported via", "simulator".into())));
        assert!(
            rows.iter()
                .any(|(k, v)| *k == "Last seen" && v.ends_with("(30 s ago)"))
        );
        let mut edge = LiveEdge::default();
        edge.push(3, 0, Quantity::No2, 10.0);
        edge.push(3, 60_000, Quantity::Pm10, 5.0);
        edge.push(3, 120_000, Quantity::No2, 12.0);
        let s = history_series(edge.samples(3), 120_000);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, Quantity::No2);
        assert_eq!(s[0].1, vec![[-2.0, 10.0], [0.0, 12.0]]);
    }

    #[test]
    fn a_device_that_reports_only_unknown_fields_shows_them() {
        let d = Device {
            id: "lamp-1".into(),
            kind: DeviceKind::Lamp,
        };
        let mut l = Liveness::default();
        l.note_unmapped(&["lux".into(), "battery_v".into()], true);
        let rows = device_rows(&d, &l, LiveState::default(), 0, None);
        assert!(
            rows.contains(&("Reports, not mapped", "lux, battery_v".into())),
            "{rows:?}"
        );
        assert!(rows.contains(&("Messages with no known field", "1".into())));
        assert!(rows.contains(&("Health", "never seen".into())));
    }
}
