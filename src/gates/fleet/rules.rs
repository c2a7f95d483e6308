//! The pure rules of the fleet check: given what each pod reported (or how it failed to answer)
//! and what the rollout expects, decide which pods fail and why. No I/O, no clock.
//!
//! Rules:
//! - every canary pod reports the canary version; every stable and baseline pod the stable version;
//! - the pods of one track share one configuration hash (a pod that disagrees with its peers is
//!   [`ProblemKind::ConfigDrift`]);
//! - the canary's hash equals the stable one unless a configuration change is declared, in which
//!   case it equals the declared hash; a hash given by the pipeline must match as well
//!   ([`ProblemKind::ConfigMismatch`] when a whole track agrees on the wrong hash);
//! - a baseline is a fresh copy of stable: same version, same hash as stable;
//! - a pod that did not answer properly fails (fail closed), and so does an empty canary;
//! - dependencies, flags and guarded version rules, key by key: see [`super::keys`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::keys::{self, DependencyRule, FlagRules};
use super::model::{AttestError, PodObservation, PodProblem, PodRef, Problem, ProblemKind, Track};

/// How the canary's configuration hash is judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum ConfigRule {
    /// No configuration change declared: the canary's hash equals stable's. A hash given by the
    /// pipeline must match too.
    #[serde(rename_all = "camelCase")]
    MatchStable { pipeline_hash: Option<String> },
    /// A configuration change is declared: the canary reports exactly this hash.
    #[serde(rename_all = "camelCase")]
    Declared { expected_hash: String },
    /// No stable workload to compare with (e.g. `tollgate verify`): the pods agree with each
    /// other, and with `expected_hash` when one is given.
    #[serde(rename_all = "camelCase")]
    Standalone { expected_hash: Option<String> },
}

/// What the rollout expects of its fleet. Independent of the CRD: the controller maps its spec
/// and status onto this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetExpectation {
    /// The version every canary pod must report (`spec.version`).
    pub canary_version: String,
    /// The version every stable and baseline pod must report (`status.stableVersion`); `None`
    /// when there is no stable workload, in which case any stable or baseline pod fails.
    pub stable_version: Option<String>,
    pub config: ConfigRule,
    /// How many pod failures the report lists (the counts are always complete).
    pub max_listed_failures: usize,
    /// Tracks that must have at least one ready pod: attesting nothing is no evidence. The
    /// canary for a canary check; stable alone when only the stable fleet is verified (a first
    /// deployment, or after a promotion).
    #[serde(default = "canary_required")]
    pub required_tracks: Vec<Track>,
    /// Declared dependencies: constraint and parity per dependency (see [`super::keys`]).
    #[serde(default)]
    pub dependencies: Vec<DependencyRule>,
    /// How flags are compared key by key, and the guarded version rules.
    #[serde(default)]
    pub flags: FlagRules,
}

fn canary_required() -> Vec<Track> {
    vec![Track::Canary]
}

/// Default cap on the failures listed in a report (status stays small; counts stay exact).
pub const DEFAULT_MAX_LISTED_FAILURES: usize = 20;

/// Everything the rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetInput {
    /// One observation per ready pod that was attested.
    pub observations: Vec<PodObservation>,
    /// Pods that exist but are not ready: counted and reported, not attested.
    pub not_ready: Vec<PodRef>,
    /// Problems from the Kubernetes cross-check (template hash, image, missing IP).
    pub cluster_problems: Vec<PodProblem>,
}

/// The judgement of one pod, with what it reported (for tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVerdict {
    pub pod: PodRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_config_hash: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reported_dependencies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reported_flags: BTreeMap<String, String>,
    /// Empty when the pod passes.
    pub problems: Vec<Problem>,
}

