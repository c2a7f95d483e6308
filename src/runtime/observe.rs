//! Gathers what `decide` needs: the child workloads' state, and, only when [`Needs`](crate::rollout::decide::Needs) asks, the
//! gates' answers (fleet, smoke, broker, analysis look, deployment record).
//!
//! The pure parts (turning Kubernetes objects and gate reports into observations) are free
//! functions with unit tests; the I/O is in [`Observer`].

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;

use super::peers::build_info::{BuildInfoAttestor, BuildInfoQuery};
use crate::analysis::providers::prometheus::PrometheusProvider;
use crate::crd::{
    self, track_labels, FleetStatus, GateVerdict, PodFinding, Rollout, SmokeStatus, Track,
};
use crate::gates::fleet::{
    self, AttestConfig, ConfigRule, ExpectedWorkload, FleetExpectation, FleetOutcome, FleetReport,
    HttpAttestor, ImageRecordAttestor, TrackInventory,
};
use crate::gates::smoke;
use crate::rollout::children::{self, deployment_name};
use crate::rollout::decide::{
    adoption, ChildrenState, FleetObservation, FleetScope, OriginalWorkload, SpecProblem,
    WorkloadState,
};

/// Why an observation could not be made. Transient errors are retried with backoff;
/// permanent ones wait for a change to the Rollout.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be turned into a check (e.g. an invalid fleet-check setting).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// `spec.workloadRef` names a Deployment that does not exist.
    #[error("spec.workloadRef.name: Deployment {0} not found in the Rollout's namespace")]
    WorkloadRefMissing(String),
    /// The pods did not all answer within the reconcile's deadline (tried again with backoff).
    #[error("{0}")]
    Deadline(String),
}

impl ObserveError {
    /// Whether waiting and retrying can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ObserveError::Kube(_) | ObserveError::Deadline(_))
    }
}

/// The adopted Deployment as `decide` sees it.
pub fn original_workload(d: &Deployment) -> OriginalWorkload {
    let status = d.status.clone().unwrap_or_default();
    let labels = d.metadata.labels.clone().unwrap_or_default();
    let owned_by_rollout = d.metadata.owner_references.as_ref().is_some_and(|o| {
        o.iter()
            .any(|r| r.kind == "Rollout" && r.api_version.starts_with("tollgate.dev/"))
    });
    OriginalWorkload {
        name: d.metadata.name.clone().unwrap_or_default(),
        replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        ready: status.ready_replicas.unwrap_or(0),
        adopted_by: d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crd::ANNOTATION_ADOPTED_BY))
            .cloned(),
        owned_by_tollgate: owned_by_rollout
            || labels.get(crd::LABEL_MANAGED_BY).map(String::as_str) == Some(crd::MANAGED_BY),
    }
}

/// The adopted Deployment's `matchLabels`: what its pods carry, and what the stable Service
/// selects while they are the stable track.
pub fn original_selector(d: &Deployment) -> Option<BTreeMap<String, String>> {
    d.spec
        .as_ref()?
        .selector
        .match_labels
        .clone()
        .filter(|l| !l.is_empty())
}

/// The selector of every pod of a Rollout, as `status.selector` reports it.
pub fn rollout_selector(rollout: &str) -> String {
    format!("{}={rollout}", crd::LABEL_ROLLOUT)
}

/// Ready pods running the current template, counted only once the Deployment controller has
/// seen the latest spec (otherwise its counts describe the previous one).
pub fn workload_state(deployment: Option<&Deployment>) -> WorkloadState {
    let Some(d) = deployment else {
        return WorkloadState::default();
    };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let current = status
        .observed_generation
        .is_some_and(|g| Some(g) >= d.metadata.generation);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    WorkloadState {
        version: children::deployment_version(d),
        desired,
        ready: if current { ready.min(updated) } else { 0 },
        // Until the controller catches up, assume the old pods are still there.
        total: if current {
            status.replicas.unwrap_or(0)
        } else {
            status.replicas.unwrap_or(0).max(desired)
        },
    }
}

/// The ReplicaSet of a Deployment's current revision.
pub fn current_replica_set<'a>(
    deployment: &Deployment,
    sets: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let revision = deployment.metadata.annotations.as_ref()?.get(REVISION)?;
    let uid = deployment.metadata.uid.as_ref()?;
    sets.iter().find(|rs| {
        let owned = rs.metadata.owner_references.as_ref().is_some_and(|o| {
            o.iter()
                .any(|r| &r.uid == uid && r.controller == Some(true))
        });
        owned
            && rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                == Some(revision)
    })
}

