//! The network peers of a reconcile, as the reconcile sees them: the Pact Broker
//! ([`ContractPeer`]) and the metrics backend with the judge ([`AnalysisPeer`]), and the
//! operator's default addresses for Rollouts that name none ([`PeerDefaults`]).
//!
//! The real implementations are in [`broker`] and [`prometheus`]. Each maps the Rollout's spec
//! onto its gate's own configuration (the gates know nothing of the CRD) and turns every failure
//! into an answer, so the pipeline fails closed by construction. The reconcile depends on the
//! traits only, so tests can put any peer behind them.

pub mod broker;
pub mod build_info;
pub mod prometheus;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::Api;
use kube::Client;

use crate::analysis::providers::prometheus::PrometheusProvider;
use crate::crd::{self, Rollout, RolloutStatus};
use crate::rollout::decide::undeployment::UndeployOutcome;
use crate::rollout::decide::{
    self, AnalysisLook, ContractAnswer, LookWindow, PeerHosts, RecordOutcome, SpecProblem,
};
use crate::util::credentials;
use crate::util::hosts::HostPattern;

/// A boxed future (the peer traits are used as trait objects).
pub type PeerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The Pact Broker, as the reconcile sees it. Every problem with the broker is an answer
/// (`Unreachable`, `Refused`, `Failed`) so the gate fails closed by construction; only a spec the
/// operator will not act on (a credentials Secret not meant for tollgate) is an error, and it
/// stops the rollout as `InvalidSpec`.
pub trait ContractPeer: Send + Sync {
    /// Ask can-i-deploy once for the rollout's version (the poll cadence is `decide`'s).
    fn ask<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> PeerFuture<'a, Result<ContractAnswer, SpecProblem>>;
    /// Record `version` as deployed to the rollout's environment.
    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, Result<RecordOutcome, SpecProblem>>;
    /// Tell the broker that `version` no longer runs on the rollout's application instance of
    /// its environment (a deleted Rollout). One attempt; every problem is an outcome.
    fn undeploy<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, UndeployOutcome>;
}

/// The metrics backend and the judge, as the reconcile sees them. Missing data is a look with
/// `data_missing` (never a rollback, never a promotion); only a spec the judge cannot work with
/// (an invalid policy) is an error, and it stops the rollout as `InvalidSpec`.
pub trait AnalysisPeer: Send + Sync {
    /// Judge the window, continuing from the judge state kept in `status`.
    fn look<'a>(
        &'a self,
        rollout: &'a Rollout,
        status: &'a RolloutStatus,
        window: &'a LookWindow,
    ) -> PeerFuture<'a, Result<AnalysisLook, SpecProblem>>;

    /// The Prometheus client the fleet check reads `build_info` series with
    /// (`spec.fleetCheck.source: prometheus`): the analysis's Prometheus and credentials, else the
    /// operator's default Prometheus. The inner error is passing trouble (a credentials Secret
    /// not there yet): the pods are then unanswered and the rollout holds.
    fn fleet_prometheus<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> PeerFuture<'a, Result<Result<PrometheusProvider, String>, SpecProblem>>;
}

/// Why a Secret cannot be read as credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretError {
    /// Missing or unreadable: it may appear in a moment (wait within the gate's budget).
    Unavailable(String),
    /// Present but not meant as tollgate credentials: a problem with the spec.
    NotCredentials(String),
}

/// Reads a Secret's data in the Rollout's namespace, only if it is marked as tollgate
/// credentials (see [`credentials::usable_secret`]).
pub(crate) async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, ByteString>, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(secret)) => {
            credentials::usable_secret(secret.metadata.labels.as_ref(), secret.type_.as_deref())
                .map_err(|e| SecretError::NotCredentials(format!("Secret {name}: {e}")))?;
            Ok(secret.data.unwrap_or_default())
        }
        Ok(None) => Err(SecretError::Unavailable(format!(
            "Secret {namespace}/{name} not found"
        ))),
        Err(e) => Err(SecretError::Unavailable(format!(
            "cannot read Secret {namespace}/{name}: {e}"
        ))),
    }
}

