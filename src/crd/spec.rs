//! `Rollout.spec`: what a team asks for. Every field's doc comment becomes its description in
//! the generated schema, which is what `kubectl explain rollout.spec...` prints.
//!
//! Validation lives here too: bounds and enums through schemars attributes, cross-field rules
//! through CEL (`x-kubernetes-validations`), each with a message that names the field. The API
//! server enforces them; `Rollout::validate_cel` runs the same rules client-side in tests.
//!
//! Names follow the Kubernetes style: what configures one gate, check, peer or traffic kind is
//! a `...Spec` (`ContractGateSpec`, `AnalysisSpec`, `PrometheusProviderSpec`), what is observed
//! of it a `...Status` (in `status`), so these never collide with the gate, judge and provider
//! types of the same subject (`analysis::providers::PrometheusProvider`, `gates::smoke::SmokeRequest`).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;
use super::schema;
use super::status::RolloutStatus;
use super::traffic::{SetHeaderRouteStep, TrafficSpec};

/// A Rollout moves one service from its stable version to `spec.version` through three gates:
/// the Pact Broker's can-i-deploy, an attestation that every pod runs what it should, and a
/// step-by-step canary judged by sequential statistics. It ends promoted or rolled back, and
/// `status` records why.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    derive = "PartialEq",
    shortname = "tgr",
    category = "tollgate",
    cel,
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    validation = Rule::new("size(self.metadata.name) <= 50").message("metadata.name must be at most 50 characters: tollgate derives child workload names and label values from it"),
    doc = "A Rollout moves one service to a new version through the contract gate, the fleet check and a statistically judged canary, then promotes or rolls back.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Where the rollout is in its pipeline"),
    printcolumn(name = "Step", type_ = "integer", json_path = ".status.currentStepIndex", description = "Index of the current step in spec.steps"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".status.currentWeight", description = "Percent of traffic on the canary"),
    printcolumn(name = "Stable", type_ = "string", json_path = ".status.stableVersion", description = "Version serving as stable"),
    printcolumn(name = "Canary", type_ = "string", json_path = ".status.canaryVersion", description = "Version under test"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason", description = "Machine-readable reason of the last decision"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("has(self.template) != has(self.workloadRef)").message("spec: set exactly one of spec.template or spec.workloadRef"),
    validation = Rule::new("!has(self.template) || has(self.selector)").message("spec.selector is required when spec.template is set"),
    validation = Rule::new("has(self.steps) || has(self.policyRef)").message("spec.steps is required unless spec.policyRef names a policy that gives them"),
    validation = Rule::new("has(self.policyRef) || !has(self.steps) || !self.steps.exists(s, has(s.analyze)) || has(self.analysis)").message("spec.analysis is required when spec.steps contains an analyze step"),
    validation = Rule::new("!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()").message("spec.steps: setWeight values must never decrease from one step to the next"),
    validation = Rule::new("!has(self.steps) || !self.steps.exists(s, has(s.setHeaderRoute)) || (has(self.traffic) && has(self.traffic.type) && self.traffic.type == 'HTTPRoute')").message("spec.steps[].setHeaderRoute needs spec.traffic.type HTTPRoute: a header route is a rule tollgate adds to the Gateway API route"),
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Label selector of the pods this Rollout manages. Required with `template`; the operator
    /// adds its own `tollgate.dev/track` label to tell stable, canary and baseline apart.
    /// Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.selector is immutable"))]
    pub selector: Option<LabelSelector>,

    /// Number of pods the service runs when fully promoted. The canary's share of pods follows
    /// the step weights when traffic is split by replica ratio. This is the `/scale`
    /// subresource's replica count: `kubectl scale rollout/NAME` and an HorizontalPodAutoscaler
    /// whose `scaleTargetRef` is the Rollout set it (leave it out of GitOps manifests then).
    /// A change mid-canary keeps the weight and the analysis; the tracks are resized from it.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,

    /// Pod template of the service; the operator creates the stable, canary and baseline
    /// workloads from it. Set this or `workloadRef`. Validated by the API server when the
    /// operator applies the child workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::embedded_object")]
    pub template: Option<PodTemplateSpec>,

    /// An existing Deployment whose pod template the operator takes (adoption). Its pods keep
    /// serving as the stable track until the operator's stable pods are ready and attested by
    /// the fleet check; `workloadRef.scaleDown` says what then happens to it (by default
    /// nothing). Set this or `template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,

    /// The version being rolled out: the Pact pacticipant version asked about at the broker,
    /// and the version every canary pod must report to the fleet check. A name that moves from build to build (`latest`, `stable`, `main`, `HEAD`, ...) is
    /// refused: the broker's matrix cannot answer for it, and a pod reporting it tells nobody
    /// what it runs. The version should be or contain the commit it was built from (see
    /// `versionPolicy`).
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9][A-Za-z0-9._+-]*$')").message("spec.version must start with a letter or digit and contain only letters, digits, '.', '_', '+' and '-'"))]
    #[x_kube(validation = Rule::new(MUTABLE_VERSION_RULE).message("spec.version must identify one build: mutable or placeholder names (latest, stable, current, main, master, trunk, develop, dev, HEAD, snapshot, nightly, edge, none, null, unknown, undefined, unset, default) are refused; use a version that is or contains the commit, e.g. 1.4.2+76a39e5"))]
    pub version: String,

    /// Rules for what `version` and the template's images must carry to identify one build.
    #[serde(default, skip_serializing_if = "VersionPolicySpec::is_default")]
    pub version_policy: VersionPolicySpec,

    /// Contract gate: ask the Pact Broker whether `version` may be deployed to an environment
    /// before any canary pod starts. Omit to skip the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_gate: Option<ContractGateSpec>,

    /// Fleet check: every ready pod must report the version and configuration hash it should.
    /// Absent: the policy's (`policyRef`), else every field at its default. No schema default,
    /// so that a policy's block is not beaten by one the API server writes in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_check: Option<FleetCheckSpec>,

    /// Smoke checks: HTTP requests sent to canary pods before analysis starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeSpec>,

    /// How traffic is divided between stable and canary.
    #[serde(default)]
    pub traffic: TrafficSpec,

    /// The canary's steps, run in order: set a traffic weight, analyze for a while, or pause.
    /// After the last step the canary is promoted. Required unless `policyRef` names a policy
    /// that gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 32))]
    pub steps: Vec<Step>,

    /// Statistical analysis of canary against baseline; required when a step analyzes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,

    /// What happens around the promotion.
    #[serde(default)]
    pub strategy: StrategySpec,

    /// How long the rollout may go without progress (pods becoming ready, a gate answering)
    /// before it is marked Stalled and rolled back, as a Go duration (e.g. `10m`). Absent: the
    /// policy's (`policyRef`), else `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "duration::optional_go")]
    #[schemars(schema_with = "schema::optional_duration")]
    pub progress_deadline: Option<Duration>,

    /// A `RolloutPolicy` (in the Rollout's namespace) or `ClusterRolloutPolicy` whose blocks
    /// (`contractGate`, `fleetCheck`, `smoke`, `analysis`, `steps`, `progressDeadline`) this
    /// Rollout takes where it does not set them itself: objects merge key by key, lists and
    /// values are taken whole, the Rollout's own fields win except those the policy locks
    /// (`enforce`). The effective spec is fixed when the canary starts (`status.policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_ref: Option<PolicyRef>,

    /// Pause the rollout where it is: no step advances and nothing is promoted while true.
    /// Analysis keeps collecting evidence; a regression still rolls back.
    #[serde(default)]
    pub paused: bool,

    /// Set to a new value (any token, e.g. a timestamp) to promote now, skipping the remaining
    /// steps. Contract and fleet gates still apply. Each distinct token acts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub promote_request: Option<String>,

    /// Set to a new value to abort: traffic returns to stable and the canary is scaled to zero.
    /// Each distinct token acts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub abort_request: Option<String>,

    /// Set to a new value to continue past a pause step that has no duration, or past a hold
    /// on inconclusive analysis (the analysis then starts its window over). Each distinct
    /// token acts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub resume_request: Option<String>,

    /// Set to a new value to try a version again after it was blocked or rolled back (without
    /// it, a rejected version stays rejected). Each distinct token acts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub retry_request: Option<String>,
}

