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
//! - a pod that did not answer properly fails (fail closed), and so does an empty canary.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

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
                verdict.reported_config_hash = Some(a.config_hash.clone());
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
mod tests {
    use super::*;
    use crate::gates::fleet::{Attestation, PodTarget};
    use std::time::Duration;

    fn ip(track: Track, i: usize) -> IpAddr {
        let third = match track {
            Track::Canary => 20,
            Track::Baseline => 21,
            Track::Stable => 22,
        };
        IpAddr::from([127, 0, third, u8::try_from(i).unwrap()])
    }

    fn ok(track: Track, i: usize, version: &str, hash: &str) -> PodObservation {
        PodObservation {
            target: PodTarget {
                track,
                name: format!("{track}-{i:03}"),
                ip: ip(track, i),
            },
            result: Ok(Attestation {
                version: version.into(),
                config_hash: hash.into(),
            }),
        }
    }

    fn err(track: Track, i: usize, e: AttestError) -> PodObservation {
        PodObservation {
            target: PodTarget {
                track,
                name: format!("{track}-{i:03}"),
                ip: ip(track, i),
            },
            result: Err(e),
        }
    }

    fn expect(config: ConfigRule) -> FleetExpectation {
        FleetExpectation {
            canary_version: "2.0.0".into(),
            stable_version: Some("1.0.0".into()),
            config,
            max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
            required_tracks: vec![Track::Canary],
        }
    }

    fn match_stable() -> FleetExpectation {
        expect(ConfigRule::MatchStable {
            pipeline_hash: None,
        })
    }

    /// `n` canary pods on 2.0.0/h1 and `n` stable pods on 1.0.0/h1.
    fn healthy(n: usize) -> Vec<PodObservation> {
        let mut v: Vec<_> = (1..=n)
            .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
            .collect();
        v.extend((1..=n).map(|i| ok(Track::Stable, i, "1.0.0", "h1")));
        v
    }

    fn input(observations: Vec<PodObservation>) -> FleetInput {
        FleetInput {
            observations,
            ..Default::default()
        }
    }

    fn kinds(r: &FleetReport) -> Vec<(String, ProblemKind)> {
        r.failures
            .iter()
            .map(|f| (f.pod.clone(), f.problem.kind))
            .collect()
    }

    #[test]
    fn majority_needs_a_unique_top() {
        assert_eq!(majority(["a", "b", "a"]), Some("a"));
        assert_eq!(majority(["a", "b"]), None);
        assert_eq!(majority(Vec::<&str>::new()), None);
        assert_eq!(majority(["x"]), Some("x"));
    }

