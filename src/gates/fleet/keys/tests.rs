//! Tables for the key-by-key rules: each rule's failing pod and key named, absent keys as
//! differences, declared values as changes, and the guard over the whole fleet.

use super::*;
use crate::gates::fleet::{PodRef, PodVerdict};

/// A pod that answered: `deps` and `flags` as `k=v` pairs.
fn pod(
    track: Track,
    i: usize,
    version: &str,
    deps: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> PodVerdict {
    let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    PodVerdict {
        pod: PodRef {
            track,
            name: format!("{track}-{i}"),
            ip: None,
        },
        reported_version: Some(version.into()),
        reported_config_hash: Some("h".into()),
        reported_dependencies: map(deps),
        reported_flags: map(flags),
        problems: Vec::new(),
    }
}

/// (pod, kind, reported, expected) of every problem, in pod order.
fn run(
    deps: &[DependencyRule],
    flags: &FlagRules,
    mut pods: Vec<PodVerdict>,
) -> Vec<(String, ProblemKind, Option<String>, Option<String>)> {
    let mut refs: Vec<&mut PodVerdict> = pods.iter_mut().collect();
    check(deps, flags, &mut refs);
    pods.into_iter()
        .flat_map(|v| {
            let name = v.pod.name.clone();
            v.problems
                .into_iter()
                .map(move |p| (name.clone(), p.kind, p.reported, p.expected))
        })
        .collect()
}

fn range(name: &str, r: &str, parity: bool) -> DependencyRule {
    DependencyRule {
        name: name.into(),
        constraint: Some(Constraint::Range(r.into())),
        parity,
    }
}

const PG: &[(&str, &str)] = &[("postgres", "15.4"), ("redis", "7.2.1")];

/// `n` canary pods on 2.0.0 and `n` stable pods on 1.0.0, with the same deps and flags.
fn fleet(n: usize, deps: &[(&str, &str)], flags: &[(&str, &str)]) -> Vec<PodVerdict> {
    let mut v: Vec<_> = (1..=n)
        .map(|i| pod(Track::Canary, i, "2.0.0", deps, flags))
        .collect();
    v.extend((1..=n).map(|i| pod(Track::Stable, i, "1.0.0", deps, flags)));
    v
}

#[test]
fn loose_versions() {
    let table = [
        ("15.4", Some("15.4.0")),
        ("15", Some("15.0.0")),
        ("7.2.1", Some("7.2.1")),
        (" v2.0.0+76a39e5 ", Some("2.0.0+76a39e5")),
        ("1.2-rc.1", Some("1.2.0-rc.1")),
        ("V3.1", Some("3.1.0")),
        ("", None),
        ("latest", None),
        ("1.2.3.4", None),
        ("1..2", None),
        ("15.4ubuntu", None),
        ("-1", None),
    ];
    for (text, want) in table {
        assert_eq!(
            loose_version(text).map(|v| v.to_string()),
            want.map(str::to_string),
            "{text:?}"
        );
    }
}

#[test]
fn dependencies_within_range_pass() {
    let deps = [
        range("postgres", ">=15, <16", true),
        range("redis", "^7.2", true),
    ];
    assert_eq!(run(&deps, &FlagRules::default(), fleet(4, PG, &[])), vec![]);
}

#[test]
fn one_pod_of_eight_out_of_range_is_named_with_dependency_and_constraint() {
    let deps = [range("postgres", ">=15, <16", false)];
    let mut pods = fleet(4, PG, &[]);
    pods[6] = pod(Track::Stable, 3, "1.0.0", &[("postgres", "16.1")], &[]);
    let got = run(&deps, &FlagRules::default(), pods);
    assert_eq!(
        got,
        vec![
            (
                "stable-3".into(),
                ProblemKind::DependencyOutOfRange,
                Some("postgres 16.1".into()),
                Some("postgres >=15, <16".into())
            ),
            // Without parity a track still agrees with itself.
            (
                "stable-3".into(),
                ProblemKind::DependencyDrift,
                Some("postgres=16.1".into()),
                Some("postgres=15.4".into())
            ),
        ]
    );
}

#[test]
fn missing_unparseable_and_exact_dependencies() {
    let deps = [
        range("postgres", ">=15", false),
        DependencyRule {
            name: "redis".into(),
            constraint: Some(Constraint::Exact("7.2.1".into())),
            parity: false,
        },
    ];
    let pods = vec![
        pod(Track::Canary, 1, "2", &[("redis", "7.2.1")], &[]),
        pod(
            Track::Canary,
            2,
            "2",
            &[("postgres", "fifteen"), ("redis", "7.2.1")],
            &[],
        ),
        pod(
            Track::Canary,
            3,
            "2",
            &[("postgres", "15"), ("redis", "7.2.2")],
            &[],
        ),
        pod(
            Track::Canary,
            4,
            "2",
            &[("postgres", "15"), ("redis", "7.2.1")],
            &[],
        ),
    ];
    let got: Vec<_> = run(&deps, &FlagRules::default(), pods)
        .into_iter()
        .filter(|p| p.1 == ProblemKind::DependencyOutOfRange)
        .map(|p| (p.0, p.2.unwrap(), p.3.unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "canary-1".into(),
                "postgres (not reported)".into(),
                "postgres >=15".into()
            ),
            (
                "canary-2".into(),
                "postgres fifteen".into(),
                "postgres >=15".into()
            ),
            (
                "canary-3".into(),
                "redis 7.2.2".into(),
                "redis =7.2.1".into()
            ),
        ]
    );
}

