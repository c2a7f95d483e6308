//! `tollgate lint FILE... [-] [--policy FILE]`: offline validation of Rollouts and policies
//! before `kubectl apply`, with the rules the API server and the operator apply.
//!
//! Each file (or `-`, standard input) is YAML or JSON with one or more documents. Documents of
//! other kinds (Services, Deployments) are skipped. Each tollgate object is checked in order:
//! the CRD schema, then the CEL rules once the schema's defaults are written in (as the API
//! server does), then reading it as the operator does (durations it would refuse), then, for a
//! Rollout whose `policyRef` names a policy found in the `--policy` files, the merge (locks,
//! and the merged spec against the Rollout's rules). Findings print as
//! `FILE:DOC: FIELD: MESSAGE` (DOC counts documents from 1). Exit 0 clean, 1 with findings, 2
//! when a file cannot be read or parsed.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::crd::validate::{self, Finding};
use crate::crd::{CrdKind, PolicyKind, RolloutPolicySpec};
use crate::rollout::policy::{self, Policy};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to check (YAML or JSON, several documents each); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Files holding the RolloutPolicies and ClusterRolloutPolicies the Rollouts name; they
    /// are checked too. Without it a Rollout's merge with its policy is not checked.
    #[arg(long = "policy")]
    pub policies: Vec<String>,
}

/// One input: its name as printed, and its text.
pub struct Input {
    /// The path given (or `-`).
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// What a lint run found.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// `FILE:DOC: FIELD: MESSAGE` lines.
    pub findings: Vec<String>,
    /// Files that could not be parsed, with the parser's error.
    pub unreadable: Vec<String>,
}

impl Report {
    /// The exit code: 2 for an unreadable file, else 1 for findings, else 0.
    pub fn code(&self) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if !self.findings.is_empty() {
            1
        } else {
            0
        }
    }
}

/// The documents of a YAML or JSON text (empty documents dropped).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn kind_of(doc: &Value) -> Option<CrdKind> {
    let group = doc.get("apiVersion")?.as_str()?.split('/').next()?;
    if group != "tollgate.dev" {
        return None;
    }
    match doc.get("kind")?.as_str()? {
        "Rollout" => Some(CrdKind::Rollout),
        "RolloutPolicy" => Some(CrdKind::RolloutPolicy),
        "ClusterRolloutPolicy" => Some(CrdKind::ClusterRolloutPolicy),
        _ => None,
    }
}

/// The findings of one document read alone (schema, CEL, then as the operator reads it).
fn check_alone(kind: CrdKind, doc: &Value) -> Vec<Finding> {
    let findings = validate::check(kind, doc);
    if !findings.is_empty() {
        return findings;
    }
    let read = match kind {
        CrdKind::Rollout => serde_json::from_value::<crate::crd::Rollout>(doc.clone()).err(),
        CrdKind::RolloutPolicy => {
            serde_json::from_value::<crate::crd::RolloutPolicy>(doc.clone()).err()
        }
        CrdKind::ClusterRolloutPolicy => {
            serde_json::from_value::<crate::crd::ClusterRolloutPolicy>(doc.clone()).err()
        }
    };
    if let Some(e) = read {
        return vec![Finding {
            field: "(object)".into(),
            message: format!("the operator cannot read it: {e}"),
        }];
    }
    template_findings(doc)
}

/// The PromQL templates of `spec.analysis.metrics`, parsed as the operator parses them before
/// the canary starts (a Rollout's and a policy's `analysis` have the same shape).
fn template_findings(doc: &Value) -> Vec<Finding> {
    let metrics = doc["spec"]["analysis"]
        .get("metrics")
        .cloned()
        .and_then(|m| serde_json::from_value::<Vec<crate::crd::MetricSpec>>(m).ok())
        .unwrap_or_default();
    match crate::analysis::providers::prometheus::metrics::compile(&metrics) {
        Ok(_) => Vec::new(),
        Err(message) => vec![Finding {
            field: "spec.analysis.metrics".into(),
            message,
        }],
    }
}

/// A policy found in the `--policy` files: kind, name (and namespace), spec.
struct Known {
    kind: PolicyKind,
    name: String,
    namespace: Option<String>,
    spec: RolloutPolicySpec,
}

