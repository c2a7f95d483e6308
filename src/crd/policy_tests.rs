//! Tests of the policy kinds' schemas: the shared invalid policies (the same file the real API
//! server test reads) each fail with the message naming their field, for both kinds, and a
//! full policy passes.

use std::path::Path;

use serde_json::{json, Value};

use super::validate::{check, Finding};
use super::*;

/// The invalid policies of `tests/fixtures/policies/invalid.json`: name, spec, expected message.
pub(crate) fn invalid_policies() -> Vec<(String, Value, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policies/invalid.json");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    cases
        .into_iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["spec"].clone(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn object(kind: CrdKind, spec: Value) -> Value {
    let mut metadata = json!({"name": "platform"});
    if kind == CrdKind::RolloutPolicy {
        metadata["namespace"] = json!("prod");
    }
    let kind = match kind {
        CrdKind::RolloutPolicy => "RolloutPolicy",
        _ => "ClusterRolloutPolicy",
    };
    json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec})
}

const KINDS: [CrdKind; 2] = [CrdKind::RolloutPolicy, CrdKind::ClusterRolloutPolicy];

#[test]
fn a_full_policy_passes_for_both_kinds_and_reads_back() {
    let spec = json!({
        "contractGate": {"pacticipant": "shop", "environment": "production"},
        "fleetCheck": {"port": 9000},
        "analysis": {"provider": {"prometheus": {"address": "http://prometheus:9090"}},
                     "errorRate": {"tolerance": 1.2}},
        "steps": [{"setWeight": 10}, {"analyze": {"duration": "5m"}}, {"setWeight": 50}],
        "progressDeadline": "15m",
        "enforce": ["analysis.provider.prometheus.address", "contractGate.environment", "steps"]
    });
    for kind in KINDS {
        assert_eq!(
            check(kind, &object(kind, spec.clone())),
            Vec::<Finding>::new()
        );
    }
    let typed: RolloutPolicy =
        serde_json::from_value(object(CrdKind::RolloutPolicy, spec)).expect("a RolloutPolicy");
    assert_eq!(typed.spec.enforce.len(), 3);
    assert_eq!(typed.spec.fleet_check.as_ref().map(|f| f.port), Some(9000));
}

#[test]
fn each_invalid_policy_fails_naming_its_field_for_both_kinds() {
    let cases = invalid_policies();
    assert!(cases.len() >= 16, "at least 16 invalid policies");
    for kind in KINDS {
        for (name, spec, message) in &cases {
            let findings = check(kind, &object(kind, spec.clone()));
            assert!(
                findings.iter().any(|f| &f.message == message),
                "{kind:?} {name:?}: expected {message:?}, got {findings:?}"
            );
        }
    }
}

#[test]
fn schema_findings_name_the_field() {
    let findings = check(
        CrdKind::RolloutPolicy,
        &object(
            CrdKind::RolloutPolicy,
            json!({"analysis": {"errorRate": {}, "alpha": "low", "colour": 1}}),
        ),
    );
    let fields: Vec<_> = findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        fields,
        [
            "spec.analysis.alpha: must be of type number",
            "spec.analysis.colour: unknown field"
        ]
    );
}
