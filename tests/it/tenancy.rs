//! A shared cluster: what a Rollout may make the operator do, with a real `tollgate controller`
//! under the chart's RBAC against the real kube-apiserver. The operator allows its tests' loopback
//! peers (127.0.0.1, see support/operator.rs); a server on another loopback address stands for a
//! tenant's own server, a Secret without the consent label for another application's password.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tollgate::crd::{GateVerdict, Phase, Reason, Rollout, RolloutStatus};

use crate::support::broker::{FaultServer, Reply};
use crate::support::cluster::TestEnv;
use crate::support::operator::Operator;
use crate::support::rollout_manifest::{template, template_with, NAME};
use crate::support::rollout_watch::wait_for;
use crate::support::scenario::Scenario;

/// The service account whose token Secret the tests create (its own, so the token controller
/// keeps the Secret rather than deleting it for a missing account).
const SERVICE_ACCOUNT: &str = "tenant-app";

const YES: &str = r#"{"summary":{"deployable":true,"reason":"All required verification results are published and successful","success":1,"failed":0,"unknown":0},"matrix":[]}"#;

/// A Rollout `name` whose contract gate asks `broker_url`, with credentials from `secret`.
fn gated(name: &str, broker_url: &str, secret: Option<&str>) -> Rollout {
    let mut gate = json!({"brokerUrl": broker_url, "pacticipant": "demo",
                          "environment": "production", "pollInterval": "5s"});
    if let Some(secret) = secret {
        gate["credentialsSecretRef"] = json!({"name": secret});
    }
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"version": "1.0.0", "replicas": 1,
                 "selector": {"matchLabels": {"app": "demo"}},
                 "template": template("1.0.0", 0.0, None),
                 "contractGate": gate,
                 "steps": [{"setWeight": 50}]}
    }))
    .expect("rollout manifest")
}

/// A TCP server on `ip` that accepts connections, counts them, and never answers.
async fn silent_server(ip: &str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{addr}"), count)
}

fn invalid_naming(field: &'static str) -> impl Fn(&RolloutStatus) -> bool {
    move |s| {
        s.reason.as_deref() == Some(Reason::InvalidSpec.as_str())
            && s.message.as_deref().is_some_and(|m| m.contains(field))
    }
}

async fn secret(api: &Api<Secret>, name: &str, labelled: bool, type_: &str, token: &str) {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": name}, "type": type_,
                       "stringData": {"token": token}});
    if labelled {
        s["metadata"]["labels"] = json!({"tollgate.dev/credentials": "true"});
    }
    if type_ == "kubernetes.io/service-account-token" {
        s["metadata"]["annotations"] =
            json!({"kubernetes.io/service-account.name": SERVICE_ACCOUNT});
    }
    let s: Secret = serde_json::from_value(s).expect("secret");
    api.create(&PostParams::default(), &s)
        .await
        .unwrap_or_else(|e| panic!("create secret {name}: {e}"));
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_rollout_cannot_send_the_operator_to_a_host_it_does_not_allow() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("tenancy-hosts").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    // A tenant's own server, on a loopback address the operator was not told to allow.
    let (own_url, connections) = silent_server("127.0.0.9").await;
    let cases = [
        ("own-server", own_url.as_str(), "is not an allowed host"),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/",
            "never allowed",
        ),
    ];
    for (name, url, why) in cases {
        api.create(&PostParams::default(), &gated(name, url, None))
            .await
            .expect("create rollout");
        let r = wait_for(
            &api,
            name,
            Duration::from_secs(60),
            "InvalidSpec naming spec.contractGate.brokerUrl",
            &operator,
            invalid_naming("spec.contractGate.brokerUrl"),
        )
        .await;
        let message = r.status.and_then(|s| s.message).unwrap_or_default();
        assert!(message.contains(why), "{name}: {message}");
    }
    // Give a wrong operator the time to have tried.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing was sent");
    operator.assert_never_forbidden();
    drop(operator);
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn only_secrets_labelled_as_credentials_are_sent() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("tenancy-secrets").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let broker = FaultServer::start(vec![Reply::json(200, YES)]).await;
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": SERVICE_ACCOUNT}})).expect("sa");
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .expect("create service account");
    secret(&secrets, "app-db", false, "Opaque", "db-password-1").await;
    secret(
        &secrets,
        "sa-token",
        true,
        "kubernetes.io/service-account-token",
        "sa-token-2",
    )
    .await;
    secret(&secrets, "broker-creds", true, "Opaque", "broker-token-3").await;
    for (name, secret, why) in [
        ("unlabelled", "app-db", "tollgate.dev/credentials"),
        ("sa", "sa-token", "service-account token"),
    ] {
        api.create(
            &PostParams::default(),
            &gated(name, &broker.base_url(), Some(secret)),
        )
        .await
        .expect("create rollout");
        let r = wait_for(
            &api,
            name,
            Duration::from_secs(60),
            "InvalidSpec naming credentialsSecretRef",
            &operator,
            invalid_naming("spec.contractGate.credentialsSecretRef"),
        )
        .await;
        let message = r.status.and_then(|s| s.message).unwrap_or_default();
        assert!(message.contains(why), "{name}: {message}");
    }
    api.create(
        &PostParams::default(),
        &gated("consented", &broker.base_url(), Some("broker-creds")),
    )
    .await
    .expect("create rollout");
    wait_for(
        &api,
        "consented",
        Duration::from_secs(60),
        "the contract gate to pass with the labelled Secret",
        &operator,
        |s| {
            s.contract_gate
                .as_ref()
                .is_some_and(|g| g.verdict == GateVerdict::Passed)
        },
    )
    .await;
    let sent = broker.requests().join("\n").to_ascii_lowercase();
    assert!(
        sent.contains("authorization: bearer broker-token-3"),
        "{sent}"
    );
    for never in ["db-password-1", "sa-token-2"] {
        assert!(!sent.contains(never), "{never} was sent:\n{sent}");
    }
    operator.assert_never_forbidden();
    drop(operator);
    ns.delete().await;
}

