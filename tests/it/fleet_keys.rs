//! Dependencies, flags and guarded version rules against real demo-app processes, one per pod,
//! each reporting its `--dependency` and `--flag` knobs on /version. Needs `cargo build -p
//! demo-app` (or TOLLGATE_DEMO_APP); fails without it.

use std::time::Duration;

use crate::support::fleet::{Fleet, PodSpec, BLUE};
use tollgate::gates::fleet::{
    check, AttestConfig, ConfigRule, Constraint, DependencyRule, FlagGuard, FlagRules,
    FleetExpectation, FleetOutcome, FleetVerdict, HttpAttestor, PodTarget, ProblemKind, Track,
    TrackInventory, DEFAULT_MAX_LISTED_FAILURES,
};

const CANARY: &str = "2.0.0";
const STABLE: &str = "1.0.0";

fn expectation(dependencies: Vec<DependencyRule>, flags: FlagRules) -> FleetExpectation {
    FleetExpectation {
        canary_version: CANARY.into(),
        stable_version: Some(STABLE.into()),
        config: ConfigRule::MatchStable {
            pipeline_hash: None,
        },
        max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
        required_tracks: vec![Track::Canary],
        dependencies,
        flags,
    }
}

/// A pod spec with `--dependency` and `--flag` knobs.
fn spec(version: &str, deps: &[&str], flags: &[&str]) -> PodSpec {
    let mut s = PodSpec::new(version, BLUE);
    for d in deps {
        s = s.arg("--dependency", d);
    }
    for f in flags {
        s = s.arg("--flag", f);
    }
    s
}

/// Start the pods, wait for them, and run the check over HTTP.
async fn run(
    octet: u8,
    pods: &[(String, Track, PodSpec)],
    expect: &FleetExpectation,
) -> (Fleet, FleetOutcome) {
    let mut fleet = Fleet::new(octet);
    let mut targets = Vec::new();
    for (i, (name, track, spec)) in pods.iter().enumerate() {
        let host = u8::try_from(i + 1).expect("at most 254 pods per fleet");
        let ip = fleet.spawn(name, host, spec);
        targets.push(PodTarget {
            track: *track,
            name: name.clone(),
            ip,
        });
    }
    fleet.wait_ready();
    let config = AttestConfig {
        port: fleet.port,
        timeout: Duration::from_secs(3),
        ..AttestConfig::default()
    };
    let concurrency = config.concurrency;
    let attestor = HttpAttestor::new(config).expect("attestor");
    let inventory = TrackInventory {
        targets,
        ..Default::default()
    };
    let outcome = check(&attestor, concurrency, expect, inventory).await;
    println!("{}", outcome.report.summary());
    (fleet, outcome)
}

/// `n` canary and `n` stable pods; `odd` replaces the spec of the pod with that name.
fn pods(
    n: usize,
    deps: &[&str],
    flags: &[&str],
    odd: Option<(&str, PodSpec)>,
) -> Vec<(String, Track, PodSpec)> {
    let mut all = Vec::new();
    for (track, version) in [(Track::Canary, CANARY), (Track::Stable, STABLE)] {
        for i in 1..=n {
            let name = format!("shop-{track}-{i}");
            let s = match &odd {
                Some((o, s)) if *o == name => s.clone(),
                _ => spec(version, deps, flags),
            };
            all.push((name, track, s));
        }
    }
    all
}

/// (pod, kind, reported, expected) of every listed failure.
fn failures(o: &FleetOutcome) -> Vec<(String, ProblemKind, Option<String>, Option<String>)> {
    o.report
        .failures
        .iter()
        .map(|f| {
            (
                f.pod.clone(),
                f.problem.kind,
                f.problem.reported.clone(),
                f.problem.expected.clone(),
            )
        })
        .collect()
}

const DEPS: &[&str] = &["postgres=15.4", "redis=7.2.1"];

fn postgres_15() -> Vec<DependencyRule> {
    vec![
        DependencyRule {
            name: "postgres".into(),
            constraint: Some(Constraint::Range(">=15, <16".into())),
            parity: true,
        },
        DependencyRule {
            name: "redis".into(),
            constraint: Some(Constraint::Range("^7.2".into())),
            parity: true,
        },
    ]
}

