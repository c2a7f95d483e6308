//! The end of a rollout: promotion (a last fleet check, the commit point
//! `status.stableVersion = spec.version`, then verifying the new stable fleet), rollback
//! (waiting for the canary to go), and the deployment records sent to the broker after either.

use std::time::Duration;

use super::gates::{fleet_failure_message, hold_on_unanswered};
use super::model::*;
use super::pass::{add, retry_delay, Pass};
use crate::crd::{Decision, DeploymentRecordStatus, GateVerdict, Phase};

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
                "DeploymentRecorded",
                format!("recorded {version} as deployed to {environment} in the broker"),
            );
        }
        RecordOutcome::Failed { reason } => {
            record.last_error = Some(reason.clone());
            let attempts = record.attempts;
            pass.event(
                EventKind::Warning,
                "DeploymentRecordFailed",
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

pub(super) fn promoting(pass: &mut Pass<'_>) {
    let spec = pass.spec;
    let committed = pass.status.stable_version.as_deref() == Some(spec.version.as_str());
    let fleet_enabled = spec.fleet_check.enabled;
    if !committed {
        // The fleet is checked once more before the canary version becomes stable.
        let verdict = if fleet_enabled {
            pass.obs.fleet.clone()
        } else {
            None
        };
        match verdict {
            Some(f) if f.verdict != GateVerdict::Passed && hold_on_unanswered(pass, &f) => {}
            Some(f) if f.verdict != GateVerdict::Passed => {
                let message = fleet_failure_message(&f);
                pass.status.fleet = Some(f);
                pass.roll_back("FleetCheckFailed", format!("before promotion: {message}"));
            }
            None if fleet_enabled => pass.wake_in(POD_WAIT_REQUEUE),
            fleet => {
                if let Some(f) = fleet {
                    pass.status.fleet = Some(f);
                }
                pass.status.stable_version = Some(spec.version.clone());
                pass.status.rejected_version = None;
                let message = format!(
                    "{} is now the stable version; rolling stable pods",
                    spec.version
                );
                pass.say("PromotionCommitted", message.clone());
                pass.status.record(Decision {
                    at: pass.now,
                    phase: Phase::Promoting,
                    reason: "PromotionCommitted".into(),
                    message: message.clone(),
                });
                pass.event(EventKind::Normal, "PromotionCommitted", message);
                pass.wake_in(Duration::ZERO);
            }
        }
        return;
    }

    let replicas = spec.replicas.max(1);
    if !pass.obs.children.stable.settled_at(&spec.version, replicas) {
        if pass.deadline_passed() {
            pass.say(
                "PromotionStalled",
                format!(
                    "stable pods of {} not ready within progressDeadline",
                    spec.version
                ),
            );
        }
        pass.wake_in(POD_WAIT_REQUEUE);
        return;
    }
    let fleet = if fleet_enabled {
        pass.obs.fleet.clone()
    } else {
        None
    };
    match fleet {
        Some(f) if f.verdict != GateVerdict::Passed => {
            let message = fleet_failure_message(&f);
            pass.status.fleet = Some(f);
            pass.say(
                "PromotionNotVerified",
                format!("after promotion: {message}; checking again"),
            );
            pass.wake_in(POD_WAIT_REQUEUE);
        }
        None if fleet_enabled => pass.wake_in(POD_WAIT_REQUEUE),
        fleet => {
            if let Some(f) = fleet {
                pass.status.fleet = Some(f);
            }
            pass.status.canary_version = None;
            pass.status.current_weight = 0;
            pass.status.current_step_index = None;
            pass.status.step_started_at = None;
            pass.enter(
                Phase::Succeeded,
                "Promoted",
                format!("{} is stable and every pod runs it", spec.version),
            );
            request_record(pass, spec.version.clone());
        }
    }
}

pub(super) fn rolling_back(pass: &mut Pass<'_>) {
    let canary_gone = pass.obs.children.canary.is_gone() && pass.obs.children.baseline.is_gone();
    if canary_gone {
        let spec = pass.spec;
        // A superseded rollout starts over for the new version instead of resting.
        if pass.status.reason.as_deref() == Some("Superseded") {
            pass.start("Started", format!("rolling out {}", spec.version));
            return;
        }
        let stable = pass.status.stable_version.clone().unwrap_or_default();
        pass.status.canary_version = None;
        pass.status.current_step_index = None;
        pass.status.step_started_at = None;
        let why = pass.status.message.clone().unwrap_or_default();
        let reason = pass
            .status
            .reason
            .clone()
            .unwrap_or_else(|| "RolledBack".into());
        pass.enter(
            Phase::RolledBack,
            &reason,
            format!("rolled back to {stable}: {why}"),
        );
        if !stable.is_empty() {
            request_record(pass, stable);
        }
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}