/// Eight Rollouts whose broker accepts connections and never answers (as many as the operator's
/// reconcile workers) do not keep a ninth Rollout's contract gate from passing within one
/// default analysis look interval (30 s) of its creation.
#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn stalled_peers_of_eight_rollouts_do_not_hold_up_a_ninth() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("tenancy-stall").await;
    let operator = Operator::start(&env, &ns.name);
    let api: Api<Rollout> = ns.api();
    let (silent, connections) = silent_server("127.0.0.1").await;
    for i in 0..8 {
        api.create(
            &PostParams::default(),
            &gated(&format!("stuck-{i}"), &silent, None),
        )
        .await
        .expect("create rollout");
    }
    // Every worker is busy with a silent broker before the healthy Rollout arrives.
    let start = Instant::now();
    while connections.load(Ordering::SeqCst) < 8 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(connections.load(Ordering::SeqCst) >= 8, "the eight asked");
    let broker = FaultServer::start(vec![Reply::json(200, YES)]).await;
    api.create(
        &PostParams::default(),
        &gated("healthy", &broker.base_url(), None),
    )
    .await
    .expect("create rollout");
    let created = Instant::now();
    wait_for(
        &api,
        "healthy",
        Duration::from_secs(120),
        "the healthy Rollout's contract gate to pass",
        &operator,
        |s| {
            s.contract_gate
                .as_ref()
                .is_some_and(|g| g.verdict == GateVerdict::Passed)
        },
    )
    .await;
    let took = created.elapsed();
    println!("healthy rollout's gate passed {took:?} after its creation, 8 stalled beside it");
    assert!(
        took < Duration::from_secs(30),
        "held up {took:?} by the stalled Rollouts\n{}",
        operator.log_tail()
    );
    drop(operator);
    ns.delete().await;
}

/// A Rollout `name` of its own app (one replica, labels `app: name`) at `version`, with an
/// analysis reading Prometheus at `prometheus`; `env` added to its pod (e.g. a hanging
/// `/version`).
fn own_app(name: &str, version: &str, prometheus: &str, env: &[(&str, &str)]) -> Rollout {
    let mut template = template_with(version, 0.0, None, env);
    template["metadata"]["labels"] = json!({"app": name});
    serde_json::from_value(json!({
        "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"version": version, "replicas": 1,
                 "selector": {"matchLabels": {"app": name}},
                 "template": template,
                 "steps": [{"setWeight": 50}, {"analyze": {"duration": "1m"}}],
                 "analysis": {"provider": {"prometheus": {"address": prometheus}},
                              "interval": "10s", "minRequests": 100,
                              "errorRate": {"passTolerance": 2.0}}}
    }))
    .expect("rollout manifest")
}

/// How long the scenario's healthy Rollout took from the patch to its promotion, and how many
/// looks its analysis needed.
struct Promotion {
    took: Duration,
    looks: u32,
}

impl Promotion {
    /// The time not explained by the looks the judge needed: scheduling, gates, traffic moves.
    /// How many looks the evidence needs depends on the data (a loaded machine's scrapes jitter,
    /// and the judge waits for more windows when counts look overdispersed), so stalls are
    /// measured net of it; a stalled worker delays the looks themselves and shows here.
    fn overhead(&self, look_interval: Duration) -> Duration {
        self.took.saturating_sub(look_interval * self.looks)
    }
}