#[tokio::test]
async fn dependencies_in_range_and_equal_pass() {
    let expect = expectation(postgres_15(), FlagRules::default());
    let (_fleet, out) = run(150, &pods(4, DEPS, &["powerPeg=false"], None), &expect).await;
    assert!(out.report.passed, "{}", out.report.summary());
    assert_eq!(out.report.canary.passed + out.report.stable.passed, 8);
    let v = &out.verdicts[0];
    assert_eq!(v.reported_dependencies["postgres"], "15.4");
    assert_eq!(v.reported_flags["powerPeg"], "false");
}

#[tokio::test]
async fn a_dependency_out_of_range_on_one_pod_of_eight_blocks_and_is_named() {
    // The managed database behind one stable pod upgraded itself overnight.
    let odd = spec(STABLE, &["postgres=16.1", "redis=7.2.1"], &[]);
    let expect = expectation(postgres_15(), FlagRules::default());
    let (_fleet, out) = run(
        151,
        &pods(4, DEPS, &[], Some(("shop-stable-3", odd))),
        &expect,
    )
    .await;
    assert!(!out.report.passed);
    assert_eq!(out.verdict(), FleetVerdict::Failed);
    assert_eq!(out.report.failing_pods, 1, "{}", out.report.summary());
    assert_eq!(
        failures(&out),
        vec![
            (
                "shop-stable-3".into(),
                ProblemKind::DependencyOutOfRange,
                Some("postgres 16.1".into()),
                Some("postgres >=15, <16".into())
            ),
            (
                "shop-stable-3".into(),
                ProblemKind::DependencyDrift,
                Some("postgres=16.1".into()),
                Some("postgres=15.4".into())
            ),
        ]
    );
    let s = out.report.summary();
    assert!(
        s.contains("shop-stable-3") && s.contains("DependencyOutOfRange"),
        "{s}"
    );
}

#[tokio::test]
async fn a_flag_differing_on_one_canary_pod_of_four_names_the_key() {
    let flags = ["powerPeg=false", "colour=blue"];
    let odd = spec(CANARY, &[], &["powerPeg=true", "colour=blue"]);
    let expect = expectation(Vec::new(), FlagRules::default());
    let (_fleet, out) = run(
        152,
        &pods(4, &[], &flags, Some(("shop-canary-3", odd))),
        &expect,
    )
    .await;
    assert!(!out.report.passed);
    assert_eq!(
        failures(&out),
        vec![(
            "shop-canary-3".into(),
            ProblemKind::FlagDrift,
            Some("powerPeg=true".into()),
            Some("powerPeg=false".into())
        )]
    );
}

#[tokio::test]
async fn a_guarded_version_rule_violated_by_one_pod_blocks_and_names_it() {
    // Eight pods, the flag on everywhere; one canary pod still runs old code. Flags agree and
    // parity passes: only the guard sees it (the version check sees it too: both are named).
    let flags = ["powerPeg=true"];
    let odd = spec("1.9.3", &[], &flags);
    let rules = FlagRules {
        guards: vec![FlagGuard {
            flag: "powerPeg".into(),
            on: "true".into(),
            min_version: "1.0.0".into(),
        }],
        ..FlagRules::default()
    };
    // The guard with the stable version as its floor passes a correct fleet...
    let expect = expectation(Vec::new(), rules.clone());
    let (_fleet, out) = run(153, &pods(4, &[], &flags, None), &expect).await;
    assert!(out.report.passed, "{}", out.report.summary());
    drop(_fleet);
    // ...and with the new version as its floor names every pod below it.
    let mut rules = rules;
    rules.guards[0].min_version = "2.0.0".into();
    let expect = FleetExpectation {
        stable_version: None,
        ..expectation(Vec::new(), rules)
    };
    let only_canary: Vec<_> = pods(4, &[], &flags, Some(("shop-canary-4", odd)))
        .into_iter()
        .filter(|p| p.1 == Track::Canary)
        .collect();
    let (_fleet, out) = run(154, &only_canary, &expect).await;
    assert!(!out.report.passed);
    let guarded: Vec<_> = failures(&out)
        .into_iter()
        .filter(|f| f.1 == ProblemKind::GuardedVersion)
        .collect();
    assert_eq!(
        guarded,
        vec![(
            "shop-canary-4".into(),
            ProblemKind::GuardedVersion,
            Some("1.9.3".into()),
            Some(">= 2.0.0".into())
        )]
    );
    assert_eq!(out.report.failing_pods, 1);
}
