//! End to end on the local control plane: a real `tollgate controller` process watches one test
//! namespace; kwok runs the pods, the pod runner gives each a real demo-app, Prometheus scrapes
//! them and the load generator sends traffic over the ready pods (so the replica ratio is the
//! traffic split). Each test has its own namespace and its own operator, so they run in
//! parallel.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::TestEnv;
use tollgate::crd::{MetricVerdict, Phase, Rollout};

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Move the rollout to `version` with `template`, as a pipeline would.
async fn roll(api: &Api<Rollout>, version: &str, template: serde_json::Value) {
    let patch = json!({"spec": {"version": version, "template": template}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the rollout");
}

/// The operator, killed when the test ends (also when it fails).
struct Operator {
    child: Child,
    log: std::path::PathBuf,
    admin: String,
}

impl Operator {
    fn start(env: &TestEnv, namespace: &str) -> Operator {
        Operator::start_with(env, namespace, "operator", &[])
    }

    fn start_with(env: &TestEnv, namespace: &str, identity: &str, extra: &[&str]) -> Operator {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("tollgate-{identity}-{namespace}.log"));
        let file = std::fs::File::create(&log).expect("operator log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "controller",
                "--namespace",
                namespace,
                "--identity",
                identity,
                "--admin-addr",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(env.kubeconfig())
            .args(extra)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start tollgate controller");
        Operator {
            child,
            log,
            admin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// What `/readyz` says (None while the admin server does not answer).
    async fn readyz(&self) -> Option<String> {
        let response = support::http()
            .get(format!("{}/readyz", self.admin))
            .send()
            .await
            .ok()?;
        response.text().await.ok()
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

fn template(version: &str, error_rate: f64, config: Option<&str>) -> serde_json::Value {
    template_with(version, error_rate, config, &[])
}

fn template_with(
    version: &str,
    error_rate: f64,
    config: Option<&str>,
    extra_env: &[(&str, &str)],
) -> serde_json::Value {
    let mut env = vec![
        json!({"name": "DEMO_VERSION", "value": version}),
        json!({"name": "DEMO_ERROR_RATE", "value": error_rate.to_string()}),
        // A 20 ms median puts p99 among the finer histogram buckets (40-75 ms).
        json!({"name": "DEMO_LATENCY_MS", "value": "20"}),
    ];
    for (name, value) in extra_env {
        env.push(json!({"name": name, "value": value}));
    }
    if let Some(config) = config {
        env.push(json!({"name": "DEMO_CONFIG", "value": config}));
    }
    json!({
        "metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{
            "name": "app",
            "image": format!("demo:{version}"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": env
        }]}
    })
}

fn rollout(name: &str, prometheus: &str, latency: bool) -> Rollout {
    let mut value = json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "version": "1.0.0",
            "replicas": 4,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": template("1.0.0", 0.05, None),
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
    });
    if latency {
        value["spec"]["analysis"]["latency"] = json!({"quantiles": [{"quantile": 0.99, "passTolerance": 2.0}], "wholeDistribution": true});
    }
    serde_json::from_value(value).expect("rollout manifest")
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

/// One test's world: a namespace, an operator watching it, and a Rollout `demo` whose 1.0.0 is
/// stable, with load running over its pods.
struct Scenario {
    env: TestEnv,
    ns: support::TestNamespace,
    operator: Operator,
    api: Api<Rollout>,
    _load: Option<Load>,
}

const NAME: &str = "demo";

impl Scenario {
    async fn with_stable_v1(test: &str) -> Scenario {
        Scenario::start(test, false).await
    }

    async fn start(test: &str, latency: bool) -> Scenario {
        let env = TestEnv::load();
        env.install_crds().await;
        let ns = env.namespace(test).await;
        let operator = Operator::start(&env, &ns.name);
        let api: Api<Rollout> = ns.api();
        api.create(
            &PostParams::default(),
            &rollout(NAME, env.prometheus_url(), latency),
        )
        .await
        .expect("create rollout");
        let first = wait_for(
            &api,
            NAME,
            Duration::from_secs(90),
            "1.0.0 to become stable",
            &operator,
            |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("1.0.0"),
        )
        .await;
        let fleet = first.status.and_then(|s| s.fleet);
        assert_eq!(
            fleet.map(|f| f.pods_checked),
            Some(4),
            "the first deployment was attested"
        );
        let load = Load::start(&env, &ns.name, NAME, 200, 300);
        Scenario {
            env,
            ns,
            operator,
            api,
            _load: Some(load),
        }
    }

    async fn roll_to(&self, version: &str, error_rate: f64, config: Option<&str>) {
        self.roll_to_template(version, template(version, error_rate, config))
            .await
    }

    async fn roll_to_template(&self, version: &str, template: serde_json::Value) {
        roll(&self.api, version, template).await
    }

    async fn wait(
        &self,
        what: &str,
        done: impl Fn(&tollgate::crd::RolloutStatus) -> bool,
    ) -> Rollout {
        wait_for(
            &self.api,
            NAME,
            Duration::from_secs(240),
            what,
            &self.operator,
            done,
        )
        .await
    }

    /// Wait until the rollout of `version` has ended (promoted, rolled back or blocked).
    async fn finished(&self, version: &str) -> tollgate::crd::RolloutStatus {
        let r = self
            .wait(&format!("the {version} rollout to finish"), |s| {
                s.canary_version.is_none()
                    && matches!(
                        s.phase,
                        Phase::Succeeded | Phase::RolledBack | Phase::Blocked
                    )
                    && (s.stable_version.as_deref() == Some(version)
                        || s.rejected_version.as_deref() == Some(version))
            })
            .await;
        r.status.unwrap_or_default()
    }

    /// Kill the operator with SIGKILL (no shutdown at all) and start a fresh one.
    fn kill_and_restart_operator(&mut self) {
        let _ = self.operator.child.kill(); // SIGKILL on Unix
        let _ = self.operator.child.wait();
        self.operator = Operator::start(&self.env, &self.ns.name);
    }

    async fn end(self) {
        let _ = &self.env;
        drop(self.operator);
        self.ns.delete().await;
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_healthy_canary_is_promoted_through_every_step() {
    let world = Scenario::with_stable_v1("e2e-promote").await;
    world.roll_to("2.0.0", 0.05, None).await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
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
        error_rate.upper.is_some_and(|u| u <= 2.0) && error_rate.verdict == MetricVerdict::Pass,
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
    let world = Scenario::with_stable_v1("e2e-rollback").await;
    world.roll_to("2.0.0", 0.15, None).await;
    let status = world.finished("2.0.0").await;
    let deployments: Api<Deployment> = world.ns.api();
    let canary = deployments.get_opt("demo-canary").await.ok().flatten();
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(status.rejected_version.as_deref(), Some("2.0.0"));
    assert_eq!(status.current_weight, 0);
    let replicas = canary.and_then(|d| d.spec).and_then(|s| s.replicas);
    assert_eq!(replicas, Some(0), "the canary is scaled to zero");
    let analysis = status.analysis.expect("analysis evidence kept");
    let error_rate = analysis
        .metrics
        .iter()
        .find(|m| m.name == "errorRate")
        .expect("errorRate evidence");
    assert_eq!(error_rate.verdict, MetricVerdict::Fail, "{error_rate:?}");
    assert!(error_rate.lower.is_some_and(|l| l > 1.0), "{error_rate:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn config_drift_blocks_before_any_traffic_moves() {
    let world = Scenario::with_stable_v1("e2e-drift").await;
    // 2.0.0 runs another configuration than stable and no change is declared.
    world.roll_to("2.0.0", 0.05, Some("feature=on")).await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Blocked, "{status:#?}\n{log}");
    assert_eq!(status.reason.as_deref(), Some("FleetCheckFailed"));
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    assert!(
        status.analysis.is_none(),
        "no analysis started: the canary never took traffic"
    );
    let fleet = status.fleet.expect("fleet evidence");
    assert!(fleet.pods_failing >= 1, "{fleet:?}");
    assert!(
        fleet
            .failing_pods
            .iter()
            .any(|p| p.problem == "ConfigMismatch" && p.pod.starts_with("demo-canary")),
        "the drifted canary pods are named: {fleet:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_new_version_mid_analysis_supersedes_the_canary_and_starts_over() {
    let world = Scenario::with_stable_v1("e2e-supersede").await;
    world.roll_to("2.0.0", 0.05, None).await;
    world
        .wait("2.0.0 to take traffic", |s| {
            s.phase == Phase::Analyzing && s.current_weight > 0
        })
        .await;
    world.roll_to("3.0.0", 0.05, None).await;
    let status = world.finished("3.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("3.0.0"));
    let reasons: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons.contains(&"Superseded"), "{reasons:?}");
    assert!(
        !status
            .history
            .iter()
            .any(|d| d.message.contains("2.0.0 is now the stable")),
        "2.0.0 was never promoted"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_operator_killed_mid_rollout_resumes_to_the_same_outcome() {
    let mut world = Scenario::with_stable_v1("e2e-restart").await;
    world.roll_to("2.0.0", 0.05, None).await;
    world
        .wait("2.0.0 to take traffic", |s| {
            s.phase == Phase::Analyzing && s.current_weight > 0
        })
        .await;
    world.kill_and_restart_operator();
    world
        .wait("the promotion to start", |s| {
            matches!(s.phase, Phase::Promoting | Phase::Succeeded)
        })
        .await;
    world.kill_and_restart_operator();
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:#?}\n{log}");
    assert_eq!(status.stable_version.as_deref(), Some("2.0.0"));
    let count = |reason: &str| status.history.iter().filter(|d| d.reason == reason).count();
    assert_eq!(
        count("PromotionCommitted"),
        1,
        "promoted exactly once: {:#?}",
        status.history
    );
    assert_eq!(
        count("CanaryStarting"),
        1,
        "the canary was not restarted: {:#?}",
        status.history
    );
    let analysis = status
        .analysis
        .expect("analysis evidence kept across restarts");
    assert!(
        analysis.looks >= 3,
        "the judge's state survived the restarts: {analysis:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_latency_regression_is_rolled_back() {
    let world = Scenario::start("e2e-latency", true).await;
    // Every quantile of 2.0.0's latency is 1.5 times 1.0.0's (p99 +50%); errors are unchanged.
    let slow = [
        ("DEMO_LATENCY_MODE", "proportional"),
        ("DEMO_ADDED_LATENCY_MS", "10"),
    ];
    world
        .roll_to_template("2.0.0", template_with("2.0.0", 0.05, None, &slow))
        .await;
    let status = world.finished("2.0.0").await;
    let log = world.operator.log_tail();
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}\n{log}");
    assert_eq!(
        status.reason.as_deref(),
        Some("AnalysisFailed"),
        "{status:#?}"
    );
    assert_eq!(status.stable_version.as_deref(), Some("1.0.0"));
    let analysis = status.analysis.expect("analysis evidence kept");
    let failed: Vec<&str> = analysis
        .metrics
        .iter()
        .filter(|m| m.verdict == MetricVerdict::Fail)
        .map(|m| m.name.as_str())
        .collect();
    assert!(
        failed.iter().any(|n| n.starts_with("latency")),
        "a latency metric failed: {:#?}",
        analysis.metrics
    );
    assert!(
        !failed.contains(&"errorRate"),
        "errors did not change: {:#?}",
        analysis.metrics
    );
}

/// pact-stub-server serving tollgate's own consumer contract (tests/pacts/), on loopback.
struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    async fn start() -> Broker {
        let port = free_port();
        let root = env!("CARGO_MANIFEST_DIR");
        let child = Command::new("bash")
            .arg(format!("{root}/tests/cluster/pact-stub.sh"))
            .args(["start", &port.to_string()])
            .arg(format!("{root}/tests/pacts/tollgate-Pact Broker.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pact-stub.sh");
        let url = format!("http://127.0.0.1:{port}");
        let broker = Broker { child, url };
        let start = std::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "pact-stub-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SIGTERM lets the script stop the stub and its loopback bridge.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_contract_gate_passes_records_blocks_and_polls() {
    let env = TestEnv::load();
    env.install_crds().await;
    let broker = Broker::start().await;
    let ns = env.namespace("e2e-contract").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    // Our own contract: Foo 1.2.3 may go to production, 1.2.4 may not, 1.2.5 is not verified.
    let mut manifest = serde_json::to_value(rollout(NAME, env.prometheus_url(), false)).unwrap();
    manifest["spec"]["version"] = json!("1.2.3");
    manifest["spec"]["template"] = template("1.2.3", 0.05, None);
    manifest["spec"]["contractGate"] = json!({"brokerUrl": broker.url, "pacticipant": "Foo",
        "environment": "production", "pollInterval": "3s", "unknownBudget": "12s"});
    let manifest: Rollout = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &manifest)
        .await
        .expect("create rollout");

    // Deployable: the first version becomes stable and is recorded in the broker.
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(90),
        "1.2.3 recorded",
        &operator,
        |s| s.phase == Phase::Succeeded && s.deployment_record.as_ref().is_some_and(|d| d.recorded),
    )
    .await;
    let status = r.status.unwrap_or_default();
    let gate = status.contract_gate.clone().expect("contract evidence");
    assert_eq!(
        (gate.verdict, gate.deployable),
        (tollgate::crd::GateVerdict::Passed, Some(true))
    );
    assert_eq!(
        status
            .deployment_record
            .as_ref()
            .map(|d| d.version.as_str()),
        Some("1.2.3")
    );

    // Not deployable: blocked before any canary pod starts.
    roll(&api, "1.2.4", template("1.2.4", 0.05, None)).await;
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(60),
        "1.2.4 blocked",
        &operator,
        |s| s.phase == Phase::Blocked && s.rejected_version.as_deref() == Some("1.2.4"),
    )
    .await;
    let status = r.status.unwrap_or_default();
    assert_eq!(
        status.reason.as_deref(),
        Some("NotDeployable"),
        "{status:#?}"
    );
    assert_eq!(
        status.contract_gate.as_ref().and_then(|g| g.deployable),
        Some(false)
    );
    let deployments: Api<Deployment> = ns.api();
    assert!(
        deployments.get_opt("demo-canary").await.unwrap().is_none(),
        "no canary was ever created"
    );

    // Unknown: asked again every pollInterval, then blocked when the budget is spent.
    roll(&api, "1.2.5", template("1.2.5", 0.05, None)).await;
    let r = wait_for(
        &api,
        NAME,
        Duration::from_secs(60),
        "1.2.5 blocked as unknown",
        &operator,
        |s| s.phase == Phase::Blocked && s.rejected_version.as_deref() == Some("1.2.5"),
    )
    .await;
    let status = r.status.unwrap_or_default();
    let log = operator.log_tail();
    drop(operator);
    drop(broker);
    ns.delete().await;
    assert_eq!(
        status.reason.as_deref(),
        Some("ContractUnknown"),
        "{status:#?}\n{log}"
    );
    let gate = status.contract_gate.expect("contract evidence");
    assert!(gate.attempts >= 3, "polled within the budget: {gate:?}");
    assert_eq!(
        status.stable_version.as_deref(),
        Some("1.2.3"),
        "stable untouched throughout"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_standby_takes_over_when_the_leader_dies() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("e2e-leader").await;
    let election = [
        "--leader-elect",
        "--lease-namespace",
        &ns.name,
        "--lease-duration",
        "6s",
        "--lease-renew-grace",
        "2s",
    ];
    let a = Operator::start_with(&env, &ns.name, "replica-a", &election);
    let b = Operator::start_with(&env, &ns.name, "replica-b", &election);
    // Exactly one replica leads; the other waits.
    let start = std::time::Instant::now();
    let (leader, standby) = loop {
        let (ra, rb) = (
            a.readyz().await.unwrap_or_default(),
            b.readyz().await.unwrap_or_default(),
        );
        if ra.contains("leading") && rb.contains("standby") {
            break (a, b);
        }
        if rb.contains("leading") && ra.contains("standby") {
            break (b, a);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no single leader: a={ra:?} b={rb:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let api: Api<Rollout> = ns.api();
    api.create(
        &PostParams::default(),
        &rollout(NAME, env.prometheus_url(), false),
    )
    .await
    .unwrap();
    wait_for(
        &api,
        NAME,
        Duration::from_secs(90),
        "1.0.0 stable",
        &leader,
        |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("1.0.0"),
    )
    .await;

    // The leader dies without a word (SIGKILL: the lease is not released).
    let mut leader = leader;
    let _ = leader.child.kill();
    let _ = leader.child.wait();
    let killed_at = std::time::Instant::now();
    roll(&api, "2.0.0", template("2.0.0", 0.05, None)).await;
    let _load = Load::start(&env, &ns.name, NAME, 200, 300);
    let start = std::time::Instant::now();
    while !standby
        .readyz()
        .await
        .unwrap_or_default()
        .contains("leading")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the standby never took over:\n{}",
            standby.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let takeover = killed_at.elapsed();
    let done = wait_for(
        &api,
        NAME,
        Duration::from_secs(240),
        "2.0.0 promoted by the new leader",
        &standby,
        |s| s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("2.0.0"),
    )
    .await;
    println!("takeover after {takeover:?}");
    // Events say who wrote: before the kill only the old leader, after it only the new one.
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let events = events.list(&Default::default()).await.unwrap().items;
    let reporters = |reason: &str, about: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.note.as_deref().is_some_and(|n| n.contains(about)))
            .filter_map(|e| e.reporting_instance.clone())
            .collect()
    };
    let old = leader
        .log
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let new_instance = if old.contains("replica-a") {
        "replica-b"
    } else {
        "replica-a"
    };
    drop(standby);
    ns.delete().await;
    assert!(
        takeover < Duration::from_secs(6 + 10),
        "took over within the lease time (+ a renew cycle): {takeover:?}"
    );
    assert_eq!(
        done.status.as_ref().map(|s| s.phase),
        Some(Phase::Succeeded)
    );
    for reason in ["CanaryStarting", "PromotionCommitted", "Promoted"] {
        let by = reporters(reason, "2.0.0");
        assert!(!by.is_empty(), "no {reason} event");
        assert!(
            by.iter().all(|r| r == new_instance),
            "{reason} written by {by:?}, not only by {new_instance}"
        );
    }
    let first = reporters("InitialDeployment", "1.0.0");
    assert!(
        !first.is_empty() && first.iter().all(|r| r != new_instance),
        "the standby wrote while standing by: {first:?}"
    );
}
