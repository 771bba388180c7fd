//! Scenario files (TOML): a name, a base scene, assumptions, and edits.
//!
//! ```toml
//! name = "LED retrofit with night dimming"
//! base = "stockholm.toml"          # a scene file beside this one, or "default"
//!
//! [assumptions]
//! electricity_sek_per_kwh = 1.41
//!
//! [[edit]]
//! kind = "dimming"                 # dimming | presence | retrofit | photocell |
//!                                  # signal_timing | green_wave
//! districts = ["NORRMALM"]         # lamps: districts, streets, street_classes (all: none given)
//! weekdays = [["00:00", 50], ["06:00", 100], ["22:00", 70]]
//! ```
//!
//! Everything is checked before anything runs; a refusal says which file, line and edit, and
//! why. What depends on the city (a street or district that is not there, two calendars for
//! the same lamp) is checked when the edits are applied ([`super::edits`]), still before the
//! run, and still all or nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tvilling_sensors::simulate::{BuildingUse, Presence};

/// Why a scenario file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default(), edit.map(|e| format!(": edit {e}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line, where the file says it.
    pub line: Option<usize>,
    /// 1-based number of the `[[edit]]`.
    pub edit: Option<usize>,
    pub reason: String,
}

/// The figures that turn energy into money and emissions, each with where it comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Assumptions {
    /// Electricity, SEK per kWh, all in (energy, grid fee, energy tax).
    pub electricity_sek_per_kwh: f64,
    pub electricity_sek_source: String,
    /// Electricity, kg CO2e per kWh.
    pub electricity_kg_co2e_per_kwh: f64,
    pub electricity_co2e_source: String,
    /// District heating, kg CO2e per kWh delivered.
    pub heating_kg_co2e_per_kwh: f64,
    pub heating_co2e_source: String,
    /// District heating, SEK per kWh; heating is not priced without it (no default: prices
    /// differ by contract and the twin has no source to name).
    pub heating_sek_per_kwh: Option<f64>,
    pub heating_sek_source: Option<String>,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            electricity_sek_per_kwh: 1.41,
            electricity_sek_source: "SE3 spot mean 0.41 SEK/kWh, January-August 2024 (Nord Pool, \
                as reported by Sweden Herald), plus about 1 SEK/kWh of grid fee and energy tax \
                (same report)"
                .into(),
            electricity_kg_co2e_per_kwh: 0.059,
            electricity_co2e_source: "Nordic electricity mix with imports and exports, \
                2021-2023 mean: 59 g CO2e/kWh (IVL Svenska Miljöinstitutet, Emissionsfaktor för \
                nordisk elmix år 2021-2023)"
                .into(),
            heating_kg_co2e_per_kwh: 0.0485,
            heating_co2e_source: "District heating by the Värmemarknadskommittén (VMK) method, \
                Telge Energi (Södertälje, in Stockholm's interconnected network) 2023: 44 g \
                direct + 4.5 g upstream CO2e/kWh"
                .into(),
            heating_sek_per_kwh: None,
            heating_sek_source: None,
        }
    }
}

/// Which devices an edit applies to: every lamp (or, for signal edits, every signal
/// controller) matching all the given lists (none given: all).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LampSelection {
    /// Street names as the map writes them (case ignored). A signal controller is on a street
    /// when one of its heads stands within [`ON_STREET_M`] of one of that street's lamps.
    pub streets: Vec<String>,
    /// trunk, primary, secondary, tertiary, residential, pedestrian (lamps only).
    pub street_classes: Vec<String>,
    /// District names (stadsdelar), case ignored.
    pub districts: Vec<String>,
    /// Signal controllers by id (`controller/...`; signal edits only).
    pub controllers: Vec<String>,
}

/// How near a street's lamps a signal head must stand to be on that street, metres.
pub const ON_STREET_M: f64 = 30.0;

impl LampSelection {
    pub fn is_all(&self) -> bool {
        self.streets.is_empty()
            && self.street_classes.is_empty()
            && self.districts.is_empty()
            && self.controllers.is_empty()
    }
}

