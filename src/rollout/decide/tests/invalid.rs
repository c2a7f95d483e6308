//! A Rollout that cannot be carried out as written, the webhook notification each decision
//! makes, and a judge state that could not be read.

use super::*;

fn problem() -> SpecProblem {
    SpecProblem::new("invalid settings: spec.contractGate.brokerUrl is not set")
}

fn with_problem(problem: SpecProblem) -> Observations {
    Observations {
        generation: Some(4),
        spec_problem: Some(problem),
        ..Default::default()
    }
}

/// Every phase a problem can be found in: the phase stays; the reason, the history, one Warning
/// Event and the conditions say InvalidSpec and Stalled, never Progressing beside it.
#[test]
fn a_problem_with_the_spec_holds_the_rollout_stalled_in_any_phase() {
    let spec = spec();
    let mut held = analyzing_at_step(1, 25);
    held.hold_reason = Some("step 2: evidence is still inconclusive".into());
    let mut succeeded = status_in(Phase::Succeeded);
    succeeded.canary_version = None;
    // A status as the previous decision wrote it, with its conditions.
    let in_flight = decide_alone(&spec, &status_in(Phase::ContractGate), at(0)).status;
    assert_eq!(condition_in(&in_flight, CONDITION_PROGRESSING), "True");
    let cases: Vec<(&str, Option<RolloutStatus>, Phase, &str)> = vec![
        ("a new Rollout", None, Phase::Pending, "False"),
        (
            "at the contract gate",
            Some(in_flight),
            Phase::ContractGate,
            "False",
        ),
        (
            "analyzing",
            Some(analyzing_at_step(1, 25)),
            Phase::Analyzing,
            "False",
        ),
        (
            "holding for a person",
            Some(held),
            Phase::Analyzing,
            "False",
        ),
        ("promoted", Some(succeeded), Phase::Succeeded, "True"),
        (
            "blocked",
            Some(status_in(Phase::Blocked)),
            Phase::Blocked,
            "False",
        ),
    ];
    for (name, before, phase, ready) in cases {
        let plan = decide(&spec, before.as_ref(), &with_problem(problem()), at(30));
        let s = &plan.status;
        assert_eq!(s.phase, phase, "{name}: the phase stays");
        assert_eq!(s.reason(), Some(Reason::InvalidSpec), "{name}");
        let message = s.message.clone().unwrap();
        assert_eq!(
            message,
            "cannot proceed until the Rollout changes: invalid settings: \
             spec.contractGate.brokerUrl is not set",
            "{name}"
        );
        let last = s.history.last().expect("a history entry");
        assert_eq!(
            (last.reason(), last.phase, last.at),
            (Some(Reason::InvalidSpec), phase, at(30)),
            "{name}"
        );
        assert_eq!(plan.events.len(), 1, "{name}: {:?}", plan.events);
        assert_eq!(
            (plan.events[0].kind, plan.events[0].reason),
            (EventKind::Warning, Reason::InvalidSpec),
            "{name}"
        );
        assert_eq!(condition(&plan, CONDITION_STALLED).status, "True", "{name}");
        assert_eq!(
            condition(&plan, CONDITION_PROGRESSING).status,
            "False",
            "{name}"
        );
        assert_eq!(
            condition(&plan, CONDITION_RECONCILING).status,
            "False",
            "{name}"
        );
        assert_eq!(condition(&plan, CONDITION_READY).status, ready, "{name}");
        for c in &s.conditions {
            assert_eq!(c.reason, "InvalidSpec", "{name}: {}", c.type_);
            assert_eq!(c.message, message, "{name}: {}", c.type_);
            assert_eq!(c.observed_generation, Some(4), "{name}: {}", c.type_);
        }
        assert_eq!(s.observed_generation, Some(4), "{name}");
        assert_eq!(
            plan.notify, None,
            "{name}: holding is not a transition to tell"
        );
        assert_eq!(plan.requeue_after, None, "{name}: only a change wakes it");
        let unchanged =
            desired_children(&spec, before.as_ref().unwrap_or(&RolloutStatus::default()));
        assert_eq!(plan.children, unchanged, "{name}: nothing else moves");
    }
}

fn condition_in<'a>(status: &'a RolloutStatus, kind: &str) -> &'a str {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
        .unwrap_or("absent")
}

#[test]
fn the_same_problem_is_recorded_once_and_a_fix_moves_on() {
    let spec = spec();
    let first = decide(&spec, None, &with_problem(problem()), at(0));
    // Seen again (the status write wakes the controller): nothing changes, nothing is said.
    let again = decide(&spec, Some(&first.status), &with_problem(problem()), at(40));
    assert_eq!(again.status, first.status);
    assert!(again.events.is_empty(), "{:?}", again.events);
    // Another problem is new evidence.
    let other = decide(
        &spec,
        Some(&first.status),
        &with_problem(SpecProblem::new("spec.fleetCheck: port must not be 0")),
        at(50),
    );
    assert_eq!(other.status.history.len(), first.status.history.len() + 1);
    assert_eq!(other.events.len(), 1);
    // Fixed: the rollout starts, no longer stalled.
    let fixed = decide_alone(&spec, &other.status, at(60));
    assert_eq!(fixed.status.phase, Phase::ContractGate);
    assert_eq!(condition(&fixed, CONDITION_STALLED).status, "False");
    assert_eq!(condition(&fixed, CONDITION_PROGRESSING).status, "True");
    let stalled_since = &condition(&other, CONDITION_STALLED).last_transition_time;
    assert_eq!(
        stalled_since.0,
        at(0),
        "Stalled has been True since the first problem"
    );
}

