//! One reconcile of one Rollout: fetch → needs → observe → decide → write status (→ webhook
//! notification when the plan says so) → converge children → Events. The middle step is the
//! pure [`decide`]; everything else is I/O. A problem with the spec found on the way (a missing
//! address, an invalid setting, an unbuildable template, an invalid judge policy) is handed to
//! `decide` as an observation, which holds the rollout as `InvalidSpec`; then the reconcile
//! waits for a change of the Rollout.
//!
//! The broker and the metrics backend are reached through [`ContractPeer`] and
//! [`AnalysisPeer`] (see [`super::peers`]), so the reconcile does not care how they are
//! implemented; the fleet and smoke checks go straight to the pods through [`Observer`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

use super::apply::{Applier, ApplyError};
use super::dora;
use super::metrics::{DecisionLabels, ErrorKind, ErrorLabels, GateLabels, Metrics};
use super::notify::Notifier;
use super::observe::{self, ObserveError, Observer};
use super::peers::{AnalysisPeer, ContractPeer, PeerDefaults};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::crd::{Phase, Rollout, RolloutStatus, FINALIZER_ADOPTION, FINALIZER_UNDEPLOYMENT};
use crate::rollout::decide::undeployment::{self, UndeployOutcome};
use crate::rollout::decide::{
    self, AnalysisLook, ContractAnswer, Needs, Observations, Plan, RecordOutcome, SpecProblem,
};
use crate::util::retry::RetryPolicy;

