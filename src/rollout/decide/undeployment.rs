//! What a deleted Rollout tells the Pact Broker: that the version it recorded as deployed
//! (`status.deploymentRecord`, once `recorded`) no longer runs in the environment, so
//! can-i-deploy stops counting it. A Rollout that records deployments
//! (`contractGate.recordDeployments`) carries the finalizer `tollgate.dev/undeployment` from its
//! first converge on, before anything is recorded; [`on_deletion`] says when it may go.
//!
//! The rule: a deletion never waits on the broker for long. A failed attempt (broker down, no
//! answer, a 5xx) is tried again every [`RETRY_EVERY`], each attempt bounded at
//! [`ATTEMPT_TIMEOUT`], until [`GIVE_UP_AFTER`] has passed since the deletion request; then a
//! Warning Event names what failed and the command that records it by hand, and the finalizer
//! goes. A deletion so waits at most about `GIVE_UP_AFTER + ATTEMPT_TIMEOUT`. What retrying
//! cannot fix (no contract gate any more, a credentials Secret the operator may not use, an
//! answer the broker will give again) is reported at once.
//!
//! A promotion needs no undeployment record: recording the new version on the same application
//! instance marks the one it replaces as undeployed in the broker. Only a version that stops
//! running without a successor (the Rollout is deleted) needs this.

use std::time::Duration;

use super::model::{EventKind, PlannedEvent};
use crate::crd::{Reason, RolloutSpec, RolloutStatus};

/// How soon a failed attempt is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Longest one attempt (the whole walk: index, environments, deployed versions, patch) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the deletion request failed attempts are tried again before the finalizer
/// goes anyway.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// How telling the broker went, for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndeployOutcome {
    /// The broker holds the version as no longer deployed there. `found`: it was deployed
    /// there until now (false: the broker already held it as undeployed, nothing was changed).
    Recorded { found: bool },
    /// The attempt failed in a way a later one may not (down, timeout, 5xx).
    Failed { reason: String },
    /// The attempt cannot be made or cannot succeed (no contract gate, credentials not
    /// allowed, a 4xx): trying again would not help.
    Refused { reason: String },
}

/// What a deleted Rollout does about its undeployment record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// Remove the finalizer.
    pub release: bool,
    /// Events to emit (after the finalizer went, so a failed write repeats none).
    pub events: Vec<PlannedEvent>,
    /// When to try again (while not released).
    pub retry_in: Option<Duration>,
}

/// Whether a Rollout with this spec records deployments, and so carries the finalizer.
pub fn records_deployments(spec: &RolloutSpec) -> bool {
    spec.contract_gate
        .as_ref()
        .is_some_and(|g| g.record_deployments)
}

/// The version to tell the broker about: the one `status.deploymentRecord` says was recorded.
/// `None`: nothing was recorded, so there is nothing to undo.
pub fn to_undeploy(status: Option<&RolloutStatus>) -> Option<&str> {
    status
        .and_then(|s| s.deployment_record.as_ref())
        .filter(|r| r.recorded)
        .map(|r| r.version.as_str())
}

/// The decision for a Rollout being deleted for `deleting_for` (since
/// `metadata.deletionTimestamp`), after this pass's attempt (`None`: none was made yet).
pub fn on_deletion(
    spec: &RolloutSpec,
    status: Option<&RolloutStatus>,
    outcome: Option<&UndeployOutcome>,
    deleting_for: Duration,
) -> Release {
    let Some(version) = to_undeploy(status) else {
        return Release {
            release: true,
            events: Vec::new(),
            retry_in: None,
        };
    };
    let record = status.and_then(|s| s.deployment_record.as_ref());
    let gate = spec.contract_gate.as_ref();
    let pacticipant = gate.map_or("<pacticipant>", |g| g.pacticipant.as_str());
    let environment = gate.map_or_else(
        || record.map_or("<environment>", |r| r.environment.as_str()),
        |g| g.environment.as_str(),
    );
    let instance = gate.and_then(|g| g.application_instance.as_deref());
    let shown_instance = instance
        .map(|i| format!(" (application instance {i})"))
        .unwrap_or_default();
    let released = |kind, reason, message| Release {
        release: true,
        events: vec![PlannedEvent {
            kind,
            reason,
            message,
        }],
        retry_in: None,
    };
    let by_hand = || {
        let instance = instance
            .map(|i| format!(" --application-instance {i}"))
            .unwrap_or_default();
        format!(
            "the finalizer is released; record it by hand: `tollgate record-undeployment \
             --pacticipant {pacticipant} --environment {environment}{instance} --version {version}`"
        )
    };
    match outcome {
        None => Release {
            release: false,
            events: Vec::new(),
            retry_in: Some(Duration::ZERO),
        },
        Some(UndeployOutcome::Recorded { found }) => {
            let already = if *found {
                ""
            } else {
                " (the broker already held it as not deployed there)"
            };
            released(
                EventKind::Normal,
                Reason::UndeploymentRecorded,
                format!(
                    "recorded in the broker: {pacticipant} {version} no longer runs in \
                     {environment}{shown_instance}{already}"
                ),
            )
        }
        Some(UndeployOutcome::Refused { reason }) => released(
            EventKind::Warning,
            Reason::UndeploymentRecordFailed,
            format!(
                "could not tell the broker that {pacticipant} {version} no longer runs in \
                 {environment}{shown_instance}: refused: {reason}; {}",
                by_hand()
            ),
        ),
        Some(UndeployOutcome::Failed { reason }) if deleting_for >= GIVE_UP_AFTER => released(
            EventKind::Warning,
            Reason::UndeploymentRecordFailed,
            format!(
                "could not tell the broker that {pacticipant} {version} no longer runs in \
                 {environment}{shown_instance} within {}s of the deletion: {reason}; {}",
                GIVE_UP_AFTER.as_secs(),
                by_hand()
            ),
        ),
        // Again in RETRY_EVERY, but no later than the bound, so the last attempt is made then.
        Some(UndeployOutcome::Failed { .. }) => Release {
            release: false,
            events: Vec::new(),
            retry_in: Some(RETRY_EVERY.min(GIVE_UP_AFTER.saturating_sub(deleting_for))),
        },
    }
}
