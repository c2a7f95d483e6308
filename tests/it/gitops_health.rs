//! GitOps health of a Rollout: the Argo CD health check (`deploy/argocd/rollout-health.lua`, run on
//! a real Lua interpreter the way Argo CD runs it) and the Flux health-check expressions
//! (`deploy/flux/kustomization.yaml`, evaluated with a CEL interpreter the way Flux does), on
//!
//! 1. real Rollouts captured from the end-to-end run (`tests/fixtures/rollouts/`, see its README);
//!    this test fails while that directory holds none, so a missing capture cannot pass silently;
//! 2. statuses produced by the real state machine (`tollgate::rollout::decide`) driven through
//!    whole rollouts: promoted, rolled back, blocked twice, held for a person, paused;
//! 3. hand-written edge cases (no status, no conditions, a lagging observedGeneration, an unknown
//!    phase, nulls where objects are expected).
//!
//! No cluster: plain `cargo test --test it gitops_health::`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::{json, Value};
use tollgate::crd::{
    ContractSummary, FleetStatus, GateVerdict, MetricStatus, MetricVerdict, Phase, RolloutSpec,
    RolloutStatus, SmokeStatus,
};
use tollgate::rollout::decide::{
    self, AnalysisLook, ChildrenState, ContractAnswer, FleetObservation, FleetVerdict,
    Observations, RecordOutcome, WorkloadState,
};

use crate::support::argocd::{argocd_health, argocd_health_with, SCRIPT, VALID_STATUSES};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// ---------------------------------------------------------------------------------------------
// The mapping, stated once: what Argo CD must show for a Rollout in `phase`.

/// Phases in which the operator is still moving the rollout (a pause or a hold stops it).
const MOVING: [&str; 7] = [
    "Pending",
    "ContractGate",
    "CanaryStarting",
    "FleetCheck",
    "SmokeCheck",
    "Analyzing",
    "Promoting",
];

/// The Argo CD health a Rollout in `phase` must get (`phase` from a capture's file name or from
/// the status): Succeeded → Healthy; RolledBack, Blocked → Degraded; the moving phases →
/// Progressing, or Suspended while `spec.paused` or a `holdReason` stops them; RollingBack →
/// Progressing (the operator finishes a rollback even when paused). A status that does not
/// describe the object's generation yet is Progressing whatever its phase.
fn expected_argocd(phase: &str, rollout: &Value) -> &'static str {
    let generation = rollout["metadata"]["generation"].as_i64();
    let observed = rollout["status"]["observedGeneration"].as_i64();
    if rollout["status"].is_null() || generation.is_some_and(|g| observed.is_none_or(|o| o < g)) {
        return "Progressing";
    }
    let paused = rollout["spec"]["paused"] == json!(true);
    let held = rollout["status"]["holdReason"]
        .as_str()
        .is_some_and(|h| !h.is_empty());
    match phase {
        "Succeeded" => "Healthy",
        "RolledBack" | "Blocked" => "Degraded",
        "RollingBack" => "Progressing",
        p if MOVING.contains(&p) => {
            if paused || held {
                "Suspended"
            } else {
                "Progressing"
            }
        }
        other => panic!("{other} is not a phase of tollgate.dev/v1alpha1 Rollout"),
    }
}

/// What Flux (with the expressions of deploy/flux/kustomization.yaml) must report where Argo CD
/// shows `argocd`. Flux has no "Suspended": a rollout paused by spec.paused stays InProgress (Flux
/// waits until its timeout), and a hold is Stalled=True, which Flux fails at once (with the
/// Rollout named) instead of waiting for its timeout.
fn expected_flux(argocd: &str, rollout: &Value) -> &'static str {
    let held = rollout["status"]["holdReason"]
        .as_str()
        .is_some_and(|h| !h.is_empty());
    match argocd {
        "Healthy" => "Current",
        "Degraded" => "Failed",
        "Suspended" if held => "Failed",
        _ => "InProgress",
    }
}

/// Runs the health check on `rollout` and checks status and message against the mapping.
/// Returns the (status, message) for further checks.
fn check(label: &str, phase: &str, rollout: &Value) -> (String, String) {
    let (status, message) = argocd_health(rollout);
    let want = expected_argocd(phase, rollout);
    assert_eq!(
        status, want,
        "{label}: phase {phase} gave {status} ({message}), want {want}"
    );
    assert!(!message.is_empty(), "{label}: empty message");
    let s = &rollout["status"];
    if want == "Progressing" && message.starts_with("waiting for the operator") {
        return (status, message);
    }
    // The message says where the rollout is and, when it stopped, why.
    assert!(
        message.starts_with(phase),
        "{label}: message should start with the phase {phase}: {message}"
    );
    match want {
        "Degraded" => {
            let reason = s["reason"].as_str().unwrap_or("");
            assert!(
                message.contains(reason),
                "{label}: Degraded without the reason {reason}: {message}"
            );
        }
        "Suspended" => {
            let hold = s["holdReason"].as_str().unwrap_or("spec.paused");
            assert!(
                message.contains(hold),
                "{label}: Suspended without saying why ({hold}): {message}"
            );
        }
        _ => {}
    }
    if let Some(step) = s["currentStepIndex"].as_i64() {
        assert!(
            message.contains(&format!("step {}", step + 1)),
            "{label}: the step is missing: {message}"
        );
    }
    (status, message)
}

