//! Tests of the Rollout types: the checked-in CRD, defaults, round trips, the examples, and the
//! CEL rules evaluated client-side (kube's CEL validator walks the same schema the API server
//! gets; the real API server test lives with the local cluster).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kube::core::Duration;
use kube::CustomResourceExt;
use serde_json::{json, Value};

use super::*;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every `*.yaml` directly under `examples/` that declares a Rollout.
fn example_rollouts() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo_path("examples")).expect("examples/ exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable example");
        if text.contains("kind: Rollout") {
            found.push((path, text));
        }
    }
    found.sort();
    found
}

fn crd_schema() -> Value {
    let crd = Rollout::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has a schema");
    serde_json::to_value(schema).expect("schema serializes")
}

/// Messages of the CEL rules the object violates, evaluated on the CRD's schema.
fn cel_messages(object: &Value, old: Option<&Value>) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(&crd_schema(), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

/// A small valid Rollout as JSON, the base the invalid variants are made from.
fn minimal() -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {
            "version": "1.2.3",
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                         "spec": {"containers": [{"name": "shop", "image": "shop:1.2.3"}]}},
            "steps": [{"setWeight": 20}, {"analyze": {"duration": "5m"}}, {"setWeight": 60}],
            "analysis": {
                "provider": {"prometheus": {"address": "http://prometheus:9090"}},
                "errorRate": {}
            }
        }
    })
}

/// The minimal Rollout after the API server's defaulting, as the operator reads it.
fn minimal_typed() -> Rollout {
    serde_json::from_value(minimal()).expect("minimal rollout deserializes")
}

#[test]
fn checked_in_crd_is_what_tollgate_crd_prints() {
    let generated = crd_yaml().expect("CRD renders");
    let checked_in = std::fs::read_to_string(repo_path("crds/rollouts.tollgate.dev.yaml"))
        .expect("crds/rollouts.tollgate.dev.yaml exists");
    assert!(
        generated == checked_in,
        "crds/rollouts.tollgate.dev.yaml is stale: run `cargo run -- crd > crds/rollouts.tollgate.dev.yaml`"
    );
}

#[test]
fn the_chart_ships_the_same_crd() {
    let top = std::fs::read_to_string(repo_path("crds/rollouts.tollgate.dev.yaml")).unwrap();
    let chart = std::fs::read_to_string(repo_path(
        "charts/tollgate/files/crds/rollouts.tollgate.dev.yaml",
    ))
    .expect("charts/tollgate/files/crds/rollouts.tollgate.dev.yaml exists");
    assert!(
        top == chart,
        "charts/tollgate/files/crds/ differs from crds/: copy crds/rollouts.tollgate.dev.yaml into the chart"
    );
}

#[test]
fn checked_in_policy_crds_are_what_tollgate_crd_prints_and_the_chart_ships() {
    for kind in [CrdKind::RolloutPolicy, CrdKind::ClusterRolloutPolicy] {
        let generated = crd_yaml_of(kind).expect("CRD renders");
        for dir in ["crds", "charts/tollgate/files/crds"] {
            let path = format!("{dir}/{}", kind.file_name());
            let checked_in =
                std::fs::read_to_string(repo_path(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(
                generated == checked_in,
                "{path} is stale: run `cargo run -- crd --kind {kind:?} > {path}`"
            );
        }
    }
}

#[test]
fn policy_crds_have_their_names_scope_and_columns() {
    for (kind, plural, short, scope) in [
        (
            CrdKind::RolloutPolicy,
            "rolloutpolicies",
            "tgp",
            "Namespaced",
        ),
        (
            CrdKind::ClusterRolloutPolicy,
            "clusterrolloutpolicies",
            "tgcp",
            "Cluster",
        ),
    ] {
        let crd = kind.crd();
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.spec.scope, scope);
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_string()]));
        let columns: Vec<_> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Locked", ".spec.enforce"),
                ("Age", ".metadata.creationTimestamp")
            ]
        );
    }
}

#[test]
fn crd_identity_names_and_subresources() {
    let crd = Rollout::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("rollouts.tollgate.dev"));
    assert_eq!(crd.spec.group, "tollgate.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["tgr".to_string()][..])
    );
    assert_eq!(
        crd.spec.names.categories.as_deref(),
        Some(&["tollgate".to_string()][..])
    );
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    // The scale subresource an HorizontalPodAutoscaler and `kubectl scale` use.
    let scale = version
        .subresources
        .as_ref()
        .and_then(|s| s.scale.as_ref())
        .expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
}

