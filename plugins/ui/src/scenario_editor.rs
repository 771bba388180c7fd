//! The scenario editor: make a scenario without writing a file. Give streets (the selected
//! lamp's, or typed) or a district a dimming calendar; give the selected signal's controller a
//! cycle and split; draw a building's footprint on the ground (clicks in the view), then its
//! storeys and use; undo, redo; save it as a scenario file, which the Scenarios window then
//! offers as A or B. The window writes [`DraftRequest`]s; the model applies them.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_sensors::simulate::BuildingUse;
use tvilling_sensors::state::DeviceInfo;
use tvilling_twin::scenario::draft::{DraftEdit, DraftRequest, ScenarioDraft, parse_calendar};
use tvilling_twin::scenario::edits::Districts;
use tvilling_view::selection::Selection;

use crate::PanelState;
use crate::i18n::{Lang, tr};

/// What is typed into the editor before it becomes an edit (the window's own state).
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct EditorForm {
    pub streets: String,
    /// A district (by name) instead of streets.
    pub district: Option<String>,
    pub weekdays: String,
    pub weekends: String,
    pub cycle_s: f64,
    pub split: f64,
    pub building_name: String,
    pub storeys: f64,
    pub building_use: BuildingUse,
    /// Why the last edit was not added.
    pub problem: Option<String>,
}

impl Default for EditorForm {
    fn default() -> Self {
        EditorForm {
            streets: String::new(),
            district: None,
            weekdays: "00:00 50, 06:00 100, 22:00 60".into(),
            weekends: "00:00 50, 07:00 100".into(),
            cycle_s: 90.0,
            split: 0.55,
            building_name: "New building".into(),
            storeys: 6.0,
            building_use: BuildingUse::Offices,
            problem: None,
        }
    }
}

/// The districts offered (the shipped ones).
#[derive(Resource, Debug, Clone)]
pub struct DistrictNames(pub Vec<String>);

impl Default for DistrictNames {
    fn default() -> Self {
        DistrictNames(
            Districts::shipped()
                .names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        )
    }
}

