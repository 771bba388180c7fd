//! Scenario comparisons asked for in the window: the scenario files of a folder, and one run at
//! a time on its own thread (two headless twins, as `tvilling scenario compare` runs them), so
//! the window never waits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bevy::prelude::*;
use tvilling_sensors::simulate::Simulator;

use super::file::Scenario;
use super::report::{Row, RunResult, rows};

/// Runs A and B over a span (seed, from, to in Unix ms): what the app provides, since it knows
/// how to build a twin.
pub type Runner =
    Arc<dyn Fn(&Scenario, &Scenario, u64, i64, i64) -> Result<RunOutput, String> + Send + Sync>;

/// What a runner measured of A and B, and what it ran.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub a: RunResult,
    pub b: RunResult,
    /// Each side's simulated devices, with its edits applied (to draw its city at any moment).
    pub plans: [Arc<Simulator>; 2],
    /// Each side's energy of every lamp and meter over the span, kWh, by device id.
    pub device_kwh: [HashMap<String, f64>; 2],
}

impl RunOutput {
    /// B's energy less A's, kWh, of every device whose energy differs (a device on one side
    /// only counts as zero on the other).
    pub fn difference(&self) -> HashMap<String, f64> {
        let [a, b] = &self.device_kwh;
        let mut out = HashMap::new();
        for id in a.keys().chain(b.keys()) {
            let d = b.get(id).copied().unwrap_or(0.0) - a.get(id).copied().unwrap_or(0.0);
            if d != 0.0 {
                out.insert(id.clone(), d);
            }
        }
        out
    }
}

/// A finished comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: Scenario,
    pub b: Scenario,
    pub seed: u64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub ra: RunResult,
    pub rb: RunResult,
    pub rows: Vec<Row>,
    pub wall_s: f64,
    /// Each side's simulated devices with its edits.
    pub plans: [Arc<Simulator>; 2],
    /// B's energy less A's over the span, kWh, of each device whose energy differs, by id.
    pub difference: HashMap<String, f64>,
    /// Counts the comparisons finished in this app (this one's number, from 1).
    pub number: u64,
}

struct Running {
    what: String,
    started: Instant,
    handle: JoinHandle<Result<Comparison, String>>,
}

/// The window's scenario files and its comparison runs.
#[derive(Resource)]
pub struct ScenarioJobs {
    runner: Runner,
    pub folder: PathBuf,
    /// Scenario files in the folder, each read and checked (a refused one with its reason).
    pub files: Vec<(PathBuf, Result<Scenario, String>)>,
    running: Option<Running>,
    /// The last comparison, or why it failed.
    pub last: Option<Result<Comparison, String>>,
    /// Comparisons finished so far.
    pub finished: u64,
}

/// Whether a TOML file is a scene (data, CRS) rather than a scenario.
fn is_scene(text: &str) -> bool {
    text.parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("crs") || t.contains_key("data") || t.contains_key("model"))
}

impl ScenarioJobs {
    pub fn new(runner: Runner, folder: impl Into<PathBuf>) -> ScenarioJobs {
        let mut jobs = ScenarioJobs {
            runner,
            folder: folder.into(),
            files: Vec::new(),
            running: None,
            last: None,
            finished: 0,
        };
        jobs.rescan();
        jobs
    }

    /// Reads the folder's scenario files again (scene files are not listed).
    pub fn rescan(&mut self) {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.folder)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        self.files = paths
            .into_iter()
            .filter(|p| !std::fs::read_to_string(p).is_ok_and(|t| is_scene(&t)))
            .map(|p| {
                let s = Scenario::load(&p).map_err(|e| e.to_string());
                (p, s)
            })
            .collect();
    }

    /// The readable scenarios, by index into [`ScenarioJobs::files`].
    pub fn scenarios(&self) -> Vec<(usize, &Scenario)> {
        self.files
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| s.as_ref().ok().map(|s| (i, s)))
            .collect()
    }

    /// What runs now and for how long (seconds).
    pub fn running(&self) -> Option<(&str, f64)> {
        self.running
            .as_ref()
            .map(|r| (r.what.as_str(), r.started.elapsed().as_secs_f64()))
    }

    /// Starts comparing files `a` and `b` (indices into `files`) from `from_ms` to `to_ms`;
    /// false while another comparison runs or when either file is unreadable.
    pub fn start(&mut self, a: usize, b: usize, seed: u64, from_ms: i64, to_ms: i64) -> bool {
        if self.running.is_some() {
            return false;
        }
        let get = |i: usize| {
            self.files
                .get(i)
                .and_then(|(_, s)| s.as_ref().ok())
                .cloned()
        };
        let (Some(a), Some(b)) = (get(a), get(b)) else {
            return false;
        };
        let runner = self.runner.clone();
        let what = format!("{} / {}", a.name, b.name);
        let handle = std::thread::Builder::new()
            .name("scenario comparison".into())
            .spawn(move || {
                let started = Instant::now();
                let out = runner(&a, &b, seed, from_ms, to_ms)?;
                Ok(Comparison {
                    rows: rows(&out.a, &out.b, &a.assumptions, &b.assumptions),
                    difference: out.difference(),
                    a,
                    b,
                    seed,
                    from_ms,
                    to_ms,
                    ra: out.a,
                    rb: out.b,
                    plans: out.plans,
                    wall_s: started.elapsed().as_secs_f64(),
                    number: 0,
                })
            });
        match handle {
            Ok(handle) => {
                self.running = Some(Running {
                    what,
                    started: Instant::now(),
                    handle,
                });
                true
            }
            Err(e) => {
                self.last = Some(Err(format!("cannot start a thread: {e}")));
                false
            }
        }
    }

    /// Takes a finished comparison's result; true when one finished now.
    pub fn poll(&mut self) -> bool {
        if !self
            .running
            .as_ref()
            .is_some_and(|r| r.handle.is_finished())
        {
            return false;
        }
        let Some(r) = self.running.take() else {
            return false;
        };
        self.finished += 1;
        let number = self.finished;
        self.last = Some(
            r.handle
                .join()
                .unwrap_or_else(|_| Err("the comparison stopped with an error".into()))
                .map(|c| Comparison { number, ..c }),
        );
        true
    }

    /// The folder, as shown.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

