//! Property tests with fixed seeds.

use rand::SeedableRng;
use tollgate::analysis::sim::{binomial, poisson};
use tollgate::analysis::stats::counts::{RatioTestConfig, RatioTestState};

fn cfg(fail: f64, dispersion: Option<(f64, f64, f64)>) -> RatioTestConfig {
    RatioTestConfig {
        fail_ratio: fail,
        pass_ratio: 1.5_f64.max(fail),
        mixture_scale: 1.0,
        dispersion,
        keep: 1.0,
    }
}

/// Simulate `streams` A/A error streams (rate ratio exactly `theta`), return the mean e-value
/// after each window, its standard error, and the fraction that ever reached `1/alpha`.
fn aa_streams(
    theta: f64,
    c: &RatioTestConfig,
    streams: usize,
    windows: usize,
    alpha: f64,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, f64) {
    let grid = c.grid();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sum = vec![0.0; windows];
    let mut sum2 = vec![0.0; windows];
    let mut crossed = 0usize;
    for _ in 0..streams {
        let mut st = RatioTestState::new(c);
        let mut hit = false;
        for t in 0..windows {
            let rc = poisson(&mut rng, 300.0);
            let rb = poisson(&mut rng, 300.0);
            let ce = binomial(&mut rng, rc, 0.01 * theta);
            let be = binomial(&mut rng, rb, 0.01);
            st.add_window(&grid, c.keep, ce, be, rc, rb);
            let e = st.summary(c, &grid, 0.05, 0.05).e_value_fail;
            sum[t] += e;
            sum2[t] += e * e;
            hit |= e >= 1.0 / alpha;
        }
        crossed += usize::from(hit);
    }
    let n = streams as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let se: Vec<f64> = sum2
        .iter()
        .zip(&mean)
        .map(|(s2, m)| ((s2 / n - m * m).max(0.0) / n).sqrt())
        .collect();
    (mean, se, crossed as f64 / n)
}

#[test]
fn aa_e_value_is_a_supermartingale_at_the_null_boundary() {
    // theta == fail ratio: the mixture is a martingale with mean 1 at every look.
    let c = cfg(1.0, None);
    let (mean, se, crossed) = aa_streams(1.0, &c, 3000, 16, 0.05, 11);
    for (t, (m, s)) in mean.iter().zip(&se).enumerate() {
        assert!(
            *m <= 1.0 + 4.0 * s + 0.02,
            "window {t}: mean e-value {m} (se {s})"
        );
    }
    // Ville: P(ever >= 20) <= 0.05, with Monte Carlo slack
    assert!(
        crossed <= 0.05 + 3.0 * (0.05f64 * 0.95 / 3000.0).sqrt(),
        "crossed {crossed}"
    );
}

#[test]
fn aa_e_value_decays_inside_the_null_and_tempering_keeps_it_valid() {
    // theta = 1 with tolerance 1.2: strictly inside the null, the mean e-value decreases.
    let c = cfg(1.2, None);
    let (mean, _, crossed) = aa_streams(1.0, &c, 2000, 16, 0.05, 12);
    assert!(mean[15] < mean[3] && mean[15] < 0.8, "{mean:?}");
    assert!(crossed < 0.02);
    // tempering for dispersion only shrinks the evidence on Poisson data
    let ct = cfg(1.0, Some((4.0, 0.05, 1.5)));
    let (mean_t, se_t, crossed_t) = aa_streams(1.0, &ct, 2000, 16, 0.05, 13);
    for (m, s) in mean_t.iter().zip(&se_t) {
        assert!(*m <= 1.0 + 4.0 * s + 0.02, "{mean_t:?}");
    }
    assert!(crossed_t <= 0.05);
}

#[test]
fn more_canary_errors_never_lower_the_evidence() {
    let c = cfg(1.0, None);
    let grid = c.grid();
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for _ in 0..200 {
        let mut a = RatioTestState::new(&c);
        let mut b = RatioTestState::new(&c);
        let windows = 1 + (poisson(&mut rng, 4.0) as usize);
        for _ in 0..windows {
            let rc = 1.0 + poisson(&mut rng, 200.0);
            let rb = 1.0 + poisson(&mut rng, 200.0);
            let ce = binomial(&mut rng, rc, 0.02).min(rc - 1.0);
            let be = binomial(&mut rng, rb, 0.02);
            a.add_window(&grid, c.keep, ce, be, rc, rb);
            b.add_window(&grid, c.keep, ce + 1.0, be, rc, rb);
        }
        let sa = a.summary(&c, &grid, 0.05, 0.05);
        let sb = b.summary(&c, &grid, 0.05, 0.05);
        assert!(
            sb.e_value_fail >= sa.e_value_fail * (1.0 - 1e-12),
            "{sa:?} {sb:?}"
        );
        assert!(sb.e_value_pass <= sa.e_value_pass * (1.0 + 1e-12));
        // fewer baseline errors is the same direction
        let mut d = RatioTestState::new(&c);
        let mut e = RatioTestState::new(&c);
        for _ in 0..windows {
            let rc = 1.0 + poisson(&mut rng, 200.0);
            let rb = 1.0 + poisson(&mut rng, 200.0);
            let ce = binomial(&mut rng, rc, 0.02);
            let be = 1.0 + binomial(&mut rng, rb - 1.0, 0.02);
            d.add_window(&grid, c.keep, ce, be, rc, rb);
            e.add_window(&grid, c.keep, ce, be - 1.0, rc, rb);
        }
        assert!(
            e.summary(&c, &grid, 0.05, 0.05).e_value_fail
                >= d.summary(&c, &grid, 0.05, 0.05).e_value_fail * (1.0 - 1e-12)
        );
    }
}
