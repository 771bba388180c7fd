//! `tvilling scenario run|compare`: what-if scenarios run headless, two twins in one process on
//! one seed and one clock, stepped in lockstep as fast as the machine allows, and a report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bevy::prelude::*;
use clap::{Parser, Subcommand};
use tvilling_metrics::metrics::CityMetrics;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::simulate::{
    DEFAULT_SEED, Simulator, stockholm_local, stockholm_utc_offset_s,
};
use tvilling_twin::scenario::edits::{Districts, plan_edits};
use tvilling_twin::scenario::evaluate::{DeviceMeta, Evaluated, Plan, Progress, evaluate};
use tvilling_twin::scenario::file::Base;
use tvilling_twin::scenario::jobs::RunOutput;
use tvilling_twin::scenario::report::{
    DistrictEnergy, ReportContext, Row, RunResult, write_report,
};
use tvilling_twin::scenario::traffic;
use tvilling_twin::scenario::{Scenario, ScenarioError};
use tvilling_twin::simulation::{PlanApplied, PlanRefused, SimulatorState};

use crate::{Cli, add_model, setup_from_cli};

/// What-if scenarios: run one against its base, or compare two, over the same span.
///
/// Times are Stockholm local time, YYYY-MM-DDTHH:MM. Without --from and --to: one simulated
/// day from the last local midnight.
#[derive(Parser, Debug, Clone)]
#[command(name = "tvilling scenario")]
pub struct ScenarioCli {
    #[command(subcommand)]
    pub command: ScenarioCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ScenarioCommand {
    /// Run SCENARIO against its base with no edits (A: the base, B: the scenario).
    Run {
        scenario: PathBuf,
        #[command(flatten)]
        span: SpanArgs,
    },
    /// Run scenario A and scenario B side by side.
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        span: SpanArgs,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct SpanArgs {
    /// Start, Stockholm local time, YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End, Stockholm local time, YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Write metrics.csv, report.html, the scenario files and the seed here.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// A span from --from (default: the last local midnight; for a year, the start of this
    /// local year) instead of --to: one day, week, month or year of local calendar.
    #[arg(long, value_enum, conflicts_with = "to")]
    pub span: Option<SpanLength>,
    /// How the figures are made: integrate each device's model between its events on every
    /// core (the default: a city's year in minutes), or step two whole twins in lockstep
    /// (health, alarms and metrics as the window runs them; a check on the first).
    #[arg(long, value_enum, default_value = "integrate")]
    pub engine: Engine,
    /// The simulator's seed, one for both runs.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Add N simulated street lamps to both twins on a 30 m grid around the city (a
    /// city-sized lighting load, for measurements).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub extra_lamps: usize,
    /// Measure each side's signal timing in SUMO too (CONFIG from scripts/sumo-network.sh):
    /// the same demand and seed, its retimed controllers as SUMO programs; delay, stops,
    /// throughput, CO2 and fuel join the table. SUMO's files go under the report directory.
    #[arg(long, value_name = "CONFIG")]
    pub sumo: Option<PathBuf>,
}

/// A span of the local calendar.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanLength {
    Day,
    Week,
    Month,
    Year,
}

/// How a comparison's figures are made.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Each device's model integrated between its events, on every core.
    #[default]
    Integrate,
    /// Two headless twins stepped in lockstep.
    Stepped,
}

/// The longest span the twin takes on (longer ones are refused with the estimate).
pub const MAX_SPAN_DAYS: i64 = 3_660;

/// Unix ms of a Stockholm local time written YYYY-MM-DDTHH:MM.
pub fn local_time_ms(text: &str) -> Option<i64> {
    let as_utc = tvilling_city::scene::parse_utc_minute(text)?;
    // The offset at that moment (the offset an hour either side differs only at the change).
    let offset = stockholm_utc_offset_s(as_utc - 3600);
    Some((as_utc - offset) * 1000)
}

