//! The effective spec of a Rollout that names a policy (`spec.policyRef`): pure, kube-free.
//!
//! The rule: within the policy's blocks (`contractGate`, `fleetCheck`, `smoke`, `analysis`,
//! `steps`, `progressDeadline`), objects merge key by key at any depth, lists and values are
//! taken whole, and the Rollout wins wherever it sets a key. Lists are not merged item by item
//! because their items have no stable identity (two `steps` lists cannot be zipped sensibly),
//! except `analysis.metrics`, whose items are merged by their `name` (see `merge_metrics`).
//! A path the policy locks (`enforce`) that the Rollout sets to another value is refused,
//! naming the field and the policy; an equal value is no override and passes.
//!
//! The merged spec is then checked against the Rollout's own schema and CEL rules (a policy
//! could supply `analyze` steps while the Rollout has no analysis, say), and only then read as
//! a [`RolloutSpec`]: the defaults the schema no longer writes in (`fleetCheck`,
//! `progressDeadline`) are applied in code, by the spec's accessors, after the merge.

use serde_json::{Map, Value};

use crate::crd::validate::{self, Finding};
use crate::crd::{
    CrdKind, Phase, PolicyKind, PolicySnapshot, RolloutPolicySpec, RolloutSpec, RolloutStatus,
    POLICY_BLOCKS,
};

/// A policy as the merge sees it: which one, and its spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy<'a> {
    /// `RolloutPolicy` or `ClusterRolloutPolicy`.
    pub kind: PolicyKind,
    /// Its name.
    pub name: &'a str,
    /// Its spec (a `ClusterRolloutPolicySpec` converts into the same type).
    pub spec: &'a RolloutPolicySpec,
}

impl std::fmt::Display for Policy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The result of a merge: the spec to act on, and the field paths that came from the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    /// The Rollout's spec with the policy's blocks merged in.
    pub spec: RolloutSpec,
    /// Paths (`analysis.provider.prometheus.address`, `steps`) whose value is the policy's.
    pub from_policy: Vec<String>,
}

/// Why a merge was refused; each is `InvalidSpec` on the Rollout.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// The Rollout sets locked fields to other values than the policy's.
    Locked(Vec<String>),
    /// The merged spec breaks the Rollout's schema or CEL rules.
    Invalid(Vec<Finding>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Locked(messages) => f.write_str(&messages.join("; ")),
            Refusal::Invalid(findings) => {
                let texts: Vec<String> = findings.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the spec merged with the policy is invalid: {}",
                    texts.join("; ")
                )
            }
        }
    }
}

/// Merge `policy` into `rollout` (both JSON objects, `rollout` winning) key by key; returns
/// the merged object and the paths taken from the policy, each under `prefix`.
pub fn merge(policy: &Value, rollout: &Value, prefix: &str, from: &mut Vec<String>) -> Value {
    match (policy, rollout) {
        (Value::Object(p), Value::Object(r)) => {
            let mut out: Map<String, Value> = r.clone();
            for (key, pv) in p {
                let path = join(prefix, key);
                match r.get(key) {
                    None | Some(Value::Null) => {
                        from.push(path);
                        out.insert(key.clone(), pv.clone());
                    }
                    Some(rv) if path == "analysis.metrics" => {
                        out.insert(key.clone(), merge_metrics(pv, rv, &path, from));
                    }
                    Some(rv) => {
                        out.insert(key.clone(), merge(pv, rv, &path, from));
                    }
                }
            }
            Value::Object(out)
        }
        // lists and values: the Rollout's, whole
        (_, r) => r.clone(),
    }
}

