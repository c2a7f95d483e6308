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
//! reaches `1/alpha_pass_m`. Both decisions are sticky (an anytime-valid test may stop at the
//! first crossing). Family-wise error control: weighted Bonferroni, `alpha_m = alpha * w_m /
//! sum(w)`, separately for the fail and the pass family; since every e-process is valid at all
//! times, the union bound holds however often the judge looks.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::stats::counts::{RatioSummary, RatioTestConfig, RatioTestState};
use super::stats::latency::{choose_boundary, Histogram, ShiftTestConfig, ShiftTestState};

/// Outcome of a metric or of the whole analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// Error-rate settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorRatePolicy {
    /// Fail when the canary's error rate is shown to exceed `tolerance` x the baseline's.
    pub tolerance: f64,
    /// Pass when it is shown to be below `pass_tolerance` x the baseline's.
    pub pass_tolerance: f64,
    pub critical: bool,
    /// Share of alpha (weighted Bonferroni).
    pub weight: f64,
}

impl Default for ErrorRatePolicy {
    fn default() -> Self {
        ErrorRatePolicy {
            tolerance: 1.0,
            pass_tolerance: 1.5,
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
        }
    }
}

/// The judge's policy. The controller maps its CRD fields onto this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    /// Family-wise probability of a false rollback (failing a canary no worse than tolerated).
    pub alpha: f64,
    /// Family-wise probability of a false promotion (passing a canary worse than `pass_tolerance`).
    pub alpha_pass: f64,
    pub error_rate: Option<ErrorRatePolicy>,
    pub latency: Vec<LatencyPolicy>,
    pub distribution: Option<DistributionPolicy>,
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

impl Default for Policy {
    fn default() -> Self {
        Policy {
            alpha: 0.02,
            alpha_pass: 0.05,
            error_rate: Some(ErrorRatePolicy::default()),
            latency: vec![LatencyPolicy::default()],
            distribution: Some(DistributionPolicy::default()),
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
    #[error("mixtureScale must be positive and finite")]
    MixtureScale,
    #[error("the policy enables no metric")]
    NoMetric,
}

/// One arm's observations in one window (increments over the window, not running totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ArmWindow {
    pub requests: Option<f64>,
    pub errors: Option<f64>,
    /// Latency histogram of the window's requests.
    pub latency: Option<Histogram>,
}

/// One look: both arms over the same interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Window {
    pub baseline: ArmWindow,
    pub canary: ArmWindow,
    /// Nominal canary traffic share; informational: the tests weight by the observed requests.
    pub canary_share: Option<f64>,
}

/// Latency-quantile state: the frozen bound, the test, and both arms' accumulated histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QuantileState {
    pub quantile: f64,
    /// The chosen histogram bound (seconds); `None` until the baseline has enough requests.
    pub boundary: Option<f64>,
    pub test: RatioTestState,
    pub canary_hist: Option<Histogram>,
    pub baseline_hist: Option<Histogram>,
    /// Baseline windows seen before the bound was chosen.
    pub pending_baseline: Option<Histogram>,
    pub decided: Option<Verdict>,
}

/// Everything the judge remembers between looks. Serialize it into the Rollout status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JudgeState {
    pub looks: u32,
    pub error_rate: Option<RatioTestState>,
    pub error_decided: Option<Verdict>,
    pub latency: Vec<QuantileState>,
    pub distribution: Option<ShiftTestState>,
    pub distribution_decided: Option<Verdict>,
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
pub struct MetricVerdict {
    pub metric: String,
    pub verdict: Verdict,
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
    pub verdict: Verdict,
    pub reason: String,
    pub metrics: Vec<MetricVerdict>,
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

impl Policy {
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
        if let Some(e) = &self.error_rate {
            check_tol("errorRate", e.tolerance, e.pass_tolerance, true)?;
            check_weight("errorRate", e.weight)?;
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
        if self.error_rate.is_none() && self.latency.is_empty() && self.distribution.is_none() {
            return Err(PolicyError::NoMetric);
        }
        Ok(())
    }

    fn total_weight(&self) -> f64 {
        self.error_rate.as_ref().map_or(0.0, |e| e.weight)
            + self.latency.iter().map(|l| l.weight).sum::<f64>()
            + self.distribution.as_ref().map_or(0.0, |d| d.weight)
    }

    fn dispersion(&self) -> Option<(f64, f64, f64)> {
        let d = &self.dispersion;
        d.enabled.then_some((
            d.prior_windows,
            d.prior_burst_cv * d.prior_burst_cv,
            d.upper_z,
        ))
    }

    fn ratio_config(&self, tol: f64, pass: f64) -> RatioTestConfig {
        RatioTestConfig {
            fail_ratio: tol,
            pass_ratio: pass,
            mixture_scale: self.mixture_scale,
            dispersion: self.dispersion(),
        }
    }

