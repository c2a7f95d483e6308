//! Adopting a Deployment through `spec.workloadRef`: who may adopt it, what is recorded, how
//! many pods it keeps in each `scaleDown` mode, and what deleting the Rollout gives back.

use super::*;
use crate::crd::{AdoptionStatus, ScaleDown};
use crate::rollout::decide::adoption::{
    adoption_problem, on_deletion, original_is_stable, original_replicas, Release, RESTORE_WAIT,
};

/// A spec that adopts Deployment `shop` (4 replicas) in `mode`, without a contract gate.
fn adopting(mode: ScaleDown) -> RolloutSpec {
    spec_with(|s| {
        s.template = None;
        s.selector = None;
        s.contract_gate = None;
        s.workload_ref =
            Some(serde_json::from_value(json!({"name": "shop", "scaleDown": mode})).unwrap());
    })
}

fn original(replicas: i32, ready: i32) -> OriginalWorkload {
    OriginalWorkload {
        name: "shop".into(),
        replicas,
        ready,
        adopted_by: None,
        owned_by_tollgate: false,
    }
}

fn adopted(completed: bool) -> RolloutStatus {
    RolloutStatus {
        adoption: Some(AdoptionStatus {
            deployment: "shop".into(),
            original_replicas: 4,
            completed_at: completed.then(|| at(0)),
        }),
        ..Default::default()
    }
}

#[test]
fn the_modes_parse_as_argo_rollouts_spells_them_and_default_to_never() {
    for (text, mode) in [
        ("never", ScaleDown::Never),
        ("onSuccess", ScaleDown::OnSuccess),
        ("progressively", ScaleDown::Progressively),
    ] {
        let parsed: ScaleDown = serde_json::from_value(json!(text)).unwrap();
        assert_eq!(parsed, mode);
    }
    assert!(serde_json::from_value::<ScaleDown>(json!("onsuccess")).is_err());
    let reference: crate::crd::WorkloadRef =
        serde_json::from_value(json!({"name": "shop"})).unwrap();
    assert_eq!(reference.scale_down, ScaleDown::Never);
}

#[test]
fn one_deployment_is_adopted_by_one_rollout_and_never_a_tollgate_child() {
    let free = original(4, 4);
    assert_eq!(adoption_problem("a", Some(at(5)), &free, &[]), None);
    // Marked by this Rollout: fine; by another: refused with the field named.
    let mine = OriginalWorkload {
        adopted_by: Some("a".into()),
        ..free.clone()
    };
    assert_eq!(adoption_problem("a", Some(at(5)), &mine, &[]), None);
    let theirs = OriginalWorkload {
        adopted_by: Some("b".into()),
        ..free.clone()
    };
    let problem = adoption_problem("a", Some(at(5)), &theirs, &[]).unwrap();
    assert!(
        problem.message.starts_with("spec.workloadRef.name:")
            && problem.message.contains("Rollout b"),
        "{problem:?}"
    );
    // A Rollout's own workload.
    let child = OriginalWorkload {
        owned_by_tollgate: true,
        ..free.clone()
    };
    let problem = adoption_problem("a", Some(at(5)), &child, &[]).unwrap();
    assert!(problem.message.contains("tollgate owns"), "{problem:?}");
    // Two Rollouts naming it before either marked it: the older one adopts, the other is told.
    let referrers = vec![
        ("a".to_string(), Some(at(5))),
        ("b".to_string(), Some(at(9))),
    ];
    assert_eq!(adoption_problem("a", Some(at(5)), &free, &referrers), None);
    let problem = adoption_problem("b", Some(at(9)), &free, &referrers).unwrap();
    assert!(
        problem.message.contains("also referenced by Rollout a"),
        "{problem:?}"
    );
    // Created in the same second: the first name wins, never both or neither.
    let tie = vec![
        ("a".to_string(), Some(at(5))),
        ("b".to_string(), Some(at(5))),
    ];
    assert_eq!(adoption_problem("a", Some(at(5)), &free, &tie), None);
    assert!(adoption_problem("b", Some(at(5)), &free, &tie).is_some());
}

