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
use kube::{Client, Resource, ResourceExt};

use super::events::EventPublisher;
use super::observe::{original_selector, original_workload};
use super::owned::{CacheError, Owned};
use crate::crd::{
    Rollout, Track, ANNOTATION_ADOPTED_BY, FIELD_MANAGER, FINALIZER_ADOPTION,
    FINALIZER_UNDEPLOYMENT,
};
use crate::rollout::children::{self, BuildError, Sources};
use crate::rollout::decide::{adoption, undeployment};
use crate::rollout::decide::{Plan, PlannedEvent};
use crate::traffic::{self, TrafficError, TrafficState};

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
    /// The children's watch caches could not answer (not synced, or the direct read failed).
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl ApplyError {
    /// Whether waiting and retrying can help.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Kube(_) | ApplyError::NotLeader | ApplyError::Cache(_) => true,
            ApplyError::Traffic(e) => e.is_transient(),
            ApplyError::Build(_) => false,
        }
    }
}

/// Set the adopted Deployment's `spec.replicas` when it differs. A merge patch of that one
/// field under the default field manager: the operator never takes ownership of the rest of a
/// Deployment the team still owns.
async fn scale_original(
    api: &Api<Deployment>,
    original: &Deployment,
    replicas: i32,
) -> Result<(), ApplyError> {
    let now = original.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if now == replicas {
        return Ok(());
    }
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    merge_patch(api, &original.name_any(), &patch).await
}

/// A JSON merge patch of `name` under the default field manager, for the fields the operator
/// sets on objects it does not own (an adopted Deployment, the Rollout's metadata).
async fn merge_patch<K>(
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), ApplyError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Set or (with `None`) remove the adopted-by mark on the adopted Deployment.
async fn mark_adopted(
    api: &Api<Deployment>,
    original: &Deployment,
    by: Option<&str>,
) -> Result<(), ApplyError> {
    let patch = serde_json::json!({"metadata": {"annotations": {ANNOTATION_ADOPTED_BY: by}}});
    merge_patch(api, &original.name_any(), &patch).await
}

/// Writes plans to the cluster.
pub struct Applier {
    client: Client,
    events: EventPublisher,
    metrics: std::sync::Arc<super::metrics::Metrics>,
}

