//! The one decision ladder every metric climbs at every look, whatever its test: no usable
//! data, figures that cannot be trusted, a decision kept from an earlier look, too few windows, a metric-specific hold, then
//! fail, then pass, else undecided. The tests (count or distribution) differ only in the
//! evidence they bring and the words they use.

use super::policy::JudgePolicy;
use super::verdict::JudgeVerdict;

/// What a metric's test says at this look.
pub(super) struct Rungs {
    /// `Err(why)` when this look added no usable data to the metric.
    pub fresh: Result<(), String>,
    /// `Err(why)` when the test's figures are not finite or contradict each other: then the
    /// arithmetic or the data cannot be trusted, and no verdict may rest on them.
    pub sound: Result<(), String>,
    /// The metric's decision from an earlier look (an anytime-valid test may stop there).
    pub decided: Option<JudgeVerdict>,
    /// A broken canary shown at once (count tests: the fail-fast rule, with its own share of
    /// alpha), which needs neither the minimum windows nor the minimum events; its reason.
    pub fail_now: Option<String>,
    /// Windows with data so far.
    pub windows: u32,
    /// A reason to wait that the metric's test adds after the minimum windows (count tests:
    /// overdispersed counts), with its explanation.
    pub hold: Option<String>,
    /// The fail e-value has reached its threshold (and any minimum the test sets for failing).
    pub fail: bool,
    /// The pass e-value has reached its threshold.
    pub pass: bool,
    /// Canary requests so far (a metric may pass only after the policy's minimum).
    pub canary_requests: f64,
}

/// How a test words its verdicts; each is followed by `": "` and the evidence.
pub(super) struct Wording {
    pub kept: &'static str,
    pub fail: String,
    pub pass: String,
}

/// Climb the ladder: the verdict and its reason (`evidence` is the test's summary of the data).
pub(super) fn climb(
    policy: &JudgePolicy,
    rungs: Rungs,
    words: &Wording,
    evidence: &str,
) -> (JudgeVerdict, String) {
    if let Err(why) = rungs.fresh {
        return (
            JudgeVerdict::Undecided,
            format!("no usable data in this window ({why}); evidence so far: {evidence}"),
        );
    }
    if let Err(why) = rungs.sound {
        return (
            JudgeVerdict::Undecided,
            format!("evidence not usable ({why}); no verdict on it: {evidence}"),
        );
    }
    if let Some(v @ (JudgeVerdict::Fail | JudgeVerdict::Pass)) = rungs.decided {
        return (v, format!("{}: {evidence}", words.kept));
    }
    if let Some(why) = rungs.fail_now {
        return (JudgeVerdict::Fail, format!("{why}: {evidence}"));
    }
    if rungs.windows < policy.min_windows {
        return (
            JudgeVerdict::Undecided,
            format!(
                "{} of {} windows needed so far: {evidence}",
                rungs.windows, policy.min_windows
            ),
        );
    }
    if let Some(hold) = rungs.hold {
        return (JudgeVerdict::Undecided, format!("{hold}: {evidence}"));
    }
    if rungs.fail {
        return (JudgeVerdict::Fail, format!("{}: {evidence}", words.fail));
    }
    if rungs.pass && rungs.canary_requests >= policy.min_canary_requests {
        return (JudgeVerdict::Pass, format!("{}: {evidence}", words.pass));
    }
    (
        JudgeVerdict::Undecided,
        format!("not enough evidence yet: {evidence}"),
    )
}

/// Keep the first decision a metric reaches (the sequential test stops there).
pub(super) fn record(decided: &mut Option<JudgeVerdict>, verdict: JudgeVerdict) {
    if verdict != JudgeVerdict::Undecided && decided.is_none() {
        *decided = Some(verdict);
    }
}