/// The fleet gate's expectation for a scope of `decide`.
pub fn fleet_expectation(spec: &crd::RolloutSpec, scope: &FleetScope) -> FleetExpectation {
    let check = spec.fleet_check();
    let config = match (&check.expected_config_hash, check.config_parity) {
        (Some(hash), _) => ConfigRule::Declared {
            expected_hash: hash.clone(),
        },
        (None, true) if scope.stable_version.is_some() && scope.canary_version.is_some() => {
            ConfigRule::MatchStable {
                pipeline_hash: None,
            }
        }
        (None, _) => ConfigRule::Standalone {
            expected_hash: None,
        },
    };
    FleetExpectation {
        canary_version: scope.canary_version.clone().unwrap_or_default(),
        stable_version: scope.stable_version.clone(),
        config,
        max_listed_failures: crd::MAX_FAILING_PODS,
        required_tracks: if scope.canary_version.is_some() {
            vec![Track::Canary]
        } else {
            vec![Track::Stable]
        },
        dependencies: dependency_rules(check),
        flags: flag_rules(check),
    }
}

/// `spec.fleetCheck.dependencies` as the gate's rules.
pub fn dependency_rules(check: &crd::FleetCheckSpec) -> Vec<fleet::DependencyRule> {
    check
        .dependencies
        .iter()
        .map(|d| fleet::DependencyRule {
            name: d.name.clone(),
            constraint: match (&d.range, &d.exact) {
                (Some(r), _) => Some(fleet::Constraint::Range(r.clone())),
                (None, Some(e)) => Some(fleet::Constraint::Exact(e.clone())),
                (None, None) => None,
            },
            parity: d.parity,
        })
        .collect()
}

/// `spec.fleetCheck.flags` as the gate's rules.
pub fn flag_rules(check: &crd::FleetCheckSpec) -> fleet::FlagRules {
    let f = &check.flags;
    fleet::FlagRules {
        parity: f.parity,
        ignore: f.ignore.iter().cloned().collect(),
        expected: f.expected.clone(),
        guards: f
            .guards
            .iter()
            .map(|g| fleet::FlagGuard {
                flag: g.flag.clone(),
                on: g.on.clone(),
                min_version: g.min_version.clone(),
            })
            .collect(),
    }
}

/// The fleet gate's settings from the spec.
pub fn attest_config(spec: &crd::RolloutSpec) -> Result<AttestConfig, ObserveError> {
    let check = spec.fleet_check();
    let port = u16::try_from(check.port).map_err(|_| {
        ObserveError::Settings(format!(
            "spec.fleetCheck.port {} is out of range",
            check.port
        ))
    })?;
    fleet::keys::validate(&dependency_rules(check), &flag_rules(check))
        .map_err(|e| ObserveError::Settings(format!("spec.fleetCheck.{e}")))?;
    if check.source != crd::FleetSource::Http
        && !(check.dependencies.is_empty()
            && check.flags.expected.is_empty()
            && check.flags.guards.is_empty())
    {
        // Only the version endpoint reports dependencies and flags: rules over them would
        // fail every pod, or (worse) be silently skipped.
        return Err(ObserveError::Settings(
            "spec.fleetCheck.dependencies and spec.fleetCheck.flags need source: http (only the version endpoint reports them)".into(),
        ));
    }
    if check.source != crd::FleetSource::Http && check.expected_config_hash.is_some() {
        return Err(ObserveError::Settings(
            "spec.fleetCheck.expectedConfigHash needs source: http (only the version endpoint reports a configuration hash)".into(),
        ));
    }
    let config = AttestConfig {
        port,
        path: check.path.clone(),
        version_pointer: check.version_pointer.clone(),
        config_hash_pointer: check.config_hash_pointer.clone(),
        dependencies_pointer: check.dependencies_pointer.clone(),
        flags_pointer: check.flags_pointer.clone(),
        timeout: check.timeout.into(),
        concurrency: usize::try_from(check.concurrency.max(1)).unwrap_or(1),
        ..AttestConfig::default()
    };
    config
        .validate()
        .map_err(|e| ObserveError::Settings(format!("spec.fleetCheck: {e}")))?;
    Ok(config)
}

