//! What the judge says: the verdict of a metric or a look ([`JudgeVerdict`]), one metric's
//! verdict with its evidence ([`MetricJudgement`]), a look's result ([`Judgement`]), and how
//! the metrics' verdicts combine into the look's.
//!
//! The judge's `Undecided` is "no decision yet, look again": the controller reports it as the
//! Rollout's `Running`. The CRD's `Inconclusive` is a different thing: the analysis ended
//! (step deadline or `maxDuration`) undecided, and `onInconclusive` applies.

use serde::{Deserialize, Serialize};

use super::policy::JudgePolicy;

/// Outcome of a metric or of one look.
///
/// `Undecided` is serialized as `"Inconclusive"`, the word `tollgate analyze` has always
/// printed (an offline analysis that ends undecided is inconclusive in the CRD's sense too);
/// `"Undecided"` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JudgeVerdict {
    /// Shown healthy within the pass tolerance.
    Pass,
    /// Shown worse than the tolerance.
    Fail,
    /// Not decided yet: look again.
    #[serde(rename = "Inconclusive", alias = "Undecided")]
    Undecided,
}

/// Sample counts behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Samples {
    pub windows: u32,
    pub canary_requests: f64,
    pub baseline_requests: f64,
    /// Errors, or requests above the latency bound; absent for the distribution test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_events: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_events: Option<f64>,
}

/// Extra figures of a latency-quantile verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantileDetail {
    pub quantile: f64,
    /// Histogram bound the exceedance counts use (seconds).
    pub boundary: Option<f64>,
    pub canary_quantile: Option<f64>,
    pub baseline_quantile: Option<f64>,
    /// Fixed-horizon 95% bounds on canary minus baseline quantile, from order statistics
    /// resolved to bucket edges (descriptive, not used for decisions).
    pub difference_lower: Option<f64>,
    pub difference_upper: Option<f64>,
}

/// One metric's verdict with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricJudgement {
    pub metric: String,
    pub verdict: JudgeVerdict,
    pub critical: bool,
    /// The test used.
    pub test: String,
    /// Human explanation.
    pub reason: String,
    /// Rate ratio (count tests) or tilt (distribution test).
    pub estimate: Option<f64>,
    /// Anytime-valid confidence-sequence bounds on the estimate's parameter.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// E-value against "no worse than tolerance", and its rejection threshold `1/alpha_m`.
    pub e_value: Option<f64>,
    pub threshold: f64,
    /// E-value against "worse than pass tolerance", and its threshold.
    pub e_value_pass: Option<f64>,
    pub pass_threshold: f64,
    /// Non-inferiority rule (error rate): the anytime-valid upper bound on canary minus
    /// baseline error rate per request, and the margin it must be below to pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference_upper: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_margin: Option<f64>,
    /// Service-level rule (error rate): the anytime-valid upper bound on the canary's own
    /// error rate per request, and the `passRate` it must be below to pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_upper: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
    /// The absolute guard (error rate): the anytime-valid lower bound on the canary's own
    /// error rate per request, the `maxRate` it must stay below, and whether it was shown
    /// above it at this look (the metric then fails whatever the baseline does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_lower: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub max_rate_exceeded: bool,
    /// While undecided: about how many more canary requests a pass rule needs at the rates
    /// observed so far (`None` when none can pass at those rates, or the metric is decided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_requests: Option<f64>,
    /// While undecided: no pass rule can pass at the rates observed so far, however long the
    /// analysis runs (then `needs_requests` is `None` and the reason says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cannot_pass: bool,
    /// Overdispersion factor used to temper the evidence (count tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<f64>,
    pub samples: Samples,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<QuantileDetail>,
}

/// What a sequential test shows at one look, as every metric reports it: the estimate with its
/// anytime-valid bounds, and the two e-values with the alphas they are held to.
pub(super) struct TestFigures {
    pub estimate: Option<f64>,
    pub lower: f64,
    pub upper: f64,
    pub e_value_fail: f64,
    pub e_value_pass: f64,
    /// The metric's share of the rollback alpha: it fails at `1/alpha_m`.
    pub alpha_m: f64,
    /// The metric's share of the promotion alpha: it passes at `1/alpha_pass_m`.
    pub alpha_pass_m: f64,
}

impl TestFigures {
    /// Shown worse than the tolerance: the fail e-value at its threshold.
    pub fn fail(&self) -> bool {
        self.e_value_fail >= 1.0 / self.alpha_m
    }

    /// Shown within the pass tolerance: the pass e-value at its threshold.
    pub fn pass(&self) -> bool {
        self.e_value_pass >= 1.0 / self.alpha_pass_m
    }

    /// The figures in words, the estimate called `estimate_name`: `tilt 1.2 (bounds 0.9..1.5);
    /// e-value 3 (reject at 20), pass e-value 0.5 (at 20)`.
    pub fn words(&self, estimate_name: &str) -> String {
        format!(
            "{estimate_name} {est} (bounds {lo}..{hi}); e-value {e} (reject at {t}), pass e-value {ep} (at {tp})",
            est = self.estimate.map_or("n/a".into(), fmt_num),
            lo = fmt_num(self.lower),
            hi = fmt_num(self.upper),
            e = fmt_num(self.e_value_fail),
            t = fmt_num(1.0 / self.alpha_m),
            ep = fmt_num(self.e_value_pass),
            tp = fmt_num(1.0 / self.alpha_pass_m),
        )
    }
}

