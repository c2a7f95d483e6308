//! The scale-down delay after a promotion (`spec.strategy.scaleDownDelay`) and the instant
//! rollback within it.
//!
//! At the commit point the previous stable version is held: the baseline workload runs it at
//! full size (a dedicated baseline simply grows), out of traffic, while the stable workload rolls
//! to the new version. The promotion is verified only once those pods are ready too, so when the
//! rollout enters `Succeeded` they are there; `status.rollbackWindow.until` is then set to the
//! end of the delay. Until then `abortRequest` is an instant rollback: traffic goes to the held
//! pods at once (no pod has to start), the new version's pods leave traffic, the previous version
//! becomes stable again and the stable workload returns to it, and the broker records it again.
//! After the delay the held pods go and abort is refused. A delay of `0s` holds nothing.

use std::time::Duration;

use super::model::*;
use super::pass::{add, std_duration, Pass};
use crate::crd::{Phase, Reason, RollbackWindowStatus, RolloutSpec, RolloutStatus};

fn delay(spec: &RolloutSpec) -> Duration {
    std_duration(&spec.strategy.scale_down_delay)
}

/// At the commit point: hold `previous` (the version that was stable) unless the delay is 0.
pub(super) fn open(pass: &mut Pass<'_>, previous: Option<String>) {
    pass.status.rollback_window = previous
        .filter(|p| *p != pass.spec.version && !delay(pass.spec).is_zero())
        .map(|previous_version| RollbackWindowStatus {
            previous_version,
            until: None,
            rolling_back: false,
        });
}

/// The version whose pods the baseline workload holds, when one is held.
pub fn held_version(status: &RolloutStatus) -> Option<String> {
    let held = matches!(
        status.phase,
        Phase::Promoting | Phase::Succeeded | Phase::RollingBack
    );
    status
        .rollback_window
        .as_ref()
        .filter(|_| held)
        .map(|w| w.previous_version.clone())
}

/// An instant rollback is under way: the held pods serve every request.
pub fn held_serving(status: &RolloutStatus) -> bool {
    status.phase == Phase::RollingBack
        && status
            .rollback_window
            .as_ref()
            .is_some_and(|w| w.rolling_back)
}

/// The held pods are ready (or nothing is held): the promotion may be called verified.
pub(super) fn held_ready(pass: &Pass<'_>) -> bool {
    match held_version(&pass.status) {
        Some(version) => pass
            .obs
            .children
            .baseline
            .settled_at(&version, pass.spec.replicas.max(1)),
        None => true,
    }
}

/// Entering `Succeeded`: the delay starts now. Returns the sentence the message ends with.
pub(super) fn start(pass: &mut Pass<'_>) -> Option<String> {
    let until = add(pass.now, delay(pass.spec));
    let window = pass.status.rollback_window.as_mut()?;
    window.until = Some(until);
    let previous = window.previous_version.clone();
    pass.wake_at(until);
    Some(format!(
        "; {previous} is kept at full size out of traffic until {until}: abort rolls back to it instantly until then"
    ))
}

/// In `Succeeded`: once the delay is over, let the held pods go.
pub(super) fn expire(pass: &mut Pass<'_>) {
    let Some(window) = &pass.status.rollback_window else {
        return;
    };
    let Some(until) = window.until else {
        return;
    };
    if pass.now < until {
        pass.wake_at(until);
        return;
    }
    let previous = window.previous_version.clone();
    pass.status.rollback_window = None;
    pass.event(
        EventKind::Normal,
        Reason::ScaleDownDelayEnded,
        format!("scale-down delay ended: {previous}'s pods go; abort no longer rolls back"),
    );
}

/// `abortRequest` on a `Succeeded` rollout: an instant rollback within the delay, refused
/// after it (with an Event saying why). Returns true when it rolled back.
pub(super) fn abort(pass: &mut Pass<'_>) -> bool {
    let version = pass.spec.version.clone();
    let window = pass.status.rollback_window.clone();
    let open_until = window
        .as_ref()
        .and_then(|w| w.until)
        .filter(|until| pass.now < *until && !window.as_ref().is_some_and(|w| w.rolling_back));
    let (Some(window), Some(until)) = (window, open_until) else {
        let why = match pass.status.rollback_window.as_ref().and_then(|w| w.until) {
            Some(until) => format!("its scale-down delay ended at {until}"),
            None => format!(
                "no previous version is kept (spec.strategy.scaleDownDelay {}s)",
                delay(pass.spec).as_secs()
            ),
        };
        pass.event(
            EventKind::Warning,
            Reason::AbortIgnored,
            format!(
                "abortRequest refused: {version} is promoted and {why}; roll back by setting spec.version to the version wanted"
            ),
        );
        return false;
    };
    let previous = window.previous_version.clone();
    pass.status.stable_version = Some(previous.clone());
    pass.status.rejected_version = Some(version.clone());
    pass.status.canary_version = Some(version.clone());
    pass.status.current_weight = 0;
    if let Some(w) = pass.status.rollback_window.as_mut() {
        w.rolling_back = true;
    }
    pass.enter(
        Phase::RollingBack,
        Reason::Aborted,
        format!(
            "aborted on request within the scale-down delay (until {until}): instant rollback, every request goes to {previous}'s pods while the stable workload returns to {previous}"
        ),
    );
    pass.wake_in(Duration::ZERO);
    true
}

/// In `RollingBack` during an instant rollback: once the stable workload runs the previous
/// version again, traffic returns to it and the held pods go (the rollback then ends as any
/// other). Returns true while it is still under way.
pub(super) fn rolling_back(pass: &mut Pass<'_>) -> bool {
    if !held_serving(&pass.status) {
        return false;
    }
    let stable = pass.status.stable_version.clone().unwrap_or_default();
    if pass
        .obs
        .children
        .stable
        .settled_at(&stable, pass.spec.replicas.max(1))
    {
        pass.status.rollback_window = None;
        pass.wake_in(Duration::ZERO);
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
    true
}
