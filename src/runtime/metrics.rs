//! The operator's own metrics, served on `/metrics` in the Prometheus text format.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
        Metrics {
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

    /// Remember a rollout's phase (None: deleted) and recount the per-phase gauge.
    pub fn set_phase(&self, key: &str, phase: Option<Phase>) {
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        match phase {
            Some(p) => {
                phases.insert(key.to_string(), p);
            }
            None => {
                phases.remove(key);
            }
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
            text.contains("tollgate_gate_duration_seconds_count{gate=\"fleet\"} 1"),
            "{text}"
        );
    }
}
