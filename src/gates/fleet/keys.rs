//! Key-by-key rules over what pods report beside their version: dependency versions (database
//! engine, cache, client libraries) and flags or settings. Pure, like [`super::rules`], which
//! calls [`check`] once the versions and hashes are judged.
//!
//! - a declared dependency must be reported by every pod that answered, within its constraint
//!   (a semver range, or an exact string): a managed database that upgraded itself overnight is
//!   named here ([`ProblemKind::DependencyOutOfRange`]);
//! - with parity (the default) every pod reports the same version of it as the stable pods
//!   ([`ProblemKind::DependencyDrift`]);
//! - flags are compared key by key, over the union of keys any pod reports: a key that is present
//!   on some pods and missing on others differs. Canary against stable by default (a canary whose
//!   flags differ from stable's makes the analysis blame the code for the flag's effect), and
//!   every pod against its own track ([`ProblemKind::FlagDrift`]);
//! - a declared flag value is a declared change: canary pods must report it
//!   ([`ProblemKind::FlagMismatch`]) and the key is exempt from canary/stable parity;
//! - a guard "when flag F is on, every pod runs version >= V": if any pod reports F on, every pod
//!   that answered must run at least V ([`ProblemKind::GuardedVersion`]). The flag's state is a
//!   fleet-wide fact: old code that does not know F (and so does not report it) still runs when
//!   F is switched on, which is how eight servers with one stale lost Knight Capital $440M.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{Problem, ProblemKind, Track};
use super::rules::PodVerdict;

/// What a dependency's reported version must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Constraint {
    /// A semver range (`>=15, <16`, `^7.2`), read by the `semver` crate. Reported versions with
    /// fewer than three parts (`15.4`) are read as padded with zeros (`15.4.0`).
    Range(String),
    /// Exactly this string.
    Exact(String),
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constraint::Range(r) => f.write_str(r),
            Constraint::Exact(e) => write!(f, "={e}"),
        }
    }
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
    /// Every pod reports the version the stable pods report.
    pub parity: bool,
}

/// "When flag `flag` is `on`, every pod runs a version >= `min_version`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagGuard {
    pub flag: String,
    /// The flag's value that counts as on, as JSON text (`true`, `"on"`).
    pub on: String,
    pub min_version: String,
}

/// How flags are judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagRules {
    /// Canary pods report the stable pods' value for every key (not declared in `expected`).
    pub parity: bool,
    /// Keys left out of every comparison (per-pod settings such as a shard number).
    #[serde(default)]
    pub ignore: BTreeSet<String>,
    /// Declared values (JSON text) every canary pod must report.
    #[serde(default)]
    pub expected: BTreeMap<String, String>,
    #[serde(default)]
    pub guards: Vec<FlagGuard>,
}

impl Default for FlagRules {
    fn default() -> Self {
        FlagRules {
            parity: true,
            ignore: BTreeSet::new(),
            expected: BTreeMap::new(),
            guards: Vec::new(),
        }
    }
}

/// A setting the rules cannot use (permanent: the spec must change). Names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

/// Check the declared rules parse (semver ranges, guard versions) before any pod is judged.
pub fn validate(dependencies: &[DependencyRule], flags: &FlagRules) -> Result<(), RuleError> {
    for (i, d) in dependencies.iter().enumerate() {
        if d.name.trim().is_empty() {
            return Err(RuleError {
                field: format!("dependencies[{i}].name"),
                message: "must not be empty".into(),
            });
        }
        if let Some(Constraint::Range(r)) = &d.constraint {
            semver::VersionReq::parse(r).map_err(|e| RuleError {
                field: format!("dependencies[{i}].range"),
                message: format!("{r:?} is not a semver range: {e}"),
            })?;
        }
    }
    for (i, g) in flags.guards.iter().enumerate() {
        if loose_version(&g.min_version).is_none() {
            return Err(RuleError {
                field: format!("flags.guards[{i}].minVersion"),
                message: format!("{:?} is not a version (e.g. 2.0.0)", g.min_version),
            });
        }
    }
    Ok(())
}

