//! A compared pair of scenarios shown in the city: A, B, or both side by side, at a moment of
//! the compared span that the planner scrubs or plays. Render-free: this holds what each
//! device shows under each scenario at that moment ([`SimLook`], from the same simulator code
//! that ran the comparison), the planned buildings of each side in the scene's CRS, and each
//! device's energy difference over the span; the view draws them.
//!
//! Panels write [`ShowRequest`]s; [`apply_show_requests`] applies them.

use std::collections::HashMap;
use std::sync::Arc;

use bevy::math::DVec2;
use bevy::prelude::*;
use tvilling_geo::{Crs, GeoFrame, Transformer};
use tvilling_sensors::simulate::{BuildingUse, SimLook, Simulator};
use tvilling_sensors::state::Device;

use super::file::{LightingEdit, Scenario};
use super::jobs::{Comparison, ScenarioJobs};

/// Storey height of a planned building, m (the importer's `building:levels` rule).
pub const STOREY_M: f64 = tvilling_city::import::METRES_PER_LEVEL;

/// What the city shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowMode {
    /// The twin's own state (live or simulated), as without scenarios.
    #[default]
    Live,
    /// Scenario A at the chosen moment.
    A,
    /// Scenario B at the chosen moment.
    B,
    /// A on the left, B on the right, cameras locked together.
    Split,
}

impl ShowMode {
    pub const ALL: [ShowMode; 4] = [ShowMode::Live, ShowMode::A, ShowMode::B, ShowMode::Split];

    /// Which sides (0: A, 1: B) are drawn.
    pub fn sides(self) -> &'static [usize] {
        match self {
            ShowMode::Live => &[],
            ShowMode::A => &[0],
            ShowMode::B => &[1],
            ShowMode::Split => &[0, 1],
        }
    }
}

/// A change asked for (the Scenarios window writes them).
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub enum ShowRequest {
    Mode(ShowMode),
    /// Play or pause the compared span.
    Play(bool),
    /// Go to a moment, Unix ms (kept within the span).
    Seek(i64),
    /// Simulated seconds per real second while playing.
    Speed(f64),
}

/// A planned building of one side, in the scene's CRS.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBuilding {
    pub name: String,
    /// Outer ring, scene CRS (easting, northing), closed or not.
    pub ring: Vec<DVec2>,
    pub height_m: f64,
    pub building_use: BuildingUse,
}

/// One side (A or B) of the comparison shown.
#[derive(Debug, Clone)]
pub struct ShownSide {
    pub name: String,
    sim: Arc<Simulator>,
    /// Device index in `sim` of each entity of this twin that the side simulates.
    index_of: HashMap<Entity, usize>,
    /// What each device of `sim` shows at [`ShownScenarios::t_ms`].
    looks: Vec<SimLook>,
    pub buildings: Vec<PlannedBuilding>,
}

impl ShownSide {
    /// A side: its name, its simulated devices, the entity of each device the twin has (by
    /// index in `sim`), and its planned buildings.
    pub fn new(
        name: String,
        sim: Arc<Simulator>,
        index_of: HashMap<Entity, usize>,
        buildings: Vec<PlannedBuilding>,
    ) -> ShownSide {
        ShownSide {
            name,
            sim,
            index_of,
            looks: Vec::new(),
            buildings,
        }
    }

    /// What the device of entity `e` shows under this side now; `None` when this side does
    /// not simulate it.
    pub fn look(&self, e: Entity) -> Option<SimLook> {
        self.looks.get(*self.index_of.get(&e)?).copied()
    }

    /// How many devices of this side's plan, less the meters of its planned buildings (drawn
    /// as their buildings).
    pub fn planned(&self) -> usize {
        self.sim
            .devices
            .iter()
            .filter(|d| !d.id.starts_with(super::edits::PLANNED_METER_PREFIX))
            .count()
    }

    /// How many of them are in the city on screen.
    pub fn found(&self) -> usize {
        self.index_of.len()
    }
}

/// The comparison shown in the city, and at which moment.
#[derive(Resource, Debug, Clone)]
pub struct ShownScenarios {
    pub mode: ShowMode,
    pub playing: bool,
    /// Simulated seconds per real second while playing.
    pub speed: f64,
    /// The moment shown, Unix ms, within `from_ms..=to_ms`.
    pub t_ms: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    /// A and B, once a comparison has finished.
    pub sides: Option<[ShownSide; 2]>,
    /// B's energy less A's over the span, kWh, of each lamp and meter on screen whose energy
    /// differs.
    pub difference: HashMap<Entity, f64>,
    /// Which comparison is shown (its number in [`ScenarioJobs`]).
    pub comparison: u64,
    /// The moment the looks were last worked out for; changes when they change.
    pub looked_at_ms: Option<i64>,
    /// Why a planned building cannot be drawn (e.g. no transformation to the scene's CRS).
    pub problems: Vec<String>,
    /// Where a comparison is shown from when it arrives (default: its start).
    pub first_moment_ms: Option<i64>,
}

