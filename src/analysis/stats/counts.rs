//! Sequential comparison of two Poisson event streams (errors, or requests slower than a latency
//! boundary) by their rate ratio `theta = rate_canary / rate_baseline` (rates per request).
//!
//! Each window contributes the conditional-binomial log-likelihood of the canary's share of the
//! window's events (see [`conditional_poisson_loglik`]), which removes the unknown common rate,
//! so a shock that hits both arms alike carries no evidence. The traffic split enters through the
//! per-window request counts, so it may change between windows.

use serde::{Deserialize, Serialize};

use super::sequential::{
    conditional_poisson_loglik, dual_bounds, log_e_greater, log_e_less, Dispersion, Grid, LogLik,
};

/// Settings of one rate-ratio test.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioTestConfig {
    /// Fail when the evidence says `theta > fail_ratio` (the null is `theta <= fail_ratio`).
    pub fail_ratio: f64,
    /// Pass when the evidence says `theta < pass_ratio` (the null is `theta >= pass_ratio`).
    pub pass_ratio: f64,
    /// Scale of the half-normal mixing distribution on `log theta` (default 1.0).
    pub mixture_scale: f64,
    /// Pseudo-terms, prior burst variance `kappa0` (squared coefficient of variation of a
    /// per-window rate multiplier) and upper-bound z of the dispersion estimate (see
    /// [`Dispersion`]); `None` turns tempering off.
    pub dispersion: Option<(f64, f64, f64)>,
    /// Share of the dispersion estimate's sums kept from one window to the next (see
    /// [`Dispersion::forget`]); 1 never forgets.
    pub keep: f64,
}

impl RatioTestConfig {
    /// The log-ratio grid: [-3, 3] in steps of 0.05 plus the two decision points.
    pub fn grid(&self) -> Grid {
        Grid::new(
            -3.0,
            3.0,
            0.05,
            &[self.fail_ratio.ln(), self.pass_ratio.ln()],
        )
    }
}

/// Running state of a rate-ratio test: small and serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RatioTestState {
    /// Log-likelihood of `log theta` on the grid (max-normalised).
    pub loglik: LogLik,
    /// Dispersion of the canary's share of each window's events (conditional terms, plus the
    /// baseline's history as a cautious prior): tempers the rate-ratio test.
    pub dispersion: Dispersion,
    /// Dispersion of each arm's own counts (marginal terms: shared and arm-specific variation
    /// alike): widens the bounds on each arm's own rate (the non-inferiority and fail-fast
    /// rules), which a shock shared by both arms does move.
    #[serde(default)]
    pub marginal: Dispersion,
    pub canary_events: f64,
    pub baseline_events: f64,
    pub canary_requests: f64,
    pub baseline_requests: f64,
    /// Windows with valid data.
    pub windows: u32,
    /// Decision points the grid was built with; a different policy resets the state.
    pub fail_ratio: f64,
    pub pass_ratio: f64,
    /// Baseline windows from before the analysis whose counts went into the dispersion
    /// estimate (see [`RatioTestState::add_history`]); 0 without history.
    #[serde(default)]
    pub history_windows: u32,
    /// Events and requests of the usable history windows (the non-inferiority rule's prior,
    /// see [`crate::analysis::stats::difference`]); 0 without history.
    #[serde(default)]
    pub history_events: f64,
    #[serde(default)]
    pub history_requests: f64,
}

/// What a rate-ratio test says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RatioSummary {
    /// Pooled rate ratio `(C/Rc)/(B/Rb)`; `None` without baseline events.
    pub estimate: Option<f64>,
    /// Bounds on the rate ratio dual to the two tests (see [`dual_bounds`]): the lower one at
    /// the fail test's alpha, the upper one at the pass test's.
    pub lower: f64,
    pub upper: f64,
    /// E-value against `theta <= fail_ratio` and against `theta >= pass_ratio`.
    pub e_value_fail: f64,
    pub e_value_pass: f64,
    /// Dispersion (tempering) factor used.
    pub dispersion: f64,
    /// The factor the residuals alone imply (the same estimate with a Poisson prior,
    /// `kappa0 = 0`): evidence of overdispersion in the data, as opposed to the prior's caution.
    pub data_dispersion: f64,
    /// Tempering factor for bounds on each arm's own rate: the larger of `dispersion` and the
    /// marginal terms' factor.
    pub rate_dispersion: f64,
}

impl RatioTestState {
    pub fn new(cfg: &RatioTestConfig) -> RatioTestState {
        RatioTestState {
            loglik: LogLik::new(cfg.grid().len()),
            fail_ratio: cfg.fail_ratio,
            pass_ratio: cfg.pass_ratio,
            ..Default::default()
        }
    }

