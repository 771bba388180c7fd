//! SUMO in the twin: a SUMO started on a free loopback port (or one already running),
//! stepped to the twin clock one SUMO step at a time over TraCI, its vehicles as entities at
//! their positions in the twin's CRS. SUMO's time 0 is the local midnight of the clock's day
//! (its demand is a working day). SUMO ending or being killed is kept as the link's state and
//! logged; the twin goes on without it. Read-only towards the city: SUMO is a local simulator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use bevy::math::DVec3;
use bevy::prelude::*;
use tvilling_city::model::{TwinEntity, TwinKind};
use tvilling_geo::WorldPosition;
use tvilling_sensors::apply::SteppedInput;
use tvilling_sensors::clock::TwinClock;
use tvilling_sensors::ingest::IngestSender;
use tvilling_sensors::observation::{FieldValue, Observation};
use tvilling_sensors::registry::DeviceKind;
use tvilling_sensors::simulate::SIGNAL_HEARTBEAT_MS;
use tvilling_sensors::state::{Device, DeviceInfo};
use tvilling_traci::net::{MatchReport, Net, aspect_of, match_heads, match_lights};
use tvilling_traci::{Client, TraciError, Value, ids};

/// A SUMO vehicle in the twin.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub id: String,
    /// m/s.
    pub speed: f64,
    /// Heading, degrees clockwise from north (SUMO's convention).
    pub angle_deg: f64,
    /// Seconds spent waiting (below 0.1 m/s) since it last moved.
    pub waiting_s: f64,
    /// The lane it is on, its vehicle type and its route, as SUMO names them.
    pub lane: String,
    pub vtype: String,
    pub route: String,
}

/// Below this speed a vehicle is queued (SUMO's halting threshold), m/s.
pub const HALTING_SPEED: f64 = 0.1;

/// How many light state changes an intersection keeps for its timeline.
pub const PHASE_TIMELINE: usize = 48;

/// A signalled intersection as SUMO runs it: a twin controller and the SUMO lights matched to
/// it, each approach's queue, and the recent changes of the lights' states.
#[derive(Component, Debug, Clone, PartialEq, Default)]
pub struct Intersection {
    pub controller: String,
    pub lights: Vec<String>,
    pub approaches: Vec<Approach>,
    /// (time, light, state string) of each change, oldest first.
    pub phases: std::collections::VecDeque<(i64, String, String)>,
}

impl Intersection {
    /// Vehicles queued on all approaches.
    pub fn queue(&self) -> usize {
        self.approaches.iter().map(|a| a.queue).sum()
    }
}

/// How often the traffic is recorded for playback, twin ms.
pub const TRAFFIC_RECORD_MS: i64 = 10_000;

/// Traffic moments waiting for the history's writer: (twin time, JSON).
#[derive(Resource, Debug, Default)]
pub struct TrafficRecord(pub Vec<(i64, String)>);

/// The traffic of a recorded moment: every vehicle's place and motion, each intersection's
/// queue. What playback draws (the timeline needs no more).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordedTraffic {
    pub t_ms: i64,
    pub vehicles: Vec<RecordedVehicle>,
    /// Queue by controller.
    pub queues: std::collections::BTreeMap<String, usize>,
}

/// A vehicle as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedVehicle {
    pub id: String,
    /// Scene CRS.
    pub position: bevy::math::DVec2,
    pub angle_deg: f64,
    pub speed: f64,
    pub waiting_s: f64,
}

impl RecordedTraffic {
    /// The stored form: `{"vehicles": [[id, x, y, angle, speed, waiting], ...], "queues":
    /// {controller: n}}`, positions to the centimetre.
    pub fn to_json(&self) -> String {
        let r = |v: f64, k: f64| (v * k).round() / k;
        let vehicles: Vec<serde_json::Value> = self
            .vehicles
            .iter()
            .map(|v| {
                serde_json::json!([
                    v.id,
                    r(v.position.x, 100.0),
                    r(v.position.y, 100.0),
                    r(v.angle_deg, 10.0),
                    r(v.speed, 100.0),
                    v.waiting_s
                ])
            })
            .collect();
        serde_json::json!({"vehicles": vehicles, "queues": self.queues}).to_string()
    }

