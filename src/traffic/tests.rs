//! The split per traffic kind, the Services each kind needs and the HTTPRoute weight patch.

use serde_json::json;

use super::http_route::{weight_patch, HttpRoute};
use super::*;
use crate::crd::fixtures::shop_with_traffic;
use crate::crd::{LABEL_COMPARED, LABEL_ROLLOUT, LABEL_TRACK};

#[test]
fn canary_replicas_rounds_up_and_stays_within_bounds() {
    let table = [
        (4, 0, 1),
        (4, 10, 1),
        (4, 25, 1),
        (4, 26, 2),
        (4, 50, 2),
        (4, 100, 4),
        (10, 33, 4),
        (1, 50, 1),
        (3, 150, 3),
        (5, -10, 1),
    ];
    for (replicas, weight, want) in table {
        assert_eq!(
            canary_replicas(replicas, weight),
            want,
            "replicas {replicas} weight {weight}"
        );
    }
}

#[test]
fn the_split_per_kind() {
    let request = TrafficRequest {
        replicas: 4,
        canary_weight: 50,
        canary_serving: true,
        first_weight: 25,
        baseline: false,
    };
    let ratio = shop_with_traffic(json!({"type": "ReplicaRatio"}));
    let route = shop_with_traffic(json!({"type": "HTTPRoute", "httpRoute": {"name": "shop",
        "stableService": "shop-stable", "canaryService": "shop-canary", "port": 80}}));
    // Replica ratio: the canary's pods replace stable ones.
    let p = plan(&ratio.spec.traffic, &request);
    assert_eq!(
        (p.stable_replicas, p.canary_replicas, p.baseline_replicas),
        (2, 2, 0)
    );
    assert_eq!((p.canary_weight, p.canary_serving), (50, true));
    // Behind an HTTPRoute stable keeps its size and the weight does the split.
    let p = plan(&route.spec.traffic, &request);
    assert_eq!((p.stable_replicas, p.canary_replicas), (4, 2));
    // Before it serves, the canary is sized for the first weight and gets no traffic.
    for spec in [&ratio.spec.traffic, &route.spec.traffic] {
        let p = plan(
            spec,
            &TrafficRequest {
                canary_serving: false,
                ..request
            },
        );
        assert_eq!((p.stable_replicas, p.canary_replicas), (4, 1), "{spec:?}");
        assert_eq!((p.canary_weight, p.canary_serving), (0, false));
    }
    // A dedicated baseline is as large as the canary, taken from stable under replica ratio.
    let with_baseline = TrafficRequest {
        canary_weight: 25,
        baseline: true,
        ..request
    };
    let p = plan(&ratio.spec.traffic, &with_baseline);
    assert_eq!(
        (p.stable_replicas, p.canary_replicas, p.baseline_replicas),
        (2, 1, 1)
    );
    let p = plan(&route.spec.traffic, &with_baseline);
    assert_eq!(
        (p.stable_replicas, p.canary_replicas, p.baseline_replicas),
        (4, 1, 1)
    );
}

#[test]
fn the_service_admits_the_canary_only_once_it_serves() {
    let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
    let not_yet = TrafficState {
        canary_weight: 0,
        canary_serving: false,
        ..Default::default()
    };
    let svc = &services(&r, &not_yet, r.spec.template.as_ref()).unwrap()[0];
    let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(
        selector.get(LABEL_TRACK).map(String::as_str),
        Some("stable")
    );
    assert_eq!(
        svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        8080
    );
    let serving = TrafficState {
        canary_weight: 50,
        canary_serving: true,
        ..Default::default()
    };
    let svc = &services(&r, &serving, r.spec.template.as_ref()).unwrap()[0];
    let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(selector.get(LABEL_TRACK), None);
    assert_eq!(
        selector.get(LABEL_ROLLOUT).map(String::as_str),
        Some("shop")
    );
    let owner = &svc.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Rollout", Some(true))
    );
}