/// `analysis.metrics`, the one list merged item by item, because its items have an identity:
/// their `name`. A metric in both merges key by key (the Rollout wins, as for any object); a
/// metric in one only is kept; the policy's come first, in its order, then the Rollout's own.
/// Paths from the policy are `analysis.metrics[NAME]` (a whole metric) or
/// `analysis.metrics[NAME].field`. Anything but two lists: the Rollout's, whole.
fn merge_metrics(policy: &Value, rollout: &Value, prefix: &str, from: &mut Vec<String>) -> Value {
    let (Value::Array(p), Value::Array(r)) = (policy, rollout) else {
        return rollout.clone();
    };
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::with_capacity(p.len() + r.len());
    for pv in p {
        let Some(n) = name(pv) else { continue };
        let path = format!("{prefix}[{n}]");
        match r.iter().find(|rv| name(rv).as_deref() == Some(n.as_str())) {
            Some(rv) => out.push(merge(pv, rv, &path, from)),
            None => {
                from.push(path);
                out.push(pv.clone());
            }
        }
    }
    let policy_names: Vec<String> = p.iter().filter_map(name).collect();
    out.extend(
        r.iter()
            .filter(|rv| name(rv).is_none_or(|n| !policy_names.contains(&n)))
            .cloned(),
    );
    Value::Array(out)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The value at a dotted path, if set (a JSON `null` is not set).
fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// Equal as the API server stores them: numbers by value (`1` and `1.0` are one number).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}

/// The locked paths the Rollout sets to another value than the policy's, as messages naming
/// the field and the policy. A lock on a path the policy leaves unset forbids setting it.
pub fn lock_violations(policy: &Policy<'_>, policy_spec: &Value, rollout: &Value) -> Vec<String> {
    policy
        .spec
        .enforce
        .iter()
        .filter_map(|path| {
            let mine = at(rollout, path)?;
            match at(policy_spec, path) {
                Some(theirs) if same(mine, theirs) => None,
                Some(theirs) => Some(format!(
                    "spec.{path} is locked by {policy} to {theirs}; the Rollout sets {mine}"
                )),
                None => Some(format!(
                    "spec.{path} is locked by {policy} (left unset); the Rollout sets {mine}"
                )),
            }
        })
        .collect()
}

/// The effective spec of a Rollout named `name` whose spec is `rollout` under `policy`.
pub fn effective(
    name: &str,
    rollout: &RolloutSpec,
    policy: &Policy<'_>,
) -> Result<Effective, Refusal> {
    let rollout_json = serde_json::to_value(rollout).expect("a RolloutSpec serializes");
    let policy_json = serde_json::to_value(policy.spec).expect("a policy spec serializes");
    effective_json(name, &rollout_json, &policy_json, policy)
}

/// [`effective`] on JSON specs, as `tollgate lint` reads them from files.
pub fn effective_json(
    name: &str,
    rollout: &Value,
    policy_json: &Value,
    policy: &Policy<'_>,
) -> Result<Effective, Refusal> {
    let locked = lock_violations(policy, policy_json, rollout);
    if !locked.is_empty() {
        return Err(Refusal::Locked(locked));
    }
    let mut blocks = Map::new();
    for block in POLICY_BLOCKS {
        if let Some(v) = policy_json.get(block).filter(|v| !v.is_null()) {
            blocks.insert(block.to_string(), v.clone());
        }
    }
    let mut from_policy = Vec::new();
    let merged = merge(&Value::Object(blocks), rollout, "", &mut from_policy);
    // Checked without the policyRef: the rules it relaxes (steps required, analysis required
    // by an analyze step) hold for the merged spec in full.
    let mut checked = merged;
    if let Value::Object(spec) = &mut checked {
        spec.remove("policyRef");
    }
    let object = serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": checked,
    });
    let findings = validate::check(CrdKind::Rollout, &object);
    if !findings.is_empty() {
        return Err(Refusal::Invalid(findings));
    }
    let mut spec = object["spec"].clone();
    if let Some(reference) = rollout.get("policyRef") {
        spec["policyRef"] = reference.clone();
    }
    let spec: RolloutSpec = serde_json::from_value(spec).map_err(|e| {
        Refusal::Invalid(vec![Finding {
            field: "spec".into(),
            message: e.to_string(),
        }])
    })?;
    Ok(Effective { spec, from_policy })
}

/// Phases in which a rollout attempt runs on the snapshot taken when its canary started.
fn runs_on_snapshot(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::CanaryStarting
            | Phase::FleetCheck
            | Phase::SmokeCheck
            | Phase::Analyzing
            | Phase::Promoting
            | Phase::RollingBack
    )
}

/// The snapshot this pass must run on instead of the live policy, if any: from
/// `CanaryStarting` on, for the same policy and the same `spec.version`. Before the canary (and
/// after an attempt ended) the live policy is read, so an edit applies from the next version.
pub fn snapshot_in_force<'s>(
    spec: &RolloutSpec,
    status: Option<&'s RolloutStatus>,
) -> Option<&'s PolicySnapshot> {
    let reference = spec.policy_ref.as_ref()?;
    let status = status?;
    let snapshot = status.policy.as_ref()?;
    (runs_on_snapshot(status.phase)
        && snapshot.kind == reference.kind
        && snapshot.name == reference.name
        && snapshot.version == spec.version)
        .then_some(snapshot)
}

/// FNV-1a 64 of the effective `analysis` as canonical JSON (keys sorted), as 16 hex digits.
/// Stable across processes and versions of tollgate that serialize the analysis alike.
pub fn analysis_hash(spec: &RolloutSpec) -> String {
    let text = serde_json::to_string(&spec.analysis).expect("an analysis serializes");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The snapshot of `policy` (at `generation`) for `version`, whose merge gave `effective`.
pub fn snapshot(
    policy: &Policy<'_>,
    generation: Option<i64>,
    version: &str,
    effective: &Effective,
) -> PolicySnapshot {
    PolicySnapshot {
        kind: policy.kind,
        name: policy.name.to_string(),
        generation,
        version: version.to_string(),
        analysis_hash: analysis_hash(&effective.spec),
        from_policy: effective.from_policy.clone(),
        spec: serde_json::to_value(policy.spec).expect("a policy spec serializes"),
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
