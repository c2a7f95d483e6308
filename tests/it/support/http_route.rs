//! The Gateway API HTTPRoute `demo` of the e2e tests: created with all traffic on stable, as a team
//! would have it before adopting tollgate, and read back as `(stable, canary)` weights.

use kube::api::{Api, PostParams};
use serde_json::json;

use tollgate::crd::RouteKind;
use tollgate::traffic::http_route::{
    http_route_resource, is_header_rule, route_resource, HttpRoute,
};

use super::cluster::TestNamespace;
use super::rollout_manifest::NAME;

/// The HTTPRoute `demo`, all traffic to stable, as a team would have it before adopting tollgate.
pub async fn create_http_route(ns: &TestNamespace) {
    let routes: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &http_route_resource());
    let route: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": NAME},
        "spec": {
            "parentRefs": [{"name": "shared-gateway"}],
            "rules": [{"backendRefs": [
                {"name": "demo-stable", "port": 8080, "weight": 100},
                {"name": "demo-canary", "port": 8080, "weight": 0}
            ]}]
        }
    }))
    .expect("route manifest");
    routes
        .create(&PostParams::default(), &route)
        .await
        .expect("create the HTTPRoute");
}

/// `(stable, canary)` weights of the route's first rule.
pub async fn route_weights(ns: &TestNamespace) -> Option<(i64, i64)> {
    let routes: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &http_route_resource());
    let route = routes.get(NAME).await.ok()?;
    let route = HttpRoute::from_json(NAME, &serde_json::to_value(&route).ok()?);
    Some((
        route.weight(0, "demo-stable")?,
        route.weight(0, "demo-canary")?,
    ))
}

/// The GRPCRoute `demo`: all traffic to stable, one rule for the service's methods.
pub async fn create_grpc_route(ns: &TestNamespace) {
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &route_resource(RouteKind::GrpcRoute),
    );
    let route: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": NAME},
        "spec": {
            "parentRefs": [{"name": "shared-gateway"}],
            "rules": [{"matches": [{"method": {"service": "demo.Shop"}}], "backendRefs": [
                {"name": "demo-stable", "port": 8080, "weight": 100},
                {"name": "demo-canary", "port": 8080, "weight": 0}
            ]}]
        }
    }))
    .expect("route manifest");
    routes
        .create(&PostParams::default(), &route)
        .await
        .expect("create the GRPCRoute");
}

/// The route `demo` of `kind` as JSON.
pub async fn route_json(ns: &TestNamespace, kind: RouteKind) -> serde_json::Value {
    let routes: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &route_resource(kind));
    serde_json::to_value(routes.get(NAME).await.expect("read the route")).expect("route json")
}

/// The route `demo` of `kind` once the promotion has reached it: all traffic on stable and no
/// header rule of tollgate's left (polled for up to 20 s). The status is written before the
/// children and the route converge (status is the record), so the route write may follow the
/// status a moment later; the last read is returned either way, for the test to assert on.
pub async fn route_after_promotion(ns: &TestNamespace, kind: RouteKind) -> serde_json::Value {
    let mut route = route_json(ns, kind).await;
    for _ in 0..100 {
        let parsed = HttpRoute::from_json(NAME, &route);
        let rules = route["spec"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // The header rules are tollgate's and go at promotion; the team's rule comes back to 100/0.
        let header_rules_left = rules.iter().filter(|r| is_header_rule(r)).count();
        let team_rule = rules.iter().position(|r| !is_header_rule(r));
        if let Some(i) = team_rule.and_then(|i| i32::try_from(i).ok()) {
            if header_rules_left == 0
                && parsed.weight(i, "demo-stable") == Some(100)
                && parsed.weight(i, "demo-canary") == Some(0)
            {
                return route;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        route = route_json(ns, kind).await;
    }
    route
}
