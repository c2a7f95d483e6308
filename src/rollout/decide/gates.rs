//! The gates before any traffic moves: the contract gate (the broker's answer), the canary's
//! start, the fleet check and the smoke checks. A "no" here blocks (nothing served the canary
//! yet); a pass moves on to the next gate and finally to analysis.

use std::time::Duration;

use super::desired::{canary_side_settled, children_settled, desired_children};
use super::model::*;
use super::pass::{add, elapsed, std_duration, Pass};
use super::rollback;
use super::steps::start_analysis;
use jiff::Timestamp;

use crate::crd::{ContractGateStatus, FleetStatus, GateVerdict, Phase, Reason};
use crate::gates::broker::{self, ContractVerdict, GateAction, GatePolicy, GateProgress};

/// The contract gate: the broker's answer goes through the gate's own step
/// (`gates::broker::step`), with the progress kept in `status.contractGate`; this maps the
/// verdict onto the pipeline and says what happened.
pub(super) fn contract_gate(pass: &mut Pass<'_>) {
    let Some(gate) = pass.spec.contract_gate.clone() else {
        pass.after_contract_gate();
        return;
    };
    let policy = GatePolicy {
        poll_interval: std_duration(&gate.poll_interval),
        unknown_budget: std_duration(&gate.unknown_budget),
        dry_run: gate.dry_run,
        ..GatePolicy::default()
    };
    let Some(answer) = pass.obs.contract.clone() else {
        // Not asked in this pass: wait for the next ask.
        if let Some(due) = next_ask(pass.status.contract_gate.as_ref(), &policy) {
            pass.wake_at(due);
        } else {
            pass.wake_in(Duration::ZERO);
        }
        return;
    };
    let now = pass.now;
    let mut evidence = pass.status.contract_gate.clone().unwrap_or_default();
    let progress = GateProgress {
        unknown_since: evidence.unknown_since,
        asks: u32::try_from(evidence.attempts).unwrap_or(0),
    };
    let step = broker::step(&answer.classified(), &progress, now, &policy);
    evidence.checked_at = Some(now);
    evidence.attempts = i32::try_from(step.progress.asks).unwrap_or(i32::MAX);
    evidence.unknown_since = step.progress.unknown_since;
    evidence.dry_run = gate.dry_run;
    let target = format!(
        "{} {} to {}",
        gate.pacticipant, pass.spec.version, gate.environment
    );
    let words = Words::of(&answer, &target);
    record_answer(&mut evidence, &answer, &words, &step.verdict);
    pass.status.contract_gate = Some(evidence);
    let budget = policy.unknown_budget.as_secs();
    let blocked = match &answer {
        ContractAnswer::Unknown { .. } | ContractAnswer::Unreachable { .. } => {
            format!("{}; no answer within the {budget}s budget", words.message)
        }
        _ => words.message.clone(),
    };
    match step.action() {
        GateAction::Proceed => {
            pass.event(
                EventKind::Normal,
                Reason::ContractGatePassed,
                format!("can-i-deploy {target}: yes ({})", answer.reason()),
            );
            pass.after_contract_gate();
        }
        GateAction::Wait(after) => {
            let waited = elapsed(step.progress.unknown_since, now);
            pass.say(
                words.reason,
                format!(
                    "{}; asking again in {}s ({}s of {budget}s budget used)",
                    words.message,
                    after.as_secs(),
                    waited.as_secs(),
                ),
            );
            pass.wake_in(after);
        }
        GateAction::Block(_) => pass.block(words.reason, blocked),
        GateAction::ProceedDespite(_) => {
            // The record keeps the real verdict; only the block is skipped.
            let message = match &answer {
                ContractAnswer::NotDeployable { reason, .. } => {
                    format!(
                        "can-i-deploy {target}: NO ({reason}); continuing because dryRun is set"
                    )
                }
                _ => format!("{blocked}; continuing because dryRun is set"),
            };
            pass.event(EventKind::Warning, Reason::ContractGateDryRun, message);
            pass.after_contract_gate();
        }
    }
}

