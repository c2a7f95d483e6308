//! Route weights against the real API server with the pinned Gateway API CRDs: a GRPCRoute
//! (standard channel, `v1`) with three rules, two of them weighted through `ruleIndexes`. The
//! API server validates the patched object against the GRPCRoute schema, so a patch it would
//! refuse fails here.

use kube::api::{Api, DynamicObject, PostParams};
use serde_json::json;
use tollgate::crd::HttpRouteSpec;
use tollgate::traffic::http_route::{route_resource, set_weights, HttpRoute};

use crate::support::cluster::TestEnv;

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_grpc_route_gets_its_weights_on_every_named_rule() {
    let env = TestEnv::load();
    env.install_gateway_api_kind("grpcroutes").await;
    let ns = env.namespace("grpc-route").await;
    let spec: HttpRouteSpec = serde_json::from_value(json!({"kind": "GRPCRoute", "name": "shop",
        "ruleIndexes": [0, 2], "stableService": "shop-stable", "canaryService": "shop-canary",
        "port": 9090}))
    .expect("spec");
    let routes: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &route_resource(spec.kind));
    let backends = json!([{"name": "shop-stable", "port": 9090, "weight": 100},
                          {"name": "shop-canary", "port": 9090, "weight": 0}]);
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "shop"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [
            {"matches": [{"method": {"service": "shop.Checkout", "method": "Pay"}}], "backendRefs": backends},
            {"matches": [{"method": {"service": "shop.Admin"}}], "backendRefs": [{"name": "admin", "port": 9090}]},
            {"matches": [{"method": {"service": "shop.Cart"}}], "backendRefs": backends}
        ]}
    }))
    .expect("route");
    routes
        .create(&PostParams::default(), &route)
        .await
        .expect("create the GRPCRoute");
    set_weights(&ns.client, &ns.name, &spec, 25)
        .await
        .expect("weights set");
    let stored = serde_json::to_value(routes.get("shop").await.expect("read back")).expect("json");
    let after = HttpRoute::from_json("shop", &stored);
    let weights: Vec<_> = (0..3)
        .map(|rule| {
            (
                after.weight(rule, "shop-stable"),
                after.weight(rule, "shop-canary"),
            )
        })
        .collect();
    // A missing backend is an error that names it, and changes nothing.
    let wrong: HttpRouteSpec = serde_json::from_value(json!({"kind": "GRPCRoute", "name": "shop",
        "ruleIndexes": [0, 1], "stableService": "shop-stable", "canaryService": "shop-canary",
        "port": 9090}))
    .expect("spec");
    let err = set_weights(&ns.client, &ns.name, &wrong, 50)
        .await
        .unwrap_err();
    let unchanged =
        serde_json::to_value(routes.get("shop").await.expect("read back")).expect("json");
    ns.delete().await;
    assert_eq!(
        weights,
        vec![(Some(75), Some(25)), (None, None), (Some(75), Some(25))],
        "{stored}"
    );
    assert!(err.to_string().contains("rule 1"), "{err}");
    assert_eq!(unchanged["spec"], stored["spec"]);
}