// ---------------------------------------------------------------------------------------------
// 1. Real Rollouts captured from the e2e run.

/// `tests/fixtures/rollouts/<scenario>--<phase>.json`, sorted.
fn captured() -> Vec<(PathBuf, String, Value)> {
    let dir = repo("tests/fixtures/rollouts");
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let Some((_, phase)) = stem.rsplit_once("--") else {
            panic!(
                "{}: name it <scenario>--<phase>.json (e.g. e2e-promote--Succeeded.json)",
                path.display()
            )
        };
        let text = std::fs::read_to_string(&path).expect("readable capture");
        let rollout: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        found.push((path, phase.to_string(), rollout));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn rollouts_captured_from_the_e2e_run_get_the_expected_argocd_and_flux_health() {
    let captures = captured();
    assert!(
        !captures.is_empty(),
        "tests/fixtures/rollouts/ holds no captured Rollouts: run the e2e suite with \
         TOLLGATE_CAPTURE_DIR=tests/fixtures/rollouts (see tests/fixtures/rollouts/README.md) and \
         commit the files; a health check tested on no real object proves nothing"
    );
    let exprs = flux_exprs();
    let mut phases = BTreeSet::new();
    for (path, phase, rollout) in &captures {
        let label = path.display().to_string();
        assert_eq!(rollout["kind"], "Rollout", "{label}: not a Rollout");
        assert_eq!(
            rollout["apiVersion"], "tollgate.dev/v1alpha1",
            "{label}: not a tollgate.dev/v1alpha1 object"
        );
        assert_eq!(
            rollout["status"]["phase"].as_str(),
            Some(phase.as_str()),
            "{label}: the file name says {phase} but status.phase differs"
        );
        let (argocd, _) = check(&label, phase, rollout);
        assert_eq!(
            flux_health(&exprs, rollout),
            expected_flux(&argocd, rollout),
            "{label}: Flux"
        );
        phases.insert(phase.clone());
    }
    // The three verdicts operators page on must each be seen on a real object.
    for must in ["Succeeded", "RolledBack", "Blocked"] {
        assert!(
            phases.contains(must),
            "no capture in phase {must} (have {phases:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Statuses from the real state machine.

const T0: i64 = 1_800_000_000;
const GENERATION: i64 = 2;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).expect("timestamp in range")
}

/// The demo service at 2.0.0 with a contract gate, smoke checks and two analysed steps.
fn spec_json() -> Value {
    json!({
        "version": "2.0.0",
        "replicas": 4,
        "selector": {"matchLabels": {"app": "checkout"}},
        "template": {"metadata": {"labels": {"app": "checkout"}},
                     "spec": {"containers": [{"name": "checkout", "image": "demo:2.0.0"}]}},
        "contractGate": {"brokerUrl": "http://broker", "pacticipant": "checkout",
                         "environment": "production", "pollInterval": "10s",
                         "unknownBudget": "60s"},
        "smoke": {"requests": [{"name": "version", "path": "/version"}]},
        "steps": [{"setWeight": 25}, {"analyze": {"duration": "2m"}},
                  {"setWeight": 50}, {"analyze": {"duration": "2m"}}],
        "analysis": {"provider": {"prometheus": {"address": "http://prom:9090"}},
                     "interval": "30s", "errorRate": {}, "maxDuration": "30m"},
        "progressDeadline": "10m"
    })
}

fn spec_from(v: &Value) -> RolloutSpec {
    serde_json::from_value(v.clone()).expect("a valid RolloutSpec")
}

/// What the simulated cluster and peers answer.
struct World {
    deployable: bool,
    fleet_ok: bool,
    /// The judge's verdict once the analysis has run this long (seconds), Running before.
    verdict_after: Option<(i64, MetricVerdict)>,
}

fn settled(version: &str, replicas: i32) -> WorkloadState {
    WorkloadState {
        version: Some(version.into()),
        desired: replicas,
        ready: replicas,
        total: replicas,
    }
}

fn children_for(spec: &RolloutSpec, status: &RolloutStatus) -> ChildrenState {
    let d = decide::desired_children(spec, status);
    let state = |c: &Option<decide::ChildSpec>| {
        c.as_ref()
            .map(|c| settled(&c.version, c.replicas))
            .unwrap_or_default()
    };
    ChildrenState {
        stable: state(&d.stable),
        canary: state(&d.canary),
        baseline: state(&d.baseline),
    }
}

/// The Rollout object as the API server would return it with this status.
fn rollout_object(name: &str, spec: &Value, status: &RolloutStatus) -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "shop", "generation": GENERATION,
                     "uid": "5f0c7d2e-0000-4000-8000-000000000001"},
        "spec": spec,
        "status": serde_json::to_value(status).expect("status serializes"),
    })
}

