//! Traffic by a Gateway API route (`spec.traffic.type: HTTPRoute`, an HTTPRoute or a GRPCRoute
//! by `httpRoute.kind`, one rule or several by `ruleIndexes`): each weighted rule sends
//! `100 - weight` percent to the stable Service and `weight` percent to the canary Service. The
//! route's weights split traffic, so stable keeps its full size; with a dedicated baseline the
//! canary Service also selects the baseline pods, which are as many as the canary's, so both
//! compared arms get equal traffic.
//!
//! The route itself belongs to the team (it has parents, hostnames and rules the operator knows
//! nothing about): the operator only reads it, finds the two backends by Service name, and
//! patches their weights with a JSON patch that tests each name first, so a route edited in
//! between is not patched blindly.
//!
//! Header routes (`setHeaderRoute` steps) are the one thing the operator adds: per weighted rule,
//! a rule named `tollgate-header-<name>-<index>` with that rule's matches plus the step's header
//! matches, whose only backend is the canary Service. A rule with more header matches takes
//! precedence over one with fewer (the Gateway API's rule precedence), so matching requests go
//! to the canary whatever the weights. The operator's rules are recognised by that name prefix
//! alone and always kept after the team's, so `ruleIndex` counts the team's rules; a patch of
//! them tests the route's `resourceVersion`, so a route edited in between is read again.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch as JsonPatch, PatchOperation, TestOperation};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Client;
use serde_json::Value;

use super::services::{rollout_name, service};
use super::{TrafficError, TrafficPlan, TrafficRequest, TrafficState};
use crate::crd::{
    track_labels, HttpRouteSpec, Rollout, RouteKind, SetHeaderRouteStep, Track, TrafficKind,
    TrafficSpec, LABEL_COMPARED, LABEL_ROLLOUT,
};

/// Name prefix of the rules the operator adds for header routes; no other rule may use it.
pub const HEADER_RULE_PREFIX: &str = "tollgate-header-";

/// Most rules a Gateway API route may have.
pub const MAX_ROUTE_RULES: usize = 16;

/// API group of the Gateway API.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// Version of the HTTPRoute resource used.
pub const VERSION: &str = "v1";
/// Kind of the resource.
pub const KIND: &str = "HTTPRoute";
/// Plural of the resource.
pub const PLURAL: &str = "httproutes";

/// Kind of the gRPC route resource.
pub const GRPC_KIND: &str = "GRPCRoute";
/// Plural of the gRPC route resource.
pub const GRPC_PLURAL: &str = "grpcroutes";

/// The Gateway API HTTPRoute resource.
pub fn http_route_resource() -> ApiResource {
    route_resource(RouteKind::HttpRoute)
}

/// The Gateway API resource of a route kind (HTTPRoute or GRPCRoute, both `v1`).
pub fn route_resource(kind: RouteKind) -> ApiResource {
    let (kind, plural) = match kind {
        RouteKind::HttpRoute => (KIND, PLURAL),
        RouteKind::GrpcRoute => (GRPC_KIND, GRPC_PLURAL),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// Why the route cannot be weighted as the spec says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The rule the spec names does not exist or has no backends.
    #[error("route {route} has no spec.rules[{rule}].backendRefs")]
    NoRule { route: String, rule: i32 },
    /// The rule has no backend of that Service.
    #[error("route {route} rule {rule} has no backendRef named {service}")]
    NoBackend {
        route: String,
        rule: i32,
        service: String,
    },
    /// The object read is not an HTTPRoute's JSON.
    #[error("route {route} cannot be read: {reason}")]
    Unreadable { route: String, reason: String },
    /// The header routes would take the route past the Gateway API's limit of rules.
    #[error(
        "route {route} has {have} rules of its own; the header routes of spec.steps[].setHeaderRoute \
         need {need} more and a route holds at most {MAX_ROUTE_RULES}"
    )]
    TooManyRules {
        route: String,
        have: usize,
        need: usize,
    },
}

/// One backend of a rule: the Service it names and its weight (absent: the Gateway API's
/// default of 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// The backend Service's name.
    pub name: String,
    /// Its weight, when set.
    pub weight: Option<i64>,
}

/// The part of an HTTPRoute the operator reads: its name and the backends of each rule, in
/// order (the order is what the patch addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// Name of the route.
    pub name: String,
    /// `spec.rules[i].backendRefs`, per rule; `None` for a rule without backends.
    pub rules: Vec<Option<Vec<BackendRef>>>,
}

