//! The Deployments a Rollout owns, built from the spec and the plan: one per track,
//! `<rollout>-stable`, `<rollout>-canary`, `<rollout>-baseline`. Pure: `runtime::apply` sends
//! them with server-side apply; `runtime::observe` reads them back by the same names and labels.
//! The Services in front of them belong to the traffic kind (`traffic`).
//!
//! Pods carry `tollgate.dev/rollout` and `tollgate.dev/track` labels (what Prometheus relabels
//! into `rollout` and `track`, and what the fleet check selects on) and the
//! `tollgate.dev/version` annotation.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;

use super::decide::ChildSpec;
use crate::crd::{
    track_labels, Rollout, Track, ANNOTATION_VERSION, LABEL_COMPARED, LABEL_MANAGED_BY, MANAGED_BY,
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
    if track == Track::Stable {
        // A template taken back from the held baseline (instant rollback) carries the arm's
        // label: stable pods that kept it would join the canary Service's backends.
        labels.remove(LABEL_COMPARED);
    } else {
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
    /// The baseline Deployment as it is now: after a promotion it holds the previous stable
    /// version, whose template the stable workload takes back on an instant rollback.
    pub baseline_now: Option<&'a Deployment>,
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
    // The stable version's template: the stable Deployment's, else the baseline's (which
    // runs the stable version beside a canary, and the previous one after a promotion). Each
    // track prefers its own Deployment's, so a held template survives the stable one rolling on.
    let template_of = |d: Option<&Deployment>| {
        let now = d?;
        let v = deployment_version(now)?;
        Some((v, now.spec.as_ref()?.template.clone()))
    };
    let (own, other) = match track {
        Track::Baseline => (sources.baseline_now, sources.stable_now),
        _ => (sources.stable_now, sources.baseline_now),
    };
    let stable_template = || {
        let wanted = version.clone();
        let candidates = [template_of(own), template_of(other)];
        match wanted {
            Some(w) => candidates.into_iter().flatten().find(|(v, _)| *v == w),
            None => candidates.into_iter().flatten().next(),
        }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crd::fixtures::shop_with_traffic;
    use crate::crd::LABEL_TRACK;

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

    fn template_labels(d: &Deployment) -> std::collections::BTreeMap<String, String> {
        let template = &d.spec.as_ref().unwrap().template;
        template.metadata.as_ref().unwrap().labels.clone().unwrap()
    }

    #[test]
    fn canary_gets_the_new_template_and_stable_keeps_its_own() {
        let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
        let stable_now = stable_deployment("1.0.0");
        let sources = Sources {
            new_template: r.spec.template.as_ref(),
            stable_now: Some(&stable_now),
            baseline_now: None,
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
        let labels = template_labels(&d);
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
        let stable_labels = template_labels(&d);
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
    fn a_held_previous_version_keeps_its_template_and_gives_it_back_to_stable() {
        let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
        // After the promotion: stable runs 2.0.0, the baseline holds 1.0.0, built as the
        // operator builds it (so its template carries the baseline's labels).
        let stable_now = stable_deployment("2.0.0");
        let previous = ChildSpec {
            version: "1.0.0".into(),
            replicas: 4,
        };
        let before = stable_deployment("1.0.0");
        let held = deployment(
            &r,
            Track::Baseline,
            Some(&previous),
            &Sources {
                new_template: r.spec.template.as_ref(),
                stable_now: Some(&before),
                baseline_now: None,
            },
        )
        .unwrap();
        assert_eq!(
            template_labels(&held)
                .get(LABEL_COMPARED)
                .map(String::as_str),
            Some("true")
        );
        let sources = Sources {
            new_template: r.spec.template.as_ref(),
            stable_now: Some(&stable_now),
            baseline_now: Some(&held),
        };
        let d = deployment(&r, Track::Baseline, Some(&previous), &sources).unwrap();
        assert_eq!(image(&d), "shop:1.0.0", "the held pods keep their template");
        // Instant rollback: the stable workload takes the held template back, as stable pods:
        // none of the baseline's labels may make them backends of the canary Service.
        let d = deployment(&r, Track::Stable, Some(&previous), &sources).unwrap();
        assert_eq!(image(&d), "shop:1.0.0");
        assert_eq!(deployment_version(&d).as_deref(), Some("1.0.0"));
        let labels = template_labels(&d);
        assert_eq!(labels.get(LABEL_TRACK).map(String::as_str), Some("stable"));
        assert_eq!(labels.get(LABEL_COMPARED), None, "{labels:?}");
    }

    #[test]
    fn a_lost_stable_template_is_an_error_not_a_guess() {
        let r = shop_with_traffic(json!({"type": "ReplicaRatio"}));
        let other = stable_deployment("0.9.0");
        for stable_now in [None, Some(&other)] {
            let sources = Sources {
                new_template: r.spec.template.as_ref(),
                stable_now,
                baseline_now: None,
            };
            let stable = ChildSpec {
                version: "1.0.0".into(),
                replicas: 2,
            };
            let err = deployment(&r, Track::Stable, Some(&stable), &sources).unwrap_err();
            assert!(matches!(err, BuildError::StableTemplateUnknown(ref v, _) if v == "1.0.0"));
        }
    }
}
