//! The vocabulary of `decide`: what the operator observed ([`Observations`]), what it must
//! observe next ([`Needs`]), and what it decided ([`Plan`]: status, children, Events, requeue).
//! Types and constants only; the decisions are in the sibling modules.

use std::time::Duration;

use jiff::Timestamp;

use crate::gates::broker::{AnswerCounts, AnswerKind, ClassifiedAnswer};
pub use crate::gates::fleet::FleetVerdict;

use crate::crd::{
    ContractSummary, FleetStatus, MetricStatus, MetricVerdict, Phase, Reason, RolloutStatus,
    SetHeaderRouteStep, SmokeStatus,
};

/// How often to look again while waiting for pods to become ready or go away (the watches on
/// the children usually wake the controller sooner).
pub const POD_WAIT_REQUEUE: Duration = Duration::from_secs(5);
/// First retry delay of a failed deployment record; doubles per attempt up to the maximum.
pub const RECORD_RETRY_BASE: Duration = Duration::from_secs(10);
/// Longest delay between deployment-record retries.
pub const RECORD_RETRY_MAX: Duration = Duration::from_secs(300);

/// What the operator saw of one child workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadState {
    /// Version the workload's pod template carries (None when the workload does not exist).
    pub version: Option<String>,
    /// Replicas the workload asks for, as last applied.
    pub desired: i32,
    /// Ready pods running the current template.
    pub ready: i32,
    /// All pods of the workload, ready or not, current template or not.
    pub total: i32,
}

impl WorkloadState {
    /// The workload runs `version` with exactly `replicas` ready pods and nothing else.
    pub fn settled_at(&self, version: &str, replicas: i32) -> bool {
        if replicas == 0 {
            return self.total == 0 && self.desired == 0;
        }
        self.version.as_deref() == Some(version)
            && self.desired == replicas
            && self.ready == replicas
            && self.total == replicas
    }

    /// The workload has no pods left.
    pub fn is_gone(&self) -> bool {
        self.total == 0
    }
}

/// The children as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChildrenState {
    /// The stable workload.
    pub stable: WorkloadState,
    /// The canary workload.
    pub canary: WorkloadState,
    /// The dedicated baseline workload (absent: all zero).
    pub baseline: WorkloadState,
}

/// The Deployment named by `spec.workloadRef`, as observed (see `adoption`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginalWorkload {
    /// Its name.
    pub name: String,
    /// Its `spec.replicas` (1 when unset, as the Deployment controller reads it).
    pub replicas: i32,
    /// Its ready pods.
    pub ready: i32,
    /// The Rollout that marked it as adopted (`tollgate.dev/adopted-by`), if any.
    pub adopted_by: Option<String>,
    /// It is a workload tollgate owns (managed-by label or a Rollout owner reference).
    pub owned_by_tollgate: bool,
}

/// The contract gate's answer in this pass, already classified by the broker client.
#[derive(Clone, Debug, PartialEq)]
pub enum ContractAnswer {
    /// `deployable: true`.
    Deployable {
        reason: String,
        summary: Option<ContractSummary>,
    },
    /// `deployable: false`.
    NotDeployable {
        reason: String,
        summary: Option<ContractSummary>,
    },
    /// `deployable: null`: verification results are missing.
    Unknown {
        reason: String,
        summary: Option<ContractSummary>,
    },
    /// The broker could not be asked (connection, timeout, 5xx, unparseable) after the
    /// client's own retries. Treated like "unknown": the rollout waits within the budget, then
    /// blocks. Never a pass.
    Unreachable { reason: String },
    /// The broker refused the question in a way that will not fix itself (401, 403, 404, 400:
    /// wrong credentials, pacticipant or environment). Blocks at once.
    Refused { reason: String },
}

impl ContractAnswer {
    /// The broker's (or the peer's) reason.
    pub fn reason(&self) -> &str {
        match self {
            ContractAnswer::Deployable { reason, .. }
            | ContractAnswer::NotDeployable { reason, .. }
            | ContractAnswer::Unknown { reason, .. }
            | ContractAnswer::Unreachable { reason }
            | ContractAnswer::Refused { reason } => reason,
        }
    }

