//! The Gateway API HTTPRoute `demo` of the e2e tests: created with all traffic on stable, as a team
//! would have it before adopting tollgate, and read back as `(stable, canary)` weights.

use kube::api::{Api, PostParams};
use serde_json::json;

use super::cluster::TestNamespace;
use super::rollout_manifest::NAME;

pub fn http_route_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

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
    let refs = route
        .data
        .pointer("/spec/rules/0/backendRefs")?
        .as_array()?;
    let weight = |name: &str| {
        refs.iter()
            .find(|b| b["name"] == name)
            .and_then(|b| b["weight"].as_i64())
    };
    Some((weight("demo-stable")?, weight("demo-canary")?))
}
