//! Adoption end to end on the local control plane: a team's Deployment `demo` with 4 replicas,
//! under steady load from load-gen over every ready pod with its labels (as the team's own
//! Service would send it), is adopted by a Rollout once per `scaleDown` mode. A watcher counts
//! the ready pods that can serve (Deployment's and Rollout's alike) every 100 ms throughout.
//! Asserted: never fewer than 4 ready pods, no load-gen tick without a ready backend, not one
//! failed request, the Deployment ends at the mode's size, and deleting the Rollout scales it
//! back to 4. A workloadRef to a Deployment that does not exist stops the Rollout with
//! `InvalidSpec` naming the field, and nothing is created or scaled.
//! `kubectl scale rollout/demo` through the `/scale` subresource is checked on the adopted
//! Rollout too (the Rollout's tracks resize, `status.replicas` and `status.selector` follow).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use tollgate::crd::{Phase, Rollout};

use crate::support::cluster::TestEnv;
use crate::support::operator::Operator;
use crate::support::rollout_manifest::{rollout, template};
use crate::support::rollout_watch::wait_for;
use crate::support::wait::wait_until;

const ORIGINAL: &str = "demo";
const ROLLOUT: &str = "demo-rollout";

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.pod_ip.is_some()
                && s.conditions
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
}

/// Counts ready `app=demo` pods every 100 ms until stopped; keeps the minimum seen.
struct ReadyWatch {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    fn start(pods: Api<Pod>) -> ReadyWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let (s, m) = (stop.clone(), min.clone());
        let task = tokio::spawn(async move {
            let params = ListParams::default().labels("app=demo");
            while !s.load(Ordering::Relaxed) {
                if let Ok(list) = pods.list(&params).await {
                    let n = list.items.iter().filter(|p| ready(p)).count();
                    m.fetch_min(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        ReadyWatch { stop, min, task }
    }

    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.min.load(Ordering::Relaxed)
    }
}

async fn original_state(api: &Api<Deployment>) -> (i32, i32) {
    let d = api.get(ORIGINAL).await.expect("the original Deployment");
    let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
    let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    (replicas, ready)
}

async fn adopt(mode: &str, final_replicas: i32) {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace(&format!("e2e-adopt-{mode}")).await;
    let deployments: Api<Deployment> = ns.api();
    let pods: Api<Pod> = ns.api();
    let original: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": ORIGINAL, "labels": {"app": "demo"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "demo"}},
                 "template": template("1.0.0", 0.0, None)}
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &original)
        .await
        .expect("create the team's Deployment");
    wait_until(
        Duration::from_secs(90),
        "the team's 4 pods ready",
        || async { (original_state(&deployments).await.1 == 4).then_some(()) },
    )
    .await;

    // Steady load over every ready pod with the team's labels, as its Service would send it.
    let report = std::env::temp_dir().join(format!("{}-load.json", ns.name));
    let mut load = std::process::Command::new(env.bin("LOAD_GEN_BIN"))
        .args(["--namespace", &ns.name, "--selector", "app=demo"])
        .args([
            "--rate",
            "100",
            "--duration-secs",
            "150",
            "--refresh-ms",
            "200",
        ])
        .arg("--output")
        .arg(&report)
        .env("KUBECONFIG", env.kubeconfig())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start load-gen");
    let watch = ReadyWatch::start(pods.clone());

    let operator = Operator::start_args(&env, &ns.name, &[]);
    let rollouts: Api<Rollout> = ns.api();
    let mut manifest =
        serde_json::to_value(rollout(ROLLOUT, env.prometheus_url(), false)).expect("json");
    let spec = manifest["spec"].as_object_mut().expect("spec");
    spec.remove("template");
    spec.remove("selector");
    spec.insert(
        "workloadRef".into(),
        json!({"name": ORIGINAL, "scaleDown": mode}),
    );
    let manifest: Rollout = serde_json::from_value(manifest).expect("rollout");
    rollouts
        .create(&PostParams::default(), &manifest)
        .await
        .expect("create the Rollout");
    let adopted = wait_for(
        &rollouts,
        ROLLOUT,
        Duration::from_secs(150),
        "the adoption to complete",
        &operator,
        |s| {
            s.phase == Phase::Succeeded
                && s.adoption
                    .as_ref()
                    .is_some_and(|a| a.completed_at.is_some())
        },
    )
    .await;
    let status = adopted.status.clone().unwrap_or_default();
    let adoption = status.adoption.clone().expect("adoption status");
    assert_eq!(adoption.original_replicas, 4, "{adoption:?}");
    wait_until(
        Duration::from_secs(60),
        &format!("the original at {final_replicas} pods"),
        || async {
            let (replicas, ready) = original_state(&deployments).await;
            (replicas == final_replicas && ready == final_replicas).then_some(())
        },
    )
    .await;
    // The stable pods serve on their own for a while under the load.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let min_ready = watch.stop().await;

    // `kubectl scale` through the /scale subresource resizes the Rollout's stable track.
    env.run_bin(
        "KUBECTL",
        &[
            "-n",
            &ns.name,
            "scale",
            &format!("rollout/{ROLLOUT}"),
            "--replicas=6",
        ],
        None,
    );
    let scaled = wait_for(
        &rollouts,
        ROLLOUT,
        Duration::from_secs(60),
        "the scale to reach the stable track",
        &operator,
        |s| s.replicas == Some(6),
    )
    .await;
    let scaled_status = scaled.status.clone().unwrap_or_default();
    let scale_text = env.run_bin(
        "KUBECTL",
        &[
            "-n",
            &ns.name,
            "get",
            "--subresource=scale",
            &format!("rollout/{ROLLOUT}"),
            "-o",
            "json",
        ],
        None,
    );
    let scale: serde_json::Value = serde_json::from_str(&scale_text).expect("scale json");

    // Deleting the Rollout gives the Deployment back at its old size.
    rollouts
        .delete(ROLLOUT, &DeleteParams::default())
        .await
        .expect("delete the Rollout");
    wait_until(
        Duration::from_secs(150),
        "the Rollout to be gone",
        || async {
            rollouts
                .get_opt(ROLLOUT)
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        },
    )
    .await;
    let (restored, _) = original_state(&deployments).await;
    let mark = deployments
        .get(ORIGINAL)
        .await
        .ok()
        .and_then(|d| d.metadata.annotations)
        .and_then(|a| a.get("tollgate.dev/adopted-by").cloned());
    let (_, restored_ready) = wait_until(
        Duration::from_secs(90),
        "the original's 4 pods ready again",
        || async {
            let state = original_state(&deployments).await;
            (state.1 == 4).then_some(state)
        },
    )
    .await;

    let status_code = load.wait().expect("load-gen ends");
    let log = operator.log_tail();
    operator.assert_never_forbidden();
    drop(operator);
    let totals: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("load report")).expect("report json");
    println!(
        "adoption {mode}: min ready pods {min_ready}, load sent {} ok {} failed {} transport errors {} ticks without a ready backend {}; original {}->{} -> restored {restored} ({restored_ready} ready); scale {}",
        totals["sent"], totals["ok"], totals["failed"], totals["errors"], totals["skippedNoTarget"],
        adoption.original_replicas, final_replicas, scale
    );
    ns.delete().await;