#[test]
fn crd_has_the_printer_columns() {
    let crd = Rollout::crd();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    let got: Vec<(String, String)> = columns.into_iter().map(|c| (c.name, c.json_path)).collect();
    let want = [
        ("Phase", ".status.phase"),
        ("Step", ".status.currentStepIndex"),
        ("Weight", ".status.currentWeight"),
        ("Stable", ".status.stableVersion"),
        ("Canary", ".status.canaryVersion"),
        ("Reason", ".status.reason"),
        ("Age", ".metadata.creationTimestamp"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// Collect every `x-kubernetes-validations` message in a schema.
fn collect_rule_messages(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    let message = rule.get("message").and_then(Value::as_str);
                    out.insert(message.expect("every CEL rule has a message").to_string());
                }
            }
            map.values().for_each(|v| collect_rule_messages(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_rule_messages(v, out)),
        _ => {}
    }
}

#[test]
fn crd_declares_the_cel_rules_and_each_names_its_field() {
    let mut messages = BTreeSet::new();
    collect_rule_messages(&crd_schema(), &mut messages);
    let expected = [
        "spec: set exactly one of spec.template or spec.workloadRef",
        "spec.selector is required when spec.template is set",
        "spec.analysis is required when spec.steps contains an analyze step",
        "spec.steps: setWeight values must never decrease from one step to the next",
        "spec.steps[]: each step sets exactly one of setWeight, analyze, pause or setHeaderRoute",
        "spec.traffic.httpRoute must be set exactly when spec.traffic.type is HTTPRoute",
        "spec.analysis: configure at least one of errorRate, latency or metrics",
        "spec.analysis.alpha must be greater than 0 and less than 0.5",
        "spec.analysis.maxDuration must be at least spec.analysis.interval",
        "spec.contractGate.unknownBudget must be at least spec.contractGate.pollInterval",
        "spec.selector is immutable",
        "spec.analysis.latency.quantiles must not repeat a quantile",
        "metadata.name must be at most 50 characters: tollgate derives child workload names and label values from it",
    ];
    for message in expected {
        assert!(messages.contains(message), "missing CEL rule: {message}");
    }
    for message in &messages {
        assert!(
            message.starts_with("spec") || message.starts_with("metadata."),
            "CEL message does not name its field: {message}"
        );
    }
}

#[test]
fn schema_keeps_bounds_enums_and_required_fields() {
    let schema = crd_schema();
    let spec = &schema["properties"]["spec"];
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        // steps may come from a policy: a CEL rule requires them without a policyRef
        required.contains(&"version") && !required.contains(&"steps"),
        "{required:?}"
    );
    let weight = &spec["properties"]["steps"]["items"]["properties"]["setWeight"];
    assert_eq!(weight["minimum"].as_f64(), Some(0.0));
    assert_eq!(weight["maximum"].as_f64(), Some(100.0));
    assert_eq!(spec["properties"]["steps"]["minItems"].as_u64(), Some(1));
    let kinds = &spec["properties"]["traffic"]["properties"]["type"]["enum"];
    assert_eq!(kinds, &json!(["ReplicaRatio", "HTTPRoute"]));
    let deadline = &spec["properties"]["progressDeadline"];
    assert_eq!(deadline["pattern"], json!(DURATION_PATTERN));
    let phase = &schema["properties"]["status"]["properties"]["phase"]["enum"];
    assert!(phase.as_array().unwrap().contains(&json!("RolledBack")));
}

