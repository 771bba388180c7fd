//! The generated default registry: devices for a city whose source data has few surveyed ones.
//!
//! OpenStreetMap maps every signalled junction but almost no street lamps, meters or air
//! sensors. For the demo the twin places them where a city has them: street lamps along every
//! street at a typical spacing (25-40 m, per street), one energy meter per building, and a few
//! air-quality sensors on the busiest streets. Signal heads are the source's signal points,
//! grouped into controllers (points within [`CONTROLLER_RADIUS_M`] share one). Surveyed lamps
//! are kept and generated ones keep clear of them. Every generated device says so in its
//! attributes (`origin = generated`, with the rule that placed it); surveyed ones say `surveyed`.
//!
//! Placement is deterministic for a seed: the same city and seed give the same registry.

use std::collections::HashMap;

use bevy::math::DVec2;

use crate::registry::DeviceKind;
use crate::simulate::{BuildingUse, SimProfile, unit_hash};

/// Signal points closer than this belong to one controller (one junction).
pub const CONTROLLER_RADIUS_M: f64 = 40.0;
/// Generated lamps keep at least this far from any other lamp.
pub const LAMP_CLEARANCE_M: f64 = 12.0;
/// Air sensors keep at least this far apart.
pub const AIR_SENSOR_SPACING_M: f64 = 400.0;

/// A street centreline; `rank` 0 is the busiest class (trunk), 5 a pedestrian street.
#[derive(Debug, Clone)]
pub struct LayoutStreet {
    pub id: String,
    pub name: Option<String>,
    pub rank: u8,
    pub line: Vec<DVec2>,
}

/// A building: its id, centroid, gross floor area and OSM `building` value (use).
#[derive(Debug, Clone)]
pub struct LayoutBuilding {
    pub id: String,
    pub centroid: DVec2,
    pub floor_area_m2: f64,
    pub building_use: Option<String>,
}

/// A traffic-signal point; `junction` is false for a signalled crossing.
#[derive(Debug, Clone)]
pub struct LayoutSignal {
    pub id: String,
    pub position: DVec2,
    pub junction: bool,
}

/// What the city offers for placing devices (scene CRS, metres).
#[derive(Debug, Clone, Default)]
pub struct CityLayout {
    pub streets: Vec<LayoutStreet>,
    pub buildings: Vec<LayoutBuilding>,
    pub signals: Vec<LayoutSignal>,
    /// Surveyed street lamps (id, position).
    pub lamps: Vec<(String, DVec2)>,
}

/// A device of the generated registry.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedDevice {
    /// The id its payloads carry.
    pub id: String,
    pub kind: DeviceKind,
    /// Scene CRS.
    pub position: DVec2,
    /// The city entity it is fitted to (a building or a signal point), by that entity's id;
    /// `None` for a device that is an entity of its own (a generated lamp or air sensor).
    pub host: Option<String>,
    pub name: String,
    /// `origin` (generated or surveyed) and `placement` (the rule that put it there).
    pub attributes: Vec<(String, String)>,
    /// How the simulator drives it.
    pub profile: SimProfile,
}

/// The name of a street rank (0 trunk .. 5 pedestrian), as scenario files select lamps by it.
pub fn street_class_name(rank: u8) -> &'static str {
    match rank {
        0 => "trunk",
        1 => "primary",
        2 => "secondary",
        3 => "tertiary",
        4 => "residential",
        _ => "pedestrian",
    }
}

/// Street lamp power by street rank, W (LED luminaires of Stockholm's street classes).
fn lamp_watts(rank: u8) -> f64 {
    match rank {
        0 | 1 => 100.0,
        2 => 80.0,
        3 => 60.0,
        4 => 40.0,
        _ => 30.0,
    }
}

/// Spatial hash of points for clearance checks.
struct Grid {
    cell: f64,
    cells: HashMap<(i64, i64), Vec<DVec2>>,
}

impl Grid {
    fn new(cell: f64) -> Grid {
        Grid {
            cell,
            cells: HashMap::new(),
        }
    }

    fn key(&self, p: DVec2) -> (i64, i64) {
        (
            (p.x / self.cell).floor() as i64,
            (p.y / self.cell).floor() as i64,
        )
    }

