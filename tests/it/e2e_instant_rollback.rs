//! The scale-down delay after a promotion, end to end through a real Gateway API HTTPRoute (the
//! load generator follows the route's weights and its Services' selectors, as a gateway would):
//! 2.0.0 is promoted while 1.0.0 is held at full size out of traffic; an abort within the delay
//! sends every request back to 1.0.0's pods, none of which had to start; an abort after the
//! delay is refused and changes nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tollgate::crd::{Phase, RolloutStatus};

use crate::support::load::run_load_gen;
use crate::support::rollout_manifest::NAME;
use crate::support::scenario::{Options, Scenario};

async fn promoted_with_delay(test: &str, delay: &str) -> Scenario {
    let world = Scenario::start_with(
        test,
        Options {
            http_route: true,
            ..Options::default()
        },
    )
    .await;
    let patch = json!({"spec": {"strategy": {"scaleDownDelay": delay}}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set the scale-down delay");
    world.roll_to("2.0.0", 0.05, None).await;
    world
}

async fn abort(world: &Scenario, token: &str) {
    let patch = json!({"spec": {"abortRequest": token}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("abort");
}

/// A short burst through the route: requests per track, and the pods that answered.
fn burst(world: &Scenario) -> (serde_json::Value, BTreeSet<String>) {
    let report = run_load_gen(
        &world.env,
        &[
            "--namespace",
            &world.ns.name,
            "--http-route",
            NAME,
            "--group-label",
            "tollgate.dev/track",
            "--rate",
            "200",
            "--max-requests",
            "40",
            "--duration-secs",
            "5",
        ],
    );
    let pods = report["targets"]
        .as_object()
        .map(|t| {
            t.iter()
                .filter(|(_, c)| c["sent"].as_u64().unwrap_or(0) > 0)
                .map(|(k, _)| k.rsplit('/').next().unwrap_or(k).to_string())
                .collect()
        })
        .unwrap_or_default();
    (report["groups"].clone(), pods)
}

fn sent(groups: &serde_json::Value, track: &str) -> u64 {
    groups[track]["sent"].as_u64().unwrap_or(0)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn abort_within_the_scale_down_delay_rolls_back_instantly() {
    let world = promoted_with_delay("e2e-instant", "5m").await;
    let promoted = world
        .wait("2.0.0 promoted with 1.0.0 held", |s| {
            s.phase == Phase::Succeeded
                && s.stable_version.as_deref() == Some("2.0.0")
                && s.rollback_window
                    .as_ref()
                    .is_some_and(|w| w.until.is_some())
        })
        .await;
    let window = promoted.status.clone().unwrap_or_default().rollback_window;
    // Before the abort: the new version serves everything, the held pods nothing.
    let (before, _) = burst(&world);
    let pods: Api<Pod> = world.ns.api();
    let held: BTreeSet<String> = pods
        .list(&ListParams::default().labels("tollgate.dev/track=baseline"))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();

    let start = Instant::now();
    abort(&world, "instant").await;
    // Bursts until every request goes to 1.0.0's held pods.
    let (switched_after, answered) = loop {
        let (groups, answered) = burst(&world);
        let total: u64 = ["stable", "canary", "baseline"]
            .iter()
            .map(|t| sent(&groups, t))
            .sum();
        if total > 0 && sent(&groups, "baseline") == total {
            break (start.elapsed(), answered);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "traffic never moved to the held pods: {groups}\n{}",
            world.operator.log_tail()
        );
    };
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    println!(
        "instant rollback: all traffic on 1.0.0 {:.2}s after the abort; before: {before}; held pods {held:?} answered by {answered:?}; window {window:?}",
        switched_after.as_secs_f64()
    );
    assert_eq!(
        sent(&before, "baseline"),
        0,
        "held pods out of traffic: {before}"
    );
    assert!(sent(&before, "stable") > 0, "{before}");
    assert_eq!(held.len(), 4, "1.0.0 held at full size: {held:?}");
    assert!(
        answered.is_subset(&held),
        "every answer came from a pod that ran before the abort: {answered:?} vs {held:?}"
    );
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(status.reason.as_deref(), Some("Aborted"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0"));
    assert!(status
        .history
        .iter()
        .any(|d| d.reason == "Aborted" && d.message.contains("instant rollback")));
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn abort_after_the_scale_down_delay_is_refused() {
    let world = promoted_with_delay("e2e-late-abort", "3s").await;
    world
        .wait("2.0.0 promoted and its delay over", |s| {
            s.phase == Phase::Succeeded
                && s.stable_version.as_deref() == Some("2.0.0")
                && s.rollback_window.is_none()
        })
        .await;
    abort(&world, "late").await;
    let r = world
        .wait("the abort token handled", |s: &RolloutStatus| {
            s.handled_requests.abort.as_deref() == Some("late")
        })
        .await;
    let status = r.status.unwrap_or_default();
    let (after, _) = burst(&world);
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    assert!(
        log.contains("abortRequest refused"),
        "the refusal is said: {log}"
    );
    assert_eq!(sent(&after, "baseline"), 0, "{after}");
}
