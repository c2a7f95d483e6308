//! The status tree byte for byte, the list with long names, `--wait`'s exit codes and the
//! controls' patches.

use serde_json::json;

use super::*;

fn sample() -> Rollout {
    crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "shop", "namespace": "prod", "generation": 1},
        "spec": {"version": "2.0.0", "workloadRef": {"name": "shop"},
                 "contractGate": {"brokerUrl": "http://b", "pacticipant": "shop", "environment": "production"},
                 "steps": [{"setWeight": 25}, {"analyze": {"duration": "5m"}}, {"pause": {}}],
                 "analysis": {"provider": {"prometheus": {"address": "http://p"}}, "errorRate": {}}},
        "status": {
            "phase": "Analyzing", "observedGeneration": 1, "currentStepIndex": 1, "currentWeight": 25,
            "stableVersion": "1.0.0", "canaryVersion": "2.0.0", "reason": "Analyzing",
            "message": "step 2: gathering evidence",
            "stepStartedAt": "2026-11-22T10:00:00Z",
            "contractGate": {"verdict": "Passed", "deployable": true, "reason": "All required verification results are published and successful",
                              "checkedAt": "2026-11-22T09:58:00Z", "attempts": 1,
                              "summary": {"success": 2, "failed": 0, "unknown": 0}},
            "fleet": {"verdict": "Blocked", "podsChecked": 8, "podsMatching": 7, "podsFailing": 1,
                      "failingPods": [{"pod": "shop-canary-7", "track": "canary", "ip": "127.0.10.7",
                                       "problem": "VersionMismatch", "reported": "1.9.9", "expected": "2.0.0"}]},
            "analysis": {"verdict": "Running", "looks": 4, "failedLooks": 1,
                         "lastLookAt": "2026-11-22T10:02:00Z",
                         "metrics": [{"name": "error-rate", "verdict": "Running", "test": "mSPRT",
                                      "estimate": 1.02, "lower": 0.8, "upper": 1.31, "eValue": 0.4,
                                      "canarySamples": 1200, "baselineSamples": 4800}]},
            "history": [{"at": "2026-11-22T09:58:00Z", "phase": "CanaryStarting", "reason": "CanaryStarting", "message": "starting"}],
            "conditions": [{"type": "Ready", "status": "False", "reason": "Analyzing", "message": "", "lastTransitionTime": "2026-11-22T09:58:00Z"}]
        }
    }))
}

/// Every section's other branches: no contract gate, fleet not checked, smoke failures,
/// two metrics, all steps done, a pending record, a hold, more history than is shown.
fn sample_succeeded() -> Rollout {
    let history: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            json!({"at": format!("2026-11-22T09:{:02}:00Z", 10 + i), "phase": "Analyzing",
                        "reason": format!("Reason{i}"), "message": format!("message {i}")})
        })
        .collect();
    crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "checkout-with-a-rather-long-name", "namespace": "shop", "generation": 3},
        "spec": {"version": "2.4.0", "workloadRef": {"name": "checkout"},
                 "smoke": {"requests": [{"name": "health", "path": "/healthz"}]},
                 "steps": [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"analyze": {"duration": "90s"}}, {"setWeight": 50}],
                 "analysis": {"provider": {"prometheus": {"address": "http://p"}}, "errorRate": {}}},
        "status": {
            "phase": "Succeeded", "observedGeneration": 3, "currentWeight": 0,
            "stableVersion": "2.4.0", "reason": "Promoted", "holdReason": "waiting for a person",
            "smoke": {"verdict": "Blocked", "requestsSent": 6, "requestsFailed": 2,
                      "failures": [{"pod": "checkout-canary-1", "problem": "health", "reported": "HTTP 503"},
                                   {"pod": "checkout-canary-2", "problem": "health"}]},
            "analysis": {"verdict": "Fail", "looks": 12, "failedLooks": 0,
                         "metrics": [{"name": "error-rate", "verdict": "Fail", "test": "mSPRT",
                                      "estimate": 1922000.0, "lower": 0.0002, "upper": f64::MAX, "eValue": 50.0,
                                      "canarySamples": 12000, "baselineSamples": 48000,
                                      "reason": "canary worse than baseline"},
                                     {"name": "latency-p99", "verdict": "Pass",
                                      "canarySamples": 10, "baselineSamples": 20, "reason": "fast enough"},
                                     {"name": "latency-p50", "verdict": "Inconclusive",
                                      "estimate": 0.0, "canarySamples": 0, "baselineSamples": 0}]},
            "deploymentRecord": {"version": "2.4.0", "environment": "production", "recorded": false,
                                 "attempts": 3, "lastError": "HTTP 503"},
            "history": history,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Promoted", "message": "", "lastTransitionTime": "2026-11-22T09:58:00Z"},
                {"type": "Progressing", "status": "False", "reason": "Promoted", "message": "", "lastTransitionTime": "2026-11-22T09:58:00Z"},
                {"type": "Stalled", "status": "False", "reason": "Promoted", "message": "", "lastTransitionTime": "2026-11-22T09:58:00Z"}]
        }
    }))
}