impl Default for ShownScenarios {
    fn default() -> Self {
        ShownScenarios {
            mode: ShowMode::Live,
            playing: false,
            speed: 1800.0,
            t_ms: 0,
            from_ms: 0,
            to_ms: 0,
            sides: None,
            difference: HashMap::new(),
            comparison: 0,
            looked_at_ms: None,
            problems: Vec::new(),
            first_moment_ms: None,
        }
    }
}

impl ShownScenarios {
    /// Whether scenario state, not the twin's own, is drawn.
    pub fn is_shown(&self) -> bool {
        self.mode != ShowMode::Live && self.sides.is_some()
    }

    /// The largest energy difference of a device, kWh (the scale of the difference colours).
    pub fn largest_difference(&self) -> f64 {
        self.difference.values().fold(0.0, |m, d| m.max(d.abs()))
    }
}

/// Planned buildings of a scenario, in the scene's CRS.
pub fn planned_buildings(
    scenario: &Scenario,
    from_wgs84: impl Fn(f64, f64) -> Option<DVec2>,
) -> Result<Vec<PlannedBuilding>, String> {
    let mut out = Vec::new();
    for e in &scenario.edits {
        let LightingEdit::Building {
            name,
            footprint,
            storeys,
            building_use,
        } = &e.change
        else {
            continue;
        };
        let ring = footprint
            .iter()
            .map(|&(lon, lat)| from_wgs84(lon, lat))
            .collect::<Option<Vec<DVec2>>>()
            .ok_or_else(|| format!("{name}: the footprint cannot be placed in the scene"))?;
        out.push(PlannedBuilding {
            name: name.clone(),
            ring,
            height_m: storeys * STOREY_M,
            building_use: *building_use,
        });
    }
    Ok(out)
}

/// Builds what is shown of a finished comparison: each side's devices matched to this twin's
/// by id, its planned buildings, and the energy differences by entity.
pub fn shown_sides(
    c: &Comparison,
    devices: &HashMap<&str, Entity>,
    crs: Crs,
) -> ([ShownSide; 2], HashMap<Entity, f64>, Vec<String>) {
    let mut problems = Vec::new();
    let from_wgs84 = Transformer::new(Crs::WGS84, crs).map_err(|e| e.to_string());
    let side = |s: &Scenario, sim: &Arc<Simulator>, problems: &mut Vec<String>| {
        let index_of = sim
            .devices
            .iter()
            .enumerate()
            .filter_map(|(i, d)| devices.get(d.id.as_str()).map(|&e| (e, i)))
            .collect();
        let buildings = match &from_wgs84 {
            Ok(t) => planned_buildings(s, |lon, lat| {
                t.convert(lon, lat).ok().map(|(x, y)| DVec2::new(x, y))
            })
            .unwrap_or_else(|e| {
                problems.push(e);
                Vec::new()
            }),
            Err(e) => {
                problems.push(format!("{}: {e}", s.name));
                Vec::new()
            }
        };
        ShownSide::new(s.name.clone(), sim.clone(), index_of, buildings)
    };
    let sides = [
        side(&c.a, &c.plans[0], &mut problems),
        side(&c.b, &c.plans[1], &mut problems),
    ];
    let difference = c
        .difference
        .iter()
        .filter_map(|(id, d)| devices.get(id.as_str()).map(|&e| (e, *d)))
        .collect();
    (sides, difference, problems)
}

/// A comparison that has finished is shown (from its start, or the first moment asked for, in
/// the mode already chosen).
pub fn adopt_comparison(
    jobs: Option<Res<ScenarioJobs>>,
    devices: Query<(Entity, &Device)>,
    frame: Option<Res<GeoFrame>>,
    mut shown: ResMut<ShownScenarios>,
) {
    let Some(jobs) = jobs else {
        return;
    };
    let Some(Ok(c)) = &jobs.last else {
        return;
    };
    if c.number == shown.comparison {
        return;
    }
    let ids: HashMap<&str, Entity> = devices.iter().map(|(e, d)| (d.id.as_str(), e)).collect();
    let crs = frame.map_or(Crs::SWEREF99_TM, |f| f.crs);
    let (sides, difference, problems) = shown_sides(c, &ids, crs);
    for p in &problems {
        warn!("scenario shown: {p}");
    }
    let shown = &mut *shown;
    shown.sides = Some(sides);
    shown.difference = difference;
    shown.problems = problems;
    shown.comparison = c.number;
    shown.from_ms = c.from_ms;
    shown.to_ms = c.to_ms;
    shown.t_ms = shown
        .first_moment_ms
        .map_or(c.from_ms, |t| t.clamp(c.from_ms, c.to_ms));
    shown.looked_at_ms = None;
}

