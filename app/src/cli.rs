//! Command line.

use std::path::PathBuf;

use clap::Parser;

/// Tvilling: a digital twin of Stockholm.
///
/// With no options it opens the Stockholm demo (OpenStreetMap buildings of Norrmalm and
/// Östermalm, every traffic signal, and a placed glTF landmark) compiled into the binary.
/// What-if scenarios run headless: `tvilling scenario --help`.
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "tvilling", version, about, long_about = None)]
#[command(group(clap::ArgGroup::new("export").args(["export_history", "export_alarm_log"])))]
pub struct Cli {
    /// Load this file or folder instead of the default data (repeatable). Formats by name:
    /// .osm (OpenStreetMap XML), .geojson (GeoJSON), .city.json (CityJSON 1.1/2.0),
    /// .city.jsonl (CityJSON Sequence, e.g. 3D BAG tiles); a .json or .jsonl file is read as
    /// CityJSON or GeoJSON by its content. A folder loads every such file in it.
    #[arg(long, value_name = "PATH")]
    pub data: Vec<PathBuf>,

    /// Load a scene file (TOML, see scenes/stockholm.toml) instead of the embedded default.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub scene: Option<PathBuf>,

    /// The scene's projected CRS, e.g. EPSG:3006 (SWEREF 99 TM, default), EPSG:3011
    /// (SWEREF 99 18 00), EPSG:3857. CityJSON without a referenceSystem is read in it too.
    #[arg(long, value_name = "EPSG:NNNN")]
    pub crs: Option<String>,

    /// CRS of input files that do not name one (GeoJSON default: WGS 84, per RFC 7946).
    #[arg(long, value_name = "EPSG:NNNN")]
    pub source_crs: Option<String>,

    /// Sun date and time, UTC, as YYYY-MM-DDTHH:MM (default: the scene's, else midsummer 12:00).
    #[arg(long, value_name = "TIME")]
    pub sun: Option<String>,

    /// Render, save a PNG screenshot of the window to FILE, and exit 0.
    #[arg(long, value_name = "FILE.png")]
    pub screenshot: Option<PathBuf>,

    /// With --screenshot: frames to render after the city has loaded before capturing.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub frames: u32,

    /// Window size in logical pixels, WxH.
    #[arg(long, default_value = "1280x720", value_name = "WxH")]
    pub size: String,

    /// No window: load the city (and live state, when configured) and exit; use with --snapshot.
    #[arg(long)]
    pub headless: bool,

    /// With --headless: write the twin's entities as an RFC 7946 GeoJSON FeatureCollection
    /// (WGS 84) to FILE and exit.
    #[arg(long, value_name = "FILE.geojson", requires = "headless")]
    pub snapshot: Option<PathBuf>,

    /// Live configuration (TOML): MQTT brokers (TLS, credentials from the environment),
    /// SensorThings and NGSI-LD servers to poll, registry, recording, simulator and health
    /// rules; see docs/config.example.toml. Flags given beside it add to or override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Device registry (TOML): which device ids exist, their kind, position and field rules.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,

    /// Subscribe to an MQTT broker, e.g. mqtt://127.0.0.1:1883/city/# (the path is the topic
    /// filter, default #).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,

    /// Payload format of --mqtt messages: senml, chirpstack, tts, ngsi-ld, sensorthings.
    #[arg(long, default_value = "senml", value_name = "FORMAT")]
    pub mqtt_format: String,

    /// Play a recording (JSON lines, as written by --record) as a source.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Replay speed: 1 = as recorded, 10 = ten times faster, 0 = as fast as possible.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub replay_speed: f64,

    /// Record every accepted live message to FILE (JSON lines) for --replay.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Run the built-in simulator with this seed (the default, seed 1, when no other source is
    /// given). Without --registry it places devices on the loaded city: the signal points,
    /// street lamps every 25-40 m along the streets, a meter per building, air sensors on the
    /// busiest streets; all marked as generated.
    #[arg(long, value_name = "SEED")]
    pub simulate: Option<u64>,

    /// No simulator: show only what the configured sources send (or a still city).
    #[arg(long, conflicts_with = "simulate")]
    pub no_simulate: bool,

    /// Simulated clock start, UTC, as YYYY-MM-DDTHH:MM (default: now).
    #[arg(long, value_name = "TIME")]
    pub sim_start: Option<String>,

    /// Simulated seconds per second (60: an hour a minute), or `max`: as fast as the machine
    /// runs (10 simulated seconds a frame). Default 1, or `max` with --until.
    #[arg(long, value_name = "X|max", value_parser = parse_speed)]
    pub sim_speed: Option<SimSpeed>,

    /// How the simulator's reports reach the twin: `typed` values straight to the apply stage
    /// (the default), or `senml`: each encoded as a SenML pack and decoded by the codec a
    /// broker's messages go through (the end-to-end path; slower).
    #[arg(long, value_enum, default_value_t = SimPathArg::Typed, value_name = "PATH")]
    pub sim_path: SimPathArg,

