//! The fleet rules over hand-made observations: each rule's failing pod named, transport
//! failures failing closed, not-ready pods counted, and the report's order, cap and
//! serialized form.

use super::*;
use crate::gates::fleet::{Attestation, PodTarget};
use std::time::Duration;

fn ip(track: Track, i: usize) -> IpAddr {
    let third = match track {
        Track::Canary => 20,
        Track::Baseline => 21,
        Track::Stable => 22,
    };
    IpAddr::from([127, 0, third, u8::try_from(i).unwrap()])
}

fn ok(track: Track, i: usize, version: &str, hash: &str) -> PodObservation {
    PodObservation {
        target: PodTarget {
            track,
            name: format!("{track}-{i:03}"),
            ip: ip(track, i),
        },
        result: Ok(Attestation {
            version: version.into(),
            config_hash: Some(hash.into()),
            ..Default::default()
        }),
    }
}

fn err(track: Track, i: usize, e: AttestError) -> PodObservation {
    PodObservation {
        target: PodTarget {
            track,
            name: format!("{track}-{i:03}"),
            ip: ip(track, i),
        },
        result: Err(e),
    }
}

fn expect(config: ConfigRule) -> FleetExpectation {
    FleetExpectation {
        canary_version: "2.0.0".into(),
        stable_version: Some("1.0.0".into()),
        config,
        max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
        required_tracks: vec![Track::Canary],
        dependencies: Vec::new(),
        flags: Default::default(),
    }
}

fn match_stable() -> FleetExpectation {
    expect(ConfigRule::MatchStable {
        pipeline_hash: None,
    })
}

/// `n` canary pods on 2.0.0/h1 and `n` stable pods on 1.0.0/h1.
fn healthy(n: usize) -> Vec<PodObservation> {
    let mut v: Vec<_> = (1..=n)
        .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
        .collect();
    v.extend((1..=n).map(|i| ok(Track::Stable, i, "1.0.0", "h1")));
    v
}

fn input(observations: Vec<PodObservation>) -> FleetInput {
    FleetInput {
        observations,
        ..Default::default()
    }
}

fn kinds(r: &FleetReport) -> Vec<(String, ProblemKind)> {
    r.failures
        .iter()
        .map(|f| (f.pod.clone(), f.problem.kind))
        .collect()
}

#[test]
fn majority_needs_a_unique_top() {
    assert_eq!(majority(["a", "b", "a"]), Some("a"));
    assert_eq!(majority(["a", "b"]), None);
    assert_eq!(majority(Vec::<&str>::new()), None);
    assert_eq!(majority(["x"]), Some("x"));
}

#[test]
fn a_healthy_fleet_passes() {
    let r = evaluate(&match_stable(), &input(healthy(4)));
    assert!(r.passed, "{}", r.summary());
    assert_eq!(r.canary.checked, 4);
    assert_eq!(r.canary.passed, 4);
    assert_eq!(r.stable.passed, 4);
    assert_eq!(r.stable_config_hash.as_deref(), Some("h1"));
    assert_eq!(r.canary_config_hash.as_deref(), Some("h1"));
    assert!(
        r.summary().starts_with("fleet check passed"),
        "{}",
        r.summary()
    );
}

#[test]
fn one_stale_canary_pod_of_eight_blocks_and_is_named() {
    let mut obs = healthy(8);
    obs[4] = ok(Track::Canary, 5, "1.0.0", "h1");
    let r = evaluate(&match_stable(), &input(obs));
    assert!(!r.passed);
    assert_eq!(r.failing_pods, 1);
    assert_eq!(r.canary.failed, 1);
    assert_eq!(r.canary.passed, 7);
    let f = &r.failures[0];
    assert_eq!(f.pod, "canary-005");
    assert_eq!(f.problem.kind, ProblemKind::VersionMismatch);
    assert_eq!(f.problem.reported.as_deref(), Some("1.0.0"));
    assert_eq!(f.problem.expected.as_deref(), Some("2.0.0"));
    assert_eq!(f.ip, Some(ip(Track::Canary, 5)));
    assert!(r.summary().contains("canary-005"), "{}", r.summary());
}

