//! Where every decision about a Rollout is made.
//!
//! [`decide`] is pure: it takes the spec, the status as last written, what the operator observed
//! in this pass, and the time, and returns a [`Plan`]: the next status, the child workloads and
//! traffic wanted, the Events to emit and when to look again. It reads no clock and does no I/O,
//! so a restarted operator that reads the same status makes the same decision, and the tables in
//! the tests cover it exhaustively.
//!
//! [`needs`] is its companion: from the same inputs it says which observations this pass must
//! gather (ask the broker, attest the fleet, take an analysis look, record a deployment), so a
//! gate is only consulted when its answer can change something.
//!
//! The pipeline (see `../shared/ARCHITECTURE.md`):
//!
//! ```text
//! Pending → ContractGate → CanaryStarting → FleetCheck → SmokeCheck → Analyzing(step i)
//!         → Promoting → Succeeded            (any gate "no" before traffic → Blocked)
//!                     ↘ RollingBack → RolledBack   (regression, deadline, abort)
//! ```
//!
//! Rules worth knowing:
//! - Canary pods are verified (fleet, smoke) before they serve any traffic: until then the
//!   plan keeps them out of the Service (`canary_serving = false`) and the weight at 0.
//! - The commit point of a promotion is `status.stableVersion = spec.version`. Before it,
//!   anything can still roll back; after it, the operator only converges to the new stable and
//!   verifies it, so a crash never repeats or half-does a promotion.
//! - A new `spec.version` while a rollout is in flight supersedes it: the old canary is removed
//!   (traffic back to stable), its evidence is dropped, and the pipeline starts over for the new
//!   version from the contract gate. Other spec edits apply from the next decision on.
//! - A version that was blocked or rolled back is not tried again until `spec.retryRequest`
//!   changes or `spec.version` moves on.
//! - Analysis that cannot see data (metrics backend down, no traffic) is inconclusive: it never
//!   rolls back and never promotes; at a step's end or `maxDuration` the `onInconclusive`
//!   policy applies (hold for a person by default).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    AnalysisStatus, ContractGateStatus, ContractSummary, Decision, DeploymentRecordStatus,
    FleetStatus, GateVerdict, InconclusivePolicy, MetricStatus, MetricVerdict, Phase, RolloutSpec,
    RolloutStatus, SmokeStatus, Step, CONDITION_PROGRESSING, CONDITION_READY,
    CONDITION_RECONCILING, CONDITION_STALLED,
};
use crate::traffic::{self, TrafficRequest};

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
}

/// The outcome of a deployment record attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// The broker now lists the version as deployed.
    Recorded,
    /// The attempt failed; it will be retried with backoff.
    Failed { reason: String },
}

/// Everything observed in one pass. Fields left `None` were not gathered (see [`needs`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations {
    /// `metadata.generation` of the Rollout.
    pub generation: Option<i64>,
    /// The child workloads.
    pub children: ChildrenState,
    /// The broker's answer, when asked.
    pub contract: Option<ContractAnswer>,
    /// The fleet check's result, when run (verdict `Passed` or `Blocked`).
    pub fleet: Option<FleetStatus>,
    /// The smoke checks' result, when run.
    pub smoke: Option<SmokeStatus>,
    /// The judge's look, when taken.
    pub look: Option<AnalysisLook>,
    /// The deployment record attempt, when made.
    pub record: Option<RecordOutcome>,
}

/// Which tracks the fleet check must attest, at which versions (mapped onto
/// `gates::fleet::FleetExpectation` by observe).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetScope {
    /// Version every canary (and no other) pod must report; None: do not attest canary pods.
    pub canary_version: Option<String>,
    /// Version every stable and baseline pod must report; None: do not attest them.
    pub stable_version: Option<String>,
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
    /// Machine-readable reason (CamelCase).
    pub reason: String,
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
}

// ---------------------------------------------------------------------------------------------
// Small pure helpers.

fn std_duration(d: &kube::core::Duration) -> Duration {
    (*d).into()
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    let signed = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(signed).unwrap_or(Timestamp::MAX)
}

/// Time from `since` to `now`, zero when `since` is missing or in the future.
fn elapsed(since: Option<Timestamp>, now: Timestamp) -> Duration {
    since
        .and_then(|s| Duration::try_from(now.duration_since(s)).ok())
        .unwrap_or(Duration::ZERO)
}

/// Time from `now` until `at`, zero when already past.
fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A token that has not been acted on yet.
fn fresh(token: &Option<String>, handled: &Option<String>) -> bool {
    token.is_some() && token != handled
}

/// Weight of the first `setWeight` step (the canary is started sized for it).
fn first_weight(steps: &[Step]) -> i32 {
    steps.iter().find_map(|s| s.set_weight).unwrap_or(0)
}

fn retry_delay(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 16) as u32 - 1;
    RECORD_RETRY_BASE
        .saturating_mul(1u32 << exp)
        .min(RECORD_RETRY_MAX)
}

// ---------------------------------------------------------------------------------------------
// Desired children.