#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            if let Some(items) = schema.get("items") {
                walk(&format!("{path}[]"), items, missing);
            }
            return;
        };
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // Embedded Kubernetes types (selector, conditions) bring their own docs.
            let foreign = here.contains(".selector.") || here.contains(".conditions[]");
            if !foreign && prop.get("description").is_none() {
                missing.push(here.clone());
            }
            walk(&here, prop, missing);
        }
    }
    let mut missing = Vec::new();
    let schema = crd_schema();
    walk("spec", &schema["properties"]["spec"], &mut missing);
    walk("status", &schema["properties"]["status"], &mut missing);
    for kind in [CrdKind::RolloutPolicy, CrdKind::ClusterRolloutPolicy] {
        walk(
            &format!("{kind:?}.spec"),
            &kind.schema()["properties"]["spec"],
            &mut missing,
        );
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

#[test]
fn defaults_fill_an_almost_empty_spec() {
    let rollout = minimal_typed();
    let spec = &rollout.spec;
    assert_eq!(spec.replicas, 2);
    assert_eq!(
        spec.progress_deadline(),
        std::time::Duration::from_secs(600)
    );
    assert!(!spec.paused);
    assert_eq!(spec.traffic.kind, TrafficKind::ReplicaRatio);
    assert!(spec.traffic.http_route.is_none());
    let fleet = spec.fleet_check();
    assert!(fleet.enabled && fleet.config_parity);
    assert_eq!((fleet.port, fleet.path.as_str()), (8080, "/version"));
    assert_eq!(fleet.version_pointer, "/version");
    assert_eq!(fleet.config_hash_pointer, "/configHash");
    assert_eq!(fleet.timeout, std::time::Duration::from_secs(2));
    let analysis = spec.analysis.as_ref().expect("analysis");
    assert_eq!(
        (analysis.alpha, analysis.alpha_pass, analysis.min_requests),
        (0.02, 0.05, 300)
    );
    assert_eq!(analysis.interval, std::time::Duration::from_secs(30));
    assert_eq!(analysis.on_inconclusive, InconclusivePolicy::Pause);
    assert!(!analysis.dedicated_baseline);
    let errors = analysis.error_rate.as_ref().expect("errorRate");
    assert_eq!(errors.requests_metric, "http_requests_total");
    assert_eq!(errors.code_label, "code");
    assert_eq!(errors.error_codes, "5..");
    assert_eq!((errors.tolerance, errors.pass_tolerance), (1.0, 1.5));
    assert!(errors.critical);
    // The defaults in the schema are the ones serde applies, so the API server and a
    // client that reads an undefaulted object agree.
    let schema = crd_schema();
    let props = &schema["properties"]["spec"]["properties"];
    assert_eq!(props["replicas"]["default"], json!(2));
    // fleetCheck, progressDeadline and steps carry no schema default: one the API server
    // wrote in would beat a policy's block (see `crate::rollout::policy`); code applies them.
    for field in ["progressDeadline", "fleetCheck", "steps"] {
        assert!(
            props[field].get("default").is_none(),
            "spec.{field} must have no schema default"
        );
    }
}

#[test]
fn contract_gate_defaults() {
    let mut value = minimal();
    value["spec"]["contractGate"] =
        json!({"brokerUrl": "http://broker", "pacticipant": "shop", "environment": "prod"});
    let rollout: Rollout = serde_json::from_value(value).unwrap();
    let gate = rollout.spec.contract_gate.unwrap();
    assert_eq!(gate.poll_interval, std::time::Duration::from_secs(10));
    assert_eq!(gate.unknown_budget, std::time::Duration::from_secs(300));
    assert!(gate.record_deployments && !gate.dry_run && gate.ignore.is_empty());
}

#[test]
fn serde_round_trip_keeps_every_field() {
    let mut rollout = minimal_typed();
    rollout.status = Some(RolloutStatus {
        phase: Phase::Analyzing,
        observed_generation: Some(3),
        stable_version: Some("1.2.2".into()),
        canary_version: Some("1.2.3".into()),
        current_step_index: Some(1),
        current_weight: 20,
        reason: Some("AnalysisRunning".into()),
        fleet: Some(FleetStatus {
            verdict: GateVerdict::Blocked,
            pods_checked: 8,
            pods_matching: 7,
            pods_failing: 1,
            failing_pods: vec![PodFinding {
                pod: "shop-canary-0".into(),
                problem: "VersionMismatch".into(),
                reported: Some("1.2.2".into()),
                expected: Some("1.2.3".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        analysis: Some(AnalysisStatus {
            verdict: MetricVerdict::Running,
            metrics: vec![MetricStatus {
                name: "error-rate".into(),
                verdict: MetricVerdict::Running,
                estimate: Some(1.1),
                lower: Some(0.7),
                upper: Some(1.9),
                e_value: Some(2.5),
                canary_samples: 1200,
                baseline_samples: 4800,
                ..Default::default()
            }],
            judge_state: Some(json!({"logE": [0.1, 0.2]})),
            ..Default::default()
        }),
        ..Default::default()
    });
    for example in example_rollouts() {
        let parsed: Rollout = serde_saphyr::from_str(&example.1).unwrap();
        let back: Rollout = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
        assert_eq!(back, parsed, "{} does not round-trip", example.0.display());
    }
    let json = serde_json::to_value(&rollout).unwrap();
    assert_eq!(
        json["status"]["fleet"]["failingPods"][0]["problem"],
        json!("VersionMismatch")
    );
    assert_eq!(json["status"]["currentStepIndex"], json!(1));
    let back: Rollout = serde_json::from_value(json).unwrap();
    assert_eq!(back, rollout);
}

#[test]
fn every_example_parses_and_passes_the_cel_rules() {
    let examples = example_rollouts();
    assert!(
        examples.len() >= 3,
        "expected at least three example Rollouts, found {}",
        examples.len()
    );
    let mut saw = BTreeSet::new();
    for (path, text) in &examples {
        let rollout: Rollout = serde_saphyr::from_str(text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        let errors = cel_messages(&serde_json::to_value(&rollout).unwrap(), None);
        assert!(
            errors.is_empty(),
            "{} violates CEL rules: {errors:?}",
            path.display()
        );
        if rollout.spec.traffic.kind == TrafficKind::HttpRoute {
            saw.insert("httproute");
        } else {
            saw.insert("replica-ratio");
        }
        if let Some(analysis) = &rollout.spec.analysis {
            let quantiles = analysis.latency.as_ref().map_or(0, |l| l.quantiles.len());
            if analysis.dedicated_baseline && quantiles >= 2 {
                saw.insert("dedicated-baseline-two-quantiles");
            }
        }
    }
    for kind in [
        "httproute",
        "replica-ratio",
        "dedicated-baseline-two-quantiles",
    ] {
        assert!(saw.contains(kind), "no example shows {kind}");
    }
}

/// One invalid variant: a change to the minimal Rollout and the message it must produce.
struct Invalid {
    name: &'static str,
    mutate: fn(&mut Value),
    message: &'static str,
}

fn invalid_cases() -> Vec<Invalid> {
    vec![
        Invalid {
            name: "a header route without an HTTPRoute",
            mutate: |v| {
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "testers",
                    "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}})
            },
            message: "spec.steps[].setHeaderRoute needs spec.traffic.type HTTPRoute: a header route is a rule tollgate adds to the Gateway API route",
        },
        Invalid {
            name: "a header route and a weight in one step",
            mutate: |v| {
                v["spec"]["steps"][0]["setHeaderRoute"] = json!({"name": "testers"})
            },
            message: "spec.steps[]: each step sets exactly one of setWeight, analyze, pause or setHeaderRoute",
        },
        Invalid {
            name: "a header value both exact and regex",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "testers",
                    "match": [{"headerName": "X-Canary", "headerValue": {"exact": "yes", "regex": "y.*"}}]}})
            },
            message: "spec.steps[].setHeaderRoute.match[].headerValue: set exactly one of exact or regex",
        },
        Invalid {
            name: "a header value with neither",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "testers",
                    "match": [{"headerName": "X-Canary", "headerValue": {}}]}})
            },
            message: "spec.steps[].setHeaderRoute.match[].headerValue: set exactly one of exact or regex",
        },
        Invalid {
            name: "a header route name that is not a DNS label",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "QA Team"}})
            },
            message: "spec.steps[].setHeaderRoute.name must be a lowercase DNS label (a-z, 0-9, '-')",
        },
        Invalid {
            name: "a header name that is not a token",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "stableService": "s", "canaryService": "c", "port": 80}});
                v["spec"]["steps"][1] = json!({"setHeaderRoute": {"name": "qa",
                    "match": [{"headerName": "X Canary:", "headerValue": {"exact": "yes"}}]}})
            },
            message: "spec.steps[].setHeaderRoute.match[].headerName must be an HTTP header name",
        },
        Invalid {
            name: "template and workloadRef",
            mutate: |v| v["spec"]["workloadRef"] = json!({"name": "shop"}),
            message: "spec: set exactly one of spec.template or spec.workloadRef",
        },
        Invalid {
            name: "scaleDown with a template",
            mutate: |v| v["spec"]["workloadRef"] = json!({"name": "shop", "scaleDown": "onSuccess"}),
            message: "spec: set exactly one of spec.template or spec.workloadRef",
        },
        Invalid {
            name: "a repeated rule index",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
                    "ruleIndexes": [1, 1], "stableService": "s", "canaryService": "c", "port": 80}})
            },
            message: "spec.traffic.httpRoute.ruleIndexes must not repeat an index",
        },
        Invalid {
            name: "neither template nor workloadRef",
            mutate: |v| {
                v["spec"].as_object_mut().unwrap().remove("template");
            },
            message: "spec: set exactly one of spec.template or spec.workloadRef",
        },
        Invalid {
            name: "template without selector",
            mutate: |v| {
                v["spec"].as_object_mut().unwrap().remove("selector");
            },
            message: "spec.selector is required when spec.template is set",
        },
        Invalid {
            name: "decreasing weights",
            mutate: |v| v["spec"]["steps"] = json!([{"setWeight": 50}, {"setWeight": 20}]),
            message: "spec.steps: setWeight values must never decrease from one step to the next",
        },
        Invalid {
            name: "step with two actions",
            mutate: |v| v["spec"]["steps"][0] = json!({"setWeight": 10, "pause": {}}),
            message: "spec.steps[]: each step sets exactly one of setWeight, analyze, pause or setHeaderRoute",
        },
        Invalid {
            name: "empty step",
            mutate: |v| v["spec"]["steps"][0] = json!({}),
            message: "spec.steps[]: each step sets exactly one of setWeight, analyze, pause or setHeaderRoute",
        },
        Invalid {
            name: "analyze without analysis",
            mutate: |v| {
                v["spec"].as_object_mut().unwrap().remove("analysis");
            },
            message: "spec.analysis is required when spec.steps contains an analyze step",
        },
        Invalid {
            name: "HTTPRoute without route",
            mutate: |v| v["spec"]["traffic"] = json!({"type": "HTTPRoute"}),
            message: "spec.traffic.httpRoute must be set exactly when spec.traffic.type is HTTPRoute",
        },
        Invalid {
            name: "route with replica ratio",
            mutate: |v| {
                v["spec"]["traffic"] = json!({"type": "ReplicaRatio", "httpRoute": {
                    "name": "r", "stableService": "s", "canaryService": "c", "port": 80}})
            },
            message: "spec.traffic.httpRoute must be set exactly when spec.traffic.type is HTTPRoute",
        },
        Invalid {
            name: "no metric",
            mutate: |v| {
                v["spec"]["analysis"].as_object_mut().unwrap().remove("errorRate");
            },
            message: "spec.analysis: configure at least one of errorRate, latency or metrics",
        },
        Invalid {
            name: "metric with both a counter pair and a histogram",
            mutate: |v| {
                v["spec"]["analysis"]["metrics"] = json!([{"name": "pay",
                    "counterPair": {"errors": "sum(e)", "total": "sum(t)"},
                    "histogram": {"query": "sum by (le) (h)", "quantiles": [{"quantile": 0.9}]}}])
            },
            message: "spec.analysis.metrics[]: set exactly one of counterPair or histogram",
        },
        Invalid {
            name: "metric repeated",
            mutate: |v| {
                v["spec"]["analysis"]["metrics"] = json!([
                    {"name": "pay", "counterPair": {"errors": "sum(e)", "total": "sum(t)"}},
                    {"name": "pay", "counterPair": {"errors": "sum(e2)", "total": "sum(t2)"}}])
            },
            message: "spec.analysis.metrics must not repeat a name",
        },
        Invalid {
            name: "metric named like a built-in",
            mutate: |v| {
                v["spec"]["analysis"]["metrics"] = json!([
                    {"name": "latencyP99", "counterPair": {"errors": "sum(e)", "total": "sum(t)"}}])
            },
            message: "spec.analysis.metrics[].name must start with a letter, hold only letters, digits, '_' and '-', and not be a built-in metric's name (errorRate, latencyDistribution, latencyP...)",
        },
        Invalid {
            name: "counter pair passing above its tolerance",
            mutate: |v| {
                v["spec"]["analysis"]["metrics"] = json!([{"name": "pay", "counterPair":
                    {"errors": "sum(e)", "total": "sum(t)", "tolerance": 2.0, "passTolerance": 1.5}}])
            },
            message: "spec.analysis.metrics[].counterPair.passTolerance must be at least its tolerance",
        },
        Invalid {
            name: "alpha too large",
            mutate: |v| v["spec"]["analysis"]["alpha"] = json!(0.5),
            message: "spec.analysis.alpha must be greater than 0 and less than 0.5",
        },
        Invalid {
            name: "alpha zero",
            mutate: |v| v["spec"]["analysis"]["alpha"] = json!(0.0),
            message: "spec.analysis.alpha must be greater than 0 and less than 0.5",
        },
        Invalid {
            name: "maxDuration below interval",
            mutate: |v| {
                v["spec"]["analysis"]["interval"] = json!("2m");
                v["spec"]["analysis"]["maxDuration"] = json!("1m");
            },
            message: "spec.analysis.maxDuration must be at least spec.analysis.interval",
        },
        Invalid {
            name: "budget below poll interval",
            mutate: |v| {
                v["spec"]["contractGate"] = json!({"brokerUrl": "http://b", "pacticipant": "p",
                    "environment": "e", "pollInterval": "30s", "unknownBudget": "10s"})
            },
            message: "spec.contractGate.unknownBudget must be at least spec.contractGate.pollInterval",
        },
        Invalid {
            name: "broker URL without scheme",
            mutate: |v| {
                v["spec"]["contractGate"] =
                    json!({"brokerUrl": "broker:9292", "pacticipant": "p", "environment": "e"})
            },
            message: "spec.contractGate.brokerUrl must be an http:// or https:// URL",
        },
        Invalid {
            name: "repeated quantile",
            mutate: |v| {
                v["spec"]["analysis"]["latency"] =
                    json!({"quantiles": [{"quantile": 0.99}, {"quantile": 0.99}]})
            },
            message: "spec.analysis.latency.quantiles must not repeat a quantile",
        },
        Invalid {
            name: "pass tolerance below tolerance",
            mutate: |v| v["spec"]["analysis"]["errorRate"] = json!({"tolerance": 2.0, "passTolerance": 1.5}),
            message: "spec.analysis.errorRate.passTolerance must be at least spec.analysis.errorRate.tolerance",
        },
        Invalid {
            name: "pass margin above half",
            mutate: |v| v["spec"]["analysis"]["errorRate"] = json!({"passMargin": 0.6}),
            message: "spec.analysis.errorRate.passMargin must be between 0 and 0.5 (errors per request; 0 turns the rule off)",
        },
        Invalid {
            name: "maxRate at zero",
            mutate: |v| v["spec"]["analysis"]["errorRate"] = json!({"maxRate": 0.0}),
            message: "spec.analysis.errorRate.maxRate must be above 0 and below 1 (errors per request)",
        },
        Invalid {
            name: "passRate not below maxRate",
            mutate: |v| v["spec"]["analysis"]["errorRate"] = json!({"passRate": 0.05, "maxRate": 0.02}),
            message: "spec.analysis.errorRate.passRate must be below spec.analysis.errorRate.maxRate",
        },
        Invalid {
            name: "quantile out of range",
            mutate: |v| v["spec"]["analysis"]["latency"] = json!({"quantiles": [{"quantile": 0.3}]}),
            message: "spec.analysis.latency.quantiles[].quantile must be between 0.5 and 0.999",
        },
        Invalid {
            name: "version with a space",
            mutate: |v| v["spec"]["version"] = json!("1.2 beta"),
            message: "spec.version must start with a letter or digit and contain only letters, digits, '.', '_', '+' and '-'",
        },
        Invalid {
            name: "fleet path without slash",
            mutate: |v| v["spec"]["fleetCheck"] = json!({"path": "version"}),
            message: "spec.fleetCheck.path must start with '/'",
        },
        Invalid {
            name: "long name",
            mutate: |v| v["metadata"]["name"] = json!("x".repeat(51)),
            message: "metadata.name must be at most 50 characters: tollgate derives child workload names and label values from it",
        },
        Invalid {
            name: "fleet timeout above its cap",
            mutate: |v| v["spec"]["fleetCheck"] = json!({"timeout": "10000h"}),
            message: "spec.fleetCheck.timeout must be at most 10s",
        },
        Invalid {
            name: "smoke timeout above its cap",
            mutate: |v| {
                v["spec"]["smoke"] =
                    json!({"requests": [{"name": "a", "path": "/", "timeout": "11s"}]})
            },
            message: "spec.smoke.requests[].timeout must be at most 10s",
        },
        Invalid {
            name: "query timeout above its cap",
            mutate: |v| v["spec"]["analysis"]["provider"]["prometheus"]["timeout"] = json!("31s"),
            message: "spec.analysis.provider.prometheus.timeout must be at most 30s",
        },
    ]
}

