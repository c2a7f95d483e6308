//! `Rollout.spec.traffic`: how traffic is divided between stable and canary, and the Gateway
//! API route (HTTPRoute or GRPCRoute) whose weights the operator sets. Part of the spec
//! (`spec.rs`), kept apart so each file stays about one subject.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How traffic is split between stable and canary.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.type == 'HTTPRoute') == has(self.httpRoute)").message("spec.traffic.httpRoute must be set exactly when spec.traffic.type is HTTPRoute"))]
pub struct TrafficSpec {
    /// `ReplicaRatio` shifts traffic by the ratio of canary to stable pods behind one Service
    /// (works on any cluster; weights are rounded to whole pods). `HTTPRoute` sets the weights
    /// of a Gateway API HTTPRoute's backends.
    #[serde(default, rename = "type")]
    pub kind: TrafficKind,
    /// The HTTPRoute whose backend weights the operator sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<HttpRouteSpec>,
}

/// Ways to split traffic.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrafficKind {
    /// By replica counts.
    #[default]
    ReplicaRatio,
    /// By Gateway API HTTPRoute backend weights.
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
}

/// A Gateway API route (HTTPRoute or GRPCRoute) and the Services it routes to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.ruleIndexes) || self.ruleIndexes.all(i, self.ruleIndexes.filter(j, j == i).size() == 1)").message("spec.traffic.httpRoute.ruleIndexes must not repeat an index"))]
pub struct HttpRouteSpec {
    /// Kind of the route: `HTTPRoute` or `GRPCRoute` (gateway.networking.k8s.io/v1; both have
    /// `spec.rules[].backendRefs[]` with weights).
    #[serde(default)]
    pub kind: RouteKind,
    /// Name of the route in the Rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Index of the rule in `spec.rules` whose backends are weighted (when `ruleIndexes` is
    /// empty).
    #[serde(default)]
    #[schemars(range(min = 0, max = 15))]
    pub rule_index: i32,
    /// Indexes of several rules whose backends are all weighted alike (e.g. one rule per path
    /// or per gRPC method); replaces `ruleIndex` when set. Each must have both Services as
    /// backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(range(min = 0, max = 15)))]
    pub rule_indexes: Vec<i32>,
    /// Service that selects the stable pods.
    #[schemars(length(min = 1, max = 63))]
    pub stable_service: String,
    /// Service that selects the canary pods.
    #[schemars(length(min = 1, max = 63))]
    pub canary_service: String,
    /// Service port the backends use.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Kinds of Gateway API route whose backend weights tollgate sets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RouteKind {
    /// `gateway.networking.k8s.io/v1` HTTPRoute.
    #[default]
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    /// `gateway.networking.k8s.io/v1` GRPCRoute.
    #[serde(rename = "GRPCRoute")]
    GrpcRoute,
}

impl HttpRouteSpec {
    /// The rules weighted: `ruleIndexes`, or `ruleIndex` alone.
    pub fn rules(&self) -> Vec<i32> {
        if self.rule_indexes.is_empty() {
            vec![self.rule_index]
        } else {
            self.rule_indexes.clone()
        }
    }
}
