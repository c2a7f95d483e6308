//! Template metrics (`spec.analysis.metrics`): the team's own counter pairs and histograms,
//! judged by the very tests of the built-in metrics. A counter pair is the error-rate test on
//! its failures and events ([`super::count`], with its pass rules and fail-fast rule); a
//! histogram is the quantile test on its buckets ([`super::quantile`]). Each metric keeps its
//! own [`JudgeState`] (in the parent's `metrics`, by name), and its share of alpha is its
//! weight over the whole policy's, so the family-wise bound covers built-in and template
//! metrics together.

use super::policy::{JudgePolicy, TemplateMetricPolicy};
use super::state::{error_rate_state, JudgeState};
use super::verdict::MetricJudgement;
use super::window::{valid_hist, JudgeWindow};
use super::{count, quantile};

/// Add one look of `tm` (`None`: no data for it) to its state; one freshness result per test
/// the metric has (its counter, or each quantile).
pub(super) fn add_window(
    sub: &mut JudgeState,
    policy: &JudgePolicy,
    tm: &TemplateMetricPolicy,
    window: Option<&JudgeWindow>,
    notes: &mut Vec<String>,
) -> Vec<Result<(), String>> {
    sub.looks += 1;
    if let Some(ep) = &tm.counter {
        let fresh = match window {
            None => {
                // the test exists from the first look, so the metric reports while it waits
                let cfg = policy.ratio_config(ep.tolerance, ep.pass_tolerance);
                error_rate_state(sub, &cfg);
                Err(format!("{}: no data in this look", tm.name))
            }
            Some(w) => {
                let mut mine = Vec::new();
                let r = count::add_error_window(sub, policy, ep, w, &mut mine);
                notes.extend(
                    mine.into_iter()
                        .map(|n| n.replacen("errorRate", &tm.name, 1)),
                );
                r
            }
        };
        return vec![fresh];
    }
    let hists = match window {
        None => Err("no data in this look"),
        Some(w) => match (
            valid_hist(&w.canary.latency),
            valid_hist(&w.baseline.latency),
        ) {
            (Some(c), Some(b)) if c.bounds == b.bounds => Ok((c, b)),
            (Some(_), Some(_)) => Err("canary and baseline histograms have different buckets"),
            _ => Err("histogram missing or invalid"),
        },
    };
    // the quantile states are built from the policy's `latency`: here the metric's quantiles
    let own = JudgePolicy {
        latency: tm.quantiles.clone(),
        ..policy.clone()
    };
    let old = std::mem::take(&mut sub.latency);
    let (states, fresh) = quantile::add_latency_window(&old, &own, hists);
    sub.latency = states;
    fresh
}

/// The verdicts of `tm` from its state; `fresh` as [`add_window`] returned it (all `Ok` when
/// only showing the standing).
pub(super) fn judge(
    sub: &mut JudgeState,
    policy: &JudgePolicy,
    tm: &TemplateMetricPolicy,
    fresh: Vec<Result<(), String>>,
) -> Vec<MetricJudgement> {
    let mut fresh = fresh.into_iter();
    if let Some(ep) = &tm.counter {
        let f = fresh.next().unwrap_or(Ok(()));
        return count::judge_counter(sub, policy, ep, &tm.name, f)
            .into_iter()
            .map(|mut m| {
                m.test = format!("{} on {}'s counter pair", m.test, tm.name);
                m
            })
            .collect();
    }
    let mut out = Vec::new();
    for (i, lp) in tm.quantiles.iter().enumerate() {
        let f = fresh.next().unwrap_or(Ok(()));
        if let Some(qs) = sub.latency.get_mut(i) {
            let mut m = quantile::judge_quantile(qs, lp, policy, f);
            m.metric = tm.quantile_metric(lp.quantile);
            out.push(m);
        }
    }
    out
}
