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

/// A `setHeaderRoute` step: requests carrying the given headers go to the canary, whatever the
/// weight, through a rule tollgate adds to the route (`spec.traffic.httpRoute`). The same step
/// without `match` removes the header route of that name; every header route is removed when
/// the rollout leaves its steps (promotion, rollback, abort, a new version).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRouteStep {
    /// Name of the header route (a lowercase DNS label). The rule tollgate adds to the route
    /// is named `tollgate-header-<name>-<rule index>`; rules named `tollgate-header-...` are
    /// tollgate's and nothing else may use that prefix.
    #[schemars(length(min = 1, max = 40))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("spec.steps[].setHeaderRoute.name must be a lowercase DNS label (a-z, 0-9, '-')"))]
    pub name: String,
    /// Headers a request must all carry to go to the canary (an HTTPRoute header match of type
    /// `Exact` or `RegularExpression`, ANDed, added to each weighted rule's own matches).
    /// Leave it out to remove the header route named `name`.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub matches: Vec<HeaderMatch>,
}

/// One header a request must carry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Name of the header (an HTTP token, matched case-insensitively).
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9!#$%&*+.^_|~-]+$')").message("spec.steps[].setHeaderRoute.match[].headerName must be an HTTP header name"))]
    pub header_name: String,
    /// The value it must have.
    pub header_value: HeaderValueMatch,
}

/// How a header's value is matched: exactly one of `exact` or `regex`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.exact) != has(self.regex)").message("spec.steps[].setHeaderRoute.match[].headerValue: set exactly one of exact or regex"))]
pub struct HeaderValueMatch {
    /// The value, exactly (Gateway API `Exact`, core conformance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub exact: Option<String>,
    /// A regular expression over the value (Gateway API `RegularExpression`: its dialect and
    /// whether it is supported at all depend on the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub regex: Option<String>,
}

impl HeaderValueMatch {
    /// The Gateway API match type and value.
    pub fn gateway_api(&self) -> (&'static str, &str) {
        match (&self.exact, &self.regex) {
            (Some(v), _) => ("Exact", v),
            (None, Some(r)) => ("RegularExpression", r),
            (None, None) => ("Exact", ""),
        }
    }
}

impl SetHeaderRouteStep {
    /// The headers as one line, e.g. `X-Canary=yes, X-Team~=qa.*`.
    pub fn describe(&self) -> String {
        self.matches
            .iter()
            .map(|m| match m.header_value.gateway_api() {
                ("Exact", v) => format!("{}={v}", m.header_name),
                (_, v) => format!("{}~={v}", m.header_name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