/// Drives decide() from stable 1.0.0 to spec.version 2.0.0, 5 s per pass, children settling at
/// once, until the rollout rests (or `limit` seconds); returns the object after every pass.
fn drive(name: &str, spec_v: &Value, world: &World, limit: i64) -> Vec<Value> {
    let spec = spec_from(spec_v);
    let mut status = RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("1.0.0".into()),
        observed_generation: Some(GENERATION - 1),
        ..Default::default()
    };
    let mut children = children_for(&spec, &status);
    let mut seen = Vec::new();
    let mut analysis_since: Option<i64> = None;
    let mut now = 0;
    while now <= limit {
        let n = decide::needs(&spec, Some(&status), &children, at(now));
        let mut obs = Observations {
            generation: Some(GENERATION),
            children: children.clone(),
            ..Default::default()
        };
        if n.ask_broker {
            let summary = Some(ContractSummary {
                success: 1,
                failed: i64::from(!world.deployable),
                unknown: 0,
            });
            obs.contract = Some(if world.deployable {
                ContractAnswer::Deployable {
                    reason: "All required verification results are published and successful".into(),
                    summary,
                }
            } else {
                ContractAnswer::NotDeployable {
                    reason: "The verification for the pact between web and checkout failed".into(),
                    summary,
                }
            });
        }
        if n.fleet.is_some() {
            obs.fleet = Some(FleetObservation {
                status: FleetStatus {
                    verdict: if world.fleet_ok {
                        GateVerdict::Passed
                    } else {
                        GateVerdict::Blocked
                    },
                    pods_checked: 5,
                    pods_matching: if world.fleet_ok { 5 } else { 4 },
                    pods_failing: i32::from(!world.fleet_ok),
                    ..Default::default()
                },
                verdict: if world.fleet_ok {
                    FleetVerdict::Passed
                } else {
                    FleetVerdict::Failed
                },
            });
        }
        if n.smoke {
            obs.smoke = Some(SmokeStatus {
                verdict: GateVerdict::Passed,
                requests_sent: 1,
                ..Default::default()
            });
        }
        if let Some(w) = &n.look {
            let since = *analysis_since.get_or_insert(now);
            let verdict = match world.verdict_after {
                Some((after, v)) if now - since >= after => v,
                _ => MetricVerdict::Running,
            };
            obs.look = Some(AnalysisLook {
                window_end: w.end,
                verdict,
                metrics: vec![MetricStatus {
                    name: "errorRate".into(),
                    verdict,
                    ..Default::default()
                }],
                judge_state: None,
                data_missing: false,
                summary: format!("errorRate {verdict:?}"),
                judge_state_reset: None,
                series: None,
            });
        }
        if n.record.is_some() {
            obs.record = Some(RecordOutcome::Recorded);
        }
        let plan = decide::decide(&spec, Some(&status), &obs, at(now));
        status = plan.status;
        children = children_for(&spec, &status);
        seen.push(rollout_object(name, spec_v, &status));
        let resting = status.phase.is_terminal()
            && status.deployment_record.as_ref().is_none_or(|r| r.recorded);
        if resting {
            break;
        }
        now += 5;
    }
    seen
}

fn phase_of(rollout: &Value) -> String {
    rollout["status"]["phase"]
        .as_str()
        .expect("a status phase")
        .to_string()
}

/// Checks every object of a driven rollout; returns the Argo CD statuses seen, in order, without
/// repeats.
fn check_all(scenario: &str, objects: &[Value]) -> Vec<String> {
    let exprs = flux_exprs();
    let mut trail: Vec<String> = Vec::new();
    // Conditions never flap (what `kubectl wait --for=condition=Ready` relies on): in each driven
    // rollout every condition changes its status at most once, and lastTransitionTime moves only
    // when the status does.
    let mut last_conditions: Option<Value> = None;
    let mut changes = std::collections::BTreeMap::<String, usize>::new();
    for rollout in objects {
        let now = rollout["status"]["conditions"].clone();
        if let Some(before) = &last_conditions {
            for c in now.as_array().into_iter().flatten() {
                let kind = c["type"].as_str().unwrap_or_default();
                let prev = before
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["type"] == c["type"]);
                let Some(prev) = prev else { continue };
                if prev["status"] != c["status"] {
                    *changes.entry(kind.to_string()).or_default() += 1;
                } else {
                    assert_eq!(
                        prev["lastTransitionTime"], c["lastTransitionTime"],
                        "{scenario}: {kind} kept its status but moved its lastTransitionTime"
                    );
                }
            }
        }
        last_conditions = Some(now);
    }
    for (kind, n) in &changes {
        assert!(
            *n <= 1,
            "{scenario}: condition {kind} changed {n} times: it flaps"
        );
    }
    for (i, rollout) in objects.iter().enumerate() {
        let phase = phase_of(rollout);
        let label = format!("{scenario} pass {i}");
        let (argocd, message) = check(&label, &phase, rollout);
        assert_eq!(
            flux_health(&exprs, rollout),
            expected_flux(&argocd, rollout),
            "{label} ({phase}: {message}): Flux"
        );
        let entry = format!("{phase}:{argocd}");
        if trail.last() != Some(&entry) {
            trail.push(entry);
        }
    }
    trail
}