impl Applier {
    /// An applier that publishes Events through `events` and counts its child applies in
    /// `metrics`.
    pub fn new(
        client: Client,
        events: EventPublisher,
        metrics: std::sync::Arc<super::metrics::Metrics>,
    ) -> Self {
        Applier {
            client,
            events,
            metrics,
        }
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

    /// Converge traffic and child workloads to the plan, then the adopted Deployment
    /// (`original`, the one `spec.workloadRef` names) to the size the plan gives it. A child
    /// that still carries what this process applied to it last is not applied again (see
    /// [`Owned`]); `deployments` are the live tracks this pass read.
    pub async fn converge(
        &self,
        owned: &Owned,
        rollout: &Rollout,
        plan: &Plan,
        deployments: &BTreeMap<Track, Deployment>,
        new_template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
        original: Option<&Deployment>,
    ) -> Result<(), ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let desired = &plan.children;
        let sources = Sources {
            new_template,
            stable_now: deployments.get(&Track::Stable),
            baseline_now: deployments.get(&Track::Baseline),
        };
        // Before anything else, in one write: the finalizer that gives the adopted Deployment
        // back when the Rollout is deleted (before that Deployment is touched in any way), and
        // the one that tells the broker the recorded version no longer runs (before anything
        // is recorded: a record needs an earlier pass's status, so its converge came first).
        let adopted = original.filter(|_| plan.status.adoption.is_some());
        let mut wanted = Vec::new();
        if adopted.is_some() {
            wanted.push(FINALIZER_ADOPTION);
        }
        if undeployment::records_deployments(&rollout.spec) {
            wanted.push(FINALIZER_UNDEPLOYMENT);
        }
        self.add_finalizers(rollout, &wanted).await?;
        // Then the mark that keeps other Rollouts off the adopted Deployment.
        if let Some(original) = adopted {
            self.claim(rollout, original).await?;
        }

        // Traffic first.
        let state = TrafficState {
            canary_weight: desired.canary_weight,
            canary_serving: desired.canary_serving,
            held_serving: desired.held_serving,
            adopted_selector: adopted
                .filter(|_| plan.original_is_stable)
                .and_then(original_selector),
            header_routes: desired.header_routes.clone(),
        };
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(self.client.clone(), &namespace);
        for service in traffic::services(rollout, &state, new_template)? {
            if owned.service_unchanged(&service).await? {
                self.metrics.child_apply("Service", false);
                continue;
            }
            self.metrics.child_apply("Service", true);
            let name = service.metadata.name.clone().unwrap_or_default();
            let stored = services
                .patch(&name, &params, &Patch::Apply(&service))
                .await?;
            owned.record_service(&service, &stored);
        }
        traffic::converge_route(&self.client, rollout, &state).await?;

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
                    // Not what an apply asked for: the next apply must not be skipped.
                    owned.forget_deployment(&namespace, &name);
                    merge_patch(&api, &name, &scale).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if owned.deployment_unchanged(&deployment, deployments.get(&track)) {
                self.metrics.child_apply("Deployment", false);
                continue;
            }
            self.metrics.child_apply("Deployment", true);
            let name = deployment.metadata.name.clone().unwrap_or_default();
            let stored = api
                .patch(&name, &params, &Patch::Apply(&deployment))
                .await?;
            owned.record_deployment(&deployment, &stored);
        }
        // Last, the adopted Deployment: after the stable pods it gives way to were applied.
        if let (Some(original), Some(want)) = (adopted, plan.original_replicas) {
            scale_original(&api, original, want).await?;
        }
        Ok(())
    }

    /// Add the finalizers of `wanted` the Rollout does not carry yet, in one write (none when
    /// all are there).
    async fn add_finalizers(&self, rollout: &Rollout, wanted: &[&str]) -> Result<(), ApplyError> {
        let mut finalizers: Vec<&str> = rollout.finalizers().iter().map(String::as_str).collect();
        let before = finalizers.len();
        for f in wanted {
            if !finalizers.contains(f) {
                finalizers.push(f);
            }
        }
        if finalizers.len() == before {
            return Ok(());
        }
        self.set_finalizers(rollout, &finalizers).await
    }

    /// Remove the finalizers of `done` from the Rollout, in one write.
    pub async fn remove_finalizers(
        &self,
        rollout: &Rollout,
        done: &[&str],
    ) -> Result<(), ApplyError> {
        let finalizers: Vec<&str> = rollout
            .finalizers()
            .iter()
            .map(String::as_str)
            .filter(|f| !done.contains(f))
            .collect();
        if finalizers.len() == rollout.finalizers().len() {
            return Ok(());
        }
        self.set_finalizers(rollout, &finalizers).await
    }

    /// Put the adopted-by mark on the adopted Deployment, when it is not there yet.
    async fn claim(&self, rollout: &Rollout, original: &Deployment) -> Result<(), ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let name = rollout.name_any();
        if original.annotations().get(ANNOTATION_ADOPTED_BY) != Some(&name) {
            let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
            mark_adopted(&deployments, original, Some(&name)).await?;
        }
        Ok(())
    }

    /// Replace the Rollout's finalizers. The resourceVersion makes this fail on a stale read
    /// instead of dropping a finalizer someone else added meanwhile.
    async fn set_finalizers(
        &self,
        rollout: &Rollout,
        finalizers: &[&str],
    ) -> Result<(), ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let rollouts: Api<Rollout> = Api::namespaced(self.client.clone(), &namespace);
        let patch = serde_json::json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": rollout.resource_version(),
        }});
        merge_patch(&rollouts, &rollout.name_any(), &patch).await
    }

    /// A deleted Rollout: scale the Deployment it adopted back to its recorded size, and once
    /// [`adoption::on_deletion`] lets go, remove the adopted-by mark. Returns true when the
    /// adoption finalizer may go (the caller removes it, with any other, in one write).
    pub async fn give_back(
        &self,
        rollout: &Rollout,
        original: Option<&Deployment>,
        deleting_for: std::time::Duration,
    ) -> Result<bool, ApplyError> {
        if !rollout.finalizers().iter().any(|f| f == FINALIZER_ADOPTION) {
            return Ok(true);
        }
        let namespace = rollout.namespace().unwrap_or_default();
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        let seen = original.map(original_workload);
        let release = adoption::on_deletion(rollout.status.as_ref(), seen.as_ref(), deleting_for);
        if let (Some(original), Some(want)) = (original, release.restore_to) {
            scale_original(&deployments, original, want).await?;
        }
        if !release.release {
            return Ok(false);
        }
        if let Some(original) = original {
            if original.annotations().contains_key(ANNOTATION_ADOPTED_BY) {
                mark_adopted(&deployments, original, None).await?;
            }
        }
        Ok(true)
    }

    /// Publish the plan's Events on the rollout. Failures are logged, never fatal: the status
    /// already holds the record.
    pub async fn publish_events(&self, rollout: &Rollout, plan: &Plan) {
        self.publish(rollout, &plan.events).await;
    }

    /// Publish `events` on the rollout, in order, without waiting for the API server (see
    /// [`EventPublisher`]; logged, never fatal). An Event may name a Rollout that is already
    /// gone: a deleted Rollout's last Events are published after its finalizer went.
    pub async fn publish(&self, rollout: &Rollout, events: &[PlannedEvent]) {
        self.events.publish(rollout.object_ref(&()), events).await;
    }
}
