//! Latency quantiles: for each configured quantile `q`, the rate-ratio test of
//! [`super::count`] on the counts of requests slower than a histogram bound near the
//! baseline's `q`-quantile. The bound is chosen once, from baseline data of at least
//! `max(50, 1.5/(1-q))` requests (usually several windows), and frozen; the windows that chose
//! it are not reused as evidence. Beside the verdict: descriptive quantile estimates of both
//! arms and a fixed-horizon order-statistic interval for their difference (for people, never
//! for decisions).
//!
//! Two bounds per quantile, because histogram buckets are coarse (Prometheus' defaults jump
//! from 0.25 s to 0.5 s to 1 s):
//! - the **pass bound** carries at least half of the baseline's `1-q` above it, so a healthy
//!   canary's rate above it can be shown within the pass tolerance in reasonable time; the
//!   metric passes and fails there;
//! - the **watch bound**, the next bound up, only fails. A slower tail barely moves the rate
//!   above a low bound (a p99 +50% tail over a 0.3 s p99 raises it above 0.25 s about 1.25-fold,
//!   inside a 1.5 pass tolerance) but raises it above the next one many-fold.
//!
//! The two tests split the metric's rollback alpha evenly (a union bound: a canary no worse than
//! tolerated fails either with probability at most half of it each); the pass needs only the
//! pass bound, so the promotion alpha is unchanged.

use super::count::{CountMetric, Watch};
use super::policy::{quantile_name, JudgePolicy, LatencyPolicy};
use super::state::QuantileState;
use super::verdict::{fmt_num, opt_finite, MetricJudgement, QuantileDetail};
use super::window::beyond_ceiling;
use crate::analysis::stats::counts::{RatioTestConfig, RatioTestState};
use crate::analysis::stats::latency::{choose_boundary, Histogram};
use crate::analysis::stats::sequential::Grid;

/// Add one window's histograms to every quantile's test, carrying over the states that match
/// the policy. One freshness result per configured quantile, in the policy's order.
pub(super) fn add_latency_window(
    old: &[QuantileState],
    policy: &JudgePolicy,
    hists: Result<(&Histogram, &Histogram), &str>,
) -> (Vec<QuantileState>, Vec<Result<(), String>>) {
    let mut states = Vec::new();
    let mut fresh = Vec::new();
    for lp in &policy.latency {
        let cfg = policy.ratio_config(lp.tolerance, lp.pass_tolerance);
        let grid = cfg.grid();
        let mut qs = old
            .iter()
            .find(|q| q.quantile == lp.quantile && q.test.matches(&cfg))
            .cloned()
            .unwrap_or_else(|| QuantileState {
                quantile: lp.quantile,
                test: RatioTestState::new(&cfg),
                ..Default::default()
            });
        fresh.push(match hists {
            Err(e) => Err(e.to_string()),
            Ok((c, b)) => beyond_ceiling(&[c.total(), b.total()])
                .and_then(|()| quantile_window(&mut qs, (&cfg, &grid), c, b)),
        });
        states.push(qs);
    }
    (states, fresh)
}

