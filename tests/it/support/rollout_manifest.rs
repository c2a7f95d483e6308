//! The e2e Rollout `demo`: its manifest (four replicas, a 50% step and an analysis against the
//! given Prometheus), the demo-app pod template of a version, the merge patch a pipeline sends to
//! move it, and the evidence a finished rollout keeps.

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tollgate::crd::Rollout;

pub const NAME: &str = "demo";

/// Move the rollout to `version` with `template`, as a pipeline would.
pub async fn roll(api: &Api<Rollout>, version: &str, template: serde_json::Value) {
    let patch = json!({"spec": {"version": version, "template": template}});
    api.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the rollout");
}

pub fn template(version: &str, error_rate: f64, config: Option<&str>) -> serde_json::Value {
    template_with(version, error_rate, config, &[])
}

pub fn template_with(
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

pub fn rollout(name: &str, prometheus: &str, latency: bool) -> Rollout {
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

/// The error-rate metric's evidence in a finished rollout's status.
pub fn error_rate_evidence(status: &tollgate::crd::RolloutStatus) -> tollgate::crd::MetricStatus {
    status
        .analysis
        .as_ref()
        .expect("analysis evidence kept")
        .metrics
        .iter()
        .find(|m| m.name == "errorRate")
        .cloned()
        .expect("errorRate evidence")
}
