//! What the judge says: the verdict of a metric or a look ([`JudgeVerdict`]), one metric's
//! verdict with its evidence ([`MetricJudgement`]), a look's result ([`Judgement`]), and how
//! the metrics' verdicts combine into the look's.
//!
//! The judge's `Undecided` is "no decision yet, look again": the controller reports it as the
//! Rollout's `Running`. The CRD's `Inconclusive` is a different thing: the analysis ended
//! (step deadline or `maxDuration`) undecided, and `onInconclusive` applies.

use serde::{Deserialize, Serialize};

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
    /// Overdispersion factor used to temper the evidence (count tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<f64>,
    pub samples: Samples,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<QuantileDetail>,
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
