//! Anytime-valid bounds on one arm's own event rate per request (errors per request), for the
//! judge's non-inferiority rule: "the canary's error rate is at most the baseline's plus an
//! absolute margin" can be shown with few or no errors, where a rate *ratio* cannot.
//!
//! Events are Poisson with mean `lambda * N` over `N` requests. For a fixed `lambda0`,
//! `(lambda/lambda0)^X exp(-(lambda - lambda0) N)` is a martingale under `lambda0`; mixing it
//! over a Gamma(shape `a`, rate `b`) prior on `lambda` gives, in closed form,
//!
//! `log M(lambda0) = a ln b - lnG(a) + lnG(a + X) - (a + X) ln(b + N) - X ln lambda0 + lambda0 N`,
//!
//! a non-negative martingale under `lambda0` with `M_0 = 1`, so by Ville's inequality
//! `{lambda0 : M_t(lambda0) < 1/alpha}` covers the true rate at every time at once with
//! probability at least `1 - alpha` (Robbins' mixture confidence sequence). `log M` is convex
//! in `lambda0`, so the set is an interval around `X/N`, found by bisection. Overdispersed
//! counts are handled as in the rate-ratio test: `log M` is divided by the dispersion factor
//! `phi >= 1`, which widens the interval.
//!
//! The prior is Gamma(1, 100): an exponential with mean one event per 100 requests. It sets
//! where the sequence is tightest, not its validity; with no events the upper bound after `N`
//! requests is `(phi ln(1/alpha) + ln(1 + N/100)) / N`.

use statrs::function::gamma::ln_gamma;

/// Shape of the Gamma mixing prior.
pub const PRIOR_SHAPE: f64 = 1.0;
/// Rate of the Gamma mixing prior, in requests (prior mean rate `PRIOR_SHAPE / PRIOR_RATE`).
pub const PRIOR_RATE: f64 = 100.0;

/// `log M(lambda0)` of the Gamma-Poisson mixture for `events` in `exposure` requests.
pub fn log_mixture(events: f64, exposure: f64, lambda0: f64) -> f64 {
    log_mixture_with(events, exposure, lambda0, PRIOR_RATE)
}

/// [`log_mixture`] with a Gamma(1, `b`) prior: `b` requests of pseudo-exposure, prior mean rate
/// `1/b`. A small `b` makes the sequence tight at high rates (a broken canary), a large one at
/// low rates.
pub fn log_mixture_with(events: f64, exposure: f64, lambda0: f64, b: f64) -> f64 {
    let a = PRIOR_SHAPE;
    let x_log = if events > 0.0 {
        events * lambda0.ln()
    } else {
        0.0
    };
    a * b.ln() - ln_gamma(a) + ln_gamma(a + events) - (a + events) * (b + exposure).ln() - x_log
        + lambda0 * exposure
}

/// Anytime-valid `(lower, upper)` bounds at level `alpha` on the event rate per request, with
/// the evidence tempered by `phi`. `None` for unusable input (no requests, more events than
/// requests, numbers that are not finite, `alpha` outside (0, 1)).
pub fn rate_bounds(events: f64, exposure: f64, phi: f64, alpha: f64) -> Option<(f64, f64)> {
    rate_bounds_with(events, exposure, phi, alpha, PRIOR_RATE)
}

/// [`rate_bounds`] with the prior of [`log_mixture_with`]; valid for any `b > 0`.
pub fn rate_bounds_with(
    events: f64,
    exposure: f64,
    phi: f64,
    alpha: f64,
    b: f64,
) -> Option<(f64, f64)> {
    let ok = b > 0.0
        && b.is_finite()
        && events.is_finite()
        && exposure.is_finite()
        && events >= 0.0
        && exposure > 0.0
        && events <= exposure
        && phi.is_finite()
        && phi >= 1.0
        && alpha > 0.0
        && alpha < 1.0;
    if !ok {
        return None;
    }
    let cut = phi * (1.0 / alpha).ln();
    let f = |l: f64| log_mixture_with(events, exposure, l, b) - cut;
    let mle = events / exposure;
    // the rate per request is at most 1 (an event per request); the martingale's set may
    // extend past it, which is no information
    let upper = if f(1.0) < 0.0 {
        1.0
    } else {
        bisect(&f, mle, 1.0)
    };
    let lower = if events == 0.0 || f(f64::MIN_POSITIVE) < 0.0 {
        0.0
    } else {
        bisect(&f, mle, f64::MIN_POSITIVE)
    };
    Some((lower, upper))
}

/// The boundary of `{f < 0}` between `inside` (f < 0) and `outside` (f >= 0); the returned
/// point is on the outside, so the interval is never narrower than the exact one.
fn bisect(f: &dyn Fn(f64) -> f64, inside: f64, outside: f64) -> f64 {
    let (mut i, mut o) = (inside, outside);
    for _ in 0..200 {
        let m = 0.5 * (i + o);
        if m == i || m == o {
            break;
        }
        if f(m) < 0.0 {
            i = m;
        } else {
            o = m;
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_events_has_a_closed_form_upper_bound() {
        for n in [100.0, 1500.0, 1e5] {
            let (lo, hi) = rate_bounds(0.0, n, 1.0, 0.01).expect("bounds");
            let want = ((100.0f64).ln() + (1.0 + n / 100.0).ln()) / n;
            assert_eq!(lo, 0.0);
            assert!((hi - want).abs() < 1e-9 * want.max(1e-12), "{hi} vs {want}");
        }
    }

    #[test]
    fn bounds_cover_the_estimate_and_shrink_with_data() {
        let (l1, u1) = rate_bounds(10.0, 1000.0, 1.0, 0.05).expect("bounds");
        let (l2, u2) = rate_bounds(100.0, 10000.0, 1.0, 0.05).expect("bounds");
        assert!(l1 < 0.01 && 0.01 < u1 && l2 < 0.01 && 0.01 < u2);
        assert!(u2 - l2 < u1 - l1);
        // tempering widens
        let (l3, u3) = rate_bounds(100.0, 10000.0, 2.0, 0.05).expect("bounds");
        assert!(l3 < l2 && u3 > u2);
        assert!(rate_bounds(2.0, 1.0, 1.0, 0.05).is_none());
    }

    #[test]
    fn the_sequence_covers_the_true_rate_at_all_looks_in_seeded_runs() {
        // anytime validity: the chance that the bounds ever exclude the true rate, over 60
        // looks, is at most alpha; 500 seeded runs at 0.1% and 1% per request
        use crate::analysis::sim::binomial;
        use rand::SeedableRng;
        let alpha = 0.05;
        for rate in [0.001, 0.01] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(20261203);
            let mut missed = 0;
            for _ in 0..500 {
                let (mut x, mut n) = (0.0, 0.0);
                for _ in 0..60 {
                    x += binomial(&mut rng, 300.0, rate);
                    n += 300.0;
                    let (lo, hi) = rate_bounds(x, n, 1.0, alpha).expect("bounds");
                    if rate < lo || rate > hi {
                        missed += 1;
                        break;
                    }
                }
            }
            // Wilson upper bound of the miss rate below alpha
            let (_, hi) = crate::analysis::stats::fixed::wilson_interval(missed, 500, 1.959964);
            assert!(hi < alpha, "rate {rate}: missed in {missed} of 500 runs");
        }
        assert!(rate_bounds(f64::NAN, 1.0, 1.0, 0.05).is_none());
    }
}
