//! Rollback readiness end to end: a stable pod that goes missing and is not replaced keeps the
//! canary out of traffic with `RollbackNotReady`, naming what is missing; once stable is whole
//! again the rollout proceeds on its own.
//!
//! What keeps the pod from being replaced is an admission policy that refuses new stable pods
//! in the test's namespace (a ValidatingAdmissionPolicy, CEL in the real kube-apiserver), the
//! way an exhausted quota or a broken admission webhook keeps a ReplicaSet short in a real
//! cluster. The Deployment controller keeps asking for the pod; the API server keeps saying no.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::crd::{Phase, Reason};

use crate::support::scenario::Scenario;
use crate::support::wait::wait_until;

/// A policy (and its binding) refusing new pods labelled `tollgate.dev/track=stable` in `ns`.
async fn refuse_new_stable_pods(world: &Scenario) -> String {
    let name = format!("{}-no-new-stable-pods", world.ns.name);
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["pods"]}]},
            "validations": [{
                "expression": "!has(object.metadata.labels) || !('tollgate.dev/track' in object.metadata.labels) || object.metadata.labels['tollgate.dev/track'] != 'stable'",
                "message": "this test refuses new stable pods"
            }]
        }
    }))
    .expect("policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels":
                {"kubernetes.io/metadata.name": world.ns.name}}}
        }
    }))
    .expect("binding");
    let client = world.ns.client.clone();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("create the policy");
    Api::<ValidatingAdmissionPolicyBinding>::all(client)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create the binding");
    // The API server takes the policy up asynchronously: wait until a dry-run stable pod is refused.
    let pods: Api<Pod> = world.ns.api();
    let probe: Pod = serde_json::from_value(json!({
        "metadata": {"name": "probe", "labels": {"tollgate.dev/track": "stable"}},
        "spec": {"containers": [{"name": "c", "image": "demo:probe"}]}
    }))
    .expect("probe pod");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    wait_until(
        Duration::from_secs(30),
        "the admission policy to refuse stable pods",
        || async { pods.create(&dry, &probe).await.is_err().then_some(()) },
    )
    .await;
    name
}

async fn allow_stable_pods(world: &Scenario, name: &str) {
    let client = world.ns.client.clone();
    let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
    let _ = Api::<ValidatingAdmissionPolicy>::all(client)
        .delete(name, &DeleteParams::default())
        .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_missing_stable_pod_holds_the_canary_out_of_traffic_until_restored() {
    let world = Scenario::with_stable_v1("e2e-rbready").await;
    let policy = refuse_new_stable_pods(&world).await;

    // Kill one of the four stable pods: nothing can replace it.
    let pods: Api<Pod> = world.ns.api();
    let stable = world.ns.pods("tollgate.dev/track=stable").await;
    assert_eq!(stable.len(), 4, "four stable pods before");
    let victim = stable[0].metadata.name.clone().expect("pod name");
    pods.delete(&victim, &DeleteParams::default())
        .await
        .expect("delete a stable pod");
    let deployments: Api<Deployment> = world.ns.api();
    wait_until(
        Duration::from_secs(60),
        "the stable Deployment to report 3 ready pods",
        || async {
            let d = deployments.get("demo-stable").await.ok()?;
            let s = d.status?;
            (s.ready_replicas == Some(3) && s.replicas == Some(3)).then_some(())
        },
    )
    .await;

    world.roll_to("2.0.0", 0.05, None).await;
    let held = world
        .wait("RollbackNotReady before any traffic", |s| {
            s.reason() == Some(Reason::RollbackNotReady)
        })
        .await;
    let status = held.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Phase::CanaryStarting, "{status:#?}");
    assert_eq!(status.current_weight, 0);
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("3 of 4 stable pods (1.0.0) ready (1 missing)"),
        "{message}"
    );
    // The canary pods are up, but held out of traffic for several looks.
    let canary = world.ns.pods("tollgate.dev/track=canary").await;
    assert_eq!(canary.len(), 2, "the canary pods started");
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        let s = world
            .api
            .get("demo")
            .await
            .expect("rollout")
            .status
            .unwrap();
        assert_eq!(s.phase, Phase::CanaryStarting, "{s:#?}");
        assert_eq!(s.current_weight, 0);
        assert_eq!(s.current_step_index, None);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events = world.env.kubectl(&[
        "get",
        "events",
        "-n",
        &world.ns.name,
        "--field-selector",
        "reason=RollbackNotReady",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a RollbackNotReady Event");

    // Restore: admit stable pods again and wake the ReplicaSet (it backs off between refusals).
    allow_stable_pods(&world, &policy).await;
    let sets: Api<ReplicaSet> = world.ns.api();
    for rs in sets
        .list(&ListParams::default().labels("tollgate.dev/track=stable"))
        .await
        .expect("replica sets")
        .items
    {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let poke = json!({"metadata": {"annotations": {"tollgate.test/poke": "1"}}});
        let _ = sets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&poke))
            .await;
    }
    let moved = world
        .wait("the canary to take traffic once stable is whole", |s| {
            s.phase == Phase::Analyzing && s.current_weight == 50
        })
        .await;
    let status = moved.status.unwrap_or_default();
    assert!(status.history.iter().any(|d| d.reason == "StepStarted"));
    world.end().await;
}
