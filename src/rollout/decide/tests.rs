//! Tables of (state, observation) → plan for `decide`, plus whole-rollout scenarios driven by
//! a small simulated cluster in which children settle to what the plan asks for.

use serde_json::json;

use super::*;
use crate::crd::{PodFinding, Rollout, TrafficKind};

const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).unwrap()
}

/// A spec with a contract gate, two weights, two analysis steps and Prometheus analysis.
fn spec() -> RolloutSpec {
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop"},
        "spec": {
            "version": "2.0.0",
            "replicas": 4,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}},
            "contractGate": {"brokerUrl": "http://broker", "pacticipant": "shop",
                             "environment": "production", "pollInterval": "10s",
                             "unknownBudget": "60s"},
            "steps": [{"setWeight": 25}, {"analyze": {"duration": "5m"}},
                      {"setWeight": 50}, {"analyze": {"duration": "5m"}}],
            "analysis": {"provider": {"prometheus": {"address": "http://prom:9090"}},
                         "interval": "30s", "errorRate": {}},
            "progressDeadline": "2m"
        }
    }))
    .unwrap();
    rollout.spec
}

fn spec_with(f: impl FnOnce(&mut RolloutSpec)) -> RolloutSpec {
    let mut s = spec();
    f(&mut s);
    s
}

/// Status of a rollout whose stable version is 1.0.0, in `phase`, started at T0.
fn status_in(phase: Phase) -> RolloutStatus {
    RolloutStatus {
        phase,
        stable_version: Some("1.0.0".into()),
        canary_version: Some("2.0.0".into()),
        phase_started_at: Some(at(0)),
        ..Default::default()
    }
}

fn analyzing_at_step(index: i32, weight: i32) -> RolloutStatus {
    let mut s = status_in(Phase::Analyzing);
    s.current_step_index = Some(index);
    s.current_weight = weight;
    s.step_started_at = Some(at(0));
    s.analysis = Some(AnalysisStatus {
        started_at: Some(at(0)),
        last_look_at: Some(at(0)),
        ..Default::default()
    });
    s
}

fn settled(version: &str, replicas: i32) -> WorkloadState {
    WorkloadState {
        version: Some(version.into()),
        desired: replicas,
        ready: replicas,
        total: replicas,
    }
}

