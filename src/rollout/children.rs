//! The objects a Rollout owns, built from the spec and the plan. Pure: `apply` sends them with
//! server-side apply; `observe` reads them back by the same names and labels.
//!
//! - one Deployment per track: `<rollout>-stable`, `<rollout>-canary`, `<rollout>-baseline`;
//! - with replica-ratio traffic, one Service `<rollout>` that clients use: it selects only stable
//!   pods until the canary is verified (fleet and smoke checks), then every serving pod, so the
//!   replica ratio is the traffic split;
//! - with HTTPRoute traffic, the route's stable and canary Services (the route's weights split
//!   traffic; with a dedicated baseline the canary Service also selects the baseline pods, which
//!   have as many pods as the canary, so both arms get equal traffic).
//!
//! Pods carry `tollgate.dev/rollout` and `tollgate.dev/track` labels (what Prometheus relabels
//! into `rollout` and `track`, and what the fleet check selects on) and the
//! `tollgate.dev/version` annotation.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use super::decide::{ChildSpec, DesiredChildren};
use crate::crd::{
    track_labels, Rollout, Track, TrafficKind, ANNOTATION_VERSION, LABEL_COMPARED,
    LABEL_MANAGED_BY, LABEL_ROLLOUT, MANAGED_BY,
};

/// Why a child cannot be built: the operator waits for a change and says so in status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// Neither `spec.template` nor a readable `spec.workloadRef` template.
    #[error("no pod template: spec.template is empty and spec.workloadRef could not be read")]
    NoTemplate,
    /// The stable version's template is gone (its Deployment was deleted by hand).
    #[error("the pod template of stable version {0} is unknown: the {1} Deployment is missing or runs another version")]
    StableTemplateUnknown(String, String),
    /// The Rollout has no name or namespace.
    #[error("the Rollout has no name or namespace")]
    Unnamed,
}

/// Name of a track's Deployment.
pub fn deployment_name(rollout: &str, track: Track) -> String {
    format!("{rollout}-{}", track.as_str())
}

fn owner(rollout: &Rollout) -> Result<OwnerReference, BuildError> {
    rollout.controller_owner_ref(&()).ok_or(BuildError::Unnamed)
}

fn names(rollout: &Rollout) -> Result<(String, String), BuildError> {
    match (
        rollout.metadata.name.clone(),
        rollout.metadata.namespace.clone(),
    ) {
        (Some(name), Some(namespace)) => Ok((name, namespace)),
        _ => Err(BuildError::Unnamed),
    }
}

/// The version a Deployment's pods run, from its pod template annotation.
pub fn deployment_version(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(ANNOTATION_VERSION)
        .cloned()
}

/// Take `template`, label it for `track`, stamp the version.
fn template_for(
    template: &PodTemplateSpec,
    rollout: &str,
    track: Track,
    version: &str,
) -> PodTemplateSpec {
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.extend(track_labels(rollout, track));
    if track != Track::Stable {
        labels.insert(LABEL_COMPARED.to_string(), "true".to_string());
    }
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION_VERSION.to_string(), version.to_string());
    template
}

/// The user's selector narrowed to one track.
fn selector_for(user: Option<&LabelSelector>, rollout: &str, track: Track) -> LabelSelector {
    let mut selector = user.cloned().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .extend(track_labels(rollout, track));
    selector
}

/// Inputs that come from the cluster rather than the spec.
#[derive(Clone, Debug, Default)]
pub struct Sources<'a> {
    /// Pod template of `spec.version`: `spec.template`, or the workloadRef Deployment's.
    pub new_template: Option<&'a PodTemplateSpec>,
    /// The stable Deployment as it is now (its template is the stable version's).
    pub stable_now: Option<&'a Deployment>,
}

