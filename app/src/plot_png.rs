//! PNG copies of the report's hourly charts: step lines, grid and labels drawn into an RGB
//! canvas (every stroke of a step chart is horizontal or vertical), text from egui's own fonts
//! (the glyph coverage of its font atlas). No plotting crate is needed.

use std::path::Path;

use bevy_egui::egui::epaint::text::{FontDefinitions, Fonts, TextOptions};
use bevy_egui::egui::epaint::{Color32, FontId};
use tvilling_twin::scenario::report::ChartLayout;

/// An RGB picture.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
    fonts: Fonts,
}

/// Where a text's anchor is: its left end, centre or right end (vertically: its middle).
#[derive(Clone, Copy, PartialEq)]
pub enum Align {
    Left,
    Centre,
    Right,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: [u8; 3]) -> Canvas {
        Canvas {
            width,
            height,
            rgb: background.repeat(width * height),
            fonts: Fonts::new(TextOptions::default(), FontDefinitions::default()),
        }
    }

    /// Mixes `colour` into a pixel by `alpha` (0..=1).
    fn blend(&mut self, x: i64, y: i64, colour: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        for (c, new) in self.rgb[i..i + 3].iter_mut().zip(colour) {
            *c = (f32::from(*c) * (1.0 - alpha) + f32::from(new) * alpha).round() as u8;
        }
    }

    /// Fills the rectangle between two corners (inclusive of the lower one).
    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, colour: [u8; 3]) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..=yb {
            for x in xa..=xb {
                self.blend(x, y, colour, 1.0);
            }
        }
    }

    /// Draws `text` at `size` pixels with its anchor at (x, y); returns its width.
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        size: f32,
        colour: [u8; 3],
        align: Align,
    ) -> f32 {
        let mut view = self.fonts.with_pixels_per_point(1.0);
        let galley =
            view.layout_no_wrap(text.to_string(), FontId::proportional(size), Color32::WHITE);
        let atlas = view.image();
        let w = galley.size().x;
        let left = match align {
            Align::Left => x as f32,
            Align::Centre => x as f32 - w / 2.0,
            Align::Right => x as f32 - w,
        };
        let top = y as f32 - galley.size().y / 2.0;
        let mut marks: Vec<(i64, i64, f32)> = Vec::new();
        for row in &galley.rows {
            for g in &row.row.glyphs {
                let uv = g.uv_rect;
                if uv.is_nothing() {
                    continue;
                }
                let gx = left + row.pos.x + g.pos.x + uv.offset.x;
                let gy = top + row.pos.y + g.pos.y + uv.offset.y;
                for ty in uv.min[1]..uv.max[1] {
                    for tx in uv.min[0]..uv.max[0] {
                        let texel = atlas.pixels[usize::from(ty) * atlas.size[0] + usize::from(tx)];
                        let alpha = f32::from(texel.a()) / 255.0;
                        if alpha > 0.0 {
                            marks.push((
                                (gx + f32::from(tx - uv.min[0])).round() as i64,
                                (gy + f32::from(ty - uv.min[1])).round() as i64,
                                alpha,
                            ));
                        }
                    }
                }
            }
        }
        for (px, py, alpha) in marks {
            self.blend(px, py, colour, alpha);
        }
        w
    }

    /// The picture as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&self.rgb)?;
        }
        Ok(out)
    }
}

/// A step chart of values per hour, as the report's SVG draws it: title, grid, axes, a line
/// per series with its legend.
pub fn step_chart(title: &str, unit: &str, series: &[(&str, [u8; 3], &[f64])]) -> Canvas {
    let l = ChartLayout::for_series(series.iter().map(|s| s.2));
    let (h, left, top, pw, ph) = (l.height, l.left, l.top, l.plot_w, l.plot_h);
    let mut c = Canvas::new(l.width as usize, l.height as usize, [255, 255, 255]);
    let x = |i: f64| l.x(i);
    let y = |v: f64| l.y(v);
    let ink = [34, 34, 34];
    c.text(left, 18.0, title, 14.0, ink, Align::Left);
    for (v, label) in l.y_ticks() {
        c.rect(left, y(v), left + pw, y(v), [221, 221, 221]);
        c.text(left - 6.0, y(v), &label, 12.0, ink, Align::Right);
    }
    for i in l.hour_ticks() {
        c.text(
            x(i as f64),
            top + ph + 12.0,
            &i.to_string(),
            12.0,
            ink,
            Align::Centre,
        );
    }
    c.text(
        left + pw / 2.0,
        h - 10.0,
        "hours from the start",
        12.0,
        ink,
        Align::Centre,
    );
    // The unit above the value labels, clear of long numbers.
    c.text(left - 6.0, top - 14.0, unit, 12.0, ink, Align::Right);
    for (n, (name, colour, values)) in series.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            // Two pixels thick: the hour's level, and the step to the next hour's.
            c.rect(x(i as f64), y(*v) - 1.0, x(i as f64 + 1.0), y(*v), *colour);
            if let Some(next) = values.get(i + 1) {
                c.rect(
                    x(i as f64 + 1.0) - 1.0,
                    y(*v),
                    x(i as f64 + 1.0),
                    y(*next),
                    *colour,
                );
            }
        }
        let ly = top + 12.0 + 20.0 * n as f64;
        c.rect(
            left + pw + 12.0,
            ly - 2.0,
            left + pw + 26.0,
            ly + 1.0,
            *colour,
        );
        c.text(left + pw + 30.0, ly, name, 12.0, ink, Align::Left);
    }
    c
}

/// Writes `lighting.png` and `buildings.png` (hourly power of A and B) into a report folder.
pub fn write_plots(
    dir: &Path,
    a: &tvilling_twin::scenario::report::RunResult,
    b: &tvilling_twin::scenario::report::RunResult,
) -> anyhow::Result<()> {
    let (blue, red) = ([31, 119, 180], [214, 39, 40]);
    for (file, title, av, bv) in [
        (
            "lighting.png",
            "Street lighting: mean power per hour",
            &a.hourly_lighting_kwh,
            &b.hourly_lighting_kwh,
        ),
        (
            "buildings.png",
            "Buildings: mean electrical power per hour",
            &a.hourly_building_kwh,
            &b.hourly_building_kwh,
        ),
    ] {
        let chart = step_chart(title, "kW", &[("A", blue, av), ("B", red, bv)]);
        std::fs::write(dir.join(file), chart.png()?)?;
    }
    Ok(())
}
