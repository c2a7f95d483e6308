//! The contract gate's semantics, as pure functions over (answer, progress, now, policy), plus two
//! drivers: [`ask_once`] (one non-blocking step for the controller, whose progress lives in the
//! Rollout status) and [`run_gate`] (a blocking poll loop for the CLI).
//!
//! - `deployable: true` passes.
//! - `deployable: false` (or no `deployable` in the summary) blocks with the broker's reason.
//! - `deployable: null` waits `poll_interval` and asks again, until `unknown_budget` has passed since
//!   the first unknown answer; then it blocks as unknown.
//! - transient failures (connect errors, timeouts, 5xx, 408, 429) are retried with backoff that
//!   honours `Retry-After`, up to `retry.max_attempts`; then they block.
//! - any other failure (other 4xx, a body that does not parse, bad configuration) blocks at once.
//! - dry-run asks once and reports; it never waits, and never turns a "no" into a pass.

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatePolicy {
    pub poll_interval: Duration,
    /// How long after the first unknown answer the gate keeps polling. Zero: block at the first.
    pub unknown_budget: Duration,
    pub retry: RetryPolicy,
    /// Report the answer without waiting; the verdict is still the real one.
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

/// What the gate remembers between asks. The controller keeps it in the Rollout status (so a
/// restarted operator resumes the same budget); the CLI keeps it in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateProgress {
    /// When the broker first said "unknown" in the current run of unknown answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_since: Option<Timestamp>,
    /// Transient failures in a row.
    #[serde(default)]
    pub failed_attempts: u32,
    /// Asks so far (for reports).
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
    /// The broker could not be asked, or its answer could not be read.
    BrokerError,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum GateVerdict {
    Pass,
    /// Ask again after this long.
    Wait {
        #[serde(with = "secs")]
        after: Duration,
    },
    Block {
        kind: BlockKind,
    },
}

/// The outcome of one step: verdict, a reason a person can act on, the progress to keep, and what
/// the broker said (when it said something).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateDecision {
    pub verdict: GateVerdict,
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
    pub fn passed(&self) -> bool {
        self.verdict == GateVerdict::Pass
    }
}

/// Decide what one answer means. Pure: no I/O, no clock (time is `now`).
pub fn decide(
    outcome: &Result<MatrixAnswer, BrokerError>,
    progress: &GateProgress,
    now: Timestamp,
    policy: &GatePolicy,
) -> GateDecision {
    let asks = progress.asks.saturating_add(1);
    let decision =
        |verdict, reason: String, progress: GateProgress, answer: Option<&MatrixAnswer>, error| {
            GateDecision {
                verdict,
                reason,
                progress,
                answer: answer.cloned(),
                error,
                dry_run: policy.dry_run,
            }
        };
    let answer = match outcome {
        Ok(a) => a,
        Err(e) => {
            let attempts = progress.failed_attempts.saturating_add(1);
            let next = GateProgress {
                unknown_since: progress.unknown_since,
                failed_attempts: attempts,
                asks,
            };
            let code = Some(e.code().to_string());
            if e.is_transient() && attempts < policy.retry.max_attempts.max(1) {
                let after = policy.retry.wait_before_retry(attempts, e.retry_after());
                return decision(
                    GateVerdict::Wait { after },
                    format!(
                        "{e} (attempt {attempts} of {}; retrying)",
                        policy.retry.max_attempts
                    ),
                    next,
                    None,
                    code,
                );
            }
            let reason = if e.is_transient() {
                format!("{e} (gave up after {attempts} attempts)")
            } else {
                e.to_string()
            };
            return decision(
                GateVerdict::Block {
                    kind: BlockKind::BrokerError,
                },
                reason,
                next,
                None,
                code,
            );
        }
    };
    let broker_reason = answer
        .summary
        .as_ref()
        .and_then(|s| s.reason.clone())
        .filter(|r| !r.trim().is_empty());
    let settled = GateProgress {
        unknown_since: None,
        failed_attempts: 0,
        asks,
    };
    match answer.deployable() {
        None => decision(
            GateVerdict::Block {
                kind: BlockKind::BrokerError,
            },
            "the Pact Broker's matrix answer has no summary, so it carries no verdict; is the broker recent enough?"
                .to_string(),
            settled,
            Some(answer),
            Some("NoSummary".to_string()),
        ),
        Some(Deployable::Yes) => decision(
            GateVerdict::Pass,
            broker_reason.unwrap_or_else(|| "the Pact Broker says deployable".to_string()),
            settled,
            Some(answer),
            None,
        ),
        Some(Deployable::No) | Some(Deployable::Absent) => decision(
            GateVerdict::Block {
                kind: BlockKind::NotDeployable,
            },
            format!(
                "the Pact Broker says not deployable: {}{}",
                broker_reason.unwrap_or_else(|| "no reason given".to_string()),
                counts(answer)
            ),
            settled,
            Some(answer),
            None,
        ),
        Some(Deployable::Unknown) => {
            let since = progress.unknown_since.unwrap_or(now);
            let elapsed = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
            let next = GateProgress {
                unknown_since: Some(since),
                failed_attempts: 0,
                asks,
            };
            let why = broker_reason.unwrap_or_else(|| "a verification result is missing".to_string());
            if policy.dry_run || elapsed >= policy.unknown_budget {
                let how_long = if policy.dry_run {
                    "dry run, not waiting".to_string()
                } else {
                    format!("still unknown after {}s of {}s budget", elapsed.as_secs(), policy.unknown_budget.as_secs())
                };
                return decision(
                    GateVerdict::Block { kind: BlockKind::Unknown },
                    format!(
                        "the Pact Broker cannot tell yet ({how_long}): {why}{}; publish the missing verification \
                         results or ignore the integration",
                        counts(answer)
                    ),
                    next,
                    Some(answer),
                    None,
                );
            }
            let after = policy.poll_interval.min(policy.unknown_budget - elapsed);
            decision(
                GateVerdict::Wait { after },
                format!("the Pact Broker cannot tell yet: {why}; asking again in {}s", after.as_secs_f64()),
                next,
                Some(answer),
                None,
            )
        }
    }
}