/// The Deployment of one track for a wanted child, or `None` for "scale to zero".
pub fn deployment(
    rollout: &Rollout,
    track: Track,
    want: Option<&ChildSpec>,
    sources: &Sources<'_>,
) -> Result<Deployment, BuildError> {
    let (name, namespace) = names(rollout)?;
    let spec = &rollout.spec;
    let replicas = want.map_or(0, |c| c.replicas);
    let version = want.map(|c| c.version.clone());

    // The pod template: spec.version's for the canary (and for stable once it is promoted);
    // otherwise the stable Deployment keeps the template it has.
    let stable_template = || {
        let now = sources.stable_now?;
        let v = deployment_version(now)?;
        Some((v, now.spec.as_ref()?.template.clone()))
    };
    let wanted_version = version.clone().or_else(|| match track {
        Track::Canary => Some(spec.version.clone()),
        _ => stable_template().map(|(v, _)| v),
    });
    let template = match (&wanted_version, track) {
        (Some(v), _) if *v == spec.version => sources
            .new_template
            .cloned()
            .ok_or(BuildError::NoTemplate)?,
        (Some(v), Track::Stable | Track::Baseline) => match stable_template() {
            Some((have, template)) if have == *v => template,
            _ => {
                return Err(BuildError::StableTemplateUnknown(
                    v.clone(),
                    deployment_name(&name, Track::Stable),
                ))
            }
        },
        (Some(_), Track::Canary) | (None, _) => sources
            .new_template
            .cloned()
            .ok_or(BuildError::NoTemplate)?,
    };
    let version = wanted_version.unwrap_or_else(|| spec.version.clone());

    let mut labels = track_labels(&name, track);
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(&name, track)),
            namespace: Some(namespace),
            labels: Some(labels),
            owner_references: Some(vec![owner(rollout)?]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector_for(spec.selector.as_ref(), &name, track),
            template: template_for(&template, &name, track, &version),
            ..Default::default()
        }),
        status: None,
    })
}