/// The children and traffic the spec and status call for.
pub fn desired_children(spec: &RolloutSpec, status: &RolloutStatus) -> DesiredChildren {
    let replicas = spec.replicas.max(1);
    let stable_version = status.stable_version.clone();
    let canary_version = status
        .canary_version
        .clone()
        .unwrap_or_else(|| spec.version.clone());
    let dedicated = spec.analysis.as_ref().is_some_and(|a| a.dedicated_baseline);

    let only_stable = |stable: Option<String>| DesiredChildren {
        stable: stable.map(|version| ChildSpec { version, replicas }),
        canary: None,
        baseline: None,
        canary_weight: 0,
        canary_serving: false,
    };

    let with_canary = |weight: i32, serving: bool| {
        let split = traffic::plan(
            &spec.traffic,
            &TrafficRequest {
                replicas,
                canary_weight: weight,
                canary_serving: serving,
                first_weight: first_weight(&spec.steps),
                baseline: dedicated && stable_version.is_some(),
            },
        );
        DesiredChildren {
            stable: stable_version.clone().map(|version| ChildSpec {
                version,
                replicas: split.stable_replicas,
            }),
            canary: Some(ChildSpec {
                version: canary_version.clone(),
                replicas: split.canary_replicas,
            }),
            baseline: (split.baseline_replicas > 0).then(|| ChildSpec {
                version: stable_version.clone().unwrap_or_default(),
                replicas: split.baseline_replicas,
            }),
            canary_weight: split.canary_weight,
            canary_serving: split.canary_serving,
        }
    };

    match status.phase {
        Phase::Pending
        | Phase::ContractGate
        | Phase::Succeeded
        | Phase::RollingBack
        | Phase::RolledBack
        | Phase::Blocked => only_stable(stable_version.clone()),
        Phase::CanaryStarting | Phase::FleetCheck | Phase::SmokeCheck => with_canary(0, false),
        Phase::Analyzing => with_canary(status.current_weight, true),
        Phase::Promoting => {
            if stable_version.as_deref() == Some(spec.version.as_str()) {
                // Committed: the stable workload rolls to the new version at full size while
                // the canary keeps serving until stable is ready.
                let canary_serving = status.current_weight > 0;
                let mut plan = with_canary(status.current_weight, canary_serving);
                plan.stable = Some(ChildSpec {
                    version: spec.version.clone(),
                    replicas,
                });
                plan.baseline = None;
                if !canary_serving {
                    // First deployment: there never was a canary.
                    plan.canary = None;
                }
                plan
            } else {
                with_canary(status.current_weight, status.current_weight > 0)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Needs.

/// Which observations this pass must gather.
pub fn needs(
    spec: &RolloutSpec,
    status: Option<&RolloutStatus>,
    children: &ChildrenState,
    now: Timestamp,
) -> Needs {
    let default = RolloutStatus::default();
    let status = status.unwrap_or(&default);
    let mut needs = Needs::default();
    let desired = desired_children(spec, status);
    let superseded = status
        .canary_version
        .as_deref()
        .is_some_and(|v| v != spec.version)
        && !status.phase.is_terminal();

    if let Some(record) = &status.deployment_record {
        let due = status
            .deployment_record
            .as_ref()
            .and_then(|r| r.last_attempt_at)
            .is_none_or(|at| add(at, retry_delay(record.attempts)) <= now);
        if !record.recorded && due {
            needs.record = Some(record.version.clone());
        }
    }
    if superseded {
        return needs;
    }

    match status.phase {
        Phase::ContractGate => {
            if let Some(gate) = &spec.contract_gate {
                let last = status.contract_gate.as_ref().and_then(|g| g.checked_at);
                needs.ask_broker =
                    last.is_none_or(|at| add(at, std_duration(&gate.poll_interval)) <= now);
            }
        }
        Phase::FleetCheck if children_settled(&desired, children) => {
            needs.fleet = Some(FleetScope {
                canary_version: Some(spec.version.clone()),
                stable_version: status.stable_version.clone(),
            });
        }
        Phase::SmokeCheck => needs.smoke = true,
        Phase::Analyzing => {
            if let Some(analysis) = &spec.analysis {
                let a = status.analysis.as_ref();
                let start = a.and_then(|a| a.last_look_at.or(a.started_at));
                if let Some(start) = start {
                    let due = add(start, std_duration(&analysis.interval));
                    if due <= now {
                        needs.look = Some(LookWindow { start, end: now });
                    }
                }
            }
        }
        Phase::Promoting => {
            let committed = status.stable_version.as_deref() == Some(spec.version.as_str());
            if !committed {
                needs.fleet = Some(FleetScope {
                    canary_version: Some(spec.version.clone()),
                    stable_version: status.stable_version.clone(),
                });
            } else if children
                .stable
                .settled_at(&spec.version, spec.replicas.max(1))
                && spec.fleet_check.enabled
            {
                needs.fleet = Some(FleetScope {
                    canary_version: None,
                    stable_version: Some(spec.version.clone()),
                });
            }
            if !spec.fleet_check.enabled {
                needs.fleet = None;
            }
        }
        _ => {}
    }
    if !spec.fleet_check.enabled && status.phase == Phase::FleetCheck {
        needs.fleet = None;
    }
    if !fleet_check_due(status, now) {
        needs.fleet = None;
    }
    needs
}

/// A fleet check is due: none yet in this phase, or the last one is older than
/// [`POD_WAIT_REQUEUE`]. Every check writes its time into status, which wakes the controller
/// again; without this bound a failing check would repeat as fast as the API server answers.
fn fleet_check_due(status: &RolloutStatus, now: Timestamp) -> bool {
    let Some(last) = status.fleet.as_ref().and_then(|f| f.checked_at) else {
        return true;
    };
    let this_phase = status.phase_started_at.is_some_and(|p| p > last);
    this_phase || add(last, POD_WAIT_REQUEUE) <= now
}

/// Every wanted child runs its version with exactly its replicas ready.
fn children_settled(desired: &DesiredChildren, children: &ChildrenState) -> bool {
    let check = |want: &Option<ChildSpec>, got: &WorkloadState| match want {
        Some(c) => got.settled_at(&c.version, c.replicas),
        None => got.is_gone(),
    };
    check(&desired.canary, &children.canary)
        && check(&desired.baseline, &children.baseline)
        && desired
            .stable
            .as_ref()
            .is_none_or(|s| children.stable.settled_at(&s.version, s.replicas))
}

// ---------------------------------------------------------------------------------------------
// Decide.

struct Pass<'a> {
    spec: &'a RolloutSpec,
    obs: &'a Observations,
    now: Timestamp,
    status: RolloutStatus,
    events: Vec<PlannedEvent>,
    /// Earliest time something is due (becomes `requeue_after`).
    wake: Option<Timestamp>,
}

impl Pass<'_> {
    fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn wake_in(&mut self, d: Duration) {
        self.wake_at(add(self.now, d));
    }

    fn event(&mut self, kind: EventKind, reason: &str, message: String) {
        self.events.push(PlannedEvent {
            kind,
            reason: reason.to_string(),
            message,
        });
    }

    /// Move to `phase`, record why, and emit one Event.
    fn enter(&mut self, phase: Phase, reason: &str, message: String) {
        let kind = match phase {
            Phase::Blocked | Phase::RollingBack | Phase::RolledBack => EventKind::Warning,
            _ => EventKind::Normal,
        };
        self.status.phase = phase;
        self.status.phase_started_at = Some(self.now);
        self.status.hold_reason = None;
        self.say(reason, message.clone());
        self.status.record(Decision {
            at: self.now,
            phase,
            reason: reason.to_string(),
            message: message.clone(),
        });
        self.event(kind, reason, message);
    }

    /// Update the reason and message without a transition.
    fn say(&mut self, reason: &str, message: String) {
        self.status.reason = Some(reason.to_string());
        self.status.message = Some(message);
    }

    fn phase_elapsed(&self) -> Duration {
        elapsed(self.status.phase_started_at, self.now)
    }

    fn deadline_passed(&self) -> bool {
        self.phase_elapsed() > std_duration(&self.spec.progress_deadline)
    }

    /// Start the pipeline for `spec.version` from scratch.
    fn start(&mut self, reason: &str, message: String) {
        let s = &mut self.status;
        s.canary_version = Some(self.spec.version.clone());
        s.current_step_index = None;
        s.current_weight = 0;
        s.step_started_at = None;
        s.contract_gate = None;
        s.fleet = None;
        s.smoke = None;
        s.analysis = None;
        s.rejected_version = None;
        if self.spec.contract_gate.is_some() {
            self.enter(Phase::ContractGate, reason, message);
            self.wake_in(Duration::ZERO);
        } else {
            // No contract gate: the start is recorded as an Event, the next phase as the decision.
            self.event(EventKind::Normal, reason, message);
            self.after_contract_gate();
        }
    }

    /// The contract gate passed (or there is none): start the canary, or on a first deployment
    /// make the version stable directly (there is nothing to compare it with).
    fn after_contract_gate(&mut self) {
        if self.status.stable_version.is_none() {
            self.status.stable_version = Some(self.spec.version.clone());
            self.enter(
                Phase::Promoting,
                "InitialDeployment",
                format!(
                    "no stable version yet: deploying {} as the first stable version",
                    self.spec.version
                ),
            );
        } else {
            self.enter(
                Phase::CanaryStarting,
                "CanaryStarting",
                format!(
                    "starting canary pods of {} beside stable {}",
                    self.spec.version,
                    self.status.stable_version.clone().unwrap_or_default()
                ),
            );
        }
        self.wake_in(Duration::ZERO);
    }

    /// Take the canary out of traffic and scale it down.
    fn roll_back(&mut self, reason: &str, message: String) {
        self.status.current_weight = 0;
        self.status.rejected_version = Some(self.spec.version.clone());
        self.enter(Phase::RollingBack, reason, message);
        self.wake_in(Duration::ZERO);
    }

    /// A gate said no before any traffic moved.
    fn block(&mut self, reason: &str, message: String) {
        self.status.current_weight = 0;
        self.status.rejected_version = Some(self.spec.version.clone());
        // Nothing is under test any more; `rejectedVersion` names what was blocked.
        self.status.canary_version = None;
        self.status.current_step_index = None;
        self.enter(Phase::Blocked, reason, message);
    }

    fn requeue_after(&self) -> Option<Duration> {
        self.wake.map(|w| until(w, self.now))
    }
}

/// Decide what happens next. Pure: see the module documentation.
pub fn decide(
    spec: &RolloutSpec,
    current: Option<&RolloutStatus>,
    obs: &Observations,
    now: Timestamp,
) -> Plan {
    let mut pass = Pass {
        spec,
        obs,
        now,
        status: current.cloned().unwrap_or_default(),
        events: Vec::new(),
        wake: None,
    };
    if obs.generation.is_some() {
        pass.status.observed_generation = obs.generation;
    }

    apply_record_outcome(&mut pass);
    if !handle_version_and_tokens(&mut pass) {
        step_phase(&mut pass);
    }
    schedule_record_retry(&mut pass);

    let conditions = conditions_for(&pass.status, current, now);
    pass.status.conditions = conditions;
    let children = desired_children(spec, &pass.status);
    let requeue_after = pass.requeue_after();
    Plan {
        status: pass.status,
        children,
        events: pass.events,
        requeue_after,
    }
}

fn apply_record_outcome(pass: &mut Pass<'_>) {
    let Some(outcome) = pass.obs.record.clone() else {
        return;
    };
    let now = pass.now;
    let Some(record) = pass.status.deployment_record.as_mut() else {
        return;
    };
    if record.recorded {
        return;
    }
    record.attempts = record.attempts.saturating_add(1);
    record.last_attempt_at = Some(now);
    let (version, environment) = (record.version.clone(), record.environment.clone());
    match outcome {
        RecordOutcome::Recorded => {
            record.recorded = true;
            record.recorded_at = Some(now);
            record.last_error = None;
            pass.event(
                EventKind::Normal,
                "DeploymentRecorded",
                format!("recorded {version} as deployed to {environment} in the broker"),
            );
        }
        RecordOutcome::Failed { reason } => {
            record.last_error = Some(reason.clone());
            let attempts = record.attempts;
            pass.event(
                EventKind::Warning,
                "DeploymentRecordFailed",
                format!("could not record {version} in the broker (attempt {attempts}, will retry): {reason}"),
            );
        }
    }
}

fn schedule_record_retry(pass: &mut Pass<'_>) {
    if let Some(record) = &pass.status.deployment_record {
        if !record.recorded {
            let at = record
                .last_attempt_at
                .map_or(pass.now, |t| add(t, retry_delay(record.attempts)));
            pass.wake_at(at);
        }
    }
}

/// Ask for the deployment (or re-deployment) of `version` to be recorded in the broker.
fn request_record(pass: &mut Pass<'_>, version: String) {
    let Some(gate) = &pass.spec.contract_gate else {
        return;
    };
    if !gate.record_deployments {
        return;
    }
    pass.status.deployment_record = Some(DeploymentRecordStatus {
        version,
        environment: gate.environment.clone(),
        ..Default::default()
    });
    pass.wake_in(Duration::ZERO);
}

/// Version changes and manual tokens. Returns true when this pass is finished.
fn handle_version_and_tokens(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    let phase = pass.status.phase;
    let handled = pass.status.handled_requests.clone();

    // A new version while another one is in flight supersedes it.
    let in_flight = pass
        .status
        .canary_version
        .clone()
        .filter(|_| !phase.is_terminal());
    if let Some(old) = in_flight.filter(|v| *v != spec.version && phase != Phase::Pending) {
        pass.status.current_weight = 0;
        pass.enter(
            Phase::RollingBack,
            "Superseded",
            format!(
                "spec.version changed from {old} to {} mid-rollout: removing the {old} canary, then starting over",
                spec.version
            ),
        );
        pass.status.canary_version = Some(spec.version.clone());
        pass.status.analysis = None;
        pass.status.fleet = None;
        pass.status.smoke = None;
        pass.status.contract_gate = None;
        pass.status.current_step_index = None;
        pass.status.rejected_version = None;
        pass.wake_in(Duration::ZERO);
        return true;
    }

    // Retry: only meaningful for a rejected version; consumed either way.
    if fresh(&spec.retry_request, &handled.retry) {
        pass.status.handled_requests.retry = spec.retry_request.clone();
        if matches!(phase, Phase::Blocked | Phase::RolledBack) {
            pass.start(
                "RetryRequested",
                format!("retrying {} on request", spec.version),
            );
            return true;
        }
        pass.event(
            EventKind::Normal,
            "RetryIgnored",
            format!("retryRequest ignored: the rollout is {phase:?}, not blocked or rolled back"),
        );
    }

    // Abort: acts in any phase with something to abort; consumed either way.
    if fresh(&spec.abort_request, &handled.abort) {
        pass.status.handled_requests.abort = spec.abort_request.clone();
        let committed = pass.status.stable_version.as_deref() == Some(spec.version.as_str());
        match phase {
            Phase::Pending | Phase::ContractGate => {
                pass.block(
                    "Aborted",
                    "aborted on request before any canary pod started".into(),
                );
                return true;
            }
            Phase::CanaryStarting | Phase::FleetCheck | Phase::SmokeCheck | Phase::Analyzing => {
                pass.roll_back(
                    "Aborted",
                    "aborted on request: traffic returns to stable".into(),
                );
                return true;
            }
            Phase::Promoting if !committed => {
                pass.roll_back(
                    "Aborted",
                    "aborted on request: traffic returns to stable".into(),
                );
                return true;
            }
            _ => pass.event(
                EventKind::Normal,
                "AbortIgnored",
                format!("abortRequest ignored: the rollout is {phase:?} and has nothing to abort"),
            ),
        }
    }

    // Resume: releases a pause step without duration or a hold; consumed either way.
    if fresh(&spec.resume_request, &handled.resume) {
        pass.status.handled_requests.resume = spec.resume_request.clone();
        if pass.status.hold_reason.is_some() || at_open_pause(pass) {
            pass.status.hold_reason = None;
            if at_open_pause(pass) {
                advance_step(pass, "Resumed", "resumed on request".into());
            } else {
                // Start the step's clock again so the analysis gets a fresh window.
                pass.status.step_started_at = Some(pass.now);
                pass.say(
                    "Resumed",
                    "resumed on request: the analysis step starts over".into(),
                );
                pass.event(EventKind::Normal, "Resumed", "resumed on request".into());
            }
            return true;
        }
        pass.event(
            EventKind::Normal,
            "ResumeIgnored",
            "resumeRequest ignored: the rollout is not waiting for a resume".into(),
        );
    }

    // Terminal phases: start a new rollout when the version moved on.
    let finished = match phase {
        Phase::Succeeded
            if pass.status.stable_version.as_deref() != Some(spec.version.as_str()) =>
        {
            pass.start(
                "NewVersion",
                format!(
                    "rolling out {} (stable is {})",
                    spec.version,
                    pass.status.stable_version.clone().unwrap_or_default()
                ),
            );
            true
        }
        Phase::Blocked | Phase::RolledBack
            if pass.status.rejected_version.as_deref() != Some(spec.version.as_str()) =>
        {
            pass.start("NewVersion", format!("rolling out {}", spec.version));
            true
        }
        Phase::Pending => {
            pass.start("Started", format!("rolling out {}", spec.version));
            true
        }
        _ => false,
    };
    // A promote token is kept until the rollout reaches analysis (the gates still apply), but
    // one given while nothing is in flight is consumed, so it cannot promote a later rollout
    // unseen.
    if !finished && phase.is_terminal() && fresh(&spec.promote_request, &handled.promote) {
        pass.status.handled_requests.promote = spec.promote_request.clone();
        pass.event(
            EventKind::Normal,
            "PromoteIgnored",
            format!("promoteRequest ignored: the rollout is {phase:?}, nothing to promote"),
        );
    }
    finished
}

/// The current step is a pause without duration.
fn at_open_pause(pass: &Pass<'_>) -> bool {
    pass.status.phase == Phase::Analyzing
        && current_step(pass)
            .is_some_and(|s| s.pause.as_ref().is_some_and(|p| p.duration.is_none()))
}

fn current_step<'a>(pass: &Pass<'a>) -> Option<&'a Step> {
    let index = usize::try_from(pass.status.current_step_index?).ok()?;
    pass.spec.steps.get(index)
}