/// A contract gate not asked yet, smoke not run, no analysis yet, promoting, a record made,
/// more failing pods than listed.
fn sample_promoting() -> Rollout {
    crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "pay", "namespace": "prod", "generation": 1},
        "spec": {"version": "3.0.0", "workloadRef": {"name": "pay"},
                 "contractGate": {"brokerUrl": "http://b", "pacticipant": "pay", "environment": "prod", "dryRun": true},
                 "smoke": {"requests": [{"name": "health", "path": "/healthz"}]},
                 "steps": [{"setWeight": 100}]},
        "status": {
            "phase": "Promoting", "observedGeneration": 1, "currentWeight": 100,
            "stableVersion": "2.0.0", "canaryVersion": "3.0.0",
            "fleet": {"verdict": "Passed", "podsChecked": 40, "podsMatching": 35, "podsFailing": 3, "podsNotReady": 2,
                      "checkedAt": "2026-11-22T07:03:00Z",
                      "failingPods": [{"pod": "pay-7", "problem": "Timeout"}]},
            "deploymentRecord": {"version": "3.0.0", "environment": "prod", "recorded": true,
                                 "recordedAt": "2026-11-22T09:59:30Z", "attempts": 1}
        }
    }))
}

/// A contract answer in dry run without summary or reason, and a new rollout without status.
fn sample_dry_run() -> Rollout {
    crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "cart", "namespace": "prod", "generation": 1},
        "spec": {"version": "1.1.0", "workloadRef": {"name": "cart"},
                 "contractGate": {"brokerUrl": "http://b", "pacticipant": "cart", "environment": "prod", "dryRun": true},
                 "steps": [{"setWeight": 20}, {"analyze": {"duration": "2m"}}],
                 "analysis": {"provider": {"prometheus": {"address": "http://p"}}, "errorRate": {}}},
        "status": {
            "phase": "ContractGate", "observedGeneration": 1, "currentWeight": 0,
            "contractGate": {"verdict": "Pending", "dryRun": true, "attempts": 3,
                              "checkedAt": "2026-11-22T06:00:00Z"}
        }
    }))
}

/// Byte for byte, every section in each of its shapes (`testdata/status-trees.txt`, rendered
/// before `render_status` was split into one function per section).
#[test]
fn the_tree_is_unchanged_byte_for_byte() {
    let now: Timestamp = "2026-11-22T10:03:00Z".parse().unwrap();
    let mut fresh = sample_dry_run();
    fresh.status = None;
    let mut out = String::new();
    for (name, r) in [
        ("sample", sample()),
        ("succeeded", sample_succeeded()),
        ("promoting", sample_promoting()),
        ("dry_run", sample_dry_run()),
        ("fresh", fresh),
    ] {
        out.push_str(&format!("=====@{name}\n"));
        out.push_str(&render_status(&r, now));
    }
    let want = include_str!("testdata/status-trees.txt");
    if out != want {
        for (i, (got, want)) in out.lines().zip(want.lines()).enumerate() {
            assert_eq!(got, want, "line {}", i + 1);
        }
        assert_eq!(out.len(), want.len(), "{out}");
    }
}

#[test]
fn the_list_fits_long_names() {
    let mut short = sample();
    short.metadata.name = Some("a".into());
    let rows: Vec<ListRow> = [sample_succeeded(), short, sample_promoting()]
        .iter()
        .map(ListRow::of)
        .collect();
    let text = render_list(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "NAMESPACE   NAME                               PHASE       STEP   WEIGHT   STABLE   CANARY   REASON",
            "shop        checkout-with-a-rather-long-name   Succeeded      -        0   2.4.0    -        Promoted",
            "prod        a                                  Analyzing      2       25   1.0.0    2.0.0    Analyzing",
            "prod        pay                                Promoting      -      100   2.0.0    3.0.0",
        ],
        "\n{text}"
    );
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(json[1]["step"], 2);
    assert_eq!(json[0]["phase"], "Succeeded");
    assert!(json[0].get("canary").is_none());
}