fn format_local(ms: i64) -> String {
    let l = stockholm_local(ms);
    let days = l.midnight_ms.div_euclid(86_400_000)
        + i64::from(l.midnight_ms.rem_euclid(86_400_000) > 43_200_000);
    let (y, m, d) = tvilling_geo::sun::civil_from_days(days);
    let minutes = (l.hour * 60.0).round() as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

/// The local time `days` days, `months` months and `years` years after `t_ms` (the same time
/// of day; a day past the month's end goes to its last day).
fn add_calendar(t_ms: i64, days: i64, months: i64, years: i64) -> Option<i64> {
    let text = format_local(t_ms);
    let (y, rest) = text.split_once('-')?;
    let (m, rest) = rest.split_once('-')?;
    let (d, clock) = rest.split_once('T')?;
    let (y, m, d): (i64, i64, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let months_total = y * 12 + (m - 1) + months + years * 12;
    let (y, m) = (months_total.div_euclid(12), months_total.rem_euclid(12) + 1);
    let mut day = d;
    let civil = |y: i64, m: i64, d: u32| tvilling_geo::sun::days_from_civil(y as i32, m as u32, d);
    // The month's last day, when `d` is past it.
    while day > 28 {
        let (y2, m2, _) = tvilling_geo::sun::civil_from_days(civil(y, m, day));
        if i64::from(y2) == y && i64::from(m2) == m {
            break;
        }
        day -= 1;
    }
    let (y, m, d) = tvilling_geo::sun::civil_from_days(civil(y, m, day) + days);
    local_time_ms(&format!("{y:04}-{m:02}-{d:02}T{clock}"))
}

/// The span: given, one --span from --from, or one day from the last local midnight.
fn span(args: &SpanArgs) -> Result<(i64, i64)> {
    let parse = |t: &str, what: &str| {
        local_time_ms(t).with_context(|| format!("{what} {t:?}: expected YYYY-MM-DDTHH:MM"))
    };
    let from = match &args.from {
        Some(t) => parse(t, "--from")?,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let midnight = stockholm_local(now).midnight_ms;
            if args.span == Some(SpanLength::Year) {
                let year = &format_local(midnight)[..4];
                parse(&format!("{year}-01-01T00:00"), "the year's start")?
            } else {
                midnight
            }
        }
    };
    let to = match (&args.to, args.span) {
        (Some(t), _) => parse(t, "--to")?,
        (None, Some(span)) => {
            let (d, m, y) = match span {
                SpanLength::Day => (1, 0, 0),
                SpanLength::Week => (7, 0, 0),
                SpanLength::Month => (0, 1, 0),
                SpanLength::Year => (0, 0, 1),
            };
            add_calendar(from, d, m, y).context("the span's end")?
        }
        (None, None) => stockholm_local(from + 36 * 3_600_000).midnight_ms,
    };
    if to <= from {
        bail!("--to must come after --from");
    }
    Ok((from, to))
}

/// Runs the command.
pub fn main(cli: ScenarioCli) -> Result<()> {
    let (a, b, args) = match &cli.command {
        ScenarioCommand::Run { scenario, span } => {
            let b = load(scenario)?;
            // A: the same base and assumptions, no edits.
            let mut a = b.clone();
            a.name = format!("{} (base, no edits)", b.name);
            a.edits.clear();
            (a, b, span)
        }
        ScenarioCommand::Compare { a, b, span } => (load(a)?, load(b)?, span),
    };
    let (from, to) = span(args)?;
    let days = (to - from) / 86_400_000;
    if days > MAX_SPAN_DAYS {
        bail!(
            "the span is {days} days: more than the {MAX_SPAN_DAYS} the twin takes on (ten years); give a shorter --from/--to"
        );
    }
    let started = Instant::now();
    let opts = CompareOptions {
        log: args.engine == Engine::Stepped,
        extra_lamps: args.extra_lamps,
        sumo: args.sumo.clone(),
        sumo_dir: Some(args.report.clone()),
    };
    let (ra, rb, engine) = match args.engine {
        Engine::Stepped => {
            let out = compare(&a, &b, args.seed, from, to, opts)?;
            (
                out.a,
                out.b,
                "both runs on one clock in lockstep".to_string(),
            )
        }
        Engine::Integrate => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // The first Ctrl+C stops after the month under way (its report is written, marked
            // incomplete); a second one at once.
            let _ = ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
            });
            let out = compare_integrated(&a, &b, args.seed, from, to, &opts, &stop, true)?;
            let threads = threads();
            (
                out.a,
                out.b,
                format!(
                    "each device's model integrated between its events on {threads} core{}",
                    if threads == 1 { "" } else { "s" }
                ),
            )
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    let ctx = ReportContext {
        a: &a,
        b: &b,
        from: &format_local(from),
        to: &format_local(to),
        seed: args.seed,
        wall_s,
        engine: &engine,
    };
    let rows = write_report(&args.report, &ctx, &ra, &rb)
        .with_context(|| format!("cannot write the report to {}", args.report.display()))?;
    crate::plot_png::write_plots(&args.report, &ra, &rb)
        .with_context(|| format!("cannot write the plots to {}", args.report.display()))?;
    print_summary(&rows);
    let span_s = (to - from) as f64 / 1000.0;
    if ra.incomplete || rb.incomplete {
        let done = ra
            .months
            .last()
            .map_or("no month".to_string(), |m| m.month.clone());
        eprintln!(
            "stopped: the report in {} holds the months done (to the end of {done}), marked incomplete",
            args.report.display()
        );
        std::process::exit(130);
    }
    println!(
        "{} simulated hours, {engine}, in {wall_s:.1} s of wall time: {:.0}x real time; report in {}",
        span_s / 3600.0,
        span_s / wall_s.max(1e-9),
        args.report.display()
    );
    Ok(())
}