    fn shift_config(&self, d: &DistributionPolicy) -> ShiftTestConfig {
        ShiftTestConfig {
            fail_shift: d.tolerance,
            pass_shift: d.pass_tolerance,
            mixture_scale: self.mixture_scale,
        }
    }
}

fn finite_nonneg(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

fn valid_hist(h: &Option<Histogram>) -> Option<&Histogram> {
    h.as_ref().filter(|h| h.validate().is_ok())
}

fn fmt_num(x: f64) -> String {
    crate::util::number::format_number(x)
}

/// Everything needed to judge one count metric from its summary.
struct CountJudge<'a> {
    policy: &'a Policy,
    alpha_m: f64,
    alpha_pass_m: f64,
    tolerance: f64,
    pass_tolerance: f64,
    what: &'a str,
}

impl CountJudge<'_> {
    /// Decide from the state; `fresh` says whether this look had usable data.
    fn decide(
        &self,
        st: &RatioTestState,
        sum: &RatioSummary,
        decided: Option<Verdict>,
        fresh: Result<(), String>,
    ) -> (Verdict, String) {
        let p = self.policy;
        let n_events = st.canary_events + st.baseline_events;
        let ev = format!(
            "canary {c}/{rc} vs baseline {b}/{rb} {w}; rate ratio {est} (bounds {lo}..{hi}); \
             e-value {e} (reject at {t}), pass e-value {ep} (at {tp}); dispersion {phi}",
            c = fmt_num(st.canary_events),
            rc = fmt_num(st.canary_requests),
            b = fmt_num(st.baseline_events),
            rb = fmt_num(st.baseline_requests),
            w = self.what,
            est = sum.estimate.map_or("n/a".into(), fmt_num),
            lo = fmt_num(sum.lower),
            hi = fmt_num(sum.upper),
            e = fmt_num(sum.e_value_fail),
            t = fmt_num(1.0 / self.alpha_m),
            ep = fmt_num(sum.e_value_pass),
            tp = fmt_num(1.0 / self.alpha_pass_m),
            phi = fmt_num(sum.dispersion),
        );
        let ev = if st.history_windows > 0 {
            format!(
                "{ev} (estimated with {} windows of baseline history)",
                st.history_windows
            )
        } else {
            ev
        };
        if let Err(why) = fresh {
            return (
                Verdict::Inconclusive,
                format!("no usable data in this window ({why}); evidence so far: {ev}"),
            );
        }
        if let Some(v @ (Verdict::Fail | Verdict::Pass)) = decided {
            return (
                v,
                format!("decided earlier and kept (sequential test stopped): {ev}"),
            );
        }
        if st.windows < p.min_windows {
            return (
                Verdict::Inconclusive,
                format!(
                    "{} of {} windows needed so far: {ev}",
                    st.windows, p.min_windows
                ),
            );
        }
        let disp = &p.dispersion;
        if disp.enabled
            && sum.data_dispersion > disp.overdispersed_above
            && st.windows < disp.overdispersed_min_windows
        {
            return (
                Verdict::Inconclusive,
                format!(
                    "overdispersed counts (factor {} from the data): {} of {} windows needed: {ev}",
                    fmt_num(sum.data_dispersion),
                    st.windows,
                    disp.overdispersed_min_windows
                ),
            );
        }
        if sum.e_value_fail >= 1.0 / self.alpha_m && n_events >= p.min_events {
            return (
                Verdict::Fail,
                format!(
                    "canary worse than {} x baseline with e-value {} >= {}: {ev}",
                    fmt_num(self.tolerance),
                    fmt_num(sum.e_value_fail),
                    fmt_num(1.0 / self.alpha_m)
                ),
            );
        }
        if sum.e_value_pass >= 1.0 / self.alpha_pass_m
            && st.canary_requests >= p.min_canary_requests
        {
            return (
                Verdict::Pass,
                format!(
                    "canary shown below {} x baseline with e-value {} >= {}: {ev}",
                    fmt_num(self.pass_tolerance),
                    fmt_num(sum.e_value_pass),
                    fmt_num(1.0 / self.alpha_pass_m)
                ),
            );
        }
        (
            Verdict::Inconclusive,
            format!("not enough evidence yet: {ev}"),
        )
    }
}

fn opt_finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// E-values can overflow f64 on overwhelming evidence; keep them finite for JSON.
fn finite_e(x: f64) -> Option<f64> {
    if x.is_nan() {
        None
    } else {
        Some(x.min(f64::MAX))
    }
}

/// The error-rate test's state for `cfg`: the one kept, or a fresh one when there is none or
/// it was built for another policy (then its decision is dropped too, and `true` says so).
fn error_rate_state<'a>(
    st: &'a mut JudgeState,
    cfg: &RatioTestConfig,
) -> (&'a mut RatioTestState, bool) {
    let stale = st.error_rate.as_ref().is_some_and(|s| !s.matches(cfg));
    if stale {
        st.error_decided = None;
    }
    if stale || st.error_rate.is_none() {
        st.error_rate = Some(RatioTestState::new(cfg));
    }
    let s = st
        .error_rate
        .get_or_insert_with(|| RatioTestState::new(cfg));
    (s, stale)
}

