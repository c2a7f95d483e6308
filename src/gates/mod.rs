//! The gates a rollout passes before and during its canary: the Pact Broker contract gate
//! (`broker`), instance attestation (`fleet`) and smoke requests (`smoke`).

pub mod broker;
pub mod fleet;
pub mod smoke;
