//! Colours and scales shared by building layers and device markers: a leaf module.

use bevy::prelude::*;

/// A colour for "no value": neutral, darker than any building.
pub const NO_DATA: Color = Color::srgb(0.45, 0.45, 0.47);

/// A blue-to-red ramp (viridis-like stops chosen to read on both light and dark ground).
pub fn ramp(t: f32) -> Color {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.20, 0.35, 0.80]),
        (0.25, [0.15, 0.65, 0.75]),
        (0.5, [0.35, 0.80, 0.35]),
        (0.75, [0.98, 0.80, 0.20]),
        (1.0, [0.90, 0.20, 0.15]),
    ];
    let t = t.clamp(0.0, 1.0);
    for w in STOPS.windows(2) {
        let ((t0, a), (t1, b)) = (w[0], w[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            return Color::srgb(
                a[0] + (b[0] - a[0]) * f,
                a[1] + (b[1] - a[1]) * f,
                a[2] + (b[2] - a[2]) * f,
            );
        }
    }
    Color::srgb(0.90, 0.20, 0.15)
}

/// Position on the power scale: log10 from 1 to 1,000 kW.
pub fn power_scale(kw: f64) -> f32 {
    ((kw.max(1.0).log10()) / 3.0) as f32
}

/// Position on the intensity scale: 0 to 300 kWh/m² per year.
pub fn intensity_scale(kwh_m2_year: f64) -> f32 {
    (kwh_m2_year / 300.0) as f32
}
