//! The Pact Broker behind [`ContractPeer`]: the broker client of `gates::broker`, configured
//! from `spec.contractGate` (its URL or the operator's default, credentials from a Secret).

use kube::{Client, ResourceExt};

use super::{secret_data, ContractPeer, PeerDefaults, PeerFuture, SecretError};
use crate::crd::{self, ContractSummary, Rollout};
use crate::gates::broker::{
    self, AnswerKind, BrokerApi, BrokerConfig, CanIDeployRequest, DeploymentRecord, HttpBroker,
    Ignore, RetryPolicy, UndeploymentRecord,
};
use crate::rollout::decide::undeployment::UndeployOutcome;
use crate::rollout::decide::{ContractAnswer, RecordOutcome, SpecProblem};
use crate::util::credentials;

/// Longest one broker request from inside a reconcile may take (connect, send, read).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The Pact Broker.
pub struct BrokerPeer {
    client: Client,
    retry: RetryPolicy,
    defaults: PeerDefaults,
}

impl BrokerPeer {
    /// A broker peer reading credential Secrets through `client`, with the operator's
    /// default addresses.
    pub fn new(client: Client, defaults: PeerDefaults) -> Self {
        BrokerPeer {
            client,
            defaults,
            retry: RetryPolicy::RECONCILE_BROKER,
        }
    }

    /// The broker client for a rollout, or the answer (or the problem with the spec) that says
    /// why there is none.
    async fn broker(
        &self,
        rollout: &Rollout,
    ) -> Result<(HttpBroker, crd::ContractGateSpec), Result<ContractAnswer, SpecProblem>> {
        let refused = |reason: String| Err(Ok(ContractAnswer::Refused { reason }));
        let Some(gate) = rollout.spec.contract_gate.clone() else {
            return refused("spec.contractGate is not set".into());
        };
        let credentials = match &gate.credentials_secret_ref {
            None => None,
            Some(secret) => {
                let namespace = rollout.namespace().unwrap_or_default();
                // A Secret that is missing may be created in a moment: wait within the budget.
                let data = match secret_data(&self.client, &namespace, &secret.name).await {
                    Ok(data) => data,
                    Err(SecretError::Unavailable(reason)) => {
                        return Err(Ok(ContractAnswer::Unreachable { reason }))
                    }
                    Err(SecretError::NotCredentials(m)) => {
                        return Err(Err(SpecProblem::new(format!(
                            "spec.contractGate.credentialsSecretRef: {m}"
                        ))))
                    }
                };
                match credentials::from_secret_data(&data) {
                    Ok(c) => Some(c),
                    Err(e) => return refused(format!("Secret {}: {e}", secret.name)),
                }
            }
        };
        let Some(url) = self.defaults.broker_url(&gate) else {
            return refused(
                self.defaults
                    .missing_address(&rollout.spec)
                    .unwrap_or_default(),
            );
        };
        let client = BrokerConfig::new(&url, credentials)
            .map_err(|e| e.to_string())
            .and_then(|mut config| {
                // A reconcile worker is shared by every Rollout: one request holds it briefly.
                config.request_timeout = REQUEST_TIMEOUT;
                config.connect_timeout = REQUEST_TIMEOUT.min(config.connect_timeout);
                HttpBroker::new(config).map_err(|e| e.to_string())
            });
        match client {
            Ok(client) => Ok((client, gate)),
            Err(e) => refused(format!("spec.contractGate: {e}")),
        }
    }
}

