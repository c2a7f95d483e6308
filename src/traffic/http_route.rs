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
    track_labels, HttpRouteSpec, Rollout, RouteKind, Track, TrafficKind, TrafficSpec,
    LABEL_COMPARED, LABEL_ROLLOUT,
};

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
    let object = api.get(&spec.name).await?;
    let json = serde_json::to_value(&object).map_err(|e| RouteError::Unreadable {
        route: spec.name.clone(),
        reason: e.to_string(),
    })?;
    let patch = weight_patch(
        &HttpRoute::from_json(&spec.name, &json),
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