fn step_phase(pass: &mut Pass<'_>) {
    match pass.status.phase {
        Phase::Pending => {}
        Phase::ContractGate => contract_gate(pass),
        Phase::CanaryStarting => canary_starting(pass),
        Phase::FleetCheck => fleet_check(pass),
        Phase::SmokeCheck => smoke_check(pass),
        Phase::Analyzing => analyzing(pass),
        Phase::Promoting => promoting(pass),
        Phase::RollingBack => rolling_back(pass),
        Phase::Succeeded | Phase::RolledBack | Phase::Blocked => {}
    }
}

fn contract_gate(pass: &mut Pass<'_>) {
    let Some(gate) = pass.spec.contract_gate.clone() else {
        pass.after_contract_gate();
        return;
    };
    let poll = std_duration(&gate.poll_interval);
    let budget = std_duration(&gate.unknown_budget);
    let Some(answer) = pass.obs.contract.clone() else {
        // Not asked in this pass: wait for the next poll.
        let last = pass
            .status
            .contract_gate
            .as_ref()
            .and_then(|g| g.checked_at);
        pass.wake_at(last.map_or(pass.now, |t| add(t, poll)));
        return;
    };
    let now = pass.now;
    let mut evidence = pass.status.contract_gate.clone().unwrap_or_default();
    evidence.checked_at = Some(now);
    evidence.attempts = evidence.attempts.saturating_add(1);
    evidence.dry_run = gate.dry_run;
    let target = format!(
        "{} {} to {}",
        gate.pacticipant, pass.spec.version, gate.environment
    );
    match answer {
        ContractAnswer::Deployable { reason, summary } => {
            evidence.verdict = GateVerdict::Passed;
            evidence.deployable = Some(true);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary;
            evidence.unknown_since = None;
            pass.status.contract_gate = Some(evidence);
            pass.event(
                EventKind::Normal,
                "ContractGatePassed",
                format!("can-i-deploy {target}: yes ({reason})"),
            );
            pass.after_contract_gate();
        }
        ContractAnswer::NotDeployable { reason, summary } => {
            evidence.deployable = Some(false);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary;
            evidence.unknown_since = None;
            // A "no" stays a "no" in the record even in dry run; dry run only skips the block.
            evidence.verdict = GateVerdict::Blocked;
            pass.status.contract_gate = Some(evidence);
            if gate.dry_run {
                pass.event(
                    EventKind::Warning,
                    "ContractGateDryRun",
                    format!(
                        "can-i-deploy {target}: NO ({reason}); continuing because dryRun is set"
                    ),
                );
                pass.after_contract_gate();
            } else {
                pass.block(
                    "NotDeployable",
                    format!("can-i-deploy {target}: no: {reason}"),
                );
            }
        }
        ContractAnswer::Refused { reason } => {
            evidence.verdict = GateVerdict::Blocked;
            evidence.deployable = None;
            evidence.reason = Some(reason.clone());
            pass.status.contract_gate = Some(evidence);
            pass.block(
                "BrokerRefused",
                format!("the Pact Broker refused can-i-deploy {target}: {reason}"),
            );
        }
        ContractAnswer::Unknown { reason, summary } => {
            evidence.summary = summary;
            wait_or_block(
                pass,
                evidence,
                "ContractUnknown",
                format!("can-i-deploy {target}: unknown: {reason}"),
                poll,
                budget,
            );
        }
        ContractAnswer::Unreachable { reason } => {
            evidence.summary = None;
            wait_or_block(
                pass,
                evidence,
                "BrokerUnreachable",
                format!("the Pact Broker could not be asked about {target}: {reason}"),
                poll,
                budget,
            );
        }
    }
}

