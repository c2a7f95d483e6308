//! Anytime-valid sequential tests on a one-dimensional parameter grid.
//!
//! Every sequential test in tollgate has the same shape: a parameter `x` (the log rate ratio
//! canary/baseline for counts, or a shift `beta` for a whole distribution), a fixed grid of
//! values of `x`, and the running log-likelihood `l(x_k)` of the data seen so far at each grid
//! point. Windows add their log-likelihood contribution; nothing else is stored.
//!
//! From that vector we get, in O(grid) time:
//!
//! * a **one-sided mixture SPRT e-value** against `H0: x <= x0` (the mixing distribution is a
//!   half-normal over the grid points above `x0`, scale `tau`):
//!   `E = sum_k w_k exp((l(x_k) - l(x0)) / phi)`. For a monotone-likelihood-ratio family every
//!   term `L(x_k)/L(x0)` with `x_k > x0` is a non-negative supermartingale under any `x <= x0`, so
//!   the mixture is one too and Ville's inequality gives `P(sup_t E_t >= 1/alpha) <= alpha`,
//!   whenever and however often one looks;
//! * the mirror e-value against `H0: x >= x1` (alternatives below `x1`), used to *pass*;
//! * **bounds dual to the two tests** ([`dual_bounds`]): the parameter values neither family
//!   of one-sided tests (one null per grid point) rejects, so the reported bounds always agree
//!   with the decision.
//!
//! `phi >= 1` is the dispersion (tempering) factor: dividing the log-likelihood by `phi` is the
//! quasi-likelihood correction for overdispersed counts (see [`Dispersion`]). For a fixed
//! `phi >= 1` the tempered mixture stays a supermartingale under the Poisson model (Jensen:
//! `E[L^(1/phi)] <= E[L]^(1/phi)`). The judge re-estimates `phi` at every look and applies it to
//! the whole history, so the e-value it reports is not itself a supermartingale; but every term
//! obeys `L^(1/phi) <= max(L, 1)`, so the tempered e-value never exceeds the untempered one plus
//! 1, and under Poisson counts it reaches `1/alpha` with probability at most
//! `alpha / (1 - alpha)`, whatever the estimates were. Under real overdispersion validity is
//! approximate: it holds to the extent that `phi` is not below the true dispersion (see the
//! limits in [`crate::analysis`]).

use serde::{Deserialize, Serialize};

/// Numerically stable `log(sum(exp(v)))` over an iterator; `-inf` for an empty one.
pub fn log_sum_exp<I: IntoIterator<Item = f64>>(values: I) -> f64 {
    let v: Vec<f64> = values.into_iter().collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// `log(exp(a) + exp(b))`.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// A sorted grid of parameter values, with the two decision points inserted exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Sorted, strictly increasing parameter values.
    pub points: Vec<f64>,
}

impl Grid {
    /// Uniform grid on `[lo, hi]` with spacing about `step`, plus the `extra` points inserted.
    pub fn new(lo: f64, hi: f64, step: f64, extra: &[f64]) -> Grid {
        let n = (((hi - lo) / step).round() as usize).max(1);
        let mut points: Vec<f64> = (0..=n)
            .map(|i| lo + (hi - lo) * i as f64 / n as f64)
            .collect();
        for &e in extra {
            if e.is_finite() {
                points.push(e);
            }
        }
        points.sort_by(f64::total_cmp);
        points.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        Grid { points }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Index of the grid point equal to `x` (within 1e-9), if any.
    pub fn index_of(&self, x: f64) -> Option<usize> {
        self.points.iter().position(|p| (p - x).abs() < 1e-9)
    }

    /// Index of the smallest grid point `>= x` (the last point if none).
    pub fn index_at_or_above(&self, x: f64) -> usize {
        self.points
            .iter()
            .position(|p| *p >= x - 1e-12)
            .unwrap_or(self.points.len().saturating_sub(1))
    }

    /// Index of the largest grid point `<= x` (the first point if none).
    pub fn index_at_or_below(&self, x: f64) -> usize {
        self.points
            .iter()
            .rposition(|p| *p <= x + 1e-12)
            .unwrap_or(0)
    }
}

/// Running log-likelihood over a [`Grid`]. Stored shifted so that its maximum is 0 (only
/// differences matter), which keeps the numbers small in the serialized state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LogLik {
    pub values: Vec<f64>,
}

