//! Traffic through Gateway API routes end to end on the local control plane, with the pinned
//! standard-channel CRDs and load-gen following the route object as a gateway would (its rules,
//! their header matches and their backend weights; requests are plain HTTP to the pods):
//! - a GRPCRoute-routed Rollout moves through its weights and is promoted, the per-track split
//!   of load-gen's requests following the route's weights at each step;
//! - header routes (`setHeaderRoute`): with the header, requests go to the canary while its
//!   weight is still 0, without it to stable; the step without `match` removes tollgate's rule,
//!   the promotion removes the next one, and the team's own rules are left as they were.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};
use tollgate::crd::{Phase, RolloutStatus, RouteKind};
use tollgate::traffic::http_route::{http_route_resource, is_header_rule, HttpRoute};

use crate::support::http_route::{route_after_promotion, route_json};
use crate::support::load::run_load_gen;
use crate::support::rollout_manifest::{template, NAME};
use crate::support::scenario::{Options, Scenario};

/// A burst of 40 requests through the route (`flag`: `--http-route` or `--grpc-route`), the
/// given extra arguments added; load-gen's JSON report.
fn burst(world: &Scenario, flag: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--namespace",
        &world.ns.name,
        flag,
        NAME,
        "--group-label",
        "tollgate.dev/track",
        "--rate",
        "200",
        "--max-requests",
        "40",
        "--duration-secs",
        "5",
    ];
    args.extend_from_slice(extra);
    run_load_gen(&world.env, &args)
}

fn sent(groups: &Value, track: &str) -> u64 {
    groups[track]["sent"].as_u64().unwrap_or(0)
}