fn default_replicas() -> i32 {
    2
}

/// The fleet check every field of which is at its default, for a Rollout without one.
static DEFAULT_FLEET_CHECK: std::sync::LazyLock<FleetCheckSpec> =
    std::sync::LazyLock::new(FleetCheckSpec::default);

impl RolloutSpec {
    /// The fleet check in effect: the spec's (after any policy merge), else the defaults.
    /// Applied in code, not by the schema, so a policy's `fleetCheck` can fill the gap.
    pub fn fleet_check(&self) -> &FleetCheckSpec {
        self.fleet_check.as_ref().unwrap_or(&DEFAULT_FLEET_CHECK)
    }

    /// The fleet check to edit, set to the defaults first when absent.
    pub fn fleet_check_mut(&mut self) -> &mut FleetCheckSpec {
        self.fleet_check.get_or_insert_with(FleetCheckSpec::default)
    }

    /// The progress deadline in effect: the spec's (after any policy merge), else `10m`.
    pub fn progress_deadline(&self) -> Duration {
        self.progress_deadline
            .unwrap_or_else(default_progress_deadline)
    }
}

/// Which policy a Rollout takes its defaults from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// `RolloutPolicy` (in the Rollout's namespace) or `ClusterRolloutPolicy`.
    pub kind: PolicyKind,
    /// Name of the policy.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The two kinds of policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A namespaced `RolloutPolicy`, in the Rollout's namespace.
    RolloutPolicy,
    /// A cluster-scoped `ClusterRolloutPolicy`.
    ClusterRolloutPolicy,
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PolicyKind::RolloutPolicy => "RolloutPolicy",
            PolicyKind::ClusterRolloutPolicy => "ClusterRolloutPolicy",
        })
    }
}

