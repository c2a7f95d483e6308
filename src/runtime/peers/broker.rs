//! The Pact Broker behind [`ContractPeer`]: the broker client of `gates::broker`, configured
//! from `spec.contractGate` (its URL or the operator's default, credentials from a Secret).

use kube::{Client, ResourceExt};

use super::{secret_data, ContractPeer, PeerDefaults, PeerFuture};
use crate::crd::{self, ContractSummary, Rollout};
use crate::gates::broker::{
    self, AnswerKind, BrokerApi, BrokerConfig, CanIDeployRequest, DeploymentRecord, HttpBroker,
    Ignore, RetryPolicy,
};
use crate::rollout::decide::{ContractAnswer, RecordOutcome};
use crate::util::credentials;

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
            retry: RetryPolicy::default(),
        }
    }

    /// The broker client for a rollout, or the answer that says why there is none.
    async fn broker(
        &self,
        rollout: &Rollout,
    ) -> Result<(HttpBroker, crd::ContractGateSpec), ContractAnswer> {
        let Some(gate) = rollout.spec.contract_gate.clone() else {
            return Err(ContractAnswer::Refused {
                reason: "spec.contractGate is not set".into(),
            });
        };
        let credentials = match &gate.credentials_secret_ref {
            None => None,
            Some(secret) => {
                let namespace = rollout.namespace().unwrap_or_default();
                // A Secret that is missing may be created in a moment: wait within the budget.
                let data = secret_data(&self.client, &namespace, &secret.name)
                    .await
                    .map_err(|reason| ContractAnswer::Unreachable { reason })?;
                Some(
                    credentials::from_secret_data(&data).map_err(|e| ContractAnswer::Refused {
                        reason: format!("Secret {}: {e}", secret.name),
                    })?,
                )
            }
        };
        let Some(url) = self.defaults.broker_url(&gate) else {
            return Err(ContractAnswer::Refused {
                reason: self
                    .defaults
                    .missing_address(&rollout.spec)
                    .unwrap_or_default(),
            });
        };
        let config = BrokerConfig::new(&url, credentials).map_err(|e| ContractAnswer::Refused {
            reason: format!("spec.contractGate: {e}"),
        })?;
        let client = HttpBroker::new(config).map_err(|e| ContractAnswer::Refused {
            reason: format!("spec.contractGate: {e}"),
        })?;
        Ok((client, gate))
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
    fn ask<'a>(&'a self, rollout: &'a Rollout) -> PeerFuture<'a, ContractAnswer> {
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
            // The same ask as `tollgate can-i-deploy`: the client's retries, then classified;
            // the gate's step is decide's, over the progress kept in status.
            let (classified, _) =
                broker::ask(&client, &request, &self.retry, tokio::time::sleep).await;
            contract_answer(classified)
        })
    }

    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, RecordOutcome> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(answer) => {
                    let reason = match answer {
                        ContractAnswer::Refused { reason }
                        | ContractAnswer::Unreachable { reason } => reason,
                        other => format!("{other:?}"),
                    };
                    return RecordOutcome::Failed { reason };
                }
            };
            let record = DeploymentRecord {
                pacticipant: gate.pacticipant.clone(),
                version: version.to_string(),
                environment: gate.environment.clone(),
                application_instance: gate.application_instance.clone(),
            };
            match client.record_deployment(&record).await {
                Ok(_) => RecordOutcome::Recorded,
                Err(e) => RecordOutcome::Failed {
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
