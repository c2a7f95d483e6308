//! The decision pipeline on anything: a Rollout (spec and status, from JSON; the seeds are real
//! Rollouts captured in every phase) and arbitrary observations, at an arbitrary time. `needs`
//! and `decide` never panic, and no analyze step is passed (the step index moving on, or a
//! promotion) without a fresh passing look among the observations.
//!
//! Input: two bytes of length n, n bytes of Rollout JSON, the rest drives the observations.
#![no_main]

use arbitrary::{Result, Unstructured};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;
use tollgate::crd::{
    FleetStatus, GateVerdict, MetricVerdict, Phase, Rollout, RolloutStatus, SmokeStatus, Step,
};
use tollgate::gates::fleet::FleetVerdict;
use tollgate::rollout::decide::{
    decide, needs, AnalysisLook, ChildrenState, ContractAnswer, FleetObservation, Observations,
    RecordOutcome, SpecProblem, WorkloadState,
};

fn version(u: &mut Unstructured<'_>, spec: &str, stable: Option<&str>) -> Result<Option<String>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(spec.to_string()),
        2 => stable.map(str::to_string),
        _ => Some("0.0.1-other".to_string()),
    })
}

fn workload(u: &mut Unstructured<'_>, spec: &str, stable: Option<&str>) -> Result<WorkloadState> {
    Ok(WorkloadState {
        version: version(u, spec, stable)?,
        desired: u.int_in_range(0..=6)?,
        ready: u.int_in_range(0..=6)?,
        total: u.int_in_range(0..=8)?,
    })
}

fn verdict(u: &mut Unstructured<'_>) -> Result<MetricVerdict> {
    Ok(*u.choose(&[
        MetricVerdict::Running,
        MetricVerdict::Pass,
        MetricVerdict::Fail,
        MetricVerdict::Inconclusive,
    ])?)
}

fn contract(u: &mut Unstructured<'_>) -> Result<ContractAnswer> {
    let reason = "fuzzed".to_string();
    Ok(match u.int_in_range(0..=4)? {
        0 => ContractAnswer::Deployable { reason, summary: None },
        1 => ContractAnswer::NotDeployable { reason, summary: None },
        2 => ContractAnswer::Unknown { reason, summary: None },
        3 => ContractAnswer::Unreachable { reason },
        _ => ContractAnswer::Refused { reason },
    })
}

fn observations(
    u: &mut Unstructured<'_>,
    rollout: &Rollout,
    now: Timestamp,
) -> Result<Observations> {
    let spec = rollout.spec.version.as_str();
    let stable = rollout.status.as_ref().and_then(|s| s.stable_version.as_deref());
    let gate = |u: &mut Unstructured<'_>| -> Result<GateVerdict> {
        Ok(*u.choose(&[GateVerdict::Pending, GateVerdict::Passed, GateVerdict::Blocked])?)
    };
    Ok(Observations {
        generation: rollout.metadata.generation,
        children: ChildrenState {
            stable: workload(u, spec, stable)?,
            canary: workload(u, spec, stable)?,
            baseline: workload(u, spec, stable)?,
        },
        contract: if u.arbitrary()? { Some(contract(u)?) } else { None },
        fleet: if u.arbitrary()? {
            Some(FleetObservation {
                status: FleetStatus { verdict: gate(u)?, ..FleetStatus::default() },
                verdict: *u.choose(&[
                    FleetVerdict::Passed,
                    FleetVerdict::Unanswered,
                    FleetVerdict::Failed,
                ])?,
            })
        } else {
            None
        },
        smoke: if u.arbitrary()? {
            Some(SmokeStatus { verdict: gate(u)?, ..SmokeStatus::default() })
        } else {
            None
        },
        look: if u.arbitrary()? {
            let back = SignedDuration::from_secs(u.int_in_range(-600..=3600)?);
            Some(AnalysisLook {
                window_end: now.checked_sub(back).unwrap_or(now),
                verdict: verdict(u)?,
                metrics: Vec::new(),
                judge_state: None,
                data_missing: u.arbitrary()?,
                summary: "fuzzed look".into(),
                judge_state_reset: None,
                series: None,
            })
        } else {
            None
        },
        record: match u.int_in_range(0..=2)? {
            0 => None,
            1 => Some(RecordOutcome::Recorded),
            _ => Some(RecordOutcome::Failed { reason: "fuzzed".into() }),
        },
        spec_problem: if u.ratio(1, 8)? {
            Some(SpecProblem::new("spec.fuzzed: a problem"))
        } else {
            None
        },
        ..Observations::default()
    })
}

/// The time of the status (its phase start), else a fixed instant; plus an arbitrary offset.
fn now(u: &mut Unstructured<'_>, status: Option<&RolloutStatus>) -> Result<Timestamp> {
    let base = status
        .and_then(|s| s.phase_started_at)
        .unwrap_or(Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH));
    let offset = SignedDuration::from_secs(u.int_in_range(-60..=86_400)?);
    Ok(base.checked_add(offset).unwrap_or(base))
}

/// A pass left an analyze step behind: its index moved on, or the rollout was promoted.
fn passed_an_analyze_step(rollout: &Rollout, before: &RolloutStatus, after: &RolloutStatus) -> bool {
    if before.phase != Phase::Analyzing {
        return false;
    }
    let Some(index) = before.current_step_index else {
        return false;
    };
    let analyze = usize::try_from(index)
        .ok()
        .and_then(|i| rollout.spec.steps.get(i))
        .is_some_and(|s: &Step| s.analyze.is_some());
    let moved = after.current_step_index.is_some_and(|i| i > index)
        || matches!(after.phase, Phase::Promoting | Phase::Succeeded);
    analyze && moved && after.canary_version == before.canary_version
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let Ok(mut rollout) = serde_json::from_slice::<Rollout>(&data[2..2 + n]) else {
        return;
    };
    // Manual tokens may skip steps by design; the invariant is about the judge's evidence.
    rollout.spec.promote_request = None;
    rollout.spec.retry_request = None;
    rollout.spec.abort_request = None;
    let mut u = Unstructured::new(&data[2 + n..]);
    let Ok(now) = now(&mut u, rollout.status.as_ref()) else {
        return;
    };
    let Ok(obs) = observations(&mut u, &rollout, now) else {
        return;
    };
    let status = rollout.status.as_ref();
    let _ = needs(&rollout.spec, status, &obs.children, now);
    let plan = decide(&rollout.spec, status, &obs, now);
    let before = status.cloned().unwrap_or_default();
    if passed_an_analyze_step(&rollout, &before, &plan.status) {
        let step_start = before.step_started_at.unwrap_or(now);
        let fresh_pass = obs.look.as_ref().is_some_and(|l| {
            !l.data_missing && l.verdict == MetricVerdict::Pass && l.window_end > step_start
        });
        assert!(
            fresh_pass,
            "an analyze step was passed without a fresh passing look: {obs:?}\n{:?}",
            plan.status
        );
    }
});