    /// Reads the stored form (`None` when it is not that form).
    pub fn from_json(t_ms: i64, text: &str) -> Option<RecordedTraffic> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let vehicles = doc["vehicles"]
            .as_array()?
            .iter()
            .map(|v| {
                Some(RecordedVehicle {
                    id: v[0].as_str()?.to_string(),
                    position: bevy::math::DVec2::new(v[1].as_f64()?, v[2].as_f64()?),
                    angle_deg: v[3].as_f64()?,
                    speed: v[4].as_f64()?,
                    waiting_s: v[5].as_f64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let queues = doc["queues"]
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_u64()? as usize)))
            .collect::<Option<_>>()?;
        Some(RecordedTraffic {
            t_ms,
            vehicles,
            queues,
        })
    }
}

/// The traffic of the moment played back (`None` at the live edge): drawn instead of SUMO's
/// live vehicles.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct ShownTraffic(pub Option<RecordedTraffic>);

/// One approach (an incoming edge) of an intersection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Approach {
    pub edge: String,
    /// Vehicles on the approach, and those of them queued (halting).
    pub vehicles: usize,
    pub queue: usize,
    /// The queued vehicles' mean waiting time, s (their delay so far at the signal).
    pub mean_wait_s: f64,
}

/// Where SUMO comes from.
#[derive(Resource, Debug, Clone, PartialEq)]
pub enum SumoSetup {
    /// Start `sumo -c CONFIG` on a free loopback port.
    Start(PathBuf),
    /// Attach to a SUMO already listening (its network file given for the offset).
    Attach { addr: SocketAddr, config: PathBuf },
}

/// The link's state, for panels and the snapshot.
#[derive(Resource, Debug, Clone, PartialEq, Default)]
pub struct SumoStatus {
    /// SUMO's time reached, s since local midnight.
    pub time_s: f64,
    pub vehicles: usize,
    pub steps: u64,
    /// Why the link ended, when it has.
    pub ended: Option<String>,
    /// How far SUMO is behind the clock's edge after this frame, s (the clock waits for it).
    pub behind_s: f64,
    /// SUMO's lights matched to the twin's controllers, and those left unmatched.
    pub lights_matched: usize,
    pub lights_unmatched: Vec<String>,
    /// Signal heads showing SUMO's states, and heads left to the twin's own simulator (their
    /// controller has no SUMO light, or no link stops near them).
    pub heads_mirrored: usize,
    pub heads_unmatched: Vec<String>,
    /// Each mirrored head's SUMO light and link index.
    pub head_links: Vec<(String, String, usize)>,
    /// The most vehicles in the network at once so far.
    pub peak_vehicles: usize,
    /// Wall time since the twin connected, s (steps / wall_s: the co-simulation's speed).
    pub wall_s: f64,
    /// Of that, the time spent stepping SUMO and reading its results over TraCI, s.
    pub stepping_s: f64,
}

/// How far a SUMO light and its controller may stand apart, metres: SUMO places a light at its
/// junction's centre, the twin at the mean of its heads on the corners.
pub const MATCH_REACH_M: f64 = 40.0;

/// How far a head may stand from the stop line of the link it shows, metres.
pub const HEAD_REACH_M: f64 = 40.0;

/// The twin's signal controllers from their heads (id, controller, position): each at the
/// mean position of its heads, in controller order.
pub fn controllers_of(heads: &[(String, String, (f64, f64))]) -> Vec<(String, (f64, f64))> {
    let mut by: std::collections::BTreeMap<&str, (f64, f64, f64)> = Default::default();
    for (_, c, (x, y)) in heads {
        let e = by.entry(c).or_default();
        *e = (e.0 + x, e.1 + y, e.2 + 1.0);
    }
    by.into_iter()
        .map(|(c, (x, y, n))| (c.to_string(), (x / n, y / n)))
        .collect()
}

/// A head showing one of SUMO's signal links.
#[derive(Debug, Clone)]
struct HeadMirror {
    head: String,
    light: String,
    index: usize,
    /// The letter last reported, and when (SUMO's s).
    last: Option<(char, f64)>,
}