/// An unknown or missing answer: keep asking within the budget, then block (fail closed).
fn wait_or_block(
    pass: &mut Pass<'_>,
    mut evidence: ContractGateStatus,
    reason: &str,
    message: String,
    poll: Duration,
    budget: Duration,
) {
    let now = pass.now;
    let since = *evidence.unknown_since.get_or_insert(now);
    evidence.verdict = GateVerdict::Pending;
    evidence.deployable = None;
    evidence.reason = Some(message.clone());
    pass.status.contract_gate = Some(evidence);
    let waited = elapsed(Some(since), now);
    if waited >= budget {
        if let Some(e) = pass.status.contract_gate.as_mut() {
            e.verdict = GateVerdict::Blocked;
        }
        pass.block(
            reason,
            format!(
                "{message}; no answer within the {}s budget",
                budget.as_secs()
            ),
        );
    } else {
        pass.say(
            reason,
            format!(
                "{message}; asking again in {}s ({}s of {}s budget used)",
                poll.as_secs(),
                waited.as_secs(),
                budget.as_secs()
            ),
        );
        pass.wake_in(poll);
    }
}

fn canary_starting(pass: &mut Pass<'_>) {
    let desired = desired_children(pass.spec, &pass.status);
    if children_settled(&desired, &pass.obs.children) {
        pass.enter(
            Phase::FleetCheck,
            "CanaryReady",
            "canary pods are ready; checking what every pod runs".into(),
        );
        if !pass.spec.fleet_check.enabled {
            after_fleet_check(pass);
        }
        pass.wake_in(Duration::ZERO);
    } else if pass.deadline_passed() {
        pass.roll_back(
            "ProgressDeadlineExceeded",
            format!(
                "canary pods not ready within progressDeadline ({}s)",
                std_duration(&pass.spec.progress_deadline).as_secs()
            ),
        );
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}

fn fleet_failure_message(fleet: &FleetStatus) -> String {
    let names: Vec<String> = fleet
        .failing_pods
        .iter()
        .take(5)
        .map(|p| match (&p.reported, &p.expected) {
            (Some(r), Some(e)) => format!("{} ({}: reported {r}, expected {e})", p.pod, p.problem),
            _ => format!("{} ({})", p.pod, p.problem),
        })
        .collect();
    let listed = i32::try_from(names.len()).unwrap_or(i32::MAX);
    let more = fleet.pods_failing.saturating_sub(listed);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} of {} pods failed the fleet check: {}{more}",
        fleet.pods_failing,
        fleet.pods_checked,
        names.join(", ")
    )
}

