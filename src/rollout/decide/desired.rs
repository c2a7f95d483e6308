//! The children and traffic a status calls for: which versions run on which track, how many
//! pods each gets (through the traffic kind's [`traffic::plan`]) and whether the canary serves.
//! Derived from spec and status alone, so it can be applied again on every pass. Also whether
//! the observed children are what was wanted ([`children_settled`]).

use crate::crd::{Phase, RolloutSpec, RolloutStatus, Step};
use crate::traffic::{self, TrafficRequest};

use super::model::{ChildSpec, ChildrenState, DesiredChildren, WorkloadState};
use super::{header_routes, window};

/// The children and traffic the spec and status call for.
pub fn desired_children(spec: &RolloutSpec, status: &RolloutStatus) -> DesiredChildren {
    let replicas = spec.replicas.max(1);
    let stable_version = status.stable_version.clone();
    let canary_version = status
        .canary_version
        .clone()
        .unwrap_or_else(|| spec.version.clone());
    let dedicated = spec.analysis.as_ref().is_some_and(|a| a.dedicated_baseline);

    // The previous stable version's pods kept after a promotion (see `window`).
    let held = window::held_version(status).map(|version| ChildSpec { version, replicas });
    let only_stable = |stable: Option<String>| DesiredChildren {
        stable: stable.map(|version| ChildSpec { version, replicas }),
        canary: None,
        baseline: held.clone(),
        canary_weight: 0,
        canary_serving: false,
        held_serving: window::held_serving(status),
        header_routes: Vec::new(),
    };

    let with_canary = |weight: i32, serving: bool| {
        let split = traffic::plan(
            &spec.traffic,
            &TrafficRequest {
                replicas,
                canary_weight: weight,
                canary_serving: serving,
                first_weight: first_weight(&spec.steps),
                baseline: dedicated && stable_version.is_some(),
            },
        );
        DesiredChildren {
            stable: stable_version.clone().map(|version| ChildSpec {
                version,
                replicas: split.stable_replicas,
            }),
            canary: Some(ChildSpec {
                version: canary_version.clone(),
                replicas: split.canary_replicas,
            }),
            baseline: (split.baseline_replicas > 0).then(|| ChildSpec {
                version: stable_version.clone().unwrap_or_default(),
                replicas: split.baseline_replicas,
            }),
            canary_weight: split.canary_weight,
            canary_serving: split.canary_serving,
            held_serving: false,
            header_routes: header_routes::in_force(status),
        }
    };

    match status.phase {
        Phase::Pending
        | Phase::ContractGate
        | Phase::Succeeded
        | Phase::RollingBack
        | Phase::RolledBack
        | Phase::Blocked => only_stable(stable_version.clone()),
        Phase::CanaryStarting | Phase::FleetCheck | Phase::SmokeCheck => with_canary(0, false),
        Phase::Analyzing => with_canary(status.current_weight, true),
        Phase::Promoting => {
            if stable_version.as_deref() == Some(spec.version.as_str()) {
                // Committed: the stable workload rolls to the new version at full size while
                // the canary keeps serving until stable is ready.
                let canary_serving = status.current_weight > 0;
                let mut plan = with_canary(status.current_weight, canary_serving);
                plan.stable = Some(ChildSpec {
                    version: spec.version.clone(),
                    replicas,
                });
                plan.baseline = held.clone();
                if !canary_serving {
                    // First deployment: there never was a canary.
                    plan.canary = None;
                }
                plan
            } else {
                with_canary(status.current_weight, status.current_weight > 0)
            }
        }
    }
}

/// Weight of the first `setWeight` step (the canary is started sized for it).
pub(super) fn first_weight(steps: &[Step]) -> i32 {
    steps.iter().find_map(|s| s.set_weight).unwrap_or(0)
}

fn track_settled(want: &Option<ChildSpec>, got: &WorkloadState) -> bool {
    match want {
        Some(c) => got.settled_at(&c.version, c.replicas),
        None => got.is_gone(),
    }
}

/// The canary and baseline run their versions with exactly their replicas ready (stable aside).
pub(super) fn canary_side_settled(desired: &DesiredChildren, children: &ChildrenState) -> bool {
    track_settled(&desired.canary, &children.canary)
        && track_settled(&desired.baseline, &children.baseline)
}

/// Every wanted child runs its version with exactly its replicas ready.
pub(super) fn children_settled(desired: &DesiredChildren, children: &ChildrenState) -> bool {
    canary_side_settled(desired, children)
        && desired
            .stable
            .as_ref()
            .is_none_or(|s| children.stable.settled_at(&s.version, s.replicas))
}
