//! Where every decision about a Rollout is made.
//!
//! [`decide`] is pure: it takes the spec, the status as last written, what the operator observed
//! in this pass, and the time, and returns a [`Plan`]: the next status, the child workloads and
//! traffic wanted, the Events to emit and when to look again. It reads no clock and does no I/O,
//! so a restarted operator that reads the same status makes the same decision, and the tables in
//! the tests cover it exhaustively.
//!
//! [`needs`] is its companion: from the same inputs it says which observations this pass must
//! gather (ask the broker, attest the fleet, take an analysis look, record a deployment), so a
//! gate is only consulted when its answer can change something.
//!
//! The pipeline:
//!
//! ```text
//! Pending → ContractGate → CanaryStarting → FleetCheck → SmokeCheck → Analyzing(step i)
//!         → Promoting → Succeeded            (any gate "no" before traffic → Blocked)
//!                     ↘ RollingBack → RolledBack   (regression, deadline, abort)
//! ```
//!
//! Rules worth knowing:
//! - Canary pods are verified (fleet, smoke) before they serve any traffic: until then the
//!   plan keeps them out of the Service (`canary_serving = false`) and the weight at 0.
//! - The commit point of a promotion is `status.stableVersion = spec.version`. Before it,
//!   anything can still roll back; after it, the operator only converges to the new stable and
//!   verifies it, so a crash never repeats or half-does a promotion.
//! - A new `spec.version` while a rollout is in flight supersedes it: the old canary is removed
//!   (traffic back to stable), its evidence is dropped, and the pipeline starts over for the new
//!   version from the contract gate. Other spec edits apply from the next decision on.
//! - A version that was blocked or rolled back is not tried again until `spec.retryRequest`
//!   changes or `spec.version` moves on.
//! - Analysis that cannot see data (metrics backend down, no traffic) is inconclusive: it never
//!   rolls back and never promotes; at a step's end or `maxDuration` the `onInconclusive`
//!   policy applies (hold for a person by default).
//!
//! One file per concern: [`model`] (the types), [`needs`], `desired` (children and traffic
//! wanted), `pass` (a decision in progress and the transitions every step shares), `controls`
//! (version changes and manual tokens), `gates` (contract, canary start, fleet, smoke), `steps`
//! (analysis and one function per step kind), `header_routes` (the `setHeaderRoute` steps), `promote` (promotion, rollback, deployment
//! records), `invalid` (a Rollout that cannot be carried out as written), [`identity`] (whether the
//! version and images name one build), [`rollback`] (whether stable could take all traffic
//! back), `peers` (the hosts
//! and timeouts a Rollout may ask for), [`undeployment`] (what a deleted Rollout tells the
//! broker, and when its finalizer goes) and `conditions`.
//!
//! Whether a decision is told to people (the webhook) is decided here too: [`Plan::notify`]
//! is set when the pass entered `Succeeded`, `RolledBack` or `Blocked`.

pub mod adoption;
mod conditions;
mod controls;
mod desired;
mod gates;
pub mod header_routes;
pub mod identity;
mod invalid;
pub mod model;
mod needs;
mod pass;
mod peers;
mod promote;
pub mod rollback;
mod step_events;
mod steps;
pub mod undeployment;
pub mod window;

use jiff::Timestamp;

use crate::crd::{Phase, RolloutSpec, RolloutStatus};

pub use desired::desired_children;
pub use model::*;
pub use needs::needs;
pub use peers::{
    metrics_problem, peer_problem, timeout_problem, PeerHosts, MAX_FLEET_TIMEOUT,
    MAX_QUERY_TIMEOUT, MAX_SMOKE_TIMEOUT,
};

use pass::Pass;

/// Decide what happens next. Pure: see the module documentation.
pub fn decide(
    spec: &RolloutSpec,
    current: Option<&RolloutStatus>,
    obs: &Observations,
    now: Timestamp,
) -> Plan {
    let mut pass = Pass {
        spec,
        obs,
        now,
        status: current.cloned().unwrap_or_default(),
        events: Vec::new(),
        wake: None,
        notify: None,
    };
    if obs.generation.is_some() {
        pass.status.observed_generation = obs.generation;
    }
    scale_status(&mut pass.status, obs);

    identity::track(&mut pass);
    let spec_problem = obs.spec_problem.clone().or_else(|| identity::problem(spec));
    let stalled_by_spec = spec_problem.is_some();
    match &spec_problem {
        Some(problem) => invalid::hold(&mut pass, problem),
        None => {
            promote::apply_record_outcome(&mut pass);
            adoption::track(&mut pass);
            if !controls::handle_version_and_tokens(&mut pass) {
                step_phase(&mut pass);
            }
            header_routes::clear_outside_steps(&mut pass);
            adoption::track(&mut pass);
            promote::schedule_record_retry(&mut pass);
        }
    }

    let conditions = conditions::conditions_for(&pass.status, current, now, stalled_by_spec);
    pass.status.conditions = conditions;
    let children = desired_children(spec, &pass.status);
    let original_replicas = if stalled_by_spec {
        None
    } else {
        adoption::original_replicas(spec, &pass.status, obs.children.stable.ready)
    };
    let original_is_stable =
        adoption::original_is_stable(spec, &pass.status, children.canary.is_some());
    if original_replicas.is_some_and(|want| obs.original.as_ref().is_some_and(|o| o.ready > want)) {
        // Progressive scale-down follows the stable pods becoming ready.
        pass.wake_in(POD_WAIT_REQUEUE);
    }
    let requeue_after = pass.requeue_after();
    let notify = pass
        .notify
        .or_else(|| step_events::step_event(current, &pass.status));
    Plan {
        status: pass.status,
        children,
        events: pass.events,
        requeue_after,
        original_replicas,
        original_is_stable,
        notify,
    }
}

/// What the `/scale` subresource reports: every pod of the Rollout's tracks, and their
/// selector (an HorizontalPodAutoscaler measures those pods and sets `spec.replicas`).
fn scale_status(status: &mut RolloutStatus, obs: &Observations) {
    let c = &obs.children;
    let total = c
        .stable
        .total
        .saturating_add(c.canary.total)
        .saturating_add(c.baseline.total);
    status.replicas = Some(total.max(0));
    if obs.selector.is_some() {
        status.selector = obs.selector.clone();
    }
}

fn step_phase(pass: &mut Pass<'_>) {
    match pass.status.phase {
        Phase::Pending => {}
        Phase::ContractGate => gates::contract_gate(pass),
        Phase::CanaryStarting => gates::canary_starting(pass),
        Phase::FleetCheck => gates::fleet_check(pass),
        Phase::SmokeCheck => gates::smoke_check(pass),
        Phase::Analyzing => steps::analyzing(pass),
        Phase::Promoting => promote::promoting(pass),
        Phase::RollingBack => promote::rolling_back(pass),
        Phase::Succeeded => window::expire(pass),
        Phase::RolledBack | Phase::Blocked => {}
    }
}

#[cfg(test)]
mod tests;
