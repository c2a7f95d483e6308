//! `RolloutPolicy` (namespaced) and `ClusterRolloutPolicy` (cluster-scoped): the blocks a
//! platform team sets once for many Rollouts, which name one with `spec.policyRef`.
//!
//! Both kinds carry the same spec, written once in [`policy_spec!`] so the two schemas cannot
//! drift apart. The blocks reuse the Rollout's own types, so a policy's `analysis` is validated
//! by exactly the rules a Rollout's is (CEL messages name the field as `spec.analysis...`, the
//! same path in both kinds). The merge itself lives in `crate::rollout::policy`.

use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;
use super::schema;
use super::spec::{AnalysisSpec, ContractGateSpec, FleetCheckSpec, PolicyKind, SmokeSpec, Step};

/// The blocks a policy may give; a locked path (`spec.enforce[]`) starts with one of them.
pub const POLICY_BLOCKS: [&str; 6] = [
    "contractGate",
    "fleetCheck",
    "smoke",
    "analysis",
    "steps",
    "progressDeadline",
];

/// Defines one policy kind's spec. A macro rather than a shared struct because kube's derive
/// makes one kind from one spec type; both expansions have the same fields, rules and docs.
macro_rules! policy_spec {
    ($(#[$doc:meta])* $name:ident, $($kube:tt)*) => {
        $(#[$doc])*
        #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
        #[kube($($kube)*)]
        #[x_kube(
            validation = Rule::new("has(self.contractGate) || has(self.fleetCheck) || has(self.smoke) || has(self.analysis) || has(self.steps) || has(self.progressDeadline)").message("spec: set at least one of contractGate, fleetCheck, smoke, analysis, steps or progressDeadline"),
            validation = Rule::new("!has(self.enforce) || self.enforce.all(p, (has(self.contractGate) && (p == 'contractGate' || p.startsWith('contractGate.'))) || (has(self.fleetCheck) && (p == 'fleetCheck' || p.startsWith('fleetCheck.'))) || (has(self.smoke) && (p == 'smoke' || p.startsWith('smoke.'))) || (has(self.analysis) && (p == 'analysis' || p.startsWith('analysis.'))) || (has(self.steps) && p == 'steps') || (has(self.progressDeadline) && p == 'progressDeadline'))").message("spec.enforce: every locked field must lie in a block this policy sets (contractGate, fleetCheck, smoke, analysis, steps or progressDeadline)"),
            validation = Rule::new("!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()").message("spec.steps: setWeight values must never decrease from one step to the next"),
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// Contract gate for every Rollout that names this policy and sets none of its own
            /// fields (the Rollout's fields win key by key, unless locked).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub contract_gate: Option<ContractGateSpec>,

            /// Fleet check for the Rollouts that name this policy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub fleet_check: Option<FleetCheckSpec>,

            /// Smoke checks for the Rollouts that name this policy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub smoke: Option<SmokeSpec>,

            /// Statistical analysis (provider, metrics, tolerances, alpha, `onInconclusive`) for
            /// the Rollouts that name this policy.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub analysis: Option<AnalysisSpec>,

            /// Canary steps for a Rollout that gives none (a list is taken whole: a Rollout's
            /// own `steps` replace these entirely).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = 32))]
            pub steps: Option<Vec<Step>>,

            /// Progress deadline (a Go duration) for a Rollout that gives none.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[serde(deserialize_with = "duration::optional_go")]
            #[schemars(schema_with = "schema::optional_duration")]
            pub progress_deadline: Option<Duration>,

            /// Locked fields: paths such as `analysis.provider.prometheus.address` or
            /// `contractGate.environment`, each inside a block this policy sets. A Rollout that
            /// sets a locked field to another value than the policy's is `InvalidSpec`, naming
            /// the field and the policy. Lists and values are locked whole; locking an object
            /// locks every field in it.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            #[schemars(length(max = 64), inner(length(min = 1, max = 256)))]
            #[x_kube(validation = Rule::new("self.all(p, p.matches('^(contractGate|fleetCheck|smoke|analysis|steps|progressDeadline)(\\\\.[a-zA-Z][a-zA-Z0-9]*)*$'))").message("spec.enforce[] must be a field path such as analysis.provider.prometheus.address, starting with contractGate, fleetCheck, smoke, analysis, steps or progressDeadline"))]
            #[x_kube(validation = Rule::new("self.all(p, self.filter(q, q == p).size() == 1)").message("spec.enforce must not repeat a path"))]
            pub enforce: Vec<EnforcedPath>,
        }
    };
}

/// A locked field path (`analysis.provider.prometheus.address`).
pub type EnforcedPath = String;

policy_spec!(
    /// A RolloutPolicy gives defaults (`contractGate`, `fleetCheck`, `smoke`, `analysis`,
    /// `steps`, `progressDeadline`) to the Rollouts of its namespace that name it in
    /// `spec.policyRef`, and may lock fields (`enforce`) they cannot override.
    RolloutPolicySpec,
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "RolloutPolicy",
    namespaced,
    derive = "PartialEq",
    shortname = "tgp",
    category = "tollgate",
    cel,
    doc = "A RolloutPolicy gives the contract gate, fleet check, smoke checks, analysis, steps and progress deadline to the Rollouts of its namespace that name it, and locks the fields they may not override.",
    printcolumn(name = "Locked", type_ = "string", json_path = ".spec.enforce", description = "Fields the Rollouts may not override"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
);

policy_spec!(
    /// A ClusterRolloutPolicy gives defaults (`contractGate`, `fleetCheck`, `smoke`,
    /// `analysis`, `steps`, `progressDeadline`) to the Rollouts of any namespace that name it
    /// in `spec.policyRef`, and may lock fields (`enforce`) they cannot override.
    ClusterRolloutPolicySpec,
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "ClusterRolloutPolicy",
    derive = "PartialEq",
    shortname = "tgcp",
    category = "tollgate",
    cel,
    doc = "A ClusterRolloutPolicy gives the contract gate, fleet check, smoke checks, analysis, steps and progress deadline to the Rollouts of any namespace that name it, and locks the fields they may not override.",
    printcolumn(name = "Locked", type_ = "string", json_path = ".spec.enforce", description = "Fields the Rollouts may not override"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
);

impl From<ClusterRolloutPolicySpec> for RolloutPolicySpec {
    fn from(c: ClusterRolloutPolicySpec) -> Self {
        RolloutPolicySpec {
            contract_gate: c.contract_gate,
            fleet_check: c.fleet_check,
            smoke: c.smoke,
            analysis: c.analysis,
            steps: c.steps,
            progress_deadline: c.progress_deadline,
            enforce: c.enforce,
        }
    }
}

/// `status.policy`: the policy a rollout attempt runs on, as it was when its canary started.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicySnapshot {
    /// `RolloutPolicy` or `ClusterRolloutPolicy`.
    pub kind: PolicyKind,
    /// Name of the policy.
    pub name: String,
    /// The policy's `metadata.generation` when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The `spec.version` this snapshot was taken for; a new version reads the policy again.
    pub version: String,
    /// Hash (FNV-1a 64, hex) of the effective `analysis` as canonical JSON: two Rollouts with
    /// the same hash are judged by the same rules.
    pub analysis_hash: String,
    /// The field paths whose values came from the policy (`analysis.alpha`, `steps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_policy: Vec<String>,
    /// The policy's spec as it was read (kept verbatim: a deleted policy is run from this).
    #[schemars(schema_with = "schema::opaque_json")]
    pub spec: serde_json::Value,
}
