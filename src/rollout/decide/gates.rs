//! The gates before any traffic moves: the contract gate (the broker's answer), the canary's
//! start, the fleet check and the smoke checks. A "no" here blocks (nothing served the canary
//! yet); a pass moves on to the next gate and finally to analysis.

use std::time::Duration;

use super::desired::desired_children;
use super::model::*;
use super::needs::children_settled;
use super::pass::{add, elapsed, std_duration, Pass};
use super::steps::start_analysis;
use crate::crd::{ContractGateStatus, FleetStatus, GateVerdict, Phase, Reason};

pub(super) fn contract_gate(pass: &mut Pass<'_>) {
    let Some(gate) = pass.spec.contract_gate.clone() else {
        pass.after_contract_gate();
        return;
    };
    let poll = std_duration(&gate.poll_interval);
    let budget = std_duration(&gate.unknown_budget);
    let Some(answer) = pass.obs.contract.clone() else {
        // Not asked in this pass: wait for the next poll.
        let last = pass
            .status
            .contract_gate
            .as_ref()
            .and_then(|g| g.checked_at);
        pass.wake_at(last.map_or(pass.now, |t| add(t, poll)));
        return;
    };
    let now = pass.now;
    let mut evidence = pass.status.contract_gate.clone().unwrap_or_default();
    evidence.checked_at = Some(now);
    evidence.attempts = evidence.attempts.saturating_add(1);
    evidence.dry_run = gate.dry_run;
    let target = format!(
        "{} {} to {}",
        gate.pacticipant, pass.spec.version, gate.environment
    );
    match answer {
        ContractAnswer::Deployable { reason, summary } => {
            evidence.verdict = GateVerdict::Passed;
            evidence.deployable = Some(true);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary;
            evidence.unknown_since = None;
            pass.status.contract_gate = Some(evidence);
            pass.event(
                EventKind::Normal,
                Reason::ContractGatePassed,
                format!("can-i-deploy {target}: yes ({reason})"),
            );
            pass.after_contract_gate();
        }
        ContractAnswer::NotDeployable { reason, summary } => {
            evidence.deployable = Some(false);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary;
            evidence.unknown_since = None;
            // A "no" stays a "no" in the record even in dry run; dry run only skips the block.
            evidence.verdict = GateVerdict::Blocked;
            pass.status.contract_gate = Some(evidence);
            if gate.dry_run {
                pass.event(
                    EventKind::Warning,
                    Reason::ContractGateDryRun,
                    format!(
                        "can-i-deploy {target}: NO ({reason}); continuing because dryRun is set"
                    ),
                );
                pass.after_contract_gate();
            } else {
                pass.block(
                    Reason::NotDeployable,
                    format!("can-i-deploy {target}: no: {reason}"),
                );
            }
        }
        ContractAnswer::Refused { reason } => {
            evidence.verdict = GateVerdict::Blocked;
            evidence.deployable = None;
            evidence.reason = Some(reason.clone());
            pass.status.contract_gate = Some(evidence);
            pass.block(
                Reason::BrokerRefused,
                format!("the Pact Broker refused can-i-deploy {target}: {reason}"),
            );
        }
        ContractAnswer::Unknown { reason, summary } => {
            evidence.summary = summary;
            wait_or_block(
                pass,
                evidence,
                Reason::ContractUnknown,
                format!("can-i-deploy {target}: unknown: {reason}"),
                poll,
                budget,
            );
        }
        ContractAnswer::Unreachable { reason } => {
            evidence.summary = None;
            wait_or_block(
                pass,
                evidence,
                Reason::BrokerUnreachable,
                format!("the Pact Broker could not be asked about {target}: {reason}"),
                poll,
                budget,
            );
        }
    }
}

/// An unknown or missing answer: keep asking within the budget, then block (fail closed).
pub(super) fn wait_or_block(
    pass: &mut Pass<'_>,
    mut evidence: ContractGateStatus,
    reason: Reason,
    message: String,
    poll: Duration,
    budget: Duration,
) {
    let now = pass.now;
    let since = *evidence.unknown_since.get_or_insert(now);
    evidence.verdict = GateVerdict::Pending;
    evidence.deployable = None;
    evidence.reason = Some(message.clone());
    pass.status.contract_gate = Some(evidence);
    let waited = elapsed(Some(since), now);
    if waited >= budget {
        if let Some(e) = pass.status.contract_gate.as_mut() {
            e.verdict = GateVerdict::Blocked;
        }
        pass.block(
            reason,
            format!(
                "{message}; no answer within the {}s budget",
                budget.as_secs()
            ),
        );
    } else {
        pass.say(
            reason,
            format!(
                "{message}; asking again in {}s ({}s of {}s budget used)",
                poll.as_secs(),
                waited.as_secs(),
                budget.as_secs()
            ),
        );
        pass.wake_in(poll);
    }
}