#[test]
fn dependency_parity_holds_the_canary_to_stable() {
    // Both in range, but the canary's database is not the one stable talks to.
    let deps = [range("postgres", ">=15, <16", true)];
    let mut pods = fleet(2, PG, &[]);
    for p in pods.iter_mut().filter(|p| p.pod.track == Track::Canary) {
        p.reported_dependencies
            .insert("postgres".into(), "15.6".into());
    }
    let got = run(&deps, &FlagRules::default(), pods);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|p| p.1 == ProblemKind::DependencyDrift && p.0.starts_with("canary")));
    // Without parity the tracks may differ.
    let mut deps = deps;
    deps[0].parity = false;
    let mut pods = fleet(2, PG, &[]);
    for p in pods.iter_mut().filter(|p| p.pod.track == Track::Canary) {
        p.reported_dependencies
            .insert("postgres".into(), "15.6".into());
    }
    assert_eq!(run(&deps, &FlagRules::default(), pods), vec![]);
}

#[test]
fn undeclared_dependencies_are_not_judged() {
    let mut pods = fleet(2, PG, &[]);
    pods[0]
        .reported_dependencies
        .insert("redis".into(), "6.0".into());
    assert_eq!(run(&[], &FlagRules::default(), pods), vec![]);
}

#[test]
fn a_flag_differing_on_one_canary_pod_of_four_names_the_key() {
    let flags = [("powerPeg", "false"), ("colour", "\"blue\"")];
    let mut pods = fleet(4, &[], &flags);
    pods[2] = pod(
        Track::Canary,
        3,
        "2.0.0",
        &[],
        &[("powerPeg", "true"), ("colour", "\"blue\"")],
    );
    assert_eq!(
        run(&[], &FlagRules::default(), pods),
        vec![(
            "canary-3".into(),
            ProblemKind::FlagDrift,
            Some("powerPeg=true".into()),
            Some("powerPeg=false".into())
        )]
    );
}

#[test]
fn a_flag_missing_on_some_pods_is_a_difference() {
    let mut pods = fleet(3, &[], &[("powerPeg", "false")]);
    pods[1].reported_flags.clear();
    let got = run(&[], &FlagRules::default(), pods);
    assert_eq!(
        got,
        vec![(
            "canary-2".into(),
            ProblemKind::FlagDrift,
            Some("powerPeg=(not reported)".into()),
            Some("powerPeg=false".into())
        )]
    );
    // A key only the canary reports: every canary pod differs from stable, which lacks it.
    let mut pods = fleet(2, &[], &[]);
    for p in pods.iter_mut().filter(|p| p.pod.track == Track::Canary) {
        p.reported_flags.insert("newThing".into(), "true".into());
    }
    let got = run(&[], &FlagRules::default(), pods);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|p| p.3.as_deref() == Some("newThing=(not reported)")));
}

#[test]
fn parity_off_still_holds_each_track_to_itself() {
    let rules = FlagRules {
        parity: false,
        ..Default::default()
    };
    // The whole canary differs from stable: allowed.
    let mut pods = fleet(3, &[], &[("powerPeg", "false")]);
    for p in pods.iter_mut().filter(|p| p.pod.track == Track::Canary) {
        p.reported_flags.insert("powerPeg".into(), "true".into());
    }
    assert_eq!(run(&[], &rules, pods.clone()), vec![]);
    // One canary pod unlike the other canary pods: not allowed.
    pods[0]
        .reported_flags
        .insert("powerPeg".into(), "false".into());
    let got = run(&[], &rules, pods);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "canary-1");
}