/// Roll the scenario's healthy Rollout to `version` (a 50% step, then an analysis of up to two
/// minutes looked at every 10 s) and return how long it took from the patch to its promotion.
async fn time_to_promotion(world: &Scenario, version: &str) -> Promotion {
    let patch = json!({"spec": {"version": version,
                                "template": template(version, 0.05, None),
                                "steps": [{"setWeight": 50}, {"analyze": {"duration": "2m"}}]}});
    let started = Instant::now();
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the rollout");
    let status = world.finished(version).await;
    let took = started.elapsed();
    assert_eq!(
        status.phase,
        Phase::Succeeded,
        "{status:#?}\n{}",
        world.operator.log_tail()
    );
    let analysis = status
        .analysis
        .as_ref()
        .filter(|a| !a.metrics.is_empty())
        .unwrap_or_else(|| panic!("promoted with its analysis: {status:#?}"));
    Promotion {
        took,
        looks: u32::try_from(analysis.looks).unwrap_or(0),
    }
}

/// Eight Rollouts whose peers accept connections and never answer (as many as the operator's
/// reconcile workers: four stuck on a silent broker, two analysing against a silent Prometheus,
/// two whose pods never answer `/version`) do not delay a ninth, healthy Rollout's promotion, with
/// its analysis, by more than one look interval (plus a margin for a busy machine) against the
/// same Rollout promoted alone just before. Prints both figures.
#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn stalled_peers_of_eight_rollouts_do_not_delay_a_ninth_promotion() {
    let world = Scenario::with_stable_v1("tenancy-promote").await;
    let alone = time_to_promotion(&world, "2.0.0").await;
    println!(
        "healthy rollout alone: promoted {:?} after the patch, {} looks",
        alone.took, alone.looks
    );

    let api = &world.api;
    let (silent, connections) = silent_server("127.0.0.1").await;
    // The silent Prometheus' analyses: first deployed (no analysis on a first version), then
    // rolled, so that every look waits on it.
    for i in 0..2 {
        api.create(
            &PostParams::default(),
            &own_app(&format!("stuck-prom-{i}"), "1.0.0", &silent, &[]),
        )
        .await
        .expect("create rollout");
    }
    for i in 0..2 {
        let name = format!("stuck-prom-{i}");
        wait_for(
            api,
            &name,
            Duration::from_secs(120),
            "its first version to be stable",
            &world.operator,
            |s| s.phase == Phase::Succeeded,
        )
        .await;
        let patch = json!({"spec": {"version": "2.0.0",
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": template_with("2.0.0", 0.0, None, &[])["spec"].clone()}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("roll");
    }
    for i in 0..4 {
        api.create(
            &PostParams::default(),
            &gated(&format!("stuck-broker-{i}"), &silent, None),
        )
        .await
        .expect("create rollout");
    }
    for i in 0..2 {
        api.create(
            &PostParams::default(),
            &own_app(
                &format!("stuck-fleet-{i}"),
                "1.0.0",
                &silent,
                &[("DEMO_VERSION_FAULT", "hang")],
            ),
        )
        .await
        .expect("create rollout");
    }
    // The silent peers are being waited on before the healthy Rollout moves.
    let start = Instant::now();
    while connections.load(Ordering::SeqCst) < 6 && start.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        connections.load(Ordering::SeqCst) >= 6,
        "the stuck Rollouts asked their silent peers: {}",
        connections.load(Ordering::SeqCst)
    );
    let beside = time_to_promotion(&world, "3.0.0").await;
    let look_interval = Duration::from_secs(10);
    let margin = Duration::from_secs(10);
    let (alone_overhead, beside_overhead) = (
        alone.overhead(look_interval),
        beside.overhead(look_interval),
    );
    println!(
        "healthy rollout beside 8 stalled ones: promoted {:?} after the patch, {} looks \
         (alone: {:?}, {} looks); time beyond the looks: {beside_overhead:?} beside, \
         {alone_overhead:?} alone; bound: alone + {:?}; {} connections to the silent server",
        beside.took,
        beside.looks,
        alone.took,
        alone.looks,
        look_interval + margin,
        connections.load(Ordering::SeqCst)
    );
    assert!(
        beside_overhead <= alone_overhead + look_interval + margin,
        "held up by the stalled Rollouts: {beside_overhead:?} beyond its looks against \
         {alone_overhead:?} alone\n{}",
        world.operator.log_tail()
    );
    world.end().await;
}
