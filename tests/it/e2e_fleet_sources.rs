//! The fleet check without a version endpoint, through the whole operator: each pod's version
//! read from the `build_info` series a real Prometheus scrapes from it
//! (`fleetCheck.source: prometheus`). A pod left behind on the old version is named and blocks
//! the rollout before any traffic moves; without it, new pods (which have no series until their
//! first scrape) hold the check a moment and the rollout is promoted.

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tollgate::crd::Phase;

use crate::support::http::http;
use crate::support::rollout_manifest::{template, NAME};
use crate::support::scenario::Scenario;
use crate::support::wait::wait_until;

/// Roll the scenario's Rollout to `version`, its pods attested from Prometheus only.
async fn roll_attested_by_prometheus(world: &Scenario, version: &str) {
    let patch = json!({"spec": {
        "version": version,
        "template": template(version, 0.05, None),
        "fleetCheck": {"source": "prometheus", "buildInfo": {"metric": "demo_app_build_info"}}
    }});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("roll");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn build_info_from_prometheus_names_a_stale_pod_and_passes_a_healthy_fleet() {
    let world = Scenario::with_stable_v1("e2e-build-info").await;
    // A pod left on 1.0.0 with the canary's labels (the Knight Capital failure), as in the HTTP
    // source's e2e; here nothing asks the pods: Prometheus has what they export.
    world
        .create_leftover_canary_pod("demo-canary-leftover", "1.0.0")
        .await;
    let prometheus = world.env.prometheus_url().to_string();
    wait_until(
        std::time::Duration::from_secs(90),
        "Prometheus to have the stale pod's build_info",
        || async {
            let body = http()
                .get(format!("{prometheus}/api/v1/query"))
                .query(&[(
                    "query",
                    "demo_app_build_info{pod=\"demo-canary-leftover\"}".to_string(),
                )])
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            body.contains("\"version\":\"1.0.0\"").then_some(())
        },
    )
    .await;

    roll_attested_by_prometheus(&world, "2.0.0").await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    assert_eq!(status.phase, Phase::Blocked, "{status:#?}\n{log}");
    assert_eq!(status.reason.as_deref(), Some("FleetCheckFailed"));
    assert_eq!(status.current_weight, 0, "no traffic moved");
    let fleet = status.fleet.clone().expect("fleet evidence");
    let named = fleet
        .failing_pods
        .iter()
        .find(|p| p.pod == "demo-canary-leftover" && p.problem == "VersionMismatch")
        .unwrap_or_else(|| panic!("the stale pod is named with its version: {fleet:#?}"));
    assert_eq!(
        (named.reported.as_deref(), named.expected.as_deref()),
        (Some("1.0.0"), Some("2.0.0")),
        "{named:?}"
    );
    println!(
        "build_info source, stale pod: {:?} {:?}: {} of {} pods failing, the stale one: {named:?}",
        status.phase, status.reason, fleet.pods_failing, fleet.pods_checked
    );

    // Without the leftover, the same source lets a healthy version through: its new pods have
    // no series until Prometheus has scraped them, which holds the check, never fails it.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = world.ns.api();
    pods.delete("demo-canary-leftover", &DeleteParams::default())
        .await
        .expect("delete the stale pod");
    roll_attested_by_prometheus(&world, "3.0.0").await;
    let status = world.finished("3.0.0").await;
    let log = world.operator.log_tail();
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("3.0.0"));
    let fleet = status.fleet.expect("fleet evidence");
    println!(
        "build_info source, healthy: promoted; fleet {:?}, {} of {} pods matching",
        fleet.verdict, fleet.pods_matching, fleet.pods_checked
    );
    assert!(
        fleet.pods_checked > 0 && fleet.pods_failing == 0,
        "{fleet:?}"
    );
    world.end().await;
}