/// Prime a fresh state with the baseline's error counts from before the analysis (oldest
/// first; windows of the look interval's length; requests and errors needed, latency ignored),
/// used only to estimate the dispersion of the error counts (see
/// [`RatioTestState::add_history`]). Pure. A state that has already judged a window, or has
/// history, is returned unchanged, as is one whose policy has no error rate; so priming may be
/// repeated, e.g. when a crashed look is replayed. The second value is the number of windows
/// that went into the estimate.
pub fn prime_history(
    state: &JudgeState,
    policy: &Policy,
    history: &[ArmWindow],
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
    policy: &Policy,
    window: &Window,
) -> Result<(JudgeState, Judgement), PolicyError> {
    policy.validate()?;
    let mut st = state.clone();
    st.looks += 1;
    let mut notes: Vec<String> = Vec::new();

    // ---- error rate
    let mut err_fresh: Result<(), String> = Err("error rate not configured".into());
    if let Some(ep) = &policy.error_rate {
        let cfg = policy.ratio_config(ep.tolerance, ep.pass_tolerance);
        let grid = cfg.grid();
        let (s, reset) = error_rate_state(&mut st, &cfg);
        if reset {
            notes.push("errorRate: policy changed, evidence reset".into());
        }
        let c = finite_nonneg(window.canary.errors);
        let b = finite_nonneg(window.baseline.errors);
        let rc = finite_nonneg(window.canary.requests);
        let rb = finite_nonneg(window.baseline.requests);
        err_fresh = match (c, b, rc, rb) {
            (Some(c), Some(b), Some(rc), Some(rb)) => {
                if s.add_window(&grid, c, b, rc, rb) {
                    Ok(())
                } else {
                    Err("counts inconsistent or an arm had no requests".into())
                }
            }
            _ => Err("request or error counts missing or not finite".into()),
        };
    } else {
        st.error_rate = None;
    }

    // ---- latency quantiles
    let old_lat = std::mem::take(&mut st.latency);
    let mut lat_fresh: Vec<Result<(), String>> = Vec::new();
    let hists = match (
        valid_hist(&window.canary.latency),
        valid_hist(&window.baseline.latency),
    ) {
        (Some(c), Some(b)) if c.bounds == b.bounds => Ok((c, b)),
        (Some(_), Some(_)) => Err("canary and baseline histograms have different buckets"),
        _ => Err("latency histogram missing or invalid"),
    };
    for lp in &policy.latency {
        let cfg = policy.ratio_config(lp.tolerance, lp.pass_tolerance);
        let grid = cfg.grid();
        let mut qs = old_lat
            .iter()
            .find(|q| q.quantile == lp.quantile && q.test.matches(&cfg))
            .cloned()
            .unwrap_or_else(|| QuantileState {
                quantile: lp.quantile,
                test: RatioTestState::new(&cfg),
                ..Default::default()
            });
        let fresh = match hists {
            Err(e) => Err(e.to_string()),
            Ok((c, b)) => quantile_window(&mut qs, &grid, c, b),
        };
        lat_fresh.push(fresh);
        st.latency.push(qs);
    }

    // ---- whole distribution
    let mut dist_fresh: Result<(), String> = Err("not configured".into());
    if let Some(dp) = &policy.distribution {
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
        dist_fresh = match hists {
            Err(e) => Err(e.to_string()),
            Ok((c, b)) => {
                if s.add_window(&grid, c, b) {
                    Ok(())
                } else if s.windows == 0 && c.total() > 0.0 && b.total() > 0.0 {
                    Err("first window builds the baseline reference".into())
                } else {
                    Err("an arm had no requests in its histogram".into())
                }
            }
        };
    } else {
        st.distribution = None;
    }

    let metrics = evaluate_inner(&mut st, policy, err_fresh, &lat_fresh, dist_fresh);
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

fn quantile_window(
    qs: &mut QuantileState,
    grid: &super::stats::sequential::Grid,
    c: &Histogram,
    b: &Histogram,
) -> Result<(), String> {
    // accumulate both arms' histograms for the descriptive quantiles
    for (acc, h) in [(&mut qs.canary_hist, c), (&mut qs.baseline_hist, b)] {
        match acc {
            Some(a) if a.bounds == h.bounds => {
                let _ = a.add(h);
            }
            _ => *acc = Some(h.clone()),
        }
    }
    let boundary_idx = match qs.boundary {
        Some(bound) => match b.bounds.iter().position(|x| *x == bound) {
            Some(i) => i,
            None => return Err(format!("histogram no longer has the bound {bound}")),
        },
        None => {
            let pend = match qs.pending_baseline.take() {
                Some(mut p) if p.bounds == b.bounds => {
                    let _ = p.add(b);
                    p
                }
                _ => b.clone(),
            };
            let need = (1.5 / (1.0 - qs.quantile)).max(50.0);
            if pend.total() < need {
                let have = pend.total();
                qs.pending_baseline = Some(pend);
                return Err(format!(
                    "choosing the bound: {} of {} baseline requests",
                    fmt_num(have),
                    fmt_num(need)
                ));
            }
            match choose_boundary(&pend, qs.quantile) {
                Some(i) => {
                    qs.boundary = Some(pend.bounds[i]);
                    // the windows that chose the bound are not reused for the test
                    return Err(format!("bound chosen at {}", fmt_num(pend.bounds[i])));
                }
                None => {
                    qs.pending_baseline = Some(pend);
                    return Err("no histogram bound near the baseline quantile".into());
                }
            }
        }
    };
    let ce = c.exceedances(boundary_idx);
    let be = b.exceedances(boundary_idx);
    if qs.test.add_window(grid, ce, be, c.total(), b.total()) {
        Ok(())
    } else {
        Err("an arm had no requests in its histogram".into())
    }
}

/// Verdicts from a state without adding data (e.g. to show the current standing).
pub fn evaluate(state: &JudgeState, policy: &Policy) -> Result<Judgement, PolicyError> {
    policy.validate()?;
    let mut st = state.clone();
    let lat: Vec<Result<(), String>> = policy.latency.iter().map(|_| Ok(())).collect();
    let metrics = evaluate_inner(&mut st, policy, Ok(()), &lat, Ok(()));
    let (verdict, reason) = combine(&metrics);
    Ok(Judgement {
        verdict,
        reason,
        metrics,
    })
}

fn evaluate_inner(
    st: &mut JudgeState,
    policy: &Policy,
    err_fresh: Result<(), String>,
    lat_fresh: &[Result<(), String>],
    dist_fresh: Result<(), String>,
) -> Vec<MetricVerdict> {
    let total_w = policy.total_weight();
    let mut out = Vec::new();

    if let (Some(ep), Some(s)) = (&policy.error_rate, st.error_rate.as_ref()) {
        let cfg = policy.ratio_config(ep.tolerance, ep.pass_tolerance);
        let grid = cfg.grid();
        let alpha_m = policy.alpha * ep.weight / total_w;
        let alpha_pass_m = policy.alpha_pass * ep.weight / total_w;
        let sum = s.summary(&cfg, &grid, alpha_m);
        let j = CountJudge {
            policy,
            alpha_m,
            alpha_pass_m,
            tolerance: ep.tolerance,
            pass_tolerance: ep.pass_tolerance,
            what: "errors",
        };
        let (v, reason) = j.decide(s, &sum, st.error_decided, err_fresh);
        if v != Verdict::Inconclusive && st.error_decided.is_none() {
            st.error_decided = Some(v);
        }
        out.push(MetricVerdict {
            metric: "errorRate".into(),
            verdict: v,
            critical: ep.critical,
            test: "sequential conditional-Poisson mixture SPRT on error counts (rate ratio)".into(),
            reason,
            estimate: sum.estimate,
            lower: opt_finite(sum.lower),
            upper: opt_finite(sum.upper),
            e_value: finite_e(sum.e_value_fail),
            threshold: 1.0 / alpha_m,
            e_value_pass: finite_e(sum.e_value_pass),
            pass_threshold: 1.0 / alpha_pass_m,
            dispersion: Some(sum.dispersion),
            samples: Samples {
                windows: s.windows,
                canary_requests: s.canary_requests,
                baseline_requests: s.baseline_requests,
                canary_events: Some(s.canary_events),
                baseline_events: Some(s.baseline_events),
            },
            detail: None,
        });
    }

    for (i, lp) in policy.latency.iter().enumerate() {
        let Some(qs) = st.latency.get_mut(i) else {
            continue;
        };
        let cfg = policy.ratio_config(lp.tolerance, lp.pass_tolerance);
        let grid = cfg.grid();
        let alpha_m = policy.alpha * lp.weight / total_w;
        let alpha_pass_m = policy.alpha_pass * lp.weight / total_w;
        let sum = qs.test.summary(&cfg, &grid, alpha_m);
        let what = match qs.boundary {
            Some(b) => format!("requests slower than {}s", fmt_num(b)),
            None => "requests above the bound (not chosen yet)".into(),
        };
        let j = CountJudge {
            policy,
            alpha_m,
            alpha_pass_m,
            tolerance: lp.tolerance,
            pass_tolerance: lp.pass_tolerance,
            what: &what,
        };
        let fresh = lat_fresh.get(i).cloned().unwrap_or(Ok(()));
        let (v, reason) = j.decide(&qs.test, &sum, qs.decided, fresh);
        if v != Verdict::Inconclusive && qs.decided.is_none() {
            qs.decided = Some(v);
        }
        let cq = qs
            .canary_hist
            .as_ref()
            .and_then(|h| h.quantile(lp.quantile));
        let bq = qs
            .baseline_hist
            .as_ref()
            .and_then(|h| h.quantile(lp.quantile));
        // Bonferroni over the two arms for a 95% statement on the difference
        let cb = qs
            .canary_hist
            .as_ref()
            .and_then(|h| h.quantile_bounds(lp.quantile, 0.025));
        let bb = qs
            .baseline_hist
            .as_ref()
            .and_then(|h| h.quantile_bounds(lp.quantile, 0.025));
        let (dl, du) = match (cb, bb) {
            (Some((cl, cu)), Some((bl, bu))) => (opt_finite(cl - bu), opt_finite(cu - bl)),
            _ => (None, None),
        };
        out.push(MetricVerdict {
            metric: quantile_name(lp.quantile),
            verdict: v,
            critical: lp.critical,
            test: "sequential conditional-Poisson mixture SPRT on counts above a histogram bound near the baseline quantile (rate ratio)".into(),
            reason,
            estimate: sum.estimate,
            lower: opt_finite(sum.lower),
            upper: opt_finite(sum.upper),
            e_value: finite_e(sum.e_value_fail),
            threshold: 1.0 / alpha_m,
            e_value_pass: finite_e(sum.e_value_pass),
            pass_threshold: 1.0 / alpha_pass_m,
            dispersion: Some(sum.dispersion),
            samples: Samples {
                windows: qs.test.windows,
                canary_requests: qs.test.canary_requests,
                baseline_requests: qs.test.baseline_requests,
                canary_events: Some(qs.test.canary_events),
                baseline_events: Some(qs.test.baseline_events),
            },
            detail: Some(QuantileDetail {
                quantile: lp.quantile,
                boundary: qs.boundary,
                canary_quantile: cq,
                baseline_quantile: bq,
                difference_lower: dl,
                difference_upper: du,
            }),
        });
    }

    if let (Some(dp), Some(s)) = (&policy.distribution, st.distribution.as_ref()) {
        let cfg = policy.shift_config(dp);
        let grid = cfg.grid();
        let alpha_m = policy.alpha * dp.weight / total_w;
        let alpha_pass_m = policy.alpha_pass * dp.weight / total_w;
        let sum = s.summary(&cfg, &grid, alpha_m);
        let ev = format!(
            "tilt {est} (bounds {lo}..{hi}); e-value {e} (reject at {t}), pass e-value {ep} (at {tp}); {w} windows, canary {rc} vs baseline {rb} requests",
            est = fmt_num(sum.estimate),
            lo = fmt_num(sum.lower),
            hi = fmt_num(sum.upper),
            e = fmt_num(sum.e_value_fail),
            t = fmt_num(1.0 / alpha_m),
            ep = fmt_num(sum.e_value_pass),
            tp = fmt_num(1.0 / alpha_pass_m),
            w = s.windows,
            rc = fmt_num(s.canary_requests),
            rb = fmt_num(s.baseline_requests),
        );
        let (v, reason) = if let Err(why) = dist_fresh {
            (
                Verdict::Inconclusive,
                format!("no usable data in this window ({why}); evidence so far: {ev}"),
            )
        } else if let Some(v @ (Verdict::Fail | Verdict::Pass)) = st.distribution_decided {
            (v, format!("decided earlier and kept: {ev}"))
        } else if s.windows < policy.min_windows {
            (
                Verdict::Inconclusive,
                format!(
                    "{} of {} windows needed so far: {ev}",
                    s.windows, policy.min_windows
                ),
            )
        } else if sum.e_value_fail >= 1.0 / alpha_m {
            (
                Verdict::Fail,
                format!("canary latency distribution shifted up: {ev}"),
            )
        } else if sum.e_value_pass >= 1.0 / alpha_pass_m
            && s.canary_requests >= policy.min_canary_requests
        {
            (
                Verdict::Pass,
                format!("canary latency distribution shown within tolerance: {ev}"),
            )
        } else {
            (
                Verdict::Inconclusive,
                format!("not enough evidence yet: {ev}"),
            )
        };
        if v != Verdict::Inconclusive && st.distribution_decided.is_none() {
            st.distribution_decided = Some(v);
        }
        out.push(MetricVerdict {
            metric: "latencyDistribution".into(),
            verdict: v,
            critical: dp.critical,
            test: "sequential rank-score tilt test on histogram buckets (whole distribution)"
                .into(),
            reason,
            estimate: Some(sum.estimate),
            lower: opt_finite(sum.lower),
            upper: opt_finite(sum.upper),
            e_value: finite_e(sum.e_value_fail),
            threshold: 1.0 / alpha_m,
            e_value_pass: finite_e(sum.e_value_pass),
            pass_threshold: 1.0 / alpha_pass_m,
            dispersion: None,
            samples: Samples {
                windows: s.windows,
                canary_requests: s.canary_requests,
                baseline_requests: s.baseline_requests,
                canary_events: None,
                baseline_events: None,
            },
            detail: None,
        });
    }
    out
}

/// Overall verdict: Fail when a critical metric fails; Pass when every critical metric (every
/// metric, if none is critical) passes and none fails; otherwise Inconclusive.
pub fn combine(metrics: &[MetricVerdict]) -> (Verdict, String) {
    if metrics.is_empty() {
        return (Verdict::Inconclusive, "no metric could be judged".into());
    }
    let failed_critical: Vec<&str> = metrics
        .iter()
        .filter(|m| m.critical && m.verdict == Verdict::Fail)
        .map(|m| m.metric.as_str())
        .collect();
    if !failed_critical.is_empty() {
        return (
            Verdict::Fail,
            format!("critical metric(s) failed: {}", failed_critical.join(", ")),
        );
    }
    let failed: Vec<&str> = metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Fail)
        .map(|m| m.metric.as_str())
        .collect();
    let any_critical = metrics.iter().any(|m| m.critical);
    let needed: Vec<&MetricVerdict> = metrics
        .iter()
        .filter(|m| m.critical || !any_critical)
        .collect();
    let pending: Vec<&str> = needed
        .iter()
        .filter(|m| m.verdict != Verdict::Pass)
        .map(|m| m.metric.as_str())
        .collect();
    if !failed.is_empty() {
        return (
            Verdict::Inconclusive,
            format!(
                "non-critical metric(s) failed, which blocks promotion but not a rollback: {}",
                failed.join(", ")
            ),
        );
    }
    if pending.is_empty() {
        return (Verdict::Pass, "every required metric passed".into());
    }
    (
        Verdict::Inconclusive,
        format!("waiting for evidence on: {}", pending.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(body: [f64; 5]) -> Histogram {
        let mut cum = 0.0;
        Histogram {
            bounds: vec![0.1, 0.25, 0.5, 1.0, f64::INFINITY],
            cumulative: body
                .iter()
                .map(|x| {
                    cum += x;
                    cum
                })
                .collect(),
        }
    }

    fn win(ce: f64, be: f64, c_lat: [f64; 5], b_lat: [f64; 5]) -> Window {
        Window {
            baseline: ArmWindow {
                requests: Some(b_lat.iter().sum()),
                errors: Some(be),
                latency: Some(hist(b_lat)),
            },
            canary: ArmWindow {
                requests: Some(c_lat.iter().sum()),
                errors: Some(ce),
                latency: Some(hist(c_lat)),
            },
            canary_share: Some(0.5),
        }
    }

    const SAME: [f64; 5] = [600.0, 330.0, 60.0, 9.0, 1.0];
    const SLOW: [f64; 5] = [450.0, 380.0, 130.0, 36.0, 4.0];

    fn run(policy: &Policy, windows: &[Window]) -> (JudgeState, Judgement) {
        let mut st = JudgeState::default();
        let mut last = None;
        for w in windows {
            let (s, j) = update(&st, policy, w).expect("valid policy");
            st = s;
            last = Some(j);
        }
        (st, last.expect("at least one window"))
    }

    fn metric<'a>(j: &'a Judgement, name: &str) -> &'a MetricVerdict {
        j.metrics
            .iter()
            .find(|m| m.metric == name)
            .expect("metric present")
    }

    #[test]
    fn clear_error_regression_fails_with_an_explanation() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
        let (_, j) = run(&p, &ws);
        assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
        let m = metric(&j, "errorRate");
        assert_eq!(m.verdict, Verdict::Fail);
        assert!(m.e_value.unwrap_or(0.0) >= m.threshold);
        assert!((m.estimate.unwrap_or(0.0) - 3.0).abs() < 1e-9);
        assert!(m.lower.unwrap_or(0.0) > 1.0 && m.upper.unwrap_or(0.0) > 3.0);
        assert_eq!(m.samples.canary_events, Some(180.0));
        assert!(m.reason.contains("e-value") && m.test.contains("SPRT"));
        // the latency metrics of an identical latency stream do not fail
        assert_ne!(metric(&j, "latencyP99").verdict, Verdict::Fail);
        assert_ne!(metric(&j, "latencyDistribution").verdict, Verdict::Fail);
    }

    #[test]
    fn latency_regression_fails_latency_metrics() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..8).map(|_| win(5.0, 5.0, SLOW, SAME)).collect();
        let (_, j) = run(&p, &ws);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(metric(&j, "latencyDistribution").verdict, Verdict::Fail);
        let q = metric(&j, "latencyP99");
        assert_eq!(q.verdict, Verdict::Fail, "{q:?}");
        let d = q.detail.as_ref().expect("detail");
        assert_eq!(d.boundary, Some(0.5));
        assert!(d.canary_quantile > d.baseline_quantile, "{d:?}");
        assert!(q.estimate.unwrap_or(0.0) > 3.0, "{q:?}");
        assert!(d.difference_upper.unwrap_or(0.0) > 0.0, "{d:?}");
        assert!(d.difference_lower.unwrap_or(1.0) < d.difference_upper.unwrap_or(0.0));
        assert_ne!(metric(&j, "errorRate").verdict, Verdict::Fail);
    }

    #[test]
    fn healthy_canary_passes_on_evidence() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..40).map(|_| win(10.0, 10.0, SAME, SAME)).collect();
        let (_, j) = run(&p, &ws);
        assert_eq!(j.verdict, Verdict::Pass, "{j:#?}");
        for m in &j.metrics {
            assert_eq!(m.verdict, Verdict::Pass, "{m:?}");
        }
    }

    #[test]
    fn missing_nan_and_empty_data_are_inconclusive_never_fail_or_pass() {
        let p = Policy::default();
        let mut bad = Vec::new();
        let mut w = win(30.0, 10.0, SAME, SAME);
        w.canary.errors = Some(f64::NAN);
        w.canary.latency = None;
        bad.push(w);
        bad.push(Window::default());
        let mut w = win(30.0, 10.0, SAME, SAME);
        w.canary.requests = Some(0.0);
        w.canary.errors = Some(0.0);
        w.canary.latency = Some(hist([0.0; 5]));
        bad.push(w);
        let mut w = win(30.0, 10.0, SAME, SAME);
        w.baseline.errors = Some(f64::INFINITY);
        w.baseline.latency = Some(Histogram {
            bounds: vec![0.1, 0.2],
            cumulative: vec![5.0, 1.0],
        });
        bad.push(w);
        let mut st = JudgeState::default();
        for _ in 0..20 {
            for w in &bad {
                let (s, j) = update(&st, &p, w).expect("valid policy");
                st = s;
                assert_eq!(j.verdict, Verdict::Inconclusive);
                for m in &j.metrics {
                    assert_eq!(m.verdict, Verdict::Inconclusive, "{m:?}");
                    assert!(m.reason.contains("no usable data"), "{}", m.reason);
                }
            }
        }
        // and the bad windows left no evidence behind
        assert_eq!(st.error_rate.as_ref().map(|e| e.windows), Some(0));
        // after a real regression, a NaN look is still Inconclusive
        let ws: Vec<Window> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
        let (st, j) = run(&p, &ws);
        assert_eq!(j.verdict, Verdict::Fail);
        let (_, j) = update(&st, &p, &bad[0]).expect("valid");
        assert_eq!(metric(&j, "errorRate").verdict, Verdict::Inconclusive);
    }

    #[test]
    fn state_round_trips_through_json_and_resumes_identically() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..10)
            .map(|i| win(8.0 + (i % 3) as f64, 7.0, SAME, SAME))
            .collect();
        let (straight, j1) = run(&p, &ws);
        let mut st = JudgeState::default();
        let mut last = None;
        for w in &ws {
            let text = serde_json::to_string(&st).expect("serializes");
            let back: JudgeState = serde_json::from_str(&text).expect("deserializes");
            let (s, j) = update(&back, &p, w).expect("valid");
            st = s;
            last = Some(j);
        }
        assert_eq!(Some(j1), last);
        assert_eq!(straight.looks, st.looks);
        let size = serde_json::to_string(&st).map(|s| s.len()).unwrap_or(0);
        assert!(size < 16_000, "state is {size} bytes");
    }

    #[test]
    fn minimum_data_rules_hold_back_early_verdicts() {
        let p = Policy {
            min_windows: 5,
            ..Policy::default()
        };
        let ws: Vec<Window> = (0..4).map(|_| win(60.0, 5.0, SAME, SAME)).collect();
        let (_, j) = run(&p, &ws);
        assert_eq!(metric(&j, "errorRate").verdict, Verdict::Inconclusive);
        assert!(metric(&j, "errorRate").reason.contains("windows needed"));
    }

    fn err_win(c: f64, b: f64, requests: f64) -> Window {
        let arm = |e: f64| ArmWindow {
            requests: Some(requests),
            errors: Some(e),
            latency: None,
        };
        Window {
            baseline: arm(b),
            canary: arm(c),
            canary_share: Some(0.5),
        }
    }

    #[test]
    fn prior_burst_variance_tempers_high_count_windows_but_not_a_clear_regression() {
        // ~100 errors per window, the canary 50% above the baseline three windows running, with
        // residuals that look Poisson: a burst in one arm (rate multipliers with a CV of 0.5 do
        // this often enough) or a regression; three windows cannot tell. The prior burst
        // variance tempers it; a Poisson prior fails it at the first allowed look.
        let ws = [
            err_win(70.0, 40.0, 3000.0),
            err_win(55.0, 47.0, 3000.0),
            err_win(68.0, 38.0, 3000.0),
        ];
        let poisson_prior = Policy {
            dispersion: DispersionPolicy {
                prior_burst_cv: 0.0,
                ..DispersionPolicy::default()
            },
            ..Policy::default()
        };
        let (_, j0) = run(&poisson_prior, &ws);
        let m0 = metric(&j0, "errorRate");
        assert_eq!(m0.verdict, Verdict::Fail, "{m0:?}");
        assert_eq!(m0.dispersion, Some(1.0));
        let (_, j) = run(&Policy::default(), &ws);
        let m = metric(&j, "errorRate");
        assert_eq!(m.verdict, Verdict::Inconclusive, "{m:?}");
        let high = m.dispersion.unwrap_or(0.0);
        assert!(high > 3.0, "{m:?}");
        // the prior alone does not trigger the overdispersion wait (it tempers), and a clear
        // regression at these counts still fails at the first allowed look
        assert!(!m.reason.contains("overdispersed"), "{}", m.reason);
        let x2 = [
            err_win(66.0, 28.0, 3000.0),
            err_win(55.0, 33.0, 3000.0),
            err_win(64.0, 27.0, 3000.0),
        ];
        let (_, j) = run(&Policy::default(), &x2);
        let m = metric(&j, "errorRate");
        assert_eq!(m.verdict, Verdict::Fail, "{m:?}");
        assert!(m.dispersion.unwrap_or(0.0) > 1.5, "{m:?}");
        // at a few errors per window the same prior hardly matters
        let low = [
            err_win(7.0, 2.0, 300.0),
            err_win(4.0, 5.0, 300.0),
            err_win(8.0, 2.0, 300.0),
        ];
        let (_, j) = run(&Policy::default(), &low);
        let (_, j0) = run(&poisson_prior, &low);
        let d = metric(&j, "errorRate").dispersion.unwrap_or(0.0);
        assert_eq!(metric(&j0, "errorRate").dispersion, Some(1.0));
        assert!(d < 1.25, "{d}");
    }

    fn history(counts: &[f64], requests: f64) -> Vec<ArmWindow> {
        counts
            .iter()
            .map(|&e| ArmWindow {
                requests: Some(requests),
                errors: Some(e),
                latency: None,
            })
            .collect()
    }

    #[test]
    fn baseline_history_informs_the_dispersion_and_nothing_else() {
        // a few errors per window, the canary ahead eight windows running, residuals that look
        // Poisson: a regression, or a bursty service's luck; eight windows cannot tell
        let ws: Vec<Window> = [
            (5.0, 2.0),
            (6.0, 1.0),
            (4.0, 2.0),
            (6.0, 2.0),
            (5.0, 1.0),
            (6.0, 1.0),
            (5.0, 1.0),
            (6.0, 2.0),
        ]
        .iter()
        .map(|&(c, b)| err_win(c, b, 300.0))
        .collect();
        let policy = Policy::default();
        // an hour of the stable version's windows (all the traffic: twice an arm's requests)
        let bursty: Vec<f64> = (0..120)
            .map(|i| [0.0, 14.0, 3.0, 11.0, 1.0, 9.0, 6.0, 2.0][i % 8])
            .collect();
        let steady: Vec<f64> = (0..120)
            .map(|i| [6.0, 5.0, 7.0, 6.0, 4.0, 6.0, 8.0, 5.0][i % 8])
            .collect();
        // every window after the first with an error is a term (a rate needs an event)
        let prime = |h: &[f64]| {
            let (st, n) =
                prime_history(&JudgeState::default(), &policy, &history(h, 600.0)).expect("policy");
            assert_eq!(n, if h[0] > 0.0 { 119 } else { 118 });
            st
        };
        let judge_from = |st: JudgeState| {
            let mut st = st;
            let mut last = None;
            for w in &ws {
                let (s, j) = update(&st, &policy, w).expect("policy");
                st = s;
                last = Some(j);
            }
            (st, last.expect("windows"))
        };
        let (plain_state, plain) = judge_from(JudgeState::default());
        let (bursty_state, with_bursty) = judge_from(prime(&bursty));
        let (steady_state, with_steady) = judge_from(prime(&steady));
        let (p, b, s) = (
            metric(&plain, "errorRate"),
            metric(&with_bursty, "errorRate"),
            metric(&with_steady, "errorRate"),
        );
        // without history, and with a steady one, this is a regression
        assert_eq!(p.verdict, Verdict::Fail, "{p:?}");
        assert_eq!(s.verdict, Verdict::Fail, "{s:?}");
        assert!(s.dispersion.unwrap_or(9.0) < 1.2, "{s:?}");
        // a bursty history says eight windows are not enough
        assert_ne!(b.verdict, Verdict::Fail, "{b:?}");
        assert!(b.dispersion.unwrap_or(0.0) > 2.0, "{b:?}");
        assert!(
            b.reason.contains("118 windows of baseline history"),
            "{}",
            b.reason
        );
        // the evidence about the ratio itself is the same: history only tempers it
        let (pe, be) = (
            plain_state.error_rate.expect("state"),
            bursty_state.error_rate.expect("state"),
        );
        assert_eq!(pe.loglik, be.loglik);
        assert_eq!(
            (pe.canary_events, pe.baseline_events, pe.windows),
            (be.canary_events, be.baseline_events, be.windows)
        );
        assert_eq!(b.estimate, p.estimate);
        assert_eq!(steady_state.error_rate.expect("state").history_windows, 119);
        // history comes before the analysis, once: after a window, or a second time, it is
        // ignored, so a replayed first look cannot count it twice
        let (after, n) = prime_history(
            &judged_without_history(&ws, &policy),
            &policy,
            &history(&bursty, 600.0),
        )
        .expect("policy");
        assert_eq!(n, 0);
        assert_eq!(after, judged_without_history(&ws, &policy));
        let once = prime(&bursty);
        let (twice, n) = prime_history(&once, &policy, &history(&bursty, 600.0)).expect("policy");
        assert_eq!((n, &twice), (0, &once));
        // a state that survives a restart keeps it
        let json = serde_json::to_string(&once).expect("serialize");
        let back: JudgeState = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, once);
    }

    /// The state after judging `ws` without history.
    fn judged_without_history(ws: &[Window], policy: &Policy) -> JudgeState {
        run(policy, ws).0
    }

    #[test]
    fn non_critical_failure_blocks_promotion_but_does_not_roll_back() {
        let p = Policy {
            latency: vec![],
            distribution: Some(DistributionPolicy {
                critical: false,
                ..DistributionPolicy::default()
            }),
            ..Policy::default()
        };
        let ws: Vec<Window> = (0..40).map(|_| win(10.0, 10.0, SLOW, SAME)).collect();
        let (_, j) = run(&p, &ws);
        assert_eq!(metric(&j, "latencyDistribution").verdict, Verdict::Fail);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
    }

    #[test]
    fn invalid_policies_are_refused() {
        let st = JudgeState::default();
        let w = Window::default();
        let bad = [
            Policy {
                alpha: 0.0,
                ..Policy::default()
            },
            Policy {
                error_rate: Some(ErrorRatePolicy {
                    tolerance: 2.0,
                    pass_tolerance: 1.5,
                    ..Default::default()
                }),
                ..Policy::default()
            },
            Policy {
                latency: vec![LatencyPolicy {
                    quantile: 1.0,
                    ..Default::default()
                }],
                ..Policy::default()
            },
            Policy {
                error_rate: None,
                latency: vec![],
                distribution: None,
                ..Policy::default()
            },
        ];
        for p in bad {
            assert!(update(&st, &p, &w).is_err(), "{p:?}");
        }
    }

    #[test]
    fn changed_policy_resets_that_metric() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
        let (st, _) = run(&p, &ws);
        let p2 = Policy {
            error_rate: Some(ErrorRatePolicy {
                tolerance: 1.2,
                ..Default::default()
            }),
            ..Policy::default()
        };
        let (st2, j) = update(&st, &p2, &ws[0]).expect("valid");
        assert_eq!(st2.error_rate.as_ref().map(|e| e.windows), Some(1));
        assert!(j.reason.contains("evidence reset"));
    }

    #[test]
    fn evaluate_repeats_the_standing_without_new_data() {
        let p = Policy::default();
        let ws: Vec<Window> = (0..6).map(|_| win(30.0, 10.0, SAME, SAME)).collect();
        let (st, j) = run(&p, &ws);
        let again = evaluate(&st, &p).expect("valid");
        assert_eq!(again.verdict, j.verdict);
        assert_eq!(
            metric(&again, "errorRate").e_value,
            metric(&j, "errorRate").e_value
        );
        assert!(evaluate(&st, &Policy { alpha: 2.0, ..p }).is_err());
    }

    #[test]
    fn quantile_names() {
        assert_eq!(quantile_name(0.99), "latencyP99");
        assert_eq!(quantile_name(0.5), "latencyP50");
        assert_eq!(quantile_name(0.999), "latencyP99.9");
    }
}
