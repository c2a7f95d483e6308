//! Scaling a Rollout in the middle of its canary, through the `/scale` subresource
//! (`kubectl scale rollout/demo --replicas=6`, what an HorizontalPodAutoscaler does too): the
//! weight stays, the analysis carries on (same start, its looks keep counting), the tracks end
//! at the split `docs/adoption.md` gives for replica ratio (canary = the weight's share of the
//! total, rounded up; stable the rest) and the rollout is still promoted, at the new size. The
//! canary holds at 50% on an open pause while it is scaled (the analysis looks on through a
//! pause), so a quick pass cannot promote it before the scale; resumed, its analyze step passes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tollgate::crd::Phase;

use crate::support::rollout_manifest::{template, NAME};
use crate::support::scenario::Scenario;
use crate::support::wait::wait_until;

async fn replicas(api: &Api<Deployment>, name: &str) -> Option<(i32, i32)> {
    let d = api.get_opt(name).await.ok().flatten()?;
    let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
    let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    Some((want, ready))
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn scaling_mid_canary_keeps_the_weight_and_the_analysis() {
    let world = Scenario::with_stable_v1("e2e-scale-mid").await;
    let roll = json!({"spec": {"version": "2.0.0", "template": template("2.0.0", 0.05, None),
        "steps": [{"setWeight": 50}, {"pause": {}}, {"analyze": {"duration": "4m"}}]}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&roll))
        .await
        .expect("roll to 2.0.0");
    let before = world
        .wait("2.0.0 held at 50% with a look taken", |s| {
            s.phase == Phase::Analyzing
                && s.current_step_index == Some(1)
                && s.current_weight == 50
                && s.analysis.as_ref().is_some_and(|a| a.looks >= 1)
        })
        .await
        .status
        .unwrap_or_default();
    let analysis_before = before.analysis.clone().unwrap_or_default();

    world.env.kubectl(&[
        "-n",
        &world.ns.name,
        "scale",
        &format!("rollout/{NAME}"),
        "--replicas=6",
    ]);
    let deployments: Api<Deployment> = world.ns.api();
    // Replica ratio at 50% of 6: the canary 3 (rounded up), stable the other 3.
    wait_until(
        Duration::from_secs(90),
        "the tracks at 3 + 3 ready",
        || async {
            let stable = replicas(&deployments, "demo-stable").await?;
            let canary = replicas(&deployments, "demo-canary").await?;
            (stable == (3, 3) && canary == (3, 3)).then_some(())
        },
    )
    .await;
    let looks_at_scale = world
        .api
        .get(NAME)
        .await
        .ok()
        .and_then(|r| r.status)
        .and_then(|s| s.analysis)
        .map_or(0, |a| a.looks);
    let after = world
        .wait("a look after the scale, still at 50%", |s| {
            s.replicas == Some(6)
                && s.analysis
                    .as_ref()
                    .is_some_and(|a| a.looks > looks_at_scale)
                || s.phase != Phase::Analyzing
        })
        .await
        .status
        .unwrap_or_default();
    let analysis_after = after.analysis.clone().unwrap_or_default();
    let resume = json!({"spec": {"resumeRequest": "scaled"}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .expect("resume");
    let status = world.finished("2.0.0").await;
    let stable_end = replicas(&deployments, "demo-stable").await;
    println!(
        "scale mid-canary: before looks {} started {:?}; after the scale looks {} started {:?} weight {} step {:?}; ended {:?} stable {stable_end:?}",
        analysis_before.looks,
        analysis_before.started_at,
        analysis_after.looks,
        analysis_after.started_at,
        after.current_weight,
        after.current_step_index,
        status.phase
    );
    world.end().await;

    assert_eq!(after.phase, Phase::Analyzing, "{after:?}");
    assert_eq!(after.current_weight, 50, "the weight does not change");
    assert_eq!(after.current_step_index, Some(1));
    assert_eq!(
        analysis_after.started_at, analysis_before.started_at,
        "the analysis is not restarted"
    );
    assert!(analysis_after.looks > analysis_before.looks);
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    assert_eq!(stable_end, Some((6, 6)), "promoted at the new size");
}
