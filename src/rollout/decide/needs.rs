//! Which observations a pass must gather ([`needs`]): ask the broker when a poll is due, attest
//! the fleet once the pods settled, send the smoke requests, take an analysis look per interval,
//! record a deployment when its retry is due. A gate is only consulted when its answer can
//! change something.

use jiff::Timestamp;

use super::adoption;
use super::desired::{children_settled, desired_children};
use super::gates::next_ask;
use super::model::*;
use super::pass::{add, retry_delay, std_duration};
use crate::crd::{Phase, RolloutSpec, RolloutStatus};
use crate::gates::broker::GatePolicy;

/// Which observations this pass must gather.
pub fn needs(
    spec: &RolloutSpec,
    status: Option<&RolloutStatus>,
    children: &ChildrenState,
    now: Timestamp,
) -> Needs {
    let default = RolloutStatus::default();
    let status = status.unwrap_or(&default);
    let mut needs = Needs::default();
    let desired = desired_children(spec, status);
    // The adopted Deployment's pods are attested as stable pods while they are the stable track.
    let original = adoption::original_is_stable(spec, status, desired.canary.is_some());
    let superseded = status
        .canary_version
        .as_deref()
        .is_some_and(|v| v != spec.version)
        && !status.phase.is_terminal();

    if let Some(record) = &status.deployment_record {
        let due = status
            .deployment_record
            .as_ref()
            .and_then(|r| r.last_attempt_at)
            .is_none_or(|at| add(at, retry_delay(record.attempts)) <= now);
        if !record.recorded && due {
            needs.record = Some(record.version.clone());
        }
    }
    if superseded || super::identity::problem(spec).is_some() {
        return needs;
    }

    match status.phase {
        Phase::ContractGate => {
            if let Some(gate) = &spec.contract_gate {
                let policy = GatePolicy {
                    poll_interval: std_duration(&gate.poll_interval),
                    unknown_budget: std_duration(&gate.unknown_budget),
                    ..GatePolicy::default()
                };
                needs.ask_broker =
                    next_ask(status.contract_gate.as_ref(), &policy).is_none_or(|due| due <= now);
            }
        }
        Phase::FleetCheck if children_settled(&desired, children) => {
            needs.fleet = Some(FleetScope {
                canary_version: Some(spec.version.clone()),
                stable_version: status.stable_version.clone(),
                original,
            });
        }
        Phase::SmokeCheck => needs.smoke = true,
        Phase::Analyzing => {
            if let Some(analysis) = &spec.analysis {
                let a = status.analysis.as_ref();
                let start = a.and_then(|a| a.last_look_at.or(a.started_at));
                if let Some(start) = start {
                    let due = add(start, std_duration(&analysis.interval));
                    if due <= now {
                        needs.look = Some(LookWindow { start, end: now });
                    }
                }
            }
        }
        Phase::Promoting => {
            let committed = status.stable_version.as_deref() == Some(spec.version.as_str());
            if !committed {
                needs.fleet = Some(FleetScope {
                    canary_version: Some(spec.version.clone()),
                    stable_version: status.stable_version.clone(),
                    original,
                });
            } else if children
                .stable
                .settled_at(&spec.version, spec.replicas.max(1))
                && spec.fleet_check().enabled
            {
                needs.fleet = Some(FleetScope {
                    canary_version: None,
                    stable_version: Some(spec.version.clone()),
                    original,
                });
            }
            if !spec.fleet_check().enabled {
                needs.fleet = None;
            }
        }
        _ => {}
    }
    if !spec.fleet_check().enabled && status.phase == Phase::FleetCheck {
        needs.fleet = None;
    }
    if !fleet_check_due(status, now) {
        needs.fleet = None;
    }
    needs
}

/// A fleet check is due: none yet in this phase, or the last one is older than
/// [`POD_WAIT_REQUEUE`]. Every check writes its time into status, which wakes the controller
/// again; without this bound a failing check would repeat as fast as the API server answers.
pub(super) fn fleet_check_due(status: &RolloutStatus, now: Timestamp) -> bool {
    let Some(last) = status.fleet.as_ref().and_then(|f| f.checked_at) else {
        return true;
    };
    let this_phase = status.phase_started_at.is_some_and(|p| p > last);
    this_phase || add(last, POD_WAIT_REQUEUE) <= now
}