/// One edit of how lamps run.
#[derive(Debug, Clone, PartialEq)]
pub enum LightingEdit {
    /// A dimming calendar: (minute of the day, level %) steps, weekdays and weekends.
    Dimming {
        weekdays: Vec<(u16, f64)>,
        weekends: Vec<(u16, f64)>,
    },
    Presence(Presence),
    /// Rated watts, old to new, by fitting.
    Retrofit(Vec<(f64, f64)>),
    /// Switch on below this sun elevation, degrees.
    Photocell(f64),
    /// Signal timing of the selected controllers: any of cycle, green split (group 0's share),
    /// offset, seconds.
    SignalTiming {
        cycle_s: Option<f64>,
        split: Option<f64>,
        offset_s: Option<f64>,
    },
    /// A green wave along one street: its controllers on one cycle, offset by the distance
    /// along the street at a progression speed, so the street's phase group turns green as
    /// traffic at that speed arrives.
    GreenWave {
        cycle_s: f64,
        speed_kmh: f64,
        split: Option<f64>,
    },
    /// A new building: its footprint (longitude, latitude, WGS 84), storeys and use; its
    /// meter joins the simulation with that use's profile.
    Building {
        name: String,
        footprint: Vec<(f64, f64)>,
        storeys: f64,
        building_use: BuildingUse,
    },
}

impl LightingEdit {
    pub fn kind(&self) -> &'static str {
        match self {
            LightingEdit::Dimming { .. } => "dimming",
            LightingEdit::Presence(_) => "presence",
            LightingEdit::Retrofit(_) => "retrofit",
            LightingEdit::Photocell(_) => "photocell",
            LightingEdit::SignalTiming { .. } => "signal_timing",
            LightingEdit::GreenWave { .. } => "green_wave",
            LightingEdit::Building { .. } => "building",
        }
    }

    /// Whether it adds a building (it selects no existing device).
    pub fn is_building(&self) -> bool {
        matches!(self, LightingEdit::Building { .. })
    }

    /// Whether it changes signal controllers (else lamps).
    pub fn is_signal(&self) -> bool {
        matches!(
            self,
            LightingEdit::SignalTiming { .. } | LightingEdit::GreenWave { .. }
        )
    }

    /// Edits of one class may not both apply to a device.
    pub fn class(&self) -> &'static str {
        if self.is_signal() {
            "signal timing"
        } else {
            self.kind()
        }
    }
}

/// An edit as checked, with where the file wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// 1-based.
    pub number: usize,
    pub line: usize,
    pub lamps: LampSelection,
    pub change: LightingEdit,
}

/// What the scenario runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// The built-in default demo.
    Default,
    /// A scene file.
    Scene(PathBuf),
}

/// A scenario, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// The file it was read from, and its exact text (copied into reports).
    pub path: PathBuf,
    pub text: String,
    pub base: Base,
    pub assumptions: Assumptions,
    pub edits: Vec<Edit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    assumptions: Assumptions,
    #[serde(default, rename = "edit")]
    edits: Vec<toml::Spanned<RawEdit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdit {
    kind: String,
    #[serde(default)]
    streets: Vec<String>,
    #[serde(default)]
    street_classes: Vec<String>,
    #[serde(default)]
    districts: Vec<String>,
    #[serde(default)]
    controllers: Vec<String>,
    weekdays: Option<Vec<(String, f64)>>,
    weekends: Option<Vec<(String, f64)>>,
    base_pct: Option<f64>,
    raised_share: Option<f64>,
    watts: Option<Vec<(f64, f64)>>,
    on_below_deg: Option<f64>,
    cycle_s: Option<f64>,
    split: Option<f64>,
    offset_s: Option<f64>,
    speed_kmh: Option<f64>,
    name: Option<String>,
    footprint: Option<Vec<(f64, f64)>>,
    storeys: Option<f64>,
    height_m: Option<f64>,
    #[serde(rename = "use")]
    building_use: Option<String>,
}

