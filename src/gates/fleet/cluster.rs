//! What Kubernetes says about the pods, checked without I/O: which pods are ready (and so get
//! attested), whether each belongs to the expected ReplicaSet (`pod-template-hash`), and whether
//! the pods of one workload run the same image (`status.containerStatuses[].imageID`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::attest::Attestor;
use super::model::{
    AttestError, Attestation, PodProblem, PodRef, PodTarget, Problem, ProblemKind, Track,
};
use super::rules::majority;

/// The label the ReplicaSet controller puts on a template's pods and on the ReplicaSet.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// What one workload (a track) should look like in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedWorkload {
    /// The expected ReplicaSet's `pod-template-hash`; `None` skips the label check.
    pub template_hash: Option<String>,
    /// The expected ReplicaSet's name; when set, a pod controlled by another ReplicaSet fails.
    pub replica_set: Option<String>,
}

impl ExpectedWorkload {
    /// The expectation that a ReplicaSet's pods carry its hash and are controlled by it.
    pub fn from_replica_set(rs: &ReplicaSet) -> Self {
        ExpectedWorkload {
            template_hash: template_hash(rs),
            replica_set: rs.metadata.name.clone(),
        }
    }
}

/// The pods of one track, sorted out: ready ones to attest, the rest counted, and the problems
/// Kubernetes already shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackInventory {
    pub targets: Vec<PodTarget>,
    pub not_ready: Vec<PodRef>,
    pub problems: Vec<PodProblem>,
    /// The kubelet's record of each target: container name -> `imageID` (set ones only).
    pub image_ids: BTreeMap<(Track, String), BTreeMap<String, String>>,
}

impl TrackInventory {
    /// Put several tracks' inventories together.
    pub fn merge(parts: impl IntoIterator<Item = TrackInventory>) -> TrackInventory {
        let mut all = TrackInventory::default();
        for p in parts {
            all.targets.extend(p.targets);
            all.not_ready.extend(p.not_ready);
            all.problems.extend(p.problems);
            all.image_ids.extend(p.image_ids);
        }
        all.targets.sort();
        all.not_ready.sort();
        all.problems.sort();
        all
    }
}

/// A ReplicaSet's `pod-template-hash` label.
pub fn template_hash(rs: &ReplicaSet) -> Option<String> {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH))
        .cloned()
}

/// Ready: condition `Ready=True` and not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata
        .name
        .clone()
        .unwrap_or_else(|| "<unnamed>".to_string())
}

fn pod_ip(pod: &Pod) -> Result<IpAddr, String> {
    let raw = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap_or("");
    if raw.is_empty() {
        return Err(String::new());
    }
    raw.parse::<IpAddr>().map_err(|_| raw.to_string())
}

/// Sort one track's pods and cross-check them against the expected workload.
pub fn inventory(track: Track, expected: &ExpectedWorkload, pods: &[Pod]) -> TrackInventory {
    let mut inv = TrackInventory::default();
    let mut ready: Vec<&Pod> = Vec::new();

    for pod in pods {
        let name = pod_name(pod);
        let ip = pod_ip(pod).ok();
        let pref = PodRef {
            track,
            name: name.clone(),
            ip,
        };
        if !is_ready(pod) {
            inv.not_ready.push(pref);
            continue;
        }
        ready.push(pod);
        let images: BTreeMap<String, String> = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter(|cs| !cs.image_id.is_empty())
            .map(|cs| (cs.name.clone(), cs.image_id.clone()))
            .collect();
        inv.image_ids.insert((track, name.clone()), images);
        match pod_ip(pod) {
            Ok(ip) => inv.targets.push(PodTarget {
                track,
                name: name.clone(),
                ip,
            }),
            Err(raw) => inv.problems.push(PodProblem {
                pod: pref.clone(),
                problem: Problem {
                    kind: ProblemKind::NoAddress,
                    reported: (!raw.is_empty()).then_some(raw),
                    expected: None,
                    detail: "pod is ready but has no usable IP address".into(),
                },
            }),
        }

        let labels = pod.metadata.labels.as_ref();
        if let Some(want) = &expected.template_hash {
            let have = labels.and_then(|l| l.get(POD_TEMPLATE_HASH));
            if have != Some(want) {
                inv.problems.push(PodProblem {
                    pod: pref.clone(),
                    problem: Problem {
                        kind: ProblemKind::TemplateHashMismatch,
                        reported: have.cloned(),
                        expected: Some(want.clone()),
                        detail: format!(
                            "{POD_TEMPLATE_HASH} label is not the expected ReplicaSet's"
                        ),
                    },
                });
            }
        }
        if let Some(want) = &expected.replica_set {
            let owner = pod
                .metadata
                .owner_references
                .as_ref()
                .and_then(|os| os.iter().find(|o| o.controller == Some(true)));
            let owned = owner.is_some_and(|o| o.kind == "ReplicaSet" && &o.name == want);
            if !owned {
                inv.problems.push(PodProblem {
                    pod: pref.clone(),
                    problem: Problem {
                        kind: ProblemKind::TemplateHashMismatch,
                        reported: owner.map(|o| format!("{}/{}", o.kind, o.name)),
                        expected: Some(format!("ReplicaSet/{want}")),
                        detail: "pod is not controlled by the expected ReplicaSet".into(),
                    },
                });
            }
        }
    }

    inv.problems.extend(image_disagreements(track, &ready));
    inv.targets.sort();
    inv.not_ready.sort();
    inv.problems.sort();
    inv
}

