//! The judge's policy: which metrics, their tolerances and shares of alpha, the minimum-data
//! rules and the dispersion settings; its validation, and the test configurations derived from
//! it. The controller maps the Rollout's `spec.analysis` (the CRD's `...Spec` types) onto
//! [`JudgePolicy`]; `tollgate analyze` reads it from camelCase JSON.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::analysis::stats::counts::RatioTestConfig;
use crate::analysis::stats::latency::ShiftTestConfig;

/// Error-rate settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorRatePolicy {
    /// Fail when the canary's error rate is shown to exceed `tolerance` x the baseline's.
    pub tolerance: f64,
    /// Pass when it is shown to be below `pass_tolerance` x the baseline's.
    pub pass_tolerance: f64,
    /// Pass also when the canary's error rate is shown at most `pass_margin` (errors per
    /// request, 0.005 = half a percentage point) above the baseline's: the non-inferiority
    /// rule, which a service with few or no errors can satisfy where a ratio cannot be shown.
    /// `None` (JSON `null`) leaves only the ratio rule. With a margin, `alphaPass` is split in
    /// halves between the two rules. The test is the joint one of
    /// [`crate::analysis::stats::difference`].
    pub pass_margin: Option<f64>,
    /// Pass also when the canary's own error rate is shown below `pass_rate` (errors per
    /// request): a service-level objective, for services that know the rate they must meet
    /// whatever the baseline does. `None` (the default) leaves the rule out. `alphaPass` is split
    /// evenly between the rules the metric has.
    #[serde(default)]
    pub pass_rate: Option<f64>,
    /// The absolute guard: fail when the canary's own error rate is shown above `max_rate`
    /// (errors per request), whatever the baseline's. `None` (the default) leaves it out. It
    /// takes half of the metric's share of `alpha`; the comparison keeps the other half.
    #[serde(default)]
    pub max_rate: Option<f64>,
    pub critical: bool,
    /// Share of alpha (weighted Bonferroni).
    pub weight: f64,
}

impl Default for ErrorRatePolicy {
    fn default() -> Self {
        ErrorRatePolicy {
            tolerance: 1.0,
            pass_tolerance: 1.5,
            pass_margin: Some(0.005),
            pass_rate: None,
            max_rate: None,
            critical: true,
            weight: 3.0,
        }
    }
}

/// One latency quantile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LatencyPolicy {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// Fail when the canary's rate of requests slower than the chosen bound is shown to exceed
    /// `tolerance` x the baseline's; pass when shown below `pass_tolerance` x.
    pub tolerance: f64,
    pub pass_tolerance: f64,
    pub critical: bool,
    pub weight: f64,
}

impl Default for LatencyPolicy {
    fn default() -> Self {
        LatencyPolicy {
            quantile: 0.99,
            tolerance: 1.0,
            pass_tolerance: 1.5,
            critical: true,
            weight: 1.0,
        }
    }
}

/// Whole-distribution latency comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DistributionPolicy {
    /// Fail when the tilt is shown above `tolerance`; pass when shown below `pass_tolerance`.
    pub tolerance: f64,
    pub pass_tolerance: f64,
    pub critical: bool,
    pub weight: f64,
}

impl Default for DistributionPolicy {
    fn default() -> Self {
        DistributionPolicy {
            tolerance: 0.0,
            pass_tolerance: 0.3,
            critical: true,
            weight: 1.0,
        }
    }
}

/// Overdispersion handling (see [`crate::analysis::stats::sequential::Dispersion`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DispersionPolicy {
    pub enabled: bool,
    /// Pseudo-windows of the prior.
    pub prior_windows: f64,
    /// Prior coefficient of variation of a per-window, per-arm burst multiplier of the rate:
    /// the dispersion the estimate is shrunk toward is `1 + priorBurstCv^2 * g`, where `g`
    /// grows with the events per window (so the prior costs nothing at low counts and guards
    /// high-count windows, where a single window carries a lot of evidence).
    pub prior_burst_cv: f64,
    /// Inflation of the estimated excess dispersion by `1 + upperZ * sqrt(2/df)`.
    pub upper_z: f64,
    /// When the data show overdispersion (the factor estimated with a Poisson prior exceeds
    /// `overdispersedAbove`), a count metric may not fail before `overdispersedMinWindows`
    /// windows: a few windows cannot tell a burst in one arm from a regression, and the
    /// dispersion estimate needs data to be trusted. The prior alone does not trigger this
    /// rule: its job is to temper, not to wait.
    pub overdispersed_above: f64,
    pub overdispersed_min_windows: u32,
    /// Windows the estimate remembers: before each window the estimate's sums are multiplied
    /// by `1 - 1/memoryWindows`, so a burst that has ended, or an hour of history that no
    /// longer describes the service, stops taxing the analysis (a term's weight halves every
    /// `0.69 * memoryWindows` windows). 0 never forgets.
    pub memory_windows: f64,
}

