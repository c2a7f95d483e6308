//! Smoke checks against real demo-app processes. Needs `cargo build -p demo-app`.

use std::time::Duration;

use crate::support::fleet::{Fleet, PodSpec, BLUE};
use tollgate::gates::fleet::{PodTarget, Track};
use tollgate::gates::smoke::{
    self, HttpSmokeClient, Sample, SmokeConfig, SmokeProblemKind, SmokeRequest,
};

/// Canary pods on 127.0.`octet`.1.. with the given specs.
fn start(octet: u8, specs: &[PodSpec]) -> (Fleet, Vec<PodTarget>) {
    let mut fleet = Fleet::new(octet);
    let mut targets = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let name = format!("app-canary-{}", i + 1);
        let ip = fleet.spawn(&name, u8::try_from(i + 1).unwrap(), spec);
        targets.push(PodTarget {
            track: Track::Canary,
            name,
            ip,
        });
    }
    fleet.wait_ready();
    (fleet, targets)
}

fn config(fleet: &Fleet, requests: Vec<SmokeRequest>) -> SmokeConfig {
    SmokeConfig {
        requests,
        default_port: fleet.port,
        timeout: Duration::from_secs(3),
        seed: "rollout-uid/2.0.0".into(),
        ..SmokeConfig::default()
    }
}

fn healthz_ok() -> SmokeRequest {
    SmokeRequest {
        body_contains: Some("ok".into()),
        ..SmokeRequest::get("/healthz", 200)
    }
}

#[tokio::test]
async fn smoke_requests_pass_on_healthy_pods() {
    let specs = vec![PodSpec::new("2.0.0", BLUE); 3];
    let (fleet, targets) = start(40, &specs);
    let cfg = config(
        &fleet,
        vec![
            healthz_ok(),
            SmokeRequest::get("/", 200),
            SmokeRequest::get("/no-such-page", 404),
        ],
    );
    let client = HttpSmokeClient::new(&cfg).expect("client");
    let report = smoke::run(&client, &cfg, &targets).await;
    println!("{}", report.summary());
    assert!(report.passed, "{:?}", report.failures);
    assert_eq!(report.pods_checked, 3);
    assert_eq!(report.requests_sent, 9);
}

#[tokio::test]
async fn a_failing_pod_blocks_naming_pod_and_request() {
    let mut specs = vec![PodSpec::new("2.0.0", BLUE); 3];
    specs[1] = PodSpec::new("2.0.0", BLUE).arg("--error-rate", "1");
    let (fleet, targets) = start(41, &specs);
    let cfg = config(&fleet, vec![healthz_ok(), SmokeRequest::get("/", 200)]);
    let client = HttpSmokeClient::new(&cfg).expect("client");
    let report = smoke::run(&client, &cfg, &targets).await;
    println!("{}", report.summary());
    assert!(!report.passed);
    assert_eq!(report.failures_total, 1, "{:?}", report.failures);
    let f = &report.failures[0];
    assert_eq!(f.pod, "app-canary-2");
    assert_eq!(f.request, "GET /");
    assert_eq!(f.kind, SmokeProblemKind::UnexpectedStatus);
    assert_eq!(f.reported.as_deref(), Some("500"));
}

#[tokio::test]
async fn body_mismatch_and_unreachable_pods_block() {
    let specs = vec![PodSpec::new("2.0.0", BLUE); 2];
    let (fleet, mut targets) = start(42, &specs);
    targets.push(PodTarget {
        track: Track::Canary,
        name: "app-canary-gone".into(),
        ip: fleet.ip(99),
    });
    let wrong_body = SmokeRequest {
        name: Some("version says 3.0.0".into()),
        body_contains: Some("\"3.0.0\"".into()),
        ..SmokeRequest::get("/version", 200)
    };
    let cfg = config(&fleet, vec![wrong_body]);
    let client = HttpSmokeClient::new(&cfg).expect("client");
    let report = smoke::run(&client, &cfg, &targets).await;
    let got: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.pod.as_str(), f.request.as_str(), f.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "app-canary-1",
                "version says 3.0.0",
                SmokeProblemKind::BodyMismatch
            ),
            (
                "app-canary-2",
                "version says 3.0.0",
                SmokeProblemKind::BodyMismatch
            ),
            (
                "app-canary-gone",
                "version says 3.0.0",
                SmokeProblemKind::Unreachable
            ),
        ]
    );
}

#[tokio::test]
async fn a_sample_sends_to_that_many_pods_and_no_pods_fails() {
    let specs = vec![PodSpec::new("2.0.0", BLUE); 6];
    let (fleet, targets) = start(43, &specs);
    let cfg = SmokeConfig {
        sample: Sample::Count(2),
        ..config(&fleet, vec![healthz_ok()])
    };
    let client = HttpSmokeClient::new(&cfg).expect("client");
    let report = smoke::run(&client, &cfg, &targets).await;
    assert!(report.passed, "{:?}", report.failures);
    assert_eq!(report.pods_checked, 2);
    assert_eq!(report.requests_sent, 2);

    let report = smoke::run(&client, &cfg, &[]).await;
    assert!(!report.passed);
    assert_eq!(report.failures[0].kind, SmokeProblemKind::NoPods);
}
