//! A client of SUMO's TraCI protocol (sumo.dlr.de/docs/TraCI), written from its documented
//! binary format: no TraCI crate exists. Render-free, no Bevy.
//!
//! - [`wire`]: the bytes: commands, messages, typed values.
//! - [`net`]: a network file's location and traffic lights, and lights matched to the twin's
//!   controllers by position.
//! - [`Client`]: a TCP connection with the version checked at connect; stepping; variable
//!   subscriptions (vehicles, traffic lights, the simulation), so a step costs one round trip
//!   whatever the number of vehicles; plain gets for what is read once.
//!
//! Errors are typed ([`TraciError`]): the connection refused, a version this client does not
//! speak, SUMO ended (the connection closed), a reply that is malformed, a command SUMO
//! refused with its reason.

pub mod net;
pub mod wire;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use wire::Value;
use wire::{In, Out, command, message};

/// Command and variable ids (TraCI's constants, as documented).
pub mod ids {
    pub const GET_VERSION: u8 = 0x00;
    pub const SIM_STEP: u8 = 0x02;
    pub const SET_ORDER: u8 = 0x03;
    pub const CLOSE: u8 = 0x7F;
    pub const GET_TL_VARIABLE: u8 = 0xa2;
    pub const GET_VEHICLE_VARIABLE: u8 = 0xa4;
    pub const GET_SIM_VARIABLE: u8 = 0xab;
    pub const SUBSCRIBE_TL_VARIABLE: u8 = 0xd2;
    pub const SUBSCRIBE_VEHICLE_VARIABLE: u8 = 0xd4;
    pub const SUBSCRIBE_SIM_VARIABLE: u8 = 0xdb;
    pub const RESPONSE_TL_VARIABLE: u8 = 0xe2;
    pub const RESPONSE_VEHICLE_VARIABLE: u8 = 0xe4;
    pub const RESPONSE_SIM_VARIABLE: u8 = 0xeb;
    pub const ID_LIST: u8 = 0x00;
    pub const TL_RED_YELLOW_GREEN_STATE: u8 = 0x20;
    pub const VAR_SPEED: u8 = 0x40;
    pub const VAR_POSITION: u8 = 0x42;
    pub const VAR_ANGLE: u8 = 0x43;
    pub const VAR_TYPE: u8 = 0x4f;
    pub const VAR_ROUTE_ID: u8 = 0x53;
    pub const VAR_WAITING_TIME: u8 = 0x7a;
    pub const VAR_TIME: u8 = 0x66;
    pub const VAR_DEPARTED_VEHICLES_IDS: u8 = 0x74;
    pub const VAR_ARRIVED_VEHICLES_IDS: u8 = 0x7a;
    pub const VAR_DELTA_T: u8 = 0x7b;
    pub const RTYPE_OK: u8 = 0x00;
    pub const RTYPE_NOT_IMPLEMENTED: u8 = 0x01;
    pub const RTYPE_ERR: u8 = 0xFF;
    pub const VAR_LANE_ID: u8 = 0x51;
    /// What the twin follows of every vehicle: position, heading, speed, waiting time, lane,
    /// type and route.
    pub const VEHICLE_STATE: [u8; 7] = [
        VAR_POSITION,
        VAR_ANGLE,
        VAR_SPEED,
        VAR_WAITING_TIME,
        VAR_LANE_ID,
        VAR_TYPE,
        VAR_ROUTE_ID,
    ];
}

/// The TraCI API versions this client speaks (SUMO 1.15 answers 20).
pub const API_VERSIONS: std::ops::RangeInclusive<i32> = 20..=21;

/// A subscription from now until the simulation ends (TraCI's "invalid double").
const ALWAYS: f64 = -1_073_741_824.0;

/// Why a TraCI exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TraciError {
    #[error("cannot connect to SUMO at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("SUMO speaks TraCI API {api} ({server}); this client speaks {API_VERSIONS:?}")]
    Version { api: i32, server: String },
    #[error("SUMO ended: the connection closed ({0})")]
    Ended(String),
    #[error("malformed reply from SUMO: {0}")]
    Malformed(String),
    #[error("SUMO refused command 0x{command:02x}: {reason}")]
    Refused { command: u8, reason: String },
    #[error("TraCI connection: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for TraciError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
                TraciError::Ended(e.to_string())
            }
            _ => TraciError::Io(e),
        }
    }
}

/// One object's subscribed variables after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribed {
    /// The response's id: vehicle, traffic light or simulation.
    pub domain: u8,
    pub object: String,
    /// Each variable and its value, or SUMO's reason it has none.
    pub values: Vec<(u8, Result<Value, String>)>,
}