impl Default for DispersionPolicy {
    fn default() -> Self {
        DispersionPolicy {
            enabled: true,
            prior_windows: 2.0,
            prior_burst_cv: 0.2,
            upper_z: 7.0,
            overdispersed_above: 1.5,
            overdispersed_min_windows: 8,
            memory_windows: 60.0,
        }
    }
}

/// One of the team's own metrics (`spec.analysis.metrics`): a counter pair judged exactly as
/// the error rate is (its failures per event, with the same tolerance, pass rules and
/// fail-fast rule), or a histogram judged exactly as the latency quantiles are. Its share of
/// `alpha` is its weight over the sum of every metric's weight (built-in and template), as for
/// the built-in metrics; a histogram's weight is split evenly between its quantiles when the
/// controller builds the policy. Like every metric, it gets the whole `alphaPass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TemplateMetricPolicy {
    /// The metric's name, which its verdicts carry (a quantile's: the name and `P95`, say).
    pub name: String,
    /// A counter pair's settings (its `weight` is the metric's).
    pub counter: Option<ErrorRatePolicy>,
    /// A histogram's quantiles, each with its own weight.
    pub quantiles: Vec<LatencyPolicy>,
}

impl TemplateMetricPolicy {
    /// The verdict name of the histogram quantile `q`: `checkoutDurationP95`.
    pub fn quantile_metric(&self, q: f64) -> String {
        let p = quantile_name(q);
        format!("{}{}", self.name, p.trim_start_matches("latency"))
    }

    fn weight(&self) -> f64 {
        self.counter.as_ref().map_or(0.0, |c| c.weight)
            + self.quantiles.iter().map(|l| l.weight).sum::<f64>()
    }
}

/// The judge's policy. The controller maps its CRD fields onto this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JudgePolicy {
    /// Family-wise probability of a false rollback (failing a canary no worse than tolerated).
    pub alpha: f64,
    /// Family-wise probability of a false promotion (passing a canary worse than a metric's pass
    /// rules allow). Every metric's test gets all of it (a promotion needs every metric to pass;
    /// see the judge's module docs), split between the metric's own pass rules.
    pub alpha_pass: f64,
    pub error_rate: Option<ErrorRatePolicy>,
    pub latency: Vec<LatencyPolicy>,
    pub distribution: Option<DistributionPolicy>,
    /// The team's own metrics, judged beside the built-in ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<TemplateMetricPolicy>,
    /// Minimum windows with data before a metric may fail or pass.
    pub min_windows: u32,
    /// Minimum events (both arms) before a count metric may fail.
    pub min_events: f64,
    /// Minimum canary requests before a metric may pass.
    pub min_canary_requests: f64,
    /// Scale of the mixing distributions (on log rate ratio / tilt).
    pub mixture_scale: f64,
    pub dispersion: DispersionPolicy,
}

impl Default for JudgePolicy {
    fn default() -> Self {
        JudgePolicy {
            alpha: 0.02,
            alpha_pass: 0.05,
            error_rate: Some(ErrorRatePolicy::default()),
            latency: vec![LatencyPolicy::default()],
            distribution: Some(DistributionPolicy::default()),
            metrics: Vec::new(),
            min_windows: 3,
            min_events: 5.0,
            min_canary_requests: 300.0,
            mixture_scale: 0.45,
            dispersion: DispersionPolicy::default(),
        }
    }
}