fn last(objects: &[Value]) -> &Value {
    objects.last().expect("at least one pass")
}

#[test]
fn a_promoted_rollout_is_progressing_through_every_phase_then_healthy() {
    let world = World {
        deployable: true,
        fleet_ok: true,
        verdict_after: Some((0, MetricVerdict::Pass)),
    };
    let objects = drive("checkout", &spec_json(), &world, 3600);
    let trail = check_all("promote", &objects);
    for phase in [
        "ContractGate",
        "CanaryStarting",
        "FleetCheck",
        "SmokeCheck",
        "Analyzing",
        "Promoting",
    ] {
        assert!(
            trail.contains(&format!("{phase}:Progressing")),
            "{phase} not seen as Progressing: {trail:?}"
        );
    }
    assert_eq!(
        trail.last().map(String::as_str),
        Some("Succeeded:Healthy"),
        "{trail:?}"
    );
    let (_, message) = argocd_health(last(&objects));
    assert!(message.contains("stable 2.0.0"), "{message}");
}

#[test]
fn a_regression_is_progressing_while_rolling_back_then_degraded_with_the_reason() {
    let world = World {
        deployable: true,
        fleet_ok: true,
        verdict_after: Some((60, MetricVerdict::Fail)),
    };
    let objects = drive("payments", &spec_json(), &world, 3600);
    let trail = check_all("rollback", &objects);
    assert!(
        trail.contains(&"RollingBack:Progressing".to_string()),
        "{trail:?}"
    );
    assert_eq!(
        trail.last().map(String::as_str),
        Some("RolledBack:Degraded"),
        "{trail:?}"
    );
    let (_, message) = argocd_health(last(&objects));
    assert!(message.contains("stable 1.0.0"), "{message}");
    assert!(
        message.contains("2.0.0 stays rejected"),
        "the responder must see what stays rejected: {message}"
    );
}

#[test]
fn a_contract_or_fleet_block_is_degraded_with_the_gate_s_reason() {
    for (scenario, world, says) in [
        (
            "contract",
            World {
                deployable: false,
                fleet_ok: true,
                verdict_after: None,
            },
            "pact between web and checkout failed",
        ),
        (
            "fleet",
            World {
                deployable: true,
                fleet_ok: false,
                verdict_after: None,
            },
            "",
        ),
    ] {
        let objects = drive("checkout", &spec_json(), &world, 3600);
        let trail = check_all(scenario, &objects);
        assert_eq!(
            trail.last().map(String::as_str),
            Some("Blocked:Degraded"),
            "{scenario}: {trail:?}"
        );
        let (_, message) = argocd_health(last(&objects));
        assert!(message.contains(says), "{scenario}: {message}");
        assert!(message.contains("2.0.0 stays rejected"), "{message}");
    }
}

#[test]
fn a_hold_for_a_person_is_suspended_with_the_hold_reason() {
    // Inconclusive at the step's deadline with onInconclusive: Pause (the default).
    let world = World {
        deployable: true,
        fleet_ok: true,
        verdict_after: None,
    };
    let objects = drive("checkout", &spec_json(), &world, 600);
    let trail = check_all("inconclusive", &objects);
    assert_eq!(
        trail.last().map(String::as_str),
        Some("Analyzing:Suspended"),
        "{trail:?}"
    );
    let (_, message) = argocd_health(last(&objects));
    assert!(message.contains("promote, abort or resume"), "{message}");

    // A pause step without a duration.
    let mut spec = spec_json();
    spec["steps"] = json!([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]);
    let objects = drive("checkout", &spec, &world, 600);
    let trail = check_all("pause step", &objects);
    assert_eq!(
        trail.last().map(String::as_str),
        Some("Analyzing:Suspended"),
        "{trail:?}"
    );
    let (_, message) = argocd_health(last(&objects));
    assert!(message.contains("step 2"), "{message}");
    assert!(message.contains("kubectl tollgate resume"), "{message}");
}

