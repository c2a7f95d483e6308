//! Installing tollgate as its users do (the peers are real, nothing is mocked):
//! * the operator image builds offline from a clean clone (deploy/image/build.sh, buildah from
//!   scratch), names its version and commit, runs as UID 65532 and holds no shell;
//! * the image, pushed to a local registry (Debian's docker-registry), runs as the chart's pod
//!   would run it: in-cluster configuration only (ServiceAccount token, CA, namespace,
//!   `KUBERNETES_SERVICE_HOST`), read-only root filesystem, the chart's args and env; it becomes
//!   ready, takes the lease and promotes a Rollout, and is never refused by the API server;
//! * `helm install` from the registry's image, `helm upgrade` to a chart whose CRD gained a field
//!   (the API server serves it after), `helm uninstall` (the CRD and an existing Rollout stay);
//! * `helm template` with every value set passes a server-side dry run; a values file with a
//!   wrong type is refused by the values schema, naming the field.
//!
//! The cluster tests need `bash tests/cluster/run-peer-tests.sh` (see tests/support/mod.rs) and
//! podman, buildah, skopeo and docker-registry (tests/cluster/container-tools.sh installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cluster::TestEnv;
use crate::support::install::{image, kubelet::PodContainer, podman, registry, repo, run, stdout};
use crate::support::wait::wait_until;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::Api;
use serde_json::{json, Value};
use tollgate::crd::{Phase, Rollout};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tollgate");
const CHART_CRD: &str = "files/crds/rollouts.tollgate.dev.yaml";

/// What `tollgate crd` prints.
fn tollgate_crd() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("crd")
        .output()
        .expect("run tollgate crd");
    assert!(output.status.success());
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `v` with every number as a float: `tollgate crd` writes `maximum: 100.0` where Helm's
/// template (a JSON round trip) writes `100`; the API server reads both as the same number.
fn numbers_as_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

fn parse_crd(yaml: &str) -> CustomResourceDefinition {
    serde_saphyr::from_str(yaml).expect("a CRD")
}

#[test]
fn the_charts_crd_is_exactly_what_tollgate_crd_prints() {
    let chart = std::fs::read_to_string(Path::new(CHART).join(CHART_CRD)).expect("chart's CRD");
    assert!(
        chart == tollgate_crd(),
        "charts/tollgate/{CHART_CRD} is stale: run `cargo run -- crd > charts/tollgate/{CHART_CRD}`"
    );
    // Helm installs a chart's crds/ folder once and never upgrades it: the CRD is a template.
    assert!(
        !Path::new(CHART).join("crds").exists(),
        "charts/tollgate/crds/ would be installed unmanaged; the CRD lives in templates/crd.yaml"
    );
}

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("--version")
        .output()
        .expect("run tollgate --version");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("this test runs in a git checkout");
    let want = format!(
        "tollgate {}+{} (commit {head})",
        env!("CARGO_PKG_VERSION"),
        &head[..12]
    );
    assert_eq!(text, want);
}

/// The image of HEAD, and the registry reference (by digest) it was pushed to, once.
fn pushed_image(env: &TestEnv) -> (&'static image::BuiltImage, String) {
    static PUSHED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let built = image::built();
    let pushed = PUSHED.get_or_init(|| {
        let registry = registry::shared(Path::new(env.var("TOLLGATE_CLUSTER_DIR")));
        registry.push(&built.reference)
    });
    (built, pushed.clone())
}

