//! Rollback readiness: no traffic to the canary, and no weight increase, while the stable track
//! could not take all of it back.

use super::*;
use crate::rollout::decide::rollback::{attested_for_increase, gap, IncreaseCheck};

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

    // Stable whole again: the weight still waits for both tracks to be attested...
    let whole = decide(
        &spec,
        Some(&held.status),
        &obs_with_children(&spec, &held.status),
        at(40),
    );
    assert_eq!(whole.status.current_weight, 25, "not attested yet");
    // ...and moves in the pass whose fleet check passed.
    let moved = decide(
        &spec,
        Some(&held.status),
        &Observations {
            fleet: Some(fleet(GateVerdict::Passed, &[])),
            ..obs_with_children(&spec, &held.status)
        },
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

/// Step 3 (`setWeight: 50`) just entered from 25%, pods settled, stable whole.
fn increase_pending() -> (RolloutSpec, RolloutStatus) {
    let spec = spec();
    let mut status = analyzing_at_step(2, 25);
    status.step_started_at = Some(at(100));
    // The last look was at the step's start: the next one is 30 s later.
    status.analysis.as_mut().unwrap().last_look_at = Some(at(100));
    (spec, status)
}

/// A failed fleet check with one pod of `track` reporting the wrong version.
fn one_failing(track: &str) -> FleetObservation {
    let mut f = fleet(GateVerdict::Blocked, &[("shop-x", "0.9.0", "1.0.0")]);
    f.status.failing_pods[0].track = Some(track.into());
    f
}

#[test]
fn before_an_increase_the_fleet_of_both_tracks_is_asked_once_pods_settled() {
    let (spec, status) = increase_pending();
    let children = children_matching(&spec, &status);
    let n = needs(&spec, Some(&status), &children, at(101));
    assert_eq!(
        n.fleet,
        Some(FleetScope {
            canary_version: Some(spec.version.clone()),
            stable_version: Some("1.0.0".into()),
            original: false,
        })
    );
    // The last check (the fleet gate's, before this step) counts as none in this step.
    let mut checked = status.clone();
    checked.fleet = Some(FleetStatus {
        checked_at: Some(at(99)),
        ..Default::default()
    });
    assert!(needs(&spec, Some(&checked), &children, at(101))
        .fleet
        .is_some());
    // One made in this step: the next one after POD_WAIT_REQUEUE.
    checked.fleet.as_mut().unwrap().checked_at = Some(at(101));
    assert!(needs(&spec, Some(&checked), &children, at(103))
        .fleet
        .is_none());
    assert!(needs(&spec, Some(&checked), &children, at(106))
        .fleet
        .is_some());
    // Pods not settled, stable short, paused, the fleet check off, or no increase: not asked.
    let mut unsettled = children.clone();
    unsettled.canary.ready -= 1;
    assert!(needs(&spec, Some(&status), &unsettled, at(101))
        .fleet
        .is_none());
    let mut short = children.clone();
    short.stable.ready -= 1;
    short.stable.total -= 1;
    assert!(needs(&spec, Some(&status), &short, at(101)).fleet.is_none());
    let paused = spec_with(|s| s.paused = true);
    assert!(needs(&paused, Some(&status), &children, at(101))
        .fleet
        .is_none());
    let off = spec_with(|s| s.fleet_check_mut().enabled = false);
    assert!(needs(&off, Some(&status), &children, at(101))
        .fleet
        .is_none());
    let mut done = status.clone();
    done.current_weight = 50;
    let children = children_matching(&spec, &done);
    assert!(needs(&spec, Some(&done), &children, at(101))
        .fleet
        .is_none());
}

#[test]
fn attestation_for_an_increase_reads_the_failing_pods_tracks() {
    assert_eq!(attested_for_increase(None), IncreaseCheck::NotChecked);
    assert_eq!(
        attested_for_increase(Some(&fleet(GateVerdict::Passed, &[]))),
        IncreaseCheck::Passed
    );
    for track in ["stable", "baseline"] {
        assert!(
            matches!(attested_for_increase(Some(&one_failing(track))), IncreaseCheck::StableFailing(m) if m.contains("shop-x")),
            "{track}"
        );
    }
    assert!(matches!(
        attested_for_increase(Some(&one_failing("canary"))),
        IncreaseCheck::CanaryFailing(m) if m.contains("reported 0.9.0, expected 1.0.0")
    ));
    let mut unanswered = one_failing("canary");
    unanswered.verdict = FleetVerdict::Unanswered;
    assert!(matches!(
        attested_for_increase(Some(&unanswered)),
        IncreaseCheck::Unanswered(_)
    ));
}

#[test]
fn a_passed_fleet_check_moves_the_weight() {
    let (spec, status) = increase_pending();
    let without = decide(
        &spec,
        Some(&status),
        &obs_with_children(&spec, &status),
        at(101),
    );
    assert_eq!(without.status.current_weight, 25, "waits for the check");
    assert_eq!(without.requeue_after, Some(POD_WAIT_REQUEUE));
    let obs = Observations {
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(101));
    assert_eq!(plan.status.current_weight, 50);
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(
        plan.status.fleet.as_ref().map(|f| f.verdict),
        Some(GateVerdict::Passed),
        "the attestation is the evidence in status"
    );
    // With the fleet check off, the increase needs none.
    let off = spec_with(|s| s.fleet_check_mut().enabled = false);
    let plan = decide(
        &off,
        Some(&status),
        &obs_with_children(&off, &status),
        at(101),
    );
    assert_eq!(plan.status.current_weight, 50);
}

#[test]
fn a_failing_stable_pod_holds_the_increase_then_rolls_back_at_the_deadline() {
    let (spec, status) = increase_pending();
    let obs = Observations {
        fleet: Some(one_failing("stable")),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(101));
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(plan.status.current_weight, 25);
    assert_eq!(plan.status.reason(), Some(Reason::RollbackNotReady));
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("the stable track cannot take all traffic back: 1 of 8 pods failed")
            && message.contains("shop-x"),
        "{message}"
    );
    assert_eq!(reasons(&plan), vec!["RollbackNotReady"]);
    // Still failing past progressDeadline (2m from the step's start): rolled back.
    let late = decide(&spec, Some(&plan.status), &obs, at(100 + 121));
    assert_eq!(late.status.phase, Phase::RollingBack);
    assert_eq!(late.status.reason(), Some(Reason::RollbackNotReady));
}

