//! Seeded traffic simulation and the reference judges for the benchmark (`tollgate
//! bench-judge`). Pure: the caller passes the random generator; nothing reads a clock.
//!
//! Per 30-second window and arm: requests arrive as a Poisson process, so the counts in the
//! latency buckets are independent Poisson draws with means `rps * 30 * P(bucket)` (bucket
//! probabilities from the lognormal CDF), the request count is their sum, and the errors are
//! Binomial(requests, error rate x burst multiplier).

use rand::{Rng, RngExt};
use statrs::distribution::{ContinuousCDF, Gamma, Normal, Poisson};

use super::judge::{ArmCounts, JudgeWindow};
use super::stats::fixed::hodges_lehmann;
use super::stats::latency::Histogram;

/// Look interval of the simulation (seconds).
pub const WINDOW_SECS: f64 = 30.0;

/// Bucket bounds (seconds) of the simulated histograms.
pub const BOUNDS: [f64; 18] = [
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];

/// How the canary's latency differs from the baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyChange {
    None,
    /// Every latency multiplied by `factor` (p99 x factor).
    Whole(f64),
    /// Latencies above the baseline's p95 stretched so that p99 is x `factor`.
    Tail(f64),
}

/// One benchmark scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Requests per second per arm.
    pub rps: f64,
    pub base_error: f64,
    pub error_mult: f64,
    /// Lognormal latency: median (seconds) and sigma of log latency.
    pub median: f64,
    pub sigma: f64,
    pub latency: LatencyChange,
    /// Independent per-arm Gamma(mean 1, CV) error multiplier per window.
    pub burst_cv: Option<f64>,
    /// Windows `[from, to)` during which both arms' error rate is x10 and latency x2.
    pub shared_shock: Option<(u32, u32)>,
}

impl Scenario {
    /// True when the canary is as good as the baseline (an A/A scenario).
    pub fn is_null(&self) -> bool {
        self.error_mult == 1.0 && self.latency == LatencyChange::None
    }
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// Bucket probabilities (same order as [`BOUNDS`]) of a lognormal with the given median and
/// sigma, optionally tail-stretched above the 95th percentile.
pub fn bucket_probs(median: f64, sigma: f64, change: LatencyChange) -> Vec<f64> {
    let n = std_normal();
    let mu = median.ln();
    let cdf = |x: f64| -> f64 {
        if x.is_infinite() {
            return 1.0;
        }
        match change {
            LatencyChange::None => n.cdf((x.ln() - mu) / sigma),
            LatencyChange::Whole(f) => n.cdf((x.ln() - mu - f.ln()) / sigma),
            LatencyChange::Tail(f) => {
                let z95 = 1.6448536269514722;
                let z99 = 2.3263478740408408;
                let lq95 = mu + sigma * z95;
                let k = 1.0 + f.ln() / (sigma * (z99 - z95));
                let lx = x.ln();
                let l = if lx <= lq95 {
                    lx
                } else {
                    lq95 + (lx - lq95) / k
                };
                n.cdf((l - mu) / sigma)
            }
        }
    };
    let mut prev = 0.0;
    BOUNDS
        .iter()
        .map(|b| {
            let c = cdf(*b);
            let p = (c - prev).max(0.0);
            prev = c;
            p
        })
        .collect()
}

/// Poisson draw (Knuth below 30, Atkinson's rejection above, as in statrs).
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0.0;
    }
    match Poisson::new(mean) {
        Ok(p) => rand::distr::Distribution::<f64>::sample(&p, rng),
        Err(_) => 0.0,
    }
}

/// Binomial draw by inversion (normal approximation when the mean is large).
pub fn binomial<R: Rng + ?Sized>(rng: &mut R, n: f64, p: f64) -> f64 {
    let p = p.clamp(0.0, 1.0);
    if n <= 0.0 || p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return n;
    }
    let mean = n * p;
    if mean > 500.0 {
        let z: f64 = rand::distr::Distribution::<f64>::sample(&std_normal(), rng);
        return (mean + z * (mean * (1.0 - p)).sqrt()).round().clamp(0.0, n);
    }
    let q = 1.0 - p;
    let mut pk = q.powf(n);
    if pk <= 0.0 {
        return poisson(rng, mean).min(n);
    }
    let u: f64 = rng.random();
    let mut cum = pk;
    let mut k = 0.0;
    let ratio = p / q;
    while u > cum && k < n {
        pk *= (n - k) / (k + 1.0) * ratio;
        k += 1.0;
        cum += pk;
        if pk < 1e-300 && cum > 1.0 - 1e-12 {
            break;
        }
    }
    k
}

