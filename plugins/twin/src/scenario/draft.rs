//! A scenario made in the window, without writing a file: dimming calendars for streets or a
//! district, a controller's cycle and split, buildings drawn on the ground; undo and redo; and
//! saved as a scenario file like any other (checked by the same reader before it is written).
//!
//! Panels and the view write [`DraftRequest`]s; [`apply_draft_requests`] applies them.

use std::path::PathBuf;

use bevy::prelude::*;
use tvilling_geo::{Crs, GeoFrame, Transformer};
use tvilling_sensors::simulate::BuildingUse;

use super::edits::footprint_area_m2;
use super::file::{Scenario, calendar};
use super::jobs::ScenarioJobs;

/// One edit made in the window (one `[[edit]]` of the saved file).
#[derive(Debug, Clone, PartialEq)]
pub enum DraftEdit {
    /// A dimming calendar, (minute of the day, level %) steps, for streets or districts.
    Dimming {
        streets: Vec<String>,
        districts: Vec<String>,
        weekdays: Vec<(u16, f64)>,
        weekends: Vec<(u16, f64)>,
    },
    /// A controller's cycle (s) and group 0's share of the green.
    SignalTiming {
        controller: String,
        cycle_s: f64,
        split: f64,
    },
    /// A building drawn on the ground: its corners (longitude, latitude), storeys and use.
    Building {
        name: String,
        footprint: Vec<(f64, f64)>,
        storeys: f64,
        building_use: BuildingUse,
    },
}

impl DraftEdit {
    /// One line for the window's list.
    pub fn summary(&self) -> String {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        match self {
            DraftEdit::Dimming {
                streets,
                districts,
                weekdays,
                ..
            } => {
                let steps: Vec<String> = weekdays
                    .iter()
                    .map(|(m, l)| format!("{} {l:.0} %", hm(*m)))
                    .collect();
                let what: Vec<&str> = streets
                    .iter()
                    .chain(districts)
                    .map(String::as_str)
                    .collect();
                format!("dimming {}: {}", what.join(", "), steps.join(", "))
            }
            DraftEdit::SignalTiming {
                controller,
                cycle_s,
                split,
            } => format!("signal timing {controller}: cycle {cycle_s:.0} s, split {split:.2}"),
            DraftEdit::Building {
                name,
                footprint,
                storeys,
                building_use,
            } => format!(
                "building {name}: {:.0} m², {storeys:.0} storeys, {}",
                footprint_area_m2(footprint),
                use_name(*building_use)
            ),
        }
    }
}

/// The file's word for a building use.
pub fn use_name(u: BuildingUse) -> &'static str {
    match u {
        BuildingUse::Homes => "homes",
        BuildingUse::Offices => "offices",
        BuildingUse::Retail => "retail",
        BuildingUse::Public => "public",
    }
}

/// A calendar written as the window takes it, `HH:MM LEVEL` steps separated by commas (e.g.
/// `00:00 50, 05:00 100, 22:00 60`), checked as a file's calendar is.
pub fn parse_calendar(text: &str) -> Result<Vec<(u16, f64)>, String> {
    let mut steps = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let (Some(t), Some(level), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{part:?}: expected HH:MM and a level, e.g. 22:00 60"
            ));
        };
        let level: f64 = level
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{part:?}: {level:?} is not a level in %"))?;
        steps.push((t.to_string(), level));
    }
    calendar(&steps, "calendar")
}

/// A change to the draft.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum DraftRequest {
    Rename(String),
    Add(DraftEdit),
    Remove(usize),
    Undo,
    Redo,
    /// Start drawing a footprint (clicks on the ground add its corners).
    StartDrawing,
    /// A corner, in the scene's CRS (easting, northing).
    Corner(bevy::math::DVec2),
    /// The footprint drawn becomes a building edit.
    FinishDrawing {
        name: String,
        storeys: f64,
        building_use: BuildingUse,
    },
    CancelDrawing,
    /// Write the scenario file into the scenario folder.
    Save,
}

/// The scenario being made in the window.
#[derive(Resource, Debug, Clone, PartialEq)]
pub struct ScenarioDraft {
    pub name: String,
    /// What the saved file's `base` says (the scene beside it, or `default`).
    pub base: String,
    pub edits: Vec<DraftEdit>,
    undo: Vec<Vec<DraftEdit>>,
    redo: Vec<Vec<DraftEdit>>,
    /// Corners of the footprint being drawn, scene CRS.
    pub drawing: Option<Vec<bevy::math::DVec2>>,
    /// The last save: the file written, or why not.
    pub saved: Option<Result<PathBuf, String>>,
    /// The last refused change, and why.
    pub refused: Option<String>,
}