#[test]
fn a_stale_stable_pod_blocks_too() {
    let mut obs = healthy(3);
    obs[4] = ok(Track::Stable, 2, "0.9.0", "h1");
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(
        kinds(&r),
        vec![("stable-002".into(), ProblemKind::VersionMismatch)]
    );
}

#[test]
fn one_drifted_canary_pod_is_drift() {
    let mut obs = healthy(5);
    obs[2] = ok(Track::Canary, 3, "2.0.0", "h2");
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(
        kinds(&r),
        vec![("canary-003".into(), ProblemKind::ConfigDrift)]
    );
    assert_eq!(r.failures[0].problem.expected.as_deref(), Some("h1"));
    assert_eq!(r.failures[0].problem.reported.as_deref(), Some("h2"));
}

#[test]
fn one_drifted_stable_pod_is_drift() {
    let mut obs = healthy(5);
    obs[7] = ok(Track::Stable, 3, "1.0.0", "h9");
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(
        kinds(&r),
        vec![("stable-003".into(), ProblemKind::ConfigDrift)]
    );
}

#[test]
fn canary_config_differs_from_stable_without_declared_change() {
    let mut obs: Vec<_> = (1..=3)
        .map(|i| ok(Track::Canary, i, "2.0.0", "new"))
        .collect();
    obs.extend((1..=3).map(|i| ok(Track::Stable, i, "1.0.0", "old")));
    let r = evaluate(&match_stable(), &input(obs.clone()));
    assert!(!r.passed);
    assert_eq!(r.failing_pods, 3);
    assert!(r
        .failures
        .iter()
        .all(|f| f.problem.kind == ProblemKind::ConfigMismatch
            && f.track == Track::Canary
            && f.problem.expected.as_deref() == Some("old")
            && f.problem.reported.as_deref() == Some("new")));

    // Declared change to exactly that hash: passes.
    let declared = expect(ConfigRule::Declared {
        expected_hash: "new".into(),
    });
    assert!(evaluate(&declared, &input(obs.clone())).passed);

    // Declared change to another hash: fails.
    let other = expect(ConfigRule::Declared {
        expected_hash: "newer".into(),
    });
    let r = evaluate(&other, &input(obs));
    assert_eq!(r.failing_pods, 3);
    assert_eq!(r.failures[0].problem.expected.as_deref(), Some("newer"));
}

#[test]
fn pipeline_hash_must_match_too() {
    let rule = expect(ConfigRule::MatchStable {
        pipeline_hash: Some("h1".into()),
    });
    assert!(evaluate(&rule, &input(healthy(2))).passed);
    let rule = expect(ConfigRule::MatchStable {
        pipeline_hash: Some("other".into()),
    });
    let r = evaluate(&rule, &input(healthy(2)));
    assert_eq!(r.canary.failed, 2);
    assert_eq!(r.stable.failed, 0);
    assert!(r
        .failures
        .iter()
        .all(|f| f.problem.kind == ProblemKind::ConfigMismatch));
    // The canary matches the pipeline's hash but not stable's, with no change declared:
    // both rules must hold, so it fails (naming stable's hash).
    let mut obs: Vec<_> = (1..=2)
        .map(|i| ok(Track::Canary, i, "2.0.0", "new"))
        .collect();
    obs.extend((1..=2).map(|i| ok(Track::Stable, i, "1.0.0", "old")));
    let rule = expect(ConfigRule::MatchStable {
        pipeline_hash: Some("new".into()),
    });
    let r = evaluate(&rule, &input(obs.clone()));
    assert_eq!(r.canary.failed, 2);
    assert!(r
        .failures
        .iter()
        .all(|f| f.problem.kind == ProblemKind::ConfigMismatch
            && f.problem.expected.as_deref() == Some("old")));
    // A pipeline hash with no stable to compare: the stable rule still blocks.
    let canary_only: Vec<_> = obs
        .into_iter()
        .filter(|o| o.target.track == Track::Canary)
        .collect();
    let r = evaluate(&rule, &input(canary_only));
    assert_eq!(
        r.fleet_problems,
        vec![FleetProblem::StableReferenceUnavailable]
    );
    assert!(!r.passed);
}

