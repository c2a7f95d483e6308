//! RolloutPolicy and ClusterRolloutPolicy against the real API server and a real operator:
//! the invalid policies of tests/fixtures/policies/invalid.json refused by the API server with
//! the messages `tollgate lint` finds; two namespaces sharing one ClusterRolloutPolicy; a policy
//! missing, then created; edited and deleted mid-analysis (the attempt runs on its snapshot); a
//! locked field overridden. Each test has its own namespaces and policy names.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use tollgate::crd::validate::check;
use tollgate::crd::{CrdKind, Phase, RolloutStatus};

use crate::support::cluster::TestEnv;
use crate::support::rollout_manifest::{template, NAME};
use crate::support::scenario::Scenario;

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tollgate.dev", "v1alpha1", kind),
        plural,
    )
}

/// The policy every e2e here starts from: the e2e Rollout's own analysis and steps
/// (support::rollout_manifest), on the run's Prometheus, with its address locked.
fn policy_spec(prometheus: &str) -> Value {
    json!({
        "steps": [{"setWeight": 50}, {"analyze": {"duration": "4m"}}],
        "progressDeadline": "2m",
        "analysis": {
            "provider": {"prometheus": {"address": prometheus}},
            "interval": "10s",
            "minRequests": 100,
            "errorRate": {"passTolerance": 2.0},
            "onInconclusive": "Rollback"
        },
        "enforce": ["analysis.provider.prometheus.address"]
    })
}

fn object(kind: &str, name: &str, namespace: Option<&str>, spec: Value) -> DynamicObject {
    let mut metadata = json!({"name": name});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec
    }))
    .expect("a policy object")
}

/// Move the e2e Rollout to `version` on the policy `kind`/`name`: its own steps and analysis
/// are removed (a merge patch's null), so both come from the policy.
async fn roll_on_policy(scenario: &Scenario, version: &str, kind: &str, name: &str) {
    let patch = json!({"spec": {
        "version": version, "template": template(version, 0.05, None),
        "policyRef": {"kind": kind, "name": name},
        "steps": null, "analysis": null, "progressDeadline": null
    }});
    scenario
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the rollout onto the policy");
}