    #[test]
    fn a_healthy_fleet_passes() {
        let r = evaluate(&match_stable(), &input(healthy(4)));
        assert!(r.passed, "{}", r.summary());
        assert_eq!(r.canary.checked, 4);
        assert_eq!(r.canary.passed, 4);
        assert_eq!(r.stable.passed, 4);
        assert_eq!(r.stable_config_hash.as_deref(), Some("h1"));
        assert_eq!(r.canary_config_hash.as_deref(), Some("h1"));
        assert!(
            r.summary().starts_with("fleet check passed"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn one_stale_canary_pod_of_eight_blocks_and_is_named() {
        let mut obs = healthy(8);
        obs[4] = ok(Track::Canary, 5, "1.0.0", "h1");
        let r = evaluate(&match_stable(), &input(obs));
        assert!(!r.passed);
        assert_eq!(r.failing_pods, 1);
        assert_eq!(r.canary.failed, 1);
        assert_eq!(r.canary.passed, 7);
        let f = &r.failures[0];
        assert_eq!(f.pod, "canary-005");
        assert_eq!(f.problem.kind, ProblemKind::VersionMismatch);
        assert_eq!(f.problem.reported.as_deref(), Some("1.0.0"));
        assert_eq!(f.problem.expected.as_deref(), Some("2.0.0"));
        assert_eq!(f.ip, Some(ip(Track::Canary, 5)));
        assert!(r.summary().contains("canary-005"), "{}", r.summary());
    }

    #[test]
    fn a_stale_stable_pod_blocks_too() {
        let mut obs = healthy(3);
        obs[4] = ok(Track::Stable, 2, "0.9.0", "h1");
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(
            kinds(&r),
            vec![("stable-002".into(), ProblemKind::VersionMismatch)]
        );
    }

    #[test]
    fn one_drifted_canary_pod_is_drift() {
        let mut obs = healthy(5);
        obs[2] = ok(Track::Canary, 3, "2.0.0", "h2");
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(
            kinds(&r),
            vec![("canary-003".into(), ProblemKind::ConfigDrift)]
        );
        assert_eq!(r.failures[0].problem.expected.as_deref(), Some("h1"));
        assert_eq!(r.failures[0].problem.reported.as_deref(), Some("h2"));
    }

    #[test]
    fn one_drifted_stable_pod_is_drift() {
        let mut obs = healthy(5);
        obs[7] = ok(Track::Stable, 3, "1.0.0", "h9");
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(
            kinds(&r),
            vec![("stable-003".into(), ProblemKind::ConfigDrift)]
        );
    }

    #[test]
    fn canary_config_differs_from_stable_without_declared_change() {
        let mut obs: Vec<_> = (1..=3)
            .map(|i| ok(Track::Canary, i, "2.0.0", "new"))
            .collect();
        obs.extend((1..=3).map(|i| ok(Track::Stable, i, "1.0.0", "old")));
        let r = evaluate(&match_stable(), &input(obs.clone()));
        assert!(!r.passed);
        assert_eq!(r.failing_pods, 3);
        assert!(r
            .failures
            .iter()
            .all(|f| f.problem.kind == ProblemKind::ConfigMismatch
                && f.track == Track::Canary
                && f.problem.expected.as_deref() == Some("old")
                && f.problem.reported.as_deref() == Some("new")));

        // Declared change to exactly that hash: passes.
        let declared = expect(ConfigRule::Declared {
            expected_hash: "new".into(),
        });
        assert!(evaluate(&declared, &input(obs.clone())).passed);

        // Declared change to another hash: fails.
        let other = expect(ConfigRule::Declared {
            expected_hash: "newer".into(),
        });
        let r = evaluate(&other, &input(obs));
        assert_eq!(r.failing_pods, 3);
        assert_eq!(r.failures[0].problem.expected.as_deref(), Some("newer"));
    }

    #[test]
    fn pipeline_hash_must_match_too() {
        let rule = expect(ConfigRule::MatchStable {
            pipeline_hash: Some("h1".into()),
        });
        assert!(evaluate(&rule, &input(healthy(2))).passed);
        let rule = expect(ConfigRule::MatchStable {
            pipeline_hash: Some("other".into()),
        });
        let r = evaluate(&rule, &input(healthy(2)));
        assert_eq!(r.canary.failed, 2);
        assert_eq!(r.stable.failed, 0);
        assert!(r
            .failures
            .iter()
            .all(|f| f.problem.kind == ProblemKind::ConfigMismatch));
        // The canary matches the pipeline's hash but not stable's, with no change declared:
        // both rules must hold, so it fails (naming stable's hash).
        let mut obs: Vec<_> = (1..=2)
            .map(|i| ok(Track::Canary, i, "2.0.0", "new"))
            .collect();
        obs.extend((1..=2).map(|i| ok(Track::Stable, i, "1.0.0", "old")));
        let rule = expect(ConfigRule::MatchStable {
            pipeline_hash: Some("new".into()),
        });
        let r = evaluate(&rule, &input(obs.clone()));
        assert_eq!(r.canary.failed, 2);
        assert!(r
            .failures
            .iter()
            .all(|f| f.problem.kind == ProblemKind::ConfigMismatch
                && f.problem.expected.as_deref() == Some("old")));
        // A pipeline hash with no stable to compare: the stable rule still blocks.
        let canary_only: Vec<_> = obs
            .into_iter()
            .filter(|o| o.target.track == Track::Canary)
            .collect();
        let r = evaluate(&rule, &input(canary_only));
        assert_eq!(
            r.fleet_problems,
            vec![FleetProblem::StableReferenceUnavailable]
        );
        assert!(!r.passed);
    }

    #[test]
    fn every_transport_failure_fails_closed() {
        let errors = [
            AttestError::Timeout(Duration::from_secs(1)),
            AttestError::Unreachable("connection refused".into()),
            AttestError::HttpStatus {
                status: 500,
                body: "boom".into(),
            },
            AttestError::InvalidBody {
                error: "expected value".into(),
                body: "<html>".into(),
            },
            AttestError::BodyTooLarge(10),
            AttestError::MissingField {
                field: "configHash",
                pointer: "/configHash".into(),
            },
            AttestError::InvalidField {
                field: "version",
                pointer: "/version".into(),
                found: "1".into(),
            },
        ];
        for e in errors {
            let mut obs = healthy(3);
            obs[1] = err(Track::Canary, 2, e.clone());
            let r = evaluate(&match_stable(), &input(obs));
            assert!(!r.passed, "{e}");
            assert_eq!(kinds(&r), vec![("canary-002".into(), e.kind())], "{e}");
            assert_eq!(r.failures[0].problem.reported, e.reported());
            assert_eq!(r.failures[0].problem.detail, e.to_string());
        }
    }

    #[test]
    fn an_empty_canary_is_no_evidence() {
        let obs: Vec<_> = (1..=2)
            .map(|i| ok(Track::Stable, i, "1.0.0", "h1"))
            .collect();
        let r = evaluate(&match_stable(), &input(obs));
        assert!(!r.passed);
        assert_eq!(
            r.fleet_problems,
            vec![FleetProblem::NoReadyPods {
                track: Track::Canary
            }]
        );
        assert!(
            r.summary().contains("no ready canary pod"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn canary_held_to_stable_without_stable_answers_blocks() {
        let mut obs: Vec<_> = (1..=2)
            .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
            .collect();
        obs.push(err(
            Track::Stable,
            1,
            AttestError::Unreachable("refused".into()),
        ));
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(
            r.fleet_problems,
            vec![FleetProblem::StableReferenceUnavailable]
        );
        assert_eq!(
            kinds(&r),
            vec![("stable-001".into(), ProblemKind::Unreachable)]
        );

        // No stable pods at all, also blocks unless the rule says otherwise.
        let obs: Vec<_> = (1..=2)
            .map(|i| ok(Track::Canary, i, "2.0.0", "h1"))
            .collect();
        assert!(!evaluate(&match_stable(), &input(obs.clone())).passed);
        let standalone = expect(ConfigRule::Standalone {
            expected_hash: None,
        });
        assert!(evaluate(&standalone, &input(obs)).passed);
    }

    #[test]
    fn a_stable_only_check_requires_stable_pods_not_canary_ones() {
        let rule = FleetExpectation {
            required_tracks: vec![Track::Stable],
            ..expect(ConfigRule::Standalone {
                expected_hash: None,
            })
        };
        let obs = vec![
            ok(Track::Stable, 1, "1.0.0", "h"),
            ok(Track::Stable, 2, "1.0.0", "h"),
        ];
        let r = evaluate(&rule, &input(obs));
        assert!(r.passed, "{r:?}");
        let r = evaluate(&rule, &input(vec![]));
        assert!(!r.passed);
        assert_eq!(
            r.fleet_problems,
            vec![FleetProblem::NoReadyPods {
                track: Track::Stable
            }]
        );
    }

    #[test]
    fn standalone_pods_must_agree() {
        let rule = FleetExpectation {
            stable_version: None,
            ..expect(ConfigRule::Standalone {
                expected_hash: None,
            })
        };
        let obs = vec![
            ok(Track::Canary, 1, "2.0.0", "a"),
            ok(Track::Canary, 2, "2.0.0", "b"),
        ];
        let r = evaluate(&rule, &input(obs));
        // No majority: both are drifting.
        assert_eq!(r.failing_pods, 2);
        assert!(r
            .failures
            .iter()
            .all(|f| f.problem.kind == ProblemKind::ConfigDrift));

        let rule = expect(ConfigRule::Standalone {
            expected_hash: Some("a".into()),
        });
        let obs = vec![
            ok(Track::Canary, 1, "2.0.0", "a"),
            ok(Track::Canary, 2, "2.0.0", "b"),
        ];
        assert_eq!(
            kinds(&evaluate(&rule, &input(obs))),
            vec![("canary-002".into(), ProblemKind::ConfigDrift)]
        );
    }

    #[test]
    fn stable_pods_without_a_stable_version_are_unexpected() {
        let rule = FleetExpectation {
            stable_version: None,
            ..expect(ConfigRule::Standalone {
                expected_hash: None,
            })
        };
        let mut obs = vec![ok(Track::Canary, 1, "2.0.0", "h1")];
        obs.push(ok(Track::Stable, 1, "1.0.0", "h1"));
        let r = evaluate(&rule, &input(obs));
        assert_eq!(
            kinds(&r),
            vec![("stable-001".into(), ProblemKind::UnexpectedPod)]
        );
    }

    #[test]
    fn baseline_is_held_to_stable() {
        let mut obs = healthy(2);
        obs.push(ok(Track::Baseline, 1, "1.0.0", "h1"));
        obs.push(ok(Track::Baseline, 2, "2.0.0", "h1"));
        obs.push(ok(Track::Baseline, 3, "1.0.0", "h2"));
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(
            kinds(&r),
            vec![
                ("baseline-002".into(), ProblemKind::VersionMismatch),
                ("baseline-003".into(), ProblemKind::ConfigDrift),
            ]
        );
        assert_eq!(r.baseline.checked, 3);
        assert_eq!(r.baseline.passed, 1);
    }

    #[test]
    fn not_ready_pods_are_counted_and_listed_but_do_not_fail() {
        let mut inp = input(healthy(2));
        inp.not_ready = vec![
            PodRef {
                track: Track::Canary,
                name: "canary-9".into(),
                ip: None,
            },
            PodRef {
                track: Track::Stable,
                name: "stable-9".into(),
                ip: None,
            },
        ];
        let r = evaluate(&match_stable(), &inp);
        assert!(r.passed);
        assert_eq!(r.canary.not_ready, 1);
        assert_eq!(r.stable.not_ready, 1);
        assert_eq!(r.not_ready.len(), 2);
        assert!(r.summary().contains("1 not ready"), "{}", r.summary());
    }

    #[test]
    fn cluster_problems_join_the_pod_verdicts() {
        let mut inp = input(healthy(2));
        inp.cluster_problems = vec![
            PodProblem {
                pod: PodRef {
                    track: Track::Canary,
                    name: "canary-001".into(),
                    ip: None,
                },
                problem: Problem {
                    kind: ProblemKind::TemplateHashMismatch,
                    reported: Some("old".into()),
                    expected: Some("new".into()),
                    detail: "x".into(),
                },
            },
            PodProblem {
                pod: PodRef {
                    track: Track::Canary,
                    name: "canary-noip".into(),
                    ip: None,
                },
                problem: Problem {
                    kind: ProblemKind::NoAddress,
                    reported: None,
                    expected: None,
                    detail: "y".into(),
                },
            },
        ];
        let verdicts = evaluate_pods(&match_stable(), &inp);
        let v = verdicts
            .iter()
            .find(|v| v.pod.name == "canary-001")
            .unwrap();
        assert_eq!(v.reported_version.as_deref(), Some("2.0.0"));
        assert_eq!(v.problems.len(), 1);
        let r = evaluate(&match_stable(), &inp);
        assert_eq!(r.canary.checked, 3);
        assert_eq!(r.canary.failed, 2);
        assert_eq!(
            kinds(&r),
            vec![
                ("canary-001".into(), ProblemKind::TemplateHashMismatch),
                ("canary-noip".into(), ProblemKind::NoAddress),
            ]
        );
    }

    #[test]
    fn the_list_is_sorted_and_capped_with_counts_kept() {
        // 30 canary pods all stale, listed in reverse to check sorting.
        let mut obs: Vec<_> = (1..=30)
            .rev()
            .map(|i| ok(Track::Canary, i, "1.0.0", "h1"))
            .collect();
        obs.extend((1..=2).map(|i| {
            err(
                Track::Stable,
                i,
                AttestError::Timeout(Duration::from_secs(1)),
            )
        }));
        let rule = FleetExpectation {
            max_listed_failures: 5,
            required_tracks: vec![Track::Canary],
            ..expect(ConfigRule::Standalone {
                expected_hash: None,
            })
        };
        let r = evaluate(&rule, &input(obs));
        assert_eq!(r.failures_total, 32);
        assert_eq!(r.failing_pods, 32);
        assert!(r.failures_truncated);
        assert_eq!(r.failures.len(), 5);
        let names: Vec<_> = r.failures.iter().map(|f| f.pod.as_str()).collect();
        assert_eq!(
            names,
            [
                "canary-001",
                "canary-002",
                "canary-003",
                "canary-004",
                "canary-005"
            ]
        );
        assert_eq!(r.canary.failed, 30);
        assert_eq!(r.stable.failed, 2);
    }

    #[test]
    fn a_pod_with_two_problems_lists_both() {
        let mut obs = healthy(3);
        obs[0] = ok(Track::Canary, 1, "1.0.0", "h7");
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(r.failing_pods, 1);
        assert_eq!(
            kinds(&r),
            vec![
                ("canary-001".into(), ProblemKind::VersionMismatch),
                ("canary-001".into(), ProblemKind::ConfigDrift),
            ]
        );
    }

    #[test]
    fn the_report_serializes_for_status() {
        let mut obs = healthy(2);
        obs[0] = ok(Track::Canary, 1, "1.0.0", "h1");
        let r = evaluate(&match_stable(), &input(obs));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["canary"]["failed"], 1);
        assert_eq!(json["failures"][0]["kind"], "VersionMismatch");
        assert_eq!(json["failures"][0]["track"], "canary");
        assert_eq!(json["failures"][0]["ip"], "127.0.20.1");
        assert_eq!(json["failuresTotal"], 1);
        let back: FleetReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let rule = serde_json::to_value(ConfigRule::Declared {
            expected_hash: "x".into(),
        })
        .unwrap();
        assert_eq!(
            rule,
            serde_json::json!({"mode": "declared", "expectedHash": "x"})
        );
    }

    #[test]
    fn duplicate_observations_of_one_pod_count_once() {
        let mut obs = healthy(2);
        obs.push(ok(Track::Canary, 1, "2.0.0", "h1"));
        let r = evaluate(&match_stable(), &input(obs));
        assert_eq!(r.canary.checked, 2);
    }

    fn outcome(expect: &FleetExpectation, input: &FleetInput) -> crate::gates::fleet::FleetOutcome {
        let verdicts = evaluate_pods(expect, input);
        let report = report_from_verdicts(expect, input, &verdicts);
        crate::gates::fleet::FleetOutcome { verdicts, report }
    }

    #[test]
    fn pods_that_did_not_answer_hold_and_a_wrong_answer_fails() {
        use crate::gates::fleet::FleetVerdict;
        let e = match_stable();
        let timeout = || AttestError::Timeout(Duration::from_secs(2));
        assert_eq!(
            outcome(&e, &input(healthy(3))).verdict(),
            FleetVerdict::Passed
        );

        let mut silent = healthy(3);
        silent[0] = err(Track::Canary, 1, timeout());
        silent[1] = err(Track::Canary, 2, AttestError::Unreachable("refused".into()));
        assert_eq!(
            outcome(&e, &input(silent.clone())).verdict(),
            FleetVerdict::Unanswered
        );

        // No ready canary pod at all is no answer either.
        let stable_only: Vec<_> = (1..=3)
            .map(|i| ok(Track::Stable, i, "1.0.0", "h1"))
            .collect();
        assert_eq!(
            outcome(&e, &input(stable_only)).verdict(),
            FleetVerdict::Unanswered
        );

        // One wrong answer among silent pods fails at once.
        let mut mixed = silent;
        mixed[2] = ok(Track::Canary, 3, "1.9.9", "h1");
        assert_eq!(outcome(&e, &input(mixed)).verdict(), FleetVerdict::Failed);

        // Every pod counts, also past the report's list of failures.
        let mut many: Vec<_> = (1..=30).map(|i| err(Track::Canary, i, timeout())).collect();
        many.push(ok(Track::Canary, 31, "1.9.9", "h1"));
        many.extend((1..=3).map(|i| ok(Track::Stable, i, "1.0.0", "h1")));
        let o = outcome(&e, &input(many));
        assert!(o.report.failures_truncated);
        assert_eq!(o.verdict(), FleetVerdict::Failed);

        // Stable pods that answer without an agreed hash are an answer, not silence.
        let split = vec![
            ok(Track::Canary, 1, "2.0.0", "h1"),
            ok(Track::Stable, 1, "1.0.0", "h1"),
            ok(Track::Stable, 2, "1.0.0", "h2"),
        ];
        assert_eq!(outcome(&e, &input(split)).verdict(), FleetVerdict::Failed);
    }
}