/// Cores to evaluate on.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario> {
    Scenario::load(path).map_err(|e: ScenarioError| anyhow::anyhow!("{e}"))
}

fn print_summary(rows: &[Row]) {
    for r in rows.iter().take(11) {
        println!(
            "{:<34} {:>14} {:>14} {:>+9.1} %",
            format!("{} ({})", r.metric, r.unit),
            r.a.map_or("-".into(), |v| format!("{v:.1}")),
            r.b.map_or("-".into(), |v| format!("{v:.1}")),
            r.percent().unwrap_or(0.0)
        );
    }
}

/// One scenario's headless twin and what it has measured so far.
struct Twin {
    app: App,
    /// Metrics of spans already ended (the metrics restart at local midnight).
    banked: RunResult,
    since_ms: Option<i64>,
    /// Totals at the last hour boundary passed, and the next boundary.
    mark: (f64, f64),
    next_hour_ms: i64,
    result: RunResult,
    /// Each lamp and meter (once the devices exist): its id, its district and its energy so
    /// far (kWh); and energy by district.
    districts: Option<Vec<(Entity, String, Option<String>, f64)>>,
    by_district: std::collections::BTreeMap<String, DistrictEnergy>,
    last_edge_ms: Option<i64>,
}

/// How a comparison runs besides its scenarios and span.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// A's twin logs to the terminal.
    pub log: bool,
    /// Simulated street lamps added to both twins on a 30 m grid (`--extra-lamps`: a
    /// city-sized lighting load).
    pub extra_lamps: usize,
    /// A SUMO configuration to measure each side's signal timing in.
    pub sumo: Option<PathBuf>,
    /// Where SUMO's files go (`sumo-a`, `sumo-b` in it; default the temporary directory).
    pub sumo_dir: Option<PathBuf>,
}

fn twin(scenario: &Scenario, seed: u64, from: i64, to: i64, opts: &CompareOptions) -> Result<Twin> {
    // The twin as `tvilling --headless --simulate SEED [--scene BASE] [--extra-lamps N]`
    // would build it.
    let log = opts.log;
    let mut args: Vec<std::ffi::OsString> = vec![
        "tvilling".into(),
        "--headless".into(),
        "--simulate".into(),
        seed.to_string().into(),
        "--extra-lamps".into(),
        opts.extra_lamps.to_string().into(),
    ];
    if let Base::Scene(p) = &scenario.base {
        args.push("--scene".into());
        args.push(p.clone().into_os_string());
    }
    let cli = Cli::try_parse_from(args)?;
    let mut setup = setup_from_cli(&cli)?;
    if let Some(sim) = setup.live.simulate.as_mut() {
        sim.clock.start_ms = Some(from);
        sim.clock.speed = None;
    }
    setup.live.until_ms = Some(to);
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin));
    if log {
        app.add_plugins(bevy::log::LogPlugin::default());
    }
    add_model(&mut app, &setup)?;
    app.insert_resource(plan_edits(scenario.clone(), Arc::new(Districts::shipped())));
    Ok(Twin {
        app,
        banked: RunResult::default(),
        since_ms: None,
        mark: (0.0, 0.0),
        next_hour_ms: from + 3_600_000,
        result: RunResult::default(),
        districts: None,
        by_district: Default::default(),
        last_edge_ms: None,
    })
}