impl HttpRoute {
    /// Read the route's rules from its JSON (`spec.rules[].backendRefs[].{name,weight}`).
    pub fn from_json(name: &str, route: &Value) -> HttpRoute {
        let rules = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|rule| {
                        rule.get("backendRefs")
                            .and_then(Value::as_array)
                            .map(|refs| refs.iter().map(backend_ref).collect())
                    })
                    .collect()
            })
            .unwrap_or_default();
        HttpRoute {
            name: name.to_string(),
            rules,
        }
    }

    /// The backends of rule `rule`.
    pub fn backends(&self, rule: i32) -> Result<&[BackendRef], RouteError> {
        usize::try_from(rule)
            .ok()
            .and_then(|r| self.rules.get(r))
            .and_then(|b| b.as_deref())
            .ok_or_else(|| RouteError::NoRule {
                route: self.name.clone(),
                rule,
            })
    }

    /// The weight of the backend named `service` in rule `rule` (`None`: unset or absent).
    pub fn weight(&self, rule: i32, service: &str) -> Option<i64> {
        self.backends(rule)
            .ok()?
            .iter()
            .find(|b| b.name == service)?
            .weight
    }
}

fn backend_ref(value: &Value) -> BackendRef {
    BackendRef {
        name: value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        weight: value.get("weight").and_then(Value::as_i64),
    }
}

/// The JSON patch that gives the stable backend `100 - weight` and the canary backend
/// `weight` in each of the spec's rules, each preceded by a test of the backend's name. Every
/// rule is checked before anything is patched: one missing backend patches none.
pub fn weight_patch(
    route: &HttpRoute,
    spec: &HttpRouteSpec,
    canary_weight: i32,
) -> Result<JsonPatch, RouteError> {
    let weight = canary_weight.clamp(0, 100);
    let mut ops = Vec::new();
    for rule in spec.rules() {
        let backends = route.backends(rule)?;
        for (service, w) in [
            (&spec.stable_service, 100 - weight),
            (&spec.canary_service, weight),
        ] {
            let index = backends
                .iter()
                .position(|b| b.name == *service)
                .ok_or_else(|| RouteError::NoBackend {
                    route: route.name.clone(),
                    rule,
                    service: service.clone(),
                })?;
            let at = |field: &str| {
                PointerBuf::from_tokens([
                    "spec".to_string(),
                    "rules".to_string(),
                    rule.to_string(),
                    "backendRefs".to_string(),
                    index.to_string(),
                    field.to_string(),
                ])
            };
            ops.push(PatchOperation::Test(TestOperation {
                path: at("name"),
                value: Value::String(service.clone()),
            }));
            ops.push(PatchOperation::Add(AddOperation {
                path: at("weight"),
                value: Value::from(w),
            }));
        }
    }
    Ok(JsonPatch(ops))
}

/// The route to weight: `spec.traffic.httpRoute` when the traffic kind is `HTTPRoute`.
pub fn weighted_route(traffic: &TrafficSpec) -> Option<&HttpRouteSpec> {
    match traffic.kind {
        TrafficKind::HttpRoute => traffic.http_route.as_ref(),
        TrafficKind::ReplicaRatio => None,
    }
}

/// Pods per track: the canary sized for its weight (the first step's before it serves); stable
/// keeps its full size, since the route's weights do the split.
pub fn plan(request: &TrafficRequest) -> TrafficPlan {
    TrafficPlan::sized_for(request)
}

/// The route's stable and canary Services: stable pods, and both compared arms (canary and,
/// with a dedicated baseline, baseline).
pub fn services(
    rollout: &Rollout,
    route: &HttpRouteSpec,
    state: &TrafficState,
    template: Option<&PodTemplateSpec>,
) -> Result<Vec<Service>, TrafficError> {
    let name = rollout_name(rollout)?;
    // An adopted Deployment's pods are stable pods while they are the stable track.
    let stable = state
        .adopted_selector
        .clone()
        .unwrap_or_else(|| track_labels(&name, Track::Stable));
    let compared = BTreeMap::from([
        (LABEL_ROLLOUT.to_string(), name.clone()),
        (LABEL_COMPARED.to_string(), "true".to_string()),
    ]);
    Ok(vec![
        service(
            rollout,
            route.stable_service.clone(),
            stable,
            template,
            Some(route.port),
        )?,
        service(
            rollout,
            route.canary_service.clone(),
            compared,
            template,
            Some(route.port),
        )?,
    ])
}

/// Read the route, then patch its weights (see [`weight_patch`]).
pub async fn set_weights(
    client: &Client,
    namespace: &str,
    spec: &HttpRouteSpec,
    canary_weight: i32,
) -> Result<(), TrafficError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &route_resource(spec.kind));
    let route = route_json(spec, &api.get(&spec.name).await?)?;
    patch_weights(&api, spec, &route, canary_weight).await
}

/// The route object as JSON, the form the patch builders read.
fn route_json(spec: &HttpRouteSpec, object: &DynamicObject) -> Result<Value, TrafficError> {
    serde_json::to_value(object).map_err(|e| {
        RouteError::Unreadable {
            route: spec.name.clone(),
            reason: e.to_string(),
        }
        .into()
    })
}

/// Patch the weights of `route` (as read or as last patched) to `canary_weight`.
async fn patch_weights(
    api: &Api<DynamicObject>,
    spec: &HttpRouteSpec,
    route: &Value,
    canary_weight: i32,
) -> Result<(), TrafficError> {
    let patch = weight_patch(
        &HttpRoute::from_json(&spec.name, route),
        spec,
        canary_weight,
    )?;
    api.patch(
        &spec.name,
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await?;
    Ok(())
}

/// Whether a rule of the route (its JSON) is one the operator added for a header route.
pub fn is_header_rule(rule: &Value) -> bool {
    rule.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with(HEADER_RULE_PREFIX))
}