fn succeeded(version: &str) -> impl Fn(&RolloutStatus) -> bool + '_ {
    move |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some(version)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn invalid_policies_are_refused_with_the_messages_lint_finds() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("policy-invalid").await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/policies/invalid.json"
    ))
    .expect("fixture");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    assert!(cases.len() >= 16);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let (mut agreed, mut failures) = (0, Vec::new());
    for (kind, plural, crd, namespace) in [
        (
            "RolloutPolicy",
            "rolloutpolicies",
            CrdKind::RolloutPolicy,
            Some(ns.name.as_str()),
        ),
        (
            "ClusterRolloutPolicy",
            "clusterrolloutpolicies",
            CrdKind::ClusterRolloutPolicy,
            None,
        ),
    ] {
        let ar = resource(kind, plural);
        let api: Api<DynamicObject> = match namespace {
            Some(n) => Api::namespaced_with(ns.client.clone(), n, &ar),
            None => Api::all_with(ns.client.clone(), &ar),
        };
        // the valid base passes both
        let valid = object(
            kind,
            "valid",
            namespace,
            policy_spec("http://prometheus:9090"),
        );
        api.create(&dry, &valid)
            .await
            .unwrap_or_else(|e| panic!("{kind}: valid refused: {e}"));
        for case in &cases {
            let name = case["name"].as_str().unwrap();
            let expected = case["message"].as_str().unwrap();
            let obj = object(kind, "invalid", namespace, case["spec"].clone());
            let lint: Vec<String> = check(crd, &serde_json::to_value(&obj).unwrap())
                .into_iter()
                .map(|f| f.message)
                .collect();
            match api.create(&dry, &obj).await {
                Ok(_) => failures.push(format!("{kind} {name}: accepted")),
                Err(kube::Error::Api(s)) if s.code == 422 => {
                    if !s.message.contains(expected) {
                        failures.push(format!(
                            "{kind} {name}: {expected:?} not in {:?}",
                            s.message
                        ));
                    }
                    // every message lint finds is one the API server gives, and lint finds
                    // the expected one
                    let all_in = lint.iter().all(|m| s.message.contains(m.as_str()));
                    if all_in && lint.iter().any(|m| m == expected) {
                        agreed += 1;
                    } else {
                        failures.push(format!(
                            "{kind} {name}: lint {lint:?} vs API server {:?}",
                            s.message
                        ));
                    }
                }
                Err(e) => failures.push(format!("{kind} {name}: {e}")),
            }
        }
    }
    println!(
        "lint and the API server agree on {agreed} of {} invalid policies ({} x 2 kinds)",
        cases.len() * 2,
        cases.len()
    );
    ns.delete().await;
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(agreed, cases.len() * 2);
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn two_namespaces_share_a_cluster_policy_and_are_promoted_with_one_analysis_hash() {
    let (a, b) = tokio::join!(
        Scenario::with_stable_v1("policy-shared-a"),
        Scenario::with_stable_v1("policy-shared-b")
    );
    let name = format!("shared-{}", a.ns.name);
    let policies: Api<DynamicObject> = Api::all_with(
        a.ns.client.clone(),
        &resource("ClusterRolloutPolicy", "clusterrolloutpolicies"),
    );
    policies
        .create(
            &PostParams::default(),
            &object(
                "ClusterRolloutPolicy",
                &name,
                None,
                policy_spec(a.env.prometheus_url()),
            ),
        )
        .await
        .expect("create the ClusterRolloutPolicy");
    roll_on_policy(&a, "2.0.0", "ClusterRolloutPolicy", &name).await;
    roll_on_policy(&b, "2.0.0", "ClusterRolloutPolicy", &name).await;
    let (ra, rb) = tokio::join!(
        a.wait("a: 2.0.0 promoted on the policy", succeeded("2.0.0")),
        b.wait("b: 2.0.0 promoted on the policy", succeeded("2.0.0"))
    );
    let _ = policies.delete(&name, &DeleteParams::default()).await;
    a.operator.assert_never_forbidden();
    b.operator.assert_never_forbidden();
    let (sa, sb) = (ra.status.unwrap(), rb.status.unwrap());
    a.end().await;
    b.end().await;
    let (pa, pb) = (
        sa.policy.expect("a: status.policy"),
        sb.policy.expect("b: status.policy"),
    );
    assert_eq!(pa.analysis_hash, pb.analysis_hash, "one analysis for both");
    assert_eq!(pa.name, name);
    for from in ["analysis", "steps", "progressDeadline"] {
        assert!(
            pa.from_policy.iter().any(|p| p == from),
            "{from} in {:?}",
            pa.from_policy
        );
    }
    assert!(
        sa.history.iter().any(|d| d.reason == "Promoted"),
        "{:?}",
        sa.history
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_policy_missing_then_created_edited_and_deleted_mid_analysis_and_a_locked_override() {
    let world = Scenario::with_stable_v1("policy-life").await;
    let ns = world.ns.name.clone();
    let policies: Api<DynamicObject> = Api::namespaced_with(
        world.ns.client.clone(),
        &ns,
        &resource("RolloutPolicy", "rolloutpolicies"),
    );
    let prometheus = world.env.prometheus_url().to_string();

    // Missing: held as InvalidSpec naming the policy, before any canary.
    roll_on_policy(&world, "2.0.0", "RolloutPolicy", "team").await;
    let held = world
        .wait("2.0.0 held on the missing policy", |s| {
            s.reason.as_deref() == Some("InvalidSpec")
        })
        .await
        .status
        .unwrap();
    let message = held.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.policyRef: RolloutPolicy team not found"),
        "{held:#?}"
    );
    assert!(
        world.canary_replicas().await.unwrap_or(0) == 0,
        "no canary while held"
    );

    // Created: the watch wakes the Rollout, which runs on generation 1.
    policies
        .create(
            &PostParams::default(),
            &object("RolloutPolicy", "team", Some(&ns), policy_spec(&prometheus)),
        )
        .await
        .expect("create the policy");
    world
        .wait("2.0.0 analyzing on the policy", |s| {
            s.phase == Phase::Analyzing
                && s.policy.as_ref().is_some_and(|p| p.generation == Some(1))
        })
        .await;
    // Tightened mid-analysis: the running attempt keeps its snapshot.
    let mut tighter = policy_spec(&prometheus);
    tighter["analysis"]["alpha"] = json!(0.01);
    policies
        .patch(
            "team",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": tighter})),
        )
        .await
        .expect("tighten the policy");
    let done = world
        .wait("2.0.0 promoted on its snapshot", succeeded("2.0.0"))
        .await;
    let first = done.status.unwrap().policy.expect("status.policy");
    assert_eq!(
        first.generation,
        Some(1),
        "the snapshot taken at the canary's start"
    );
    assert_eq!(first.spec["analysis"]["alpha"], json!(0.02));

    // The next version takes the new policy; deleted mid-analysis, it still ends promoted.
    roll_on_policy(&world, "3.0.0", "RolloutPolicy", "team").await;
    let running = world
        .wait("3.0.0 analyzing on generation 2", |s| {
            s.phase == Phase::Analyzing
                && s.policy.as_ref().is_some_and(|p| p.generation == Some(2))
        })
        .await;
    let second = running.status.unwrap().policy.unwrap();
    assert_ne!(
        second.analysis_hash, first.analysis_hash,
        "alpha changed the analysis"
    );
    policies
        .delete("team", &DeleteParams::default())
        .await
        .expect("delete the policy");
    let done = world
        .wait(
            "3.0.0 promoted after its policy was deleted",
            succeeded("3.0.0"),
        )
        .await;
    assert_eq!(
        done.status.unwrap().policy.map(|p| p.generation),
        Some(Some(2))
    );

    // A locked field overridden: InvalidSpec naming the field and the policy.
    policies
        .create(
            &PostParams::default(),
            &object("RolloutPolicy", "team", Some(&ns), policy_spec(&prometheus)),
        )
        .await
        .expect("create the policy again");
    let patch = json!({"spec": {
        "version": "4.0.0", "template": template("4.0.0", 0.05, None),
        "analysis": {"provider": {"prometheus": {"address": "http://127.0.0.1:9/elsewhere"}}, "errorRate": {}}
    }});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("override the locked address");
    let refused = world
        .wait("4.0.0 refused on the lock", |s| {
            s.reason.as_deref() == Some("InvalidSpec")
                && s.message.as_deref().is_some_and(|m| m.contains("locked"))
        })
        .await
        .status
        .unwrap();
    world.operator.assert_never_forbidden();
    let _ = policies.delete("team", &DeleteParams::default()).await;
    world.end().await;
    let message = refused.message.unwrap_or_default();
    assert!(
        message
            .contains("spec.analysis.provider.prometheus.address is locked by RolloutPolicy team"),
        "{message}"
    );
    assert_eq!(refused.stable_version.as_deref(), Some("3.0.0"));
}
