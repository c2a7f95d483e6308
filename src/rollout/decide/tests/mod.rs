//! Tables of (state, observation) → plan for `decide`, plus whole-rollout scenarios driven by
//! a small simulated cluster in which children settle to what the plan asks for.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::json;

use super::*;
use crate::crd::{
    AnalysisStatus, ContractGateStatus, ContractSummary, DeploymentRecordStatus, FleetStatus,
    GateVerdict, InconclusivePolicy, MetricStatus, MetricVerdict, Phase, PodFinding, Reason,
    RollbackWindowStatus, Rollout, RolloutSpec, RolloutStatus, SmokeStatus, TrafficKind,
    CONDITION_PROGRESSING, CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED,
};

const T0: i64 = 1_800_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).unwrap()
}

/// A spec with a contract gate, two weights, two analysis steps and Prometheus analysis.
fn spec() -> RolloutSpec {
    let rollout: Rollout = crate::crd::fixtures::rollout(json!({
        "metadata": {"name": "shop"},
        "spec": {
            "version": "2.0.0+a1b2c3d",
            "replicas": 4,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}},
            "contractGate": {"brokerUrl": "http://broker", "pacticipant": "shop",
                             "environment": "production", "pollInterval": "10s",
                             "unknownBudget": "60s"},
            "steps": [{"setWeight": 25}, {"analyze": {"duration": "5m"}},
                      {"setWeight": 50}, {"analyze": {"duration": "5m"}}],
            "analysis": {"provider": {"prometheus": {"address": "http://prom:9090"}},
                         "interval": "30s", "errorRate": {}},
            "progressDeadline": "2m"
        }
    }));
    rollout.spec
}

fn spec_with(f: impl FnOnce(&mut RolloutSpec)) -> RolloutSpec {
    let mut s = spec();
    f(&mut s);
    s
}

/// Status of a rollout whose stable version is 1.0.0, in `phase`, started at T0.
fn status_in(phase: Phase) -> RolloutStatus {
    RolloutStatus {
        phase,
        stable_version: Some("1.0.0".into()),
        canary_version: Some("2.0.0+a1b2c3d".into()),
        phase_started_at: Some(at(0)),
        ..Default::default()
    }
}

fn analyzing_at_step(index: i32, weight: i32) -> RolloutStatus {
    let mut s = status_in(Phase::Analyzing);
    s.current_step_index = Some(index);
    s.current_weight = weight;
    s.step_started_at = Some(at(0));
    s.analysis = Some(AnalysisStatus {
        started_at: Some(at(0)),
        last_look_at: Some(at(0)),
        ..Default::default()
    });
    s
}

fn settled(version: &str, replicas: i32) -> WorkloadState {
    WorkloadState {
        version: Some(version.into()),
        desired: replicas,
        ready: replicas,
        total: replicas,
    }
}

/// Children that match what the plan for `status` asks for.
fn children_matching(spec: &RolloutSpec, status: &RolloutStatus) -> ChildrenState {
    let d = desired_children(spec, status);
    let state = |c: &Option<ChildSpec>| {
        c.as_ref()
            .map(|c| settled(&c.version, c.replicas))
            .unwrap_or_default()
    };
    ChildrenState {
        stable: state(&d.stable),
        canary: state(&d.canary),
        baseline: state(&d.baseline),
    }
}

/// `decide` from `status` with nothing observed (no children, no answers from the peers).
fn decide_alone(spec: &RolloutSpec, status: &RolloutStatus, now: Timestamp) -> Plan {
    decide(spec, Some(status), &Observations::default(), now)
}

fn obs_with_children(spec: &RolloutSpec, status: &RolloutStatus) -> Observations {
    Observations {
        children: children_matching(spec, status),
        ..Default::default()
    }
}

fn fleet_status(verdict: GateVerdict, failing: &[(&str, &str, &str)]) -> FleetStatus {
    FleetStatus {
        verdict,
        pods_checked: 8,
        pods_failing: failing.len() as i32,
        pods_matching: 8 - failing.len() as i32,
        failing_pods: failing
            .iter()
            .map(|(pod, reported, expected)| PodFinding {
                pod: pod.to_string(),
                problem: "VersionMismatch".into(),
                reported: Some(reported.to_string()),
                expected: Some(expected.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A fleet check's observation: passed, or failed with these pods' wrong answers.
fn fleet(verdict: GateVerdict, failing: &[(&str, &str, &str)]) -> FleetObservation {
    FleetObservation {
        status: fleet_status(verdict, failing),
        verdict: if verdict == GateVerdict::Passed {
            FleetVerdict::Passed
        } else {
            FleetVerdict::Failed
        },
    }
}

fn look(verdict: MetricVerdict, end: i64) -> AnalysisLook {
    AnalysisLook {
        window_end: at(end),
        verdict,
        metrics: vec![MetricStatus {
            name: "error-rate".into(),
            verdict,
            reason: Some("rate ratio 3.1 above tolerance 1.2".into()),
            ..Default::default()
        }],
        judge_state: Some(json!({"looks": end})),
        data_missing: false,
        summary: "error-rate ratio 1.0 [0.8, 1.3]".into(),
        judge_state_reset: None,
        series: None,
    }
}

fn missing_look(end: i64) -> AnalysisLook {
    AnalysisLook {
        window_end: at(end),
        verdict: MetricVerdict::Inconclusive,
        metrics: vec![],
        judge_state: None,
        data_missing: true,
        summary: "prometheus unreachable".into(),
        judge_state_reset: None,
        series: None,
    }
}

fn condition<'a>(plan: &'a Plan, kind: &str) -> &'a Condition {
    plan.status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .expect("condition present")
}

fn reasons(plan: &Plan) -> Vec<&str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

mod adoption;
mod conditions;
mod controls;
mod desired;
mod gates;
mod header_routes;
mod identity;
mod invalid;
mod peers;
mod promote;
mod rollback;
mod scenarios;
mod steps;
mod undeployment;
mod window;
