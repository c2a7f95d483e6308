//! The children and traffic each phase calls for.

use super::*;

#[test]
fn desired_children_per_phase() {
    let spec = spec();
    // Before traffic moves: canary sized for the first weight, kept out of the Service.
    let d = desired_children(&spec, &status_in(Phase::FleetCheck));
    assert_eq!(
        d.canary,
        Some(ChildSpec {
            version: "2.0.0+a1b2c3d".into(),
            replicas: 1
        })
    );
    assert_eq!(
        d.stable,
        Some(ChildSpec {
            version: "1.0.0".into(),
            replicas: 4
        })
    );
    assert!(!d.canary_serving);
    assert_eq!(d.canary_weight, 0);
    // Analyzing at 50%: replica ratio moves pods from stable to canary.
    let d = desired_children(&spec, &analyzing_at_step(2, 50));
    assert_eq!(d.canary.as_ref().map(|c| c.replicas), Some(2));
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(2));
    assert!(d.canary_serving);
    assert_eq!(d.canary_weight, 50);
    // Behind an HTTPRoute stable keeps its size and the weight does the split.
    let routed = spec_with(|s| s.traffic.kind = TrafficKind::HttpRoute);
    let d = desired_children(&routed, &analyzing_at_step(2, 50));
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(4));
    // A dedicated baseline matches the canary's size and runs the stable version.
    let baseline = spec_with(|s| s.analysis.as_mut().unwrap().dedicated_baseline = true);
    let d = desired_children(&baseline, &analyzing_at_step(0, 25));
    assert_eq!(
        d.baseline,
        Some(ChildSpec {
            version: "1.0.0".into(),
            replicas: 1
        })
    );
    assert_eq!(d.stable.as_ref().map(|c| c.replicas), Some(2));
    // Rolling back and resting phases keep only stable.
    for phase in [
        Phase::RollingBack,
        Phase::RolledBack,
        Phase::Blocked,
        Phase::Succeeded,
    ] {
        let d = desired_children(&spec, &status_in(phase));
        assert_eq!(d.canary, None, "{phase:?}");
        assert_eq!(d.baseline, None, "{phase:?}");
        assert!(!d.canary_serving);
    }
    // Committed promotion: stable rolls to the new version at full size.
    let mut committed = analyzing_at_step(3, 50);
    committed.phase = Phase::Promoting;
    committed.stable_version = Some("2.0.0+a1b2c3d".into());
    let d = desired_children(&spec, &committed);
    assert_eq!(
        d.stable,
        Some(ChildSpec {
            version: "2.0.0+a1b2c3d".into(),
            replicas: 4
        })
    );
    assert!(
        d.canary.is_some(),
        "the canary serves until stable is ready"
    );
}