#[test]
fn spec_paused_is_suspended_until_a_regression_rolls_back() {
    let mut spec = spec_json();
    spec["paused"] = json!(true);
    let healthy = World {
        deployable: true,
        fleet_ok: true,
        verdict_after: Some((0, MetricVerdict::Pass)),
    };
    let objects = drive("checkout", &spec, &healthy, 600);
    let trail = check_all("paused", &objects);
    assert_eq!(
        trail.last().map(String::as_str),
        Some("Analyzing:Suspended"),
        "{trail:?}"
    );
    assert!(
        !trail.iter().any(|t| t.ends_with(":Progressing")),
        "a paused rollout is never shown as moving: {trail:?}"
    );

    // Analysis continues while paused, and a regression still rolls back: never Suspended then.
    let failing = World {
        deployable: true,
        fleet_ok: true,
        verdict_after: Some((60, MetricVerdict::Fail)),
    };
    let objects = drive("checkout", &spec, &failing, 3600);
    let trail = check_all("paused regression", &objects);
    assert!(
        trail.contains(&"RollingBack:Progressing".to_string()),
        "{trail:?}"
    );
    assert_eq!(
        trail.last().map(String::as_str),
        Some("RolledBack:Degraded"),
        "{trail:?}"
    );
}

#[test]
fn a_first_deployment_goes_straight_to_promoting_then_healthy() {
    let spec_v = spec_json();
    let spec = spec_from(&spec_v);
    let plan = decide::decide(
        &spec,
        None,
        &Observations {
            generation: Some(1),
            contract: Some(ContractAnswer::Deployable {
                reason: "ok".into(),
                summary: None,
            }),
            ..Default::default()
        },
        at(0),
    );
    let mut rollout = rollout_object("checkout", &spec_v, &plan.status);
    rollout["metadata"]["generation"] = json!(1);
    check("first deployment", &phase_of(&rollout), &rollout);
}

// ---------------------------------------------------------------------------------------------
// 3. Hand-written edge cases.

fn base() -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": 3},
        "spec": {"version": "2.1.0", "steps": [{"setWeight": 50}, {"analyze": {"duration": "5m"}}]}
    })
}

fn cond(kind: &str, status: &str, reason: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": "m",
           "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3})
}

fn conditions(ready: bool, progressing: bool, stalled: bool, reason: &str) -> Value {
    let s = |b: bool| if b { "True" } else { "False" };
    json!([
        cond("Ready", s(ready), reason),
        cond("Progressing", s(progressing), reason),
        cond("Stalled", s(stalled), reason)
    ])
}

fn with_status(status: Value) -> Value {
    let mut r = base();
    r["status"] = status;
    r
}

#[test]
fn no_status_yet_is_progressing_waiting_for_the_operator() {
    let (status, message) = argocd_health(&base());
    assert_eq!(status, "Progressing");
    assert!(
        message.starts_with("waiting for the operator to observe generation 3"),
        "{message}"
    );
    assert!(
        message.contains("is the tollgate operator running"),
        "{message}"
    );

    // status: null is the same as no status, and so is a missing metadata.
    let mut r = base();
    r["status"] = Value::Null;
    assert_eq!(argocd_health(&r).0, "Progressing");
    let (status, message) = argocd_health(&json!({"kind": "Rollout"}));
    assert_eq!(status, "Progressing");
    assert!(message.contains("observe this Rollout"), "{message}");
}

#[test]
fn a_lagging_observed_generation_is_progressing_whatever_the_phase_says() {
    // Promoted at generation 2; someone pushed generation 3 (a new version) a moment ago.
    let r = with_status(json!({
        "phase": "Succeeded", "observedGeneration": 2, "stableVersion": "2.0.0",
        "conditions": conditions(true, false, false, "Promoted")
    }));
    let (status, message) = argocd_health(&r);
    assert_eq!(status, "Progressing", "{message}");
    assert_eq!(
        message,
        "waiting for the operator to observe generation 3 (status describes generation 2)"
    );
    // Same for a rollback that a new commit is about to replace.
    let mut r = r;
    r["status"]["phase"] = json!("RolledBack");
    r["status"]["conditions"] = conditions(false, false, true, "AnalysisFailed");
    assert_eq!(argocd_health(&r).0, "Progressing");
    // A status without observedGeneration has not observed anything yet.
    let r = with_status(json!({"phase": "Succeeded"}));
    let (status, message) = argocd_health(&r);
    assert_eq!(status, "Progressing");
    assert!(message.contains("no generation observed yet"), "{message}");
}

