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
use tvilling_sensors::clock::TwinClock;
use tvilling_traci::net::Net;
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
}

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

/// Starts (or attaches to) SUMO at the clock's time of day and subscribes what a step needs.
pub fn connect(setup: &SumoSetup, clock_ms: i64) -> Result<SumoLink, String> {
    let local = tvilling_sensors::simulate::stockholm_local(clock_ms);
    let begin = (local.hour * 3600.0).floor();
    let (config, addr, child) = match setup {
        SumoSetup::Start(config) => {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let child = Command::new("sumo")
                .env(
                    "SUMO_HOME",
                    std::env::var("SUMO_HOME").unwrap_or_else(|_| "/usr/share/sumo".into()),
                )
                .arg("-c")
                .arg(config)
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
    info!(
        "SUMO {} (TraCI {}) at {addr}: {} traffic lights, from {begin} s of the day",
        client.version.1,
        client.version.0,
        net.lights.len()
    );
    Ok(SumoLink {
        client: Some(client),
        child,
        net,
        midnight_ms: local.midnight_ms,
        vehicles: HashMap::new(),
    })
}

/// Steps SUMO to the twin clock's edge, one SUMO step at a time, and mirrors its vehicles.
pub fn step_sumo(
    mut commands: Commands,
    clock: Res<TwinClock>,
    mut link: ResMut<SumoLink>,
    mut status: ResMut<SumoStatus>,
    mut vehicles: Query<(&mut Vehicle, &mut WorldPosition)>,
) {
    let link = &mut *link;
    let target_s = (clock.edge_ms - link.midnight_ms) as f64 / 1000.0;
    let Some(client) = link.client.as_mut() else {
        return;
    };
    // Each vehicle's state after the frame's last step (spawned entities are only seen by
    // queries next frame, so the frame's steps are gathered first).
    let mut latest: HashMap<String, (Vehicle, WorldPosition)> = HashMap::new();
    // At most a simulated day a frame.
    for _ in 0..86_400 {
        if status.time_s + 1.0 > target_s && status.steps > 0 {
            break;
        }
        let results = match client.step(0.0) {
            Ok(r) => r,
            Err(e) => {
                error!("SUMO: {e}; the twin goes on without it");
                status.ended = Some(e.to_string());
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
                    let (e, n) = link.net.to_projected(*x, *y);
                    let v = Vehicle {
                        id: s.object.clone(),
                        speed: s.get(ids::VAR_SPEED).and_then(Value::as_f64).unwrap_or(0.0),
                        angle_deg: s.get(ids::VAR_ANGLE).and_then(Value::as_f64).unwrap_or(0.0),
                        waiting_s: s
                            .get(ids::VAR_WAITING_TIME)
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0),
                    };
                    latest.insert(s.object.clone(), (v, WorldPosition(DVec3::new(e, n, 0.0))));
                }
                _ => {}
            }
        }
        let new: Vec<&str> = departed.iter().map(String::as_str).collect();
        if let Err(e) = client.subscribe(ids::SUBSCRIBE_VEHICLE_VARIABLE, &new, &ids::VEHICLE_STATE)
        {
            // A vehicle gone within the step it departed: nothing to follow.
            warn!("SUMO: cannot follow vehicles {new:?}: {e}");
        }
    }
    for (id, (v, pos)) in latest {
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
}

/// Connects once the clock is running (the simulator has set its start).
pub fn start_sumo(
    mut commands: Commands,
    setup: Option<Res<SumoSetup>>,
    clock: Option<Res<TwinClock>>,
    started: Option<Res<crate::simulation::SimulatorState>>,
    mut status: ResMut<SumoStatus>,
    mut tried: Local<bool>,
) {
    let (Some(setup), Some(clock)) = (setup, clock) else {
        return;
    };
    if *tried || started.is_none() {
        return;
    }
    *tried = true;
    match connect(&setup, clock.edge_ms) {
        Ok(link) => {
            let midnight = link.midnight_ms;
            status.time_s = (clock.edge_ms - midnight) as f64 / 1000.0 - 1.0;
            commands.insert_resource(link);
        }
        Err(e) => {
            error!("SUMO: {e}");
            status.ended = Some(e);
        }
    }
}

/// SUMO co-simulation (with [`SumoSetup`] inserted).
#[derive(Default)]
pub struct SumoPlugin;

impl Plugin for SumoPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<SumoStatus>().add_systems(
            Update,
            (start_sumo, step_sumo.run_if(resource_exists::<SumoLink>))
                .chain()
                .after(tvilling_sensors::apply::SensorSystems::Health),
        );
    }
}
