//! Promotion, rollback, deployment records.

use super::*;

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
    assert_eq!(plan.status.stable_version.as_deref(), Some("2.0.0+a1b2c3d"));
    assert!(reasons(&plan).contains(&"PromotionCommitted"));
    let committed = plan.status;
    // Deciding again on the committed status repeats nothing.
    let again = decide_alone(&spec, &committed, at(2));
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(
        again.status.stable_version.as_deref(),
        Some("2.0.0+a1b2c3d")
    );
    // The stable pods roll; once settled the fleet is checked once more.
    let n = needs(
        &spec,
        Some(&committed),
        &ChildrenState {
            stable: settled("2.0.0+a1b2c3d", 4),
            ..Default::default()
        },
        at(3),
    );
    assert_eq!(
        n.fleet,
        Some(FleetScope {
            canary_version: None,
            stable_version: Some("2.0.0+a1b2c3d".into()),
            original: false,
        })
    );
    // The previous stable version is held at full size for the scale-down delay.
    assert_eq!(
        committed
            .rollback_window
            .as_ref()
            .map(|w| w.previous_version.as_str()),
        Some("1.0.0")
    );
    assert_eq!(
        desired_children(&spec, &committed).baseline,
        Some(ChildSpec {
            version: "1.0.0".into(),
            replicas: 4
        })
    );
    let mut obs = Observations {
        children: ChildrenState {
            stable: settled("2.0.0+a1b2c3d", 4),
            canary: settled("2.0.0+a1b2c3d", 2),
            ..Default::default()
        },
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..Default::default()
    };
    // Not verified before the held pods are ready.
    let plan = decide(&spec, Some(&committed), &obs, at(3));
    assert_eq!(plan.status.phase, Phase::Promoting);
    obs.children.baseline = settled("1.0.0", 4);
    let plan = decide(&spec, Some(&committed), &obs, at(3));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(
        plan.status.rollback_window.as_ref().and_then(|w| w.until),
        Some(at(33)),
        "the default delay is 30s"
    );
    assert_eq!(
        plan.requeue_after,
        Some(Duration::ZERO),
        "the record is due first"
    );
    assert_eq!(plan.status.canary_version, None);
    assert_eq!(plan.children.canary, None);
    assert_eq!(condition(&plan, CONDITION_READY).status, "True");
    assert_eq!(condition(&plan, CONDITION_STALLED).status, "False");
    let record = plan.status.deployment_record.as_ref().unwrap();
    assert_eq!(
        (record.version.as_str(), record.recorded),
        ("2.0.0+a1b2c3d", false)
    );
    assert_eq!(
        needs(&spec, Some(&plan.status), &obs.children, at(3))
            .record
            .as_deref(),
        Some("2.0.0+a1b2c3d")
    );
}

#[test]
fn deployment_records_retry_with_backoff_and_never_undo() {
    let spec = spec();
    let mut status = status_in(Phase::Succeeded);
    status.stable_version = Some("2.0.0+a1b2c3d".into());
    status.canary_version = None;
    status.deployment_record = Some(DeploymentRecordStatus {
        version: "2.0.0+a1b2c3d".into(),
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
    status.message = Some("canary 2.0.0+a1b2c3d regressed".into());
    let busy = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            canary: settled("2.0.0+a1b2c3d", 1),
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
