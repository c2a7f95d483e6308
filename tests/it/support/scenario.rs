//! One e2e test's world: a fresh namespace, an operator watching it, and the Rollout `demo` whose
//! 1.0.0 is stable and attested, with load running over its pods (or through its HTTPRoute).
//! Helpers to roll to a version, wait for the outcome (checked against Argo CD's health check),
//! and kill the operator in every phase.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use serde_json::json;
use tollgate::crd::{Phase, Rollout};

use super::argocd::argocd_health;
use super::cluster::{TestEnv, TestNamespace};
use super::http_route::{create_grpc_route, create_http_route};
use super::load::Load;
use super::operator::Operator;
use super::rollout_manifest::{roll, rollout, template, NAME};
use super::rollout_watch::wait_for;
use super::webhook_sink::Webhook;

/// One test's world: a namespace, an operator watching it, and a Rollout `demo` whose 1.0.0 is
/// stable, with load running over its pods.
pub struct Scenario {
    /// Extra flags of every operator this scenario starts.
    pub operator_args: Vec<String>,
    /// The kubeconfig of every operator this scenario starts, when not the chart
    /// ServiceAccount's direct one.
    pub operator_kubeconfig: Option<std::path::PathBuf>,
    pub env: TestEnv,
    pub ns: TestNamespace,
    pub operator: Operator,
    pub api: Api<Rollout>,
    pub _load: Option<Load>,
}

/// How a scenario differs from the default (replica-ratio traffic, the run's Prometheus, error
/// rate only).
#[derive(Default)]
pub struct Options {
    /// Also judge p99 latency and the whole distribution.
    pub latency: bool,
    /// Another Prometheus than the run's.
    pub prometheus: Option<String>,
    /// Shift traffic through a Gateway API HTTPRoute instead of the replica ratio.
    pub http_route: bool,
    /// Shift traffic through a Gateway API GRPCRoute instead (wins over `http_route`).
    pub grpc_route: bool,
    /// Notify this webhook (`--webhook-url`).
    pub webhook: Option<String>,
    /// Another cluster than the run's (a test's private control plane).
    pub env: Option<TestEnv>,
    /// The operator reaches the API server at this URL (e.g. a fault proxy) instead of directly.
    pub apiserver: Option<String>,
    /// `spec.contractGate` of the Rollout (none by default).
    pub contract_gate: Option<serde_json::Value>,
    /// More flags for every operator the scenario starts.
    pub operator_args: Vec<String>,
    /// Annotations of the Rollout.
    pub annotations: Vec<(String, String)>,
}

impl Scenario {
    pub async fn with_stable_v1(test: &str) -> Scenario {
        Scenario::start(test, false).await
    }

    /// The default scenario with an operator that notifies `webhook`.
    pub async fn notifying(test: &str, webhook: &Webhook) -> Scenario {
        let options = Options {
            webhook: Some(webhook.url.clone()),
            ..Options::default()
        };
        Scenario::start_with(test, options).await
    }

    pub async fn start(test: &str, latency: bool) -> Scenario {
        Scenario::start_with(
            test,
            Options {
                latency,
                ..Options::default()
            },
        )
        .await
    }

