//! Analysis and its steps: entering and advancing steps, folding each analysis look into status,
//! and one function per step kind (`setWeight`, `pause`, `analyze`; `setHeaderRoute` in
//! `header_routes`). A proven regression rolls back in any step; inconclusive evidence never
//! does.

use std::time::Duration;

use super::desired::{children_settled, desired_children};
use super::header_routes;
use super::model::*;
use super::pass::{add, elapsed, fresh, std_duration, Pass};
use super::rollback;
use crate::crd::{
    AnalysisStatus, AnalyzeStep, Decision, InconclusivePolicy, MetricVerdict, PauseStep, Phase,
    Reason, Step,
};

/// The current step is a pause without duration.
pub(super) fn at_open_pause(pass: &Pass<'_>) -> bool {
    pass.status.phase == Phase::Analyzing
        && current_step(pass)
            .is_some_and(|s| s.pause.as_ref().is_some_and(|p| p.duration.is_none()))
}

pub(super) fn current_step<'a>(pass: &Pass<'a>) -> Option<&'a Step> {
    let index = usize::try_from(pass.status.current_step_index?).ok()?;
    pass.spec.steps.get(index)
}

pub(super) fn start_analysis(pass: &mut Pass<'_>) {
    // Entering analysis is when the canary starts to serve: stable must be able to take it back.
    if let Some(missing) = rollback::gap(pass.spec, &pass.status, &pass.obs.children) {
        let waited = pass.phase_elapsed();
        rollback::hold(pass, missing, waited, false);
        return;
    }
    pass.status.current_step_index = Some(0);
    pass.status.step_started_at = Some(pass.now);
    pass.status.current_weight = 0;
    if pass.spec.analysis.is_some() {
        pass.status.analysis = Some(AnalysisStatus {
            verdict: MetricVerdict::Running,
            started_at: Some(pass.now),
            ..Default::default()
        });
    }
    pass.enter(
        Phase::Analyzing,
        Reason::StepStarted,
        format!(
            "canary verified; starting step 1 of {}",
            pass.spec.steps.len()
        ),
    );
    // The fleet gate has just attested both tracks: the first weight needs no other check.
    enter_step(pass, true);
}

/// Act on entering the current step. A weight that is no increase takes effect at once; an
/// increase does when stable could take it back and both tracks are `attested` (the fleet gate
/// just passed, or the fleet check is off); otherwise `set_weight_step` waits for both.
pub(super) fn enter_step(pass: &mut Pass<'_>, attested: bool) {
    let Some(step) = current_step(pass).cloned() else {
        return;
    };
    if let Some(weight) = step.set_weight {
        let increase = weight > pass.status.current_weight;
        let attested = attested || !pass.spec.fleet_check().enabled;
        let ready = rollback::gap(pass.spec, &pass.status, &pass.obs.children).is_none();
        if !increase || (attested && ready) {
            pass.status.current_weight = weight;
        }
    }
    if let Some(route) = &step.set_header_route {
        header_routes::enter(&mut pass.status, route);
    }
    if let Some(pause) = &step.pause {
        if let Some(d) = &pause.duration {
            pass.wake_in(std_duration(d));
        }
    }
    pass.wake_in(Duration::ZERO);
}

