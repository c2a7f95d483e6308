//! The canary judge: a policy and a stream of per-window observations in, per-metric verdicts
//! out, with a small serializable state in between.
//!
//! Metrics and tests:
//!
//! * `errorRate`: sequential conditional-Poisson mixture SPRT on error counts (rate ratio
//!   canary/baseline, per request), tempered for overdispersion.
//! * `latencyPNN` (one per configured quantile): the same test on the counts of requests slower
//!   than a histogram bound chosen near the baseline's quantile (frozen once chosen).
//! * `latencyDistribution`: a sequential rank-score tilt test on the whole histogram.
//!
//! A metric **fails** when its e-value against "canary no worse than the tolerance" reaches
//! `1/alpha_m`; it **passes** when its e-value against "canary worse than the pass tolerance"
//! reaches `1/alpha_pass_m`. A failure is final; a pass is not: the fail test keeps running at
//! every look until promotion, and a failure after a pass fails the metric (see `ladder`: the
//! fail e-process is valid at all times, so going on costs no error control).
//!
//! Family-wise error control differs between the two families, because a rollback needs one
//! metric to fail but a promotion needs every metric to pass:
//! - **rollbacks**: weighted Bonferroni, `alpha_m = alpha * w_m / sum(w)`. Any one metric's
//!   false failure rolls a healthy canary back, so the shares must add up to `alpha`. The sum
//!   runs over every metric, built-in and template (`template`: the team's own counter pairs and
//!   histograms, each judged by the built-in test of its kind), so adding a metric shrinks every
//!   other metric's share and the family-wise bound stays `alpha`.
//! - **promotions**: each metric gets the whole `alphaPass` (split only between its own pass
//!   rules, any one of which passes it: ratio, `passMargin`, `passRate`). A canary is promoted
//!   only when every metric passes (an intersection-union test, Berger 1982), so promoting a
//!   canary that is worse than tolerated on some metric needs that metric's own test to pass
//!   falsely, which happens with probability at most its `alpha_pass_m <= alphaPass`, whatever
//!   the other metrics do. Splitting `alphaPass` across metrics as well would buy nothing and
//!   slow every healthy promotion.
//!
//! Since every e-process is valid at all times, both bounds hold however often the judge looks.
//!
//! Files: `policy` (what to judge and how strictly), `window` (a look's counts in),
//! `state` (what is remembered between looks), `count` (the error-rate test and the
//! judgement of count metrics), `quantile` (latency quantiles), `distribution` (the whole
//! latency distribution), `ladder` (the one fail/pass/undecided ladder every metric climbs),
//! `verdict` (what comes out and how metrics combine). This file runs a look.

mod count;
mod distribution;
mod ladder;
mod policy;
mod quantile;
mod state;
mod template;
mod verdict;
mod window;

pub use count::guard_bounds;
pub use policy::{
    quantile_name, DispersionPolicy, DistributionPolicy, ErrorRatePolicy, JudgePolicy,
    LatencyPolicy, PolicyError, TemplateMetricPolicy,
};
pub use state::{JudgeState, QuantileState};
pub use verdict::{
    bounds_contradict, combine, JudgeVerdict, Judgement, MetricJudgement, QuantileDetail, Samples,
};
pub use window::{ArmCounts, JudgeWindow, MAX_WINDOW_COUNT};

/// One look's windows of the template metrics, by name: per arm, a counter pair's events in
/// `requests` and failures in `errors`, a histogram in `latency`. A metric missing here had no
/// data in the look.
pub type MetricWindows = std::collections::BTreeMap<String, JudgeWindow>;

use state::error_rate_state;
use window::{finite_nonneg, valid_hist};

/// Prime a fresh state with the baseline's error counts from before the analysis (oldest
/// first; windows of the look interval's length; requests and errors needed, latency ignored),
/// used only to estimate the dispersion of the error counts (see
/// [`crate::analysis::stats::counts::RatioTestState::add_history`]). Pure. A state that has already judged a window, or has
/// history, is returned unchanged, as is one whose policy has no error rate; so priming may be
/// repeated, e.g. when a crashed look is replayed. The second value is the number of windows
/// that went into the estimate.
pub fn prime_history(
    state: &JudgeState,
    policy: &JudgePolicy,
    history: &[ArmCounts],
) -> Result<(JudgeState, u32), PolicyError> {
    policy.validate()?;
    let mut st = state.clone();
    let Some(ep) = &policy.error_rate else {
        return Ok((st, 0));
    };
    let cfg = policy.ratio_config(ep.tolerance, ep.pass_tolerance);
    let (s, _) = error_rate_state(&mut st, &cfg);
    let counts: Vec<(f64, f64)> = history
        .iter()
        .filter_map(
            |w| match (finite_nonneg(w.errors), finite_nonneg(w.requests)) {
                (Some(e), Some(r)) => Some((e, r)),
                _ => None,
            },
        )
        .collect();
    let added = s.add_history(&counts);
    Ok((st, added))
}