    pub async fn start_with(test: &str, options: Options) -> Scenario {
        let env = options.env.clone().unwrap_or_else(TestEnv::load);
        env.install_crds().await;
        let ns = env.namespace(test).await;
        let mut operator_args = Vec::new();
        if let Some(url) = &options.webhook {
            operator_args.extend(["--webhook-url".to_string(), url.clone()]);
        }
        operator_args.extend(options.operator_args.iter().cloned());
        let operator_kubeconfig = options
            .apiserver
            .as_deref()
            .map(|server| env.chart_service_account_kubeconfig_via(&ns.name, server));
        let operator = start_operator(&env, &ns.name, &operator_args, &operator_kubeconfig);
        let api: Api<Rollout> = ns.api();
        let prometheus = options
            .prometheus
            .clone()
            .unwrap_or_else(|| env.prometheus_url().to_string());
        let mut manifest = serde_json::to_value(rollout(NAME, &prometheus, options.latency))
            .expect("rollout as JSON");
        if options.grpc_route {
            env.install_gateway_api_kind("grpcroutes").await;
            create_grpc_route(&ns).await;
            manifest["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {
                "kind": "GRPCRoute", "name": NAME, "stableService": "demo-stable",
                "canaryService": "demo-canary", "port": 8080}});
        } else if options.http_route {
            env.install_gateway_api().await;
            create_http_route(&ns).await;
            manifest["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {
                "name": NAME, "stableService": "demo-stable", "canaryService": "demo-canary",
                "port": 8080}});
        }
        if let Some(gate) = &options.contract_gate {
            manifest["spec"]["contractGate"] = gate.clone();
        }
        for (key, value) in &options.annotations {
            manifest["metadata"]["annotations"][key] = json!(value);
        }
        let manifest: Rollout = serde_json::from_value(manifest).expect("rollout manifest");
        api.create(&PostParams::default(), &manifest)
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
        let load = if options.grpc_route {
            Load::spawn(
                &env,
                &["--namespace", &ns.name, "--grpc-route", NAME],
                200,
                300,
            )
        } else if options.http_route {
            Load::through_route(&env, &ns.name, NAME, 200, 300)
        } else {
            Load::start(&env, &ns.name, NAME, 200, 300)
        };
        Scenario {
            operator_args,
            operator_kubeconfig,
            env,
            ns,
            operator,
            api,
            _load: Some(load),
        }
    }

    /// A pod `name` left behind on `version` with the canary's labels (the Knight Capital
    /// failure: one instance still runs the old code where the new one should be): the canary's
    /// Service and the load reach it, and no Deployment of the Rollout owns it.
    pub async fn create_leftover_canary_pod(&self, name: &str, version: &str) {
        let pods: Api<k8s_openapi::api::core::v1::Pod> = self.ns.api();
        let mut manifest = template(version, 0.05, None);
        manifest["metadata"] = json!({
            "name": name,
            "labels": {"app": "demo", "tollgate.dev/rollout": NAME, "tollgate.dev/track": "canary"}
        });
        let pod = serde_json::from_value(manifest).expect("pod manifest");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create the leftover pod");
    }

    pub async fn roll_to(&self, version: &str, error_rate: f64, config: Option<&str>) {
        self.roll_to_template(version, template(version, error_rate, config))
            .await
    }

    pub async fn roll_to_template(&self, version: &str, template: serde_json::Value) {
        roll(&self.api, version, template).await
    }

    pub async fn wait(
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
    pub async fn finished(&self, version: &str) -> tollgate::crd::RolloutStatus {
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
        // What Argo CD's health check (deploy/argocd/rollout-health.lua) makes of the live
        // object: the outcome, never "still progressing".
        let live = serde_json::to_value(&r).expect("rollout as JSON");
        let (health, message) = argocd_health(&live);
        let status = r.status.unwrap_or_default();
        let want = match status.phase {
            Phase::Succeeded => "Healthy",
            _ => "Degraded",
        };
        assert_eq!(
            health, want,
            "Argo CD health of {:?}: {message}",
            status.phase
        );
        status
    }

    /// Replicas the canary Deployment is asked for (None when there is none).
    pub async fn canary_replicas(&self) -> Option<i32> {
        let deployments: Api<Deployment> = self.ns.api();
        let canary = deployments.get_opt("demo-canary").await.ok().flatten();
        canary.and_then(|d| d.spec).and_then(|s| s.replicas)
    }

    /// Until the rollout of `version` has ended, SIGKILL the operator (and start a fresh one)
    /// the first time the rollout is seen in each phase. Returns those phases in order.
    pub async fn kill_in_every_phase(&mut self, version: &str) -> Vec<Phase> {
        let mut killed_in = Vec::new();
        let start = std::time::Instant::now();
        loop {
            if let Ok(r) = self.api.get(NAME).await {
                let s = r.status.unwrap_or_default();
                let about_version = s.canary_version.as_deref() == Some(version)
                    || s.stable_version.as_deref() == Some(version)
                    || s.rejected_version.as_deref() == Some(version);
                if s.phase.is_terminal() && s.canary_version.is_none() && about_version {
                    return killed_in;
                }
                if about_version && !killed_in.contains(&s.phase) {
                    killed_in.push(s.phase);
                    self.kill_and_restart_operator();
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the {version} rollout did not end; killed in {killed_in:?}\n{}",
                self.operator.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kill the operator with SIGKILL (no shutdown at all) and start a fresh one.
    pub fn kill_and_restart_operator(&mut self) {
        let _ = self.operator.child.kill(); // SIGKILL on Unix
        let _ = self.operator.child.wait();
        self.operator = start_operator(
            &self.env,
            &self.ns.name,
            &self.operator_args,
            &self.operator_kubeconfig,
        );
    }

    pub async fn end(self) {
        let _ = &self.env;
        self.operator.assert_never_forbidden();
        drop(self.operator);
        self.ns.delete().await;
    }
}

/// An operator with the scenario's flags, through its own kubeconfig when it has one.
fn start_operator(
    env: &TestEnv,
    namespace: &str,
    args: &[String],
    kubeconfig: &Option<std::path::PathBuf>,
) -> Operator {
    match kubeconfig {
        None => Operator::start_args(env, namespace, args),
        Some(path) => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Operator::start_with_kubeconfig(env, namespace, "operator", path, &args)
        }
    }
}
