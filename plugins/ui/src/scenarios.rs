//! The Scenarios window: pick scenario A and B from the scenario files, run them over a day
//! (two headless twins in lockstep on their own thread), read the metrics table and the hourly
//! lighting plot.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use egui_plot::{Legend, Line, Plot, VLine};
use tvilling_twin::scenario::jobs::{CompareRequest, ScenarioJobs};
use tvilling_twin::scenario::shown::{ShowMode, ShowRequest, ShownScenarios};
use tvilling_view::layers::ColourBy;

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};

/// The window's choices (the app may set them, e.g. from `--compare`).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct ScenarioChoice {
    pub a: usize,
    pub b: usize,
    /// The day, YYYY-MM-DD (Stockholm local time, midnight to midnight).
    pub day: String,
    pub seed: u64,
}

impl Default for ScenarioChoice {
    fn default() -> Self {
        ScenarioChoice {
            a: 0,
            b: 1,
            day: "2026-11-23".into(),
            seed: tvilling_sensors::simulate::DEFAULT_SEED,
        }
    }
}

/// Stockholm local midnight of a day written YYYY-MM-DD, Unix ms.
pub fn local_midnight_ms(day: &str) -> Option<i64> {
    let mut parts = day.trim().split('-');
    let mut next = || parts.next()?.parse::<i64>().ok();
    let (y, m, d) = (next()?, next()?, next()?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = tvilling_geo::sun::days_from_civil(y as _, m as _, d as _);
    let noon_ms = days * 86_400_000 + 43_200_000;
    Some(tvilling_sensors::simulate::stockholm_local(noon_ms).midnight_ms)
}

/// How many table rows show before the per-controller ones.
const MAIN_ROWS: usize = 17;

/// Stockholm local time of day of `t_ms`, HH:MM.
pub fn local_hh_mm(t_ms: i64) -> String {
    let minutes = (tvilling_sensors::simulate::stockholm_local(t_ms).hour * 60.0).floor() as i64;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// What the city shows of the comparison: the mode, the colouring by difference, and the
/// moment (a slider over the span, play and pause). Writes requests; the model applies them.
fn show_controls(
    ui: &mut egui::Ui,
    lang: Lang,
    shown: &ShownScenarios,
    show: &mut MessageWriter<ShowRequest>,
    colour_by: &mut ColourBy,
) {
    ui.horizontal(|ui| {
        ui.label(tr(lang, "Show in the city"));
        for (mode, label) in [
            (ShowMode::Live, tr(lang, "twin")),
            (ShowMode::A, "A"),
            (ShowMode::B, "B"),
            (ShowMode::Split, "A | B"),
        ] {
            if ui.selectable_label(shown.mode == mode, label).clicked() {
                show.write(ShowRequest::Mode(mode));
            }
        }
        let mut difference = *colour_by == ColourBy::Difference;
        if ui
            .checkbox(&mut difference, tr(lang, "colour by difference"))
            .changed()
        {
            *colour_by = if difference {
                ColourBy::Difference
            } else {
                ColourBy::Type
            };
        }
    });
    if shown.mode == ShowMode::Live {
        return;
    }
    ui.horizontal(|ui| {
        let (icon, play) = if shown.playing {
            ("⏸", false)
        } else {
            ("▶", true)
        };
        if ui
            .button(icon)
            .on_hover_text(tr(lang, if play { "Play" } else { "Pause" }))
            .clicked()
        {
            show.write(ShowRequest::Play(play));
        }
        let mut hours = (shown.t_ms - shown.from_ms) as f64 / 3_600_000.0;
        let span_h = (shown.to_ms - shown.from_ms) as f64 / 3_600_000.0;
        let slider = egui::Slider::new(&mut hours, 0.0..=span_h)
            .show_value(false)
            .step_by(1.0 / 60.0);
        if ui.add(slider).changed() {
            show.write(ShowRequest::Seek(
                shown.from_ms + (hours * 3_600_000.0).round() as i64,
            ));
        }
        ui.label(egui::RichText::new(local_hh_mm(shown.t_ms)).monospace());
    });
    if let Some(sides) = &shown.sides {
        for (label, side) in ["A", "B"].iter().zip(sides) {
            if side.found() < side.planned() {
                ui.colored_label(
                    egui::Color32::from_rgb(240, 190, 90),
                    format!(
                        "{label}: {} {} {} {}",
                        side.found(),
                        tr(lang, "of"),
                        side.planned(),
                        tr(lang, "planned devices are in the city on screen")
                    ),
                );
            }
        }
    }
    for p in &shown.problems {
        ui.colored_label(egui::Color32::LIGHT_RED, p);
    }
}

pub(crate) fn scenarios_window(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    jobs: Option<Res<ScenarioJobs>>,
    mut requests: MessageWriter<CompareRequest>,
    mut choice: ResMut<ScenarioChoice>,
    lang: Res<Lang>,
    shown: Res<ShownScenarios>,
    mut show: MessageWriter<ShowRequest>,
    mut colour_by: ResMut<ColourBy>,
) -> Result {
    if !panels.scenarios_open {
        return Ok(());
    }
    let lang = *lang;
    let ctx = contexts.ctx_mut()?;
    let mut open = true;
    egui::Window::new(tr(lang, "Scenarios"))
        .id(egui::Id::new("scenarios"))
        .open(&mut open)
        .default_width(460.0)
        // Left of the compass, which keeps the bottom-right corner.
        .anchor(egui::Align2::RIGHT_BOTTOM, [-96.0, -8.0])
        .show(ctx, |ui| {
            let Some(jobs) = jobs else {
                ui.label(tr(lang, "Scenarios run in the window of the desktop app."));
                return;
            };
            let names: Vec<(usize, String)> = jobs
                .scenarios()
                .into_iter()
                .map(|(i, s)| (i, s.name.clone()))
                .collect();
            if names.is_empty() {
                ui.label(format!(
                    "{} {}",
                    tr(lang, "No scenario files in"),
                    jobs.folder().display()
                ));
            }
            let choice = &mut *choice;
            for (label, pick) in [("A", &mut choice.a), ("B", &mut choice.b)] {
                let shown = names
                    .iter()
                    .find(|(i, _)| *i == *pick)
                    .map_or("-", |(_, n)| n.as_str());
                egui::ComboBox::from_label(label)
                    .selected_text(shown)
                    .width(320.0)
                    .show_ui(ui, |ui| {
                        for (i, n) in &names {
                            ui.selectable_value(pick, *i, n.as_str());
                        }
                    });
            }
            ui.horizontal(|ui| {
                ui.label(tr(lang, "Day"));
                ui.add(egui::TextEdit::singleline(&mut choice.day).desired_width(90.0));
                ui.label(tr(lang, "Seed"));
                ui.add(egui::DragValue::new(&mut choice.seed));
                let from = local_midnight_ms(&choice.day);
                match jobs.running() {
                    Some((what, secs)) => {
                        ui.spinner();
                        ui.label(format!("{secs:.0} s"))
                            .on_hover_text(format!("{} {what}", tr(lang, "Running")));
                    }
                    None => {
                        let run = ui.add_enabled(
                            from.is_some() && !names.is_empty(),
                            egui::Button::new(tr(lang, "Run the day")),
                        );
                        if run.clicked()
                            && let Some(from) = from
                        {
                            let to =
                                tvilling_sensors::simulate::stockholm_local(from + 36 * 3_600_000)
                                    .midnight_ms;
                            requests.write(CompareRequest {
                                a: choice.a,
                                b: choice.b,
                                seed: choice.seed,
                                from_ms: from,
                                to_ms: to,
                            });
                        }
                    }
                }
                if ui
                    .selectable_label(panels.editor_open, tr(lang, "Make a new scenario"))
                    .clicked()
                {
                    panels.editor_open = !panels.editor_open;
                }
            });
            let refused: Vec<String> = jobs
                .files
                .iter()
                .filter_map(|(_, s)| s.as_ref().err().cloned())
                .collect();
            if !refused.is_empty() {
                egui::CollapsingHeader::new(format!(
                    "{} ({})",
                    tr(lang, "Refused scenario files"),
                    refused.len()
                ))
                .show(ui, |ui| {
                    for r in &refused {
                        ui.colored_label(egui::Color32::LIGHT_RED, r);
                    }
                });
            }
            ui.separator();
            match &jobs.last {
                None => {}
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::LIGHT_RED, e);
                }
                Some(Ok(c)) => {
                    ui.label(
                        egui::RichText::new(format!("A: {}  ·  B: {}", c.a.name, c.b.name))
                            .strong(),
                    );
                    let local = tvilling_sensors::simulate::stockholm_local(c.from_ms);
                    let (y, m, d) = tvilling_geo::sun::civil_from_days(
                        (c.from_ms + 43_200_000).div_euclid(86_400_000),
                    );
                    ui.label(format!(
                        "{y:04}-{m:02}-{d:02} {:02}:00, {:.0} h, {} {}, {:.0} s",
                        local.hour.round() as i64,
                        (c.to_ms - c.from_ms) as f64 / 3_600_000.0,
                        tr(lang, "seed"),
                        c.seed,
                        c.wall_s
                    ));
                    if shown.comparison == c.number {
                        show_controls(ui, lang, &shown, &mut show, &mut colour_by);
                    }
                    egui::ScrollArea::vertical()
                        .max_height(150.0)
                        .show(ui, |ui| {
                            egui::Grid::new("scenario metrics")
                                .striped(true)
                                .num_columns(5)
                                .show(ui, |ui| {
                                    for h in ["metric", "A", "B", "%"] {
                                        ui.label(egui::RichText::new(tr_str(lang, h)).strong());
                                    }
                                    ui.end_row();
                                    let shown = c.rows.iter().take(MAIN_ROWS);
                                    for r in shown {
                                        let num = |v: Option<f64>| {
                                            v.map_or("-".into(), |v| format!("{v:.1}"))
                                        };
                                        ui.label(format!(
                                            "{} ({})",
                                            tr_str(lang, &r.metric),
                                            r.unit
                                        ));
                                        ui.label(num(r.a));
                                        ui.label(num(r.b));
                                        let p = r
                                            .percent()
                                            .map_or(String::new(), |p| format!("{p:+.1}"));
                                        let colour = match r.difference() {
                                            Some(d) if d < 0.0 => egui::Color32::LIGHT_GREEN,
                                            Some(d) if d > 0.0 => egui::Color32::LIGHT_RED,
                                            _ => ui.visuals().text_color(),
                                        };
                                        ui.colored_label(colour, p);
                                        ui.end_row();
                                    }
                                });
                        });
                    let line = |values: &[f64]| -> Vec<[f64; 2]> {
                        values
                            .iter()
                            .enumerate()
                            .flat_map(|(h, v)| [[h as f64, *v], [h as f64 + 1.0, *v]])
                            .collect()
                    };
                    ui.label(tr(lang, "Street lighting, kW by hour from midnight"));
                    Plot::new("scenario lighting")
                        .height(110.0)
                        .include_y(0.0)
                        .legend(Legend::default())
                        .allow_scroll(false)
                        .show(ui, |p| {
                            p.line(Line::new("A", line(&c.ra.hourly_lighting_kwh)));
                            p.line(Line::new("B", line(&c.rb.hourly_lighting_kwh)));
                            if shown.is_shown() && shown.comparison == c.number {
                                let h = (shown.t_ms - c.from_ms) as f64 / 3_600_000.0;
                                p.vline(
                                    VLine::new(local_hh_mm(shown.t_ms), h).stroke(
                                        egui::Stroke::new(1.5, egui::Color32::from_gray(220)),
                                    ),
                                );
                            }
                        });
                }
            }
        });
    if !open {
        panels.scenarios_open = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_stockholm_midnight() {
        // 23 November 2026 00:00 CET is 22 November 23:00 UTC.
        assert_eq!(local_midnight_ms("2026-11-23"), Some(1_795_388_400_000));
        // 21 June 2026 00:00 CEST is 20 June 22:00 UTC.
        assert_eq!(local_midnight_ms(" 2026-06-21 "), Some(1_781_992_800_000));
        for bad in ["2026-13-01", "2026-11", "23/11/2026", "2026-11-23-1", ""] {
            assert_eq!(local_midnight_ms(bad), None, "{bad}");
        }
    }
}
