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
use k8s_openapi::api::core::v1::Service;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};

use super::children::{self, BuildError, Sources, TrackName};
use super::decide::{EventKind, Plan};
use crate::crd::{Rollout, TrafficKind};
use crate::util::text::shorten_bytes;

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "tollgate";

/// Why applying a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The Kubernetes API failed (conflicts included: the next pass decides again).
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A child cannot be built from the spec.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The HTTPRoute does not have the backends the spec names.
    #[error("spec.traffic.httpRoute: {0}")]
    Route(String),
    /// This replica no longer holds the leader lease.
    #[error("not the leader any more: nothing written")]
    NotLeader,
}

impl ApplyError {
    /// Whether waiting and retrying can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Kube(_) | ApplyError::NotLeader)
    }
}

/// The Gateway API HTTPRoute resource.
fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
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
        deployments: &BTreeMap<TrackName, Deployment>,
        new_template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
    ) -> Result<(), ApplyError> {
        let namespace = rollout.namespace().unwrap_or_default();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let desired = &plan.children;
        let sources = Sources {
            new_template,
            stable_now: deployments.get(&TrackName::Stable),
        };

        // Traffic first.
        let services: Api<Service> = Api::namespaced(self.client.clone(), &namespace);
        for service in children::services(rollout, desired, new_template)? {
            let name = service.metadata.name.clone().unwrap_or_default();
            services
                .patch(&name, &params, &Patch::Apply(&service))
                .await?;
        }
        if rollout.spec.traffic.kind == TrafficKind::HttpRoute {
            self.set_route_weights(rollout, desired.canary_weight)
                .await?;
        }

        // Then the workloads: create what is wanted, scale to zero what is not (but never
        // create an empty workload just to scale it to zero).
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        for (track, want) in [
            (TrackName::Stable, desired.stable.as_ref()),
            (TrackName::Canary, desired.canary.as_ref()),
            (TrackName::Baseline, desired.baseline.as_ref()),
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

    async fn set_route_weights(
        &self,
        rollout: &Rollout,
        canary_weight: i32,
    ) -> Result<(), ApplyError> {
        let Some(traffic) = &rollout.spec.traffic.http_route else {
            return Ok(());
        };
        let namespace = rollout.namespace().unwrap_or_default();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &namespace, &http_route_resource());
        let route = api.get(&traffic.name).await?;
        let route = serde_json::to_value(&route).map_err(|e| ApplyError::Route(e.to_string()))?;
        let Some(patch) = children::http_route_patch(rollout, &route, canary_weight) else {
            return Ok(());
        };
        let patch = patch.map_err(ApplyError::Route)?;
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(|e| ApplyError::Route(e.to_string()))?;
        api.patch(
            &traffic.name,
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await?;
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
                reason: planned.reason.clone(),
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