#[test]
fn the_tree_shows_every_gate_step_and_metric() {
    let now: Timestamp = "2026-11-22T10:03:00Z".parse().unwrap();
    let text = render_status(&sample(), now);
    for needle in [
        "Rollout shop (namespace prod)",
        "Analyzing, step 2 of 3, canary weight 25%",
        "stable 1.0.0  canary 2.0.0",
        "Contract  Passed: shop 2.0.0 → production: deployable, asked 5m ago",
        "verifications: 2 ok, 0 failed, 0 unknown",
        "Fleet     Blocked: 7 of 8 pods match, 1 failing",
        "✗ shop-canary-7 [canary] 127.0.10.7 VersionMismatch: reported 1.9.9, expected 2.0.0",
        "error-rate Running: estimate 1.020 [0.800, 1.310], e-value 0.400, samples canary 1200 / baseline 4800",
        "4 looks (1 without data)",
        "1 setWeight 25%",
        "2 analyze 300s",
        "← current, started 3m ago",
        "3 pause until resumed",
        "Ready=False Progressing=Unknown",
        "CanaryStarting",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn the_header_says_until_when_an_instant_rollback_is_possible() {
    let now: Timestamp = "2026-11-22T10:03:00Z".parse().unwrap();
    let mut r = sample();
    let s = r.status.as_mut().unwrap();
    s.phase = Phase::Succeeded;
    s.rollback_window = Some(crate::crd::RollbackWindowStatus {
        previous_version: "1.0.0".into(),
        until: Some("2026-11-22T10:03:30Z".parse().unwrap()),
        rolling_back: false,
    });
    let text = render_status(&r, now);
    assert!(
        text.contains("  Rollback:  instant rollback to 1.0.0 possible until 2026-11-22T10:03:30Z (tollgate abort shop)"),
        "{text}"
    );
    r.status.as_mut().unwrap().rollback_window = None;
    assert!(!render_status(&r, now).contains("Rollback:"));
}

#[test]
fn wait_outcomes() {
    let mut r = sample();
    assert_eq!(wait_outcome(&r), None);
    let s = r.status.as_mut().unwrap();
    s.phase = Phase::RolledBack;
    assert_eq!(wait_outcome(&r), Some(EXIT_FAILED));
    r.status.as_mut().unwrap().phase = Phase::Succeeded;
    assert_eq!(wait_outcome(&r), None, "stable is not the spec version yet");
    r.status.as_mut().unwrap().stable_version = Some("2.0.0".into());
    assert_eq!(wait_outcome(&r), Some(EXIT_OK));
    r.metadata.generation = Some(2);
    assert_eq!(wait_outcome(&r), None, "status describes an older spec");
}

#[test]
fn controls_set_the_declarative_fields() {
    assert_eq!(
        control_patch(Control::Promote, "t1"),
        json!({"spec": {"promoteRequest": "t1"}})
    );
    assert_eq!(
        control_patch(Control::Abort, "t1"),
        json!({"spec": {"abortRequest": "t1"}})
    );
    assert_eq!(
        control_patch(Control::Retry, "t1"),
        json!({"spec": {"retryRequest": "t1"}})
    );
    assert_eq!(
        control_patch(Control::Pause, "t1"),
        json!({"spec": {"paused": true}})
    );
    assert_eq!(
        control_patch(Control::Resume, "t1"),
        json!({"spec": {"paused": false, "resumeRequest": "t1"}})
    );
}

#[test]
fn the_header_shows_the_policy_and_the_steps_it_gave() {
    let now: Timestamp = "2026-11-22T10:03:00Z".parse().unwrap();
    let mut r = sample();
    r.spec.steps.clear();
    r.spec.policy_ref = Some(crate::crd::PolicyRef {
        kind: crate::crd::PolicyKind::ClusterRolloutPolicy,
        name: "platform".into(),
    });
    let s = r.status.as_mut().unwrap();
    s.current_step_index = Some(0);
    s.policy = Some(crate::crd::PolicySnapshot {
        kind: crate::crd::PolicyKind::ClusterRolloutPolicy,
        name: "platform".into(),
        generation: Some(4),
        version: r.spec.version.clone(),
        analysis_hash: "00c0ffee00c0ffee".into(),
        from_policy: vec!["steps".into()],
        spec: serde_json::json!({"steps": [{"setWeight": 7}, {"setWeight": 70}]}),
    });
    let text = render_status(&r, now);
    for needle in [
        "  Policy:    ClusterRolloutPolicy platform (generation 4, analysis hash 00c0ffee00c0ffee)",
        "  From policy: steps",
        "step 1 of 2",
        "1 setWeight 7%",
        "2 setWeight 70%",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    r.status.as_mut().unwrap().policy = None;
    assert!(!render_status(&r, now).contains("Policy:"));
}