impl PodVerdict {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One line of the failure list: one problem of one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodFailure {
    pub track: Track,
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Its fields sit beside the pod's in JSON (`kind`, `reported`, `expected`, `detail`).
    #[serde(flatten)]
    pub problem: Problem,
}

/// A problem of the fleet as a whole rather than of one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum FleetProblem {
    /// No ready pod of this track was found: nothing to attest is no evidence.
    #[serde(rename_all = "camelCase")]
    NoReadyPods { track: Track },
    /// The canary must match stable's hash, but stable has no agreed hash (no stable pod
    /// answered, or its pods disagree with no majority).
    StableReferenceUnavailable,
}

impl FleetProblem {
    /// The name written into status.
    pub fn as_str(&self) -> &'static str {
        match self {
            FleetProblem::NoReadyPods { .. } => "NoReadyPods",
            FleetProblem::StableReferenceUnavailable => "StableReferenceUnavailable",
        }
    }

    /// No pod answered for this (none is ready yet), rather than a wrong answer: see
    /// [`ProblemKind::is_unanswered`].
    pub fn is_unanswered(&self) -> bool {
        match self {
            FleetProblem::NoReadyPods { .. } => true,
            FleetProblem::StableReferenceUnavailable => false,
        }
    }
}

impl fmt::Display for FleetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetProblem::NoReadyPods { track } => write!(f, "no ready {track} pod to attest"),
            FleetProblem::StableReferenceUnavailable => f.write_str(
                "stable pods report no agreed configuration hash to compare the canary with",
            ),
        }
    }
}

/// Counts of one track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackCounts {
    /// Ready pods judged (attested, or failed the cluster cross-check).
    pub checked: usize,
    pub passed: usize,
    pub failed: usize,
    /// Pods that exist but are not ready (not attested, not failing).
    pub not_ready: usize,
}

/// The result of a fleet check, small enough for `status`: exact counts, a capped sorted list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    pub passed: bool,
    pub canary: TrackCounts,
    pub baseline: TrackCounts,
    pub stable: TrackCounts,
    /// The configuration hash the stable pods agree on, if they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_config_hash: Option<String>,
    /// The configuration hash the canary pods agree on, if they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_config_hash: Option<String>,
    pub fleet_problems: Vec<FleetProblem>,
    /// Sorted by track, pod name, kind; at most `max_listed_failures` entries.
    pub failures: Vec<PodFailure>,
    /// Number of pod failures in all (listed or not).
    pub failures_total: usize,
    /// Number of distinct failing pods.
    pub failing_pods: usize,
    pub failures_truncated: bool,
    /// Names of pods that are not ready (capped like `failures`).
    pub not_ready: Vec<PodRef>,
}

impl FleetReport {
    pub fn counts(&self, track: Track) -> &TrackCounts {
        match track {
            Track::Canary => &self.canary,
            Track::Baseline => &self.baseline,
            Track::Stable => &self.stable,
        }
    }

    fn counts_mut(&mut self, track: Track) -> &mut TrackCounts {
        match track {
            Track::Canary => &mut self.canary,
            Track::Baseline => &mut self.baseline,
            Track::Stable => &mut self.stable,
        }
    }

