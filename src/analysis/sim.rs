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

/// Prometheus' default histogram buckets (seconds), coarser than [`BOUNDS`] in the tail.
pub const PROMETHEUS_DEFAULT_BOUNDS: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
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
    /// Windows `[from, to)` during which both arms' error rate is x `error_shock_mult`
    /// (latency unchanged).
    pub error_shocks: Vec<(u32, u32)>,
    pub error_shock_mult: f64,
    /// Daily cycle in both arms: traffic and error rate x `1 + a sin(2 pi t / 120)` (a cycle
    /// per hour of 30-s windows, so an analysis sees a whole swing).
    pub diurnal: Option<f64>,
    /// The canary's share of all traffic steps up during the analysis (10%, then 25% from
    /// window 10, then 50% from window 20), as a stepped rollout does; total traffic is
    /// `2 rps`.
    pub split_ramp: bool,
    /// The canary's error multiplier (and latency change) applies from this window on: a
    /// regression that starts late.
    pub regress_from: u32,
    /// The canary's error rate, whatever the baseline's (e.g. 1.0: every request fails).
    pub canary_error: Option<f64>,
    /// Histograms with [`PROMETHEUS_DEFAULT_BOUNDS`] instead of [`BOUNDS`].
    pub default_buckets: bool,
    /// Length in windows of the Rollout's steps (`setWeight`/`pause`): a pass promotes only at
    /// a look at or after the steps' end, and until then every look is still judged, so a
    /// failure after a pass rolls back (as the operator does). 0: promote at the first pass.
    /// Traffic is not changed by the steps' weights (see `split_ramp` for that).
    pub steps_windows: u32,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: String::new(),
            rps: 1.0,
            base_error: 0.01,
            error_mult: 1.0,
            median: 0.1,
            sigma: 0.5,
            latency: LatencyChange::None,
            burst_cv: None,
            shared_shock: None,
            error_shocks: Vec::new(),
            error_shock_mult: 1.0,
            diurnal: None,
            split_ramp: false,
            regress_from: 0,
            canary_error: None,
            default_buckets: false,
            steps_windows: 0,
        }
    }
}

impl Scenario {
    /// True when the canary is as good as the baseline (an A/A scenario).
    pub fn is_null(&self) -> bool {
        self.error_mult == 1.0 && self.latency == LatencyChange::None && self.canary_error.is_none()
    }

    /// The histogram bounds of this scenario.
    pub fn bounds(&self) -> &'static [f64] {
        if self.default_buckets {
            &PROMETHEUS_DEFAULT_BOUNDS
        } else {
            &BOUNDS
        }
    }

    /// The canary's share of all traffic in window `t`.
    pub fn canary_share(&self, t: u32) -> f64 {
        match (self.split_ramp, t) {
            (false, _) => 0.5,
            (true, 0..10) => 0.1,
            (true, 10..20) => 0.25,
            (true, _) => 0.5,
        }
    }
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// Bucket probabilities (same order as [`BOUNDS`]) of a lognormal with the given median and
/// sigma, optionally tail-stretched above the 95th percentile.
pub fn bucket_probs(median: f64, sigma: f64, change: LatencyChange) -> Vec<f64> {
    bucket_probs_on(&BOUNDS, median, sigma, change)
}

/// [`bucket_probs`] on the given bounds (ascending, the last infinite).
pub fn bucket_probs_on(bounds: &[f64], median: f64, sigma: f64, change: LatencyChange) -> Vec<f64> {
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
    bounds
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
    /// Baseline probabilities for the canary before a late regression starts.
    healthy_canary_probs: Vec<f64>,
}

impl Generator {
    pub fn new(s: &Scenario) -> Generator {
        Generator {
            scenario: s.clone(),
            base_probs: bucket_probs_on(s.bounds(), s.median, s.sigma, LatencyChange::None),
            canary_probs: bucket_probs_on(s.bounds(), s.median, s.sigma, s.latency),
            shock_probs: bucket_probs_on(s.bounds(), 2.0 * s.median, s.sigma, LatencyChange::None),
            shock_canary_probs: bucket_probs_on(s.bounds(), 2.0 * s.median, s.sigma, s.latency),
            healthy_canary_probs: bucket_probs_on(
                s.bounds(),
                s.median,
                s.sigma,
                LatencyChange::None,
            ),
        }
    }

    /// Simulate window `t` for both arms.
    pub fn window<R: Rng + ?Sized>(&self, rng: &mut R, t: u32) -> JudgeWindow {
        let s = &self.scenario;
        let shock = s.shared_shock.is_some_and(|(a, b)| t >= a && t < b);
        let err_shock = s.error_shocks.iter().any(|&(a, b)| t >= a && t < b);
        let shock_mult =
            if shock { 10.0 } else { 1.0 } * if err_shock { s.error_shock_mult } else { 1.0 };
        let cycle = s.diurnal.map_or(1.0, |a| {
            1.0 + a * (2.0 * std::f64::consts::PI * f64::from(t) / 120.0).sin()
        });
        let regressed = t >= s.regress_from;
        let share = s.canary_share(t);
        let mut arm = |canary: bool| -> ArmCounts {
            let probs = match (canary, shock) {
                (true, _) if !regressed => &self.healthy_canary_probs,
                (false, false) => &self.base_probs,
                (true, false) => &self.canary_probs,
                (false, true) => &self.shock_probs,
                (true, true) => &self.shock_canary_probs,
            };
            let arm_share = if canary { share } else { 1.0 - share };
            let mean = 2.0 * arm_share * s.rps * WINDOW_SECS * cycle;
            let mut cum = 0.0;
            let cumulative: Vec<f64> = probs
                .iter()
                .map(|p| {
                    cum += poisson(rng, mean * p);
                    cum
                })
                .collect();
            let burst = s.burst_cv.map_or(1.0, |cv| gamma_mult(rng, cv));
            let own = match (canary, regressed, s.canary_error) {
                (true, true, Some(e)) => e,
                (true, true, None) => s.base_error * s.error_mult,
                _ => s.base_error,
            };
            let rate = own * burst * shock_mult * cycle;
            let errors = binomial(rng, cum, rate);
            ArmCounts {
                requests: Some(cum),
                errors: Some(errors),
                latency: Some(Histogram {
                    bounds: s.bounds().to_vec(),
                    cumulative,
                }),
            }
        };
        let baseline = arm(false);
        let canary = arm(true);
        JudgeWindow {
            baseline,
            canary,
            canary_share: Some(share),
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