    fn insert(&mut self, p: DVec2) {
        let k = self.key(p);
        self.cells.entry(k).or_default().push(p);
    }

    /// Whether any point lies closer than `r` (`r` at most one cell).
    fn near(&self, p: DVec2, r: f64) -> bool {
        let (kx, ky) = self.key(p);
        (-1..=1).any(|dx| {
            (-1..=1).any(|dy| {
                self.cells
                    .get(&(kx + dx, ky + dy))
                    .is_some_and(|v| v.iter().any(|q| q.distance(p) < r))
            })
        })
    }
}

/// Points every `spacing` metres along a polyline, the first at `spacing / 2`.
pub fn points_along(line: &[DVec2], spacing: f64) -> Vec<DVec2> {
    let mut out = Vec::new();
    if spacing <= 0.0 {
        return out;
    }
    let mut next = spacing / 2.0;
    let mut walked = 0.0;
    for w in line.windows(2) {
        let len = w[0].distance(w[1]);
        while next <= walked + len {
            let f = if len > 0.0 {
                (next - walked) / len
            } else {
                0.0
            };
            out.push(w[0].lerp(w[1], f));
            next += spacing;
        }
        walked += len;
    }
    out
}

fn polyline_length(line: &[DVec2]) -> f64 {
    line.windows(2).map(|w| w[0].distance(w[1])).sum()
}

/// The point halfway along a polyline.
fn midpoint(line: &[DVec2]) -> Option<DVec2> {
    let half = polyline_length(line) / 2.0;
    let mut walked = 0.0;
    for w in line.windows(2) {
        let len = w[0].distance(w[1]);
        if walked + len >= half {
            let f = if len > 0.0 {
                (half - walked) / len
            } else {
                0.0
            };
            return Some(w[0].lerp(w[1], f));
        }
        walked += len;
    }
    line.first().copied()
}

fn attrs(origin: &str, placement: String) -> Vec<(String, String)> {
    vec![
        ("origin".into(), origin.into()),
        ("placement".into(), placement),
    ]
}

/// Groups signal points into controllers: single linkage within `radius`. Returns, per point,
/// its group index, groups numbered in order of their first point.
pub fn cluster_signals(points: &[DVec2], radius: f64) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..points.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let key = |p: DVec2| ((p.x / radius).floor() as i64, (p.y / radius).floor() as i64);
    for (i, p) in points.iter().enumerate() {
        let (kx, ky) = key(*p);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for &j in grid.get(&(kx + dx, ky + dy)).map_or(&[][..], Vec::as_slice) {
                    if points[j].distance(*p) <= radius {
                        let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                        if a != b {
                            parent[a.max(b)] = a.min(b);
                        }
                    }
                }
            }
        }
        grid.entry((kx, ky)).or_default().push(i);
    }
    let mut number: HashMap<usize, usize> = HashMap::new();
    (0..points.len())
        .map(|i| {
            let r = root(&mut parent, i);
            let n = number.len();
            *number.entry(r).or_insert(n)
        })
        .collect()
}