/// Children that match what the plan for `status` asks for.
fn children_matching(spec: &RolloutSpec, status: &RolloutStatus) -> ChildrenState {
    let d = desired_children(spec, status);
    let state = |c: &Option<ChildSpec>| {
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

fn obs_with_children(spec: &RolloutSpec, status: &RolloutStatus) -> Observations {
    Observations {
        children: children_matching(spec, status),
        ..Default::default()
    }
}

fn fleet(verdict: GateVerdict, failing: &[(&str, &str, &str)]) -> FleetStatus {
    FleetStatus {
        verdict,
        pods_checked: 8,
        pods_failing: failing.len() as i32,
        pods_matching: 8 - failing.len() as i32,
        failing_pods: failing
            .iter()
            .map(|(pod, reported, expected)| PodFinding {
                pod: pod.to_string(),
                problem: "VersionMismatch".into(),
                reported: Some(reported.to_string()),
                expected: Some(expected.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn look(verdict: MetricVerdict, end: i64) -> AnalysisLook {
    AnalysisLook {
        window_end: at(end),
        verdict,
        metrics: vec![MetricStatus {
            name: "error-rate".into(),
            verdict,
            reason: Some("rate ratio 3.1 above tolerance 1.2".into()),
            ..Default::default()
        }],
        judge_state: Some(json!({"looks": end})),
        data_missing: false,
        summary: "error-rate ratio 1.0 [0.8, 1.3]".into(),
    }
}

fn missing_look(end: i64) -> AnalysisLook {
    AnalysisLook {
        window_end: at(end),
        verdict: MetricVerdict::Inconclusive,
        metrics: vec![],
        judge_state: None,
        data_missing: true,
        summary: "prometheus unreachable".into(),
    }
}

fn condition<'a>(plan: &'a Plan, kind: &str) -> &'a Condition {
    plan.status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .expect("condition present")
}

fn reasons(plan: &Plan) -> Vec<&str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Pure helpers.

#[test]
fn desired_children_per_phase() {
    let spec = spec();
    // Before traffic moves: canary sized for the first weight, kept out of the Service.
    let d = desired_children(&spec, &status_in(Phase::FleetCheck));
    assert_eq!(
        d.canary,
        Some(ChildSpec {
            version: "2.0.0".into(),
            replicas: 1
        })
    );
    assert_eq!(
        d.stable,
        Some(ChildSpec {
            version: "1.0.0".into(),
            replicas: 4
        })
    );
    assert!(!d.canary_serving);
    assert_eq!(d.canary_weight, 0);
    // Analyzing at 50%: replica ratio moves pods from stable to canary.
    let d = desired_children(&spec, &analyzing_at_step(2, 50));
    assert_eq!(d.canary.as_ref().map(|c| c.replicas), Some(2));
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(2));
    assert!(d.canary_serving);
    assert_eq!(d.canary_weight, 50);
    // Behind an HTTPRoute stable keeps its size and the weight does the split.
    let routed = spec_with(|s| s.traffic.kind = TrafficKind::HttpRoute);
    let d = desired_children(&routed, &analyzing_at_step(2, 50));
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(4));
    // A dedicated baseline matches the canary's size and runs the stable version.
    let baseline = spec_with(|s| s.analysis.as_mut().unwrap().dedicated_baseline = true);
    let d = desired_children(&baseline, &analyzing_at_step(0, 25));
    assert_eq!(
        d.baseline,
        Some(ChildSpec {
            version: "1.0.0".into(),
            replicas: 1
        })
    );
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(2));
    // Rolling back and resting phases keep only stable.
    for phase in [
        Phase::RollingBack,
        Phase::RolledBack,
        Phase::Blocked,
        Phase::Succeeded,
    ] {
        let d = desired_children(&spec, &status_in(phase));
        assert_eq!(d.canary, None, "{phase:?}");
        assert_eq!(d.baseline, None, "{phase:?}");
        assert!(!d.canary_serving);
    }
    // Committed promotion: stable rolls to the new version at full size.
    let mut committed = analyzing_at_step(3, 50);
    committed.phase = Phase::Promoting;
    committed.stable_version = Some("2.0.0".into());
    let d = desired_children(&spec, &committed);
    assert_eq!(
        d.stable,
        Some(ChildSpec {
            version: "2.0.0".into(),
            replicas: 4
        })
    );
    assert!(
        d.canary.is_some(),
        "the canary serves until stable is ready"
    );
}

// ---------------------------------------------------------------------------------------------
// Contract gate.

#[test]
fn a_new_rollout_starts_at_the_contract_gate_and_asks_the_broker() {
    let spec = spec();
    let plan = decide(&spec, None, &Observations::default(), at(0));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("2.0.0"));
    assert_eq!(reasons(&plan), vec!["Started"]);
    let n = needs(&spec, Some(&plan.status), &ChildrenState::default(), at(0));
    assert!(n.ask_broker);
    assert_eq!(n.fleet, None);
}

#[test]
fn contract_gate_answers() {
    struct Case {
        name: &'static str,
        answer: ContractAnswer,
        dry_run: bool,
        phase: Phase,
        reason: &'static str,
        verdict: GateVerdict,
    }
    let yes = ContractAnswer::Deployable {
        reason: "all verified".into(),
        summary: None,
    };
    let no = ContractAnswer::NotDeployable {
        reason: "web 3.1 has a failed verification".into(),
        summary: Some(ContractSummary {
            success: 1,
            failed: 1,
            unknown: 0,
        }),
    };
    let cases = [
        Case {
            name: "yes",
            answer: yes,
            dry_run: false,
            phase: Phase::CanaryStarting,
            reason: "CanaryStarting",
            verdict: GateVerdict::Passed,
        },
        Case {
            name: "no",
            answer: no.clone(),
            dry_run: false,
            phase: Phase::Blocked,
            reason: "NotDeployable",
            verdict: GateVerdict::Blocked,
        },
        Case {
            name: "no in dry run",
            answer: no,
            dry_run: true,
            phase: Phase::CanaryStarting,
            reason: "CanaryStarting",
            verdict: GateVerdict::Blocked,
        },
        Case {
            name: "refused",
            answer: ContractAnswer::Refused {
                reason: "401 Unauthorized".into(),
            },
            dry_run: false,
            phase: Phase::Blocked,
            reason: "BrokerRefused",
            verdict: GateVerdict::Blocked,
        },
        Case {
            name: "unknown",
            answer: ContractAnswer::Unknown {
                reason: "no verification".into(),
                summary: None,
            },
            dry_run: false,
            phase: Phase::ContractGate,
            reason: "ContractUnknown",
            verdict: GateVerdict::Pending,
        },
        Case {
            name: "unreachable",
            answer: ContractAnswer::Unreachable {
                reason: "connection refused".into(),
            },
            dry_run: false,
            phase: Phase::ContractGate,
            reason: "BrokerUnreachable",
            verdict: GateVerdict::Pending,
        },
    ];
    for case in cases {
        let spec = spec_with(|s| s.contract_gate.as_mut().unwrap().dry_run = case.dry_run);
        let status = status_in(Phase::ContractGate);
        let obs = Observations {
            contract: Some(case.answer.clone()),
            ..Default::default()
        };
        let plan = decide(&spec, Some(&status), &obs, at(5));
        assert_eq!(plan.status.phase, case.phase, "{}", case.name);
        assert_eq!(
            plan.status.reason.as_deref(),
            Some(case.reason),
            "{}",
            case.name
        );
        let gate = plan.status.contract_gate.as_ref().expect("evidence kept");
        assert_eq!(gate.verdict, case.verdict, "{}", case.name);
        assert_eq!(gate.checked_at, Some(at(5)), "{}", case.name);
        assert!(
            gate.reason.is_some(),
            "{}: the broker's reason is kept",
            case.name
        );
        if case.phase == Phase::Blocked {
            assert_eq!(plan.status.rejected_version.as_deref(), Some("2.0.0"));
            assert_eq!(plan.status.canary_version, None, "{}", case.name);
            assert_eq!(condition(&plan, CONDITION_STALLED).status, "True");
            assert_eq!(condition(&plan, CONDITION_READY).status, "False");
            assert_eq!(plan.children.canary, None, "{}: nothing started", case.name);
            assert_eq!(plan.events.last().unwrap().kind, EventKind::Warning);
        }
        if case.dry_run {
            assert!(reasons(&plan).contains(&"ContractGateDryRun"));
            assert_eq!(
                gate.deployable,
                Some(false),
                "a dry-run no is still recorded as no"
            );
        }
    }
}

#[test]
fn unknown_answers_poll_within_the_budget_then_block() {
    let spec = spec();
    let unknown = Observations {
        contract: Some(ContractAnswer::Unknown {
            reason: "pending verification".into(),
            summary: None,
        }),
        ..Default::default()
    };
    let mut status = status_in(Phase::ContractGate);
    let plan = decide(&spec, Some(&status), &unknown, at(0));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(10)));
    status = plan.status;
    // Not due yet: the broker is not asked again.
    assert!(!needs(&spec, Some(&status), &ChildrenState::default(), at(5)).ask_broker);
    assert!(needs(&spec, Some(&status), &ChildrenState::default(), at(10)).ask_broker);
    let plan = decide(&spec, Some(&status), &Observations::default(), at(5));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(5)));
    // Still unknown at 59s: keep waiting; at 60s: blocked as unknown.
    let plan = decide(&spec, Some(&status), &unknown, at(59));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    let unknown_since = plan.status.contract_gate.as_ref().unwrap().unknown_since;
    assert_eq!(
        unknown_since,
        Some(at(0)),
        "the budget runs from the first unknown"
    );
    let plan = decide(&spec, Some(&plan.status), &unknown, at(60));
    assert_eq!(plan.status.phase, Phase::Blocked);
    assert_eq!(plan.status.reason.as_deref(), Some("ContractUnknown"));
    assert!(plan
        .status
        .message
        .as_deref()
        .unwrap()
        .contains("60s budget"));
    // A "yes" after an unknown clears the wait.
    let plan = decide(
        &spec,
        Some(&status),
        &Observations {
            contract: Some(ContractAnswer::Deployable {
                reason: "ok".into(),
                summary: None,
            }),
            ..Default::default()
        },
        at(20),
    );
    assert_eq!(plan.status.phase, Phase::CanaryStarting);
    assert_eq!(plan.status.contract_gate.unwrap().unknown_since, None);
}