/// The name of a Deployment template's first container.
fn first_container(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()
        .map(|c| c.name.clone())
}

/// The digest a Deployment's template pins for `container` (`image: repo@sha256:…`), if any.
fn pinned_digest(d: &Deployment, container: Option<&str>) -> Option<String> {
    let containers = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
    let c = match container {
        Some(name) => containers.iter().find(|c| c.name == name)?,
        None => containers.first()?,
    };
    fleet::digest_of(c.image.as_deref()?)
}

/// For `source: imageID`, what each track's pods must run is a digest: the canary's from
/// `expectedImageDigest` or its template's pin (one is required: a tag says nothing about what a
/// node pulled); stable's from its template's pin, else what most stable pods run. There is no
/// configuration hash in the kubelet's record.
pub fn image_expectation(
    expectation: &mut FleetExpectation,
    check: &crd::FleetCheckSpec,
    scope: &FleetScope,
    canary: Option<&Deployment>,
    stable: Option<&Deployment>,
    container: Option<&str>,
    records: &ImageRecordAttestor,
) -> Result<(), ObserveError> {
    if scope.canary_version.is_some() {
        expectation.canary_version = check
            .expected_image_digest
            .clone()
            .or_else(|| canary.and_then(|d| pinned_digest(d, container)))
            .ok_or_else(|| {
                ObserveError::Settings(
                    "spec.fleetCheck.expectedImageDigest is required with source: imageID when the template's image is not pinned by digest".into(),
                )
            })?;
    }
    if scope.stable_version.is_some() {
        let pinned = stable.and_then(|d| pinned_digest(d, container));
        // Stable pods with no majority digest are held to a reference none of them has: each
        // is named rather than the track passing on disagreement.
        expectation.stable_version = Some(
            pinned
                .or_else(|| records.majority_digest(Track::Stable))
                .unwrap_or_else(|| "(no digest most stable pods agree on)".into()),
        );
    }
    expectation.config = ConfigRule::Standalone {
        expected_hash: None,
    };
    Ok(())
}

/// Text from a pod as a finding in status keeps it: escaped and capped (a pod may report 64 KiB
/// of escape sequences as its version).
fn shown(text: &str) -> String {
    crate::util::text::for_status(text, crd::MAX_REPORTED_CHARS)
}

/// The fleet report in the Rollout's status shape.
pub fn fleet_status(report: &FleetReport, now: Timestamp) -> FleetStatus {
    let tracks = [&report.canary, &report.baseline, &report.stable];
    let sum = |f: fn(&fleet::TrackCounts) -> usize| {
        i32::try_from(tracks.iter().map(|c| f(c)).sum::<usize>()).unwrap_or(i32::MAX)
    };
    let mut findings: Vec<PodFinding> = report
        .fleet_problems
        .iter()
        .map(|p| PodFinding {
            pod: "(fleet)".into(),
            problem: p.as_str().to_string(),
            reported: Some(shown(&p.to_string())),
            ..Default::default()
        })
        .collect();
    findings.extend(report.failures.iter().map(|f| PodFinding {
        pod: f.pod.clone(),
        track: Some(f.track.as_str().to_string()),
        ip: f.ip.map(|ip| ip.to_string()),
        problem: f.problem.kind.as_str().to_string(),
        reported: Some(shown(
            f.problem.reported.as_deref().unwrap_or(&f.problem.detail),
        )),
        expected: f.problem.expected.as_deref().map(shown),
    }));
    findings.truncate(crd::MAX_FAILING_PODS);
    FleetStatus {
        verdict: if report.passed {
            GateVerdict::Passed
        } else {
            GateVerdict::Blocked
        },
        checked_at: Some(now),
        pods_checked: sum(|c| c.checked),
        pods_matching: sum(|c| c.passed),
        pods_failing: i32::try_from(report.failing_pods).unwrap_or(i32::MAX)
            + i32::try_from(report.fleet_problems.len()).unwrap_or(0),
        pods_not_ready: sum(|c| c.not_ready),
        failing_pods: findings,
        canary_config_hash: report.canary_config_hash.clone(),
        stable_config_hash: report.stable_config_hash.clone(),
    }
}

