//! `tollgate lint` on the repository's examples (clean) and on broken files (each finding
//! named), through the same function the command runs.

use std::path::{Path, PathBuf};

use super::*;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn input(rel: &str) -> Input {
    Input {
        name: rel.to_string(),
        text: std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
    }
}

/// Every YAML or JSON manifest under `dir`, recursively. Kustomize overlays are patches (partial
/// objects merged by kustomize), not manifests, and kustomization files are not objects: both
/// are left out.
fn manifests(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("entry").path();
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if !rel.contains("overlays") {
                manifests(&path, out);
            }
        } else if (rel.ends_with(".yaml") || rel.ends_with(".json"))
            && !rel.ends_with("kustomization.yaml")
        {
            out.push(rel);
        }
    }
}

#[test]
fn every_example_is_clean_and_the_policy_example_merges() {
    let mut files = Vec::new();
    manifests(&repo("examples"), &mut files);
    files.sort();
    assert!(files.len() >= 5, "examples found: {files:?}");
    let inputs: Vec<Input> = files.iter().map(|f| input(f)).collect();
    let policies = [input("examples/policy/cluster-rollout-policy.yaml")];
    let report = lint(&inputs, &policies);
    assert_eq!(report, Report::default(), "examples: {files:?}");
    // the Rollout that names the policy really was merged: without the policy file it has no
    // steps of its own and the merge check is what would find that
    let alone = lint(&[input("examples/policy/rollout-with-policy.yaml")], &[]);
    assert_eq!(
        alone.code(),
        0,
        "a policyRef without --policy is not a finding"
    );
}

#[test]
fn broken_files_are_each_finding_named() {
    let report = lint(
        &[
            input("tests/fixtures/lint/broken-rollout.yaml"),
            input("tests/fixtures/lint/broken-policy.json"),
            input("tests/fixtures/lint/locked-override.yaml"),
        ],
        &[input("examples/policy/cluster-rollout-policy.yaml")],
    );
    let mine = "tests/fixtures/lint";
    assert_eq!(
        report.findings,
        [
            format!("{mine}/broken-rollout.yaml:1: spec.version: spec.version must identify one build: mutable or placeholder names (latest, stable, current, main, master, trunk, develop, dev, HEAD, snapshot, nightly, edge, none, null, unknown, undefined, unset, default) are refused; use a version that is or contains the commit, e.g. 1.4.2+76a39e5"),
            format!("{mine}/broken-rollout.yaml:2: spec: spec.steps is required unless spec.policyRef names a policy that gives them"),
            format!("{mine}/broken-rollout.yaml:4: spec.replicas: must be greater than or equal to 1"),
            format!("{mine}/broken-policy.json:1: spec: spec.enforce: every locked field must lie in a block this policy sets (contractGate, fleetCheck, smoke, analysis, steps or progressDeadline)"),
            format!("{mine}/broken-policy.json:1: spec.analysis: spec.analysis.alpha must be greater than 0 and less than 0.5"),
            format!("{mine}/locked-override.yaml:1: spec.analysis.provider.prometheus.address: spec.analysis.provider.prometheus.address is locked by ClusterRolloutPolicy platform-default to \"http://prometheus.monitoring:9090\"; the Rollout sets \"http://my-own-prometheus:9090\""),
            format!("{mine}/locked-override.yaml:2: spec.policyRef: ClusterRolloutPolicy nowhere is not in the --policy files"),
        ]
    );
    assert_eq!(report.code(), 1);
}

#[test]
fn an_unparseable_file_is_exit_2_and_the_others_still_checked() {
    let report = lint(
        &[
            input("tests/fixtures/lint/unparseable.yaml"),
            input("tests/fixtures/lint/broken-policy.json"),
        ],
        &[],
    );
    assert_eq!(report.unreadable.len(), 1, "{report:?}");
    assert!(report.unreadable[0].starts_with("tests/fixtures/lint/unparseable.yaml: cannot parse"));
    assert_eq!(report.findings.len(), 2);
    assert_eq!(report.code(), 2);
}

#[test]
fn bad_metric_templates_are_findings_naming_the_metric() {
    let report = lint(
        &[input("tests/fixtures/lint/bad-metric-template.yaml")],
        &[],
    );
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    let f = &report.findings;
    assert!(
        f[0].starts_with("tests/fixtures/lint/bad-metric-template.yaml:1: spec.analysis.metrics: spec.analysis.metrics[0] (paymentFailures).counterPair.errors: not valid PromQL"),
        "{}",
        f[0]
    );
    assert!(
        f[1].starts_with("tests/fixtures/lint/bad-metric-template.yaml:2: spec.analysis.metrics: spec.analysis.metrics[0] (checkoutDuration).histogram.query: query template uses unknown placeholder {{interval}}"),
        "{}",
        f[1]
    );
    assert_eq!(report.code(), 1);
}
