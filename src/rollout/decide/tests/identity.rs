//! Version identity: the commit rule, the image rule, the warning in status and Events, and
//! `versionPolicy.requireCommit`.

use super::*;
use crate::rollout::decide::identity::{commit_in, findings, mutable_image};

#[test]
fn the_commit_rule_finds_a_run_of_7_to_40_hex_characters_with_a_letter() {
    let table: &[(&str, Option<&str>)] = &[
        ("0.0.10+76a39e5", Some("76a39e5")),
        ("76a39e5", Some("76a39e5")),
        ("1.4.2-76A39E5", Some("76A39E5")),
        (
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            Some("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ),
        ("main-1a2b3c4d5e6f", Some("1a2b3c4d5e6f")),
        ("2.0.0+a1b2c3d.build7", Some("a1b2c3d")),
        // Six characters: too short for a git SHA.
        ("2.0.0+76a39e", None),
        // Forty-one: longer than a SHA-1 (and a SHA-256 is 64): not a commit.
        ("da39a3ee5e6b4b0d3255bfef95601890afd807091", None),
        // A semantic version, a date, a build number: no commit.
        ("1.0.0", None),
        ("2.4.0-rc.1", None),
        ("20261207", None),
        ("1.0.0+build.1234567", None),
        // A word made of hex letters is still hex; the run must be long enough.
        ("release-cafe", None),
        ("deadbeef", Some("deadbeef")),
        // The first qualifying run is taken, after a run that is too long.
        (
            "0123456789abcdef0123456789abcdef0123456789ab-beef123",
            Some("beef123"),
        ),
    ];
    for (version, want) in table {
        assert_eq!(commit_in(version), *want, "{version}");
    }
}

#[test]
fn the_image_rule_warns_on_latest_and_no_tag_only() {
    let table: &[(&str, bool)] = &[
        ("registry.example.com/shop/checkout:2.4.0", false),
        ("checkout:2.4.0-76a39e5", false),
        (
            "registry.example.com/shop/checkout@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
            false,
        ),
        (
            "checkout:latest@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
            false,
        ),
        ("checkout:latest", true),
        ("checkout:Latest", true),
        ("checkout", true),
        ("registry.example.com/shop/checkout", true),
        // The ':' belongs to the registry's port, not to a tag.
        ("registry.example.com:5000/shop/checkout", true),
        ("registry.example.com:5000/shop/checkout:1.2.3", false),
        ("checkout:", true),
    ];
    for (image, mutable) in table {
        assert_eq!(mutable_image(image).is_some(), *mutable, "{image}");
    }
}

fn with_image_and_version(image: &str, version: &str) -> RolloutSpec {
    let rollout: Rollout = crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "shop"},
        "spec": {
            "version": version,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                         "spec": {"initContainers": [{"name": "migrate", "image": "migrate:3.1.0"}],
                                  "containers": [{"name": "app", "image": image}]}},
            "steps": [{"setWeight": 25}]
        }
    }));
    rollout.spec
}

#[test]
fn findings_name_each_thing_that_does_not_identify_one_build() {
    let pinned = findings(&with_image_and_version("shop:2.0.0", "2.0.0+a1b2c3d"));
    assert_eq!(pinned.commit.as_deref(), Some("a1b2c3d"));
    assert!(pinned.warnings.is_empty(), "{:?}", pinned.warnings);

    let loose = findings(&with_image_and_version("shop:latest", "2.0.0"));
    assert_eq!(loose.commit, None);
    assert_eq!(loose.warnings.len(), 2, "{:?}", loose.warnings);
    assert!(loose.warnings[0].starts_with("spec.version 2.0.0 carries no commit"));
    assert!(loose.warnings[1].contains("container app image shop:latest"));
}

#[test]
fn a_warning_is_one_event_and_stays_in_status_without_repeating() {
    let spec = with_image_and_version("shop", "2.0.0");
    let plan = decide(&spec, None, &Observations::default(), at(0));
    let identity = plan.status.version_identity.clone().expect("written");
    assert_eq!(identity.warnings.len(), 2);
    let warnings: Vec<_> = plan
        .events
        .iter()
        .filter(|e| e.reason == Reason::VersionIdentity)
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", plan.events);
    assert_eq!(warnings[0].kind, EventKind::Warning);
    assert!(warnings[0]
        .message
        .contains("container app image shop has no tag"));
    // The rollout itself goes on: a warning does not block.
    assert_ne!(plan.status.phase, Phase::Blocked);
    assert_ne!(plan.status.reason(), Some(Reason::InvalidSpec));

    let again = decide(&spec, Some(&plan.status), &Observations::default(), at(1));
    assert!(!reasons(&again).contains(&"VersionIdentity"));
    assert_eq!(again.status.version_identity, Some(identity));

    // A fixed spec clears the warnings, without an Event.
    let fixed = with_image_and_version("shop:2.0.1", "2.0.1+a1b2c3d");
    let cleared = decide(&fixed, Some(&again.status), &Observations::default(), at(2));
    let identity = cleared.status.version_identity.clone().unwrap();
    assert!(identity.warnings.is_empty());
    assert!(!reasons(&cleared).contains(&"VersionIdentity"));
}

#[test]
fn require_commit_refuses_a_version_without_one_naming_the_field() {
    let mut spec = with_image_and_version("shop:2.0.0", "2.0.0");
    spec.version_policy.require_commit = true;
    let plan = decide(&spec, None, &Observations::default(), at(0));
    assert_eq!(plan.status.reason(), Some(Reason::InvalidSpec));
    let message = plan.status.message.clone().unwrap();
    assert!(
        message.contains("spec.version 2.0.0 carries no commit"),
        "{message}"
    );
    assert!(
        message.contains("spec.versionPolicy.requireCommit"),
        "{message}"
    );
    assert_eq!(plan.status.phase, Phase::Pending, "nothing started");
    assert_eq!(plan.children.canary, None);
    assert_eq!(condition(&plan, CONDITION_STALLED).status, "True");
    let n = needs(&spec, Some(&plan.status), &ChildrenState::default(), at(1));
    assert_eq!(
        n,
        Needs::default(),
        "no peer is asked about a refused version"
    );

    let with_commit = {
        let mut s = with_image_and_version("shop:2.0.0", "2.0.0+a1b2c3d");
        s.version_policy.require_commit = true;
        s
    };
    let plan = decide(
        &with_commit,
        Some(&plan.status),
        &Observations::default(),
        at(2),
    );
    assert_ne!(plan.status.reason(), Some(Reason::InvalidSpec));
    assert_eq!(
        plan.status.phase,
        Phase::Promoting,
        "first deployment proceeds"
    );
}