/// Fill in what the API server's defaulting would add, so CEL sees what it sees there.
fn defaulted(value: Value) -> Value {
    let mut value = value;
    let spec = value["spec"].as_object_mut().unwrap();
    spec.entry("traffic")
        .or_insert(json!({"type": "ReplicaRatio"}));
    if let Some(Value::Object(a)) = spec.get_mut("analysis") {
        a.entry("alpha").or_insert(json!(0.02));
        a.entry("alphaPass").or_insert(json!(0.05));
        a.entry("interval").or_insert(json!("30s"));
        a.entry("maxDuration").or_insert(json!("1h"));
        if let Some(Value::Object(e)) = a.get_mut("errorRate") {
            e.entry("tolerance").or_insert(json!(1.0));
            e.entry("passTolerance").or_insert(json!(1.5));
            e.entry("passMargin").or_insert(json!(0.005));
        }
        if let Some(Value::Array(qs)) = a.get_mut("latency").and_then(|l| l.get_mut("quantiles")) {
            for q in qs.iter_mut().filter_map(Value::as_object_mut) {
                q.entry("tolerance").or_insert(json!(1.0));
                q.entry("passTolerance").or_insert(json!(1.5));
            }
        }
    }
    if let Some(Value::Object(g)) = spec.get_mut("contractGate") {
        g.entry("pollInterval").or_insert(json!("10s"));
        g.entry("unknownBudget").or_insert(json!("5m"));
    }
    value
}

