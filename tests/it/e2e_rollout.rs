//! End to end on the local control plane: a real `tollgate controller` process watches one test
//! namespace; kwok runs the pods, the pod runner gives each a real demo-app, Prometheus scrapes
//! them and the load generator sends traffic over the ready pods (so the replica ratio is the
//! traffic split). Each test has its own namespace and its own operator, so they run in
//! parallel. Every operator runs under the Helm chart's ServiceAccount with the chart's own
//! (namespaced) RBAC, and every test fails if the operator was ever refused ("forbidden"): the
//! real RBAC authorizer proves the chart's permissions are enough.
//!
//! With `TOLLGATE_CAPTURE_DIR` set, every Rollout object seen in a new phase is written there as
//! `<test>--<Phase>.json` (the real objects behind tests/fixtures/rollouts/).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use serde_json::json;
use tollgate::crd::{MetricVerdict, Phase, Rollout};

use crate::support::cluster::TestEnv;
use crate::support::http::http;
use crate::support::http_route::route_weights;
use crate::support::load::Load;
use crate::support::operator::Operator;
use crate::support::pact_stub::Broker;
use crate::support::rollout_manifest::{
    error_rate_evidence, roll, rollout, template, template_with, NAME,
};
use crate::support::rollout_watch::wait_for;
use crate::support::scenario::{Options, Scenario};
use crate::support::wait::wait_until;
use crate::support::webhook_sink::Webhook;

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_healthy_canary_is_promoted_through_every_step() {
    let webhook = Webhook::start().await;
    let world = Scenario::notifying("e2e-promote", &webhook).await;
    world.roll_to("2.0.0", 0.05, None).await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    let notified = webhook.wait_for("Promoted", "2.0.0").await;
    world.end().await;
    // One notification per outcome: 1.0.0's first deployment and 2.0.0's promotion.
    assert_eq!(
        notified,
        vec![
            ("Promoted".to_string(), "1.0.0".to_string()),
            ("Promoted".to_string(), "2.0.0".to_string())
        ]
    );
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    let reasons: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    for expected in [
        "CanaryStarting",
        "StepStarted",
        "StepsCompleted",
        "Promoted",
    ] {
        assert!(reasons.contains(&expected), "no {expected} in {reasons:?}");
    }
    let error_rate = error_rate_evidence(&status);
    assert!(
        error_rate.canary_samples > 100 && error_rate.baseline_samples > 100,
        "{error_rate:?}"
    );
    // Promotion rests on evidence: the one-sided pass test proved the rate ratio below
    // passTolerance (its e-value reached 1/alphaPass), not on the absence of an alarm. (The
    // reported two-sided bounds are a separate confidence sequence, rounded outward to the
    // grid, so `upper` may sit one grid step above passTolerance.)
    assert_eq!(error_rate.verdict, MetricVerdict::Pass, "{error_rate:?}");
    let reason = error_rate.reason.clone().unwrap_or_default();
    let shown = regex::Regex::new(r"pass e-value ([0-9.e+-]+) \(at ([0-9.e+-]+)\)")
        .unwrap()
        .captures(&reason)
        .map(|c| (c[1].parse::<f64>().unwrap(), c[2].parse::<f64>().unwrap()))
        .unwrap_or_else(|| panic!("the pass is explained by the pass test: {reason}"));
    assert!(shown.0 >= shown.1, "{error_rate:?}");
    let (lower, estimate, upper) = (
        error_rate.lower.unwrap_or(f64::NAN),
        error_rate.estimate.unwrap_or(f64::NAN),
        error_rate.upper.unwrap_or(f64::NAN),
    );
    assert!(
        lower <= estimate && estimate <= upper && upper < 2.5,
        "{error_rate:?}"
    );
    let fleet = status.fleet.expect("fleet evidence");
    assert_eq!(
        (fleet.pods_checked, fleet.pods_failing),
        (4, 0),
        "the promoted fleet was verified"
    );
    for c in &status.conditions {
        let want = if c.type_ == "Ready" { "True" } else { "False" };
        assert_eq!(c.status, want, "{c:?}");
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_error_rate_regression_is_rolled_back_and_traffic_returns_to_stable() {
    let webhook = Webhook::start().await;
    let world = Scenario::notifying("e2e-rollback", &webhook).await;
    world.roll_to("2.0.0", 0.15, None).await;
    let status = world.finished("2.0.0").await;
    let notified = webhook.wait_for("RolledBack", "2.0.0").await;
    assert_eq!(
        notified.last(),
        Some(&("RolledBack".to_string(), "2.0.0".to_string())),
        "{notified:?}"
    );
    assert_eq!(
        notified.iter().filter(|(e, _)| e == "RolledBack").count(),
        1,
        "{notified:?}"
    );
    let canary_replicas = world.canary_replicas().await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0"));
    assert_eq!(status.current_weight, 0);
    assert_eq!(canary_replicas, Some(0), "the canary is scaled to zero");
    let error_rate = error_rate_evidence(&status);
    assert_eq!(error_rate.verdict, MetricVerdict::Fail, "{error_rate:?}");
    assert!(error_rate.lower.is_some_and(|l| l > 1.0), "{error_rate:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn config_drift_blocks_before_any_traffic_moves() {
    let world = Scenario::with_stable_v1("e2e-drift").await;
    // 2.0.0 runs another configuration than stable and no change is declared.
    world.roll_to("2.0.0", 0.05, Some("feature=on")).await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Blocked, "{status:#?}\n{log}");
    assert_eq!(status.reason.as_deref(), Some("FleetCheckFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(
        status.analysis.is_none(),
        "no analysis started: the canary never took traffic"
    );
    let fleet = status.fleet.expect("fleet evidence");
    assert!(fleet.pods_failing >= 1, "{fleet:?}");
    assert!(
        fleet
            .failing_pods
            .iter()
            .any(|p| p.problem == "ConfigMismatch" && p.pod.starts_with("demo-canary")),
        "the drifted canary pods are named: {fleet:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_new_version_mid_analysis_supersedes_the_canary_and_starts_over() {
    let world = Scenario::with_stable_v1("e2e-supersede").await;
    world.roll_to("2.0.0", 0.05, None).await;
    world
        .wait("2.0.0 to take traffic", |s| {
            s.phase == Phase::Analyzing && s.current_weight > 0
        })
        .await;
    world.roll_to("3.0.0", 0.05, None).await;
    let status = world.finished("3.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("3.0.0"));
    let reasons: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons.contains(&"Superseded"), "{reasons:?}");
    assert!(
        !status
            .history
            .iter()
            .any(|d| d.message.contains("2.0.0 is now the stable")),
        "2.0.0 was never promoted"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_operator_killed_in_every_phase_resumes_to_the_same_promotion() {
    let mut world = Scenario::with_stable_v1("e2e-restart").await;
    world.roll_to("2.0.0", 0.05, None).await;
    let killed_in = world.kill_in_every_phase("2.0.0").await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    println!("operator SIGKILLed in {killed_in:?}");
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    for phase in [Phase::Analyzing, Phase::Promoting] {
        assert!(
            killed_in.contains(&phase),
            "never killed in {phase:?}: {killed_in:?}"
        );
    }
    let count = |reason: &str| status.history.iter().filter(|d| d.reason == reason).count();
    assert_eq!(
        count("PromotionCommitted"),
        1,
        "promoted exactly once: {:#?}",
        status.history
    );
    assert_eq!(
        count("CanaryStarting"),
        1,
        "the canary was not restarted: {:#?}",
        status.history
    );
    let analysis = status
        .analysis
        .expect("analysis evidence kept across restarts");
    assert!(
        analysis.looks >= 3,
        "the judge's state survived the restarts: {analysis:?}"
    );
    one_record_entry_per_look(&analysis);
}

/// The look-by-look record survived every kill: one entry per look, in order, the last one
/// the last look, the weights those the canary was served at.
fn one_record_entry_per_look(analysis: &tollgate::crd::AnalysisStatus) {
    let series = analysis
        .series
        .as_ref()
        .unwrap_or_else(|| panic!("no record: {analysis:?}"));
    let looks = usize::try_from(analysis.looks).unwrap();
    assert_eq!(
        (series.len(), series.first_look),
        (looks, 1),
        "one entry per look: {series:?}"
    );
    assert!(
        series.time.windows(2).all(|w| w[0] < w[1]),
        "in order: {:?}",
        series.time
    );
    assert_eq!(
        series.time.last().copied(),
        analysis.last_look_at.map(|t| t.as_second()),
        "the last entry is the last look"
    );
    assert!(
        series.weight.iter().all(|w| (0..=100).contains(w)),
        "{:?}",
        series.weight
    );
    let with_data = series
        .canary_requests
        .iter()
        .filter(|r| r.is_some())
        .count();
    let failed = usize::try_from(analysis.failed_looks).unwrap();
    assert_eq!(with_data, looks - failed, "{series:?}");
    assert!(!series.metrics.is_empty(), "{series:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_operator_killed_in_every_phase_resumes_to_the_same_rollback() {
    let mut world = Scenario::with_stable_v1("e2e-restart-rb").await;
    world.roll_to("2.0.0", 0.15, None).await;
    let killed_in = world.kill_in_every_phase("2.0.0").await;
    let status = world.finished("2.0.0").await;
    let canary_replicas = world.canary_replicas().await;
    let log = world.operator.log_tail();
    world.end().await;
    println!("operator SIGKILLed in {killed_in:?}");
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert!(killed_in.contains(&Phase::Analyzing), "{killed_in:?}");
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.current_weight, 0);
    assert_eq!(canary_replicas, Some(0), "the canary is scaled to zero");
    let count = |reason: &str| status.history.iter().filter(|d| d.reason == reason).count();
    let entered = |phase: Phase| {
        status
            .history
            .iter()
            .filter(|d| d.phase == phase && d.reason == "AnalysisFailed")
            .count()
    };
    assert_eq!(
        (entered(Phase::RollingBack), entered(Phase::RolledBack)),
        (1, 1),
        "rolled back exactly once: {:#?}",
        status.history
    );
    assert_eq!(count("PromotionCommitted"), 0, "{:#?}", status.history);
    one_record_entry_per_look(status.analysis.as_ref().expect("analysis evidence kept"));
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_latency_regression_is_rolled_back() {
    let world = Scenario::start("e2e-latency", true).await;
    // Every quantile of 2.0.0's latency is 1.5 times 1.0.0's (p99 +50%); errors are unchanged.
    let slow = [
        ("DEMO_LATENCY_MODE", "proportional"),
        ("DEMO_ADDED_LATENCY_MS", "10"),
    ];
    world
        .roll_to_template("2.0.0", template_with("2.0.0", 0.05, None, &slow))
        .await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    let analysis = status.analysis.expect("analysis evidence kept");
    let failed: Vec<&str> = analysis
        .metrics
        .iter()
        .filter(|m| m.verdict == MetricVerdict::Fail)
        .map(|m| m.name.as_str())
        .collect();
    assert!(
        failed.iter().any(|n| n.starts_with("latency")),
        "a latency metric failed: {:#?}",
        analysis.metrics
    );
    assert!(
        !failed.contains(&"errorRate"),
        "errors did not change: {:#?}",
        analysis.metrics
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_contract_gate_passes_records_blocks_and_polls() {
    let env = TestEnv::load();
    env.install_crds().await;
    let broker = Broker::start().await;
    let ns = env.namespace("e2e-contract").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    // Our own contract: Foo 1.2.3 may go to production, 1.2.4 may not, 1.2.5 is not verified.
    let mut manifest = serde_json::to_value(rollout(NAME, env.prometheus_url(), false)).unwrap();
    manifest["spec"]["version"] = json!("1.2.3");
    manifest["spec"]["template"] = template("1.2.3", 0.05, None);
    manifest["spec"]["contractGate"] = json!({"brokerUrl": broker.url, "pacticipant": "Foo",
        "environment": "production", "pollInterval": "3s", "unknownBudget": "12s"});
    let manifest: Rollout = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &manifest)
        .await
        .expect("create rollout");

    // Deployable: the first version becomes stable and is recorded in the broker.
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(90),
        "1.2.3 recorded",
        &operator,
        |s| s.phase == Phase::Succeeded && s.deployment_record.as_ref().is_some_and(|d| d.recorded),
    )
    .await;
    let status = r.status.unwrap_or_default();
    let gate = status.contract_gate.clone().expect("contract evidence");
    assert_eq!(
        (gate.verdict, gate.deployable),
        (tollgate::crd::GateVerdict::Passed, Some(true))
    );
    assert_eq!(
        status
            .deployment_record
            .as_ref()
            .map(|d| d.version.as_str()),
        Some("1.2.3")
    );

    // Not deployable: blocked before any canary pod starts.
    roll(&api, "1.2.4", template("1.2.4", 0.05, None)).await;
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(60),
        "1.2.4 blocked",
        &operator,
        |s| s.phase == Phase::Blocked && s.rejected_version.as_deref() == Some("1.2.4"),
    )
    .await;
    let status = r.status.unwrap_or_default();
    assert_eq!(
        status.reason.as_deref(),
        Some("NotDeployable"),
        "{status:#?}"
    );
    assert_eq!(
        status.contract_gate.as_ref().and_then(|g| g.deployable),
        Some(false)
    );
    let deployments: Api<Deployment> = ns.api();
    assert!(
        deployments.get_opt("demo-canary").await.unwrap().is_none(),
        "no canary was ever created"
    );

    // Unknown: asked again every pollInterval, then blocked when the budget is spent.
    roll(&api, "1.2.5", template("1.2.5", 0.05, None)).await;
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(60),
        "1.2.5 blocked as unknown",
        &operator,
        |s| s.phase == Phase::Blocked && s.rejected_version.as_deref() == Some("1.2.5"),
    )
    .await;
    let status = r.status.unwrap_or_default();
    let log = operator.log_tail();
    operator.assert_never_forbidden();
    drop(operator);
    drop(broker);
    ns.delete().await;
    assert_eq!(
        status.reason.as_deref(),
        Some("ContractUnknown"),
        "{status:#?}\n{log}"
    );
    let gate = status.contract_gate.expect("contract evidence");
    assert!(gate.attempts >= 3, "polled within the budget: {gate:?}");
    assert_eq!(
        status.stable_version.as_deref(),
        Some("1.2.3"),
        "stable untouched throughout"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_standby_takes_over_when_the_leader_dies() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("e2e-leader").await;
    let election = [
        "--leader-elect",
        "--lease-namespace",
        &ns.name,
        "--lease-duration",
        "6s",
        "--lease-renew-grace",
        "2s",
    ];
    let a = Operator::start_with(&env, &ns.name, "replica-a", &election);
    let b = Operator::start_with(&env, &ns.name, "replica-b", &election);
    // Exactly one replica leads; the other waits.
    let start = std::time::Instant::now();
    let (leader, standby) = loop {
        let (ra, rb) = (
            a.readyz().await.unwrap_or_default(),
            b.readyz().await.unwrap_or_default(),
        );
        if ra.contains("leading") && rb.contains("standby") {
            break (a, b);
        }
        if rb.contains("leading") && ra.contains("standby") {
            break (b, a);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no single leader: a={ra:?} b={rb:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let api: Api<Rollout> = ns.api();
    api.create(
        &PostParams::default(),
        &rollout(NAME, env.prometheus_url(), false),
    )
    .await
    .unwrap();
    wait_for(
        &api,
        NAME,
        Duration::from_secs(90),
        "1.0.0 stable",
        &leader,
        |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("1.0.0"),
    )
    .await;

    // The leader dies without a word (SIGKILL: the lease is not released).
    let mut leader = leader;
    let _ = leader.child.kill();
    let _ = leader.child.wait();
    let killed_at = std::time::Instant::now();
    roll(&api, "2.0.0", template("2.0.0", 0.05, None)).await;
    let _load = Load::start(&env, &ns.name, NAME, 200, 300);
    let start = std::time::Instant::now();
    while !standby
        .readyz()
        .await
        .unwrap_or_default()
        .contains("leading")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the standby never took over:\n{}",
            standby.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let takeover = killed_at.elapsed();
    let done = wait_for(
        &api,
        NAME,
        Duration::from_secs(240),
        "2.0.0 promoted by the new leader",
        &standby,
        |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("2.0.0"),
    )
    .await;
    println!("takeover after {takeover:?}");
    // Events say who wrote: before the kill only the old leader, after it only the new one.
    // An event is posted just after the status write that records it, so the list may be a
    // moment early: wait (bounded) until the three this test reads have arrived.
    let wanted = ["CanaryStarting", "PromotionCommitted", "Promoted"];
    let events_api: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let listed_at = std::time::Instant::now();
    let events = loop {
        let items = events_api.list(&Default::default()).await.unwrap().items;
        let arrived = wanted.iter().all(|reason| {
            items.iter().any(|e| {
                e.reason.as_deref() == Some(*reason)
                    && e.note.as_deref().is_some_and(|n| n.contains("2.0.0"))
            })
        });
        if arrived || listed_at.elapsed() > Duration::from_secs(10) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reporters = |reason: &str, about: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.note.as_deref().is_some_and(|n| n.contains(about)))
            .filter_map(|e| e.reporting_instance.clone())
            .collect()
    };
    let old = leader
        .log
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let new_instance = if old.contains("replica-a") {
        "replica-b"
    } else {
        "replica-a"
    };
    leader.assert_never_forbidden();
    standby.assert_never_forbidden();
    drop(standby);
    ns.delete().await;
    assert!(
        takeover < Duration::from_secs(6 + 10),
        "took over within the lease time (+ a renew cycle): {takeover:?}"
    );
    assert_eq!(
        done.status.as_ref().map(|s| s.phase),
        Some(Phase::Succeeded)
    );
    for reason in wanted {
        let by = reporters(reason, "2.0.0");
        assert!(!by.is_empty(), "no {reason} event");
        assert!(
            by.iter().all(|r| r == new_instance),
            "{reason} written by {by:?}, not only by {new_instance}"
        );
    }
    let first = reporters("InitialDeployment", "1.0.0");
    assert!(
        !first.is_empty() && first.iter().all(|r| r != new_instance),
        "the standby wrote while standing by: {first:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn one_stale_pod_among_the_canaries_blocks_the_rollout() {
    let world = Scenario::with_stable_v1("e2e-stale").await;
    // A pod left behind by an earlier manual deploy, carrying the canary's labels, on 1.0.0.
    world
        .create_leftover_canary_pod("demo-canary-leftover", "1.0.0")
        .await;
    // It is Ready and answers with its (old) version before the new version is rolled out.
    let runner = world.env.var("TOLLGATE_POD_RUNNER_URL").to_string();
    wait_until(Duration::from_secs(60), "the stale pod to run", || async {
        let body = http()
            .get(format!("{runner}/pods"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.contains("demo-canary-leftover").then_some(())
    })
    .await;

    world.roll_to("2.0.0", 0.05, None).await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Blocked, "{status:#?}\n{log}");
    assert_eq!(status.reason.as_deref(), Some("FleetCheckFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.current_weight, 0, "no traffic moved");
    assert!(status.analysis.is_none(), "the canary never took traffic");
    let fleet = status.fleet.expect("fleet evidence");
    let stale = fleet
        .failing_pods
        .iter()
        .find(|p| p.pod == "demo-canary-leftover" && p.problem == "VersionMismatch")
        .unwrap_or_else(|| panic!("the stale pod is named with its version: {fleet:?}"));
    assert_eq!(
        (stale.reported.as_deref(), stale.expected.as_deref()),
        (Some("1.0.0"), Some("2.0.0")),
        "{stale:?}"
    );
    // The wrong answer blocks at once, so real canaries whose process is not listening yet may
    // be listed as unanswered; none of them answered wrongly.
    let wrong: Vec<_> = fleet
        .failing_pods
        .iter()
        .filter(|p| p.pod != "demo-canary-leftover")
        .filter(|p| !matches!(p.problem.as_str(), "Unreachable" | "Timeout"))
        .collect();
    assert!(wrong.is_empty(), "the real canaries run 2.0.0: {wrong:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_metrics_outage_holds_the_rollout_until_data_returns() {
    let env = TestEnv::load();
    let mut prometheus = env.own_prometheus("outage");
    prometheus.wait_ready().await;
    let world = Scenario::start_with(
        "e2e-outage",
        Options {
            prometheus: Some(prometheus.url()),
            ..Options::default()
        },
    )
    .await;
    world.roll_to("2.0.0", 0.05, None).await;
    world
        .wait("2.0.0 to take traffic", |s| {
            s.phase == Phase::Analyzing && s.current_weight > 0
        })
        .await;
    // The metrics backend dies in the middle of the analysis.
    prometheus.kill();
    let held = world
        .wait("three looks without data", |s| {
            s.analysis.as_ref().is_some_and(|a| a.failed_looks >= 3)
        })
        .await;
    let status = held.status.clone().unwrap_or_default();
    // Held: neither promoted nor rolled back, traffic where it was, evidence kept.
    assert_eq!(status.phase, Phase::Analyzing, "{status:#?}");
    assert_eq!(status.current_weight, 50, "{status:#?}");
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(status.rejected_version.is_none(), "{status:#?}");
    let analysis = status.analysis.clone().expect("analysis evidence");
    assert_eq!(
        analysis.verdict,
        MetricVerdict::Inconclusive,
        "a look without data is inconclusive: {analysis:?}"
    );
    // Nothing decided since the canary started (1.0.0's own promotion came before it).
    let history: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    let since_canary = history
        .iter()
        .skip_while(|r| **r != "CanaryStarting")
        .copied()
        .collect::<Vec<_>>();
    assert!(!since_canary.is_empty(), "{history:?}");
    assert!(
        !since_canary.iter().any(|r| [
            "AnalysisFailed",
            "AnalysisInconclusive",
            "Promoted",
            "RolledBack"
        ]
        .contains(r)),
        "{history:?}"
    );
    // Data returns: the analysis resumes and the healthy canary is promoted.
    prometheus.start();
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    let analysis = status.analysis.expect("analysis evidence");
    assert!(analysis.failed_looks >= 3, "{analysis:?}");
    assert!(
        analysis.looks > analysis.failed_looks,
        "the promotion rests on looks with data: {analysis:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn traffic_shifts_through_a_gateway_api_httproute() {
    let world = Scenario::start_with(
        "e2e-route",
        Options {
            http_route: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        route_weights(&world.ns).await,
        Some((100, 0)),
        "all traffic on stable before the rollout"
    );
    world.roll_to("2.0.0", 0.05, None).await;
    // Watch the route while the rollout runs: the weights follow the steps.
    let mut seen = std::collections::BTreeSet::new();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(w) = route_weights(&world.ns).await {
            seen.insert(w);
        }
        let r = world.api.get(NAME).await.expect("get rollout");
        let s = r.status.clone().unwrap_or_default();
        let decided = s.stable_version.as_deref() == Some("2.0.0")
            || s.rejected_version.as_deref() == Some("2.0.0");
        if s.phase.is_terminal() && s.canary_version.is_none() && decided {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the rollout did not finish: {s:#?}\n{}",
            world.operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The pass that commits the promotion writes the status first and the route right after.
    let settle = std::time::Instant::now();
    let mut last = route_weights(&world.ns).await;
    while last != Some((100, 0)) && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = route_weights(&world.ns).await;
    }
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    assert!(seen.contains(&(50, 50)), "the 50% step was set: {seen:?}");
    assert_eq!(last, Some((100, 0)), "after promotion stable takes it all");
    // The canary was judged on traffic that reached it through the route's weights.
    let error_rate = error_rate_evidence(&status);
    assert!(error_rate.canary_samples > 100, "{error_rate:?}");
}