/// A reported version as semver, leniently: surrounding space and a leading `v` dropped, and
/// one or two numeric parts padded with zeros (`15.4` is `15.4.0`). `None` when it is not one.
pub fn loose_version(text: &str) -> Option<semver::Version> {
    let t = text.trim();
    let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    semver::Version::parse(&format!("{padded}{rest}")).ok()
}

/// The most common value (absent counts as a value), if exactly one is the most common.
fn majority<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let top = counts.values().copied().max()?;
    let mut at_top = counts.into_iter().filter(|(_, c)| *c == top);
    let (value, _) = at_top.next()?;
    at_top.next().is_none().then_some(value)
}

fn answered(v: &PodVerdict) -> bool {
    v.reported_version.is_some()
}

fn show(value: Option<&str>) -> String {
    value.unwrap_or("(not reported)").to_string()
}

/// Which map of a verdict a comparison reads.
#[derive(Clone, Copy)]
enum Map {
    Dependencies,
    Flags,
}

impl Map {
    fn get(self, v: &PodVerdict) -> &BTreeMap<String, String> {
        match self {
            Map::Dependencies => &v.reported_dependencies,
            Map::Flags => &v.reported_flags,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Map::Dependencies => "dependency",
            Map::Flags => "flag",
        }
    }
    fn kind(self) -> ProblemKind {
        match self {
            Map::Dependencies => ProblemKind::DependencyDrift,
            Map::Flags => ProblemKind::FlagDrift,
        }
    }
}

/// Hold every answering pod's value of `key` to its reference: the stable pods' majority when
/// `to_stable(track)` and a stable pod answered, otherwise its own track's majority.
fn compare_key(
    verdicts: &mut [&mut PodVerdict],
    map: Map,
    key: &str,
    to_stable: impl Fn(Track) -> bool,
) {
    let track_majority = |track: Track, verdicts: &[&mut PodVerdict]| {
        majority(
            verdicts
                .iter()
                .filter(|v| v.pod.track == track && answered(v))
                .map(|v| map.get(v).get(key).cloned()),
        )
    };
    let stable_answered = verdicts
        .iter()
        .any(|v| v.pod.track == Track::Stable && answered(v));
    let references: BTreeMap<Track, (Option<Option<String>>, Track)> = Track::ALL
        .iter()
        .map(|t| {
            let from = if to_stable(*t) && stable_answered {
                Track::Stable
            } else {
                *t
            };
            (*t, (track_majority(from, verdicts), from))
        })
        .collect();
    for v in verdicts.iter_mut().filter(|v| answered(v)) {
        let value = map.get(v).get(key).cloned();
        let Some((reference, from)) = references.get(&v.pod.track) else {
            continue;
        };
        let what = map.what();
        match reference {
            Some(r) if *r == value => {}
            Some(r) => {
                let source = if *from == v.pod.track {
                    format!("the other {from} pods")
                } else {
                    format!("the {from} pods")
                };
                v.problems.push(Problem {
                    kind: map.kind(),
                    reported: Some(format!("{key}={}", show(value.as_deref()))),
                    expected: Some(format!("{key}={}", show(r.as_deref()))),
                    detail: format!("{what} {key} differs from {source}"),
                });
            }
            None => v.problems.push(Problem {
                kind: map.kind(),
                reported: Some(format!("{key}={}", show(value.as_deref()))),
                expected: None,
                detail: format!("{from} pods disagree on {what} {key} with no majority"),
            }),
        }
    }
}

