//! Every machine-readable reason the operator writes: `status.reason`, the conditions' reason,
//! `status.history[].reason` and the reason of each Event. Serialized as the variant name
//! (CamelCase, the Kubernetes convention), so the strings in `status` are exactly these names.
//!
//! The status fields stay strings in the schema: a status written by another version of the
//! operator may carry a reason this one does not know, and must still be read. Read them
//! through [`RolloutStatus::reason`](super::RolloutStatus::reason), which gives `None` for an
//! unknown one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        /// A machine-readable reason (see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Reason {
            $( $(#[$doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The reason as written into status and Events.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }
    };
}

reasons! {
    /// A rollout of `spec.version` began.
    Started,
    /// `spec.version` moved on from a resting rollout: a new rollout began.
    NewVersion,
    /// `spec.version` changed mid-rollout: the old canary is removed before starting over.
    Superseded,
    /// `spec.retryRequest` changed: a rejected version is tried again.
    RetryRequested,
    /// `spec.retryRequest` changed while nothing was rejected.
    RetryIgnored,
    /// `spec.abortRequest` changed: the rollout was stopped.
    Aborted,
    /// `spec.abortRequest` changed while there was nothing to abort.
    AbortIgnored,
    /// `spec.resumeRequest` released a pause or a hold.
    Resumed,
    /// `spec.resumeRequest` changed while nothing waited for it.
    ResumeIgnored,
    /// `spec.promoteRequest` skipped the remaining steps.
    PromoteRequested,
    /// `spec.promoteRequest` changed while there was nothing to promote.
    PromoteIgnored,
    /// The Pact Broker says the version may be deployed.
    ContractGatePassed,
    /// The Pact Broker's answer would have blocked, but `spec.contractGate.dryRun` is set.
    ContractGateDryRun,
    /// The Pact Broker says the version may not be deployed.
    NotDeployable,
    /// The Pact Broker cannot tell yet (verification results missing).
    ContractUnknown,
    /// The Pact Broker could not be asked (connection, timeout, 5xx).
    BrokerUnreachable,
    /// The Pact Broker refused the question (credentials, unknown pacticipant or environment).
    BrokerRefused,
    /// No stable version yet: the version is deployed as the first stable one.
    InitialDeployment,
    /// Canary pods are being started.
    CanaryStarting,
    /// The canary pods are ready.
    CanaryReady,
    /// Pods did not become ready (or go away) within `spec.progressDeadline`.
    ProgressDeadlineExceeded,
    /// Every pod reports the version and configuration it should.
    FleetCheckPassed,
    /// A pod reports another version or configuration, or the fleet cannot be verified.
    FleetCheckFailed,
    /// Some pods have not answered the fleet check yet; asked again until the deadline.
    FleetUnanswered,
    /// Smoke requests are being sent to the canary pods.
    SmokeChecking,
    /// Every smoke request succeeded.
    SmokeChecksPassed,
    /// A smoke request failed.
    SmokeCheckFailed,
    /// The first step began.
    StepStarted,
    /// A `setWeight` step's pods are ready.
    WeightSet,
    /// A `setHeaderRoute` step sent requests with its headers to the canary.
    HeaderRouteSet,
    /// A `setHeaderRoute` step without `match` (or the end of the steps) removed a header route.
    HeaderRouteRemoved,
    /// A `pause` step's duration ended.
    PauseEnded,
    /// A `pause` step with a duration is waiting.
    Pausing,
    /// A `pause` step without duration waits for `spec.resumeRequest`.
    PausedAtStep,
    /// `spec.paused` holds the rollout where it is.
    Paused,
    /// An analysis step is gathering evidence.
    Analyzing,
    /// Every metric has evidence of health for this step.
    AnalysisPassed,
    /// A critical metric is proven worse than tolerated.
    AnalysisFailed,
    /// A critical metric's absolute guard failed: the canary's own rate is proven above the
    /// metric's `maxRate`, whatever the baseline's.
    MaxRateExceeded,
    /// No verdict by the step's end or `maxDuration`.
    AnalysisInconclusive,
    /// The judge's saved state could not be read: its sequential test started over.
    JudgeStateReset,
    /// The last step is done: promotion begins.
    StepsCompleted,
    /// `status.stableVersion` is now the new version (the commit point of a promotion).
    PromotionCommitted,
    /// The new stable pods are not ready within `spec.progressDeadline`.
    PromotionStalled,
    /// The fleet check after the promotion failed; checked again.
    PromotionNotVerified,
    /// The new version is stable and every pod runs it.
    Promoted,
    /// The canary was removed; stable serves everything.
    RolledBack,
    /// The deployment was recorded in the Pact Broker.
    DeploymentRecorded,
    /// Recording the deployment in the Pact Broker failed; retried.
    DeploymentRecordFailed,
    /// The Rollout took over the Deployment named by `spec.workloadRef` (its size recorded).
    Adopting,
    /// The Rollout's stable pods are ready and attested: the adopted Deployment is no longer
    /// needed (scaled to zero unless `scaleDown: never`).
    AdoptionCompleted,
    /// The scale-down delay after a promotion ended: the previous stable version's pods go, and
    /// abort no longer rolls back.
    ScaleDownDelayEnded,
    /// `spec.version` carries no commit, or a template image is given by a mutable tag: nobody
    /// can tell from it which build runs (`status.versionIdentity` lists what).
    VersionIdentity,
    /// The stable track could not take all traffic back (pods missing, not ready or not
    /// attested): the canary takes no traffic, or no more, until it can.
    RollbackNotReady,
    /// The Pact Broker was told a version no longer runs in the environment.
    UndeploymentRecorded,
    /// Telling the Pact Broker that a version no longer runs failed.
    UndeploymentRecordFailed,
    /// The Rollout cannot be carried out as written (a missing address, an invalid setting):
    /// nothing moves until it changes.
    InvalidSpec,
    /// A notification left the outbox undelivered: its destination is no longer configured.
    NotificationDropped,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason this version of the operator does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_and_serializes_as_its_name() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.as_str().into())
            );
        }
        assert!("NoSuchReason".parse::<Reason>().is_err());
    }
}