    assert!(status_code.success(), "load-gen failed");
    assert!(min_ready >= 4, "ready pods dropped to {min_ready}\n{log}");
    assert_eq!(totals["skippedNoTarget"], json!(0), "{totals}");
    // Not one request failed: no pod was picked before it listened or after it was gone.
    assert_eq!(totals["failed"], json!(0), "{totals}");
    assert!(totals["sent"].as_u64().unwrap_or(0) > 1000, "{totals}");
    assert_eq!(
        restored, 4,
        "deleting the Rollout restores the original's size"
    );
    assert_eq!(mark, None, "the adopted-by mark is removed");
    assert_eq!(scale["spec"]["replicas"], json!(6), "{scale}");
    assert_eq!(scale["status"]["replicas"], json!(6), "{scale}");
    assert_eq!(
        scale["status"]["selector"],
        json!(format!("tollgate.dev/rollout={ROLLOUT}")),
        "{scale}"
    );
    assert_eq!(scaled_status.phase, Phase::Succeeded, "{scaled_status:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn adopting_with_scale_down_never_leaves_the_deployment_running() {
    adopt("never", 4).await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn adopting_with_scale_down_on_success_scales_it_to_zero_after_the_attestation() {
    adopt("onSuccess", 0).await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn adopting_progressively_never_leaves_fewer_ready_pods() {
    adopt("progressively", 0).await;
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn a_workload_ref_to_a_missing_deployment_is_invalid_spec_and_scales_nothing() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("e2e-adopt-missing").await;
    let operator = Operator::start_args(&env, &ns.name, &[]);
    let rollouts: Api<Rollout> = ns.api();
    let mut manifest =
        serde_json::to_value(rollout(ROLLOUT, env.prometheus_url(), false)).expect("json");
    let spec = manifest["spec"].as_object_mut().expect("spec");
    spec.remove("template");
    spec.remove("selector");
    spec.insert(
        "workloadRef".into(),
        json!({"name": "not-there", "scaleDown": "onSuccess"}),
    );
    let manifest: Rollout = serde_json::from_value(manifest).expect("rollout");
    rollouts
        .create(&PostParams::default(), &manifest)
        .await
        .expect("create the Rollout");
    let held = wait_for(
        &rollouts,
        ROLLOUT,
        Duration::from_secs(60),
        "InvalidSpec",
        &operator,
        |s| s.reason.as_deref() == Some("InvalidSpec"),
    )
    .await;
    let status = held.status.clone().unwrap_or_default();
    let deployments: Api<Deployment> = ns.api();
    let created = deployments
        .list(&ListParams::default())
        .await
        .expect("list deployments")
        .items
        .len();
    let stalled = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True");
    operator.assert_never_forbidden();
    drop(operator);
    ns.delete().await;

    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.workloadRef.name") && message.contains("not-there"),
        "{message}"
    );
    assert!(stalled, "{status:?}");
    assert_eq!(status.adoption, None, "nothing adopted");
    assert_eq!(created, 0, "no Deployment created or scaled");
}
