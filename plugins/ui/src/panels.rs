//! Toolbar, progress, inspector, problems and about windows.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_city::load::{LoadProgress, LoadReport};
use tvilling_city::model::{Building, TwinEntity};
use tvilling_view::camera::CameraCommand;
use tvilling_view::environment::SunSettings;

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};

/// Attribution of the shipped data, shown in the about box (ODbL requires it).
pub const ATTRIBUTION: &str = "Map data © OpenStreetMap contributors, available under the Open Database License (ODbL) 1.0: https://www.openstreetmap.org/copyright";

pub(crate) fn toolbar(
    mut contexts: EguiContexts,
    progress: Res<LoadProgress>,
    report: Res<LoadReport>,
    mut panels: ResMut<PanelState>,
    mut sun: ResMut<SunSettings>,
    mut camera: MessageWriter<CameraCommand>,
    mut lang: ResMut<Lang>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    egui::Window::new("Tvilling")
        .id(egui::Id::new("toolbar"))
        .anchor(egui::Align2::LEFT_TOP, [8.0, 8.0])
        .resizable(false)
        .collapsible(true)
        .show(ctx, |ui| {
            let l = *lang;
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(tr(l, "Stockholm digital twin")).strong());
                // The language switch: flags would be ambiguous, names are not.
                for (value, name) in [(Lang::English, "English"), (Lang::Swedish, "Svenska")] {
                    if ui.selectable_label(l == value, name).clicked() && l != value {
                        *lang = value;
                    }
                }
            });
            ui.label(format!(
                "{} {} · {} {} · {} {}",
                progress.buildings,
                tr(l, "buildings"),
                progress.signals,
                tr(l, "traffic signals"),
                progress.tiles,
                tr(l, "tiles")
            ));
            ui.horizontal(|ui| {
                if ui.button(tr(l, "Frame city (Home)")).clicked() {
                    camera.write(CameraCommand::FrameCity);
                }
                if ui.button(tr(l, "North up (N)")).clicked() {
                    camera.write(CameraCommand::NorthUp);
                }
            });
            let problems = report.0.errors.len();
            ui.horizontal(|ui| {
                if ui
                    .button(format!("{}: {problems}", tr(l, "Import problems")))
                    .clicked()
                {
                    panels.problems_open = !panels.problems_open;
                }
                // A note about the extract, not a problem: apart from the count, and quieter.
                let cut = report.0.cut.len();
                if cut > 0
                    && ui
                        .small_button(format!("{}: {cut}", tr(l, "Cut at the extract's edge")))
                        .on_hover_text(tr(
                            l,
                            "Features whose members lie outside the file, drawn from the parts inside",
                        ))
                        .clicked()
                {
                    panels.problems_open = !panels.problems_open;
                }
                if ui.button(tr(l, "About")).clicked() {
                    panels.about_open = !panels.about_open;
                }
                if ui.button(tr(l, "Live")).clicked() {
                    panels.live_open = !panels.live_open;
                }
                if ui.button(tr(l, "Layers")).clicked() {
                    panels.layers_open = !panels.layers_open;
                }
                if ui.button(tr(l, "City")).clicked() {
                    panels.city_open = !panels.city_open;
                }
                if ui.button(tr(l, "Scenarios")).clicked() {
                    panels.scenarios_open = !panels.scenarios_open;
                }
            });
            // Sun time of day (UTC hours) on the chosen date.
            let day_start = sun.unix_time - sun.unix_time.rem_euclid(86_400);
            let mut hour = (sun.unix_time - day_start) as f32 / 3600.0;
            let (_, elevation) = sun.direction();
            if ui
                .add(egui::Slider::new(&mut hour, 0.0..=23.99).text(format!(
                    "{} ({elevation:.0}° {})",
                    tr(l, "sun, UTC h"),
                    tr(l, "up")
                )))
                .changed()
            {
                sun.unix_time = day_start + (hour * 3600.0) as i64;
                sun.follow_clock = false;
            }
            ui.checkbox(&mut sun.follow_clock, tr(l, "sun follows the live clock"));
        });
    Ok(())
}

pub(crate) fn progress_window(
    mut contexts: EguiContexts,
    progress: Res<LoadProgress>,
    lang: Res<Lang>,
) -> Result {
    if progress.is_done() {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let lang = *lang;
    egui::Window::new(tr(lang, "Loading the city"))
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.set_min_width(320.0);
            ui.add(egui::ProgressBar::new(progress.fraction).show_percentage());
            ui.label(tr_str(lang, &progress.message));
        });
    Ok(())
}