/// Add one window to a quantile's test: accumulate the descriptive histograms, choose the bound
/// when the baseline has enough requests, else count both arms' requests above it.
fn quantile_window(
    qs: &mut QuantileState,
    (cfg, grid): (&RatioTestConfig, &Grid),
    c: &Histogram,
    b: &Histogram,
) -> Result<(), String> {
    // accumulate both arms' histograms for the descriptive quantiles
    for (acc, h) in [(&mut qs.canary_hist, c), (&mut qs.baseline_hist, b)] {
        match acc {
            Some(a) if a.bounds == h.bounds => {
                let _ = a.add(h);
            }
            _ => *acc = Some(h.clone()),
        }
    }
    let boundary_idx = match qs.boundary {
        Some(bound) => match b.bounds.iter().position(|x| *x == bound) {
            Some(i) => i,
            None => return Err(format!("histogram no longer has the bound {bound}")),
        },
        None => {
            let pend = match qs.pending_baseline.take() {
                Some(mut p) if p.bounds == b.bounds => {
                    let _ = p.add(b);
                    p
                }
                _ => b.clone(),
            };
            let need = (1.5 / (1.0 - qs.quantile)).max(50.0);
            if pend.total() < need {
                let have = pend.total();
                qs.pending_baseline = Some(pend);
                return Err(format!(
                    "choosing the bound: {} of {} baseline requests",
                    fmt_num(have),
                    fmt_num(need)
                ));
            }
            match choose_boundary(&pend, qs.quantile) {
                Some(i) => {
                    qs.boundary = Some(pend.bounds[i]);
                    qs.watch_boundary = pend.bounds.get(i + 1).copied().filter(|b| b.is_finite());
                    // the windows that chose the bound are not reused for the test
                    return Err(format!("bound chosen at {}", fmt_num(pend.bounds[i])));
                }
                None => {
                    qs.pending_baseline = Some(pend);
                    return Err("no histogram bound near the baseline quantile".into());
                }
            }
        }
    };
    let ce = c.exceedances(boundary_idx);
    let be = b.exceedances(boundary_idx);
    if !qs
        .test
        .add_window(grid, cfg.keep, ce, be, c.total(), b.total())
    {
        return Err("an arm had no requests in its histogram".into());
    }
    // the watch bound sees the same windows (a histogram without it adds nothing to it)
    if let Some(i) = qs
        .watch_boundary
        .and_then(|w| b.bounds.iter().position(|x| *x == w))
    {
        let watch = qs.watch.get_or_insert_with(|| RatioTestState::new(cfg));
        watch.add_window(
            grid,
            cfg.keep,
            c.exceedances(i),
            b.exceedances(i),
            c.total(),
            b.total(),
        );
    }
    Ok(())
}

/// The quantile metric's verdict with its descriptive figures.
pub(super) fn judge_quantile(
    qs: &mut QuantileState,
    lp: &LatencyPolicy,
    policy: &JudgePolicy,
    fresh: Result<(), String>,
) -> MetricJudgement {
    let what = match qs.boundary {
        Some(b) => format!("requests slower than {}s", fmt_num(b)),
        None => "requests above the bound (not chosen yet)".into(),
    };
    let metric = CountMetric {
        metric: quantile_name(lp.quantile),
        test: "sequential conditional-Poisson mixture SPRT on counts above a histogram bound near the baseline quantile (rate ratio)",
        critical: lp.critical,
        tolerance: lp.tolerance,
        pass_tolerance: lp.pass_tolerance,
        pass_margin: None,
        pass_rate: None,
        max_rate: None,
        fail_fast: false,
        weight: lp.weight,
        what,
        watch: qs
            .watch
            .as_ref()
            .zip(qs.watch_boundary)
            .map(|(test, bound)| Watch { test, bound }),
    };
    let mut judged = metric.judge(policy, &qs.test, &mut qs.decided, fresh);
    judged.detail = Some(detail(qs, lp.quantile));
    judged
}

/// Descriptive quantiles of both arms and a 95% interval on their difference.
fn detail(qs: &QuantileState, q: f64) -> QuantileDetail {
    let cq = qs.canary_hist.as_ref().and_then(|h| h.quantile(q));
    let bq = qs.baseline_hist.as_ref().and_then(|h| h.quantile(q));
    // Bonferroni over the two arms for a 95% statement on the difference
    let cb = qs
        .canary_hist
        .as_ref()
        .and_then(|h| h.quantile_bounds(q, 0.025));
    let bb = qs
        .baseline_hist
        .as_ref()
        .and_then(|h| h.quantile_bounds(q, 0.025));
    let (dl, du) = match (cb, bb) {
        (Some((cl, cu)), Some((bl, bu))) => (opt_finite(cl - bu), opt_finite(cu - bl)),
        _ => (None, None),
    };
    QuantileDetail {
        quantile: q,
        boundary: qs.boundary,
        canary_quantile: cq,
        baseline_quantile: bq,
        difference_lower: dl,
        difference_upper: du,
    }
}