/// The CEL rule refusing mutable or placeholder names as `spec.version` (case-insensitive; the
/// whole value must be the name, so `main-76a39e5` is accepted).
pub const MUTABLE_VERSION_RULE: &str = "!self.matches('^(?i)(latest|stable|current|main|master|trunk|develop|development|dev|head|snapshot|nightly|edge|none|null|nil|unknown|undefined|unset|default)$')";

/// What `spec.version` and the template's images must carry to identify one build. Kept in its
/// own block so that a shared policy can later set the same fields for many Rollouts.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VersionPolicySpec {
    /// Refuse a `version` that carries no commit (no run of 7 to 40 hexadecimal characters
    /// with at least one letter a-f, e.g. `1.4.2+76a39e5`): the rollout holds with
    /// `InvalidSpec` until the Rollout changes. When false (the default) such a version, and a
    /// template image given by a mutable tag (`:latest` or no tag), only get a
    /// `VersionIdentity` warning in `status.versionIdentity` and an Event.
    #[serde(default)]
    pub require_commit: bool,
}

impl VersionPolicySpec {
    fn is_default(&self) -> bool {
        *self == VersionPolicySpec::default()
    }
}

/// What happens around the promotion.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StrategySpec {
    /// How long the previous stable version is kept at full size, out of traffic, after a
    /// promotion (a Go duration; `0s` keeps nothing). Within it `abortRequest` (`tollgate
    /// abort`) is an instant rollback: traffic returns to those pods at once, no pod has to
    /// start. After it, abort on the promoted version is refused. `status.rollbackWindow.until`
    /// says until when.
    #[serde(default = "default_scale_down_delay")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub scale_down_delay: Duration,
}

impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec {
            scale_down_delay: default_scale_down_delay(),
        }
    }
}

fn default_scale_down_delay() -> Duration {
    std::time::Duration::from_secs(30).into()
}

fn default_progress_deadline() -> Duration {
    std::time::Duration::from_secs(600).into()
}

/// An existing workload whose pod template the Rollout takes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// API version of the workload.
    #[serde(default = "default_apps_v1")]
    #[x_kube(validation = Rule::new("self == 'apps/v1'").message("spec.workloadRef.apiVersion must be apps/v1"))]
    pub api_version: String,
    /// Kind of the workload.
    #[serde(default)]
    pub kind: WorkloadKind,
    /// Name of the workload in the Rollout's namespace. It must not be owned by tollgate or
    /// referenced by another Rollout.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// What happens to the referenced Deployment once the Rollout's own stable pods serve:
    /// `never` leaves it alone (default); `onSuccess` keeps it at its size until the stable
    /// pods are ready and attested, then scales it to zero; `progressively` scales it down by
    /// one pod for each ready stable pod (never fewer ready pods than it had, one of its pods
    /// kept until the attestation), then to zero. Deleting the Rollout scales it back to the
    /// size it had (`status.adoption.originalReplicas`).
    #[serde(default)]
    pub scale_down: ScaleDown,
}

/// What happens to a Deployment adopted through `spec.workloadRef` (Argo Rollouts' values).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScaleDown {
    /// Leave it running as it is.
    #[default]
    #[serde(rename = "never")]
    Never,
    /// Scale it to zero once the Rollout's stable pods are ready and attested.
    #[serde(rename = "onSuccess")]
    OnSuccess,
    /// Scale it down as the Rollout's stable pods become ready, then to zero once attested.
    #[serde(rename = "progressively")]
    Progressively,
}

fn default_apps_v1() -> String {
    "apps/v1".to_string()
}

/// Kinds of workload a Rollout can take its template from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    /// An apps/v1 Deployment.
    #[default]
    Deployment,
}

/// Where and how to ask the Pact Broker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.unknownBudget) >= duration(self.pollInterval)").message("spec.contractGate.unknownBudget must be at least spec.contractGate.pollInterval"))]
pub struct ContractGateSpec {
    /// Base URL of the Pact Broker (http or https). Defaults to the operator's `--broker-url`
    /// (chart value `broker.url`); with neither, the rollout stops with `InvalidSpec`. A URL of
    /// the Rollout's own must be on the operator's default host or one the operator allows
    /// (`--allowed-broker-hosts`, chart value `allowedBrokerHosts`), and never on a link-local
    /// or cloud-metadata address; otherwise `InvalidSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^\\\\s]+$')").message("spec.contractGate.brokerUrl must be an http:// or https:// URL"))]
    pub broker_url: Option<String>,

    /// Pacticipant (application) name in the broker.
    #[schemars(length(min = 1, max = 253))]
    pub pacticipant: String,

    /// Broker environment the version is to be deployed to (e.g. `production`).
    #[schemars(length(min = 1, max = 253))]
    pub environment: String,

