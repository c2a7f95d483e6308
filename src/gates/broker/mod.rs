//! Pact Broker client and the contract gate.
//!
//! - [`config`]: broker URL, credentials (from the environment for the CLI; Secrets are read by
//!   [`crate::util::credentials`]), timeouts; retries follow [`RetryPolicy::BROKER`].
//! - [`client`]: the [`BrokerApi`] trait and its reqwest implementation [`HttpBroker`].
//! - [`types`]: matrix queries and answers, deployment records.
//! - [`gate`]: the gate's semantics (one pure step over a classified answer, used by the
//!   controller's `decide` and the CLI alike), the ask with retries, and the CLI's poll loop.
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
    ask, ask_once, ask_with_retries, classify, decide, decide_record, record_with_retries,
    retry_after_failure, run_gate, step, AnswerCounts, AnswerKind, BlockKind, ClassifiedAnswer,
    ContractVerdict, GateAction, GateDecision, GatePolicy, GateProgress, GateStep, RecordStep,
};
pub use types::{
    CanIDeployRequest, Deployable, DeployedVersion, DeploymentRecord, Environment, Ignore,
    LatestBy, MatrixAnswer, MatrixQuery, MatrixTarget, RecordedDeployment, Selector, Summary,
    UndeploymentRecord,
};
