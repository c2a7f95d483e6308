//! Latency from Prometheus-style histograms: bucket arithmetic, quantiles, the exceedance counts
//! used by the sequential quantile test, order-statistic bounds, and a sequential
//! whole-distribution (rank-score tilt) test.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::fixed::order_statistic_ranks;
use super::sequential::{dual_bounds, log_add_exp, log_e_greater, log_e_less, Grid, LogLik};

/// A histogram of one window: bucket upper bounds (`le`, strictly increasing, the last may be
/// `+Inf`) and the cumulative count of requests at or below each bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Serialized as numbers, with `"+Inf"` for the infinite bound (JSON has no infinity).
    #[serde(with = "bounds_serde")]
    pub bounds: Vec<f64>,
    pub cumulative: Vec<f64>,
}

/// Serde for bucket bounds: finite numbers as numbers, infinities as `"+Inf"` / `"-Inf"`
/// (Prometheus' spelling); on input also accepts `"Inf"`, `"inf"` and numeric strings.
pub mod bounds_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Num(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let out: Vec<Bound> = v
            .iter()
            .map(|x| {
                if x.is_finite() {
                    Bound::Num(*x)
                } else if *x > 0.0 {
                    Bound::Text("+Inf".into())
                } else {
                    Bound::Text("-Inf".into())
                }
            })
            .collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let raw: Vec<Bound> = Vec::deserialize(d)?;
        raw.into_iter()
            .map(|b| match b {
                Bound::Num(x) => Ok(x),
                Bound::Text(t) => match t.trim() {
                    "+Inf" | "Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
                    "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
                    other => other.parse::<f64>().map_err(|_| {
                        serde::de::Error::custom(format!("bad bucket bound {other:?}"))
                    }),
                },
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum HistogramError {
    #[error("histogram has no buckets")]
    Empty,
    #[error("histogram has {bounds} bounds but {counts} counts")]
    LengthMismatch { bounds: usize, counts: usize },
    #[error("bucket bounds must be strictly increasing and not NaN")]
    BoundsNotIncreasing,
    #[error("cumulative counts must be finite, non-negative and non-decreasing")]
    BadCounts,
    #[error("baseline and canary histograms use different bucket bounds")]
    DifferentBounds,
}

impl Histogram {
    pub fn validate(&self) -> Result<(), HistogramError> {
        if self.bounds.is_empty() {
            return Err(HistogramError::Empty);
        }
        if self.bounds.len() != self.cumulative.len() {
            return Err(HistogramError::LengthMismatch {
                bounds: self.bounds.len(),
                counts: self.cumulative.len(),
            });
        }
        if self.bounds.iter().any(|b| b.is_nan()) || self.bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(HistogramError::BoundsNotIncreasing);
        }
        if self.cumulative.iter().any(|c| !c.is_finite() || *c < 0.0)
            || self.cumulative.windows(2).any(|w| w[0] > w[1] + 1e-9)
        {
            return Err(HistogramError::BadCounts);
        }
        Ok(())
    }

    /// Total count (the last cumulative count).
    pub fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// Per-bucket (non-cumulative) counts.
    pub fn bucket_counts(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.cumulative
            .iter()
            .map(|c| {
                let d = (c - prev).max(0.0);
                prev = *c;
                d
            })
            .collect()
    }

    /// Requests above bound `idx` (slower than `bounds[idx]`).
    pub fn exceedances(&self, idx: usize) -> f64 {
        match self.cumulative.get(idx) {
            Some(c) => (self.total() - c).max(0.0),
            None => 0.0,
        }
    }

    /// Add another histogram with the same bounds.
    pub fn add(&mut self, other: &Histogram) -> Result<(), HistogramError> {
        if self.bounds != other.bounds {
            return Err(HistogramError::DifferentBounds);
        }
        for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *a += b;
        }
        Ok(())
    }

    /// Quantile by linear interpolation inside the bucket, as Prometheus' `histogram_quantile`
    /// does (the lowest bucket interpolates from 0 when its bound is positive; a quantile in
    /// the `+Inf` bucket returns the highest finite bound). `None` when empty or `q` invalid.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if !(0.0..=1.0).contains(&q) || total <= 0.0 || self.bounds.is_empty() {
            return None;
        }
        let rank = q * total;
        let idx = self.cumulative.iter().position(|c| *c >= rank)?;
        let upper = self.bounds[idx];
        if upper.is_infinite() {
            return self.bounds.iter().rev().find(|b| b.is_finite()).copied();
        }
        let (lower, below) = if idx == 0 {
            (if upper > 0.0 { 0.0 } else { upper }, 0.0)
        } else {
            (self.bounds[idx - 1], self.cumulative[idx - 1])
        };
        let in_bucket = self.cumulative[idx] - below;
        if in_bucket <= 0.0 {
            return Some(upper);
        }
        Some(lower + (upper - lower) * (rank - below) / in_bucket)
    }

    /// Order-statistic bounds for the `q` quantile at confidence `1 - alpha` (two-sided,
    /// fixed-horizon), resolved to bucket edges: the lower edge of the bucket holding rank `l`
    /// and the upper edge of the bucket holding rank `u`. `None` when there is too little data.
    pub fn quantile_bounds(&self, q: f64, alpha: f64) -> Option<(f64, f64)> {
        let n = self.total().floor();
        if n < 1.0 {
            return None;
        }
        let (l, u) = order_statistic_ranks(n as u64, q, alpha)?;
        let bucket_of = |rank: f64| self.cumulative.iter().position(|c| *c >= rank);
        let li = bucket_of(l as f64)?;
        let ui = bucket_of(u as f64)?;
        let lo = if li == 0 { 0.0 } else { self.bounds[li - 1] };
        Some((lo, self.bounds[ui]))
    }
}