#[test]
fn declared_values_are_a_declared_change() {
    let rules = FlagRules {
        expected: [("powerPeg".to_string(), "true".to_string())].into(),
        ..Default::default()
    };
    let mut pods = fleet(3, &[], &[("powerPeg", "false")]);
    for p in pods.iter_mut().filter(|p| p.pod.track == Track::Canary) {
        p.reported_flags.insert("powerPeg".into(), "true".into());
    }
    assert_eq!(
        run(&[], &rules, pods.clone()),
        vec![],
        "canary differs from stable as declared"
    );
    pods[1]
        .reported_flags
        .insert("powerPeg".into(), "false".into());
    let got = run(&[], &rules, pods);
    assert_eq!(
        got.iter().map(|p| (p.0.as_str(), p.1)).collect::<Vec<_>>(),
        vec![
            ("canary-2", ProblemKind::FlagMismatch),
            ("canary-2", ProblemKind::FlagDrift)
        ]
    );
}

#[test]
fn ignored_keys_are_not_compared() {
    let rules = FlagRules {
        ignore: ["shard".to_string()].into(),
        ..Default::default()
    };
    let pods: Vec<_> = (1..=3)
        .map(|i| pod(Track::Canary, i, "2.0.0", &[], &[("shard", &i.to_string())]))
        .collect();
    assert_eq!(run(&[], &rules, pods.clone()), vec![]);
    let got = run(&[], &FlagRules::default(), pods);
    assert_eq!(got.len(), 3, "no majority: all named {got:?}");
    assert!(got.iter().all(|p| p.3.is_none()));
}

fn guard() -> FlagRules {
    FlagRules {
        guards: vec![FlagGuard {
            flag: "powerPeg".into(),
            on: "true".into(),
            min_version: "2.0.0".into(),
        }],
        ..Default::default()
    }
}

#[test]
fn the_knight_rule_names_the_one_old_pod() {
    // Eight servers, the flag on everywhere, one still on old code.
    let mut pods: Vec<_> = (1..=8)
        .map(|i| {
            pod(
                Track::Canary,
                i,
                "2.0.0+76a39e5",
                &[],
                &[("powerPeg", "true")],
            )
        })
        .collect();
    pods[7] = pod(Track::Canary, 8, "1.9.3", &[], &[("powerPeg", "true")]);
    let got = run(&[], &guard(), pods);
    assert_eq!(
        got,
        vec![(
            "canary-8".into(),
            ProblemKind::GuardedVersion,
            Some("1.9.3".into()),
            Some(">= 2.0.0".into())
        )]
    );
}

#[test]
fn the_guard_is_fleet_wide_and_fails_closed() {
    // The old pod does not know the flag at all: it still runs while the flag is on.
    let pods = vec![
        pod(Track::Canary, 1, "2.1.0", &[], &[("powerPeg", "true")]),
        pod(Track::Canary, 2, "1.0.0", &[], &[]),
        pod(Track::Canary, 3, "nightly", &[], &[("powerPeg", "true")]),
    ];
    let got: Vec<_> = run(&[], &guard(), pods)
        .into_iter()
        .filter(|p| p.1 == ProblemKind::GuardedVersion)
        .map(|p| p.0)
        .collect();
    assert_eq!(got, vec!["canary-2".to_string(), "canary-3".to_string()]);
    // Flag off everywhere: the guard has nothing to say.
    let pods = vec![
        pod(Track::Canary, 1, "1.0.0", &[], &[("powerPeg", "false")]),
        pod(Track::Canary, 2, "1.0.0", &[], &[("powerPeg", "false")]),
    ];
    assert_eq!(run(&[], &guard(), pods), vec![]);
}

#[test]
fn pods_that_did_not_answer_are_not_judged_here() {
    let mut pods = fleet(2, PG, &[("powerPeg", "true")]);
    pods[0].reported_version = None;
    pods[0].reported_dependencies.clear();
    pods[0].reported_flags.clear();
    let deps = [range("postgres", ">=15, <16", true)];
    assert_eq!(run(&deps, &FlagRules::default(), pods), vec![]);
}

#[test]
fn validation_names_the_field() {
    let bad_range = [range("postgres", ">=fifteen", true)];
    let e = validate(&bad_range, &FlagRules::default()).unwrap_err();
    assert_eq!(e.field, "dependencies[0].range");
    let mut g = guard();
    g.guards[0].min_version = "soon".into();
    let e = validate(&[], &g).unwrap_err();
    assert_eq!(e.field, "flags.guards[0].minVersion");
    assert!(validate(&[range("pg", ">=15, <16", true)], &guard()).is_ok());
}