/// The smoke report in the Rollout's status shape.
pub fn smoke_status(report: &smoke::SmokeReport, now: Timestamp) -> SmokeStatus {
    SmokeStatus {
        verdict: if report.passed {
            GateVerdict::Passed
        } else {
            GateVerdict::Blocked
        },
        checked_at: Some(now),
        requests_sent: i32::try_from(report.requests_sent).unwrap_or(i32::MAX),
        requests_failed: i32::try_from(report.failures_total).unwrap_or(i32::MAX),
        failures: report
            .failures
            .iter()
            .take(crd::MAX_FAILING_PODS)
            .map(|f| PodFinding {
                pod: f.pod.clone(),
                track: Some("canary".into()),
                ip: f.ip.map(|ip| ip.to_string()),
                problem: shown(&format!("{}: {:?}", f.request, f.kind)),
                reported: Some(shown(f.reported.as_deref().unwrap_or(&f.detail))),
                expected: f.expected.as_deref().map(shown),
            })
            .collect(),
    }
}

/// The smoke gate's settings from the spec.
pub fn smoke_config(spec: &crd::RolloutSpec, rollout_name: &str) -> Option<smoke::SmokeConfig> {
    let smoke_spec = spec.smoke.as_ref()?;
    let timeout = smoke_spec
        .requests
        .iter()
        .map(|r| std::time::Duration::from(r.timeout))
        .max()
        .unwrap_or(std::time::Duration::from_secs(2));
    Some(smoke::SmokeConfig {
        requests: smoke_spec
            .requests
            .iter()
            .map(|r| smoke::SmokeRequest {
                name: Some(r.name.clone()),
                method: serde_json::to_value(r.method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "GET".into()),
                path: r.path.clone(),
                port: r.port.and_then(|p| u16::try_from(p).ok()),
                expected_status: u16::try_from(r.expected_status).unwrap_or(200),
                body_contains: r.body_contains.clone(),
                body: None,
            })
            .collect(),
        sample: match smoke_spec.sample_pods {
            Some(n) => smoke::Sample::Count(usize::try_from(n.max(1)).unwrap_or(1)),
            None => smoke::Sample::All,
        },
        default_port: u16::try_from(spec.fleet_check().port).unwrap_or(8080),
        timeout,
        seed: format!("{rollout_name}/{}", spec.version),
        ..smoke::SmokeConfig::default()
    })
}

/// Reads the cluster and asks the gates.
pub struct Observer {
    client: Client,
}

impl Observer {
    /// An observer on `client`.
    pub fn new(client: Client) -> Self {
        Observer { client }
    }

    /// The client it reads with (the policy lookup, `super::policy`, reads through it too).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The Rollout as the API server has it now (None once it is gone): what a retry after a
    /// failed pass reconciles instead of the controller's cached copy, which lags while a watch
    /// is down (a restarted API server answers 403 to watches until its authorizer caught up)
    /// and then conflicts on every status write.
    pub async fn rollout_now(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::crd::Rollout>, ObserveError> {
        let api: Api<crate::crd::Rollout> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?)
    }

