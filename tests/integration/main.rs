//! Integration tests of Tvilling, in one binary (each test binary links all of Bevy).
//!
//! - `config`: the `--config` file: the example parses, mistakes are clear errors.
//! - `crs`: our transforms against PROJ's `cs2cs` command (Debian `proj-bin`).
//! - `data`: the shipped data and the shared CityJSON samples load as expected through the
//!   real plugins (App + MinimalPlugins); GDAL's reading of the same OSM file agrees with ours;
//!   broken input is reported and never stops the good data.
//! - `history`: recording to SQLite, the recorded twin at a moment equal to the live twin
//!   then, a restart continuing the file, CSV export, damaged and locked files.
//! - `http`: SensorThings and NGSI-LD polling against an HTTP server on a loopback port:
//!   paging, bearer token, broken pages and HTTP errors counted, good state kept.
//! - `mqtt`: real payloads published to a real Mosquitto (started on a free loopback port)
//!   reach components; bad input is counted per reason; a broker restart loses nothing.
//! - `ocr`: reading the screenshots' text, tolerant of OCR's known confusions, strict on
//!   numbers; each reading can paint its words over to show a check fails without them.
//! - `scenario`: what-if scenarios as `tvilling scenario` runs them: fairness (no edits and an
//!   edit undone give the baseline exactly, repeated runs are identical, lighting edits move no
//!   building number), golden reports in `tests/golden/`, refusals with file, line and edit.
//! - `simulator`: the built-in simulator on the shipped extract: generated registry, values
//!   through the SenML decoder, health in simulated time, the Swedish signal sequence.
//! - `shared_store`: the alarm book on a real PostgreSQL 15 (`pgserver` starts it on a free
//!   loopback port): an acknowledgement announced to another screen within a second,
//!   concurrent acknowledgements, a viewer refused by the server's grants, schema versions,
//!   the password from the environment, the store stopped and started again.
//! - `snapshot`: `--headless --snapshot` writes valid RFC 7946 GeoJSON.
//! - `sumo`: the SUMO network built from the shipped extract, its lights matched to the
//!   twin's controllers.
//! - `screenshot`: the real binary renders under Xvfb with Mesa's software Vulkan and the
//!   picture shows the city (and the inspector when a building is selected).

mod broker;
mod common;
mod config;
mod crs;
mod data;
mod fuzz_corpora;
mod history;
mod http;
mod idle;
mod mqtt;
mod ocr;
mod payloads;
mod pgserver;
mod scenario;
mod screenshot;
mod shared_store;
mod simulator;
mod snapshot;
mod sumo;