/// The rules the header routes in force call for: for each header route and each weighted rule
/// of the team's (`team_rules`, the route's rules without the operator's), the weighted rule's
/// matches (or one match of everything) each with the header matches added (replacing the
/// team's match of the same header name), and the canary Service as the only backend.
pub fn header_rules(
    route: &str,
    team_rules: &[Value],
    spec: &HttpRouteSpec,
    routes: &[SetHeaderRouteStep],
) -> Result<Vec<Value>, RouteError> {
    let mut rules = Vec::new();
    for header_route in routes.iter().filter(|r| !r.matches.is_empty()) {
        let ours: Vec<Value> = header_route
            .matches
            .iter()
            .map(|m| {
                let (kind, value) = m.header_value.gateway_api();
                serde_json::json!({"type": kind, "name": m.header_name, "value": value})
            })
            .collect();
        for index in spec.rules() {
            let rule = usize::try_from(index)
                .ok()
                .and_then(|i| team_rules.get(i))
                .ok_or_else(|| RouteError::NoRule {
                    route: route.to_string(),
                    rule: index,
                })?;
            let team_matches = rule
                .get("matches")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
                .cloned()
                .unwrap_or_else(|| vec![serde_json::json!({})]);
            let matches: Vec<Value> = team_matches
                .into_iter()
                .map(|mut m| {
                    let mut headers: Vec<Value> = m
                        .get("headers")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    headers.retain(|h| {
                        let name = h.get("name").and_then(Value::as_str).unwrap_or_default();
                        !header_route
                            .matches
                            .iter()
                            .any(|o| o.header_name.eq_ignore_ascii_case(name))
                    });
                    headers.extend(ours.iter().cloned());
                    if let Some(object) = m.as_object_mut() {
                        object.insert("headers".into(), Value::Array(headers));
                    }
                    m
                })
                .collect();
            rules.push(serde_json::json!({
                "name": format!("{HEADER_RULE_PREFIX}{}-{index}", header_route.name),
                "matches": matches,
                "backendRefs": [{"group": "", "kind": "Service", "name": spec.canary_service,
                                 "port": spec.port, "weight": 1}],
            }));
        }
    }
    Ok(rules)
}

/// Whether `want` is `have` up to what the API server fills in: every member of an object in
/// `want` is in `have` alike, arrays element by element (defaults such as a match's path or a
/// backend's group are only in `have`).
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        _ => want == have,
    }
}

/// The JSON patch that makes the route's header rules those `routes` call for: the team's
/// rules untouched and first, the operator's after them. `None` when the route already has
/// them (so converging again writes nothing), including when there are none and none are
/// wanted. The patch tests the route's `resourceVersion` first.
pub fn header_route_patch(
    name: &str,
    route: &Value,
    spec: &HttpRouteSpec,
    routes: &[SetHeaderRouteStep],
) -> Result<Option<JsonPatch>, RouteError> {
    let rules: Vec<Value> = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (ours_now, team): (Vec<Value>, Vec<Value>) =
        rules.iter().cloned().partition(is_header_rule);
    let wanted = header_rules(name, &team, spec, routes)?;
    // The team's rules first, the operator's after them.
    let in_order = rules.iter().take(team.len()).all(|r| !is_header_rule(r));
    if in_order && subset(&Value::Array(wanted.clone()), &Value::Array(ours_now)) {
        return Ok(None);
    }
    if team.len() + wanted.len() > MAX_ROUTE_RULES {
        return Err(RouteError::TooManyRules {
            route: name.to_string(),
            have: team.len(),
            need: wanted.len(),
        });
    }
    let version = route
        .pointer("/metadata/resourceVersion")
        .cloned()
        .ok_or_else(|| RouteError::Unreadable {
            route: name.to_string(),
            reason: "no metadata.resourceVersion".into(),
        })?;
    let mut all = team;
    all.extend(wanted);
    Ok(Some(JsonPatch(vec![
        PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
            value: version,
        }),
        PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["spec", "rules"]),
            value: Value::Array(all),
        }),
    ])))
}

/// Converge the route: its header rules to `routes` (see [`header_route_patch`]), then its
/// weights (see [`set_weights`]).
pub async fn converge(
    client: &Client,
    namespace: &str,
    spec: &HttpRouteSpec,
    canary_weight: i32,
    routes: &[SetHeaderRouteStep],
) -> Result<(), TrafficError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &route_resource(spec.kind));
    let mut route = route_json(spec, &api.get(&spec.name).await?)?;
    if let Some(patch) = header_route_patch(&spec.name, &route, spec, routes)? {
        // the patched object is the route now: the weights are patched on it, with no
        // second read
        let patched = api
            .patch(
                &spec.name,
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await?;
        route = route_json(spec, &patched)?;
    }
    patch_weights(&api, spec, &route, canary_weight).await
}
