//! The policy a Rollout names (`spec.policyRef`), read for one reconcile: the live policy
//! before the canary starts, the snapshot in `status.policy` from then until the attempt ends
//! (`rollout::policy::snapshot_in_force`). The merge itself is pure (`rollout::policy`); this
//! only fetches and hands back the effective Rollout, the snapshot to record, or the problem.
//!
//! A missing policy, a locked field overridden, or a merged spec that breaks the Rollout's rules
//! is a problem with the spec (`InvalidSpec`, naming the field and the policy), never an error
//! that retries: the controller's policy watches requeue the Rollout when the policy changes.

use kube::api::Api;
use kube::ResourceExt;

use crate::crd::{
    ClusterRolloutPolicy, PolicyKind, PolicySnapshot, Rollout, RolloutPolicy, RolloutPolicySpec,
};
use crate::rollout::decide::SpecProblem;
use crate::rollout::policy::{self, Policy};

use super::observe::ObserveError;

/// What a Rollout runs on this pass.
pub struct Resolution {
    /// The Rollout with its effective spec (the policy merged in), or as it is without one.
    pub rollout: Rollout,
    /// What `status.policy` is to hold (`None` without a policyRef).
    pub snapshot: Option<PolicySnapshot>,
    /// Why the Rollout cannot run (it holds as `InvalidSpec`).
    pub problem: Option<SpecProblem>,
}

impl Resolution {
    fn problem(rollout: &Rollout, message: String) -> Resolution {
        Resolution {
            rollout: rollout.clone(),
            snapshot: None,
            problem: Some(SpecProblem::new(message)),
        }
    }
}

/// Resolve the policy of `rollout` through `client`. Only a failing API call is an error.
pub async fn resolve(client: &kube::Client, rollout: &Rollout) -> Result<Resolution, ObserveError> {
    let Some(reference) = rollout.spec.policy_ref.clone() else {
        return Ok(Resolution {
            rollout: rollout.clone(),
            snapshot: None,
            problem: None,
        });
    };
    let name = rollout.name_any();
    if let Some(taken) = policy::snapshot_in_force(&rollout.spec, rollout.status.as_ref()) {
        let spec: RolloutPolicySpec = match serde_json::from_value(taken.spec.clone()) {
            Ok(spec) => spec,
            Err(e) => {
                return Ok(Resolution::problem(
                    rollout,
                    format!(
                        "status.policy.spec: the snapshot of {} {} cannot be read: {e}",
                        taken.kind, taken.name
                    ),
                ))
            }
        };
        let p = Policy {
            kind: taken.kind,
            name: &taken.name,
            spec: &spec,
        };
        return Ok(match policy::effective(&name, &rollout.spec, &p) {
            Ok(effective) => {
                let mut merged = rollout.clone();
                merged.spec = effective.spec;
                Resolution {
                    rollout: merged,
                    snapshot: Some(taken.clone()),
                    problem: None,
                }
            }
            Err(refusal) => {
                Resolution::problem(rollout, format!("spec.policyRef ({p}): {refusal}"))
            }
        });
    }
    let namespace = rollout.namespace().unwrap_or_default();
    let found: Option<(RolloutPolicySpec, Option<i64>)> = match reference.kind {
        PolicyKind::RolloutPolicy => Api::<RolloutPolicy>::namespaced(client.clone(), &namespace)
            .get_opt(&reference.name)
            .await?
            .map(|p| (p.spec, p.metadata.generation)),
        PolicyKind::ClusterRolloutPolicy => Api::<ClusterRolloutPolicy>::all(client.clone())
            .get_opt(&reference.name)
            .await?
            .map(|p| (p.spec.into(), p.metadata.generation)),
    };
    let Some((spec, generation)) = found else {
        let place = match reference.kind {
            PolicyKind::RolloutPolicy => format!(" in namespace {namespace}"),
            PolicyKind::ClusterRolloutPolicy => String::new(),
        };
        return Ok(Resolution::problem(
            rollout,
            format!(
                "spec.policyRef: {} {} not found{place}",
                reference.kind, reference.name
            ),
        ));
    };
    let p = Policy {
        kind: reference.kind,
        name: &reference.name,
        spec: &spec,
    };
    Ok(match policy::effective(&name, &rollout.spec, &p) {
        Ok(effective) => {
            let snapshot = policy::snapshot(&p, generation, &rollout.spec.version, &effective);
            let mut merged = rollout.clone();
            merged.spec = effective.spec;
            Resolution {
                rollout: merged,
                snapshot: Some(snapshot),
                problem: None,
            }
        }
        Err(refusal) => Resolution::problem(rollout, format!("spec.policyRef ({p}): {refusal}")),
    })
}
