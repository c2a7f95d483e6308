//! Acceptance of the local control plane and its real peers:
//! * a Deployment gets kwok pods, Running with loopback IPs, on which real demo-app processes
//!   answer /version with the pod spec's version;
//! * Prometheus discovers them (kubernetes_sd_configs) with `up == 1`, and the request counter
//!   rises by exactly what the load generator sent;
//! * the CRD applies, every example passes a server-side dry-run, and invalid Rollouts are
//!   rejected with a message naming the field.
//!
//! All need the cluster: `bash tests/cluster/run-peer-tests.sh` (see tests/it/support/cluster.rs).

use std::time::{Duration, Instant};

use crate::support::cluster::{TestEnv, TestNamespace};
use crate::support::cluster_prometheus::prom_query;
use crate::support::http::http;
use crate::support::load::run_load_gen;
use crate::support::wait::wait_until;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

fn deployment(
    name: &str,
    replicas: i32,
    version: &str,
    track: &str,
    extra_env: Value,
) -> Deployment {
    let mut env = vec![
        json!({"name": "DEMO_VERSION", "value": version}),
        json!({"name": "DEMO_CONFIG", "value": "feature.x=on,pool=8"}),
    ];
    env.extend(extra_env.as_array().cloned().unwrap_or_default());
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name, "track": track}},
            "template": {
                "metadata": {"labels": {"app": name, "track": track,
                                        "app.kubernetes.io/managed-by": "tollgate"}},
                "spec": {"containers": [{
                    "name": "app", "image": format!("demo-app:{version}"),
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": env
                }]}
            }
        }
    }))
    .expect("deployment object")
}

/// `printf 'feature.x=on\npool=8\n' | sha256sum`
const CONFIG_HASH: &str = "f716e18fdd00c8ed803b818a481dd21688d1c35652b1e026e74b287d6170cdc7";

/// Waits until `n` pods of `app` are Running with an IP, returns their IPs.
async fn running_ips(ns: &TestNamespace, app: &str, n: usize) -> Vec<String> {
    wait_until(
        Duration::from_secs(60),
        &format!("{n} Running pods of {app}"),
        || async {
            let pods = ns.pods(&format!("app={app}")).await;
            let ips: Vec<String> = pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| {
                    let s = p.status.as_ref()?;
                    (s.phase.as_deref() == Some("Running")).then_some(())?;
                    s.pod_ip.clone().filter(|ip| !ip.is_empty())
                })
                .collect();
            (ips.len() == n && pods.len() == n).then_some(ips)
        },
    )
    .await
}

