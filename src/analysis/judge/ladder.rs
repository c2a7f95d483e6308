//! The one decision ladder every metric climbs at every look, whatever its test: no usable
//! data, figures that cannot be trusted, a failure kept from an earlier look, the fail-fast
//! rule, too few windows, a metric-specific hold, then fail, then pass, else undecided. The tests
//! (count or distribution) differ only in the evidence they bring and the words they use.
//!
//! A failure is final. A pass is not: the fail test keeps running at every look until the
//! rollout is promoted, so a metric that passed early and then fails (a regression that starts
//! late, at a higher weight) fails. This costs no error control: the fail e-process is valid at
//! every time, whether or not anybody stops looking at it, so the chance that it ever crosses
//! `1/alpha_m` for a canary that is no worse stays at most `alpha_m`. Looks that decide nothing
//! new keep the earlier pass.

use super::policy::JudgePolicy;
use super::verdict::JudgeVerdict;

/// What a metric's test says at this look.
pub(super) struct Rungs {
    /// `Err(why)` when this look added no usable data to the metric.
    pub fresh: Result<(), String>,
    /// `Err(why)` when the test's figures are not finite or contradict each other: then the
    /// arithmetic or the data cannot be trusted, and no verdict may rest on them.
    pub sound: Result<(), String>,
    /// The metric's decision from an earlier look: a failure (final) or a pass (which a later
    /// failure overturns).
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
    /// A failure from an earlier look.
    pub kept_fail: &'static str,
    /// A pass from an earlier look, which this look did not overturn.
    pub kept_pass: &'static str,
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
    if rungs.decided == Some(JudgeVerdict::Fail) {
        return (
            JudgeVerdict::Fail,
            format!("{}: {evidence}", words.kept_fail),
        );
    }
    // A pass from an earlier look stands unless this look shows a failure.
    let undecided = |why: String| match rungs.decided {
        Some(JudgeVerdict::Pass) => (
            JudgeVerdict::Pass,
            format!("{}: {evidence}", words.kept_pass),
        ),
        _ => (JudgeVerdict::Undecided, why),
    };
    if let Some(why) = rungs.fail_now {
        return (JudgeVerdict::Fail, format!("{why}: {evidence}"));
    }
    if rungs.windows < policy.min_windows {
        return undecided(format!(
            "{} of {} windows needed so far: {evidence}",
            rungs.windows, policy.min_windows
        ));
    }
    if let Some(hold) = rungs.hold {
        return undecided(format!("{hold}: {evidence}"));
    }
    if rungs.fail {
        let after_pass = if rungs.decided == Some(JudgeVerdict::Pass) {
            " (after an earlier pass: the fail test keeps running until promotion)"
        } else {
            ""
        };
        return (
            JudgeVerdict::Fail,
            format!("{}{after_pass}: {evidence}", words.fail),
        );
    }
    if rungs.decided.is_none() && rungs.pass && rungs.canary_requests >= policy.min_canary_requests
    {
        return (JudgeVerdict::Pass, format!("{}: {evidence}", words.pass));
    }
    undecided(format!("not enough evidence yet: {evidence}"))
}

/// Remember what a metric has reached: its first pass, or a failure (final, and it replaces a
/// pass: see the module documentation).
pub(super) fn record(decided: &mut Option<JudgeVerdict>, verdict: JudgeVerdict) {
    match verdict {
        JudgeVerdict::Fail => *decided = Some(JudgeVerdict::Fail),
        JudgeVerdict::Pass if decided.is_none() => *decided = Some(JudgeVerdict::Pass),
        _ => {}
    }
}