/// Problems that mean "this pod did not answer" rather than "it answered wrong". A pod that
/// just turned ready may not listen yet, so these hold the rollout (fail closed: no evidence, no
/// progress) and are asked again until the progress deadline; a wrong answer blocks at once.
const UNANSWERED: [&str; 4] = ["Timeout", "Unreachable", "NoAddress", "NoReadyPods"];

fn only_unanswered(fleet: &FleetStatus) -> bool {
    !fleet.failing_pods.is_empty()
        && fleet
            .failing_pods
            .iter()
            .all(|p| UNANSWERED.contains(&p.problem.as_str()))
}

/// Hold on pods that did not answer, until the progress deadline. Returns true when holding.
fn hold_on_unanswered(pass: &mut Pass<'_>, fleet: &FleetStatus) -> bool {
    if !only_unanswered(fleet) || pass.deadline_passed() {
        return false;
    }
    let message = format!(
        "{}; asking again (blocks after progressDeadline {}s)",
        fleet_failure_message(fleet),
        std_duration(&pass.spec.progress_deadline).as_secs()
    );
    pass.status.fleet = Some(fleet.clone());
    pass.say("FleetUnanswered", message);
    pass.wake_in(POD_WAIT_REQUEUE);
    true
}

fn fleet_check(pass: &mut Pass<'_>) {
    if !pass.spec.fleet_check.enabled {
        after_fleet_check(pass);
        return;
    }
    match pass.obs.fleet.clone() {
        Some(fleet) if fleet.verdict == GateVerdict::Passed => {
            let message = format!("all {} pods run what they should", fleet.pods_checked);
            pass.status.fleet = Some(fleet);
            pass.event(EventKind::Normal, "FleetCheckPassed", message);
            after_fleet_check(pass);
        }
        Some(fleet) if hold_on_unanswered(pass, &fleet) => {}
        Some(fleet) => {
            let message = fleet_failure_message(&fleet);
            pass.status.fleet = Some(fleet);
            // No traffic reached the canary yet: this is a block, not a rollback.
            pass.block("FleetCheckFailed", message);
        }
        None => {
            let desired = desired_children(pass.spec, &pass.status);
            if !children_settled(&desired, &pass.obs.children) && pass.deadline_passed() {
                pass.block(
                    "ProgressDeadlineExceeded",
                    "pods did not settle for the fleet check within progressDeadline".into(),
                );
            } else {
                pass.wake_in(POD_WAIT_REQUEUE);
            }
        }
    }
}

