//! The contract gate's semantics, owned here and used by both the controller (`decide`, which
//! keeps the progress in the Rollout's status) and `tollgate can-i-deploy` (which keeps it in
//! memory and polls).
//!
//! Both get an answer the same way: [`ask`] asks the broker, retrying transient failures with
//! backoff (`Retry-After` honoured) up to `retry.max_attempts`, and [`classify`] reads the
//! outcome as one of five [`AnswerKind`]s. Then the pure [`step`] over (answer, progress, now,
//! policy) gives a [`ContractVerdict`]:
//!
//! | answer | verdict |
//! |---|---|
//! | `deployable: true` | pass |
//! | `deployable: false` (or a summary without `deployable`) | block, with the broker's reason |
//! | `deployable: null` (unknown) | wait `poll_interval` (at most the budget left) and ask again, until `unknown_budget` has passed since the first unknown answer; then block |
//! | unreachable after the retries (connect errors, timeouts, 5xx, 408, 429) | as unknown: wait within the budget, then block |
//! | refused (other 4xx, a body that does not parse, no summary) | block at once |
//!
//! Dry run means what the CRD says: a "no" is still shown as a "no" and never becomes a pass;
//! only the block is skipped. The gate waits within the budget exactly as without dry run and
//! the verdict is the real one; [`GateStep::action`] says that a block is to be skipped
//! ([`GateAction::ProceedDespite`]): the controller continues with a Warning Event, the CLI
//! prints the real verdict marked `[dry-run]` and exits 0, as `pact-broker can-i-deploy
//! --dry-run` does.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::client::BrokerApi;
use super::config::RetryPolicy;
use super::error::BrokerError;
use super::types::{
    CanIDeployRequest, Deployable, DeploymentRecord, MatrixAnswer, RecordedDeployment,
};

/// Default wait between two asks while the answer is unknown.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default time the gate keeps asking while the answer is unknown.
pub const DEFAULT_UNKNOWN_BUDGET: Duration = Duration::from_secs(300);

/// How the gate waits and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatePolicy {
    /// Wait between two asks while the answer is unknown (or the broker unreachable).
    pub poll_interval: Duration,
    /// How long after the first unknown (or unreachable) answer the gate keeps asking. Zero:
    /// block at the first.
    pub unknown_budget: Duration,
    /// Retries of one ask on transient failures.
    pub retry: RetryPolicy,
    /// Skip the block (never turn a "no" into a pass): see the module documentation.
    pub dry_run: bool,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            unknown_budget: DEFAULT_UNKNOWN_BUDGET,
            retry: RetryPolicy::default(),
            dry_run: false,
        }
    }
}

/// What the gate remembers between asks. The controller keeps it in the Rollout status
/// (`status.contractGate.unknownSince` and `attempts`), so a restarted operator resumes the same
/// budget; the CLI keeps it in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateProgress {
    /// When the broker first answered "unknown" (or could not be asked) in the current run of
    /// such answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_since: Option<Timestamp>,
    /// Asks so far.
    #[serde(default)]
    pub asks: u32,
}

/// Why the gate blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BlockKind {
    /// The broker says no.
    NotDeployable,
    /// The broker still could not tell after the budget.
    Unknown,
    /// The broker could not be asked (after the budget), or refused, or its answer could not
    /// be read.
    BrokerError,
}

/// The gate's verdict after one answer: the real one, dry run or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum ContractVerdict {
    /// The version may be deployed.
    Pass,
    /// Ask again after this long.
    Wait {
        #[serde(with = "secs")]
        after: Duration,
    },
    /// The version may not be deployed (or nobody can tell).
    Block { kind: BlockKind },
}

/// What the caller does with a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateAction {
    /// Go on: the broker said yes.
    Proceed,
    /// Ask again after this long.
    Wait(Duration),
    /// Stop: the version is blocked.
    Block(BlockKind),
    /// Dry run: the verdict is a block, which is skipped; say so loudly.
    ProceedDespite(BlockKind),
}

