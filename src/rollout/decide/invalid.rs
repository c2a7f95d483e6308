//! A Rollout that cannot be carried out as written: a problem found while observing (no broker
//! or Prometheus address, an invalid fleet-check or smoke setting, an unbuildable template, an
//! invalid judge policy) holds the rollout where it is. The phase stays; the reason becomes
//! `InvalidSpec`, with one history entry and one Warning Event per distinct problem, and the
//! conditions say `Stalled` (never `Progressing` beside it) until the Rollout changes.

use super::model::*;
use super::pass::Pass;
use crate::crd::{Decision, Reason};

/// Hold on `problem`. Deciding again on the same problem changes nothing, so a status write
/// (which wakes the controller) does not lead to another.
pub(super) fn hold(pass: &mut Pass<'_>, problem: &SpecProblem) {
    let message = format!(
        "cannot proceed until the Rollout changes: {}",
        problem.message
    );
    if pass.status.message.as_deref() == Some(message.as_str()) {
        return;
    }
    pass.say(Reason::InvalidSpec, message.clone());
    let phase = pass.status.phase;
    pass.status.record(Decision::new(
        pass.now,
        phase,
        Reason::InvalidSpec,
        message.clone(),
    ));
    pass.event(EventKind::Warning, Reason::InvalidSpec, message);
}