    /// Secret in the Rollout's namespace holding broker credentials: either key `token`
    /// (bearer token) or keys `username` and `password` (basic auth); both is an error. The
    /// Secret must carry the label `tollgate.dev/credentials: "true"` and must not be a
    /// service-account token; otherwise the rollout stops with `InvalidSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// How often to ask again while the broker answers "unknown" (deployable: null) or cannot
    /// be reached.
    #[serde(default = "default_poll_interval")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub poll_interval: Duration,

    /// How long to keep asking while the answer is "unknown" or the broker cannot be reached
    /// (counted from the first such answer); then the rollout is blocked.
    #[serde(default = "default_unknown_budget")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub unknown_budget: Duration,

    /// Pacticipants (optionally one version of each) to ignore in the compatibility check,
    /// as `can-i-deploy --ignore` does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ignore: Vec<IgnoreSelector>,

    /// Record the deployment in the broker after a promotion, and the stable version again
    /// after a rollback; and when the Rollout is deleted, that the recorded version no longer
    /// runs there (finalizer `tollgate.dev/undeployment`, released within about 40 s even when
    /// the broker is down).
    #[serde(default = "default_true")]
    pub record_deployments: bool,

    /// Application instance name for deployment records, when one environment runs several
    /// instances of the pacticipant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub application_instance: Option<String>,

    /// Report the broker's answer without acting on it. A "no" is still shown as a "no" and
    /// never becomes a pass; only the block is skipped: the gate waits within `unknownBudget`
    /// as without dry run, `status.contractGate` records the real verdict, and where the gate
    /// would block (not deployable, unknown or unreachable past the budget, refused) the
    /// rollout continues with a Warning Event `ContractGateDryRun`.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_poll_interval() -> Duration {
    std::time::Duration::from_secs(10).into()
}

fn default_unknown_budget() -> Duration {
    std::time::Duration::from_secs(300).into()
}

fn default_true() -> bool {
    true
}

/// A reference to a Secret in the Rollout's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A pacticipant left out of the can-i-deploy check.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreSelector {
    /// Pacticipant name.
    #[schemars(length(min = 1, max = 253))]
    pub pacticipant: String,
    /// Only this version of it; all versions when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub version: Option<String>,
}

/// What each pod is asked, and what it must answer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FleetCheckSpec {
    /// Run the fleet check. Turning it off removes the only proof that pods run what they
    /// should; the status says so.
    #[serde(default = "default_true")]
    pub enabled: bool,

    /// Container port of the version endpoint.
    #[serde(default = "default_fleet_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// HTTP path of the version endpoint.
    #[serde(default = "default_fleet_path")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.fleetCheck.path must start with '/'"))]
    pub path: String,

    /// JSON pointer (RFC 6901) to the version in the endpoint's answer.
    #[serde(default = "default_version_pointer")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.fleetCheck.versionPointer must be a JSON pointer starting with '/'"))]
    #[schemars(length(min = 1, max = 256))]
    pub version_pointer: String,

    /// JSON pointer (RFC 6901) to the hash of the active configuration.
    #[serde(default = "default_config_hash_pointer")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.fleetCheck.configHashPointer must be a JSON pointer starting with '/'"))]
    #[schemars(length(min = 1, max = 256))]
    pub config_hash_pointer: String,

    /// The configuration hash every canary pod must report. Setting it declares a
    /// configuration change: the canary may then differ from stable, but only to this hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub expected_config_hash: Option<String>,

    /// Require the canary's configuration hash to equal the stable pods' hash when no
    /// `expectedConfigHash` is declared.
    #[serde(default = "default_true")]
    pub config_parity: bool,

    /// How long one pod may take to answer; at most `10s`.
    #[serde(default = "default_fleet_timeout")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('10s')").message("spec.fleetCheck.timeout must be at most 10s"))]
    pub timeout: Duration,

    /// How many pods are asked at once.
    #[serde(default = "default_fleet_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: i32,

    /// Where each pod's version comes from: `http` (the pod's version endpoint, the default),
    /// `imageID` (the kubelet's record of the image digest each pod runs, for services without
    /// a version endpoint) or `prometheus` (a `build_info`-style series per pod).
    #[serde(default)]
    pub source: FleetSource,

    /// The image digest (`sha256:<64 hex>`) every canary pod must run, for `source: imageID`
    /// when the template's image is not pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^sha256:[0-9a-f]{64}$')").message("spec.fleetCheck.expectedImageDigest must be sha256: and 64 lowercase hex digits"))]
    pub expected_image_digest: Option<String>,

    /// The container whose image `source: imageID` checks; the template's first container when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container: Option<String>,

    /// The series `source: prometheus` reads (on the Prometheus of `spec.analysis.provider`, or
    /// the operator's default when the Rollout has no analysis).
    #[serde(default)]
    pub build_info: BuildInfoSpec,

    /// JSON pointer (RFC 6901) to the pod's dependency versions (`{"postgres": "15.4"}`).
    #[serde(default = "default_dependencies_pointer")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.fleetCheck.dependenciesPointer must be a JSON pointer starting with '/'"))]
    #[schemars(length(min = 1, max = 256))]
    pub dependencies_pointer: String,

    /// JSON pointer (RFC 6901) to the pod's flags and settings (`{"powerPeg": false}`).
    #[serde(default = "default_flags_pointer")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.fleetCheck.flagsPointer must be a JSON pointer starting with '/'"))]
    #[schemars(length(min = 1, max = 256))]
    pub flags_pointer: String,

    /// Dependencies every pod must report, each with a constraint and canary/stable parity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(d, self.filter(e, e.name == d.name).size() == 1)").message("spec.fleetCheck.dependencies must not repeat a name"))]
    pub dependencies: Vec<DependencySpec>,

    /// How flags are compared between canary and stable, declared values, guarded versions.
    #[serde(default)]
    pub flags: FlagsSpec,
}

