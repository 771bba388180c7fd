//! What-if scenarios run as `tvilling scenario` runs them: two twins of the default demo on one
//! seed and clock, in lockstep. Fairness (no edits and an edit undone give the baseline's
//! numbers exactly; two runs of one scenario are identical; a lighting edit changes no
//! building number), golden reports, and refusals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tvilling::scenario::{compare, load, local_time_ms};
use tvilling_twin::scenario::report::{Row, RunResult, metrics_csv, rows, write_report};

fn file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// Two hours across dusk on a Monday in November (15:00-17:00 local).
fn span() -> (i64, i64) {
    (
        local_time_ms("2026-11-23T15:00").expect("from"),
        local_time_ms("2026-11-23T17:00").expect("to"),
    )
}

/// A and B's results, the metrics table, and the devices whose energy differs (B less A, kWh,
/// by id): what the city's colour by difference draws.
fn run(a: &str, b: &str) -> (RunResult, RunResult, Vec<Row>, HashMap<String, f64>) {
    let (sa, sb) = (load(&file(a)).expect("a"), load(&file(b)).expect("b"));
    let (from, to) = span();
    let out = compare(&sa, &sb, 7, from, to, Default::default()).expect("compare");
    let changed = out.difference();
    let (ra, rb) = (out.a, out.b);
    let table = rows(&ra, &rb, &sa.assumptions, &sb.assumptions);
    (ra, rb, table, changed)
}

/// Every metric whose name starts with one of `prefixes` is the same in A and B.
fn unmoved(table: &[Row], prefixes: &[&str], edit: &str) {
    for r in table {
        if prefixes.iter().any(|p| r.metric.starts_with(p)) {
            assert_eq!(r.a, r.b, "{}: {edit} moved it", r.metric);
        }
    }
}

fn same_numbers(a: &RunResult, b: &RunResult) -> bool {
    // Everything the runs measured, bit for bit (the edit summaries aside).
    let strip = |r: &RunResult| RunResult {
        edits: Vec::new(),
        ..r.clone()
    };
    strip(a) == strip(b)
}

#[test]
fn no_edits_or_an_edit_undone_give_exactly_the_baseline() {
    let (a, b, _, changed) = run("scenes/baseline.toml", "tests/scenarios/undone.toml");
    assert!(changed.is_empty(), "no device differs: {changed:?}");
    assert!(a.lighting_kwh > 0.0 && a.building_kwh > 0.0, "{a:?}");
    assert!(
        a.hourly_lighting_kwh.len() == 2,
        "{:?}",
        a.hourly_lighting_kwh
    );
    assert_eq!(b.edits.len(), 1, "the edit did apply: {:?}", b.edits);
    assert!(same_numbers(&a, &b), "A {a:?}\nB {b:?}");
    // The districts' energy adds up to the city's.
    let lit: f64 = a.by_district.values().map(|d| d.lighting_kwh).sum();
    let built: f64 = a.by_district.values().map(|d| d.building_kwh).sum();
    assert!(
        (lit - a.lighting_kwh).abs() < 0.001 * a.lighting_kwh,
        "{lit} kWh by district, {} in the city",
        a.lighting_kwh
    );
    assert!(
        (built - a.building_kwh).abs() < 0.001 * a.building_kwh,
        "{built} kWh by district, {} in the city",
        a.building_kwh
    );
    assert!(
        a.by_district.contains_key("NORRMALM") && a.by_district.contains_key("ÖSTERMALM"),
        "{:?}",
        a.by_district.keys().collect::<Vec<_>>()
    );
}

