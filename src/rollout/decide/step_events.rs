//! Step changes and pauses as notifications, derived from the status a pass wrote compared
//! with the one it read (so no step or pause code path has to remember to notify):
//!
//! - `StepStarted`: the pass entered `Analyzing` or moved to another step of it.
//! - `Paused`: the pass began to wait for a person: a `pause` step without duration
//!   (`PausedAtStep`) or `spec.paused` (`Paused`). A timed pause is a step like the others.
//!
//! An outcome (promoted, rolled back, blocked) decided by the same pass wins: one pass makes at
//! most one notification.

use super::model::NotificationEvent;
use crate::crd::{Phase, Reason, RolloutStatus};

/// The step or pause notification of a pass that read `previous` and wrote `status`.
pub(super) fn step_event(
    previous: Option<&RolloutStatus>,
    status: &RolloutStatus,
) -> Option<NotificationEvent> {
    if status.phase != Phase::Analyzing {
        return None;
    }
    let before = previous?;
    if before.phase != Phase::Analyzing || before.current_step_index != status.current_step_index {
        return Some(NotificationEvent::StepStarted);
    }
    let waits_for_a_person =
        |s: &RolloutStatus| matches!(s.reason(), Some(Reason::PausedAtStep | Reason::Paused));
    (waits_for_a_person(status) && before.reason != status.reason)
        .then_some(NotificationEvent::Paused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzing(step: i32, reason: Reason) -> RolloutStatus {
        let mut s = RolloutStatus {
            phase: Phase::Analyzing,
            current_step_index: Some(step),
            ..Default::default()
        };
        s.set_reason(reason, String::new());
        s
    }

    #[test]
    fn entering_analysis_and_each_new_step_is_a_step_event() {
        let fleet = RolloutStatus {
            phase: Phase::FleetCheck,
            ..Default::default()
        };
        let first = analyzing(0, Reason::StepStarted);
        assert_eq!(
            step_event(Some(&fleet), &first),
            Some(NotificationEvent::StepStarted)
        );
        let second = analyzing(1, Reason::WeightSet);
        assert_eq!(
            step_event(Some(&first), &second),
            Some(NotificationEvent::StepStarted)
        );
        // The same step written again (a look, a condition): nothing.
        assert_eq!(step_event(Some(&second), &second.clone()), None);
        assert_eq!(step_event(None, &first), None);
    }

    #[test]
    fn waiting_for_a_person_is_a_pause_event_once() {
        let step = analyzing(2, Reason::StepStarted);
        let paused = analyzing(2, Reason::PausedAtStep);
        assert_eq!(
            step_event(Some(&step), &paused),
            Some(NotificationEvent::Paused)
        );
        assert_eq!(step_event(Some(&paused), &paused.clone()), None);
        let held = analyzing(2, Reason::Paused);
        assert_eq!(
            step_event(Some(&step), &held),
            Some(NotificationEvent::Paused)
        );
        // A timed pause is not news.
        let timed = analyzing(2, Reason::Pausing);
        assert_eq!(step_event(Some(&step), &timed), None);
        // Nothing outside analysis.
        let done = RolloutStatus {
            phase: Phase::Succeeded,
            ..Default::default()
        };
        assert_eq!(step_event(Some(&step), &done), None);
    }
}