#[test]
fn first_deployment_skips_the_canary() {
    let spec = spec();
    let mut status = status_in(Phase::ContractGate);
    status.stable_version = None;
    let obs = Observations {
        contract: Some(ContractAnswer::Deployable {
            reason: "ok".into(),
            summary: None,
        }),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.phase, Phase::Promoting);
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0"));
    assert_eq!(plan.children.canary, None);
    assert_eq!(
        plan.children.stable,
        Some(ChildSpec {
            version: "2.0.0".into(),
            replicas: 4
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Canary start, fleet, smoke.

#[test]
fn canary_start_waits_for_pods_then_checks_the_fleet() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    let plan = decide(&spec, Some(&status), &Observations::default(), at(10));
    assert_eq!(plan.status.phase, Phase::CanaryStarting);
    assert_eq!(plan.requeue_after, Some(POD_WAIT_REQUEUE));
    assert!(plan.events.is_empty());
    let plan = decide(
        &spec,
        Some(&status),
        &obs_with_children(&spec, &status),
        at(10),
    );
    assert_eq!(plan.status.phase, Phase::FleetCheck);
    let n = needs(
        &spec,
        Some(&plan.status),
        &children_matching(&spec, &plan.status),
        at(10),
    );
    assert_eq!(
        n.fleet,
        Some(FleetScope {
            canary_version: Some("2.0.0".into()),
            stable_version: Some("1.0.0".into())
        })
    );
    // Past the progress deadline without ready pods: roll back.
    let plan = decide(&spec, Some(&status), &Observations::default(), at(121));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(
        plan.status.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
}

#[test]
fn fleet_check_results() {
    let spec = spec();
    let status = status_in(Phase::FleetCheck);
    let mut obs = obs_with_children(&spec, &status);
    obs.fleet = Some(fleet(GateVerdict::Passed, &[]));
    let plan = decide(&spec, Some(&status), &obs, at(3));
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(plan.status.current_step_index, Some(0));
    assert_eq!(
        plan.status.current_weight, 25,
        "the first step's weight applies at once"
    );
    assert!(plan.children.canary_serving);
    assert!(reasons(&plan).contains(&"FleetCheckPassed"));

    obs.fleet = Some(fleet(
        GateVerdict::Blocked,
        &[("shop-canary-7", "1.9.9", "2.0.0")],
    ));
    let plan = decide(&spec, Some(&status), &obs, at(3));
    assert_eq!(plan.status.phase, Phase::Blocked);
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("shop-canary-7") && message.contains("1.9.9"),
        "{message}"
    );
    assert_eq!(plan.status.fleet.unwrap().failing_pods.len(), 1);
    assert_eq!(
        plan.children.canary, None,
        "a blocked canary is scaled down"
    );
    assert_eq!(plan.children.canary_weight, 0);

    // A pod that does not answer (yet) holds the rollout until the progress deadline.
    let mut silent = fleet(GateVerdict::Blocked, &[("shop-canary-1", "-", "2.0.0")]);
    silent.failing_pods[0].problem = "Unreachable".into();
    obs.fleet = Some(silent.clone());
    let plan = decide(&spec, Some(&status), &obs, at(30));
    assert_eq!(plan.status.phase, Phase::FleetCheck);
    assert_eq!(plan.status.reason.as_deref(), Some("FleetUnanswered"));
    assert_eq!(plan.requeue_after, Some(POD_WAIT_REQUEUE));
    assert!(plan.status.message.unwrap().contains("shop-canary-1"));
    let plan = decide(&spec, Some(&status), &obs, at(121));
    assert_eq!(
        plan.status.phase,
        Phase::Blocked,
        "past the deadline it blocks"
    );
    // One wrong answer among silent pods blocks at once.
    let mut mixed = silent;
    mixed.failing_pods.push(PodFinding {
        pod: "shop-canary-2".into(),
        problem: "VersionMismatch".into(),
        ..Default::default()
    });
    obs.fleet = Some(mixed);
    assert_eq!(
        decide(&spec, Some(&status), &obs, at(30)).status.phase,
        Phase::Blocked
    );

    // Not every pod settled yet: the fleet is not asked.
    let n = needs(&spec, Some(&status), &ChildrenState::default(), at(3));
    assert_eq!(n.fleet, None);

    // A failing re-check is repeated at most every POD_WAIT_REQUEUE, not on every wake-up.
    let mut promoting = analyzing_at_step(3, 50);
    promoting.phase = Phase::Promoting;
    promoting.phase_started_at = Some(at(0));
    promoting.fleet = Some(FleetStatus {
        checked_at: Some(at(10)),
        ..fleet(GateVerdict::Blocked, &[])
    });
    let children = children_matching(&spec, &promoting);
    assert_eq!(
        needs(&spec, Some(&promoting), &children, at(12)).fleet,
        None
    );
    assert!(needs(&spec, Some(&promoting), &children, at(15))
        .fleet
        .is_some());
    // A check from an earlier phase does not delay the first one of this phase.
    promoting.phase_started_at = Some(at(11));
    assert!(needs(&spec, Some(&promoting), &children, at(12))
        .fleet
        .is_some());
}

#[test]
fn smoke_checks_gate_analysis() {
    let spec = spec_with(|s| {
        s.smoke = Some(
            serde_json::from_value(json!({"requests": [{"name": "h", "path": "/h"}]})).unwrap(),
        )
    });
    let status = status_in(Phase::FleetCheck);
    let mut obs = obs_with_children(&spec, &status);
    obs.fleet = Some(fleet(GateVerdict::Passed, &[]));
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.phase, Phase::SmokeCheck);
    assert!(needs(&spec, Some(&plan.status), &obs.children, at(1)).smoke);
    let failed = SmokeStatus {
        verdict: GateVerdict::Blocked,
        requests_sent: 2,
        requests_failed: 1,
        failures: vec![PodFinding {
            pod: "shop-canary-0".into(),
            problem: "h: got 503, want 200".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut smoke_status = plan.status.clone();
    smoke_status.phase_started_at = Some(at(1));
    let plan = decide(
        &spec,
        Some(&smoke_status),
        &Observations {
            smoke: Some(failed),
            ..obs.clone()
        },
        at(2),
    );
    assert_eq!(plan.status.phase, Phase::Blocked);
    assert!(plan.status.message.unwrap().contains("shop-canary-0"));
}

// ---------------------------------------------------------------------------------------------
// Analysis.

#[test]
fn weight_steps_advance_once_the_pods_are_there() {
    let spec = spec();
    let status = analyzing_at_step(0, 25);
    let plan = decide(&spec, Some(&status), &Observations::default(), at(1));
    assert_eq!(plan.status.current_step_index, Some(0));
    let plan = decide(
        &spec,
        Some(&status),
        &obs_with_children(&spec, &status),
        at(1),
    );
    assert_eq!(plan.status.current_step_index, Some(1));
    assert_eq!(plan.status.step_started_at, Some(at(1)));
    assert!(reasons(&plan).contains(&"WeightSet"));
}

#[test]
fn analysis_looks() {
    struct Case {
        name: &'static str,
        look: Option<AnalysisLook>,
        now: i64,
        paused: bool,
        policy: InconclusivePolicy,
        phase: Phase,
        step: Option<i32>,
        hold: bool,
    }
    use InconclusivePolicy::{Pause, Rollback};
    use MetricVerdict::*;
    let cases = [
        Case {
            name: "fail rolls back",
            look: Some(look(Fail, 30)),
            now: 30,
            paused: false,
            policy: Pause,
            phase: Phase::RollingBack,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "fail rolls back even when paused",
            look: Some(look(Fail, 30)),
            now: 30,
            paused: true,
            policy: Pause,
            phase: Phase::RollingBack,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "pass advances",
            look: Some(look(Pass, 30)),
            now: 30,
            paused: false,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(2),
            hold: false,
        },
        Case {
            name: "pass while paused waits",
            look: Some(look(Pass, 30)),
            now: 30,
            paused: true,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "running keeps going",
            look: Some(look(Running, 30)),
            now: 30,
            paused: false,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "missing data never fails",
            look: Some(missing_look(30)),
            now: 30,
            paused: false,
            policy: Rollback,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "missing data at the deadline holds",
            look: Some(missing_look(300)),
            now: 300,
            paused: false,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: true,
        },
        Case {
            name: "missing data at the deadline, rollback policy",
            look: Some(missing_look(300)),
            now: 300,
            paused: false,
            policy: Rollback,
            phase: Phase::RollingBack,
            step: Some(1),
            hold: false,
        },
        Case {
            name: "running at the deadline holds",
            look: Some(look(Running, 300)),
            now: 300,
            paused: false,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: true,
        },
        Case {
            name: "no look before the deadline waits",
            look: None,
            now: 100,
            paused: false,
            policy: Pause,
            phase: Phase::Analyzing,
            step: Some(1),
            hold: false,
        },
    ];
    for case in cases {
        let spec = spec_with(|s| {
            s.paused = case.paused;
            s.analysis.as_mut().unwrap().on_inconclusive = case.policy;
        });
        let status = analyzing_at_step(1, 25);
        let obs = Observations {
            look: case.look.clone(),
            ..obs_with_children(&spec, &status)
        };
        let plan = decide(&spec, Some(&status), &obs, at(case.now));
        assert_eq!(plan.status.phase, case.phase, "{}", case.name);
        if case.phase == Phase::Analyzing {
            assert_eq!(plan.status.current_step_index, case.step, "{}", case.name);
        }
        assert_eq!(
            plan.status.hold_reason.is_some(),
            case.hold,
            "{}",
            case.name
        );
        if case.hold {
            assert_eq!(
                condition(&plan, CONDITION_STALLED).status,
                "True",
                "{}",
                case.name
            );
            assert_eq!(
                condition(&plan, CONDITION_PROGRESSING).status,
                "False",
                "{}",
                case.name
            );
        }
        let analysis = plan.status.analysis.as_ref().unwrap();
        if let Some(l) = &case.look {
            assert_eq!(analysis.looks, 1, "{}", case.name);
            assert_eq!(analysis.last_look_at, Some(l.window_end), "{}", case.name);
            if l.data_missing {
                assert_eq!(analysis.failed_looks, 1, "{}", case.name);
                assert_eq!(analysis.verdict, Inconclusive, "{}", case.name);
            } else {
                assert_eq!(
                    analysis.judge_state, l.judge_state,
                    "{}: judge state kept",
                    case.name
                );
            }
        }
        if case.phase == Phase::RollingBack {
            assert_eq!(plan.children.canary, None);
            assert_eq!(plan.children.canary_weight, 0);
            assert_eq!(plan.status.rejected_version.as_deref(), Some("2.0.0"));
        }
    }
}

#[test]
fn a_pass_from_before_the_step_does_not_count_for_it() {
    let spec = spec();
    let mut status = analyzing_at_step(1, 25);
    status.step_started_at = Some(at(100));
    let obs = Observations {
        look: Some(look(MetricVerdict::Pass, 100)),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &obs, at(100));
    assert_eq!(plan.status.current_step_index, Some(1));
    let obs = Observations {
        look: Some(look(MetricVerdict::Pass, 130)),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &obs, at(130));
    assert_eq!(plan.status.current_step_index, Some(2));
}

#[test]
fn looks_are_asked_for_once_per_interval() {
    let spec = spec();
    let status = analyzing_at_step(1, 25);
    assert_eq!(
        needs(&spec, Some(&status), &ChildrenState::default(), at(29)).look,
        None
    );
    assert_eq!(
        needs(&spec, Some(&status), &ChildrenState::default(), at(30)).look,
        Some(LookWindow {
            start: at(0),
            end: at(30)
        })
    );
}

#[test]
fn pause_steps() {
    let spec = spec_with(|s| {
        s.steps = serde_json::from_value(json!([{"setWeight": 10}, {"pause": {"duration": "60s"}}, {"pause": {}}, {"setWeight": 20}])).unwrap();
        s.analysis = None;
    });
    let mut status = analyzing_at_step(1, 10);
    status.analysis = None;
    let plan = decide(&spec, Some(&status), &Observations::default(), at(30));
    assert_eq!(plan.status.current_step_index, Some(1));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    let plan = decide(&spec, Some(&status), &Observations::default(), at(60));
    assert_eq!(plan.status.current_step_index, Some(2));
    // The open pause holds until a resume token.
    let held = decide(
        &spec,
        Some(&plan.status),
        &Observations::default(),
        at(5000),
    );
    assert_eq!(held.status.current_step_index, Some(2));
    assert!(held.status.hold_reason.is_some());
    let resumed_spec = spec_with(|s| {
        s.steps = spec.steps.clone();
        s.analysis = None;
        s.resume_request = Some("r1".into());
    });
    let plan = decide(
        &resumed_spec,
        Some(&held.status),
        &Observations::default(),
        at(5001),
    );
    assert_eq!(plan.status.current_step_index, Some(3));
    assert_eq!(plan.status.handled_requests.resume.as_deref(), Some("r1"));
    assert_eq!(plan.status.hold_reason, None);
    // The same token does not act twice.
    let again = decide(
        &resumed_spec,
        Some(&held.status),
        &Observations::default(),
        at(5001),
    );
    assert_eq!(again.status.current_step_index, Some(3));
    let twice = decide(
        &resumed_spec,
        Some(&plan.status),
        &Observations::default(),
        at(5002),
    );
    assert_eq!(
        twice.status.current_step_index,
        Some(3),
        "a handled token is ignored"
    );
}

// ---------------------------------------------------------------------------------------------
// Manual controls.

#[test]
fn tokens_act_once() {
    let status = analyzing_at_step(1, 25);
    // Promote now: skips the remaining steps.
    let spec_p = spec_with(|s| s.promote_request = Some("p1".into()));
    let plan = decide(&spec_p, Some(&status), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::Promoting);
    assert_eq!(plan.status.handled_requests.promote.as_deref(), Some("p1"));
    // Abort: rolls back.
    let spec_a = spec_with(|s| s.abort_request = Some("a1".into()));
    let plan = decide(&spec_a, Some(&status), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("Aborted"));
    // An abort token already handled does nothing.
    let mut handled = status.clone();
    handled.handled_requests.abort = Some("a1".into());
    let plan = decide(&spec_a, Some(&handled), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::Analyzing);
    // Abort before any canary: blocked.
    let plan = decide(
        &spec_a,
        Some(&status_in(Phase::ContractGate)),
        &Observations::default(),
        at(1),
    );
    assert_eq!(plan.status.phase, Phase::Blocked);
    // A promote token during the contract gate waits for analysis (the gate still applies).
    let plan = decide(
        &spec_p,
        Some(&status_in(Phase::ContractGate)),
        &Observations::default(),
        at(1),
    );
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.handled_requests.promote, None);
    // A promote token on a finished rollout is consumed, so it cannot promote a later one.
    let mut done = status_in(Phase::Succeeded);
    done.stable_version = Some("2.0.0".into());
    let plan = decide(&spec_p, Some(&done), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(plan.status.handled_requests.promote.as_deref(), Some("p1"));
    assert!(reasons(&plan).contains(&"PromoteIgnored"));
}

#[test]
fn a_rejected_version_stays_rejected_until_retried() {
    let spec = spec();
    let mut rejected = status_in(Phase::RolledBack);
    rejected.rejected_version = Some("2.0.0".into());
    let plan = decide(&spec, Some(&rejected), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::RolledBack);
    assert!(plan.events.is_empty());
    let retry = spec_with(|s| s.retry_request = Some("again".into()));
    let plan = decide(&retry, Some(&rejected), &Observations::default(), at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.rejected_version, None);
    assert_eq!(plan.status.handled_requests.retry.as_deref(), Some("again"));
    // A new version is tried without a retry token.
    let newer = spec_with(|s| s.version = "2.0.1".into());
    let plan = decide(&newer, Some(&rejected), &Observations::default(), at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("2.0.1"));
}

#[test]
fn a_new_version_mid_analysis_supersedes_the_old_canary() {
    let newer = spec_with(|s| s.version = "3.0.0".into());
    let status = analyzing_at_step(1, 25);
    let plan = decide(&newer, Some(&status), &Observations::default(), at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("Superseded"));
    assert_eq!(plan.children.canary, None, "the old canary goes first");
    assert_eq!(plan.status.analysis, None, "the old evidence is dropped");
    // Once it is gone the pipeline starts over for the new version.
    let gone = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let plan = decide(&newer, Some(&plan.status), &gone, at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("3.0.0"));
    assert_eq!(plan.status.rejected_version, None);
}

// ---------------------------------------------------------------------------------------------
// Promotion, rollback, records.

#[test]
fn promotion_rechecks_the_fleet_then_commits_then_verifies() {
    let spec = spec();
    let mut status = analyzing_at_step(3, 50);
    status.phase = Phase::Promoting;
    // Pre-commit fleet failure: roll back, nothing committed.
    let mut obs = obs_with_children(&spec, &status);
    obs.fleet = Some(fleet(
        GateVerdict::Blocked,
        &[("shop-stable-2", "0.9.0", "1.0.0")],
    ));
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.stable_version.as_deref(), Some("1.0.0"));
    // Pre-commit pass: commit.
    obs.fleet = Some(fleet(GateVerdict::Passed, &[]));
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.phase, Phase::Promoting);
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0"));
    assert!(reasons(&plan).contains(&"PromotionCommitted"));
    let committed = plan.status;
    // Deciding again on the committed status repeats nothing.
    let again = decide(&spec, Some(&committed), &Observations::default(), at(2));
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.status.stable_version.as_deref(), Some("2.0.0"));
    // The stable pods roll; once settled the fleet is checked once more.
    let n = needs(
        &spec,
        Some(&committed),
        &ChildrenState {
            stable: settled("2.0.0", 4),
            ..Default::default()
        },
        at(3),
    );
    assert_eq!(
        n.fleet,
        Some(FleetScope {
            canary_version: None,
            stable_version: Some("2.0.0".into())
        })
    );
    let obs = Observations {
        children: ChildrenState {
            stable: settled("2.0.0", 4),
            canary: settled("2.0.0", 2),
            ..Default::default()
        },
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&committed), &obs, at(3));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(plan.status.canary_version, None);
    assert_eq!(plan.children.canary, None);
    assert_eq!(condition(&plan, CONDITION_READY).status, "True");
    assert_eq!(condition(&plan, CONDITION_STALLED).status, "False");
    let record = plan.status.deployment_record.as_ref().unwrap();
    assert_eq!((record.version.as_str(), record.recorded), ("2.0.0", false));
    assert_eq!(
        needs(&spec, Some(&plan.status), &obs.children, at(3))
            .record
            .as_deref(),
        Some("2.0.0")
    );
}

#[test]
fn deployment_records_retry_with_backoff_and_never_undo() {
    let spec = spec();
    let mut status = status_in(Phase::Succeeded);
    status.stable_version = Some("2.0.0".into());
    status.canary_version = None;
    status.deployment_record = Some(DeploymentRecordStatus {
        version: "2.0.0".into(),
        environment: "production".into(),
        ..Default::default()
    });
    let failed = Observations {
        record: Some(RecordOutcome::Failed {
            reason: "503".into(),
        }),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &failed, at(0));
    assert_eq!(
        plan.status.phase,
        Phase::Succeeded,
        "a failed record never undoes a promotion"
    );
    let record = plan.status.deployment_record.clone().unwrap();
    assert_eq!((record.attempts, record.recorded), (1, false));
    assert_eq!(record.last_error.as_deref(), Some("503"));
    assert_eq!(plan.requeue_after, Some(RECORD_RETRY_BASE));
    assert_eq!(
        needs(&spec, Some(&plan.status), &ChildrenState::default(), at(5)).record,
        None
    );
    assert!(
        needs(&spec, Some(&plan.status), &ChildrenState::default(), at(10))
            .record
            .is_some()
    );
    let plan = decide(&spec, Some(&plan.status), &failed, at(10));
    assert_eq!(
        plan.requeue_after,
        Some(Duration::from_secs(20)),
        "the delay doubles"
    );
    let ok = Observations {
        record: Some(RecordOutcome::Recorded),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&plan.status), &ok, at(30));
    let record = plan.status.deployment_record.clone().unwrap();
    assert!(record.recorded);
    assert_eq!(record.attempts, 3);
    assert_eq!(
        needs(
            &spec,
            Some(&plan.status),
            &ChildrenState::default(),
            at(1000)
        )
        .record,
        None
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn rollback_waits_for_the_canary_to_go_then_records_stable_again() {
    let spec = spec();
    let mut status = status_in(Phase::RollingBack);
    status.reason = Some("AnalysisFailed".into());
    status.message = Some("canary 2.0.0 regressed".into());
    let busy = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            canary: settled("2.0.0", 1),
            ..Default::default()
        },
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &busy, at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.children.canary, None);
    assert!(
        !plan.children.canary_serving,
        "traffic leaves the canary first"
    );
    let gone = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let plan = decide(&spec, Some(&status), &gone, at(2));
    assert_eq!(plan.status.phase, Phase::RolledBack);
    assert_eq!(plan.status.reason.as_deref(), Some("AnalysisFailed"));
    assert_eq!(
        plan.status.deployment_record.as_ref().unwrap().version,
        "1.0.0"
    );
    assert_eq!(condition(&plan, CONDITION_STALLED).status, "True");
}

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    let first = decide(&spec, Some(&status), &Observations::default(), at(1));
    let second = decide(&spec, Some(&first.status), &Observations::default(), at(50));
    for kind in [
        CONDITION_READY,
        CONDITION_PROGRESSING,
        CONDITION_RECONCILING,
        CONDITION_STALLED,
    ] {
        assert_eq!(
            condition(&first, kind).last_transition_time,
            condition(&second, kind).last_transition_time,
            "{kind} flapped"
        );
    }
    assert_eq!(condition(&second, CONDITION_PROGRESSING).status, "True");
    assert_eq!(
        condition(&second, CONDITION_RECONCILING).status,
        "True",
        "kstatus reads Reconciling"
    );
}

