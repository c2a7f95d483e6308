//! The fault matrix through whole rollouts: a real `tollgate controller` reaches the API server,
//! Prometheus and the broker through Toxiproxy, and each rollout (load over real demo-app pods,
//! a real Prometheus judging it) meets one fault in one phase: latency of 2 s and 10 s, 1 KB/s,
//! connection resets, a 60 s partition (the proxy disabled) or a half-open connection (the
//! timeout toxic), held for a while and then cleared. For the API server also a kube-apiserver
//! restart and an etcd restart mid-analysis (in `fault_matrix_smoke`, which the default peer run
//! runs too).
//!
//! For every cell: nothing but the data decides (no rollback, no block, no promotion without a
//! passing error-rate verdict on samples), the rollout is promoted once the fault clears, each
//! transition is in the status history exactly once and no Event is doubled, the status is
//! current (`observedGeneration`), and the broker holds exactly one deployment record of the
//! version (counted by a scripted broker, since pact-stub-server cannot count).
//!
//! Each row is printed as `fault-matrix | peer | fault | phase | outcome | recover-seconds`;
//! docs/reliability.md keeps the table. A separate tier (`tests/cluster/fault-matrix.sh`): the
//! rows hold faults for minutes, so the default peer run skips this module and runs
//! `fault_matrix_smoke`, one cell per peer and the restarts, instead.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate::crd::{MetricVerdict, Phase, RolloutStatus};

use crate::support::cluster::TestEnv;
use crate::support::load::Load;
use crate::support::rollout_manifest::{error_rate_evidence, NAME};
use crate::support::scenario::{Options, Scenario};
use crate::support::toxiproxy::{Proxy, Toxiproxy};

/// How long a toxic stays on: two looks of the 10 s interval.
const HOLD: Duration = Duration::from_secs(20);
/// The partition row.
const PARTITION: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    Latency2s,
    Latency10s,
    Bandwidth,
    Reset,
    Partition,
    HalfOpen,
}

impl Fault {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::Latency2s => "latency 2 s",
            Fault::Latency10s => "latency 10 s",
            Fault::Bandwidth => "bandwidth 1 KB/s",
            Fault::Reset => "connection reset",
            Fault::Partition => "partition 60 s",
            Fault::HalfOpen => "half-open (timeout toxic)",
        }
    }

    fn hold(self) -> Duration {
        if self == Fault::Partition {
            PARTITION
        } else {
            HOLD
        }
    }

    async fn inject(self, proxy: &Proxy) {
        match self {
            Fault::Latency2s => {
                proxy
                    .add("fault", "latency", json!({"latency": 2000}))
                    .await
            }
            Fault::Latency10s => {
                proxy
                    .add("fault", "latency", json!({"latency": 10_000}))
                    .await
            }
            Fault::Bandwidth => proxy.add("fault", "bandwidth", json!({"rate": 1})).await,
            Fault::Reset => {
                proxy
                    .add("fault", "reset_peer", json!({"timeout": 0}))
                    .await
            }
            Fault::HalfOpen => proxy.add("fault", "timeout", json!({"timeout": 0})).await,
            Fault::Partition => proxy.enabled(false).await,
        }
    }

    async fn clear(self, proxy: &Proxy) {
        match self {
            Fault::Partition => proxy.enabled(true).await,
            _ => proxy.remove("fault").await,
        }
    }
}

/// Where in the rollout the fault lands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum At {
    /// From the moment the new version is asked for: the contract gate meets it.
    ContractGate,
    /// Once the canary takes traffic and the analysis runs.
    MidAnalysis,
    /// From mid-analysis until the promotion is committed and the record was attempted.
    Record,
}

impl At {
    pub(crate) fn name(self) -> &'static str {
        match self {
            At::ContractGate => "ContractGate",
            At::MidAnalysis => "Analyzing",
            At::Record => "Promoting (record)",
        }
    }
}