/// A policy the judge cannot use (a permanent error: wait for a spec change).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PolicyError {
    #[error("alpha and alphaPass must be in (0, 1), got {0}")]
    Alpha(f64),
    #[error("{metric}: tolerance must be positive and finite and not above passTolerance")]
    Tolerance { metric: String },
    #[error("latency quantile must be in (0, 1), got {0}")]
    Quantile(f64),
    #[error("{metric}: weight must be positive and finite")]
    Weight { metric: String },
    #[error("errorRate: passMargin must be in (0, 1), got {0}")]
    PassMargin(f64),
    #[error("errorRate: passRate must be in (0, 1), got {0}")]
    PassRate(f64),
    #[error("errorRate: maxRate must be in (0, 1), got {0}")]
    MaxRate(f64),
    #[error("errorRate: passRate {pass_rate} must be below maxRate {max_rate}")]
    PassRateNotBelowMaxRate { pass_rate: f64, max_rate: f64 },
    #[error("dispersion.memoryWindows must be 0 (never forget) or at least 1, got {0}")]
    MemoryWindows(f64),
    #[error("mixtureScale must be positive and finite")]
    MixtureScale,
    #[error("the policy enables no metric")]
    NoMetric,
    #[error("metric {0:?}: {1}")]
    Template(String, String),
}

fn check_tol(metric: &str, tol: f64, pass: f64, log_scale: bool) -> Result<(), PolicyError> {
    let ok = tol.is_finite() && pass.is_finite() && tol <= pass && (!log_scale || tol > 0.0);
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Tolerance {
            metric: metric.to_string(),
        })
    }
}

fn check_weight(metric: &str, w: f64) -> Result<(), PolicyError> {
    if w.is_finite() && w > 0.0 {
        Ok(())
    } else {
        Err(PolicyError::Weight {
            metric: metric.to_string(),
        })
    }
}

/// Metric name of a quantile, e.g. `latencyP99`, `latencyP99.9`.
pub fn quantile_name(q: f64) -> String {
    let p = q * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("latencyP{}", p.round())
    } else {
        format!("latencyP{}", (p * 1000.0).round() / 1000.0)
    }
}