impl SumoStatus {
    /// The link's state in words, for the Live panel.
    pub fn describe(&self) -> String {
        let clock = |t: f64| {
            let t = t.max(0.0) as u64;
            format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
        };
        match &self.ended {
            Some(reason) => format!("ended at {}: {reason}", clock(self.time_s)),
            None if self.behind_s > 0.0 => format!(
                "{} vehicles at {}, {:.0} s behind (the clock waits for SUMO)",
                self.vehicles,
                clock(self.time_s),
                self.behind_s
            ),
            None => format!("{} vehicles at {}", self.vehicles, clock(self.time_s)),
        }
    }
}

/// How long SUMO may be stepped in one frame. When SUMO is slower than the clock, the frame
/// goes on after this and the clock waits at SUMO's time ([`TwinClock::gate_ms`]): the window
/// stays responsive and the twin never runs ahead of SUMO. The last frame of a run `--until`
/// steps SUMO all the way.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct SumoFrameBudget(pub Duration);

impl Default for SumoFrameBudget {
    fn default() -> Self {
        SumoFrameBudget(Duration::from_millis(50))
    }
}

/// The running link.
#[derive(Resource)]
pub struct SumoLink {
    client: Option<Client>,
    child: Option<Child>,
    net: Net,
    /// Local midnight of the clock's day, Unix ms (SUMO's time 0).
    midnight_ms: i64,
    vehicles: HashMap<String, Entity>,
    heads: Vec<HeadMirror>,
    /// Each subscribed light's state string.
    light_states: HashMap<String, String>,
    /// The `sumo` source's sender (its counters in the Live panel).
    sender: Option<IngestSender>,
    /// Each twin controller's intersection entity, the controller of each matched light, and
    /// every intersection's approach edges.
    intersections: HashMap<String, Entity>,
    light_controller: HashMap<String, String>,
    approach_edges: std::collections::HashSet<String>,
    /// This frame's light state changes (time, light, state).
    phase_changes: Vec<(i64, String, String)>,
    /// The recording interval last recorded (twin ms / [`TRAFFIC_RECORD_MS`]).
    recorded_bucket: i64,
    /// SUMO's time at connect, s of the day.
    begin_s: f64,
    /// The clock's time at connect: heads show SUMO's states from then (not the warm-up's).
    clock_s: f64,
    /// Until the first frame has stepped SUMO to the clock (the warm-up, unlimited).
    warming: bool,
    connected: std::time::Instant,
}

/// Coordinates beyond this are SUMO's invalid value (-2^30), not a place.
const INVALID_BEYOND: f64 = 1.0e9;

/// How long a SUMO the twin starts runs before the clock's moment, s: queues and platoons
/// are built up when the twin first shows the streets.
pub const SUMO_WARMUP_S: f64 = 900.0;

