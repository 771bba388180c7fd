//! Two runs side by side: the metrics table (`metrics.csv`) and a page with plots
//! (`report.html`, plots as inline SVG: no JavaScript, no network).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use tvilling_metrics::metrics::SignalMetrics;

use super::file::{Assumptions, Scenario};

/// What one run measured over its span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunResult {
    pub lighting_kwh: f64,
    pub lamp_hours_lit: f64,
    pub lamp_hours_dark_at_night: f64,
    pub building_kwh: f64,
    pub heating_kwh: f64,
    /// Sensor-hours above each limit value, by pollutant name.
    pub hours_over_limit: BTreeMap<String, f64>,
    /// By controller: green and observed head-time, green starts (summed over the run).
    pub signals: BTreeMap<String, SignalMetrics>,
    pub alarms_raised: u64,
    /// Energy in each hour of the span, kWh (the hour's mean power in kW).
    pub hourly_lighting_kwh: Vec<f64>,
    pub hourly_building_kwh: Vec<f64>,
    /// What the scenario's edits changed, a line each.
    pub edits: Vec<String>,
    /// By district (of the shipped districts): lighting and building electricity, kWh.
    pub by_district: BTreeMap<String, DistrictEnergy>,
    /// What SUMO measured under this side's signal timing (`--sumo`).
    pub traffic: Option<super::traffic::TrafficResult>,
    /// Month by month (local months), where the engine keeps them.
    pub months: Vec<MonthFigures>,
    /// The air sensors' mean PM2.5 over the span (the annual mean's limit applies to a year),
    /// µg/m³, where the engine keeps it.
    pub pm25_mean_ugm3: Option<f64>,
    /// The run was stopped before the end of its span: its figures are of the months done.
    pub incomplete: bool,
}

/// One local month of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub lighting_kwh: f64,
    pub building_kwh: f64,
    pub heating_kwh: f64,
    pub lamp_hours_dark_at_night: f64,
    /// Sensor-hours over any limit, summed over the pollutants.
    pub hours_over_limit: f64,
    pub alarms_raised: u64,
    pub green_share: Option<f64>,
    pub pm25_mean_ugm3: Option<f64>,
}

/// One district's energy over the run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DistrictEnergy {
    pub lighting_kwh: f64,
    pub building_kwh: f64,
}

/// One metric of both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub unit: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Row {
    pub fn difference(&self) -> Option<f64> {
        Some(self.b? - self.a?)
    }

    /// Difference in percent of A (none when A is zero).
    pub fn percent(&self) -> Option<f64> {
        let (a, b) = (self.a?, self.b?);
        (a != 0.0).then(|| (b - a) / a * 100.0)
    }
}

