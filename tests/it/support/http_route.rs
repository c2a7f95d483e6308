//! The Gateway API HTTPRoute `demo` of the e2e tests: created with all traffic on stable, as a team
//! would have it before adopting tollgate, and read back as `(stable, canary)` weights.

use kube::api::{Api, PostParams};
use serde_json::json;

use tollgate::crd::RouteKind;
use tollgate::traffic::http_route::{http_route_resource, route_resource, HttpRoute};

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
