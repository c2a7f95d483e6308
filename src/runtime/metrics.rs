//! The operator's own metrics, served on `/metrics` in the Prometheus text format, with the
//! DORA figures of [`super::dora`] (promotions, rollbacks by reason, lead time, time to detect,
//! gate waits) and each Rollout's phase.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::dora::DoraEvent;
use crate::crd::Phase;

/// Kind of reconcile error.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ErrorKind {
    /// Will likely pass on retry (timeouts, conflicts, API server unavailable).
    Transient,
    /// Needs a change to the Rollout (invalid spec that slipped past the schema).
    Permanent,
}

/// Label set: an error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The kind.
    pub kind: ErrorKind,
}

/// Label set: a decision's reason (e.g. `Promoted`, `AnalysisFailed`, `NotDeployable`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Machine-readable reason of the decision.
    pub outcome: String,
}

/// Label set: a gate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GateLabels {
    /// `broker`, `fleet`, `smoke`, `analysis` or `record`.
    pub gate: String,
}

/// Label set: a phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The phase name.
    pub phase: String,
}

/// Label set: one webhook notification's event and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `Promoted`, `RolledBack` or `Blocked`.
    pub event: String,
    /// `delivered`, `failed` (retries exhausted or refused with a 4xx) or `dropped` (too many
    /// deliveries pending).
    pub outcome: String,
}

/// Label set: one server-side apply of a child the reconcile wanted, and whether it was sent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildApplyLabels {
    /// `Deployment` or `Service`.
    pub kind: String,
    /// `applied` (sent to the API server) or `skipped` (the child still carries what this
    /// process applied to it last: see `runtime::owned`).
    pub outcome: String,
}

/// Label set: one Rollout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub rollout: String,
}

/// Label set: one Rollout and why it was rolled back.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RollbackLabels {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub rollout: String,
    /// `status.reason` when it rolled back (e.g. `AnalysisFailed`, `Aborted`).
    pub reason: String,
}

/// Label set: one Rollout in one phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutPhaseLabels {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub rollout: String,
    /// The phase name.
    pub phase: String,
}

fn lead_time_histogram() -> Histogram {
    // 30 s .. about 68 h: a rollout through every gate, up to one held for days.
    Histogram::new(exponential_buckets(30.0, 2.0, 14))
}

fn detect_histogram() -> Histogram {
    // 5 s .. about 11 h from the canary's first request to the rollback.
    Histogram::new(exponential_buckets(5.0, 2.0, 14))
}