#[test]
fn http_route_weights_are_patched_by_backend_name() {
    let r = shop_with_traffic(json!({"type": "HTTPRoute", "httpRoute": {"name": "shop",
        "stableService": "shop-stable", "canaryService": "shop-canary", "port": 80}}));
    let spec = r.spec.traffic.http_route.clone().unwrap();
    let route = json!({"spec": {"rules": [{"backendRefs": [
        {"name": "shop-canary", "port": 80, "weight": 0},
        {"name": "shop-stable", "port": 80, "weight": 100}]}]}});
    let model = HttpRoute::from_json("shop", &route);
    assert_eq!(model.weight(0, "shop-stable"), Some(100));
    assert_eq!(model.weight(0, "shop-canary"), Some(0));
    let patch = weight_patch(&model, &spec, 30).unwrap();
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "shop-stable"},
            {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 70},
            {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "shop-canary"},
            {"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 30},
        ])
    );
    // Applied to the route it sets exactly the two weights.
    let mut patched = route.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let after = HttpRoute::from_json("shop", &patched);
    assert_eq!(
        (
            after.weight(0, "shop-stable"),
            after.weight(0, "shop-canary")
        ),
        (Some(70), Some(30))
    );
    let missing = json!({"spec": {"rules": [{"backendRefs": [{"name": "other"}]}]}});
    let err = weight_patch(&HttpRoute::from_json("shop", &missing), &spec, 30).unwrap_err();
    assert!(err.to_string().contains("shop-stable"), "{err}");
    assert_eq!(
        err,
        RouteError::NoBackend {
            route: "shop".into(),
            rule: 0,
            service: "shop-stable".into()
        }
    );
    let no_rule = weight_patch(
        &HttpRoute::from_json("shop", &json!({"spec": {"rules": []}})),
        &spec,
        30,
    )
    .unwrap_err();
    assert_eq!(
        no_rule,
        RouteError::NoRule {
            route: "shop".into(),
            rule: 0
        }
    );
    // Only a route of an HTTPRoute traffic kind is weighted.
    assert_eq!(http_route::weighted_route(&r.spec.traffic), Some(&spec));
    assert_eq!(
        http_route::weighted_route(
            &shop_with_traffic(json!({"type": "ReplicaRatio"}))
                .spec
                .traffic
        ),
        None
    );
    let state = TrafficState {
        canary_weight: 0,
        canary_serving: false,
        ..Default::default()
    };
    let services = services(&r, &state, r.spec.template.as_ref()).unwrap();
    let names: Vec<_> = services
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["shop-stable", "shop-canary"]);
    let canary_selector = services[1].spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(
        canary_selector.get(LABEL_COMPARED).map(String::as_str),
        Some("true")
    );
    assert_eq!(canary_selector.get(LABEL_TRACK), None);
    assert_eq!(
        services[0].spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        80
    );
}

#[test]
fn an_adopted_deployment_is_selected_with_the_stable_pods_until_the_canary_serves() {
    let adopted = std::collections::BTreeMap::from([("app".to_string(), "shop".to_string())]);
    let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
    let state = TrafficState {
        adopted_selector: Some(adopted.clone()),
        ..Default::default()
    };
    let svc = &services(&r, &state, r.spec.template.as_ref()).unwrap()[0];
    assert_eq!(svc.spec.as_ref().unwrap().selector.as_ref(), Some(&adopted));
    // Once a canary serves, the Service is the Rollout's own again.
    let serving = TrafficState {
        canary_serving: true,
        canary_weight: 10,
        adopted_selector: Some(adopted.clone()),
        ..Default::default()
    };
    let svc = &services(&r, &serving, r.spec.template.as_ref()).unwrap()[0];
    let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(
        selector.get(LABEL_ROLLOUT).map(String::as_str),
        Some("shop")
    );
    assert_eq!(selector.get("app"), None);
    // HTTPRoute: the stable backend Service selects the adopted pods too; the canary one never.
    let r = shop_with_traffic(json!({"type": "HTTPRoute", "httpRoute": {"name": "shop",
        "stableService": "shop-stable", "canaryService": "shop-canary", "port": 80}}));
    let services = services(&r, &state, r.spec.template.as_ref()).unwrap();
    assert_eq!(
        services[0].spec.as_ref().unwrap().selector.as_ref(),
        Some(&adopted)
    );
    let canary = services[1].spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(canary.get(LABEL_COMPARED).map(String::as_str), Some("true"));
}

#[test]
fn an_instant_rollback_sends_everything_to_the_held_pods() {
    let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
    let state = TrafficState {
        held_serving: true,
        ..Default::default()
    };
    let svc = &services(&r, &state, r.spec.template.as_ref()).unwrap()[0];
    let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(
        selector.get(LABEL_TRACK).map(String::as_str),
        Some("baseline")
    );
}

