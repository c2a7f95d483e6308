//! The gates before traffic: contract gate, canary start, fleet and smoke checks.

use super::*;

#[test]
fn a_new_rollout_starts_at_the_contract_gate_and_asks_the_broker() {
    let spec = spec();
    let plan = decide(&spec, None, &Observations::default(), at(0));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("2.0.0+a1b2c3d"));
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
            assert_eq!(
                plan.status.rejected_version.as_deref(),
                Some("2.0.0+a1b2c3d")
            );
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
    let plan = decide_alone(&spec, &status, at(5));
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
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert_eq!(plan.children.canary, None);
    assert_eq!(
        plan.children.stable,
        Some(ChildSpec {
            version: "2.0.0+a1b2c3d".into(),
            replicas: 4
        })
    );
}

#[test]
fn canary_start_waits_for_pods_then_checks_the_fleet() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    let plan = decide_alone(&spec, &status, at(10));
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
            canary_version: Some("2.0.0+a1b2c3d".into()),
            stable_version: Some("1.0.0".into()),
            original: false,
        })
    );
    // Past the progress deadline without ready pods: roll back.
    let plan = decide_alone(&spec, &status, at(121));
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
        &[("shop-canary-7", "1.9.9", "2.0.0+a1b2c3d")],
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
    let mut silent = fleet(
        GateVerdict::Blocked,
        &[("shop-canary-1", "-", "2.0.0+a1b2c3d")],
    );
    silent.status.failing_pods[0].problem = "Unreachable".into();
    silent.verdict = FleetVerdict::Unanswered;
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
    mixed.status.failing_pods.push(PodFinding {
        pod: "shop-canary-2".into(),
        problem: "VersionMismatch".into(),
        ..Default::default()
    });
    mixed.verdict = FleetVerdict::Failed;
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
        ..fleet_status(GateVerdict::Blocked, &[])
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

/// Every (answer, dry run, budget) cell of the contract gate. Dry run means what the CRD says:
/// the gate waits within the budget exactly as without it and records the real verdict; where
/// it would block, it continues with a Warning Event instead.
#[test]
fn every_contract_answer_with_and_without_dry_run_within_and_past_the_budget() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Outcome {
        /// Passed: the canary starts, the record says Passed.
        Passes,
        /// Still asking: reason as given, the record says Pending.
        Waits(&'static str),
        /// Blocked: reason as given, the record says Blocked.
        Blocks(&'static str),
    }
    use Outcome::*;
    let summary = Some(ContractSummary {
        success: 1,
        failed: 1,
        unknown: 0,
    });
    let answers = [
        (
            "yes",
            ContractAnswer::Deployable {
                reason: "all verified".into(),
                summary: summary.clone(),
            },
            Passes,
            Passes,
        ),
        (
            "no",
            ContractAnswer::NotDeployable {
                reason: "web 3.1 failed".into(),
                summary: summary.clone(),
            },
            Blocks("NotDeployable"),
            Blocks("NotDeployable"),
        ),
        (
            "unknown",
            ContractAnswer::Unknown {
                reason: "no verification".into(),
                summary: None,
            },
            Waits("ContractUnknown"),
            Blocks("ContractUnknown"),
        ),
        (
            "unreachable",
            ContractAnswer::Unreachable {
                reason: "connection refused".into(),
            },
            Waits("BrokerUnreachable"),
            Blocks("BrokerUnreachable"),
        ),
        (
            "refused",
            ContractAnswer::Refused {
                reason: "401 Unauthorized".into(),
            },
            Blocks("BrokerRefused"),
            Blocks("BrokerRefused"),
        ),
    ];
    // Asked first at 0 (unknown since then); the budget is 60s.
    let mut status = status_in(Phase::ContractGate);
    status.contract_gate = Some(ContractGateStatus {
        verdict: GateVerdict::Pending,
        checked_at: Some(at(0)),
        unknown_since: Some(at(0)),
        attempts: 1,
        ..Default::default()
    });
    for (name, answer, within, past) in answers {
        for dry_run in [false, true] {
            for (now, want) in [(10, within), (60, past)] {
                let cell = format!("{name}, dryRun {dry_run}, at {now}s");
                let spec = spec_with(|s| s.contract_gate.as_mut().unwrap().dry_run = dry_run);
                let obs = Observations {
                    contract: Some(answer.clone()),
                    ..Default::default()
                };
                let plan = decide(&spec, Some(&status), &obs, at(now));
                let gate = plan.status.contract_gate.clone().expect("evidence kept");
                assert_eq!(gate.checked_at, Some(at(now)), "{cell}");
                assert_eq!(gate.attempts, 2, "{cell}");
                assert_eq!(gate.dry_run, dry_run, "{cell}");
                assert!(gate.reason.is_some(), "{cell}: the reason is kept");
                match want {
                    Passes => {
                        assert_eq!(plan.status.phase, Phase::CanaryStarting, "{cell}");
                        assert_eq!(gate.verdict, GateVerdict::Passed, "{cell}");
                        assert_eq!(gate.unknown_since, None, "{cell}");
                        assert!(reasons(&plan).contains(&"ContractGatePassed"), "{cell}");
                    }
                    Waits(reason) => {
                        assert_eq!(plan.status.phase, Phase::ContractGate, "{cell}");
                        assert_eq!(plan.status.reason.as_deref(), Some(reason), "{cell}");
                        assert_eq!(gate.verdict, GateVerdict::Pending, "{cell}");
                        assert_eq!(gate.unknown_since, Some(at(0)), "{cell}");
                        assert!(plan.requeue_after.is_some(), "{cell}");
                        assert!(plan.events.is_empty(), "{cell}: {:?}", plan.events);
                        assert_eq!(plan.children.canary, None, "{cell}");
                    }
                    Blocks(reason) if !dry_run => {
                        assert_eq!(plan.status.phase, Phase::Blocked, "{cell}");
                        assert_eq!(plan.status.reason.as_deref(), Some(reason), "{cell}");
                        assert_eq!(gate.verdict, GateVerdict::Blocked, "{cell}");
                        assert_eq!(
                            plan.status.rejected_version.as_deref(),
                            Some("2.0.0+a1b2c3d")
                        );
                        assert_eq!(plan.children.canary, None, "{cell}: nothing started");
                        assert_eq!(condition(&plan, CONDITION_STALLED).status, "True");
                        assert!(!reasons(&plan).contains(&"ContractGateDryRun"), "{cell}");
                        assert_eq!(plan.notify, Some(NotificationEvent::Blocked), "{cell}");
                    }
                    Blocks(_) => {
                        // Dry run: the record says Blocked, the rollout goes on, loudly.
                        assert_eq!(plan.status.phase, Phase::CanaryStarting, "{cell}");
                        assert_eq!(gate.verdict, GateVerdict::Blocked, "{cell}");
                        assert_eq!(plan.status.rejected_version, None, "{cell}");
                        let warning = plan
                            .events
                            .iter()
                            .find(|e| e.reason.as_str() == "ContractGateDryRun")
                            .unwrap_or_else(|| panic!("{cell}: no dry-run Event"));
                        assert_eq!(warning.kind, EventKind::Warning, "{cell}");
                        assert!(warning.message.contains("dryRun"), "{cell}");
                        assert!(plan.children.canary.is_some(), "{cell}");
                        assert_eq!(plan.notify, None, "{cell}");
                    }
                }
                if matches!(answer, ContractAnswer::NotDeployable { .. }) {
                    assert_eq!(gate.deployable, Some(false), "{cell}: a no stays a no");
                }
            }
        }
    }
}
