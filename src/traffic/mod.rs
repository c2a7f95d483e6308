//! How traffic is divided between the stable and the canary version, for every traffic kind
//! (`spec.traffic.type`).
//!
//! - [`plan`] (pure): given how many pods the service runs, the canary's weight and whether
//!   canary pods may serve yet, the pods each track runs and the weight to set. `decide` calls it
//!   when it works out the children a status calls for.
//! - [`apply`] (I/O): the Services that clients (or the route's backends) use, and the traffic
//!   kind's own object (an HTTPRoute's weights). The runtime calls it before it scales pods, so a
//!   rollback takes traffic off the canary before its pods go.
//!
//! One module per kind: [`replica_ratio`] (one Service over every serving pod, so the ratio of
//! pods is the split) and [`http_route`] (a Gateway API HTTPRoute's backend weights over a stable
//! and a canary Service). A new traffic backend is a new `TrafficKind` in `crd` and a module
//! here, dispatched in [`plan`] and [`apply`]; nothing outside `crd` and this module changes.

pub mod http_route;
pub mod replica_ratio;
mod services;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::crd::{Rollout, SetHeaderRouteStep, TrafficKind, TrafficSpec, FIELD_MANAGER};

pub use http_route::RouteError;

/// What the rollout asks of traffic at one point of its pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficRequest {
    /// Pods the service runs when fully promoted.
    pub replicas: i32,
    /// Percent of traffic for the canary once it serves.
    pub canary_weight: i32,
    /// Whether canary (and baseline) pods may receive traffic at all: not before the fleet and
    /// smoke checks verified them.
    pub canary_serving: bool,
    /// The weight the canary is sized for before it serves (the first `setWeight` step), so
    /// the pods that are verified are the pods that will serve.
    pub first_weight: i32,
    /// Run a dedicated baseline of the stable version beside the canary, as large as it.
    pub baseline: bool,
}

/// The pods each track runs and the traffic the kind sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficPlan {
    /// Pods of the stable workload.
    pub stable_replicas: i32,
    /// Pods of the canary workload.
    pub canary_replicas: i32,
    /// Pods of the dedicated baseline (0: none).
    pub baseline_replicas: i32,
    /// Percent of traffic for the canary (HTTPRoute weights; informational for replica ratio).
    pub canary_weight: i32,
    /// Whether canary (and baseline) pods may receive traffic.
    pub canary_serving: bool,
}

/// What [`apply`] carries out: the weight and whether the canary serves.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TrafficState {
    /// Percent of traffic for the canary.
    pub canary_weight: i32,
    /// Whether canary (and baseline) pods may receive traffic.
    pub canary_serving: bool,
    /// An instant rollback: every request goes to the baseline pods (the previous stable
    /// version, held after a promotion), none to the stable or canary ones.
    pub held_serving: bool,
    /// While a Deployment adopted through `spec.workloadRef` is the stable track (no canary
    /// beside it): its `matchLabels`, which select its pods and the Rollout's stable pods alike
    /// (they come from the same template). The stable Service selects these instead of the
    /// stable track's labels, so both serve.
    pub adopted_selector: Option<BTreeMap<String, String>>,
    /// Header routes to the canary in force (`setHeaderRoute` steps): a rule each on the
    /// HTTPRoute; none removes the operator's rules.
    pub header_routes: Vec<SetHeaderRouteStep>,
}

/// Canary pods for a traffic weight: the share of `replicas`, rounded up, at least one.
pub fn canary_replicas(replicas: i32, weight: i32) -> i32 {
    let weight = weight.clamp(0, 100);
    let share = (i64::from(replicas) * i64::from(weight) + 99) / 100;
    (share as i32).clamp(1, replicas.max(1))
}

impl TrafficPlan {
    /// What every kind starts from: the canary sized for its weight (the first step's before
    /// it serves), a baseline as large when asked, the weight set once the canary serves, and
    /// stable at full size. A kind whose split is the ratio of pods takes the canary's pods out
    /// of stable's.
    fn sized_for(request: &TrafficRequest) -> TrafficPlan {
        let sizing_weight = if request.canary_serving {
            request.canary_weight
        } else {
            request.first_weight
        };
        let canary = canary_replicas(request.replicas, sizing_weight);
        TrafficPlan {
            stable_replicas: request.replicas,
            canary_replicas: canary,
            baseline_replicas: if request.baseline { canary } else { 0 },
            canary_weight: if request.canary_serving {
                request.canary_weight
            } else {
                0
            },
            canary_serving: request.canary_serving,
        }
    }
}

/// The pods and traffic `request` calls for under `traffic`'s kind.
pub fn plan(traffic: &TrafficSpec, request: &TrafficRequest) -> TrafficPlan {
    match traffic.kind {
        TrafficKind::ReplicaRatio => replica_ratio::plan(request),
        TrafficKind::HttpRoute => http_route::plan(request),
    }
}

/// Why traffic could not be set.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The Rollout has no name or namespace.
    #[error("the Rollout has no name or namespace")]
    Unnamed,
    /// The HTTPRoute does not have the backends the spec names.
    #[error("spec.traffic.httpRoute: {0}")]
    Route(#[from] RouteError),
    /// The Kubernetes API failed (conflicts included: the next pass applies again).
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl TrafficError {
    /// Whether waiting and retrying can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, TrafficError::Kube(_))
    }
}

/// The Services `rollout`'s traffic kind needs in `state`, on the pod template's ports.
pub fn services(
    rollout: &Rollout,
    state: &TrafficState,
    template: Option<&PodTemplateSpec>,
) -> Result<Vec<Service>, TrafficError> {
    match http_route::weighted_route(&rollout.spec.traffic) {
        Some(route) => http_route::services(rollout, route, state, template),
        None => replica_ratio::services(rollout, state, template),
    }
}

/// Converge traffic to `state`: server-side apply the Services, then set the kind's own
/// weights and header rules (an HTTPRoute's, read-modify-patch).
pub async fn apply(
    client: &Client,
    rollout: &Rollout,
    state: &TrafficState,
    template: Option<&PodTemplateSpec>,
) -> Result<(), TrafficError> {
    let namespace = rollout.namespace().ok_or(TrafficError::Unnamed)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    for service in services(rollout, state, template)? {
        let name = service.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&service)).await?;
    }
    converge_route(client, rollout, state).await
}

/// Set the traffic kind's own weights and header rules (an HTTPRoute's, read-modify-patch;
/// nothing for replica ratio): [`apply`] without the Services, for a caller that applies the
/// Services of [`services`] itself (the reconcile skips those that carry what it asks).
pub async fn converge_route(
    client: &Client,
    rollout: &Rollout,
    state: &TrafficState,
) -> Result<(), TrafficError> {
    let namespace = rollout.namespace().ok_or(TrafficError::Unnamed)?;
    match http_route::weighted_route(&rollout.spec.traffic) {
        Some(route) => {
            // The canary Service selects the compared arms, the held baseline pods among them
            // (the canary has none left during an instant rollback).
            let weight = if state.held_serving {
                100
            } else {
                state.canary_weight
            };
            http_route::converge(client, &namespace, route, weight, &state.header_routes).await
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