#[test]
fn every_transport_failure_fails_closed() {
    let errors = [
        AttestError::Timeout(Duration::from_secs(1)),
        AttestError::Unreachable("connection refused".into()),
        AttestError::HttpStatus {
            status: 500,
            body: "boom".into(),
        },
        AttestError::InvalidBody {
            error: "expected value".into(),
            body: "<html>".into(),
        },
        AttestError::BodyTooLarge(10),
        AttestError::MissingField {
            field: "configHash",
            pointer: "/configHash".into(),
        },
        AttestError::InvalidField {
            field: "version",
            pointer: "/version".into(),
            found: "1".into(),
        },
    ];
    for e in errors {
        let mut obs = healthy(3);
        obs[1] = err(Track::Canary, 2, e.clone());
        let r = evaluate(&match_stable(), &input(obs));
        assert!(!r.passed, "{e}");
        assert_eq!(kinds(&r), vec![("canary-002".into(), e.kind())], "{e}");
        assert_eq!(r.failures[0].problem.reported, e.reported());
        assert_eq!(r.failures[0].problem.detail, e.to_string());
    }
}

#[test]
fn an_empty_canary_is_no_evidence() {
    let obs: Vec<_> = (1..=2)
        .map(|i| ok(Track::Stable, i, "1.0.0", "h1"))
        .collect();
    let r = evaluate(&match_stable(), &input(obs));
    assert!(!r.passed);
    assert_eq!(
        r.fleet_problems,
        vec![FleetProblem::NoReadyPods {
            track: Track::Canary
        }]
    );
    assert!(
        r.summary().contains("no ready canary pod"),
        "{}",
        r.summary()
    );
}

#[test]
fn canary_held_to_stable_without_stable_answers_blocks() {
    let mut obs: Vec<_> = (1..=2)
        .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
        .collect();
    obs.push(err(
        Track::Stable,
        1,
        AttestError::Unreachable("refused".into()),
    ));
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(
        r.fleet_problems,
        vec![FleetProblem::StableReferenceUnavailable]
    );
    assert_eq!(
        kinds(&r),
        vec![("stable-001".into(), ProblemKind::Unreachable)]
    );

    // No stable pods at all, also blocks unless the rule says otherwise.
    let obs: Vec<_> = (1..=2)
        .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
        .collect();
    assert!(!evaluate(&match_stable(), &input(obs.clone())).passed);
    let standalone = expect(ConfigRule::Standalone {
        expected_hash: None,
    });
    assert!(evaluate(&standalone, &input(obs)).passed);
}

#[test]
fn a_stable_only_check_requires_stable_pods_not_canary_ones() {
    let rule = FleetExpectation {
        required_tracks: vec![Track::Stable],
        ..expect(ConfigRule::Standalone {
            expected_hash: None,
        })
    };
    let obs = vec![
        ok(Track::Stable, 1, "1.0.0", "h"),
        ok(Track::Stable, 2, "1.0.0", "h"),
    ];
    let r = evaluate(&rule, &input(obs));
    assert!(r.passed, "{r:?}");
    let r = evaluate(&rule, &input(vec![]));
    assert!(!r.passed);
    assert_eq!(
        r.fleet_problems,
        vec![FleetProblem::NoReadyPods {
            track: Track::Stable
        }]
    );
}

#[test]
fn standalone_pods_must_agree() {
    let rule = FleetExpectation {
        stable_version: None,
        ..expect(ConfigRule::Standalone {
            expected_hash: None,
        })
    };
    let obs = vec![
        ok(Track::Canary, 1, "2.0.0", "a"),
        ok(Track::Canary, 2, "2.0.0", "b"),
    ];
    let r = evaluate(&rule, &input(obs));
    // No majority: both are drifting.
    assert_eq!(r.failing_pods, 2);
    assert!(r
        .failures
        .iter()
        .all(|f| f.problem.kind == ProblemKind::ConfigDrift));

    let rule = expect(ConfigRule::Standalone {
        expected_hash: Some("a".into()),
    });
    let obs = vec![
        ok(Track::Canary, 1, "2.0.0", "a"),
        ok(Track::Canary, 2, "2.0.0", "b"),
    ];
    assert_eq!(
        kinds(&evaluate(&rule, &input(obs))),
        vec![("canary-002".into(), ProblemKind::ConfigDrift)]
    );
}