/// Addresses used when a Rollout names none: the operator's `--broker-url` and
/// `--prometheus-url` (chart values `broker.url` and `prometheus.url`); and the hosts a Rollout's
/// own addresses may be on besides these (`--allowed-broker-hosts`, `--allowed-prometheus-hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerDefaults {
    pub broker_url: Option<String>,
    pub prometheus_url: Option<String>,
    pub allowed_broker_hosts: Vec<HostPattern>,
    pub allowed_prometheus_hosts: Vec<HostPattern>,
}

impl PeerDefaults {
    /// Why the Rollout's own addresses or timeouts may not be used, if they may not (see
    /// [`decide::peer_problem`]).
    pub fn problem(&self, spec: &crd::RolloutSpec) -> Option<SpecProblem> {
        let broker = PeerHosts {
            default_url: self.broker_url.as_deref(),
            allowed: &self.allowed_broker_hosts,
        };
        let prometheus = PeerHosts {
            default_url: self.prometheus_url.as_deref(),
            allowed: &self.allowed_prometheus_hosts,
        };
        decide::peer_problem(spec, broker, prometheus).or_else(|| decide::timeout_problem(spec))
    }

    /// The broker URL for `gate`: its own, else the default.
    pub fn broker_url(&self, gate: &crd::ContractGateSpec) -> Option<String> {
        gate.broker_url.clone().or_else(|| self.broker_url.clone())
    }

    /// The Prometheus address for `analysis`: its own, else the default.
    pub fn prometheus_url(&self, analysis: &crd::AnalysisSpec) -> Option<String> {
        analysis
            .provider
            .prometheus
            .address
            .clone()
            .or_else(|| self.prometheus_url.clone())
    }

    /// Why the rollout cannot be run with these defaults (a gate without an address), if so.
    /// A permanent error: the rollout waits for a change, with `InvalidSpec` in its status.
    pub fn missing_address(&self, spec: &crd::RolloutSpec) -> Option<String> {
        if let Some(gate) = &spec.contract_gate {
            if self.broker_url(gate).is_none() {
                return Some(
                    "spec.contractGate.brokerUrl is not set and the operator has no default \
                     (--broker-url, chart value broker.url)"
                        .into(),
                );
            }
        }
        if let Some(analysis) = &spec.analysis {
            if self.prometheus_url(analysis).is_none() {
                return Some(
                    "spec.analysis.provider.prometheus.address is not set and the operator has \
                     no default (--prometheus-url, chart value prometheus.url)"
                        .into(),
                );
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_rollouts_own_address_wins_over_the_default_and_neither_is_refused() {
        let mut spec: crd::RolloutSpec = serde_json::from_value(json!({
            "version": "1.0.0", "selector": {"matchLabels": {"app": "a"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}},
            "contractGate": {"pacticipant": "a", "environment": "production"},
            "steps": [{"setWeight": 50}],
            "analysis": {"errorRate": {}}
        }))
        .unwrap();
        let none = PeerDefaults::default();
        let problem = none.missing_address(&spec).expect("no broker anywhere");
        assert!(
            problem.contains("brokerUrl") && problem.contains("--broker-url"),
            "{problem}"
        );
        let defaults = PeerDefaults {
            broker_url: Some("http://broker.default".into()),
            prometheus_url: Some("http://prom.default".into()),
            ..PeerDefaults::default()
        };
        assert_eq!(defaults.missing_address(&spec), None);
        let gate = spec.contract_gate.clone().unwrap();
        let analysis = spec.analysis.clone().unwrap();
        assert_eq!(
            defaults.broker_url(&gate).as_deref(),
            Some("http://broker.default")
        );
        assert_eq!(
            defaults.prometheus_url(&analysis).as_deref(),
            Some("http://prom.default")
        );
        spec.contract_gate.as_mut().unwrap().broker_url = Some("http://own".into());
        let only_broker = PeerDefaults::default();
        let problem = only_broker
            .missing_address(&spec)
            .expect("no Prometheus anywhere");
        assert!(problem.contains("prometheus.address"), "{problem}");
        spec.analysis.as_mut().unwrap().provider.prometheus.address = Some("http://own-p".into());
        assert_eq!(only_broker.missing_address(&spec), None);
        assert_eq!(
            defaults
                .prometheus_url(spec.analysis.as_ref().unwrap())
                .as_deref(),
            Some("http://own-p")
        );
    }
}