#[test]
fn a_status_without_conditions_is_judged_by_its_phase() {
    let cases = [
        (
            json!({"phase": "Succeeded", "stableVersion": "2.1.0"}),
            "Healthy",
        ),
        (
            json!({"phase": "RolledBack", "reason": "AnalysisFailed"}),
            "Degraded",
        ),
        (
            json!({"phase": "Blocked", "reason": "ContractBlocked"}),
            "Degraded",
        ),
        (
            json!({"phase": "Analyzing", "currentStepIndex": 1}),
            "Progressing",
        ),
        (
            json!({"phase": "Analyzing", "holdReason": "step 2 pauses until resumed"}),
            "Suspended",
        ),
        (json!({"phase": "RollingBack"}), "Progressing"),
        (json!({}), "Progressing"),
        // conditions: [] and conditions: null are no conditions too.
        (json!({"phase": "Succeeded", "conditions": []}), "Healthy"),
        (json!({"phase": "Blocked", "conditions": null}), "Degraded"),
    ];
    for (mut status, want) in cases {
        status["observedGeneration"] = json!(3);
        let r = with_status(status.clone());
        let (got, message) = argocd_health(&r);
        assert_eq!(got, want, "{status}: {message}");
        assert!(!message.is_empty(), "{status}");
    }
}

#[test]
fn conditions_decide_over_the_phase() {
    // Stalled=True for an invalid spec on a promoted rollout: the commit did not take effect, and
    // Argo CD must say so even though Ready is still True and the phase still Succeeded.
    let r = with_status(json!({
        "phase": "Succeeded", "observedGeneration": 3, "stableVersion": "2.0.0",
        "reason": "InvalidSpec",
        "message": "cannot proceed until the Rollout changes: spec.steps is empty",
        "conditions": [cond("Ready", "True", "Promoted"), cond("Progressing", "False", "Promoted"),
                       cond("Stalled", "True", "InvalidSpec")]
    }));
    let (status, message) = argocd_health(&r);
    assert_eq!(status, "Degraded");
    assert!(message.contains("InvalidSpec: cannot proceed"), "{message}");

    // An invalid spec during a hold is not "waiting for a person": the spec must change.
    let mut r = r;
    r["status"]["phase"] = json!("Analyzing");
    r["status"]["holdReason"] = json!("step 2: evidence is still inconclusive");
    assert_eq!(argocd_health(&r).0, "Degraded");

    // Ready=True is Healthy with the operator's message.
    let r = with_status(json!({
        "phase": "Succeeded", "observedGeneration": 3, "stableVersion": "2.1.0",
        "currentWeight": 0, "reason": "Promoted", "message": "2.1.0 is stable",
        "conditions": conditions(true, false, false, "Promoted")
    }));
    assert_eq!(
        argocd_health(&r),
        (
            "Healthy".to_string(),
            "Succeeded, stable 2.1.0: Promoted: 2.1.0 is stable".to_string()
        )
    );
}

#[test]
fn an_unknown_phase_follows_the_conditions_and_never_errors() {
    // A newer operator with a phase this script does not know.
    let r = with_status(json!({
        "phase": "Verifying", "observedGeneration": 3, "canaryVersion": "2.1.0",
        "stableVersion": "2.0.0", "currentWeight": 10, "currentStepIndex": 0,
        "conditions": conditions(false, true, false, "Verifying")
    }));
    let (status, message) = argocd_health(&r);
    assert_eq!(status, "Progressing");
    assert_eq!(
        message,
        "Verifying, step 1/2, canary 2.1.0 at 10% (stable 2.0.0): Verifying: m"
    );
    let r = with_status(json!({
        "phase": "Verifying", "observedGeneration": 3,
        "conditions": conditions(false, false, true, "VerifyFailed")
    }));
    assert_eq!(argocd_health(&r).0, "Degraded");
    // No conditions: every phase that is not a verdict is still moving.
    let r = with_status(json!({"phase": "Verifying", "observedGeneration": 3}));
    assert_eq!(argocd_health(&r).0, "Progressing");
}

#[test]
fn spec_paused_is_suspended_only_while_the_rollout_could_move() {
    let mut r = with_status(json!({
        "phase": "Analyzing", "observedGeneration": 3, "canaryVersion": "2.1.0",
        "stableVersion": "2.0.0", "currentWeight": 50, "currentStepIndex": 1,
        "reason": "Paused", "message": "paused by spec.paused: analysis continues, no step advances",
        "conditions": conditions(false, true, false, "Paused")
    }));
    r["spec"]["paused"] = json!(true);
    let (status, message) = argocd_health(&r);
    assert_eq!(status, "Suspended");
    assert!(
        message.starts_with("Analyzing, step 2/2, canary 2.1.0 at 50%"),
        "{message}"
    );
    assert!(message.contains("set spec.paused to false"), "{message}");
    // A finished rollout with paused: true is what it is.
    for (phase, want, c) in [
        (
            "Succeeded",
            "Healthy",
            conditions(true, false, false, "Promoted"),
        ),
        (
            "RolledBack",
            "Degraded",
            conditions(false, false, true, "AnalysisFailed"),
        ),
        (
            "RollingBack",
            "Progressing",
            conditions(false, true, false, "AnalysisFailed"),
        ),
    ] {
        r["status"]["phase"] = json!(phase);
        r["status"]["conditions"] = c;
        assert_eq!(argocd_health(&r).0, want, "{phase}");
    }
    // paused: "yes" (not a boolean) is not paused.
    r["status"]["phase"] = json!("Analyzing");
    r["status"]["conditions"] = conditions(false, true, false, "Analyzing");
    r["spec"]["paused"] = json!("yes");
    assert_eq!(argocd_health(&r).0, "Progressing");
}