/// Street classes a selection may name.
pub const STREET_CLASSES: [&str; 6] = [
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "residential",
    "pedestrian",
];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// "HH:MM" as minutes since midnight.
fn minute_of(t: &str) -> Option<u16> {
    let (h, m) = t.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
}

pub(crate) fn calendar(steps: &[(String, f64)], which: &str) -> Result<Vec<(u16, f64)>, String> {
    let mut out: Vec<(u16, f64)> = Vec::new();
    for (t, level) in steps {
        let m = minute_of(t)
            .ok_or_else(|| format!("{which}: {t:?} is not a time of day (HH:MM, 00:00-23:59)"))?;
        if !(0.0..=100.0).contains(level) {
            return Err(format!("{which}: level {level} at {t} is outside 0-100 %"));
        }
        if let Some((prev, _)) = out.last()
            && m <= *prev
        {
            return Err(format!(
                "{which}: {t} does not come after the step before it (steps must ascend through the day; overlapping steps are refused)"
            ));
        }
        out.push((m, *level));
    }
    match out.first() {
        None => Err(format!("{which}: a calendar needs at least one step")),
        Some((first, _)) if *first != 0 => Err(format!(
            "{which}: the first step must be at 00:00, so every minute of the day has a level"
        )),
        _ => Ok(out),
    }
}

