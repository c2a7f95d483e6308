//! Version identity: does `spec.version` name exactly one build, and do the template's images?
//!
//! The Pact Broker's rule is that a version is, or contains, the commit it was built from; a
//! name that moves (`latest`, `main`) is refused by the API server already (the CEL rule on
//! `spec.version`). What is left to decide here:
//! - a version without a commit (no run of 7 to 40 hexadecimal characters with at least one
//!   letter a-f; an all-decimal run reads as a date or a build number, not a commit) is a
//!   warning, or a problem with the Rollout as written when `versionPolicy.requireCommit` is set;
//! - a template container image given by a mutable tag (`:latest`, or no tag at all, which
//!   pulls `:latest`) is a warning; by digest or by any other tag, nothing.
//!
//! Warnings go into `status.versionIdentity` and, each time they change, into one
//! `VersionIdentity` Warning Event. Pure: the rules read the spec only.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::model::*;
use super::pass::Pass;
use crate::crd::{Reason, RolloutSpec, VersionIdentityStatus};

/// Shortest and longest hexadecimal run read as a commit (a short and a full git SHA-1).
const COMMIT_MIN: usize = 7;
const COMMIT_MAX: usize = 40;

/// The commit `version` carries: its first maximal run of 7 to 40 hexadecimal characters that
/// has at least one letter a-f. `None` when there is none.
pub fn commit_in(version: &str) -> Option<&str> {
    let bytes = version.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_hexdigit() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .map_or(bytes.len(), |n| start + n);
        let run = &version[start..end];
        let has_letter = run.bytes().any(|b| b.is_ascii_alphabetic());
        if (COMMIT_MIN..=COMMIT_MAX).contains(&run.len()) && has_letter {
            return Some(run);
        }
        start = end;
    }
    None
}

/// Why `image` does not pin one build, or `None` when it does (a digest, or a tag other than
/// `latest`).
pub fn mutable_image(image: &str) -> Option<&'static str> {
    if image.contains('@') {
        return None;
    }
    // A tag is what follows the last ':' after the last '/' (a ':' before it is a registry port).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.rsplit_once(':') {
        None => Some("has no tag, so it pulls whatever :latest is"),
        Some((_, tag)) if tag.eq_ignore_ascii_case("latest") => {
            Some("uses the mutable tag :latest")
        }
        Some((_, "")) => Some("has an empty tag"),
        Some(_) => None,
    }
}

/// Every container (init containers first) of `template` whose image is mutable, as warnings.
fn image_warnings(template: &PodTemplateSpec) -> Vec<String> {
    let Some(pod) = template.spec.as_ref() else {
        return Vec::new();
    };
    let init = pod.init_containers.iter().flatten();
    init.chain(pod.containers.iter())
        .filter_map(|c| {
            let image = c.image.as_deref()?;
            mutable_image(image).map(|why| {
                format!(
                    "spec.template container {} image {image} {why}: a pod cannot say which build it runs",
                    c.name
                )
            })
        })
        .collect()
}

/// What the rules find for `spec`.
pub fn findings(spec: &RolloutSpec) -> VersionIdentityStatus {
    let commit = commit_in(&spec.version).map(str::to_string);
    let mut warnings = Vec::new();
    if commit.is_none() {
        warnings.push(format!(
            "spec.version {} carries no commit (no run of {COMMIT_MIN} to {COMMIT_MAX} hexadecimal characters with a letter a-f): the Pact Broker asks that a version be or contain the commit it was built from, e.g. {}+76a39e5",
            spec.version, spec.version
        ));
    }
    if let Some(template) = &spec.template {
        warnings.extend(image_warnings(template));
    }
    VersionIdentityStatus {
        version: spec.version.clone(),
        commit,
        warnings,
    }
}

/// The Rollout as written cannot be carried out: `versionPolicy.requireCommit` is set and the
/// version carries no commit.
pub fn problem(spec: &RolloutSpec) -> Option<SpecProblem> {
    if !spec.version_policy.require_commit || commit_in(&spec.version).is_some() {
        return None;
    }
    Some(SpecProblem::new(format!(
        "spec.version {} carries no commit (no run of {COMMIT_MIN} to {COMMIT_MAX} hexadecimal characters with a letter a-f) and spec.versionPolicy.requireCommit is true",
        spec.version
    )))
}

/// Keep `status.versionIdentity` in step with the spec; a new, non-empty set of warnings is one
/// Warning Event (a status written again with the same findings emits nothing).
pub(super) fn track(pass: &mut Pass<'_>) {
    let found = findings(pass.spec);
    if pass.status.version_identity.as_ref() == Some(&found) {
        return;
    }
    if !found.warnings.is_empty() {
        pass.event(
            EventKind::Warning,
            Reason::VersionIdentity,
            found.warnings.join("; "),
        );
    }
    pass.status.version_identity = Some(found);
}