#[test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
fn the_image_builds_offline_from_a_clean_clone_names_its_commit_and_holds_no_shell() {
    let built = image::built();
    let version = stdout(
        "podman run --version",
        podman().args(["run", "--rm", &built.reference, "--version"]),
    );
    assert_eq!(
        version,
        format!("tollgate {} (commit {})", built.version, built.commit)
    );

    let inspect = image::inspect(&built.reference);
    let config = &inspect["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["Entrypoint"], json!(["/tollgate"]), "{config}");
    assert_eq!(config["Cmd"], json!(["controller"]), "{config}");
    let labels = &inspect["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        built.version.as_str()
    );
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        built.commit.as_str()
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{labels}"
    );
    let size = inspect["Size"].as_u64().expect("size");
    println!(
        "image {}: {:.1} MB, built in {:.1}s",
        built.reference,
        size as f64 / 1e6,
        built.build_seconds
    );
    assert!(size < 40_000_000, "the image is {size} bytes, over 40 MB");

    // Exactly the binary, the libraries ldd named, CA bundle, passwd/group, nsswitch.conf.
    let files = image::files(&built.reference);
    let unexpected: Vec<&String> = files
        .iter()
        .filter(|f| {
            !matches!(
                f.as_str(),
                "tollgate"
                    | "etc/"
                    | "etc/passwd"
                    | "etc/group"
                    | "etc/nsswitch.conf"
                    | "etc/ssl/"
                    | "etc/ssl/certs/"
                    | "etc/ssl/certs/ca-certificates.crt"
            ) && !(f.starts_with("lib") && (f.ends_with('/') || f.contains(".so")))
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected files: {unexpected:?}");
    assert!(files.iter().any(|f| f.ends_with("/libc.so.6")), "{files:?}");
    let shell = podman()
        .args([
            "run",
            "--rm",
            "--entrypoint=/bin/sh",
            &built.reference,
            "-c",
            "true",
        ])
        .output()
        .expect("podman run");
    assert!(!shell.status.success(), "the image has a shell");
    println!("image files: {files:?}");
}

/// The Rollout the in-cluster operator promotes: traffic split by replica ratio, a pause at
/// 50%, no analysis (this test is about running in the cluster, not about the judge).
fn rollout(version: &str) -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "version": version,
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": template(version),
            "steps": [{"setWeight": 50}, {"pause": {"duration": "3s"}}],
        }
    })
}

fn template(version: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{
            "name": "app",
            "image": format!("demo:{version}"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "DEMO_VERSION", "value": version}]
        }]}
    })
}

/// Waits until `n` pods of the release are Running with an IP (kwok); returns them.
async fn release_pods(api: &Api<Pod>, n: usize) -> Vec<Pod> {
    wait_until(
        Duration::from_secs(60),
        "the chart's pods Running",
        || async {
            let pods = api
                .list(&ListParams::default().labels("app.kubernetes.io/instance=tollgate"))
                .await
                .ok()?
                .items;
            let running: Vec<Pod> = pods
                .into_iter()
                .filter(|p| {
                    p.status.as_ref().is_some_and(|s| {
                        s.phase.as_deref() == Some("Running")
                            && s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
                    })
                })
                .collect();
            (running.len() == n).then_some(running)
        },
    )
    .await
}

