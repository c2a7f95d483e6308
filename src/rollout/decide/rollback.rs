//! Rollback readiness: before the canary takes any traffic, and before each weight increase,
//! the stable track must be able to take all of it back. Its workload must run the stable
//! version, ask for the size the traffic plan declares for it, and have that many pods ready
//! (the stable pods were attested by the fleet check before any traffic; a stable pod that
//! reports the wrong version or configuration blocks there with `FleetCheckFailed`).
//!
//! Otherwise the canary takes no traffic, or no more, and the status says `RollbackNotReady`
//! and what is missing. A stable track short of pods is often passing (a pod being replaced, a
//! scale-up), so the rollout holds and looks again; at `progressDeadline` a rollout that never
//! served the canary is Blocked with `RollbackNotReady`, one that already did rolls back.

use std::time::Duration;

use super::desired::desired_children;
use super::model::*;
use super::pass::{std_duration, Pass};
use crate::crd::{Reason, RolloutSpec, RolloutStatus};

/// What the stable track lacks to take all traffic back, naming it; `None` when it can (or
/// when there is no stable version to go back to).
pub fn gap(spec: &RolloutSpec, status: &RolloutStatus, children: &ChildrenState) -> Option<String> {
    let want = desired_children(spec, status).stable?;
    let got = &children.stable;
    let mut missing = Vec::new();
    if got.version.as_deref() != Some(want.version.as_str()) {
        missing.push(match &got.version {
            Some(v) => format!("the stable workload runs {v}, not {}", want.version),
            None => format!("the stable workload ({}) does not exist", want.version),
        });
    } else {
        if got.desired < want.replicas {
            missing.push(format!(
                "the stable workload asks for {} of the {} pods declared",
                got.desired, want.replicas
            ));
        }
        if got.ready < want.replicas {
            let absent = want
                .replicas
                .saturating_sub(got.total.max(got.ready))
                .max(0);
            let not_ready = want.replicas - got.ready - absent;
            let mut parts = Vec::new();
            if absent > 0 {
                parts.push(format!("{absent} missing"));
            }
            if not_ready > 0 {
                parts.push(format!("{not_ready} not ready"));
            }
            missing.push(format!(
                "{} of {} stable pods ({}) ready ({})",
                got.ready,
                want.replicas,
                want.version,
                parts.join(", ")
            ));
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the stable track cannot take all traffic back: {}",
            missing.join("; ")
        )
    })
}

/// Hold on `missing` (from [`gap`]) and look again; past `progressDeadline`, measured from
/// `since`, block (nothing served the canary yet) or roll back (`served`). A Warning Event
/// marks the start of a hold, not every look.
pub(super) fn hold(pass: &mut Pass<'_>, missing: String, since_elapsed: Duration, served: bool) {
    let deadline = std_duration(&pass.spec.progress_deadline());
    if since_elapsed > deadline {
        let message = format!(
            "{missing} within progressDeadline ({}s)",
            deadline.as_secs()
        );
        if served {
            pass.roll_back(Reason::RollbackNotReady, message);
        } else {
            pass.block(Reason::RollbackNotReady, message);
        }
        return;
    }
    let message = format!(
        "{missing}; the canary takes no {}traffic until it can",
        if served { "more " } else { "" }
    );
    if pass.status.reason() != Some(Reason::RollbackNotReady) {
        pass.event(
            EventKind::Warning,
            Reason::RollbackNotReady,
            message.clone(),
        );
    }
    pass.say(Reason::RollbackNotReady, message);
    pass.wake_in(POD_WAIT_REQUEUE);
}