/// Where the fleet check reads each pod's version.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FleetSource {
    /// `GET` the pod's version endpoint (version, config hash, dependencies, flags).
    #[default]
    #[serde(rename = "http")]
    Http,
    /// `status.containerStatuses[].imageID`: the digest the kubelet says each pod runs.
    #[serde(rename = "imageID")]
    ImageId,
    /// A `build_info`-style series per pod in Prometheus.
    #[serde(rename = "prometheus")]
    Prometheus,
}

/// The per-pod series of `source: prometheus`: `<metric>{<podLabel>="<pod>"}` with the version
/// in `<versionLabel>`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfoSpec {
    /// Metric name.
    #[serde(default = "default_build_info_metric")]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_:][a-zA-Z0-9_:]*$')").message("spec.fleetCheck.buildInfo.metric must be a Prometheus metric name"))]
    #[schemars(length(min = 1, max = 200))]
    pub metric: String,
    /// Label that carries the version.
    #[serde(default = "default_build_info_version_label")]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_][a-zA-Z0-9_]*$')").message("spec.fleetCheck.buildInfo.versionLabel must be a Prometheus label name"))]
    #[schemars(length(min = 1, max = 100))]
    pub version_label: String,
    /// Label that carries the pod's name.
    #[serde(default = "default_build_info_pod_label")]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_][a-zA-Z0-9_]*$')").message("spec.fleetCheck.buildInfo.podLabel must be a Prometheus label name"))]
    #[schemars(length(min = 1, max = 100))]
    pub pod_label: String,
}

impl Default for BuildInfoSpec {
    fn default() -> Self {
        BuildInfoSpec {
            metric: default_build_info_metric(),
            version_label: default_build_info_version_label(),
            pod_label: default_build_info_pod_label(),
        }
    }
}

fn default_build_info_metric() -> String {
    "build_info".into()
}
fn default_build_info_version_label() -> String {
    "version".into()
}
fn default_build_info_pod_label() -> String {
    "pod".into()
}
fn default_dependencies_pointer() -> String {
    "/dependencies".into()
}
fn default_flags_pointer() -> String {
    "/flags".into()
}

/// A dependency the pods must report, e.g. the database engine they talk to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.range) && has(self.exact))").message("spec.fleetCheck.dependencies[]: set at most one of range or exact"))]
pub struct DependencySpec {
    /// Its key in the pods' `dependencies` object.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// A semver range the reported version must satisfy (`>=15, <16`); `15.4` reads as `15.4.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub range: Option<String>,
    /// The exact string every pod must report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub exact: Option<String>,
    /// Every pod reports the version the stable pods report.
    #[serde(default = "default_true")]
    pub parity: bool,
}

/// How flags are judged, key by key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlagsSpec {
    /// Canary pods report stable's value for every flag (except those in `expected`). On by
    /// default: a canary whose flags differ from stable's makes the analysis blame the code for
    /// the flag's effect, and a flag on some pods but not others is the Knight Capital hazard.
    #[serde(default = "default_true")]
    pub parity: bool,
    /// Keys never compared (per-pod settings such as a shard number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ignore: Vec<String>,
    /// Declared values, as JSON text (`true`, `"blue"`, `3`), that every canary pod must report;
    /// a declared value is a declared change, exempt from parity.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(length(max = 64))]
    pub expected: std::collections::BTreeMap<String, String>,
    /// "When flag F is on, every pod runs version >= V": when any pod reports the flag on,
    /// every pod must run at least `minVersion`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub guards: Vec<FlagGuardSpec>,
}

impl Default for FlagsSpec {
    fn default() -> Self {
        FlagsSpec {
            parity: true,
            ignore: Vec::new(),
            expected: Default::default(),
            guards: Vec::new(),
        }
    }
}

/// A guarded version rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlagGuardSpec {
    /// The flag's key.
    #[schemars(length(min = 1, max = 128))]
    pub flag: String,
    /// The value, as JSON text, that counts as on.
    #[serde(default = "default_guard_on")]
    #[schemars(length(min = 1, max = 256))]
    pub on: String,
    /// The lowest version any pod may run while the flag is on (semver; `2.1` reads as `2.1.0`).
    #[schemars(length(min = 1, max = 128))]
    pub min_version: String,
}

