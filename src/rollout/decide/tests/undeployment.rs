//! What a deleted Rollout tells the broker (`decide::undeployment`): recorded, failed and tried
//! again within the bound, failed past it, refused, and nothing recorded (released at once).

use super::*;
use crate::rollout::decide::undeployment::{
    on_deletion, records_deployments, to_undeploy, Release, UndeployOutcome, GIVE_UP_AFTER,
    RETRY_EVERY,
};

/// A spec recording deployments of Baz to production.
fn recording_baz() -> RolloutSpec {
    spec_with(|s| {
        let gate = s.contract_gate.as_mut().unwrap();
        gate.pacticipant = "Baz".into();
    })
}

/// A promoted rollout whose stable version 2.0.0 was recorded (or not) in production.
fn promoted(recorded: bool) -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("2.0.0".into()),
        deployment_record: Some(DeploymentRecordStatus {
            version: "2.0.0".into(),
            environment: "production".into(),
            recorded,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn only_event(release: &Release) -> &PlannedEvent {
    assert_eq!(release.events.len(), 1, "{release:?}");
    &release.events[0]
}

#[test]
fn a_rollout_carries_the_finalizer_while_it_records_deployments() {
    assert!(records_deployments(&recording_baz()));
    let off = spec_with(|s| s.contract_gate.as_mut().unwrap().record_deployments = false);
    assert!(!records_deployments(&off));
    assert!(!records_deployments(&spec_with(|s| s.contract_gate = None)));
}

#[test]
fn recorded_emits_a_normal_event_and_releases() {
    let status = promoted(true);
    let outcome = UndeployOutcome::Recorded { found: true };
    let r = on_deletion(&recording_baz(), Some(&status), Some(&outcome), secs(1));
    assert!(r.release && r.retry_in.is_none(), "{r:?}");
    let e = only_event(&r);
    assert_eq!(
        (e.kind, e.reason),
        (EventKind::Normal, Reason::UndeploymentRecorded)
    );
    assert_eq!(
        e.message,
        "recorded in the broker: Baz 2.0.0 no longer runs in production"
    );
    // The application instance is named; nothing found to mark is said so.
    let instanced = spec_with(|s| {
        let gate = s.contract_gate.as_mut().unwrap();
        gate.pacticipant = "Baz".into();
        gate.application_instance = Some("eu-1".into());
    });
    let outcome = UndeployOutcome::Recorded { found: false };
    let r = on_deletion(&instanced, Some(&status), Some(&outcome), secs(1));
    let e = only_event(&r);
    assert_eq!(
        e.message,
        "recorded in the broker: Baz 2.0.0 no longer runs in production (application instance \
         eu-1) (the broker already held it as not deployed there)"
    );
}

#[test]
fn a_failure_is_tried_again_every_five_seconds_within_the_bound() {
    let status = promoted(true);
    let outcome = UndeployOutcome::Failed {
        reason: "connection refused".into(),
    };
    for at in [0, 5, 12, 24] {
        let r = on_deletion(&recording_baz(), Some(&status), Some(&outcome), secs(at));
        assert!(!r.release, "at {at}s: {r:?}");
        assert!(r.events.is_empty(), "no Event per attempt: {r:?}");
        assert_eq!(r.retry_in, Some(RETRY_EVERY), "at {at}s");
    }
    // The last retry is made at the bound, not after it.
    let r = on_deletion(&recording_baz(), Some(&status), Some(&outcome), secs(27));
    assert_eq!(r.retry_in, Some(secs(3)));
    assert!(!r.release);
}

#[test]
fn a_failure_past_the_bound_warns_once_and_releases() {
    let status = promoted(true);
    let outcome = UndeployOutcome::Failed {
        reason: "connection refused".into(),
    };
    for at in [GIVE_UP_AFTER, secs(38), secs(600)] {
        let r = on_deletion(&recording_baz(), Some(&status), Some(&outcome), at);
        assert!(r.release && r.retry_in.is_none(), "{r:?}");
        let e = only_event(&r);
        assert_eq!(
            (e.kind, e.reason),
            (EventKind::Warning, Reason::UndeploymentRecordFailed)
        );
        assert!(e.message.contains("connection refused"), "{}", e.message);
        assert!(
            e.message.contains(
                "`tollgate record-undeployment --pacticipant Baz --environment production \
                 --version 2.0.0`"
            ),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("within 30s of the deletion"),
            "{}",
            e.message
        );
    }
}

#[test]
fn refused_warns_at_once_and_releases() {
    let status = promoted(true);
    let outcome = UndeployOutcome::Refused {
        reason: "spec.contractGate is not set".into(),
    };
    // The contract gate is gone: the environment comes from the record.
    let no_gate = spec_with(|s| s.contract_gate = None);
    let r = on_deletion(&no_gate, Some(&status), Some(&outcome), secs(0));
    assert!(r.release && r.retry_in.is_none(), "{r:?}");
    let e = only_event(&r);
    assert_eq!(
        (e.kind, e.reason),
        (EventKind::Warning, Reason::UndeploymentRecordFailed)
    );
    assert!(
        e.message
            .contains("2.0.0 no longer runs in production: refused: spec.contractGate is not set"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("tollgate record-undeployment"),
        "{}",
        e.message
    );
}

#[test]
fn nothing_recorded_releases_at_once_without_asking() {
    let cases = [None, Some(promoted(false)), Some(RolloutStatus::default())];
    for status in &cases {
        assert_eq!(to_undeploy(status.as_ref()), None);
        let r = on_deletion(&recording_baz(), status.as_ref(), None, secs(0));
        assert_eq!(
            r,
            Release {
                release: true,
                events: Vec::new(),
                retry_in: None
            }
        );
    }
    let status = promoted(true);
    assert_eq!(to_undeploy(Some(&status)), Some("2.0.0"));
    // Recorded but not asked yet: held, to be asked at once.
    let r = on_deletion(&recording_baz(), Some(&status), None, secs(0));
    assert!(!r.release && r.retry_in == Some(Duration::ZERO), "{r:?}");
}