/// Rows of the inspector for a building: (label, value).
pub fn building_rows(twin: &TwinEntity, b: &Building) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Id", twin.id.clone()),
        ("Kind", twin.kind.as_str().to_string()),
    ];
    if let Some(n) = &b.name {
        rows.push(("Name", n.clone()));
    }
    if let Some(a) = &b.address {
        rows.push(("Address", a.clone()));
    }
    rows.push((
        "Height",
        format!("{:.1} m ({})", b.height, b.height_source.as_str()),
    ));
    if let Some(l) = b.levels {
        rows.push(("Levels", format!("{l}")));
    }
    rows.push(("Footprint area", format!("{:.0} m²", b.area_m2)));
    rows.push(("Source", b.source_file.clone()));
    rows
}

pub(crate) fn problems_window(
    mut contexts: EguiContexts,
    report: Res<LoadReport>,
    mut panels: ResMut<PanelState>,
    lang: Res<Lang>,
) -> Result {
    let lang = *lang;
    if !panels.problems_open {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut open = true;
    egui::Window::new(tr(lang, "Import problems"))
        .open(&mut open)
        .default_width(520.0)
        // Below the toolbar, whose buttons open it.
        .default_pos([10.0, 180.0])
        .constrain(false)
        .show(ctx, |ui| {
            let skipped = report.0.errors.iter().filter(|e| e.feature_skipped).count();
            ui.label(format!(
                "{} {} {} {}; {skipped} {}",
                report.0.errors.len(),
                tr(lang, "problems in"),
                report.0.files.len(),
                tr(lang, "files"),
                tr(lang, "features skipped, the rest loaded.")
            ));
            egui::ScrollArea::vertical()
                .max_height(300.0)
                .show(ui, |ui| {
                    for e in &report.0.errors {
                        ui.label(e.to_string());
                    }
                });
            let cut = &report.0.cut;
            if !cut.is_empty() {
                ui.separator();
                ui.strong(tr(lang, "The extract's edge"));
                let drawn = report.0.cut_drawn();
                ui.label(format!(
                    "{} {}: {drawn} {}, {} {}. {}",
                    cut.len(),
                    tr(lang, "features reference members outside the file"),
                    tr(lang, "drawn from their parts inside"),
                    cut.len() - drawn,
                    tr(lang, "not drawn"),
                    tr(
                        lang,
                        "Every extract cut from a larger map has them; they are not problems."
                    )
                ));
                egui::CollapsingHeader::new(tr(lang, "Features cut"))
                    .id_salt("cut-features")
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical()
                            .id_salt("cut-list")
                            .max_height(200.0)
                            .show(ui, |ui| {
                                for c in cut {
                                    ui.label(c.to_string());
                                }
                            });
                    });
            }
        });
    panels.problems_open = open;
    Ok(())
}

pub(crate) fn about_window(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    lang: Res<Lang>,
) -> Result {
    let lang = *lang;
    if !panels.about_open {
        return Ok(());
    }
    let ctx = contexts.ctx_mut()?;
    let mut open = true;
    egui::Window::new(tr(lang, "About Tvilling"))
        .open(&mut open)
        .default_width(420.0)
        .show(ctx, |ui| {
            ui.label(tr(
                lang,
                "Tvilling is a digital twin of Stockholm: real city geometry, georeferenced in SWEREF 99, with live city sensors.",
            ));
            ui.separator();
            ui.label(tr(lang, ATTRIBUTION));
            ui.label(tr(
                lang,
                "CityJSON samples: 3D BAG / City of Delft, City of Zurich, City of Rotterdam (via the cjio project).",
            ));
            ui.label(tr(
                lang,
                "Water and districts: Stadskarta, Stockholms stad (CC0).",
            ));
            ui.label(tr(lang, "Coordinate transformations: PROJ."));
        });
    panels.about_open = open;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvilling_city::import::HeightSource;
    use tvilling_city::model::TwinKind;

    #[test]
    fn inspector_rows_show_what_the_data_has() {
        let twin = TwinEntity {
            kind: TwinKind::Building,
            id: "way/27741605".into(),
        };
        let mut b = Building {
            name: Some("Hedvig Eleonora kyrka".into()),
            address: None,
            levels: None,
            height: 66.0,
            height_source: HeightSource::Measured,
            area_m2: 1234.4,
            footprint: vec![],
            attributes: vec![],
            source_file: "stockholm.osm".into(),
        };
        let rows = building_rows(&twin, &b);
        let get = |k: &str| {
            rows.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("Id").as_deref(), Some("way/27741605"));
        assert_eq!(get("Height").as_deref(), Some("66.0 m (measured)"));
        assert_eq!(get("Footprint area").as_deref(), Some("1234 m²"));
        assert_eq!(get("Address"), None, "no address row without an address");
        b.address = Some("Storgatan 2".into());
        b.levels = Some(5.0);
        let rows = building_rows(&twin, &b);
        assert!(rows.contains(&("Address", "Storgatan 2".into())));
        assert!(rows.contains(&("Levels", "5".into())));
    }
}
