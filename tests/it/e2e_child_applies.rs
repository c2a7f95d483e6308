//! A Rollout at rest costs no applies of its children (issue 20, item 3): the reconcile reads
//! its Deployments and Services from the watch cache and skips a server-side apply when the
//! child still carries what the operator applied to it last; a child someone else changed is
//! applied again at once, so the skip never hides drift.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::support::http::http;
use crate::support::rollout_manifest::NAME;
use crate::support::scenario::Scenario;
use crate::support::wait::wait_until;

/// `tollgate_child_applies_total{kind, outcome}` as the operator's `/metrics` says (0 when the
/// series is not there yet).
async fn applies(admin: &str, kind: &str, outcome: &str) -> u64 {
    let text = http()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text");
    let series = format!("tollgate_child_applies_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a counter value"))
}

async fn stable_replicas(api: &Api<Deployment>) -> Option<i32> {
    let d = api.get_opt("demo-stable").await.ok().flatten()?;
    d.spec.and_then(|s| s.replicas)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn children_at_rest_are_not_applied_again_but_drift_is() {
    let world = Scenario::with_stable_v1("e2e-child-applies").await;
    let admin = world.operator.admin.clone();
    let deployments: Api<Deployment> = world.ns.api();
    let want = stable_replicas(&deployments)
        .await
        .expect("demo-stable has replicas");
    let applied = applies(&admin, "Deployment", "applied").await;
    let services_applied = applies(&admin, "Service", "applied").await;
    let skipped = applies(&admin, "Deployment", "skipped").await;
    assert!(applied >= 1, "the stable Deployment was applied once");

    // Wake the Rollout a few times: an annotation is a new event (a reconcile each) and no new
    // generation, so nothing about its children is to change.
    for i in 0..3 {
        let poke = json!({"metadata": {"annotations": {"test.tollgate.dev/poke": i.to_string()}}});
        world
            .api
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&poke))
            .await
            .expect("annotate the Rollout");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_until(
        Duration::from_secs(30),
        "three more passes over the Rollout at rest",
        || async { (applies(&admin, "Deployment", "skipped").await >= skipped + 3).then_some(()) },
    )
    .await;
    assert_eq!(
        applies(&admin, "Deployment", "applied").await,
        applied,
        "a Deployment at rest was applied again"
    );
    assert_eq!(
        applies(&admin, "Service", "applied").await,
        services_applied,
        "a Service at rest was applied again"
    );

    // Drift: someone scales the stable Deployment; the operator applies it back.
    let scale = json!({"spec": {"replicas": want + 3}});
    deployments
        .patch(
            "demo-stable",
            &PatchParams::default(),
            &Patch::Merge(&scale),
        )
        .await
        .expect("scale demo-stable by hand");
    wait_until(
        Duration::from_secs(60),
        "demo-stable back at the Rollout's replicas",
        || async { (stable_replicas(&deployments).await == Some(want)).then_some(()) },
    )
    .await;
    assert!(
        applies(&admin, "Deployment", "applied").await > applied,
        "the drifted Deployment was applied again"
    );
}
