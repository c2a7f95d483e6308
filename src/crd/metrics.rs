//! `spec.analysis.metrics`: the metrics a team actually has, given as PromQL templates beside
//! (or instead of) the built-in `errorRate` and `latency`, which keep their fixed shape.
//!
//! A metric is a **counter pair** (an `errors` and a `total` query, judged by the same
//! sequential rate-ratio test as `errorRate`, with the same tolerance fields) or a
//! **histogram** (a `histogram` query returning one series per `le` bucket, judged by the same
//! quantile test as `latency`). Templates use the placeholders `{{namespace}}`, `{{rollout}}`,
//! `{{track}}`, `{{selector}}` and `{{window}}`; the operator parses them (and the PromQL they
//! render to) before any traffic moves, so a bad one is `InvalidSpec` naming the metric.
//! The types live apart from `spec.rs` so the built-in shapes stay as they were.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::spec::QuantileSpec;

/// One named metric given as PromQL templates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.counterPair) != has(self.histogram)").message("spec.analysis.metrics[]: set exactly one of counterPair or histogram"))]
pub struct MetricSpec {
    /// The metric's name: status, Events and the rollback reason name it; a policy's metric
    /// and a Rollout's of the same name are merged. Not `errorRate`, `latencyDistribution` or
    /// a `latencyP...` name (the built-in metrics').
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z][a-zA-Z0-9_-]*$') && self != 'errorRate' && self != 'latencyDistribution' && !self.startsWith('latencyP')").message("spec.analysis.metrics[].name must start with a letter, hold only letters, digits, '_' and '-', and not be a built-in metric's name (errorRate, latencyDistribution, latencyP...)"))]
    pub name: String,
    /// A failure ratio from two counters: `errors / total`, per arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_pair: Option<CounterPairSpec>,
    /// A latency-like histogram compared at one or more quantiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<HistogramMetricSpec>,
    /// Share of the family-wise `alpha` (weighted Bonferroni): the metric gets
    /// `weight / (sum of all weights)` of it; the built-in `errorRate` weighs 3 and each
    /// latency quantile and the whole-distribution test 1. A histogram's weight is split
    /// evenly between its quantiles. `alphaPass` is not shared: a promotion needs every
    /// metric to pass, so each metric's pass test gets all of it.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 0.1, max = 100.0))]
    pub weight: f64,
    /// A failed critical metric rolls back at once; a failed non-critical metric is reported
    /// and blocks promotion until a person decides.
    #[serde(default = "default_critical")]
    pub critical: bool,
}

fn default_weight() -> f64 {
    1.0
}
fn default_critical() -> bool {
    true
}

/// Two counters whose ratio the canary must not worsen: failures per attempt.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.passTolerance >= self.tolerance").message("spec.analysis.metrics[].counterPair.passTolerance must be at least its tolerance"))]
#[x_kube(validation = Rule::new("self.passMargin >= 0.0 && self.passMargin <= 0.5").message("spec.analysis.metrics[].counterPair.passMargin must be between 0 and 0.5 (errors per event; 0 turns the rule off)"))]
#[x_kube(validation = Rule::new("!has(self.passRate) || (self.passRate > 0.0 && self.passRate < 1.0)").message("spec.analysis.metrics[].counterPair.passRate must be above 0 and below 1 (errors per event)"))]
#[x_kube(validation = Rule::new("!has(self.maxRate) || (self.maxRate > 0.0 && self.maxRate < 1.0)").message("spec.analysis.metrics[].counterPair.maxRate must be above 0 and below 1 (errors per event)"))]
#[x_kube(validation = Rule::new("!has(self.maxRate) || !has(self.passRate) || self.passRate < self.maxRate").message("spec.analysis.metrics[].counterPair.passRate must be below its maxRate"))]
pub struct CounterPairSpec {
    /// PromQL template counting the failures of one arm over the window, returning exactly one
    /// series, e.g. `sum(increase(payments_failures_total{ {{selector}} }[{{window}}]))`. An
    /// empty answer is a look without data: write `... or vector(0)` for a counter that is
    /// born with the first failure.
    #[schemars(length(min = 1, max = 4096))]
    pub errors: String,
    /// PromQL template counting all events of one arm over the window (the denominator),
    /// returning exactly one series.
    #[schemars(length(min = 1, max = 4096))]
    pub total: String,
    /// Tolerated ratio of canary to baseline failure rate (as `errorRate.tolerance`).
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub tolerance: f64,
    /// Promotion needs proof that the ratio is below `passTolerance` (as
    /// `errorRate.passTolerance`); at least `tolerance`.
    #[serde(default = "default_pass_tolerance")]
    #[schemars(range(min = 1.0, max = 100.0))]
    pub pass_tolerance: f64,
    /// Promotion also when the canary's rate is proven at most `passMargin` per event above the
    /// baseline's (as `errorRate.passMargin`); 0 turns the rule off.
    #[serde(default = "default_pass_margin")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub pass_margin: f64,
    /// Promotion also when the canary's own rate is proven below `passRate` (as
    /// `errorRate.passRate`). Unset: no such rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub pass_rate: Option<f64>,
    /// The absolute guard (as `errorRate.maxRate`): the canary fails when its own failure rate
    /// is proven above `maxRate` per event, whatever the baseline's (a business guardrail:
    /// payment failures must stay below 2% of attempts). Unset: no guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_rate: Option<f64>,
}

fn default_tolerance() -> f64 {
    1.0
}
fn default_pass_tolerance() -> f64 {
    1.5
}
fn default_pass_margin() -> f64 {
    0.005
}

/// A histogram given as a query.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.quantiles.all(q, self.quantiles.filter(p, p.quantile == q.quantile).size() == 1)").message("spec.analysis.metrics[].histogram.quantiles must not repeat a quantile"))]
pub struct HistogramMetricSpec {
    /// PromQL template returning one arm's bucket increments over the window, one series per
    /// `le` label, e.g. `sum by (le) (increase(checkout_seconds_bucket{ {{selector}} }[{{window}}]))`.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// Quantiles to compare, each with its tolerance (as `latency.quantiles`).
    #[schemars(length(min = 1, max = 5))]
    pub quantiles: Vec<QuantileSpec>,
}