/// The generated registry of a city, deterministic for `seed`.
pub fn generate_registry(city: &CityLayout, seed: u64) -> Vec<PlannedDevice> {
    let mut out = Vec::new();

    // Signal heads: the source's points, grouped into controllers. Within a controller, heads
    // on the north-south axis of its centre run in one phase group and east-west in the other;
    // a controller of crossings only gives vehicles the longer green.
    let points: Vec<DVec2> = city.signals.iter().map(|s| s.position).collect();
    let groups = cluster_signals(&points, CONTROLLER_RADIUS_M);
    let n_groups = groups.iter().max().map_or(0, |m| m + 1);
    let mut centre = vec![(DVec2::ZERO, 0usize, false, String::new()); n_groups];
    for (s, &g) in city.signals.iter().zip(&groups) {
        let c = &mut centre[g];
        c.0 += s.position;
        c.1 += 1;
        c.2 |= s.junction;
        if c.3.is_empty() {
            c.3 = s.id.clone();
        }
    }
    for (s, &g) in city.signals.iter().zip(&groups) {
        let (sum, n, junction, first) = &centre[g];
        let mid = *sum / *n as f64;
        let d = s.position - mid;
        let group = u8::from(d.length() > 3.0 && d.x.abs() > d.y.abs());
        let controller = format!("controller/{first}");
        let h = unit_hash(seed, &controller, 1);
        // Stockholm's signalled junctions run 60-90 s cycles, crossings 40-60 s.
        let cycle_s = if *junction {
            (60.0 + 30.0 * h).round()
        } else {
            (40.0 + 20.0 * h).round()
        };
        let split = if *junction { 0.5 + 0.1 * h } else { 0.65 };
        out.push(PlannedDevice {
            id: format!("signal/{}", s.id),
            kind: DeviceKind::SignalHead,
            position: s.position,
            host: Some(s.id.clone()),
            name: format!("Signal head at {} ({controller})", s.id),
            attributes: {
                let mut a = attrs(
                    "surveyed",
                    format!(
                        "the source's signal point; controller of {n} points within {CONTROLLER_RADIUS_M} m"
                    ),
                );
                a.push(("controller".into(), controller.clone()));
                a.push(("phase_group".into(), group.to_string()));
                a.push(("cycle_s".into(), cycle_s.to_string()));
                a
            },
            profile: SimProfile::Signal {
                cycle_s,
                offset_s: (unit_hash(seed, &controller, 2) * cycle_s).round(),
                split,
                group,
            },
        });
    }

    // Street lamps: surveyed ones first, then every street at its own spacing.
    let mut taken = Grid::new(LAMP_CLEARANCE_M);
    for (id, p) in &city.lamps {
        taken.insert(*p);
        out.push(PlannedDevice {
            id: format!("lamp/{id}"),
            kind: DeviceKind::Lamp,
            position: *p,
            host: Some(id.clone()),
            name: format!("Street lamp {id}"),
            attributes: attrs("surveyed", "the source's street_lamp point".into()),
            profile: SimProfile::lamp(seed, &format!("lamp/{id}"), 60.0),
        });
    }
    let mut streets: Vec<&LayoutStreet> = city.streets.iter().collect();
    streets.sort_by(|a, b| (a.rank, &a.id).cmp(&(b.rank, &b.id)));
    for s in &streets {
        let spacing = (25.0 + 15.0 * unit_hash(seed, &s.id, 3)).round();
        let label = s.name.clone().unwrap_or_else(|| s.id.clone());
        for (k, p) in points_along(&s.line, spacing).into_iter().enumerate() {
            if taken.near(p, LAMP_CLEARANCE_M) {
                continue;
            }
            taken.insert(p);
            let id = format!("lamp/{}/{k}", s.id);
            out.push(PlannedDevice {
                name: format!("Street lamp {} on {label}", k + 1),
                kind: DeviceKind::Lamp,
                position: p,
                host: None,
                attributes: {
                    let mut a = attrs(
                        "generated",
                        format!("every {spacing} m along {label} ({})", s.id),
                    );
                    a.push(("street".into(), label.clone()));
                    a.push(("street_class".into(), street_class_name(s.rank).into()));
                    a
                },
                profile: SimProfile::lamp(seed, &id, lamp_watts(s.rank)),
                id,
            });
        }
    }

    // One energy meter per building.
    for b in &city.buildings {
        let id = format!("meter/{}", b.id);
        out.push(PlannedDevice {
            name: format!("Energy meter of {}", b.id),
            kind: DeviceKind::Meter,
            position: b.centroid,
            host: Some(b.id.clone()),
            attributes: attrs("generated", "one meter per building".into()),
            profile: SimProfile::Meter {
                floor_area_m2: b.floor_area_m2.max(10.0),
                building_use: BuildingUse::from_osm(b.building_use.as_deref()),
            },
            id,
        });
    }

    // Air sensors at the middle of the busiest, longest streets, kept apart; about one per
    // 5 km of street, at least 3 where the streets leave room.
    let total_km: f64 = city
        .streets
        .iter()
        .map(|s| polyline_length(&s.line))
        .sum::<f64>()
        / 1000.0;
    let wanted = ((total_km / 5.0).ceil() as usize).max(3);
    let mut busiest: Vec<&LayoutStreet> = city.streets.iter().collect();
    busiest.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(polyline_length(&b.line).total_cmp(&polyline_length(&a.line)))
            .then(a.id.cmp(&b.id))
    });
    let mut placed: Vec<DVec2> = Vec::new();
    for s in busiest {
        if placed.len() == wanted {
            break;
        }
        let Some(p) = midpoint(&s.line) else { continue };
        if placed.iter().any(|q| q.distance(p) < AIR_SENSOR_SPACING_M) {
            continue;
        }
        placed.push(p);
        let label = s.name.clone().unwrap_or_else(|| s.id.clone());
        let id = format!("air/{}", placed.len());
        out.push(PlannedDevice {
            name: format!("Air quality, {label}"),
            kind: DeviceKind::AirSensor,
            position: p,
            host: None,
            attributes: attrs(
                "generated",
                format!(
                    "middle of {label} ({}), a busiest street (rank {})",
                    s.id, s.rank
                ),
            ),
            profile: SimProfile::Air {
                traffic: 1.0 - f64::from(s.rank) / 6.0,
            },
            id,
        });
    }
    out
}