    /// The three track Deployments (absent ones are `None`).
    pub async fn deployments(
        &self,
        namespace: &str,
        rollout: &str,
    ) -> Result<BTreeMap<Track, Deployment>, ObserveError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let mut found = BTreeMap::new();
        for track in Track::ALL {
            if let Some(d) = api.get_opt(&deployment_name(rollout, track)).await? {
                found.insert(track, d);
            }
        }
        Ok(found)
    }

    /// The Deployment `spec.workloadRef` names (None without a workloadRef); a missing one is
    /// a problem with the spec.
    pub async fn workload_ref(
        &self,
        rollout: &Rollout,
    ) -> Result<Option<Deployment>, ObserveError> {
        let Some(reference) = &rollout.spec.workload_ref else {
            return Ok(None);
        };
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
        let d = api
            .get_opt(&reference.name)
            .await?
            .ok_or_else(|| ObserveError::WorkloadRefMissing(reference.name.clone()))?;
        Ok(Some(d))
    }

    /// Why the workloadRef's Deployment cannot be adopted by this Rollout, if it cannot (see
    /// `decide::adoption::adoption_problem`): the other Rollouts of the namespace are listed to
    /// find those that name the same Deployment.
    pub async fn adoption_problem(
        &self,
        rollout: &Rollout,
        original: &OriginalWorkload,
    ) -> Result<Option<SpecProblem>, ObserveError> {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), &namespace);
        let referrers: Vec<(String, Option<Timestamp>)> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|r| {
                r.spec
                    .workload_ref
                    .as_ref()
                    .is_some_and(|w| w.name == original.name)
            })
            .map(|r| {
                let created = r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                (r.metadata.name.unwrap_or_default(), created)
            })
            .collect();
        let created = rollout.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let name = rollout.metadata.name.clone().unwrap_or_default();
        Ok(adoption::adoption_problem(
            &name, created, original, &referrers,
        ))
    }

    /// Pods and the current ReplicaSet's expectation of one track.
    async fn track_inventory(
        &self,
        namespace: &str,
        rollout: &str,
        track: Track,
        deployment: Option<&Deployment>,
    ) -> Result<TrackInventory, ObserveError> {
        let selector = track_labels(rollout, track)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let params = ListParams::default().labels(&selector);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let pods = pods.list(&params).await?.items;
        let sets = sets.list(&params).await?.items;
        let expected = deployment
            .and_then(|d| current_replica_set(d, &sets))
            .map(ExpectedWorkload::from_replica_set)
            .unwrap_or_default();
        Ok(fleet::inventory(track, &expected, &pods))
    }

    /// The adopted Deployment's pods, as stable pods: those its selector matches that are not
    /// the Rollout's own (which carry the same labels), expected from its current ReplicaSet.
    async fn original_inventory(
        &self,
        namespace: &str,
        original: &Deployment,
    ) -> Result<TrackInventory, ObserveError> {
        let selector = original_selector(original).unwrap_or_default();
        let mut terms: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if terms.is_empty() {
            // A Deployment without matchLabels: attest nothing rather than every pod.
            return Ok(TrackInventory::default());
        }
        terms.push(format!("!{}", crd::LABEL_ROLLOUT));
        let params = ListParams::default().labels(&terms.join(","));
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let pods = pods.list(&params).await?.items;
        let sets = sets.list(&params).await?.items;
        let expected = current_replica_set(original, &sets)
            .map(ExpectedWorkload::from_replica_set)
            .unwrap_or_default();
        Ok(fleet::inventory(Track::Stable, &expected, &pods))
    }

    /// Attest the tracks in `scope` (with the adopted Deployment's pods as stable pods when
    /// the scope says so). `prometheus` is the client for `source: prometheus` (the caller asks
    /// the analysis peer for it; unused by the other sources).
    pub async fn fleet(
        &self,
        rollout: &Rollout,
        deployments: &BTreeMap<Track, Deployment>,
        original: Option<&Deployment>,
        scope: &FleetScope,
        prometheus: Option<Result<PrometheusProvider, String>>,
        now: Timestamp,
    ) -> Result<FleetObservation, ObserveError> {
        let outcome = self
            .fleet_outcome(rollout, deployments, original, scope, prometheus, None)
            .await?;
        Ok(FleetObservation {
            status: fleet_status(&outcome.report, now),
            verdict: outcome.verdict(),
        })
    }

    /// What [`Observer::fleet`] asks, with every pod's verdict (the dashboard's fleet table
    /// shows them; status keeps only the failing ones). `max_pods` asks only the first pods by
    /// track and name (the dashboard's bound); the gate passes `None`: every pod.
    pub async fn fleet_outcome(
        &self,
        rollout: &Rollout,
        deployments: &BTreeMap<Track, Deployment>,
        original: Option<&Deployment>,
        scope: &FleetScope,
        prometheus: Option<Result<PrometheusProvider, String>>,
        max_pods: Option<usize>,
    ) -> Result<FleetOutcome, ObserveError> {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let config = attest_config(&rollout.spec)?;
        let concurrency = config.concurrency;
        let attestor = HttpAttestor::new(config)
            .map_err(|e| ObserveError::Settings(format!("spec.fleetCheck: {e}")))?;
        let mut parts = Vec::new();
        let mut tracks = Vec::new();
        if scope.canary_version.is_some() {
            tracks.push(Track::Canary);
        }
        if scope.stable_version.is_some() {
            tracks.push(Track::Stable);
            // A baseline is attested beside a canary (it is the stable version's fresh copy);
            // after a promotion it holds the previous version, which is not the stable one.
            if scope.canary_version.is_some()
                && deployments
                    .get(&Track::Baseline)
                    .is_some_and(|d| workload_state(Some(d)).total > 0)
            {
                tracks.push(Track::Baseline);
            }
        }
        for track in tracks {
            parts.push(
                self.track_inventory(&namespace, &name, track, deployments.get(&track))
                    .await?,
            );
        }
        if let Some(original) = original.filter(|_| scope.original) {
            parts.push(self.original_inventory(&namespace, original).await?);
        }
        let mut expectation = fleet_expectation(&rollout.spec, scope);
        let mut inventory = TrackInventory::merge(parts);
        if let Some(max) = max_pods {
            inventory.targets.truncate(max);
            inventory
                .not_ready
                .truncate(max.saturating_sub(inventory.targets.len()));
        }
        let check = rollout.spec.fleet_check();
        let outcome = match check.source {
            crd::FleetSource::Http => {
                fleet::check(&attestor, concurrency, &expectation, inventory).await
            }
            crd::FleetSource::ImageId => {
                let canary = deployments.get(&Track::Canary);
                let stable = deployments
                    .get(&Track::Stable)
                    .or(original.filter(|_| scope.original));
                let container = check
                    .container
                    .clone()
                    .or_else(|| canary.or(stable).and_then(first_container));
                let records = ImageRecordAttestor::new(&inventory, container.as_deref());
                image_expectation(
                    &mut expectation,
                    check,
                    scope,
                    canary,
                    stable,
                    container.as_deref(),
                    &records,
                )?;
                fleet::check(&records, concurrency, &expectation, inventory).await
            }
            crd::FleetSource::Prometheus => {
                let info = &check.build_info;
                // The pod label alone could name a same-named pod of another namespace.
                let query = BuildInfoQuery::new(
                    &info.metric,
                    &info.version_label,
                    &info.pod_label,
                    vec![("namespace".to_string(), namespace.clone())],
                )
                .map_err(|e| ObserveError::Settings(format!("spec.fleetCheck.{e}")))?;
                let provider = prometheus.unwrap_or_else(|| {
                    Err("no Prometheus client was given to the fleet check".to_string())
                });
                let attestor = BuildInfoAttestor::new(provider, query);
                // A series carries a version, no configuration hash to compare.
                expectation.config = ConfigRule::Standalone {
                    expected_hash: None,
                };
                fleet::check(&attestor, concurrency, &expectation, inventory).await
            }
        };
        Ok(outcome)
    }

    /// Send the smoke requests to the ready canary pods.
    pub async fn smoke(
        &self,
        rollout: &Rollout,
        deployments: &BTreeMap<Track, Deployment>,
        now: Timestamp,
    ) -> Result<SmokeStatus, ObserveError> {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let Some(config) = smoke_config(&rollout.spec, &name) else {
            return Ok(SmokeStatus {
                verdict: GateVerdict::Passed,
                checked_at: Some(now),
                ..Default::default()
            });
        };
        config
            .validate()
            .map_err(|e| ObserveError::Settings(format!("spec.smoke: {e}")))?;
        let inventory = self
            .track_inventory(
                &namespace,
                &name,
                Track::Canary,
                deployments.get(&Track::Canary),
            )
            .await?;
        let client = smoke::HttpSmokeClient::new(&config)
            .map_err(|e| ObserveError::Settings(format!("spec.smoke: {e}")))?;
        let report = smoke::run(&client, &config, &inventory.targets).await;
        Ok(smoke_status(&report, now))
    }

    /// The children's state.
    pub fn children(deployments: &BTreeMap<Track, Deployment>) -> ChildrenState {
        ChildrenState {
            stable: workload_state(deployments.get(&Track::Stable)),
            canary: workload_state(deployments.get(&Track::Canary)),
            baseline: workload_state(deployments.get(&Track::Baseline)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(
        generation: i64,
        observed: i64,
        replicas: i32,
        updated: i32,
        ready: i32,
        total: i32,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-canary", "generation": generation, "uid": "d-1",
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": replicas, "selector": {},
                     "template": {"metadata": {"annotations": {"tollgate.dev/version": "2.0.0"}}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "readyReplicas": ready, "replicas": total}
        }))
        .unwrap()
    }

    #[test]
    fn what_a_pod_reports_is_escaped_and_capped_in_status() {
        let report = FleetReport {
            failures: vec![fleet::PodFailure {
                pod: "p-1".into(),
                track: Track::Canary,
                ip: None,
                problem: fleet::Problem {
                    kind: fleet::ProblemKind::VersionMismatch,
                    detail: "version mismatch".into(),
                    reported: Some(format!("\u{1b}]0;owned\u{7}{}", "9".repeat(64 * 1024))),
                    expected: Some("2.0.0".into()),
                },
            }],
            passed: false,
            canary: Default::default(),
            baseline: Default::default(),
            stable: Default::default(),
            stable_config_hash: None,
            canary_config_hash: None,
            fleet_problems: Vec::new(),
            failures_total: 1,
            failing_pods: 1,
            failures_truncated: false,
            not_ready: Vec::new(),
        };
        let status = fleet_status(&report, Timestamp::UNIX_EPOCH);
        let reported = status.failing_pods[0].reported.clone().unwrap();
        assert!(
            reported.starts_with("\\u{1b}]0;owned\\u{7}999"),
            "{reported}"
        );
        assert!(reported.chars().count() <= crd::MAX_REPORTED_CHARS + 1);
        assert!(!reported.chars().any(char::is_control));
    }

    #[test]
    fn a_missing_workload_ref_is_permanent_and_names_the_field() {
        let e = ObserveError::WorkloadRefMissing("shop".into());
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "spec.workloadRef.name: Deployment shop not found in the Rollout's namespace"
        );
    }

    #[test]
    fn the_adopted_deployment_is_read_with_its_marks() {
        let team: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "shop", "annotations": {"tollgate.dev/adopted-by": "a"}},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "shop"}}, "template": {}},
            "status": {"readyReplicas": 3}
        }))
        .unwrap();
        let seen = original_workload(&team);
        assert_eq!((seen.replicas, seen.ready), (4, 3));
        assert_eq!(seen.adopted_by.as_deref(), Some("a"));
        assert!(!seen.owned_by_tollgate);
        assert_eq!(
            original_selector(&team),
            Some(BTreeMap::from([("app".to_string(), "shop".to_string())]))
        );
        // A Rollout's own child, by owner or by label; no replicas means the controller's 1.
        for child in [
            json!({"metadata": {"name": "shop-stable", "ownerReferences": [{"apiVersion": "tollgate.dev/v1alpha1",
                "kind": "Rollout", "name": "shop", "uid": "u"}]}, "spec": {"selector": {}, "template": {}}}),
            json!({"metadata": {"name": "x", "labels": {"app.kubernetes.io/managed-by": "tollgate"}},
                "spec": {"selector": {}, "template": {}}}),
        ] {
            let d: Deployment = serde_json::from_value(child).unwrap();
            let seen = original_workload(&d);
            assert!(seen.owned_by_tollgate, "{seen:?}");
            assert_eq!(seen.replicas, 1);
            assert_eq!(original_selector(&d), None);
        }
        assert_eq!(rollout_selector("shop"), "tollgate.dev/rollout=shop");
    }

    #[test]
    fn workload_state_counts_only_current_ready_pods() {
        let settled = workload_state(Some(&deployment(2, 2, 3, 3, 3, 3)));
        assert!(settled.settled_at("2.0.0", 3));
        // The controller has not seen generation 3 yet: nothing counts as ready.
        let stale = workload_state(Some(&deployment(3, 2, 3, 3, 3, 3)));
        assert_eq!(stale.ready, 0);
        assert!(!stale.settled_at("2.0.0", 3));
        // Ready pods of the old template do not count.
        let rolling = workload_state(Some(&deployment(2, 2, 3, 1, 3, 4)));
        assert_eq!((rolling.ready, rolling.total), (1, 4));
        assert!(workload_state(None).is_gone());
    }

    #[test]
    fn the_current_replica_set_is_the_owned_one_of_the_same_revision() {
        let d = deployment(2, 2, 3, 3, 3, 3);
        let rs = |name: &str, uid: &str, revision: &str| -> ReplicaSet {
            serde_json::from_value(json!({"metadata": {"name": name,
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-canary",
                                      "uid": uid, "controller": true}]}}))
            .unwrap()
        };
        let sets = vec![
            rs("old", "d-1", "2"),
            rs("foreign", "d-9", "3"),
            rs("current", "d-1", "3"),
        ];
        assert_eq!(
            current_replica_set(&d, &sets)
                .and_then(|r| r.metadata.name.clone())
                .as_deref(),
            Some("current")
        );
        assert!(current_replica_set(&d, &sets[..2]).is_none());
    }

    #[test]
    fn image_source_expects_digests_and_checks_its_rules() {
        let hex = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let dep = |image: &str| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {"selector": {},
                "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}))
            .unwrap()
        };
        let spec: crd::RolloutSpec = serde_json::from_value(json!({
            "version": "2.0.0", "workloadRef": {"name": "x"}, "steps": [{"setWeight": 10}],
            "fleetCheck": {"source": "imageID"}
        }))
        .unwrap();
        let scope = FleetScope {
            canary_version: Some("2.0.0".into()),
            stable_version: Some("1.0.0".into()),
            original: false,
        };
        let canary = dep(&format!("shop@{}", hex('c')));
        let stable = dep("shop:1.0.0");
        let mut e = fleet_expectation(&spec, &scope);
        let records = ImageRecordAttestor::default();
        image_expectation(
            &mut e,
            spec.fleet_check(),
            &scope,
            Some(&canary),
            Some(&stable),
            None,
            &records,
        )
        .unwrap();
        assert_eq!(e.canary_version, hex('c'), "the template's pin");
        assert!(e.stable_version.unwrap().contains("no digest"));
        assert_eq!(
            e.config,
            ConfigRule::Standalone {
                expected_hash: None
            }
        );
        // A declared digest wins over the pin.
        let mut declared = spec.fleet_check().clone();
        declared.expected_image_digest = Some(hex('d'));
        let mut e = fleet_expectation(&spec, &scope);
        image_expectation(
            &mut e,
            &declared,
            &scope,
            Some(&canary),
            None,
            None,
            &records,
        )
        .unwrap();
        assert_eq!(e.canary_version, hex('d'));

        // Bad rules are refused naming the field; flag rules need the HTTP source.
        let mut bad = spec.clone();
        bad.fleet_check_mut().source = crd::FleetSource::Http;
        bad.fleet_check_mut().dependencies = vec![crd::DependencySpec {
            name: "postgres".into(),
            range: Some(">=fifteen".into()),
            exact: None,
            parity: true,
        }];
        let e = attest_config(&bad).unwrap_err().to_string();
        assert!(e.contains("spec.fleetCheck.dependencies[0].range"), "{e}");
        bad.fleet_check_mut().dependencies[0].range = Some(">=15".into());
        assert!(attest_config(&bad).is_ok());
        bad.fleet_check_mut().source = crd::FleetSource::ImageId;
        let e = attest_config(&bad).unwrap_err().to_string();
        assert!(e.contains("source: http"), "{e}");
        // Nor does a series or a kubelet record carry a configuration hash to expect.
        let mut hashed = spec.clone();
        hashed.fleet_check_mut().source = crd::FleetSource::Prometheus;
        hashed.fleet_check_mut().expected_config_hash = Some("abc".into());
        let e = attest_config(&hashed).unwrap_err().to_string();
        assert!(e.contains("spec.fleetCheck.expectedConfigHash"), "{e}");
        hashed.fleet_check_mut().source = crd::FleetSource::Http;
        assert!(attest_config(&hashed).is_ok());
    }

    #[test]
    fn fleet_expectation_follows_the_config_rules() {
        let mut spec: crd::RolloutSpec = serde_json::from_value(json!({
            "version": "2.0.0", "workloadRef": {"name": "x"}, "steps": [{"setWeight": 10}]
        }))
        .unwrap();
        let scope = FleetScope {
            canary_version: Some("2.0.0".into()),
            stable_version: Some("1.0.0".into()),
            original: false,
        };
        assert_eq!(
            fleet_expectation(&spec, &scope).config,
            ConfigRule::MatchStable {
                pipeline_hash: None
            }
        );
        spec.fleet_check_mut().expected_config_hash = Some("abc".into());
        assert_eq!(
            fleet_expectation(&spec, &scope).config,
            ConfigRule::Declared {
                expected_hash: "abc".into()
            }
        );
        spec.fleet_check_mut().expected_config_hash = None;
        spec.fleet_check_mut().config_parity = false;
        assert_eq!(
            fleet_expectation(&spec, &scope).config,
            ConfigRule::Standalone {
                expected_hash: None
            }
        );
        let stable_only = FleetScope {
            canary_version: None,
            stable_version: Some("2.0.0".into()),
            original: false,
        };
        spec.fleet_check_mut().config_parity = true;
        assert_eq!(
            fleet_expectation(&spec, &stable_only).config,
            ConfigRule::Standalone {
                expected_hash: None
            }
        );
        spec.fleet_check_mut().port = 70000;
        assert!(
            matches!(attest_config(&spec), Err(ObserveError::Settings(m)) if m.contains("port"))
        );
    }
}
