//! Building one Service a traffic kind needs: owned by the Rollout, labelled as managed by the
//! operator, on the pod template's first container's ports (or the fleet-check port).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use super::TrafficError;
use crate::crd::{Rollout, LABEL_MANAGED_BY, MANAGED_BY};

/// The Rollout's name, which names its Services and labels its pods.
pub(super) fn rollout_name(rollout: &Rollout) -> Result<String, TrafficError> {
    rollout.metadata.name.clone().ok_or(TrafficError::Unnamed)
}

/// A Service named `name` selecting `selector`, on `port` (or each container port).
pub(super) fn service(
    rollout: &Rollout,
    name: String,
    selector: BTreeMap<String, String>,
    template: Option<&PodTemplateSpec>,
    port: Option<i32>,
) -> Result<Service, TrafficError> {
    let namespace = rollout
        .metadata
        .namespace
        .clone()
        .ok_or(TrafficError::Unnamed)?;
    let owner = rollout
        .controller_owner_ref(&())
        .ok_or(TrafficError::Unnamed)?;
    let container_ports: Vec<ServicePort> = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| ServicePort {
            name: p.name.clone(),
            port: port.unwrap_or(p.container_port),
            target_port: Some(IntOrString::Int(p.container_port)),
            protocol: p.protocol.clone(),
            ..Default::default()
        })
        .collect();
    let ports = if container_ports.is_empty() {
        // No declared port: route the fleet-check port, which every pod serves.
        let target = rollout.spec.fleet_check().port;
        vec![ServicePort {
            name: Some("http".into()),
            port: port.unwrap_or(target),
            target_port: Some(IntOrString::Int(target)),
            ..Default::default()
        }]
    } else {
        container_ports
    };
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(
                LABEL_MANAGED_BY.to_string(),
                MANAGED_BY.to_string(),
            )])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    })
}
