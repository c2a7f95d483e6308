//! `setHeaderRoute` steps: in force from the pass that enters them, removed by the same step
//! without `match`, and by leaving the steps in any way (promotion, rollback, abort).

use super::*;
use crate::crd::SetHeaderRouteStep;

fn testers() -> SetHeaderRouteStep {
    serde_json::from_value(json!({"name": "testers",
        "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}))
    .unwrap()
}

/// setWeight 10, header route on, a 10 s pause, header route off, analyze, setWeight 50.
fn header_spec() -> RolloutSpec {
    spec_with(|s| {
        s.steps = serde_json::from_value(json!([
            {"setWeight": 10},
            {"setHeaderRoute": {"name": "testers",
                "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"pause": {"duration": "10s"}},
            {"setHeaderRoute": {"name": "testers"}},
            {"analyze": {"duration": "5m"}},
            {"setWeight": 50}
        ]))
        .unwrap();
    })
}

fn next(spec: &RolloutSpec, status: &RolloutStatus, now: i64) -> Plan {
    decide(
        spec,
        Some(status),
        &obs_with_children(spec, status),
        at(now),
    )
}

#[test]
fn a_header_route_is_in_force_from_its_step_until_removed() {
    let spec = header_spec();
    // The weight step is done: entering the header route step puts it in force at once.
    let plan = next(&spec, &analyzing_at_step(0, 10), 1);
    assert_eq!(plan.status.current_step_index, Some(1));
    assert_eq!(plan.status.header_routes, vec![testers()]);
    assert_eq!(plan.children.header_routes, vec![testers()]);
    assert_eq!(plan.children.canary_weight, 10, "the weight does not move");
    // The next pass: the step is done, the route stays in force through the pause.
    let plan = next(&spec, &plan.status, 2);
    assert_eq!(plan.status.current_step_index, Some(2));
    assert!(
        reasons(&plan).contains(&"HeaderRouteSet"),
        "{:?}",
        plan.events
    );
    let set = plan
        .events
        .iter()
        .find(|e| e.reason == Reason::HeaderRouteSet)
        .unwrap();
    assert!(set.message.contains("X-Canary=yes"), "{}", set.message);
    assert_eq!(plan.children.header_routes, vec![testers()]);
    // The pause ends: the step without match takes the route out.
    let plan = next(&spec, &plan.status, 20);
    assert_eq!(plan.status.current_step_index, Some(3));
    assert!(plan.status.header_routes.is_empty());
    assert!(plan.children.header_routes.is_empty());
    let plan = next(&spec, &plan.status, 21);
    assert_eq!(plan.status.current_step_index, Some(4));
    assert!(reasons(&plan).contains(&"HeaderRouteRemoved"));
}

#[test]
fn entering_is_idempotent_and_replaces_a_route_of_the_same_name() {
    let mut status = RolloutStatus::default();
    crate::rollout::decide::header_routes::enter(&mut status, &testers());
    crate::rollout::decide::header_routes::enter(&mut status, &testers());
    assert_eq!(status.header_routes, vec![testers()]);
    let mut other = testers();
    other.matches[0].header_value.exact = Some("qa".into());
    crate::rollout::decide::header_routes::enter(&mut status, &other);
    assert_eq!(status.header_routes, vec![other.clone()]);
    // Removing one that is not there changes nothing.
    let mut gone = testers();
    gone.name = "nobody".into();
    gone.matches.clear();
    crate::rollout::decide::header_routes::enter(&mut status, &gone);
    assert_eq!(status.header_routes, vec![other]);
}

#[test]
fn leaving_the_steps_removes_every_header_route() {
    let spec = header_spec();
    let mut in_force = analyzing_at_step(2, 10);
    in_force.header_routes = vec![testers()];
    type Case = (&'static str, RolloutSpec, Option<AnalysisLook>, Phase);
    let cases: Vec<Case> = vec![
        (
            "a regression rolls back",
            spec.clone(),
            Some(look(MetricVerdict::Fail, 5)),
            Phase::RollingBack,
        ),
        (
            "an abort",
            spec_with(|s| {
                s.steps = spec.steps.clone();
                s.abort_request = Some("stop".into());
            }),
            None,
            Phase::RollingBack,
        ),
        (
            "a promote request",
            spec_with(|s| {
                s.steps = spec.steps.clone();
                s.promote_request = Some("now".into());
            }),
            None,
            Phase::Promoting,
        ),
        (
            "a new version",
            spec_with(|s| {
                s.steps = spec.steps.clone();
                s.version = "3.0.0".into();
            }),
            None,
            // The old canary is removed first, then the pipeline starts over.
            Phase::RollingBack,
        ),
    ];
    for (name, spec, look, phase) in cases {
        let obs = Observations {
            look,
            ..obs_with_children(&spec, &in_force)
        };
        let plan = decide(&spec, Some(&in_force), &obs, at(5));
        assert_eq!(
            plan.status.phase, phase,
            "{name}: {:?}",
            plan.status.message
        );
        assert!(plan.status.header_routes.is_empty(), "{name}");
        assert!(plan.children.header_routes.is_empty(), "{name}");
        assert!(reasons(&plan).contains(&"HeaderRouteRemoved"), "{name}");
    }
    // Still in the steps (a pass that only waits) keeps it.
    let plan = next(&spec, &in_force, 5);
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(plan.children.header_routes, vec![testers()]);
}

#[test]
fn a_header_route_before_any_weight_serves_the_canary_at_weight_zero() {
    let spec = spec_with(|s| {
        s.steps = serde_json::from_value(json!([
            {"setHeaderRoute": {"name": "testers",
                "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
            {"pause": {}},
            {"setWeight": 50}
        ]))
        .unwrap();
    });
    let mut status = analyzing_at_step(0, 0);
    crate::rollout::decide::header_routes::enter(&mut status, &testers());
    let plan = next(&spec, &status, 1);
    assert_eq!(plan.status.current_step_index, Some(1));
    let c = &plan.children;
    assert_eq!((c.canary_weight, c.canary_serving), (0, true));
    assert!(c.canary.as_ref().is_some_and(|c| c.replicas >= 1), "{c:?}");
    assert_eq!(c.header_routes, vec![testers()]);
}
