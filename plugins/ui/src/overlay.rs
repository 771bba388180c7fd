//! North arrow and scale bar, painted over the 3D view.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use tvilling_view::camera::ViewInfo;

/// A "nice" scale-bar length (1, 2 or 5 times a power of ten metres) no longer than `max_m`.
pub fn nice_length(max_m: f64) -> f64 {
    if !(max_m.is_finite() && max_m > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max_m.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|k| k * p)
        .find(|&l| l <= max_m)
        .unwrap_or(p)
}

/// Label for a length in metres.
pub fn length_label(m: f64) -> String {
    if m >= 1000.0 {
        format!("{} km", m / 1000.0)
    } else {
        format!("{m} m")
    }
}

pub(crate) fn compass_and_scale(
    mut contexts: EguiContexts,
    info: Res<ViewInfo>,
    room: Option<Res<crate::control_room::ControlRoom>>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let mut rect = ctx.content_rect();
    // In the control room the view lies right of the alarm list and above the status strip.
    if room.is_some() {
        rect.min.x += 400.0;
        rect.max.y -= 36.0;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::new("overlay"),
    ));
    let ink = egui::Color32::from_rgb(30, 34, 40);
    let paper = egui::Color32::from_rgba_unmultiplied(255, 255, 255, 200);

    // North arrow, bottom right: rotated by the camera's bearing.
    let c = egui::pos2(rect.right() - 48.0, rect.bottom() - 56.0);
    painter.circle_filled(c, 30.0, paper);
    painter.circle_stroke(c, 30.0, egui::Stroke::new(1.5, ink));
    let a = (-info.yaw_deg).to_radians() as f32;
    let rot = |x: f32, y: f32| c + egui::vec2(x * a.cos() - y * a.sin(), x * a.sin() + y * a.cos());
    painter.add(egui::Shape::convex_polygon(
        vec![rot(0.0, -24.0), rot(8.0, 4.0), rot(-8.0, 4.0)],
        egui::Color32::from_rgb(200, 40, 40),
        egui::Stroke::NONE,
    ));
    painter.add(egui::Shape::convex_polygon(
        vec![rot(0.0, 20.0), rot(-8.0, 4.0), rot(8.0, 4.0)],
        egui::Color32::from_gray(120),
        egui::Stroke::NONE,
    ));
    painter.text(
        rot(0.0, -34.0) + egui::vec2(0.0, 0.0),
        egui::Align2::CENTER_CENTER,
        "N",
        egui::FontId::proportional(13.0),
        ink,
    );

    // Scale bar, bottom left: ground length at the focus.
    if info.metres_per_pixel > 0.0 {
        let metres = nice_length(info.metres_per_pixel * 160.0);
        let px = (metres / info.metres_per_pixel) as f32;
        let x0 = rect.left() + 16.0;
        let y = rect.bottom() - 24.0;
        painter.rect_filled(
            egui::Rect::from_min_max(
                egui::pos2(x0 - 6.0, y - 22.0),
                egui::pos2(x0 + px + 6.0, y + 8.0),
            ),
            4.0,
            paper,
        );
        painter.line_segment(
            [egui::pos2(x0, y), egui::pos2(x0 + px, y)],
            egui::Stroke::new(3.0, ink),
        );
        for x in [x0, x0 + px] {
            painter.line_segment(
                [egui::pos2(x, y - 6.0), egui::pos2(x, y + 4.0)],
                egui::Stroke::new(2.0, ink),
            );
        }
        painter.text(
            egui::pos2(x0 + px / 2.0, y - 12.0),
            egui::Align2::CENTER_CENTER,
            length_label(metres),
            egui::FontId::proportional(12.0),
            ink,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_bar_lengths_are_round() {
        assert_eq!(nice_length(180.0), 100.0);
        assert_eq!(nice_length(260.0), 200.0);
        assert_eq!(nice_length(999.0), 500.0);
        assert_eq!(nice_length(1000.0), 1000.0);
        assert_eq!(length_label(2000.0), "2 km");
        assert_eq!(length_label(50.0), "50 m");
    }
}