/// Roll to 2.0.0 (as healthy as 1.0.0) with these steps.
async fn roll_with_steps(world: &Scenario, steps: Value) {
    let patch = json!({"spec": {"version": "2.0.0", "template": template("2.0.0", 0.05, None),
        "steps": steps}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("roll to 2.0.0");
}

async fn resume(world: &Scenario, token: &str) {
    let patch = json!({"spec": {"resumeRequest": token}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("resume");
}

fn at_step(s: &RolloutStatus, index: i32) -> bool {
    s.phase == Phase::Analyzing
        && s.canary_version.as_deref() == Some("2.0.0")
        && s.current_step_index == Some(index)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_grpc_routed_rollout_follows_the_route_weights_and_is_promoted() {
    let world = Scenario::start_with(
        "e2e-grpc-route",
        Options {
            grpc_route: true,
            ..Options::default()
        },
    )
    .await;
    roll_with_steps(
        &world,
        json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]),
    )
    .await;
    let mut seen = Vec::new();
    for (step, weight, token) in [(1, 25, "at-25"), (3, 50, "at-50")] {
        world
            .wait(&format!("2.0.0 paused at {weight}%"), |s| {
                at_step(s, step) && s.current_weight == weight
            })
            .await;
        // The route carries the weight once the pass that set it converged.
        let mut weights = None;
        for _ in 0..50 {
            let route = route_json(&world.ns, RouteKind::GrpcRoute).await;
            let r = HttpRoute::from_json(NAME, &route);
            weights = Some((r.weight(0, "demo-stable"), r.weight(0, "demo-canary")));
            if weights == Some((Some(100 - i64::from(weight)), Some(i64::from(weight)))) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let report = burst(&world, "--grpc-route", &[]);
        let groups = report["groups"].clone();
        println!(
            "grpc route at {weight}%: route weights {weights:?}, load-gen stable {} canary {} transport errors {} (500s from the demo's 5% error rate: {})",
            sent(&groups, "stable"),
            sent(&groups, "canary"),
            report["errors"],
            report["failed"]
        );
        seen.push((
            weight,
            weights,
            sent(&groups, "stable"),
            sent(&groups, "canary"),
            report["errors"].clone(),
        ));
        resume(&world, token).await;
    }
    let status = world.finished("2.0.0").await;
    let after = HttpRoute::from_json(
        NAME,
        &route_after_promotion(&world.ns, RouteKind::GrpcRoute).await,
    );
    let final_weights = (
        after.weight(0, "demo-stable"),
        after.weight(0, "demo-canary"),
    );
    world.end().await;

    for (weight, weights, stable, canary, errors) in seen {
        let w = i64::from(weight);
        assert_eq!(
            weights,
            Some((Some(100 - w), Some(w))),
            "route at {weight}%"
        );
        // Smooth weighted round-robin over 40 requests: the split is the weights', to a request.
        let want = 40 * u64::try_from(w).unwrap() / 100;
        assert!(
            canary.abs_diff(want) <= 1,
            "{weight}%: canary {canary} of 40"
        );
        assert_eq!(stable + canary, 40, "{weight}%");
        // Every request reached a pod (the demo's own 5% of 500s aside).
        assert_eq!(errors, json!(0), "{weight}%");
    }
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    assert_eq!(final_weights, (Some(100), Some(0)));
}

/// The team's rules of the route (everything that is not tollgate's header rule).
fn team_rules(route: &Value) -> Vec<Value> {
    route["spec"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !is_header_rule(r))
        .collect()
}

fn header_rule_names(route: &Value) -> Vec<String> {
    route["spec"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| is_header_rule(r))
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_header_route_sends_matching_requests_to_the_canary_before_any_weight() {
    let world = Scenario::start_with(
        "e2e-header-route",
        Options {
            http_route: true,
            ..Options::default()
        },
    )
    .await;
    // The team has a rule of its own besides the weighted one.
    let routes: Api<DynamicObject> = Api::namespaced_with(
        world.ns.client.clone(),
        &world.ns.name,
        &http_route_resource(),
    );
    let team_rule = json!({"name": "team-admin",
        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
        "backendRefs": [{"name": "demo-stable", "port": 8080}]});
    routes
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(
                    json!([{"op": "add", "path": "/spec/rules/-", "value": team_rule}]),
                )
                .expect("patch"),
            ),
        )
        .await
        .expect("add the team's rule");
    let before = team_rules(&route_json(&world.ns, RouteKind::HttpRoute).await);
    let header = |v: &str| json!({"headerName": "X-Canary", "headerValue": {"exact": v}});
    roll_with_steps(
        &world,
        json!([
            {"setHeaderRoute": {"name": "testers", "match": [header("yes")]}},
            {"pause": {}},
            {"setHeaderRoute": {"name": "testers"}},
            {"pause": {}},
            {"setHeaderRoute": {"name": "late", "match": [header("late")]}},
            {"setWeight": 50},
            {"pause": {"duration": "3s"}}
        ]),
    )
    .await;
    let with_route = world
        .wait("the header route in force at weight 0", |s| {
            at_step(s, 1) && !s.header_routes.is_empty()
        })
        .await
        .status
        .unwrap_or_default();
    let route_on = route_json(&world.ns, RouteKind::HttpRoute).await;
    // Half the requests carry the header: those go to the canary, the others to stable.
    let on = burst(
        &world,
        "--http-route",
        &["--header", "X-Canary=yes", "--header-share", "0.5"],
    );
    let wrong = burst(&world, "--http-route", &["--header", "X-Canary=no"]);

    resume(&world, "header-off").await;
    world
        .wait("the header route removed", |s| {
            at_step(s, 3) && s.header_routes.is_empty()
        })
        .await;
    let route_off = route_json(&world.ns, RouteKind::HttpRoute).await;
    let off = burst(&world, "--http-route", &["--header", "X-Canary=yes"]);

    resume(&world, "go-on").await;
    let status = world.finished("2.0.0").await;
    let route_end = route_after_promotion(&world.ns, RouteKind::HttpRoute).await;
    println!(
        "header route: on header {} plain {}; wrong value {}; removed {}; end rules {}",
        on["headerGroups"],
        on["plainGroups"],
        wrong["groups"],
        off["groups"],
        route_end["spec"]["rules"]
    );
    world.end().await;

    // In force at weight 0, shown in status, a rule of tollgate's on the route.
    assert_eq!(with_route.current_weight, 0);
    assert_eq!(with_route.header_routes[0].name, "testers");
    assert_eq!(
        header_rule_names(&route_on),
        vec!["tollgate-header-testers-0"]
    );
    assert_eq!(
        team_rules(&route_on),
        before,
        "the team's rules are untouched"
    );
    // With the header: the canary, every one; without: stable, every one.
    let (h, p) = (&on["headerGroups"], &on["plainGroups"]);
    assert_eq!((sent(h, "canary"), sent(h, "stable")), (20, 0), "{on}");
    assert_eq!((sent(p, "canary"), sent(p, "stable")), (0, 20), "{on}");
    assert_eq!(on["errors"], json!(0), "every request reached a pod: {on}");
    assert_eq!(sent(&wrong["groups"], "canary"), 0, "{wrong}");
    // Removed by the step without match: the header no longer reaches the canary (weight 0).
    assert!(header_rule_names(&route_off).is_empty(), "{route_off}");
    assert_eq!(sent(&off["groups"], "canary"), 0, "{off}");
    assert_eq!(team_rules(&route_off), before);
    // The second header route ended with the promotion.
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert!(status.header_routes.is_empty());
    assert!(header_rule_names(&route_end).is_empty(), "{route_end}");
    assert_eq!(
        team_rules(&route_end),
        before,
        "the team's rules are as they were"
    );
}