#[test]
fn a_failing_canary_pod_rolls_back_before_the_increase() {
    let (spec, status) = increase_pending();
    let obs = Observations {
        fleet: Some(one_failing("canary")),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(101));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason(), Some(Reason::FleetCheckFailed));
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("before raising the weight to 50%") && message.contains("shop-x"),
        "{message}"
    );
}

#[test]
fn unanswered_pods_hold_the_increase_then_roll_back() {
    let (spec, status) = increase_pending();
    let mut unanswered = one_failing("canary");
    unanswered.verdict = FleetVerdict::Unanswered;
    let obs = Observations {
        fleet: Some(unanswered),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(101));
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(plan.status.current_weight, 25);
    assert_eq!(plan.status.reason(), Some(Reason::FleetUnanswered));
    assert_eq!(plan.requeue_after, Some(POD_WAIT_REQUEUE));
    let late = decide(&spec, Some(&plan.status), &obs, at(100 + 121));
    assert_eq!(late.status.phase, Phase::RollingBack);
    assert_eq!(late.status.reason(), Some(Reason::FleetUnanswered));
}

#[test]
fn the_first_weight_applies_in_the_pass_whose_fleet_check_passed() {
    let spec = spec_with(|s| s.contract_gate = None);
    let status = status_in(Phase::FleetCheck);
    let obs = Observations {
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..obs_with_children(&spec, &status)
    };
    let plan = decide(&spec, Some(&status), &obs, at(10));
    // No smoke requests in this spec: straight into step 1 at its weight.
    assert_eq!(plan.status.phase, Phase::Analyzing);
    assert_eq!(plan.status.current_step_index, Some(0));
    assert_eq!(plan.status.current_weight, 25);
}
