//! Carries out a [`Plan`]: writes the status, then converges the children to it, then emits the
//! Events.
//!
//! Order matters for restart safety. The status is the record, so it is written first, as a
//! replace carrying the `resourceVersion` that was read: a write based on a stale read (or by a
//! replica that lost the leader lease meanwhile) fails with a conflict instead of overwriting a
//! newer decision. The children are then derived from that status alone, so an operator that
//! dies between the two steps re-applies the same children on its next pass. Traffic moves
//! before pods are scaled, so a rollback takes traffic off the canary before its pods go.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};

use crate::crd::{Rollout, Track, FIELD_MANAGER};
use crate::rollout::children::{self, BuildError, Sources};
use crate::rollout::decide::{EventKind, Plan};
use crate::traffic::{self, TrafficError, TrafficState};
use crate::util::text::shorten_bytes;

/// Why applying a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The Kubernetes API failed (conflicts included: the next pass decides again).
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A child cannot be built from the spec.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// Traffic could not be set (Services, the HTTPRoute's weights).
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    /// This replica no longer holds the leader lease.
    #[error("not the leader any more: nothing written")]
    NotLeader,
}

impl ApplyError {
    /// Whether waiting and retrying can help.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Kube(_) | ApplyError::NotLeader => true,
            ApplyError::Traffic(e) => e.is_transient(),
            ApplyError::Build(_) => false,
        }
    }
}

/// Writes plans to the cluster.
pub struct Applier {
    client: Client,
    recorder: Recorder,
}

impl Applier {
    /// An applier that reports Events as `reporter`.
    pub fn new(client: Client, recorder: Recorder) -> Self {
        Applier { client, recorder }
    }

    /// Write the plan's status with optimistic concurrency. Returns the stored object.
    pub async fn write_status(
        &self,
        rollout: &Rollout,
        plan: &Plan,
    ) -> Result<Rollout, ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), &namespace);
        let mut object = rollout.clone();
        object.status = Some(plan.status.clone());
        Ok(api
            .replace_status(&rollout.name_any(), &PostParams::default(), &object)
            .await?)
    }

    /// Converge traffic and child workloads to the plan.
    pub async fn converge(
        &self,
        rollout: &Rollout,
        plan: &Plan,
        deployments: &BTreeMap<Track, Deployment>,
        new_template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
    ) -> Result<(), ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let desired = &plan.children;
        let sources = Sources {
            new_template,
            stable_now: deployments.get(&Track::Stable),
        };

        // Traffic first.
        let state = TrafficState {
            canary_weight: desired.canary_weight,
            canary_serving: desired.canary_serving,
        };
        traffic::apply(&self.client, rollout, &state, new_template).await?;

        // Then the workloads: create what is wanted, scale to zero what is not (but never
        // create an empty workload just to scale it to zero).
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        for (track, want) in [
            (Track::Stable, desired.stable.as_ref()),
            (Track::Canary, desired.canary.as_ref()),
            (Track::Baseline, desired.baseline.as_ref()),
        ] {
            let exists = deployments.contains_key(&track);
            if want.is_none() && !exists {
                continue;
            }
            let deployment = match children::deployment(rollout, track, want, &sources) {
                Ok(d) => d,
                // Scaling to zero a workload whose template cannot be rebuilt: scale it as is.
                Err(_) if want.is_none() => {
                    let name = children::deployment_name(&rollout.name_any(), track);
                    let scale = serde_json::json!({"spec": {"replicas": 0}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&scale))
                        .await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let name = deployment.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(&deployment))
                .await?;
        }
        Ok(())
    }

    /// Publish the plan's Events on the rollout. Failures are logged, never fatal: the status
    /// already holds the record.
    pub async fn publish_events(&self, rollout: &Rollout, plan: &Plan) {
        let reference = rollout.object_ref(&());
        for planned in &plan.events {
            let event = Event {
                type_: match planned.kind {
                    EventKind::Normal => EventType::Normal,
                    EventKind::Warning => EventType::Warning,
                },
                reason: planned.reason.to_string(),
                // An Event note is limited in bytes.
                note: Some(shorten_bytes(&planned.message, 1000)),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(error = %e, reason = %planned.reason, "could not publish event");
            }
        }
    }
}
