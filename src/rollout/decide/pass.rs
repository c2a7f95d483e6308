//! One decision in progress ([`Pass`]): the status being written, the Events and the earliest
//! wake-up, with the transitions every step shares (enter a phase, start over, promote, roll
//! back, block), and the small time helpers they use. No step logic of its own.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::model::*;
use crate::crd::{Decision, Phase, Reason, RolloutSpec, RolloutStatus};

pub(super) fn std_duration(d: &kube::core::Duration) -> Duration {
    (*d).into()
}

pub(super) fn add(t: Timestamp, d: Duration) -> Timestamp {
    let signed = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(signed).unwrap_or(Timestamp::MAX)
}

/// Time from `since` to `now`, zero when `since` is missing or in the future.
pub(super) fn elapsed(since: Option<Timestamp>, now: Timestamp) -> Duration {
    since
        .and_then(|s| Duration::try_from(now.duration_since(s)).ok())
        .unwrap_or(Duration::ZERO)
}

/// Time from `now` until `at`, zero when already past.
pub(super) fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A token that has not been acted on yet.
pub(super) fn fresh(token: &Option<String>, handled: &Option<String>) -> bool {
    token.is_some() && token != handled
}

pub(super) fn retry_delay(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 16) as u32 - 1;
    RECORD_RETRY_BASE
        .saturating_mul(1u32 << exp)
        .min(RECORD_RETRY_MAX)
}

pub(super) struct Pass<'a> {
    pub(super) spec: &'a RolloutSpec,
    pub(super) obs: &'a Observations,
    pub(super) now: Timestamp,
    pub(super) status: RolloutStatus,
    pub(super) events: Vec<PlannedEvent>,
    /// Earliest time something is due (becomes `requeue_after`).
    pub(super) wake: Option<Timestamp>,
    /// The notification this pass makes (entering a resting phase).
    pub(super) notify: Option<NotificationEvent>,
}

impl Pass<'_> {
    pub(super) fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    pub(super) fn wake_in(&mut self, d: Duration) {
        self.wake_at(add(self.now, d));
    }

    pub(super) fn event(&mut self, kind: EventKind, reason: Reason, message: String) {
        self.events.push(PlannedEvent {
            kind,
            reason,
            message,
        });
    }

    /// Move to `phase`, record why, and emit one Event.
    pub(super) fn enter(&mut self, phase: Phase, reason: Reason, message: String) {
        let kind = match phase {
            Phase::Blocked | Phase::RollingBack | Phase::RolledBack => EventKind::Warning,
            _ => EventKind::Normal,
        };
        self.status.phase = phase;
        self.status.phase_started_at = Some(self.now);
        if let Some(event) = NotificationEvent::for_phase(phase) {
            self.notify = Some(event);
        }
        self.status.hold_reason = None;
        self.say(reason, message.clone());
        self.status
            .record(Decision::new(self.now, phase, reason, message.clone()));
        self.event(kind, reason, message);
    }

    /// Update the reason and message without a transition.
    pub(super) fn say(&mut self, reason: Reason, message: String) {
        self.status.set_reason(reason, message);
    }

    pub(super) fn phase_elapsed(&self) -> Duration {
        elapsed(self.status.phase_started_at, self.now)
    }

    pub(super) fn deadline_passed(&self) -> bool {
        self.phase_elapsed() > std_duration(&self.spec.progress_deadline())
    }

    /// Start the pipeline for `spec.version` from scratch.
    pub(super) fn start(&mut self, reason: Reason, message: String) {
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
        // A new rollout lets the previous promotion's held pods go.
        s.rollback_window = None;
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
    pub(super) fn after_contract_gate(&mut self) {
        if self.status.stable_version.is_none() {
            self.status.stable_version = Some(self.spec.version.clone());
            self.enter(
                Phase::Promoting,
                Reason::InitialDeployment,
                format!(
                    "no stable version yet: deploying {} as the first stable version",
                    self.spec.version
                ),
            );
        } else {
            self.enter(
                Phase::CanaryStarting,
                Reason::CanaryStarting,
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
    pub(super) fn roll_back(&mut self, reason: Reason, message: String) {
        self.status.current_weight = 0;
        self.status.rejected_version = Some(self.spec.version.clone());
        self.enter(Phase::RollingBack, reason, message);
        self.wake_in(Duration::ZERO);
    }

    /// A gate said no before any traffic moved.
    pub(super) fn block(&mut self, reason: Reason, message: String) {
        self.status.current_weight = 0;
        self.status.rejected_version = Some(self.spec.version.clone());
        // Nothing is under test any more; `rejectedVersion` names what was blocked.
        self.status.canary_version = None;
        self.status.current_step_index = None;
        self.enter(Phase::Blocked, reason, message);
    }

    /// Enter `Promoting`: the steps are done (or a person asked).
    pub(super) fn promote(&mut self, reason: Reason, message: String) {
        let message = format!("{message}; promoting {}", self.spec.version);
        self.enter(Phase::Promoting, reason, message);
        self.wake_in(Duration::ZERO);
    }

    pub(super) fn requeue_after(&self) -> Option<Duration> {
        self.wake.map(|w| until(w, self.now))
    }
}