fn default_guard_on() -> String {
    "true".into()
}

impl Default for FleetCheckSpec {
    fn default() -> Self {
        FleetCheckSpec {
            enabled: true,
            port: default_fleet_port(),
            path: default_fleet_path(),
            version_pointer: default_version_pointer(),
            config_hash_pointer: default_config_hash_pointer(),
            expected_config_hash: None,
            config_parity: true,
            timeout: default_fleet_timeout(),
            concurrency: default_fleet_concurrency(),
            source: FleetSource::default(),
            expected_image_digest: None,
            container: None,
            build_info: BuildInfoSpec::default(),
            dependencies_pointer: default_dependencies_pointer(),
            flags_pointer: default_flags_pointer(),
            dependencies: Vec::new(),
            flags: FlagsSpec::default(),
        }
    }
}

fn default_fleet_port() -> i32 {
    8080
}
fn default_fleet_path() -> String {
    "/version".to_string()
}
fn default_version_pointer() -> String {
    "/version".to_string()
}
fn default_config_hash_pointer() -> String {
    "/configHash".to_string()
}
fn default_fleet_timeout() -> Duration {
    std::time::Duration::from_secs(2).into()
}
fn default_fleet_concurrency() -> i32 {
    16
}

/// Smoke requests sent to canary pods after the fleet check and before analysis.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmokeSpec {
    /// The requests; every one must succeed on every pod asked.
    #[schemars(length(min = 1, max = 16))]
    pub requests: Vec<SmokeRequestSpec>,
    /// Ask only this many canary pods (chosen deterministically); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub sample_pods: Option<i32>,
}

/// One smoke request and the answer it expects.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmokeRequestSpec {
    /// Short name used in status and events.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// HTTP method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Path (and query) of the request.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.smoke.requests[].path must start with '/'"))]
    pub path: String,
    /// Container port; the fleet check's port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Expected HTTP status.
    #[serde(default = "default_expected_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: i32,
    /// A substring the response body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub body_contains: Option<String>,
    /// How long one request may take; at most `10s`.
    #[serde(default = "default_fleet_timeout")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('10s')").message("spec.smoke.requests[].timeout must be at most 10s"))]
    pub timeout: Duration,
}

fn default_expected_status() -> i32 {
    200
}

/// HTTP methods a smoke request may use.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    #[default]
    Get,
    /// HEAD
    Head,
    /// POST (with an empty body)
    Post,
    /// OPTIONS
    Options,
}

/// One step of the canary. Exactly one of `setWeight`, `analyze`, `pause` or `setHeaderRoute`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.setWeight), has(self.analyze), has(self.pause), has(self.setHeaderRoute)].filter(x, x).size() == 1").message("spec.steps[]: each step sets exactly one of setWeight, analyze, pause or setHeaderRoute"))]
pub struct Step {
    /// Send this percent of traffic to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,
    /// Compare canary and baseline for a while at the current weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyze: Option<AnalyzeStep>,
    /// Wait for a duration, or until resumed when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    /// Send requests carrying these headers to the canary whatever the weight (with
    /// `spec.traffic.type: HTTPRoute` only), or, without `match`, stop doing so. Done as soon
    /// as it is set; removed at the end of the rollout in any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRouteStep>,
}

/// An analysis step.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeStep {
    /// How long to analyze at this weight. The step passes early when every metric has
    /// evidence of health, and fails as soon as a regression is proven.
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub duration: Duration,
}

/// A pause step.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    /// How long to wait; without it the rollout waits until `spec.resumeRequest` changes
    /// (`kubectl tollgate resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "duration::optional_go")]
    #[schemars(schema_with = "schema::optional_duration")]
    pub duration: Option<Duration>,
}

/// How canary and baseline are compared.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.errorRate) || has(self.latency) || (has(self.metrics) && size(self.metrics) > 0)").message("spec.analysis: configure at least one of errorRate, latency or metrics"),
    validation = Rule::new("!has(self.metrics) || self.metrics.all(m, self.metrics.filter(n, n.name == m.name).size() == 1)").message("spec.analysis.metrics must not repeat a name"),
    validation = Rule::new("self.alpha > 0.0 && self.alpha < 0.5").message("spec.analysis.alpha must be greater than 0 and less than 0.5"),
    validation = Rule::new("self.alphaPass > 0.0 && self.alphaPass < 0.5").message("spec.analysis.alphaPass must be greater than 0 and less than 0.5"),
    validation = Rule::new("duration(self.maxDuration) >= duration(self.interval)").message("spec.analysis.maxDuration must be at least spec.analysis.interval"),
)]
pub struct AnalysisSpec {
    /// Where the metrics come from (default: the operator's `--prometheus-url`).
    #[serde(default)]
    pub provider: MetricsProviderSpec,

    /// How often the judge looks at new data. The tests stay valid however often it looks;
    /// shorter looks stop a regression sooner but cost more queries.
    #[serde(default = "default_interval")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub interval: Duration,