pub(super) fn canary_starting(pass: &mut Pass<'_>) {
    let desired = desired_children(pass.spec, &pass.status);
    if children_settled(&desired, &pass.obs.children) {
        pass.enter(
            Phase::FleetCheck,
            Reason::CanaryReady,
            "canary pods are ready; checking what every pod runs".into(),
        );
        if !pass.spec.fleet_check.enabled {
            after_fleet_check(pass);
        }
        pass.wake_in(Duration::ZERO);
    } else if pass.deadline_passed() {
        pass.roll_back(
            Reason::ProgressDeadlineExceeded,
            format!(
                "canary pods not ready within progressDeadline ({}s)",
                std_duration(&pass.spec.progress_deadline).as_secs()
            ),
        );
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}

pub(super) fn fleet_failure_message(fleet: &FleetStatus) -> String {
    let names: Vec<String> = fleet
        .failing_pods
        .iter()
        .take(5)
        .map(|p| match (&p.reported, &p.expected) {
            (Some(r), Some(e)) => format!("{} ({}: reported {r}, expected {e})", p.pod, p.problem),
            _ => format!("{} ({})", p.pod, p.problem),
        })
        .collect();
    let listed = i32::try_from(names.len()).unwrap_or(i32::MAX);
    let more = fleet.pods_failing.saturating_sub(listed);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} of {} pods failed the fleet check: {}{more}",
        fleet.pods_failing,
        fleet.pods_checked,
        names.join(", ")
    )
}

/// Hold on pods that did not answer (the fleet gate's [`FleetVerdict::Unanswered`]) until the
/// progress deadline. Returns true when holding.
pub(super) fn hold_on_unanswered(pass: &mut Pass<'_>, observed: &FleetObservation) -> bool {
    if observed.verdict != FleetVerdict::Unanswered || pass.deadline_passed() {
        return false;
    }
    let fleet = &observed.status;
    let message = format!(
        "{}; asking again (blocks after progressDeadline {}s)",
        fleet_failure_message(fleet),
        std_duration(&pass.spec.progress_deadline).as_secs()
    );
    pass.status.fleet = Some(fleet.clone());
    pass.say(Reason::FleetUnanswered, message);
    pass.wake_in(POD_WAIT_REQUEUE);
    true
}

pub(super) fn fleet_check(pass: &mut Pass<'_>) {
    if !pass.spec.fleet_check.enabled {
        after_fleet_check(pass);
        return;
    }
    match pass.obs.fleet.clone() {
        Some(observed) if observed.verdict == FleetVerdict::Passed => {
            let fleet = observed.status;
            let message = format!("all {} pods run what they should", fleet.pods_checked);
            pass.status.fleet = Some(fleet);
            pass.event(EventKind::Normal, Reason::FleetCheckPassed, message);
            after_fleet_check(pass);
        }
        Some(observed) if hold_on_unanswered(pass, &observed) => {}
        Some(observed) => {
            let message = fleet_failure_message(&observed.status);
            pass.status.fleet = Some(observed.status);
            // No traffic reached the canary yet: this is a block, not a rollback.
            pass.block(Reason::FleetCheckFailed, message);
        }
        None => {
            let desired = desired_children(pass.spec, &pass.status);
            if !children_settled(&desired, &pass.obs.children) && pass.deadline_passed() {
                pass.block(
                    Reason::ProgressDeadlineExceeded,
                    "pods did not settle for the fleet check within progressDeadline".into(),
                );
            } else {
                pass.wake_in(POD_WAIT_REQUEUE);
            }
        }
    }
}

pub(super) fn after_fleet_check(pass: &mut Pass<'_>) {
    if pass.spec.smoke.is_some() {
        pass.enter(
            Phase::SmokeCheck,
            Reason::SmokeChecking,
            "sending smoke requests to canary pods".into(),
        );
        pass.wake_in(Duration::ZERO);
    } else {
        start_analysis(pass);
    }
}

pub(super) fn smoke_check(pass: &mut Pass<'_>) {
    match pass.obs.smoke.clone() {
        Some(smoke) if smoke.verdict == GateVerdict::Passed => {
            let message = format!("{} smoke requests succeeded", smoke.requests_sent);
            pass.status.smoke = Some(smoke);
            pass.event(EventKind::Normal, Reason::SmokeChecksPassed, message);
            start_analysis(pass);
        }
        Some(smoke) => {
            let first = smoke
                .failures
                .first()
                .map(|f| format!(": {} on {}", f.problem, f.pod))
                .unwrap_or_default();
            let message = format!(
                "{} of {} smoke requests failed{first}",
                smoke.requests_failed, smoke.requests_sent
            );
            pass.status.smoke = Some(smoke);
            pass.block(Reason::SmokeCheckFailed, message);
        }
        None => pass.wake_in(POD_WAIT_REQUEUE),
    }
}