type NotifyCase = (
    &'static str,
    RolloutSpec,
    Option<RolloutStatus>,
    Observations,
    Option<NotificationEvent>,
);

/// Which decisions notify: entering `Succeeded`, `RolledBack` or `Blocked`, once per entry.
#[test]
fn only_entering_promoted_rolled_back_or_blocked_notifies() {
    let spec = spec();
    let regression = Observations {
        look: Some(look(MetricVerdict::Fail, 40)),
        ..obs_with_children(&spec, &analyzing_at_step(1, 25))
    };
    let mut rolling_back = status_in(Phase::RollingBack);
    rolling_back.reason = Some("AnalysisFailed".into());
    rolling_back.rejected_version = Some("2.0.0+a1b2c3d".into());
    let canary_gone = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let rolled_back = decide(&spec, Some(&rolling_back), &canary_gone, at(10)).status;
    let mut committed = analyzing_at_step(3, 50);
    committed.phase = Phase::Promoting;
    committed.stable_version = Some("2.0.0+a1b2c3d".into());
    let promoted_obs = Observations {
        children: ChildrenState {
            stable: settled("2.0.0+a1b2c3d", 4),
            ..Default::default()
        },
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..Default::default()
    };
    let promoted = decide(&spec, Some(&committed), &promoted_obs, at(20)).status;
    let record_failed = Observations {
        record: Some(RecordOutcome::Failed {
            reason: "503".into(),
        }),
        ..Default::default()
    };
    let no = Observations {
        contract: Some(ContractAnswer::NotDeployable {
            reason: "no".into(),
            summary: None,
        }),
        ..Default::default()
    };
    let abort_first = spec_with(|s| s.abort_request = Some("stop".into()));
    let cases: Vec<NotifyCase> = vec![
        (
            "analyzing → rolling back",
            spec.clone(),
            Some(analyzing_at_step(1, 25)),
            regression,
            None,
        ),
        (
            "rolling back → rolled back",
            spec.clone(),
            Some(rolling_back),
            canary_gone.clone(),
            Some(NotificationEvent::RolledBack),
        ),
        (
            "rolled back, decided again",
            spec.clone(),
            Some(rolled_back.clone()),
            canary_gone,
            None,
        ),
        (
            "promoting → succeeded",
            spec.clone(),
            Some(committed),
            promoted_obs,
            Some(NotificationEvent::Promoted),
        ),
        (
            "succeeded, record retried",
            spec.clone(),
            Some(promoted),
            record_failed,
            None,
        ),
        (
            "contract gate → blocked",
            spec.clone(),
            Some(status_in(Phase::ContractGate)),
            no,
            Some(NotificationEvent::Blocked),
        ),
        (
            "no status → blocked in the first pass",
            abort_first,
            None,
            Observations::default(),
            Some(NotificationEvent::Blocked),
        ),
        (
            "no status → contract gate",
            spec.clone(),
            None,
            Observations::default(),
            None,
        ),
        (
            "blocked, an InvalidSpec note",
            spec.clone(),
            Some(status_in(Phase::Blocked)),
            with_problem(problem()),
            None,
        ),
    ];
    for (name, spec, before, obs, want) in cases {
        let plan = decide(&spec, before.as_ref(), &obs, at(30));
        assert_eq!(plan.notify, want, "{name}: {:?}", plan.status.phase);
    }
}

#[test]
fn a_judge_state_that_could_not_be_read_is_said_not_silently_reset() {
    let spec = spec();
    let status = analyzing_at_step(1, 25);
    let mut restarted = look(MetricVerdict::Running, 40);
    restarted.judge_state_reset = Some("missing field `errorRate`".into());
    let obs = Observations {
        look: Some(restarted),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(40));
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("saved state could not be read (missing field `errorRate`)")
            && message.contains("sequential test restarted"),
        "{message}"
    );
    let warning = plan
        .events
        .iter()
        .find(|e| e.reason == Reason::JudgeStateReset)
        .expect("a Warning Event says so");
    assert_eq!(warning.kind, EventKind::Warning);
    assert!(
        warning.message.contains("missing field"),
        "{}",
        warning.message
    );
    // The new state is kept, so the next look continues from it.
    assert_eq!(
        plan.status.analysis.unwrap().judge_state,
        Some(json!({"looks": 40}))
    );
    // A look that read the state says nothing of the kind.
    let obs = Observations {
        look: Some(look(MetricVerdict::Running, 40)),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(40));
    assert!(plan
        .events
        .iter()
        .all(|e| e.reason != Reason::JudgeStateReset));
    assert!(!plan.status.message.unwrap().contains("saved state"));
}