/// Applies the requests of this frame.
pub fn apply_show_requests(
    mut requests: MessageReader<ShowRequest>,
    mut shown: ResMut<ShownScenarios>,
) {
    for r in requests.read() {
        match *r {
            ShowRequest::Mode(m) => shown.mode = m,
            ShowRequest::Play(p) => {
                // Playing from the end starts again.
                if p && shown.t_ms >= shown.to_ms {
                    shown.t_ms = shown.from_ms;
                }
                shown.playing = p;
            }
            ShowRequest::Seek(t) => shown.t_ms = t.clamp(shown.from_ms, shown.to_ms),
            ShowRequest::Speed(s) if s.is_finite() && s > 0.0 => shown.speed = s,
            ShowRequest::Speed(_) => {}
        }
    }
}

/// Moves the moment while playing (stops at the span's end) and works out what each side's
/// devices show when the moment has changed and a side is drawn.
pub fn advance_and_look(time: Res<Time>, mut shown: ResMut<ShownScenarios>) {
    let shown = &mut *shown;
    if shown.playing {
        let step = (f64::from(time.delta_secs()) * shown.speed * 1000.0) as i64;
        shown.t_ms = (shown.t_ms + step).min(shown.to_ms);
        if shown.t_ms >= shown.to_ms {
            shown.playing = false;
        }
    }
    if shown.mode == ShowMode::Live || shown.looked_at_ms == Some(shown.t_ms) {
        return;
    }
    let t = shown.t_ms;
    let Some(sides) = shown.sides.as_mut() else {
        return;
    };
    for side in sides.iter_mut() {
        side.looks = side.sim.looks(t);
    }
    shown.looked_at_ms = Some(t);
}

/// Scenarios shown in the city: requests applied, finished comparisons adopted, the moment
/// played and looked at.
#[derive(Default)]
pub struct ShowScenarioPlugin;