/// `n` lamps on a square grid of `spacing` metres centred on `centre`: a city-sized lighting
/// load for measurements (marked generated, placement "grid").
pub fn lamp_grid(centre: DVec2, n: usize, spacing: f64, seed: u64) -> Vec<PlannedDevice> {
    let side = (n as f64).sqrt().ceil() as usize;
    let half = side as f64 * spacing / 2.0;
    (0..n)
        .map(|i| {
            let (x, y) = ((i % side) as f64, (i / side) as f64);
            let id = format!("lamp/grid/{i}");
            PlannedDevice {
                name: format!("Grid lamp {i}"),
                kind: DeviceKind::Lamp,
                position: centre + DVec2::new(x * spacing - half, y * spacing - half),
                host: None,
                attributes: attrs("generated", format!("{spacing} m grid, {n} lamps")),
                profile: SimProfile::lamp(seed, &id, 60.0),
                id,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn street(id: &str, rank: u8, from: (f64, f64), to: (f64, f64)) -> LayoutStreet {
        LayoutStreet {
            id: id.into(),
            name: Some(format!("{id}gatan")),
            rank,
            line: vec![DVec2::new(from.0, from.1), DVec2::new(to.0, to.1)],
        }
    }

    fn sig(id: &str, x: f64, y: f64, junction: bool) -> LayoutSignal {
        LayoutSignal {
            id: id.into(),
            position: DVec2::new(x, y),
            junction,
        }
    }

    fn city() -> CityLayout {
        CityLayout {
            streets: vec![
                street("a", 1, (0.0, 0.0), (1000.0, 0.0)),
                // Crosses "a" at (500, 0): its lamps keep clear of a's.
                street("b", 4, (500.0, -300.0), (500.0, 300.0)),
                street("c", 2, (0.0, 800.0), (1000.0, 800.0)),
            ],
            buildings: vec![LayoutBuilding {
                id: "way/1".into(),
                centroid: DVec2::new(100.0, 50.0),
                floor_area_m2: 5000.0,
                building_use: Some("office".into()),
            }],
            signals: vec![
                // A junction of three approaches: west, east (one street) and north.
                sig("node/1", 480.0, 0.0, true),
                sig("node/2", 520.0, 0.0, true),
                sig("node/4", 500.0, 25.0, true),
                sig("node/3", 900.0, 800.0, false),
            ],
            lamps: vec![("node/9".into(), DVec2::new(20.0, 0.0))],
        }
    }

    #[test]
    fn points_fall_at_the_spacing_along_a_bent_line() {
        let line = [DVec2::ZERO, DVec2::new(50.0, 0.0), DVec2::new(50.0, 50.0)];
        let p = points_along(&line, 30.0);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].distance(DVec2::new(15.0, 0.0)) < 1e-9);
        assert!(p[1].distance(DVec2::new(45.0, 0.0)) < 1e-9);
        assert!(p[2].distance(DVec2::new(50.0, 25.0)) < 1e-9);
    }

    #[test]
    fn nearby_signal_points_share_a_controller() {
        let pts = [
            DVec2::new(0.0, 0.0),
            DVec2::new(30.0, 0.0),
            DVec2::new(60.0, 0.0), // chained through the second
            DVec2::new(500.0, 0.0),
        ];
        assert_eq!(cluster_signals(&pts, 40.0), vec![0, 0, 0, 1]);
    }

    #[test]
    fn the_registry_places_every_kind_and_marks_what_it_made_up() {
        let devices = generate_registry(&city(), 7);
        let count = |k| devices.iter().filter(|d| d.kind == k).count();
        assert_eq!(count(DeviceKind::SignalHead), 4);
        assert_eq!(count(DeviceKind::Meter), 1);
        // Three wanted; b's middle is a's middle, so only a and c get one.
        assert_eq!(count(DeviceKind::AirSensor), 2);
        // Lamps: 1 surveyed + about 1000/25..40 + 600/25..40 + 1000/25..40.
        let lamps: Vec<_> = devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Lamp)
            .collect();
        assert!((60..=110).contains(&lamps.len()), "{} lamps", lamps.len());
        for (i, a) in lamps.iter().enumerate() {
            for b in &lamps[i + 1..] {
                assert!(
                    a.position.distance(b.position) >= LAMP_CLEARANCE_M,
                    "{} and {} too close",
                    a.id,
                    b.id
                );
            }
        }
        let origin = |d: &PlannedDevice| {
            d.attributes
                .iter()
                .find(|(k, _)| k == "origin")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(origin(lamps[0]).as_deref(), Some("surveyed"));
        assert!(
            lamps[1..]
                .iter()
                .all(|l| origin(l).as_deref() == Some("generated"))
        );
        // The three junction points form one controller: the two on the east-west street run
        // together, the north approach in the other phase group; the crossing is alone.
        let heads: Vec<_> = devices
            .iter()
            .filter(|d| d.kind == DeviceKind::SignalHead)
            .collect();
        let attr = |d: &PlannedDevice, key: &str| {
            d.attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let ctrl: Vec<_> = heads.iter().map(|h| attr(h, "controller")).collect();
        assert_eq!(ctrl[0], ctrl[1]);
        assert_eq!(ctrl[0], ctrl[2]);
        assert_ne!(ctrl[0], ctrl[3]);
        let group: Vec<_> = heads.iter().map(|h| attr(h, "phase_group")).collect();
        assert_eq!(group[0], group[1]);
        assert_ne!(group[0], group[2]);
        let cycle: Vec<f64> = heads
            .iter()
            .map(|h| match h.profile {
                SimProfile::Signal { cycle_s, .. } => cycle_s,
                _ => panic!("{} is no signal", h.id),
            })
            .collect();
        assert!(
            cycle[..3]
                .iter()
                .all(|c| *c == cycle[0] && (60.0..=90.0).contains(c))
        );
        assert!((40.0..=60.0).contains(&cycle[3]), "a crossing's cycle");
        // The first air sensor is on the busiest street.
        let air = devices
            .iter()
            .find(|d| d.kind == DeviceKind::AirSensor)
            .expect("air sensor");
        assert!(air.position.distance(DVec2::new(500.0, 0.0)) < 1e-6);
        // The meter sits on its building.
        let meter = devices
            .iter()
            .find(|d| d.kind == DeviceKind::Meter)
            .expect("meter");
        assert_eq!(meter.host.as_deref(), Some("way/1"));
    }

    #[test]
    fn a_lamp_grid_has_n_lamps_at_the_spacing_around_its_centre() {
        let g = lamp_grid(DVec2::new(1000.0, 2000.0), 10, 30.0, 1);
        assert_eq!(g.len(), 10);
        // 4 per row (ceil(sqrt 10)), centred: x from 940 to 1030.
        assert_eq!(g[0].position, DVec2::new(940.0, 1940.0));
        assert_eq!(g[5].position, DVec2::new(970.0, 1970.0));
        let ids: std::collections::HashSet<_> = g.iter().map(|d| &d.id).collect();
        assert_eq!(ids.len(), 10);
    }

    #[test]
    fn one_seed_gives_one_registry_and_another_seed_another() {
        let a = generate_registry(&city(), 7);
        assert_eq!(a, generate_registry(&city(), 7));
        let b = generate_registry(&city(), 8);
        assert_ne!(a, b);
    }
}
