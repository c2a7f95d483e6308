//! Attestation without a version endpoint, from Prometheus: a real Prometheus scrapes real
//! demo-app processes, each exporting `demo_app_build_info{version="..."} 1`; the fleet check
//! reads each pod's version from that series (one instant query per pod) and judges it with the
//! same rules as an HTTP answer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::prometheus::{now_ms, DemoApp, Prometheus, TargetGroup};
use tollgate::gates::fleet::{
    check, ConfigRule, FleetExpectation, FleetVerdict, PodTarget, ProblemKind, Track,
    TrackInventory, DEFAULT_MAX_LISTED_FAILURES,
};
use tollgate::runtime::peers::build_info::{BuildInfoAttestor, BuildInfoQuery};

const NAMESPACE: &str = "fleetsrc";

/// One target group per pod, labelled with the pod's name as Kubernetes service discovery's
/// usual relabelling would (`pod`, `namespace`).
fn groups(pods: &[(String, &DemoApp)]) -> Vec<TargetGroup> {
    pods.iter()
        .map(|(name, app)| TargetGroup {
            targets: vec![app.addr.clone()],
            labels: BTreeMap::from([
                ("pod".to_string(), name.clone()),
                ("namespace".to_string(), NAMESPACE.to_string()),
            ]),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus and demo-app: run tests/run-all.sh"]
async fn one_pod_of_four_on_an_old_build_is_named_from_build_info() {
    let prom = Prometheus::start("fleet-build-info");
    let mut apps = Vec::new();
    for i in 1..=4u8 {
        let version = if i == 3 { "1.9.3" } else { "2.0.0" };
        apps.push((
            format!("shop-canary-{i}"),
            DemoApp::start(&format!("127.0.155.{i}"), version, 0.0).await,
        ));
    }
    let named: Vec<(String, &DemoApp)> = apps.iter().map(|(n, a)| (n.clone(), a)).collect();
    prom.set_targets("fleet", &groups(&named));
    prom.wait_up(&format!(r#"namespace="{NAMESPACE}""#), 4)
        .await;

    // Wait until every pod's series is in (a scrape or two after the targets are up).
    let provider = prom.provider();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = provider
            .instant_query(
                &format!(r#"count(demo_app_build_info{{namespace="{NAMESPACE}"}})"#),
                now_ms(),
            )
            .await;
        let n = a
            .ok()
            .and_then(|a| a.series.first().and_then(|s| s.points.first()).map(|p| p.1))
            .unwrap_or(0.0);
        if n >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "build_info series not in after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let query = BuildInfoQuery::new(
        "demo_app_build_info",
        "version",
        "pod",
        vec![("namespace".into(), NAMESPACE.into())],
    )
    .expect("query");
    let attestor = BuildInfoAttestor::new(Ok(prom.provider()), query);
    let targets: Vec<PodTarget> = apps
        .iter()
        .map(|(name, app)| PodTarget {
            track: Track::Canary,
            name: name.clone(),
            ip: app.addr.split(':').next().unwrap().parse().unwrap(),
        })
        .collect();
    let expect = FleetExpectation {
        canary_version: "2.0.0".into(),
        stable_version: None,
        config: ConfigRule::Standalone {
            expected_hash: None,
        },
        max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
        required_tracks: vec![Track::Canary],
        dependencies: Vec::new(),
        flags: Default::default(),
    };
    let inventory = TrackInventory {
        targets: targets.clone(),
        ..Default::default()
    };
    let out = check(&attestor, 4, &expect, inventory).await;
    println!("{}", out.report.summary());
    assert_eq!(out.verdict(), FleetVerdict::Failed);
    assert_eq!(out.report.canary.passed, 3);
    let f: Vec<_> = out
        .report
        .failures
        .iter()
        .map(|f| {
            (
                f.pod.as_str(),
                f.problem.kind,
                f.problem.reported.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        f,
        vec![("shop-canary-3", ProblemKind::VersionMismatch, Some("1.9.3"))]
    );

    // A pod Prometheus knows nothing of (yet: a new pod has no series before its first scrape)
    // is unanswered: the rollout holds, it never passes.
    let ghost = PodTarget {
        name: "shop-canary-9".into(),
        ..targets[0].clone()
    };
    let inventory = TrackInventory {
        targets: vec![targets[0].clone(), ghost],
        ..Default::default()
    };
    let out = check(&attestor, 4, &expect, inventory).await;
    assert_eq!(out.verdict(), FleetVerdict::Unanswered);
    assert_eq!(out.report.failures[0].pod, "shop-canary-9");
    assert_eq!(
        out.report.failures[0].problem.kind,
        ProblemKind::Unreachable
    );

    // Prometheus gone: every pod is unanswered (the rollout holds), none passes.
    prom.stop();
    let inventory = TrackInventory {
        targets,
        ..Default::default()
    };
    let out = check(&attestor, 4, &expect, inventory).await;
    assert_eq!(
        out.verdict(),
        FleetVerdict::Unanswered,
        "{}",
        out.report.summary()
    );
    assert_eq!(out.report.canary.passed, 0);
}