/// Gamma multiplier with mean 1 and the given coefficient of variation.
pub fn gamma_mult<R: Rng + ?Sized>(rng: &mut R, cv: f64) -> f64 {
    let shape = 1.0 / (cv * cv);
    match Gamma::new(shape, shape) {
        Ok(g) => rand::distr::Distribution::<f64>::sample(&g, rng),
        Err(_) => 1.0,
    }
}

/// Precomputed per-arm bucket probabilities of a scenario.
#[derive(Debug, Clone)]
pub struct Generator {
    pub scenario: Scenario,
    base_probs: Vec<f64>,
    canary_probs: Vec<f64>,
    shock_probs: Vec<f64>,
    shock_canary_probs: Vec<f64>,
}

impl Generator {
    pub fn new(s: &Scenario) -> Generator {
        Generator {
            scenario: s.clone(),
            base_probs: bucket_probs(s.median, s.sigma, LatencyChange::None),
            canary_probs: bucket_probs(s.median, s.sigma, s.latency),
            shock_probs: bucket_probs(2.0 * s.median, s.sigma, LatencyChange::None),
            shock_canary_probs: bucket_probs(2.0 * s.median, s.sigma, s.latency),
        }
    }

    /// Simulate window `t` for both arms.
    pub fn window<R: Rng + ?Sized>(&self, rng: &mut R, t: u32) -> JudgeWindow {
        let s = &self.scenario;
        let shock = s.shared_shock.is_some_and(|(a, b)| t >= a && t < b);
        let shock_mult = if shock { 10.0 } else { 1.0 };
        let mut arm = |canary: bool| -> ArmCounts {
            let probs = match (canary, shock) {
                (false, false) => &self.base_probs,
                (true, false) => &self.canary_probs,
                (false, true) => &self.shock_probs,
                (true, true) => &self.shock_canary_probs,
            };
            let mean = s.rps * WINDOW_SECS;
            let mut cum = 0.0;
            let cumulative: Vec<f64> = probs
                .iter()
                .map(|p| {
                    cum += poisson(rng, mean * p);
                    cum
                })
                .collect();
            let burst = s.burst_cv.map_or(1.0, |cv| gamma_mult(rng, cv));
            let rate = s.base_error * if canary { s.error_mult } else { 1.0 } * burst * shock_mult;
            let errors = binomial(rng, cum, rate);
            ArmCounts {
                requests: Some(cum),
                errors: Some(errors),
                latency: Some(Histogram {
                    bounds: BOUNDS.to_vec(),
                    cumulative,
                }),
            }
        };
        let baseline = arm(false);
        let canary = arm(true);
        JudgeWindow {
            baseline,
            canary,
            canary_share: Some(0.5),
        }
    }

    /// `n` windows of the stable version's traffic before the canary started, as the operator
    /// reads them from Prometheus to estimate the dispersion of the error counts: the baseline's
    /// error rate and bursts (no shock), and all the traffic, i.e. both arms' requests.
    pub fn history<R: Rng + ?Sized>(&self, rng: &mut R, n: u32) -> Vec<ArmCounts> {
        let s = &self.scenario;
        (0..n)
            .map(|_| {
                let requests = poisson(rng, 2.0 * s.rps * WINDOW_SECS);
                let burst = s.burst_cv.map_or(1.0, |cv| gamma_mult(rng, cv));
                let errors = binomial(rng, requests, s.base_error * burst);
                ArmCounts {
                    requests: Some(requests),
                    errors: Some(errors),
                    latency: None,
                }
            })
            .collect()
    }

    /// KL divergence rate (nats per second) of the canary's latency buckets from the
    /// baseline's, per canary request rate: the whole-distribution information floor.
    pub fn latency_kl_rate(&self) -> f64 {
        self.canary_probs
            .iter()
            .zip(&self.base_probs)
            .filter(|(c, b)| **c > 0.0 && **b > 0.0)
            .map(|(c, b)| c * (c / b).ln())
            .sum::<f64>()
            * self.scenario.rps
    }
}

/// Per-minute aggregate of two windows, as the reference judges see it.
#[derive(Debug, Clone, Default)]
pub struct Minute {
    pub canary_requests: f64,
    pub canary_errors: f64,
    pub baseline_requests: f64,
    pub baseline_errors: f64,
    pub canary_hist: Option<Histogram>,
    pub baseline_hist: Option<Histogram>,
}

impl Minute {
    pub fn add(&mut self, w: &JudgeWindow) {
        self.canary_requests += w.canary.requests.unwrap_or(0.0);
        self.canary_errors += w.canary.errors.unwrap_or(0.0);
        self.baseline_requests += w.baseline.requests.unwrap_or(0.0);
        self.baseline_errors += w.baseline.errors.unwrap_or(0.0);
        for (acc, h) in [
            (&mut self.canary_hist, &w.canary.latency),
            (&mut self.baseline_hist, &w.baseline.latency),
        ] {
            if let Some(h) = h {
                match acc {
                    Some(a) => {
                        let _ = a.add(h);
                    }
                    None => *acc = Some(h.clone()),
                }
            }
        }
    }
}