/// A selected device's attribute (e.g. a lamp's `street`, a signal head's `controller`).
fn selected_attribute(
    selection: &Selection,
    infos: &Query<&DeviceInfo>,
    key: &str,
) -> Option<String> {
    let info = infos.get(selection.entity?).ok()?;
    info.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// The dimming edit the form describes, or why it cannot be one.
pub fn dimming_from(form: &EditorForm, lang: Lang) -> Result<DraftEdit, String> {
    let streets: Vec<String> = form
        .streets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let districts: Vec<String> = form.district.iter().cloned().collect();
    if streets.is_empty() && districts.is_empty() {
        return Err(tr(lang, "Name one or more streets, or choose a district.").to_string());
    }
    Ok(DraftEdit::Dimming {
        streets,
        districts,
        weekdays: parse_calendar(&form.weekdays)
            .map_err(|e| format!("{}: {e}", tr(lang, "Weekdays")))?,
        weekends: parse_calendar(&form.weekends)
            .map_err(|e| format!("{}: {e}", tr(lang, "Weekends")))?,
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn scenario_editor(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    draft: Option<Res<ScenarioDraft>>,
    mut form: ResMut<EditorForm>,
    districts: Res<DistrictNames>,
    selection: Res<Selection>,
    infos: Query<&DeviceInfo>,
    mut requests: MessageWriter<DraftRequest>,
    lang: Res<Lang>,
) -> Result {
    if !panels.editor_open {
        return Ok(());
    }
    let Some(draft) = draft else {
        return Ok(());
    };
    let lang = *lang;
    let ctx = contexts.ctx_mut()?;
    let mut open = true;
    let street = selected_attribute(&selection, &infos, "street");
    let controller = selected_attribute(&selection, &infos, "controller");
    egui::Window::new(tr(lang, "New scenario"))
        .id(egui::Id::new("scenario editor"))
        .open(&mut open)
        .default_width(420.0)
        .anchor(egui::Align2::LEFT_BOTTOM, [8.0, -48.0])
        .show(ctx, |ui| {
            let form = &mut *form;
            ui.horizontal(|ui| {
                ui.label(tr(lang, "Name"));
                let mut name = draft.name.clone();
                if ui.text_edit_singleline(&mut name).changed() {
                    requests.write(DraftRequest::Rename(name));
                }
            });
            // Lighting: a calendar for streets or a district.
            egui::CollapsingHeader::new(tr(lang, "Dimming calendar"))
                .default_open(true)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(tr(lang, "Streets"));
                        ui.add(egui::TextEdit::singleline(&mut form.streets).desired_width(180.0));
                        if let Some(s) = &street
                            && ui
                                .button(tr(lang, "+ the selected lamp's street"))
                                .clicked()
                        {
                            if !form.streets.trim().is_empty() {
                                form.streets.push_str(", ");
                            }
                            form.streets.push_str(s);
                        }
                    });
                    ui.horizontal(|ui| {
                        ui.label(tr(lang, "or district"));
                        egui::ComboBox::from_id_salt("editor district")
                            .selected_text(form.district.as_deref().unwrap_or("-"))
                            .show_ui(ui, |ui| {
                                ui.selectable_value(&mut form.district, None, "-");
                                for d in &districts.0 {
                                    ui.selectable_value(&mut form.district, Some(d.clone()), d);
                                }
                            });
                    });
                    ui.horizontal(|ui| {
                        ui.label(tr(lang, "Weekdays"));
                        ui.text_edit_singleline(&mut form.weekdays);
                    });
                    ui.horizontal(|ui| {
                        ui.label(tr(lang, "Weekends"));
                        ui.text_edit_singleline(&mut form.weekends);
                    });
                    if ui.button(tr(lang, "Add the calendar")).clicked() {
                        match dimming_from(form, lang) {
                            Ok(e) => {
                                form.problem = None;
                                requests.write(DraftRequest::Add(e));
                            }
                            Err(e) => form.problem = Some(e),
                        }
                    }
                });
            // Signals: the selected head's controller.
            egui::CollapsingHeader::new(tr(lang, "Signal timing")).show(
                ui,
                |ui| match &controller {
                    None => {
                        ui.label(tr(lang, "Select a signal head in the view."));
                    }
                    Some(c) => {
                        ui.label(format!("{}: {c}", tr(lang, "Controller")));
                        ui.horizontal(|ui| {
                            ui.label(tr(lang, "Cycle"));
                            ui.add(
                                egui::DragValue::new(&mut form.cycle_s)
                                    .range(30.0..=180.0)
                                    .suffix(" s"),
                            );
                            ui.label(tr(lang, "Split"));
                            ui.add(
                                egui::DragValue::new(&mut form.split)
                                    .range(0.1..=0.9)
                                    .speed(0.01),
                            );
                        });
                        if ui.button(tr(lang, "Add the timing")).clicked() {
                            requests.write(DraftRequest::Add(DraftEdit::SignalTiming {
                                controller: c.clone(),
                                cycle_s: form.cycle_s,
                                split: form.split,
                            }));
                        }
                    }
                },
            );
            // Buildings: a footprint drawn on the ground.
            egui::CollapsingHeader::new(tr(lang, "New building")).show(ui, |ui| {
                match &draft.drawing {
                    None => {
                        if ui.button(tr(lang, "Draw a footprint")).clicked() {
                            requests.write(DraftRequest::StartDrawing);
                        }
                    }
                    Some(corners) => {
                        ui.label(format!(
                            "{}: {}",
                            tr(lang, "Click the corners on the ground"),
                            corners.len()
                        ));
                        ui.horizontal(|ui| {
                            ui.label(tr(lang, "Name"));
                            ui.text_edit_singleline(&mut form.building_name);
                        });
                        ui.horizontal(|ui| {
                            ui.label(tr(lang, "Storeys"));
                            ui.add(egui::DragValue::new(&mut form.storeys).range(1.0..=40.0));
                            for (u, name) in [
                                (BuildingUse::Homes, "homes"),
                                (BuildingUse::Offices, "offices"),
                                (BuildingUse::Retail, "retail"),
                                (BuildingUse::Public, "public"),
                            ] {
                                ui.radio_value(&mut form.building_use, u, tr(lang, name));
                            }
                        });
                        ui.horizontal(|ui| {
                            if ui.button(tr(lang, "Finish the building")).clicked() {
                                requests.write(DraftRequest::FinishDrawing {
                                    name: form.building_name.clone(),
                                    storeys: form.storeys,
                                    building_use: form.building_use,
                                });
                            }
                            if ui.button(tr(lang, "Cancel")).clicked() {
                                requests.write(DraftRequest::CancelDrawing);
                            }
                        });
                    }
                }
            });
            ui.separator();
            for (i, e) in draft.edits.iter().enumerate() {
                ui.horizontal(|ui| {
                    if ui.small_button("×").clicked() {
                        requests.write(DraftRequest::Remove(i));
                    }
                    ui.label(format!("{}. {}", i + 1, e.summary()));
                });
            }
            for problem in form.problem.iter().chain(draft.refused.iter()) {
                ui.colored_label(egui::Color32::LIGHT_RED, problem);
            }
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(draft.can_undo(), egui::Button::new(tr(lang, "Undo")))
                    .clicked()
                {
                    requests.write(DraftRequest::Undo);
                }
                if ui
                    .add_enabled(draft.can_redo(), egui::Button::new(tr(lang, "Redo")))
                    .clicked()
                {
                    requests.write(DraftRequest::Redo);
                }
                if ui
                    .add_enabled(
                        !draft.edits.is_empty(),
                        egui::Button::new(tr(lang, "Save as a scenario file")),
                    )
                    .clicked()
                {
                    requests.write(DraftRequest::Save);
                }
            });
            match &draft.saved {
                Some(Ok(p)) => {
                    ui.label(format!("{} {}", tr(lang, "Saved to"), p.display()));
                }
                Some(Err(e)) => {
                    ui.colored_label(egui::Color32::LIGHT_RED, e);
                }
                None => {}
            }
        });
    if !open {
        panels.editor_open = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_makes_a_dimming_edit_or_says_why_not() {
        let mut form = EditorForm::default();
        let en = Lang::English;
        assert!(dimming_from(&form, en).is_err_and(|e| e.contains("one or more streets")));
        form.streets = "Sveavägen, Kungsgatan ,".into();
        let Ok(DraftEdit::Dimming {
            streets, weekdays, ..
        }) = dimming_from(&form, en)
        else {
            panic!("no edit");
        };
        assert_eq!(streets, ["Sveavägen", "Kungsgatan"]);
        assert_eq!(weekdays, [(0, 50.0), (360, 100.0), (1320, 60.0)]);
        form.weekends = "07:00 100".into();
        assert!(dimming_from(&form, en).is_err_and(|e| e.starts_with("Weekends:")));
        assert!(DistrictNames::default().0.iter().any(|d| d == "NORRMALM"));
    }
}