impl Twin {
    fn started(&self) -> Result<bool> {
        if let Some(r) = self.app.world().get_resource::<PlanRefused>() {
            bail!("{}", r.0);
        }
        Ok(self.app.world().contains_resource::<SimulatorState>())
    }

    fn edge(&self) -> i64 {
        self.app.world().resource::<TwinClock>().edge_ms
    }

    fn finished(&self) -> bool {
        self.app.world().resource::<TwinClock>().finished()
    }

    /// Lamps' and meters' districts, from their positions (once).
    fn assign_districts(&mut self, districts: &Districts) {
        let world = self.app.world_mut();
        let crs = world
            .get_resource::<tvilling_geo::GeoFrame>()
            .map_or(tvilling_geo::Crs::SWEREF99_TM, |f| f.crs);
        let Ok(to_wgs84) = tvilling_geo::Transformer::new(crs, tvilling_geo::Crs::WGS84) else {
            self.districts = Some(Vec::new());
            return;
        };
        let mut q = world.query_filtered::<(
            Entity,
            &tvilling_sensors::state::Device,
            &tvilling_geo::WorldPosition,
        ), (
            Or<(
                With<tvilling_sensors::state::LampState>,
                With<tvilling_sensors::state::MeterState>,
            )>,
        )>();
        let mut out: Vec<(Entity, String, Option<String>, f64)> = q
            .iter(world)
            .map(|(e, d, p)| {
                let name = to_wgs84
                    .convert(p.0.x, p.0.y)
                    .ok()
                    .and_then(|(lon, lat)| districts.name_at(lon, lat).map(str::to_string));
                (e, d.id.clone(), name, 0.0)
            })
            .collect();
        out.sort_by_key(|(e, ..)| *e);
        self.districts = Some(out);
        // The city's metrics count from the clock's start too.
        self.last_edge_ms = Some(world.resource::<TwinClock>().edge_ms);
    }

    /// Adds this frame's span of lighting and building energy to each device's district, as
    /// the city's metrics integrate them (the state after the frame over its span).
    fn integrate_districts(&mut self) {
        let world = self.app.world();
        let edge = world.resource::<TwinClock>().edge_ms;
        let dt = self.last_edge_ms.map_or(0, |last| edge - last);
        self.last_edge_ms = Some(edge);
        if dt <= 0 || dt > tvilling_metrics::metrics::MAX_GAP_MS {
            return;
        }
        let h = dt as f64 / 3_600_000.0;
        for (e, _, district, kwh) in self.districts.iter_mut().flatten() {
            let name = district.as_deref().unwrap_or("outside the districts");
            let (lamp, meter) = (
                world.get::<tvilling_sensors::state::LampState>(*e),
                world.get::<tvilling_sensors::state::MeterState>(*e),
            );
            if lamp.is_none() && meter.is_none() {
                continue;
            }
            let d = self.by_district.entry(name.to_string()).or_default();
            if let Some(l) = lamp {
                d.lighting_kwh += l.power_w / 1000.0 * h;
                *kwh += l.power_w / 1000.0 * h;
            }
            if let Some(m) = meter {
                d.building_kwh += m.power_kw * h;
                *kwh += m.power_kw * h;
            }
        }
    }