async fn version_of(ip: &str) -> Option<Value> {
    let resp = http()
        .get(format!("http://{ip}:8080/version"))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn deployment_pods_are_real_demo_apps_on_loopback_ips() {
    let env = TestEnv::load();
    let ns = env.namespace("pods-answer").await;
    let deployments = ns.api::<Deployment>();
    deployments
        .create(
            &PostParams::default(),
            &deployment("shop", 3, "1.4.0", "stable", json!([])),
        )
        .await
        .expect("create deployment");

    let ips = running_ips(&ns, "shop", 3).await;
    let cidr = env.pod_cidr().to_string();
    let prefix = cidr
        .rsplit_once('.')
        .map(|(p, _)| format!("{p}."))
        .unwrap_or_default();
    for ip in &ips {
        assert!(
            ip.starts_with("127."),
            "pod IP {ip} is not a loopback address"
        );
        assert!(
            ip.starts_with(&prefix),
            "pod IP {ip} is outside the pod CIDR {cidr}"
        );
    }
    let expected_hash = CONFIG_HASH;
    for ip in &ips {
        let v = wait_until(
            Duration::from_secs(20),
            &format!("demo-app on {ip}"),
            || version_of(ip),
        )
        .await;
        assert_eq!(v["version"], "1.4.0", "pod {ip}: {v}");
        assert_eq!(v["configHash"], expected_hash, "pod {ip}: {v}");
    }

    // A new version rolls out: every pod ends up answering with it, old processes are gone.
    deployments
        .patch(
            "shop",
            &PatchParams::apply("tollgate-tests").force(),
            &Patch::Apply(&deployment("shop", 3, "1.5.0", "stable", json!([]))),
        )
        .await
        .expect("update deployment");
    let new_ips = wait_until(Duration::from_secs(90), "all pods on 1.5.0", || async {
        let ips = running_ips(&ns, "shop", 3).await;
        for ip in &ips {
            let v = version_of(ip).await?;
            (v["version"] == "1.5.0").then_some(())?;
        }
        Some(ips)
    })
    .await;
    for ip in ips.iter().filter(|ip| !new_ips.contains(ip)) {
        let gone = wait_until(
            Duration::from_secs(20),
            &format!("old process on {ip} gone"),
            || async { version_of(ip).await.is_none().then_some(()) },
        )
        .await;
        let _: () = gone;
    }
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn prometheus_scrapes_pods_and_counts_what_load_gen_sent() {
    let env = TestEnv::load();
    let prom = env.prometheus_url().to_string();
    let ns = env.namespace("prom-load").await;
    let deployments = ns.api::<Deployment>();
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "2.0.0", "stable", json!([])),
        )
        .await
        .expect("create stable");
    deployments
        .create(
            &PostParams::default(),
            &deployment(
                "web-canary",
                1,
                "2.1.0",
                "canary",
                json!([
                    {"name": "DEMO_ERROR_RATE", "value": "0.2"}
                ]),
            ),
        )
        .await
        .expect("create canary");
    running_ips(&ns, "web", 2).await;
    running_ips(&ns, "web-canary", 1).await;

    // Discovery through the apiserver: three targets of this namespace, all up, labelled.
    let up_query = format!("up{{namespace=\"{}\"}}", ns.name);
    let t0 = Instant::now();
    let up = wait_until(
        Duration::from_secs(60),
        "3 pods up in Prometheus",
        || async {
            let r = prom_query(&prom, &up_query).await?;
            (r.len() == 3 && r.iter().all(|(_, v)| *v == 1.0)).then_some(r)
        },
    )
    .await;
    eprintln!("all targets up after {:.1}s", t0.elapsed().as_secs_f64());
    let mut tracks: Vec<&str> = up.iter().map(|(l, _)| l["track"].as_str()).collect();
    tracks.sort();
    assert_eq!(tracks, ["canary", "stable", "stable"]);
    assert!(up
        .iter()
        .all(|(l, _)| l.contains_key("pod") && l["namespace"] == ns.name));

    // Load: 4 s at 60 req/s over the three ready pods (selector of this namespace).
    let report = run_load_gen(
        &env,
        &[
            "--namespace",
            &ns.name,
            "--selector",
            "app.kubernetes.io/managed-by=tollgate",
            "--rate",
            "60",
            "--duration-secs",
            "4",
        ],
    );
    let sent = report["sent"].as_u64().expect("sent");
    assert!(sent >= 200, "load-gen sent only {sent}: {report}");
    assert_eq!(report["errors"], 0, "transport errors: {report}");
    let per_pod: Vec<u64> = report["targets"]
        .as_object()
        .expect("targets")
        .values()
        .map(|t| t["sent"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(per_pod.len(), 3, "{report}");
    let (lo, hi) = (
        per_pod.iter().min().copied().unwrap_or(0),
        per_pod.iter().max().copied().unwrap_or(0),
    );
    assert!(hi - lo <= 1, "round-robin spread is uneven: {per_pod:?}");
    let canary_failed = report["groups"]["canary"]["failed"].as_u64().unwrap_or(0);
    assert!(
        canary_failed > 0,
        "20% error rate on the canary showed no failures: {report}"
    );

    // The counter rises by exactly what was sent, visible within one scrape interval (+ slack
    // for the scrape itself). Counters start at the first request, so the baseline is 0.
    let ended = Instant::now();
    let sum_query = format!("sum(http_requests_total{{namespace=\"{}\"}})", ns.name);
    let limit = env.scrape_interval() * 2 + Duration::from_secs(2);
    let seen = wait_until(
        limit,
        &format!("Prometheus to count {sent} requests"),
        || async {
            let r = prom_query(&prom, &sum_query).await?;
            let v = r.first().map(|(_, v)| *v)?;
            (v as u64 == sent).then_some(v)
        },
    )
    .await;
    eprintln!(
        "Prometheus counted {seen} = sent {sent}, {:.1}s after the load ended",
        ended.elapsed().as_secs_f64()
    );
    let failed_query = format!(
        "sum(http_requests_total{{namespace=\"{}\",track=\"canary\",code=\"500\"}})",
        ns.name
    );
    let r = prom_query(&prom, &failed_query).await.expect("query");
    assert_eq!(r.first().map(|(_, v)| *v as u64), Some(canary_failed));
    ns.delete().await;
}

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tollgate.dev", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// The valid base every invalid case mutates: examples/rollout-replica-ratio.yaml.
fn base_rollout(ns: &str) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollout-replica-ratio.yaml"
    ))
    .expect("example");
    let mut v: Value = serde_saphyr::from_str(&text).expect("example parses");
    v["metadata"]["namespace"] = json!(ns);
    v
}