impl RawEdit {
    /// Fields that do not belong to this kind of edit.
    fn stray_fields(&self) -> Vec<&'static str> {
        let own: &[&str] = match self.kind.as_str() {
            "dimming" => &["weekdays", "weekends"],
            "presence" => &["base_pct", "raised_share"],
            "retrofit" => &["watts"],
            "photocell" => &["on_below_deg"],
            "signal_timing" => &["cycle_s", "split", "offset_s", "controllers"],
            "green_wave" => &["cycle_s", "split", "speed_kmh"],
            "building" => &["name", "footprint", "storeys", "height_m", "use"],
            _ => &[],
        };
        [
            ("weekdays", self.weekdays.is_some()),
            ("weekends", self.weekends.is_some()),
            ("base_pct", self.base_pct.is_some()),
            ("raised_share", self.raised_share.is_some()),
            ("watts", self.watts.is_some()),
            ("on_below_deg", self.on_below_deg.is_some()),
            ("cycle_s", self.cycle_s.is_some()),
            ("split", self.split.is_some()),
            ("offset_s", self.offset_s.is_some()),
            ("speed_kmh", self.speed_kmh.is_some()),
            ("controllers", !self.controllers.is_empty()),
            ("name", self.name.is_some()),
            ("footprint", self.footprint.is_some()),
            ("storeys", self.storeys.is_some()),
            ("height_m", self.height_m.is_some()),
            ("use", self.building_use.is_some()),
            (
                "streets",
                !self.streets.is_empty() && self.kind == "building",
            ),
            (
                "districts",
                !self.districts.is_empty() && self.kind == "building",
            ),
            (
                "street_classes",
                !self.street_classes.is_empty()
                    && matches!(self.kind.as_str(), "signal_timing" | "green_wave"),
            ),
        ]
        .into_iter()
        .filter(|(name, given)| *given && !own.contains(name))
        .map(|(name, _)| name)
        .collect()
    }

    fn check(self) -> Result<(LampSelection, LightingEdit), String> {
        let stray = self.stray_fields();
        if !stray.is_empty() {
            return Err(format!(
                "{} does not belong to a {:?} edit",
                stray.join(", "),
                self.kind
            ));
        }
        for c in &self.street_classes {
            if !STREET_CLASSES.contains(&c.to_lowercase().as_str()) {
                return Err(format!(
                    "unknown street class {c:?} (expected one of {})",
                    STREET_CLASSES.join(", ")
                ));
            }
        }
        let (cycle, split) = (self.cycle_s, self.split);
        if let Some(c) = cycle
            && !(30.0..=180.0).contains(&c)
        {
            return Err(format!("cycle_s {c} is outside 30-180 s"));
        }
        if let Some(x) = split
            && !(0.1..=0.9).contains(&x)
        {
            return Err(format!(
                "split {x} is outside 0.1-0.9 (group 0's share of the green)"
            ));
        }
        if self.kind == "green_wave" && self.streets.len() != 1 {
            return Err("a green wave runs along exactly one street (streets = [\"...\"])".into());
        }
        let lamps = LampSelection {
            streets: self.streets,
            street_classes: self.street_classes,
            districts: self.districts,
            controllers: self.controllers,
        };
        let need = |v: Option<f64>, name: &str| v.ok_or_else(|| format!("{name} is missing"));
        let change = match self.kind.as_str() {
            "dimming" => {
                let weekdays = calendar(
                    self.weekdays
                        .as_deref()
                        .ok_or("weekdays is missing (the calendar of Monday-Friday)")?,
                    "weekdays",
                )?;
                let weekends = match &self.weekends {
                    Some(w) => calendar(w, "weekends")?,
                    None => weekdays.clone(),
                };
                LightingEdit::Dimming { weekdays, weekends }
            }
            "presence" => {
                let base_pct = need(self.base_pct, "base_pct")?;
                let raised_share = need(self.raised_share, "raised_share")?;
                if !(0.0..=100.0).contains(&base_pct) {
                    return Err(format!("base_pct {base_pct} is outside 0-100 %"));
                }
                if !(0.0..=1.0).contains(&raised_share) {
                    return Err(format!("raised_share {raised_share} is outside 0-1"));
                }
                LightingEdit::Presence(Presence {
                    base_pct,
                    raised_share,
                })
            }
            "retrofit" => {
                let watts = self.watts.ok_or("watts is missing ([[old, new], ...])")?;
                if watts.is_empty() {
                    return Err("watts lists no fitting".into());
                }
                for (i, (old, new)) in watts.iter().enumerate() {
                    if !(*old > 0.0 && *new > 0.0 && old.is_finite() && new.is_finite()) {
                        return Err(format!(
                            "watts: [{old}, {new}]: rated watts must be positive"
                        ));
                    }
                    if watts[..i].iter().any(|(o, _)| o == old) {
                        return Err(format!("watts: {old} W is given twice"));
                    }
                }
                LightingEdit::Retrofit(watts)
            }
            "photocell" => {
                let deg = need(self.on_below_deg, "on_below_deg")?;
                if !(-18.0..=5.0).contains(&deg) {
                    return Err(format!(
                        "on_below_deg {deg} is outside -18 (astronomical dusk) to 5 degrees"
                    ));
                }
                LightingEdit::Photocell(deg)
            }
            "signal_timing" => {
                if cycle.is_none() && split.is_none() && self.offset_s.is_none() {
                    return Err("give cycle_s, split or offset_s".into());
                }
                if let Some(o) = self.offset_s
                    && !(o >= 0.0 && o < cycle.unwrap_or(180.0))
                {
                    return Err(format!(
                        "offset_s {o} must be at least 0 and less than the cycle"
                    ));
                }
                LightingEdit::SignalTiming {
                    cycle_s: cycle,
                    split,
                    offset_s: self.offset_s,
                }
            }
            "building" => {
                let footprint = self
                    .footprint
                    .ok_or("footprint is missing ([[longitude, latitude], ...], WGS 84)")?;
                let mut ring = footprint.clone();
                if ring.len() > 1 && ring.first() == ring.last() {
                    ring.pop();
                }
                if ring.len() < 3 {
                    return Err("footprint: a polygon needs at least 3 corners".into());
                }
                if ring.iter().any(|(lon, lat)| {
                    !(-180.0..=180.0).contains(lon) || !(-90.0..=90.0).contains(lat)
                }) {
                    return Err("footprint: corners are [longitude, latitude] in degrees".into());
                }
                let storeys = match (self.storeys, self.height_m) {
                    (Some(_), Some(_)) => return Err("give storeys or height_m, not both".into()),
                    (Some(n), None) => n,
                    (None, Some(h)) => (h / 3.0).round(),
                    (None, None) => return Err("storeys (or height_m) is missing".into()),
                };
                if !(1.0..=80.0).contains(&storeys) {
                    return Err(format!("{storeys} storeys is outside 1-80"));
                }
                let use_name = self
                    .building_use
                    .ok_or("use is missing (homes, offices, retail or public)")?;
                let building_use = match use_name.as_str() {
                    "homes" => BuildingUse::Homes,
                    "offices" => BuildingUse::Offices,
                    "retail" => BuildingUse::Retail,
                    "public" => BuildingUse::Public,
                    other => {
                        return Err(format!(
                            "use {other:?}: expected homes, offices, retail or public"
                        ));
                    }
                };
                LightingEdit::Building {
                    name: self.name.unwrap_or_else(|| "New building".into()),
                    footprint: ring,
                    storeys,
                    building_use,
                }
            }
            "green_wave" => {
                let speed_kmh = need(self.speed_kmh, "speed_kmh")?;
                if !(10.0..=70.0).contains(&speed_kmh) {
                    return Err(format!("speed_kmh {speed_kmh} is outside 10-70 km/h"));
                }
                LightingEdit::GreenWave {
                    cycle_s: need(cycle, "cycle_s")?,
                    speed_kmh,
                    split,
                }
            }
            other => {
                return Err(format!(
                    "unknown kind {other:?} (expected dimming, presence, retrofit, photocell, signal_timing, green_wave or building)"
                ));
            }
        };
        Ok((lamps, change))
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.display().to_string(),
            line: None,
            edit: None,
            reason: format!("cannot read: {e}"),
        })?;
        Scenario::parse(&text, path)
    }

    /// Checks a scenario's text; `path` names it in errors and places its base.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let err = |line: Option<usize>, edit: Option<usize>, reason: String| ScenarioError {
            file: file.clone(),
            line,
            edit,
            reason,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            err(
                e.span().map(|s| line_of(text, s.start)),
                None,
                e.message().to_string(),
            )
        })?;
        let base = match raw.base.as_deref() {
            None | Some("default") => Base::Default,
            Some(scene) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(scene);
                if !p.is_file() {
                    return Err(err(
                        None,
                        None,
                        format!("base {scene:?}: no scene file at {}", p.display()),
                    ));
                }
                Base::Scene(p)
            }
        };
        let a = &raw.assumptions;
        for (name, v) in [
            ("electricity_sek_per_kwh", a.electricity_sek_per_kwh),
            ("electricity_kg_co2e_per_kwh", a.electricity_kg_co2e_per_kwh),
            ("heating_kg_co2e_per_kwh", a.heating_kg_co2e_per_kwh),
            ("heating_sek_per_kwh", a.heating_sek_per_kwh.unwrap_or(0.0)),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(err(
                    None,
                    None,
                    format!("assumptions: {name} = {v} must be zero or more"),
                ));
            }
        }
        let mut edits = Vec::new();
        for (i, spanned) in raw.edits.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let (lamps, change) = spanned
                .into_inner()
                .check()
                .map_err(|reason| err(Some(line), Some(i + 1), reason))?;
            edits.push(Edit {
                number: i + 1,
                line,
                lamps,
                change,
            });
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            path: path.to_path_buf(),
            text: text.to_string(),
            base,
            assumptions: raw.assumptions,
            edits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn a_scenario_reads_with_its_edits_and_default_assumptions() {
        let s = parse(
            r#"name = "Night dimming"

[[edit]]
kind = "dimming"
districts = ["NORRMALM"]
weekdays = [["00:00", 50], ["06:00", 100], ["22:00", 70]]

[[edit]]
kind = "retrofit"
watts = [[100, 56], [60, 30]]
"#,
        )
        .expect("valid");
        assert_eq!(s.base, Base::Default);
        assert_eq!(s.assumptions, Assumptions::default());
        assert_eq!(s.edits.len(), 2);
        assert_eq!((s.edits[0].number, s.edits[0].line), (1, 3));
        assert_eq!(
            s.edits[0].change,
            LightingEdit::Dimming {
                weekdays: vec![(0, 50.0), (360, 100.0), (1320, 70.0)],
                weekends: vec![(0, 50.0), (360, 100.0), (1320, 70.0)],
            }
        );
        assert!(s.edits[1].lamps.is_all());
    }

    #[test]
    fn bad_files_are_refused_with_file_line_edit_and_reason() {
        let cases = [
            (
                "name = \"x\"\n[[edit]]\nkind = \"retrofit\"\nwatts = [[100, -5]]\n",
                "test.toml:2: edit 1: watts: [100, -5]: rated watts must be positive",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"dimming\"\nweekdays = [[\"00:00\", 50], [\"05:00\", 100], [\"04:00\", 60]]\n",
                "test.toml:2: edit 1: weekdays: 04:00 does not come after the step before it",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"dimming\"\nweekdays = [[\"01:00\", 50]]\n",
                "test.toml:2: edit 1: weekdays: the first step must be at 00:00",
            ),
            (
                "name = \"x\"\n\n[[edit]]\nkind = \"photocell\"\n\n[[edit]]\nkind = \"dimming\"\nwatts = [[1, 2]]\nweekdays = [[\"00:00\", 5]]\n",
                "test.toml:3: edit 1: on_below_deg is missing",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"dimming\"\nwatts = [[1, 2]]\nweekdays = [[\"00:00\", 5]]\n",
                "test.toml:2: edit 1: watts does not belong to a \"dimming\" edit",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"presence\"\nstreet_classes = [\"motorway\"]\nbase_pct = 20\nraised_share = 0.2\n",
                "test.toml:2: edit 1: unknown street class \"motorway\"",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"dim\"\n",
                "test.toml:2: edit 1: unknown kind \"dim\"",
            ),
            (
                "name = \"x\"\ncolour = \"red\"\n",
                "test.toml:2: unknown field `colour`",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"presence\"\nbase_pct = 20\nraised_share = 1.5\n",
                "test.toml:2: edit 1: raised_share 1.5 is outside 0-1",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"green_wave\"\nstreets = [\"A\", \"B\"]\ncycle_s = 90\nspeed_kmh = 40\n",
                "test.toml:2: edit 1: a green wave runs along exactly one street",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"signal_timing\"\ncycle_s = 300\n",
                "test.toml:2: edit 1: cycle_s 300 is outside 30-180 s",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"signal_timing\"\nstreet_classes = [\"primary\"]\nsplit = 0.6\n",
                "test.toml:2: edit 1: street_classes does not belong to a \"signal_timing\" edit",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"dimming\"\ncontrollers = [\"c\"]\nweekdays = [[\"00:00\", 5]]\n",
                "test.toml:2: edit 1: controllers does not belong to a \"dimming\" edit",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"building\"\nfootprint = [[18.07, 59.33], [18.071, 59.33]]\nstoreys = 4\nuse = \"offices\"\n",
                "test.toml:2: edit 1: footprint: a polygon needs at least 3 corners",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"building\"\nfootprint = [[18.07, 59.33], [18.071, 59.33], [18.071, 59.331]]\nstoreys = 4\nuse = \"factory\"\n",
                "test.toml:2: edit 1: use \"factory\": expected homes, offices, retail or public",
            ),
            (
                "name = \"x\"\n[[edit]]\nkind = \"building\"\nstreets = [\"Kungsgatan\"]\nfootprint = [[18.07, 59.33], [18.071, 59.33], [18.071, 59.331]]\nstoreys = 4\nuse = \"homes\"\n",
                "test.toml:2: edit 1: streets does not belong to a \"building\" edit",
            ),
            (
                "name = \"x\"\nbase = \"nowhere.toml\"\n",
                "test.toml: base \"nowhere.toml\": no scene file",
            ),
            (
                "name = \"x\"\n[assumptions]\nelectricity_sek_per_kwh = -1\n",
                "test.toml: assumptions: electricity_sek_per_kwh = -1 must be zero or more",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }
}
