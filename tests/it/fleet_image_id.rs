//! Attestation from the kubelet's record, on the local cluster: eight pods of a real Deployment
//! (kwok nodes), each pod's `status.containerStatuses[].imageID` set as a kubelet would after
//! pulling. One node kept an old image under the reused tag: its digest differs, and the fleet
//! check, reading only the pods' status (no version endpoint), blocks and names that pod.

use std::time::Duration;

use crate::support::cluster::TestEnv;
use crate::support::wait::wait_until;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::crd::FleetCheckSpec;
use tollgate::gates::fleet::{
    check, inventory, ExpectedWorkload, FleetVerdict, ImageRecordAttestor, ProblemKind, Track,
};
use tollgate::rollout::decide::FleetScope;
use tollgate::runtime::observe::{fleet_expectation, image_expectation};

fn digest(fill: char) -> String {
    format!("sha256:{}", fill.to_string().repeat(64))
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn one_pod_of_eight_on_a_stale_image_under_a_reused_tag_blocks() {
    let env = TestEnv::load();
    let ns = env.namespace("fleet-imageid").await;
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop"},
        "spec": {
            "replicas": 8,
            "selector": {"matchLabels": {"app": "shop-img"}},
            "template": {
                "metadata": {"labels": {"app": "shop-img"}},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.local/shop:2.0.0",
                    "env": [{"name": "DEMO_VERSION", "value": "2.0.0"}]
                }]}
            }
        }
    }))
    .expect("deployment");
    ns.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let pods = wait_until(Duration::from_secs(60), "8 ready pods", || async {
        let pods = ns.pods("app=shop-img").await;
        let ready = pods
            .iter()
            .filter(|p| tollgate::gates::fleet::cluster::is_ready(p))
            .count();
        (ready == 8).then_some(pods)
    })
    .await;

    // The kubelet's record: what each node actually pulled for the tag. One is stale.
    let mut names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    let stale = names[4].clone();
    let api = ns.api::<Pod>();
    for name in &names {
        let id = if *name == stale {
            digest('0')
        } else {
            digest('1')
        };
        let status = json!({"status": {"containerStatuses": [{
            "name": "app", "image": "registry.local/shop:2.0.0",
            "imageID": format!("registry.local/shop@{id}"),
            "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-12-07T00:00:00Z"}}
        }]}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("patch pod status");
    }
    let pods = wait_until(Duration::from_secs(20), "imageIDs recorded", || async {
        let pods = ns.pods("app=shop-img").await;
        let recorded = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| !c.image_id.is_empty()))
            })
            .count();
        (recorded == 8).then_some(pods)
    })
    .await;

    // The controller's mapping: the template is tagged, so the Rollout names the digest.
    let check_spec = FleetCheckSpec {
        source: tollgate::crd::FleetSource::ImageId,
        expected_image_digest: Some(digest('1')),
        ..FleetCheckSpec::default()
    };
    let spec: tollgate::crd::RolloutSpec = serde_json::from_value(json!({
        "version": "2.0.0", "workloadRef": {"name": "shop"}, "steps": [{"setWeight": 10}]
    }))
    .expect("spec");
    let scope = FleetScope {
        canary_version: Some("2.0.0".into()),
        stable_version: None,
        original: false,
    };
    let inv = inventory(Track::Canary, &ExpectedWorkload::default(), &pods);
    let records = ImageRecordAttestor::new(&inv, Some("app"));
    let mut expect = fleet_expectation(&spec, &scope);
    image_expectation(
        &mut expect,
        &check_spec,
        &scope,
        Some(&deployment),
        None,
        Some("app"),
        &records,
    )
    .expect("expectation");
    let out = check(&records, 8, &expect, inv.clone()).await;
    println!("{}", out.report.summary());
    assert_eq!(out.verdict(), FleetVerdict::Failed);
    assert_eq!(out.report.canary.checked, 8);
    assert_eq!(out.report.canary.passed, 7);
    assert_eq!(out.report.failing_pods, 1);
    let version = out
        .report
        .failures
        .iter()
        .find(|f| f.problem.kind == ProblemKind::VersionMismatch)
        .expect("a VersionMismatch");
    assert_eq!(version.pod, stale);
    assert_eq!(
        version.problem.reported.as_deref(),
        Some(digest('0').as_str())
    );
    assert_eq!(
        version.problem.expected.as_deref(),
        Some(digest('1').as_str())
    );

    // Without a digest to expect (tagged template, none declared) the check refuses to run:
    // a tag says nothing about what a node pulled.
    let mut expect = fleet_expectation(&spec, &scope);
    let e = image_expectation(
        &mut expect,
        &FleetCheckSpec {
            source: tollgate::crd::FleetSource::ImageId,
            ..FleetCheckSpec::default()
        },
        &scope,
        Some(&deployment),
        None,
        Some("app"),
        &records,
    )
    .unwrap_err();
    assert!(e.to_string().contains("expectedImageDigest"), "{e}");
    ns.delete().await;
}
