//! Analysis and its steps.

use super::*;

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