fn counts(a: &MatrixAnswer) -> String {
    match &a.summary {
        Some(s) if s.success.is_some() || s.failed.is_some() || s.unknown.is_some() => format!(
            " (success {}, failed {}, unknown {})",
            s.success.unwrap_or(0),
            s.failed.unwrap_or(0),
            s.unknown.unwrap_or(0)
        ),
        _ => String::new(),
    }
}

/// One non-blocking step for the controller: ask the broker once and classify the answer. The
/// caller stores `decision.progress` and, on `Wait`, requeues after `after`.
pub async fn ask_once<B: BrokerApi>(
    broker: &B,
    request: &CanIDeployRequest,
    progress: &GateProgress,
    now: impl FnOnce() -> Timestamp,
    policy: &GatePolicy,
) -> GateDecision {
    let outcome = broker.matrix(&request.to_matrix_query()).await;
    let decision = decide(&outcome, progress, now(), policy);
    tracing::info!(
        pacticipant = %request.pacticipant,
        version = %request.version,
        environment = %request.environment,
        verdict = ?decision.verdict,
        reason = %decision.reason,
        "contract gate"
    );
    decision
}

/// The blocking loop: ask, and while the verdict is `Wait`, sleep and ask again. Ends with `Pass`
/// or `Block`. `sleep` is injected so tests and the CLI can choose (pass `tokio::time::sleep`).
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
        let d = ask_once(broker, request, &progress, Timestamp::now, policy).await;
        match d.verdict {
            GateVerdict::Wait { after } => {
                progress = d.progress.clone();
                sleep(after).await;
            }
            _ => return d,
        }
    }
}

/// How one answer (after the client's retries) reads, in the five cases a state machine that keeps
/// its own budget needs: the controller maps this onto its status and phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnswerKind {
    /// `deployable: true`: the only pass.
    Deployable,
    /// `deployable: false`, or a summary without `deployable`: blocks.
    NotDeployable,
    /// `deployable: null`: ask again within the budget, then block.
    Unknown,
    /// Connect error, timeout, 5xx, 408, 429 (after retries): may fix itself; never a pass.
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

/// Classify one outcome without budget or retry state (see [`decide`] for the stateful version).
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
    let (kind, reason) = match answer.deployable() {
        None => (
            AnswerKind::Refused,
            "the Pact Broker's matrix answer has no summary, so it carries no verdict".to_string(),
        ),
        Some(Deployable::Yes) => (
            AnswerKind::Deployable,
            reason.unwrap_or_else(|| "the Pact Broker says deployable".into()),
        ),
        Some(Deployable::No) | Some(Deployable::Absent) => (
            AnswerKind::NotDeployable,
            reason.unwrap_or_else(|| {
                "the Pact Broker says not deployable and gives no reason".into()
            }),
        ),
        Some(Deployable::Unknown) => (
            AnswerKind::Unknown,
            reason.unwrap_or_else(|| "a verification result is missing".into()),
        ),
    };
    ClassifiedAnswer {
        kind,
        reason,
        counts,
        error: None,
    }
}

