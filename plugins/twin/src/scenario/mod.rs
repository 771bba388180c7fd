//! What-if scenarios for planners: a scenario file names a base (the scene) and a list of
//! edits (data, not code) to how the city runs, with the assumptions that turn kWh into SEK and
//! CO2e. Two scenarios are run over the same span with one seed and one clock, and compared.
//!
//! - [`file`]: the TOML format, read and checked (every refusal names the file, the line and
//!   the edit, and why);
//! - [`edits`]: the edits applied to the devices planned for a city (lamps by street, street
//!   class or district), all or nothing;
//! - [`report`]: the metrics of two runs side by side, as `metrics.csv` and `report.html`;
//! - [`jobs`]: comparisons run for the window on a thread of their own;
//! - [`shown`]: a comparison shown in the city (A, B or split) at a moment of its span;
//! - [`draft`]: a scenario made in the window (calendars, timings, drawn buildings; undo,
//!   redo) and saved as a file;
//! - [`traffic`]: a side's signal timing run in SUMO, measuring delay, stops, throughput and
//!   emissions.

pub mod draft;
pub mod edits;
pub mod evaluate;
pub mod file;
pub mod jobs;
pub mod report;
pub mod shown;
pub mod traffic;

pub use file::{Assumptions, Scenario, ScenarioError};