impl LogLik {
    pub fn new(len: usize) -> LogLik {
        LogLik {
            values: vec![0.0; len],
        }
    }

    /// Add a per-grid-point contribution and renormalise.
    pub fn add(&mut self, contrib: impl Fn(usize) -> f64) {
        for (k, v) in self.values.iter_mut().enumerate() {
            *v += contrib(k);
        }
        let m = self
            .values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if m.is_finite() {
            for v in &mut self.values {
                *v -= m;
            }
        }
    }

    /// Index of the maximum-likelihood grid point.
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (k, v) in self.values.iter().enumerate() {
            if *v > self.values[best] {
                best = k;
            }
        }
        best
    }
}

/// Log-weights of a half-normal mixing distribution over grid points strictly on one side of
/// `center_idx`, normalised to sum to one. `upper = true` takes the points above.
fn half_normal_log_weights(
    grid: &Grid,
    center_idx: usize,
    tau: f64,
    upper: bool,
) -> Vec<(usize, f64)> {
    let c = grid.points[center_idx];
    let idx: Vec<usize> = if upper {
        (center_idx + 1..grid.len()).collect()
    } else {
        (0..center_idx).collect()
    };
    let raw: Vec<(usize, f64)> = idx
        .into_iter()
        .map(|k| {
            let d = (grid.points[k] - c) / tau;
            (k, -0.5 * d * d)
        })
        .collect();
    let norm = log_sum_exp(raw.iter().map(|(_, w)| *w));
    raw.into_iter().map(|(k, w)| (k, w - norm)).collect()
}

/// Log e-value of the one-sided mixture SPRT of `H0: x <= grid[null_idx]` against the
/// half-normal mixture of grid points above it, tempered by `phi >= 1`.
pub fn log_e_greater(grid: &Grid, ll: &LogLik, null_idx: usize, tau: f64, phi: f64) -> f64 {
    let w = half_normal_log_weights(grid, null_idx, tau, true);
    if w.is_empty() || ll.values.len() != grid.len() {
        return 0.0;
    }
    let l0 = ll.values[null_idx];
    log_sum_exp(w.iter().map(|(k, lw)| lw + (ll.values[*k] - l0) / phi))
}

/// Log e-value of `H0: x >= grid[null_idx]` against the half-normal mixture below it.
pub fn log_e_less(grid: &Grid, ll: &LogLik, null_idx: usize, tau: f64, phi: f64) -> f64 {
    let w = half_normal_log_weights(grid, null_idx, tau, false);
    if w.is_empty() || ll.values.len() != grid.len() {
        return 0.0;
    }
    let l0 = ll.values[null_idx];
    log_sum_exp(w.iter().map(|(k, lw)| lw + (ll.values[*k] - l0) / phi))
}