/// Apply the dependency and flag rules to the verdicts of every pod.
pub fn check(dependencies: &[DependencyRule], flags: &FlagRules, verdicts: &mut [&mut PodVerdict]) {
    for dep in dependencies {
        check_constraint(dep, verdicts);
        // Without parity a track still agrees with itself: half a canary on another engine
        // version confounds the comparison as much as a canary unlike stable does.
        compare_key(verdicts, Map::Dependencies, &dep.name, |_| dep.parity);
    }

    let keys: BTreeSet<String> = verdicts
        .iter()
        .filter(|v| answered(v))
        .flat_map(|v| v.reported_flags.keys().cloned())
        .chain(flags.expected.keys().cloned())
        .filter(|k| !flags.ignore.contains(k))
        .collect();
    for key in &keys {
        let declared = flags.expected.get(key);
        if let Some(want) = declared {
            for v in verdicts
                .iter_mut()
                .filter(|v| answered(v) && v.pod.track == Track::Canary)
            {
                let have = v.reported_flags.get(key);
                if have != Some(want) {
                    v.problems.push(Problem {
                        kind: ProblemKind::FlagMismatch,
                        reported: Some(format!("{key}={}", show(have.map(String::as_str)))),
                        expected: Some(format!("{key}={want}")),
                        detail: format!("flag {key} is not the declared value"),
                    });
                }
            }
        }
        compare_key(verdicts, Map::Flags, key, |track| match track {
            // A declared value is a declared change: the canary is held to it, not to stable.
            Track::Canary => flags.parity && declared.is_none(),
            Track::Baseline | Track::Stable => true,
        });
    }

    for guard in &flags.guards {
        check_guard(guard, verdicts);
    }
}

fn check_constraint(dep: &DependencyRule, verdicts: &mut [&mut PodVerdict]) {
    let Some(constraint) = &dep.constraint else {
        return;
    };
    let name = &dep.name;
    let range = match constraint {
        Constraint::Range(r) => Some(semver::VersionReq::parse(r)),
        Constraint::Exact(_) => None,
    };
    for v in verdicts.iter_mut().filter(|v| answered(v)) {
        let have = v.reported_dependencies.get(name).cloned();
        let failure = match (&have, constraint, &range) {
            (None, _, _) => Some(format!("pod does not report dependency {name}")),
            (Some(h), Constraint::Exact(want), _) => {
                (h != want).then(|| format!("{name} {h} is not {want}"))
            }
            (Some(h), Constraint::Range(r), Some(Ok(req))) => match loose_version(h) {
                Some(version) if req.matches(&version) => None,
                Some(_) => Some(format!("{name} {h} is outside {r}")),
                None => Some(format!(
                    "{name} {h:?} is not a version the range {r} can judge"
                )),
            },
            // Validated before use; should it still not parse, nothing passes it.
            (Some(_), Constraint::Range(r), _) => Some(format!("range {r:?} does not parse")),
        };
        if let Some(detail) = failure {
            v.problems.push(Problem {
                kind: ProblemKind::DependencyOutOfRange,
                reported: Some(format!("{name} {}", show(have.as_deref()))),
                expected: Some(format!("{name} {constraint}")),
                detail,
            });
        }
    }
}

fn check_guard(guard: &FlagGuard, verdicts: &mut [&mut PodVerdict]) {
    let on_at: Vec<String> = verdicts
        .iter()
        .filter(|v| answered(v) && v.reported_flags.get(&guard.flag) == Some(&guard.on))
        .map(|v| v.pod.name.clone())
        .collect();
    let Some(first) = on_at.first() else {
        return;
    };
    let min = loose_version(&guard.min_version);
    for v in verdicts.iter_mut().filter(|v| answered(v)) {
        let reported = v.reported_version.clone().unwrap_or_default();
        let ok = match (&min, loose_version(&reported)) {
            (Some(min), Some(have)) => have >= *min,
            // A version that cannot be compared cannot be shown to be new enough.
            _ => false,
        };
        if !ok {
            v.problems.push(Problem {
                kind: ProblemKind::GuardedVersion,
                reported: Some(reported),
                expected: Some(format!(">= {}", guard.min_version)),
                detail: format!(
                    "flag {}={} on {} pod(s) (first {first}) needs every pod on >= {}",
                    guard.flag,
                    guard.on,
                    on_at.len(),
                    guard.min_version
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests;
