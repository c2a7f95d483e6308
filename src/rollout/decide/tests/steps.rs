//! Analysis and its steps.

use super::*;

#[test]
fn weight_steps_advance_once_the_pods_are_there() {
    let spec = spec();
    let status = analyzing_at_step(0, 25);
    let plan = decide_alone(&spec, &status, at(1));
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
    use InconclusivePolicy::{Pause, Rollback};
    use MetricVerdict::*;
    type Case = (
        &'static str,
        Option<AnalysisLook>,
        i64,
        bool,
        InconclusivePolicy,
        Phase,
        Option<i32>,
        bool,
    );
    #[rustfmt::skip]
    let cases: [Case; 10] = [
        // name, look, now, paused, onInconclusive, phase, step, hold
        ("fail rolls back", Some(look(Fail, 30)), 30, false, Pause, Phase::RollingBack, Some(1), false),
        ("fail rolls back even when paused", Some(look(Fail, 30)), 30, true, Pause, Phase::RollingBack, Some(1), false),
        ("pass advances", Some(look(Pass, 30)), 30, false, Pause, Phase::Analyzing, Some(2), false),
        ("pass while paused waits", Some(look(Pass, 30)), 30, true, Pause, Phase::Analyzing, Some(1), false),
        ("running keeps going", Some(look(Running, 30)), 30, false, Pause, Phase::Analyzing, Some(1), false),
        ("missing data never fails", Some(missing_look(30)), 30, false, Rollback, Phase::Analyzing, Some(1), false),
        ("missing data at the deadline holds", Some(missing_look(300)), 300, false, Pause, Phase::Analyzing, Some(1), true),
        ("missing data at the deadline, rollback policy", Some(missing_look(300)), 300, false, Rollback, Phase::RollingBack, Some(1), false),
        ("running at the deadline holds", Some(look(Running, 300)), 300, false, Pause, Phase::Analyzing, Some(1), true),
        ("no look before the deadline waits", None, 100, false, Pause, Phase::Analyzing, Some(1), false),
    ];
    for (name, look, now, paused, policy, phase, step, hold) in cases {
        let spec = spec_with(|s| {
            s.paused = paused;
            s.analysis.as_mut().unwrap().on_inconclusive = policy;
        });
        let status = analyzing_at_step(1, 25);
        let obs = Observations {
            look: look.clone(),
            ..obs_with_children(&spec, &status)
        };
        let plan = decide(&spec, Some(&status), &obs, at(now));
        assert_eq!(plan.status.phase, phase, "{name}");
        if phase == Phase::Analyzing {
            assert_eq!(plan.status.current_step_index, step, "{name}");
        }
        assert_eq!(plan.status.hold_reason.is_some(), hold, "{name}");
        if hold {
            assert_eq!(condition(&plan, CONDITION_STALLED).status, "True", "{name}");
            assert_eq!(
                condition(&plan, CONDITION_PROGRESSING).status,
                "False",
                "{name}"
            );
        }
        let analysis = plan.status.analysis.as_ref().unwrap();
        if let Some(l) = &look {
            assert_eq!(analysis.looks, 1, "{name}");
            assert_eq!(analysis.last_look_at, Some(l.window_end), "{name}");
            if l.data_missing {
                assert_eq!(analysis.failed_looks, 1, "{name}");
                assert_eq!(analysis.verdict, Inconclusive, "{name}");
            } else {
                assert_eq!(
                    analysis.judge_state, l.judge_state,
                    "{name}: judge state kept"
                );
            }
        }
        if phase == Phase::RollingBack {
            assert_eq!(plan.children.canary, None);
            assert_eq!(plan.children.canary_weight, 0);
            assert_eq!(
                plan.status.rejected_version.as_deref(),
                Some("2.0.0+a1b2c3d")
            );
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
    let plan = decide_alone(&spec, &status, at(30));
    assert_eq!(plan.status.current_step_index, Some(1));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    let plan = decide_alone(&spec, &status, at(60));
    assert_eq!(plan.status.current_step_index, Some(2));
    // The open pause holds until a resume token.
    let held = decide_alone(&spec, &plan.status, at(5000));
    assert_eq!(held.status.current_step_index, Some(2));
    assert!(held.status.hold_reason.is_some());
    let resumed_spec = spec_with(|s| {
        s.steps = spec.steps.clone();
        s.analysis = None;
        s.resume_request = Some("r1".into());
    });
    let plan = decide_alone(&resumed_spec, &held.status, at(5001));
    assert_eq!(plan.status.current_step_index, Some(3));
    assert_eq!(plan.status.handled_requests.resume.as_deref(), Some("r1"));
    assert_eq!(plan.status.hold_reason, None);
    // The same token does not act twice.
    let again = decide_alone(&resumed_spec, &held.status, at(5001));
    assert_eq!(again.status.current_step_index, Some(3));
    let twice = decide_alone(&resumed_spec, &plan.status, at(5002));
    assert_eq!(
        twice.status.current_step_index,
        Some(3),
        "a handled token is ignored"
    );
}

#[test]
fn a_metric_over_its_max_rate_rolls_back_with_its_own_reason() {
    let spec = spec();
    let status = analyzing_at_step(1, 25);
    let mut over = look(MetricVerdict::Fail, 40);
    over.metrics[0].name = "errorRate".into();
    over.metrics[0].max_rate_exceeded = true;
    over.metrics[0].reason = Some(
        "canary's own rate shown above maxRate 0.050 per request (lower bound 0.061), whatever \
         the baseline's"
            .into(),
    );
    let plan = decide(
        &spec,
        Some(&status),
        &Observations {
            look: Some(over),
            ..obs_with_children(&spec, &status)
        },
        at(41),
    );
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("MaxRateExceeded"));
    let message = plan.status.message.clone().unwrap_or_default();
    assert!(
        message
            .contains("exceeded a maxRate: errorRate: canary's own rate shown above maxRate 0.050"),
        "{message}"
    );
    assert!(reasons(&plan).contains(&"MaxRateExceeded"));
    // a comparison failure keeps AnalysisFailed
    let plan = decide(
        &spec,
        Some(&status),
        &Observations {
            look: Some(look(MetricVerdict::Fail, 40)),
            ..obs_with_children(&spec, &status)
        },
        at(41),
    );
    assert_eq!(plan.status.reason.as_deref(), Some("AnalysisFailed"));
}