    /// The simulator's devices also report all their values at least every S simulated seconds
    /// (default: only what changes, plus a keep-alive when a device would otherwise look stale).
    #[arg(long, value_name = "S", value_parser = parse_heartbeat)]
    pub sim_heartbeat: Option<f64>,

    /// Co-simulate traffic with SUMO: start `sumo -c CONFIG` (from scripts/sumo-network.sh) on
    /// a free loopback port and step it with the twin clock; its vehicles join the twin.
    #[arg(long, value_name = "CONFIG")]
    pub sumo: Option<PathBuf>,

    /// With --sumo: attach to a SUMO already listening at HOST:PORT instead of starting one
    /// (CONFIG then names its network).
    #[arg(long, value_name = "HOST:PORT", requires = "sumo")]
    pub sumo_attach: Option<std::net::SocketAddr>,

    /// With --sumo: hand-written SUMO light → controller pairs, one `SUMO_LIGHT_ID
    /// CONTROLLER_ID` a line (as `tvilling sumo match --overrides` takes).
    #[arg(long, value_name = "FILE", requires = "sumo")]
    pub sumo_overrides: Option<PathBuf>,

    /// With --simulate: stop the simulated clock here, UTC, YYYY-MM-DDTHH:MM; with --headless
    /// the snapshot is written when it is reached (a simulated day runs as fast as the machine
    /// allows unless --sim-speed says otherwise).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Record every applied value and alarm change to this SQLite file, for playback and
    /// export; an existing file is continued. The default demo records to a temporary file.
    #[arg(long, value_name = "FILE.sqlite")]
    pub history: Option<PathBuf>,

    /// Where the shared state lives: sqlite:FILE (this twin's own history file, as --history)
    /// or postgres://USER@HOST:PORT/DB (a PostgreSQL store every screen of a control room
    /// opens: one alarm book; the password, if any, in PGPASSWORD, never in the address).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// The station this screen is, kept with each acknowledgement in the shared store's audit
    /// log (default: this machine's name).
    #[arg(long, value_name = "NAME")]
    pub station: Option<String>,

    /// Keep this many days of history (default 30; counted back from the newest value).
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<f64>,

    /// Show the twin as it was at this moment (UTC, YYYY-MM-DDTHH:MM) from --history: no
    /// source runs. With --headless --snapshot, writes that moment's twin.
    #[arg(long, value_name = "TIME", requires = "history")]
    pub at: Option<String>,

    /// Convert --history from the old layout (schema 1, a row per value) to the compressed
    /// one in place, print what was done, and exit. A file already converted is left as it is.
    #[arg(long, requires = "history")]
    pub migrate_history: bool,

    /// Write one device's recorded series from --history as CSV (--csv) or Parquet
    /// (--parquet), or both, with --from and --to.
    #[arg(long, value_name = "DEVICE_ID", requires = "history")]
    pub export_history: Option<String>,

    /// Start of the exported series or alarm log (UTC, YYYY-MM-DDTHH:MM; default: the first).
    #[arg(long, value_name = "TIME", requires = "export")]
    pub from: Option<String>,

    /// End of the exported series or alarm log (UTC, YYYY-MM-DDTHH:MM; default: the last).
    #[arg(long, value_name = "TIME", requires = "export")]
    pub to: Option<String>,

    /// Write the alarm audit log from --history as CSV (every transition: raised, acknowledged
    /// with the operator, cleared, shelved with the reason, back to normal), with --from, --to
    /// and --alarm-filter.
    #[arg(long, value_name = "FILE.csv", requires = "history")]
    pub export_alarm_log: Option<PathBuf>,

    /// Only the audit rows whose device, priority, state, operator or note contain this text.
    #[arg(long, value_name = "TEXT", requires = "export_alarm_log")]
    pub alarm_filter: Option<String>,

    /// How the screen is used: `normal`; `control-room` (fullscreen; the alarm list always
    /// on the left, a status strip, a grey HMI palette where only the abnormal has colour, a
    /// steady daylight; keys N/P/A/F); or `kiosk` (fullscreen, unattended: a tour over the
    /// scene's viewpoints with captions in Swedish and English, tap to inspect, back to the
    /// tour when idle; no panels; quit with Ctrl+Shift+Q only).
    #[arg(long, default_value = "normal", value_name = "MODE")]
    pub mode: String,

    /// Kiosk: seconds at each viewpoint (the caption in --lang for the first half, then in the
    /// other language).
    #[arg(long, default_value_t = 20.0, value_name = "SECS")]
    pub kiosk_dwell: f64,

    /// Kiosk: seconds without a touch before the screen returns to the tour.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub kiosk_idle: f64,

    /// Redraw every frame, as fast as the machine allows, instead of only when something
    /// changes (for measuring; see scripts/bench-idle.sh).
    #[arg(long)]
    pub continuous: bool,

    /// The operator at this screen: alarm acknowledgements and shelving are recorded as this
    /// name (default: the configuration's `[alarms] operator`, else "operator").
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,

