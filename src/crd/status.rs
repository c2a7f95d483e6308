//! `Rollout.status`: the record. A restarted operator resumes from it alone, so everything a
//! decision rests on (gate answers, fleet results, the judge's running state, handled tokens)
//! is kept here, bounded in size.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::reason::Reason;
use super::schema;

/// Most entries kept in `status.history`; older decisions are dropped first.
pub const MAX_HISTORY: usize = 20;
/// Most failing pods listed in `status.fleet.failingPods`; the counts are always complete.
pub const MAX_FAILING_PODS: usize = 20;

/// Longest text a pod (or another peer) put into a finding that status keeps, in characters
/// (control characters escaped first).
pub const MAX_REPORTED_CHARS: usize = 256;

/// Condition type: the rollout reached its goal (`True` once promoted and the fleet agrees).
pub const CONDITION_READY: &str = "Ready";
/// Condition type: the rollout is moving through its pipeline.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: the same as `Progressing`, under the name kstatus (Flux, `kubectl wait`
/// tooling, cli-utils) reads as "in progress", so GitOps tools without a custom health check
/// wait for the decision instead of calling a half-done canary Current.
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// Condition type: the rollout cannot move without a change or a person (blocked, rolled back,
/// paused on an inconclusive verdict, past its deadline).
pub const CONDITION_STALLED: &str = "Stalled";

/// Observed state of a Rollout.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Where the rollout is in its pipeline.
    #[serde(default)]
    pub phase: Phase,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Progressing` (also as `Reconciling`, for kstatus) and `Stalled`, each with the
    /// machine-readable reason of `reason` (the phase's name before any decision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The version serving as stable (the last promoted one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_version: Option<String>,

    /// The version under test, while there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_version: Option<String>,

    /// Index of the current step in `spec.steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,

    /// Percent of traffic currently sent to the canary.
    #[serde(default)]
    pub current_weight: i32,

    /// Header routes in force (`setHeaderRoute` steps): requests carrying these headers go to
    /// the canary whatever `currentWeight` says. Empty outside the steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub header_routes: Vec<super::traffic::SetHeaderRouteStep>,

    /// When the current phase began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_started_at: Option<Timestamp>,

    /// When the current step began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Timestamp>,

    /// Machine-readable reason of the last decision (also the `Reason` column). One of
    /// these (some are only ever Event reasons):
    /// `Started`, `NewVersion`, `Superseded`, `RetryRequested`, `RetryIgnored`, `Aborted`,
    /// `AbortIgnored`, `Resumed`, `ResumeIgnored`, `PromoteRequested`, `PromoteIgnored`,
    /// `ContractGatePassed`, `ContractGateDryRun`, `NotDeployable`, `ContractUnknown`,
    /// `BrokerUnreachable`, `BrokerRefused`, `InitialDeployment`, `CanaryStarting`, `CanaryReady`,
    /// `ProgressDeadlineExceeded`, `FleetCheckPassed`, `FleetCheckFailed`, `FleetUnanswered`,
    /// `SmokeChecking`, `SmokeChecksPassed`, `SmokeCheckFailed`, `StepStarted`, `WeightSet`,
    /// `HeaderRouteSet`, `HeaderRouteRemoved`, `PauseEnded`, `Pausing`, `PausedAtStep`, `Paused`,
    /// `Analyzing`, `AnalysisPassed`, `AnalysisFailed`, `MaxRateExceeded`, `AnalysisInconclusive`,
    /// `JudgeStateReset`,
    /// `StepsCompleted`, `PromotionCommitted`, `PromotionStalled`, `PromotionNotVerified`,
    /// `Promoted`, `RolledBack`, `DeploymentRecorded`, `DeploymentRecordFailed`, `Adopting`,
    /// `AdoptionCompleted`, `ScaleDownDelayEnded`, `VersionIdentity`, `RollbackNotReady`,
    /// `UndeploymentRecorded`, `UndeploymentRecordFailed`, `InvalidSpec`, `NotificationDropped`.
    /// A newer operator may write others; they are kept as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// One human-readable sentence on where the rollout stands and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Why the rollout waits for a person (a pause step without duration, inconclusive
    /// analysis at its deadline); cleared when it moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,

    /// The contract gate's evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_gate: Option<ContractGateStatus>,

    /// The latest fleet check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,

    /// The latest smoke checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeStatus>,

    /// Analysis of the current step (or the last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,

    /// Deployment records sent to the broker after a promotion or rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_record: Option<DeploymentRecordStatus>,

    /// The version that was blocked or rolled back; it is not tried again until
    /// `spec.retryRequest` changes or `spec.version` moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_version: Option<String>,

    /// Manual-control tokens already acted on, so each acts exactly once.
    #[serde(default)]
    pub handled_requests: HandledRequests,

    /// Pods of the Rollout (every track), as the `/scale` subresource reports them to
    /// `kubectl scale` and an HorizontalPodAutoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Label selector of the Rollout's pods (every track) as a string, the `/scale`
    /// subresource's `labelSelectorPath`: the pods an HorizontalPodAutoscaler measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The Deployment adopted through `spec.workloadRef`: its size before the Rollout touched
    /// it (restored when the Rollout is deleted) and whether the adoption is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionStatus>,

    /// The previous stable version kept at full size after a promotion, for an instant
    /// rollback (`spec.strategy.scaleDownDelay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindowStatus>,

    /// Whether `spec.version` and the template's images identify one build: the commit found
    /// in the version, and the warnings (no commit, an image by mutable tag). Written when the
    /// version or template changes; each new set of warnings is also a `VersionIdentity` Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_identity: Option<VersionIdentityStatus>,

    /// The policy (`spec.policyRef`) this attempt runs on, fixed when its canary starts: a
    /// policy edited or deleted mid-analysis changes nothing until the next version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<super::PolicySnapshot>,

    /// The most recent decisions, newest last (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<Decision>,

    /// Notifications written with their transition and not yet acknowledged by their
    /// destination (the outbox; see `docs/notifications.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<super::NotificationsStatus>,
}