impl Plugin for ShowScenarioPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ShownScenarios>()
            .add_message::<ShowRequest>()
            .add_systems(
                Update,
                (adopt_comparison, apply_show_requests, advance_and_look).chain(),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tvilling_sensors::registry::DeviceKind;
    use tvilling_sensors::simulate::{LightingPolicy, SimDevice, SimProfile};

    use crate::scenario::report::RunResult;

    /// Two lamps; under B the first runs at 30 % all night.
    fn plans() -> [Arc<Simulator>; 2] {
        let lamp = |id: &str| SimDevice {
            id: id.into(),
            kind: DeviceKind::Lamp,
            profile: SimProfile::lamp(3, id, 100.0),
        };
        let a = Simulator {
            seed: 3,
            devices: vec![lamp("lamp/1"), lamp("lamp/2")],
        };
        let mut b = a.clone();
        if let SimProfile::Lamp { policy, broken, .. } = &mut b.devices[0].profile {
            *policy = Arc::new(LightingPolicy {
                weekdays: vec![(0, 30.0)],
                weekends: vec![(0, 30.0)],
                presence: None,
            });
            *broken = None;
        }
        for d in b.devices.iter_mut().skip(1) {
            if let SimProfile::Lamp { broken, .. } = &mut d.profile {
                *broken = None;
            }
        }
        let mut a = a;
        for d in &mut a.devices {
            if let SimProfile::Lamp { broken, .. } = &mut d.profile {
                *broken = None;
            }
        }
        [Arc::new(a), Arc::new(b)]
    }

    fn comparison(number: u64) -> Comparison {
        let text = r#"name = "B"
[[edit]]
kind = "building"
name = "Block"
footprint = [[18.0, 59.3], [18.001, 59.3], [18.001, 59.3006], [18.0, 59.3006], [18.0, 59.3]]
storeys = 4
use = "offices"
"#;
        let b = Scenario::parse(text, Path::new("b.toml")).expect("b");
        let a = Scenario::parse("name = \"A\"\n", Path::new("a.toml")).expect("a");
        Comparison {
            a,
            b,
            seed: 3,
            // 23 November 2026, 00:00 to 02:00 Stockholm time.
            from_ms: 1_795_388_400_000,
            to_ms: 1_795_388_400_000 + 7_200_000,
            ra: RunResult::default(),
            rb: RunResult::default(),
            rows: Vec::new(),
            wall_s: 1.0,
            plans: plans(),
            difference: HashMap::from([("lamp/1".into(), -1.4), ("lamp/9".into(), 2.0)]),
            number,
        }
    }

    #[test]
    fn a_finished_comparison_is_shown_side_by_side_at_a_moment_of_its_span() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(ShowScenarioPlugin)
            .insert_resource(GeoFrame::default());
        let world = app.world_mut();
        let l1 = world
            .spawn(Device {
                id: "lamp/1".into(),
                kind: DeviceKind::Lamp,
            })
            .id();
        let l2 = world
            .spawn(Device {
                id: "lamp/2".into(),
                kind: DeviceKind::Lamp,
            })
            .id();
        let runner: super::super::jobs::Runner =
            Arc::new(|_: &Scenario, _: &Scenario, _, _, _| Err("not run here".into()));
        let mut jobs = ScenarioJobs::new(runner, "/nonexistent");
        jobs.last = Some(Ok(comparison(1)));
        app.insert_resource(jobs);
        app.update();
        let shown = app.world().resource::<ShownScenarios>();
        assert_eq!(shown.comparison, 1);
        assert!(
            !shown.is_shown(),
            "the twin's own state until a side is asked for"
        );
        let sides = shown.sides.as_ref().expect("sides");
        assert_eq!((sides[0].found(), sides[0].planned()), (2, 2));
        assert_eq!(sides[0].look(l1), None, "nothing worked out while live");
        // Only the device on screen whose energy differs; lamp/9 is not in this city.
        assert_eq!(shown.difference, HashMap::from([(l1, -1.4)]));
        assert_eq!(shown.largest_difference(), 1.4);
        // B's planned building, in SWEREF 99 TM: four storeys, about 56 x 67 m.
        assert!(sides[0].buildings.is_empty());
        let block = &sides[1].buildings[0];
        assert_eq!(
            (block.height_m, block.ring.len()),
            (12.0, 4),
            "the ring kept open"
        );
        let width = (block.ring[1] - block.ring[0]).length();
        assert!((width - 56.9).abs() < 1.0, "{width}");

        // Split view at 01:00: lamp 1 is at 30 % under B, 50 % (the baseline) under A; lamp 2
        // is the same under both.
        let at = 1_795_388_400_000 + 3_600_000;
        app.world_mut()
            .write_message(ShowRequest::Mode(ShowMode::Split));
        app.world_mut().write_message(ShowRequest::Seek(at));
        app.update();
        let shown = app.world().resource::<ShownScenarios>();
        assert!(shown.is_shown());
        assert_eq!(shown.looked_at_ms, Some(at));
        let sides = shown.sides.as_ref().expect("sides");
        let dim = |side: usize, e: Entity| match sides[side].look(e) {
            Some(SimLook::Lamp(l)) if l.on => l.dim_pct,
            other => panic!("{other:?}"),
        };
        assert_eq!((dim(0, l1), dim(1, l1)), (50.0, 30.0));
        assert_eq!(dim(0, l2), dim(1, l2));

        // Seeking is kept within the span; playing moves on and stops at its end.
        app.world_mut()
            .write_message(ShowRequest::Seek(at + 86_400_000));
        app.update();
        let to = app.world().resource::<ShownScenarios>().to_ms;
        assert_eq!(app.world().resource::<ShownScenarios>().t_ms, to);
        // Playing from the end starts again from the span's start (at a second a second, the
        // first frame moves it by well under a minute).
        app.world_mut().write_message(ShowRequest::Speed(1.0));
        app.world_mut().write_message(ShowRequest::Play(true));
        app.update();
        let shown = app.world().resource::<ShownScenarios>();
        assert!(shown.playing);
        assert!(
            shown.t_ms - shown.from_ms < 60_000,
            "playing from the end starts again: {} ms into the span",
            shown.t_ms - shown.from_ms
        );
        app.world_mut().write_message(ShowRequest::Speed(1e9));
        app.update();
        std::thread::sleep(std::time::Duration::from_millis(5));
        app.update();
        let shown = app.world().resource::<ShownScenarios>();
        assert_eq!(shown.t_ms, shown.to_ms);
        assert!(!shown.playing, "stopped at the end");

        // A new comparison is adopted once, from its start.
        let mut jobs = app.world_mut().resource_mut::<ScenarioJobs>();
        jobs.last = Some(Ok(comparison(2)));
        app.update();
        let shown = app.world().resource::<ShownScenarios>();
        assert_eq!((shown.comparison, shown.t_ms), (2, shown.from_ms));
        assert_eq!(shown.mode, ShowMode::Split, "the mode chosen stays");
    }
}