/// One step of the gate: the verdict, a reason a person can act on, and the progress to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateStep {
    pub verdict: ContractVerdict,
    pub reason: String,
    pub progress: GateProgress,
    pub dry_run: bool,
}

impl GateStep {
    /// What to do: the verdict, with a block skipped in dry run.
    pub fn action(&self) -> GateAction {
        action(&self.verdict, self.dry_run)
    }
}

fn action(verdict: &ContractVerdict, dry_run: bool) -> GateAction {
    match verdict {
        ContractVerdict::Pass => GateAction::Proceed,
        ContractVerdict::Wait { after } => GateAction::Wait(*after),
        ContractVerdict::Block { kind } if dry_run => GateAction::ProceedDespite(*kind),
        ContractVerdict::Block { kind } => GateAction::Block(*kind),
    }
}

/// The gate's answer for the CLI and logs: the step, with what the broker said (when it said
/// something) and the error code of a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateDecision {
    pub verdict: ContractVerdict,
    pub reason: String,
    pub progress: GateProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<MatrixAnswer>,
    /// The error code of a broker failure (see `BrokerError::code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub dry_run: bool,
}

impl GateDecision {
    /// The broker said yes.
    pub fn passed(&self) -> bool {
        self.verdict == ContractVerdict::Pass
    }

    /// What to do: the verdict, with a block skipped in dry run.
    pub fn action(&self) -> GateAction {
        action(&self.verdict, self.dry_run)
    }

    fn from_step(
        step: GateStep,
        answer: Option<MatrixAnswer>,
        error: Option<String>,
    ) -> GateDecision {
        GateDecision {
            verdict: step.verdict,
            reason: step.reason,
            progress: step.progress,
            answer,
            error,
            dry_run: step.dry_run,
        }
    }
}

/// How one answer (after the client's retries) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnswerKind {
    /// `deployable: true`: the only pass.
    Deployable,
    /// `deployable: false`, or a summary without `deployable`: blocks.
    NotDeployable,
    /// `deployable: null`: ask again within the budget, then block.
    Unknown,
    /// Connect error, timeout, 5xx, 408, 429 (after retries): may fix itself; like unknown,
    /// asked again within the budget, then blocks. Never a pass.
    Unreachable,
    /// 400/401/403/404, a body that does not parse, no summary, bad configuration: will not fix
    /// itself; blocks at once.
    Refused,
}

/// Counts of the broker's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerCounts {
    pub success: u64,
    pub failed: u64,
    pub unknown: u64,
    pub ignored: u64,
}

/// One answer, classified, with a reason a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassifiedAnswer {
    pub kind: AnswerKind,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<AnswerCounts>,
    /// `BrokerError::code` of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The gate's step over one classified answer. Pure: no I/O, no clock (time is `now`).
pub fn step(
    answer: &ClassifiedAnswer,
    progress: &GateProgress,
    now: Timestamp,
    policy: &GatePolicy,
) -> GateStep {
    let asks = progress.asks.saturating_add(1);
    let settled = GateProgress {
        unknown_since: None,
        asks,
    };
    let done = |verdict, reason, progress| GateStep {
        verdict,
        reason,
        progress,
        dry_run: policy.dry_run,
    };
    let block = |kind| ContractVerdict::Block { kind };
    match answer.kind {
        AnswerKind::Deployable => done(ContractVerdict::Pass, answer.reason.clone(), settled),
        AnswerKind::NotDeployable => done(
            block(BlockKind::NotDeployable),
            format!("{}{}", answer.reason, counts(answer)),
            settled,
        ),
        AnswerKind::Refused => done(
            block(BlockKind::BrokerError),
            answer.reason.clone(),
            GateProgress {
                unknown_since: progress.unknown_since,
                asks,
            },
        ),
        AnswerKind::Unknown | AnswerKind::Unreachable => {
            wait_within_budget(answer, progress.unknown_since, asks, now, policy)
        }
    }
}