/// Judge one more window. Pure: the new state and the verdicts are returned; `state` is not
/// changed. A state built for a different policy is reset metric by metric (and says so).
pub fn update(
    state: &JudgeState,
    policy: &JudgePolicy,
    window: &JudgeWindow,
) -> Result<(JudgeState, Judgement), PolicyError> {
    update_with_metrics(state, policy, window, &MetricWindows::new())
}

/// [`update`] with the template metrics' windows of the same look (see [`MetricWindows`]).
pub fn update_with_metrics(
    state: &JudgeState,
    policy: &JudgePolicy,
    window: &JudgeWindow,
    metric_windows: &MetricWindows,
) -> Result<(JudgeState, Judgement), PolicyError> {
    policy.validate()?;
    let mut st = state.clone();
    st.looks += 1;
    let mut notes: Vec<String> = Vec::new();

    let err_fresh = match &policy.error_rate {
        Some(ep) => count::add_error_window(&mut st, policy, ep, window, &mut notes),
        None => {
            st.error_rate = None;
            Err("error rate not configured".into())
        }
    };

    let hists = match (
        valid_hist(&window.canary.latency),
        valid_hist(&window.baseline.latency),
    ) {
        (Some(c), Some(b)) if c.bounds == b.bounds => Ok((c, b)),
        (Some(_), Some(_)) => Err("canary and baseline histograms have different buckets"),
        _ => Err("latency histogram missing or invalid"),
    };
    let old_lat = std::mem::take(&mut st.latency);
    let (latency, lat_fresh) = quantile::add_latency_window(&old_lat, policy, hists);
    st.latency = latency;

    let dist_fresh = match &policy.distribution {
        Some(dp) => distribution::add_distribution_window(&mut st, policy, dp, hists, &mut notes),
        None => {
            st.distribution = None;
            Err("not configured".into())
        }
    };

    let mut metrics = judge_all(&mut st, policy, err_fresh, &lat_fresh, dist_fresh);
    // template metrics: each its own state, by name (a metric gone from the policy is dropped)
    let mut old_templates = std::mem::take(&mut st.metrics);
    for tm in &policy.metrics {
        let mut sub = old_templates.remove(&tm.name).unwrap_or_default();
        let fresh = template::add_window(
            &mut sub,
            policy,
            tm,
            metric_windows.get(&tm.name),
            &mut notes,
        );
        metrics.extend(template::judge(&mut sub, policy, tm, fresh));
        st.metrics.insert(tm.name.clone(), sub);
    }
    let (verdict, mut reason) = combine(&metrics);
    if !notes.is_empty() {
        reason = format!("{reason} ({})", notes.join("; "));
    }
    Ok((
        st,
        Judgement {
            verdict,
            reason,
            metrics,
        },
    ))
}

/// Verdicts from a state without adding data (e.g. to show the current standing).
pub fn evaluate(state: &JudgeState, policy: &JudgePolicy) -> Result<Judgement, PolicyError> {
    policy.validate()?;
    let mut st = state.clone();
    let lat: Vec<Result<(), String>> = policy.latency.iter().map(|_| Ok(())).collect();
    let mut metrics = judge_all(&mut st, policy, Ok(()), &lat, Ok(()));
    for tm in &policy.metrics {
        if let Some(sub) = st.metrics.get_mut(&tm.name) {
            let fresh = vec![Ok(()); tm.quantiles.len().max(1)];
            metrics.extend(template::judge(sub, policy, tm, fresh));
        }
    }
    let (verdict, reason) = combine(&metrics);
    Ok(Judgement {
        verdict,
        reason,
        metrics,
    })
}

/// Every configured metric's verdict, in the order error rate, quantiles, distribution; each
/// metric's `fresh` says whether this look gave it usable data.
fn judge_all(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    err_fresh: Result<(), String>,
    lat_fresh: &[Result<(), String>],
    dist_fresh: Result<(), String>,
) -> Vec<MetricJudgement> {
    let mut out = Vec::new();
    out.extend(count::judge_error_rate(st, policy, err_fresh));
    for (i, lp) in policy.latency.iter().enumerate() {
        if let Some(qs) = st.latency.get_mut(i) {
            let fresh = lat_fresh.get(i).cloned().unwrap_or(Ok(()));
            out.push(quantile::judge_quantile(qs, lp, policy, fresh));
        }
    }
    out.extend(distribution::judge_distribution(st, policy, dist_fresh));
    out
}

#[cfg(test)]
mod template_tests;
#[cfg(test)]
mod tests;
