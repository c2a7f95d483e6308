//! Count metrics: the error-rate test (its windows in, its verdict out) and the judgement of
//! any rate-ratio test on counts, which the latency quantiles share (see [`super::quantile`]).
//!
//! The test is the sequential conditional-Poisson mixture SPRT of
//! [`crate::analysis::stats::counts`]: the canary's share of each window's events, tempered for
//! overdispersion; it fails at `1/alpha_m` against "canary rate <= tolerance x baseline" and
//! passes at `1/alpha_pass_m` against "canary rate >= passTolerance x baseline".
//!
//! The absolute guard (`maxRate`, optional): a one-sample test on the canary's own counts. The
//! canary fails when the lower end of an anytime-valid confidence sequence on its rate per
//! request is above `maxRate`, whatever the baseline does (Robbins' Gamma-Poisson mixture of
//! [`crate::analysis::stats::rate`], with the prior's mean at `maxRate`, where the rule acts,
//! tempered by the arm's dispersion; the Poisson martingale is a supermartingale for
//! per-request Bernoulli errors too, so it stays valid). Its alpha: half of the metric's
//! rollback share; the comparison (with its fail-fast rule) keeps the other half. A canary
//! whose rate is at most `maxRate` is therefore failed by the guard with probability at most
//! `alpha * w_m / sum(w) / 2`, at any look, and the family-wise union bound is unchanged.
//! While the canary's estimated rate is above `maxRate` the metric does not pass (a pass on
//! the comparison would otherwise end the analysis before the guard has its evidence: a canary
//! as bad as its baseline passes the ratio quickly); this only delays promotions, so it costs
//! no false-rollback control.

use super::ladder::{self, Rungs, Wording};
use super::policy::{ErrorRatePolicy, JudgePolicy};
use super::state::{error_rate_state, JudgeState};
use super::verdict::{fmt_num, opt_finite, JudgeVerdict, MetricJudgement, Samples, TestFigures};
use super::window::{beyond_ceiling, finite_nonneg, JudgeWindow};
use crate::analysis::stats::counts::{RatioSummary, RatioTestConfig, RatioTestState};
use crate::analysis::stats::difference::{difference_upper, ArmCounts};
use crate::analysis::stats::rate::{rate_bounds, rate_bounds_with};
use crate::analysis::stats::sequential::{log_e_less, Grid};
use crate::util::number::format_count;

/// Add the window's error counts to the error-rate test. `Err(why)` when the window had no
/// usable counts (it then adds no evidence); a policy change resets the test and says so in
/// `notes`.
pub(super) fn add_error_window(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    ep: &ErrorRatePolicy,
    window: &JudgeWindow,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let cfg = policy.ratio_config(ep.tolerance, ep.pass_tolerance);
    let grid = cfg.grid();
    let (s, reset) = error_rate_state(st, &cfg);
    if reset {
        notes.push("errorRate: policy changed, evidence reset".into());
    }
    let c = finite_nonneg(window.canary.errors);
    let b = finite_nonneg(window.baseline.errors);
    let rc = finite_nonneg(window.canary.requests);
    let rb = finite_nonneg(window.baseline.requests);
    match (c, b, rc, rb) {
        (Some(c), Some(b), Some(rc), Some(rb)) => {
            beyond_ceiling(&[c, b, rc, rb])?;
            if s.add_window(&grid, cfg.keep, c, b, rc, rb) {
                Ok(())
            } else {
                Err("counts inconsistent or an arm had no requests".into())
            }
        }
        _ => Err("request or error counts missing or not finite".into()),
    }
}

/// The error-rate metric's verdict, when the policy has one and its test has a state.
pub(super) fn judge_error_rate(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    fresh: Result<(), String>,
) -> Option<MetricJudgement> {
    let ep = policy.error_rate.as_ref()?;
    judge_counter(st, policy, ep, "errorRate", fresh)
}