#[test]
fn the_minimal_rollout_passes_every_rule() {
    assert_eq!(
        cel_messages(&defaulted(minimal()), None),
        Vec::<String>::new()
    );
}

#[test]
fn each_invalid_rollout_fails_with_a_message_naming_the_field() {
    let cases = invalid_cases();
    assert!(cases.len() >= 15);
    for case in cases {
        let mut value = minimal();
        (case.mutate)(&mut value);
        let messages = cel_messages(&defaulted(value), None);
        assert!(
            messages.iter().any(|m| m == case.message),
            "case {:?}: expected {:?}, got {messages:?}",
            case.name,
            case.message
        );
    }
}

#[test]
fn selector_is_immutable() {
    let old = defaulted(minimal());
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    assert!(cel_messages(&new, Some(&old)).contains(&"spec.selector is immutable".to_string()));
    assert!(cel_messages(&old, Some(&old)).is_empty());
}

#[test]
fn duration_pattern_agrees_with_the_parser() {
    let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
    for good in ["10s", "1.5m", "1h30m", "250ms", "0s", "2h0m0.5s"] {
        assert!(pattern.is_match(good), "{good} should match");
        assert!(Duration::from_str(good).is_ok(), "{good} should parse");
    }
    for bad in ["", "10", "-5s", "5 m", "1d", "1.s", "s", "10us"] {
        assert!(!pattern.is_match(bad), "{bad} should not match");
    }
    // No value that fits the pattern and the schema's 32 characters passes Go's bound (kube's
    // parser would panic on some): the largest a group can be, repeated to the length limit.
    for bad in [
        "99999999999999999999999999999h",
        "100000h",
        "10000000m",
        "1000000000s",
    ] {
        assert!(!pattern.is_match(bad), "{bad} should not match");
    }
    for longest in [
        "99999.999999999h99999.999999999h",
        "999999999s999999999s999999999s",
        "999999999.99999s9999999.999m1h",
    ] {
        assert!(
            pattern.is_match(longest) && longest.len() <= 32,
            "{longest}"
        );
        let d = crate::util::duration::Duration::from_str(longest)
            .unwrap_or_else(|e| panic!("{longest}: {e}"));
        assert!(d.as_std().as_secs() < 101 * 365 * 86_400, "{longest}");
    }
    for good in [
        "99999h",
        "9999999m",
        "999999999s",
        "999999999ms",
        "1h30m",
        "300000ms",
    ] {
        assert!(pattern.is_match(good), "{good} should match");
    }
    // What serde writes back must match the pattern too, or a round trip through the API
    // server would be refused.
    for d in [
        std::time::Duration::from_millis(1500),
        std::time::Duration::from_secs(3600),
    ] {
        let written = serde_json::to_value(Duration::from(d)).unwrap();
        assert!(pattern.is_match(written.as_str().unwrap()), "{written}");
    }
}