/// The digest (`sha256:<hex>`, lowercase) in an image reference or a kubelet `imageID`
/// (`repo@sha256:…`, `docker-pullable://repo@sha256:…`, `sha256:…`); `None` without one (an
/// image given by tag only).
pub fn digest_of(reference: &str) -> Option<String> {
    let tail = match reference.rsplit_once('@') {
        Some((_, d)) => d,
        None => reference,
    };
    let hex = tail.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Attestation from the kubelet's record, for services without a version endpoint: each pod's
/// "version" is the image digest its container runs (`status.containerStatuses[].imageID`),
/// judged by the same rules against the digest the Rollout expects. A node that kept a stale
/// image under a reused tag reports the stale digest here, whatever the tag says.
#[derive(Debug, Clone, Default)]
pub struct ImageRecordAttestor {
    records: BTreeMap<(Track, String), Result<Attestation, AttestError>>,
}

impl ImageRecordAttestor {
    /// From an inventory's records. `container`: which container's image counts; `None`
    /// means the pod's only container (a pod with several fails, naming the setting).
    pub fn new(inventory: &TrackInventory, container: Option<&str>) -> Self {
        let records = inventory
            .image_ids
            .iter()
            .map(|(key, images)| (key.clone(), image_record(images, container)))
            .collect();
        ImageRecordAttestor { records }
    }

    /// The digest most pods of `track` run, if exactly one is most common: stable's reference
    /// when its template does not pin a digest.
    pub fn majority_digest(&self, track: Track) -> Option<String> {
        majority(
            self.records
                .iter()
                .filter(|((t, _), _)| *t == track)
                .filter_map(|(_, r)| r.as_ref().ok().map(|a| a.version.as_str())),
        )
        .map(str::to_string)
    }
}

fn image_record(
    images: &BTreeMap<String, String>,
    container: Option<&str>,
) -> Result<Attestation, AttestError> {
    let (name, image_id) = match container {
        Some(c) => images.get_key_value(c).ok_or_else(|| {
            AttestError::NoRecord(format!("the kubelet reports no imageID for container {c}"))
        })?,
        None => {
            let mut all = images.iter();
            match (all.next(), all.next()) {
                (Some(only), None) => only,
                (None, _) => {
                    return Err(AttestError::NoRecord(
                        "the kubelet reports no imageID for this pod".into(),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(AttestError::BadRecord(
                        "the pod has several containers: set spec.fleetCheck.container".into(),
                    ))
                }
            }
        }
    };
    let digest = digest_of(image_id).ok_or_else(|| {
        AttestError::BadRecord(format!(
            "imageID of container {name} has no sha256 digest: {}",
            crate::util::text::excerpt(image_id, 120)
        ))
    })?;
    Ok(Attestation {
        version: digest,
        ..Default::default()
    })
}

impl Attestor for ImageRecordAttestor {
    async fn attest(&self, target: &PodTarget) -> Result<Attestation, AttestError> {
        self.records
            .get(&(target.track, target.name.clone()))
            .cloned()
            .unwrap_or_else(|| Err(AttestError::NoRecord("pod not in the inventory".into())))
    }
}

/// Where `imageID` is set, the pods of one workload agree per container; the pods that differ
/// from the majority (all of them when there is no majority) fail.
pub fn image_disagreements(track: Track, pods: &[&Pod]) -> Vec<PodProblem> {
    // container name -> [(pod, imageID)]
    let mut by_container: BTreeMap<String, Vec<(&Pod, String)>> = BTreeMap::new();
    for pod in pods {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for cs in statuses.into_iter().flatten() {
            if !cs.image_id.is_empty() {
                by_container
                    .entry(cs.name.clone())
                    .or_default()
                    .push((pod, cs.image_id.clone()));
            }
        }
    }
    let mut problems = Vec::new();
    for (container, seen) in by_container {
        let top = majority(seen.iter().map(|(_, id)| id.as_str())).map(str::to_string);
        for (pod, id) in &seen {
            if top.as_deref() == Some(id.as_str()) {
                continue;
            }
            problems.push(PodProblem {
                pod: PodRef {
                    track,
                    name: pod_name(pod),
                    ip: pod_ip(pod).ok(),
                },
                problem: Problem {
                    kind: ProblemKind::ImageMismatch,
                    reported: Some(id.clone()),
                    expected: top.clone(),
                    detail: match &top {
                        Some(_) => format!(
                            "container {container} runs another image than the other {track} pods"
                        ),
                        None => format!(
                            "{track} pods run different images in container {container} with no majority"
                        ),
                    },
                },
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    fn pod(name: &str, ip: Option<&str>, ready: bool, hash: &str, image: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(POD_TEMPLATE_HASH.to_string(), hash.to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: format!("app-{hash}"),
                    uid: "u".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                pod_ip: ip.map(str::to_string),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    image_id: image.unwrap_or("").into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn rs(hash: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("app-{hash}")),
                labels: Some([(POD_TEMPLATE_HASH.to_string(), hash.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn readiness_needs_the_ready_condition_and_no_deletion() {
        assert!(is_ready(&pod("a", Some("127.0.0.1"), true, "h", None)));
        assert!(!is_ready(&pod("a", Some("127.0.0.1"), false, "h", None)));
        let mut terminating = pod("a", Some("127.0.0.1"), true, "h", None);
        terminating.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert!(!is_ready(&terminating));
        let mut no_status = pod("a", None, true, "h", None);
        no_status.status = None;
        assert!(!is_ready(&no_status));
    }

    #[test]
    fn a_healthy_workload_has_no_problems() {
        let pods: Vec<Pod> = (1..=3)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    Some(&format!("127.0.20.{i}")),
                    true,
                    "abc",
                    Some("sha256:1"),
                )
            })
            .collect();
        let inv = inventory(
            Track::Canary,
            &ExpectedWorkload::from_replica_set(&rs("abc")),
            &pods,
        );
        assert_eq!(inv.targets.len(), 3);
        assert!(inv.not_ready.is_empty());
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        assert_eq!(inv.targets[0].ip, "127.0.20.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn not_ready_pods_are_counted_not_attested() {
        let pods = vec![
            pod("p1", Some("127.0.20.1"), true, "abc", None),
            pod("p2", None, false, "abc", None),
        ];
        let inv = inventory(Track::Stable, &ExpectedWorkload::default(), &pods);
        assert_eq!(inv.targets.len(), 1);
        assert_eq!(inv.not_ready.len(), 1);
        assert_eq!(inv.not_ready[0].name, "p2");
        assert_eq!(inv.not_ready[0].track, Track::Stable);
    }

    #[test]
    fn a_pod_of_another_replica_set_fails() {
        let pods = vec![
            pod("p1", Some("127.0.20.1"), true, "abc", None),
            pod("p2", Some("127.0.20.2"), true, "old", None),
        ];
        let inv = inventory(
            Track::Canary,
            &ExpectedWorkload::from_replica_set(&rs("abc")),
            &pods,
        );
        assert_eq!(inv.targets.len(), 2, "it is still attested");
        let kinds: Vec<_> = inv
            .problems
            .iter()
            .map(|p| {
                (
                    p.pod.name.as_str(),
                    p.problem.kind,
                    p.problem.reported.clone(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "p2",
                    ProblemKind::TemplateHashMismatch,
                    Some("ReplicaSet/app-old".to_string())
                ),
                (
                    "p2",
                    ProblemKind::TemplateHashMismatch,
                    Some("old".to_string())
                ),
            ]
        );
    }

    #[test]
    fn missing_label_fails_the_template_check() {
        let mut p = pod("p1", Some("127.0.20.1"), true, "abc", None);
        p.metadata.labels = None;
        let expected = ExpectedWorkload {
            template_hash: Some("abc".into()),
            replica_set: None,
        };
        let inv = inventory(Track::Canary, &expected, &[p]);
        assert_eq!(inv.problems.len(), 1);
        assert_eq!(inv.problems[0].problem.reported, None);
    }

    #[test]
    fn the_odd_image_is_named() {
        let pods = vec![
            pod("p1", Some("127.0.20.1"), true, "abc", Some("sha256:1")),
            pod("p2", Some("127.0.20.2"), true, "abc", Some("sha256:2")),
            pod("p3", Some("127.0.20.3"), true, "abc", Some("sha256:1")),
            // imageID not set yet: not compared.
            pod("p4", Some("127.0.20.4"), true, "abc", None),
            // not ready: not compared.
            pod("p5", Some("127.0.20.5"), false, "abc", Some("sha256:9")),
        ];
        let inv = inventory(Track::Stable, &ExpectedWorkload::default(), &pods);
        assert_eq!(inv.problems.len(), 1, "{:?}", inv.problems);
        let p = &inv.problems[0];
        assert_eq!(p.pod.name, "p2");
        assert_eq!(p.problem.kind, ProblemKind::ImageMismatch);
        assert_eq!(p.problem.reported.as_deref(), Some("sha256:2"));
        assert_eq!(p.problem.expected.as_deref(), Some("sha256:1"));
    }

    #[test]
    fn images_without_majority_all_fail() {
        let pods = vec![
            pod("p1", Some("127.0.20.1"), true, "abc", Some("sha256:1")),
            pod("p2", Some("127.0.20.2"), true, "abc", Some("sha256:2")),
        ];
        let inv = inventory(Track::Canary, &ExpectedWorkload::default(), &pods);
        assert_eq!(inv.problems.len(), 2);
        assert!(inv.problems.iter().all(|p| p.problem.expected.is_none()));
    }

    #[test]
    fn ready_pod_without_ip_is_a_problem_not_a_target() {
        let pods = vec![
            pod("p1", None, true, "abc", None),
            pod("p2", Some("not-an-ip"), true, "abc", None),
        ];
        let inv = inventory(Track::Canary, &ExpectedWorkload::default(), &pods);
        assert!(inv.targets.is_empty());
        assert_eq!(inv.problems.len(), 2);
        assert!(inv
            .problems
            .iter()
            .all(|p| p.problem.kind == ProblemKind::NoAddress));
        assert_eq!(
            inv.problems[1].problem.reported.as_deref(),
            Some("not-an-ip")
        );
    }

    #[test]
    fn digests_from_references_and_image_ids() {
        let hex = "a".repeat(64);
        let table = [
            (format!("repo/app@sha256:{hex}"), true),
            (format!("docker-pullable://repo/app@sha256:{hex}"), true),
            (format!("sha256:{}", hex.to_uppercase()), true),
            ("repo/app:1.2.3".to_string(), false),
            ("repo/app".to_string(), false),
            ("repo@sha256:abc".to_string(), false),
            (format!("repo@sha512:{hex}"), false),
        ];
        for (reference, has) in table {
            let got = digest_of(&reference);
            assert_eq!(got.is_some(), has, "{reference}");
            if let Some(d) = got {
                assert_eq!(d, format!("sha256:{hex}"));
            }
        }
    }

    #[tokio::test]
    async fn the_kubelet_record_attests_each_pod() {
        let new = format!("docker-pullable://shop@sha256:{}", "1".repeat(64));
        let old = format!("docker-pullable://shop@sha256:{}", "0".repeat(64));
        let pods = vec![
            pod("p1", Some("127.0.20.1"), true, "abc", Some(&new)),
            pod("p2", Some("127.0.20.2"), true, "abc", Some(&old)),
            pod("p3", Some("127.0.20.3"), true, "abc", None),
            pod("p4", Some("127.0.20.4"), true, "abc", Some("sha256:short")),
        ];
        let inv = inventory(Track::Canary, &ExpectedWorkload::default(), &pods);
        let records = ImageRecordAttestor::new(&inv, None);
        let mut got = Vec::new();
        for t in &inv.targets {
            got.push(
                records
                    .attest(t)
                    .await
                    .map(|a| a.version)
                    .map_err(|e| e.kind()),
            );
        }
        assert_eq!(
            got,
            vec![
                Ok(format!("sha256:{}", "1".repeat(64))),
                Ok(format!("sha256:{}", "0".repeat(64))),
                Err(ProblemKind::Unreachable),
                Err(ProblemKind::InvalidField),
            ]
        );
        assert_eq!(records.majority_digest(Track::Canary), None, "a tie");
        // A named container that the pod lacks.
        let named = ImageRecordAttestor::new(&inv, Some("sidecar"));
        let e = named.attest(&inv.targets[0]).await.unwrap_err();
        assert!(e.to_string().contains("sidecar"), "{e}");
    }

    #[test]
    fn merge_sorts_tracks_together() {
        let a = inventory(
            Track::Stable,
            &ExpectedWorkload::default(),
            &[pod("s1", Some("127.0.21.1"), true, "s", None)],
        );
        let b = inventory(
            Track::Canary,
            &ExpectedWorkload::default(),
            &[pod("c1", Some("127.0.20.1"), true, "c", None)],
        );
        let all = TrackInventory::merge([a, b]);
        assert_eq!(all.targets[0].track, Track::Canary);
        assert_eq!(all.targets[1].track, Track::Stable);
    }
}