/// Unknown or unreachable: ask again within the budget, then block (fail closed).
fn wait_within_budget(
    answer: &ClassifiedAnswer,
    unknown_since: Option<Timestamp>,
    asks: u32,
    now: Timestamp,
    policy: &GatePolicy,
) -> GateStep {
    let since = unknown_since.unwrap_or(now);
    let elapsed = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
    let progress = GateProgress {
        unknown_since: Some(since),
        asks,
    };
    let budget = policy.unknown_budget;
    let unknown = answer.kind == AnswerKind::Unknown;
    let exhausted = elapsed >= budget;
    let (verdict, reason) = match (unknown, exhausted) {
        (true, true) => (
            ContractVerdict::Block {
                kind: BlockKind::Unknown,
            },
            format!(
                "the Pact Broker cannot tell yet (still unknown after {}s of {}s budget): {}{}; \
                 publish the missing verification results or ignore the integration",
                elapsed.as_secs(),
                budget.as_secs(),
                answer.reason,
                counts(answer)
            ),
        ),
        (false, true) if budget.is_zero() => (
            ContractVerdict::Block {
                kind: BlockKind::BrokerError,
            },
            answer.reason.clone(),
        ),
        (false, true) => (
            ContractVerdict::Block {
                kind: BlockKind::BrokerError,
            },
            format!(
                "{}; the Pact Broker could not be asked for {}s ({}s budget)",
                answer.reason,
                elapsed.as_secs(),
                budget.as_secs()
            ),
        ),
        (_, false) => {
            let after = policy.poll_interval.min(budget - elapsed);
            let what = if unknown {
                "the Pact Broker cannot tell yet"
            } else {
                "the Pact Broker could not be asked"
            };
            (
                ContractVerdict::Wait { after },
                format!(
                    "{what}: {}; asking again in {}s",
                    answer.reason,
                    after.as_secs_f64()
                ),
            )
        }
    };
    GateStep {
        verdict,
        reason,
        progress,
        dry_run: policy.dry_run,
    }
}

fn counts(a: &ClassifiedAnswer) -> String {
    match &a.counts {
        Some(c) => format!(
            " (success {}, failed {}, unknown {})",
            c.success, c.failed, c.unknown
        ),
        None => String::new(),
    }
}

/// Classify one outcome (see [`step`] for what each kind leads to).
pub fn classify(outcome: &Result<MatrixAnswer, BrokerError>) -> ClassifiedAnswer {
    let answer = match outcome {
        Ok(a) => a,
        Err(e) => {
            return ClassifiedAnswer {
                kind: if e.is_transient() {
                    AnswerKind::Unreachable
                } else {
                    AnswerKind::Refused
                },
                reason: e.to_string(),
                counts: None,
                error: Some(e.code().to_string()),
            }
        }
    };
    let counts = answer.summary.as_ref().map(|s| AnswerCounts {
        success: s.success.unwrap_or(0),
        failed: s.failed.unwrap_or(0),
        unknown: s.unknown.unwrap_or(0),
        ignored: s.ignored.unwrap_or(0),
    });
    let reason = answer
        .summary
        .as_ref()
        .and_then(|s| s.reason.clone())
        .filter(|r| !r.trim().is_empty());
    let (kind, reason, error) = match answer.deployable() {
        None => (
            AnswerKind::Refused,
            "the Pact Broker's matrix answer has no summary, so it carries no verdict".to_string(),
            Some("NoSummary".to_string()),
        ),
        Some(Deployable::Yes) => (
            AnswerKind::Deployable,
            reason.unwrap_or_else(|| "the Pact Broker says deployable".into()),
            None,
        ),
        Some(Deployable::No) | Some(Deployable::Absent) => (
            AnswerKind::NotDeployable,
            reason.unwrap_or_else(|| {
                "the Pact Broker says not deployable and gives no reason".into()
            }),
            None,
        ),
        Some(Deployable::Unknown) => (
            AnswerKind::Unknown,
            reason.unwrap_or_else(|| "a verification result is missing".into()),
            None,
        ),
    };
    ClassifiedAnswer {
        kind,
        reason,
        counts,
        error,
    }
}