fn after_fleet_check(pass: &mut Pass<'_>) {
    if pass.spec.smoke.is_some() {
        pass.enter(
            Phase::SmokeCheck,
            "SmokeChecking",
            "sending smoke requests to canary pods".into(),
        );
        pass.wake_in(Duration::ZERO);
    } else {
        start_analysis(pass);
    }
}

fn smoke_check(pass: &mut Pass<'_>) {
    match pass.obs.smoke.clone() {
        Some(smoke) if smoke.verdict == GateVerdict::Passed => {
            let message = format!("{} smoke requests succeeded", smoke.requests_sent);
            pass.status.smoke = Some(smoke);
            pass.event(EventKind::Normal, "SmokeChecksPassed", message);
            start_analysis(pass);
        }
        Some(smoke) => {
            let first = smoke
                .failures
                .first()
                .map(|f| format!(": {} on {}", f.problem, f.pod))
                .unwrap_or_default();
            let message = format!(
                "{} of {} smoke requests failed{first}",
                smoke.requests_failed, smoke.requests_sent
            );
            pass.status.smoke = Some(smoke);
            pass.block("SmokeCheckFailed", message);
        }
        None => pass.wake_in(POD_WAIT_REQUEUE),
    }
}

fn start_analysis(pass: &mut Pass<'_>) {
    pass.status.current_step_index = Some(0);
    pass.status.step_started_at = Some(pass.now);
    pass.status.current_weight = 0;
    if pass.spec.analysis.is_some() {
        pass.status.analysis = Some(AnalysisStatus {
            verdict: MetricVerdict::Running,
            started_at: Some(pass.now),
            ..Default::default()
        });
    }
    pass.enter(
        Phase::Analyzing,
        "StepStarted",
        format!(
            "canary verified; starting step 1 of {}",
            pass.spec.steps.len()
        ),
    );
    enter_step(pass);
}

/// Act on entering the current step (weights take effect at once).
fn enter_step(pass: &mut Pass<'_>) {
    let Some(step) = current_step(pass).cloned() else {
        return;
    };
    if let Some(weight) = step.set_weight {
        pass.status.current_weight = weight;
    }
    if let Some(pause) = &step.pause {
        if let Some(d) = &pause.duration {
            pass.wake_in(std_duration(d));
        }
    }
    pass.wake_in(Duration::ZERO);
}

fn advance_step(pass: &mut Pass<'_>, reason: &str, why: String) {
    let next = pass
        .status
        .current_step_index
        .unwrap_or(0)
        .saturating_add(1);
    let total = pass.spec.steps.len();
    if usize::try_from(next).map_or(true, |n| n >= total) {
        start_promotion(
            pass,
            "StepsCompleted",
            format!("{why}; all {total} steps done"),
        );
        return;
    }
    pass.status.current_step_index = Some(next);
    pass.status.step_started_at = Some(pass.now);
    pass.status.hold_reason = None;
    let message = format!("{why}; step {} of {total}", next + 1);
    pass.say(reason, message.clone());
    pass.status.record(Decision {
        at: pass.now,
        phase: Phase::Analyzing,
        reason: reason.to_string(),
        message: message.clone(),
    });
    pass.event(EventKind::Normal, reason, message);
    enter_step(pass);
}