    /// One line for a condition message or an Event.
    pub fn summary(&self) -> String {
        let counts = Track::ALL
            .iter()
            .filter(|t| {
                let c = self.counts(**t);
                c.checked + c.not_ready > 0 || **t == Track::Canary
            })
            .map(|t| {
                let c = self.counts(*t);
                let mut s = format!("{}/{} {t} pods pass", c.passed, c.checked);
                if c.not_ready > 0 {
                    s.push_str(&format!(" ({} not ready)", c.not_ready));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ");
        if self.passed {
            return format!("fleet check passed: {counts}");
        }
        let mut s = format!(
            "fleet check failed: {counts}; {} failing pod(s)",
            self.failing_pods
        );
        for p in &self.fleet_problems {
            s.push_str(&format!("; {p}"));
        }
        if let Some(f) = self.failures.first() {
            s.push_str(&format!(
                "; first: {} ({}) {}",
                f.pod, f.track, f.problem.kind
            ));
            if let Some(r) = &f.problem.reported {
                s.push_str(&format!(" reported {r:?}"));
            }
            if let Some(e) = &f.problem.expected {
                s.push_str(&format!(" expected {e:?}"));
            }
        }
        s
    }
}

/// The most common value, if exactly one value is the most common (ties give `None`).
pub fn majority<'a, I>(values: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let top = counts.values().copied().max()?;
    let mut at_top = counts.iter().filter(|(_, c)| **c == top);
    let (value, _) = at_top.next()?;
    if at_top.next().is_some() {
        None
    } else {
        Some(value)
    }
}

fn attest_problem(err: &AttestError) -> Problem {
    Problem {
        kind: err.kind(),
        reported: err.reported(),
        expected: None,
        detail: err.to_string(),
    }
}

type Verdicts = BTreeMap<(Track, String), PodVerdict>;

/// Judge every pod: the full, sorted list (the CLI prints it; the report caps it).
pub fn evaluate_pods(expect: &FleetExpectation, input: &FleetInput) -> Vec<PodVerdict> {
    let mut verdicts = answers(input);
    check_versions(expect, &mut verdicts);
    let majorities: BTreeMap<Track, Option<String>> = Track::ALL
        .iter()
        .map(|t| (*t, track_majority(&verdicts, *t)))
        .collect();
    let references = config_references(expect, &majorities);
    check_config_hashes(&mut verdicts, &majorities, &references);
    let mut answered: Vec<&mut PodVerdict> = verdicts.values_mut().collect();
    keys::check(&expect.dependencies, &expect.flags, &mut answered);
    add_cluster_problems(input, &mut verdicts);
    verdicts
        .into_values()
        .map(|mut v| {
            v.problems.sort();
            v.problems.dedup();
            v
        })
        .collect()
}

fn empty_verdict(pod: PodRef) -> PodVerdict {
    PodVerdict {
        pod,
        reported_version: None,
        reported_config_hash: None,
        reported_dependencies: BTreeMap::new(),
        reported_flags: BTreeMap::new(),
        problems: Vec::new(),
    }
}

/// One verdict per attested pod, with what it reported or why it did not.
fn answers(input: &FleetInput) -> Verdicts {
    let mut verdicts = Verdicts::new();
    for obs in &input.observations {
        let key = (obs.target.track, obs.target.name.clone());
        let verdict = verdicts
            .entry(key)
            .or_insert_with(|| empty_verdict(obs.target.pod_ref()));
        match &obs.result {
            Ok(a) => {
                verdict.reported_version = Some(a.version.clone());
                verdict.reported_config_hash = a.config_hash.clone();
                verdict.reported_dependencies = a.dependencies.clone();
                verdict.reported_flags = a.flags.clone();
            }
            Err(e) => verdict.problems.push(attest_problem(e)),
        }
    }
    verdicts
}

/// Every canary pod reports the canary version, every stable and baseline pod the stable one.
fn check_versions(expect: &FleetExpectation, verdicts: &mut Verdicts) {
    for v in verdicts.values_mut() {
        let Some(reported) = v.reported_version.clone() else {
            continue;
        };
        let expected = match v.pod.track {
            Track::Canary => Some(expect.canary_version.as_str()),
            Track::Baseline | Track::Stable => expect.stable_version.as_deref(),
        };
        match expected {
            Some(e) if e == reported => {}
            Some(e) => v.problems.push(Problem {
                kind: ProblemKind::VersionMismatch,
                reported: Some(reported),
                expected: Some(e.to_string()),
                detail: "pod runs another version".into(),
            }),
            None => v.problems.push(Problem {
                kind: ProblemKind::UnexpectedPod,
                reported: Some(reported),
                expected: None,
                detail: format!(
                    "{} pod found while no stable version is expected",
                    v.pod.track
                ),
            }),
        }
    }
}

/// The configuration hash most pods of `track` report, if exactly one is most common.
fn track_majority(verdicts: &Verdicts, track: Track) -> Option<String> {
    majority(
        verdicts
            .values()
            .filter(|v| v.pod.track == track)
            .filter_map(|v| v.reported_config_hash.as_deref()),
    )
    .map(str::to_string)
}

/// A hash a track is held to, and where it comes from.
#[derive(Clone)]
struct Reference {
    /// `None`: the reference is unknown (its pods disagree with no majority, or none answered).
    hash: Option<String>,
    source: &'static str,
    /// The reference is the stable pods' hash for a canary without a declared change: an
    /// unknown one is a fleet problem (see the report), not each canary pod's.
    stable_for_canary: bool,
}

fn reference(hash: Option<String>, source: &'static str) -> Reference {
    Reference {
        hash,
        source,
        stable_for_canary: false,
    }
}

/// The hashes each track is held to (all must hold).
fn config_references(
    expect: &FleetExpectation,
    majorities: &BTreeMap<Track, Option<String>>,
) -> BTreeMap<Track, Vec<Reference>> {
    let of = |t: Track| majorities.get(&t).cloned().flatten();
    let stable_majority = of(Track::Stable);
    let canary = match &expect.config {
        ConfigRule::Declared { expected_hash } => vec![reference(
            Some(expected_hash.clone()),
            "the declared configuration change",
        )],
        ConfigRule::MatchStable { pipeline_hash } => {
            let mut refs = vec![Reference {
                hash: stable_majority.clone(),
                source: "the stable pods (no configuration change declared)",
                stable_for_canary: true,
            }];
            if let Some(h) = pipeline_hash {
                refs.push(reference(Some(h.clone()), "the hash given by the pipeline"));
            }
            refs
        }
        ConfigRule::Standalone {
            expected_hash: Some(h),
        } => vec![reference(Some(h.clone()), "the hash given by the pipeline")],
        ConfigRule::Standalone {
            expected_hash: None,
        } => vec![reference(of(Track::Canary), "the other pods")],
    };
    let baseline = match &stable_majority {
        Some(h) => reference(Some(h.clone()), "the stable pods"),
        None => reference(of(Track::Baseline), "the other baseline pods"),
    };
    BTreeMap::from([
        (
            Track::Stable,
            vec![reference(stable_majority, "the other stable pods")],
        ),
        (Track::Baseline, vec![baseline]),
        (Track::Canary, canary),
    ])
}

/// Hold each pod's hash to its track's references: a pod that is the odd one out of its track
/// drifts; a track that agrees on the wrong hash mismatches.
fn check_config_hashes(
    verdicts: &mut Verdicts,
    majorities: &BTreeMap<Track, Option<String>>,
    references: &BTreeMap<Track, Vec<Reference>>,
) {
    for v in verdicts.values_mut() {
        let Some(reported) = v.reported_config_hash.clone() else {
            continue;
        };
        let track = v.pod.track;
        let peers_majority = majorities.get(&track).cloned().flatten();
        let odd_one_out = peers_majority.as_deref() != Some(reported.as_str());
        let mut flagged: Vec<String> = Vec::new();
        for r in references.get(&track).into_iter().flatten() {
            match &r.hash {
                Some(h) if *h == reported => {}
                Some(h) => {
                    if flagged.contains(h) {
                        continue;
                    }
                    flagged.push(h.clone());
                    let kind = if odd_one_out {
                        ProblemKind::ConfigDrift
                    } else {
                        ProblemKind::ConfigMismatch
                    };
                    v.problems.push(Problem {
                        kind,
                        reported: Some(reported.clone()),
                        expected: Some(h.clone()),
                        detail: format!("configuration hash differs from {}", r.source),
                    });
                }
                None if r.stable_for_canary => {
                    // Stable has no agreed hash: a fleet problem (see the report). A canary pod
                    // that also disagrees with the other canary pods is still named.
                    if odd_one_out {
                        v.problems.push(Problem {
                            kind: ProblemKind::ConfigDrift,
                            reported: Some(reported.clone()),
                            expected: peers_majority.clone(),
                            detail: "configuration hash differs from the other canary pods".into(),
                        });
                    }
                }
                None => {
                    // The pods of the track disagree with no majority: all of them drift.
                    v.problems.push(Problem {
                        kind: ProblemKind::ConfigDrift,
                        reported: Some(reported.clone()),
                        expected: None,
                        detail: format!(
                            "{track} pods report different configuration hashes with no majority"
                        ),
                    });
                }
            }
        }
    }
}

/// Problems found by the Kubernetes cross-check, added to the pods they concern.
fn add_cluster_problems(input: &FleetInput, verdicts: &mut Verdicts) {
    for pp in &input.cluster_problems {
        let key = (pp.pod.track, pp.pod.name.clone());
        let verdict = verdicts
            .entry(key)
            .or_insert_with(|| empty_verdict(pp.pod.clone()));
        if verdict.pod.ip.is_none() {
            verdict.pod.ip = pp.pod.ip;
        }
        verdict.problems.push(pp.problem.clone());
    }
}

/// Judge the fleet: every pod, then the fleet-wide rules, then the capped report.
pub fn evaluate(expect: &FleetExpectation, input: &FleetInput) -> FleetReport {
    let verdicts = evaluate_pods(expect, input);
    report_from_verdicts(expect, input, &verdicts)
}

/// Build the capped report from the full list of verdicts (see [`evaluate_pods`]).
pub fn report_from_verdicts(
    expect: &FleetExpectation,
    input: &FleetInput,
    verdicts: &[PodVerdict],
) -> FleetReport {
    let mut report = FleetReport {
        passed: false,
        canary: TrackCounts::default(),
        baseline: TrackCounts::default(),
        stable: TrackCounts::default(),
        stable_config_hash: majority(
            verdicts
                .iter()
                .filter(|v| v.pod.track == Track::Stable)
                .filter_map(|v| v.reported_config_hash.as_deref()),
        )
        .map(str::to_string),
        canary_config_hash: majority(
            verdicts
                .iter()
                .filter(|v| v.pod.track == Track::Canary)
                .filter_map(|v| v.reported_config_hash.as_deref()),
        )
        .map(str::to_string),
        fleet_problems: Vec::new(),
        failures: Vec::new(),
        failures_total: 0,
        failing_pods: 0,
        failures_truncated: false,
        not_ready: Vec::new(),
    };

    let mut failures = Vec::new();
    for v in verdicts {
        let c = report.counts_mut(v.pod.track);
        c.checked += 1;
        if v.passed() {
            c.passed += 1;
        } else {
            c.failed += 1;
            report.failing_pods += 1;
        }
        for p in &v.problems {
            failures.push(PodFailure {
                track: v.pod.track,
                pod: v.pod.name.clone(),
                ip: v.pod.ip,
                problem: p.clone(),
            });
        }
    }
    let mut not_ready = input.not_ready.clone();
    not_ready.sort();
    not_ready.dedup();
    for p in &not_ready {
        report.counts_mut(p.track).not_ready += 1;
    }

    for track in &expect.required_tracks {
        if report.counts(*track).checked == 0 {
            report
                .fleet_problems
                .push(FleetProblem::NoReadyPods { track: *track });
        }
    }
    if matches!(expect.config, ConfigRule::MatchStable { .. })
        && report.stable_config_hash.is_none()
        && report.canary.checked > 0
    {
        report
            .fleet_problems
            .push(FleetProblem::StableReferenceUnavailable);
    }

    failures.sort();
    report.failures_total = failures.len();
    report.failures_truncated = failures.len() > expect.max_listed_failures;
    failures.truncate(expect.max_listed_failures);
    report.failures = failures;
    not_ready.truncate(expect.max_listed_failures);
    report.not_ready = not_ready;
    report.passed = report.failures_total == 0 && report.fleet_problems.is_empty();
    report
}

#[cfg(test)]
mod tests;