#[test]
fn stable_pods_without_a_stable_version_are_unexpected() {
    let rule = FleetExpectation {
        stable_version: None,
        ..expect(ConfigRule::Standalone {
            expected_hash: None,
        })
    };
    let mut obs = vec![ok(Track::Canary, 1, "2.0.0", "h1")];
    obs.push(ok(Track::Stable, 1, "1.0.0", "h1"));
    let r = evaluate(&rule, &input(obs));
    assert_eq!(
        kinds(&r),
        vec![("stable-001".into(), ProblemKind::UnexpectedPod)]
    );
}

#[test]
fn baseline_is_held_to_stable() {
    let mut obs = healthy(2);
    obs.push(ok(Track::Baseline, 1, "1.0.0", "h1"));
    obs.push(ok(Track::Baseline, 2, "2.0.0", "h1"));
    obs.push(ok(Track::Baseline, 3, "1.0.0", "h2"));
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(
        kinds(&r),
        vec![
            ("baseline-002".into(), ProblemKind::VersionMismatch),
            ("baseline-003".into(), ProblemKind::ConfigDrift),
        ]
    );
    assert_eq!(r.baseline.checked, 3);
    assert_eq!(r.baseline.passed, 1);
}

#[test]
fn not_ready_pods_are_counted_and_listed_but_do_not_fail() {
    let mut inp = input(healthy(2));
    inp.not_ready = vec![
        PodRef {
            track: Track::Canary,
            name: "canary-9".into(),
            ip: None,
        },
        PodRef {
            track: Track::Stable,
            name: "stable-9".into(),
            ip: None,
        },
    ];
    let r = evaluate(&match_stable(), &inp);
    assert!(r.passed);
    assert_eq!(r.canary.not_ready, 1);
    assert_eq!(r.stable.not_ready, 1);
    assert_eq!(r.not_ready.len(), 2);
    assert!(r.summary().contains("1 not ready"), "{}", r.summary());
}

#[test]
fn cluster_problems_join_the_pod_verdicts() {
    let mut inp = input(healthy(2));
    inp.cluster_problems = vec![
        PodProblem {
            pod: PodRef {
                track: Track::Canary,
                name: "canary-001".into(),
                ip: None,
            },
            problem: Problem {
                kind: ProblemKind::TemplateHashMismatch,
                reported: Some("old".into()),
                expected: Some("new".into()),
                detail: "x".into(),
            },
        },
        PodProblem {
            pod: PodRef {
                track: Track::Canary,
                name: "canary-noip".into(),
                ip: None,
            },
            problem: Problem {
                kind: ProblemKind::NoAddress,
                reported: None,
                expected: None,
                detail: "y".into(),
            },
        },
    ];
    let verdicts = evaluate_pods(&match_stable(), &inp);
    let v = verdicts
        .iter()
        .find(|v| v.pod.name == "canary-001")
        .unwrap();
    assert_eq!(v.reported_version.as_deref(), Some("2.0.0"));
    assert_eq!(v.problems.len(), 1);
    let r = evaluate(&match_stable(), &inp);
    assert_eq!(r.canary.checked, 3);
    assert_eq!(r.canary.failed, 2);
    assert_eq!(
        kinds(&r),
        vec![
            ("canary-001".into(), ProblemKind::TemplateHashMismatch),
            ("canary-noip".into(), ProblemKind::NoAddress),
        ]
    );
}

#[test]
fn the_list_is_sorted_and_capped_with_counts_kept() {
    // 30 canary pods all stale, listed in reverse to check sorting.
    let mut obs: Vec<_> = (1..=30)
        .rev()
        .map(|i| ok(Track::Canary, i, "1.0.0", "h1"))
        .collect();
    obs.extend((1..=2).map(|i| {
        err(
            Track::Stable,
            i,
            AttestError::Timeout(Duration::from_secs(1)),
        )
    }));
    let rule = FleetExpectation {
        max_listed_failures: 5,
        required_tracks: vec![Track::Canary],
        ..expect(ConfigRule::Standalone {
            expected_hash: None,
        })
    };
    let r = evaluate(&rule, &input(obs));
    assert_eq!(r.failures_total, 32);
    assert_eq!(r.failing_pods, 32);
    assert!(r.failures_truncated);
    assert_eq!(r.failures.len(), 5);
    let names: Vec<_> = r.failures.iter().map(|f| f.pod.as_str()).collect();
    assert_eq!(
        names,
        [
            "canary-001",
            "canary-002",
            "canary-003",
            "canary-004",
            "canary-005"
        ]
    );
    assert_eq!(r.canary.failed, 30);
    assert_eq!(r.stable.failed, 2);
}