/// Flagger/Argo-style thresholds on the canary alone, checked every minute: success rate
/// >= 99% and p99 <= 500 ms; roll back after `limit` failed checks (cumulative).
#[derive(Debug, Clone)]
pub struct ThresholdJudge {
    pub failed: u32,
    pub limit: u32,
}

impl Default for ThresholdJudge {
    fn default() -> Self {
        ThresholdJudge {
            failed: 0,
            limit: 5,
        }
    }
}

impl ThresholdJudge {
    /// Check one minute; `true` means roll back now.
    pub fn check(&mut self, m: &Minute) -> bool {
        let mut ok = true;
        if m.canary_requests > 0.0 {
            let success = 1.0 - m.canary_errors / m.canary_requests;
            if success < 0.99 {
                ok = false;
            }
        }
        if let Some(p99) = m.canary_hist.as_ref().and_then(|h| h.quantile(0.99)) {
            if p99 > 0.5 {
                ok = false;
            }
        }
        if !ok {
            self.failed += 1;
        }
        self.failed >= self.limit
    }
}

/// Kayenta-style judge: per-minute series of error rate and p99 for both arms, compared at
/// fixed horizons with Mann-Whitney (Hodges-Lehmann interval at 98% confidence); a metric is
/// "high" when the interval's lower end exceeds 0.25 x |estimate| (Kayenta's
/// MannWhitneyClassifier with fraction 0.25). Any high metric fails the canary.
#[derive(Debug, Clone, Default)]
pub struct KayentaJudge {
    pub canary_err: Vec<f64>,
    pub baseline_err: Vec<f64>,
    pub canary_p99: Vec<f64>,
    pub baseline_p99: Vec<f64>,
}

impl KayentaJudge {
    pub fn add_minute(&mut self, m: &Minute) {
        if m.canary_requests > 0.0 && m.baseline_requests > 0.0 {
            self.canary_err.push(m.canary_errors / m.canary_requests);
            self.baseline_err
                .push(m.baseline_errors / m.baseline_requests);
        }
        if let (Some(c), Some(b)) = (
            m.canary_hist.as_ref().and_then(|h| h.quantile(0.99)),
            m.baseline_hist.as_ref().and_then(|h| h.quantile(0.99)),
        ) {
            self.canary_p99.push(c);
            self.baseline_p99.push(b);
        }
    }

    fn high(x: &[f64], y: &[f64]) -> bool {
        if x.is_empty() || y.is_empty() || x == y {
            return false;
        }
        match hodges_lehmann(x, y, 0.98) {
            Some((est, lo, _)) => lo > 0.25 * est.abs(),
            None => false,
        }
    }

    /// Judge at a horizon: `true` means the canary fails.
    pub fn judge(&self) -> bool {
        Self::high(&self.canary_err, &self.baseline_err)
            || Self::high(&self.canary_p99, &self.baseline_p99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bucket_probs_sum_to_one_and_shift_moves_mass_up() {
        let b = bucket_probs(0.1, 0.5, LatencyChange::None);
        let w = bucket_probs(0.1, 0.5, LatencyChange::Whole(1.2));
        let t = bucket_probs(0.1, 0.5, LatencyChange::Tail(1.2));
        for p in [&b, &w, &t] {
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // mass above 0.25 s grows under both changes; tail change leaves the body alone
        let above = |p: &Vec<f64>| p[8..].iter().sum::<f64>();
        assert!(above(&w) > above(&b) && above(&t) > above(&b));
        assert!((b[..5].iter().sum::<f64>() - t[..5].iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn samplers_have_the_right_means() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 20000;
        let mp: f64 = (0..n).map(|_| poisson(&mut rng, 3.0)).sum::<f64>() / n as f64;
        let mb: f64 = (0..n).map(|_| binomial(&mut rng, 300.0, 0.01)).sum::<f64>() / n as f64;
        let mg: f64 = (0..n).map(|_| gamma_mult(&mut rng, 0.5)).sum::<f64>() / n as f64;
        assert!((mp - 3.0).abs() < 0.05, "{mp}");
        assert!((mb - 3.0).abs() < 0.05, "{mb}");
        assert!((mg - 1.0).abs() < 0.02, "{mg}");
    }

    #[test]
    fn threshold_judge_counts_failed_checks() {
        let mut t = ThresholdJudge::default();
        let bad = Minute {
            canary_requests: 100.0,
            canary_errors: 5.0,
            ..Default::default()
        };
        for _ in 0..4 {
            assert!(!t.check(&bad));
        }
        assert!(t.check(&bad));
    }
}