fn gate_wait_histogram() -> Histogram {
    // 1 s .. about 18 h held in one gate.
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn gate_histogram() -> Histogram {
    // 5 ms .. ~40 s: a pod answer to a broker poll with retries.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconcile errors by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Decisions by outcome (each Event-worthy transition).
    pub decisions: Family<DecisionLabels, Counter>,
    /// Time spent asking each gate.
    pub gate_seconds: Family<GateLabels, Histogram, fn() -> Histogram>,
    /// Rollouts per phase.
    pub rollouts: Family<PhaseLabels, Gauge>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// Webhook notifications by event and outcome.
    pub notifications: Family<NotificationLabels, Counter>,
    /// HTTP requests made to the webhook (every retry counts).
    pub notification_attempts: Counter,
    /// Promotions per Rollout.
    pub promotions: Family<RolloutLabels, Counter>,
    /// Rollbacks per Rollout and reason.
    pub rollbacks: Family<RollbackLabels, Counter>,
    /// Seconds from a rollout attempt's start to its promotion.
    pub lead_time: Histogram,
    /// Seconds from the canary's first traffic to the rollback.
    pub time_to_detect: Histogram,
    /// Seconds a rollout waited in each gate's phase.
    pub gate_wait: Family<GateLabels, Histogram, fn() -> Histogram>,
    /// 1 for each Rollout's current phase.
    pub rollout_phase: Family<RolloutPhaseLabels, Gauge>,
    /// Child applies by kind and outcome (applied or skipped as unchanged).
    pub child_applies: Family<ChildApplyLabels, Counter>,
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let gate_seconds = Family::<GateLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            gate_histogram,
        );
        let rollouts = Family::<PhaseLabels, Gauge>::default();
        let leader = Gauge::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        let notification_attempts = Counter::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconcile errors by kind",
            errors.clone(),
        );
        registry.register(
            "decisions",
            "Rollout decisions by outcome",
            decisions.clone(),
        );
        registry.register(
            "gate_duration_seconds",
            "Time spent asking a gate",
            gate_seconds.clone(),
        );
        registry.register("rollouts", "Rollouts by phase", rollouts.clone());
        registry.register(
            "leader",
            "1 while this replica is the leader",
            leader.clone(),
        );
        registry.register(
            "notifications",
            "Webhook notifications by event and outcome (delivered, failed, dropped)",
            notifications.clone(),
        );
        registry.register(
            "notification_attempts",
            "HTTP requests made to the notification webhook, retries included",
            notification_attempts.clone(),
        );
        let promotions = Family::<RolloutLabels, Counter>::default();
        let rollbacks = Family::<RollbackLabels, Counter>::default();
        let lead_time = lead_time_histogram();
        let time_to_detect = detect_histogram();
        let gate_wait = Family::<GateLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            gate_wait_histogram,
        );
        let rollout_phase = Family::<RolloutPhaseLabels, Gauge>::default();
        registry.register(
            "promotions",
            "Versions promoted to stable, per Rollout",
            promotions.clone(),
        );
        registry.register(
            "rollbacks",
            "Rollbacks to stable, per Rollout and reason",
            rollbacks.clone(),
        );
        registry.register(
            "lead_time_seconds",
            "Seconds from a rollout attempt's start to its promotion (lead time through the gates)",
            lead_time.clone(),
        );
        registry.register(
            "time_to_detect_seconds",
            "Seconds from the canary's first traffic to the rollback",
            time_to_detect.clone(),
        );
        registry.register(
            "gate_wait_seconds",
            "Seconds a rollout waited in a gate's phase (contract, fleet, smoke, analysis)",
            gate_wait.clone(),
        );
        registry.register(
            "rollout_phase",
            "1 for each Rollout's current phase",
            rollout_phase.clone(),
        );
        let child_applies = Family::<ChildApplyLabels, Counter>::default();
        registry.register(
            "child_applies",
            "Server-side applies of tollgate's Deployments and Services, by kind and outcome (applied, or skipped because the child still carries what was applied last)",
            child_applies.clone(),
        );
        Metrics {
            child_applies,
            promotions,
            rollbacks,
            lead_time,
            time_to_detect,
            gate_wait,
            rollout_phase,
            registry,
            reconciles,
            errors,
            decisions,
            gate_seconds,
            rollouts,
            leader,
            notifications,
            notification_attempts,
            phases: Mutex::new(HashMap::new()),
        }
    }

    /// Count one child apply the reconcile wanted: `applied` or `skipped`.
    pub fn child_apply(&self, kind: &str, applied: bool) {
        self.child_applies
            .get_or_create(&ChildApplyLabels {
                kind: kind.to_string(),
                outcome: if applied { "applied" } else { "skipped" }.to_string(),
            })
            .inc();
    }

    /// Count what a written status change means for the DORA figures of Rollout `key`
    /// (`namespace/name`).
    pub fn record_dora(&self, key: &str, events: &[DoraEvent]) {
        let (namespace, rollout) = key.split_once('/').unwrap_or(("", key));
        for event in events {
            match event {
                DoraEvent::Promoted { lead_time } => {
                    self.promotions
                        .get_or_create(&RolloutLabels {
                            namespace: namespace.into(),
                            rollout: rollout.into(),
                        })
                        .inc();
                    if let Some(t) = lead_time {
                        self.lead_time.observe(*t);
                    }
                }
                DoraEvent::RolledBack {
                    reason,
                    time_to_detect,
                } => {
                    self.rollbacks
                        .get_or_create(&RollbackLabels {
                            namespace: namespace.into(),
                            rollout: rollout.into(),
                            reason: reason.clone(),
                        })
                        .inc();
                    if let Some(t) = time_to_detect {
                        self.time_to_detect.observe(*t);
                    }
                }
                DoraEvent::GateWait { gate, seconds } => self
                    .gate_wait
                    .get_or_create(&GateLabels {
                        gate: (*gate).into(),
                    })
                    .observe(*seconds),
            }
        }
    }

    /// Remember a rollout's phase (None: deleted) and recount the per-phase gauges.
    pub fn set_phase(&self, key: &str, phase: Option<Phase>) {
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        let (namespace, rollout) = key.split_once('/').unwrap_or(("", key));
        let labels = |p: Phase| RolloutPhaseLabels {
            namespace: namespace.into(),
            rollout: rollout.into(),
            phase: format!("{p:?}"),
        };
        let previous = match phase {
            Some(p) => phases.insert(key.to_string(), p),
            None => phases.remove(key),
        };
        if let Some(old) = previous.filter(|old| Some(*old) != phase) {
            self.rollout_phase.remove(&labels(old));
        }
        if let Some(p) = phase {
            self.rollout_phase.get_or_create(&labels(p)).set(1);
        }
        let mut counts: HashMap<String, i64> = HashMap::new();
        for p in phases.values() {
            *counts.entry(format!("{p:?}")).or_default() += 1;
        }
        self.rollouts.clear();
        for (phase, n) in counts {
            self.rollouts.get_or_create(&PhaseLabels { phase }).set(n);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail for these metric types.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dora_events_become_counters_and_histograms() {
        let m = Metrics::new();
        m.record_dora(
            "prod/shop",
            &[
                DoraEvent::Promoted {
                    lead_time: Some(600.0),
                },
                DoraEvent::GateWait {
                    gate: "contract",
                    seconds: 12.0,
                },
            ],
        );
        m.record_dora(
            "prod/shop",
            &[DoraEvent::RolledBack {
                reason: "AnalysisFailed".into(),
                time_to_detect: Some(90.0),
            }],
        );
        let text = m.render();
        for want in [
            "tollgate_promotions_total{namespace=\"prod\",rollout=\"shop\"} 1",
            "tollgate_rollbacks_total{namespace=\"prod\",rollout=\"shop\",reason=\"AnalysisFailed\"} 1",
            "tollgate_lead_time_seconds_sum 600.0",
            "tollgate_lead_time_seconds_count 1",
            "tollgate_time_to_detect_seconds_sum 90.0",
            "tollgate_gate_wait_seconds_count{gate=\"contract\"} 1",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }

    #[test]
    fn renders_counts_and_recounts_phases() {
        let m = Metrics::new();
        m.reconciles.inc();
        m.errors
            .get_or_create(&ErrorLabels {
                kind: ErrorKind::Transient,
            })
            .inc();
        m.decisions
            .get_or_create(&DecisionLabels {
                outcome: "Promoted".into(),
            })
            .inc();
        m.gate_seconds
            .get_or_create(&GateLabels {
                gate: "fleet".into(),
            })
            .observe(0.02);
        m.set_phase("ns/a", Some(Phase::Analyzing));
        m.set_phase("ns/b", Some(Phase::Analyzing));
        m.set_phase("ns/c", Some(Phase::Succeeded));
        m.set_phase("ns/b", Some(Phase::RolledBack));
        m.set_phase("ns/c", None);
        let text = m.render();
        assert!(text.contains("tollgate_reconciles_total 1"), "{text}");
        assert!(
            text.contains("tollgate_reconcile_errors_total{kind=\"Transient\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_decisions_total{outcome=\"Promoted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_rollouts{phase=\"Analyzing\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_rollouts{phase=\"RolledBack\"} 1"),
            "{text}"
        );
        assert!(!text.contains("phase=\"Succeeded\""), "{text}");
        assert!(
            text.contains(
                "tollgate_rollout_phase{namespace=\"ns\",rollout=\"b\",phase=\"RolledBack\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("rollout=\"b\",phase=\"Analyzing\"") && !text.contains("rollout=\"c\""),
            "a Rollout has one phase, a deleted one none: {text}"
        );
        assert!(
            text.contains("tollgate_gate_duration_seconds_count{gate=\"fleet\"} 1"),
            "{text}"
        );
    }
}