#[test]
fn each_mode_keeps_the_original_serving_until_the_stable_pods_are_attested() {
    let cases = [
        // (mode, completed, stable ready, original replicas wanted)
        (ScaleDown::Never, false, 0, None),
        (ScaleDown::Never, true, 4, None),
        (ScaleDown::OnSuccess, false, 0, Some(4)),
        (ScaleDown::OnSuccess, false, 4, Some(4)),
        (ScaleDown::OnSuccess, true, 4, Some(0)),
        (ScaleDown::Progressively, false, 0, Some(4)),
        (ScaleDown::Progressively, false, 1, Some(3)),
        (ScaleDown::Progressively, false, 3, Some(1)),
        // One pod stays until the fleet check attested the stable pods.
        (ScaleDown::Progressively, false, 4, Some(1)),
        (ScaleDown::Progressively, false, 9, Some(1)),
        (ScaleDown::Progressively, true, 4, Some(0)),
    ];
    for (mode, completed, ready, want) in cases {
        let spec = adopting(mode);
        let got = original_replicas(&spec, &adopted(completed), ready);
        assert_eq!(got, want, "{mode:?} completed={completed} ready={ready}");
        // Progressively never leaves fewer ready pods than the original had.
        if let (ScaleDown::Progressively, Some(n)) = (mode, got) {
            assert!(completed || n + ready >= 4, "{n} + {ready}");
        }
    }
    // Nothing recorded, or another Deployment recorded: leave it alone.
    let spec = adopting(ScaleDown::OnSuccess);
    assert_eq!(original_replicas(&spec, &RolloutStatus::default(), 0), None);
    let mut other = adopted(false);
    other.adoption.as_mut().unwrap().deployment = "other".into();
    assert_eq!(original_replicas(&spec, &other, 0), None);
    // Its pods are the stable track only until the adoption completes, and never beside a canary.
    assert!(original_is_stable(&spec, &adopted(false), false));
    assert!(!original_is_stable(&spec, &adopted(false), true));
    assert!(!original_is_stable(&spec, &adopted(true), false));
}