impl Drop for SumoLink {
    /// Closes the session; a SUMO the twin started is given ten seconds to write its outputs
    /// and exit before it is killed.
    fn drop(&mut self) {
        let closed = self.client.take().map(|c| c.close().is_ok());
        if let Some(mut child) = self.child.take() {
            if closed == Some(true) {
                for _ in 0..200 {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// `sumo -c CONFIG` (Debian's package; SUMO_HOME as set, else the package's).
pub fn sumo_command(config: &std::path::Path) -> Command {
    let mut c = Command::new("sumo");
    c.env(
        "SUMO_HOME",
        std::env::var("SUMO_HOME").unwrap_or_else(|_| "/usr/share/sumo".into()),
    )
    .arg("-c")
    .arg(config);
    c
}

/// The network file a SUMO configuration names.
pub fn net_file(config: &std::path::Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let at = text
        .find("<net-file")
        .ok_or_else(|| format!("{}: no <net-file>", config.display()))?;
    let value = text[at..]
        .split("value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .ok_or_else(|| format!("{}: <net-file> without a value", config.display()))?;
    Ok(config
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(value))
}

/// Matches a network's lights to the controllers of `heads` (id, controller, position in the
/// network's projection) within `reach_m`, overrides first.
pub fn match_to_controllers(
    net: &Net,
    heads: &[(String, String, (f64, f64))],
    reach_m: f64,
    overrides: &[(String, String)],
) -> MatchReport {
    let lights: Vec<(String, (f64, f64))> = net
        .lights
        .iter()
        .map(|l| (l.id.clone(), net.to_projected(l.x, l.y)))
        .collect();
    match_lights(&lights, &controllers_of(heads), reach_m, overrides)
}

/// Matches SUMO's lights to the twin's controllers and each head to a link.
fn map_signals(
    net: &Net,
    heads: &[(String, String, (f64, f64))],
    overrides: &[(String, String)],
) -> (MatchReport, Vec<HeadMirror>, Vec<String>) {
    let report = match_to_controllers(net, heads, MATCH_REACH_M, overrides);
    let (links, unmatched) = match_heads(net, &report, heads, HEAD_REACH_M);
    let mirrors = links
        .into_iter()
        .map(|l| HeadMirror {
            head: l.head,
            light: l.light,
            index: l.index,
            last: None,
        })
        .collect();
    (report, mirrors, unmatched)
}

/// Starts (or attaches to) SUMO at the clock's time of day and subscribes what a step needs:
/// the simulation's time and departures, and the states of the lights matched to the twin's
/// controllers (`heads`: each signal head's id, controller and position).
pub fn connect(
    setup: &SumoSetup,
    clock_ms: i64,
    heads: &[(String, String, (f64, f64))],
    overrides: &[(String, String)],
) -> Result<(SumoLink, MatchReport, Vec<String>), String> {
    let local = tvilling_sensors::simulate::stockholm_local(clock_ms);
    let now_s = (local.hour * 3600.0).floor();
    // A SUMO the twin starts begins a warm-up before the clock, so the streets already carry
    // traffic when the twin shows them; one attached to is taken where it is.
    let begin = match setup {
        SumoSetup::Start(_) => (now_s - SUMO_WARMUP_S).max(0.0),
        SumoSetup::Attach { .. } => now_s,
    };
    let (config, addr, child) = match setup {
        SumoSetup::Start(config) => {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let child = sumo_command(config)
                .args(["--remote-port", &port.to_string()])
                .args(["--begin", &begin.to_string()])
                .args(["--no-step-log", "--no-warnings"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start sumo (Debian package sumo): {e}"))?;
            (
                config.clone(),
                SocketAddr::from(([127, 0, 0, 1], port)),
                Some(child),
            )
        }
        SumoSetup::Attach { addr, config } => (config.clone(), *addr, None),
    };
    let net = Net::load(&net_file(&config)?).map_err(|e| e.to_string())?;
    let mut client =
        Client::connect(addr, Duration::from_secs(30)).map_err(|e: TraciError| e.to_string())?;
    client
        .subscribe(
            ids::SUBSCRIBE_SIM_VARIABLE,
            &[""],
            &[
                ids::VAR_TIME,
                ids::VAR_DEPARTED_VEHICLES_IDS,
                ids::VAR_ARRIVED_VEHICLES_IDS,
            ],
        )
        .map_err(|e| e.to_string())?;
    let (report, heads, unmatched) = map_signals(&net, heads, overrides);
    let mut lights: Vec<&str> = heads.iter().map(|h| h.light.as_str()).collect();
    lights.sort_unstable();
    lights.dedup();
    for light in lights {
        client
            .subscribe(
                ids::SUBSCRIBE_TL_VARIABLE,
                &[light],
                &[ids::TL_RED_YELLOW_GREEN_STATE],
            )
            .map_err(|e| format!("light {light}: {e}"))?;
    }
    info!(
        "{} (TraCI {}) at {addr}: {} traffic lights, from {begin} s of the day",
        client.version.1,
        client.version.0,
        net.lights.len()
    );
    Ok((
        SumoLink {
            client: Some(client),
            child,
            net,
            midnight_ms: local.midnight_ms,
            vehicles: HashMap::new(),
            heads,
            light_states: HashMap::new(),
            sender: None,
            intersections: HashMap::new(),
            light_controller: HashMap::new(),
            approach_edges: Default::default(),
            phase_changes: Vec::new(),
            recorded_bucket: i64::MIN,
            begin_s: begin,
            clock_s: now_s + 1.0,
            warming: true,
            connected: std::time::Instant::now(),
        },
        report,
        unmatched,
    ))
}

/// Steps SUMO to the twin clock's edge, one SUMO step at a time, and mirrors its vehicles.
pub fn step_sumo(
    mut commands: Commands,
    mut input: ResMut<SteppedInput>,
    mut clock: ResMut<TwinClock>,
    budget: Res<SumoFrameBudget>,
    mut link: ResMut<SumoLink>,
    mut status: ResMut<SumoStatus>,
    mut vehicles: Query<(&mut Vehicle, &mut WorldPosition)>,
    mut intersections: Query<&mut Intersection>,
    mut record: ResMut<TrafficRecord>,
) {
    let link = &mut *link;
    let target_s = (clock.edge_ms - link.midnight_ms) as f64 / 1000.0;
    let Some(client) = link.client.as_mut() else {
        clock.gate_ms = None;
        return;
    };
    let began = std::time::Instant::now();
    let unlimited = clock.finished() || link.warming;
    let steps_before = status.steps;
    link.warming = false;
    // Each vehicle's state after the frame's last step (spawned entities are only seen by
    // queries next frame, so the frame's steps are gathered first).
    // `None`: off the network at the frame's last step.
    let mut latest: HashMap<String, Option<(Vehicle, WorldPosition)>> = HashMap::new();
    loop {
        if status.time_s + 1.0 > target_s && status.steps > 0 {
            break;
        }
        if !unlimited && began.elapsed() > budget.0 {
            break;
        }
        let results = match client.step(0.0) {
            Ok(r) => r,
            Err(e) => {
                error!("SUMO: {e}; the twin goes on without it");
                status.ended = Some(e.to_string());
                status.behind_s = 0.0;
                clock.gate_ms = None;
                link.client = None;
                for (_, e) in link.vehicles.drain() {
                    commands.entity(e).despawn();
                }
                status.vehicles = 0;
                return;
            }
        };
        status.steps += 1;
        // The simulation's own values first: the time, who departed, who arrived (an arrived
        // vehicle may still have values in this step's results; it is gone all the same).
        let mut departed: &[String] = &[];
        let mut arrived: &[String] = &[];
        if let Some(s) = results
            .iter()
            .find(|s| s.domain == ids::RESPONSE_SIM_VARIABLE)
        {
            if let Some(t) = s.get(ids::VAR_TIME).and_then(Value::as_f64) {
                status.time_s = t;
            }
            departed = s
                .get(ids::VAR_DEPARTED_VEHICLES_IDS)
                .and_then(Value::as_list)
                .unwrap_or_default();
            arrived = s
                .get(ids::VAR_ARRIVED_VEHICLES_IDS)
                .and_then(Value::as_list)
                .unwrap_or_default();
        }
        for id in arrived {
            latest.remove(id);
            if let Some(e) = link.vehicles.remove(id) {
                commands.entity(e).despawn();
            }
        }
        for s in &results {
            match s.domain {
                ids::RESPONSE_VEHICLE_VARIABLE if !arrived.contains(&s.object) => {
                    let Some(Value::Position(x, y)) = s.get(ids::VAR_POSITION) else {
                        continue;
                    };
                    // SUMO's invalid value (-2^30): a vehicle off the network for the moment
                    // (teleported past a jam); not on any street, so not drawn until back.
                    if x.abs() > INVALID_BEYOND || y.abs() > INVALID_BEYOND {
                        latest.insert(s.object.clone(), None);
                        continue;
                    }
                    let (e, n) = link.net.to_projected(*x, *y);
                    let text = |var| {
                        s.get(var)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let v = Vehicle {
                        lane: text(ids::VAR_LANE_ID),
                        vtype: text(ids::VAR_TYPE),
                        route: text(ids::VAR_ROUTE_ID),
                        id: s.object.clone(),
                        speed: s.get(ids::VAR_SPEED).and_then(Value::as_f64).unwrap_or(0.0),
                        angle_deg: s.get(ids::VAR_ANGLE).and_then(Value::as_f64).unwrap_or(0.0),
                        waiting_s: s
                            .get(ids::VAR_WAITING_TIME)
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0),
                    };
                    latest.insert(
                        s.object.clone(),
                        Some((v, WorldPosition(DVec3::new(e, n, 0.0)))),
                    );
                }
                ids::RESPONSE_TL_VARIABLE => {
                    if let Some(state) = s
                        .get(ids::TL_RED_YELLOW_GREEN_STATE)
                        .and_then(Value::as_str)
                        && link
                            .light_states
                            .get(&s.object)
                            .is_none_or(|old| old != state)
                    {
                        link.light_states
                            .insert(s.object.clone(), state.to_string());
                        let t = link.midnight_ms + (status.time_s * 1000.0).round() as i64;
                        link.phase_changes
                            .push((t, s.object.clone(), state.to_string()));
                    }
                }
                _ => {}
            }
        }
        if status.time_s >= link.clock_s {
            mirror_heads(
                &mut link.heads,
                &link.light_states,
                status.time_s,
                link.midnight_ms,
                link.sender.as_ref(),
                &mut input.observations,
            );
        }
        let new: Vec<&str> = departed.iter().map(String::as_str).collect();
        if !new.is_empty()
            && let Err(e) =
                client.subscribe(ids::SUBSCRIBE_VEHICLE_VARIABLE, &new, &ids::VEHICLE_STATE)
        {
            // A vehicle gone within the step it departed: nothing to follow.
            warn!("SUMO: cannot follow vehicles {new:?}: {e}");
        }
    }
    if status.steps > steps_before {
        update_intersections(link, &latest, &mut intersections);
        let t = link.midnight_ms + (status.time_s * 1000.0).round() as i64;
        if t.div_euclid(TRAFFIC_RECORD_MS) != link.recorded_bucket && status.time_s >= link.clock_s
        {
            link.recorded_bucket = t.div_euclid(TRAFFIC_RECORD_MS);
            let moment = RecordedTraffic {
                t_ms: t,
                vehicles: latest
                    .values()
                    .flatten()
                    .map(|(v, p)| RecordedVehicle {
                        id: v.id.clone(),
                        position: p.0.truncate(),
                        angle_deg: v.angle_deg,
                        speed: v.speed,
                        waiting_s: v.waiting_s,
                    })
                    .collect(),
                queues: link
                    .intersections
                    .iter()
                    .filter_map(|(c, e)| Some((c.clone(), intersections.get(*e).ok()?.queue())))
                    .collect(),
            };
            record.0.push((t, moment.to_json()));
        }
    }
    for (id, state) in latest {
        let Some((v, pos)) = state else {
            if let Some(e) = link.vehicles.remove(&id) {
                commands.entity(e).despawn();
            }
            continue;
        };
        match link.vehicles.get(&id) {
            Some(&ent) => {
                if let Ok((mut old, mut p)) = vehicles.get_mut(ent) {
                    *old = v;
                    *p = pos;
                }
            }
            None => {
                let ent = commands
                    .spawn((
                        Name::new(format!("vehicle {id}")),
                        TwinEntity {
                            kind: TwinKind::Vehicle,
                            id: format!("vehicle/{id}"),
                        },
                        v,
                        pos,
                    ))
                    .id();
                link.vehicles.insert(id, ent);
            }
        }
    }
    status.vehicles = link.vehicles.len();
    status.peak_vehicles = status.peak_vehicles.max(status.vehicles);
    status.wall_s = link.connected.elapsed().as_secs_f64();
    status.stepping_s += began.elapsed().as_secs_f64();
    let behind = status.time_s + 1.0 <= target_s;
    status.behind_s = if behind {
        target_s - status.time_s
    } else {
        0.0
    };
    clock.gate_ms = behind.then(|| link.midnight_ms + (status.time_s * 1000.0).round() as i64);
}

/// Each intersection's approaches from the vehicles after the frame's last step (every
/// vehicle reports each step), and the frame's light changes appended to its timeline.
fn update_intersections(
    link: &mut SumoLink,
    latest: &HashMap<String, Option<(Vehicle, WorldPosition)>>,
    intersections: &mut Query<&mut Intersection>,
) {
    // Edge → (vehicles, queued, summed waiting of the queued).
    let mut on: HashMap<&str, (usize, usize, f64)> = HashMap::new();
    for (v, _) in latest.values().flatten() {
        let Some((edge, _)) = v.lane.rsplit_once('_') else {
            continue;
        };
        if !link.approach_edges.contains(edge) {
            continue;
        }
        let e = on.entry(edge).or_default();
        e.0 += 1;
        if v.speed < HALTING_SPEED {
            e.1 += 1;
            e.2 += v.waiting_s;
        }
    }
    for entity in link.intersections.values() {
        let Ok(mut x) = intersections.get_mut(*entity) else {
            continue;
        };
        for a in &mut x.approaches {
            let (n, q, w) = on.get(a.edge.as_str()).copied().unwrap_or_default();
            a.vehicles = n;
            a.queue = q;
            a.mean_wait_s = if q > 0 { w / q as f64 } else { 0.0 };
        }
    }
    for (t, light, state) in link.phase_changes.drain(..) {
        let Some(entity) = link
            .light_controller
            .get(&light)
            .and_then(|c| link.intersections.get(c))
        else {
            continue;
        };
        if let Ok(mut x) = intersections.get_mut(*entity) {
            if x.phases.len() == PHASE_TIMELINE {
                x.phases.pop_front();
            }
            x.phases.push_back((t, light, state));
        }
    }
}

/// Reports each mirrored head whose link's letter changed, or whose last report is a
/// heartbeat old, as an observation of the `sumo` source at SUMO's time.
fn mirror_heads(
    heads: &mut [HeadMirror],
    states: &HashMap<String, String>,
    time_s: f64,
    midnight_ms: i64,
    sender: Option<&IngestSender>,
    out: &mut Vec<Observation>,
) {
    let heartbeat_s = SIGNAL_HEARTBEAT_MS as f64 / 1000.0;
    for h in heads {
        let Some(letter) = states.get(&h.light).and_then(|s| s.chars().nth(h.index)) else {
            continue;
        };
        if h.last
            .is_some_and(|(l, t)| l == letter && time_s - t < heartbeat_s)
        {
            continue;
        }
        h.last = Some((letter, time_s));
        let o = Observation {
            source: "sumo".into(),
            device: h.head.clone(),
            time_ms: Some(midnight_ms + (time_s * 1000.0).round() as i64),
            fields: vec![(
                "state".into(),
                FieldValue::Text(aspect_of(letter).unwrap_or("unknown").into()),
            )],
            ..Default::default()
        };
        // An unknown letter is refused by the state rule with its reason, and counted.
        out.push(match sender {
            Some(s) => s.accept(o),
            None => o,
        });
    }
}

/// An intersection entity for every controller with a matched SUMO light, at the mean
/// position of its heads, with its approaches (the edges its lights' links leave from).
fn spawn_intersections(
    commands: &mut Commands,
    link: &mut SumoLink,
    report: &MatchReport,
    heads: &[(String, String, (f64, f64))],
) {
    let places: HashMap<String, (f64, f64)> = controllers_of(heads).into_iter().collect();
    let mut by: std::collections::BTreeMap<&str, Intersection> = Default::default();
    for (light_id, controller, _) in &report.matched {
        let x = by.entry(controller).or_insert_with(|| Intersection {
            controller: controller.clone(),
            ..Default::default()
        });
        x.lights.push(light_id.clone());
        link.light_controller
            .insert(light_id.clone(), controller.clone());
        let Some(light) = link.net.lights.iter().find(|l| &l.id == light_id) else {
            continue;
        };
        for stop in light.link_stops.iter().flatten() {
            let edge = stop
                .lane
                .rsplit_once('_')
                .map_or(stop.lane.as_str(), |(e, _)| e);
            if !x.approaches.iter().any(|a| a.edge == edge) {
                x.approaches.push(Approach {
                    edge: edge.to_string(),
                    ..Default::default()
                });
                link.approach_edges.insert(edge.to_string());
            }
        }
    }
    for (controller, x) in by {
        let (e, n) = places.get(controller).copied().unwrap_or_default();
        let entity = commands
            .spawn((
                Name::new(format!("intersection {controller}")),
                TwinEntity {
                    kind: TwinKind::SignalController,
                    id: controller.to_string(),
                },
                WorldPosition(DVec3::new(e, n, 0.0)),
                x,
            ))
            .id();
        link.intersections.insert(controller.to_string(), entity);
    }
}

/// Connects once the clock is running (the simulator has set its start); the heads SUMO
/// drives are handed over from the twin's simulator.
#[allow(clippy::too_many_arguments)]
pub fn start_sumo(
    mut commands: Commands,
    setup: Option<Res<SumoSetup>>,
    overrides: Option<Res<SumoOverrides>>,
    clock: Option<Res<TwinClock>>,
    started: Option<ResMut<crate::simulation::SimulatorState>>,
    heads: Query<(&Device, &DeviceInfo, &WorldPosition)>,
    mut status: ResMut<SumoStatus>,
    mut tried: Local<bool>,
) {
    let (Some(setup), Some(clock)) = (setup, clock) else {
        return;
    };
    let Some(mut started) = started else {
        return;
    };
    if *tried {
        return;
    }
    *tried = true;
    let heads: Vec<(String, String, (f64, f64))> = heads
        .iter()
        .filter(|(d, ..)| d.kind == DeviceKind::SignalHead)
        .filter_map(|(d, info, p)| {
            let c = info.attributes.iter().find(|(k, _)| k == "controller")?;
            Some((d.id.clone(), c.1.clone(), (p.0.x, p.0.y)))
        })
        .collect();
    let overrides = overrides.map(|o| o.0.clone()).unwrap_or_default();
    match connect(&setup, clock.edge_ms, &heads, &overrides) {
        Ok((mut link, report, unmatched)) => {
            status.time_s = link.begin_s - 1.0;
            let mirrored: std::collections::HashSet<String> =
                link.heads.iter().map(|h| h.head.clone()).collect();
            started.run.hand_over(&mirrored);
            link.sender = Some(started.sender_for("sumo"));
            status.lights_matched = report.matched.len();
            status.lights_unmatched = report.sumo_only.iter().map(|(l, _)| l.clone()).collect();
            status.heads_mirrored = mirrored.len();
            status.heads_unmatched = unmatched;
            status.head_links = link
                .heads
                .iter()
                .map(|h| (h.head.clone(), h.light.clone(), h.index))
                .collect();
            info!(
                "SUMO: {} of {} lights matched to controllers ({} not: {:?}); {} signal heads show SUMO's states, {} stay with the twin's simulator",
                report.matched.len(),
                link.net.lights.len(),
                report.sumo_only.len(),
                status.lights_unmatched,
                status.heads_mirrored,
                status.heads_unmatched.len()
            );
            spawn_intersections(&mut commands, &mut link, &report, &heads);
            commands.insert_resource(link);
        }
        Err(e) => {
            error!("SUMO: {e}");
            status.ended = Some(e);
        }
    }
}

/// Hand-written light → controller pairs (`tvilling sumo match --overrides`).
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct SumoOverrides(pub Vec<(String, String)>);

/// SUMO co-simulation (with [`SumoSetup`] inserted).
#[derive(Default)]
pub struct SumoPlugin;

impl Plugin for SumoPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SumoStatus>()
            .init_resource::<TrafficRecord>()
            .init_resource::<ShownTraffic>()
            .init_resource::<SumoFrameBudget>()
            // Stepped like the simulator, before this frame's observations are applied: the
            // heads show the states of the frame's last SUMO step in the same frame.
            .add_systems(
                PreUpdate,
                (start_sumo, step_sumo.run_if(resource_exists::<SumoLink>))
                    .chain()
                    .after(crate::simulation::step_simulator)
                    .in_set(tvilling_sensors::apply::SensorSystems::Step),
            );
    }
}