    /// Reads this frame's metrics into the run's totals.
    fn observe(&mut self) {
        self.integrate_districts();
        let w = self.app.world();
        let Some(m) = w.get_resource::<CityMetrics>() else {
            return;
        };
        if self.since_ms.is_some_and(|s| s != m.since_ms) {
            // The span restarted (local midnight): what the last frame saw is banked.
            let last = std::mem::take(&mut self.result);
            add_run(&mut self.banked, &last);
        }
        self.since_ms = Some(m.since_ms);
        let mut now = RunResult {
            lighting_kwh: m.lighting_kwh,
            lamp_hours_lit: m.lamp_hours_lit,
            lamp_hours_dark_at_night: m.lamp_hours_dark_at_night,
            building_kwh: m.building_kwh,
            heating_kwh: m.heating_kwh,
            hours_over_limit: m
                .hours_over_limit
                .iter()
                .map(|(p, h)| (p.as_str().to_string(), *h))
                .collect(),
            alarms_raised: m.alarms_raised,
            ..Default::default()
        };
        now.signals = m.signals.clone();
        self.result = now;
        let edge = w.resource::<TwinClock>().edge_ms;
        while edge >= self.next_hour_ms {
            let total = self.total();
            self.banked
                .hourly_lighting_kwh
                .push(total.lighting_kwh - self.mark.0);
            self.banked
                .hourly_building_kwh
                .push(total.building_kwh - self.mark.1);
            self.mark = (total.lighting_kwh, total.building_kwh);
            self.next_hour_ms += 3_600_000;
        }
    }

    /// Everything measured so far.
    fn total(&self) -> RunResult {
        let mut t = self.banked.clone();
        add_run(&mut t, &self.result);
        t.by_district = self.by_district.clone();
        t
    }
}

/// Adds the totals of `b` to `a`.
fn add_run(a: &mut RunResult, b: &RunResult) {
    a.lighting_kwh += b.lighting_kwh;
    a.lamp_hours_lit += b.lamp_hours_lit;
    a.lamp_hours_dark_at_night += b.lamp_hours_dark_at_night;
    a.building_kwh += b.building_kwh;
    a.heating_kwh += b.heating_kwh;
    for (k, v) in &b.hours_over_limit {
        *a.hours_over_limit.entry(k.clone()).or_default() += v;
    }
    for (k, v) in &b.signals {
        let s = a.signals.entry(k.clone()).or_default();
        s.green_ms += v.green_ms;
        s.observed_ms += v.observed_ms;
        s.cycle_sum_ms += v.cycle_sum_ms;
        s.cycles += v.cycles;
    }
    a.alarms_raised += b.alarms_raised;
}

/// What one side's run gives: its measurements, its simulated devices, each lamp's and
/// meter's energy by id, and the clock's edge after every frame.
type SideRun = (RunResult, Arc<Simulator>, HashMap<String, f64>, Vec<i64>);

/// One side's twin, run until its simulator has started (the city loaded, the edits applied).
fn started_twin(
    s: &Scenario,
    seed: u64,
    from: i64,
    to: i64,
    opts: &CompareOptions,
) -> Result<Twin> {
    let mut t = twin(s, seed, from, to, opts)?;
    let mut frames = 0u32;
    while !t.started()? {
        t.app.update();
        frames += 1;
        if frames > 20_000 {
            bail!("the city did not load");
        }
    }
    Ok(t)
}

/// Runs one side to the end of the span (on the calling thread: a twin never leaves it).
fn run_side(
    s: &Scenario,
    side: &str,
    seed: u64,
    from: i64,
    to: i64,
    opts: &CompareOptions,
) -> Result<SideRun> {
    let mut t = started_twin(s, seed, from, to, opts)?;
    t.assign_districts(&Districts::shipped());
    let mut edges = Vec::new();
    while !t.finished() {
        t.app.update();
        t.observe();
        edges.push(t.edge());
    }
    let mut r = t.total();
    r.edits = t
        .app
        .world()
        .get_resource::<PlanApplied>()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    let plan = Arc::new(t.app.world().resource::<SimulatorState>().run.sim.clone());
    if let Some(measured) = measure_in_sumo(t.app.world_mut(), &plan, side, seed, from, to, opts)? {
        r.edits.extend(measured.programs.iter().cloned());
        r.traffic = Some(measured);
    }
    let kwh = t
        .districts
        .into_iter()
        .flatten()
        .map(|(_, id, _, kwh)| (id, kwh))
        .collect();
    Ok((r, plan, kwh, edges))
}