fn start_promotion(pass: &mut Pass<'_>, reason: &str, message: String) {
    pass.enter(
        Phase::Promoting,
        reason,
        format!("{message}; promoting {}", pass.spec.version),
    );
    pass.wake_in(Duration::ZERO);
}

/// Fold this pass's look into the status. Returns the look when one was taken.
fn absorb_look(pass: &mut Pass<'_>) -> Option<AnalysisLook> {
    let look = pass.obs.look.clone()?;
    let analysis = pass.status.analysis.get_or_insert_with(|| AnalysisStatus {
        started_at: Some(pass.now),
        ..Default::default()
    });
    analysis.looks = analysis.looks.saturating_add(1);
    analysis.last_look_at = Some(look.window_end);
    if look.data_missing {
        // No evidence either way: keep the running state, mark the look as failed.
        analysis.failed_looks = analysis.failed_looks.saturating_add(1);
        analysis.verdict = MetricVerdict::Inconclusive;
    } else {
        analysis.verdict = look.verdict;
        analysis.metrics = look.metrics.clone();
        if look.judge_state.is_some() {
            analysis.judge_state = look.judge_state.clone();
        }
    }
    Some(look)
}

fn analyzing(pass: &mut Pass<'_>) {
    let spec = pass.spec;
    let look = absorb_look(pass);
    if let Some(interval) = spec.analysis.as_ref().map(|a| std_duration(&a.interval)) {
        let last = pass
            .status
            .analysis
            .as_ref()
            .and_then(|a| a.last_look_at.or(a.started_at));
        pass.wake_at(last.map_or(pass.now, |t| add(t, interval)));
    }

    // A proven regression rolls back in any step, paused or not.
    if let Some(look) = &look {
        if !look.data_missing && look.verdict == MetricVerdict::Fail {
            let failed: Vec<String> = look
                .metrics
                .iter()
                .filter(|m| m.verdict == MetricVerdict::Fail)
                .map(|m| match &m.reason {
                    Some(r) => format!("{}: {r}", m.name),
                    None => m.name.clone(),
                })
                .collect();
            pass.roll_back(
                "AnalysisFailed",
                format!("canary {} regressed: {}", spec.version, failed.join("; ")),
            );
            return;
        }
    }

    if fresh(&spec.promote_request, &pass.status.handled_requests.promote) {
        pass.status.handled_requests.promote = spec.promote_request.clone();
        start_promotion(
            pass,
            "PromoteRequested",
            "promoted on request, skipping the remaining steps".into(),
        );
        return;
    }

    if spec.paused {
        pass.say(
            "Paused",
            "paused by spec.paused: analysis continues, no step advances".into(),
        );
        return;
    }

    let Some(step) = current_step(pass).cloned() else {
        start_promotion(pass, "StepsCompleted", "no steps left".into());
        return;
    };
    let step_elapsed = elapsed(pass.status.step_started_at, pass.now);
    let step_number = pass.status.current_step_index.unwrap_or(0) + 1;

    if let Some(weight) = step.set_weight {
        let desired = desired_children(spec, &pass.status);
        if children_settled(&desired, &pass.obs.children) {
            advance_step(
                pass,
                "WeightSet",
                format!("canary takes {weight}% of traffic"),
            );
        } else if elapsed(pass.status.step_started_at, pass.now)
            > std_duration(&spec.progress_deadline)
        {
            pass.roll_back(
                "ProgressDeadlineExceeded",
                format!("canary pods for {weight}% not ready within progressDeadline"),
            );
        } else {
            pass.wake_in(POD_WAIT_REQUEUE);
        }
        return;
    }

    if let Some(pause) = &step.pause {
        match &pause.duration {
            Some(d) if step_elapsed >= std_duration(d) => {
                advance_step(
                    pass,
                    "PauseEnded",
                    format!("paused {}s", std_duration(d).as_secs()),
                );
            }
            Some(d) => {
                let end = add(
                    pass.status.step_started_at.unwrap_or(pass.now),
                    std_duration(d),
                );
                pass.wake_at(end);
                pass.say(
                    "Pausing",
                    format!("step {step_number}: pausing until {end}"),
                );
            }
            None => {
                pass.status.hold_reason = Some(format!(
                    "step {step_number} pauses until resumed (kubectl tollgate resume)"
                ));
                pass.say(
                    "PausedAtStep",
                    format!("step {step_number}: waiting for a resume"),
                );
            }
        }
        return;
    }

    if let Some(analyze) = &step.analyze {
        let Some(analysis) = spec.analysis.clone() else {
            return;
        };
        let duration = std_duration(&analyze.duration);
        let step_start = pass.status.step_started_at.unwrap_or(pass.now);
        // A pass counts for this step only when the look covered time at this step's weight.
        let fresh_pass = look.as_ref().is_some_and(|l| {
            !l.data_missing && l.verdict == MetricVerdict::Pass && l.window_end > step_start
        });
        if fresh_pass {
            advance_step(
                pass,
                "AnalysisPassed",
                format!("step {step_number}: canary within tolerance on every metric"),
            );
            return;
        }
        let total_elapsed = elapsed(
            pass.status.analysis.as_ref().and_then(|a| a.started_at),
            pass.now,
        );
        let out_of_time =
            step_elapsed >= duration || total_elapsed >= std_duration(&analysis.max_duration);
        if out_of_time {
            let blind = pass
                .status
                .analysis
                .as_ref()
                .is_some_and(|a| a.failed_looks > 0 && a.failed_looks == a.looks);
            let why = if blind {
                "no metrics could be read"
            } else {
                "evidence is still inconclusive"
            };
            match analysis.on_inconclusive {
                InconclusivePolicy::Rollback => pass.roll_back(
                    "AnalysisInconclusive",
                    format!(
                        "step {step_number}: {why} at the deadline; onInconclusive is Rollback"
                    ),
                ),
                InconclusivePolicy::Pause => {
                    if pass.status.hold_reason.is_none() {
                        pass.event(
                            EventKind::Warning,
                            "AnalysisInconclusive",
                            format!(
                                "step {step_number}: {why} at the deadline; holding for a person"
                            ),
                        );
                    }
                    pass.status.hold_reason = Some(format!(
                        "step {step_number}: {why} at the deadline; promote, abort or resume"
                    ));
                    pass.say(
                        "AnalysisInconclusive",
                        format!("step {step_number}: {why}; holding"),
                    );
                }
            }
        } else {
            let end = add(step_start, duration);
            pass.wake_at(end);
            let summary = look
                .map(|l| l.summary)
                .unwrap_or_else(|| "gathering evidence".into());
            pass.say("Analyzing", format!("step {step_number}: {summary}"));
        }
    }
}

