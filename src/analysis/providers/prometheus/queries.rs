//! Which PromQL each quantity of an arm runs: the defaults, or the user's template for it.

use super::promql::{self, escape_label_value, quote, Template, Values};
use super::PrometheusProvider;
use crate::analysis::providers::AnalysisTarget;

/// How one quantity is queried.
#[derive(Debug, Clone)]
pub(super) enum Query {
    Default,
    Template(Template),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quantity {
    Requests,
    Errors,
    Buckets,
    Series,
    Samples,
}

impl Quantity {
    pub(super) const ALL: [Quantity; 5] = [
        Quantity::Requests,
        Quantity::Errors,
        Quantity::Buckets,
        Quantity::Series,
        Quantity::Samples,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Quantity::Requests => "requests",
            Quantity::Errors => "errors",
            Quantity::Buckets => "latency buckets",
            Quantity::Series => "series count",
            Quantity::Samples => "samples count",
        }
    }
}

impl PrometheusProvider {
    /// The label matchers of one arm, escaped: `namespace="…",rollout="…",track="…"`.
    pub fn selector(&self, target: &AnalysisTarget, track: &str) -> String {
        let l = &self.config.labels;
        format!(
            "{}={},{}={},{}={}",
            l.namespace,
            quote(&target.namespace),
            l.rollout,
            quote(&target.rollout),
            l.track,
            quote(track)
        )
    }

    /// The PromQL for one quantity of one arm over windows of `window_millis`.
    pub(super) fn promql(
        &self,
        q: Quantity,
        target: &AnalysisTarget,
        track: &str,
        window_millis: i64,
    ) -> String {
        let sel = self.selector(target, track);
        let w = promql::duration(window_millis);
        let c = &self.config;
        let idx = Quantity::ALL.iter().position(|x| *x == q).unwrap_or(0);
        match &self.queries[idx] {
            Query::Template(t) => t.render(&Values {
                namespace: &target.namespace,
                rollout: &target.rollout,
                track,
                window_millis,
                selector: &sel,
            }),
            Query::Default => {
                let m = &c.requests_metric;
                match q {
                    Quantity::Requests => format!("sum(increase({m}{{{sel}}}[{w}]))"),
                    Quantity::Errors => format!(
                        "sum(increase({m}{{{sel},{}=~\"{}\"}}[{w}]))",
                        c.code_label,
                        escape_label_value(&c.error_codes)
                    ),
                    Quantity::Buckets => {
                        format!(
                            "sum by (le) (increase({}_bucket{{{sel}}}[{w}]))",
                            c.histogram_metric
                        )
                    }
                    Quantity::Series => format!("count(count_over_time({m}{{{sel}}}[{w}]))"),
                    Quantity::Samples => format!("sum(count_over_time({m}{{{sel}}}[{w}]))"),
                }
            }
        }
    }

    /// The five queries of one arm (for logs, docs and tests).
    pub fn arm_queries(
        &self,
        target: &AnalysisTarget,
        track: &str,
        window_millis: i64,
    ) -> Vec<(&'static str, String)> {
        Quantity::ALL
            .iter()
            .map(|q| (q.name(), self.promql(*q, target, track, window_millis)))
            .collect()
    }
}
