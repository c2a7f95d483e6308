//! One reconcile of one Rollout: fetch → needs → observe → decide → write status (→ webhook
//! notification on promoted, rolled back, blocked) → converge children → Events. The middle
//! step is the pure [`decide`]; everything else is I/O.
//!
//! The broker and the metrics backend are reached through [`ContractPeer`] and
//! [`AnalysisPeer`], so the reconcile does not care how they are implemented; the fleet and
//! smoke checks go straight to the pods through [`Observer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

use super::apply::{Applier, ApplyError};
use super::decide::{self, AnalysisLook, ContractAnswer, LookWindow, Observations, RecordOutcome};
use super::observe::{ObserveError, Observer};
use crate::crd::{Decision, Rollout, RolloutStatus, CONDITION_STALLED};
use crate::runtime::metrics::{DecisionLabels, ErrorKind, ErrorLabels, GateLabels, Metrics};
use crate::runtime::notify::{Notification, Notifier};
use crate::util::retry::RetryPolicy;

/// A boxed future (the peer traits are used as trait objects).
pub type PeerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The Pact Broker, as the reconcile sees it. Implementations never fail: every problem is an
/// answer (`Unreachable`, `Refused`, `Failed`) so the gate fails closed by construction.
pub trait ContractPeer: Send + Sync {
    /// Ask can-i-deploy once for the rollout's version (the poll cadence is `decide`'s).
    fn ask<'a>(&'a self, rollout: &'a Rollout) -> PeerFuture<'a, ContractAnswer>;
    /// Record `version` as deployed to the rollout's environment.
    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, RecordOutcome>;
}

/// The metrics backend and the judge, as the reconcile sees them. Never fails: missing data is
/// a look with `data_missing`.
pub trait AnalysisPeer: Send + Sync {
    /// Judge the window, continuing from the judge state kept in `status`.
    fn look<'a>(
        &'a self,
        rollout: &'a Rollout,
        status: &'a RolloutStatus,
        window: &'a LookWindow,
    ) -> PeerFuture<'a, AnalysisLook>;
}

/// What a reconcile needs.
pub struct Context {
    /// Reads the cluster and the pods.
    pub observer: Observer,
    /// Writes the cluster.
    pub applier: Applier,
    /// The broker.
    pub contract: Arc<dyn ContractPeer>,
    /// The metrics backend and judge.
    pub analysis: Arc<dyn AnalysisPeer>,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// `true` while this replica holds the leader lease.
    pub is_leader: watch::Receiver<bool>,
    /// The operator's default broker and Prometheus addresses (to refuse a rollout that has
    /// neither its own nor a default).
    pub defaults: super::peers::PeerDefaults,
    /// The webhook, when one is configured.
    pub notifier: Option<Notifier>,
    /// Consecutive transient failures per rollout, for exponential backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// Writing failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl ReconcileError {
    /// Transient errors back off and retry; permanent ones wait for a spec change.
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Observe(e) => e.is_transient(),
            ReconcileError::Apply(e) => e.is_transient(),
        }
    }
}

/// Longest requeue when nothing is due (a safety net; watches wake the controller sooner).
const IDLE_REQUEUE: Duration = Duration::from_secs(300);
fn key(rollout: &Rollout) -> String {
    format!(
        "{}/{}",
        rollout.namespace().unwrap_or_default(),
        rollout.name_any()
    )
}

async fn timed<T>(metrics: &Metrics, gate: &str, f: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = f.await;
    metrics
        .gate_seconds
        .get_or_create(&GateLabels {
            gate: gate.to_string(),
        })
        .observe(start.elapsed().as_secs_f64());
    out
}

/// Reconcile one rollout.
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!("reconcile", rollout = %key(&rollout));
    let result = reconcile_inner(&rollout, &ctx).instrument(span).await;
    ctx.metrics.reconciles.inc();
    let k = key(&rollout);
    match &result {
        Ok(_) => {
            if let Ok(mut f) = ctx.failures.lock() {
                f.remove(&k);
            }
        }
        Err(e) if !e.is_transient() => {
            ctx.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    kind: ErrorKind::Permanent,
                })
                .inc();
            warn!(rollout = %k, error = %e, "invalid rollout: waiting for a change");
            // Say so in status; a failure to write it is retried by the next change.
            if let Err(write) = record_permanent_error(&rollout, &ctx, &e.to_string()).await {
                warn!(rollout = %k, error = %write, "could not record the error in status");
            }
            return Ok(Action::await_change());
        }
        Err(_) => {}
    }
    result
}

