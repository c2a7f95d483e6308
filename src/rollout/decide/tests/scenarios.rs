//! Whole rollouts against a simulated cluster: children settle to what the plan asks for.

use super::*;

/// What the simulated world answers.
struct World {
    contract: ContractAnswer,
    fleet_ok: bool,
    verdict_after: Option<(i64, MetricVerdict)>,
    /// A later verdict (seconds into the run, verdict) that replaces `verdict_after` from then on.
    then: Option<(i64, MetricVerdict)>,
    record_fails: usize,
    /// What the webhook was told, pass by pass, as the reconcile does it ("Event version").
    notified: Vec<String>,
}

impl World {
    /// A broker that says yes, a fleet that matches, and an analysis that gives `verdict_after`
    /// (seconds into the analysis, verdict), or never decides.
    fn deployable(verdict_after: Option<(i64, MetricVerdict)>) -> World {
        World {
            contract: ContractAnswer::Deployable {
                reason: "ok".into(),
                summary: None,
            },
            fleet_ok: true,
            verdict_after,
            then: None,
            record_fails: 0,
            notified: vec![],
        }
    }

    /// From `at` seconds on, the analysis gives `verdict` instead.
    fn then(self, at: i64, verdict: MetricVerdict) -> World {
        World {
            then: Some((at, verdict)),
            ..self
        }
    }

    fn with_failing_fleet(self) -> World {
        World {
            fleet_ok: false,
            ..self
        }
    }

    fn with_record_failures(self, record_fails: usize) -> World {
        World {
            record_fails,
            ..self
        }
    }
}