/// What a reconcile needs.
pub struct Context {
    /// Reads the cluster and the pods.
    pub observer: Observer,
    /// The watch caches of tollgate's own Deployments and Services, and what was applied.
    pub owned: super::owned::Owned,
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
    pub defaults: PeerDefaults,
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
    // A retry after a failed pass reads the Rollout from the API server: the failure may have
    // been a conflict with a newer object the cache has not seen (its watch down or behind), and
    // the cached copy would conflict again on every retry until the watch recovers.
    let retrying = ctx
        .failures
        .lock()
        .map(|f| f.contains_key(&key(&rollout)))
        .unwrap_or(false);
    let rollout = if retrying {
        let namespace = rollout.namespace().unwrap_or_default();
        match ctx
            .observer
            .rollout_now(&namespace, &rollout.name_any())
            .instrument(span.clone())
            .await
        {
            Ok(Some(now)) => Arc::new(now),
            // Gone: its deletion event ends it, and its failure count with it.
            Ok(None) => {
                if let Ok(mut f) = ctx.failures.lock() {
                    f.remove(&key(&rollout));
                }
                return Ok(Action::await_change());
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        ctx.owned.freshest_rollout(rollout)
    };
    let result = reconcile_inner(&rollout, &ctx).instrument(span).await;
    ctx.metrics.reconciles.inc();
    if result.is_ok() {
        if let Ok(mut f) = ctx.failures.lock() {
            f.remove(&key(&rollout));
        }
    }
    result
}

fn ensure_leader(ctx: &Context) -> Result<(), ReconcileError> {
    if *ctx.is_leader.borrow() {
        Ok(())
    } else {
        Err(ApplyError::NotLeader.into())
    }
}

/// A permanent observation error is a problem with the spec (decide holds on it); a transient
/// one fails the reconcile (it backs off and retries).
fn spec_problem(e: ObserveError) -> Result<SpecProblem, ReconcileError> {
    if e.is_transient() {
        Err(e.into())
    } else {
        Ok(SpecProblem::new(e.to_string()))
    }
}

/// A Rollout being deleted: give back the Deployment it adopted, tell the broker that the
/// version it recorded no longer runs, then let it go: each finalizer goes once its work is done
/// (or its bound passed), all of them in one write, and the Events follow that write (so a
/// conflicting write repeats none).
async fn release(
    rollout: &Rollout,
    ctx: &Context,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let since = rollout
        .metadata
        .deletion_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let deleting_for = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
    let carries = |f: &str| rollout.finalizers().iter().any(|x| x == f);
    let mut done = Vec::new();
    let mut again: Option<Duration> = None;
    let mut events = Vec::new();
    if carries(FINALIZER_ADOPTION) {
        let original = match ctx.observer.workload_ref(rollout).await {
            Ok(d) => d,
            Err(e) if e.is_transient() => return Err(e.into()),
            // The Deployment is gone: there is nothing to give back.
            Err(_) => None,
        };
        if ctx
            .applier
            .give_back(rollout, original.as_ref(), deleting_for)
            .await?
        {
            done.push(FINALIZER_ADOPTION);
        } else {
            again = Some(Duration::from_secs(2));
        }
    }
    if carries(FINALIZER_UNDEPLOYMENT) {
        // The contract gate may come from the Rollout's policy: resolve it as every pass does
        // (a policy gone by now leaves the Rollout's own spec, and a refusal if it has no gate).
        let resolution = super::policy::resolve(ctx.observer.client(), rollout).await?;
        let decision = undeploy(&resolution.rollout, ctx, deleting_for).await;
        events = decision.events;
        if decision.release {
            done.push(FINALIZER_UNDEPLOYMENT);
        } else if let Some(retry) = decision.retry_in {
            again = Some(again.map_or(retry, |a| a.min(retry)));
        }
    }
    ctx.applier.remove_finalizers(rollout, &done).await?;
    ctx.applier.publish(rollout, &events).await;
    for event in &events {
        info!(rollout = %key(rollout), reason = %event.reason, "{}", event.message);
    }
    match again {
        Some(after) => Ok(Action::requeue(after.max(Duration::from_millis(200)))),
        None => {
            info!(rollout = %key(rollout), "deleted: every finalizer of tollgate released");
            Ok(Action::await_change())
        }
    }
}

/// One attempt to tell the broker that the version a deleted Rollout recorded no longer runs,
/// bounded at [`undeployment::ATTEMPT_TIMEOUT`], and what follows from it. Nothing recorded:
/// no attempt. A broker host the operator does not allow is never asked.
async fn undeploy(
    rollout: &Rollout,
    ctx: &Context,
    deleting_for: Duration,
) -> undeployment::Release {
    let status = rollout.status.as_ref();
    let outcome = match undeployment::to_undeploy(status) {
        None => None,
        Some(version) => Some(match ctx.defaults.problem(&rollout.spec) {
            Some(problem) => UndeployOutcome::Refused {
                reason: problem.message,
            },
            None => {
                let ask = ctx.contract.undeploy(rollout, version);
                let ask = within(undeployment::ATTEMPT_TIMEOUT, ask);
                timed(&ctx.metrics, "undeploy", ask)
                    .await
                    .unwrap_or_else(|| UndeployOutcome::Failed {
                        reason: format!(
                            "the Pact Broker gave no answer within {}s",
                            undeployment::ATTEMPT_TIMEOUT.as_secs()
                        ),
                    })
            }
        }),
    };
    if let Some(UndeployOutcome::Failed { reason }) = &outcome {
        warn!(rollout = %key(rollout), %reason, deleting_for_s = deleting_for.as_secs(), "could not record the undeployment; trying again within the bound");
    }
    undeployment::on_deletion(&rollout.spec, status, outcome.as_ref(), deleting_for)
}

async fn reconcile_inner(rollout: &Rollout, ctx: &Context) -> Result<Action, ReconcileError> {
    ensure_leader(ctx)?;
    let now = Timestamp::now();
    if rollout.metadata.deletion_timestamp.is_some() {
        return release(rollout, ctx, now).await;
    }
    let status = rollout.status.as_ref();
    // The spec every step below acts on: the Rollout's own, merged with its policy.
    let resolution = super::policy::resolve(ctx.observer.client(), rollout).await?;
    let effective = &resolution.rollout;
    let deployments = ctx
        .owned
        .deployments(
            ctx.observer.client(),
            &rollout.namespace().unwrap_or_default(),
            &rollout.name_any(),
        )
        .await
        .map_err(ObserveError::from)?;
    let mut obs = Observations {
        generation: rollout.metadata.generation,
        children: Observer::children(&deployments),
        selector: Some(observe::rollout_selector(&rollout.name_any())),
        ..Default::default()
    };
    let gathered = match &resolution.problem {
        Some(problem) => {
            obs.spec_problem = Some(problem.clone());
            Gathered::default()
        }
        None => observe(effective, ctx, &deployments, now, &mut obs).await?,
    };
    let mut plan = decide::decide(&effective.spec, status, &obs, now);
    record_policy(&mut plan, &resolution, rollout);
    outbox(ctx, &mut plan, status, rollout, now);

    // Leadership may have been lost while the gates were asked.
    ensure_leader(ctx)?;
    let mut stored = write(rollout, status, &plan, ctx, now).await?;
    // Before converging, so a failure there does not delay it.
    deliver_outbox(ctx, &stored, now).await;
    stored.spec = effective.spec.clone();
    if obs.spec_problem.is_none() {
        if let Err(e) = ctx
            .applier
            .converge(
                &ctx.owned,
                &stored,
                &plan,
                &deployments,
                gathered.template.as_ref(),
                gathered.original.as_ref(),
            )
            .await
        {
            if e.is_transient() {
                return Err(e.into());
            }
            // The children cannot be built as the spec says: what was decided stands (it is
            // written), and the rollout holds on the problem, decided from that status.
            publish(ctx, &stored, &plan).await;
            obs.spec_problem = Some(SpecProblem::new(e.to_string()));
            let mut held = decide::decide(&effective.spec, stored.status.as_ref(), &obs, now);
            record_policy(&mut held, &resolution, rollout);
            outbox(ctx, &mut held, stored.status.as_ref(), rollout, now);
            let mut raw = stored.clone();
            raw.spec = rollout.spec.clone();
            stored = write(&raw, stored.status.as_ref(), &held, ctx, now).await?;
            stored.spec = effective.spec.clone();
            plan = held;
        }
    }
    publish(ctx, &stored, &plan).await;
    ctx.metrics
        .set_phase(&key(rollout), Some(plan.status.phase));
    if let Some(problem) = &obs.spec_problem {
        ctx.metrics
            .errors
            .get_or_create(&ErrorLabels {
                kind: ErrorKind::Permanent,
            })
            .inc();
        warn!(rollout = %key(rollout), problem = %problem.message, "invalid rollout: waiting for a change");
        return Ok(Action::await_change());
    }
    // An outbox entry waiting for its next delivery round wakes the rollout when it is due.
    let outbox_due = stored
        .status
        .as_ref()
        .and_then(|s| s.notifications.as_ref())
        .and_then(|o| o.next_due())
        .filter(|_| ctx.notifier.is_some())
        .map(|t| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO));
    let after = plan.requeue_after.unwrap_or(IDLE_REQUEUE);
    Ok(Action::requeue(
        outbox_due
            .map_or(after, |d| d.min(after))
            .max(Duration::from_millis(200)),
    ))
}

/// Put the plan's notification in the outbox of the status it writes (one entry per
/// destination), carrying the stored outbox over: the entry is stored by the transition's own
/// write. Without a notifier nothing is queued and the stored outbox is kept as it is.
fn outbox(
    ctx: &Context,
    plan: &mut Plan,
    previous: Option<&RolloutStatus>,
    rollout: &Rollout,
    now: Timestamp,
) {
    let destinations = ctx
        .notifier
        .as_ref()
        .map(|n| n.destinations_for(rollout, plan.notify))
        .unwrap_or_default();
    super::notify::enqueue(
        &mut plan.status,
        previous,
        rollout,
        plan.notify,
        &destinations,
        now,
    );
}

/// Send what the stored outbox holds (in the background); warn, with an Event, of entries
/// dropped because their destination is no longer configured.
async fn deliver_outbox(ctx: &Context, stored: &Rollout, now: Timestamp) {
    let Some(notifier) = &ctx.notifier else {
        return;
    };
    let api: kube::Api<Rollout> = kube::Api::namespaced(
        ctx.observer.client().clone(),
        &stored.namespace().unwrap_or_default(),
    );
    let gone = notifier.deliver_pending(&api, stored, now);
    let events: Vec<decide::PlannedEvent> = gone
        .iter()
        .map(|e| decide::PlannedEvent {
            kind: decide::EventKind::Warning,
            reason: crate::crd::Reason::NotificationDropped,
            message: format!(
                "the {} notification (key {}) was dropped undelivered: destination {:?} is no longer configured",
                e.event, e.key, e.destination
            ),
        })
        .collect();
    for e in &events {
        warn!(rollout = %key(stored), "{}", e.message);
    }
    ctx.applier.publish(stored, &events).await;
}

/// Record in the plan's status the policy snapshot this pass ran on: the new one when the live
/// policy was read, the kept one while it is in force, none without a policyRef. A Rollout held
/// on a policy problem keeps what it had.
fn record_policy(plan: &mut Plan, resolution: &super::policy::Resolution, rollout: &Rollout) {
    if rollout.spec.policy_ref.is_none() {
        plan.status.policy = None;
    } else if let Some(snapshot) = &resolution.snapshot {
        // An attempt that has ended keeps the record of the policy it ran on until the next
        // version starts: the live policy read after the end (an edit made mid-analysis) is not
        // what promoted or rolled back this version.
        let ended = matches!(plan.status.phase, Phase::Succeeded | Phase::RolledBack);
        let ran_on = rollout
            .status
            .as_ref()
            .and_then(|s| s.policy.as_ref())
            .filter(|p| ended && p.version == rollout.spec.version);
        plan.status.policy = Some(ran_on.unwrap_or(snapshot).clone());
    }
}

/// What observing fetched that applying needs again.
#[derive(Default)]
struct Gathered {
    /// The pod template of `spec.version`, when there is one.
    template: Option<PodTemplateSpec>,
    /// The Deployment `spec.workloadRef` names.
    original: Option<Deployment>,
}

/// Gather what this pass needs. A problem with the spec ends the gathering and is recorded in
/// `obs.spec_problem`; only transient failures are errors.
async fn observe(
    rollout: &Rollout,
    ctx: &Context,
    deployments: &std::collections::BTreeMap<crate::crd::Track, Deployment>,
    now: Timestamp,
    obs: &mut Observations,
) -> Result<Gathered, ReconcileError> {
    let Some(gathered) = gather_workload(rollout, ctx, obs).await? else {
        return Ok(Gathered::default());
    };
    let needs = decide::needs(&rollout.spec, rollout.status.as_ref(), &obs.children, now);
    let original = gathered.original.as_ref();
    ask_peers(rollout, ctx, deployments, original, &needs, now, obs).await?;
    Ok(gathered)
}

/// The spec's own checks, the workload `spec.workloadRef` names (and whether it may be
/// adopted) and the pod template of `spec.version`. `None` when a problem with the spec ended
/// the gathering (recorded in `obs.spec_problem`).
async fn gather_workload(
    rollout: &Rollout,
    ctx: &Context,
    obs: &mut Observations,
) -> Result<Option<Gathered>, ReconcileError> {
    if let Some(missing) = ctx.defaults.missing_address(&rollout.spec) {
        obs.spec_problem = Some(spec_problem(ObserveError::Settings(missing))?);
        return Ok(None);
    }
    // Before any request: the Rollout's own peer hosts and timeouts must be allowed.
    if let Some(problem) = ctx.defaults.problem(&rollout.spec) {
        obs.spec_problem = Some(problem);
        return Ok(None);
    }
    // and the metric templates must parse, before the canary gets any traffic
    if let Some(problem) = decide::metrics_problem(&rollout.spec) {
        obs.spec_problem = Some(problem);
        return Ok(None);
    }
    let original = match ctx.observer.workload_ref(rollout).await {
        Ok(d) => d,
        Err(e) => {
            obs.spec_problem = Some(spec_problem(e)?);
            return Ok(None);
        }
    };
    let template = match (&rollout.spec.template, &original) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(d)) => d.spec.as_ref().map(|s| s.template.clone()),
        (None, None) => None,
    };
    if let Some(d) = &original {
        let seen = observe::original_workload(d);
        if let Some(problem) = ctx.observer.adoption_problem(rollout, &seen).await? {
            obs.spec_problem = Some(problem);
            return Ok(None);
        }
        obs.original = Some(seen);
    }
    Ok(Some(Gathered { template, original }))
}

