//! The I/O around the pure core: the reconcile driver ([`reconcile`]: fetch → needs →
//! [`observe`] → `rollout::decide` → [`apply`]), the network [`peers`] (broker, Prometheus and
//! the judge), the controller wiring, leader election, the admin server, metrics, webhook
//! notifications and telemetry.
//!
//! The driver lives here rather than beside `decide` so that dependencies point one way:
//! `rollout` (pure) never imports this layer, while the driver uses the metrics and the
//! notifier that belong to the running process.

pub mod admin;
pub mod apply;
pub mod controller;
pub mod dora;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod owned;
pub mod peers;
pub mod policy;
pub mod reconcile;
pub mod telemetry;
