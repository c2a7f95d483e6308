//! The controller's view of the broker: [`BrokerPeer`] implements
//! [`crate::rollout::reconcile::ContractPeer`] over [`HttpBroker`]. This is the only place that
//! reads the Rollout CRD; it maps `spec.contractGate` onto the broker module's own types
//! (`BrokerConfig`, `CanIDeployRequest`, `DeploymentRecord`), reads the credentials Secret, and
//! turns every outcome into an answer, so the gate fails closed by construction.
//!
//! The poll cadence and the unknown budget belong to `rollout::decide` (its state is in the
//! Rollout status); one `ask` here is one can-i-deploy, with a few quick retries of transient
//! failures inside it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};

use super::client::{BrokerApi, HttpBroker};
use super::config::{credentials_from_secret_data, BrokerConfig, Credentials, RetryPolicy};
use super::gate::{ask_with_retries, classify, AnswerKind, ClassifiedAnswer};
use super::types::{CanIDeployRequest, DeploymentRecord, Ignore};
use crate::crd::{ContractGate, ContractSummary, Rollout};
use crate::rollout::decide::{ContractAnswer, RecordOutcome};
use crate::rollout::reconcile::{ContractPeer, PeerFuture};

/// The Pact Broker for the reconcile loop.
#[derive(Clone)]
pub struct BrokerPeer {
    /// Reads `spec.contractGate.credentialsSecretRef`; `None` only for brokers without credentials.
    kube: Option<Client>,
    /// Retries inside one ask (kept short: the reconcile waits for it).
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl BrokerPeer {
    pub fn new(kube: Client) -> Self {
        Self {
            kube: Some(kube),
            ..Self::without_secrets()
        }
    }

    /// A peer that cannot read Secrets: a Rollout naming one gets a `Refused` answer.
    pub fn without_secrets() -> Self {
        Self {
            kube: None,
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(2),
                max_retry_after: Duration::from_secs(5),
            },
            connect_timeout: super::config::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: super::config::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The client for this Rollout, or the answer to give when there is none.
    async fn broker_for(
        &self,
        rollout: &Rollout,
        gate: &ContractGate,
    ) -> Result<HttpBroker, ContractAnswer> {
        let credentials = match &gate.credentials_secret_ref {
            None => None,
            Some(r) => self.read_credentials(rollout, &r.name).await?,
        };
        let mut config = BrokerConfig::new(&gate.broker_url, credentials).map_err(|e| {
            ContractAnswer::Refused {
                reason: e.to_string(),
            }
        })?;
        config.connect_timeout = self.connect_timeout;
        config.request_timeout = self.request_timeout;
        HttpBroker::new(config).map_err(|e| ContractAnswer::Refused {
            reason: e.to_string(),
        })
    }

    async fn read_credentials(
        &self,
        rollout: &Rollout,
        name: &str,
    ) -> Result<Option<Credentials>, ContractAnswer> {
        let Some(kube) = &self.kube else {
            return Err(ContractAnswer::Refused {
                reason: format!(
                    "the broker credentials Secret {name:?} cannot be read: no Kubernetes client"
                ),
            });
        };
        let ns = rollout.namespace().unwrap_or_else(|| "default".to_string());
        let api: Api<Secret> = Api::namespaced(kube.clone(), &ns);
        match api.get_opt(name).await {
            Ok(Some(secret)) => {
                let data = secret.data.unwrap_or_default();
                credentials_from_secret_data(&data).map_err(|e| ContractAnswer::Refused {
                    reason: format!("Secret {ns}/{name}: {e}"),
                })
            }
            Ok(None) => Err(ContractAnswer::Refused {
                reason: format!(
                    "the broker credentials Secret {ns}/{name} does not exist (keys: token, or username and password)"
                ),
            }),
            // The API server may be briefly unavailable: not the broker's "no".
            Err(e) => Err(ContractAnswer::Unreachable {
                reason: format!("cannot read the broker credentials Secret {ns}/{name}: {e}"),
            }),
        }
    }
}

/// The can-i-deploy question a Rollout asks, when it has a contract gate.
pub fn request_for(rollout: &Rollout) -> Option<CanIDeployRequest> {
    let gate = rollout.spec.contract_gate.as_ref()?;
    Some(CanIDeployRequest {
        pacticipant: gate.pacticipant.clone(),
        version: rollout.spec.version.clone(),
        environment: gate.environment.clone(),
        ignore: gate
            .ignore
            .iter()
            .map(|i| Ignore {
                pacticipant: i.pacticipant.clone(),
                version: i.version.clone(),
            })
            .collect(),
    })
}

/// The deployment record for `version` (the new one after a promotion, the stable one after a
/// rollback).
pub fn record_for(rollout: &Rollout, version: &str) -> Option<DeploymentRecord> {
    let gate = rollout.spec.contract_gate.as_ref()?;
    Some(DeploymentRecord {
        pacticipant: gate.pacticipant.clone(),
        version: version.to_string(),
        environment: gate.environment.clone(),
        application_instance: gate.application_instance.clone(),
    })
}

/// Map a classified answer onto the state machine's.
pub fn answer_from(c: ClassifiedAnswer) -> ContractAnswer {
    let summary = c.counts.map(|n| ContractSummary {
        success: i64::try_from(n.success).unwrap_or(i64::MAX),
        failed: i64::try_from(n.failed).unwrap_or(i64::MAX),
        unknown: i64::try_from(n.unknown).unwrap_or(i64::MAX),
    });
    let reason = c.reason;
    match c.kind {
        AnswerKind::Deployable => ContractAnswer::Deployable { reason, summary },
        AnswerKind::NotDeployable => ContractAnswer::NotDeployable { reason, summary },
        AnswerKind::Unknown => ContractAnswer::Unknown { reason, summary },
        AnswerKind::Unreachable => ContractAnswer::Unreachable { reason },
        AnswerKind::Refused => ContractAnswer::Refused { reason },
    }
}

impl BrokerPeer {
    /// One can-i-deploy for the Rollout (the body of [`ContractPeer::ask`]).
    pub async fn ask_rollout(&self, rollout: &Rollout) -> ContractAnswer {
        let (Some(gate), Some(request)) =
            (rollout.spec.contract_gate.as_ref(), request_for(rollout))
        else {
            return ContractAnswer::Refused {
                reason: "the Rollout has no spec.contractGate".to_string(),
            };
        };
        let broker = match self.broker_for(rollout, gate).await {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let outcome = ask_with_retries(&broker, &request, &self.retry, tokio::time::sleep).await;
        answer_from(classify(&outcome))
    }

    /// One attempt to record `version` (the body of [`ContractPeer::record`]); the state machine
    /// spaces the attempts out and shows failures in status.
    pub async fn record_rollout(&self, rollout: &Rollout, version: &str) -> RecordOutcome {
        let (Some(gate), Some(record)) = (
            rollout.spec.contract_gate.as_ref(),
            record_for(rollout, version),
        ) else {
            return RecordOutcome::Failed {
                reason: "the Rollout has no spec.contractGate".to_string(),
            };
        };
        let broker = match self.broker_for(rollout, gate).await {
            Ok(b) => b,
            Err(
                ContractAnswer::Refused { reason }
                | ContractAnswer::Unreachable { reason }
                | ContractAnswer::Unknown { reason, .. }
                | ContractAnswer::NotDeployable { reason, .. }
                | ContractAnswer::Deployable { reason, .. },
            ) => return RecordOutcome::Failed { reason },
        };
        match broker.record_deployment(&record).await {
            Ok(_) => RecordOutcome::Recorded,
            Err(e) => RecordOutcome::Failed {
                reason: e.to_string(),
            },
        }
    }
}

impl ContractPeer for BrokerPeer {
    fn ask<'a>(&'a self, rollout: &'a Rollout) -> PeerFuture<'a, ContractAnswer> {
        Box::pin(self.ask_rollout(rollout))
    }

    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, RecordOutcome> {
        Box::pin(self.record_rollout(rollout, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::broker::gate::AnswerCounts;

    fn rollout(gate: serde_json::Value) -> Rollout {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {
                "version": "1.2.3",
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {"metadata": {"labels": {"app": "shop"}},
                             "spec": {"containers": [{"name": "shop", "image": "shop:1.2.3"}]}},
                "steps": [{"setWeight": 20}],
                "contractGate": gate
            }
        }))
        .expect("rollout")
    }

    #[test]
    fn maps_the_spec() {
        let r = rollout(serde_json::json!({
            "brokerUrl": "http://broker:9292", "pacticipant": "shop", "environment": "production",
            "ignore": [{"pacticipant": "legacy"}, {"pacticipant": "old", "version": "2.0"}],
            "applicationInstance": "eu"
        }));
        let q = request_for(&r).unwrap();
        assert_eq!(q.version, "1.2.3");
        assert_eq!(q.environment, "production");
        assert_eq!(
            q.ignore[1],
            Ignore {
                pacticipant: "old".into(),
                version: Some("2.0".into())
            }
        );
        let rec = record_for(&r, "1.2.2").unwrap();
        assert_eq!(rec.version, "1.2.2");
        assert_eq!(rec.application_instance.as_deref(), Some("eu"));
    }

    #[test]
    fn maps_the_five_answers() {
        let c = |kind| ClassifiedAnswer {
            kind,
            reason: "r".into(),
            counts: Some(AnswerCounts {
                success: 1,
                failed: 2,
                unknown: 3,
                ignored: 0,
            }),
            error: None,
        };
        assert!(matches!(
            answer_from(c(AnswerKind::Deployable)),
            ContractAnswer::Deployable {
                summary: Some(ContractSummary { failed: 2, .. }),
                ..
            }
        ));
        assert!(matches!(
            answer_from(c(AnswerKind::NotDeployable)),
            ContractAnswer::NotDeployable { .. }
        ));
        assert!(matches!(
            answer_from(c(AnswerKind::Unknown)),
            ContractAnswer::Unknown {
                summary: Some(ContractSummary { unknown: 3, .. }),
                ..
            }
        ));
        assert!(matches!(
            answer_from(c(AnswerKind::Unreachable)),
            ContractAnswer::Unreachable { .. }
        ));
        assert!(matches!(
            answer_from(c(AnswerKind::Refused)),
            ContractAnswer::Refused { .. }
        ));
    }

    #[tokio::test]
    async fn a_secret_without_a_client_is_refused_and_an_unreachable_broker_is_unreachable() {
        let r = rollout(serde_json::json!({
            "brokerUrl": "http://127.0.0.1:9/", "pacticipant": "shop", "environment": "production",
            "credentialsSecretRef": {"name": "pact-broker"}
        }));
        assert!(matches!(
            BrokerPeer::without_secrets().ask_rollout(&r).await,
            ContractAnswer::Refused { .. }
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let r = rollout(serde_json::json!({
            "brokerUrl": format!("http://127.0.0.1:{port}/"), "pacticipant": "shop", "environment": "production"
        }));
        let mut peer = BrokerPeer::without_secrets();
        peer.retry.max_attempts = 1;
        assert!(matches!(
            peer.ask_rollout(&r).await,
            ContractAnswer::Unreachable { .. }
        ));
        assert!(matches!(
            peer.record_rollout(&r, "1.2.3").await,
            RecordOutcome::Failed { .. }
        ));
    }
}