// ---------------------------------------------------------------------------------------------
// Whole rollouts against a simulated cluster.

/// What the simulated world answers.
struct World {
    contract: ContractAnswer,
    fleet_ok: bool,
    verdict_after: Option<(i64, MetricVerdict)>,
    record_fails: usize,
    /// What the webhook was told, pass by pass, as the reconcile does it ("Event version").
    notified: Vec<String>,
}

/// Drive decide/needs until the rollout rests or `limit` seconds pass. Children settle to the
/// plan at once; each pass is 5 s apart. Optionally "restart" (drop everything but the status)
/// at every pass, which is what an operator killed and restarted sees.
fn run(
    spec: &RolloutSpec,
    start: RolloutStatus,
    world: &mut World,
    limit: i64,
) -> (RolloutStatus, Vec<String>) {
    let mut status = start;
    let mut now = 0;
    let mut events = Vec::new();
    let mut children = ChildrenState::default();
    while now <= limit {
        let n = needs(spec, Some(&status), &children, at(now));
        let mut obs = Observations {
            generation: Some(1),
            children: children.clone(),
            ..Default::default()
        };
        if n.ask_broker {
            obs.contract = Some(world.contract.clone());
        }
        if n.fleet.is_some() {
            obs.fleet = Some(if world.fleet_ok {
                fleet(GateVerdict::Passed, &[])
            } else {
                fleet(GateVerdict::Blocked, &[("p", "x", "y")])
            });
        }
        if n.smoke {
            obs.smoke = Some(SmokeStatus {
                verdict: GateVerdict::Passed,
                ..Default::default()
            });
        }
        if let Some(w) = &n.look {
            let verdict = match world.verdict_after {
                Some((t, v)) if now >= t => v,
                _ => MetricVerdict::Running,
            };
            obs.look = Some(look(verdict, (w.end.as_second()) - T0));
        }
        if n.record.is_some() {
            obs.record = Some(if world.record_fails > 0 {
                world.record_fails -= 1;
                RecordOutcome::Failed {
                    reason: "503".into(),
                }
            } else {
                RecordOutcome::Recorded
            });
        }
        let plan = decide(spec, Some(&status), &obs, at(now));
        events.extend(plan.events.iter().map(|e| e.reason.clone()));
        let mut written = Rollout::new("shop", spec.clone());
        written.status = Some(plan.status.clone());
        if let Some(n) =
            crate::runtime::notify::Notification::for_transition(&written, Some(&status), at(now))
        {
            world
                .notified
                .push(format!("{} {}", n.event.as_str(), n.version));
        }
        status = plan.status;
        children = children_matching(spec, &status);
        let resting = status.phase.is_terminal()
            && status.deployment_record.as_ref().is_none_or(|r| r.recorded);
        if resting {
            break;
        }
        now += 5;
    }
    (status, events)
}