/// When the broker is to be asked next: a poll interval after the last ask, or at the end of
/// the unknown budget if that comes first. `None`: never asked.
pub(super) fn next_ask(
    evidence: Option<&ContractGateStatus>,
    policy: &GatePolicy,
) -> Option<Timestamp> {
    let evidence = evidence?;
    let last = evidence.checked_at?;
    let poll = add(last, policy.poll_interval);
    let budget_end = evidence
        .unknown_since
        .map(|since| add(since, policy.unknown_budget));
    Some(budget_end.map_or(poll, |end| end.max(last).min(poll)))
}

/// The reason a non-passing answer is given in status, and the sentence that says so.
struct Words {
    reason: Reason,
    message: String,
}

impl Words {
    fn of(answer: &ContractAnswer, target: &str) -> Words {
        let (reason, message) = match answer {
            ContractAnswer::Deployable { reason, .. } => (
                Reason::ContractGatePassed,
                format!("can-i-deploy {target}: yes ({reason})"),
            ),
            ContractAnswer::NotDeployable { reason, .. } => (
                Reason::NotDeployable,
                format!("can-i-deploy {target}: no: {reason}"),
            ),
            ContractAnswer::Refused { reason } => (
                Reason::BrokerRefused,
                format!("the Pact Broker refused can-i-deploy {target}: {reason}"),
            ),
            ContractAnswer::Unknown { reason, .. } => (
                Reason::ContractUnknown,
                format!("can-i-deploy {target}: unknown: {reason}"),
            ),
            ContractAnswer::Unreachable { reason } => (
                Reason::BrokerUnreachable,
                format!("the Pact Broker could not be asked about {target}: {reason}"),
            ),
        };
        Words { reason, message }
    }
}

/// What the broker said, as `status.contractGate` keeps it: the real verdict (in dry run too).
fn record_answer(
    evidence: &mut ContractGateStatus,
    answer: &ContractAnswer,
    words: &Words,
    verdict: &ContractVerdict,
) {
    evidence.verdict = match verdict {
        ContractVerdict::Pass => GateVerdict::Passed,
        ContractVerdict::Wait { .. } => GateVerdict::Pending,
        ContractVerdict::Block { .. } => GateVerdict::Blocked,
    };
    match answer {
        ContractAnswer::Deployable { reason, summary } => {
            evidence.deployable = Some(true);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary.clone();
        }
        ContractAnswer::NotDeployable { reason, summary } => {
            evidence.deployable = Some(false);
            evidence.reason = Some(reason.clone());
            evidence.summary = summary.clone();
        }
        ContractAnswer::Refused { reason } => {
            evidence.deployable = None;
            evidence.reason = Some(reason.clone());
        }
        ContractAnswer::Unknown { summary, .. } => {
            evidence.deployable = None;
            evidence.reason = Some(words.message.clone());
            evidence.summary = summary.clone();
        }
        ContractAnswer::Unreachable { .. } => {
            evidence.deployable = None;
            evidence.reason = Some(words.message.clone());
            evidence.summary = None;
        }
    }
}

pub(super) fn canary_starting(pass: &mut Pass<'_>) {
    let desired = desired_children(pass.spec, &pass.status);
    let gap = rollback::gap(pass.spec, &pass.status, &pass.obs.children);
    if let Some(missing) = gap.filter(|_| canary_side_settled(&desired, &pass.obs.children)) {
        // The canary could start taking traffic, but stable could not take it back.
        let waited = pass.phase_elapsed();
        rollback::hold(pass, missing, waited, false);
    } else if children_settled(&desired, &pass.obs.children) {
        pass.enter(
            Phase::FleetCheck,
            Reason::CanaryReady,
            "canary pods are ready; checking what every pod runs".into(),
        );
        if !pass.spec.fleet_check().enabled {
            after_fleet_check(pass);
        }
        pass.wake_in(Duration::ZERO);
    } else if pass.deadline_passed() {
        pass.roll_back(
            Reason::ProgressDeadlineExceeded,
            format!(
                "canary pods not ready within progressDeadline ({}s)",
                std_duration(&pass.spec.progress_deadline()).as_secs()
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
        std_duration(&pass.spec.progress_deadline()).as_secs()
    );
    pass.status.fleet = Some(fleet.clone());
    pass.say(Reason::FleetUnanswered, message);
    pass.wake_in(POD_WAIT_REQUEUE);
    true
}

pub(super) fn fleet_check(pass: &mut Pass<'_>) {
    if !pass.spec.fleet_check().enabled {
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
