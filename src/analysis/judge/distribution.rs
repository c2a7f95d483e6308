//! The whole latency distribution: a sequential rank-score tilt test over histogram buckets
//! ([`crate::analysis::stats::latency::ShiftTestState`]); it fails when the canary's
//! distribution is shown tilted above `tolerance`, passes when shown below `passTolerance`.
//! The first window with data builds the baseline reference and adds no evidence.

use super::ladder::{self, Rungs, Wording};
use super::policy::{DistributionPolicy, JudgePolicy};
use super::state::JudgeState;
use super::verdict::{MetricJudgement, Samples, TestFigures};
use super::window::beyond_ceiling;
use crate::analysis::stats::latency::{Histogram, ShiftTestState};
use crate::util::number::format_count;

/// Add one window's histograms to the distribution test. `Err(why)` when the window added no
/// evidence; a policy change resets the test and says so in `notes`.
pub(super) fn add_distribution_window(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    dp: &DistributionPolicy,
    hists: Result<(&Histogram, &Histogram), &str>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let cfg = policy.shift_config(dp);
    let grid = cfg.grid();
    let s = st
        .distribution
        .get_or_insert_with(|| ShiftTestState::new(&cfg));
    if !s.matches(&cfg) {
        *s = ShiftTestState::new(&cfg);
        st.distribution_decided = None;
        notes.push("latencyDistribution: policy changed, evidence reset".into());
    }
    match hists {
        Err(e) => Err(e.to_string()),
        Ok((c, b)) => {
            beyond_ceiling(&[c.total(), b.total()])?;
            if s.add_window(&grid, c, b) {
                Ok(())
            } else if s.windows == 0 && c.total() > 0.0 && b.total() > 0.0 {
                Err("first window builds the baseline reference".into())
            } else {
                Err("an arm had no requests in its histogram".into())
            }
        }
    }
}

/// The distribution metric's verdict, when the policy has one and its test has a state.
pub(super) fn judge_distribution(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    fresh: Result<(), String>,
) -> Option<MetricJudgement> {
    let dp = policy.distribution.as_ref()?;
    let s = st.distribution.as_ref()?;
    let cfg = policy.shift_config(dp);
    let grid = cfg.grid();
    let total_w = policy.total_weight();
    let alpha_m = policy.alpha * dp.weight / total_w;
    // the promotion alpha is not shared between metrics (see the judge's module docs)
    let alpha_pass_m = policy.alpha_pass;
    let sum = s.summary(&cfg, &grid, alpha_m, alpha_pass_m);
    let figures = TestFigures {
        estimate: Some(sum.estimate),
        lower: sum.lower,
        upper: sum.upper,
        e_value_fail: sum.e_value_fail,
        e_value_pass: sum.e_value_pass,
        alpha_m,
        alpha_pass_m,
    };
    let evidence = format!(
        "{test}; {w} windows, canary {rc} vs baseline {rb} requests",
        test = figures.words("tilt"),
        w = s.windows,
        rc = format_count(s.canary_requests),
        rb = format_count(s.baseline_requests),
    );
    let sound = if sum.estimate.is_finite()
        && !sum.e_value_fail.is_nan()
        && !sum.e_value_pass.is_nan()
        && sum.lower <= sum.upper
    {
        Ok(())
    } else {
        Err("tilt, bounds or e-values not numbers".to_string())
    };
    let rungs = Rungs {
        fresh,
        sound,
        decided: st.distribution_decided,
        fail_now: None,
        windows: s.windows,
        hold: None,
        fail: figures.fail(),
        pass: figures.pass(),
        canary_requests: s.canary_requests,
    };
    let words = Wording {
        kept_fail: "failed earlier and kept",
        kept_pass: "passed earlier; the fail test still runs at every look until promotion",
        fail: "canary latency distribution shifted up".into(),
        pass: "canary latency distribution shown within tolerance".into(),
    };
    let (verdict, reason) = ladder::climb(policy, rungs, &words, &evidence);
    let samples = Samples {
        windows: s.windows,
        canary_requests: s.canary_requests,
        baseline_requests: s.baseline_requests,
        canary_events: None,
        baseline_events: None,
    };
    let judged = MetricJudgement::with_figures(
        "latencyDistribution".into(),
        (verdict, reason),
        dp.critical,
        "sequential rank-score tilt test on histogram buckets (whole distribution)".into(),
        &figures,
        samples,
    );
    ladder::record(&mut st.distribution_decided, verdict);
    Some(judged)
}