/// Bounds dual to the two one-sided tests: the parameter values that the fail test's family
/// ("`H0: x <= x_j`", one mixture SPRT per grid point, at `alpha_fail`) and the pass test's
/// family ("`H0: x >= x_j`", at `alpha_pass`) have not rejected, as `(lower, upper)`.
///
/// Why these and not a separate confidence sequence: the reported bounds must tell the same
/// story as the decision. The lower bound is the largest grid point the fail family rejects, so
/// a Fail (the fail test rejects at the tolerance) always reports a lower bound at or above the
/// tolerance, and an undecided test (not rejected at the tolerance) one at or below it; the
/// upper bound mirrors that with the pass family at the pass tolerance. By Ville's inequality
/// each family's bound is anytime-valid at its own alpha, so the interval holds with
/// probability at least `1 - alpha_fail - alpha_pass` at every look.
///
/// The rejection region is searched by bisection from the decision point (`fail_idx`,
/// `pass_idx`), which costs O(grid log grid) and makes the agreement with the decision hold by
/// construction, whatever the shape of the likelihood. A bound the grid cannot reach is
/// infinite (`-inf`: nothing rejected below; `+inf`: nothing rejected above).
pub fn dual_bounds(
    grid: &Grid,
    ll: &LogLik,
    tau: f64,
    phi: f64,
    (fail_idx, alpha_fail): (usize, f64),
    (pass_idx, alpha_pass): (usize, f64),
) -> (f64, f64) {
    let n = grid.len();
    if n == 0 || ll.values.len() != n || fail_idx >= n || pass_idx >= n {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let fail_cut = (1.0 / alpha_fail).ln();
    let pass_cut = (1.0 / alpha_pass).ln();
    // rejected nulls lie below the lower bound (fail family) and above the upper (pass family)
    let fail_rejects = |j: usize| log_e_greater(grid, ll, j, tau, phi) >= fail_cut;
    let pass_rejects = |j: usize| log_e_less(grid, ll, j, tau, phi) >= pass_cut;
    let lower = match last_true(fail_idx, n, &fail_rejects) {
        Some(j) => grid.points[j],
        None => f64::NEG_INFINITY,
    };
    let upper = match first_true(pass_idx, n, &pass_rejects) {
        Some(j) => grid.points[j],
        None => f64::INFINITY,
    };
    (lower, upper)
}

/// The largest index whose predicate holds, for a predicate that holds on a prefix, searched
/// from `start`: if it holds there, the answer is at or above `start`; if not, below it.
fn last_true(start: usize, n: usize, holds: &dyn Fn(usize) -> bool) -> Option<usize> {
    // invariant: holds(lo), and hi is past the end or does not hold
    let (mut lo, mut hi) = if holds(start) {
        (start, n)
    } else if start > 0 && holds(0) {
        (0, start)
    } else {
        return None;
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The smallest index whose predicate holds, for a predicate that holds on a suffix, searched
/// from `start` (the mirror of [`last_true`]).
fn first_true(start: usize, n: usize, holds: &dyn Fn(usize) -> bool) -> Option<usize> {
    let mirrored = |j: usize| holds(n - 1 - j);
    last_true(n - 1 - start, n, &mirrored).map(|j| n - 1 - j)
}

/// Log-likelihood contribution at log rate ratio `x` of one window of a two-arm Poisson
/// comparison, conditioned on the window's total event count (Lindon & Malek 2022): given
/// `n = c + b` events, the canary's count is Binomial(n, p) with
/// `p = e_c e^x / (e_c e^x + e_b)`, where `e_c`, `e_b` are the arms' exposures (requests).
pub fn conditional_poisson_loglik(x: f64, c: f64, b: f64, e_c: f64, e_b: f64) -> f64 {
    let lc = x + e_c.ln();
    let lb = e_b.ln();
    let ld = log_add_exp(lc, lb);
    let mut out = 0.0;
    if c > 0.0 {
        out += c * (lc - ld);
    }
    if b > 0.0 {
        out += b * (lb - ld);
    }
    out
}

/// Between-window dispersion of a conditional Poisson comparison, estimated online from
/// prequential Pearson residuals. Before window t is added, the rate ratio is estimated from the
/// windows before it, `p_t` predicted, and `(c_t - n_t p_t)^2` compared with `n_t p_t (1-p_t)`
/// (the conditional term, one per window). Only the conditional terms temper the conditional
/// test: a shock shared by both arms (a dependency's hiccup, or Prometheus scraping the two arms
/// at slightly different moments so that their counts jitter together) multiplies both arms'
/// counts alike and leaves the canary's share binomial, so it carries no evidence and must not
/// cost any; a burst in one arm moves the share and is counted. Each arm's own count compared
/// with its expectation from that arm's earlier rate, `(x_t - e_t)^2` against `e_t` (a marginal
/// term), sees shared and arm-specific variation alike: such terms come from the baseline's
/// history before the analysis (which has no canary to condition on, and errs on the cautious
/// side), and, kept apart, bound each arm's own rate (see
/// [`super::counts::RatioTestState::marginal`]).
///
/// **Forgetting.** Before each window the sums are multiplied by `keep < 1` (see
/// [`Dispersion::forget`]): the estimate remembers about `1/(1-keep)` windows, so a burst that
/// has ended, or a history that no longer describes the service, stops taxing the rest of the
/// analysis. The effective number of terms and the degrees of freedom decay alike, so the
/// estimate's uncertainty (and the inflation below) reflect what it still remembers.
///
/// **The prior.** Bursts are modelled as a per-window, per-arm multiplier of the error rate with
/// mean 1 and variance `kappa` (squared coefficient of variation), independent between arms and
/// windows: an arm's count then has variance `mu (1 + kappa mu)` (negative binomial, type 2), and
/// the canary's share of a window's `n` events has variance `n p (1-p) (1 + kappa g)` with
/// `g = 2 p (1-p) (n-1)` (delta method on the share). So the dispersion a given `kappa` causes
/// grows with the count per window: a rate that wobbles by 20% between windows is invisible at 3
/// errors per window and dominates at 300. Each term records its `g` (`e` for a marginal term),
/// and `gbar`, the variance-weighted mean of `g`, turns a prior `kappa0` into a prior dispersion
/// `phi0 = 1 + kappa0 * gbar` for the counts actually seen.
/// `phi = (sum resid^2 + k * phi0 * vbar) / (sum var + k * vbar)` shrinks toward `phi0` with `k`
/// pseudo-terms. With few windows the residuals alone cannot tell a burst from Poisson noise
/// (at 100 errors per window and `kappa = 0.25`, one run in 40 shows a residual ratio at or below
/// 1 after three windows), and a high-count window carries a lot of evidence: that is where the
/// prior matters, and where a regression is detected within a few windows anyway.
///
/// An estimate that is too low by a fraction `f` raises the false-alarm probability from
/// `alpha` toward `alpha^(1-f)`, so the excess over 1 is inflated by its relative standard
/// error: the factor used is `1 + max(0, phi - 1) * (1 + z * sqrt(2 / df))` with `df` the
/// degrees of freedom of the residuals plus `k`. A window's three terms carry two degrees of
/// freedom, not three: with consistent predictions (`p = e_c / (e_c + e_b)`) the conditional
/// residual is exactly `(1-p) (c - e_c) - p (b - e_b)`, a combination of the two marginal ones,
/// so counting it again would understate the estimate's uncertainty by a factor `sqrt(3/2)`.
/// The inflation acts on the excess only, so data that look Poisson are not tempered (a
/// regression's evidence is not discounted for a dispersion nobody has seen); the price is
/// that a bursty stream whose residuals happen to look Poisson is judged as Poisson. The
/// baseline's history before the analysis (marginal terms added by
/// [`super::counts::RatioTestState::add_history`]) is what removes most of that price: with a
/// hundred more degrees of freedom the estimate is rarely far off (see the limits in
/// [`crate::analysis`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Dispersion {
    /// Sum of squared prequential residuals.
    pub resid2: f64,
    /// Sum of predicted (Poisson/binomial) variances.
    pub var: f64,
    /// Residual terms that contributed.
    pub windows: u32,
    /// Degrees of freedom of those terms (at most two per window, see above); states written
    /// before this field existed fall back to the number of terms.
    pub dof: f64,
    /// Sum of `var * g`: the variance-weighted burst sensitivity (see above).
    pub var_g: f64,
    /// Effective number of terms after forgetting (see [`Dispersion::forget`]); states written
    /// before this field existed (0 with terms present) fall back to `windows`.
    pub terms: f64,
}

impl Dispersion {
    /// Add a window with `n` events of which `c` in the canary, predicted canary share `p`
    /// estimated from `n_prev` earlier events. The predictive variance counts the estimation
    /// error of `p` too: `n p (1-p) (1 + n / n_prev)`, so `phi` is unbiased on Poisson data.
    pub fn add(&mut self, c: f64, n: f64, p: f64, n_prev: f64) {
        if n <= 0.0 || !(p > 0.0 && p < 1.0) || n_prev.is_nan() || n_prev <= 0.0 {
            return;
        }
        let r = c - n * p;
        let v = n * p * (1.0 - p) * (1.0 + n / n_prev);
        self.resid2 += r * r;
        self.var += v;
        self.terms = self.effective_terms() + 1.0;
        self.windows += 1;
        self.var_g += v * 2.0 * p * (1.0 - p) * (n - 1.0).max(0.0);
    }

    /// Effective number of terms (forgetting counted).
    pub fn effective_terms(&self) -> f64 {
        if self.terms > 0.0 {
            self.terms
        } else {
            f64::from(self.windows)
        }
    }

    /// Forget: multiply every sum, the effective term count and the degrees of freedom by
    /// `keep` (in (0, 1]; other values change nothing), so a term added `j` windows ago weighs
    /// `keep^j`.
    pub fn forget(&mut self, keep: f64) {
        if !(keep > 0.0 && keep < 1.0) || self.windows == 0 {
            return;
        }
        let dof = if self.dof > 0.0 {
            self.dof
        } else {
            f64::from(self.windows)
        };
        self.terms = self.effective_terms() * keep;
        self.dof = dof * keep;
        self.resid2 *= keep;
        self.var *= keep;
        self.var_g *= keep;
    }

    /// Add a marginal term: observed count `x` against expectation `e = r * rate_prev`, where
    /// `rate_prev` came from `r_prev` earlier requests; predictive Poisson variance
    /// `e (1 + r / r_prev)`.
    pub fn add_marginal(&mut self, x: f64, e: f64, r_over_r_prev: f64) {
        if !(e > 0.0 && e.is_finite() && x.is_finite() && r_over_r_prev.is_finite()) {
            return;
        }
        let r = x - e;
        let v = e * (1.0 + r_over_r_prev.max(0.0));
        self.resid2 += r * r;
        self.var += v;
        self.terms = self.effective_terms() + 1.0;
        self.windows += 1;
        self.var_g += v * e;
    }

    /// Variance-weighted mean burst sensitivity `g` of the terms so far (0 without terms).
    pub fn mean_g(&self) -> f64 {
        if self.var > 0.0 && self.var_g.is_finite() {
            (self.var_g / self.var).max(0.0)
        } else {
            0.0
        }
    }

    /// The tempering factor (>= 1): `prior_windows` pseudo-terms at the dispersion that a
    /// burst variance `prior_kappa` would cause at these counts, inflated by `upper_z`.
    pub fn phi(&self, prior_windows: f64, prior_kappa: f64, upper_z: f64) -> f64 {
        if self.windows == 0 || self.var <= 0.0 {
            return 1.0;
        }
        let phi0 = 1.0 + prior_kappa.max(0.0) * self.mean_g();
        let vbar = self.var / self.effective_terms();
        let k = prior_windows.max(0.0);
        let phi = (self.resid2 + k * phi0 * vbar) / (self.var + k * vbar);
        let dof = if self.dof > 0.0 {
            self.dof
        } else {
            f64::from(self.windows)
        };
        let df = dof + k;
        let inflate = 1.0 + upper_z.max(0.0) * (2.0 / df).sqrt();
        let used = 1.0 + (phi - 1.0).max(0.0) * inflate;
        if used.is_finite() {
            used
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lse_matches_naive() {
        let v = [0.1, -2.0, 3.5];
        let naive = v.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(v) - naive).abs() < 1e-12);
        assert_eq!(log_sum_exp(Vec::<f64>::new()), f64::NEG_INFINITY);
        assert!((log_add_exp(1.0, 2.0) - (1f64.exp() + 2f64.exp()).ln()).abs() < 1e-12);
    }

    #[test]
    fn grid_inserts_decision_points() {
        let g = Grid::new(-1.0, 1.0, 0.5, &[0.1, 0.5]);
        assert_eq!(g.points, vec![-1.0, -0.5, 0.0, 0.1, 0.5, 1.0]);
        assert_eq!(g.index_of(0.1), Some(3));
        assert_eq!(g.index_at_or_above(0.2), 4);
        assert_eq!(g.index_at_or_below(0.2), 3);
    }

    #[test]
    fn conditional_loglik_is_binomial() {
        // p = 2*1/(2*1+1) = 2/3 at x = 0, e_c = 2, e_b = 1
        let l = conditional_poisson_loglik(0.0, 3.0, 1.0, 2.0, 1.0);
        let want = 3.0 * (2.0f64 / 3.0).ln() + (1.0f64 / 3.0).ln();
        assert!((l - want).abs() < 1e-12);
    }

    #[test]
    fn dispersion_near_one_for_binomial_residuals() {
        let mut d = Dispersion::default();
        // residuals exactly at their expected variance
        for _ in 0..50 {
            // var = 20*.25*.75*(1 + 20/1e9) ~ 3.75, resid^2 = 5
            d.add(5.0 + 5f64.sqrt(), 20.0, 0.25, 1e9);
        }
        let phi = d.phi(0.0, 0.0, 0.0);
        assert!((phi - 5.0 / 3.75).abs() < 1e-6, "{phi}");
        let up = d.phi(0.0, 0.0, 1.0);
        assert!(
            (up - (1.0 + (5.0 / 3.75 - 1.0) * (1.0 + 0.2))).abs() < 1e-6,
            "{up}"
        );
        assert_eq!(Dispersion::default().phi(2.0, 0.1, 1.5), 1.0);
    }

    /// Marginal terms whose squared residuals equal their expectations `e` exactly.
    fn poisson_like(e: f64, terms: u32) -> Dispersion {
        let mut d = Dispersion::default();
        for _ in 0..terms {
            d.add_marginal(e + e.sqrt(), e, 0.0);
        }
        d.dof = f64::from(terms);
        d
    }

    #[test]
    fn prior_burst_variance_tempers_high_counts_only() {
        // residuals exactly Poisson: the data alone say phi = 1 at any count
        let (low, high) = (poisson_like(3.0, 6), poisson_like(30.0, 6));
        assert!((low.mean_g() - 3.0).abs() < 1e-12 && (high.mean_g() - 30.0).abs() < 1e-12);
        assert!((low.phi(2.0, 0.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((high.phi(2.0, 0.0, 0.0) - 1.0).abs() < 1e-12);
        // a prior burst variance kappa0 = 0.04 (rates wobbling by 20% between windows) is
        // worth 1 + kappa0 * e at e events per window, shrunk with 2 pseudo-terms against 6:
        // phi = 1 + 2 * kappa0 * e / 8
        assert!((low.phi(2.0, 0.04, 0.0) - 1.03).abs() < 1e-12);
        assert!((high.phi(2.0, 0.04, 0.0) - 1.3).abs() < 1e-12);
        // and the excess is inflated by 1 + z sqrt(2 / (dof + k))
        assert!((high.phi(2.0, 0.04, 1.0) - (1.0 + 0.3 * 1.5)).abs() < 1e-12);
        // more Poisson-looking data wash the prior out
        let long = poisson_like(30.0, 600);
        assert!(long.phi(2.0, 0.04, 0.0) < 1.004);
    }

    #[test]
    fn conditional_term_burst_sensitivity_is_the_share_variance() {
        // n = 11 events at p = 1/2: g = 2 * 1/4 * 10 = 5
        let mut d = Dispersion::default();
        d.add(5.0, 11.0, 0.5, 1e12);
        assert!((d.mean_g() - 5.0).abs() < 1e-9, "{}", d.mean_g());
        // a state serialized before `varG`/`dof` existed still reads (and means kappa0 = 0)
        let old: Dispersion = serde_json::from_str(
            r#"{"resid2": 4.0, "var": 2.0, "windows": 4, "n2": 9.0, "n1": 3.0}"#,
        )
        .expect("old state reads");
        assert_eq!(old.mean_g(), 0.0);
        assert!((old.phi(0.0, 0.04, 0.0) - 2.0).abs() < 1e-12);
    }
}