impl Subscribed {
    pub fn get(&self, var: u8) -> Option<&Value> {
        self.values
            .iter()
            .find(|(v, _)| *v == var)
            .and_then(|(_, r)| r.as_ref().ok())
    }
}

/// A connection to SUMO.
pub struct Client {
    stream: TcpStream,
    /// API version and SUMO's own version string.
    pub version: (i32, String),
}

impl Client {
    /// Connects (trying until `wait` has passed: SUMO opens its port after loading) and checks
    /// the version.
    pub fn connect(addr: SocketAddr, wait: Duration) -> Result<Client, TraciError> {
        let started = std::time::Instant::now();
        let stream = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => break s,
                Err(e) if started.elapsed() >= wait => {
                    return Err(TraciError::Connect {
                        addr: addr.to_string(),
                        source: e,
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut c = Client {
            stream,
            version: (0, String::new()),
        };
        let reply = c.exchange(&[command(ids::GET_VERSION, &[])])?;
        let mut r = In::new(&reply);
        c.status(&mut r, ids::GET_VERSION)?;
        let (id, mut v) = r.command()?;
        if id != ids::GET_VERSION {
            return Err(TraciError::Malformed(format!("version reply 0x{id:02x}")));
        }
        let version = (v.int()?, v.string()?);
        if !API_VERSIONS.contains(&version.0) {
            return Err(TraciError::Version {
                api: version.0,
                server: version.1,
            });
        }
        c.version = version;
        Ok(c)
    }

    /// Sends a message and reads the reply's commands (the bytes after its length).
    fn exchange(&mut self, commands: &[Vec<u8>]) -> Result<Vec<u8>, TraciError> {
        self.stream.write_all(&message(commands))?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        let body = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .filter(|l| *l <= 1 << 30)
            .ok_or_else(|| TraciError::Malformed(format!("a message of length {len}")))?;
        let mut buf = vec![0u8; body];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads a status response for `cmd`: Ok, or why SUMO refused it.
    fn status(&self, r: &mut In<'_>, cmd: u8) -> Result<(), TraciError> {
        let (id, mut s) = r.command()?;
        let result = s.ubyte()?;
        let reason = s.string()?;
        if id != cmd {
            return Err(TraciError::Malformed(format!(
                "status for 0x{id:02x} where 0x{cmd:02x} was sent"
            )));
        }
        match result {
            ids::RTYPE_OK => Ok(()),
            ids::RTYPE_ERR | ids::RTYPE_NOT_IMPLEMENTED => Err(TraciError::Refused {
                command: cmd,
                reason,
            }),
            other => Err(TraciError::Malformed(format!(
                "status result 0x{other:02x}"
            ))),
        }
    }

    /// Runs the simulation to `time_s` (0: one step) and returns every subscription's values.
    pub fn step(&mut self, time_s: f64) -> Result<Vec<Subscribed>, TraciError> {
        let mut o = Out::default();
        o.double(time_s);
        let reply = self.exchange(&[command(ids::SIM_STEP, &o.0)])?;
        let mut r = In::new(&reply);
        self.status(&mut r, ids::SIM_STEP)?;
        let n = r.int()?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            let (domain, mut c) = r.command()?;
            let object = c.string()?;
            let count = c.ubyte()?;
            let mut values = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let var = c.ubyte()?;
                let status = c.ubyte()?;
                let v = c.typed()?;
                values.push((
                    var,
                    if status == ids::RTYPE_OK {
                        Ok(v)
                    } else {
                        Err(v.as_str().unwrap_or("no value").to_string())
                    },
                ));
            }
            out.push(Subscribed {
                domain,
                object,
                values,
            });
        }
        Ok(out)
    }

    /// Subscribes objects' variables, one message for all of them (`cmd`: the domain's
    /// subscribe command).
    pub fn subscribe(&mut self, cmd: u8, objects: &[&str], vars: &[u8]) -> Result<(), TraciError> {
        if objects.is_empty() {
            return Ok(());
        }
        let commands: Vec<Vec<u8>> = objects
            .iter()
            .map(|id| {
                let mut o = Out::default();
                o.double(ALWAYS)
                    .double(ALWAYS)
                    .string(id)
                    .ubyte(vars.len() as u8);
                for v in vars {
                    o.ubyte(*v);
                }
                command(cmd, &o.0)
            })
            .collect();
        let reply = self.exchange(&commands)?;
        let mut r = In::new(&reply);
        // Every object's answer is read, so that the stream stays in step when one is refused
        // (its status comes alone); the first refusal is returned.
        let mut refused = None;
        for _ in objects {
            match self.status(&mut r, cmd) {
                // The subscription's first values follow each accepted one.
                Ok(()) => {
                    r.command()?;
                }
                Err(e @ TraciError::Refused { .. }) => {
                    refused.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// A variable of one object (`cmd`: the domain's get command).
    pub fn get(&mut self, cmd: u8, var: u8, object: &str) -> Result<Value, TraciError> {
        let mut o = Out::default();
        o.ubyte(var).string(object);
        let reply = self.exchange(&[command(cmd, &o.0)])?;
        let mut r = In::new(&reply);
        self.status(&mut r, cmd)?;
        let (_, mut c) = r.command()?;
        let (_var, _object) = (c.ubyte()?, c.string()?);
        c.typed()
    }

    /// Ends the session (SUMO closes when its last client has).
    pub fn close(mut self) -> Result<(), TraciError> {
        let reply = self.exchange(&[command(ids::CLOSE, &[])])?;
        self.status(&mut In::new(&reply), ids::CLOSE)
    }
}

#[cfg(test)]
mod sumo_tests {
    //! Against real SUMO (Debian's sumo and sumo-tools), on the network and demand that
    //! `scripts/sumo-network.sh` builds from the shipped OSM extract.

    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command};

    /// The network, built once per test process (the tests share it).
    fn network() -> PathBuf {
        static BUILT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _once = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("tvilling-traci-{}", std::process::id()));
        let cfg = dir.join("stockholm.sumocfg");
        if !cfg.exists() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/sumo-network.sh");
            let out = Command::new("bash")
                .arg(script)
                .arg(&dir)
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "sumo-network.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cfg
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// SUMO on a free loopback port from 07:30 for `secs`, with extra options.
    fn sumo(cfg: &Path, secs: u32, extra: &[&str]) -> (Child, SocketAddr) {
        let port = free_port();
        let child = Command::new("sumo")
            .env("SUMO_HOME", "/usr/share/sumo")
            .arg("-c")
            .arg(cfg)
            .args(["--remote-port", &port.to_string(), "--begin", "27000"])
            .args(["--end", &(27000 + secs).to_string()])
            .args(["--no-step-log", "--no-warnings"])
            .args(extra)
            .spawn()
            .expect("sumo (Debian package sumo) must be installed");
        (child, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// `<timestep time=..>` → vehicle id → (x, y), from an FCD output file.
    fn fcd(path: &Path) -> HashMap<String, HashMap<String, (f64, f64)>> {
        let text = std::fs::read_to_string(path).expect("fcd output");
        let attr = |line: &str, name: &str| -> Option<String> {
            let key = format!(" {name}=\"");
            let start = line.find(&key)? + key.len();
            Some(line[start..].split('"').next()?.to_string())
        };
        let mut out: HashMap<String, HashMap<String, (f64, f64)>> = HashMap::new();
        let mut time = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("<timestep") {
                time = attr(line, "time").unwrap_or_default();
            } else if line.starts_with("<vehicle ") {
                let (Some(id), Some(x), Some(y)) =
                    (attr(line, "id"), attr(line, "x"), attr(line, "y"))
                else {
                    continue;
                };
                let p = (x.parse().unwrap_or(f64::NAN), y.parse().unwrap_or(f64::NAN));
                out.entry(time.clone()).or_default().insert(id, p);
            }
        }
        out
    }

    #[test]
    fn vehicles_subscribed_over_traci_are_where_sumos_own_output_puts_them() {
        let cfg = network();
        let fcd_path = cfg.with_file_name("fcd-test.xml");
        let fcd_arg = fcd_path.display().to_string();
        let (mut child, addr) = sumo(&cfg, 120, &["--fcd-output", &fcd_arg]);
        let mut c = Client::connect(addr, Duration::from_secs(30)).expect("connect");
        assert_eq!(c.version.0, 20, "{:?}", c.version);
        assert!(c.version.1.contains("1.15"), "{:?}", c.version);
        c.subscribe(
            ids::SUBSCRIBE_SIM_VARIABLE,
            &[""],
            &[ids::VAR_TIME, ids::VAR_DEPARTED_VEHICLES_IDS],
        )
        .expect("subscribe the simulation");
        // A traffic light's signal state, by id from the light list.
        let lights = c
            .get(ids::GET_TL_VARIABLE, ids::ID_LIST, "")
            .expect("light ids");
        let lights = lights.as_list().expect("a list").to_vec();
        assert!(lights.len() >= 10, "{lights:?}");
        c.subscribe(
            ids::SUBSCRIBE_TL_VARIABLE,
            &[lights[0].as_str()],
            &[ids::TL_RED_YELLOW_GREEN_STATE],
        )
        .expect("subscribe a light");
        let delta_t = c
            .get(ids::GET_SIM_VARIABLE, ids::VAR_DELTA_T, "")
            .ok()
            .and_then(|v| v.as_f64())
            .expect("the step length");
        assert_eq!(delta_t, 1.0);
        let mut seen: HashMap<String, HashMap<String, (f64, f64)>> = HashMap::new();
        let mut states = Vec::new();
        for _ in 0..120 {
            let results = c.step(0.0).expect("step");
            let sim = results
                .iter()
                .find(|s| s.domain == ids::RESPONSE_SIM_VARIABLE)
                .expect("the simulation's values");
            let time = sim
                .get(ids::VAR_TIME)
                .and_then(Value::as_f64)
                .expect("time");
            let departed: Vec<String> = sim
                .get(ids::VAR_DEPARTED_VEHICLES_IDS)
                .and_then(Value::as_list)
                .unwrap_or_default()
                .to_vec();
            // SUMO's FCD output labels a step by the time it began; TraCI's clock reads the
            // time after it.
            let step: &mut HashMap<String, (f64, f64)> =
                seen.entry(format!("{:.2}", time - delta_t)).or_default();
            for s in results
                .iter()
                .filter(|s| s.domain == ids::RESPONSE_VEHICLE_VARIABLE)
            {
                if let Some(Value::Position(x, y)) = s.get(ids::VAR_POSITION) {
                    step.insert(s.object.clone(), (*x, *y));
                }
            }
            for s in results
                .iter()
                .filter(|s| s.domain == ids::RESPONSE_TL_VARIABLE)
            {
                states.extend(s.get(ids::TL_RED_YELLOW_GREEN_STATE).cloned());
            }
            let new: Vec<&str> = departed.iter().map(String::as_str).collect();
            c.subscribe(ids::SUBSCRIBE_VEHICLE_VARIABLE, &new, &ids::VEHICLE_STATE)
                .expect("subscribe vehicles");
        }
        // Subscribing a vehicle that does not exist: refused, and the
        // connection stays in step for the next command.
        let e = c
            .subscribe(
                ids::SUBSCRIBE_VEHICLE_VARIABLE,
                &["no such vehicle"],
                &[ids::VAR_SPEED],
            )
            .expect_err("refused");
        assert!(matches!(e, TraciError::Refused { .. }), "{e}");
        c.step(0.0).expect("a step after the refusal");
        // A vehicle that does not exist: refused, with SUMO's reason.
        let e = c
            .get(ids::GET_VEHICLE_VARIABLE, ids::VAR_SPEED, "no such vehicle")
            .expect_err("refused");
        assert!(matches!(e, TraciError::Refused { .. }), "{e}");
        c.close().expect("close");
        assert!(child.wait().expect("sumo").success());
        let truth = fcd(&fcd_path);
        let (mut compared, mut worst) = (0, 0.0f64);
        for (time, vehicles) in &seen {
            let Some(theirs) = truth.get(time) else {
                continue;
            };
            for (id, (x, y)) in vehicles {
                let (tx, ty) = theirs
                    .get(id)
                    .unwrap_or_else(|| panic!("{id} at {time} is not in SUMO's output"));
                worst = worst.max((x - tx).hypot(y - ty));
                compared += 1;
            }
        }
        assert!(compared > 500, "only {compared} positions compared");
        assert!(worst <= 0.1, "{worst} m apart");
        assert!(states.len() >= 100, "{} light states", states.len());
        assert!(
            states.iter().all(|s| s
                .as_str()
                .is_some_and(|s| s.chars().all(|c| "rRyYgGuoOs".contains(c)))),
            "{states:?}"
        );
    }

    #[test]
    fn sumo_killed_mid_run_is_reported_as_ended_and_a_closed_port_as_refused() {
        let cfg = network();
        let (mut child, addr) = sumo(&cfg, 3600, &[]);
        let mut c = Client::connect(addr, Duration::from_secs(30)).expect("connect");
        c.step(0.0).expect("a first step");
        child.kill().expect("kill");
        let _ = child.wait();
        let mut last = None;
        for _ in 0..3 {
            match c.step(0.0) {
                Ok(_) => continue,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let e = last.expect("an error once SUMO is gone");
        assert!(matches!(e, TraciError::Ended(_)), "{e:?}");
        let e = Client::connect(addr, Duration::from_millis(200)).err();
        assert!(matches!(e, Some(TraciError::Connect { .. })), "{e:?}");
    }
}