#[test]
fn two_runs_of_a_scenario_are_identical_and_lights_never_move_buildings() {
    let (a, b, table, changed) = run(
        "scenes/led-night-dimming.toml",
        "scenes/led-night-dimming.toml",
    );
    assert!(same_numbers(&a, &b), "A {a:?}\nB {b:?}");
    assert!(changed.is_empty(), "{changed:?}");
    assert!(
        table
            .iter()
            .all(|r| r.difference().is_none_or(|d| d == 0.0))
    );
    let (base, led, table, changed) = run("scenes/baseline.toml", "scenes/led-night-dimming.toml");
    // Every lamp retrofitted or dimmed differs, all of them less; no meter does.
    assert!(changed.len() > 100, "{}", changed.len());
    assert!(
        changed
            .iter()
            .all(|(id, d)| id.starts_with("lamp") && *d < 0.0)
    );
    let saved: f64 = changed.values().sum();
    assert!(
        (saved - (led.lighting_kwh - base.lighting_kwh)).abs() < 1e-6 * base.lighting_kwh,
        "the lamps' differences add up to the city's: {saved}"
    );
    assert!(
        led.lighting_kwh < base.lighting_kwh * 0.8,
        "{base:?} {led:?}"
    );
    unmoved(&table, &["building", "heating"], "a lighting edit");
    assert_eq!(
        (base.lamp_hours_lit, base.lamp_hours_dark_at_night),
        (led.lamp_hours_lit, led.lamp_hours_dark_at_night),
        "dimming and new fittings switch no lamp on or off"
    );
}

#[test]
fn a_new_building_moves_no_lighting_number() {
    let (base, office, table, changed) = run("scenes/baseline.toml", "scenes/office-block.toml");
    // Only the new building's meter differs (it has no energy under A).
    assert_eq!(changed.keys().collect::<Vec<_>>(), ["meter/scenario/1"]);
    assert!(
        office.building_kwh > base.building_kwh,
        "{base:?} {office:?}"
    );
    assert_eq!(office.edits.len(), 1, "{:?}", office.edits);
    unmoved(&table, &["lighting", "lamp-hours"], "a building edit");
}

#[test]
fn a_run_ending_at_midnight_keeps_its_figures_across_the_metrics_restart() {
    let (sa, sb) = (
        load(&file("scenes/baseline.toml")).expect("a"),
        load(&file("scenes/sveavagen-green-wave.toml")).expect("b"),
    );
    let from = local_time_ms("2026-11-23T23:00").expect("from");
    let to = local_time_ms("2026-11-24T00:00").expect("to");
    let out = compare(&sa, &sb, 7, from, to, Default::default()).expect("compare");
    let (a, b) = (out.a, out.b);
    let table = rows(&a, &b, &sa.assumptions, &sb.assumptions);
    let signals: Vec<&Row> = table
        .iter()
        .filter(|r| r.metric.starts_with("signal"))
        .collect();
    assert!(!signals.is_empty());
    assert!(
        signals.iter().all(|r| r.a.is_some() && r.b.is_some()),
        "every controller keeps its figures: {signals:?}"
    );
    // The wave set Sveavägen's controllers to a 90 s cycle; the others keep theirs.
    let cycles: Vec<f64> = signals
        .iter()
        .filter(|r| r.metric.ends_with("cycle") && r.difference() != Some(0.0))
        .filter_map(|r| r.b)
        .collect();
    assert!(
        !cycles.is_empty() && cycles.iter().all(|c| (c - 90.0).abs() < 1.0),
        "{cycles:?}"
    );
    assert!(a.lighting_kwh > 0.0 && a.lighting_kwh == b.lighting_kwh);
    assert_eq!(a.hourly_lighting_kwh.len(), 1);
}