/// What the status showed while the fault was on.
#[derive(Default, Debug)]
struct During {
    writes: usize,
    looks_with_data: i32,
    looks_without: i32,
    gate_asks: i32,
    record_failures: i32,
    phases: Vec<Phase>,
}

fn looks(s: &RolloutStatus) -> (i32, i32) {
    s.analysis
        .as_ref()
        .map_or((0, 0), |a| (a.looks - a.failed_looks, a.failed_looks))
}

fn record_failures(s: &RolloutStatus, version: &str) -> i32 {
    s.deployment_record
        .as_ref()
        .filter(|r| r.version == version && !r.recorded)
        .map_or(0, |r| r.attempts)
}

/// How far the rollout of `version` has come, in an order every transition raises.
fn progress(s: &RolloutStatus, version: &str) -> (u8, i32, bool) {
    let rank = match s.phase {
        Phase::Pending | Phase::ContractGate => 0,
        Phase::CanaryStarting | Phase::FleetCheck | Phase::SmokeCheck => 1,
        Phase::Analyzing => 2,
        Phase::Promoting => 3,
        _ if s.stable_version.as_deref() == Some(version) => 4,
        _ => 0,
    };
    let recorded = s
        .deployment_record
        .as_ref()
        .is_some_and(|r| r.version == version && r.recorded);
    (rank, looks(s).0, recorded)
}

async fn status(world: &Scenario) -> Option<(String, RolloutStatus)> {
    let r = world.api.get(NAME).await.ok()?;
    Some((
        r.metadata.resource_version.clone()?,
        r.status.unwrap_or_default(),
    ))
}

