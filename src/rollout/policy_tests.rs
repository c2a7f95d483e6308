//! Table tests of the merge rule, the locks and the check of the merged spec.

use serde_json::{json, Value};

use super::*;
use crate::crd::{Phase, PolicySnapshot, RolloutPolicySpec, RolloutStatus};

fn policy_spec(v: Value) -> RolloutPolicySpec {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("not a policy spec: {e}"))
}

/// A Rollout spec as the API server stores it when it names `platform` and gives no blocks.
fn rollout(extra: Value) -> Value {
    let mut spec = json!({
        "version": "2.0.0",
        "selector": {"matchLabels": {"app": "shop"}},
        "template": {"metadata": {"labels": {"app": "shop"}},
                     "spec": {"containers": [{"name": "shop", "image": "shop:2.0.0"}]}},
        "policyRef": {"kind": "ClusterRolloutPolicy", "name": "platform"}
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

#[test]
fn merge_table() {
    // (name, policy, rollout, merged, paths from the policy)
    let rows: Vec<(&str, Value, Value, Value, Vec<&str>)> = vec![
        (
            "absent block taken whole",
            json!({"analysis": {"errorRate": {"tolerance": 1.2}}}),
            json!({}),
            json!({"analysis": {"errorRate": {"tolerance": 1.2}}}),
            vec!["analysis"],
        ),
        (
            "objects merge key by key, the Rollout wins",
            json!({"analysis": {"alpha": 0.01, "errorRate": {"tolerance": 1.2}}}),
            json!({"analysis": {"errorRate": {"tolerance": 2.0}}}),
            json!({"analysis": {"alpha": 0.01, "errorRate": {"tolerance": 2.0}}}),
            vec!["analysis.alpha"],
        ),
        (
            "at any depth",
            json!({"analysis": {"provider": {"prometheus": {"address": "http://p:9090", "timeout": "5s"}}}}),
            json!({"analysis": {"provider": {"prometheus": {"timeout": "20s"}}}}),
            json!({"analysis": {"provider": {"prometheus": {"address": "http://p:9090", "timeout": "20s"}}}}),
            vec!["analysis.provider.prometheus.address"],
        ),
        (
            "lists are taken whole: the Rollout's steps replace the policy's",
            json!({"steps": [{"setWeight": 10}, {"setWeight": 50}]}),
            json!({"steps": [{"setWeight": 30}]}),
            json!({"steps": [{"setWeight": 30}]}),
            vec![],
        ),
        (
            "lists absent in the Rollout come from the policy",
            json!({"steps": [{"setWeight": 10}]}),
            json!({"progressDeadline": "5m"}),
            json!({"steps": [{"setWeight": 10}], "progressDeadline": "5m"}),
            vec!["steps"],
        ),
        (
            "values: the Rollout's",
            json!({"progressDeadline": "15m"}),
            json!({"progressDeadline": "5m"}),
            json!({"progressDeadline": "5m"}),
            vec![],
        ),
        (
            "a null in the Rollout is unset",
            json!({"smoke": {"requests": []}}),
            json!({"smoke": null}),
            json!({"smoke": {"requests": []}}),
            vec!["smoke"],
        ),
        (
            "a field only the Rollout sets stays",
            json!({"fleetCheck": {"port": 9000}}),
            json!({"fleetCheck": {"path": "/v"}, "paused": true}),
            json!({"fleetCheck": {"port": 9000, "path": "/v"}, "paused": true}),
            vec!["fleetCheck.port"],
        ),
        (
            "a list in the Rollout beats an object in the policy",
            json!({"contractGate": {"ignore": {"pacticipant": "x"}}}),
            json!({"contractGate": {"ignore": [{"pacticipant": "y"}]}}),
            json!({"contractGate": {"ignore": [{"pacticipant": "y"}]}}),
            vec![],
        ),
        (
            "analysis.metrics merge by name: fields key by key, the Rollout wins",
            json!({"analysis": {"metrics": [
                {"name": "pay", "weight": 2, "counterPair": {"errors": "e", "total": "t", "tolerance": 1.2}},
                {"name": "lat", "histogram": {"query": "h", "quantiles": [{"quantile": 0.9}]}}]}}),
            json!({"analysis": {"metrics": [
                {"name": "pay", "counterPair": {"tolerance": 2.0}},
                {"name": "own", "counterPair": {"errors": "e2", "total": "t2"}}]}}),
            json!({"analysis": {"metrics": [
                {"name": "pay", "weight": 2, "counterPair": {"errors": "e", "total": "t", "tolerance": 2.0}},
                {"name": "lat", "histogram": {"query": "h", "quantiles": [{"quantile": 0.9}]}},
                {"name": "own", "counterPair": {"errors": "e2", "total": "t2"}}]}}),
            vec![
                "analysis.metrics[pay].counterPair.errors",
                "analysis.metrics[pay].counterPair.total",
                "analysis.metrics[pay].weight",
                "analysis.metrics[lat]",
            ],
        ),
        (
            "analysis.metrics absent in the Rollout come from the policy whole",
            json!({"analysis": {"metrics": [{"name": "pay", "counterPair": {"errors": "e", "total": "t"}}]}}),
            json!({"analysis": {"alpha": 0.01}}),
            json!({"analysis": {"alpha": 0.01, "metrics": [{"name": "pay", "counterPair": {"errors": "e", "total": "t"}}]}}),
            vec!["analysis.metrics"],
        ),
        (
            "a metric's list fields are the Rollout's whole",
            json!({"analysis": {"metrics": [{"name": "lat", "histogram": {"query": "h", "quantiles": [{"quantile": 0.9}, {"quantile": 0.99}]}}]}}),
            json!({"analysis": {"metrics": [{"name": "lat", "histogram": {"quantiles": [{"quantile": 0.5}]}}]}}),
            json!({"analysis": {"metrics": [{"name": "lat", "histogram": {"query": "h", "quantiles": [{"quantile": 0.5}]}}]}}),
            vec!["analysis.metrics[lat].histogram.query"],
        ),
        (
            "a policy's maxRate and passRate beside the Rollout's tolerance",
            json!({"analysis": {"errorRate": {"maxRate": 0.05, "passRate": 0.01}}}),
            json!({"analysis": {"errorRate": {"tolerance": 1.2}}}),
            json!({"analysis": {"errorRate": {"tolerance": 1.2, "maxRate": 0.05, "passRate": 0.01}}}),
            vec!["analysis.errorRate.maxRate", "analysis.errorRate.passRate"],
        ),
        (
            "an empty policy gives nothing",
            json!({}),
            json!({"steps": [{"setWeight": 5}]}),
            json!({"steps": [{"setWeight": 5}]}),
            vec![],
        ),
    ];
    for (name, policy, rollout, merged, from) in rows {
        let mut got_from = Vec::new();
        let got = merge(&policy, &rollout, "", &mut got_from);
        assert_eq!(got, merged, "{name}");
        assert_eq!(got_from, from, "{name}: paths from the policy");
    }
}

#[test]
fn the_effective_spec_takes_the_policy_and_applies_the_code_defaults() {
    let spec = policy_spec(json!({
        "analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                     "errorRate": {}},
        "steps": [{"setWeight": 20}, {"analyze": {"duration": "5m"}}],
        "progressDeadline": "15m"
    }));
    let policy = Policy {
        kind: PolicyKind::ClusterRolloutPolicy,
        name: "platform",
        spec: &spec,
    };
    let eff = effective_json(
        "shop",
        &rollout(json!({})),
        &serde_json::to_value(&spec).unwrap(),
        &policy,
    )
    .expect("merges");
    assert_eq!(eff.from_policy, ["analysis", "progressDeadline", "steps"]);
    assert_eq!(eff.spec.steps.len(), 2);
    assert_eq!(
        eff.spec.progress_deadline(),
        std::time::Duration::from_secs(900)
    );
    // fleetCheck is in neither: the defaults come from code, not from a schema default
    assert!(eff.spec.fleet_check.is_none());
    assert_eq!(eff.spec.fleet_check().port, 8080);
    assert_eq!(
        eff.spec.policy_ref.as_ref().map(|r| r.name.as_str()),
        Some("platform"),
        "the policyRef survives the check"
    );
    // and without any policy field for it, progressDeadline falls back to 10m in code
    let bare = policy_spec(json!({"steps": [{"setWeight": 20}]}));
    let policy = Policy {
        kind: PolicyKind::RolloutPolicy,
        name: "p",
        spec: &bare,
    };
    let eff = effective_json(
        "shop",
        &rollout(json!({})),
        &serde_json::to_value(&bare).unwrap(),
        &policy,
    )
    .expect("merges");
    assert_eq!(
        eff.spec.progress_deadline(),
        std::time::Duration::from_secs(600)
    );
}

#[test]
fn locked_fields_at_the_policys_value_pass() {
    let spec = policy_spec(json!({
        "analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                     "errorRate": {"tolerance": 1}},
        "steps": [{"setWeight": 20}],
        "enforce": ["analysis.provider.prometheus.address", "analysis.errorRate.tolerance"]
    }));
    let policy = Policy {
        kind: PolicyKind::RolloutPolicy,
        name: "platform",
        spec: &spec,
    };
    let mine = rollout(json!({"analysis": {
        "provider": {"prometheus": {"address": "http://prometheus:9090"}},
        "errorRate": {"tolerance": 1.0}}}));
    let eff = effective_json(
        "shop",
        &mine,
        &serde_json::to_value(&spec).unwrap(),
        &policy,
    )
    .expect("equal values are no override (1 and 1.0 are one number)");
    assert!(eff.from_policy.contains(&"steps".to_string()));
    let from = |p: &str| eff.from_policy.iter().any(|f| f == p);
    // the Rollout set the address (to the locked value); the timeout it left is the policy's
    assert!(!from("analysis.provider.prometheus.address"));
    assert!(from("analysis.provider.prometheus.timeout"));
}

#[test]
fn refusal_table() {
    let base = json!({
        "analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                     "errorRate": {"passTolerance": 1.5}, "maxDuration": "1h"},
        "contractGate": {"pacticipant": "shop", "environment": "production"},
        "steps": [{"setWeight": 20}, {"analyze": {"duration": "5m"}}]
    });
    // (name, policy changes, rollout fields, expected message fragment)
    let rows: Vec<(&str, Value, Value, &str)> = vec![
        (
            "a locked address overridden",
            json!({"enforce": ["analysis.provider.prometheus.address"]}),
            json!({"analysis": {"provider": {"prometheus": {"address": "http://mine:9090"}}, "errorRate": {}}}),
            "spec.analysis.provider.prometheus.address is locked by ClusterRolloutPolicy platform",
        ),
        (
            "locked steps replaced",
            json!({"enforce": ["steps"]}),
            json!({"steps": [{"setWeight": 100}]}),
            "spec.steps is locked by ClusterRolloutPolicy platform",
        ),
        (
            "a locked block changed inside",
            json!({"enforce": ["contractGate"]}),
            json!({"contractGate": {"pacticipant": "shop", "environment": "staging"}}),
            "spec.contractGate is locked by ClusterRolloutPolicy platform",
        ),
        (
            "a locked field the policy leaves unset",
            json!({"enforce": ["analysis.provider.prometheus.credentialsSecretRef"]}),
            json!({"analysis": {"provider": {"prometheus": {"credentialsSecretRef": {"name": "mine"}}}, "errorRate": {}}}),
            "spec.analysis.provider.prometheus.credentialsSecretRef is locked by ClusterRolloutPolicy platform (left unset)",
        ),
        (
            "a locked number changed",
            json!({"enforce": ["analysis.maxDuration"]}),
            json!({"analysis": {"errorRate": {}, "maxDuration": "2h"}}),
            "spec.analysis.maxDuration is locked by ClusterRolloutPolicy platform",
        ),
        (
            "a locked maxRate loosened",
            json!({"analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                                "errorRate": {"maxRate": 0.05}, "maxDuration": "1h"},
                   "enforce": ["analysis.errorRate.maxRate"]}),
            json!({"analysis": {"errorRate": {"maxRate": 0.2}}}),
            "spec.analysis.errorRate.maxRate is locked by ClusterRolloutPolicy platform",
        ),
        (
            "the Rollout's passRate not below the policy's maxRate",
            json!({"analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                                "errorRate": {"maxRate": 0.02}, "maxDuration": "1h"}}),
            json!({"analysis": {"errorRate": {"passRate": 0.05}}}),
            "spec.analysis.errorRate.passRate must be below spec.analysis.errorRate.maxRate",
        ),
        (
            "analyze steps from the policy, analysis nowhere",
            json!({"analysis": null}),
            json!({}),
            "spec.analysis is required when spec.steps contains an analyze step",
        ),
        (
            "steps nowhere",
            json!({"steps": null}),
            json!({}),
            "spec.steps is required unless spec.policyRef names a policy that gives them",
        ),
        (
            "the Rollout's tolerance above the policy's passTolerance",
            json!({}),
            json!({"analysis": {"errorRate": {"tolerance": 3.0}}}),
            "spec.analysis.errorRate.passTolerance must be at least spec.analysis.errorRate.tolerance",
        ),
        (
            "the Rollout's interval above the policy's maxDuration",
            json!({}),
            json!({"analysis": {"interval": "2h"}}),
            "spec.analysis.maxDuration must be at least spec.analysis.interval",
        ),
        (
            "a header route step from the policy on replica-ratio traffic",
            json!({"steps": [{"setHeaderRoute": {"name": "beta", "match": [{"headerName": "x-beta", "headerValue": {"exact": "1"}}]}}]}),
            json!({}),
            "spec.steps[].setHeaderRoute needs spec.traffic.type HTTPRoute",
        ),
    ];
    for (name, change, mine, expected) in rows {
        let mut pj = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                pj.as_object_mut().unwrap().remove(k);
            } else {
                pj[k] = v.clone();
            }
        }
        let spec = policy_spec(pj.clone());
        let policy = Policy {
            kind: PolicyKind::ClusterRolloutPolicy,
            name: "platform",
            spec: &spec,
        };
        let pj = serde_json::to_value(&spec).unwrap();
        let err = effective_json("shop", &rollout(mine), &pj, &policy)
            .expect_err(name)
            .to_string();
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in {err:?}"
        );
    }
}

#[test]
fn the_snapshot_is_in_force_from_canary_starting_to_the_end_of_the_attempt() {
    let spec: RolloutSpec = serde_json::from_value(rollout(json!({}))).expect("a spec");
    let taken = PolicySnapshot {
        kind: PolicyKind::ClusterRolloutPolicy,
        name: "platform".into(),
        generation: Some(3),
        version: "2.0.0".into(),
        analysis_hash: "0".into(),
        from_policy: vec!["steps".into()],
        spec: json!({"steps": [{"setWeight": 10}]}),
    };
    // (phase, snapshot in force)
    let rows = [
        (Phase::Pending, false),
        (Phase::ContractGate, false),
        (Phase::CanaryStarting, true),
        (Phase::FleetCheck, true),
        (Phase::SmokeCheck, true),
        (Phase::Analyzing, true),
        (Phase::Promoting, true),
        (Phase::RollingBack, true),
        (Phase::Succeeded, false),
        (Phase::RolledBack, false),
        (Phase::Blocked, false),
    ];
    for (phase, in_force) in rows {
        let status = RolloutStatus {
            phase,
            policy: Some(taken.clone()),
            ..Default::default()
        };
        assert_eq!(
            snapshot_in_force(&spec, Some(&status)).is_some(),
            in_force,
            "{phase:?}"
        );
    }
    let analyzing = |snapshot: PolicySnapshot| RolloutStatus {
        phase: Phase::Analyzing,
        policy: Some(snapshot),
        ..Default::default()
    };
    // a new version, another policy, or no snapshot at all: the live policy is read
    let other_version = PolicySnapshot {
        version: "1.0.0".into(),
        ..taken.clone()
    };
    let other_name = PolicySnapshot {
        name: "strict".into(),
        ..taken.clone()
    };
    let other_kind = PolicySnapshot {
        kind: PolicyKind::RolloutPolicy,
        ..taken.clone()
    };
    for s in [other_version, other_name, other_kind] {
        assert!(
            snapshot_in_force(&spec, Some(&analyzing(s.clone()))).is_none(),
            "{s:?}"
        );
    }
    let bare = RolloutStatus {
        phase: Phase::Analyzing,
        ..Default::default()
    };
    assert!(snapshot_in_force(&spec, Some(&bare)).is_none());
    assert!(snapshot_in_force(&spec, None).is_none());
}

#[test]
fn the_analysis_hash_follows_the_effective_analysis_only() {
    let a: RolloutSpec =
        serde_json::from_value(rollout(json!({"analysis": {"errorRate": {}}}))).expect("a spec");
    let mut b = a.clone();
    b.replicas = 9;
    assert_eq!(
        analysis_hash(&a),
        analysis_hash(&b),
        "replicas are not analysis"
    );
    b.analysis.as_mut().unwrap().alpha = 0.01;
    assert_ne!(analysis_hash(&a), analysis_hash(&b));
    assert_eq!(analysis_hash(&a).len(), 16);
}
