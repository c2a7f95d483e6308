//! Pact Broker client and the contract gate.
//!
//! - [`config`]: broker URL, credentials (from the environment for the CLI; Secrets are read by
//!   [`crate::util::credentials`]), timeouts; retries follow [`RetryPolicy::BROKER`].
//! - [`client`]: the [`BrokerApi`] trait and its reqwest implementation [`HttpBroker`].
//! - [`types`]: matrix queries and answers, deployment records.
//! - [`gate`]: the gate's semantics as pure functions, a one-step driver for the controller and a
//!   blocking loop for the CLI.
//! - [`error`]: typed errors, split permanent / transient; none carries a credential.
//!
//! See `docs/contract-gate.md` for the endpoint choice, the Secret format and the semantics.

pub mod client;
pub mod config;
pub mod error;
pub mod gate;
pub mod types;

pub use crate::util::credentials::Credentials;
pub use crate::util::retry::RetryPolicy;
pub use client::{BrokerApi, HttpBroker};
pub use config::BrokerConfig;
pub use error::{BrokerError, ConfigError, ErrorClass};
pub use gate::{
    ask_once, ask_with_retries, classify, decide, decide_record, record_with_retries, run_gate,
    AnswerCounts, AnswerKind, BlockKind, ClassifiedAnswer, GateDecision, GatePolicy, GateProgress,
    GateVerdict, RecordStep,
};
pub use types::{
    CanIDeployRequest, Deployable, DeploymentRecord, Environment, Ignore, LatestBy, MatrixAnswer,
    MatrixQuery, MatrixTarget, RecordedDeployment, Selector, Summary,
};