/// A comparison asked for (the Scenarios window writes it; [`start_requests`] starts it):
/// files `a` and `b` (indices into [`ScenarioJobs::files`]) over a span.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct CompareRequest {
    pub a: usize,
    pub b: usize,
    pub seed: u64,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Starts the comparisons asked for (one at a time; a request while one runs waits for none).
pub fn start_requests(
    mut requests: MessageReader<CompareRequest>,
    jobs: Option<ResMut<ScenarioJobs>>,
) {
    let Some(mut jobs) = jobs else {
        requests.clear();
        return;
    };
    for r in requests.read() {
        if !jobs.start(r.a, r.b, r.seed, r.from_ms, r.to_ms) {
            warn!("scenario comparison not started: another runs, or a file is unreadable");
        }
    }
}

/// Collects finished comparisons each frame.
pub fn poll_jobs(jobs: Option<ResMut<ScenarioJobs>>) {
    if let Some(mut jobs) = jobs {
        jobs.poll();
    }
}

/// Scenario comparisons for the window: requests started, finished runs collected (the app
/// inserts [`ScenarioJobs`] with its runner).
#[derive(Default)]
pub struct ScenarioPlugin;

impl Plugin for ScenarioPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<CompareRequest>()
            .add_message::<super::draft::DraftRequest>()
            .init_resource::<super::draft::ScenarioDraft>()
            .add_systems(Update, super::draft::apply_draft_requests)
            .add_plugins(super::shown::ShowScenarioPlugin)
            .add_systems(
                Update,
                (start_requests, poll_jobs)
                    .chain()
                    .before(super::shown::adopt_comparison),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_lists_its_scenarios_and_a_run_comes_back_from_its_thread() {
        let dir = std::env::temp_dir().join(format!("tvilling-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.toml"), "name = \"A\"\n").expect("a");
        std::fs::write(
            dir.join("b.toml"),
            "name = \"B\"\n[[edit]]\nkind = \"dim\"\n",
        )
        .expect("b");
        std::fs::write(
            dir.join("scene.toml"),
            "name = \"S\"\ncrs = \"EPSG:3006\"\n",
        )
        .expect("s");
        // A runner that says how much lighting each named scenario used.
        let runner: Runner = Arc::new(|a: &Scenario, b: &Scenario, _, from, to| {
            let r = |s: &Scenario| RunResult {
                lighting_kwh: s.name.len() as f64 + (to - from) as f64 / 1000.0,
                ..Default::default()
            };
            let plan = Arc::new(Simulator {
                seed: 1,
                devices: Vec::new(),
            });
            Ok(RunOutput {
                a: r(a),
                b: r(b),
                plans: [plan.clone(), plan],
                device_kwh: [
                    HashMap::from([("lamp/1".into(), 2.0), ("lamp/2".into(), 1.0)]),
                    HashMap::from([("lamp/1".into(), 1.5), ("lamp/2".into(), 1.0)]),
                ],
            })
        });
        let mut jobs = ScenarioJobs::new(runner, &dir);
        assert_eq!(jobs.files.len(), 2, "the scene file is not a scenario");
        assert!(
            jobs.files[1]
                .1
                .as_ref()
                .is_err_and(|e| e.contains("unknown kind"))
        );
        assert_eq!(jobs.scenarios().len(), 1);
        assert!(
            !jobs.start(0, 1, 1, 0, 1000),
            "an unreadable file does not run"
        );
        assert!(jobs.start(0, 0, 1, 0, 1000));
        assert!(!jobs.start(0, 0, 1, 0, 1000), "one at a time");
        let t = Instant::now();
        while !jobs.poll() {
            assert!(t.elapsed().as_secs() < 10);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let c = jobs.last.as_ref().expect("done").as_ref().expect("ran");
        assert_eq!(c.rows[0].a, Some(2.0));
        assert_eq!(c.number, 1);
        assert_eq!(
            c.difference,
            HashMap::from([("lamp/1".to_string(), -0.5)]),
            "only what changed"
        );
        assert!(jobs.running().is_none());
        // Through the ECS: a request (as the window writes it) starts the run, and the
        // plugin collects its result.
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, ScenarioPlugin))
            .insert_resource(jobs);
        app.world_mut().write_message(CompareRequest {
            a: 0,
            b: 0,
            seed: 1,
            from_ms: 0,
            to_ms: 5000,
        });
        let t = Instant::now();
        loop {
            app.update();
            let done = app
                .world()
                .resource::<ScenarioJobs>()
                .last
                .as_ref()
                .and_then(|l| l.as_ref().ok().map(|c| c.to_ms));
            if done == Some(5000) {
                break;
            }
            assert!(t.elapsed().as_secs() < 10, "the request never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