/// Classify a raw outcome and take the gate's step: [`classify`] then [`step`], with the
/// broker's answer kept for reports.
pub fn decide(
    outcome: &Result<MatrixAnswer, BrokerError>,
    progress: &GateProgress,
    now: Timestamp,
    policy: &GatePolicy,
) -> GateDecision {
    let classified = classify(outcome);
    let step = step(&classified, progress, now, policy);
    GateDecision::from_step(step, outcome.as_ref().ok().cloned(), classified.error)
}

/// Whether to try again after `failed` failed attempts ending in `error`, and after how long:
/// transient failures only, at most `retry.max_attempts` attempts in all, honouring a
/// `Retry-After` (capped).
pub fn retry_after_failure(
    error: &BrokerError,
    failed: u32,
    retry: &RetryPolicy,
) -> Option<Duration> {
    (error.is_transient() && failed < retry.max_attempts.max(1))
        .then(|| retry.wait_before_retry(failed, error.retry_after()))
}

/// Ask once, retrying transient failures per `retry`, and return the last outcome with the
/// number of attempts made.
async fn ask_counting<B, S, F>(
    broker: &B,
    request: &CanIDeployRequest,
    retry: &RetryPolicy,
    sleep: S,
) -> (Result<MatrixAnswer, BrokerError>, u32)
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let query = request.to_matrix_query();
    let mut failed = 0u32;
    loop {
        let outcome = broker.matrix(&query).await;
        let attempts = failed.saturating_add(1);
        match &outcome {
            Err(e) => match retry_after_failure(e, attempts, retry) {
                Some(wait) => {
                    failed = attempts;
                    tracing::warn!(attempt = failed, error = %e, "pact broker unavailable; retrying");
                    sleep(wait).await;
                }
                None => return (outcome, attempts),
            },
            Ok(_) => return (outcome, attempts),
        }
    }
}

/// Ask once, retrying only transient failures per `retry` (backoff, `Retry-After` honoured), and
/// return the last outcome.
pub async fn ask_with_retries<B, S, F>(
    broker: &B,
    request: &CanIDeployRequest,
    retry: &RetryPolicy,
    sleep: S,
) -> Result<MatrixAnswer, BrokerError>
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    ask_counting(broker, request, retry, sleep).await.0
}

/// Ask with the client's retries and classify the answer; a transient failure says how many
/// attempts it gave up after. Returns the broker's answer too, when there is one.
pub async fn ask<B, S, F>(
    broker: &B,
    request: &CanIDeployRequest,
    retry: &RetryPolicy,
    sleep: S,
) -> (ClassifiedAnswer, Option<MatrixAnswer>)
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let (outcome, attempts) = ask_counting(broker, request, retry, sleep).await;
    let mut classified = classify(&outcome);
    if classified.kind == AnswerKind::Unreachable {
        classified.reason = format!("{} (gave up after {attempts} attempts)", classified.reason);
    }
    (classified, outcome.ok())
}

/// One step of the gate as the CLI takes it: ask (with retries), classify, step.
pub async fn ask_once<B, S, F>(
    broker: &B,
    request: &CanIDeployRequest,
    progress: &GateProgress,
    now: impl FnOnce() -> Timestamp,
    policy: &GatePolicy,
    sleep: S,
) -> GateDecision
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let (classified, answer) = ask(broker, request, &policy.retry, sleep).await;
    let step = step(&classified, progress, now(), policy);
    tracing::info!(
        pacticipant = %request.pacticipant,
        version = %request.version,
        environment = %request.environment,
        verdict = ?step.verdict,
        dry_run = policy.dry_run,
        reason = %step.reason,
        "contract gate"
    );
    GateDecision::from_step(step, answer, classified.error)
}