/// Ask the peers `needs` names (the broker, the pods, Prometheus), each within
/// [`PEER_DEADLINE`], into `obs`. A problem with the spec stops the asking and is recorded in
/// `obs.spec_problem`; only transient failures are errors.
async fn ask_peers(
    rollout: &Rollout,
    ctx: &Context,
    deployments: &std::collections::BTreeMap<crate::crd::Track, Deployment>,
    original: Option<&Deployment>,
    needs: &Needs,
    now: Timestamp,
    obs: &mut Observations,
) -> Result<(), ReconcileError> {
    let status = rollout.status.as_ref();
    if needs.ask_broker {
        let ask = within(PEER_DEADLINE, ctx.contract.ask(rollout));
        match timed(&ctx.metrics, "broker", ask).await {
            Some(Ok(answer)) => obs.contract = Some(answer),
            Some(Err(problem)) => {
                obs.spec_problem = Some(problem);
                return Ok(());
            }
            None => {
                obs.contract = Some(ContractAnswer::Unreachable {
                    reason: deadline_passed("the Pact Broker"),
                })
            }
        }
    }
    if let Some(scope) = &needs.fleet {
        let prometheus = if rollout.spec.fleet_check().source == crate::crd::FleetSource::Prometheus
        {
            match ctx.analysis.fleet_prometheus(rollout).await {
                Ok(client) => Some(client),
                Err(problem) => {
                    obs.spec_problem = Some(problem);
                    return Ok(());
                }
            }
        } else {
            None
        };
        let fleet = within(
            PEER_DEADLINE,
            ctx.observer
                .fleet(rollout, deployments, original, scope, prometheus, now),
        );
        let fleet = async {
            fleet
                .await
                .unwrap_or_else(|| Err(pods_deadline("fleet check")))
        };
        match timed(&ctx.metrics, "fleet", fleet).await {
            Ok(f) => obs.fleet = Some(f),
            Err(e) => {
                obs.spec_problem = Some(spec_problem(e)?);
                return Ok(());
            }
        }
    }
    if needs.smoke {
        let smoke = within(PEER_DEADLINE, ctx.observer.smoke(rollout, deployments, now));
        let smoke = async {
            smoke
                .await
                .unwrap_or_else(|| Err(pods_deadline("smoke check")))
        };
        match timed(&ctx.metrics, "smoke", smoke).await {
            Ok(s) => obs.smoke = Some(s),
            Err(e) => {
                obs.spec_problem = Some(spec_problem(e)?);
                return Ok(());
            }
        }
    }
    if let Some(window) = &needs.look {
        let default = RolloutStatus::default();
        let current = status.unwrap_or(&default);
        let look = within(PEER_DEADLINE, ctx.analysis.look(rollout, current, window));
        match timed(&ctx.metrics, "analysis", look).await {
            Some(Ok(look)) => obs.look = Some(look),
            Some(Err(problem)) => {
                obs.spec_problem = Some(problem);
                return Ok(());
            }
            None => {
                obs.look = Some(AnalysisLook::without_data(
                    window,
                    deadline_passed("Prometheus"),
                ))
            }
        }
    }
    if let Some(version) = &needs.record {
        let record = within(PEER_DEADLINE, ctx.contract.record(rollout, version));
        match timed(&ctx.metrics, "record", record).await {
            Some(Ok(outcome)) => obs.record = Some(outcome),
            Some(Err(problem)) => {
                obs.spec_problem = Some(problem);
                return Ok(());
            }
            None => {
                obs.record = Some(RecordOutcome::Failed {
                    reason: deadline_passed("the Pact Broker"),
                })
            }
        }
    }
    Ok(())
}