impl MetricJudgement {
    /// A metric's verdict with its test's figures (kept finite for JSON); the fields only some
    /// tests have (difference, margin, dispersion, quantile detail) are left empty.
    pub(super) fn with_figures(
        metric: String,
        (verdict, reason): (JudgeVerdict, String),
        critical: bool,
        test: String,
        figures: &TestFigures,
        samples: Samples,
    ) -> MetricJudgement {
        MetricJudgement {
            metric,
            verdict,
            critical,
            test,
            reason,
            estimate: figures.estimate,
            lower: opt_finite(figures.lower),
            upper: opt_finite(figures.upper),
            e_value: finite_e(figures.e_value_fail),
            threshold: 1.0 / figures.alpha_m,
            e_value_pass: finite_e(figures.e_value_pass),
            pass_threshold: 1.0 / figures.alpha_pass_m,
            difference_upper: None,
            pass_margin: None,
            rate_upper: None,
            pass_rate: None,
            rate_lower: None,
            max_rate: None,
            max_rate_exceeded: false,
            needs_requests: None,
            cannot_pass: false,
            dispersion: None,
            samples,
            detail: None,
        }
    }
}

/// The result of one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    pub verdict: JudgeVerdict,
    pub reason: String,
    pub metrics: Vec<MetricJudgement>,
}

/// Overall verdict: Fail when a critical metric fails; Pass when every critical metric (every
/// metric, if none is critical) passes and none fails; otherwise Undecided.
pub fn combine(metrics: &[MetricJudgement]) -> (JudgeVerdict, String) {
    if metrics.is_empty() {
        return (JudgeVerdict::Undecided, "no metric could be judged".into());
    }
    let failed_critical: Vec<&str> = metrics
        .iter()
        .filter(|m| m.critical && m.verdict == JudgeVerdict::Fail)
        .map(|m| m.metric.as_str())
        .collect();
    if !failed_critical.is_empty() {
        return (
            JudgeVerdict::Fail,
            format!("critical metric(s) failed: {}", failed_critical.join(", ")),
        );
    }
    let failed: Vec<&str> = metrics
        .iter()
        .filter(|m| m.verdict == JudgeVerdict::Fail)
        .map(|m| m.metric.as_str())
        .collect();
    let any_critical = metrics.iter().any(|m| m.critical);
    let needed: Vec<&MetricJudgement> = metrics
        .iter()
        .filter(|m| m.critical || !any_critical)
        .collect();
    let pending: Vec<&str> = needed
        .iter()
        .filter(|m| m.verdict != JudgeVerdict::Pass)
        .map(|m| m.metric.as_str())
        .collect();
    if !failed.is_empty() {
        return (
            JudgeVerdict::Undecided,
            format!(
                "non-critical metric(s) failed, which blocks promotion but not a rollback: {}",
                failed.join(", ")
            ),
        );
    }
    if pending.is_empty() {
        return (JudgeVerdict::Pass, "every required metric passed".into());
    }
    (
        JudgeVerdict::Undecided,
        format!("waiting for evidence on: {}", pending.join(", ")),
    )
}

/// Whether a metric's reported bounds contradict its verdict at the look that decided it: a
/// Fail whose lower bound is below the tolerance (unless the absolute guard failed it: its
/// canary rate's lower bound above `maxRate`), a Pass on the ratio whose upper bound is
/// above the pass tolerance, or a metric the fail test has not rejected whose lower bound is
/// above the tolerance. Verdicts kept from an earlier look are not checked (their figures are
/// this look's). The judge's bounds are built never to do this ([`crate::analysis::stats::
/// sequential::dual_bounds`]); the benchmark counts it in every cell, and a test checks it on
/// seeded simulations.
pub fn bounds_contradict(policy: &JudgePolicy, m: &MetricJudgement) -> bool {
    let Some((fail_at, pass_at)) = policy.decision_points(&m.metric) else {
        return false;
    };
    if m.reason.contains("earlier") {
        return false;
    }
    let lower = m.lower.unwrap_or(f64::NEG_INFINITY);
    let upper = m.upper.unwrap_or(f64::INFINITY);
    let slack = 1e-9;
    match m.verdict {
        JudgeVerdict::Fail => {
            let by_guard = m.max_rate_exceeded
                && matches!((m.rate_lower, m.max_rate), (Some(l), Some(r)) if l > r);
            !by_guard && lower < fail_at - slack
        }
        JudgeVerdict::Pass => {
            let by_margin = matches!((m.difference_upper, m.pass_margin), (Some(d), Some(margin)) if d < margin);
            let by_rate = matches!((m.rate_upper, m.pass_rate), (Some(u), Some(r)) if u < r);
            !by_margin && !by_rate && upper > pass_at + slack
        }
        JudgeVerdict::Undecided => {
            m.e_value.is_some_and(|e| e < m.threshold) && lower > fail_at + slack
        }
    }
}

/// A number as the judge's reasons print it.
pub(super) fn fmt_num(x: f64) -> String {
    crate::util::number::format_number(x)
}

/// A bound for the report: `None` when infinite (JSON has no infinity).
pub(super) fn opt_finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// E-values can overflow f64 on overwhelming evidence; keep them finite for JSON.
pub(super) fn finite_e(x: f64) -> Option<f64> {
    if x.is_nan() {
        None
    } else {
        Some(x.min(f64::MAX))
    }
}
