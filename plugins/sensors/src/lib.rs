//! Live sensor state for Tvilling. No rendering.
//!
//! So far this crate owns the payload codecs ([`codec`]): pure functions that turn the bytes a
//! city system sends (SenML, ChirpStack v4 and The Things Stack v3 LoRaWAN uplinks, FIWARE
//! NGSI-LD entities, OGC SensorThings observations, or plain JSON with configured field paths)
//! into [`observation::Observation`]s: a device id, a time, and named values. Bad input is a
//! [`observation::DecodeError`] with a reason, never a panic; a bad field inside an otherwise
//! good message is reported in the observation's `problems` and the good fields are kept.
//!
//! [`ingest`] hands decoded observations from source threads to the ECS through a bounded
//! mailbox that coalesces per device when the ECS falls behind. Each is resolved on its
//! source's thread first ([`update`]): [`registry`] says which device is which entity and which
//! payload field is which quantity, so the ECS receives compact updates, ranges and units
//! already checked. [`state`] holds the live components; [`apply::SensorApplyPlugin`] takes the
//! mailbox each frame, checks order and redeliveries, and writes components, history and
//! liveness.
//!
//! [`clock::TwinClock`] is the twin's one clock (live, simulated, playback). [`health`] marks
//! devices stale or faulty at its shown moment. [`mqtt`] is the MQTT source; [`http`] polls
//! SensorThings and NGSI-LD servers; [`replay`] records accepted messages to JSON lines and
//! plays them back; [`simulate`] is the built-in simulator, a source that encodes SenML and
//! goes through the same decoder. [`generate`] places a default registry of devices on a city
//! that has few surveyed ones.

pub mod apply;
pub mod clock;
pub mod codec;
pub mod generate;
pub mod health;
pub mod http;
pub mod ingest;
pub mod mqtt;
pub mod observation;
pub mod registry;
pub mod registry_file;
pub mod replay;
pub mod simulate;
pub mod state;
pub mod time;
pub mod units;
pub mod update;

pub mod prelude {
    pub use crate::apply::{SensorApplyPlugin, SensorSystems};
    pub use crate::clock::{ClockPlugin, ClockSystems, Edge, TwinClock};
    pub use crate::codec::{DecodeContext, PayloadFormat, PlainMapping, decode};
    pub use crate::observation::{DecodeError, FieldValue, Observation};
    pub use crate::registry::{DeviceKind, DeviceRegistry, Quantity};
    pub use crate::state::{
        AirQualityState, Device, DeviceSlot, LampState, LiveEdge, Liveness, MeterState,
        SignalAspect, SignalHeadState,
    };
}
