//! Traffic by replica ratio (`spec.traffic.type: ReplicaRatio`, any cluster): one Service named
//! after the Rollout selects the stable pods until the canary is verified, then every serving
//! pod of the Rollout, so the ratio of canary to stable pods is the traffic split. The canary's
//! pods replace stable ones, so the service keeps its size; weights round to whole pods.

use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};

use super::services::{rollout_name, service};
use super::{TrafficError, TrafficPlan, TrafficRequest, TrafficState};
use crate::crd::{track_labels, Rollout, Track, LABEL_ROLLOUT};
use std::collections::BTreeMap;

/// Pods per track: the canary's share of the service, the rest stable (all stable until the
/// canary serves).
pub fn plan(request: &TrafficRequest) -> TrafficPlan {
    let mut plan = TrafficPlan::sized_for(request);
    if request.canary_serving {
        plan.stable_replicas =
            (request.replicas - plan.canary_replicas - plan.baseline_replicas).max(0);
    }
    plan
}

/// The one Service clients use: stable pods only until the canary serves (with an adopted
/// Deployment's pods while they are the stable track), then every pod of the Rollout; during an
/// instant rollback the held previous version's pods only.
pub fn services(
    rollout: &Rollout,
    state: &TrafficState,
    template: Option<&PodTemplateSpec>,
) -> Result<Vec<Service>, TrafficError> {
    let name = rollout_name(rollout)?;
    let selector = match (&state.adopted_selector, state.canary_serving) {
        _ if state.held_serving => track_labels(&name, Track::Baseline),
        (_, true) => BTreeMap::from([(LABEL_ROLLOUT.to_string(), name.clone())]),
        (Some(adopted), false) => adopted.clone(),
        (None, false) => track_labels(&name, Track::Stable),
    };
    Ok(vec![service(rollout, name, selector, template, None)?])
}