fn stable_status() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("1.0.0".into()),
        ..Default::default()
    }
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step_and_recorded_once() {
    let spec = spec();
    let mut world = World {
        contract: ContractAnswer::Deployable {
            reason: "ok".into(),
            summary: None,
        },
        fleet_ok: true,
        verdict_after: Some((0, MetricVerdict::Pass)),
        record_fails: 2,
        notified: vec![],
    };
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::Succeeded, "{events:?}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    assert!(status.deployment_record.as_ref().unwrap().recorded);
    assert_eq!(
        events.iter().filter(|e| *e == "DeploymentRecorded").count(),
        1
    );
    assert_eq!(
        events.iter().filter(|e| *e == "PromotionCommitted").count(),
        1
    );
    // The first analysis step passes on its own; the last one's pass completes the steps.
    assert_eq!(
        events.iter().filter(|e| *e == "AnalysisPassed").count(),
        1,
        "{events:?}"
    );
    let completed = status
        .history
        .iter()
        .find(|d| d.reason == "StepsCompleted")
        .unwrap();
    assert!(
        completed
            .message
            .contains("step 4: canary within tolerance"),
        "{}",
        completed.message
    );
    assert_eq!(
        events.iter().filter(|e| *e == "WeightSet").count(),
        2,
        "{events:?}"
    );
    // Once, although the status is written again for each deployment-record retry.
    assert_eq!(world.notified, ["Promoted 2.0.0"]);
}