async fn dry_run(api: &Api<DynamicObject>, obj: &Value) -> Result<(), kube::Error> {
    let obj: DynamicObject = serde_json::from_value(obj.clone()).expect("dynamic object");
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &obj,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn crd_applies_and_every_example_passes_server_side_dry_run() {
    let env = TestEnv::load();
    let names = env.install_crds().await;
    assert!(
        names.contains(&"rollouts.tollgate.dev".to_string()),
        "{names:?}"
    );
    let ns = env.namespace("crd-examples").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        let mut v: Value = serde_saphyr::from_str(&text).expect("example parses");
        if v["kind"] != "Rollout" {
            continue;
        }
        v["metadata"]["namespace"] = json!(ns.name);
        dry_run(&api, &v)
            .await
            .unwrap_or_else(|e| panic!("{} rejected: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 1, "no Rollout examples found in {dir}");
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn invalid_rollouts_are_rejected_naming_the_field() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("crd-invalid").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let base = base_rollout(&ns.name);
    dry_run(&api, &base)
        .await
        .expect("the base Rollout must be valid");

    type Mutate = fn(&mut Value);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "version missing",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("version");
            },
            "spec.version",
        ),
        (
            "version empty",
            |v| v["spec"]["version"] = json!(""),
            "spec.version",
        ),
        (
            "version bad characters",
            |v| v["spec"]["version"] = json!("-2.0 beta"),
            "spec.version",
        ),
        (
            "steps missing",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("steps");
            },
            "spec.steps",
        ),
        (
            "steps empty",
            |v| v["spec"]["steps"] = json!([]),
            "spec.steps",
        ),
        (
            "step with two actions",
            |v| v["spec"]["steps"][0] = json!({"setWeight": 10, "pause": {}}),
            "spec.steps[0]",
        ),
        (
            "setWeight over 100",
            |v| v["spec"]["steps"][0]["setWeight"] = json!(101),
            "spec.steps[0].setWeight",
        ),
        (
            "setWeight decreasing",
            |v| v["spec"]["steps"][2]["setWeight"] = json!(5),
            "spec.steps",
        ),
        (
            "replicas zero",
            |v| v["spec"]["replicas"] = json!(0),
            "spec.replicas",
        ),
        (
            "traffic type unknown",
            |v| v["spec"]["traffic"]["type"] = json!("Istio"),
            "spec.traffic.type",
        ),
        (
            "HTTPRoute without httpRoute",
            |v| v["spec"]["traffic"]["type"] = json!("HTTPRoute"),
            "spec.traffic",
        ),
        (
            "template and workloadRef",
            |v| v["spec"]["workloadRef"] = json!({"name": "x"}),
            "spec.template",
        ),
        (
            "workloadRef apiVersion",
            |v| {
                let s = v["spec"].as_object_mut().unwrap();
                s.remove("template");
                s.remove("selector");
                s.insert(
                    "workloadRef".into(),
                    json!({"name": "x", "apiVersion": "apps/v2"}),
                );
            },
            "spec.workloadRef.apiVersion",
        ),
        (
            "scaleDown with a template",
            |v| v["spec"]["workloadRef"] = json!({"name": "x", "scaleDown": "onSuccess"}),
            "spec.template",
        ),
        (
            "scaleDownDelay negative",
            |v| v["spec"]["strategy"] = json!({"scaleDownDelay": "-5s"}),
            "spec.strategy.scaleDownDelay",
        ),
        (
            "scaleDownDelay unparseable",
            |v| v["spec"]["strategy"] = json!({"scaleDownDelay": "soon"}),
            "spec.strategy.scaleDownDelay",
        ),
        (
            "scaleDown unknown",
            |v| {
                let s = v["spec"].as_object_mut().unwrap();
                s.remove("template");
                s.remove("selector");
                s.insert(
                    "workloadRef".into(),
                    json!({"name": "x", "scaleDown": "onsuccess"}),
                );
            },
            "spec.workloadRef.scaleDown",
        ),
        (
            "header route without an HTTPRoute",
            |v| {
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "testers",
                    "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}})
            },
            "spec.steps[].setHeaderRoute",
        ),
        (
            "header route beside a weight",
            |v| v["spec"]["steps"][0]["setHeaderRoute"] = json!({"name": "testers"}),
            "spec.steps[0]",
        ),
        (
            "header value exact and regex",
            |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "testers",
                    "match": [{"headerName": "X-Canary", "headerValue": {"exact": "y", "regex": "y"}}]}})
            },
            "spec.steps[].setHeaderRoute.match[].headerValue",
        ),
        (
            "header route name not a DNS label",
            |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "QA Team"}})
            },
            "spec.steps[].setHeaderRoute.name",
        ),
        (
            "header name not a token",
            |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "qa",
                    "match": [{"headerName": "X Canary:", "headerValue": {"exact": "yes"}}]}})
            },
            "spec.steps[].setHeaderRoute.match[].headerName",
        ),
        (
            "errorRate tolerance below 1",
            |v| v["spec"]["analysis"]["errorRate"]["tolerance"] = json!(0.5),
            "spec.analysis.errorRate.tolerance",
        ),
        (
            "errorRate maxRate at zero",
            |v| v["spec"]["analysis"]["errorRate"]["maxRate"] = json!(0),
            "spec.analysis.errorRate.maxRate must be above 0 and below 1",
        ),
        (
            "errorRate maxRate above 1",
            |v| v["spec"]["analysis"]["errorRate"]["maxRate"] = json!(1.5),
            "spec.analysis.errorRate.maxRate",
        ),
        (
            "errorRate passRate not below maxRate",
            |v| {
                v["spec"]["analysis"]["errorRate"]["passRate"] = json!(0.05);
                v["spec"]["analysis"]["errorRate"]["maxRate"] = json!(0.02);
            },
            "spec.analysis.errorRate.passRate must be below spec.analysis.errorRate.maxRate",
        ),
        (
            "quantile below 0.5",
            |v| v["spec"]["analysis"]["latency"]["quantiles"][0]["quantile"] = json!(0.3),
            "spec.analysis.latency.quantiles[0]",
        ),
        (
            "quantile repeated",
            |v| {
                v["spec"]["analysis"]["latency"]["quantiles"] =
                    json!([{"quantile": 0.99}, {"quantile": 0.99}])
            },
            "spec.analysis.latency.quantiles",
        ),
        (
            "alpha too large",
            |v| v["spec"]["analysis"]["alpha"] = json!(0.7),
            "spec.analysis.alpha",
        ),
        (
            "onInconclusive unknown",
            |v| v["spec"]["analysis"]["onInconclusive"] = json!("Ignore"),
            "spec.analysis.onInconclusive",
        ),
        (
            "interval not a duration",
            |v| v["spec"]["analysis"]["interval"] = json!("10 minutes"),
            "spec.analysis.interval",
        ),
        (
            "a duration past Go's bound (kube's parser would panic on it)",
            |v| v["spec"]["progressDeadline"] = json!("99999999999999999999999999999h"),
            "spec.progressDeadline",
        ),
        (
            "analysis with no metric",
            |v| {
                let a = v["spec"]["analysis"].as_object_mut().unwrap();
                a.remove("errorRate");
                a.remove("latency");
            },
            "spec.analysis",
        ),
        (
            "analysis missing with analyze steps",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("analysis");
            },
            "spec.analysis",
        ),
        (
            "prometheus address scheme",
            |v| {
                v["spec"]["analysis"]["provider"]["prometheus"]["address"] =
                    json!("ftp://prom:9090")
            },
            "spec.analysis.provider.prometheus.address",
        ),
        (
            "requestsMetric not a metric name",
            |v| v["spec"]["analysis"]["errorRate"]["requestsMetric"] = json!("http requests"),
            "spec.analysis.errorRate.requestsMetric",
        ),
        (
            "brokerUrl not a URL",
            |v| v["spec"]["contractGate"]["brokerUrl"] = json!("pact broker"),
            "spec.contractGate.brokerUrl",
        ),
        (
            "pacticipant missing",
            |v| {
                v["spec"]["contractGate"]
                    .as_object_mut()
                    .unwrap()
                    .remove("pacticipant");
            },
            "spec.contractGate.pacticipant",
        ),
        (
            "unknownBudget below pollInterval",
            |v| {
                v["spec"]["contractGate"]["pollInterval"] = json!("1m");
                v["spec"]["contractGate"]["unknownBudget"] = json!("10s");
            },
            "spec.contractGate.unknownBudget",
        ),
        (
            "fleetCheck port out of range",
            |v| v["spec"]["fleetCheck"] = json!({"port": 70000}),
            "spec.fleetCheck.port",
        ),
        (
            "fleetCheck path relative",
            |v| v["spec"]["fleetCheck"] = json!({"path": "version"}),
            "spec.fleetCheck.path",
        ),
        (
            "smoke method unknown",
            |v| {
                v["spec"]["smoke"] =
                    json!({"requests": [{"name": "home", "path": "/", "method": "DELETE"}]})
            },
            "spec.smoke.requests[0].method",
        ),
        (
            "name longer than 50",
            |v| v["metadata"]["name"] = json!("a".repeat(51)),
            "metadata.name",
        ),
    ];
    assert!(cases.len() >= 15);
    let mut failures = vec![];
    for (what, mutate, field) in &cases {
        let mut obj = base.clone();
        mutate(&mut obj);
        match dry_run(&api, &obj).await {
            Ok(()) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
                if !s.message.contains(field) {
                    failures.push(format!(
                        "{what}: message does not name {field}: {}",
                        s.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{what}: unexpected error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    ns.delete().await;
}

/// A version that moves from build to build is refused by the API server itself, whatever its
/// case, with a message naming `spec.version`; a version carrying a commit, or merely containing
/// one of those words, is accepted.
#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn mutable_versions_are_rejected_naming_the_field() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("crd-mutable-version").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &rollout_resource());
    let base = base_rollout(&ns.name);
    let mut failures = vec![];
    let refused = [
        "latest", "Latest", "stable", "main", "master", "HEAD", "dev", "develop", "trunk",
        "snapshot", "none", "null", "unknown",
    ];
    for version in refused {
        let mut obj = base.clone();
        obj["spec"]["version"] = json!(version);
        match dry_run(&api, &obj).await {
            Ok(()) => failures.push(format!("{version}: accepted")),
            Err(kube::Error::Api(s)) if s.code == 422 => {
                if !s.message.contains("spec.version must identify one build") {
                    failures.push(format!(
                        "{version}: message does not name spec.version: {}",
                        s.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{version}: unexpected error {e}")),
        }
    }
    for version in ["1.4.2+76a39e5", "main-76a39e5", "2.4.0"] {
        let mut obj = base.clone();
        obj["spec"]["version"] = json!(version);
        if let Err(e) = dry_run(&api, &obj).await {
            failures.push(format!("{version}: refused: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    ns.delete().await;
}

/// Guard: under --include-ignored without the env file, the support module fails loudly.
#[test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
fn test_env_is_present_when_peer_tests_run() {
    let env = TestEnv::load();
    assert!(env.kubeconfig().exists(), "{}", env.kubeconfig().display());
}

fn run_bin(env: &TestEnv, bin: &str, args: &[&str], stdin: Option<&str>) -> String {
    env.run_bin(bin, args, stdin)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn helm_chart_lints_renders_and_passes_server_side_dry_run() {
    let env = TestEnv::load();
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tollgate");
    if !std::path::Path::new(chart).exists() {
        panic!("{chart} is missing");
    }
    let ns = env.namespace("helm").await;
    run_bin(&env, "HELM", &["lint", "--strict", chart], None);
    let rendered = run_bin(
        &env,
        "HELM",
        &[
            "template",
            "tollgate",
            chart,
            "--namespace",
            &ns.name,
            "--include-crds",
            // helm built by `go install` assumes Kubernetes v1.20 when it does not ask a cluster
            "--kube-version",
            env.var("TOLLGATE_KUBERNETES_VERSION"),
        ],
        None,
    );
    assert!(rendered.contains("kind: Deployment"), "{rendered}");
    let applied = run_bin(
        &env,
        "KUBECTL",
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            // other tests own the CRD (field manager tollgate-tests)
            "--force-conflicts",
            "--namespace",
            &ns.name,
            "-f",
            "-",
        ],
        Some(&rendered),
    );
    assert!(applied.contains("deployment.apps/"), "{applied}");
    // Default addresses reach the operator's flags; the schema refuses what is not a URL.
    let version = env.var("TOLLGATE_KUBERNETES_VERSION");
    let with_defaults = run_bin(
        &env,
        "HELM",
        &[
            "template",
            "tollgate",
            chart,
            "--kube-version",
            version,
            "--set",
            "broker.url=http://pact-broker.pact:9292",
            "--set",
            "prometheus.url=http://prometheus.monitoring:9090",
        ],
        None,
    );
    assert!(with_defaults.contains("- --broker-url=http://pact-broker.pact:9292"));
    assert!(with_defaults.contains("- --prometheus-url=http://prometheus.monitoring:9090"));
    assert!(
        !rendered.contains("- --broker-url"),
        "no default unless set"
    );
    let refused = std::process::Command::new(env.bin("HELM"))
        .args(["template", "tollgate", chart, "--kube-version", version])
        .args(["--set", "prometheus.url=prometheus:9090"])
        .output()
        .expect("run helm");
    assert!(!refused.status.success(), "a non-URL default is refused");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("prometheus"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ns.delete().await;
}

/// `(resource, verb)` pairs the rendered chart's Roles grant, written as kubectl prints them
/// (`resource.group`, or `resource` for the core group).
/// `(resource or URL, verb)` pairs.
type Permissions = std::collections::BTreeSet<(String, String)>;

fn granted_by_chart(rendered: &str) -> Permissions {
    let mut granted = Permissions::new();
    for doc in rendered.split("\n---") {
        let Ok(obj) = serde_saphyr::from_str::<Value>(doc) else {
            continue;
        };
        if !matches!(obj["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        for rule in obj["rules"].as_array().into_iter().flatten() {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    // kubectl prints `resource.group/subresource`
                    let (base, sub) = match resource.split_once('/') {
                        Some((b, s)) => (b.to_string(), format!("/{s}")),
                        None => (resource.clone(), String::new()),
                    };
                    let name = if group.is_empty() {
                        format!("{base}{sub}")
                    } else {
                        format!("{base}.{group}{sub}")
                    };
                    for verb in list("verbs") {
                        granted.insert((name.clone(), verb));
                    }
                }
            }
        }
    }
    granted
}

/// The resource rows of `kubectl auth can-i --list` as `(resource, verb)` pairs, and the
/// non-resource rows as `(url, verb)`.
fn parse_can_i_list(text: &str) -> (Permissions, Permissions) {
    let row = regex::Regex::new(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$").unwrap();
    let (mut resources, mut urls) = (Default::default(), Default::default());
    for line in text.lines().skip(1) {
        let caps = row
            .captures(line)
            .unwrap_or_else(|| panic!("unexpected can-i row: {line:?}"));
        let verbs: Vec<&str> = caps[4].split_whitespace().collect();
        assert!(caps[3].is_empty(), "no rule is limited to names: {line:?}");
        let into: &mut Permissions = if caps[1].is_empty() {
            &mut urls
        } else {
            &mut resources
        };
        let names: Vec<String> = if caps[1].is_empty() {
            caps[2].split_whitespace().map(String::from).collect()
        } else {
            vec![caps[1].to_string()]
        };
        for name in names {
            for verb in &verbs {
                into.insert((name.clone(), verb.to_string()));
            }
        }
    }
    (resources, urls)
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_charts_service_account_may_do_what_the_chart_lists_and_nothing_more() {
    let env = TestEnv::load();
    let ns = env.namespace("rbac").await;
    let rendered = env.install_chart_rbac(&ns.name);
    let granted = granted_by_chart(&rendered);
    assert!(
        granted.contains(&("rollouts.tollgate.dev/status".into(), "update".into())),
        "{granted:?}"
    );
    let who = format!("system:serviceaccount:{}:tollgate", ns.name);
    let listed = env.kubectl(&[
        "auth",
        "can-i",
        "--list",
        "--namespace",
        &ns.name,
        "--as",
        &who,
    ]);
    let (resources, urls) = parse_can_i_list(&listed);
    // What every authenticated identity may do (the default system:basic-user role).
    let every_user = [
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
    ];
    let beyond: Vec<_> = resources
        .iter()
        .filter(|(r, v)| !(every_user.contains(&r.as_str()) && v == "create"))
        .filter(|p| !granted.contains(*p))
        .collect();
    assert!(
        beyond.is_empty(),
        "the ServiceAccount may do more than the chart lists: {beyond:?}\n{listed}"
    );
    let missing: Vec<_> = granted.difference(&resources).collect();
    assert!(
        missing.is_empty(),
        "rules of the chart not in effect: {missing:?}\n{listed}"
    );
    // Non-resource URLs: only the read-only discovery and health endpoints every user has.
    assert!(
        urls.iter().all(|(_, verb)| verb == "get"),
        "{urls:?}\n{listed}"
    );
    println!("kubectl auth can-i --list --as {who}:\n{listed}");
    ns.delete().await;
}