fn promoting(pass: &mut Pass<'_>) {
    let spec = pass.spec;
    let committed = pass.status.stable_version.as_deref() == Some(spec.version.as_str());
    let fleet_enabled = spec.fleet_check.enabled;
    if !committed {
        // The fleet is checked once more before the canary version becomes stable.
        let verdict = if fleet_enabled {
            pass.obs.fleet.clone()
        } else {
            None
        };
        match verdict {
            Some(f) if f.verdict != GateVerdict::Passed && hold_on_unanswered(pass, &f) => {}
            Some(f) if f.verdict != GateVerdict::Passed => {
                let message = fleet_failure_message(&f);
                pass.status.fleet = Some(f);
                pass.roll_back("FleetCheckFailed", format!("before promotion: {message}"));
            }
            None if fleet_enabled => pass.wake_in(POD_WAIT_REQUEUE),
            fleet => {
                if let Some(f) = fleet {
                    pass.status.fleet = Some(f);
                }
                pass.status.stable_version = Some(spec.version.clone());
                pass.status.rejected_version = None;
                let message = format!(
                    "{} is now the stable version; rolling stable pods",
                    spec.version
                );
                pass.say("PromotionCommitted", message.clone());
                pass.status.record(Decision {
                    at: pass.now,
                    phase: Phase::Promoting,
                    reason: "PromotionCommitted".into(),
                    message: message.clone(),
                });
                pass.event(EventKind::Normal, "PromotionCommitted", message);
                pass.wake_in(Duration::ZERO);
            }
        }
        return;
    }

    let replicas = spec.replicas.max(1);
    if !pass.obs.children.stable.settled_at(&spec.version, replicas) {
        if pass.deadline_passed() {
            pass.say(
                "PromotionStalled",
                format!(
                    "stable pods of {} not ready within progressDeadline",
                    spec.version
                ),
            );
        }
        pass.wake_in(POD_WAIT_REQUEUE);
        return;
    }
    let fleet = if fleet_enabled {
        pass.obs.fleet.clone()
    } else {
        None
    };
    match fleet {
        Some(f) if f.verdict != GateVerdict::Passed => {
            let message = fleet_failure_message(&f);
            pass.status.fleet = Some(f);
            pass.say(
                "PromotionNotVerified",
                format!("after promotion: {message}; checking again"),
            );
            pass.wake_in(POD_WAIT_REQUEUE);
        }
        None if fleet_enabled => pass.wake_in(POD_WAIT_REQUEUE),
        fleet => {
            if let Some(f) = fleet {
                pass.status.fleet = Some(f);
            }
            pass.status.canary_version = None;
            pass.status.current_weight = 0;
            pass.status.current_step_index = None;
            pass.status.step_started_at = None;
            pass.enter(
                Phase::Succeeded,
                "Promoted",
                format!("{} is stable and every pod runs it", spec.version),
            );
            request_record(pass, spec.version.clone());
        }
    }
}

fn rolling_back(pass: &mut Pass<'_>) {
    let canary_gone = pass.obs.children.canary.is_gone() && pass.obs.children.baseline.is_gone();
    if canary_gone {
        let spec = pass.spec;
        // A superseded rollout starts over for the new version instead of resting.
        if pass.status.reason.as_deref() == Some("Superseded") {
            pass.start("Started", format!("rolling out {}", spec.version));
            return;
        }
        let stable = pass.status.stable_version.clone().unwrap_or_default();
        pass.status.canary_version = None;
        pass.status.current_step_index = None;
        pass.status.step_started_at = None;
        let why = pass.status.message.clone().unwrap_or_default();
        let reason = pass
            .status
            .reason
            .clone()
            .unwrap_or_else(|| "RolledBack".into());
        pass.enter(
            Phase::RolledBack,
            &reason,
            format!("rolled back to {stable}: {why}"),
        );
        if !stable.is_empty() {
            request_record(pass, stable);
        }
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions.

/// `Ready`, `Progressing`, `Reconciling` (= `Progressing`, for kstatus) and `Stalled` for a
/// status; transition times only move when a condition's status changes, so nothing flaps.
fn conditions_for(
    status: &RolloutStatus,
    previous: Option<&RolloutStatus>,
    now: Timestamp,
) -> Vec<Condition> {
    let reason = status
        .reason
        .clone()
        .unwrap_or_else(|| format!("{:?}", status.phase));
    let message = status.message.clone().unwrap_or_default();
    let ready = status.phase == Phase::Succeeded;
    let stalled =
        matches!(status.phase, Phase::Blocked | Phase::RolledBack) || status.hold_reason.is_some();
    let progressing = !status.phase.is_terminal() && status.hold_reason.is_none();
    let wanted = [
        (CONDITION_READY, ready),
        (CONDITION_PROGRESSING, progressing),
        (CONDITION_RECONCILING, progressing),
        (CONDITION_STALLED, stalled),
    ];
    let generation = status.observed_generation;
    wanted
        .into_iter()
        .map(|(kind, value)| {
            let value = if value { "True" } else { "False" };
            let since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == kind))
                .filter(|c| c.status == value)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: kind.to_string(),
                status: value.to_string(),
                reason: reason.clone(),
                message: message.clone(),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