/// Lint `inputs`, merging Rollouts with the policies of `policy_inputs`.
pub fn lint(inputs: &[Input], policy_inputs: &[Input]) -> Report {
    let mut report = Report::default();
    let mut known = Vec::new();
    for input in policy_inputs {
        let Some(docs) = parse(input, &mut report) else {
            continue;
        };
        for (i, doc) in docs.iter().enumerate() {
            let Some(kind) = kind_of(doc) else { continue };
            let findings = check_alone(kind, doc);
            record(&mut report, &input.name, i, &findings);
            if !findings.is_empty() {
                continue;
            }
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let namespace = doc["metadata"]["namespace"].as_str().map(String::from);
            let spec = || serde_json::from_value::<RolloutPolicySpec>(doc["spec"].clone()).ok();
            match (kind, spec()) {
                (CrdKind::RolloutPolicy, Some(spec)) => known.push(Known {
                    kind: PolicyKind::RolloutPolicy,
                    name,
                    namespace,
                    spec,
                }),
                (CrdKind::ClusterRolloutPolicy, Some(spec)) => known.push(Known {
                    kind: PolicyKind::ClusterRolloutPolicy,
                    name,
                    namespace: None,
                    spec,
                }),
                _ => {}
            }
        }
    }
    for input in inputs {
        let Some(docs) = parse(input, &mut report) else {
            continue;
        };
        for (i, doc) in docs.iter().enumerate() {
            let Some(kind) = kind_of(doc) else { continue };
            let mut findings = check_alone(kind, doc);
            if findings.is_empty() && kind == CrdKind::Rollout && !policy_inputs.is_empty() {
                findings = merge_findings(doc, &known);
            }
            record(&mut report, &input.name, i, &findings);
        }
    }
    report
}

/// The merge of a schema-clean Rollout with the policy it names, as findings.
fn merge_findings(doc: &Value, known: &[Known]) -> Vec<Finding> {
    let Some(reference) = doc["spec"].get("policyRef") else {
        return Vec::new();
    };
    let (kind, wanted) = (
        reference["kind"].as_str().unwrap_or_default(),
        reference["name"].as_str().unwrap_or_default(),
    );
    let namespace = doc["metadata"]["namespace"].as_str();
    let found = known.iter().find(|k| {
        k.kind.to_string() == kind
            && k.name == wanted
            // a RolloutPolicy serves its own namespace; one without a namespace in the file
            // serves whichever namespace the Rollout is applied to
            && (k.kind == PolicyKind::ClusterRolloutPolicy
                || k.namespace.is_none()
                || namespace.is_none()
                || k.namespace.as_deref() == namespace)
    });
    let Some(found) = found else {
        return vec![Finding {
            field: "spec.policyRef".into(),
            message: format!("{kind} {wanted} is not in the --policy files"),
        }];
    };
    let policy = Policy {
        kind: found.kind,
        name: &found.name,
        spec: &found.spec,
    };
    let policy_json = serde_json::to_value(&found.spec).expect("a policy spec serializes");
    let name = doc["metadata"]["name"].as_str().unwrap_or("rollout");
    match policy::effective_json(name, &doc["spec"], &policy_json, &policy) {
        Ok(_) => Vec::new(),
        Err(policy::Refusal::Locked(messages)) => messages
            .into_iter()
            .map(|m| Finding {
                field: m.split(' ').next().unwrap_or("spec").to_string(),
                message: m,
            })
            .collect(),
        Err(policy::Refusal::Invalid(findings)) => findings
            .into_iter()
            .map(|f| Finding {
                message: format!("after the merge with {policy}: {}", f.message),
                ..f
            })
            .collect(),
    }
}

fn parse(input: &Input, report: &mut Report) -> Option<Vec<Value>> {
    match documents(&input.text) {
        Ok(docs) => Some(docs),
        Err(e) => {
            report
                .unreadable
                .push(format!("{}: cannot parse: {e}", input.name));
            None
        }
    }
}

fn record(report: &mut Report, file: &str, index: usize, findings: &[Finding]) {
    for f in findings {
        report.findings.push(format!("{file}:{}: {f}", index + 1));
    }
}

fn read(name: &str) -> Result<Input, String> {
    let text = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("-: cannot read standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(name).map_err(|e| format!("{name}: cannot read: {e}"))?
    };
    Ok(Input {
        name: name.to_string(),
        text,
    })
}

pub fn run(args: LintArgs) -> ExitCode {
    let mut unreadable = Vec::new();
    let mut load = |names: &[String]| -> Vec<Input> {
        names
            .iter()
            .filter_map(|n| read(n).map_err(|e| unreadable.push(e)).ok())
            .collect()
    };
    let inputs = load(&args.files);
    let policies = load(&args.policies);
    let mut report = lint(&inputs, &policies);
    report.unreadable.extend(unreadable);
    for line in &report.findings {
        println!("{line}");
    }
    for line in &report.unreadable {
        eprintln!("error: {line}");
    }
    ExitCode::from(report.code())
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