/// The first deployment of an adopting Rollout, through `decide`: the size is recorded before
/// anything is scaled, the original keeps it while the stable pods start, its pods are attested
/// with them, and the adoption completes on `Succeeded`.
#[test]
fn the_first_deployment_records_the_size_then_completes_the_adoption() {
    let spec = adopting(ScaleDown::OnSuccess);
    let obs = Observations {
        original: Some(original(4, 4)),
        ..Default::default()
    };
    let plan = decide(&spec, None, &obs, at(0));
    assert_eq!(plan.status.phase, Phase::Promoting);
    let adoption = plan.status.adoption.clone().expect("adoption recorded");
    assert_eq!(
        (adoption.original_replicas, adoption.completed_at),
        (4, None)
    );
    assert!(reasons(&plan).contains(&"Adopting"), "{:?}", reasons(&plan));
    assert_eq!(plan.original_replicas, Some(4));
    assert!(plan.original_is_stable);

    // Later passes do not record the size again, even once the original was scaled.
    let status = plan.status;
    let obs = Observations {
        original: Some(original(2, 2)),
        children: ChildrenState {
            stable: settled("2.0.0+a1b2c3d", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let n = needs(&spec, Some(&status), &obs.children, at(1));
    assert!(n.fleet.as_ref().is_some_and(|f| f.original), "{n:?}");
    // Without the fleet check's answer nothing completes.
    let plan = decide(&spec, Some(&status), &obs, at(1));
    assert_eq!(plan.status.adoption.as_ref().unwrap().original_replicas, 4);
    assert_eq!(plan.status.adoption.as_ref().unwrap().completed_at, None);
    assert_eq!(plan.original_replicas, Some(4));
    assert!(!reasons(&plan).contains(&"Adopting"));

    // Attested: Succeeded, the adoption completes and the original goes to zero.
    let obs = Observations {
        fleet: Some(fleet(GateVerdict::Passed, &[])),
        ..obs
    };
    let plan = decide(&spec, Some(&status), &obs, at(2));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(
        plan.status.adoption.as_ref().unwrap().completed_at,
        Some(at(2))
    );
    assert!(reasons(&plan).contains(&"AdoptionCompleted"));
    assert_eq!(plan.original_replicas, Some(0));
    assert!(!plan.original_is_stable);

    // A fleet check that fails keeps the original serving.
    let failing = Observations {
        fleet: Some(fleet(
            GateVerdict::Blocked,
            &[("shop-stable-1", "1.9.0", "2.0.0+a1b2c3d")],
        )),
        ..obs
    };
    let plan = decide(&spec, Some(&status), &failing, at(2));
    assert_eq!(plan.status.phase, Phase::Promoting);
    assert_eq!(plan.original_replicas, Some(4));
}

#[test]
fn an_invalid_spec_scales_nothing() {
    let spec = adopting(ScaleDown::OnSuccess);
    let obs = Observations {
        original: Some(original(4, 4)),
        spec_problem: Some(SpecProblem::new("spec.workloadRef.name: taken")),
        ..Default::default()
    };
    let plan = decide(&spec, Some(&adopted(true)), &obs, at(0));
    assert_eq!(plan.original_replicas, None);
    assert_eq!(plan.status.reason.as_deref(), Some("InvalidSpec"));
}

#[test]
fn deleting_the_rollout_scales_the_original_back_and_waits_for_it() {
    let status = adopted(true);
    let cases = [
        // (original replicas, ready, deleting for, release)
        (
            0,
            0,
            0,
            Release {
                restore_to: Some(4),
                release: false,
            },
        ),
        (
            4,
            2,
            10,
            Release {
                restore_to: None,
                release: false,
            },
        ),
        (
            4,
            4,
            10,
            Release {
                restore_to: None,
                release: true,
            },
        ),
        // A Deployment that cannot come back does not keep the Rollout forever.
        (
            4,
            0,
            RESTORE_WAIT.as_secs(),
            Release {
                restore_to: None,
                release: true,
            },
        ),
    ];
    for (replicas, ready, secs, want) in cases {
        let got = on_deletion(
            Some(&status),
            Some(&original(replicas, ready)),
            Duration::from_secs(secs),
        );
        assert_eq!(got, want, "replicas={replicas} ready={ready} after {secs}s");
    }
    let nothing = Release {
        restore_to: None,
        release: true,
    };
    assert_eq!(
        on_deletion(None, Some(&original(0, 0)), Duration::ZERO),
        nothing
    );
    assert_eq!(on_deletion(Some(&status), None, Duration::ZERO), nothing);
}

/// `kubectl scale` or an HorizontalPodAutoscaler changes `spec.replicas` mid-canary: the
/// weight, the step and the analysis stay; the tracks are resized from the new total
/// (replica ratio: canary = ceil(total x weight), the rest stable; HTTPRoute: stable keeps the
/// total, the canary is sized from it).
#[test]
fn a_scale_change_mid_canary_keeps_the_weight_and_the_analysis() {
    for (kind, total, want) in [
        (TrafficKind::ReplicaRatio, 2, (1, 1)),
        (TrafficKind::ReplicaRatio, 6, (3, 3)),
        (TrafficKind::ReplicaRatio, 7, (3, 4)),
        (TrafficKind::HttpRoute, 6, (6, 3)),
        (TrafficKind::HttpRoute, 7, (7, 4)),
    ] {
        let mut spec = spec_with(|s| s.replicas = 2);
        spec.traffic.kind = kind;
        let status = analyzing_at_step(3, 50);
        let obs = obs_with_children(&spec, &status);
        let before = decide(&spec, Some(&status), &obs, at(10));
        spec.replicas = total;
        let after = decide(&spec, Some(&status), &obs, at(10));
        assert_eq!(after.status.current_weight, 50, "{kind:?} {total}");
        assert_eq!(after.status.current_step_index, Some(3));
        assert_eq!(after.status.phase, Phase::Analyzing);
        assert_eq!(
            after.status.analysis, before.status.analysis,
            "{kind:?} {total}"
        );
        assert_eq!(after.children.canary_weight, 50);
        let stable = after.children.stable.as_ref().map(|c| c.replicas);
        let canary = after.children.canary.as_ref().map(|c| c.replicas);
        assert_eq!(
            (stable, canary),
            (Some(want.0), Some(want.1)),
            "{kind:?} {total}"
        );
    }
}

#[test]
fn the_scale_status_counts_every_track_and_names_their_selector() {
    let spec = spec();
    let status = analyzing_at_step(3, 50);
    let mut obs = obs_with_children(&spec, &status);
    obs.selector = Some("tollgate.dev/rollout=shop".into());
    let plan = decide(&spec, Some(&status), &obs, at(10));
    let c = &obs.children;
    assert_eq!(
        plan.status.replicas,
        Some(c.stable.total + c.canary.total + c.baseline.total)
    );
    assert_eq!(plan.status.replicas, Some(4));
    assert_eq!(
        plan.status.selector.as_deref(),
        Some("tollgate.dev/rollout=shop")
    );
}

#[test]
fn progressively_follows_the_ready_stable_pods_through_decide() {
    let spec = adopting(ScaleDown::Progressively);
    let mut status = decide(
        &spec,
        None,
        &Observations {
            original: Some(original(4, 4)),
            ..Default::default()
        },
        at(0),
    )
    .status;
    status.adoption.as_mut().unwrap().completed_at = None;
    for (ready, want) in [(0, 4), (1, 3), (2, 2), (3, 1), (4, 1)] {
        let obs = Observations {
            original: Some(original(4, 4)),
            children: ChildrenState {
                stable: WorkloadState {
                    version: Some("2.0.0+a1b2c3d".into()),
                    desired: 4,
                    ready,
                    total: 4,
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let plan = decide(&spec, Some(&status), &obs, at(1));
        assert_eq!(
            plan.original_replicas,
            Some(want),
            "{ready} stable pods ready"
        );
        assert!(
            plan.requeue_after.is_some(),
            "it looks again while pods come up"
        );
    }
}

#[test]
fn a_workload_ref_to_a_missing_deployment_holds_as_invalid_spec_and_scales_nothing() {
    // What the runtime observes when the Deployment is not there (its permanent error's text).
    let problem = SpecProblem::new(
        "spec.workloadRef.name: Deployment shop not found in the Rollout's namespace",
    );
    for mode in [
        ScaleDown::Never,
        ScaleDown::OnSuccess,
        ScaleDown::Progressively,
    ] {
        let spec = adopting(mode);
        let obs = Observations {
            spec_problem: Some(problem.clone()),
            ..Default::default()
        };
        let plan = decide(&spec, None, &obs, at(0));
        assert_eq!(plan.status.reason(), Some(Reason::InvalidSpec), "{mode:?}");
        let message = plan.status.message.clone().unwrap_or_default();
        assert!(message.contains("spec.workloadRef.name"), "{message}");
        assert_eq!(plan.status.phase, Phase::Pending);
        assert_eq!(condition(&plan, CONDITION_STALLED).status, "True");
        // Nothing is scaled: no adoption recorded, no size for a Deployment, no children.
        assert_eq!(plan.status.adoption, None);
        assert_eq!(plan.original_replicas, None);
        assert!(!plan.original_is_stable);
        let c = &plan.children;
        assert_eq!((&c.stable, &c.canary, &c.baseline), (&None, &None, &None));
        assert!(reasons(&plan).contains(&"InvalidSpec"));
    }
}