/// The stages of a Rollout.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Phase {
    /// Accepted, not started.
    #[default]
    Pending,
    /// Asking the Pact Broker.
    ContractGate,
    /// Starting canary (and baseline) pods.
    CanaryStarting,
    /// Checking what every pod runs.
    FleetCheck,
    /// Sending smoke requests.
    SmokeCheck,
    /// Shifting traffic step by step under analysis.
    Analyzing,
    /// Making the canary version stable.
    Promoting,
    /// The new version is stable.
    Succeeded,
    /// Returning traffic to stable.
    RollingBack,
    /// The canary was removed; stable serves everything.
    RolledBack,
    /// A gate said no (or could not answer); nothing was started or changed.
    Blocked,
}

impl Phase {
    /// Phases a rollout stays in until its spec changes or a person acts.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::RolledBack | Phase::Blocked)
    }
}

/// What the broker said.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContractGateStatus {
    /// The gate's verdict.
    pub verdict: GateVerdict,
    /// The broker's `deployable` answer: true, false, or absent for unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployable: Option<bool>,
    /// The broker's reason, or why it could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Verifications that succeeded, failed, or are unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ContractSummary>,
    /// When the broker was last asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// When the broker first answered "unknown" in the current wait (for the budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_since: Option<Timestamp>,
    /// Attempts made in the current wait.
    #[serde(default)]
    pub attempts: i32,
    /// The answer was only reported (dry run); it did not block.
    #[serde(default)]
    pub dry_run: bool,
}

/// Verdict of one gate.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GateVerdict {
    /// Not asked yet or still waiting.
    #[default]
    Pending,
    /// The gate passed.
    Passed,
    /// The gate blocked the rollout.
    Blocked,
}

/// Counts from the broker's can-i-deploy summary.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContractSummary {
    /// Verified, compatible integrations.
    pub success: i64,
    /// Failed verifications.
    pub failed: i64,
    /// Integrations with no verification result.
    pub unknown: i64,
}

/// Result of the latest fleet check.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// The check's verdict.
    pub verdict: GateVerdict,
    /// When the pods were asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// Pods asked.
    pub pods_checked: i32,
    /// Pods that reported what they should.
    pub pods_matching: i32,
    /// Pods that did not (all of them counted, even past the list's cap).
    pub pods_failing: i32,
    /// Pods that were not ready and so were not asked.
    #[serde(default)]
    pub pods_not_ready: i32,
    /// The failing pods, sorted by name, at most 20.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub failing_pods: Vec<PodFinding>,
    /// Config hash the canary pods reported, when they agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_config_hash: Option<String>,
    /// Config hash the stable pods reported, when they agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_config_hash: Option<String>,
}

/// One pod that failed a check, with what it said and what was expected.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodFinding {
    /// Pod name.
    pub pod: String,
    /// Track of the pod: stable, canary or baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    /// Pod IP asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Machine-readable problem, e.g. `VersionMismatch`, `ConfigHashMismatch`, `Timeout`.
    pub problem: String,
    /// What the pod reported (or the error), control characters escaped, at most 256
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    /// What was expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// Result of the smoke checks.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SmokeStatus {
    /// The checks' verdict.
    pub verdict: GateVerdict,
    /// When they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// Requests sent.
    pub requests_sent: i32,
    /// Requests that failed (all counted).
    pub requests_failed: i32,
    /// The failures, at most 20: `problem` names the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub failures: Vec<PodFinding>,
}

/// State of the canary analysis.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// Overall verdict so far.
    pub verdict: MetricVerdict,
    /// When the analysis (of the whole rollout) began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// End of the last window the judge looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_look_at: Option<Timestamp>,
    /// Looks taken.
    #[serde(default)]
    pub looks: i32,
    /// Looks that were inconclusive because the metrics backend failed or had no data.
    #[serde(default)]
    pub failed_looks: i32,
    /// Per-metric evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<MetricStatus>,
    /// The judge's running state (sums and e-values), so a restarted operator continues the
    /// same sequential test instead of starting over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::opaque_json")]
    pub judge_state: Option<serde_json::Value>,
    /// The look-by-look record (at most the last 240 looks), for plots and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<super::AnalysisSeries>,
}

