//! Version changes and manual controls.

use super::*;

#[test]
fn tokens_act_once() {
    let status = analyzing_at_step(1, 25);
    // Promote now: skips the remaining steps.
    let spec_p = spec_with(|s| s.promote_request = Some("p1".into()));
    let plan = decide_alone(&spec_p, &status, at(1));
    assert_eq!(plan.status.phase, Phase::Promoting);
    assert_eq!(plan.status.handled_requests.promote.as_deref(), Some("p1"));
    // Abort: rolls back.
    let spec_a = spec_with(|s| s.abort_request = Some("a1".into()));
    let plan = decide_alone(&spec_a, &status, at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("Aborted"));
    // An abort token already handled does nothing.
    let mut handled = status.clone();
    handled.handled_requests.abort = Some("a1".into());
    let plan = decide_alone(&spec_a, &handled, at(1));
    assert_eq!(plan.status.phase, Phase::Analyzing);
    // Abort before any canary: blocked.
    let plan = decide_alone(&spec_a, &status_in(Phase::ContractGate), at(1));
    assert_eq!(plan.status.phase, Phase::Blocked);
    // A promote token during the contract gate waits for analysis (the gate still applies).
    let plan = decide_alone(&spec_p, &status_in(Phase::ContractGate), at(1));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.handled_requests.promote, None);
    // A promote token on a finished rollout is consumed, so it cannot promote a later one.
    let mut done = status_in(Phase::Succeeded);
    done.stable_version = Some("2.0.0+a1b2c3d".into());
    let plan = decide_alone(&spec_p, &done, at(1));
    assert_eq!(plan.status.phase, Phase::Succeeded);
    assert_eq!(plan.status.handled_requests.promote.as_deref(), Some("p1"));
    assert!(reasons(&plan).contains(&"PromoteIgnored"));
}

#[test]
fn a_rejected_version_stays_rejected_until_retried() {
    let spec = spec();
    let mut rejected = status_in(Phase::RolledBack);
    rejected.rejected_version = Some("2.0.0+a1b2c3d".into());
    let plan = decide_alone(&spec, &rejected, at(1));
    assert_eq!(plan.status.phase, Phase::RolledBack);
    assert!(plan.events.is_empty());
    let retry = spec_with(|s| s.retry_request = Some("again".into()));
    let plan = decide_alone(&retry, &rejected, at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.rejected_version, None);
    assert_eq!(plan.status.handled_requests.retry.as_deref(), Some("again"));
    // A new version is tried without a retry token.
    let newer = spec_with(|s| s.version = "2.0.1".into());
    let plan = decide_alone(&newer, &rejected, at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("2.0.1"));
}

#[test]
fn a_new_version_mid_analysis_supersedes_the_old_canary() {
    let newer = spec_with(|s| s.version = "3.0.0".into());
    let status = analyzing_at_step(1, 25);
    let plan = decide_alone(&newer, &status, at(1));
    assert_eq!(plan.status.phase, Phase::RollingBack);
    assert_eq!(plan.status.reason.as_deref(), Some("Superseded"));
    assert_eq!(plan.children.canary, None, "the old canary goes first");
    assert_eq!(plan.status.analysis, None, "the old evidence is dropped");
    // Once it is gone the pipeline starts over for the new version.
    let gone = Observations {
        children: ChildrenState {
            stable: settled("1.0.0", 4),
            ..Default::default()
        },
        ..Default::default()
    };
    let plan = decide(&newer, Some(&plan.status), &gone, at(2));
    assert_eq!(plan.status.phase, Phase::ContractGate);
    assert_eq!(plan.status.canary_version.as_deref(), Some("3.0.0"));
    assert_eq!(plan.status.rejected_version, None);
}
