//! Adopting a Deployment a team already runs (`spec.workloadRef`): who may adopt it, when its
//! size is recorded, how many pods it keeps while the Rollout's own stable pods come up
//! (`scaleDown: never | onSuccess | progressively`, Argo Rollouts' semantics), whether its pods
//! count as the stable track, and what deleting the Rollout gives back.
//!
//! The rule every mode keeps: the adopted Deployment serves until the Rollout's stable pods
//! are ready and attested by the fleet check (the rollout entered `Succeeded`). Only then is the
//! adoption complete, and only `onSuccess` and `progressively` then scale it to zero;
//! `progressively` also gives up one of its pods for each ready stable pod before that, so the
//! ready pods of both never number fewer than it had, and it keeps one pod until the
//! attestation. Its size before the Rollout touched it is recorded in `status.adoption` before
//! anything is scaled (the status is written before the children are converged), and it is what
//! deleting the Rollout restores.

use std::time::Duration;

use jiff::Timestamp;

use super::model::*;
use super::pass::Pass;
use crate::crd::{AdoptionStatus, Phase, Reason, RolloutSpec, RolloutStatus, ScaleDown};

/// How long a deleted Rollout waits for the restored Deployment's pods to be ready before it
/// lets go anyway (a Deployment that cannot start must not keep the Rollout forever).
pub const RESTORE_WAIT: Duration = Duration::from_secs(120);

/// Why `spec.workloadRef` cannot be adopted by `rollout`: the Deployment belongs to tollgate
/// (a Rollout's own child), is adopted by another Rollout, or another Rollout referenced it
/// first. `referrers` are the other Rollouts of the namespace naming the same Deployment, with
/// their creation times; the oldest one (then the first name) may adopt it.
pub fn adoption_problem(
    rollout: &str,
    created: Option<Timestamp>,
    original: &OriginalWorkload,
    referrers: &[(String, Option<Timestamp>)],
) -> Option<SpecProblem> {
    let name = &original.name;
    if original.owned_by_tollgate {
        return Some(SpecProblem::new(format!(
            "spec.workloadRef.name: Deployment {name} is a workload tollgate owns (a Rollout's \
             own track); name the Deployment the team runs"
        )));
    }
    match original.adopted_by.as_deref() {
        Some(owner) if owner == rollout => return None,
        Some(owner) => {
            return Some(SpecProblem::new(format!(
                "spec.workloadRef.name: Deployment {name} is already adopted by Rollout {owner}"
            )))
        }
        None => {}
    }
    let me = (created, rollout);
    let first = referrers
        .iter()
        .filter(|(other, _)| other != rollout)
        .find(|(other, at)| (*at, other.as_str()) < me);
    first.map(|(other, _)| {
        SpecProblem::new(format!(
            "spec.workloadRef.name: Deployment {name} is also referenced by Rollout {other}, \
             which was there first; one Deployment is adopted by one Rollout"
        ))
    })
}

/// Record the adoption the first time the referenced Deployment is seen, and complete it once
/// the stable pods are ready and attested (the rollout rests in `Succeeded`).
pub(super) fn track(pass: &mut Pass<'_>) {
    let (Some(reference), Some(original)) = (&pass.spec.workload_ref, &pass.obs.original) else {
        return;
    };
    if original.name != reference.name {
        return;
    }
    let recorded = pass
        .status
        .adoption
        .as_ref()
        .is_some_and(|a| a.deployment == reference.name);
    if !recorded {
        pass.status.adoption = Some(AdoptionStatus {
            deployment: reference.name.clone(),
            original_replicas: original.replicas.max(0),
            completed_at: None,
        });
        pass.event(
            EventKind::Normal,
            Reason::Adopting,
            format!(
                "adopting Deployment {} ({} replicas, scaleDown {}): it serves until the stable \
                 pods are ready and attested",
                reference.name,
                original.replicas.max(0),
                mode_name(reference.scale_down)
            ),
        );
    }
    let attested = pass.status.phase == Phase::Succeeded && pass.status.stable_version.is_some();
    let now = pass.now;
    if let Some(adoption) = pass.status.adoption.as_mut() {
        if attested && adoption.completed_at.is_none() {
            adoption.completed_at = Some(now);
            let then = match reference.scale_down {
                ScaleDown::Never => "left running as it is (scaleDown never)",
                ScaleDown::OnSuccess | ScaleDown::Progressively => "scaled to zero",
            };
            let message = format!(
                "the stable pods are ready and attested: Deployment {} is {then}",
                reference.name
            );
            pass.event(EventKind::Normal, Reason::AdoptionCompleted, message);
        }
    }
}

fn mode_name(mode: ScaleDown) -> &'static str {
    match mode {
        ScaleDown::Never => "never",
        ScaleDown::OnSuccess => "onSuccess",
        ScaleDown::Progressively => "progressively",
    }
}

/// The adoption of the Deployment `spec.workloadRef` names, when it is the one recorded.
fn current<'a>(spec: &RolloutSpec, status: &'a RolloutStatus) -> Option<&'a AdoptionStatus> {
    let reference = spec.workload_ref.as_ref()?;
    status
        .adoption
        .as_ref()
        .filter(|a| a.deployment == reference.name)
}

/// Replicas the adopted Deployment should have (None: leave it alone). `stable_ready` is the
/// count of ready pods of the Rollout's stable track.
pub fn original_replicas(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    stable_ready: i32,
) -> Option<i32> {
    let adoption = current(spec, status)?;
    let mode = spec.workload_ref.as_ref()?.scale_down;
    let had = adoption.original_replicas.max(0);
    let done = adoption.completed_at.is_some();
    match mode {
        ScaleDown::Never => None,
        ScaleDown::OnSuccess => Some(if done { 0 } else { had }),
        ScaleDown::Progressively if done => Some(0),
        // One pod less per ready stable pod, but one kept until the attestation.
        ScaleDown::Progressively => Some((had - stable_ready.max(0)).clamp(had.min(1), had)),
    }
}

/// Whether the adopted Deployment's pods are part of the stable track (traffic and fleet
/// check): while the adoption is not complete and no canary runs beside them (the stable
/// Service then selects the adopted Deployment's pods too).
pub fn original_is_stable(spec: &RolloutSpec, status: &RolloutStatus, canary: bool) -> bool {
    current(spec, status).is_some_and(|a| a.completed_at.is_none()) && !canary
}

/// What a deleted Rollout does with the Deployment it adopted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// Scale the Deployment back to this size first (None: it is as it was).
    pub restore_to: Option<i32>,
    /// Let the Rollout go (remove the finalizer and the adoption mark).
    pub release: bool,
}

/// The deletion of a Rollout that adopted a Deployment: scale it back to its recorded size,
/// and let go once its pods are ready again, or after [`RESTORE_WAIT`], or at once when there
/// is nothing to give back (no adoption recorded, or the Deployment is gone).
pub fn on_deletion(
    status: Option<&RolloutStatus>,
    original: Option<&OriginalWorkload>,
    deleting_for: Duration,
) -> Release {
    let adoption = status.and_then(|s| s.adoption.as_ref());
    let (Some(adoption), Some(original)) = (adoption, original) else {
        return Release {
            restore_to: None,
            release: true,
        };
    };
    if adoption.deployment != original.name {
        return Release {
            restore_to: None,
            release: true,
        };
    }
    let want = adoption.original_replicas.max(0);
    let restore_to = (original.replicas != want).then_some(want);
    let ready = original.replicas == want && original.ready >= want;
    Release {
        restore_to,
        release: ready || deleting_for >= RESTORE_WAIT,
    }
}
