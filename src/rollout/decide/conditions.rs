//! The Kubernetes conditions of a status: `Ready`, `Progressing`, `Reconciling` (the same as
//! `Progressing`, under the name kstatus reads) and `Stalled`, so `kubectl wait`, Argo CD and
//! Flux read health without custom code.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    Phase, RolloutStatus, CONDITION_PROGRESSING, CONDITION_READY, CONDITION_RECONCILING,
    CONDITION_STALLED,
};

/// `Ready`, `Progressing`, `Reconciling` (= `Progressing`, for kstatus) and `Stalled` for a
/// status; transition times only move when a condition's status changes, so nothing flaps.
/// `stalled_by_spec`: this decision holds on a problem with the Rollout as written, which only a
/// change can fix: `Stalled`, and not `Progressing`, whatever the phase.
pub(super) fn conditions_for(
    status: &RolloutStatus,
    previous: Option<&RolloutStatus>,
    now: Timestamp,
    stalled_by_spec: bool,
) -> Vec<Condition> {
    let reason = status
        .reason
        .clone()
        .unwrap_or_else(|| format!("{:?}", status.phase));
    let message = status.message.clone().unwrap_or_default();
    let ready = status.phase == Phase::Succeeded;
    let held = status.hold_reason.is_some() || stalled_by_spec;
    let stalled = matches!(status.phase, Phase::Blocked | Phase::RolledBack) || held;
    let progressing = !status.phase.is_terminal() && !held;
    let wanted = [
        (CONDITION_READY, ready),
        (CONDITION_PROGRESSING, progressing),
        (CONDITION_RECONCILING, progressing),
        (CONDITION_STALLED, stalled),
    ];
    let generation = status.observed_generation;
    wanted
        .into_iter()
        .map(|(kind, value)| {
            let value = if value { "True" } else { "False" };
            let since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == kind))
                .filter(|c| c.status == value)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: kind.to_string(),
                status: value.to_string(),
                reason: reason.clone(),
                message: message.clone(),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}
