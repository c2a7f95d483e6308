//! A real HorizontalPodAutoscaler scales a Rollout in the middle of its canary analysis: the
//! test cluster's kube-controller-manager runs the HPA controller, metrics-server serves the
//! metrics API, and kwok emulates the kubelet resource metrics it scrapes (a pod's CPU usage is
//! its `kwok.x-k8s.io/usage-cpu` annotation). The Rollout `demo` runs 2 pods with 100m CPU
//! requests under load; the HPA (min 2, max 6, 50% CPU) keeps it at 2 while the pods idle.
//! Once 2.0.0's analysis is under way at 50%, its pods are made busy (500m each) and the HPA
//! scales the Rollout to 6. Asserted: the HPA's own rescale Event, `spec.replicas` 6, the weight
//! and step unchanged, the analysis neither restarted (same start, looks growing) nor ended by
//! the scale, the tracks resized to the documented split (3 stable + 3 canary), and the rollout
//! then promoting 2.0.0 on all 6 pods.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tollgate::crd::{Phase, Rollout, RolloutStatus};

use crate::support::cluster::{TestEnv, TestNamespace};
use crate::support::load::Load;
use crate::support::operator::Operator;
use crate::support::rollout_manifest::{roll, rollout, template, NAME};
use crate::support::rollout_watch::wait_for;
use crate::support::wait::wait_until;

/// Every pod's CPU request: the HPA's utilization is usage over request.
const CPU_REQUEST: &str = "100m";
/// What the test makes each pod of the canary step use: 500% of its request.
const BUSY_CPU: &str = "500m";

/// The demo-app template of `version` with CPU and memory requests.
fn template_with_requests(version: &str) -> serde_json::Value {
    let mut t = template(version, 0.05, None);
    t["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": CPU_REQUEST, "memory": "32Mi"}});
    t
}

/// 2 pods, 50% then a long analysis. `minRequests` keeps the judge from passing early (the
/// canary serves about 100 requests a second at this load, before and after the scale, since
/// the replica ratio stays 50%): the analysis is still running well after the HPA acted.
fn manifest(prometheus: &str) -> Rollout {
    let mut m = serde_json::to_value(rollout(NAME, prometheus, false)).expect("rollout as JSON");
    m["spec"]["replicas"] = json!(2);
    m["spec"]["template"] = template_with_requests("1.0.0");
    m["spec"]["steps"] = json!([{"setWeight": 50}, {"analyze": {"duration": "6m"}}]);
    m["spec"]["analysis"]["minRequests"] = json!(9000);
    serde_json::from_value(m).expect("rollout manifest")
}

/// min 2, max 6, 50% CPU; scale-ups act at once, scale-downs never (so the 4 new, idle pods
/// cannot bring it back down while the test watches).
fn hpa() -> HorizontalPodAutoscaler {
    serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME},
        "spec": {
            "scaleTargetRef": {"apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout", "name": NAME},
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 10, "periodSeconds": 15}]},
                "scaleDown": {"selectPolicy": "Disabled"}
            }
        }
    }))
    .expect("hpa manifest")
}

/// The HPA's Events as `kubectl describe` lists them: `reason: message (xN)`.
async fn hpa_events(ns: &TestNamespace) -> Vec<(String, String)> {
    let events: Api<Event> = ns.api();
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={NAME}"
    ));
    let mut list = events
        .list(&params)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    list.sort_by_key(|e| e.first_timestamp.clone().map(|t| t.0));
    list.into_iter()
        .map(|e| {
            let at = e
                .last_timestamp
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            let line = format!(
                "{}: {} (x{})",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.count.unwrap_or(1)
            );
            (at, line)
        })
        .collect()
}

/// The HPA's status in one line: current/desired replicas, utilization, last scale time.
async fn hpa_status(api: &Api<HorizontalPodAutoscaler>) -> String {
    let Ok(h) = api.get(NAME).await else {
        return "no HPA".into();
    };
    let s = h.status.unwrap_or_default();
    let utilization: Vec<String> = s
        .current_metrics
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.resource.as_ref())
        .map(|r| {
            format!(
                "{} {:?}% ({:?})",
                r.name, r.current.average_utilization, r.current.average_value
            )
        })
        .collect();
    format!(
        "current {:?} desired {} utilization {utilization:?} lastScaleTime {:?}",
        s.current_replicas,
        s.desired_replicas,
        s.last_scale_time.map(|t| t.0.to_string())
    )
}

async fn child_replicas(deployments: &Api<Deployment>, name: &str) -> Option<i32> {
    let d = deployments.get_opt(name).await.ok().flatten()?;
    d.spec.and_then(|s| s.replicas)
}