#[test]
fn several_rules_of_a_grpc_route_are_weighted_alike_and_the_others_left_alone() {
    let r = shop_with_traffic(
        json!({"type": "HTTPRoute", "httpRoute": {"kind": "GRPCRoute", "name": "shop",
        "ruleIndexes": [0, 2], "stableService": "shop-stable", "canaryService": "shop-canary",
        "port": 9090}}),
    );
    let spec = r.spec.traffic.http_route.clone().unwrap();
    assert_eq!(spec.kind, crate::crd::RouteKind::GrpcRoute);
    assert_eq!(spec.rules(), vec![0, 2]);
    let resource = http_route::route_resource(spec.kind);
    assert_eq!(
        (
            resource.kind.as_str(),
            resource.plural.as_str(),
            resource.api_version.as_str()
        ),
        ("GRPCRoute", "grpcroutes", "gateway.networking.k8s.io/v1")
    );
    // The shape of a GRPCRoute (gateway.networking.k8s.io/v1): method matches per rule.
    let backends = |stable: i64, canary: i64| {
        json!([{"name": "shop-stable", "port": 9090, "weight": stable},
               {"name": "shop-canary", "port": 9090, "weight": canary}])
    };
    let route = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
    "spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"matches": [{"method": {"service": "shop.Checkout", "method": "Pay"}}], "backendRefs": backends(100, 0)},
        {"matches": [{"method": {"service": "shop.Admin"}}], "backendRefs": [{"name": "admin", "port": 9090}]},
        {"matches": [{"method": {"service": "shop.Cart"}}], "backendRefs": backends(100, 0)}
    ]}});
    let model = HttpRoute::from_json("shop", &route);
    let patch = weight_patch(&model, &spec, 25).unwrap();
    let mut patched = route.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let after = HttpRoute::from_json("shop", &patched);
    for rule in [0, 2] {
        assert_eq!(
            (
                after.weight(rule, "shop-stable"),
                after.weight(rule, "shop-canary")
            ),
            (Some(75), Some(25)),
            "rule {rule}"
        );
    }
    assert_eq!(
        patched["spec"]["rules"][1], route["spec"]["rules"][1],
        "rule 1 untouched"
    );
    // One weighted rule without the canary backend: nothing is patched at all.
    let mut broken = route.clone();
    broken["spec"]["rules"][2]["backendRefs"] = json!([{"name": "shop-stable", "port": 9090}]);
    let err = weight_patch(&HttpRoute::from_json("shop", &broken), &spec, 25).unwrap_err();
    assert_eq!(
        err,
        RouteError::NoBackend {
            route: "shop".into(),
            rule: 2,
            service: "shop-canary".into()
        }
    );
}

fn route_spec(rules: serde_json::Value) -> crate::crd::HttpRouteSpec {
    let mut spec = json!({"name": "shop", "stableService": "shop-stable",
        "canaryService": "shop-canary", "port": 80});
    if let Some(map) = rules.as_object() {
        for (k, v) in map {
            spec[k] = v.clone();
        }
    }
    serde_json::from_value(spec).unwrap()
}

fn testers(value: &str) -> crate::crd::SetHeaderRouteStep {
    serde_json::from_value(json!({"name": "testers",
        "match": [{"headerName": "X-Canary", "headerValue": {"exact": value}}]}))
    .unwrap()
}

/// A team's route as the API server stores it: a path rule with a header match of its own, the
/// weighted rule (defaulted match), a rule for another service.
fn stored_route() -> serde_json::Value {
    let backends = json!([
        {"group": "", "kind": "Service", "name": "shop-stable", "port": 80, "weight": 100},
        {"group": "", "kind": "Service", "name": "shop-canary", "port": 80, "weight": 0}]);
    json!({"metadata": {"name": "shop", "resourceVersion": "41"}, "spec": {"rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends},
        {"name": "admin", "matches": [{"path": {"type": "PathPrefix", "value": "/admin"},
            "headers": [{"type": "Exact", "name": "x-canary", "value": "team"}]}],
         "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 80, "weight": 1}]}
    ]}})
}

/// Apply a JSON patch to a JSON value, as the API server would.
fn patched(mut value: serde_json::Value, patch: &json_patch::Patch) -> serde_json::Value {
    json_patch::patch(&mut value, &patch.0).expect("the patch applies");
    value
}