    /// Error-rate comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<ErrorRateSpec>,

    /// Latency comparison at one or more quantiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,

    /// The team's own metrics as PromQL templates (counter pairs and histograms), judged beside
    /// `errorRate` and `latency`, each with its own tolerance, weight and criticality. A
    /// policy's metrics and the Rollout's merge by name. See docs/metrics.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub metrics: Vec<super::metrics::MetricSpec>,

    /// Family-wise false-rollback rate: the chance that a healthy canary is rolled back on
    /// noise, across all metrics and however long the analysis looks.
    #[serde(default = "default_alpha")]
    pub alpha: f64,

    /// Family-wise false-promotion rate: the chance that a canary worse than a metric's pass
    /// rules allow (its `passTolerance`, and its `passMargin` or `passRate` when set) is
    /// promoted. Each metric's test gets all of it, because a promotion needs every metric to
    /// pass; a metric with several pass rules splits it between them.
    #[serde(default = "default_alpha_pass")]
    pub alpha_pass: f64,

    /// Requests the canary must have served before a metric may pass.
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 1, max = 100000000))]
    pub min_requests: i64,

    /// Longest time the analysis may run in total before `onInconclusive` applies.
    #[serde(default = "default_max_duration")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    pub max_duration: Duration,

    /// What happens when the evidence is still inconclusive at an analysis step's end or at
    /// `maxDuration`: `Pause` holds the rollout for a person (never promotes without evidence),
    /// `Rollback` returns traffic to stable.
    #[serde(default)]
    pub on_inconclusive: InconclusivePolicy,

    /// Start a fresh baseline workload of the stable version beside the canary, with the same
    /// number of pods, so both arms are equally warm. Without it the stable pods are the
    /// baseline.
    #[serde(default)]
    pub dedicated_baseline: bool,
}

fn default_interval() -> Duration {
    std::time::Duration::from_secs(30).into()
}
fn default_alpha() -> f64 {
    0.02
}
fn default_alpha_pass() -> f64 {
    0.05
}
fn default_min_requests() -> i64 {
    300
}
fn default_max_duration() -> Duration {
    std::time::Duration::from_secs(3600).into()
}

/// What to do when the judge cannot decide in time.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InconclusivePolicy {
    /// Hold the rollout and wait for a person (promote, abort or retry).
    #[default]
    Pause,
    /// Roll back to stable.
    Rollback,
}

/// A metrics backend.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricsProviderSpec {
    /// A Prometheus-compatible HTTP API.
    #[serde(default)]
    pub prometheus: PrometheusProviderSpec,
}

/// Prometheus connection settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusProviderSpec {
    /// Base URL of the Prometheus HTTP API (e.g. `http://prometheus.monitoring:9090`).
    /// Defaults to the operator's `--prometheus-url` (chart value `prometheus.url`); with
    /// neither, the rollout stops with `InvalidSpec`. An address of the Rollout's own must be on
    /// the operator's default host or one it allows (`--allowed-prometheus-hosts`, chart value
    /// `allowedPrometheusHosts`), never link-local or cloud metadata; otherwise `InvalidSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^\\\\s]+$')").message("spec.analysis.provider.prometheus.address must be an http:// or https:// URL"))]
    pub address: Option<String>,
    /// Secret with key `token` (bearer) or keys `username` and `password` (basic auth),
    /// labelled `tollgate.dev/credentials: "true"` and not a service-account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Timeout of one query; at most `30s`.
    #[serde(default = "default_query_timeout")]
    #[serde(deserialize_with = "duration::go")]
    #[schemars(schema_with = "schema::duration")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('30s')").message("spec.analysis.provider.prometheus.timeout must be at most 30s"))]
    pub timeout: Duration,
}

impl Default for PrometheusProviderSpec {
    fn default() -> Self {
        PrometheusProviderSpec {
            address: None,
            credentials_secret_ref: None,
            timeout: default_query_timeout(),
        }
    }
}

fn default_query_timeout() -> Duration {
    std::time::Duration::from_secs(10).into()
}

