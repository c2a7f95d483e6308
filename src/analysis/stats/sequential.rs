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
//! * a **confidence sequence** from the prior-posterior ratio
//!   `CS_t = { x_j : l(x_j) >= log sum_k pi_k exp(l(x_k)) - log(1/alpha) }` with a normal prior
//!   `pi` centred on 0, widened outward by one grid step so it stays conservative.
//!
//! `phi >= 1` is the dispersion (tempering) factor: dividing the log-likelihood by `phi` is the
//! quasi-likelihood correction for overdispersed counts (see [`Dispersion`]). Tempering by
//! `phi >= 1` never breaks validity under the Poisson model (Jensen: `E[L^(1/phi)] <= E[L]^(1/phi)`).

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

/// Confidence sequence at level `alpha` from the prior-posterior ratio with a normal prior
/// N(0, tau_prior^2) on the grid; returned as (lower, upper) parameter values, each pushed one
/// grid step outward (or to the grid edge). `None` for an empty grid.
pub fn confidence_sequence(
    grid: &Grid,
    ll: &LogLik,
    tau_prior: f64,
    phi: f64,
    alpha: f64,
) -> Option<(f64, f64)> {
    if grid.is_empty() || ll.values.len() != grid.len() || !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let lp: Vec<f64> = grid
        .points
        .iter()
        .map(|x| -0.5 * (x / tau_prior).powi(2))
        .collect();
    let norm = log_sum_exp(lp.iter().copied());
    let marg = log_sum_exp(lp.iter().zip(&ll.values).map(|(p, l)| p - norm + l / phi));
    let cut = marg - (1.0 / alpha).ln();
    let inside: Vec<usize> = (0..grid.len())
        .filter(|&j| ll.values[j] / phi >= cut)
        .collect();
    let (first, last) = match (inside.first(), inside.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return None,
    };
    let lo = grid.points[first.saturating_sub(1)];
    let hi = grid.points[(last + 1).min(grid.len() - 1)];
    let lo = if first == 0 { f64::NEG_INFINITY } else { lo };
    let hi = if last + 1 >= grid.len() {
        f64::INFINITY
    } else {
        hi
    };
    Some((lo, hi))
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
/// (the conditional term, one per window). Each arm's own count is also compared with its
/// expectation from that arm's earlier rate, `(x_t - e_t)^2` against `e_t` (the marginal terms,
/// two per window): they triple the degrees of freedom early on, when a burst in one arm must be
/// recognised quickly. A shock shared by both arms inflates the marginal terms too, which only
/// makes the test more cautious while it lasts.
/// `phi = (sum resid^2 + k * phi0 * vbar) / (sum var + k * vbar)` shrinks toward a prior
/// `phi0 = 1 + (nbar - 1) * icc0` with `k` pseudo-terms, where `nbar` is the
/// information-weighted mean count per term and `icc0` a prior intra-window correlation.
///
/// An estimate that is too low by a fraction `f` raises the false-alarm probability from
/// `alpha` toward `alpha^(1-f)`, so the excess over 1 is inflated by its relative standard
/// error: the factor used is `1 + max(0, phi - 1) * (1 + z * sqrt(2 / df))` with `df` the
/// number of residual terms (a rough upper confidence bound, `z` about 1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Dispersion {
    /// Sum of squared prequential residuals.
    pub resid2: f64,
    /// Sum of predicted binomial variances.
    pub var: f64,
    /// Residual terms that contributed (the degrees of freedom, roughly).
    pub windows: u32,
    /// Sum of n_t^2 and of n_t (for the information-weighted mean count).
    pub n2: f64,
    pub n1: f64,
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
        self.resid2 += r * r;
        self.var += n * p * (1.0 - p) * (1.0 + n / n_prev);
        self.windows += 1;
        self.n2 += n * n;
        self.n1 += n;
    }

    /// Add a marginal term: observed count `x` against expectation `e = r * rate_prev`, where
    /// `rate_prev` came from `r_prev` earlier requests; predictive Poisson variance
    /// `e (1 + r / r_prev)`.
    pub fn add_marginal(&mut self, x: f64, e: f64, r_over_r_prev: f64) {
        if !(e > 0.0 && e.is_finite() && x.is_finite() && r_over_r_prev.is_finite()) {
            return;
        }
        let r = x - e;
        self.resid2 += r * r;
        self.var += e * (1.0 + r_over_r_prev.max(0.0));
        self.windows += 1;
        self.n2 += e * e;
        self.n1 += e;
    }

    /// The tempering factor (>= 1).
    pub fn phi(&self, prior_windows: f64, prior_icc: f64, upper_z: f64) -> f64 {
        if self.windows == 0 || self.var <= 0.0 {
            return 1.0;
        }
        let nbar = if self.n1 > 0.0 {
            self.n2 / self.n1
        } else {
            1.0
        };
        let phi0 = 1.0 + (nbar - 1.0).max(0.0) * prior_icc;
        let vbar = self.var / f64::from(self.windows);
        let k = prior_windows.max(0.0);
        let phi = (self.resid2 + k * phi0 * vbar) / (self.var + k * vbar);
        let df = f64::from(self.windows) + k;
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
}