    /// The answer as the contract gate's step takes it.
    pub fn classified(&self) -> ClassifiedAnswer {
        let (kind, summary) = match self {
            ContractAnswer::Deployable { summary, .. } => (AnswerKind::Deployable, summary),
            ContractAnswer::NotDeployable { summary, .. } => (AnswerKind::NotDeployable, summary),
            ContractAnswer::Unknown { summary, .. } => (AnswerKind::Unknown, summary),
            ContractAnswer::Unreachable { .. } => (AnswerKind::Unreachable, &None),
            ContractAnswer::Refused { .. } => (AnswerKind::Refused, &None),
        };
        ClassifiedAnswer {
            kind,
            reason: self.reason().to_string(),
            counts: summary.as_ref().map(|s| AnswerCounts {
                success: u64::try_from(s.success).unwrap_or(0),
                failed: u64::try_from(s.failed).unwrap_or(0),
                unknown: u64::try_from(s.unknown).unwrap_or(0),
                ignored: 0,
            }),
            error: None,
        }
    }
}

/// One look of the judge.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisLook {
    /// End of the window looked at (becomes `status.analysis.lastLookAt`).
    pub window_end: Timestamp,
    /// Overall verdict after this look: `Fail` only when a critical metric is proven worse
    /// than tolerated; `Pass` only when every metric has evidence of health.
    pub verdict: MetricVerdict,
    /// Per-metric evidence.
    pub metrics: Vec<MetricStatus>,
    /// The judge's state after this look.
    pub judge_state: Option<serde_json::Value>,
    /// The metrics backend failed or had no data for this window (the look adds no evidence).
    pub data_missing: bool,
    /// One sentence for the status message.
    pub summary: String,
    /// Why the judge's saved state (`status.analysis.judgeState`) could not be read, when it
    /// could not: the sequential test then started over from this look, and the status and a
    /// Warning Event say so.
    pub judge_state_reset: Option<String>,
    /// What this look adds to `status.analysis.series` (`None` for a look without data).
    pub series: Option<crate::crd::SeriesPoint>,
}

impl AnalysisLook {
    /// A look at `window` that adds no evidence (inconclusive, `data_missing`), saying why.
    pub fn without_data(window: &LookWindow, summary: String) -> AnalysisLook {
        AnalysisLook {
            window_end: window.end,
            verdict: MetricVerdict::Inconclusive,
            metrics: Vec::new(),
            judge_state: None,
            data_missing: true,
            summary,
            judge_state_reset: None,
            series: None,
        }
    }
}

/// The outcome of a deployment record attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// The broker now lists the version as deployed.
    Recorded,
    /// The attempt failed; it will be retried with backoff.
    Failed { reason: String },
}

/// Everything observed in one pass. Fields left `None` were not gathered (see [`needs`](super::needs)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    /// `metadata.generation` of the Rollout.
    pub generation: Option<i64>,
    /// The child workloads.
    pub children: ChildrenState,
    /// The Deployment `spec.workloadRef` names, when there is one.
    pub original: Option<OriginalWorkload>,
    /// Label selector (as a string) of every pod of the Rollout, for `status.selector`.
    pub selector: Option<String>,
    /// The broker's answer, when asked.
    pub contract: Option<ContractAnswer>,
    /// The fleet check's result, when run.
    pub fleet: Option<FleetObservation>,
    /// The smoke checks' result, when run.
    pub smoke: Option<SmokeStatus>,
    /// The judge's look, when taken.
    pub look: Option<AnalysisLook>,
    /// The deployment record attempt, when made.
    pub record: Option<RecordOutcome>,
    /// A problem with the Rollout as written that waiting cannot fix, found while observing
    /// (no broker or Prometheus address, an invalid setting, an unbuildable template, an invalid
    /// judge policy): the rollout holds where it is, `Stalled`, until the Rollout changes.
    pub spec_problem: Option<SpecProblem>,
}

/// A problem with the Rollout as written (see [`Observations::spec_problem`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecProblem {
    /// What is wrong, naming the field.
    pub message: String,
}

impl SpecProblem {
    /// A problem saying `message`.
    pub fn new(message: impl Into<String>) -> SpecProblem {
        SpecProblem {
            message: message.into(),
        }
    }
}

/// One fleet check: the result in status shape and the fleet gate's verdict on it.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetObservation {
    /// What goes into `status.fleet` (verdict `Passed` or `Blocked`).
    pub status: FleetStatus,
    /// Passed, failed, or held on pods that did not answer (`gates::fleet` decides which).
    pub verdict: FleetVerdict,
}

