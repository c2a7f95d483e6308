//! tollgate: a Kubernetes operator that decides whether a new version of a service may take
//! production traffic (contract gate, fleet attestation, sequential canary analysis).
//!
//! The binary in `main.rs` only parses the command line and calls [`cli::run`].
#![forbid(unsafe_code)]

pub mod analysis;
pub mod cli;
pub mod crd;
pub mod gates;
pub mod rollout;
pub mod runtime;
pub mod traffic;
pub mod util;
