//! The scale-down delay after a promotion and the instant rollback within it.

use super::*;

/// 2.0.0+a1b2c3d promoted at T0, 1.0.0 held until T0 + 30s.
fn promoted_with_window() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("2.0.0+a1b2c3d".into()),
        phase_started_at: Some(at(0)),
        rollback_window: Some(RollbackWindowStatus {
            previous_version: "1.0.0".into(),
            until: Some(at(30)),
            rolling_back: false,
        }),
        ..Default::default()
    }
}

fn aborting() -> RolloutSpec {
    spec_with(|s| s.abort_request = Some("now".into()))
}

fn held(version: &str) -> Option<ChildSpec> {
    Some(ChildSpec {
        version: version.into(),
        replicas: 4,
    })
}

#[test]
fn within_the_delay_the_previous_version_is_held_out_of_traffic() {
    let spec = spec();
    let status = promoted_with_window();
    let plan = decide_alone(&spec, &status, at(10));
    assert_eq!(plan.status, {
        let mut s = status.clone();
        s.replicas = Some(0);
        s.conditions = plan.status.conditions.clone();
        s.version_identity = Some(crate::rollout::decide::identity::findings(&spec));
        s
    });
    assert_eq!(plan.children.baseline, held("1.0.0"));
    assert_eq!(plan.children.stable, held("2.0.0+a1b2c3d"));
    assert!(!plan.children.held_serving && !plan.children.canary_serving);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(20)));
    // At the end of the delay the held pods go.
    let plan = decide_alone(&spec, &status, at(30));
    assert_eq!(plan.status.rollback_window, None);
    assert_eq!(plan.children.baseline, None);
    assert_eq!(reasons(&plan), vec!["ScaleDownDelayEnded"]);
    assert_eq!(plan.status.phase, Phase::Succeeded);
}

#[test]
fn abort_within_the_delay_is_an_instant_rollback() {
    let spec = aborting();
    let plan = decide_alone(&spec, &promoted_with_window(), at(10));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("Aborted"));
    assert_eq!(plan.status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(
        plan.status.rejected_version.as_deref(),
        Some("2.0.0+a1b2c3d")
    );
    assert_eq!(plan.status.handled_requests.abort.as_deref(), Some("now"));
    // Every request to the held pods at once; the stable workload returns to 1.0.0.
    assert!(plan.children.held_serving);
    assert_eq!(plan.children.baseline, held("1.0.0"));
    assert_eq!(plan.children.stable, held("1.0.0"));
    assert_eq!(plan.children.canary, None);
    let rolling = plan.status;

    // Still under way while the stable pods run 2.0.0+a1b2c3d.
    let mut obs = Observations {
        children: ChildrenState {
            stable: settled("2.0.0+a1b2c3d", 4),
            baseline: settled("1.0.0", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let plan = decide(&spec, Some(&rolling), &obs, at(11));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert!(plan.children.held_serving);
    // Stable runs 1.0.0 again: traffic back to it, the held pods go.
    obs.children.stable = settled("1.0.0", 4);
    let plan = decide(&spec, Some(&rolling), &obs, at(20));
    assert_eq!(plan.status.rollback_window, None);
    assert!(!plan.children.held_serving);
    assert_eq!(plan.children.baseline, None);
    let back = plan.status;
    obs.children.baseline = WorkloadState::default();
    let plan = decide(&spec, Some(&back), &obs, at(21));
    assert_eq!(plan.status.phase, Phase::RolledBack);
    assert_eq!(plan.status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(plan.notify, Some(NotificationEvent::RolledBack));
    // The broker hears of 1.0.0 again (the spec's contract gate records deployments).
    let record = plan.status.deployment_record.as_ref().expect("record");
    assert_eq!(record.version, "1.0.0");
    // The evidence says what happened.
    assert!(
        plan.status
            .history
            .iter()
            .any(|d| d.reason == "Aborted" && d.message.contains("instant rollback")),
        "{:?}",
        plan.status.history
    );
}

#[test]
fn abort_after_the_delay_is_refused_and_says_why() {
    let spec = aborting();
    let plan = decide_alone(&spec, &promoted_with_window(), at(30));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert_eq!(plan.status.handled_requests.abort.as_deref(), Some("now"));
    let refused = plan
        .events
        .iter()
        .find(|e| e.reason == Reason::AbortIgnored)
        .expect("a refusal");
    assert_eq!(refused.kind, EventKind::Warning);
    assert!(refused.message.contains("ended at"), "{}", refused.message);
    // Nothing kept: refused too, naming the setting.
    let mut status = promoted_with_window();
    status.rollback_window = None;
    let plan = decide_alone(&spec, &status, at(5));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    let refused = plan
        .events
        .iter()
        .find(|e| e.reason == Reason::AbortIgnored);
    assert!(
        refused.is_some_and(|e| e.message.contains("scaleDownDelay")),
        "{:?}",
        plan.events
    );
}

#[test]
fn a_delay_of_zero_holds_nothing_and_a_new_version_lets_the_held_pods_go() {
    let spec = spec_with(|s| s.strategy.scale_down_delay = Duration::ZERO.into());
    let mut status = analyzing_at_step(3, 50);
    status.phase = Phase::Promoting;
    let obs = Observations {
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert_eq!(plan.status.rollback_window, None);
    assert_eq!(plan.children.baseline, None);

    let next = spec_with(|s| s.version = "3.0.0".into());
    let plan = decide_alone(&next, &promoted_with_window(), at(5));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.rollback_window, None);
    assert_eq!(plan.children.baseline, None);
}