/// Error-rate metric definition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.passTolerance >= self.tolerance").message("spec.analysis.errorRate.passTolerance must be at least spec.analysis.errorRate.tolerance"))]
#[x_kube(validation = Rule::new("self.passMargin >= 0.0 && self.passMargin <= 0.5").message("spec.analysis.errorRate.passMargin must be between 0 and 0.5 (errors per request; 0 turns the rule off)"))]
#[x_kube(validation = Rule::new("!has(self.passRate) || (self.passRate > 0.0 && self.passRate < 1.0)").message("spec.analysis.errorRate.passRate must be above 0 and below 1 (errors per request)"))]
#[x_kube(validation = Rule::new("!has(self.maxRate) || (self.maxRate > 0.0 && self.maxRate < 1.0)").message("spec.analysis.errorRate.maxRate must be above 0 and below 1 (errors per request)"))]
#[x_kube(validation = Rule::new("!has(self.maxRate) || !has(self.passRate) || self.passRate < self.maxRate").message("spec.analysis.errorRate.passRate must be below spec.analysis.errorRate.maxRate"))]
pub struct ErrorRateSpec {
    /// Counter of requests, labelled by status code.
    #[serde(default = "default_requests_metric")]
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_:][a-zA-Z0-9_:]*$')").message("spec.analysis.errorRate.requestsMetric must be a Prometheus metric name"))]
    pub requests_metric: String,
    /// Label that holds the status code.
    #[serde(default = "default_code_label")]
    #[schemars(length(min = 1, max = 128))]
    pub code_label: String,
    /// Regular expression (RE2, fully anchored) of status codes counted as errors.
    #[serde(default = "default_error_codes")]
    #[schemars(length(min = 1, max = 256))]
    pub error_codes: String,
    /// Tolerated ratio of canary to baseline error rate: the canary fails only when its
    /// error rate is proven above `tolerance` times the baseline's.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub tolerance: f64,
    /// Promotion needs proof that the canary's error rate is below `passTolerance` times the
    /// baseline's; at least `tolerance`.
    #[serde(default = "default_pass_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub pass_tolerance: f64,
    /// Promotion also when the canary's error rate is proven at most `passMargin` errors per
    /// request above the baseline's (0.005 = half a percentage point): the rule a service with
    /// few or no errors can meet, where a ratio below `passTolerance` needs hundreds of errors
    /// to be shown. Half of the metric's `alphaPass` share goes to each rule. 0 turns the rule
    /// off (promotion then needs the ratio).
    #[serde(default = "default_pass_margin")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub pass_margin: f64,
    /// Promotion also when the canary's own error rate is proven below `passRate` errors per
    /// request (0.001 = 0.1%), whatever the baseline's: a service-level objective, for a
    /// service that knows the rate it must meet. Unset (the default): no such rule. The
    /// metric's `alphaPass` share is split evenly between its pass rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub pass_rate: Option<f64>,
    /// The absolute guard: the canary fails when its own error rate is proven above `maxRate`
    /// errors per request (0.05 = 5%), whatever the baseline's, so a canary can fail on a
    /// service-level objective even when the baseline is just as bad. A critical metric that
    /// fails this way rolls back with reason `MaxRateExceeded`. It takes half of the metric's
    /// `alpha` share (the comparison keeps the other half). Unset (the default): no guard.
    /// Above 0, below 1, and above `passRate` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_rate: Option<f64>,
    /// A failed critical metric rolls back at once; a failed non-critical metric is reported
    /// and blocks promotion until a person decides.
    #[serde(default = "default_true")]
    pub critical: bool,
}

fn default_pass_margin() -> f64 {
    0.005
}

fn default_requests_metric() -> String {
    "http_requests_total".to_string()
}
fn default_code_label() -> String {
    "code".to_string()
}
fn default_error_codes() -> String {
    "5..".to_string()
}
fn default_tolerance() -> f64 {
    1.0
}
fn default_pass_tolerance() -> f64 {
    1.5
}

/// Latency metric definition over a Prometheus histogram.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.quantiles.all(q, self.quantiles.filter(p, p.quantile == q.quantile).size() == 1)").message("spec.analysis.latency.quantiles must not repeat a quantile"))]
pub struct LatencySpec {
    /// Histogram metric name without the `_bucket` suffix.
    #[serde(default = "default_histogram_metric")]
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_:][a-zA-Z0-9_:]*$')").message("spec.analysis.latency.histogramMetric must be a Prometheus metric name"))]
    pub histogram_metric: String,
    /// Quantiles to compare, each with its tolerance.
    #[schemars(length(min = 1, max = 5))]
    pub quantiles: Vec<QuantileSpec>,
    /// Also compare the whole latency distribution (a sequential rank test over the buckets),
    /// which catches shifts that no single quantile shows.
    #[serde(default = "default_true")]
    pub whole_distribution: bool,
    /// A failed critical metric rolls back at once.
    #[serde(default = "default_true")]
    pub critical: bool,
}

fn default_histogram_metric() -> String {
    "http_request_duration_seconds".to_string()
}

/// One latency quantile to compare.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.quantile >= 0.5 && self.quantile <= 0.999").message("spec.analysis.latency.quantiles[].quantile must be between 0.5 and 0.999"),
    validation = Rule::new("self.passTolerance >= self.tolerance").message("spec.analysis.latency.quantiles[].passTolerance must be at least its tolerance"),
)]
pub struct QuantileSpec {
    /// The quantile, e.g. 0.99 for p99.
    pub quantile: f64,
    /// Tolerated ratio of canary to baseline: the canary fails only when the share of its
    /// requests slower than the baseline's quantile is proven above `tolerance` times the
    /// baseline's share.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub tolerance: f64,
    /// Promotion needs proof that that share is below `passTolerance` times the baseline's; at
    /// least `tolerance`.
    #[serde(default = "default_pass_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub pass_tolerance: f64,
}