/// The broker's classified answer as `decide` takes it.
pub fn contract_answer(classified: broker::ClassifiedAnswer) -> ContractAnswer {
    let summary = classified.counts.map(|c| ContractSummary {
        success: i64::try_from(c.success).unwrap_or(i64::MAX),
        failed: i64::try_from(c.failed).unwrap_or(i64::MAX),
        unknown: i64::try_from(c.unknown).unwrap_or(i64::MAX),
    });
    let reason = classified.reason;
    match classified.kind {
        AnswerKind::Deployable => ContractAnswer::Deployable { reason, summary },
        AnswerKind::NotDeployable => ContractAnswer::NotDeployable { reason, summary },
        AnswerKind::Unknown => ContractAnswer::Unknown { reason, summary },
        AnswerKind::Unreachable => ContractAnswer::Unreachable { reason },
        AnswerKind::Refused => ContractAnswer::Refused { reason },
    }
}

impl ContractPeer for BrokerPeer {
    fn ask<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> PeerFuture<'a, Result<ContractAnswer, SpecProblem>> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(answer) => return answer,
            };
            let request = CanIDeployRequest {
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
            };
            // The same ask as `tollgate can-i-deploy`, classified; but one attempt per reconcile:
            // a retry is decide's next ask (a poll interval later, counted in status), never a
            // sleep that holds a worker other Rollouts share.
            let (classified, _) =
                broker::ask(&client, &request, &self.retry, tokio::time::sleep).await;
            Ok(contract_answer(classified))
        })
    }

    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, Result<RecordOutcome, SpecProblem>> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(Err(problem)) => return Err(problem),
                Err(Ok(answer)) => {
                    let reason = answer.reason().to_string();
                    return Ok(RecordOutcome::Failed { reason });
                }
            };
            let record = DeploymentRecord {
                pacticipant: gate.pacticipant.clone(),
                version: version.to_string(),
                environment: gate.environment.clone(),
                application_instance: gate.application_instance.clone(),
            };
            // One attempt (a retry is decide's, a reconcile later), made only if the broker does
            // not already hold the version as deployed there: an earlier attempt may have timed
            // out after the broker stored it.
            let step = broker::record_with_retries(
                &client,
                &record,
                &self.retry,
                tokio::time::sleep,
                true,
            )
            .await;
            Ok(match step {
                broker::RecordStep::Recorded { .. } => RecordOutcome::Recorded,
                broker::RecordStep::Failed { reason, .. }
                | broker::RecordStep::Retry { reason, .. } => RecordOutcome::Failed { reason },
            })
        })
    }

    fn undeploy<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, UndeployOutcome> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(Err(problem)) => {
                    return UndeployOutcome::Refused {
                        reason: problem.message,
                    }
                }
                // A credentials Secret that is missing may be there in a moment.
                Err(Ok(ContractAnswer::Unreachable { reason })) => {
                    return UndeployOutcome::Failed { reason }
                }
                Err(Ok(answer)) => {
                    return UndeployOutcome::Refused {
                        reason: answer.reason().to_string(),
                    }
                }
            };
            // The walk of `tollgate record-undeployment --version`: only the version recorded,
            // on the instance the Rollout records as.
            let record = UndeploymentRecord {
                pacticipant: gate.pacticipant.clone(),
                environment: gate.environment.clone(),
                application_instance: gate.application_instance.clone(),
                version: Some(version.to_string()),
            };
            match client.record_undeployment(&record).await {
                Ok(undeployed) => UndeployOutcome::Recorded {
                    found: !undeployed.is_empty(),
                },
                Err(e) if e.is_transient() => UndeployOutcome::Failed {
                    reason: e.to_string(),
                },
                Err(e) => UndeployOutcome::Refused {
                    reason: e.to_string(),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_answers_map_one_to_one() {
        let c = |kind| broker::ClassifiedAnswer {
            kind,
            reason: "r".into(),
            counts: None,
            error: None,
        };
        assert!(matches!(
            contract_answer(c(AnswerKind::Deployable)),
            ContractAnswer::Deployable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::NotDeployable)),
            ContractAnswer::NotDeployable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Unknown)),
            ContractAnswer::Unknown { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Unreachable)),
            ContractAnswer::Unreachable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Refused)),
            ContractAnswer::Refused { .. }
        ));
    }
}