impl Default for ScenarioDraft {
    fn default() -> Self {
        ScenarioDraft {
            name: "My scenario".into(),
            base: "default".into(),
            edits: Vec::new(),
            undo: Vec::new(),
            redo: Vec::new(),
            drawing: None,
            saved: None,
            refused: None,
        }
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn toml_calendar(steps: &[(u16, f64)]) -> String {
    let s: Vec<String> = steps
        .iter()
        .map(|(m, l)| format!("[\"{:02}:{:02}\", {l}]", m / 60, m % 60))
        .collect();
    format!("[{}]", s.join(", "))
}

impl ScenarioDraft {
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    fn change(&mut self, f: impl FnOnce(&mut Vec<DraftEdit>)) {
        self.undo.push(self.edits.clone());
        self.redo.clear();
        f(&mut self.edits);
    }

    /// The scenario file's text.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# Made in the Scenarios window of Tvilling.\nname = {}\nbase = {}\n",
            toml_str(&self.name),
            toml_str(&self.base)
        );
        for e in &self.edits {
            out.push_str("\n[[edit]]\n");
            match e {
                DraftEdit::Dimming {
                    streets,
                    districts,
                    weekdays,
                    weekends,
                } => {
                    out.push_str("kind = \"dimming\"\n");
                    if !streets.is_empty() {
                        out.push_str(&format!("streets = {}\n", toml_list(streets)));
                    }
                    if !districts.is_empty() {
                        out.push_str(&format!("districts = {}\n", toml_list(districts)));
                    }
                    out.push_str(&format!("weekdays = {}\n", toml_calendar(weekdays)));
                    out.push_str(&format!("weekends = {}\n", toml_calendar(weekends)));
                }
                DraftEdit::SignalTiming {
                    controller,
                    cycle_s,
                    split,
                } => {
                    out.push_str(&format!(
                        "kind = \"signal_timing\"\ncontrollers = {}\ncycle_s = {cycle_s}\nsplit = {split}\n",
                        toml_list(std::slice::from_ref(controller))
                    ));
                }
                DraftEdit::Building {
                    name,
                    footprint,
                    storeys,
                    building_use,
                } => {
                    let mut ring: Vec<String> = footprint
                        .iter()
                        .map(|(lon, lat)| format!("[{lon:.7}, {lat:.7}]"))
                        .collect();
                    if let Some(first) = ring.first().cloned() {
                        ring.push(first);
                    }
                    out.push_str(&format!(
                        "kind = \"building\"\nname = {}\nfootprint = [{}]\nstoreys = {storeys}\nuse = \"{}\"\n",
                        toml_str(name),
                        ring.join(", "),
                        use_name(*building_use)
                    ));
                }
            }
        }
        out
    }