/// Choose the bucket bound nearest (in logit of the baseline's CDF) to the baseline's `q`
/// quantile, among finite bounds with at least half of the baseline's `1-q` above them, and at
/// least 3 baseline requests. `None` when no bound qualifies.
///
/// Why half and not less: the test passes only when it can show the canary's rate above the
/// bound within the pass tolerance, which needs events above it; a bound with a tiny baseline
/// tail (with coarse buckets, the next bound up can hold a tenth of `1-q`) leaves a healthy
/// canary unable to pass in any reasonable time. The sensitivity lost to a lower bound is
/// won back by the watch bound, the next one up, which only fails (see
/// `analysis::judge::quantile`).
pub fn choose_boundary(baseline: &Histogram, q: f64) -> Option<usize> {
    let total = baseline.total();
    if total <= 0.0 || !(q > 0.0 && q < 1.0) {
        return None;
    }
    let logit = |p: f64| {
        let p = p.clamp(1e-9, 1.0 - 1e-9);
        (p / (1.0 - p)).ln()
    };
    let target = logit(q);
    let mut best: Option<(usize, f64)> = None;
    for (i, (b, c)) in baseline.bounds.iter().zip(&baseline.cumulative).enumerate() {
        let tail = 1.0 - c / total;
        if !b.is_finite() || tail < (1.0 - q) / 2.0 || tail <= 0.0 || total - c < 3.0 {
            continue;
        }
        let d = (logit(c / total) - target).abs();
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

/// Settings of the whole-distribution test.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftTestConfig {
    /// Fail when the tilt `beta > fail_shift`; pass when `beta < pass_shift`.
    pub fail_shift: f64,
    pub pass_shift: f64,
    pub mixture_scale: f64,
}

impl ShiftTestConfig {
    pub fn grid(&self) -> Grid {
        Grid::new(-3.0, 3.0, 0.1, &[self.fail_shift, self.pass_shift])
    }
}

/// Sequential whole-distribution comparison (a rank-score tilt test).
///
/// Condition on the number of requests of both arms in each bucket `j` of a window: with equal
/// distributions the canary's share of bucket `j` is its traffic share `s`. The alternative
/// tilts that share by a score: `logit p_j = logit s + beta * z_j`, where
/// `z_j = 2 F(j) - 1` is the mid-rank of bucket `j` (in [-1, 1]) under the baseline distribution
/// accumulated over *earlier* windows (so the scores are predictable). `beta > 0` means the
/// canary is stochastically slower; it is the sequential analogue of a Wilcoxon rank-sum test on
/// binned data. The binomial-per-bucket model ignores that an arm's bucket counts sum to its
/// request count (an approximation; the benchmark's A/A cells check the false-positive rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShiftTestState {
    pub loglik: LogLik,
    /// Baseline bucket counts accumulated so far (the reference for the scores).
    pub reference: Vec<f64>,
    #[serde(with = "bounds_serde")]
    pub bounds: Vec<f64>,
    pub windows: u32,
    pub canary_requests: f64,
    pub baseline_requests: f64,
    pub fail_shift: f64,
    pub pass_shift: f64,
}