/// Measures a side's signal timing in SUMO (`--sumo`): its heads' plans as SUMO programs.
fn measure_in_sumo(
    world: &mut World,
    plan: &Simulator,
    side: &str,
    seed: u64,
    from: i64,
    to: i64,
    opts: &CompareOptions,
) -> Result<Option<traffic::TrafficResult>> {
    let Some(config) = &opts.sumo else {
        return Ok(None);
    };
    let heads = traffic::head_plans(world, seed, plan);
    let dir = opts
        .sumo_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("sumo-{}", side.to_lowercase()));
    let from_s = (stockholm_local(from).hour * 3600.0).round();
    let to_s = from_s + (to - from) as f64 / 1000.0;
    let measured = traffic::run(config, &heads, from_s, to_s, &dir)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("SUMO for scenario {side}"))?;
    Ok(Some(measured))
}

/// Runs A and B on one seed and one clock from `from` to `to`, each on a thread of its own,
/// and checks that both stepped through the same clock edges (lockstep): what each measured
/// and ran, and each device's energy.
pub fn compare(
    a: &Scenario,
    b: &Scenario,
    seed: u64,
    from: i64,
    to: i64,
    opts: CompareOptions,
) -> Result<RunOutput> {
    let quiet = CompareOptions {
        log: false,
        ..opts.clone()
    };
    let (ra, rb) = std::thread::scope(|scope| {
        let ha = std::thread::Builder::new()
            .name("scenario A".into())
            .spawn_scoped(scope, || run_side(a, "A", seed, from, to, &opts))?;
        let hb = std::thread::Builder::new()
            .name("scenario B".into())
            .spawn_scoped(scope, || run_side(b, "B", seed, from, to, &quiet))?;
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<SideRun>>| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a scenario's run stopped with an error"))?
        };
        anyhow::Ok((join(ha), join(hb)))
    })?;
    let ((ra, pa, ka, ea), (rb, pb, kb, eb)) = (ra?, rb?);
    if let Some(k) = (0..ea.len().max(eb.len())).find(|&k| ea.get(k) != eb.get(k)) {
        bail!(
            "the runs left lockstep at frame {k}: A at {:?}, B at {:?}",
            ea.get(k),
            eb.get(k)
        );
    }
    Ok(RunOutput {
        a: ra,
        b: rb,
        plans: [pa, pb],
        device_kwh: [ka, kb],
    })
}

/// One side made ready for the evaluator: its plan, what its edits changed, what SUMO measured.
struct Prepared {
    plan: Plan,
    edits: Vec<String>,
    traffic: Option<traffic::TrafficResult>,
}

/// Builds one side's twin as far as its simulator (the city loaded, the edits applied), and
/// takes from it the simulated devices, their districts and controllers, and health's rules.
fn prepare(
    s: &Scenario,
    side: &str,
    seed: u64,
    from: i64,
    to: i64,
    opts: &CompareOptions,
) -> Result<Prepared> {
    let mut t = started_twin(s, seed, from, to, opts)?;
    let world = t.app.world_mut();
    let sim = Arc::new(world.resource::<SimulatorState>().run.sim.clone());
    let rules = world
        .get_resource::<tvilling_sensors::health::HealthRules>()
        .cloned()
        .unwrap_or_default();
    let crs = world
        .get_resource::<tvilling_geo::GeoFrame>()
        .map_or(tvilling_geo::Crs::SWEREF99_TM, |f| f.crs);
    let to_wgs84 = tvilling_geo::Transformer::new(crs, tvilling_geo::Crs::WGS84).ok();
    let districts = Districts::shipped();
    let mut q = world.query::<(
        &tvilling_sensors::state::Device,
        Option<&tvilling_geo::WorldPosition>,
        Option<&tvilling_sensors::state::DeviceInfo>,
    )>();
    let mut known: HashMap<String, DeviceMeta> = HashMap::new();
    for (d, p, info) in q.iter(world) {
        let district = p.zip(to_wgs84.as_ref()).and_then(|(p, tr)| {
            tr.convert(p.0.x, p.0.y)
                .ok()
                .and_then(|(lon, lat)| districts.name_at(lon, lat).map(str::to_string))
        });
        let controller = info.and_then(|i| {
            i.attributes
                .iter()
                .find(|(k, _)| k == "controller")
                .map(|(_, c)| c.clone())
        });
        known.insert(
            d.id.clone(),
            DeviceMeta {
                district,
                controller,
            },
        );
    }
    let meta = sim
        .devices
        .iter()
        .map(|d| known.remove(&d.id).unwrap_or_default())
        .collect();
    let edits = world
        .get_resource::<PlanApplied>()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    let mut prepared = Prepared {
        plan: Plan { sim, meta, rules },
        edits,
        traffic: None,
    };
    let sim = prepared.plan.sim.clone();
    if let Some(measured) = measure_in_sumo(t.app.world_mut(), &sim, side, seed, from, to, opts)? {
        prepared.edits.extend(measured.programs.iter().cloned());
        prepared.traffic = Some(measured);
    }
    Ok(prepared)
}

