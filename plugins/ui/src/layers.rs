//! The layers panel: what is drawn, how buildings are coloured, and the legend.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_view::layers::{ColourBy, Layers, legend};

use crate::PanelState;
use crate::i18n::{Lang, tr, tr_str};

fn swatch(ui: &mut egui::Ui, c: Color) {
    let [r, g, b, _] = c.to_srgba().to_u8_array();
    let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 12.0), egui::Sense::hover());
    ui.painter()
        .rect_filled(rect, 2.0, egui::Color32::from_rgb(r, g, b));
}

/// Layer toggles write [`Layers`] and the colouring writes [`ColourBy`]: requests the view
/// applies.
pub(crate) fn layers_window(
    mut contexts: EguiContexts,
    mut panels: ResMut<PanelState>,
    mut layers: ResMut<Layers>,
    mut colour_by: ResMut<ColourBy>,
    lang: Res<Lang>,
) -> Result {
    let lang = *lang;
    let ctx = contexts.ctx_mut()?;
    let mut open = panels.layers_open;
    let mut next = *layers;
    let mut by = *colour_by;
    egui::Window::new(tr(lang, "Layers"))
        .id(egui::Id::new("layers"))
        .open(&mut open)
        .anchor(egui::Align2::RIGHT_BOTTOM, [-110.0, -8.0])
        .resizable(false)
        .show(ctx, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.checkbox(&mut next.buildings, tr(lang, "Buildings"));
                ui.checkbox(&mut next.signals, tr(lang, "Signal heads"));
                ui.checkbox(&mut next.lamps, tr(lang, "Street lamps"));
                ui.checkbox(&mut next.meters, tr(lang, "Meters"));
                ui.checkbox(&mut next.air, tr(lang, "Air sensors"));
            });
            ui.separator();
            ui.label(tr(lang, "Colour buildings by"));
            ui.horizontal_wrapped(|ui| {
                for c in ColourBy::ALL {
                    ui.radio_value(&mut by, c, tr(lang, c.name()));
                }
            });
            ui.separator();
            ui.label(egui::RichText::new(tr(lang, "Legend")).strong());
            for (c, label) in legend(by) {
                ui.horizontal(|ui| {
                    swatch(ui, c);
                    ui.label(tr_str(lang, &label));
                });
            }
        });
    // Write only on change, so the view's change detection means a real change.
    if next != *layers {
        *layers = next;
    }
    if by != *colour_by {
        *colour_by = by;
    }
    panels.layers_open = open;
    Ok(())
}