/// The report of `scenario` against the baseline equals the golden one in
/// `tests/golden/NAME/metrics.csv` (`TVILLING_BLESS=1` rewrites it, to be reviewed).
fn golden(scenario: &str, name: &str) {
    let (a, b, table, _) = run("scenes/baseline.toml", scenario);
    let got = metrics_csv(&table);
    let path = file(&format!("tests/golden/{name}/metrics.csv"));
    if std::env::var("TVILLING_BLESS").is_ok() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &got).expect("bless");
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TVILLING_BLESS=1 once)", path.display()));
    if got != want {
        let out = std::env::temp_dir().join(format!("tvilling-golden-{name}.csv"));
        std::fs::write(&out, &got).expect("write");
        panic!(
            "{name}: the report changed; review `diff {} {}` and bless it if it is right",
            path.display(),
            out.display()
        );
    }
    // The whole report folder is written and names what was run.
    let dir = std::env::temp_dir().join(format!("tvilling-report-{name}-{}", std::process::id()));
    let (sa, sb) = (
        load(&file("scenes/baseline.toml")).expect("a"),
        load(&file(scenario)).expect("b"),
    );
    let ctx = tvilling_twin::scenario::report::ReportContext {
        a: &sa,
        b: &sb,
        from: "2026-11-23T15:00",
        to: "2026-11-23T17:00",
        seed: 7,
        wall_s: 0.0,
        engine: "both runs on one clock in lockstep",
    };
    write_report(&dir, &ctx, &a, &b).expect("report");
    tvilling::plot_png::write_plots(&dir, &a, &b).expect("plots");
    // The PNG chart: both runs' lines in their colours, and its title legible to OCR.
    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.join("lighting.png")).expect("lighting.png"),
    ));
    let mut reader = png.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert_eq!((info.width, info.height), (720, 300));
    let count = |c: [u8; 3]| buf.chunks(3).filter(|p| *p == c).count();
    assert!(
        count([31, 119, 180]) > 100 && count([214, 39, 40]) > 100,
        "lines of A and B"
    );
    crate::screenshot::Picture::load(&dir.join("lighting.png"))
        .assert_shows(&["street lighting: mean power per hour"]);
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(html.contains(&sb.name) && html.contains("<svg") && !html.contains("<script"));
    assert_eq!(
        std::fs::read_to_string(dir.join("scenario-b.toml")).expect("copy"),
        sb.text
    );
    assert!(
        std::fs::read_to_string(dir.join("seed.txt"))
            .expect("seed")
            .starts_with("seed 7\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn golden_report_kungsgatan_d60() {
    golden("tests/scenarios/kungsgatan-d60.toml", "kungsgatan-d60");
}

#[test]
fn golden_report_later_photocells() {
    golden("tests/scenarios/early-photocells.toml", "early-photocells");
}

#[test]
fn a_scenario_the_city_cannot_take_is_refused_before_it_runs() {
    let dir = std::env::temp_dir().join(format!("tvilling-scenario-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n\n[[edit]]\nkind = \"dimming\"\nstreets = [\"Drottninggatan 2\"]\nweekdays = [[\"00:00\", 40]]\n",
    )
    .expect("write");
    let s = load(&bad).expect("the file itself is well formed");
    let (from, to) = span();
    let e = compare(&s, &s, 7, from, to, Default::default())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("bad.toml:3: edit 1: no street lamp on a street named \"Drottninggatan 2\""),
        "{e}"
    );
    std::fs::write(
        &bad,
        "name = \"bad\"\n[[edit]]\nkind = \"retrofit\"\nwatts = [[60, -1]]\n",
    )
    .expect("write");
    let e = load(&bad).expect_err("refused").to_string();
    assert!(
        e.contains("bad.toml:2: edit 1: watts: [60, -1]: rated watts must be positive"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every metric of `got` is `want`'s within `share` of it (rows only one of them has aside).
fn within(want: &[Row], got: &[Row], share: f64) -> Vec<String> {
    let mut off = Vec::new();
    for w in want {
        let Some(g) = got.iter().find(|g| g.metric == w.metric) else {
            off.push(format!("{}: missing", w.metric));
            continue;
        };
        for (side, x, y) in [("A", w.a, g.a), ("B", w.b, g.b)] {
            match (x, y) {
                (Some(x), Some(y)) if (x - y).abs() <= share * x.abs().max(y.abs()) + 1e-9 => {}
                (None, None) => {}
                _ => off.push(format!(
                    "{} {side}: stepped {x:?}, integrated {y:?}",
                    w.metric
                )),
            }
        }
    }
    off
}

/// Compares A and B over [from, to) both ways, stepped twins and the integrating engine: every
/// metric within 0.1 %, each lamp's and meter's energy too, and blank is the baseline exactly.
fn integrated_matches_stepped(a: &str, b: &str, from: i64, to: i64) -> RunResult {
    use std::sync::atomic::AtomicBool;
    use tvilling::scenario::compare_integrated;
    let (sa, sb) = (load(&file(a)).expect("a"), load(&file(b)).expect("b"));
    let stop = AtomicBool::new(false);
    let stepped = compare(&sa, &sb, 7, from, to, Default::default()).expect("stepped");
    let integrated = compare_integrated(&sa, &sb, 7, from, to, &Default::default(), &stop, false)
        .expect("integrated");
    let want = rows(&stepped.a, &stepped.b, &sa.assumptions, &sb.assumptions);
    let got = rows(
        &integrated.a,
        &integrated.b,
        &sa.assumptions,
        &sb.assumptions,
    );
    let off = within(&want, &got, 0.001);
    assert!(
        off.is_empty(),
        "off by more than 0.1 %:\n{}",
        off.join("\n")
    );
    let hours = ((to - from) / 3_600_000) as usize;
    for r in [&integrated.a, &integrated.b] {
        assert!(r.lighting_kwh > 0.0 && r.building_kwh > 0.0 && r.alarms_raised > 0);
        assert_eq!(r.hourly_lighting_kwh.len(), hours);
        assert_eq!(r.months.len(), 1);
        assert!(r.pm25_mean_ugm3.is_some_and(|p| p > 0.0));
    }
    assert_eq!(stepped.a.edits, integrated.a.edits);
    // The energy of each lamp and meter too.
    for (s, i) in stepped.device_kwh.iter().zip(&integrated.device_kwh) {
        assert_eq!(s.len(), i.len());
        for (id, kwh) in s {
            let k = i.get(id).copied().unwrap_or(f64::NAN);
            assert!(
                (k - kwh).abs() <= 0.001 * kwh.abs() + 1e-6,
                "{id}: {kwh} stepped, {k}"
            );
        }
    }
    // Blank is the baseline, exactly.
    let blank = compare_integrated(&sa, &sa, 7, from, to, &Default::default(), &stop, false)
        .expect("blank");
    let strip = |r: &RunResult| RunResult {
        edits: Vec::new(),
        ..r.clone()
    };
    assert_eq!(strip(&blank.a), strip(&blank.b));
    assert_eq!(strip(&blank.a), strip(&integrated.a));
    integrated.a
}

#[test]
fn the_integrating_engine_gives_the_stepped_twins_figures_on_the_demo_day() {
    // A lighting policy against a signal retiming, over the whole default demo day.
    integrated_matches_stepped(
        "scenes/led-night-dimming.toml",
        "scenes/sveavagen-green-wave.toml",
        local_time_ms("2026-11-23T00:00").expect("from"),
        local_time_ms("2026-11-24T00:00").expect("to"),
    );
}

#[test]
fn the_integrating_engine_gives_the_stepped_twins_figures_on_a_night_lamps_break_and_are_repaired()
{
    use std::sync::atomic::AtomicBool;
    use tvilling::scenario::compare_integrated;
    use tvilling_sensors::simulate::{LampBreak, SimProfile, photocell_sun, stockholm_local};
    // The demo's lamps on seed 7, and the faults they develop over the year from the demo day.
    let sa = load(&file("scenes/led-night-dimming.toml")).expect("a");
    let start = local_time_ms("2026-11-23T00:00").expect("from");
    let stop = AtomicBool::new(false);
    let plan = compare_integrated(
        &sa,
        &sa,
        7,
        start,
        start + 3_600_000,
        &Default::default(),
        &stop,
        false,
    )
    .expect("plan")
    .plans[0]
        .clone();
    let year = 366 * 86_400_000;
    let mut begun = Vec::new();
    let mut repaired = Vec::new();
    for d in &plan.devices {
        let SimProfile::Lamp { on_below_deg, .. } = d.profile else {
            continue;
        };
        for (a, b, how) in d.profile.lamp_breaks(start, start + year) {
            // Moments the lamp's change shows: its photocell sees the dark.
            if a > start && photocell_sun(a) < on_below_deg - 0.5 {
                begun.push((a, how));
            }
            if photocell_sun(b) < on_below_deg - 0.5 {
                repaired.push(b);
            }
        }
    }
    assert!(
        begun.len() > 10,
        "{} faults begin in the dark in a year",
        begun.len()
    );
    // The first day (noon to noon) on which a lamp goes dark and another is repaired at night.
    let noon = |t: i64| stockholm_local(t - 43_200_000).midnight_ms + 43_200_000;
    let (from, _) = begun
        .iter()
        .filter(|(_, how)| *how == LampBreak::BurntOut)
        .map(|&(a, _)| (noon(a), a))
        .find(|&(from, _)| {
            repaired
                .iter()
                .any(|b| (from..from + 86_400_000).contains(b))
        })
        .expect("a night with a lamp gone dark and another repaired, within the year");
    let r = integrated_matches_stepped(
        "scenes/led-night-dimming.toml",
        "scenes/sveavagen-green-wave.toml",
        from,
        from + 86_400_000,
    );
    assert!(r.lamp_hours_dark_at_night > 0.0);
}

#[test]
fn a_year_comes_month_by_month_and_ctrl_c_leaves_the_months_done_marked_incomplete() {
    use std::io::BufRead;
    let dir = crate::common::temp_dir("scenario-year");
    let args = |report: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "scenario".into(),
            "compare".into(),
            file("scenes/baseline.toml").into(),
            file("scenes/led-night-dimming.toml").into(),
            "--span".into(),
            "year".into(),
            "--from".into(),
            "2026-01-01T00:00".into(),
            "--report".into(),
            report.into(),
        ]
    };
    let full = dir.join("full");
    let out = crate::common::tvilling_ok(args(&full));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("month 2026-12 done (12 of 12"), "{stderr}");
    let months = std::fs::read_to_string(full.join("months.csv")).expect("months.csv");
    let rows: Vec<Vec<&str>> = months
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 24, "{months}");
    assert_eq!(
        (rows[0][0], rows[11][0], rows[12][1]),
        ("2026-01", "2026-12", "B")
    );
    // The months add up to the year, and December's nights light more than June's.
    let lighting = |side: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r[1] == side)
            .map(|r| r[2].parse().expect("kWh"))
            .collect()
    };
    let metrics = std::fs::read_to_string(full.join("metrics.csv")).expect("metrics");
    let year: Vec<f64> = metrics
        .lines()
        .find(|l| l.starts_with("lighting energy,"))
        .expect("row")
        .split(',')
        .skip(2)
        .take(2)
        .map(|v| v.parse().expect("kWh"))
        .collect();
    for (side, total) in [("A", year[0]), ("B", year[1])] {
        let m = lighting(side);
        let sum: f64 = m.iter().sum();
        assert!(
            (sum - total).abs() < 0.01 * 12.0,
            "{side}: {sum} by month, {total} in all"
        );
        assert!(
            m[11] > 2.0 * m[5],
            "{side}: December {} June {}",
            m[11],
            m[5]
        );
    }
    assert!(metrics.contains("PM2.5 mean over the span"), "{metrics}");
    let html = std::fs::read_to_string(full.join("report.html")).expect("html");
    assert!(html.contains("Month by month") && html.contains("2026-07"));
    assert!(!html.contains("Incomplete"));
    // Stopped after its first month: a report of the months done, marked incomplete.
    let stopped = dir.join("stopped");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(args(&stopped))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tvilling");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("month 2026-01 done") {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    for line in lines {
        seen.push_str(&line.expect("line"));
        seen.push('\n');
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("stopped: the report in"), "{seen}");
    let months = std::fs::read_to_string(stopped.join("months.csv")).expect("months.csv");
    let n = months.lines().count() - 1;
    assert!((2..24).contains(&n) && n % 2 == 0, "{n} rows: {months}");
    let html = std::fs::read_to_string(stopped.join("report.html")).expect("html");
    assert!(html.contains("Incomplete"), "not marked incomplete");
    // A span and an end are one too many.
    let both = std::process::Command::new(env!("CARGO_BIN_EXE_tvilling"))
        .args(args(&dir.join("both")))
        .args(["--to", "2026-02-01T00:00"])
        .output()
        .expect("run");
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("--to"));
}
