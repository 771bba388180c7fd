//! The real binary renders under Xvfb with Mesa's software Vulkan; the pictures are checked for
//! what they must show.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::temp_dir;
use crate::ocr::Reading;

fn write_png(path: &Path, width: usize, height: usize, rgb: &[u8]) {
    let file = std::fs::File::create(path).expect("png file");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .expect("png header")
        .write_image_data(rgb)
        .expect("png data");
}

/// Decoded RGB picture.
pub(crate) struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    path: PathBuf,
}

impl Picture {
    pub(crate) fn load(path: &Path) -> Picture {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("png"),
        ));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png data");
        let channels = info.color_type.samples();
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Picture {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
            path: path.to_path_buf(),
        }
    }

    /// The text on the picture, read by Tesseract OCR (see [`crate::ocr`]).
    pub(crate) fn text(&self) -> Reading {
        Reading::of(&self.path)
    }

    /// Asserts that the picture shows each of `wants` (as [`Reading::has`] reads them), and
    /// that the same check fails on the picture with the words where they were read painted
    /// over: the assertion can fail. The reading, for further checks.
    pub(crate) fn assert_shows(&self, wants: &[&str]) -> Reading {
        // Tesseract's own layout first; where it lost something, the picture read as sparse
        // text (the painted-over check below then reads that way too).
        let mut layout = None;
        let mut reading = self.text();
        let mut missing = reading.missing(wants);
        if !missing.is_empty() {
            let sparse = Reading::of_layout(&self.path, Some(11));
            if sparse.missing(wants).is_empty() {
                (layout, reading, missing) = (Some(11), sparse, Vec::new());
            }
        }
        assert!(
            missing.is_empty(),
            "{missing:?} not on {}: {reading}",
            self.path.display()
        );
        let painted = self.painted_over(&reading.boxes_of(wants));
        let lacking = Reading::of_layout(&painted.path, layout);
        assert!(
            !lacking.missing(wants).is_empty(),
            "{wants:?} still read with their words painted over: {lacking}"
        );
        reading
    }

    /// The picture with each box (left, top, width, height, in pixels) painted in the colour
    /// just outside its corner: the same picture lacking what the boxes held.
    fn painted_over(&self, boxes: &[[usize; 4]]) -> Picture {
        let mut rgb = self.rgb.clone();
        for &[x, y, w, h] in boxes {
            let (x0, y0) = (x.saturating_sub(2), y.saturating_sub(2));
            let (x1, y1) = ((x + w + 2).min(self.width), (y + h + 2).min(self.height));
            let fill = self.pixel(x0.saturating_sub(1), y0.saturating_sub(1));
            for yy in y0..y1 {
                for xx in x0..x1 {
                    let i = (yy * self.width + xx) * 3;
                    rgb[i..i + 3].copy_from_slice(&fill);
                }
            }
        }
        let path = self.path.with_extension("painted.png");
        write_png(&path, self.width, self.height, &rgb);
        Picture {
            width: self.width,
            height: self.height,
            rgb,
            path,
        }
    }

    /// A part of the picture (fractions of width and height), scaled up twice and made
    /// black on white for the OCR (dark text on a coloured banner reads poorly otherwise); with
    /// `light_ink`, for light text on a dark panel, the light pixels become the ink, ramping
    /// with brightness to keep the glyphs' anti-aliased edges (a hard threshold broke the grey
    /// text's thin strokes: 0 read as c).
    fn crop_for_ocr(&self, x0: f32, y0: f32, x1: f32, y1: f32, light_ink: bool) -> Picture {
        const SCALE: usize = 2;
        let ((xa, xb), (ya, yb)) = self.rect(x0, y0, x1, y1);
        let (w, h) = ((xb - xa) * SCALE, (yb - ya) * SCALE);
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let p = self.pixel(xa + x / SCALE, ya + y / SCALE);
                let sum = p.iter().map(|c| i32::from(*c)).sum::<i32>();
                // 0: no ink, 300: full ink.
                let ink = if light_ink {
                    (sum - 150).clamp(0, 300)
                } else if sum < 200 {
                    300
                } else {
                    0
                };
                let v = (255 - ink * 255 / 300) as u8;
                data.extend_from_slice(&[v, v, v]);
            }
        }
        let path = self.path.with_extension("crop.png");
        write_png(&path, w, h, &data);
        Picture {
            width: w,
            height: h,
            rgb: data,
            path,
        }
    }

    /// Pixel bounds of a part of the picture given in fractions of width and height.
    fn rect(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> ((usize, usize), (usize, usize)) {
        let (w, h) = (self.width as f32, self.height as f32);
        (
            ((x0 * w) as usize, (x1 * w) as usize),
            ((y0 * h) as usize, (y1 * h) as usize),
        )
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Share of pixels in a rectangle (fractions of the picture) that satisfy `f`.
    pub(crate) fn share(
        &self,
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        f: impl Fn([u8; 3]) -> bool,
    ) -> f32 {
        let ((xa, xb), (ya, yb)) = self.rect(x0, y0, x1, y1);
        let mut n = 0;
        for y in ya..yb {
            for x in xa..xb {
                n += usize::from(f(self.pixel(x, y)));
            }
        }
        n as f32 / ((xb - xa) * (yb - ya)).max(1) as f32
    }

    fn distinct_colours(&self) -> usize {
        let mut set = std::collections::HashSet::new();
        for p in self.rgb.chunks(3) {
            set.insert([p[0] >> 3, p[1] >> 3, p[2] >> 3]);
        }
        set.len()
    }
}

/// Runs `tvilling --screenshot` under xvfb-run with the sun and the simulator's clock at
/// `clock` (UTC), and returns the picture.
pub(crate) fn screenshot(name: &str, clock: &str, extra: &[&str]) -> Picture {
    let mut args = vec!["--sun", clock, "--sim-start", clock];
    args.extend_from_slice(extra);
    shoot(&temp_dir(name).join("shot.png"), args)
}

/// Runs `tvilling --screenshot OUT --size 800x500 ARGS` under xvfb-run; the picture.
fn shoot<S: AsRef<std::ffi::OsStr>>(out: &Path, args: impl IntoIterator<Item = S>) -> Picture {
    let result = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x768x24"])
        .arg(env!("CARGO_BIN_EXE_tvilling"))
        .arg("--screenshot")
        .arg(out)
        .args(["--size", "800x500"])
        .args(args)
        .output()
        .expect("xvfb-run (Debian package xvfb) must be installed");
    assert!(
        result.status.success(),
        "tvilling --screenshot failed: {}",
        String::from_utf8_lossy(&result.stderr)
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pic = Picture::load(out);
    assert_eq!((pic.width, pic.height), (800, 500), "window size");
    pic
}

const MIDSUMMER_NOON: &str = "2026-06-21T12:00";

/// A lit street lamp's marker: warm yellow.
fn is_lamp(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 150 && g > 110 && b < r - 60 && (20..=70).contains(&(r - g))
}

/// A signal marker showing red or green.
pub(crate) fn is_signal(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    (r > 170 && g < 60 && b < 60) || (g > 150 && r < 80 && b < 120)
}

/// Lit building walls and roofs: light, warm-to-neutral greys (not sky, not UI black).
fn is_building(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 120 && r >= b - 12 && (r - g).abs() < 40 && r - b < 70 && !(g > r + 8 && g > b)
}

/// The selection highlight (orange), lit or in shade.
fn is_highlight(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 120 && r - b > 70 && g > b && r - g > 35
}

/// Park green.
fn is_park(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    g > r + 10 && g > b + 20
}

/// egui's dark window background.
pub(crate) fn is_panel(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 40)
}

#[test]
fn the_city_renders_with_buildings_parks_and_panels() {
    let pic = screenshot("city", MIDSUMMER_NOON, &[]);
    assert!(
        pic.distinct_colours() > 80,
        "a real scene has many colours, got {}",
        pic.distinct_colours()
    );
    // The middle of the view is full of buildings (the city is framed on load).
    let buildings = pic.share(0.3, 0.35, 0.9, 0.85, is_building);
    assert!(
        buildings > 0.15,
        "buildings cover {:.1}% of the centre",
        buildings * 100.0
    );
    // Humlegården and the other parks are drawn.
    let parks = pic.share(0.2, 0.2, 0.9, 0.9, is_park);
    assert!(parks > 0.01, "parks cover {:.2}%", parks * 100.0);
    // The toolbar window sits top left.
    assert!(
        pic.share(0.0, 0.02, 0.3, 0.2, is_panel) > 0.3,
        "toolbar missing"
    );
    // Nothing is highlighted before a pick.
    assert!(pic.share(0.0, 0.0, 1.0, 1.0, is_highlight) < 0.001);
}

#[test]
fn a_selected_building_is_highlighted_and_inspected() {
    // Kungliga biblioteket in Humlegården.
    // Five simulated minutes a second: its meter reports a few times before the picture.
    let pic = screenshot(
        "selected",
        MIDSUMMER_NOON,
        &[
            "--select",
            "way/15803083",
            "--sim-speed",
            "300",
            "--frames",
            "8",
        ],
    );
    let highlight = pic.share(0.0, 0.0, 1.0, 1.0, is_highlight);
    assert!(
        highlight > 0.01,
        "highlighted building covers {:.2}%",
        highlight * 100.0
    );
    // The inspector window sits top right, with the meter's chart below its rows.
    assert!(
        pic.share(0.62, 0.05, 0.99, 0.3, is_panel) > 0.3,
        "inspector missing"
    );
    let lines = pic.share(0.6, 0.45, 0.99, 0.95, is_saturated) * 800.0 * 500.0;
    assert!(lines > 60.0, "{lines} chart-line pixels");
}

#[test]
fn at_night_lamps_are_lit_signals_show_their_aspect_and_the_live_panel_counts_devices() {
    // 17:00 UTC on 23 November: 18:00 in Stockholm, dark. The simulator drives the devices.
    let pic = screenshot("night", "2026-11-23T17:00", &["--frames", "4"]);
    let everywhere = |f: fn([u8; 3]) -> bool| pic.share(0.0, 0.0, 1.0, 1.0, f) * 800.0 * 500.0;
    let lamps = everywhere(is_lamp);
    let signals = everywhere(is_signal);
    assert!(lamps > 300.0, "{lamps} lit-lamp pixels");
    assert!(signals > 20.0, "{signals} red or green signal pixels");
    // The same view at midsummer noon has no lit lamp.
    let day = screenshot("day", MIDSUMMER_NOON, &["--frames", "4"]);
    let day_lamps = day.share(0.0, 0.0, 1.0, 1.0, is_lamp) * 800.0 * 500.0;
    assert!(day_lamps < lamps / 20.0, "{day_lamps} lamp pixels by day");
    // The live panel sits bottom left, and counts the simulated devices by kind and health.
    assert!(
        pic.share(0.01, 0.55, 0.3, 0.85, is_panel) > 0.3,
        "live panel missing"
    );
    // The counts by kind and the source listed.
    pic.assert_shows(&[
        "signalheads168",
        "meters195",
        "airsensors7",
        "lamps",
        "simulator",
    ]);
}

/// A ramp colour of the warm half (yellow to red): no default building colour is this
/// saturated.
fn is_warm_ramp(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 120 && b < 90 && r - b > 80 && g < r + 10
}

#[test]
fn colour_by_energy_intensity_recolours_the_buildings_and_shows_its_legend_in_swedish() {
    // 10:00 on a November Monday: offices at work, heating on.
    let clock = "2026-11-23T09:00";
    let plain = screenshot("type", clock, &[]);
    let by = screenshot(
        "intensity",
        clock,
        &["--colour-by", "intensity", "--lang", "sv"],
    );
    let warm = by.share(0.3, 0.3, 0.9, 1.0, is_warm_ramp);
    let warm_plain = plain.share(0.3, 0.3, 0.9, 1.0, is_warm_ramp);
    assert!(
        warm > 0.008,
        "{:.2}% of the view in warm ramp colours",
        warm * 100.0
    );
    assert!(
        warm_plain < warm / 10.0,
        "{:.3}% before",
        warm_plain * 100.0
    );
    // The layers panel with the legend, bottom right, in Swedish.
    assert!(
        by.share(0.65, 0.55, 0.9, 0.98, is_panel) > 0.3,
        "layers panel missing"
    );
    let text = by.assert_shows(&[
        "lager",
        "teckenforklaring",
        "perar",
        "intensitet",
        "byggnader",
    ]);
    for english in ["legend", "peryear", "buildings"] {
        assert!(
            !text.has_exact(english),
            "{english:?} left in English: {text}"
        );
    }
}

/// A strongly coloured pixel (chart lines, markers), not a grey of the panels or the city.
fn is_saturated(p: [u8; 3]) -> bool {
    let max = p.iter().max().copied().unwrap_or(0);
    let min = p.iter().min().copied().unwrap_or(0);
    max - min > 80
}

#[test]
fn clicking_an_air_sensor_inspects_it_with_a_chart_of_its_history() {
    // Five simulated minutes a second: the sensor reports every minute, so a few seconds of
    // frames give the chart several points.
    let pic = screenshot(
        "inspect-air",
        "2026-11-23T06:00",
        &[
            "--select",
            "air/1",
            "--sim-speed",
            "300",
            "--frames",
            "10",
            "--open",
            "none",
        ],
    );
    // The inspector, top right, with the chart's coloured lines in its lower half.
    assert!(
        pic.share(0.6, 0.05, 0.99, 0.3, is_panel) > 0.3,
        "inspector missing"
    );
    let lines = pic.share(0.62, 0.52, 0.97, 0.72, is_saturated) * 800.0 * 500.0;
    assert!(lines > 60.0, "{lines} chart-line pixels");
    // The selected sensor's marker is highlighted.
    assert!(pic.share(0.0, 0.0, 0.58, 1.0, is_highlight) > 0.001);
}

/// The magenta of a fault (alarm labels, faulty lamps).
fn is_fault_magenta(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    r > 170 && g < 110 && b > 140
}

#[test]
fn the_city_window_lists_the_lamp_faults_as_alarms() {
    // Night: the simulator's broken lamps are dark; the alarms tab annunciates them on the desk
    // (priority low) and lists them in magenta.
    let pic = screenshot(
        "city-window",
        "2026-11-23T17:00",
        &["--open", "city", "--frames", "4"],
    );
    assert!(
        pic.share(0.3, 0.03, 0.65, 0.1, is_panel) > 0.3,
        "city window missing"
    );
    let faults = pic.share(0.28, 0.1, 0.75, 0.75, is_fault_magenta) * 800.0 * 500.0;
    assert!(faults > 20.0, "{faults} magenta alarm pixels");
    // Above them, the operator's desk: each alarm's priority first (low: light blue).
    let low = pic.share(0.455, 0.3, 0.495, 0.5, |p| {
        let [r, g, b] = p.map(i32::from);
        b > 170 && g > 130 && r > 80 && r < 160 && b - r > 60
    }) * 800.0
        * 500.0;
    assert!(low > 10.0, "{low} low-priority label pixels");
}

#[test]
fn a_device_reporting_only_unknown_fields_shows_them_in_the_inspector_and_the_live_panel() {
    // A hand-written registry and two real uplinks: a lamp controller that reports only lux and
    // battery voltage, and an air sensor registered in lower case whose uplink (The Things
    // Stack) carries its DevEUI in upper case.
    let dir = temp_dir("unmapped");
    std::fs::write(
        dir.join("registry.toml"),
        "[[device]]\nid = \"lamp-kungsgatan-1\"\nkind = \"lamp\"\nlon = 18.0660\nlat = 59.3360\n\n\
         [[device]]\nid = \"a1b2c3d4e5f60708\"\nkind = \"air_sensor\"\nlon = 18.0614\nlat = 59.3378\n",
    )
    .expect("registry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let lines = [
        serde_json::json!({"t": now, "source": "mqtt", "topic": "city/lighting/1", "format": "senml",
            "payload": r#"[{"bn":"lamp-kungsgatan-1:","n":"lux","v":12},{"n":"battery_v","u":"V","v":3.6}]"#}),
        serde_json::json!({"t": now + 10, "source": "mqtt", "topic": "v3/city@ttn/devices/air/up", "format": "tts",
            "payload": r#"{"end_device_ids":{"dev_eui":"A1B2C3D4E5F60708"},"uplink_message":{"decoded_payload":{"NO2":38.5}}}"#}),
    ];
    let replay = dir.join("rec.jsonl");
    std::fs::write(
        &replay,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("replay");
    let registry = dir.join("registry.toml");
    let pic = screenshot(
        "unmapped-shot",
        "2026-11-23T11:00",
        &[
            "--registry",
            registry.to_str().expect("path"),
            "--replay",
            replay.to_str().expect("path"),
            "--no-simulate",
            "--select",
            "lamp-kungsgatan-1",
            "--frames",
            "8",
        ],
    );
    // ... and the air sensor came alive despite the DevEUI's case: one live air sensor.
    pic.assert_shows(&[
        "reports,notmapped",
        "lux,battery_v",
        "messageswithnoknownfield",
        "noknownfield1",
        "neverseen",
        "airsensors1",
    ]);
}

#[test]
fn the_timeline_plays_back_a_recorded_dawn_under_a_banner_no_one_can_miss() {
    // Record the dawn: lamps are lit at 06:00 UTC (07:00 in Stockholm) and off by 07:30
    // (sunrise about 06:50 UTC).
    let dir = temp_dir("timeline-record");
    let db = dir.join("dawn.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args([
            "--headless",
            "--simulate",
            "1",
            "--sim-start",
            "2026-11-23T05:30",
            "--until",
            "2026-11-23T07:30",
            "--history",
        ])
        .arg(&db)
        .output()
        .expect("record");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = db.to_str().expect("path");
    // The twin as it was at 06:00, in the window: past lamps lit, under the banner.
    let past = screenshot(
        "timeline-past",
        "2026-11-23T06:00",
        &[
            "--simulate",
            "1",
            "--history",
            db,
            "--at",
            "2026-11-23T06:00",
            "--frames",
            "8",
        ],
    );
    // Now (the live edge at 07:30, run live): the same lamps are dark, and no banner.
    let now = screenshot(
        "timeline-now",
        "2026-11-23T07:30",
        &["--simulate", "1", "--frames", "8"],
    );
    // Below the banner (whose amber would count as lamp light) and above the timeline.
    let lit = |p: &Picture| p.share(0.0, 0.12, 1.0, 0.75, is_lamp) * 800.0 * 500.0;
    assert!(
        lit(&past) > 300.0,
        "{} lit-lamp pixels in the past",
        lit(&past)
    );
    assert!(
        lit(&now) < lit(&past) / 10.0,
        "{} lit-lamp pixels now",
        lit(&now)
    );
    // The banner: amber, top centre, and its words.
    let is_amber = |p: [u8; 3]| {
        let [r, g, b] = p.map(i32::from);
        r > 220 && (150..210).contains(&g) && b < 60
    };
    assert!(past.share(0.2, 0.0, 0.8, 0.1, is_amber) > 0.3, "no banner");
    assert!(
        now.share(0.2, 0.0, 0.8, 0.1, is_amber) < 0.001,
        "a banner while live"
    );
    past.crop_for_ocr(0.2, 0.0, 0.8, 0.1, false).assert_shows(&[
        "playback2026-11-2307:00",
        "1h",
        "behindlive",
    ]);
    let live = now.text();
    assert!(!live.has("playback"), "{live}");
}

#[test]
fn the_scenarios_window_compares_two_scenarios_with_a_table_and_an_hourly_plot() {
    // `--compare`: the window opens with both scenarios chosen and compares the first two
    // hours of 23 November; the screenshot waits for the comparison to finish.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = format!(
        "{},{}",
        root.join("scenes/baseline.toml").display(),
        root.join("scenes/led-night-dimming.toml").display()
    );
    let pic = screenshot(
        "scenarios",
        "2026-11-23T12:00",
        &[
            "--compare",
            &files,
            "--compare-day",
            "2026-11-23",
            "--compare-hours",
            "2",
            "--open",
            "scenarios",
            "--frames",
            "3",
        ],
    );
    pic.assert_shows(&[
        "scenarios",
        "baseline:thedefaultdemo",
        "ledretrofitwithnightdimming",
        "lightingcost(sek)",
        "2026-11-2300:00,2h,seed1",
        "streetlighting,kwbyhourfrommidnight",
    ]);
    // The comparison ran: the LED scenario's lighting is 29.4 % lower, a difference drawn in
    // light green (increases are red), whatever the OCR makes of the minus sign.
    // The numbers from a crop of the table (A, B and % columns), scaled up: across the whole
    // picture the OCR has dropped their decimal points.
    pic.crop_for_ocr(0.62, 0.36, 0.9, 0.56, true)
        .assert_shows(&["29.4"]);
    let saving = pic.share(0.7, 0.35, 0.9, 0.75, |[r, g, b]| {
        g > 200 && i32::from(g) - i32::from(r) > 60 && i32::from(g) - i32::from(b) > 60
    });
    assert!(saving > 0.002, "no difference drawn as a saving: {saving}");
    // The plot draws both runs: two lines of different colours across its area.
    let (red, blue) = (
        // egui_plot's first two series colours: a muted red and a blue.
        pic.share(0.35, 0.74, 0.8, 0.95, |[r, g, b]| {
            r > 170 && i32::from(r) - i32::from(g) > 50 && (i32::from(g) - i32::from(b)).abs() < 20
        }),
        pic.share(0.35, 0.74, 0.8, 0.95, |[r, _, b]| {
            b > 150 && i32::from(b) - i32::from(r) > 60
        }),
    );
    assert!(red > 0.002 && blue > 0.002, "plot lines: {red} {blue}");
}

/// A planned building (light blue, darker at night): blue well above red and green.
fn is_planned(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    b > 90 && b > r + 50 && b > g + 15
}

/// A lamp coloured as using less energy under B: green well above red and blue.
fn is_saving(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    g > 120 && g > r + 60 && g > b + 40
}

#[test]
fn split_view_shows_the_city_under_a_and_b_side_by_side() {
    // Baseline (A, left) and the office block (B, right) at 00:30 on 23 November, looking at
    // the parking lot in Östermalm where the block is planned: it stands on the right only.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pair = |b: &str| {
        format!(
            "{},{}",
            root.join("scenes/baseline.toml").display(),
            root.join(b).display()
        )
    };
    let common = [
        "--compare-day",
        "2026-11-23",
        "--compare-hours",
        "1",
        "--show",
        "split",
        "--show-at",
        "00:30",
        "--look-at",
        "18.0793,59.3335,250",
        "--no-ui",
        "--frames",
        "3",
    ];
    let files = pair("scenes/office-block.toml");
    let mut args = vec!["--compare", &files];
    args.extend(common);
    let pic = screenshot("split-office", "2026-11-22T23:30", &args);
    let (left, right) = (
        pic.share(0.0, 0.0, 0.5, 1.0, is_planned),
        pic.share(0.5, 0.0, 1.0, 1.0, is_planned),
    );
    assert!(right > 0.002, "no planned building on the right: {right}");
    assert!(left < 0.0005, "a planned building on the left: {left}");
    // Both halves draw their side's lamps, lit at night.
    for (x0, x1) in [(0.0, 0.5), (0.5, 1.0)] {
        let lamps = pic.share(x0, 0.0, x1, 1.0, is_lamp);
        assert!(lamps > 0.0005, "no lit lamps in {x0}..{x1}: {lamps}");
    }

    // LED night dimming coloured by difference: every lamp on both sides is green (it uses
    // less under B), none shows its lit yellow; no planned building.
    let files = pair("scenes/led-night-dimming.toml");
    let mut args = vec!["--compare", &files, "--colour-by", "difference"];
    args.extend(common);
    let pic = screenshot("split-led", "2026-11-22T23:30", &args);
    for (x0, x1) in [(0.0, 0.5), (0.5, 1.0)] {
        let saving = pic.share(x0, 0.0, x1, 1.0, is_saving);
        let lit = pic.share(x0, 0.0, x1, 1.0, is_lamp);
        assert!(saving > 0.0005, "no saving lamps in {x0}..{x1}: {saving}");
        assert!(
            lit < saving / 20.0,
            "lamps still lit yellow in {x0}..{x1}: {lit}"
        );
        assert!(pic.share(x0, 0.0, x1, 1.0, is_planned) < 0.0005);
    }
}

#[test]
fn the_scenario_editor_offers_calendars_timings_buildings_and_saving() {
    let pic = screenshot(
        "editor",
        "2026-11-23T12:00",
        &["--open", "editor", "--frames", "3"],
    );
    // Undo, redo and save are greyed until there is an edit (too faint to read).
    pic.assert_shows(&[
        "newscenario",
        "dimmingcalendar",
        "weekdays",
        "00:0050,06:00100,22:0060",
        "addthecalendar",
        "signaltiming",
        "newbuilding",
    ]);
    // Bottom left, over the city.
    assert!(
        pic.share(0.0, 0.55, 0.45, 0.9, is_panel) > 0.4,
        "no editor window"
    );
}

/// Water as the view draws it (lit by a high sun).
fn is_water(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    b > 160 && b - r > 60 && g > r + 20
}

#[test]
fn the_default_scene_has_stockholms_water() {
    // Looking south from Norrmalm over Strömmen, Gamla stan and Skeppsholmen at midsummer:
    // the water comes from the shipped Stadskarta polygons (the OSM extract has none).
    let pic = screenshot(
        "water",
        "2026-06-21T10:00",
        &[
            "--look-at",
            "18.072,59.328,1600",
            "--open",
            "none",
            "--frames",
            "3",
        ],
    );
    let water = pic.share(0.0, 0.4, 1.0, 1.0, is_water);
    assert!(water > 0.2, "water covers {water} of the lower picture");
}

#[test]
fn the_control_room_shows_the_alarm_list_a_status_strip_and_a_grey_city() {
    // Night, the simulator's broken lamps dark: the list on the left annunciates them, the
    // strip at the bottom says live, and lit lamps (normal) are no longer yellow.
    let clock = "2026-11-23T17:00";
    let room = screenshot(
        "control-room",
        clock,
        &["--mode", "control-room", "--frames", "4"],
    );
    let normal = screenshot(
        "control-room-normal",
        clock,
        &["--open", "none", "--frames", "4"],
    );
    let list = room.share(0.0, 0.1, 0.45, 0.85, is_panel);
    assert!(list > 0.5, "the alarm list covers {list} of the left");
    let strip = room.share(0.55, 0.955, 1.0, 1.0, is_panel);
    assert!(strip > 0.5, "the status strip covers {strip} of the bottom");
    let low = room.share(0.0, 0.35, 0.1, 0.8, |p| {
        let [r, g, b] = p.map(i32::from);
        b > 170 && g > 130 && r > 80 && r < 160 && b - r > 60
    }) * 800.0
        * 500.0;
    assert!(low > 10.0, "{low} low-priority label pixels in the list");
    // The view: lit lamps show yellow in the normal palette and grey in the control room.
    let lamps_normal = normal.share(0.55, 0.1, 1.0, 0.9, is_lamp);
    let lamps_room = room.share(0.55, 0.1, 1.0, 0.9, is_lamp);
    assert!(
        lamps_normal > 0.001,
        "lit lamps in the normal view: {lamps_normal}"
    );
    assert!(
        lamps_room < lamps_normal / 10.0,
        "grey palette: lamp yellow {lamps_room} against {lamps_normal}"
    );
}

impl Picture {
    /// The pixels satisfying `f`: how many, and their bounding box (x0, y0, x1, y1).
    fn bounds(&self, f: impl Fn([u8; 3]) -> bool) -> (usize, (usize, usize, usize, usize)) {
        let mut n = 0;
        let mut b = (usize::MAX, usize::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                if f(self.pixel(x, y)) {
                    n += 1;
                    b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
                }
            }
        }
        (n, b)
    }

    /// Pixels satisfying `f` within a box (inclusive), and the box's area.
    fn count_in(
        &self,
        (x0, y0, x1, y1): (usize, usize, usize, usize),
        f: impl Fn([u8; 3]) -> bool,
    ) -> (usize, usize) {
        let mut n = 0;
        for y in y0..=y1 {
            for x in x0..=x1 {
                n += usize::from(f(self.pixel(x, y)));
            }
        }
        (n, (x1 + 1 - x0) * (y1 + 1 - y0))
    }
}

#[test]
fn stale_devices_are_hatched_and_never_seen_ones_outlined() {
    // Three air sensors over Strömmen, 25 m apart, fed by a real Mosquitto: one heard 30 s
    // ago (live), one last heard two hours ago (stale: its kind reports every 10 min), one
    // never heard from. Close up, with nothing else in the view.
    let broker = crate::broker::Broker::start("stale-shot");
    let dir = temp_dir("stale-shot");
    let registry = dir.join("registry.toml");
    let mut text = String::new();
    for (id, lon) in [
        ("a1a1a1a1a1a1a1a1", 18.07560),
        ("b2b2b2b2b2b2b2b2", 18.07604),
        ("c3c3c3c3c3c3c3c3", 18.07648),
    ] {
        text += &format!(
            "[[device]]\nid = \"{id}\"\nkind = \"air_sensor\"\nlon = {lon}\nlat = 59.3296\n\n"
        );
    }
    std::fs::write(&registry, text).expect("registry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for (id, ago_ms) in [
        ("a1a1a1a1a1a1a1a1", 30_000),
        ("b2b2b2b2b2b2b2b2", 7_200_000),
    ] {
        let time = tvilling_sensors::time::format_rfc3339(now - ago_ms);
        broker.publish_retained(
            &format!("application/1/device/{id}/event/up"),
            format!(r#"{{"time":"{time}","deviceInfo":{{"devEui":"{id}"}},"fPort":10,"object":{{"no2":20}}}}"#)
                .as_bytes(),
        );
    }
    let url = format!("mqtt://127.0.0.1:{}/application/#", broker.port);
    let pic = shoot(
        &dir.join("shot.png"),
        [
            "--sun",
            "2026-06-21T10:00",
            "--no-simulate",
            "--registry",
            registry.to_str().expect("path"),
            "--mqtt",
            &url,
            "--mqtt-format",
            "chirpstack",
            "--no-ui",
            "--frames",
            "4",
            "--look-at",
            "18.07604,59.3296,90",
        ],
    );
    // Live: solid green (NO2 low), no stripes.
    let stripe = |p: [u8; 3]| {
        let [r, g, b] = p.map(i32::from);
        b > r + 15 && b > g + 10 && b < 110 && r < 70
    };
    let (green, live_box) = pic.bounds(|p| {
        let [r, g, b] = p.map(i32::from);
        g > r + 60 && g > b + 60
    });
    assert!(green > 500, "{green} live marker pixels");
    let (solid, live_area) = pic.count_in(live_box, |p| p[1] > 150);
    assert_eq!(pic.count_in(live_box, stripe).0, 0, "the live one is solid");
    // Stale: blue-grey, hatched with dark stripes.
    let (stale, stale_box) = pic.bounds(|p| {
        let [r, g, b] = p.map(i32::from);
        b > r + 30 && b > 120 && g > r
    });
    let stripes = pic.count_in(stale_box, stripe).0;
    assert!(stale > 200, "{stale} stale marker pixels");
    assert!(
        stripes * 3 > stale,
        "hatched: {stripes} stripe pixels against {stale}"
    );
    // Never seen: a grey outline, the water showing through its faces.
    let (never, never_box) = pic.bounds(|p| {
        let [r, g, b] = p.map(i32::from);
        (r - g).abs() < 10 && (g - b).abs() < 10 && r > 145
    });
    assert!(never > 200, "{never} never-seen outline pixels");
    let (_, never_area) = pic.count_in(never_box, |_| true);
    let (outline_fill, live_fill) = (
        never as f64 / never_area as f64,
        solid as f64 / live_area as f64,
    );
    assert!(
        outline_fill < 0.45 && live_fill > 0.45,
        "outlined: {outline_fill} of its box drawn against {live_fill} for a solid marker"
    );
}

#[test]
fn the_kiosk_tours_with_captions_in_both_languages_and_a_simple_inspector() {
    // The tour's first viewpoint, its caption first in the language given (the dwell long
    // enough that it does not turn): in Swedish with an air sensor tapped (the simple
    // inspector, in Swedish, with its large way back), and in English.
    let kiosk = |name: &str, extra: &[&str]| {
        let mut args = vec!["--mode", "kiosk", "--kiosk-dwell", "600", "--frames", "8"];
        args.extend_from_slice(extra);
        screenshot(name, "2026-11-23T15:00", &args)
    };
    let sv = kiosk("kiosk-sv", &["--lang", "sv", "--select", "air/1"]);
    let en = kiosk("kiosk-en", &["--lang", "en"]);
    let sv_text = sv.assert_shows(&[
        "norrmalmochostermalm",
        "byggnader",
        "gatlampor",
        "signalhuvuden",
        "luftsensor",
        "tillbakatillrundturen",
    ]);
    let english = [
        "norrmalmandostermalm",
        "buildings",
        "streetlamps",
        "signalheads",
    ];
    let en_text = en.assert_shows(&english);
    for want in english {
        assert!(!sv_text.has_exact(want), "{want:?} in the Swedish caption");
    }
    // The counts are filled in: the district's buildings, lamps and heads, not zero (the
    // number read before its word, across the spaces OCR puts in it).
    let count_before = |reading: &crate::ocr::Reading, word: &str| -> Option<u32> {
        let before = reading.text_before(word)?;
        let digits: String = before
            .trim_end()
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || *c == ' ')
            .filter(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().ok()
    };
    assert!(
        count_before(&en_text, "buildings").is_some_and(|n| n > 100),
        "{en_text}"
    );
    assert!(
        count_before(&en_text, "signalheads").is_some_and(|n| n > 100),
        "{en_text}"
    );
    // No panels: no toolbar, no Live window.
    for absent in ["layers", "scenarios"] {
        assert!(
            !en_text.has_exact(absent),
            "{absent:?} on a kiosk: {en_text}"
        );
    }
}

#[test]
fn the_control_room_has_a_detail_view_on_the_selection_beside_the_overview() {
    // An air sensor selected: the detail view at the bottom left (under the alarm list) shows
    // it close, in the selection's orange, while the overview keeps the city.
    let room = screenshot(
        "control-room-detail",
        "2026-11-23T17:00",
        &[
            "--mode",
            "control-room",
            "--select",
            "air/1",
            "--frames",
            "5",
        ],
    );
    let selected = |p: [u8; 3]| {
        let [r, g, b] = p.map(i32::from);
        r > 220 && (110..=170).contains(&g) && b < 60
    };
    // The detail view: 396 px wide, a quarter of this small window's height (what the list
    // leaves), above the 40 px strip.
    let (top, bottom) = (1.0 - 0.25 - 40.0 / 500.0, 1.0 - 40.0 / 500.0);
    let detail = room.share(0.0, top + 0.02, 396.0 / 800.0, bottom, selected) * 396.0 * 115.0;
    assert!(detail > 80.0, "{detail} selected pixels in the detail view");
    // Its title, "Detail: air/1" (once read as "detail:ait/1": a letter may be misread, the
    // number may not).
    room.assert_shows(&["detail:air/1"]);
}

#[test]
fn the_extracts_edge_is_a_note_apart_from_the_import_problems() {
    // The shipped extract: no import problem, and the relations cut at its edge counted apart,
    // in the toolbar and in the problems window's own section.
    let pic = screenshot(
        "problems",
        MIDSUMMER_NOON,
        &["--open", "problems", "--frames", "3"],
    );
    pic.assert_shows(&["importproblems0", "cutattheextractsedge15"]);
    // The window below the toolbar, its grey text read from a crop scaled up.
    pic.crop_for_ocr(0.0, 0.34, 0.72, 0.62, true)
        .assert_shows(&[
            "0problemsin",
            "theextractsedge",
            "15featuresreferencemembersoutsidethefile",
            "15drawnfromtheirpartsinside",
            "0notdrawn",
        ]);
}

#[test]
fn a_recording_run_whose_history_cannot_be_used_says_so_in_a_banner() {
    // Told to record to a file that is not a history: the live twin runs on, and a red banner
    // at the top says why there is no history (not only the log).
    let dir = temp_dir("history-banner");
    let bad = dir.join("bad.sqlite");
    std::fs::write(&bad, "not a database at all\n".repeat(200)).expect("write");
    let pic = shoot(
        &dir.join("shot.png"),
        [
            "--sun",
            "2026-11-23T17:00",
            "--sim-start",
            "2026-11-23T17:00",
            "--history",
            bad.to_str().expect("path"),
            "--frames",
            "3",
        ],
    );
    let red = |p: [u8; 3]| {
        let [r, g, b] = p.map(i32::from);
        r > 160 && g < 60 && b < 60
    };
    assert!(
        pic.share(0.05, 0.1, 0.95, 0.2, red) > 0.2,
        "no red banner: {}",
        pic.share(0.05, 0.1, 0.95, 0.2, red)
    );
    pic.crop_for_ocr(0.05, 0.105, 0.95, 0.215, true)
        .assert_shows(&[
            "history:history",
            "notansqlitefile",
            "runningwithouthistory",
        ]);
}