/// A Service selecting `tracks` of the rollout on the template's first container ports.
fn service(
    rollout: &Rollout,
    name: String,
    selector: BTreeMap<String, String>,
    template: Option<&PodTemplateSpec>,
    port: Option<i32>,
) -> Result<Service, BuildError> {
    let (_, namespace) = names(rollout)?;
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
        let target = rollout.spec.fleet_check.port;
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
            owner_references: Some(vec![owner(rollout)?]),
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

/// The Services the traffic method needs.
pub fn services(
    rollout: &Rollout,
    desired: &DesiredChildren,
    template: Option<&PodTemplateSpec>,
) -> Result<Vec<Service>, BuildError> {
    let (name, _) = names(rollout)?;
    let rollout_only = BTreeMap::from([(LABEL_ROLLOUT.to_string(), name.clone())]);
    match (&rollout.spec.traffic.kind, &rollout.spec.traffic.http_route) {
        (TrafficKind::HttpRoute, Some(route)) => {
            let stable = track_labels(&name, Track::Stable);
            // The canary Service selects both compared arms: the canary and, with a dedicated
            // baseline, the baseline, which has as many pods, so each gets half the canary weight.
            let canary = BTreeMap::from([
                (LABEL_ROLLOUT.to_string(), name.clone()),
                (LABEL_COMPARED.to_string(), "true".to_string()),
            ]);
            Ok(vec![
                service(
                    rollout,
                    route.stable_service.clone(),
                    stable,
                    template,
                    Some(route.port),
                )?,
                service(
                    rollout,
                    route.canary_service.clone(),
                    canary,
                    template,
                    Some(route.port),
                )?,
            ])
        }
        _ => {
            let selector = if desired.canary_serving {
                rollout_only
            } else {
                track_labels(&name, Track::Stable)
            };
            Ok(vec![service(rollout, name, selector, template, None)?])
        }
    }
}

/// The JSON patch that sets the HTTPRoute rule's backend weights, or `None` without a route.
/// Backends are found by Service name; the patch tests each name first so a route edited in
/// between is not patched blindly.
pub fn http_route_patch(
    rollout: &Rollout,
    route: &serde_json::Value,
    canary_weight: i32,
) -> Option<Result<serde_json::Value, String>> {
    let traffic = rollout.spec.traffic.http_route.as_ref()?;
    let rule = traffic.rule_index;
    let backends = route
        .pointer(&format!("/spec/rules/{rule}/backendRefs"))
        .and_then(|b| b.as_array());
    let Some(backends) = backends else {
        return Some(Err(format!(
            "HTTPRoute {} has no spec.rules[{rule}].backendRefs",
            traffic.name
        )));
    };
    let mut ops = Vec::new();
    let weight = canary_weight.clamp(0, 100);
    for (service, w) in [
        (&traffic.stable_service, 100 - weight),
        (&traffic.canary_service, weight),
    ] {
        let index = backends
            .iter()
            .position(|b| b.get("name").and_then(|n| n.as_str()) == Some(service.as_str()));
        let Some(index) = index else {
            return Some(Err(format!(
                "HTTPRoute {} rule {rule} has no backendRef named {service}",
                traffic.name
            )));
        };
        let path = format!("/spec/rules/{rule}/backendRefs/{index}");
        ops.push(
            serde_json::json!({"op": "test", "path": format!("{path}/name"), "value": service}),
        );
        ops.push(serde_json::json!({"op": "add", "path": format!("{path}/weight"), "value": w}));
    }
    Some(Ok(serde_json::Value::Array(ops)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crd::{RolloutStatus, LABEL_TRACK};
    use crate::rollout::decide::desired_children;

    fn rollout(traffic: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "shop", "namespace": "prod", "uid": "u-1"},
            "spec": {
                "version": "2.0.0", "replicas": 4,
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {"metadata": {"labels": {"app": "shop"}},
                             "spec": {"containers": [{"name": "shop", "image": "shop:2.0.0",
                                       "ports": [{"name": "http", "containerPort": 8080}]}]}},
                "traffic": traffic,
                "steps": [{"setWeight": 50}]
            }
        }))
        .unwrap()
    }

    fn stable_deployment(version: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-stable"},
            "spec": {"selector": {}, "template": {
                "metadata": {"annotations": {ANNOTATION_VERSION: version}, "labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "shop", "image": format!("shop:{version}")}]}}}
        }))
        .unwrap()
    }

    fn image(d: &Deployment) -> String {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    }

    #[test]
    fn canary_gets_the_new_template_and_stable_keeps_its_own() {
        let r = rollout(json!({"type": "ReplicaRatio"}));
        let stable_now = stable_deployment("1.0.0");
        let sources = Sources {
            new_template: r.spec.template.as_ref(),
            stable_now: Some(&stable_now),
        };
        let canary = ChildSpec {
            version: "2.0.0".into(),
            replicas: 2,
        };
        let d = deployment(&r, Track::Canary, Some(&canary), &sources).unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("shop-canary"));
        assert_eq!(image(&d), "shop:2.0.0");
        assert_eq!(deployment_version(&d).as_deref(), Some("2.0.0"));
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
        let labels = d
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert_eq!(labels.get(LABEL_TRACK).map(String::as_str), Some("canary"));
        assert_eq!(labels.get("app").map(String::as_str), Some("shop"));
        assert_eq!(labels.get(LABEL_COMPARED).map(String::as_str), Some("true"));
        let selector = d
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .clone()
            .unwrap();
        assert_eq!(
            selector.get(LABEL_TRACK).map(String::as_str),
            Some("canary")
        );
        assert_eq!(selector.get("app").map(String::as_str), Some("shop"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Rollout", Some(true))
        );

        let stable = ChildSpec {
            version: "1.0.0".into(),
            replicas: 2,
        };
        let d = deployment(&r, Track::Stable, Some(&stable), &sources).unwrap();
        assert_eq!(
            image(&d),
            "shop:1.0.0",
            "stable keeps the stable version's template"
        );
        let stable_labels = d
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert_eq!(
            stable_labels.get(LABEL_COMPARED),
            None,
            "stable pods are not an arm"
        );
        let d = deployment(&r, Track::Baseline, Some(&stable), &sources).unwrap();
        assert_eq!(image(&d), "shop:1.0.0");
        assert_eq!(d.metadata.name.as_deref(), Some("shop-baseline"));
        // Promotion: stable takes the new template.
        let promoted = ChildSpec {
            version: "2.0.0".into(),
            replicas: 4,
        };
        let d = deployment(&r, Track::Stable, Some(&promoted), &sources).unwrap();
        assert_eq!(image(&d), "shop:2.0.0");
        // Scale to zero keeps the template it has.
        let d = deployment(&r, Track::Canary, None, &sources).unwrap();
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(0));
    }

    #[test]
    fn a_lost_stable_template_is_an_error_not_a_guess() {
        let r = rollout(json!({"type": "ReplicaRatio"}));
        let other = stable_deployment("0.9.0");
        for stable_now in [None, Some(&other)] {
            let sources = Sources {
                new_template: r.spec.template.as_ref(),
                stable_now,
            };
            let stable = ChildSpec {
                version: "1.0.0".into(),
                replicas: 2,
            };
            let err = deployment(&r, Track::Stable, Some(&stable), &sources).unwrap_err();
            assert!(matches!(err, BuildError::StableTemplateUnknown(ref v, _) if v == "1.0.0"));
        }
    }

    #[test]
    fn the_service_admits_the_canary_only_once_it_serves() {
        let r = rollout(json!({"type": "ReplicaRatio"}));
        let mut status = RolloutStatus {
            stable_version: Some("1.0.0".into()),
            ..Default::default()
        };
        status.phase = crate::crd::Phase::FleetCheck;
        let desired = desired_children(&r.spec, &status);
        let svc = &services(&r, &desired, r.spec.template.as_ref()).unwrap()[0];
        let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(
            selector.get(LABEL_TRACK).map(String::as_str),
            Some("stable")
        );
        assert_eq!(
            svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
            8080
        );
        status.phase = crate::crd::Phase::Analyzing;
        status.current_weight = 50;
        let desired = desired_children(&r.spec, &status);
        let svc = &services(&r, &desired, r.spec.template.as_ref()).unwrap()[0];
        let selector = svc.spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(selector.get(LABEL_TRACK), None);
        assert_eq!(
            selector.get(LABEL_ROLLOUT).map(String::as_str),
            Some("shop")
        );
    }

    #[test]
    fn http_route_weights_are_patched_by_backend_name() {
        let r = rollout(json!({"type": "HTTPRoute", "httpRoute": {"name": "shop",
            "stableService": "shop-stable", "canaryService": "shop-canary", "port": 80}}));
        let route = json!({"spec": {"rules": [{"backendRefs": [
            {"name": "shop-canary", "port": 80, "weight": 0},
            {"name": "shop-stable", "port": 80, "weight": 100}]}]}});
        let patch = http_route_patch(&r, &route, 30).unwrap().unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "shop-stable"},
                {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 70},
                {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "shop-canary"},
                {"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 30},
            ])
        );
        let missing = json!({"spec": {"rules": [{"backendRefs": [{"name": "other"}]}]}});
        assert!(http_route_patch(&r, &missing, 30)
            .unwrap()
            .unwrap_err()
            .contains("shop-stable"));
        let services = services(
            &r,
            &desired_children(&r.spec, &RolloutStatus::default()),
            r.spec.template.as_ref(),
        )
        .unwrap();
        let names: Vec<_> = services
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["shop-stable", "shop-canary"]);
        let canary_selector = services[1].spec.as_ref().unwrap().selector.clone().unwrap();
        assert_eq!(
            canary_selector.get(LABEL_COMPARED).map(String::as_str),
            Some("true")
        );
        assert_eq!(canary_selector.get(LABEL_TRACK), None);
        assert_eq!(
            services[0].spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
            80
        );
        // Without a route in the spec there is nothing to patch.
        assert!(http_route_patch(&rollout(json!({"type": "ReplicaRatio"})), &route, 30).is_none());
    }
}