pub(super) fn advance_step(pass: &mut Pass<'_>, reason: Reason, why: String) {
    let next = pass
        .status
        .current_step_index
        .unwrap_or(0)
        .saturating_add(1);
    let total = pass.spec.steps.len();
    if usize::try_from(next).map_or(true, |n| n >= total) {
        pass.promote(
            Reason::StepsCompleted,
            format!("{why}; all {total} steps done"),
        );
        return;
    }
    pass.status.current_step_index = Some(next);
    pass.status.step_started_at = Some(pass.now);
    pass.status.hold_reason = None;
    let message = format!("{why}; step {} of {total}", next + 1);
    pass.say(reason, message.clone());
    pass.status.record(Decision::new(
        pass.now,
        Phase::Analyzing,
        reason,
        message.clone(),
    ));
    pass.event(EventKind::Normal, reason, message);
    enter_step(pass, false);
}
/// Fold this pass's look into the status. Returns the look when one was taken.
pub(super) fn absorb_look(pass: &mut Pass<'_>) -> Option<AnalysisLook> {
    let look = pass.obs.look.clone()?;
    let weight = pass.status.current_weight;
    let analysis = pass.status.analysis.get_or_insert_with(|| AnalysisStatus {
        started_at: Some(pass.now),
        ..Default::default()
    });
    analysis.looks = analysis.looks.saturating_add(1);
    analysis.last_look_at = Some(look.window_end);
    // Every look, with data or not, appends to the record status already holds, so a
    // restarted operator continues it; the weight is the one the window was served at.
    analysis.series.get_or_insert_default().push(
        analysis.looks,
        look.window_end,
        weight,
        look.series.as_ref().filter(|_| !look.data_missing),
    );
    if look.data_missing {
        // No evidence either way: keep the running state, mark the look as failed.
        analysis.failed_looks = analysis.failed_looks.saturating_add(1);
        analysis.verdict = MetricVerdict::Inconclusive;
    } else {
        analysis.verdict = look.verdict;
        analysis.metrics = look.metrics.clone();
        if look.judge_state.is_some() {
            analysis.judge_state = look.judge_state.clone();
        }
    }
    Some(look)
}

/// The `Analyzing` phase: fold in the look, roll back on a proven regression, honour a promote
/// request and `spec.paused`, then run the current step.
pub(super) fn analyzing(pass: &mut Pass<'_>) {
    let look = absorb_look(pass);
    let reset = look
        .as_ref()
        .filter(|l| !l.data_missing)
        .and_then(|l| l.judge_state_reset.clone());
    analyze_look(pass, look);
    if let Some(why) = reset {
        judge_restarted(pass, &why);
    }
}

/// The judge's saved state could not be read, so its sequential test started over from this
/// look: say so in status and in a Warning Event (nothing is reset silently).
fn judge_restarted(pass: &mut Pass<'_>, why: &str) {
    let note = format!(
        "the judge's saved state could not be read ({why}), so its sequential test restarted from this look"
    );
    let message = match pass.status.message.take() {
        Some(m) if !m.is_empty() => format!("{m}; {note}"),
        _ => note.clone(),
    };
    pass.status.message = Some(message);
    pass.event(EventKind::Warning, Reason::JudgeStateReset, note);
}

fn analyze_look(pass: &mut Pass<'_>, look: Option<AnalysisLook>) {
    let spec = pass.spec;
    if let Some(interval) = spec.analysis.as_ref().map(|a| std_duration(&a.interval)) {
        let last = pass
            .status
            .analysis
            .as_ref()
            .and_then(|a| a.last_look_at.or(a.started_at));
        pass.wake_at(last.map_or(pass.now, |t| add(t, interval)));
    }

    // A proven regression rolls back in any step, paused or not; a failed metric over its
    // absolute guard (`maxRate`) says so in the reason, since the baseline may be as bad.
    if let Some(look) = look.as_ref().filter(|l| !l.data_missing) {
        if look.verdict == MetricVerdict::Fail {
            let over_max_rate = look
                .metrics
                .iter()
                .any(|m| m.verdict == MetricVerdict::Fail && m.max_rate_exceeded);
            let failed: Vec<String> = look
                .metrics
                .iter()
                .filter(|m| m.verdict == MetricVerdict::Fail)
                .map(|m| match &m.reason {
                    Some(r) => format!("{}: {r}", m.name),
                    None => m.name.clone(),
                })
                .collect();
            let (reason, what) = if over_max_rate {
                (Reason::MaxRateExceeded, "exceeded a maxRate")
            } else {
                (Reason::AnalysisFailed, "regressed")
            };
            pass.roll_back(
                reason,
                format!("canary {} {what}: {}", spec.version, failed.join("; ")),
            );
            return;
        }
    }

    if fresh(&spec.promote_request, &pass.status.handled_requests.promote) {
        pass.status.handled_requests.promote = spec.promote_request.clone();
        pass.promote(
            Reason::PromoteRequested,
            "promoted on request, skipping the remaining steps".into(),
        );
        return;
    }

    if spec.paused {
        pass.say(
            Reason::Paused,
            "paused by spec.paused: analysis continues, no step advances".into(),
        );
        return;
    }

    let Some(step) = current_step(pass).cloned() else {
        pass.promote(Reason::StepsCompleted, "no steps left".into());
        return;
    };
    if let Some(weight) = step.set_weight {
        set_weight_step(pass, weight);
    } else if let Some(pause) = &step.pause {
        pause_step(pass, pause);
    } else if let Some(analyze) = &step.analyze {
        analyze_step(pass, analyze, look);
    } else if let Some(route) = &step.set_header_route {
        header_routes::step(pass, route);
    }
}