#[test]
fn odd_shapes_never_make_the_script_error() {
    // Wrong types where tables are expected, nulls everywhere, conditions without type.
    for status in [
        json!({"phase": null, "observedGeneration": 3, "conditions": "Ready"}),
        json!({"phase": 7, "observedGeneration": 3, "conditions": [null, 1, {"status": "True"}]}),
        json!({"phase": "Analyzing", "observedGeneration": 3, "currentStepIndex": "two",
               "currentWeight": null, "canaryVersion": {"v": 1}}),
        json!({"phase": "Blocked", "observedGeneration": 3, "reason": null, "message": null,
               "rejectedVersion": null}),
        json!("not an object"),
        json!([]),
    ] {
        let mut r = with_status(status.clone());
        r["spec"] = json!({"steps": "many", "paused": null});
        let (got, message) = argocd_health(&r);
        assert!(VALID_STATUSES.contains(&got.as_str()), "{status}: {got}");
        assert!(!message.is_empty(), "{status}");
    }
    let r = json!({"metadata": null, "spec": null, "status": {"observedGeneration": "3"}});
    assert!(VALID_STATUSES.contains(&argocd_health(&r).0.as_str()));
}

// ---------------------------------------------------------------------------------------------
// The harness is Argo CD's sandbox, and the shipped files agree.

#[test]
fn the_harness_has_argocd_s_libraries_and_status_rules() {
    let probe = r#"
        local open = {}
        for _, name in ipairs({"string", "math", "io", "table", "os"}) do
          if _G[name] ~= nil then table.insert(open, name) end
        end
        return { status = "Healthy", message = table.concat(open, ",") }
    "#;
    let (_, open) = argocd_health_with(probe, &json!({}));
    // Argo CD opens table and a reduced os; we open table only, so a script that needs os fails
    // here too rather than only in Argo CD.
    assert_eq!(open, "table", "libraries open in the harness");
    let invalid = r#"return { status = "Fine", message = "x" }"#;
    assert_eq!(
        argocd_health_with(invalid, &json!({})),
        (
            "Unknown".to_string(),
            "Lua returned an invalid health status".to_string()
        )
    );
    // JSON null is an absent key; integers print without a fraction, as in Argo CD.
    let nulls = r#"
        local n = 0
        for _ in pairs(obj.status) do n = n + 1 end
        return { status = "Healthy", message = n .. " " .. obj.metadata.generation }
    "#;
    let r = json!({"metadata": {"generation": 4}, "status": {"a": null, "b": 1}});
    assert_eq!(argocd_health_with(nulls, &r).1, "1 4");
}

