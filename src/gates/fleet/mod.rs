//! Fleet attestation (the Knight Capital check): every ready canary, baseline and stable pod is
//! asked what version and configuration it runs, and one pod on the wrong version or
//! configuration, or one that does not answer, blocks the rollout and is named.
//!
//! - [`model`]: pods, their answers and the typed problems ([`ProblemKind`]);
//! - [`rules`]: pure judgement of what the pods reported against a [`FleetExpectation`];
//! - [`keys`]: the key-by-key part of it: dependency versions, flags, guarded version rules;
//! - [`cluster`]: pure cross-check of the `Pod` objects (readiness, `pod-template-hash`, `imageID`);
//! - [`attest`]: the [`Attestor`] trait, its HTTP implementation and bounded-concurrency fan-out;
//! - [`probe`]: one bounded HTTP exchange with a pod (shared with the smoke checks).
//!
//! How the controller uses it (the types are independent of the CRD; the controller maps):
//!
//! | Rollout | here |
//! | --- | --- |
//! | `spec.version` | [`FleetExpectation::canary_version`] |
//! | `status.stableVersion` | [`FleetExpectation::stable_version`] |
//! | no configuration change declared (+ optional pipeline hash) | [`ConfigRule::MatchStable`] |
//! | declared configuration change with its hash | [`ConfigRule::Declared`] |
//! | endpoint, JSON pointers, timeout, concurrency | [`AttestConfig`] (defaults: `:8080/version`) |
//! | each child workload's current ReplicaSet | [`ExpectedWorkload::from_replica_set`] |
//!
//! Then, per track, `cluster::inventory(track, &expected, &pods)`, [`TrackInventory::merge`],
//! and [`check`]; `report` goes to `status`, `report.summary()` into the condition message, and
//! `report.passed == false` blocks. A bad [`AttestConfig`] is a permanent error
//! ([`ConfigError`]: wait for a spec change); pods that do not answer are failures in the report,
//! never errors, so the check fails closed and the next look tries again.

pub mod attest;
pub mod cluster;
pub mod keys;
pub mod model;
pub mod probe;
pub mod rules;

pub use attest::{attest_all, AttestConfig, Attestor, ConfigError, HttpAttestor};
pub use cluster::{digest_of, inventory, ExpectedWorkload, ImageRecordAttestor, TrackInventory};
pub use keys::{Constraint, DependencyRule, FlagGuard, FlagRules};
pub use model::{
    AttestError, Attestation, PodObservation, PodProblem, PodRef, PodTarget, Problem, ProblemKind,
    Track,
};
pub use rules::{
    evaluate, evaluate_pods, ConfigRule, FleetExpectation, FleetInput, FleetProblem, FleetReport,
    PodFailure, PodVerdict, TrackCounts, DEFAULT_MAX_LISTED_FAILURES,
};

/// The full result of a check: every pod's verdict (for tables and logs) and the capped report
/// (for `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetOutcome {
    pub verdicts: Vec<PodVerdict>,
    pub report: FleetReport,
}

/// What a fleet check comes to for the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetVerdict {
    /// Every pod runs what it should.
    Passed,
    /// Every failure is a pod that did not answer (yet): ask again, until the deadline.
    Unanswered,
    /// A pod answered wrong, or the fleet cannot be verified: block.
    Failed,
}

impl FleetOutcome {
    /// The verdict, from every pod's problems (not only the ones the report lists).
    pub fn verdict(&self) -> FleetVerdict {
        if self.report.passed {
            return FleetVerdict::Passed;
        }
        let pods_unanswered = self
            .verdicts
            .iter()
            .flat_map(|v| &v.problems)
            .all(|p| p.kind.is_unanswered());
        let fleet_unanswered = self.report.fleet_problems.iter().all(|p| p.is_unanswered());
        if pods_unanswered && fleet_unanswered {
            FleetVerdict::Unanswered
        } else {
            FleetVerdict::Failed
        }
    }
}

/// Attest the ready pods of an inventory (at most `concurrency` at once) and judge the fleet.
pub async fn check<A: Attestor>(
    attestor: &A,
    concurrency: usize,
    expect: &FleetExpectation,
    inventory: TrackInventory,
) -> FleetOutcome {
    let observations = attest_all(attestor, inventory.targets, concurrency).await;
    let input = FleetInput {
        observations,
        not_ready: inventory.not_ready,
        cluster_problems: inventory.problems,
    };
    let verdicts = evaluate_pods(expect, &input);
    let report = rules::report_from_verdicts(expect, &input, &verdicts);
    FleetOutcome { verdicts, report }
}
