//! The fleet check against real demo-app processes, one per pod, each on its own
//! 127.0.x.y address. Needs `cargo build -p demo-app` (or TOLLGATE_DEMO_APP); fails without it.

use std::time::{Duration, Instant};

use crate::support::fleet::{Fleet, PodSpec, BLUE, BLUE_HASH, GREEN, GREEN_HASH};
use tollgate::gates::fleet::{
    check, AttestConfig, ConfigRule, FleetExpectation, FleetOutcome, HttpAttestor, PodTarget,
    ProblemKind, Track, TrackInventory, DEFAULT_MAX_LISTED_FAILURES,
};

const CANARY: &str = "2.0.0";
const STABLE: &str = "1.0.0";

fn expectation(config: ConfigRule) -> FleetExpectation {
    FleetExpectation {
        canary_version: CANARY.into(),
        stable_version: Some(STABLE.into()),
        config,
        max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
        required_tracks: vec![Track::Canary],
        dependencies: Vec::new(),
        flags: Default::default(),
    }
}

fn no_change() -> FleetExpectation {
    expectation(ConfigRule::MatchStable {
        pipeline_hash: None,
    })
}

fn attest_config(fleet: &Fleet, timeout: Duration) -> AttestConfig {
    AttestConfig {
        port: fleet.port,
        timeout,
        ..AttestConfig::default()
    }
}