/// Draws the evaluation's progress on the terminal until `finished`: a bar with the share
/// done and an estimate of the time left.
fn progress_bar(progress: &Progress, finished: &AtomicBool) {
    use std::io::Write;
    let started = Instant::now();
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let (done, total) = (
            progress.done.load(Ordering::Relaxed),
            progress.total.load(Ordering::Relaxed).max(1),
        );
        let share = done as f64 / total as f64;
        let elapsed = started.elapsed().as_secs_f64();
        let left = if share > 0.0 {
            let s = elapsed * (1.0 - share) / share;
            if s >= 60.0 {
                format!(
                    "about {} min {:02} s left",
                    (s / 60.0) as u64,
                    s as u64 % 60
                )
            } else {
                format!("about {} s left", s.ceil() as u64)
            }
        } else {
            "estimating the time left".into()
        };
        let width = 30;
        let full = ((share * width as f64) as usize).min(width);
        eprint!(
            "\r[{}{}] {:5.1} %  {left}   ",
            "#".repeat(full),
            ".".repeat(width - full),
            share * 100.0
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
}

/// Compares A and B by integrating each device's model between its events ([`evaluate`]),
/// a month at a time on every core: the same figures as [`compare`] makes by stepping twins
/// (within 0.1 %), in a fraction of the time. `stop` ends it after the month under way (the
/// results are then marked incomplete); `progress` draws a bar on a terminal (else a line a
/// month).
#[allow(clippy::too_many_arguments)]
pub fn compare_integrated(
    a: &Scenario,
    b: &Scenario,
    seed: u64,
    from: i64,
    to: i64,
    opts: &CompareOptions,
    stop: &AtomicBool,
    progress: bool,
) -> Result<RunOutput> {
    let (pa, pb) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| prepare(a, "A", seed, from, to, opts));
        let hb = scope.spawn(|| prepare(b, "B", seed, from, to, opts));
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Prepared>>| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a scenario's preparation stopped with an error"))?
        };
        anyhow::Ok((join(ha)?, join(hb)?))
    })?;
    let meter = Progress::default();
    let finished = AtomicBool::new(false);
    use std::io::IsTerminal;
    let bar = progress && std::io::stderr().is_terminal();
    let started = Instant::now();
    let out = std::thread::scope(|scope| {
        if bar {
            scope.spawn(|| progress_bar(&meter, &finished));
        }
        let out = evaluate(
            &[&pa.plan, &pb.plan],
            from,
            to,
            threads(),
            &meter,
            stop,
            |month, k, n| {
                if progress && !bar {
                    eprintln!(
                        "month {month} done ({k} of {n}, {:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            },
        );
        finished.store(true, Ordering::Relaxed);
        out
    });
    let mut sides = out.into_iter();
    let (Some(ea), Some(eb)) = (sides.next(), sides.next()) else {
        bail!("the evaluation gave no result");
    };
    let side = |e: Evaluated, p: Prepared| {
        let mut r = e.result;
        r.edits = p.edits;
        r.traffic = p.traffic;
        (r, p.plan.sim, e.device_kwh)
    };
    let (ra, sa, ka) = side(ea, pa);
    let (rb, sb, kb) = side(eb, pb);
    Ok(RunOutput {
        a: ra,
        b: rb,
        plans: [sa, sb],
        device_kwh: [ka, kb],
    })
}
