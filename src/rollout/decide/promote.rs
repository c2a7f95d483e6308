//! The end of a rollout: promotion (a last fleet check, the commit point
//! `status.stableVersion = spec.version`, then verifying the new stable fleet), rollback
//! (waiting for the canary to go), and the deployment records sent to the broker after either.

use std::time::Duration;

use super::gates::{fleet_failure_message, hold_on_unanswered};
use super::model::*;
use super::pass::{add, retry_delay, Pass};
use super::window;
use crate::crd::{Decision, DeploymentRecordStatus, Phase, Reason};

pub(super) fn apply_record_outcome(pass: &mut Pass<'_>) {
    let Some(outcome) = pass.obs.record.clone() else {
        return;
    };
    let now = pass.now;
    let Some(record) = pass.status.deployment_record.as_mut() else {
        return;
    };
    if record.recorded {
        return;
    }
    record.attempts = record.attempts.saturating_add(1);
    record.last_attempt_at = Some(now);
    let (version, environment) = (record.version.clone(), record.environment.clone());
    match outcome {
        RecordOutcome::Recorded => {
            record.recorded = true;
            record.recorded_at = Some(now);
            record.last_error = None;
            pass.event(
                EventKind::Normal,
                Reason::DeploymentRecorded,
                format!("recorded {version} as deployed to {environment} in the broker"),
            );
        }
        RecordOutcome::Failed { reason } => {
            record.last_error = Some(reason.clone());
            let attempts = record.attempts;
            pass.event(
                EventKind::Warning,
                Reason::DeploymentRecordFailed,
                format!("could not record {version} in the broker (attempt {attempts}, will retry): {reason}"),
            );
        }
    }
}

pub(super) fn schedule_record_retry(pass: &mut Pass<'_>) {
    if let Some(record) = &pass.status.deployment_record {
        if !record.recorded {
            let at = record
                .last_attempt_at
                .map_or(pass.now, |t| add(t, retry_delay(record.attempts)));
            pass.wake_at(at);
        }
    }
}

/// Ask for the deployment (or re-deployment) of `version` to be recorded in the broker.
pub(super) fn request_record(pass: &mut Pass<'_>, version: String) {
    let Some(gate) = &pass.spec.contract_gate else {
        return;
    };
    if !gate.record_deployments {
        return;
    }
    pass.status.deployment_record = Some(DeploymentRecordStatus {
        version,
        environment: gate.environment.clone(),
        ..Default::default()
    });
    pass.wake_in(Duration::ZERO);
}

/// The `Promoting` phase: before the commit point the fleet is checked once more; after it
/// the stable pods roll to the new version and the fleet is verified again.
pub(super) fn promoting(pass: &mut Pass<'_>) {
    let committed = pass.status.stable_version.as_deref() == Some(pass.spec.version.as_str());
    if committed {
        verify_promotion(pass);
    } else {
        commit_promotion(pass);
    }
}

/// This pass's fleet check, when the fleet check is on.
fn fleet_result(pass: &Pass<'_>) -> Option<FleetObservation> {
    pass.obs
        .fleet
        .clone()
        .filter(|_| pass.spec.fleet_check().enabled)
}

/// Before the commit point: a failing fleet rolls back; a passing one (or none configured)
/// makes `spec.version` the stable version.
fn commit_promotion(pass: &mut Pass<'_>) {
    let spec = pass.spec;
    match fleet_result(pass) {
        Some(f) if f.verdict != FleetVerdict::Passed && hold_on_unanswered(pass, &f) => {}
        Some(f) if f.verdict != FleetVerdict::Passed => {
            let message = fleet_failure_message(&f.status);
            pass.status.fleet = Some(f.status);
            pass.roll_back(
                Reason::FleetCheckFailed,
                format!("before promotion: {message}"),
            );
        }
        None if spec.fleet_check().enabled => pass.wake_in(POD_WAIT_REQUEUE),
        fleet => {
            if let Some(f) = fleet {
                pass.status.fleet = Some(f.status);
            }
            let previous = pass.status.stable_version.clone();
            window::open(pass, previous);
            pass.status.stable_version = Some(spec.version.clone());
            pass.status.rejected_version = None;
            let message = format!(
                "{} is now the stable version; rolling stable pods",
                spec.version
            );
            pass.say(Reason::PromotionCommitted, message.clone());
            pass.status.record(Decision::new(
                pass.now,
                Phase::Promoting,
                Reason::PromotionCommitted,
                message.clone(),
            ));
            pass.event(EventKind::Normal, Reason::PromotionCommitted, message);
            pass.wake_in(Duration::ZERO);
        }
    }
}

/// After the commit point: wait for the stable pods of the new version, check the fleet, and
/// rest in `Succeeded`. Nothing here can roll back any more.
fn verify_promotion(pass: &mut Pass<'_>) {
    let spec = pass.spec;
    let replicas = spec.replicas.max(1);
    if !pass.obs.children.stable.settled_at(&spec.version, replicas) {
        if pass.deadline_passed() {
            pass.say(
                Reason::PromotionStalled,
                format!(
                    "stable pods of {} not ready within progressDeadline",
                    spec.version
                ),
            );
        }
        pass.wake_in(POD_WAIT_REQUEUE);
        return;
    }
    if !window::held_ready(pass) {
        // The previous version's pods must be ready before the rollback window opens.
        pass.wake_in(POD_WAIT_REQUEUE);
        return;
    }
    match fleet_result(pass) {
        Some(f) if f.verdict != FleetVerdict::Passed => {
            let message = fleet_failure_message(&f.status);
            pass.status.fleet = Some(f.status);
            pass.say(
                Reason::PromotionNotVerified,
                format!("after promotion: {message}; checking again"),
            );
            pass.wake_in(POD_WAIT_REQUEUE);
        }
        None if spec.fleet_check().enabled => pass.wake_in(POD_WAIT_REQUEUE),
        fleet => {
            if let Some(f) = fleet {
                pass.status.fleet = Some(f.status);
            }
            pass.status.canary_version = None;
            pass.status.current_weight = 0;
            pass.status.current_step_index = None;
            pass.status.step_started_at = None;
            let window = window::start(pass).unwrap_or_default();
            pass.enter(
                Phase::Succeeded,
                Reason::Promoted,
                format!("{} is stable and every pod runs it{window}", spec.version),
            );
            request_record(pass, spec.version.clone());
        }
    }
}

pub(super) fn rolling_back(pass: &mut Pass<'_>) {
    if window::rolling_back(pass) {
        return;
    }
    let canary_gone = pass.obs.children.canary.is_gone() && pass.obs.children.baseline.is_gone();
    if canary_gone {
        let spec = pass.spec;
        // A superseded rollout starts over for the new version instead of resting.
        if pass.status.reason() == Some(Reason::Superseded) {
            pass.start(Reason::Started, format!("rolling out {}", spec.version));
            return;
        }
        let stable = pass.status.stable_version.clone().unwrap_or_default();
        pass.status.canary_version = None;
        pass.status.current_step_index = None;
        pass.status.step_started_at = None;
        let why = pass.status.message.clone().unwrap_or_default();
        // The rollback's own reason (AnalysisFailed, Aborted, ...) stays the reason at rest.
        let reason = pass.status.reason().unwrap_or(Reason::RolledBack);
        pass.enter(
            Phase::RolledBack,
            reason,
            format!("rolled back to {stable}: {why}"),
        );
        if !stable.is_empty() {
            request_record(pass, stable);
        }
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}