/// Start `pods` (name, track, spec), wait for them, and run the check.
async fn run(
    octet: u8,
    pods: &[(String, Track, PodSpec)],
    expect: &FleetExpectation,
    timeout: Duration,
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
    let config = attest_config(&fleet, timeout);
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

/// `n` canary pods on CANARY and `n` stable pods on STABLE, all with `config`.
fn healthy(n: usize, config: &[(&str, &str)]) -> Vec<(String, Track, PodSpec)> {
    let mut pods: Vec<_> = (1..=n)
        .map(|i| {
            (
                format!("app-canary-{i}"),
                Track::Canary,
                PodSpec::new(CANARY, config),
            )
        })
        .collect();
    pods.extend((1..=n).map(|i| {
        (
            format!("app-stable-{i}"),
            Track::Stable,
            PodSpec::new(STABLE, config),
        )
    }));
    pods
}

fn failing(outcome: &FleetOutcome) -> Vec<(String, ProblemKind)> {
    outcome
        .report
        .failures
        .iter()
        .map(|f| (f.pod.clone(), f.problem.kind))
        .collect()
}

const T: Duration = Duration::from_secs(3);

#[tokio::test]
async fn all_pods_match() {
    let rule = expectation(ConfigRule::MatchStable {
        pipeline_hash: Some(BLUE_HASH.into()),
    });
    let (_fleet, out) = run(20, &healthy(4, BLUE), &rule, T).await;
    assert!(out.report.passed, "{}", out.report.summary());
    assert_eq!(out.report.canary.passed, 4);
    assert_eq!(out.report.stable.passed, 4);
    assert_eq!(out.report.stable_config_hash.as_deref(), Some(BLUE_HASH));
    assert!(out.verdicts.iter().all(|v| v.passed()));
    assert!(out
        .verdicts
        .iter()
        .all(|v| v.reported_config_hash.as_deref() == Some(BLUE_HASH)));
}

#[tokio::test]
async fn one_of_eight_on_an_old_version_blocks_and_is_named() {
    let mut pods = healthy(8, BLUE);
    pods[4].2 = PodSpec::new(STABLE, BLUE); // app-canary-5 still runs the old version
    let (_fleet, out) = run(21, &pods, &no_change(), T).await;
    let r = &out.report;
    assert!(!r.passed);
    assert_eq!(r.failing_pods, 1);
    assert_eq!(r.canary.checked, 8);
    assert_eq!(r.canary.failed, 1);
    assert_eq!(r.stable.passed, 8);
    let f = &r.failures[0];
    assert_eq!(f.pod, "app-canary-5");
    assert_eq!(f.problem.kind, ProblemKind::VersionMismatch);
    assert_eq!(f.problem.reported.as_deref(), Some(STABLE));
    assert_eq!(f.problem.expected.as_deref(), Some(CANARY));
    assert!(r.summary().contains("app-canary-5"), "{}", r.summary());
}

#[tokio::test]
async fn one_pod_with_a_drifted_config_hash_blocks() {
    let mut pods = healthy(4, BLUE);
    pods[2].2 = PodSpec::new(CANARY, GREEN); // app-canary-3 runs another configuration
    let (_fleet, out) = run(22, &pods, &no_change(), T).await;
    assert_eq!(
        failing(&out),
        vec![("app-canary-3".to_string(), ProblemKind::ConfigDrift)]
    );
    let f = &out.report.failures[0];
    assert_eq!(f.problem.reported.as_deref(), Some(GREEN_HASH));
    assert_eq!(f.problem.expected.as_deref(), Some(BLUE_HASH));
}

#[tokio::test]
async fn canary_and_stable_configs_differ_without_a_declared_change() {
    let mut pods = healthy(3, BLUE);
    for p in pods.iter_mut().filter(|p| p.1 == Track::Canary) {
        p.2 = PodSpec::new(CANARY, GREEN);
    }
    let (fleet, out) = run(23, &pods, &no_change(), T).await;
    assert!(!out.report.passed);
    assert_eq!(out.report.canary.failed, 3);
    assert_eq!(out.report.stable.failed, 0);
    for f in &out.report.failures {
        assert_eq!(f.track, Track::Canary);
        assert_eq!(f.problem.kind, ProblemKind::ConfigMismatch);
        assert_eq!(f.problem.reported.as_deref(), Some(GREEN_HASH));
        assert_eq!(f.problem.expected.as_deref(), Some(BLUE_HASH));
    }

    // The same fleet passes once the change is declared with the canary's hash.
    let declared = expectation(ConfigRule::Declared {
        expected_hash: GREEN_HASH.into(),
    });
    let attestor = HttpAttestor::new(attest_config(&fleet, T)).expect("attestor");
    let targets = out
        .verdicts
        .iter()
        .map(|v| PodTarget {
            track: v.pod.track,
            name: v.pod.name.clone(),
            ip: v.pod.ip.expect("attested pods have an IP"),
        })
        .collect();
    let again = check(
        &attestor,
        8,
        &declared,
        TrackInventory {
            targets,
            ..Default::default()
        },
    )
    .await;
    assert!(again.report.passed, "{}", again.report.summary());
}

/// One canary pod with `fault`; returns what the check said about it.
async fn one_faulty_pod(octet: u8, fault: &str, timeout: Duration) -> FleetOutcome {
    let mut pods = healthy(3, BLUE);
    pods[1].2 = PodSpec::new(CANARY, BLUE).fault(fault); // app-canary-2
    let (_fleet, out) = run(octet, &pods, &no_change(), timeout).await;
    assert!(!out.report.passed, "a pod with fault {fault} must block");
    assert_eq!(out.report.failing_pods, 1, "{:?}", out.report.failures);
    assert_eq!(out.report.failures[0].pod, "app-canary-2");
    out
}

#[tokio::test]
async fn a_pod_that_hangs_past_the_timeout_blocks() {
    let started = Instant::now();
    let out = one_faulty_pod(24, "hang", Duration::from_millis(500)).await;
    println!("check with a hanging pod took {:?}", started.elapsed());
    let f = &out.report.failures[0];
    assert_eq!(f.problem.kind, ProblemKind::Timeout);
    assert!(f.problem.detail.contains("500ms"), "{}", f.problem.detail);
}

#[tokio::test]
async fn a_pod_that_answers_500_blocks() {
    let out = one_faulty_pod(25, "status500", T).await;
    let f = &out.report.failures[0];
    assert_eq!(f.problem.kind, ProblemKind::HttpStatus);
    assert_eq!(f.problem.reported.as_deref(), Some("500"));
}

#[tokio::test]
async fn a_non_json_body_blocks() {
    let out = one_faulty_pod(26, "garbage", T).await;
    let f = &out.report.failures[0];
    assert_eq!(f.problem.kind, ProblemKind::InvalidBody);
    assert!(f.problem.reported.is_some());
}

#[tokio::test]
async fn a_missing_field_blocks() {
    let out = one_faulty_pod(27, "missing-field", T).await;
    let f = &out.report.failures[0];
    assert_eq!(f.problem.kind, ProblemKind::MissingField);
    assert!(
        f.problem.detail.contains("configHash"),
        "{}",
        f.problem.detail
    );
    // The version it did report is still shown nowhere as passing.
    assert!(!out
        .verdicts
        .iter()
        .find(|v| v.pod.name == "app-canary-2")
        .unwrap()
        .passed());
}

#[tokio::test]
async fn a_pod_that_refuses_connections_blocks() {
    let pods = healthy(2, BLUE);
    let (fleet, _) = run(28, &pods, &no_change(), T).await;
    // A ready pod on an address where nothing listens.
    let attestor = HttpAttestor::new(attest_config(&fleet, T)).expect("attestor");
    let mut targets: Vec<PodTarget> = fleet
        .pods
        .iter()
        .zip(&pods)
        .map(|(p, (name, track, _))| PodTarget {
            track: *track,
            name: name.clone(),
            ip: p.ip,
        })
        .collect();
    targets.push(PodTarget {
        track: Track::Canary,
        name: "app-canary-gone".into(),
        ip: fleet.ip(200),
    });
    let out = check(
        &attestor,
        4,
        &no_change(),
        TrackInventory {
            targets,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        failing(&out),
        vec![("app-canary-gone".to_string(), ProblemKind::Unreachable)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pods_with_bounded_concurrency() {
    let n = 200;
    let pods: Vec<_> = (1..=n)
        .map(|i| {
            (
                format!("app-canary-{i:03}"),
                Track::Canary,
                PodSpec::new(CANARY, BLUE),
            )
        })
        .collect();
    let mut fleet = Fleet::new(29);
    let spawn_started = Instant::now();
    let mut targets = Vec::new();
    for (i, (name, track, spec)) in pods.iter().enumerate() {
        let ip = fleet.spawn(name, u8::try_from(i + 1).unwrap(), spec);
        targets.push(PodTarget {
            track: *track,
            name: name.clone(),
            ip,
        });
    }
    fleet.wait_ready();
    println!(
        "started {n} demo-app processes in {:?}",
        spawn_started.elapsed()
    );

    let rule = expectation(ConfigRule::Standalone {
        expected_hash: Some(BLUE_HASH.into()),
    });
    // The default concurrency (32) first, then others for comparison. Times are reported,
    // never asserted.
    for concurrency in [32, 1, 8, 64, 200] {
        let config = AttestConfig {
            port: fleet.port,
            timeout: Duration::from_secs(5),
            concurrency,
            ..AttestConfig::default()
        };
        // A fresh client each round: no connections kept from the previous one.
        let attestor = HttpAttestor::new(config).expect("attestor");
        let started = Instant::now();
        let out = check(
            &attestor,
            concurrency,
            &rule,
            TrackInventory {
                targets: targets.clone(),
                ..Default::default()
            },
        )
        .await;
        let wall = started.elapsed();
        println!(
            "FLEET-200: attested {n} pods with concurrency {concurrency} in {wall:?} (wall time)"
        );
        assert!(out.report.passed, "{}", out.report.summary());
        assert_eq!(out.report.canary.passed, n);
    }
}
