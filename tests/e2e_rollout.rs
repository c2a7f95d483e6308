//! End to end on the local control plane: a real `tollgate controller` process watches one test
//! namespace; kwok runs the pods, the pod runner gives each a real demo-app, Prometheus scrapes
//! them and the load generator sends traffic over the ready pods (so the replica ratio is the
//! traffic split). Each test has its own namespace and its own operator, so they run in
//! parallel.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::TestEnv;
use tollgate::crd::{Phase, Rollout};

/// The operator, killed when the test ends (also when it fails).
struct Operator {
    child: Child,
    log: std::path::PathBuf,
}

impl Operator {
    fn start(env: &TestEnv, namespace: &str) -> Operator {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::env::temp_dir().join(format!("tollgate-operator-{namespace}.log"));
        let file = std::fs::File::create(&log).expect("operator log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["controller", "--namespace", namespace, "--admin-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(env.kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start tollgate controller");
        Operator { child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Load over every ready pod of the rollout until dropped.
struct Load(Child);

impl Load {
    fn start(env: &TestEnv, namespace: &str, rollout: &str, rate: u32, seconds: u32) -> Load {
        let child = Command::new(env.bin("LOAD_GEN_BIN"))
            .args(["--namespace", namespace, "--selector"])
            .arg(format!("tollgate.dev/rollout={rollout}"))
            .args([
                "--rate",
                &rate.to_string(),
                "--duration-secs",
                &seconds.to_string(),
            ])
            .env("KUBECONFIG", env.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start load-gen");
        Load(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn template(version: &str, error_rate: f64) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{
            "name": "app",
            "image": format!("demo:{version}"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [
                {"name": "DEMO_VERSION", "value": version},
                {"name": "DEMO_ERROR_RATE", "value": error_rate.to_string()}
            ]
        }]}
    })
}

fn rollout(name: &str, prometheus: &str) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "version": "1.0.0",
            "replicas": 4,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": template("1.0.0", 0.05),
            "steps": [{"setWeight": 50}, {"analyze": {"duration": "4m"}}],
            "progressDeadline": "2m",
            "analysis": {
                "provider": {"prometheus": {"address": prometheus}},
                "interval": "10s",
                "minRequests": 100,
                "errorRate": {"passTolerance": 2.0},
                "onInconclusive": "Rollback"
            }
        }
    }))
    .expect("rollout manifest")
}

/// Poll the rollout until `done` holds; on timeout fail with its status and the operator's log.
async fn wait_for(
    api: &Api<Rollout>,
    name: &str,
    timeout: Duration,
    what: &str,
    operator: &Operator,
    done: impl Fn(&tollgate::crd::RolloutStatus) -> bool,
) -> Rollout {
    let start = std::time::Instant::now();
    let mut last = None;
    loop {
        if let Ok(r) = api.get(name).await {
            if r.status.as_ref().is_some_and(&done) {
                return r;
            }
            last = Some(r);
        }
        if start.elapsed() > timeout {
            let status = last.and_then(|r| r.status);
            panic!(
                "timed out after {timeout:?} waiting for {what}\nstatus: {status:#?}\noperator log:\n{}",
                operator.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deploy 1.0.0, wait until it is stable, then roll out 2.0.0 with `error_rate`, under load.
/// Returns the final Rollout.
async fn roll_out_v2(test: &str, error_rate: f64) -> (Rollout, String) {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace(test).await;
    let namespace = ns.name.clone();
    let operator = Operator::start(&env, &namespace);
    let api: Api<Rollout> = ns.api();
    let name = "demo";

    api.create(&PostParams::default(), &rollout(name, env.prometheus_url()))
        .await
        .expect("create rollout");
    let first = wait_for(
        &api,
        name,
        Duration::from_secs(90),
        "1.0.0 to become stable",
        &operator,
        |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("1.0.0"),
    )
    .await;
    let status = first.status.clone().unwrap_or_default();
    assert_eq!(
        status.fleet.as_ref().map(|f| f.pods_checked),
        Some(4),
        "{status:?}"
    );

    let _load = Load::start(&env, &namespace, name, 200, 300);
    let patch = json!({"spec": {"version": "2.0.0", "template": template("2.0.0", error_rate)}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch to 2.0.0");

    let done = wait_for(
        &api,
        name,
        Duration::from_secs(240),
        "the 2.0.0 rollout to finish",
        &operator,
        |s| {
            s.canary_version.is_none()
                && matches!(
                    s.phase,
                    Phase::Succeeded | Phase::RolledBack | Phase::Blocked
                )
                && s.history.iter().any(|d| d.message.contains("2.0.0"))
        },
    )
    .await;
    let log = operator.log_tail();
    drop(operator);
    ns.delete().await;
    (done, log)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_healthy_canary_is_promoted_through_every_step() {
    let (rollout, log) = roll_out_v2("e2e-promote", 0.05).await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    let reasons: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    for expected in [
        "CanaryStarting",
        "StepStarted",
        "StepsCompleted",
        "Promoted",
    ] {
        assert!(reasons.contains(&expected), "no {expected} in {reasons:?}");
    }
    let analysis = status.analysis.expect("analysis evidence kept");
    let error_rate = analysis
        .metrics
        .iter()
        .find(|m| m.name == "errorRate")
        .expect("errorRate evidence");
    assert!(
        error_rate.canary_samples > 100 && error_rate.baseline_samples > 100,
        "{error_rate:?}"
    );
    assert!(
        error_rate.upper.is_some_and(|u| u <= 2.0)
            && error_rate.verdict == tollgate::crd::MetricVerdict::Pass,
        "promotion rests on an upper bound at or below passTolerance: {error_rate:?}"
    );
    let fleet = status.fleet.expect("fleet evidence");
    assert_eq!(
        (fleet.pods_checked, fleet.pods_failing),
        (4, 0),
        "the promoted fleet was verified"
    );
    for c in &status.conditions {
        let want = if c.type_ == "Ready" { "True" } else { "False" };
        assert_eq!(c.status, want, "{c:?}");
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_error_rate_regression_is_rolled_back_and_traffic_returns_to_stable() {
    let (rollout, log) = roll_out_v2("e2e-rollback", 0.15).await;
    let status = rollout.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0"));
    assert_eq!(status.current_weight, 0);
    let analysis = status.analysis.expect("analysis evidence kept");
    let error_rate = analysis
        .metrics
        .iter()
        .find(|m| m.name == "errorRate")
        .expect("errorRate evidence");
    assert_eq!(
        error_rate.verdict,
        tollgate::crd::MetricVerdict::Fail,
        "{error_rate:?}"
    );
    assert!(error_rate.lower.is_some_and(|l| l > 1.0), "{error_rate:?}");
}