/// Ask once, retrying only transient failures per `retry` (backoff, `Retry-After` honoured), and
/// return the last outcome. For a caller that keeps its own unknown-budget (the controller).
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
    let query = request.to_matrix_query();
    let mut failed = 0u32;
    loop {
        match broker.matrix(&query).await {
            Err(e) if e.is_transient() && failed.saturating_add(1) < retry.max_attempts.max(1) => {
                failed += 1;
                tracing::warn!(attempt = failed, error = %e, "pact broker unavailable; retrying");
                sleep(retry.wait_before_retry(failed, e.retry_after())).await;
            }
            other => return other,
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

/// Record a deployment, retrying transient failures (blocking; for the CLI). Safe to repeat: the
/// broker treats the same record as one.
pub async fn record_with_retries<B, S, F>(
    broker: &B,
    record: &DeploymentRecord,
    retry: &RetryPolicy,
    sleep: S,
) -> RecordStep
where
    B: BrokerApi,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let mut failed = 0;
    loop {
        let step = decide_record(broker.record_deployment(record).await, failed, retry);
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
mod tests {
    use super::*;
    use crate::gates::broker::types::Summary;

    fn answer(deployable: Option<Option<bool>>, reason: &str) -> Result<MatrixAnswer, BrokerError> {
        Ok(MatrixAnswer {
            summary: Some(Summary {
                deployable,
                reason: Some(reason.to_string()),
                success: Some(1),
                failed: Some(0),
                unknown: Some(1),
                ignored: None,
            }),
            matrix: vec![],
            notices: vec![],
        })
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn policy() -> GatePolicy {
        GatePolicy {
            poll_interval: Duration::from_secs(10),
            unknown_budget: Duration::from_secs(30),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(8),
                max_retry_after: Duration::from_secs(20),
                jitter: crate::util::retry::Jitter::None,
            },
            dry_run: false,
        }
    }

    fn transient(retry_after: Option<u64>) -> Result<MatrixAnswer, BrokerError> {
        Err(BrokerError::RateLimited {
            url: "u".into(),
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    type Case = (
        &'static str,
        Result<MatrixAnswer, BrokerError>,
        GateProgress,
        i64,
        GateVerdict,
    );

    #[test]
    fn table() {
        let p = policy();
        let fresh = GateProgress::default();
        let unknown_at_0 = GateProgress {
            unknown_since: Some(t(0)),
            failed_attempts: 0,
            asks: 1,
        };
        let failed = |n| GateProgress {
            unknown_since: None,
            failed_attempts: n,
            asks: n,
        };
        let not_found = Err(BrokerError::NotFound {
            url: "u".into(),
            body: String::new(),
        });
        let wait = |s| GateVerdict::Wait {
            after: Duration::from_secs(s),
        };
        let block = |kind| GateVerdict::Block { kind };
        let cases: Vec<Case> = vec![
            (
                "true passes",
                answer(Some(Some(true)), "ok"),
                fresh.clone(),
                0,
                GateVerdict::Pass,
            ),
            (
                "true passes after unknowns",
                answer(Some(Some(true)), "ok"),
                unknown_at_0.clone(),
                25,
                GateVerdict::Pass,
            ),
            (
                "false blocks",
                answer(Some(Some(false)), "no"),
                fresh.clone(),
                0,
                block(BlockKind::NotDeployable),
            ),
            (
                "absent blocks",
                answer(None, "no such version"),
                fresh.clone(),
                0,
                block(BlockKind::NotDeployable),
            ),
            (
                "first null waits",
                answer(Some(None), "?"),
                fresh.clone(),
                0,
                wait(10),
            ),
            (
                "null within budget waits",
                answer(Some(None), "?"),
                unknown_at_0.clone(),
                10,
                wait(10),
            ),
            (
                "null near the end waits the rest",
                answer(Some(None), "?"),
                unknown_at_0.clone(),
                25,
                wait(5),
            ),
            (
                "null at the budget blocks",
                answer(Some(None), "?"),
                unknown_at_0.clone(),
                30,
                block(BlockKind::Unknown),
            ),
            (
                "transient 1 backs off",
                transient(None),
                fresh.clone(),
                0,
                wait(1),
            ),
            (
                "transient 2 backs off more",
                transient(None),
                failed(1),
                0,
                wait(2),
            ),
            (
                "retry-after honoured",
                transient(Some(7)),
                fresh.clone(),
                0,
                wait(7),
            ),
            (
                "retry-after capped",
                transient(Some(700)),
                fresh.clone(),
                0,
                wait(20),
            ),
            (
                "transient gives up",
                transient(None),
                failed(2),
                0,
                block(BlockKind::BrokerError),
            ),
            (
                "permanent blocks at once",
                not_found,
                fresh.clone(),
                0,
                block(BlockKind::BrokerError),
            ),
        ];
        for (name, outcome, progress, now, want) in cases {
            let d = decide(&outcome, &progress, t(now), &p);
            assert_eq!(d.verdict, want, "{name}: {}", d.reason);
            assert!(!d.reason.is_empty(), "{name}");
        }
    }

    #[test]
    fn no_summary_blocks() {
        let d = decide(
            &Ok(MatrixAnswer {
                summary: None,
                matrix: vec![],
                notices: vec![],
            }),
            &GateProgress::default(),
            t(0),
            &policy(),
        );
        assert_eq!(
            d.verdict,
            GateVerdict::Block {
                kind: BlockKind::BrokerError
            }
        );
    }

    #[test]
    fn reasons_carry_the_brokers_words() {
        let d = decide(
            &answer(Some(Some(false)), "The verification for Bar failed"),
            &GateProgress::default(),
            t(0),
            &policy(),
        );
        assert!(
            d.reason.contains("The verification for Bar failed"),
            "{}",
            d.reason
        );
        let d = decide(
            &answer(Some(None), "no verified pact with Baz in production"),
            &GateProgress {
                unknown_since: Some(t(0)),
                ..Default::default()
            },
            t(31),
            &policy(),
        );
        assert!(
            d.reason.contains("no verified pact with Baz in production"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("31s"), "{}", d.reason);
    }

    #[test]
    fn unknown_progress_is_kept_and_reset() {
        let p = policy();
        let d1 = decide(&answer(Some(None), "?"), &GateProgress::default(), t(5), &p);
        assert_eq!(d1.progress.unknown_since, Some(t(5)));
        let d2 = decide(&answer(Some(None), "?"), &d1.progress, t(15), &p);
        assert_eq!(d2.progress.unknown_since, Some(t(5)));
        assert_eq!(d2.progress.asks, 2);
        let d3 = decide(&answer(Some(Some(true)), "ok"), &d2.progress, t(20), &p);
        assert_eq!(d3.progress.unknown_since, None);
    }

    #[test]
    fn dry_run_never_turns_no_into_pass_and_does_not_wait() {
        let p = GatePolicy {
            dry_run: true,
            ..policy()
        };
        let d = decide(
            &answer(Some(Some(false)), "no"),
            &GateProgress::default(),
            t(0),
            &p,
        );
        assert_eq!(
            d.verdict,
            GateVerdict::Block {
                kind: BlockKind::NotDeployable
            }
        );
        assert!(d.dry_run);
        let d = decide(&answer(Some(None), "?"), &GateProgress::default(), t(0), &p);
        assert_eq!(
            d.verdict,
            GateVerdict::Block {
                kind: BlockKind::Unknown
            }
        );
        let d = decide(
            &answer(Some(Some(true)), "ok"),
            &GateProgress::default(),
            t(0),
            &p,
        );
        assert_eq!(d.verdict, GateVerdict::Pass);
    }

    #[test]
    fn classify_five_ways() {
        let k = |o: &Result<MatrixAnswer, BrokerError>| classify(o).kind;
        assert_eq!(k(&answer(Some(Some(true)), "ok")), AnswerKind::Deployable);
        assert_eq!(
            k(&answer(Some(Some(false)), "no")),
            AnswerKind::NotDeployable
        );
        assert_eq!(
            k(&answer(None, "no such version")),
            AnswerKind::NotDeployable
        );
        assert_eq!(k(&answer(Some(None), "?")), AnswerKind::Unknown);
        assert_eq!(k(&transient(None)), AnswerKind::Unreachable);
        let refused = Err(BrokerError::Unauthorized {
            url: "u".into(),
            body: String::new(),
        });
        assert_eq!(k(&refused), AnswerKind::Refused);
        let c = classify(&answer(Some(None), "missing verification"));
        assert_eq!(c.reason, "missing verification");
        assert_eq!(c.counts.map(|c| c.unknown), Some(1));
    }

    #[test]
    fn record_steps() {
        let r = RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        };
        let ok = RecordedDeployment {
            url: "u".into(),
            status: 201,
            uuid: None,
            application_instance: None,
        };
        assert!(matches!(
            decide_record(Ok(ok), 0, &r),
            RecordStep::Recorded { .. }
        ));
        let t = || {
            Err(BrokerError::Timeout {
                url: "u".into(),
                timeout: Duration::from_secs(1),
            })
        };
        assert!(matches!(
            decide_record(t(), 0, &r),
            RecordStep::Retry { attempts: 1, .. }
        ));
        assert!(matches!(
            decide_record(t(), 1, &r),
            RecordStep::Failed { attempts: 2, .. }
        ));
        let forbidden = Err(BrokerError::Forbidden {
            url: "u".into(),
            body: String::new(),
        });
        assert!(matches!(
            decide_record(forbidden, 0, &r),
            RecordStep::Failed { attempts: 1, .. }
        ));
    }

    #[test]
    fn decision_serializes_for_status() {
        let d = decide(
            &answer(Some(None), "?"),
            &GateProgress::default(),
            t(0),
            &policy(),
        );
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["verdict"]["verdict"], "wait");
        assert_eq!(v["verdict"]["after"], 10.0);
        assert!(v["progress"]["unknownSince"].is_string());
    }
}