/// The verdict of a counter test kept in `st`'s error-rate fields under the settings `ep`,
/// named `metric`: the built-in error rate, or a template counter pair (whose state is its
/// own [`JudgeState`]).
pub(super) fn judge_counter(
    st: &mut JudgeState,
    policy: &JudgePolicy,
    ep: &ErrorRatePolicy,
    metric: &str,
    fresh: Result<(), String>,
) -> Option<MetricJudgement> {
    let s = st.error_rate.as_ref()?;
    let metric = CountMetric {
        metric: metric.into(),
        test: "sequential conditional-Poisson mixture SPRT on error counts (rate ratio)",
        critical: ep.critical,
        tolerance: ep.tolerance,
        pass_tolerance: ep.pass_tolerance,
        pass_margin: ep.pass_margin,
        pass_rate: ep.pass_rate,
        max_rate: ep.max_rate,
        fail_fast: true,
        weight: ep.weight,
        what: "errors".into(),
        watch: None,
    };
    Some(metric.judge(policy, s, &mut st.error_decided, fresh))
}

/// The non-inferiority rule at this look.
#[derive(Debug, Clone, Copy)]
struct Margin {
    /// Anytime-valid upper bound on canary minus baseline rate per request.
    upper: f64,
    margin: f64,
}

/// The service-level rule at this look.
#[derive(Debug, Clone, Copy)]
struct Slo {
    /// Anytime-valid upper bound on the canary's own rate per request.
    upper: f64,
    rate: f64,
}

/// The absolute guard at this look.
#[derive(Debug, Clone, Copy)]
struct Guard {
    /// Anytime-valid lower bound on the canary's own rate per request.
    lower: f64,
    max_rate: f64,
    /// The lower bound is above `max_rate`, with the events the policy asks before a fail.
    fails: bool,
}

/// The absolute rules of a count metric at one look (the pass rules and the guard), and what
/// they need.
#[derive(Debug, Clone, Copy)]
struct AbsoluteRules {
    margin: Option<Margin>,
    slo: Option<Slo>,
    guard: Option<Guard>,
}

/// A fail-only test beside a count metric's own, on the same windows (a latency quantile's
/// watch bound, see [`super::quantile`]): it takes half of the metric's rollback alpha.
pub(super) struct Watch<'a> {
    pub test: &'a RatioTestState,
    /// The histogram bound it counts requests above (seconds).
    pub bound: f64,
}

/// One count metric to judge: its name, test, tolerances and share of alpha.
pub(super) struct CountMetric<'a> {
    pub metric: String,
    pub test: &'static str,
    pub critical: bool,
    pub tolerance: f64,
    pub pass_tolerance: f64,
    /// Absolute non-inferiority margin on the rate per request (see
    /// [`ErrorRatePolicy::pass_margin`]).
    pub pass_margin: Option<f64>,
    /// Service-level pass rule on the canary's own rate (see [`ErrorRatePolicy::pass_rate`]).
    pub pass_rate: Option<f64>,
    /// The absolute guard on the canary's own rate (see [`ErrorRatePolicy::max_rate`]).
    pub max_rate: Option<f64>,
    /// Whether the fail-fast rule for a broken canary applies (error rate).
    pub fail_fast: bool,
    pub weight: f64,
    /// What the events are, for the reason (e.g. "errors").
    pub what: String,
    /// A fail-only test beside this one (latency quantiles with a watch bound).
    pub watch: Option<Watch<'a>>,
}

/// What the watch test shows at one look.
struct WatchLook {
    figures: TestFigures,
    fails: bool,
    /// Its counts and figures in words.
    evidence: String,
}