#[test]
fn a_header_route_adds_one_named_rule_per_weighted_rule_to_the_canary() {
    use super::http_route::{header_route_patch, HEADER_RULE_PREFIX};
    let route = stored_route();
    let spec = route_spec(json!({"ruleIndexes": [0, 1]}));
    let patch = header_route_patch("shop", &route, &spec, &[testers("yes")])
        .unwrap()
        .expect("a patch");
    // The patch tests the version read first.
    let text = serde_json::to_value(&patch).unwrap();
    assert_eq!(
        text[0],
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": "41"})
    );
    let after = patched(route.clone(), &patch);
    let rules = after["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    // The team's rules are untouched and first.
    assert_eq!(rules[..2], route["spec"]["rules"].as_array().unwrap()[..]);
    assert_eq!(
        rules[2]["name"],
        json!(format!("{HEADER_RULE_PREFIX}testers-0"))
    );
    assert_eq!(
        rules[2]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"},
                "headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}]}])
    );
    assert_eq!(
        rules[2]["backendRefs"],
        json!([{"group": "", "kind": "Service", "name": "shop-canary", "port": 80, "weight": 1}])
    );
    // The team's own match of the same header (any case) gives way to the header route's; its
    // path stays.
    assert_eq!(rules[3]["name"], json!("tollgate-header-testers-1"));
    assert_eq!(
        rules[3]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/admin"},
                "headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}]}])
    );
    // Converging again writes nothing, also once the API server filled in its defaults.
    assert_eq!(
        header_route_patch("shop", &after, &spec, &[testers("yes")]).unwrap(),
        None
    );
    let mut defaulted = after.clone();
    defaulted["spec"]["rules"][2]["matches"][0]["extra"] = json!("server default");
    assert_eq!(
        header_route_patch("shop", &defaulted, &spec, &[testers("yes")]).unwrap(),
        None
    );
    // A changed match replaces the rule; no header route removes the operator's rules only.
    let changed = header_route_patch("shop", &after, &spec, &[testers("qa")])
        .unwrap()
        .expect("a patch");
    let changed = patched(after.clone(), &changed);
    assert_eq!(
        changed["spec"]["rules"][2]["matches"][0]["headers"][0]["value"],
        json!("qa")
    );
    let removed = header_route_patch("shop", &after, &spec, &[])
        .unwrap()
        .expect("a patch");
    assert_eq!(patched(after, &removed)["spec"], route["spec"]);
    // Nothing to add and nothing there: no patch at all.
    assert_eq!(
        header_route_patch("shop", &route, &spec, &[]).unwrap(),
        None
    );
}

#[test]
fn header_rules_stay_after_the_teams_and_never_replace_one() {
    use super::http_route::header_route_patch;
    let spec = route_spec(json!({}));
    let route = stored_route();
    let with = patched(
        route.clone(),
        &header_route_patch("shop", &route, &spec, &[testers("yes")])
            .unwrap()
            .unwrap(),
    );
    // The team appends a rule after the operator's: the operator's move back behind it, the
    // team's new rule is kept.
    let mut edited = with.clone();
    let extra = json!({"name": "tollgate-is-not-a-prefix-of-ours", "backendRefs": [{"name": "x"}]});
    edited["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(extra.clone());
    let fixed = patched(
        edited.clone(),
        &header_route_patch("shop", &edited, &spec, &[testers("yes")])
            .unwrap()
            .expect("a patch"),
    );
    let rules = fixed["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[2], extra);
    assert_eq!(rules[3]["name"], json!("tollgate-header-testers-0"));
    // Removing every header route leaves every rule of the team's.
    let cleared = patched(
        fixed.clone(),
        &header_route_patch("shop", &fixed, &spec, &[])
            .unwrap()
            .unwrap(),
    );
    let names: Vec<_> = cleared["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            json!(null),
            json!("admin"),
            json!("tollgate-is-not-a-prefix-of-ours")
        ]
    );
}

#[test]
fn header_routes_past_the_rule_limit_or_on_a_missing_rule_are_errors() {
    use super::http_route::header_route_patch;
    let route = stored_route();
    let missing = route_spec(json!({"ruleIndex": 5}));
    let err = header_route_patch("shop", &route, &missing, &[testers("yes")]).unwrap_err();
    assert!(err.to_string().contains("spec.rules[5]"), "{err}");
    let mut full = route.clone();
    let rules = full["spec"]["rules"].as_array_mut().unwrap();
    while rules.len() < 16 {
        rules.push(json!({"backendRefs": [{"name": "x"}]}));
    }
    let err =
        header_route_patch("shop", &full, &route_spec(json!({})), &[testers("yes")]).unwrap_err();
    assert!(err.to_string().contains("at most 16"), "{err}");
    // A regex header match is the Gateway API's RegularExpression type.
    let regex: crate::crd::SetHeaderRouteStep = serde_json::from_value(json!({"name": "qa",
        "match": [{"headerName": "X-Team", "headerValue": {"regex": "qa-.*"}}]}))
    .unwrap();
    let p = header_route_patch("shop", &route, &route_spec(json!({})), &[regex])
        .unwrap()
        .unwrap();
    let after = patched(route, &p);
    assert_eq!(
        after["spec"]["rules"][2]["matches"][0]["headers"],
        json!([{"type": "RegularExpression", "name": "X-Team", "value": "qa-.*"}])
    );
}