    /// Where the exported series goes.
    #[arg(long, value_name = "FILE.csv", requires = "export_history")]
    pub csv: Option<PathBuf>,

    /// Where the exported series goes as Parquet (columns time as a UTC timestamp in
    /// milliseconds, device, quantity, value), for pandas, DuckDB, Arrow or Spark.
    #[arg(long, value_name = "FILE.parquet", requires = "export_history")]
    pub parquet: Option<PathBuf>,

    /// With --headless: run the live pipeline this many seconds after loading, then snapshot.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub duration: f64,

    /// Colour buildings by: type (default), power, intensity (kWh/m² per year), freshness, or
    /// difference (between the scenarios compared; lamps too).
    #[arg(long, default_value = "type", value_name = "NAME")]
    pub colour_by: String,

    /// Panels to open at start, comma-separated: city, layers, live, scenarios, editor (a new
    /// scenario), problems (the import problems and the extract's edge), or none (default:
    /// live).
    #[arg(long, value_name = "PANELS", value_delimiter = ',')]
    pub open: Vec<String>,

    /// Open the Scenarios window comparing two scenario files, A.toml,B.toml, over a day
    /// (--compare-day), and start at once (e.g. an unattended demo of a planned change).
    #[arg(
        long,
        value_name = "A.toml,B.toml",
        value_delimiter = ',',
        num_args = 1
    )]
    pub compare: Vec<PathBuf>,

    /// With --compare: the day, YYYY-MM-DD (Stockholm local time, from midnight).
    #[arg(long, value_name = "DAY", requires = "compare")]
    pub compare_day: Option<String>,

    /// With --compare: compare only the first N hours of the day.
    #[arg(long, value_name = "N", requires = "compare")]
    pub compare_hours: Option<f64>,

    /// With --compare: show the compared city once the comparison has run: a (scenario A),
    /// b (scenario B) or split (A left, B right); live (the twin's own state) by default.
    #[arg(long, value_name = "MODE", requires = "compare")]
    pub show: Option<String>,

    /// With --show: the moment shown, HH:MM of the compared day (Stockholm local time).
    #[arg(long, value_name = "HH:MM", requires = "show")]
    pub show_at: Option<String>,

    /// No panels at all (a bare 3D view, e.g. for a public screen or to measure frame time).
    #[arg(long)]
    pub no_ui: bool,

    /// With --screenshot: print the frame times of the frames after load (median, p95, mean).
    #[arg(long, requires = "screenshot")]
    pub frame_stats: bool,

    /// With the generated registry: add N simulated street lamps on a 30 m grid around the
    /// city (a city-sized lighting load for measurements).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub extra_lamps: usize,

    /// Side of the device markers' chunks, metres; a size beyond the city draws each kind's
    /// markers as one mesh (for measuring, scripts/bench-city.sh).
    #[arg(long, default_value_t = tvilling_view::devices::MARKER_CHUNK_M, value_name = "M")]
    pub marker_chunk_m: f64,

    /// Language of the panels: en (English) or sv (Swedish); switchable in the toolbar.
    #[arg(long, default_value = "en", value_name = "LANG")]
    pub lang: String,

    /// Look at a place once the city has loaded: longitude, latitude (WGS 84) and the
    /// camera's distance in metres, e.g. 18.0793,59.3344,400.
    #[arg(
        long,
        value_name = "LON,LAT,METRES",
        value_delimiter = ',',
        num_args = 1
    )]
    pub look_at: Vec<f64>,

    /// With --screenshot: select the building with this source id (e.g. way/24981325) and
    /// fly to it before capturing.
    #[arg(long, value_name = "ID")]
    pub select: Option<String>,
}

impl Cli {
    /// Parses `--size`.
    pub fn window_size(&self) -> anyhow::Result<(u32, u32)> {
        let (w, h) = self.size.split_once(['x', 'X']).ok_or_else(|| {
            anyhow::anyhow!("--size {:?}: expected WxH, e.g. 1280x720", self.size)
        })?;
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--size {:?}: width is not a number", self.size))?;
        let h: u32 = h
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--size {:?}: height is not a number", self.size))?;
        anyhow::ensure!(
            (64..=8192).contains(&w) && (64..=8192).contains(&h),
            "--size {}: each side must be 64..8192",
            self.size
        );
        Ok((w, h))
    }
}

/// A simulated clock's speed from the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimSpeed {
    /// Simulated seconds per second.
    Times(f64),
    /// As fast as the machine runs.
    Max,
}

/// How the simulator's reports reach the twin (`--sim-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SimPathArg {
    #[default]
    Typed,
    Senml,
}

fn parse_heartbeat(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.001 => Ok(v),
        Ok(v) => Err(format!("{v}: must be a positive number of seconds")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn parse_speed(text: &str) -> Result<SimSpeed, String> {
    if text.eq_ignore_ascii_case("max") {
        return Ok(SimSpeed::Max);
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(SimSpeed::Times(x)),
        _ => Err(format!("{text:?}: a positive number or max")),
    }
}