/// Longest a reconcile waits for one peer (the broker, Prometheus): a peer that does not answer
/// must not hold one of the workers every Rollout shares for longer. With the timeout caps of
/// `decide::timeout_problem` an honest peer answers well within it.
pub const PEER_DEADLINE: Duration = Duration::from_secs(20);

/// `f`'s output, or `None` when `deadline` passed first.
async fn within<T>(deadline: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(deadline, f).await.ok()
}

fn pods_deadline(check: &str) -> ObserveError {
    ObserveError::Deadline(format!(
        "the {check} did not finish within the operator's {}s deadline for one reconcile",
        PEER_DEADLINE.as_secs()
    ))
}

fn deadline_passed(peer: &str) -> String {
    format!(
        "{peer} gave no answer within the operator's {}s deadline for one reconcile",
        PEER_DEADLINE.as_secs()
    )
}

/// Write the plan's status (with its outbox) when it changed. Returns the stored object.
async fn write(
    rollout: &Rollout,
    previous: Option<&RolloutStatus>,
    plan: &Plan,
    ctx: &Context,
    now: Timestamp,
) -> Result<Rollout, ReconcileError> {
    if previous == Some(&plan.status) {
        return Ok(rollout.clone());
    }
    let stored = ctx.applier.write_status(rollout, plan).await?;
    ctx.owned.record_rollout(&stored);
    // DORA figures from what was stored: once per transition, never for an unwritten one.
    ctx.metrics.record_dora(
        &key(rollout),
        &dora::transitions(previous, &plan.status, now),
    );
    // The notification itself is in the outbox this write stored (see `outbox`): sent by
    // `deliver_outbox` after the write, and again by a restarted operator until a 2xx.
    Ok(stored)
}

/// Publish the plan's Events and count its decisions.
async fn publish(ctx: &Context, stored: &Rollout, plan: &Plan) {
    ctx.applier.publish_events(stored, plan).await;
    for event in &plan.events {
        ctx.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                outcome: event.reason.to_string(),
            })
            .inc();
        info!(rollout = %key(stored), reason = %event.reason, "{}", event.message);
    }
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