/// What the whole-distribution test says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftSummary {
    /// Maximum-likelihood tilt on the grid.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub e_value_fail: f64,
    pub e_value_pass: f64,
}

impl ShiftTestState {
    pub fn new(cfg: &ShiftTestConfig) -> ShiftTestState {
        ShiftTestState {
            loglik: LogLik::new(cfg.grid().len()),
            fail_shift: cfg.fail_shift,
            pass_shift: cfg.pass_shift,
            ..Default::default()
        }
    }

    pub fn matches(&self, cfg: &ShiftTestConfig) -> bool {
        self.fail_shift == cfg.fail_shift
            && self.pass_shift == cfg.pass_shift
            && self.loglik.values.len() == cfg.grid().len()
    }

    /// Add one window of both arms' histograms (already validated, same bounds). Returns
    /// whether the window carried evidence (the first window only builds the reference).
    pub fn add_window(&mut self, grid: &Grid, canary: &Histogram, baseline: &Histogram) -> bool {
        if canary.bounds != baseline.bounds {
            return false;
        }
        let rc = canary.total();
        let rb = baseline.total();
        if !(rc > 0.0 && rb > 0.0) {
            return false;
        }
        let cb = canary.bucket_counts();
        let bb = baseline.bucket_counts();
        if self.bounds != baseline.bounds {
            // first window, or the bucket layout changed: start the reference afresh
            self.bounds = baseline.bounds.clone();
            self.reference = vec![0.0; bb.len()];
        }
        let ref_total: f64 = self.reference.iter().sum();
        let mut used = false;
        if ref_total > 0.0 {
            // mid-rank scores from earlier baseline windows, with a half-count smoothing
            let m = self.reference.len() as f64;
            let tot = ref_total + 0.5 * m;
            let mut below = 0.0;
            let scores: Vec<f64> = self
                .reference
                .iter()
                .map(|r| {
                    let rr = r + 0.5;
                    let mid = (below + 0.5 * rr) / tot;
                    below += rr;
                    2.0 * mid - 1.0
                })
                .collect();
            let ls = rc.ln() - rb.ln();
            let pts = &grid.points;
            let cells: Vec<(f64, f64, f64)> = cb
                .iter()
                .zip(&bb)
                .zip(&scores)
                .filter(|((c, b), _)| **c + **b > 0.0)
                .map(|((c, b), z)| (*c, *b, *z))
                .collect();
            self.loglik.add(|k| {
                let beta = pts[k];
                cells
                    .iter()
                    .map(|(c, b, z)| {
                        let eta = ls + beta * z;
                        let ld = log_add_exp(eta, 0.0);
                        c * (eta - ld) - b * ld
                    })
                    .sum()
            });
            self.windows += 1;
            self.canary_requests += rc;
            self.baseline_requests += rb;
            used = true;
        }
        for (r, b) in self.reference.iter_mut().zip(&bb) {
            *r += b;
        }
        used
    }

    /// E-values, estimate, and bounds dual to the tests at `alpha_fail` (lower) and
    /// `alpha_pass` (upper).
    pub fn summary(
        &self,
        cfg: &ShiftTestConfig,
        grid: &Grid,
        alpha_fail: f64,
        alpha_pass: f64,
    ) -> ShiftSummary {
        let fi = grid.index_at_or_above(cfg.fail_shift);
        let pi = grid.index_at_or_below(cfg.pass_shift);
        let e_fail = log_e_greater(grid, &self.loglik, fi, cfg.mixture_scale, 1.0).exp();
        let e_pass = log_e_less(grid, &self.loglik, pi, cfg.mixture_scale, 1.0).exp();
        let (lo, hi) = dual_bounds(
            grid,
            &self.loglik,
            cfg.mixture_scale,
            1.0,
            (fi, alpha_fail),
            (pi, alpha_pass),
        );
        ShiftSummary {
            estimate: grid.points[self.loglik.argmax()],
            lower: lo,
            upper: hi,
            e_value_fail: e_fail,
            e_value_pass: e_pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bounds: &[f64], cum: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            cumulative: cum.to_vec(),
        }
    }