fn step_number(pass: &Pass<'_>) -> i32 {
    pass.status.current_step_index.unwrap_or(0) + 1
}

/// `setWeight`: an increase waits until stable could take all traffic back and a fleet check
/// of this pass attested both tracks; then done once the pods for the weight are ready; rolls
/// back past the deadline.
fn set_weight_step(pass: &mut Pass<'_>, weight: i32) {
    if pass.status.current_weight < weight {
        let waited = elapsed(pass.status.step_started_at, pass.now);
        if let Some(missing) = rollback::gap(pass.spec, &pass.status, &pass.obs.children) {
            rollback::hold(pass, missing, waited, true);
            return;
        }
        if !pass.spec.fleet_check().enabled {
            pass.status.current_weight = weight;
            pass.wake_in(Duration::ZERO);
            return;
        }
        increase_if_attested(pass, weight, waited);
        return;
    }
    let desired = desired_children(pass.spec, &pass.status);
    if children_settled(&desired, &pass.obs.children) {
        advance_step(
            pass,
            Reason::WeightSet,
            format!("canary takes {weight}% of traffic"),
        );
    } else if elapsed(pass.status.step_started_at, pass.now)
        > std_duration(&pass.spec.progress_deadline())
    {
        pass.roll_back(
            Reason::ProgressDeadlineExceeded,
            format!("canary pods for {weight}% not ready within progressDeadline"),
        );
    } else {
        pass.wake_in(POD_WAIT_REQUEUE);
    }
}

/// Raise the weight to `weight` when this pass's fleet check attested both tracks
/// ([`rollback::attested_for_increase`]); `waited`: since the step started.
fn increase_if_attested(pass: &mut Pass<'_>, weight: i32, waited: Duration) {
    let check = rollback::attested_for_increase(pass.obs.fleet.as_ref());
    if let Some(observed) = pass.obs.fleet.as_ref() {
        pass.status.fleet = Some(observed.status.clone());
    }
    let deadline = std_duration(&pass.spec.progress_deadline());
    match check {
        rollback::IncreaseCheck::NotChecked => {
            // The check is asked for once the pods for the current weight are settled.
            pass.wake_in(POD_WAIT_REQUEUE);
        }
        rollback::IncreaseCheck::Passed => {
            pass.status.current_weight = weight;
            pass.wake_in(Duration::ZERO);
        }
        rollback::IncreaseCheck::StableFailing(message) => {
            let missing = format!("the stable track cannot take all traffic back: {message}");
            rollback::hold(pass, missing, waited, true);
        }
        rollback::IncreaseCheck::CanaryFailing(message) => pass.roll_back(
            Reason::FleetCheckFailed,
            format!("before raising the weight to {weight}%: {message}"),
        ),
        rollback::IncreaseCheck::Unanswered(message) if waited > deadline => pass.roll_back(
            Reason::FleetUnanswered,
            format!(
                "before raising the weight to {weight}%: {message} within progressDeadline ({}s)",
                deadline.as_secs()
            ),
        ),
        rollback::IncreaseCheck::Unanswered(message) => {
            pass.say(
                Reason::FleetUnanswered,
                format!(
                    "{message}; the weight stays at {}% and the pods are asked again (rolls \
                     back after progressDeadline {}s)",
                    pass.status.current_weight,
                    deadline.as_secs()
                ),
            );
            pass.wake_in(POD_WAIT_REQUEUE);
        }
    }
}