#[test]
fn a_regression_is_rolled_back_before_the_last_step() {
    let spec = spec();
    let mut world = World {
        contract: ContractAnswer::Deployable {
            reason: "ok".into(),
            summary: None,
        },
        fleet_ok: true,
        verdict_after: Some((60, MetricVerdict::Fail)),
        record_fails: 0,
        notified: vec![],
    };
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::RolledBack, "{events:?}");
    assert_eq!(status.reason.as_deref(), Some("AnalysisFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0"));
    assert!(!events.contains(&"PromotionCommitted".to_string()));
    assert_eq!(status.deployment_record.unwrap().version, "1.0.0");
    assert_eq!(world.notified, ["RolledBack 2.0.0"]);
}

#[test]
fn a_stale_pod_blocks_and_an_unknown_broker_blocks_after_its_budget() {
    let spec = spec();
    let mut world = World {
        contract: ContractAnswer::Deployable {
            reason: "ok".into(),
            summary: None,
        },
        fleet_ok: false,
        verdict_after: None,
        record_fails: 0,
        notified: vec![],
    };
    let (status, _) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(
        (status.phase, status.reason.as_deref()),
        (Phase::Blocked, Some("FleetCheckFailed"))
    );
    assert_eq!(world.notified, ["Blocked 2.0.0"]);
    let mut world = World {
        contract: ContractAnswer::Unknown {
            reason: "no results".into(),
            summary: None,
        },
        fleet_ok: true,
        verdict_after: None,
        record_fails: 0,
        notified: vec![],
    };
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(
        (status.phase, status.reason.as_deref()),
        (Phase::Blocked, Some("ContractUnknown"))
    );
    assert!(
        !events.contains(&"CanaryStarting".to_string()),
        "no canary pod ever started"
    );
    assert_eq!(world.notified, ["Blocked 2.0.0"]);
}

#[test]
fn metrics_that_never_arrive_hold_the_rollout_without_promoting_or_rolling_back() {
    let spec = spec();
    let mut world = World {
        contract: ContractAnswer::Deployable {
            reason: "ok".into(),
            summary: None,
        },
        fleet_ok: true,
        verdict_after: None,
        record_fails: 0,
        notified: vec![],
    };
    let (status, events) = run(&spec, stable_status(), &mut world, 1800);
    assert_eq!(status.phase, Phase::Analyzing);
    assert!(status.hold_reason.is_some());
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(!events
        .iter()
        .any(|e| e == "PromotionCommitted" || e == "AnalysisFailed"));
    assert!(world.notified.is_empty(), "{:?}", world.notified);
}