/// The metrics API's view of the namespace's pods: `name cpu` per pod.
fn pod_metrics(env: &TestEnv, ns: &str) -> Vec<String> {
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods");
    let text = env.kubectl(&["get", "--raw", &path]);
    let list: serde_json::Value = serde_json::from_str(&text).expect("PodMetricsList JSON");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["metadata"]["name"].as_str().unwrap_or(""),
                p["containers"][0]["usage"]["cpu"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

async fn wait(
    rollouts: &Api<Rollout>,
    operator: &Operator,
    what: &str,
    done: impl Fn(&RolloutStatus) -> bool,
) -> Rollout {
    wait_for(
        rollouts,
        NAME,
        Duration::from_secs(120),
        what,
        operator,
        done,
    )
    .await
}

#[tokio::test]
#[ignore = "needs the local cluster: run tests/run-all.sh"]
async fn an_hpa_scales_the_rollout_mid_canary_keeping_the_weight_and_the_analysis() {
    let env = TestEnv::load();
    assert_eq!(
        env.var("TOLLGATE_METRICS_API"),
        "1",
        "this test needs the metrics API: tests/cluster/build.sh builds metrics-server and \
         tests/cluster/start.sh starts it (unless TOLLGATE_METRICS_SERVER=0)"
    );
    env.install_crds().await;
    let ns = env.namespace("e2e-hpa").await;
    let operator = Operator::start_args(&env, &ns.name, &[]);
    let rollouts: Api<Rollout> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let hpas: Api<HorizontalPodAutoscaler> = ns.api();
    rollouts
        .create(&PostParams::default(), &manifest(env.prometheus_url()))
        .await
        .expect("create the Rollout");
    wait(&rollouts, &operator, "1.0.0 stable on 2 pods", |s| {
        s.phase == Phase::Succeeded && s.stable_version.as_deref() == Some("1.0.0")
    })
    .await;
    hpas.create(&PostParams::default(), &hpa())
        .await
        .expect("create the HPA");
    let _load = Load::start(&env, &ns.name, NAME, 200, 600);

    // The metrics API reports the idle pods, and the HPA, having read them, holds at 2.
    let idle_utilization = wait_until(
        Duration::from_secs(90),
        "the HPA to read the pods' CPU through the metrics API",
        || async {
            let status = hpas.get(NAME).await.ok()?.status?;
            status
                .current_metrics
                .unwrap_or_default()
                .iter()
                .find_map(|m| m.resource.as_ref()?.current.average_utilization)
        },
    )
    .await;
    let idle_status = hpa_status(&hpas).await;
    let idle_metrics = pod_metrics(&env, &ns.name);
    let idle_spec = rollouts.get(NAME).await.expect("rollout").spec.replicas;

    // 2.0.0 at 50%, its analysis under way.
    roll(&rollouts, "2.0.0", template_with_requests("2.0.0")).await;
    let analyzing = wait(
        &rollouts,
        &operator,
        "2.0.0's analysis under way at 50%",
        |s| {
            s.phase == Phase::Analyzing
                && s.current_weight == 50
                && s.current_step_index == Some(1)
                && s.analysis.as_ref().is_some_and(|a| a.looks >= 1)
        },
    )
    .await
    .status
    .unwrap_or_default();
    let analysis = analyzing.analysis.clone().expect("analysis");
    let started_at = analysis.started_at;
    assert!(started_at.is_some(), "{analysis:?}");

    // The pods get busy: 500m each, 500% of their request.
    env.kubectl(&[
        "-n",
        &ns.name,
        "annotate",
        "pods",
        "-l",
        &format!("tollgate.dev/rollout={NAME}"),
        &format!("kwok.x-k8s.io/usage-cpu={BUSY_CPU}"),
        "--overwrite",
    ]);
    let busy_at = jiff::Timestamp::now();

    // The HPA scales the Rollout while the analysis runs.
    let scaled = wait_until(
        Duration::from_secs(120),
        "the HPA to scale the Rollout to 6",
        || async {
            let r = rollouts.get(NAME).await.ok()?;
            let status = r.status.clone().unwrap_or_default();
            assert_eq!(
                status.phase,
                Phase::Analyzing,
                "the analysis ended before the HPA scaled (raise minRequests): {status:#?}\nHPA {}",
                hpa_status(&hpas).await
            );
            (r.spec.replicas == 6).then_some(status)
        },
    )
    .await;
    let scaled_after = jiff::Timestamp::now().duration_since(busy_at);
    let looks_at_scale = scaled.analysis.as_ref().map_or(0, |a| a.looks);

    // The tracks follow (replica ratio at 50%: 3 canary, 3 stable), the weight, the step and
    // the analysis stay, and the judge keeps looking.
    let (stable, canary) = wait_until(
        Duration::from_secs(60),
        "the tracks resized to 3 + 3",
        || async {
            let stable = child_replicas(&deployments, &format!("{NAME}-stable")).await;
            let canary = child_replicas(&deployments, &format!("{NAME}-canary")).await;
            (stable == Some(3) && canary == Some(3)).then_some((stable, canary))
        },
    )
    .await;
    let carrying_on = wait_for(
        &rollouts,
        NAME,
        Duration::from_secs(90),
        "two more looks after the scale",
        &operator,
        |s| {
            s.replicas == Some(6)
                && s.analysis
                    .as_ref()
                    .is_some_and(|a| a.looks >= looks_at_scale + 2)
        },
    )
    .await
    .status
    .unwrap_or_default();
    let events = hpa_events(&ns).await;
    let scaled_status = hpa_status(&hpas).await;
    let busy_metrics = pod_metrics(&env, &ns.name);

    // Then the rollout completes on all 6 pods.
    let done = wait_for(
        &rollouts,
        NAME,
        Duration::from_secs(420),
        "2.0.0 promoted",
        &operator,
        |s| {
            s.canary_version.is_none()
                && matches!(s.phase, Phase::Succeeded | Phase::RolledBack)
                && (s.stable_version.as_deref() == Some("2.0.0")
                    || s.rejected_version.as_deref() == Some("2.0.0"))
        },
    )
    .await;
    let final_spec = done.spec.replicas;
    let final_status = done.status.unwrap_or_default();
    let final_stable = wait_until(Duration::from_secs(60), "the stable track at 6", || async {
        let n = child_replicas(&deployments, &format!("{NAME}-stable")).await;
        (n == Some(6)).then_some(n)
    })
    .await;
    let log = operator.log_tail();
    println!(
        "hpa e2e: idle: spec.replicas {idle_spec}, HPA {idle_status}, pod metrics {idle_metrics:?}"
    );
    println!(
        "hpa e2e: pods busy ({BUSY_CPU} each) -> Rollout spec.replicas 6 after {:.1}s, at look {looks_at_scale} of the analysis started {started_at:?}",
        scaled_after.as_secs_f64()
    );
    println!("hpa e2e: HPA {scaled_status}, pod metrics {busy_metrics:?}");
    for (at, line) in &events {
        println!("hpa e2e: HPA event {at} {line}");
    }
    println!(
        "hpa e2e: after the scale: weight {} step {:?} phase {:?} tracks stable {stable:?} canary {canary:?}, looks {} (analysis started {:?})",
        carrying_on.current_weight,
        carrying_on.current_step_index,
        carrying_on.phase,
        carrying_on.analysis.as_ref().map_or(0, |a| a.looks),
        carrying_on.analysis.as_ref().and_then(|a| a.started_at)
    );
    println!(
        "hpa e2e: end: {:?} stable {:?}, spec.replicas {final_spec}, stable track {final_stable:?}",
        final_status.phase, final_status.stable_version
    );
    operator.assert_never_forbidden();
    drop(operator);
    ns.delete().await;

    assert!(idle_utilization < 50, "idle pods: {idle_status}");
    assert_eq!(idle_spec, 2, "the idle pods kept the HPA at its minimum");
    assert!(
        events
            .iter()
            .any(|(_, l)| l.starts_with("SuccessfulRescale: New size: 6")),
        "the HPA says it rescaled to 6: {events:?}"
    );
    assert_eq!(carrying_on.phase, Phase::Analyzing, "{carrying_on:#?}");
    assert_eq!(carrying_on.current_weight, 50, "the weight is unchanged");
    assert_eq!(
        carrying_on.current_step_index,
        Some(1),
        "the step is unchanged"
    );
    let carried = carrying_on.analysis.clone().expect("analysis");
    assert_eq!(
        carried.started_at, started_at,
        "the analysis was not restarted"
    );
    assert!(
        carried.looks > analysis.looks,
        "{carried:?} vs {analysis:?}"
    );
    assert_eq!(carrying_on.stable_version.as_deref(), Some("1.0.0"));
    assert_eq!(carrying_on.canary_version.as_deref(), Some("2.0.0"));
    assert_eq!(
        final_status.phase,
        Phase::Succeeded,
        "{final_status:#?}\n{log}"
    );
    assert_eq!(final_status.stable_version.as_deref(), Some("2.0.0"));
    assert_eq!(final_spec, 6, "the HPA's total stays");
    assert_eq!(
        final_status.analysis.and_then(|a| a.started_at),
        started_at,
        "one analysis from start to promotion"
    );
}