/// `pause`: for its duration, or until resumed when it has none.
fn pause_step(pass: &mut Pass<'_>, pause: &PauseStep) {
    let step_number = step_number(pass);
    let step_elapsed = elapsed(pass.status.step_started_at, pass.now);
    match &pause.duration {
        Some(d) if step_elapsed >= std_duration(d) => {
            advance_step(
                pass,
                Reason::PauseEnded,
                format!("paused {}s", std_duration(d).as_secs()),
            );
        }
        Some(d) => {
            let end = add(
                pass.status.step_started_at.unwrap_or(pass.now),
                std_duration(d),
            );
            pass.wake_at(end);
            pass.say(
                Reason::Pausing,
                format!("step {step_number}: pausing until {end}"),
            );
        }
        None => {
            pass.status.hold_reason = Some(format!(
                "step {step_number} pauses until resumed (kubectl tollgate resume)"
            ));
            pass.say(
                Reason::PausedAtStep,
                format!("step {step_number}: waiting for a resume"),
            );
        }
    }
}

/// `analyze`: done on a pass that covered this step's weight; at the step's end (or the
/// analysis's `maxDuration`) still inconclusive, `onInconclusive` applies.
fn analyze_step(pass: &mut Pass<'_>, analyze: &AnalyzeStep, look: Option<AnalysisLook>) {
    let Some(analysis) = pass.spec.analysis.clone() else {
        return;
    };
    let step_number = step_number(pass);
    let step_elapsed = elapsed(pass.status.step_started_at, pass.now);
    let duration = std_duration(&analyze.duration);
    let step_start = pass.status.step_started_at.unwrap_or(pass.now);
    // A pass counts for this step only when the look covered time at this step's weight.
    let fresh_pass = look.as_ref().is_some_and(|l| {
        !l.data_missing && l.verdict == MetricVerdict::Pass && l.window_end > step_start
    });
    if fresh_pass {
        advance_step(
            pass,
            Reason::AnalysisPassed,
            format!("step {step_number}: canary within tolerance on every metric"),
        );
        return;
    }
    let total_elapsed = elapsed(
        pass.status.analysis.as_ref().and_then(|a| a.started_at),
        pass.now,
    );
    if step_elapsed >= duration || total_elapsed >= std_duration(&analysis.max_duration) {
        inconclusive_at_deadline(pass, analysis.on_inconclusive);
    } else {
        let end = add(step_start, duration);
        pass.wake_at(end);
        let summary = look
            .map(|l| l.summary)
            .unwrap_or_else(|| "gathering evidence".into());
        pass.say(Reason::Analyzing, format!("step {step_number}: {summary}"));
    }
}

/// No verdict by the deadline: roll back or hold for a person, as the policy says.
fn inconclusive_at_deadline(pass: &mut Pass<'_>, policy: InconclusivePolicy) {
    let step_number = step_number(pass);
    let blind = pass
        .status
        .analysis
        .as_ref()
        .is_some_and(|a| a.failed_looks > 0 && a.failed_looks == a.looks);
    let why = if blind {
        "no metrics could be read"
    } else {
        "evidence is still inconclusive"
    };
    match policy {
        InconclusivePolicy::Rollback => pass.roll_back(
            Reason::AnalysisInconclusive,
            format!("step {step_number}: {why} at the deadline; onInconclusive is Rollback"),
        ),
        InconclusivePolicy::Pause => {
            if pass.status.hold_reason.is_none() {
                pass.event(
                    EventKind::Warning,
                    Reason::AnalysisInconclusive,
                    format!("step {step_number}: {why} at the deadline; holding for a person"),
                );
            }
            pass.status.hold_reason = Some(format!(
                "step {step_number}: {why} at the deadline; promote, abort or resume"
            ));
            pass.say(
                Reason::AnalysisInconclusive,
                format!("step {step_number}: {why}; holding"),
            );
        }
    }
}
