//! Rollouts and statuses the notification tests share: `examples/rollout-replica-ratio.yaml`
//! (checkout 2.4.0 in shop) analysing, rolled back, blocked and promoted.

use jiff::Timestamp;

use crate::crd::{
    AnalysisStatus, ContractGateStatus, Decision, GateVerdict, MetricStatus, MetricVerdict, Phase,
    Rollout, RolloutStatus,
};

pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// `examples/rollout-replica-ratio.yaml` (checkout 2.4.0 in shop) with `status`.
pub(super) fn rollout(status: RolloutStatus) -> Rollout {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/rollout-replica-ratio.yaml"
    ))
    .unwrap();
    let mut r: Rollout = serde_saphyr::from_str(&text).unwrap();
    r.status = Some(status);
    r
}

pub(super) fn decision(phase: Phase, reason: &str, t: i64) -> Decision {
    Decision {
        at: at(t),
        phase,
        reason: reason.into(),
        message: format!("{reason} at {t}"),
    }
}

pub(super) fn analyzing() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Analyzing,
        stable_version: Some("2.3.0".into()),
        canary_version: Some("2.4.0".into()),
        history: vec![decision(Phase::Analyzing, "AnalysisStarted", 0)],
        ..Default::default()
    }
}

pub(super) fn rolled_back() -> RolloutStatus {
    let mut s = analyzing();
    s.phase = Phase::RolledBack;
    s.canary_version = None;
    s.rejected_version = Some("2.4.0".into());
    s.reason = Some("AnalysisFailed".into());
    s.message = Some(
        "rolled back to 2.3.0: canary 2.4.0 regressed: error-rate ratio 3.1 [2.2, 4.4]".into(),
    );
    s.observed_generation = Some(3);
    s.analysis = Some(AnalysisStatus {
        verdict: MetricVerdict::Fail,
        looks: 7,
        metrics: vec![
            MetricStatus {
                name: "error-rate".into(),
                verdict: MetricVerdict::Fail,
                estimate: Some(3.1),
                lower: Some(2.2),
                upper: Some(4.4),
                reason: Some("rate ratio above tolerance 1.2".into()),
                ..Default::default()
            },
            MetricStatus {
                name: "latency-p99".into(),
                verdict: MetricVerdict::Pass,
                estimate: Some(f64::NAN),
                ..Default::default()
            },
        ],
        judge_state: Some(serde_json::json!({"big": "state"})),
        ..Default::default()
    });
    s.history
        .push(decision(Phase::RollingBack, "AnalysisFailed", 60));
    s.history
        .push(decision(Phase::RolledBack, "AnalysisFailed", 70));
    s
}

pub(super) fn blocked() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Blocked,
        stable_version: Some("2.3.0".into()),
        rejected_version: Some("2.4.0".into()),
        reason: Some("NotDeployable".into()),
        message: Some("can-i-deploy checkout 2.4.0 to production: no: payments 1.2 fails".into()),
        contract_gate: Some(ContractGateStatus {
            verdict: GateVerdict::Blocked,
            deployable: Some(false),
            reason: Some("payments 1.2 fails".into()),
            ..Default::default()
        }),
        history: vec![decision(Phase::Blocked, "NotDeployable", 10)],
        ..Default::default()
    }
}

pub(super) fn promoted() -> RolloutStatus {
    RolloutStatus {
        phase: Phase::Succeeded,
        stable_version: Some("2.4.0".into()),
        reason: Some("Promoted".into()),
        message: Some("2.4.0 is stable and every pod runs it".into()),
        history: vec![decision(Phase::Succeeded, "Promoted", 90)],
        ..Default::default()
    }
}

/// The notification `decide` asks for when it enters `status.phase` (whether it does is
/// `decide`'s: see `rollout::decide`'s notification table).
pub(super) fn notification(status: RolloutStatus, at: Timestamp) -> Option<super::Notification> {
    let event = super::NotificationEvent::for_phase(status.phase)?;
    super::Notification::for_event(&rollout(status), event, at)
}