/// The blocking loop: ask, and while the verdict is `Wait`, sleep and ask again. Ends with `Pass`
/// or `Block` (in dry run the block is the real verdict; [`GateDecision::action`] says it is
/// skipped). `sleep` is injected so tests and the CLI can choose (pass `tokio::time::sleep`).
pub async fn run_gate<B, S, F>(
    broker: &B,
    request: &CanIDeployRequest,
    policy: &GatePolicy,
    sleep: S,
) -> GateDecision
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut progress = GateProgress::default();
    loop {
        let d = ask_once(broker, request, &progress, Timestamp::now, policy, &sleep).await;
        match d.verdict {
            ContractVerdict::Wait { after } => {
                progress = d.progress.clone();
                sleep(after).await;
            }
            _ => return d,
        }
    }
}

/// The next move after one attempt to record a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum RecordStep {
    Recorded {
        deployment: RecordedDeployment,
    },
    /// Try again after this long (the failure is shown in status meanwhile).
    Retry {
        #[serde(with = "secs")]
        after: Duration,
        attempts: u32,
        reason: String,
    },
    /// Gave up. A promotion or rollback stands regardless; only the record is missing.
    Failed {
        attempts: u32,
        reason: String,
    },
}

/// Classify one record attempt. Pure. `failed_before` counts the failed attempts before this one.
pub fn decide_record(
    outcome: Result<RecordedDeployment, BrokerError>,
    failed_before: u32,
    retry: &RetryPolicy,
) -> RecordStep {
    match outcome {
        Ok(deployment) => RecordStep::Recorded { deployment },
        Err(e) => {
            let attempts = failed_before.saturating_add(1);
            if e.is_transient() && attempts < retry.max_attempts.max(1) {
                RecordStep::Retry {
                    after: retry.wait_before_retry(attempts, e.retry_after()),
                    attempts,
                    reason: e.to_string(),
                }
            } else {
                RecordStep::Failed {
                    attempts,
                    reason: e.to_string(),
                }
            }
        }
    }
}

/// Record a deployment, retrying transient failures (blocking; for the CLI and, with one
/// attempt, the controller).
///
/// A failed POST may still have been accepted (a timeout after the broker stored the record, a
/// 500 from a proxy behind which it succeeded), and the broker stores a second POST as a second
/// record. So after any failure, and before the first attempt when `check_first` is set (the
/// controller: an earlier reconcile may have failed that way), the environment's currently
/// deployed versions are read, and the POST is made only if the version is not among them. A
/// failed read counts as a failed attempt: no POST without knowing.
pub async fn record_with_retries<B, S, F>(
    broker: &B,
    record: &DeploymentRecord,
    retry: &RetryPolicy,
    sleep: S,
    check_first: bool,
) -> RecordStep
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut failed = 0;
    loop {
        let outcome = if failed > 0 || check_first {
            match already_recorded(broker, record).await {
                Ok(Some(deployment)) => Ok(deployment),
                Ok(None) => broker.record_deployment(record).await,
                Err(e) => Err(e),
            }
        } else {
            broker.record_deployment(record).await
        };
        let step = decide_record(outcome, failed, retry);
        tracing::info!(
            pacticipant = %record.pacticipant,
            version = %record.version,
            environment = %record.environment,
            step = ?step,
            "record deployment"
        );
        match step {
            RecordStep::Retry {
                after, attempts, ..
            } => {
                failed = attempts;
                sleep(after).await;
            }
            done => return done,
        }
    }
}

/// The record the broker already holds for `record` (its version currently deployed there, on
/// the same instance), if it does.
async fn already_recorded<B: BrokerApi>(
    broker: &B,
    record: &DeploymentRecord,
) -> Result<Option<RecordedDeployment>, BrokerError> {
    let deployed = broker
        .currently_deployed(&record.pacticipant, &record.environment)
        .await?;
    Ok(deployed
        .iter()
        .find(|d| d.is(record))
        .map(|d| RecordedDeployment {
            url: d.href.clone().unwrap_or_default(),
            status: 200,
            uuid: None,
            application_instance: d.application_instance.clone(),
        }))
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
