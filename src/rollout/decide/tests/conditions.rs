//! Conditions: transition times, kstatus.

use super::*;

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let spec = spec();
    let status = status_in(Phase::CanaryStarting);
    let first = decide_alone(&spec, &status, at(1));
    let second = decide_alone(&spec, &first.status, at(50));
    for kind in [
        CONDITION_READY,
        CONDITION_PROGRESSING,
        CONDITION_RECONCILING,
        CONDITION_STALLED,
    ] {
        assert_eq!(
            condition(&first, kind).last_transition_time,
            condition(&second, kind).last_transition_time,
            "{kind} flapped"
        );
    }
    assert_eq!(condition(&second, CONDITION_PROGRESSING).status, "True");
    assert_eq!(
        condition(&second, CONDITION_RECONCILING).status,
        "True",
        "kstatus reads Reconciling"
    );
}