/// Evidence for one metric.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// Metric name, e.g. `error-rate` or `latency-p99`.
    pub name: String,
    /// The verdict.
    pub verdict: MetricVerdict,
    /// The test used, e.g. `mSPRT Poisson rate ratio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Point estimate (e.g. canary/baseline rate ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// Lower confidence bound of the estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Upper confidence bound of the estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Evidence against "the canary is healthy" (reject at 1/alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_value: Option<f64>,
    /// Samples (requests) seen in the canary.
    #[serde(default)]
    pub canary_samples: i64,
    /// Samples (requests) seen in the baseline.
    #[serde(default)]
    pub baseline_samples: i64,
    /// Why, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// While the metric is undecided: about how many more canary requests a pass rule needs if
    /// the rates seen so far continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_canary_requests: Option<i64>,
    /// While the metric is undecided: whether it can pass before `spec.analysis.maxDuration`
    /// at the canary traffic seen so far, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlook: Option<String>,
    /// The metric failed on its absolute guard: the canary's own rate was shown above the
    /// metric's `maxRate`, whatever the baseline's (the rollback's reason is then
    /// `MaxRateExceeded`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub max_rate_exceeded: bool,
}

/// Verdict of one metric or of the whole analysis.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MetricVerdict {
    /// Evidence is still being gathered.
    #[default]
    Running,
    /// Proven healthy within tolerance.
    Pass,
    /// Proven worse than tolerated.
    Fail,
    /// Not enough (or no) evidence either way.
    Inconclusive,
}

/// What the version-identity rules found for `spec.version` and the template's images.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VersionIdentityStatus {
    /// The version looked at.
    pub version: String,
    /// The commit the version carries (its run of 7 to 40 hexadecimal characters), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What does not identify one build (empty: nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub warnings: Vec<String>,
}

/// Deployment records sent to the broker.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecordStatus {
    /// The version to be (or that was) recorded as deployed.
    pub version: String,
    /// Environment recorded in.
    pub environment: String,
    /// Recorded successfully.
    pub recorded: bool,
    /// When it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Timestamp>,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: i32,
    /// When the last attempt was made (retries back off from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    /// The last failure, if any (a failure never undoes a promotion or rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Tokens from `spec.promoteRequest`, `spec.abortRequest` and `spec.retryRequest` already
/// acted on.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HandledRequests {
    /// Last promote token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    /// Last abort token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<String>,
    /// Last resume token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Last retry token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
}

/// The adoption of the Deployment named by `spec.workloadRef`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdoptionStatus {
    /// Name of the adopted Deployment.
    pub deployment: String,
    /// Its `spec.replicas` when the Rollout first saw it: what it is scaled back to when the
    /// Rollout is deleted, and the fewest ready pods the adoption may leave.
    pub original_replicas: i32,
    /// When the Rollout's stable pods were first ready and attested: from then on the adopted
    /// Deployment is no longer needed (`scaleDown` says whether it is scaled to zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
}

/// The previous stable version held after a promotion.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowStatus {
    /// The version that was stable before the promotion; its pods run in the baseline workload,
    /// out of traffic.
    pub previous_version: String,
    /// Until when `abortRequest` rolls back instantly (set once the promotion is verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// An instant rollback to `previousVersion` is under way: those pods serve every request
    /// while the stable workload returns to that version.
    #[serde(default)]
    pub rolling_back: bool,
}

/// One decision in the bounded history.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// When it was made.
    pub at: Timestamp,
    /// Phase entered.
    pub phase: Phase,
    /// Machine-readable reason (as in `status.reason`).
    pub reason: String,
    /// What happened and why.
    pub message: String,
}

impl Decision {
    /// A decision with a known reason.
    pub fn new(at: Timestamp, phase: Phase, reason: Reason, message: String) -> Decision {
        Decision {
            at,
            phase,
            reason: reason.as_str().to_string(),
            message,
        }
    }

    /// The reason, when this operator knows it.
    pub fn reason(&self) -> Option<Reason> {
        self.reason.parse().ok()
    }
}

impl RolloutStatus {
    /// The reason of the last decision, when this operator knows it.
    pub fn reason(&self) -> Option<Reason> {
        self.reason.as_deref()?.parse().ok()
    }

    /// Set the reason and message of the last decision.
    pub fn set_reason(&mut self, reason: Reason, message: String) {
        self.reason = Some(reason.as_str().to_string());
        self.message = Some(message);
    }

    /// Append a decision, dropping the oldest beyond [`MAX_HISTORY`].
    pub fn record(&mut self, decision: Decision) {
        self.history.push(decision);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }
}
