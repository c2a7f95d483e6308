//! `setHeaderRoute` steps: which header routes are in force. A step with `match` puts (or
//! replaces) the header route of its name in `status.headerRoutes` as it is entered, so the same
//! pass's traffic carries it; the step is done on the next pass. The same step without `match`
//! takes the route of that name out. Outside `Analyzing` no header route is in force: leaving
//! the steps (promotion, rollback, abort, a new version) removes them all, so nothing tollgate
//! added to the team's route outlives the canary it pointed at.

use super::model::*;
use super::pass::Pass;
use super::steps::advance_step;
use crate::crd::{Phase, Reason, RolloutStatus, SetHeaderRouteStep};

/// Put `step`'s header route in force (or take it out when it has no `match`). Idempotent:
/// entering the same step again changes nothing.
pub(super) fn enter(status: &mut RolloutStatus, step: &SetHeaderRouteStep) {
    let routes = &mut status.header_routes;
    match routes.iter_mut().find(|r| r.name == step.name) {
        Some(existing) if !step.matches.is_empty() => *existing = step.clone(),
        Some(_) => routes.retain(|r| r.name != step.name),
        None if !step.matches.is_empty() => routes.push(step.clone()),
        None => {}
    }
}

/// The step itself: done once entered (the route is converged in the pass that entered it).
pub(super) fn step(pass: &mut Pass<'_>, step: &SetHeaderRouteStep) {
    let (reason, why) = if step.matches.is_empty() {
        (
            Reason::HeaderRouteRemoved,
            format!("header route {} removed", step.name),
        )
    } else {
        (
            Reason::HeaderRouteSet,
            format!(
                "requests with {} go to the canary (header route {})",
                step.describe(),
                step.name
            ),
        )
    };
    advance_step(pass, reason, why);
}

/// The header routes traffic should carry: those in force while the steps run, none otherwise.
pub fn in_force(status: &RolloutStatus) -> Vec<SetHeaderRouteStep> {
    if status.phase == Phase::Analyzing {
        status.header_routes.clone()
    } else {
        Vec::new()
    }
}

/// Outside the steps, forget every header route (and say so once).
pub(super) fn clear_outside_steps(pass: &mut Pass<'_>) {
    if pass.status.phase == Phase::Analyzing || pass.status.header_routes.is_empty() {
        return;
    }
    let names: Vec<String> = pass
        .status
        .header_routes
        .drain(..)
        .map(|r| r.name)
        .collect();
    pass.event(
        EventKind::Normal,
        Reason::HeaderRouteRemoved,
        format!(
            "header routes {} removed: the canary's steps are over",
            names.join(", ")
        ),
    );
}