#[test]
fn a_pod_with_two_problems_lists_both() {
    let mut obs = healthy(3);
    obs[0] = ok(Track::Canary, 1, "1.0.0", "h7");
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(r.failing_pods, 1);
    assert_eq!(
        kinds(&r),
        vec![
            ("canary-001".into(), ProblemKind::VersionMismatch),
            ("canary-001".into(), ProblemKind::ConfigDrift),
        ]
    );
}

#[test]
fn the_report_serializes_for_status() {
    let mut obs = healthy(2);
    obs[0] = ok(Track::Canary, 1, "1.0.0", "h1");
    let r = evaluate(&match_stable(), &input(obs));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["canary"]["failed"], 1);
    assert_eq!(json["failures"][0]["kind"], "VersionMismatch");
    assert_eq!(json["failures"][0]["track"], "canary");
    assert_eq!(json["failures"][0]["ip"], "127.0.20.1");
    assert_eq!(json["failuresTotal"], 1);
    let back: FleetReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
    let rule = serde_json::to_value(ConfigRule::Declared {
        expected_hash: "x".into(),
    })
    .unwrap();
    assert_eq!(
        rule,
        serde_json::json!({"mode": "declared", "expectedHash": "x"})
    );
}

#[test]
fn duplicate_observations_of_one_pod_count_once() {
    let mut obs = healthy(2);
    obs.push(ok(Track::Canary, 1, "2.0.0", "h1"));
    let r = evaluate(&match_stable(), &input(obs));
    assert_eq!(r.canary.checked, 2);
}

fn outcome(expect: &FleetExpectation, input: &FleetInput) -> crate::gates::fleet::FleetOutcome {
    let verdicts = evaluate_pods(expect, input);
    let report = report_from_verdicts(expect, input, &verdicts);
    crate::gates::fleet::FleetOutcome { verdicts, report }
}

#[test]
fn pods_that_did_not_answer_hold_and_a_wrong_answer_fails() {
    use crate::gates::fleet::FleetVerdict;
    let e = match_stable();
    let timeout = || AttestError::Timeout(Duration::from_secs(2));
    assert_eq!(
        outcome(&e, &input(healthy(3))).verdict(),
        FleetVerdict::Passed
    );

    let mut silent = healthy(3);
    silent[0] = err(Track::Canary, 1, timeout());
    silent[1] = err(Track::Canary, 2, AttestError::Unreachable("refused".into()));
    assert_eq!(
        outcome(&e, &input(silent.clone())).verdict(),
        FleetVerdict::Unanswered
    );

    // No ready canary pod at all is no answer either.
    let stable_only: Vec<_> = (1..=3)
        .map(|i| ok(Track::Stable, i, "1.0.0", "h1"))
        .collect();
    assert_eq!(
        outcome(&e, &input(stable_only)).verdict(),
        FleetVerdict::Unanswered
    );

    // One wrong answer among silent pods fails at once.
    let mut mixed = silent;
    mixed[2] = ok(Track::Canary, 3, "1.9.9", "h1");
    assert_eq!(outcome(&e, &input(mixed)).verdict(), FleetVerdict::Failed);

    // Every pod counts, also past the report's list of failures.
    let mut many: Vec<_> = (1..=30).map(|i| err(Track::Canary, i, timeout())).collect();
    many.push(ok(Track::Canary, 31, "1.9.9", "h1"));
    many.extend((1..=3).map(|i| ok(Track::Stable, i, "1.0.0", "h1")));
    let o = outcome(&e, &input(many));
    assert!(o.report.failures_truncated);
    assert_eq!(o.verdict(), FleetVerdict::Failed);

    // Stable pods that answer without an agreed hash are an answer, not silence.
    let split = vec![
        ok(Track::Canary, 1, "2.0.0", "h1"),
        ok(Track::Stable, 1, "1.0.0", "h1"),
        ok(Track::Stable, 2, "1.0.0", "h2"),
    ];
    assert_eq!(outcome(&e, &input(split)).verdict(), FleetVerdict::Failed);
}