    /// True when this state was built for `cfg` (same decision points and grid size).
    pub fn matches(&self, cfg: &RatioTestConfig) -> bool {
        self.fail_ratio == cfg.fail_ratio
            && self.pass_ratio == cfg.pass_ratio
            && self.loglik.values.len() == cfg.grid().len()
    }

    /// Add one window: `c`, `b` events out of `rc`, `rb` requests. Windows with non-finite or
    /// negative numbers, or without requests in an arm, are ignored and `false` is returned.
    ///
    /// `keep` is the share of the dispersion estimates' sums kept from the windows before (see
    /// [`RatioTestConfig::keep`]).
    pub fn add_window(&mut self, grid: &Grid, keep: f64, c: f64, b: f64, rc: f64, rb: f64) -> bool {
        let ok = [c, b, rc, rb].iter().all(|v| v.is_finite() && *v >= 0.0)
            && rc > 0.0
            && rb > 0.0
            && c <= rc
            && b <= rb;
        if !ok {
            return false;
        }
        let n = c + b;
        self.dispersion.forget(keep);
        self.marginal.forget(keep);
        if n > 0.0 && self.windows > 0 {
            // Prequential prediction from the earlier windows' rates alone (smoothed so it
            // exists with no events yet). Dividing the earlier events by earlier plus this
            // window's requests would bias both rates toward zero by different amounts when
            // windows differ in length or split (a long window after an outage of the
            // reconciler), and the residual would read as a burst.
            let theta_prev = ((self.canary_events + 0.5) / self.canary_requests)
                / ((self.baseline_events + 0.5) / self.baseline_requests);
            let p = rc * theta_prev / (rc * theta_prev + rb);
            let n_prev = self.canary_events + self.baseline_events + 1.0;
            let before = self.dispersion.windows;
            self.dispersion.add(c, n, p, n_prev);
            if self.dispersion.windows > before {
                self.dispersion.dof += 1.0;
            }
        }
        // marginal terms, each arm against its own earlier rate: for the arms' own rates only
        for (x, events, requests, r) in [
            (c, self.canary_events, self.canary_requests, rc),
            (b, self.baseline_events, self.baseline_requests, rb),
        ] {
            if events > 0.0 && requests > 0.0 {
                let before = self.marginal.windows;
                self.marginal
                    .add_marginal(x, r * events / requests, r / requests);
                if self.marginal.windows > before {
                    self.marginal.dof += 1.0;
                }
            }
        }
        if n > 0.0 {
            let pts = &grid.points;
            self.loglik
                .add(|k| conditional_poisson_loglik(pts[k], c, b, rc, rb));
        }
        self.canary_events += c;
        self.baseline_events += b;
        self.canary_requests += rc;
        self.baseline_requests += rb;
        self.windows += 1;
        true
    }

    /// Feed the baseline's counts from before the analysis (`(events, requests)` per window, in
    /// time order, gaps left out) into the dispersion estimate only. Each window's count is
    /// compared with its expectation from the history's earlier rate (a marginal Pearson term,
    /// one degree of freedom), exactly as the baseline's windows are during the analysis; the
    /// rate-ratio evidence, the event totals and the window count are not touched, so history
    /// can only make the test more cautious about dispersion, never more confident about the
    /// ratio. Only a state that has seen no analysis window takes history (a second call, or a
    /// call after the first window, is a no-op), so replaying the first look after a restart
    /// cannot count it twice. Returns the windows that contributed a term.
    ///
    /// Why: at a few errors per window the analysis's own windows cannot tell a bursty error
    /// rate from a steady one before a regression must be caught (see [`Dispersion`]); the
    /// baseline's history (an hour is 120 windows of 30 s) can. Its windows usually carry all
    /// the traffic, so under the burst model their counts show more dispersion than the split
    /// arms will: the estimate errs on the cautious side, and on steady (Poisson) data it
    /// stays near 1 at any count.
    pub fn add_history(&mut self, history: &[(f64, f64)]) -> u32 {
        if self.windows > 0 || self.history_windows > 0 {
            return 0;
        }
        let (mut events, mut requests) = (0.0, 0.0);
        let mut added = 0;
        for &(x, r) in history {
            if !(x.is_finite() && r.is_finite() && x >= 0.0 && r > 0.0 && x <= r) {
                continue;
            }
            if events > 0.0 {
                let before = self.dispersion.windows;
                for d in [&mut self.dispersion, &mut self.marginal] {
                    d.add_marginal(x, r * events / requests, r / requests);
                }
                if self.dispersion.windows > before {
                    self.dispersion.dof += 1.0;
                    self.marginal.dof += 1.0;
                    added += 1;
                }
            }
            events += x;
            requests += r;
        }
        self.history_windows = added;
        self.history_events = events;
        self.history_requests = requests;
        added
    }