impl JudgePolicy {
    /// Check the policy; the judge refuses an invalid one.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for a in [self.alpha, self.alpha_pass] {
            if !(a > 0.0 && a < 1.0) {
                return Err(PolicyError::Alpha(a));
            }
        }
        if !(self.mixture_scale.is_finite() && self.mixture_scale > 0.0) {
            return Err(PolicyError::MixtureScale);
        }
        let mw = self.dispersion.memory_windows;
        if !(mw == 0.0 || (mw.is_finite() && mw >= 1.0)) {
            return Err(PolicyError::MemoryWindows(mw));
        }
        if let Some(e) = &self.error_rate {
            check_tol("errorRate", e.tolerance, e.pass_tolerance, true)?;
            check_weight("errorRate", e.weight)?;
            if let Some(m) = e.pass_margin {
                if !(m > 0.0 && m < 1.0) {
                    return Err(PolicyError::PassMargin(m));
                }
            }
            if let Some(r) = e.pass_rate {
                if !(r > 0.0 && r < 1.0) {
                    return Err(PolicyError::PassRate(r));
                }
            }
            if let Some(r) = e.max_rate {
                if !(r > 0.0 && r < 1.0) {
                    return Err(PolicyError::MaxRate(r));
                }
                if let Some(p) = e.pass_rate.filter(|p| *p >= r) {
                    return Err(PolicyError::PassRateNotBelowMaxRate {
                        pass_rate: p,
                        max_rate: r,
                    });
                }
            }
        }
        for l in &self.latency {
            if !(l.quantile > 0.0 && l.quantile < 1.0) {
                return Err(PolicyError::Quantile(l.quantile));
            }
            let name = quantile_name(l.quantile);
            check_tol(&name, l.tolerance, l.pass_tolerance, true)?;
            check_weight(&name, l.weight)?;
        }
        if let Some(d) = &self.distribution {
            check_tol("latencyDistribution", d.tolerance, d.pass_tolerance, false)?;
            check_weight("latencyDistribution", d.weight)?;
        }
        let mut names: Vec<String> = Vec::new();
        for m in &self.metrics {
            let bad = |why: &str| PolicyError::Template(m.name.clone(), why.to_string());
            if m.name.is_empty() || m.name == "errorRate" || m.name.starts_with("latency") {
                return Err(bad(
                    "a template metric needs its own name, not a built-in one",
                ));
            }
            match (&m.counter, m.quantiles.is_empty()) {
                (Some(c), true) => {
                    check_tol(&m.name, c.tolerance, c.pass_tolerance, true)?;
                    check_weight(&m.name, c.weight)?;
                    if c.pass_margin.is_some_and(|x| !(x > 0.0 && x < 1.0))
                        || c.pass_rate.is_some_and(|x| !(x > 0.0 && x < 1.0))
                    {
                        return Err(bad("passMargin and passRate must be in (0, 1)"));
                    }
                    names.push(m.name.clone());
                }
                (None, false) => {
                    for l in &m.quantiles {
                        if !(l.quantile > 0.0 && l.quantile < 1.0) {
                            return Err(PolicyError::Quantile(l.quantile));
                        }
                        let name = m.quantile_metric(l.quantile);
                        check_tol(&name, l.tolerance, l.pass_tolerance, true)?;
                        check_weight(&name, l.weight)?;
                        names.push(name);
                    }
                }
                _ => return Err(bad("set exactly one of a counter pair or quantiles")),
            }
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != names.len() {
            return Err(PolicyError::Template(
                names.join(", "),
                "two template metrics judge under one name".into(),
            ));
        }
        if self.error_rate.is_none()
            && self.latency.is_empty()
            && self.distribution.is_none()
            && self.metrics.is_empty()
        {
            return Err(PolicyError::NoMetric);
        }
        Ok(())
    }

    pub(super) fn total_weight(&self) -> f64 {
        self.error_rate.as_ref().map_or(0.0, |e| e.weight)
            + self.latency.iter().map(|l| l.weight).sum::<f64>()
            + self.distribution.as_ref().map_or(0.0, |d| d.weight)
            + self
                .metrics
                .iter()
                .map(TemplateMetricPolicy::weight)
                .sum::<f64>()
    }

    fn dispersion(&self) -> Option<(f64, f64, f64)> {
        let d = &self.dispersion;
        d.enabled.then_some((
            d.prior_windows,
            d.prior_burst_cv * d.prior_burst_cv,
            d.upper_z,
        ))
    }

    pub(super) fn ratio_config(&self, tol: f64, pass: f64) -> RatioTestConfig {
        RatioTestConfig {
            fail_ratio: tol,
            pass_ratio: pass,
            mixture_scale: self.mixture_scale,
            dispersion: self.dispersion(),
            keep: match self.dispersion.memory_windows {
                m if m >= 1.0 => 1.0 - 1.0 / m,
                _ => 1.0,
            },
        }
    }

    /// The tolerance and pass tolerance of the metric named `metric` (as a verdict names it),
    /// on the scale its bounds are reported in; `None` for a metric this policy does not have.
    pub fn decision_points(&self, metric: &str) -> Option<(f64, f64)> {
        match metric {
            "errorRate" => self
                .error_rate
                .as_ref()
                .map(|e| (e.tolerance, e.pass_tolerance)),
            "latencyDistribution" => self
                .distribution
                .as_ref()
                .map(|d| (d.tolerance, d.pass_tolerance)),
            name => self
                .latency
                .iter()
                .find(|l| quantile_name(l.quantile) == name)
                .map(|l| (l.tolerance, l.pass_tolerance))
                .or_else(|| {
                    self.metrics.iter().find_map(|m| match &m.counter {
                        Some(c) if m.name == name => Some((c.tolerance, c.pass_tolerance)),
                        _ => m
                            .quantiles
                            .iter()
                            .find(|l| m.quantile_metric(l.quantile) == name)
                            .map(|l| (l.tolerance, l.pass_tolerance)),
                    })
                }),
        }
    }

    pub(super) fn shift_config(&self, d: &DistributionPolicy) -> ShiftTestConfig {
        ShiftTestConfig {
            fail_shift: d.tolerance,
            pass_shift: d.pass_tolerance,
            mixture_scale: self.mixture_scale,
        }
    }
}
