//! The operator process around the pure pipeline: telemetry, metrics, the admin server,
//! leader election and webhook notifications. The controller loop itself lives in `controller`.

pub mod admin;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod telemetry;