    /// A file name from the scenario's name: lower case letters and digits, dashes between.
    pub fn file_name(&self) -> String {
        let mut slug = String::new();
        for c in self.name.to_lowercase().chars() {
            let c = match c {
                'å' | 'ä' => 'a',
                'ö' => 'o',
                'é' => 'e',
                c => c,
            };
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        format!("{}.toml", if slug.is_empty() { "scenario" } else { slug })
    }

    /// Writes the file into `folder` after checking it with the scenario reader; the path, or
    /// why it was not written (an existing file is not overwritten).
    pub fn save(&self, folder: &std::path::Path) -> Result<PathBuf, String> {
        let path = folder.join(self.file_name());
        let text = self.to_toml();
        Scenario::parse(&text, &path).map_err(|e| e.to_string())?;
        if path.exists() {
            return Err(format!(
                "{} exists already: give the scenario another name",
                path.display()
            ));
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Applies the window's and the view's requests to the draft.
pub fn apply_draft_requests(
    mut requests: MessageReader<DraftRequest>,
    mut draft: ResMut<ScenarioDraft>,
    frame: Option<Res<GeoFrame>>,
    jobs: Option<ResMut<ScenarioJobs>>,
) {
    let mut jobs = jobs;
    for r in requests.read() {
        let d = &mut *draft;
        d.refused = None;
        match r.clone() {
            DraftRequest::Rename(n) => d.name = n,
            DraftRequest::Add(e) => d.change(|edits| edits.push(e)),
            DraftRequest::Remove(i) if i < d.edits.len() => d.change(|edits| {
                edits.remove(i);
            }),
            DraftRequest::Remove(_) => {}
            DraftRequest::Undo => {
                if let Some(before) = d.undo.pop() {
                    d.redo.push(std::mem::replace(&mut d.edits, before));
                }
            }
            DraftRequest::Redo => {
                if let Some(after) = d.redo.pop() {
                    d.undo.push(std::mem::replace(&mut d.edits, after));
                }
            }
            DraftRequest::StartDrawing => d.drawing = Some(Vec::new()),
            DraftRequest::Corner(p) => {
                if let Some(corners) = d.drawing.as_mut() {
                    corners.push(p);
                }
            }
            DraftRequest::CancelDrawing => d.drawing = None,
            DraftRequest::FinishDrawing {
                name,
                storeys,
                building_use,
            } => {
                let corners = d.drawing.clone().unwrap_or_default();
                let crs = frame.as_ref().map_or(Crs::SWEREF99_TM, |f| f.crs);
                let footprint = Transformer::new(crs, Crs::WGS84)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        corners
                            .iter()
                            .map(|p| t.convert(p.x, p.y).map_err(|e| e.to_string()))
                            .collect::<Result<Vec<(f64, f64)>, String>>()
                    });
                match footprint {
                    Ok(f) if f.len() < 3 => {
                        d.refused = Some(format!(
                            "a footprint needs three corners or more ({} drawn)",
                            f.len()
                        ));
                    }
                    Ok(footprint) => {
                        d.drawing = None;
                        d.change(|edits| {
                            edits.push(DraftEdit::Building {
                                name,
                                footprint,
                                storeys,
                                building_use,
                            })
                        });
                    }
                    Err(e) => d.refused = Some(format!("cannot place the footprint: {e}")),
                }
            }
            DraftRequest::Save => {
                let Some(jobs) = jobs.as_mut() else {
                    d.saved = Some(Err("no scenario folder".into()));
                    continue;
                };
                d.saved = Some(d.save(&jobs.folder));
                if d.saved.as_ref().is_some_and(Result::is_ok) {
                    jobs.rescan();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::file::LightingEdit;

    #[test]
    fn calendars_are_read_as_the_window_takes_them() {
        assert_eq!(
            parse_calendar("00:00 50, 05:00 100 ,22:00 60%"),
            Ok(vec![(0, 50.0), (300, 100.0), (1320, 60.0)])
        );
        for (bad, why) in [
            ("05:00 100", "first step must be at 00:00"),
            ("00:00 50, 04:00", "expected HH:MM and a level"),
            ("00:00 fifty", "is not a level"),
            ("00:00 50, 25:00 10", "not a time of day"),
            ("00:00 50, 00:00 10", "does not come after"),
            ("00:00 150", "outside 0-100"),
        ] {
            let e = parse_calendar(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_draft_is_made_undone_redone_and_saved_as_a_file_the_reader_takes() {
        let dir = std::env::temp_dir().join(format!("tvilling-draft-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let runner: super::super::jobs::Runner =
            std::sync::Arc::new(|_: &Scenario, _: &Scenario, _, _, _| Err("not here".into()));
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(ScenarioJobs::new(runner, &dir))
            .insert_resource(GeoFrame::default())
            .add_plugins(super::super::jobs::ScenarioPlugin);
        let send = |app: &mut App, r: DraftRequest| {
            app.world_mut().write_message(r);
            app.update();
        };
        send(
            &mut app,
            DraftRequest::Rename("Kvällsljus på Sveavägen".into()),
        );
        let dimming = DraftEdit::Dimming {
            streets: vec!["Sveavägen".into()],
            districts: Vec::new(),
            weekdays: parse_calendar("00:00 40, 06:00 100, 22:00 60").expect("cal"),
            weekends: parse_calendar("00:00 40, 07:00 100").expect("cal"),
        };
        send(&mut app, DraftRequest::Add(dimming.clone()));
        let timing = DraftEdit::SignalTiming {
            controller: "node/123".into(),
            cycle_s: 90.0,
            split: 0.6,
        };
        send(&mut app, DraftRequest::Add(timing.clone()));
        // A 40 x 25 m footprint drawn in SWEREF 99 TM near Sergels torg.
        send(&mut app, DraftRequest::StartDrawing);
        for (e, n) in [(0.0, 0.0), (40.0, 0.0), (40.0, 25.0), (0.0, 25.0)] {
            let p = bevy::math::DVec2::new(674_000.0 + e, 6_580_000.0 + n);
            send(&mut app, DraftRequest::Corner(p));
        }
        send(
            &mut app,
            DraftRequest::FinishDrawing {
                name: "Kontor".into(),
                storeys: 5.0,
                building_use: BuildingUse::Offices,
            },
        );
        let draft = app.world().resource::<ScenarioDraft>();
        assert_eq!(draft.edits.len(), 3);
        assert!(draft.drawing.is_none());
        let DraftEdit::Building { footprint, .. } = &draft.edits[2] else {
            panic!("{:?}", draft.edits[2]);
        };
        let area = footprint_area_m2(footprint);
        assert!((area - 1000.0).abs() < 10.0, "{area} m²");
        // Undo takes the building and the timing back; redo brings the timing again; a new
        // change clears what could be redone.
        send(&mut app, DraftRequest::Undo);
        send(&mut app, DraftRequest::Undo);
        assert_eq!(
            app.world().resource::<ScenarioDraft>().edits,
            std::slice::from_ref(&dimming)
        );
        send(&mut app, DraftRequest::Redo);
        assert_eq!(
            app.world().resource::<ScenarioDraft>().edits,
            [dimming.clone(), timing.clone()]
        );
        send(&mut app, DraftRequest::Remove(0));
        let draft = app.world().resource::<ScenarioDraft>();
        assert_eq!(draft.edits, std::slice::from_ref(&timing));
        assert!(draft.can_undo() && !draft.can_redo());
        send(&mut app, DraftRequest::Undo);
        send(&mut app, DraftRequest::Redo);
        send(&mut app, DraftRequest::Undo);
        // Saved: the file is read back as the same edits, and the window can pick it.
        send(&mut app, DraftRequest::Save);
        let draft = app.world().resource::<ScenarioDraft>();
        let path = draft.saved.clone().expect("saved").expect("written");
        assert_eq!(path, dir.join("kvallsljus-pa-sveavagen.toml"));
        let s = Scenario::load(&path).expect("the reader takes it");
        assert_eq!(s.name, "Kvällsljus på Sveavägen");
        assert_eq!(s.edits.len(), 2);
        assert_eq!(s.edits[0].lamps.streets, ["Sveavägen"]);
        assert_eq!(
            s.edits[0].change,
            LightingEdit::Dimming {
                weekdays: vec![(0, 40.0), (360, 100.0), (1320, 60.0)],
                weekends: vec![(0, 40.0), (420, 100.0)],
            }
        );
        assert_eq!(s.edits[1].lamps.controllers, ["node/123"]);
        assert_eq!(
            s.edits[1].change,
            LightingEdit::SignalTiming {
                cycle_s: Some(90.0),
                split: Some(0.6),
                offset_s: None
            }
        );
        let jobs = app.world().resource::<ScenarioJobs>();
        assert!(
            jobs.scenarios()
                .iter()
                .any(|(_, s)| s.name == "Kvällsljus på Sveavägen")
        );
        // Saving again does not overwrite it.
        send(&mut app, DraftRequest::Save);
        let again = app.world().resource::<ScenarioDraft>().saved.clone();
        assert!(again.is_some_and(|r| r.is_err_and(|e| e.contains("exists already"))));
        // A footprint of two corners is refused, and the drawing stays open.
        send(&mut app, DraftRequest::StartDrawing);
        send(
            &mut app,
            DraftRequest::Corner(bevy::math::DVec2::new(674_000.0, 6_580_000.0)),
        );
        send(
            &mut app,
            DraftRequest::Corner(bevy::math::DVec2::new(674_010.0, 6_580_000.0)),
        );
        send(
            &mut app,
            DraftRequest::FinishDrawing {
                name: "x".into(),
                storeys: 1.0,
                building_use: BuildingUse::Homes,
            },
        );
        let draft = app.world().resource::<ScenarioDraft>();
        assert!(
            draft
                .refused
                .as_ref()
                .is_some_and(|r| r.contains("three corners"))
        );
        assert_eq!(draft.drawing.as_ref().map(Vec::len), Some(2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
