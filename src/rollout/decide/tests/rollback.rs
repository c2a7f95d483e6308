//! Rollback readiness: no traffic to the canary, and no weight increase, while the stable track
//! could not take all of it back.

use super::*;
use crate::rollout::decide::rollback::gap;

fn short(version: &str, desired: i32, ready: i32, total: i32) -> WorkloadState {
    WorkloadState {
        version: Some(version.into()),
        desired,
        ready,
        total,
    }
}

#[test]
fn the_gap_names_what_the_stable_track_lacks() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    // Stable is declared at 4 pods before the canary serves.
    let table: &[(WorkloadState, Option<&str>)] = &[
        (settled("1.0.0", 4), None),
        // More ready pods than declared (a scale-down in progress) is fine.
        (short("1.0.0", 4, 5, 5), None),
        (
            short("1.0.0", 4, 3, 3),
            Some("3 of 4 stable pods (1.0.0) ready (1 missing)"),
        ),
        (
            short("1.0.0", 4, 2, 4),
            Some("2 of 4 stable pods (1.0.0) ready (2 not ready)"),
        ),
        (
            short("1.0.0", 4, 1, 2),
            Some("1 of 4 stable pods (1.0.0) ready (2 missing, 1 not ready)"),
        ),
        (
            short("1.0.0", 3, 3, 3),
            Some("the stable workload asks for 3 of the 4 pods declared"),
        ),
        (
            settled("0.9.0", 4),
            Some("the stable workload runs 0.9.0, not 1.0.0"),
        ),
        (
            WorkloadState::default(),
            Some("the stable workload (1.0.0) does not exist"),
        ),
    ];
    for (stable, want) in table {
        let children = ChildrenState {
            stable: stable.clone(),
            ..Default::default()
        };
        let got = gap(&spec, &status, &children);
        match want {
            None => assert_eq!(got, None, "{stable:?}"),
            Some(part) => {
                let got = got.unwrap_or_else(|| panic!("{stable:?}: no gap"));
                assert!(
                    got.starts_with("the stable track cannot take all traffic back: "),
                    "{got}"
                );
                assert!(got.contains(part), "{stable:?}: {got}");
            }
        }
    }
    // A first deployment has nothing to go back to.
    let mut first = status_in(Phase::CanaryStarting);
    first.stable_version = None;
    assert_eq!(gap(&spec, &first, &ChildrenState::default()), None);
}

/// Children as wanted, but stable short of one pod that nothing replaces.
fn stable_short_of_one(spec: &RolloutSpec, status: &RolloutStatus) -> Observations {
    let mut obs = obs_with_children(spec, status);
    let s = &mut obs.children.stable;
    s.ready -= 1;
    s.total -= 1;
    obs
}

#[test]
fn before_any_traffic_a_short_stable_holds_then_blocks_at_the_deadline() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    let plan = decide(
        &spec,
        Some(&status),
        &stable_short_of_one(&spec, &status),
        at(10),
    );
    assert_eq!(plan.status.phase, Phase::CanaryStarting);
    assert_eq!(plan.status.reason(), Some(Reason::RollbackNotReady));
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("3 of 4 stable pods (1.0.0) ready (1 missing)"),
        "{message}"
    );
    assert_eq!(plan.status.current_weight, 0);
    assert!(!plan.children.canary_serving, "the canary serves nothing");
    assert_eq!(reasons(&plan), vec!["RollbackNotReady"]);
    assert_eq!(plan.events[0].kind, EventKind::Warning);
    assert_eq!(plan.requeue_after, Some(POD_WAIT_REQUEUE));

    // Looking again: still held, no second Event.
    let again = decide(
        &spec,
        Some(&plan.status),
        &stable_short_of_one(&spec, &plan.status),
        at(20),
    );
    assert_eq!(again.status.reason(), Some(Reason::RollbackNotReady));
    assert!(again.events.is_empty(), "{:?}", again.events);

    // Stable whole again: the canary goes on to the fleet check.
    let restored = decide(
        &spec,
        Some(&again.status),
        &obs_with_children(&spec, &again.status),
        at(30),
    );
    assert_eq!(restored.status.phase, Phase::FleetCheck);

    // Still short past progressDeadline (2m): Blocked, nothing served.
    let late = decide(
        &spec,
        Some(&again.status),
        &stable_short_of_one(&spec, &again.status),
        at(121),
    );
    assert_eq!(late.status.phase, Phase::Blocked);
    assert_eq!(late.status.reason(), Some(Reason::RollbackNotReady));
    assert!(late
        .status
        .message
        .clone()
        .unwrap()
        .contains("within progressDeadline (120s)"));
    assert_eq!(late.status.current_weight, 0);
}

#[test]
fn a_passed_fleet_check_does_not_start_the_canary_while_stable_is_short() {
    let spec = spec_with(|s| s.contract_gate = None);
    let status = status_in(Phase::FleetCheck);
    let obs = Observations {
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..stable_short_of_one(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(10));
    assert_eq!(plan.status.phase, Phase::FleetCheck);
    assert_eq!(plan.status.reason(), Some(Reason::RollbackNotReady));
    assert!(!plan.children.canary_serving);
    assert_eq!(plan.status.current_step_index, None);
}

#[test]
fn a_weight_increase_waits_for_stable_and_then_happens() {
    let spec = spec();
    // Step 2 (analyze) at 25% just passed; step 3 raises the weight to 50%.
    let mut status = analyzing_at_step(1, 25);
    status.step_started_at = Some(at(0));
    let obs = Observations {
        look: Some(look(MetricVerdict::Pass, 30)),
        ..stable_short_of_one(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(30));
    assert_eq!(plan.status.current_step_index, Some(2));
    assert_eq!(plan.status.current_weight, 25, "the increase waits");

    let held = decide(
        &spec,
        Some(&plan.status),
        &stable_short_of_one(&spec, &plan.status),
        at(31),
    );
    assert_eq!(held.status.current_weight, 25);
    assert_eq!(held.status.reason(), Some(Reason::RollbackNotReady));
    assert!(held
        .status
        .message
        .clone()
        .unwrap()
        .contains("the canary takes no more traffic until it can"));
    assert_eq!(reasons(&held), vec!["RollbackNotReady"]);

    let moved = decide(
        &spec,
        Some(&held.status),
        &obs_with_children(&spec, &held.status),
        at(40),
    );
    assert_eq!(moved.status.current_weight, 50);
    assert_eq!(moved.status.phase, Phase::Analyzing);

    // Held past the deadline after traffic moved: rolled back, not blocked.
    let late = decide(
        &spec,
        Some(&held.status),
        &stable_short_of_one(&spec, &held.status),
        at(30 + 121),
    );
    assert_eq!(late.status.phase, Phase::RollingBack);
    assert_eq!(late.status.reason(), Some(Reason::RollbackNotReady));
}
