//! Fixed-horizon tests, for offline use, for the Kayenta-style reference judge and as checks.
//! These are valid only when looked at once; the judge does not use them for decisions.
//! Each is checked against scipy in `tests/stats/` (see `tests/stats/gen_reference.py`).

use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF, Normal};
use statrs::function::factorial::ln_binomial;

fn std_normal() -> Normal {
    // mean 0, sd 1 are always valid parameters
    Normal::standard()
}

/// Two-sided p-value of a standard-normal statistic.
fn two_sided_p(z: f64) -> f64 {
    (2.0 * std_normal().sf(z.abs())).min(1.0)
}

/// Pooled two-proportion z test of `x1/n1` against `x2/n2`: `(z, two-sided p)`.
/// `None` when a sample is empty or the pooled proportion is 0 or 1.
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let p = (x1 + x2) as f64 / (n1f + n2f);
    if p <= 0.0 || p >= 1.0 {
        return None;
    }
    let se = (p * (1.0 - p) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    let z = (x1 as f64 / n1f - x2 as f64 / n2f) / se;
    Some((z, two_sided_p(z)))
}

/// Pearson chi-square test of the 2x2 table `[[a, b], [c, d]]` with Yates' continuity
/// correction, as `scipy.stats.chi2_contingency(table)` does: `(statistic, p)`.
/// `None` when a row or column sums to zero.
pub fn chi2_2x2_yates(a: u64, b: u64, c: u64, d: u64) -> Option<(f64, f64)> {
    let t = [[a as f64, b as f64], [c as f64, d as f64]];
    let rows = [t[0][0] + t[0][1], t[1][0] + t[1][1]];
    let cols = [t[0][0] + t[1][0], t[0][1] + t[1][1]];
    let n = rows[0] + rows[1];
    if rows.contains(&0.0) || cols.contains(&0.0) {
        return None;
    }
    let mut stat = 0.0;
    for i in 0..2 {
        for j in 0..2 {
            let e = rows[i] * cols[j] / n;
            let diff = (t[i][j] - e).abs();
            // scipy: the correction never moves an observed value past its expectation
            let corr = diff.min(0.5);
            let dd = diff - corr;
            stat += dd * dd / e;
        }
    }
    let chi = ChiSquared::new(1.0).ok()?;
    Some((stat, chi.sf(stat)))
}

/// Fisher's exact test of `[[a, b], [c, d]]`: `(sample odds ratio, two-sided p)`, where the
/// two-sided p sums the probabilities of all tables no more likely than the observed one (with
/// scipy's relative tolerance 1e-7).
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> (f64, f64) {
    let odds = if b * c == 0 {
        if a * d == 0 {
            f64::NAN
        } else {
            f64::INFINITY
        }
    } else {
        (a as f64 * d as f64) / (b as f64 * c as f64)
    };
    let r1 = a + b;
    let c1 = a + c;
    let n = a + b + c + d;
    let lo = c1.saturating_sub(n - r1);
    let hi = r1.min(c1);
    // log P(X = x) for the hypergeometric of the top-left cell
    let lp = |x: u64| ln_binomial(r1, x) + ln_binomial(n - r1, c1 - x) - ln_binomial(n, c1);
    let obs = lp(a);
    let mut p = 0.0;
    for x in lo..=hi {
        let l = lp(x);
        if l <= obs + 1e-7_f64.ln_1p() {
            p += l.exp();
        }
    }
    (odds, p.min(1.0))
}

/// Mann-Whitney U test, normal approximation with tie and continuity corrections, two-sided,
/// as `scipy.stats.mannwhitneyu(x, y, method="asymptotic")`: `(U of x, p)`.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        for item in &all[i..=j] {
            if item.1 {
                rank_sum_x += avg;
            }
        }
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = rank_sum_x - n1f * (n1f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return Some((u1, 1.0));
    }
    let u = u1.max(n1f * n2f - u1);
    let z = (u - mu - 0.5) / var.sqrt();
    Some((u1, (2.0 * std_normal().sf(z)).min(1.0)))
}

/// Hodges-Lehmann estimate of the shift `x - y` (median of pairwise differences) and its
/// distribution-free confidence interval at `conf` from the normal approximation of the
/// Mann-Whitney statistic: `(estimate, lower, upper)`.
pub fn hodges_lehmann(x: &[f64], y: &[f64], conf: f64) -> Option<(f64, f64, f64)> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let mut d: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    d.sort_by(f64::total_cmp);
    let m = d.len();
    let est = if m % 2 == 1 {
        d[m / 2]
    } else {
        0.5 * (d[m / 2 - 1] + d[m / 2])
    };
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let z = std_normal().inverse_cdf(1.0 - (1.0 - conf) / 2.0);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let k = (k.max(1.0) as usize).min(m);
    Some((est, d[k - 1], d[m - k]))
}

/// 1-based ranks `(l, u)` of the order statistics bracketing the `q` quantile of `n` samples
/// with coverage at least `1 - alpha`: `l = F^-1(alpha/2)`, `u = F^-1(1 - alpha/2) + 1` for
/// `F` the Binomial(n, q) CDF. `l` may be 0 (no lower bound) and `u` may be `n + 1` (none above).
pub fn order_statistic_ranks(n: u64, q: f64, alpha: f64) -> Option<(u64, u64)> {
    if n == 0 || !(q > 0.0 && q < 1.0) || !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let b = Binomial::new(q, n).ok()?;
    let ppf = |p: f64| -> u64 {
        // smallest k with CDF(k) >= p
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if b.cdf(mid) >= p {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    Some((ppf(alpha / 2.0), ppf(1.0 - alpha / 2.0) + 1))
}

/// Wilson score interval for a binomial proportion at normal quantile `z`.
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs() {
        assert_eq!(two_proportion_z(0, 10, 0, 10), None);
        assert_eq!(two_proportion_z(1, 0, 0, 10), None);
        assert_eq!(chi2_2x2_yates(0, 0, 3, 4), None);
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
        assert_eq!(mann_whitney_u(&[f64::NAN], &[1.0]), None);
        assert_eq!(order_statistic_ranks(0, 0.5, 0.05), None);
    }

    #[test]
    fn wilson_known_value() {
        // 0 of 2000: upper bound 1.92/2000-ish
        let (lo, hi) = wilson_interval(0, 2000, 1.959964);
        assert!(lo.abs() < 1e-15);
        assert!((hi - 0.001917).abs() < 2e-5, "{hi}");
    }

    #[test]
    fn hodges_lehmann_shift() {
        let x: Vec<f64> = (0..20).map(|i| i as f64 + 5.0).collect();
        let y: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let (est, lo, hi) = hodges_lehmann(&x, &y, 0.98).unwrap_or((0.0, 0.0, 0.0));
        assert_eq!(est, 5.0);
        assert!(lo < 5.0 && hi > 5.0 && lo > -5.0);
    }
}
