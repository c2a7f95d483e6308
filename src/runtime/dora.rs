//! DORA figures from the operator's own decisions: what one written status change means for
//! delivery (a promotion and its lead time, a rollback and its time to detect, how long a gate
//! held the rollout). A pure function of the status before and after the write, so the figures
//! follow from what the API server stored, once per transition: a reconcile that writes nothing
//! counts nothing, and a restarted operator does not count a transition again (the stored
//! status already shows it).
//!
//! Change failure rate is `rollbacks / (promotions + rollbacks)` and deployment frequency the
//! rate of promotions (the Grafana board in `deploy/grafana/` computes both).

use jiff::Timestamp;

use crate::crd::{Phase, RolloutStatus};

/// What one written transition adds to the DORA figures.
#[derive(Clone, Debug, PartialEq)]
pub enum DoraEvent {
    /// The new version became stable; seconds since this rollout attempt began (its first
    /// decision after the previous outcome), when the history still holds that decision.
    Promoted { lead_time: Option<f64> },
    /// Traffic went back to stable, for `reason` (`status.reason`, e.g. `AnalysisFailed`,
    /// `Aborted`); seconds since the canary began serving, when it did.
    RolledBack {
        reason: String,
        time_to_detect: Option<f64>,
    },
    /// The rollout left a gate's phase after waiting there this long.
    GateWait { gate: &'static str, seconds: f64 },
}

/// The gate a phase waits on.
fn gate(phase: Phase) -> Option<&'static str> {
    match phase {
        Phase::ContractGate => Some("contract"),
        Phase::FleetCheck => Some("fleet"),
        Phase::SmokeCheck => Some("smoke"),
        Phase::Analyzing => Some("analysis"),
        _ => None,
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1000.0
}

fn rolling_back(phase: Phase) -> bool {
    matches!(phase, Phase::RollingBack | Phase::RolledBack)
}

/// When the attempt that `after` ends began: the first decision after the last earlier
/// outcome in the (bounded) history, not counting the outcome just recorded.
fn attempt_start(after: &RolloutStatus) -> Option<Timestamp> {
    let earlier = after
        .history
        .iter()
        .rposition(|d| !d.phase.is_terminal() && d.phase != Phase::Promoting)
        .map(|last| &after.history[..=last])?;
    let start = earlier
        .iter()
        .rposition(|d| d.phase.is_terminal())
        .map_or(0, |i| i + 1);
    earlier.get(start).map(|d| d.at)
}

/// What the write from `before` (None: a Rollout's first status) to `after` at `now` adds.
pub fn transitions(
    before: Option<&RolloutStatus>,
    after: &RolloutStatus,
    now: Timestamp,
) -> Vec<DoraEvent> {
    let mut events = Vec::new();
    let Some(before) = before else {
        return events;
    };
    if before.phase != after.phase {
        if let (Some(gate), Some(since)) = (gate(before.phase), before.phase_started_at) {
            events.push(DoraEvent::GateWait {
                gate,
                seconds: seconds(since, now).max(0.0),
            });
        }
    }
    if after.phase == Phase::Succeeded && !before.phase.is_terminal() {
        events.push(DoraEvent::Promoted {
            lead_time: attempt_start(after).map(|t| seconds(t, now).max(0.0)),
        });
    }
    if rolling_back(after.phase) && !rolling_back(before.phase) {
        let started = before.analysis.as_ref().and_then(|a| a.started_at);
        events.push(DoraEvent::RolledBack {
            reason: after.reason.clone().unwrap_or_else(|| "Unknown".into()),
            time_to_detect: started.map(|t| seconds(t, now).max(0.0)),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AnalysisStatus, Decision};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn decision(s: i64, phase: Phase, reason: &str) -> Decision {
        Decision {
            at: at(s),
            phase,
            reason: reason.into(),
            message: String::new(),
        }
    }

    fn status(phase: Phase, since: i64, history: Vec<Decision>) -> RolloutStatus {
        RolloutStatus {
            phase,
            phase_started_at: Some(at(since)),
            history,
            ..Default::default()
        }
    }

    #[test]
    fn a_promotion_counts_once_with_its_lead_time_from_the_attempt_start() {
        let history = vec![
            decision(0, Phase::Succeeded, "Promoted"),
            decision(100, Phase::ContractGate, "NewVersion"),
            decision(130, Phase::CanaryStarting, "Deployable"),
            decision(200, Phase::Analyzing, "StepStarted"),
            decision(700, Phase::Promoting, "AnalysisPassed"),
        ];
        let before = status(Phase::Promoting, 700, history.clone());
        let mut done = history;
        done.push(decision(760, Phase::Succeeded, "PromotionCommitted"));
        let after = status(Phase::Succeeded, 760, done);
        assert_eq!(
            transitions(Some(&before), &after, at(760)),
            vec![DoraEvent::Promoted {
                lead_time: Some(660.0)
            }]
        );
        // Written again (a later reconcile, a restarted operator): nothing more.
        assert!(transitions(Some(&after), &after, at(800)).is_empty());
        // A first status is no transition.
        assert!(transitions(None, &after, at(760)).is_empty());
    }

    #[test]
    fn a_rollback_counts_by_reason_with_the_time_since_the_canary_began_serving() {
        let mut before = status(Phase::Analyzing, 200, Vec::new());
        before.analysis = Some(AnalysisStatus {
            started_at: Some(at(200)),
            ..Default::default()
        });
        let mut after = status(Phase::RollingBack, 590, Vec::new());
        after.reason = Some("AnalysisFailed".into());
        assert_eq!(
            transitions(Some(&before), &after, at(590)),
            vec![
                DoraEvent::GateWait {
                    gate: "analysis",
                    seconds: 390.0
                },
                DoraEvent::RolledBack {
                    reason: "AnalysisFailed".into(),
                    time_to_detect: Some(390.0)
                }
            ]
        );
        // RollingBack -> RolledBack is the same rollback.
        let mut done = after.clone();
        done.phase = Phase::RolledBack;
        assert!(transitions(Some(&after), &done, at(620)).is_empty());
    }

    #[test]
    fn leaving_a_gate_records_how_long_it_held_the_rollout() {
        let before = status(Phase::ContractGate, 100, Vec::new());
        let after = status(Phase::CanaryStarting, 145, Vec::new());
        assert_eq!(
            transitions(Some(&before), &after, at(145)),
            vec![DoraEvent::GateWait {
                gate: "contract",
                seconds: 45.0
            }]
        );
        let blocked = status(Phase::Blocked, 160, Vec::new());
        let smoke = status(Phase::SmokeCheck, 150, Vec::new());
        assert_eq!(
            transitions(Some(&smoke), &blocked, at(160)),
            vec![DoraEvent::GateWait {
                gate: "smoke",
                seconds: 10.0
            }]
        );
        // Phases that wait on no gate record nothing.
        let starting = status(Phase::CanaryStarting, 145, Vec::new());
        let fleet = status(Phase::FleetCheck, 170, Vec::new());
        assert!(transitions(Some(&starting), &fleet, at(170)).is_empty());
    }
}