/// How many of `events` are `reason`.
fn count(events: &[String], reason: &str) -> usize {
    events.iter().filter(|e| *e == reason).count()
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
            let verdict = match (world.then, world.verdict_after) {
                (Some((t, v)), _) if now >= t => v,
                (_, Some((t, v))) if now >= t => v,
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
        events.extend(plan.events.iter().map(|e| e.reason.to_string()));
        if let Some(event) = plan.notify {
            // The version the webhook names: the one promoted, the one rejected, or (a step
            // event) the canary at its step.
            let version = match event {
                NotificationEvent::Promoted => plan.status.stable_version.clone(),
                NotificationEvent::StepStarted | NotificationEvent::Paused => {
                    plan.status.canary_version.clone().map(|v| {
                        format!("{v} step {}", plan.status.current_step_index.unwrap_or(-1))
                    })
                }
                _ => plan.status.rejected_version.clone(),
            };
            world.notified.push(format!(
                "{} {}",
                event.as_str(),
                version.unwrap_or_default()
            ));
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
    let mut world = World::deployable(Some((0, MetricVerdict::Pass))).with_record_failures(2);
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::Succeeded, "{events:?}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert!(status.deployment_record.as_ref().unwrap().recorded);
    assert_eq!(count(&events, "DeploymentRecorded"), 1);
    assert_eq!(count(&events, "PromotionCommitted"), 1);
    // The first analysis step passes on its own; the last one's pass completes the steps.
    assert_eq!(count(&events, "AnalysisPassed"), 1, "{events:?}");
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
    assert_eq!(count(&events, "WeightSet"), 2, "{events:?}");
    // One event per step entered, and the promotion once, although the status is written
    // again for each look and each deployment-record retry.
    assert_eq!(world.notified, four_steps_then("Promoted"));
}

#[test]
fn a_regression_is_rolled_back_before_the_last_step() {
    let spec = spec();
    let mut world = World::deployable(Some((60, MetricVerdict::Fail)));
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::RolledBack, "{events:?}");
    assert_eq!(status.reason.as_deref(), Some("AnalysisFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert!(!events.contains(&"PromotionCommitted".to_string()));
    assert_eq!(status.deployment_record.unwrap().version, "1.0.0");
    assert_eq!(
        world.notified,
        [
            "StepStarted 2.0.0+a1b2c3d step 0",
            "StepStarted 2.0.0+a1b2c3d step 1",
            "RolledBack 2.0.0+a1b2c3d"
        ]
    );
}

/// Steps that only set weights and pause (15 minutes), as in bench-judge's `err-x3-late`.
fn spec_with_pause_steps() -> RolloutSpec {
    spec_with(|s| {
        s.steps = serde_json::from_value(json!([
            {"setWeight": 25}, {"pause": {"duration": "5m"}},
            {"setWeight": 50}, {"pause": {"duration": "10m"}}
        ]))
        .unwrap();
    })
}

#[test]
fn a_pass_does_not_promote_before_the_pause_steps_are_over() {
    let spec = spec_with_pause_steps();
    let mut world = World::deployable(Some((0, MetricVerdict::Pass)));
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::Succeeded, "{events:?}");
    let analysis_started = status
        .history
        .iter()
        .find(|d| d.reason == "StepStarted")
        .map(|d| d.at)
        .unwrap();
    let completed = status
        .history
        .iter()
        .find(|d| d.reason == "StepsCompleted")
        .unwrap();
    // every look passed from the first, yet the promotion waited for both pauses
    let waited = completed.at.as_second() - analysis_started.as_second();
    assert!(waited >= 15 * 60, "promoted {waited} s into the steps");
}

#[test]
fn a_failure_after_a_pass_rolls_back_during_a_pause_step() {
    let spec = spec_with_pause_steps();
    // the judge passes at once, then (a regression that starts late) fails 10 minutes in,
    // during the second pause
    let mut world =
        World::deployable(Some((0, MetricVerdict::Pass))).then(600, MetricVerdict::Fail);
    let (status, events) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(status.phase, Phase::RolledBack, "{events:?}");
    assert_eq!(status.reason.as_deref(), Some("AnalysisFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(!events.contains(&"PromotionCommitted".to_string()));
    // the failure came in the last step (the 10-minute pause), after passing looks
    assert_eq!(world.notified, four_steps_then("RolledBack"));
}

#[test]
fn a_stale_pod_blocks_and_an_unknown_broker_blocks_after_its_budget() {
    let spec = spec();
    let mut world = World::deployable(None).with_failing_fleet();
    let (status, _) = run(&spec, stable_status(), &mut world, 3600);
    assert_eq!(
        (status.phase, status.reason.as_deref()),
        (Phase::Blocked, Some("FleetCheckFailed"))
    );
    assert_eq!(world.notified, ["Blocked 2.0.0+a1b2c3d"]);
    let mut world = World {
        contract: ContractAnswer::Unknown {
            reason: "no results".into(),
            summary: None,
        },
        fleet_ok: true,
        verdict_after: None,
        then: None,
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
    assert_eq!(world.notified, ["Blocked 2.0.0+a1b2c3d"]);
}

#[test]
fn metrics_that_never_arrive_hold_the_rollout_without_promoting_or_rolling_back() {
    let spec = spec();
    let mut world = World::deployable(None);
    let (status, events) = run(&spec, stable_status(), &mut world, 1800);
    assert_eq!(status.phase, Phase::Analyzing);
    assert!(status.hold_reason.is_some());
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(!events
        .iter()
        .any(|e| e == "PromotionCommitted" || e == "AnalysisFailed"));
    // The steps it entered, and no outcome.
    assert_eq!(
        world.notified,
        [
            "StepStarted 2.0.0+a1b2c3d step 0",
            "StepStarted 2.0.0+a1b2c3d step 1"
        ]
    );
}

/// The notifications of a canary through the four steps of these scenarios, then `last`.
fn four_steps_then(last: &str) -> Vec<String> {
    let version = "2.0.0+a1b2c3d";
    (0..4)
        .map(|i| format!("StepStarted {version} step {i}"))
        .chain([format!("{last} {version}")])
        .collect()
}
