//! Version changes and the manual controls: a new `spec.version` mid-rollout supersedes the old
//! canary; `retryRequest`, `abortRequest`, `resumeRequest` and `promoteRequest` tokens each act
//! once (or are consumed with an Event saying why they did nothing); a resting rollout starts
//! over when the version moves on.

use std::time::Duration;

use super::model::*;
use super::pass::{fresh, Pass};
use super::steps::{advance_step, at_open_pause};
use super::window;
use crate::crd::{Phase, Reason};

/// Version changes and manual tokens, in that order. Returns true when this pass is finished.
pub(super) fn handle_version_and_tokens(pass: &mut Pass<'_>) -> bool {
    supersede(pass) || retry(pass) || abort(pass) || resume(pass) || restart_when_resting(pass)
}

/// A new version while another one is in flight supersedes it.
fn supersede(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    let phase = pass.status.phase;
    let in_flight = pass
        .status
        .canary_version
        .clone()
        .filter(|_| !phase.is_terminal());
    let Some(old) = in_flight.filter(|v| *v != spec.version && phase != Phase::Pending) else {
        return false;
    };
    pass.status.current_weight = 0;
    pass.enter(
        Phase::RollingBack,
        Reason::Superseded,
        format!(
            "spec.version changed from {old} to {} mid-rollout: removing the {old} canary, then starting over",
            spec.version
        ),
    );
    pass.status.canary_version = Some(spec.version.clone());
    pass.status.analysis = None;
    pass.status.fleet = None;
    pass.status.smoke = None;
    pass.status.contract_gate = None;
    pass.status.current_step_index = None;
    pass.status.rejected_version = None;
    pass.wake_in(Duration::ZERO);
    true
}

/// Retry: only meaningful for a rejected version; consumed either way.
fn retry(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    let phase = pass.status.phase;
    if !fresh(&spec.retry_request, &pass.status.handled_requests.retry) {
        return false;
    }
    pass.status.handled_requests.retry = spec.retry_request.clone();
    if matches!(phase, Phase::Blocked | Phase::RolledBack) {
        pass.start(
            Reason::RetryRequested,
            format!("retrying {} on request", spec.version),
        );
        return true;
    }
    pass.event(
        EventKind::Normal,
        Reason::RetryIgnored,
        format!("retryRequest ignored: the rollout is {phase:?}, not blocked or rolled back"),
    );
    false
}

/// Abort: acts in any phase with something to abort; consumed either way.
fn abort(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    let phase = pass.status.phase;
    if !fresh(&spec.abort_request, &pass.status.handled_requests.abort) {
        return false;
    }
    pass.status.handled_requests.abort = spec.abort_request.clone();
    let committed = pass.status.stable_version.as_deref() == Some(spec.version.as_str());
    match phase {
        Phase::Pending | Phase::ContractGate => {
            pass.block(
                Reason::Aborted,
                "aborted on request before any canary pod started".into(),
            );
            true
        }
        Phase::CanaryStarting | Phase::FleetCheck | Phase::SmokeCheck | Phase::Analyzing => {
            pass.roll_back(
                Reason::Aborted,
                "aborted on request: traffic returns to stable".into(),
            );
            true
        }
        Phase::Promoting if !committed => {
            pass.roll_back(
                Reason::Aborted,
                "aborted on request: traffic returns to stable".into(),
            );
            true
        }
        Phase::Succeeded if committed => window::abort(pass),
        _ => {
            pass.event(
                EventKind::Normal,
                Reason::AbortIgnored,
                format!("abortRequest ignored: the rollout is {phase:?} and has nothing to abort"),
            );
            false
        }
    }
}

/// Resume: releases a pause step without duration or a hold; consumed either way.
fn resume(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    if !fresh(&spec.resume_request, &pass.status.handled_requests.resume) {
        return false;
    }
    pass.status.handled_requests.resume = spec.resume_request.clone();
    if pass.status.hold_reason.is_none() && !at_open_pause(pass) {
        pass.event(
            EventKind::Normal,
            Reason::ResumeIgnored,
            "resumeRequest ignored: the rollout is not waiting for a resume".into(),
        );
        return false;
    }
    pass.status.hold_reason = None;
    if at_open_pause(pass) {
        advance_step(pass, Reason::Resumed, "resumed on request".into());
    } else {
        // Start the step's clock again so the analysis gets a fresh window.
        pass.status.step_started_at = Some(pass.now);
        pass.say(
            Reason::Resumed,
            "resumed on request: the analysis step starts over".into(),
        );
        pass.event(
            EventKind::Normal,
            Reason::Resumed,
            "resumed on request".into(),
        );
    }
    true
}

/// Terminal phases: start a new rollout when the version moved on. A promote token given
/// while nothing is in flight is consumed, so it cannot promote a later rollout unseen (one
/// given in flight is kept until the rollout reaches analysis: the gates still apply).
fn restart_when_resting(pass: &mut Pass<'_>) -> bool {
    let spec = pass.spec;
    let phase = pass.status.phase;
    let finished = match phase {
        Phase::Succeeded
            if pass.status.stable_version.as_deref() != Some(spec.version.as_str()) =>
        {
            pass.start(
                Reason::NewVersion,
                format!(
                    "rolling out {} (stable is {})",
                    spec.version,
                    pass.status.stable_version.clone().unwrap_or_default()
                ),
            );
            true
        }
        Phase::Blocked | Phase::RolledBack
            if pass.status.rejected_version.as_deref() != Some(spec.version.as_str()) =>
        {
            pass.start(Reason::NewVersion, format!("rolling out {}", spec.version));
            true
        }
        Phase::Pending => {
            pass.start(Reason::Started, format!("rolling out {}", spec.version));
            true
        }
        _ => false,
    };
    let promote_token = fresh(&spec.promote_request, &pass.status.handled_requests.promote);
    if !finished && phase.is_terminal() && promote_token {
        pass.status.handled_requests.promote = spec.promote_request.clone();
        pass.event(
            EventKind::Normal,
            Reason::PromoteIgnored,
            format!("promoteRequest ignored: the rollout is {phase:?}, nothing to promote"),
        );
    }
    finished
}