    /// Current tempering factor.
    pub fn phi(&self, cfg: &RatioTestConfig) -> f64 {
        match cfg.dispersion {
            Some((k, kappa, z)) => self.dispersion.phi(k, kappa, z),
            None => 1.0,
        }
    }

    /// Tempering factor for bounds on an arm's own rate: the larger of [`Self::phi`] and the
    /// marginal terms' factor (same prior and inflation).
    pub fn rate_phi(&self, cfg: &RatioTestConfig) -> f64 {
        match cfg.dispersion {
            Some((k, kappa, z)) => self.phi(cfg).max(self.marginal.phi(k, kappa, z)),
            None => 1.0,
        }
    }

    /// The tempering factor the data alone imply (prior burst variance 0).
    pub fn data_phi(&self, cfg: &RatioTestConfig) -> f64 {
        match cfg.dispersion {
            Some((k, _, z)) => self.dispersion.phi(k, 0.0, z),
            None => 1.0,
        }
    }

    /// E-values, estimate, and bounds dual to the tests at `alpha_fail` (lower) and
    /// `alpha_pass` (upper).
    pub fn summary(
        &self,
        cfg: &RatioTestConfig,
        grid: &Grid,
        alpha_fail: f64,
        alpha_pass: f64,
    ) -> RatioSummary {
        let phi = self.phi(cfg);
        let fi = grid.index_at_or_above(cfg.fail_ratio.ln());
        let pi = grid.index_at_or_below(cfg.pass_ratio.ln());
        let e_fail = log_e_greater(grid, &self.loglik, fi, cfg.mixture_scale, phi).exp();
        let e_pass = log_e_less(grid, &self.loglik, pi, cfg.mixture_scale, phi).exp();
        let (lo, hi) = dual_bounds(
            grid,
            &self.loglik,
            cfg.mixture_scale,
            phi,
            (fi, alpha_fail),
            (pi, alpha_pass),
        );
        let estimate = if self.baseline_events > 0.0 && self.canary_requests > 0.0 {
            Some(
                (self.canary_events / self.canary_requests)
                    / (self.baseline_events / self.baseline_requests),
            )
        } else {
            None
        };
        RatioSummary {
            estimate,
            lower: lo.exp(),
            upper: hi.exp(),
            e_value_fail: e_fail,
            e_value_pass: e_pass,
            dispersion: phi,
            data_dispersion: self.data_phi(cfg),
            rate_dispersion: self.rate_phi(cfg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RatioTestConfig {
        RatioTestConfig {
            fail_ratio: 1.0,
            pass_ratio: 1.5,
            mixture_scale: 1.0,
            dispersion: None,
            keep: 1.0,
        }
    }

    /// A CI run's shape: the first window caught the canary pods starting (540 canary vs 2,312
    /// baseline requests), the second was 14 times longer with an even split (no reconcile ran
    /// while the API server was down). The rates are the same in both arms and both windows;
    /// the data must not read as a burst.
    #[test]
    fn windows_of_unequal_length_and_split_are_not_a_burst() {
        let c = RatioTestConfig {
            dispersion: Some((2.0, 0.0, 7.0)),
            ..cfg()
        };
        let g = c.grid();
        let mut s = RatioTestState::new(&c);
        assert!(s.add_window(&g, 1.0, 27.0, 116.0, 540.0, 2312.0));
        assert!(s.add_window(&g, 1.0, 998.0, 1002.0, 20_000.0, 20_000.0));
        assert!(s.add_window(&g, 1.0, 50.0, 49.0, 1000.0, 1000.0));
        let phi = s.data_phi(&c);
        assert!(phi < 2.0, "phi {phi}");
    }

    #[test]
    fn no_data_no_evidence() {
        let c = cfg();
        let g = c.grid();
        let s = RatioTestState::new(&c);
        let sum = s.summary(&c, &g, 0.05, 0.05);
        assert!((sum.e_value_fail - 1.0).abs() < 1e-12);
        assert!((sum.e_value_pass - 1.0).abs() < 1e-12);
        assert_eq!(sum.estimate, None);
    }

    #[test]
    fn bad_windows_are_ignored() {
        let c = cfg();
        let g = c.grid();
        let mut s = RatioTestState::new(&c);
        assert!(!s.add_window(&g, 1.0, f64::NAN, 1.0, 10.0, 10.0));
        assert!(!s.add_window(&g, 1.0, 1.0, 1.0, 0.0, 10.0));
        assert!(!s.add_window(&g, 1.0, 11.0, 1.0, 10.0, 10.0));
        assert!(!s.add_window(&g, 1.0, -1.0, 1.0, 10.0, 10.0));
        assert_eq!(s.windows, 0);
        assert!(s.add_window(&g, 1.0, 1.0, 1.0, 10.0, 10.0));
        assert_eq!(s.windows, 1);
    }

    #[test]
    fn the_share_tempers_the_ratio_and_each_arm_its_own_rate() {
        let c = RatioTestConfig {
            dispersion: Some((0.0, 0.0, 1.0)),
            ..cfg()
        };
        let g = c.grid();
        let mut s = RatioTestState::new(&c);
        for _ in 0..5 {
            assert!(s.add_window(&g, 1.0, 4.0, 6.0, 300.0, 300.0));
        }
        // window 1 has no history; windows 2-5 give one conditional term each (one degree of
        // freedom) and two marginal terms each, kept apart
        assert_eq!(s.dispersion.windows, 4);
        assert_eq!(s.dispersion.dof, 4.0);
        assert_eq!(s.marginal.windows, 8);
        assert_eq!(s.marginal.dof, 8.0);
    }

    #[test]
    fn a_shock_shared_by_both_arms_leaves_the_ratio_untempered() {
        // five steady windows, then three at five times the errors in both arms, then steady
        // again: the canary's share never moves, so the ratio test is not tempered; each
        // arm's own rate jumped, so the bounds on it are
        let c = RatioTestConfig {
            dispersion: Some((2.0, 0.0, 7.0)),
            keep: 1.0 - 1.0 / 60.0,
            ..cfg()
        };
        let g = c.grid();
        let mut s = RatioTestState::new(&c);
        let mut peak = 1.0_f64;
        for t in 0..20 {
            let m = if (5..8).contains(&t) { 5.0 } else { 1.0 };
            // the same share every window, at the counts' expectation
            assert!(s.add_window(&g, c.keep, 10.0 * m, 10.0 * m, 1000.0, 1000.0));
            let sum = s.summary(&c, &g, 0.01, 0.01);
            assert!(sum.dispersion < 1.05, "window {t}: {sum:?}");
            peak = peak.max(sum.rate_dispersion);
        }
        assert!(peak > 3.0, "the arms' own counts jumped: {peak}");
        // a burst in one arm moves the share and tempers the ratio
        let mut b = RatioTestState::new(&c);
        for t in 0..12 {
            let m = if (5..8).contains(&t) { 5.0 } else { 1.0 };
            assert!(b.add_window(&g, c.keep, 10.0 * m, 10.0, 1000.0, 1000.0));
        }
        assert!(b.phi(&c) > 3.0, "{}", b.phi(&c));
    }

    #[test]
    fn forgetting_lets_a_burst_stop_taxing_the_test() {
        let run = |keep: f64| {
            let c = RatioTestConfig {
                dispersion: Some((2.0, 0.0, 7.0)),
                keep,
                ..cfg()
            };
            let g = c.grid();
            let mut s = RatioTestState::new(&c);
            for t in 0..80 {
                let canary = if (2..5).contains(&t) { 50.0 } else { 10.0 };
                assert!(s.add_window(&g, c.keep, canary, 10.0, 1000.0, 1000.0));
            }
            s.phi(&c)
        };
        let (kept, forgot) = (run(1.0), run(1.0 - 1.0 / 20.0));
        assert!(kept > 2.0, "{kept}");
        assert!(forgot < 1.5, "{forgot}");
    }

    #[test]
    fn clear_regression_gives_large_e_value_and_bounds_above_one() {
        let c = cfg();
        let g = c.grid();
        let mut s = RatioTestState::new(&c);
        for _ in 0..10 {
            s.add_window(&g, 1.0, 12.0, 3.0, 300.0, 300.0);
        }
        let sum = s.summary(&c, &g, 0.05, 0.05);
        assert!(sum.e_value_fail > 1e6, "{sum:?}");
        assert!(sum.e_value_pass < 1.0);
        assert!(sum.lower > 2.0 && sum.upper < 10.0, "{sum:?}");
        assert!((sum.estimate.unwrap_or(0.0) - 4.0).abs() < 1e-12);
    }
}