#[test]
fn odd_input_is_an_error_not_a_panic() {
    let cases = [
        json!({"spec": {"version": 5, "steps": []}}),
        json!({"spec": {"version": "1", "steps": [{"setWeight": "half"}]}}),
        json!({"spec": {"version": "1", "steps": [], "traffic": {"type": "Mesh"}}}),
        json!({"spec": {"version": "1", "steps": [], "progressDeadline": "soon"}}),
        json!({"spec": {"version": "1", "steps": [], "replicas": 1e40}}),
        json!({"spec": null}),
        json!([]),
    ];
    for case in cases {
        let mut value = case.clone();
        if let Value::Object(map) = &mut value {
            map.insert("apiVersion".into(), json!("tollgate.dev/v1alpha1"));
            map.insert("kind".into(), json!("Rollout"));
            map.insert("metadata".into(), json!({"name": "x"}));
        }
        assert!(
            serde_json::from_value::<Rollout>(value).is_err(),
            "accepted {case}"
        );
    }
}

#[test]
fn history_is_bounded_and_keeps_the_newest() {
    let mut status = RolloutStatus::default();
    for i in 0..(MAX_HISTORY + 5) {
        status.record(Decision {
            at: jiff::Timestamp::from_second(i as i64).unwrap(),
            phase: Phase::Analyzing,
            reason: format!("R{i}"),
            message: String::new(),
        });
    }
    assert_eq!(status.history.len(), MAX_HISTORY);
    assert_eq!(status.history.first().unwrap().reason, "R5");
    assert_eq!(
        status.history.last().unwrap().reason,
        format!("R{}", MAX_HISTORY + 4)
    );
}