/// deploy/argocd/argocd-cm-patch.yaml as it must be: a header and the script, indented under the
/// argocd-cm key.
fn argocd_cm_patch() -> String {
    let mut out = String::from(
        "# Argo CD health check for tollgate.dev/Rollout, as a patch for the argocd-cm ConfigMap:\n\
         #   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm-patch.yaml\n\
         # (with the argo-cd Helm chart, put the same key under configs.cm). The script is\n\
         # deploy/argocd/rollout-health.lua verbatim; tests/it/gitops_health.rs fails when they differ\n\
         # (TOLLGATE_REGENERATE=1 cargo test --test it gitops_health::the_argocd_cm rewrites this file).\n\
         data:\n  resource.customizations.health.tollgate.dev_Rollout: |\n",
    );
    for line in SCRIPT.lines() {
        if !line.is_empty() {
            out.push_str("    ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_argocd_cm_patch_carries_the_script_verbatim() {
    let path = repo("deploy/argocd/argocd-cm-patch.yaml");
    if std::env::var_os("TOLLGATE_REGENERATE").is_some() {
        std::fs::write(&path, argocd_cm_patch()).expect("writing the argocd-cm patch");
    }
    let text = std::fs::read_to_string(&path).expect("deploy/argocd/argocd-cm-patch.yaml");
    assert!(
        text == argocd_cm_patch(),
        "deploy/argocd/argocd-cm-patch.yaml is not deploy/argocd/rollout-health.lua re-indented: \
         run TOLLGATE_REGENERATE=1 cargo test --test it gitops_health::the_argocd_cm"
    );
    // What Argo CD reads from it is the script, byte for byte.
    let patch: Value = serde_saphyr::from_str(&text).expect("the patch is YAML");
    let embedded = patch["data"]["resource.customizations.health.tollgate.dev_Rollout"]
        .as_str()
        .expect("data.resource.customizations.health.tollgate.dev_Rollout");
    assert!(
        embedded == SCRIPT,
        "the YAML block does not give back the script"
    );
    // And docs/gitops.md tells where both are.
    let docs = std::fs::read_to_string(repo("docs/gitops.md")).expect("docs/gitops.md");
    for needle in [
        "deploy/argocd/rollout-health.lua",
        "deploy/argocd/argocd-cm-patch.yaml",
        "resource.customizations.health.tollgate.dev_Rollout",
        "deploy/flux/kustomization.yaml",
    ] {
        assert!(
            docs.contains(needle),
            "docs/gitops.md does not mention {needle}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Flux: the healthCheckExprs of deploy/flux/kustomization.yaml, evaluated as kustomize-controller
// does (fluxcd/pkg runtime/cel StatusEvaluator, RFC-0009): InProgress while status.observedGeneration
// differs from metadata.generation; then inProgress, failed, current, the first true one wins;
// none true: InProgress; an evaluation error: Unknown (Flux keeps polling until its timeout).
// The CEL interpreter is the `cel` crate (kube's), with optional syntax on as in cel-go's
// OptionalTypes; Flux runs cel-go.

struct FluxExprs {
    in_progress: String,
    failed: String,
    current: String,
}

fn flux_exprs() -> FluxExprs {
    let text =
        std::fs::read_to_string(repo("deploy/flux/kustomization.yaml")).expect("flux example");
    let k: Value = serde_saphyr::from_str(&text).expect("YAML");
    let exprs = k["spec"]["healthCheckExprs"]
        .as_array()
        .expect("spec.healthCheckExprs");
    let e = exprs
        .iter()
        .find(|e| e["apiVersion"] == "tollgate.dev/v1alpha1" && e["kind"] == "Rollout")
        .expect("an entry for tollgate.dev/v1alpha1 Rollout");
    let get = |k: &str| e[k].as_str().expect(k).to_string();
    let docs = std::fs::read_to_string(repo("docs/gitops.md")).expect("docs/gitops.md");
    let out = FluxExprs {
        in_progress: get("inProgress"),
        failed: get("failed"),
        current: get("current"),
    };
    for expr in [&out.in_progress, &out.failed, &out.current] {
        assert!(
            docs.contains(expr.as_str()),
            "docs/gitops.md does not carry this expression of deploy/flux/kustomization.yaml: {expr}"
        );
    }
    out
}

fn cel_bool(expr: &str, obj: &Value) -> Result<bool, String> {
    let parsed = cel::parser::Parser::new()
        .enable_optional_syntax(true)
        .parse(expr)
        .map_err(|e| format!("parse: {e}"))?;
    let mut ctx = cel::Context::default();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            ctx.add_variable(k.as_str(), v.clone())
                .map_err(|e| format!("{k}: {e}"))?;
        }
    }
    match cel::Value::resolve(&parsed, &ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("not a boolean: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn flux_health(exprs: &FluxExprs, obj: &Value) -> &'static str {
    if let (Some(observed), Some(generation)) = (
        obj["status"]["observedGeneration"].as_i64(),
        obj["metadata"]["generation"].as_i64(),
    ) {
        if observed != generation {
            return "InProgress";
        }
    }
    for (expr, result) in [
        (&exprs.in_progress, "InProgress"),
        (&exprs.failed, "Failed"),
        (&exprs.current, "Current"),
    ] {
        match cel_bool(expr, obj) {
            Ok(true) => return result,
            Ok(false) => {}
            Err(_) => return "Unknown",
        }
    }
    "InProgress"
}

#[test]
fn flux_expressions_never_error_once_the_operator_wrote_a_status() {
    let exprs = flux_exprs();
    // Before the operator's first status write the object has no `status`: cel-go (and this
    // interpreter) cannot reference a missing top-level field, so the evaluation errors and Flux
    // keeps polling (Unknown) until the status appears. Documented in docs/gitops.md.
    assert_eq!(flux_health(&exprs, &base()), "Unknown");
    for (status, want) in [
        (json!({}), "InProgress"),
        (json!({"observedGeneration": 3}), "InProgress"),
        (
            json!({"observedGeneration": 3, "conditions": []}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 2, "conditions": conditions(true, false, false, "x")}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 3, "conditions": conditions(true, false, false, "x")}),
            "Current",
        ),
        (
            json!({"observedGeneration": 3, "conditions": conditions(false, true, false, "x")}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 3, "conditions": conditions(false, false, true, "x")}),
            "Failed",
        ),
        // An invalid spec while still Progressing=True: failed, not in progress until the timeout.
        (
            json!({"observedGeneration": 3, "conditions": conditions(false, true, true, "InvalidSpec")}),
            "Failed",
        ),
        (
            json!({"observedGeneration": 3, "conditions": conditions(true, false, true, "InvalidSpec")}),
            "Failed",
        ),
    ] {
        let r = with_status(status.clone());
        assert_eq!(flux_health(&exprs, &r), want, "{status}");
    }
}