    #[test]
    fn validation_catches_bad_histograms() {
        assert!(h(&[0.1, 0.2, f64::INFINITY], &[1.0, 2.0, 3.0])
            .validate()
            .is_ok());
        assert_eq!(h(&[], &[]).validate(), Err(HistogramError::Empty));
        assert!(h(&[0.2, 0.1], &[1.0, 2.0]).validate().is_err());
        assert!(h(&[0.1, 0.2], &[2.0, 1.0]).validate().is_err());
        assert!(h(&[0.1, 0.2], &[1.0, f64::NAN]).validate().is_err());
        assert!(h(&[0.1, 0.2], &[1.0]).validate().is_err());
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let x = h(&[0.1, 0.2, 0.4, f64::INFINITY], &[50.0, 80.0, 100.0, 100.0]);
        assert!((x.quantile(0.5).unwrap_or(0.0) - 0.1).abs() < 1e-12);
        assert!((x.quantile(0.25).unwrap_or(0.0) - 0.05).abs() < 1e-12);
        assert!((x.quantile(0.9).unwrap_or(0.0) - 0.3).abs() < 1e-12);
        let tail = h(&[0.1, f64::INFINITY], &[50.0, 100.0]);
        assert_eq!(tail.quantile(0.99), Some(0.1));
        assert_eq!(h(&[0.1], &[0.0]).quantile(0.5), None);
        assert_eq!(x.exceedances(1), 20.0);
    }

    #[test]
    fn boundary_near_quantile() {
        let x = h(
            &[0.1, 0.2, 0.25, 0.3, 0.5, f64::INFINITY],
            &[500.0, 900.0, 960.0, 985.0, 999.0, 1000.0],
        );
        // p99 sits between 0.3 (98.5%) and 0.5 (99.9%, tail 0.001 < 0.005 so not eligible)
        assert_eq!(choose_boundary(&x, 0.99), Some(3));
        assert_eq!(choose_boundary(&x, 0.5), Some(0));
        // Prometheus' coarse buckets: 0.5 is nearer p99 in logit (tail 0.4%) but holds less
        // than half of the 1% tail, so the healthy canary could hardly ever pass there
        let coarse = h(
            &[0.25, 0.5, 1.0, f64::INFINITY],
            &[960.0, 996.0, 1000.0, 1000.0],
        );
        assert_eq!(choose_boundary(&coarse, 0.99), Some(0));
        // fewer than 3 baseline requests above a bound: not eligible, whatever the fraction
        let few = h(&[0.25, 0.5, f64::INFINITY], &[90.0, 98.0, 100.0]);
        assert_eq!(choose_boundary(&few, 0.99), Some(0));
    }

    #[test]
    fn shift_test_detects_slower_canary_and_not_equal_ones() {
        let cfg = ShiftTestConfig {
            fail_shift: 0.0,
            pass_shift: 0.5,
            mixture_scale: 1.0,
        };
        let g = cfg.grid();
        let bounds = [0.1, 0.2, 0.4, f64::INFINITY];
        let base = h(&bounds, &[100.0, 200.0, 280.0, 300.0]);
        let slow = h(&bounds, &[40.0, 120.0, 240.0, 300.0]);
        let mut s = ShiftTestState::new(&cfg);
        let mut same = ShiftTestState::new(&cfg);
        assert!(!s.add_window(&g, &slow, &base)); // builds the reference
        for _ in 0..5 {
            assert!(s.add_window(&g, &slow, &base));
            same.add_window(&g, &base, &base);
        }
        let sum = s.summary(&cfg, &g, 0.05, 0.05);
        assert!(sum.e_value_fail > 1e6, "{sum:?}");
        assert!(sum.estimate > 0.5);
        let eq = same.summary(&cfg, &g, 0.05, 0.05);
        assert!(eq.e_value_fail < 1.0, "{eq:?}");
        assert!(eq.e_value_pass > 1.0);
    }
}