async fn reconcile_inner(rollout: &Rollout, ctx: &Context) -> Result<Action, ReconcileError> {
    if !*ctx.is_leader.borrow() {
        return Err(ApplyError::NotLeader.into());
    }
    let now = Timestamp::now();
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let status = rollout.status.as_ref();
    if let Some(problem) = ctx.defaults.missing_address(&rollout.spec) {
        return Err(ObserveError::Settings(problem).into());
    }

    let deployments = ctx.observer.deployments(&namespace, &name).await?;
    let template = ctx.observer.new_template(rollout).await?;
    let children = Observer::children(&deployments);
    let needs = decide::needs(&rollout.spec, status, &children, now);

    let mut obs = Observations {
        generation: rollout.metadata.generation,
        children,
        ..Default::default()
    };
    if needs.ask_broker {
        obs.contract = Some(timed(&ctx.metrics, "broker", ctx.contract.ask(rollout)).await);
    }
    if let Some(scope) = &needs.fleet {
        let fleet = ctx.observer.fleet(rollout, &deployments, scope, now);
        obs.fleet = Some(timed(&ctx.metrics, "fleet", fleet).await?);
    }
    if needs.smoke {
        let smoke = ctx.observer.smoke(rollout, &deployments, now);
        obs.smoke = Some(timed(&ctx.metrics, "smoke", smoke).await?);
    }
    if let Some(window) = &needs.look {
        let default = RolloutStatus::default();
        let current = status.unwrap_or(&default);
        let look = ctx.analysis.look(rollout, current, window);
        obs.look = Some(timed(&ctx.metrics, "analysis", look).await);
    }
    if let Some(version) = &needs.record {
        obs.record = Some(
            timed(
                &ctx.metrics,
                "record",
                ctx.contract.record(rollout, version),
            )
            .await,
        );
    }

    let plan = decide::decide(&rollout.spec, status, &obs, now);

    // Leadership may have been lost while the gates were asked.
    if !*ctx.is_leader.borrow() {
        return Err(ApplyError::NotLeader.into());
    }
    let stored = if status != Some(&plan.status) {
        let stored = ctx.applier.write_status(rollout, &plan).await?;
        // Only after the write succeeded (a standby or a conflicting write sends nothing), and
        // before converging, so a failure there cannot lose it. Fire and forget: the delivery
        // runs in its own task and never delays or fails this reconcile.
        if let Some(notifier) = &ctx.notifier {
            if let Some(notification) = Notification::for_transition(&stored, status, now) {
                notifier.notify(notification);
            }
        }
        stored
    } else {
        rollout.clone()
    };
    ctx.applier
        .converge(&stored, &plan, &deployments, template.as_ref())
        .await?;
    ctx.applier.publish_events(&stored, &plan).await;

    for event in &plan.events {
        ctx.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                outcome: event.reason.clone(),
            })
            .inc();
        info!(rollout = %key(rollout), reason = %event.reason, "{}", event.message);
    }
    ctx.metrics
        .set_phase(&key(rollout), Some(plan.status.phase));
    Ok(Action::requeue(
        plan.requeue_after
            .unwrap_or(IDLE_REQUEUE)
            .max(Duration::from_millis(200)),
    ))
}

/// A permanent error: keep the phase, say why in status (`Stalled`, reason `InvalidSpec`).
async fn record_permanent_error(
    rollout: &Rollout,
    ctx: &Context,
    message: &str,
) -> Result<(), ApplyError> {
    if !*ctx.is_leader.borrow() {
        return Err(ApplyError::NotLeader);
    }
    let mut status = rollout.status.clone().unwrap_or_default();
    let message = format!("cannot proceed until the Rollout changes: {message}");
    if status.reason.as_deref() == Some("InvalidSpec")
        && status.message.as_deref() == Some(&message)
    {
        return Ok(());
    }
    let now = Timestamp::now();
    status.reason = Some("InvalidSpec".into());
    status.message = Some(message.clone());
    status.observed_generation = rollout.metadata.generation;
    status.record(Decision {
        at: now,
        phase: status.phase,
        reason: "InvalidSpec".into(),
        message: message.clone(),
    });
    for c in status
        .conditions
        .iter_mut()
        .filter(|c| c.type_ == CONDITION_STALLED)
    {
        if c.status != "True" {
            c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now);
        }
        c.status = "True".into();
        c.reason = "InvalidSpec".into();
        c.message = message.clone();
    }
    // Every condition now speaks for this generation (kubectl wait and kstatus compare it).
    for c in status.conditions.iter_mut() {
        c.observed_generation = rollout.metadata.generation;
    }
    let plan = decide::Plan {
        status,
        children: decide::desired_children(
            &rollout.spec,
            rollout.status.as_ref().unwrap_or(&RolloutStatus::default()),
        ),
        events: vec![decide::PlannedEvent {
            kind: decide::EventKind::Warning,
            reason: "InvalidSpec".into(),
            message,
        }],
        requeue_after: None,
    };
    let stored = ctx.applier.write_status(rollout, &plan).await?;
    ctx.applier.publish_events(&stored, &plan).await;
    Ok(())
}

/// What the controller does after a failed reconcile: back off per rollout.
pub fn error_policy(rollout: Arc<Rollout>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    let k = key(&rollout);
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            kind: ErrorKind::Transient,
        })
        .inc();
    let failures = match ctx.failures.lock() {
        Ok(mut f) => {
            let n = f.entry(k.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    let delay = RetryPolicy::RECONCILE.backoff(failures);
    warn!(rollout = %k, error = %error, attempt = failures, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}