#[test]
fn the_reason_field_lists_every_reason() {
    let schema = crd_schema();
    let description = schema
        .pointer("/properties/status/properties/reason/description")
        .and_then(Value::as_str)
        .expect("status.reason has a description");
    for reason in Reason::ALL {
        assert!(
            description.contains(&format!("`{reason}`")),
            "status.reason's description does not list {reason}: {description}"
        );
    }
    let status = RolloutStatus {
        reason: Some("FromANewerOperator".into()),
        ..Default::default()
    };
    let back: RolloutStatus =
        serde_json::from_value(serde_json::to_value(&status).unwrap()).unwrap();
    assert_eq!(back.reason.as_deref(), Some("FromANewerOperator"));
    assert_eq!(
        back.reason(),
        None,
        "an unknown reason reads as none, and is kept"
    );
}

#[test]
fn a_header_route_behind_an_http_route_passes_every_rule() {
    let mut value = minimal();
    value["spec"]["traffic"] = json!({"type": "HTTPRoute", "httpRoute": {"name": "r",
        "stableService": "s", "canaryService": "c", "port": 80}});
    value["spec"]["steps"] = json!([
        {"setHeaderRoute": {"name": "testers", "match": [
            {"headerName": "X-Canary", "headerValue": {"exact": "yes"}},
            {"headerName": "x-team", "headerValue": {"regex": "qa-[0-9]+"}}]}},
        {"pause": {}},
        {"setHeaderRoute": {"name": "testers"}},
        {"setWeight": 20}, {"analyze": {"duration": "5m"}}]);
    assert_eq!(
        cel_messages(&defaulted(value.clone()), None),
        Vec::<String>::new()
    );
    let typed: Rollout = serde_json::from_value(value).unwrap();
    let step = typed.spec.steps[0].set_header_route.as_ref().unwrap();
    assert_eq!(step.describe(), "X-Canary=yes, x-team~=qa-[0-9]+");
    assert!(typed.spec.steps[2]
        .set_header_route
        .as_ref()
        .unwrap()
        .matches
        .is_empty());
}

#[test]
fn mutable_and_placeholder_versions_are_refused_naming_the_field() {
    let refused = [
        "latest",
        "LATEST",
        "Stable",
        "main",
        "master",
        "HEAD",
        "head",
        "dev",
        "develop",
        "trunk",
        "current",
        "snapshot",
        "nightly",
        "edge",
        "none",
        "null",
        "unknown",
        "undefined",
        "unset",
        "default",
    ];
    for version in refused {
        let mut value = minimal();
        value["spec"]["version"] = json!(version);
        let messages = cel_messages(&defaulted(value), None);
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("spec.version must identify one build")),
            "{version}: {messages:?}"
        );
    }
    // A name that only contains one of those words, or a real version, is accepted.
    for version in [
        "main-76a39e5",
        "1.4.2+76a39e5",
        "latest2",
        "2.0.0",
        "dev.1a2b3c4",
    ] {
        let mut value = minimal();
        value["spec"]["version"] = json!(version);
        assert_eq!(
            cel_messages(&defaulted(value), None),
            Vec::<String>::new(),
            "{version}"
        );
    }
}