impl CountMetric<'_> {
    /// The metric's verdict from its test's state; `decided` keeps the first decision.
    pub(super) fn judge(
        &self,
        policy: &JudgePolicy,
        s: &RatioTestState,
        decided: &mut Option<JudgeVerdict>,
        fresh: Result<(), String>,
    ) -> MetricJudgement {
        let cfg = policy.ratio_config(self.tolerance, self.pass_tolerance);
        let grid = cfg.grid();
        let total_w = policy.total_weight();
        // the fail-fast rule (error rate only) takes a tenth of the metric's rollback alpha, a
        // watch test half of it
        let share = policy.alpha * self.weight / total_w;
        // the absolute guard takes half of the metric's rollback alpha
        let (share, guard_alpha) = match self.max_rate {
            Some(_) => (share / 2.0, share / 2.0),
            None => (share, 0.0),
        };
        let (share, watch_alpha) = match self.watch {
            Some(_) => (share / 2.0, share / 2.0),
            None => (share, 0.0),
        };
        let alpha_m = if self.fail_fast { 0.9 * share } else { share };
        let broken_now = self
            .fail_fast
            .then(|| broken(s, self.tolerance, sum_phi(s, policy, self), 0.1 * share))
            .flatten();
        let fail_now = broken_now.as_ref().map(|b| b.reason.clone());
        // the promotion alpha is not shared between metrics (a promotion needs every metric to
        // pass, see the module docs), but split evenly between the metric's own pass rules,
        // any one of which passes it
        let rules = 1.0
            + f64::from(u8::from(self.pass_margin.is_some()))
            + f64::from(u8::from(self.pass_rate.is_some()));
        let alpha_pass_m = policy.alpha_pass / rules;
        let sum = s.summary(&cfg, &grid, alpha_m, alpha_pass_m);
        let figures = TestFigures {
            estimate: sum.estimate,
            // when the fail-fast rule holds, the rate ratio is shown above what it shows too
            lower: broken_now
                .as_ref()
                .map_or(sum.lower, |b| sum.lower.max(b.ratio_lower)),
            upper: sum.upper,
            e_value_fail: sum.e_value_fail,
            e_value_pass: sum.e_value_pass,
            alpha_m,
            alpha_pass_m,
        };
        let abs = AbsoluteRules {
            margin: self.margin(s, &sum, alpha_pass_m),
            slo: self.slo(s, &sum, alpha_pass_m),
            guard: self.guard(s, &sum, guard_alpha, policy),
        };
        let watch = self
            .watch
            .as_ref()
            .map(|w| self.watch_look(policy, (&cfg, &grid), w, (watch_alpha, alpha_pass_m)));
        // the main test fails only with enough events behind it
        let main_fails = figures.fail() && s.canary_events + s.baseline_events >= policy.min_events;
        let mut judged = self.decide(
            policy,
            s,
            &sum,
            (&figures, main_fails),
            (*decided, fresh),
            (abs, fail_now, watch.as_ref()),
        );
        // the figures reported are those of the test that decided: the watch test's when it
        // alone failed
        let figures = match watch {
            Some(w) if w.fails && !main_fails && judged.0 == JudgeVerdict::Fail => w.figures,
            _ => figures,
        };
        let ratio_at = |k: f64| {
            // the window log-likelihoods add up, so k times the data scales it by k
            let mut ll = s.loglik.clone();
            ll.values.iter_mut().for_each(|v| *v *= k);
            let pi = grid.index_at_or_below(cfg.pass_ratio.ln());
            log_e_less(&grid, &ll, pi, cfg.mixture_scale, sum.dispersion)
                >= (1.0 / alpha_pass_m).ln()
        };
        // never decided yet: say what a pass still needs, or that none can come
        let open = judged.0 == JudgeVerdict::Undecided && decided.is_none();
        let needs = open
            .then(|| self.needs_requests(s, &sum, (alpha_pass_m, &ratio_at), policy))
            .flatten();
        let cannot_pass = open && needs.is_none();
        if open {
            judged.1 = match needs {
                Some(0.0) => judged.1,
                Some(n) => format!(
                    "{}; needs about {} more canary requests to pass at the rates seen so far",
                    judged.1,
                    format_count(n)
                ),
                None => format!(
                    "{}; cannot pass at the rates seen so far, however long it runs",
                    judged.1
                ),
            };
        }
        let margin = abs.margin;
        ladder::record(decided, judged.0);
        let samples = Samples {
            windows: s.windows,
            canary_requests: s.canary_requests,
            baseline_requests: s.baseline_requests,
            canary_events: Some(s.canary_events),
            baseline_events: Some(s.baseline_events),
        };
        MetricJudgement {
            difference_upper: margin.and_then(|m| opt_finite(m.upper)),
            pass_margin: self.pass_margin,
            rate_upper: abs.slo.and_then(|r| opt_finite(r.upper)),
            pass_rate: self.pass_rate,
            rate_lower: abs.guard.and_then(|g| opt_finite(g.lower)),
            max_rate: self.max_rate,
            max_rate_exceeded: judged.0 == JudgeVerdict::Fail
                && abs.guard.is_some_and(|g| g.fails)
                && !judged.1.starts_with("failed earlier"),
            needs_requests: needs,
            cannot_pass,
            dispersion: Some(sum.dispersion),
            ..MetricJudgement::with_figures(
                self.metric.clone(),
                judged,
                self.critical,
                self.test.into(),
                &figures,
                samples,
            )
        }
    }

    /// The metric's verdict and reason at this look. `main_fails`: the main test's `figures`
    /// fail with enough events behind them (the caller reports the figures by it too).
    fn decide(
        &self,
        policy: &JudgePolicy,
        st: &RatioTestState,
        sum: &RatioSummary,
        (figures, main_fails): (&TestFigures, bool),
        (decided, fresh): (Option<JudgeVerdict>, Result<(), String>),
        (abs, fail_now, watch): (AbsoluteRules, Option<String>, Option<&WatchLook>),
    ) -> (JudgeVerdict, String) {
        let margin = abs.margin;
        let mut evidence = self.evidence(st, sum, figures);
        if let Some(w) = watch {
            evidence = format!("{evidence}; {}", w.evidence);
        }
        if let Some(m) = margin {
            evidence = format!(
                "{evidence}; rate difference at most {} per request (pass below {})",
                fmt_num(m.upper),
                fmt_num(m.margin)
            );
        }
        if let Some(r) = abs.slo {
            evidence = format!(
                "{evidence}; canary's rate at most {} per request (pass below {})",
                fmt_num(r.upper),
                fmt_num(r.rate)
            );
        }
        if let Some(g) = abs.guard {
            evidence = format!(
                "{evidence}; canary's rate at least {} per request (fail above maxRate {})",
                fmt_num(g.lower),
                fmt_num(g.max_rate)
            );
        }
        let ratio_pass = figures.pass();
        let margin_pass = margin.is_some_and(|m| m.upper < m.margin);
        let slo_pass = abs.slo.is_some_and(|r| r.upper < r.rate);
        // a canary whose rate is estimated above its maxRate does not pass, whatever the
        // comparison shows: the guard is gathering evidence against it (a pass would end the
        // analysis first, e.g. a canary as bad as its baseline passes the ratio quickly)
        let guard_holds = abs.guard.is_some() && self.above_max_rate(st);
        let disp = &policy.dispersion;
        // a few windows cannot tell a burst in one arm from a regression: wait while the
        // residuals themselves show overdispersion
        let hold = (disp.enabled
            && sum.data_dispersion > disp.overdispersed_above
            && st.windows < disp.overdispersed_min_windows)
            .then(|| {
                format!(
                    "overdispersed counts (factor {} from the data): {} of {} windows needed",
                    fmt_num(sum.data_dispersion),
                    st.windows,
                    disp.overdispersed_min_windows
                )
            });
        let watch_fails = watch.is_some_and(|w| w.fails);
        let guard = abs.guard.filter(|g| g.fails);
        let rungs = Rungs {
            fresh,
            sound: sound_counts(sum),
            decided,
            fail_now,
            windows: st.windows,
            hold,
            fail: main_fails || watch_fails || guard.is_some(),
            pass: (ratio_pass || margin_pass || slo_pass) && !guard_holds,
            canary_requests: st.canary_requests,
        };
        let words = Wording {
            kept_fail: "failed earlier and kept",
            kept_pass: "passed earlier; the fail test still runs at every look until promotion",
            fail: match (guard, watch) {
                (Some(g), _) => format!(
                    "canary's own rate shown above maxRate {} per request (lower bound {}), \
                     whatever the baseline's{}",
                    fmt_num(g.max_rate),
                    fmt_num(g.lower),
                    if main_fails {
                        format!(
                            "; and canary worse than {} x baseline with e-value {} >= {}",
                            fmt_num(self.tolerance),
                            fmt_num(sum.e_value_fail),
                            fmt_num(1.0 / figures.alpha_m)
                        )
                    } else {
                        String::new()
                    }
                ),
                (_, Some(w)) if w.fails && !main_fails => format!(
                    "canary worse than {} x baseline above the watch bound {}s with e-value {} \
                     >= {}",
                    fmt_num(self.tolerance),
                    fmt_num(self.watch.as_ref().map_or(f64::NAN, |w| w.bound)),
                    fmt_num(w.figures.e_value_fail),
                    fmt_num(1.0 / w.figures.alpha_m)
                ),
                _ => format!(
                    "canary worse than {} x baseline with e-value {} >= {}",
                    fmt_num(self.tolerance),
                    fmt_num(sum.e_value_fail),
                    fmt_num(1.0 / figures.alpha_m)
                ),
            },
            pass: match (margin, abs.slo) {
                (_, Some(r)) if !ratio_pass && !margin_pass => format!(
                    "canary's rate shown below the objective of {} per request (upper bound {})",
                    fmt_num(r.rate),
                    fmt_num(r.upper)
                ),
                (Some(m), _) if !ratio_pass => format!(
                    "canary's rate shown at most {} per request above the baseline's \
                     (upper bound on the difference {})",
                    fmt_num(m.margin),
                    fmt_num(m.upper)
                ),
                _ => format!(
                    "canary shown below {} x baseline with e-value {} >= {}",
                    fmt_num(self.pass_tolerance),
                    fmt_num(sum.e_value_pass),
                    fmt_num(1.0 / figures.alpha_pass_m)
                ),
            },
        };
        ladder::climb(policy, rungs, &words, &evidence)
    }

    /// The watch test at this look: its figures at its half of the rollback alpha, whether it
    /// fails (with the policy's minimum events, as the metric's own test), and its evidence.
    fn watch_look(
        &self,
        policy: &JudgePolicy,
        (cfg, grid): (&RatioTestConfig, &Grid),
        w: &Watch<'_>,
        (alpha, alpha_pass_m): (f64, f64),
    ) -> WatchLook {
        let t = w.test;
        let sum = t.summary(cfg, grid, alpha, alpha_pass_m);
        let figures = TestFigures {
            estimate: sum.estimate,
            lower: sum.lower,
            upper: sum.upper,
            e_value_fail: sum.e_value_fail,
            e_value_pass: sum.e_value_pass,
            alpha_m: alpha,
            alpha_pass_m,
        };
        let fails = figures.fail()
            && t.canary_events + t.baseline_events >= policy.min_events
            && sound_counts(&sum).is_ok();
        let evidence = format!(
            "above the watch bound {}s: canary {}/{} vs baseline {}/{}, rate ratio {} (lower \
             bound {}), e-value {} (reject at {})",
            fmt_num(w.bound),
            format_count(t.canary_events),
            format_count(t.canary_requests),
            format_count(t.baseline_events),
            format_count(t.baseline_requests),
            sum.estimate.map_or("n/a".into(), fmt_num),
            fmt_num(sum.lower),
            fmt_num(sum.e_value_fail),
            fmt_num(1.0 / alpha),
        );
        WatchLook {
            figures,
            fails,
            evidence,
        }
    }

    /// The non-inferiority rule's bound: the anytime-valid upper bound on canary minus
    /// baseline rate per request of the joint test of
    /// [`crate::analysis::stats::difference`], at the rule's share of the promotion alpha,
    /// tempered by the arms' own dispersion (which a shared shock does raise).
    fn margin(&self, st: &RatioTestState, sum: &RatioSummary, alpha_rule: f64) -> Option<Margin> {
        let margin = self.pass_margin?;
        let counts = ArmCounts {
            canary_events: st.canary_events,
            canary_requests: st.canary_requests,
            baseline_events: st.baseline_events,
            baseline_requests: st.baseline_requests,
            history: (st.history_requests > 0.0)
                .then_some((st.history_events, st.history_requests)),
        };
        let upper = difference_upper(&counts, sum.rate_dispersion, alpha_rule)?;
        Some(Margin { upper, margin })
    }

    /// The absolute guard at this look: the canary rate's lower bound at the guard's alpha,
    /// from a Gamma(1, 1/maxRate) mixture (prior mean at `maxRate`, where the rule decides),
    /// tempered by the arm's dispersion; it fails above `maxRate` once the canary has the
    /// events the policy asks before any count metric fails.
    fn guard(
        &self,
        st: &RatioTestState,
        sum: &RatioSummary,
        alpha: f64,
        policy: &JudgePolicy,
    ) -> Option<Guard> {
        let max_rate = self.max_rate?;
        let (lower, _) = guard_bounds(
            st.canary_events,
            st.canary_requests,
            sum.rate_dispersion,
            alpha,
            max_rate,
        )?;
        Some(Guard {
            lower,
            max_rate,
            fails: lower > max_rate && st.canary_events >= policy.min_events,
        })
    }

    /// Whether the canary's estimated rate is above the metric's `maxRate` (then it may not
    /// pass, see [`Self::decide`]).
    fn above_max_rate(&self, st: &RatioTestState) -> bool {
        self.max_rate
            .is_some_and(|m| st.canary_requests > 0.0 && st.canary_events / st.canary_requests > m)
    }

    /// The service-level rule's bound: the canary rate's upper bound at the rule's alpha.
    fn slo(&self, st: &RatioTestState, sum: &RatioSummary, alpha_rule: f64) -> Option<Slo> {
        let rate = self.pass_rate?;
        let (_, cu) = rate_bounds(
            st.canary_events,
            st.canary_requests,
            sum.rate_dispersion,
            alpha_rule,
        )?;
        Some(Slo { upper: cu, rate })
    }

    /// About how many more canary requests a pass rule needs if the rates seen so far
    /// continue (each arm's events and requests, and the ratio test's log-likelihood, scaled
    /// alike; the dispersion unchanged); 0 when one already holds (the metric waits for
    /// something else); `None` when no pass rule can pass at those rates within a million
    /// times the data so far. Found by doubling, then bisection on the scale factor.
    fn needs_requests(
        &self,
        st: &RatioTestState,
        sum: &RatioSummary,
        (alpha_rule, ratio_at): (f64, &dyn Fn(f64) -> bool),
        policy: &JudgePolicy,
    ) -> Option<f64> {
        // scaling keeps the canary's estimate: above maxRate it never passes
        if st.canary_requests <= 0.0 || st.baseline_requests <= 0.0 || self.above_max_rate(st) {
            return None;
        }
        let scaled = |k: f64| {
            let mut s = st.clone();
            s.canary_events *= k;
            s.canary_requests *= k;
            s.baseline_events *= k;
            s.baseline_requests *= k;
            s
        };
        let passes = |k: f64| {
            if ratio_at(k) {
                return true;
            }
            let s = scaled(k);
            self.margin(&s, sum, alpha_rule)
                .is_some_and(|m| m.upper < m.margin)
                || self
                    .slo(&s, sum, alpha_rule)
                    .is_some_and(|r| r.upper < r.rate)
        };
        if passes(1.0) {
            return Some(0.0);
        }
        let (mut lo, mut hi) = (1.0, 2.0);
        while !passes(hi) {
            lo = hi;
            hi *= 2.0;
            if hi > 1e6 {
                return None;
            }
        }
        // "about": a few percent is enough
        for _ in 0..8 {
            let mid = 0.5 * (lo + hi);
            if passes(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let total = (hi * st.canary_requests).max(policy.min_canary_requests);
        Some((total - st.canary_requests).max(1.0).ceil())
    }

    /// The counts and figures behind the verdict, in words.
    fn evidence(&self, st: &RatioTestState, sum: &RatioSummary, figures: &TestFigures) -> String {
        let ev = format!(
            "canary {c}/{rc} vs baseline {b}/{rb} {w}; {test}; dispersion {phi}",
            c = format_count(st.canary_events),
            rc = format_count(st.canary_requests),
            b = format_count(st.baseline_events),
            rb = format_count(st.baseline_requests),
            w = self.what,
            test = figures.words("rate ratio"),
            phi = fmt_num(sum.dispersion),
        );
        if st.history_windows > 0 {
            format!(
                "{ev} (estimated with {} windows of baseline history)",
                st.history_windows
            )
        } else {
            ev
        }
    }
}

/// The absolute guard's anytime-valid bounds on one arm's rate per request at level `alpha`:
/// [`rate_bounds_with`] with the prior's mean at `max_rate` (`b = 1/max_rate` requests of
/// pseudo-exposure), so the sequence is tightest where the guard decides. Public for the
/// reference check in `tests/stats/` and the benchmark.
pub fn guard_bounds(
    events: f64,
    requests: f64,
    phi: f64,
    alpha: f64,
    max_rate: f64,
) -> Option<(f64, f64)> {
    if !(max_rate > 0.0 && max_rate < 1.0) {
        return None;
    }
    rate_bounds_with(events, requests, phi, alpha, 1.0 / max_rate)
}

/// Whether a count test's figures can carry a verdict: e-values that are numbers, bounds in
/// order, a finite dispersion, and a point estimate that is finite and not far outside its
/// own bounds. Without that the arithmetic has broken down (or the data are absurd), and no
/// decision may rest on it. The factor 2 leaves room for the pooled estimate, which weights
/// windows by their requests, to differ from the conditional test's when the split changes.
fn sound_counts(sum: &RatioSummary) -> Result<(), String> {
    let e_ok = !sum.e_value_fail.is_nan() && !sum.e_value_pass.is_nan();
    let bounds_ok = sum.lower <= sum.upper;
    let phi_ok = sum.dispersion.is_finite() && sum.dispersion >= 1.0;
    let est_ok = sum
        .estimate
        .is_none_or(|e| e.is_finite() && e >= sum.lower / 2.0 && e <= sum.upper * 2.0);
    if e_ok && bounds_ok && phi_ok && est_ok {
        Ok(())
    } else {
        Err(format!(
            "estimate {} outside its bounds {}..{}, or e-values or dispersion not numbers",
            sum.estimate.map_or("n/a".into(), fmt_num),
            fmt_num(sum.lower),
            fmt_num(sum.upper)
        ))
    }
}

/// The dispersion factor for bounds on an arm's own rate under the metric's policy.
fn sum_phi(s: &RatioTestState, policy: &JudgePolicy, m: &CountMetric) -> f64 {
    s.rate_phi(&policy.ratio_config(m.tolerance, m.pass_tolerance))
}

/// The error rate at or above which a canary counts as broken: a fifth of its requests fail.
pub const BROKEN_RATE: f64 = 0.2;

/// What the fail-fast rule showed: its reason, and the lower bound on the rate ratio it
/// implies (the canary's lower bound over the baseline's upper bound, above `tolerance`).
struct Broken {
    reason: String,
    ratio_lower: f64,
}

/// The fail-fast rule: the canary's error rate is shown above [`BROKEN_RATE`] and above
/// `tolerance` times the baseline's (the canary's lower bound above both the floor and
/// `tolerance` x the baseline's upper bound, each bound at half of `alpha`: a union bound, so a
/// canary no worse than tolerated is failed this way with probability at most `alpha`, at any
/// look). It needs neither the minimum windows nor the minimum events: a canary whose every
/// request fails is rolled back at the first look with enough requests to show it.
fn broken(s: &RatioTestState, tolerance: f64, phi: f64, alpha: f64) -> Option<Broken> {
    // a prior of one request's pseudo-exposure: tight at high rates, where this rule acts
    let (cl, _) = rate_bounds_with(s.canary_events, s.canary_requests, phi, alpha / 2.0, 1.0)?;
    let (_, bu) = rate_bounds_with(
        s.baseline_events,
        s.baseline_requests,
        phi,
        alpha / 2.0,
        1.0,
    )?;
    (cl > BROKEN_RATE && cl > tolerance * bu).then(|| Broken {
        reason: format!(
            "broken canary: its error rate is shown above {} (lower bound {}), and above {} x \
             the baseline's (upper bound {})",
            fmt_num(BROKEN_RATE),
            fmt_num(cl),
            fmt_num(tolerance),
            fmt_num(bu)
        ),
        ratio_lower: cl / bu,
    })
}