async fn wait_phase(api: &Api<Rollout>, version: &str, containers: &[PodContainer]) -> Rollout {
    let logs = || {
        containers
            .iter()
            .map(|c| format!("--- {}\n{}", c.pod, c.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let started = Instant::now();
    loop {
        if let Ok(r) = api.get("demo").await {
            let s = r.status.clone().unwrap_or_default();
            if s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some(version) {
                return r;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{version} not promoted: {s:#?}\n{}",
                logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn the_image_runs_in_cluster_as_the_charts_pod_and_promotes_a_rollout() {
    let env = TestEnv::load();
    env.install_crds().await;
    let (built, pushed) = pushed_image(&env);
    let (repository, digest) = pushed.split_once('@').expect("a digest reference");
    let ns = env.namespace("in-cluster").await;
    // Namespace scope: the run's other tests have Rollouts elsewhere in this cluster.
    env.run_bin(
        "HELM",
        &[
            "install",
            "tollgate",
            CHART,
            "--namespace",
            &ns.name,
            "--set",
            &format!("image.repository={repository}"),
            "--set",
            &format!("image.digest={digest}"),
            "--set",
            "crds.install=false",
            "--set",
            "rbac.scope=namespace",
            "--set",
            "logLevel=info",
        ],
        None,
    );
    let pods = release_pods(&ns.api(), 2).await;

    // kwok pods run nothing: this test is their kubelet (tests/install_support/kubelet.rs).
    let work = Path::new(env.var("TOLLGATE_CLUSTER_DIR")).join("kubelet");
    let mut containers = Vec::new();
    for pod in &pods {
        let container =
            PodContainer::start(&ns.client, pod, env.var("TOLLGATE_APISERVER"), &work).await;
        containers.push(container);
    }
    let mut ready = Vec::new();
    for container in &mut containers {
        let took = container.wait_ready(Duration::from_secs(60)).await;
        let image = container.inspect()["ImageName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            image.ends_with(digest),
            "the container runs {image}, not the pod's image"
        );
        println!(
            "{}: /readyz 200 {:.2}s after podman run",
            container.pod,
            took.as_secs_f64()
        );
        ready.push(took);
    }

    // One replica leads (the Lease names its pod: POD_NAME reached it from a fieldRef), the
    // other stands by.
    let lease = wait_until(Duration::from_secs(30), "the leader Lease", || async {
        let lease = Api::<Lease>::namespaced(ns.client.clone(), &ns.name)
            .get("tollgate")
            .await
            .ok()?;
        lease.spec?.holder_identity
    })
    .await;
    let leader = containers
        .iter()
        .position(|c| c.pod == lease)
        .unwrap_or_else(|| panic!("the lease holder {lease} is none of the pods"));
    let mut bodies = Vec::new();
    for c in &containers {
        bodies.push(c.probe().await.map(|(_, body)| body).unwrap_or_default());
    }
    assert!(bodies[leader].contains("leading"), "{bodies:?}");
    assert!(bodies[1 - leader].contains("standby"), "{bodies:?}");

    // Runs as 65532 (the host's view of the container's process), root filesystem read-only.
    for c in &containers {
        let status = std::fs::read_to_string(format!("/proc/{}/status", c.host_pid()))
            .expect("the container's process");
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap_or_default();
        assert_eq!(
            uid.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["65532"; 4],
            "{uid}"
        );
        assert_eq!(c.inspect()["HostConfig"]["ReadonlyRootfs"], true);
    }

    let api: Api<Rollout> = ns.api();
    let first: Rollout = serde_json::from_value(rollout("1.0.0")).expect("rollout");
    api.create(&PostParams::default(), &first)
        .await
        .expect("create the rollout");
    wait_phase(&api, "1.0.0", &containers).await;
    let patch = json!({"spec": {"version": "2.0.0", "template": template("2.0.0")}});
    api.patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("roll to 2.0.0");
    let done = wait_phase(&api, "2.0.0", &containers).await;
    let status = done.status.unwrap_or_default();
    let reasons: Vec<&str> = status.history.iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons.contains(&"Promoted"), "{reasons:?}");
    assert_eq!(
        status.fleet.map(|f| (f.pods_checked, f.pods_failing)),
        Some((2, 0))
    );

    // The leader wrote the promotion (its Events carry its pod name).
    let events = wait_until(Duration::from_secs(15), "the Promoted event", || async {
        let items = Api::<Event>::namespaced(ns.client.clone(), &ns.name)
            .list(&Default::default())
            .await
            .ok()?
            .items;
        items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Promoted"))
            .then_some(items)
    })
    .await;
    let reporters: Vec<String> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Promoted"))
        .filter_map(|e| e.reporting_instance.clone())
        .collect();
    assert!(
        reporters.iter().all(|r| r == &lease) && !reporters.is_empty(),
        "Promoted reported by {reporters:?}, the leader is {lease}"
    );
    for c in &containers {
        c.assert_never_forbidden();
    }
    println!(
        "image {} (built in {:.1}s) from {pushed}: ready after {:?}, leader {lease}",
        built.reference, built.build_seconds, ready
    );
    drop(containers);
    ns.delete().await;
}

fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tollgate.dev", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// A copy of the chart whose CRD has one more optional field, `spec.upgradeNote`, as a newer
/// release of the chart would bring; version `next`.
fn chart_with_a_new_crd_field(dir: &Path, next: &str) -> PathBuf {
    let chart = dir.join("tollgate");
    run(
        "copy the chart",
        Command::new("cp").arg("-r").arg(CHART).arg(&chart),
    );
    let meta = std::fs::read_to_string(chart.join("Chart.yaml")).expect("Chart.yaml");
    let meta: String = meta
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {next}")
            } else {
                l.into()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(chart.join("Chart.yaml"), meta + "\n").expect("Chart.yaml");
    let crd_file = chart.join(CHART_CRD);
    let mut crd: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&crd_file).expect("CRD")).expect("YAML");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["upgradeNote"] = json!({"type": "string", "description": "Added by the next chart."});
    // JSON is YAML: the template reads it the same way.
    std::fs::write(&crd_file, serde_json::to_string_pretty(&crd).expect("JSON")).expect("write");
    chart
}

/// Creates (or replaces) Rollout `name` with `spec.upgradeNote` set; returns what the API
/// server kept of it (None: the field was pruned, the schema does not know it).
async fn round_trip_upgrade_note(api: &Api<DynamicObject>, name: &str) -> Option<String> {
    let mut object = example_rollout(name);
    object["spec"]["upgradeNote"] = json!("served");
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    let _ = api.delete(name, &Default::default()).await;
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("create the Rollout");
    created.data["spec"]["upgradeNote"]
        .as_str()
        .map(String::from)
}

/// examples/rollout-replica-ratio.yaml named `name` (valid under the CRD, no namespace).
fn example_rollout(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples/rollout-replica-ratio.yaml"))
        .expect("example");
    let mut value: Value = serde_saphyr::from_str(&text).expect("example parses");
    value["metadata"] = json!({"name": name});
    value
}

async fn crd(api: &Api<CustomResourceDefinition>) -> Option<CustomResourceDefinition> {
    api.get_opt("rollouts.tollgate.dev")
        .await
        .expect("get the CRD")
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    numbers_as_floats(serde_json::to_value(&crd.spec.versions[0].schema).expect("schema"))
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn helm_installs_from_the_registry_upgrades_the_crd_and_uninstall_keeps_rollouts() {
    let shared = TestEnv::load();
    let (built, pushed) = pushed_image(&shared);
    let (repository, digest) = pushed.split_once('@').expect("a digest reference");
    // The CRD is cluster-wide: changing it under the run's other tests would break them.
    let cluster = crate::support::install::cluster::PrivateCluster::start(&shared);
    let env = &cluster.env;
    let client = env.client().await;
    let ns = "tollgate-system";
    let image_values = [
        "--set".to_string(),
        format!("image.repository={repository}"),
        "--set".to_string(),
        format!("image.digest={digest}"),
    ];
    let helm = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(image_values.iter().map(String::as_str));
        env.run_bin("HELM", &all, None)
    };
    helm(&[
        "install",
        "tollgate",
        CHART,
        "--namespace",
        ns,
        "--create-namespace",
    ]);

    // The release installed the CRD: what `tollgate crd` prints, labelled, kept on uninstall.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let installed = wait_until(Duration::from_secs(30), "the CRD Established", || async {
        let crd = crd(&crds).await?;
        crd.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(crd)
    })
    .await;
    // What the API server would store for `tollgate crd` itself (a dry-run apply), against
    // what it stores for the chart's: the server normalizes a schema as it stores it.
    let direct = crds
        .patch(
            "rollouts.tollgate.dev",
            &PatchParams::apply("tollgate-crd-dry-run").dry_run().force(),
            &Patch::Apply(&parse_crd(&tollgate_crd())),
        )
        .await
        .expect("dry-run apply of `tollgate crd`");
    assert!(
        schema_of(&installed) == schema_of(&direct),
        "the installed CRD's schema is not `tollgate crd`'s"
    );
    let annotations = installed.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    assert_eq!(
        annotations
            .get("meta.helm.sh/release-name")
            .map(String::as_str),
        Some("tollgate")
    );

    // The Deployment names the registry's image by digest, and the registry serves it.
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("tollgate")
        .await
        .expect("the Deployment");
    let pod_spec = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    assert_eq!(
        pod_spec.containers[0].image.as_deref(),
        Some(pushed.as_str())
    );
    let served = stdout(
        "skopeo inspect",
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{pushed}")),
    );
    let served: Value = serde_json::from_str(&served).expect("skopeo JSON");
    assert_eq!(served["Digest"], digest);
    assert_eq!(
        served["Labels"]["org.opencontainers.image.revision"],
        built.commit.as_str()
    );
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
        .get("tollgate")
        .await
        .expect("a PodDisruptionBudget with 2 replicas");
    assert_eq!(
        serde_json::to_value(pdb.spec.and_then(|s| s.max_unavailable)).expect("json"),
        json!(1)
    );

    // A Rollout that must outlive the chart, and a field the CRD does not know yet (pruned).
    let rollouts: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &rollout_resource());
    let kept: DynamicObject = serde_json::from_value(example_rollout("kept")).expect("object");
    rollouts
        .create(&PostParams::default(), &kept)
        .await
        .expect("create a Rollout");
    assert_eq!(round_trip_upgrade_note(&rollouts, "probe").await, None);

    // The next chart's CRD has spec.upgradeNote: after `helm upgrade` the API server keeps it.
    let scratch = Path::new(shared.var("TOLLGATE_CLUSTER_DIR")).join("next-chart");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let next = chart_with_a_new_crd_field(&scratch, "0.1.1-next");
    let next = next.to_string_lossy();
    helm(&["upgrade", "tollgate", &next, "--namespace", ns]);
    let note = wait_until(
        Duration::from_secs(30),
        "spec.upgradeNote served",
        || async { round_trip_upgrade_note(&rollouts, "probe").await },
    )
    .await;
    assert_eq!(note, "served");
    let upgraded = crd(&crds).await.expect("the CRD");
    assert!(
        schema_of(&upgraded)
            .to_string()
            .contains("Added by the next chart."),
        "the upgrade changed the CRD's schema"
    );

    // Uninstall: the operator's objects go, the CRD and the users' Rollouts stay.
    let said = env.run_bin("HELM", &["uninstall", "tollgate", "--namespace", ns], None);
    assert!(said.contains("kept due to the resource policy"), "{said}");
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    wait_until(
        Duration::from_secs(30),
        "the Deployment deleted",
        || async {
            deployments
                .get_opt("tollgate")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(crd(&crds).await.is_some(), "helm uninstall deleted the CRD");
    let still = rollouts.get_opt("kept").await.expect("get the Rollout");
    assert!(still.is_some(), "helm uninstall deleted a user's Rollout");
    println!("helm install / upgrade (CRD + spec.upgradeNote) / uninstall: CRD and Rollout kept");
    drop(cluster);
}

/// A values file that sets every value the chart added for installation, each to something
/// other than its default.
const EVERY_VALUE: &str = r#"
image:
  repository: 127.0.0.1:5000/tollgate
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  pullPolicy: Always
imagePullSecrets:
  - name: regcred
crds:
  install: true
  keep: true
replicaCount: 3
podDisruptionBudget:
  enabled: true
  minAvailable: 2
priorityClassName: system-cluster-critical
podLabels:
  team: delivery
podAnnotations:
  example.com/owner: delivery
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - key: dedicated
    operator: Equal
    value: operators
    effect: NoSchedule
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: tollgate
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        app.kubernetes.io/name: tollgate
extraArgs:
  - --webhook-attempts=6
extraEnv:
  - name: TOLLGATE_EXTRA
    value: "1"
  - name: NODE_NAME
    valueFrom:
      fieldRef:
        fieldPath: spec.nodeName
podSecurityContext:
  runAsNonRoot: true
  runAsUser: 70000
  runAsGroup: 70000
  fsGroup: 70000
  seccompProfile:
    type: RuntimeDefault
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
resources:
  requests:
    cpu: 100m
    memory: 96Mi
  limits:
    cpu: "1"
    memory: 300Mi
notifications:
  destinations:
    - name: team-a-slack
      format: slack
      existingSecret: team-a-slack-webhook
      namespaces: [team-a]
      default: true
      events: [Promoted, RolledBack, Blocked, StepStarted, Paused]
      timeoutSeconds: 3
      attempts: 2
      templates:
        title: "[{{ namespace }}] {{ name }} {{ verb }}"
    - name: oncall
      format: pagerduty
      existingSecret: pagerduty
      secretKey: events-url
      routingKeySecretKey: routing-key
      events: [RolledBack]
"#;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The chart's `notifications.destinations` as the operator reads them: the ConfigMap's file
/// parses with the operator's own parser (URLs read from where the Secrets are mounted), and the
/// Deployment mounts each Secret's keys where the file says.
fn notification_destinations_reach_the_operator(rendered: &str, deployment: &Value) {
    let config_map = documents(rendered, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "tollgate-notifications")
        .expect("the destinations ConfigMap");
    let file = config_map["data"]["destinations.yaml"]
        .as_str()
        .expect("destinations.yaml");
    assert!(
        !file.contains("https://"),
        "no URL in the ConfigMap:\n{file}"
    );
    // The Secrets' files, where the kubelet would mount them.
    let mounts = TempDir(std::env::temp_dir().join(format!(
        "tollgate-chart-destinations-{}",
        std::process::id()
    )));
    for (name, key, value) in [
        (
            "team-a-slack",
            "url",
            "https://hooks.slack.com/services/T/B/X",
        ),
        ("oncall", "url", "https://events.pagerduty.com/v2/enqueue"),
        ("oncall", "routing-key", "R0UTINGKEY"),
    ] {
        let dir = mounts.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(key), value).unwrap();
    }
    let local = file.replace(
        "/etc/tollgate/destinations/",
        &format!("{}/", mounts.path().display()),
    );
    let any_host = |_: &tollgate::runtime::notify::WebhookUrl| Ok(());
    let no_env = |_: &str| None;
    let parsed =
        tollgate::runtime::notify::destinations::parse(&local, mounts.path(), &any_host, &no_env)
            .unwrap_or_else(|e| panic!("the operator refuses the chart's file: {e}\n{file}"));
    let slack = &parsed["team-a-slack"];
    assert_eq!(
        slack.format,
        tollgate::runtime::notify::WebhookFormat::Slack
    );
    assert_eq!(slack.namespaces, ["team-a"]);
    assert!(slack.default_destination);
    assert_eq!(slack.events.len(), 5);
    assert_eq!(slack.timeout, std::time::Duration::from_secs(3));
    assert_eq!(slack.retry.max_attempts, 2);
    assert_eq!(
        slack.templates.title.as_deref(),
        Some("[{{ namespace }}] {{ name }} {{ verb }}")
    );
    let oncall = &parsed["oncall"];
    assert_eq!(
        oncall.format,
        tollgate::runtime::notify::WebhookFormat::Pagerduty
    );
    assert_eq!(
        oncall.routing_key.as_ref().map(|k| k.expose()),
        Some("R0UTINGKEY")
    );
    assert!(!oncall.default_destination);

    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(
        container["args"].as_array().unwrap().contains(&json!(
            "--notification-destinations=/etc/tollgate/notifications/destinations.yaml"
        )),
        "{container}"
    );
    let volumes = pod["volumes"].as_array().expect("volumes");
    let secret = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == format!("destination-{name}"))
            .map(|v| v["secret"].clone())
            .unwrap_or_else(|| panic!("no volume for {name}: {volumes:?}"))
    };
    assert_eq!(secret("team-a-slack")["secretName"], "team-a-slack-webhook");
    assert_eq!(
        secret("oncall")["items"],
        json!([{"key": "events-url", "path": "url"}, {"key": "routing-key", "path": "routing-key"}])
    );
    let mounted: Vec<&str> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert_eq!(
        mounted,
        [
            "/etc/tollgate/notifications",
            "/etc/tollgate/destinations/team-a-slack",
            "/etc/tollgate/destinations/oncall"
        ]
    );
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]
            .get("checksum/notification-destinations")
            .is_some(),
        "the pods restart when the destinations change"
    );
}