/// The rollout's resourceVersion and status, waiting (bounded) while the API server does not
/// answer the test (it may be restarting).
async fn status_now(world: &Scenario) -> (String, RolloutStatus) {
    let start = Instant::now();
    loop {
        if let Some(x) = status(world).await {
            return x;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the API server did not answer the test for 90 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Poll until `ready` holds (bounded), failing on any rollback or block of `version`.
async fn until(
    world: &Scenario,
    version: &str,
    what: &str,
    timeout: Duration,
    ready: impl Fn(&RolloutStatus) -> bool,
) -> RolloutStatus {
    let start = Instant::now();
    loop {
        if let Some((_, s)) = status(world).await {
            assert_never_decided_against(&s, version, &world.operator.log_tail());
            if ready(&s) {
                return s;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}\n{}",
            world.operator.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A fault is never evidence: no rollback, no block, no rejection of a healthy version.
fn assert_never_decided_against(s: &RolloutStatus, version: &str, log: &str) {
    assert!(
        !matches!(
            s.phase,
            Phase::RollingBack | Phase::RolledBack | Phase::Blocked
        ) && s.rejected_version.as_deref() != Some(version),
        "a fault decided against {version}: {s:#?}\n{log}"
    );
}

/// One cell: roll to `version`, put `fault` on at `at` (through `on`/`off`), hold it, clear it,
/// and check the rollout ends as the data says. Returns the printed row's outcome and recovery.
pub(crate) async fn cell<On, Off>(
    world: &Scenario,
    broker: Option<&CountingBroker>,
    version: &str,
    at: At,
    hold: Duration,
    on: On,
    off: Off,
) -> (String, f64)
where
    On: std::future::Future<Output = ()>,
    Off: std::future::Future<Output = ()>,
{
    // The analyze step (the second): the canary pods of the 50% step are up and judged.
    let analysing = |s: &RolloutStatus| {
        s.canary_version.as_deref() == Some(version)
            && s.phase == Phase::Analyzing
            && s.current_weight > 0
            && s.current_step_index == Some(1)
    };
    let (first_rv, before) = if at == At::ContractGate {
        on.await;
        let before = status_now(world).await;
        world.roll_to(version, 0.05, None).await;
        before
    } else {
        world.roll_to(version, 0.05, None).await;
        until(
            world,
            version,
            "the canary to take traffic",
            Duration::from_secs(180),
            analysing,
        )
        .await;
        let before = status_now(world).await;
        on.await;
        before
    };
    // Held; watched from the test's own (direct) connection.
    let mut during = During::default();
    let mut seen_rv = first_rv;
    let started = Instant::now();
    let mut committed_at: Option<Instant> = None;
    let last = loop {
        let (rv, s) = status_now(world).await;
        assert_never_decided_against(&s, version, &world.operator.log_tail());
        if rv != seen_rv {
            during.writes += 1;
            seen_rv = rv;
        }
        // (Until the operator sees the new version, the status is the last rollout's.)
        let previous = s.phase == Phase::Succeeded && s.stable_version.as_deref() != Some(version);
        if !previous && !during.phases.contains(&s.phase) {
            during.phases.push(s.phase);
        }
        let held = started.elapsed();
        let done = match at {
            At::Record => {
                // Until the record was tried under the fault (or went through), and `hold`
                // more so a retry meets it too.
                let tried = s
                    .deployment_record
                    .as_ref()
                    .is_some_and(|r| r.version == version && (r.attempts > 0 || r.recorded));
                if tried && committed_at.is_none() {
                    committed_at = Some(Instant::now());
                }
                assert!(
                    held < Duration::from_secs(240),
                    "no record attempt of {version}: {s:#?}\n{}",
                    world.operator.log_tail()
                );
                committed_at.is_some_and(|t| t.elapsed() >= hold)
            }
            _ => held >= hold,
        };
        if done {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    during.looks_with_data = looks(&last).0 - looks(&before).0;
    during.looks_without = looks(&last).1 - looks(&before).1;
    // The gate's progress is per version: its attempts are this version's asks.
    during.gate_asks = last.contract_gate.as_ref().map_or(0, |g| g.attempts);
    during.record_failures = record_failures(&last, version);
    off.await;
    let cleared = Instant::now();
    let at_clear = progress(&last, version);
    let finished = |s: &RolloutStatus| {
        s.stable_version.as_deref() == Some(version)
            && s.phase == Phase::Succeeded
            && (broker.is_none()
                || s.deployment_record
                    .as_ref()
                    .is_some_and(|r| r.version == version && r.recorded))
    };
    until(
        world,
        version,
        "the first progress after the fault cleared",
        Duration::from_secs(180),
        |s| progress(s, version) > at_clear || finished(s),
    )
    .await;
    // Only a rollout the fault held up has something to recover from.
    let recover = if held(at, &during, &last, version) {
        cleared.elapsed().as_secs_f64()
    } else {
        0.0
    };
    until(
        world,
        version,
        &format!("{version} promoted (and recorded) after the fault"),
        Duration::from_secs(420),
        finished,
    )
    .await;
    let end = world.api.get(NAME).await.expect("the rollout");
    let generation = end.metadata.generation;
    let end = end.status.unwrap_or_default();
    check_record_of_one_rollout(world, &end, version, generation).await;
    if let Some(broker) = broker {
        assert_eq!(
            broker.posts(version),
            1,
            "one deployment record of {version}: {:?}",
            broker.all_posts()
        );
    }
    (outcome(at, &during, &last, version), recover)
}

/// Whether the rollout was still held in the phase the fault hit when it cleared.
fn held(at: At, d: &During, last: &RolloutStatus, version: &str) -> bool {
    match at {
        At::ContractGate => matches!(last.phase, Phase::Pending | Phase::ContractGate),
        At::MidAnalysis => last.phase == Phase::Analyzing && d.looks_with_data == 0,
        At::Record => !progress(last, version).2,
    }
}

fn outcome(at: At, d: &During, last: &RolloutStatus, version: &str) -> String {
    let phases: Vec<String> = d.phases.iter().map(|p| format!("{p:?}")).collect();
    let mut parts = vec![format!(
        "{} status write(s) in {}",
        d.writes,
        phases.join("/")
    )];
    match at {
        At::ContractGate => parts.push(format!("gate asked {} time(s)", d.gate_asks)),
        At::MidAnalysis => parts.push(format!(
            "looks +{} with data, +{} without (inconclusive)",
            d.looks_with_data, d.looks_without
        )),
        At::Record => parts.push(if d.record_failures > 0 {
            format!("record failed {} time(s), retried", d.record_failures)
        } else {
            "record went through".to_string()
        }),
    }
    parts.push(
        match (at, held(at, d, last, version)) {
            (At::Record, true) => "promoted; recorded once after the fault cleared",
            (At::Record, false) => "promoted and recorded under the fault",
            (_, true) => "held; promoted after the fault cleared",
            (_, false) => "not held up (answers still came in time); promoted",
        }
        .to_string(),
    );
    parts.join("; ")
}

/// The status of a rollout that met a fault still tells one story: each transition of this
/// rollout once, the promotion on a passing verdict with samples, no Event doubled, and the
/// status about the current generation.
async fn check_record_of_one_rollout(
    world: &Scenario,
    s: &RolloutStatus,
    version: &str,
    generation: Option<i64>,
) {
    let log = world.operator.log_tail();
    assert_eq!(s.observed_generation, generation, "{s:#?}\n{log}");
    let start = s
        .history
        .iter()
        .rposition(|d| d.reason == "CanaryStarting")
        .unwrap_or_else(|| panic!("no CanaryStarting for {version}: {:#?}", s.history));
    let ours = &s.history[start..];
    let count = |reason: &str| ours.iter().filter(|d| d.reason == reason).count();
    for reason in ["CanaryStarting", "PromotionCommitted", "Promoted"] {
        assert_eq!(count(reason), 1, "{reason} of {version}: {ours:#?}");
    }
    for reason in ["AnalysisFailed", "AnalysisInconclusive", "RolledBack"] {
        assert_eq!(count(reason), 0, "{reason} of {version}: {ours:#?}");
    }
    let error_rate = error_rate_evidence(s);
    assert_eq!(error_rate.verdict, MetricVerdict::Pass, "{error_rate:?}");
    assert!(error_rate.canary_samples > 100, "{error_rate:?}");
    // Events follow the status write that records them; allow them a moment to arrive.
    let events: Api<Event> = world.ns.api();
    let start = Instant::now();
    loop {
        let items = events
            .list(&Default::default())
            .await
            .expect("events")
            .items;
        let posted = |reason: &str| -> i32 {
            items
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .filter(|e| e.note.as_deref().is_some_and(|n| n.contains(version)))
                .map(|e| e.series.as_ref().map_or(1, |x| x.count))
                .sum()
        };
        let (committed, promoted) = (posted("PromotionCommitted"), posted("Promoted"));
        assert!(
            committed <= 1 && promoted <= 1,
            "an Event of {version} doubled: {committed} PromotionCommitted, {promoted} Promoted"
        );
        if promoted == 1 || start.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) fn print_row(peer: &str, fault: &str, at: &str, outcome: &str, recover: f64) {
    println!("fault-matrix | {peer} | {fault} | {at} | {outcome} | {recover:.1}");
}

/// A scripted Pact Broker that says yes to every can-i-deploy and counts the deployment
/// records it stores (one POST per record; what is recorded is listed as currently deployed).
pub(crate) struct CountingBroker {
    url: String,
    posts: Arc<Mutex<Vec<String>>>,
}

impl CountingBroker {
    async fn start() -> CountingBroker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the broker");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let stored = posts.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_broker(socket, stored.clone()));
            }
        });
        CountingBroker { url, posts }
    }

    fn posts(&self, version: &str) -> usize {
        self.all_posts().iter().filter(|v| *v == version).count()
    }

    fn all_posts(&self) -> Vec<String> {
        self.posts.lock().unwrap().clone()
    }
}

async fn serve_broker(mut socket: tokio::net::TcpStream, posts: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head, then as much body as Content-Length says.
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let method = words.next().unwrap_or("");
    let target = words.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = match (method, segments.as_slice()) {
        ("GET", [""]) => json!({"_links": {
            "pb:pacticipant-version": {"href": "/pacticipants/{pacticipant}/versions/{version}"},
            "pb:environments": {"href": "/environments"}}}),
        ("GET", ["matrix"]) => json!({"summary": {"deployable": true,
            "reason": "All required verification results are published and successful",
            "success": 1, "failed": 0, "unknown": 0}, "matrix": []}),
        ("GET", ["pacticipants", p, "versions", v]) => json!({"_links": {"pb:record-deployment": [
            {"name": "production",
             "href": format!("/pacticipants/{p}/versions/{v}/deployed-versions/environment/e1")}]}}),
        ("POST", ["pacticipants", _, "versions", v, "deployed-versions", "environment", "e1"]) => {
            posts.lock().unwrap().push(v.to_string());
            json!({"uuid": format!("d-{v}")})
        }
        ("GET", ["environments"]) => json!({"_embedded": {"environments": [
            {"name": "production", "_links": {"self": {"href": "/environments/e1"}}}]}}),
        ("GET", ["environments", "e1"]) => json!({"_links": {
            "pb:currently-deployed-deployed-versions":
                {"href": "/environments/e1/deployed-versions/currently-deployed"}}}),
        ("GET", ["environments", "e1", "deployed-versions", "currently-deployed"]) => {
            // The last version recorded is the one deployed there now.
            let current: Vec<Value> = posts
                .lock()
                .unwrap()
                .last()
                .map(|v| json!({"_embedded": {"version": {"number": v}}}))
                .into_iter()
                .collect();
            json!({"_embedded": {"deployedVersions": current}})
        }
        _ => Value::Null,
    };
    let (status, body) = if body.is_null() {
        ("404 Not Found", "{}".to_string())
    } else {
        ("200 OK", body.to_string())
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/hal+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(answer.as_bytes()).await;
}

/// Load for the whole column (the scenario's own stops after five minutes).
/// Also gives the `analyze` step 8 minutes instead of the e2e manifest's 4: a healthy canary
/// passes long before either, but with `onInconclusive: Rollback` a 60 s fault plus its recovery
/// on a loaded machine can run into the shorter deadline, and then the deadline, not the fault,
/// decides (docs/reliability.md has such a run).
pub(crate) async fn prepare(world: &mut Scenario) {
    world._load = Some(Load::start(&world.env, &world.ns.name, NAME, 200, 1800));
    let patch = json!({"spec": {"steps": [{"setWeight": 50}, {"analyze": {"duration": "8m"}}]}});
    world
        .api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the steps");
}

/// Versions 2.0.0, 3.0.0, ... one per row.
pub(crate) fn version(i: usize) -> String {
    format!("{}.0.0", i + 2)
}

pub(crate) async fn prometheus_rows(test: &str, faults: &[Fault]) {
    let env = TestEnv::load();
    let toxi = Toxiproxy::start().await;
    let upstream = env
        .prometheus_url()
        .trim_start_matches("http://")
        .to_string();
    let proxy = toxi.proxy("prometheus", &upstream).await;
    let mut world = Scenario::start_with(
        test,
        Options {
            prometheus: Some(format!("http://{}", proxy.listen)),
            ..Options::default()
        },
    )
    .await;
    prepare(&mut world).await;
    for (i, fault) in faults.iter().enumerate() {
        let (outcome, recover) = cell(
            &world,
            None,
            &version(i),
            At::MidAnalysis,
            fault.hold(),
            fault.inject(&proxy),
            fault.clear(&proxy),
        )
        .await;
        print_row(
            "Prometheus",
            fault.name(),
            At::MidAnalysis.name(),
            &outcome,
            recover,
        );
    }
    world.end().await;
}

pub(crate) async fn api_server_rows(test: &str, faults: &[Fault]) {
    let env = TestEnv::load();
    let toxi = Toxiproxy::start().await;
    let upstream = env
        .var("TOLLGATE_APISERVER")
        .trim_start_matches("https://")
        .to_string();
    let proxy = toxi.proxy("apiserver", &upstream).await;
    let mut world = Scenario::start_with(
        test,
        Options {
            apiserver: Some(format!("https://{}", proxy.listen)),
            ..Options::default()
        },
    )
    .await;
    prepare(&mut world).await;
    for (i, fault) in faults.iter().enumerate() {
        let (outcome, recover) = cell(
            &world,
            None,
            &version(i),
            At::MidAnalysis,
            fault.hold(),
            fault.inject(&proxy),
            fault.clear(&proxy),
        )
        .await;
        print_row(
            "API server",
            fault.name(),
            At::MidAnalysis.name(),
            &outcome,
            recover,
        );
    }
    world.end().await;
}

pub(crate) async fn broker_rows(test: &str, cells: &[(Fault, At)]) {
    let broker = CountingBroker::start().await;
    let toxi = Toxiproxy::start().await;
    let upstream = broker
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = toxi.proxy("broker", &upstream).await;
    let mut world = Scenario::start_with(
        test,
        Options {
            contract_gate: Some(json!({"brokerUrl": format!("http://{}/", proxy.listen),
                "pacticipant": "demo", "environment": "production",
                "pollInterval": "3s", "unknownBudget": "3m"})),
            ..Options::default()
        },
    )
    .await;
    prepare(&mut world).await;
    // The first deployment is recorded too, a reconcile after its promotion.
    until(
        &world,
        "1.0.0",
        "1.0.0 recorded",
        Duration::from_secs(60),
        |s| {
            s.deployment_record
                .as_ref()
                .is_some_and(|r| r.version == "1.0.0" && r.recorded)
        },
    )
    .await;
    assert_eq!(broker.posts("1.0.0"), 1, "{:?}", broker.all_posts());
    for (i, (fault, at)) in cells.iter().enumerate() {
        let (outcome, recover) = cell(
            &world,
            Some(&broker),
            &version(i),
            *at,
            fault.hold(),
            fault.inject(&proxy),
            fault.clear(&proxy),
        )
        .await;
        print_row("broker", fault.name(), at.name(), &outcome, recover);
    }
    world.end().await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn prometheus_latency_and_bandwidth_mid_analysis() {
    prometheus_rows(
        "fm-prom-slow",
        &[Fault::Latency2s, Fault::Latency10s, Fault::Bandwidth],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn prometheus_resets_partition_and_half_open_mid_analysis() {
    prometheus_rows(
        "fm-prom-cut",
        &[Fault::Reset, Fault::Partition, Fault::HalfOpen],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn api_server_latency_and_bandwidth_mid_analysis() {
    api_server_rows(
        "fm-api-slow",
        &[Fault::Latency2s, Fault::Latency10s, Fault::Bandwidth],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn api_server_resets_partition_and_half_open_mid_analysis() {
    api_server_rows(
        "fm-api-cut",
        &[Fault::Reset, Fault::Partition, Fault::HalfOpen],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn broker_slow_answers_at_the_contract_gate() {
    broker_rows(
        "fm-broker-gate-slow",
        &[
            (Fault::Latency2s, At::ContractGate),
            (Fault::Latency10s, At::ContractGate),
            (Fault::Bandwidth, At::ContractGate),
        ],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn broker_cut_connections_at_the_contract_gate() {
    broker_rows(
        "fm-broker-gate-cut",
        &[
            (Fault::Reset, At::ContractGate),
            (Fault::Partition, At::ContractGate),
            (Fault::HalfOpen, At::ContractGate),
        ],
    )
    .await;
}

#[tokio::test]
#[ignore = "fault matrix tier: tests/cluster/fault-matrix.sh"]
async fn broker_faults_at_the_deployment_record() {
    broker_rows(
        "fm-broker-record",
        &[
            (Fault::Latency10s, At::Record),
            (Fault::Reset, At::Record),
            (Fault::HalfOpen, At::Record),
            (Fault::Partition, At::Record),
        ],
    )
    .await;
}