/// The metrics table of A against B, each priced under its own scenario's assumptions.
pub fn rows(a: &RunResult, b: &RunResult, aa: &Assumptions, ab: &Assumptions) -> Vec<Row> {
    let row = |metric: &str, unit, f: &dyn Fn(&RunResult, &Assumptions) -> Option<f64>| Row {
        metric: metric.into(),
        unit,
        a: f(a, aa),
        b: f(b, ab),
    };
    type Energy = fn(&RunResult) -> f64;
    type Price = fn(&Assumptions) -> Option<f64>;
    type Factor = fn(&Assumptions) -> f64;
    // Each energy: its kWh, its cost (when priced) and its emissions.
    let energies: [(&str, Energy, Price, Factor); 3] = [
        (
            "lighting",
            |r| r.lighting_kwh,
            |s| Some(s.electricity_sek_per_kwh),
            |s| s.electricity_kg_co2e_per_kwh,
        ),
        (
            "building electricity",
            |r| r.building_kwh,
            |s| Some(s.electricity_sek_per_kwh),
            |s| s.electricity_kg_co2e_per_kwh,
        ),
        (
            "heating",
            |r| r.heating_kwh,
            |s| s.heating_sek_per_kwh,
            |s| s.heating_kg_co2e_per_kwh,
        ),
    ];
    let mut out = Vec::new();
    for (name, kwh, price, factor) in energies {
        out.push(row(&format!("{name} energy"), "kWh", &|r, _| Some(kwh(r))));
        out.push(row(&format!("{name} cost"), "SEK", &|r, s| {
            price(s).map(|p| kwh(r) * p)
        }));
        out.push(row(&format!("{name} emissions"), "kg CO2e", &|r, s| {
            Some(kwh(r) * factor(s))
        }));
        if name == "lighting" {
            out.push(row("lamp-hours lit", "h", &|r, _| Some(r.lamp_hours_lit)));
            out.push(row("lamp-hours dark at night", "h", &|r, _| {
                Some(r.lamp_hours_dark_at_night)
            }));
        }
    }
    let pollutants: Vec<&String> = a
        .hours_over_limit
        .keys()
        .chain(b.hours_over_limit.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for p in pollutants {
        out.push(Row {
            metric: format!("{p} sensor-hours over the limit"),
            unit: "h",
            a: a.hours_over_limit.get(p).copied(),
            b: b.hours_over_limit.get(p).copied(),
        });
    }
    let districts: std::collections::BTreeSet<&String> =
        a.by_district.keys().chain(b.by_district.keys()).collect();
    for d in districts {
        let get = |r: &RunResult| r.by_district.get(d).copied().unwrap_or_default();
        out.push(Row {
            metric: format!("lighting energy in {d}"),
            unit: "kWh",
            a: Some(get(a).lighting_kwh),
            b: Some(get(b).lighting_kwh),
        });
        out.push(Row {
            metric: format!("building electricity in {d}"),
            unit: "kWh",
            a: Some(get(a).building_kwh),
            b: Some(get(b).building_kwh),
        });
    }
    if a.pm25_mean_ugm3.is_some() || b.pm25_mean_ugm3.is_some() {
        out.push(Row {
            metric: "PM2.5 mean over the span (annual limit 25)".into(),
            unit: "µg/m³",
            a: a.pm25_mean_ugm3,
            b: b.pm25_mean_ugm3,
        });
    }
    out.push(Row {
        metric: "alarms raised".into(),
        unit: "",
        a: Some(a.alarms_raised as f64),
        b: Some(b.alarms_raised as f64),
    });
    traffic_rows(a, b, &mut out);
    let controllers: std::collections::BTreeSet<&String> =
        a.signals.keys().chain(b.signals.keys()).collect();
    for c in controllers {
        let get = |r: &RunResult| {
            r.signals
                .get(c)
                .map_or((None, None), |s| (s.green_share(), s.cycle_s()))
        };
        out.push(Row {
            metric: format!("signal {c} green share"),
            unit: "%",
            a: get(a).0.map(|g| g * 100.0),
            b: get(b).0.map(|g| g * 100.0),
        });
        out.push(Row {
            metric: format!("signal {c} cycle"),
            unit: "s",
            a: get(a).1,
            b: get(b).1,
        });
    }
    out
}

/// SUMO's measurements, when either side has them.
fn traffic_rows(a: &RunResult, b: &RunResult, out: &mut Vec<Row>) {
    use super::traffic::{EMISSION_MODEL, TrafficResult};
    if a.traffic.is_none() && b.traffic.is_none() {
        return;
    }
    type Of = fn(&TrafficResult) -> f64;
    let totals: [(&str, &'static str, Of); 5] = [
        ("traffic: trips completed", "", |t| t.arrived as f64),
        ("traffic: mean delay (SUMO timeLoss)", "s", |t| {
            t.mean_time_loss_s
        }),
        ("traffic: mean waiting time", "s", |t| t.mean_waiting_s),
        ("traffic: stops per trip", "", |t| t.mean_stops),
        ("traffic: trips departed", "", |t| t.trips as f64),
    ];
    for (metric, unit, f) in totals {
        out.push(Row {
            metric: metric.into(),
            unit,
            a: a.traffic.as_ref().map(f),
            b: b.traffic.as_ref().map(f),
        });
    }
    let emissions: [(&str, Of); 2] = [("CO2", |t| t.co2_kg), ("fuel", |t| t.fuel_kg)];
    for (what, f) in emissions {
        out.push(Row {
            metric: format!("traffic: {what} ({EMISSION_MODEL})"),
            unit: "kg",
            a: a.traffic.as_ref().map(f),
            b: b.traffic.as_ref().map(f),
        });
    }
    let controllers: std::collections::BTreeSet<&String> = a
        .traffic
        .iter()
        .chain(b.traffic.iter())
        .flat_map(|t| t.controllers.keys())
        .collect();
    for c in controllers {
        let get = |r: &RunResult| {
            r.traffic
                .as_ref()
                .and_then(|t| t.controllers.get(c))
                .copied()
        };
        if get(a).or(get(b)).is_none_or(|t| t.vehicles == 0.0) {
            continue;
        }
        out.push(Row {
            metric: format!("traffic: delay at {c}"),
            unit: "s",
            a: get(a).and_then(|t| t.mean_delay_s()),
            b: get(b).and_then(|t| t.mean_delay_s()),
        });
        out.push(Row {
            metric: format!("traffic: vehicles at {c}"),
            unit: "",
            a: get(a).map(|t| t.vehicles),
            b: get(b).map(|t| t.vehicles),
        });
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{:.3}", if x == 0.0 { 0.0 } else { x }))
        .unwrap_or_default()
}

/// A CSV field, quoted when it holds a comma, quote or newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `metrics.csv`: `metric,unit,a,b,difference,percent`, one row per metric.
pub fn metrics_csv(rows: &[Row]) -> String {
    let mut out = String::from("metric,unit,a,b,difference,percent\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            csv_field(&r.metric),
            csv_field(r.unit),
            num(r.a),
            num(r.b),
            num(r.difference()),
            num(r.percent())
        );
    }
    out
}

/// `months.csv`: one row per local month and side (`month,side,lighting_kwh,...`).
pub fn months_csv(a: &RunResult, b: &RunResult) -> String {
    let mut out = String::from(
        "month,side,lighting_kwh,building_kwh,heating_kwh,lamp_hours_dark_at_night,sensor_hours_over_limit,alarms_raised,green_share,pm25_mean_ugm3\n",
    );
    for (side, r) in [("A", a), ("B", b)] {
        for m in &r.months {
            let _ = writeln!(
                out,
                "{},{side},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{}",
                m.month,
                m.lighting_kwh,
                m.building_kwh,
                m.heating_kwh,
                m.lamp_hours_dark_at_night,
                m.hours_over_limit,
                m.alarms_raised,
                m.green_share.map(|g| format!("{g:.5}")).unwrap_or_default(),
                m.pm25_mean_ugm3
                    .map(|g| format!("{g:.3}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where an hourly chart draws (pixels): the same for the report's SVG and its PNG copies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartLayout {
    pub width: f64,
    pub height: f64,
    /// Margins around the plot area.
    pub left: f64,
    pub top: f64,
    pub plot_w: f64,
    pub plot_h: f64,
    pub hours: usize,
    /// The value at the top of the plot (a round number at or above the largest).
    pub max: f64,
}

impl ChartLayout {
    /// The layout for series of values per hour.
    pub fn for_series<'a>(values: impl Iterator<Item = &'a [f64]> + Clone) -> ChartLayout {
        let (width, height, left, bottom, top, right) = (720.0, 300.0, 64.0, 40.0, 36.0, 150.0);
        let hours = values.clone().map(<[f64]>::len).max().unwrap_or(0).max(1);
        let max = values.flatten().copied().fold(0.0f64, f64::max);
        ChartLayout {
            width,
            height,
            left,
            top,
            plot_w: width - left - right,
            plot_h: height - top - bottom,
            hours,
            max: if max > 0.0 { nice_ceiling(max) } else { 1.0 },
        }
    }

    /// The x of the start of hour `i`.
    pub fn x(&self, i: f64) -> f64 {
        self.left + self.plot_w * i / self.hours as f64
    }

    /// The y of a value.
    pub fn y(&self, v: f64) -> f64 {
        self.top + self.plot_h * (1.0 - v / self.max)
    }

    /// The gridlines' values with their labels.
    pub fn y_ticks(&self) -> Vec<(f64, String)> {
        (0..=4)
            .map(|k| {
                let v = self.max * f64::from(k) / 4.0;
                (v, trim_number(v))
            })
            .collect()
    }

    /// The hours labelled on the x axis (at most 13).
    pub fn hour_ticks(&self) -> impl Iterator<Item = usize> {
        (0..=self.hours).step_by(self.hours.div_ceil(12).max(1))
    }
}

/// A line chart of series over the hours of the span, as SVG.
pub fn line_chart_svg(title: &str, unit: &str, series: &[(&str, &str, &[f64])]) -> String {
    step_chart_svg(title, unit, "hours from the start", &[], series)
}

/// A step chart of series with one value per step (hours, months), as SVG: `x_label` under
/// the axis, `names` (when given) labelling the steps instead of their numbers.
pub fn step_chart_svg(
    title: &str,
    unit: &str,
    x_label: &str,
    names: &[String],
    series: &[(&str, &str, &[f64])],
) -> String {
    let l = ChartLayout::for_series(series.iter().map(|s| s.2));
    let (w, h, left, top, plot_w, plot_h) = (l.width, l.height, l.left, l.top, l.plot_w, l.plot_h);
    let x = |i: f64| l.x(i);
    let y = |v: f64| l.y(v);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12"><title>{}</title><text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title),
        esc(title)
    );
    for (v, label) in l.y_ticks() {
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            yy = y(v)
        );
    }
    if names.is_empty() {
        for i in l.hour_ticks() {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{i}</text>"#,
                x(i as f64),
                top + plot_h + 16.0
            );
        }
    }
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
            x(i as f64 + 0.5),
            top + plot_h + 16.0,
            esc(name)
        );
    }
    let _ = write!(
        svg,
        // The unit above the value labels, clear of long numbers.
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
        left + plot_w / 2.0,
        h - 6.0,
        esc(x_label),
        left - 6.0,
        top - 10.0,
        esc(unit)
    );
    for (n, (name, colour, values)) in series.iter().enumerate() {
        // Each hour's value drawn across that hour (a step line).
        let mut points = String::new();
        for (i, v) in values.iter().enumerate() {
            let _ = write!(
                points,
                "{:.1},{:.1} {:.1},{:.1} ",
                x(i as f64),
                y(*v),
                x(i as f64 + 1.0),
                y(*v)
            );
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/><rect x="{}" y="{}" width="14" height="4" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            points.trim_end(),
            left + plot_w + 12.0,
            top + 10.0 + 20.0 * n as f64,
            left + plot_w + 30.0,
            top + 15.0 + 20.0 * n as f64,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The round number (1, 2, 2.5 or 5 times a power of ten) at or above `v`: a chart's top.
pub fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What the report says about the runs besides their metrics.
pub struct ReportContext<'a> {
    pub a: &'a Scenario,
    pub b: &'a Scenario,
    pub from: &'a str,
    pub to: &'a str,
    pub seed: u64,
    pub wall_s: f64,
    /// How the figures were made, in words (the engine).
    pub engine: &'a str,
}

/// `report.html`: the scenarios, span and seed, the metrics table, plots, and the assumptions
/// with their sources.
pub fn report_html(ctx: &ReportContext, rows: &[Row], a: &RunResult, b: &RunResult) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Tvilling scenario comparison: {} vs {}</title><style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}.neg{{color:#1a7f37}}.pos{{color:#b42318}}</style></head><body>"#,
        esc(&ctx.a.name),
        esc(&ctx.b.name)
    );
    let _ = write!(
        h,
        "<h1>{} (A) vs {} (B)</h1><p>Simulated from {} to {} (Stockholm local time), seed {}, {}; {:.1} s of wall time.</p>",
        esc(&ctx.a.name),
        esc(&ctx.b.name),
        esc(ctx.from),
        esc(ctx.to),
        ctx.seed,
        esc(ctx.engine),
        ctx.wall_s
    );
    if a.incomplete || b.incomplete {
        let done = a
            .months
            .last()
            .map_or(ctx.from.to_string(), |m| m.month.clone());
        let _ = write!(
            h,
            "<p style=\"background:#fde68a;padding:6px\"><b>Incomplete:</b> the run was stopped; these figures are of the months done (to the end of {}), not of the whole span.</p>",
            esc(&done)
        );
    }
    for (label, s, r) in [("A", ctx.a, a), ("B", ctx.b, b)] {
        let _ = write!(
            h,
            "<h2>{label}: {}</h2><p>File <code>{}</code>{}</p><ul>",
            esc(&s.name),
            esc(&s.path.display().to_string()),
            s.description
                .as_deref()
                .map(|d| format!(": {}", esc(d)))
                .unwrap_or_default()
        );
        if r.edits.is_empty() {
            h.push_str("<li>no edits (the base as it runs)</li>");
        }
        for e in &r.edits {
            let _ = write!(h, "<li>{}</li>", esc(e));
        }
        h.push_str("</ul>");
    }
    h.push_str("<h2>Metrics</h2><table><tr><th>metric</th><th>unit</th><th>A</th><th>B</th><th>B − A</th><th>%</th></tr>");
    for r in rows {
        let class = match r.difference() {
            Some(d) if d < 0.0 => " class=\"neg\"",
            Some(d) if d > 0.0 => " class=\"pos\"",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td{class}>{}</td></tr>",
            esc(&r.metric),
            esc(r.unit),
            num(r.a),
            num(r.b),
            num(r.difference()),
            r.percent().map(|p| format!("{p:+.1}")).unwrap_or_default()
        );
    }
    h.push_str("</table>");
    let plots: [(&str, &str, fn(&RunResult) -> &[f64]); 2] = [
        (
            "Lighting power, hour by hour",
            "Street lighting: mean power per hour",
            |r| &r.hourly_lighting_kwh,
        ),
        (
            "Building electricity, hour by hour",
            "Buildings: mean electrical power per hour",
            |r| &r.hourly_building_kwh,
        ),
    ];
    for (heading, title, series) in plots {
        let _ = write!(h, "<h2>{heading}</h2>");
        h.push_str(&line_chart_svg(
            title,
            "kW",
            &[("A", "#1f77b4", series(a)), ("B", "#d62728", series(b))],
        ));
    }
    if !a.months.is_empty() || !b.months.is_empty() {
        let names: Vec<String> = a
            .months
            .iter()
            .chain(&b.months)
            .map(|m| m.month.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        h.push_str("<h2>Month by month</h2><table><tr><th>month</th><th>lighting A, kWh</th><th>lighting B, kWh</th><th>buildings A, kWh</th><th>buildings B, kWh</th><th>heating A, kWh</th><th>heating B, kWh</th><th>alarms A</th><th>alarms B</th><th>PM2.5 A, µg/m³</th><th>PM2.5 B, µg/m³</th></tr>");
        for name in &names {
            let get = |r: &RunResult| r.months.iter().find(|m| &m.month == name).cloned();
            let (ma, mb) = (get(a), get(b));
            let f = |m: &Option<MonthFigures>, v: fn(&MonthFigures) -> Option<f64>| {
                num(m.as_ref().and_then(v))
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                f(&ma, |m| Some(m.lighting_kwh)),
                f(&mb, |m| Some(m.lighting_kwh)),
                f(&ma, |m| Some(m.building_kwh)),
                f(&mb, |m| Some(m.building_kwh)),
                f(&ma, |m| Some(m.heating_kwh)),
                f(&mb, |m| Some(m.heating_kwh)),
                f(&ma, |m| Some(m.alarms_raised as f64)),
                f(&mb, |m| Some(m.alarms_raised as f64)),
                f(&ma, |m| m.pm25_mean_ugm3),
                f(&mb, |m| m.pm25_mean_ugm3),
            );
        }
        h.push_str("</table>");
        let monthly: [(&str, fn(&MonthFigures) -> f64); 3] = [
            ("Street lighting, month by month", |m| m.lighting_kwh),
            ("Building electricity, month by month", |m| m.building_kwh),
            ("District heating, month by month", |m| m.heating_kwh),
        ];
        for (title, f) in monthly {
            let of = |r: &RunResult| -> Vec<f64> {
                names
                    .iter()
                    .map(|n| r.months.iter().find(|m| &m.month == n).map_or(0.0, f))
                    .collect()
            };
            let (va, vb) = (of(a), of(b));
            h.push_str(&step_chart_svg(
                title,
                "kWh",
                "month",
                &names,
                &[("A", "#1f77b4", &va), ("B", "#d62728", &vb)],
            ));
        }
    }
    h.push_str("<h2>Assumptions</h2><table><tr><th>figure</th><th>A</th><th>B</th><th>source (A; B where it differs)</th></tr>");
    let (x, y) = (&ctx.a.assumptions, &ctx.b.assumptions);
    let source = |p: &str, q: &str| {
        if p == q {
            esc(p)
        } else {
            format!("{}; {}", esc(p), esc(q))
        }
    };
    let priced = |v: Option<f64>| v.map_or("not priced".into(), |v| v.to_string());
    let figures: [(&str, String, String, &str, &str); 4] = [
        (
            "electricity, SEK/kWh",
            x.electricity_sek_per_kwh.to_string(),
            y.electricity_sek_per_kwh.to_string(),
            &x.electricity_sek_source,
            &y.electricity_sek_source,
        ),
        (
            "electricity, kg CO2e/kWh",
            x.electricity_kg_co2e_per_kwh.to_string(),
            y.electricity_kg_co2e_per_kwh.to_string(),
            &x.electricity_co2e_source,
            &y.electricity_co2e_source,
        ),
        (
            "district heating, kg CO2e/kWh",
            x.heating_kg_co2e_per_kwh.to_string(),
            y.heating_kg_co2e_per_kwh.to_string(),
            &x.heating_co2e_source,
            &y.heating_co2e_source,
        ),
        (
            "district heating, SEK/kWh",
            priced(x.heating_sek_per_kwh),
            priced(y.heating_sek_per_kwh),
            x.heating_sek_source.as_deref().unwrap_or(""),
            y.heating_sek_source.as_deref().unwrap_or(""),
        ),
    ];
    for (figure, va, vb, sa, sb) in figures {
        let _ = write!(
            h,
            "<tr><td>{figure}</td><td>{va}</td><td>{vb}</td><td>{}</td></tr>",
            source(sa, sb)
        );
    }
    h.push_str("</table><p>Made by Tvilling. The scenario files and the seed used are in this folder.</p></body></html>\n");
    h
}

/// Writes `metrics.csv`, `report.html`, both scenario files as they were and `seed.txt`.
pub fn write_report(
    dir: &Path,
    ctx: &ReportContext,
    a: &RunResult,
    b: &RunResult,
) -> std::io::Result<Vec<Row>> {
    std::fs::create_dir_all(dir)?;
    let rows = rows(a, b, &ctx.a.assumptions, &ctx.b.assumptions);
    std::fs::write(dir.join("metrics.csv"), metrics_csv(&rows))?;
    std::fs::write(dir.join("report.html"), report_html(ctx, &rows, a, b))?;
    if !a.months.is_empty() || !b.months.is_empty() {
        std::fs::write(dir.join("months.csv"), months_csv(a, b))?;
    }
    std::fs::write(dir.join("scenario-a.toml"), &ctx.a.text)?;
    std::fs::write(dir.join("scenario-b.toml"), &ctx.b.text)?;
    std::fs::write(
        dir.join("seed.txt"),
        format!("seed {}\nfrom {}\nto {}\n", ctx.seed, ctx.from, ctx.to),
    )?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kwh: f64) -> RunResult {
        RunResult {
            lighting_kwh: kwh,
            building_kwh: 200.0,
            hours_over_limit: [("NO2".to_string(), 0.0)].into(),
            signals: [(
                "sig-1".to_string(),
                SignalMetrics {
                    green_ms: 45_000,
                    observed_ms: 90_000,
                    cycle_sum_ms: 180_000,
                    cycles: 2,
                },
            )]
            .into(),
            hourly_lighting_kwh: vec![1.0, 2.0, kwh],
            ..Default::default()
        }
    }

    #[test]
    fn rows_price_each_run_under_its_own_assumptions() {
        let a = Assumptions::default();
        let b = Assumptions {
            electricity_sek_per_kwh: 2.0,
            ..Assumptions::default()
        };
        let rows = rows(&run(100.0), &run(60.0), &a, &b);
        let get = |m: &str| rows.iter().find(|r| r.metric == m).expect(m).clone();
        let kwh = get("lighting energy");
        assert_eq!(
            (kwh.difference(), kwh.percent()),
            (Some(-40.0), Some(-40.0))
        );
        let sek = get("lighting cost");
        assert!(sek.a.is_some_and(|v| (v - 141.0).abs() < 1e-9) && sek.b == Some(120.0));
        assert_eq!(
            get("heating cost").a,
            None,
            "heating is not priced by default"
        );
        assert_eq!(get("NO2 sensor-hours over the limit").percent(), None);
        assert_eq!(get("signal sig-1 green share").a, Some(50.0));
        let csv = metrics_csv(&rows);
        assert!(csv.starts_with("metric,unit,a,b,difference,percent\n"));
        assert!(csv.contains("\nlighting energy,kWh,100.000,60.000,-40.000,-40.000\n"));
        assert!(csv.contains("\nheating cost,SEK,,,,\n"));
        let svg = line_chart_svg("t", "kW", &[("A", "#000", &[1.0, 2.0])]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.contains("polyline"));
    }
}