/// The rendered documents of one kind.
fn documents(rendered: &str, kind: &str) -> Vec<Value> {
    rendered
        .split("\n---")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn helm_template_with_every_value_set_passes_a_server_side_dry_run() {
    let env = TestEnv::load();
    let ns = env.namespace("helm-values").await;
    let values = Path::new(env.var("TOLLGATE_CLUSTER_DIR")).join("every-value.yaml");
    std::fs::write(&values, EVERY_VALUE).expect("values file");
    let values = values.to_string_lossy().into_owned();
    let version = env.var("TOLLGATE_KUBERNETES_VERSION");
    env.run_bin(
        "HELM",
        &["lint", "--strict", CHART, "--values", &values],
        None,
    );
    let rendered = env.run_bin(
        "HELM",
        &[
            "template",
            "tollgate",
            CHART,
            "--namespace",
            &ns.name,
            "--values",
            &values,
            "--kube-version",
            version,
        ],
        None,
    );
    let applied = env.run_bin(
        "KUBECTL",
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=tollgate-chart-dry-run",
            "--namespace",
            &ns.name,
            "-f",
            "-",
        ],
        Some(&rendered),
    );
    for kind in [
        "deployment.apps/tollgate",
        "poddisruptionbudget.policy/tollgate",
        "customresourcedefinition.apiextensions.k8s.io/rollouts.tollgate.dev",
        "customresourcedefinition.apiextensions.k8s.io/rolloutpolicies.tollgate.dev",
        "customresourcedefinition.apiextensions.k8s.io/clusterrolloutpolicies.tollgate.dev",
    ] {
        assert!(applied.contains(kind), "{kind} not applied:\n{applied}");
    }

    // Every value reached the objects it is for.
    let want: Value = serde_saphyr::from_str(EVERY_VALUE).expect("values");
    let deployment = &documents(&rendered, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!(
            "{}@{}",
            want["image"]["repository"].as_str().unwrap(),
            want["image"]["digest"].as_str().unwrap()
        )
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(deployment["spec"]["replicas"], 3);
    for (key, value) in [
        ("imagePullSecrets", "imagePullSecrets"),
        ("priorityClassName", "priorityClassName"),
        ("nodeSelector", "nodeSelector"),
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("topologySpreadConstraints", "topologySpreadConstraints"),
        ("securityContext", "podSecurityContext"),
    ] {
        assert_eq!(pod[key], want[value], "{key}");
    }
    assert_eq!(container["securityContext"], want["securityContext"]);
    assert_eq!(container["resources"], want["resources"]);
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "delivery");
    assert_eq!(
        labels["app.kubernetes.io/name"], "tollgate",
        "selector labels kept"
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["example.com/owner"],
        "delivery"
    );
    let args = container["args"].as_array().expect("args");
    assert_eq!(
        args.last(),
        Some(&json!("--webhook-attempts=6")),
        "{args:?}"
    );
    let env_vars = container["env"].as_array().expect("env");
    for extra in want["extraEnv"].as_array().unwrap() {
        assert!(env_vars.contains(extra), "{extra} not in {env_vars:?}");
    }
    notification_destinations_reach_the_operator(&rendered, deployment);
    let pdb = &documents(&rendered, "PodDisruptionBudget")[0];
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"].get("maxUnavailable").is_none(), "{pdb}");
    let crd = &documents(&rendered, "CustomResourceDefinition")[0];
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let mut rendered_crd = crd.clone();
    rendered_crd
        .as_object_mut()
        .expect("object")
        .remove("metadata");
    let mut generated: Value = serde_saphyr::from_str(&tollgate_crd()).expect("YAML");
    generated
        .as_object_mut()
        .expect("object")
        .remove("metadata");
    // Compared as values, not printed whole on failure: the CRD is long.
    assert!(
        numbers_as_floats(rendered_crd) == numbers_as_floats(generated),
        "the template's CRD is not `tollgate crd`"
    );

    // The defaults: a budget with two replicas, none with one; crds.keep=false drops the policy.
    let defaults = env.run_bin(
        "HELM",
        &["template", "tollgate", CHART, "--kube-version", version],
        None,
    );
    assert_eq!(
        documents(&defaults, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"],
        1
    );
    let single = env.run_bin(
        "HELM",
        &[
            "template",
            "tollgate",
            CHART,
            "--kube-version",
            version,
            "--set",
            "replicaCount=1",
            "--set",
            "crds.keep=false",
        ],
        None,
    );
    assert!(documents(&single, "PodDisruptionBudget").is_empty());
    let crd = &documents(&single, "CustomResourceDefinition")[0];
    assert!(
        crd["metadata"]["annotations"]
            .get("helm.sh/resource-policy")
            .is_none(),
        "{crd}"
    );
    let without = env.run_bin(
        "HELM",
        &[
            "template",
            "tollgate",
            CHART,
            "--kube-version",
            version,
            "--set",
            "crds.install=false",
        ],
        None,
    );
    assert!(documents(&without, "CustomResourceDefinition").is_empty());
    ns.delete().await;
}

#[test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
fn a_values_file_with_a_wrong_type_is_refused_naming_the_field() {
    let env = TestEnv::load();
    let dir = Path::new(env.var("TOLLGATE_CLUSTER_DIR")).join("wrong-values");
    std::fs::create_dir_all(&dir).expect("dir");
    let version = env.var("TOLLGATE_KUBERNETES_VERSION");
    let cases = [
        ("replicaCount: two\n", "replicaCount"),
        (
            "podDisruptionBudget:\n  enabled: \"yes\"\n",
            "podDisruptionBudget/enabled",
        ),
        ("crds:\n  keep: no-thanks\n", "crds/keep"),
        ("extraArgs: --verbose\n", "extraArgs"),
        ("extraEnv:\n  - value: \"1\"\n", "extraEnv/0"),
        ("tolerations:\n  key: dedicated\n", "tolerations"),
        ("image:\n  digest: latest\n", "image/digest"),
        ("imagePullSecrets: regcred\n", "imagePullSecrets"),
        (
            "resources:\n  limits:\n    memory: [256]\n",
            "resources/limits/memory",
        ),
        ("priorityClassName: 7\n", "priorityClassName"),
        (
            "topologySpreadConstraints:\n  - maxSkew: 1\n",
            "topologySpreadConstraints/0",
        ),
        (
            "securityContext:\n  readOnlyRootFilesystem: sometimes\n",
            "securityContext/readOnlyRootFilesystem",
        ),
    ];
    let mut wrong = Vec::new();
    for (i, (values, field)) in cases.iter().enumerate() {
        let file = dir.join(format!("case-{i}.yaml"));
        std::fs::write(&file, values).expect("values file");
        let output = Command::new(env.bin("HELM"))
            .args([
                "template",
                "tollgate",
                CHART,
                "--kube-version",
                version,
                "--values",
            ])
            .arg(&file)
            .output()
            .expect("run helm");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.success() {
            wrong.push(format!("{values:?} was accepted"));
        } else if !stderr.contains(&format!("at '/{field}'")) {
            wrong.push(format!(
                "{values:?}: the error does not name {field}: {stderr}"
            ));
        } else {
            println!("{values:?} refused: {}", stderr.trim());
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