/// Which tracks the fleet check must attest, at which versions (mapped onto
/// `gates::fleet::FleetExpectation` by observe).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetScope {
    /// Version every canary (and no other) pod must report; None: do not attest canary pods.
    pub canary_version: Option<String>,
    /// Version every stable and baseline pod must report; None: do not attest them.
    pub stable_version: Option<String>,
    /// The adopted Deployment's pods are stable pods too (attested with them).
    pub original: bool,
}

/// A look window for the judge.
#[derive(Clone, Debug, PartialEq)]
pub struct LookWindow {
    /// Start of the window (end of the previous look).
    pub start: Timestamp,
    /// End of the window.
    pub end: Timestamp,
}

/// The observations this pass must gather.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Needs {
    /// Ask the broker's can-i-deploy.
    pub ask_broker: bool,
    /// Attest these pods.
    pub fleet: Option<FleetScope>,
    /// Send the smoke requests to canary pods.
    pub smoke: bool,
    /// Take an analysis look over this window.
    pub look: Option<LookWindow>,
    /// Record this version as deployed in the broker.
    pub record: Option<String>,
}

/// One child workload wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSpec {
    /// Version its pods run.
    pub version: String,
    /// Replicas.
    pub replicas: i32,
}

/// The children and traffic wanted; derived from spec and status alone, applied every pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredChildren {
    /// The stable workload (None before any version was ever made stable).
    pub stable: Option<ChildSpec>,
    /// The canary workload (None: scaled to zero).
    pub canary: Option<ChildSpec>,
    /// The dedicated baseline (None: scaled to zero).
    pub baseline: Option<ChildSpec>,
    /// Percent of traffic for the canary (HTTPRoute weights; informational for replica ratio).
    pub canary_weight: i32,
    /// Whether canary (and baseline) pods may receive traffic at all.
    pub canary_serving: bool,
    /// An instant rollback: the baseline workload's pods (the previous stable version, held
    /// after the promotion) receive every request, and no other pod does.
    pub held_serving: bool,
    /// Header routes to the canary in force (`setHeaderRoute` steps; only while analyzing).
    pub header_routes: Vec<SetHeaderRouteStep>,
}

/// Kind of Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Normal progress.
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

/// An Event to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub kind: EventKind,
    /// Machine-readable reason.
    pub reason: Reason,
    /// What happened.
    pub message: String,
}

/// The result of one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write.
    pub status: RolloutStatus,
    /// The children and traffic to converge to.
    pub children: DesiredChildren,
    /// Events to emit, in order.
    pub events: Vec<PlannedEvent>,
    /// When to decide again if nothing wakes the controller sooner (None: only on change).
    pub requeue_after: Option<Duration>,
    /// Replicas for the Deployment adopted through `spec.workloadRef` (None: leave it alone).
    pub original_replicas: Option<i32>,
    /// The adopted Deployment's pods count as the stable track (the stable Service selects
    /// them too).
    pub original_is_stable: bool,
    /// The notification this decision makes: set when it entered `Succeeded`, `RolledBack` or
    /// `Blocked`, once per entry (a status written again does not notify), or else when it
    /// started a step or began a pause (see `step_events`).
    pub notify: Option<NotificationEvent>,
}

/// A transition people are told about through the webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NotificationEvent {
    /// Entered `Succeeded`: the version is stable.
    Promoted,
    /// Entered `RolledBack`: the canary is gone, stable serves everything.
    RolledBack,
    /// Entered `Blocked`: a gate said no before any traffic moved.
    Blocked,
    /// Entered `Analyzing` or moved to another of its steps.
    StepStarted,
    /// Began to wait for a person (a pause step without duration, `spec.paused`).
    Paused,
}

impl NotificationEvent {
    /// Every event, in declaration order.
    pub const ALL: &'static [NotificationEvent] = &[
        NotificationEvent::Promoted,
        NotificationEvent::RolledBack,
        NotificationEvent::Blocked,
        NotificationEvent::StepStarted,
        NotificationEvent::Paused,
    ];

    /// The event entering `phase` is notified as, if any.
    pub fn for_phase(phase: Phase) -> Option<Self> {
        match phase {
            Phase::Succeeded => Some(NotificationEvent::Promoted),
            Phase::RolledBack => Some(NotificationEvent::RolledBack),
            Phase::Blocked => Some(NotificationEvent::Blocked),
            _ => None,
        }
    }

    /// The name used in payloads and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::Promoted => "Promoted",
            NotificationEvent::RolledBack => "RolledBack",
            NotificationEvent::Blocked => "Blocked",
            NotificationEvent::StepStarted => "StepStarted",
            NotificationEvent::Paused => "Paused",
        }
    }
}
