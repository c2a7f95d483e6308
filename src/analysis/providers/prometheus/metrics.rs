//! The team's own metrics (`spec.analysis.metrics`): their templates checked before any traffic
//! moves, and read per arm at a look.
//!
//! **Checked** ([`compile`]): each template's placeholders are parsed ([`Template::parse`]: an
//! unknown `{{name}}` is an error), the template is rendered with sample values (namespace
//! `default`, rollout `sample`, track `canary`, a 30 s window, the default arm labels) and the
//! result parsed by the `promql-parser` crate, which must find an instant vector or a scalar
//! (a range vector or a string cannot be counted). A problem names the metric, the field and
//! the parse error. Pure; the operator runs it before the canary starts (a problem is
//! `InvalidSpec`) and `tollgate lint` runs it offline.
//!
//! **Read** ([`PrometheusProvider::metric_windows`]): instant queries at the window's end, one
//! per template and arm. A counter query must return exactly one series; a histogram query
//! exactly one series per `le`. Anything else (none, several, an `le` that is not a number,
//! a negative or non-finite count) is a problem of that metric at that look: the look has no
//! data (inconclusive) and status says which metric, arm and query, and why. Failures of the
//! backend itself stay [`ProviderError`]s.

use std::collections::BTreeMap;

use super::http::Eval;
use super::promql::{Template, Values};
use super::response::{parse_value, Answer};
use super::windows::ordered_key;
use super::{ArmLabels, PrometheusProvider};
use crate::analysis::providers::{AnalysisTarget, ProviderError, Window};
use crate::crd::MetricSpec;

/// A metric's parsed templates.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricQueries {
    /// Failures and all events of one arm.
    CounterPair { errors: Template, total: Template },
    /// One arm's bucket increments, one series per `le`.
    Histogram { query: Template },
}

/// A named metric ready to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub name: String,
    pub queries: MetricQueries,
}

/// What one arm's queries of a metric returned over one window.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// Failures and all events (failures clamped to at most the events: the two are
    /// extrapolated separately by `increase()`).
    Counts { errors: f64, total: f64 },
    /// Cumulative histogram `(le, count)`, sorted by `le`, non-decreasing.
    Buckets(Vec<(f64, f64)>),
}

/// Both arms of one metric over one window, or why this look has no data for it.
pub type MetricReading = Result<(MetricValue, MetricValue), String>;

/// The sample values templates are rendered with to be parsed.
fn sample_render(t: &Template) -> String {
    let labels = ArmLabels::default();
    let selector = format!(
        "{}=\"default\",{}=\"sample\",{}=\"canary\"",
        labels.namespace, labels.rollout, labels.track
    );
    t.render(&Values {
        namespace: "default",
        rollout: "sample",
        track: "canary",
        window_millis: 30_000,
        selector: &selector,
    })
}

/// Parse one template and the PromQL it renders to; `field` names it in the error.
fn check_template(field: &str, source: &str) -> Result<Template, String> {
    let t = Template::parse(source).map_err(|e| match e {
        ProviderError::Config(m) => format!("{field}: {m}"),
        other => format!("{field}: {other}"),
    })?;
    let rendered = sample_render(&t);
    let expr = promql_parser::parser::parse(&rendered)
        .map_err(|e| format!("{field}: not valid PromQL ({}): {rendered}", e.trim()))?;
    use promql_parser::parser::value::ValueType;
    match expr.value_type() {
        ValueType::Vector | ValueType::Scalar => Ok(t),
        other => Err(format!(
            "{field}: returns a {other}, not an instant vector: {rendered}"
        )),
    }
}

/// The metrics' templates, parsed and checked; the first problem names the metric
/// (`spec.analysis.metrics[0] (payments).counterPair.errors: ...`).
pub fn compile(metrics: &[MetricSpec]) -> Result<Vec<MetricQuery>, String> {
    metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = |f: &str| format!("spec.analysis.metrics[{i}] ({}).{f}", m.name);
            let queries = match (&m.counter_pair, &m.histogram) {
                (Some(c), None) => MetricQueries::CounterPair {
                    errors: check_template(&at("counterPair.errors"), &c.errors)?,
                    total: check_template(&at("counterPair.total"), &c.total)?,
                },
                (None, Some(h)) => MetricQueries::Histogram {
                    query: check_template(&at("histogram.query"), &h.query)?,
                },
                _ => {
                    return Err(format!(
                    "spec.analysis.metrics[{i}] ({}): set exactly one of counterPair or histogram",
                    m.name
                ))
                }
            };
            Ok(MetricQuery {
                name: m.name.clone(),
                queries,
            })
        })
        .collect()
}

/// One count from a counter query's answer: exactly one series with one finite, non-negative
/// value.
pub fn one_count(what: &str, answer: &Answer) -> Result<f64, String> {
    match answer.series.as_slice() {
        [] => Err(format!("{what}: the query returned no series (want exactly one)")),
        [one] => match one.points.as_slice() {
            [(_, v)] if v.is_finite() && *v >= 0.0 => Ok(*v),
            [(_, v)] => Err(format!("{what}: the query returned {v}, not a count")),
            points => Err(format!(
                "{what}: the series has {} points (want one: an instant query)",
                points.len()
            )),
        },
        several => Err(format!(
            "{what}: the query returned {} series (want exactly one per arm: aggregate with sum(...))",
            several.len()
        )),
    }
}

/// A cumulative histogram from a histogram query's answer: one series per `le`, each with one
/// finite, non-negative value; made non-decreasing in `le`.
pub fn buckets(what: &str, answer: &Answer) -> Result<Vec<(f64, f64)>, String> {
    if answer.series.is_empty() {
        return Err(format!(
            "{what}: the query returned no series (want one per `le` bucket)"
        ));
    }
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in &answer.series {
        let le_raw = s
            .labels
            .get("le")
            .ok_or_else(|| format!("{what}: a series without an `le` label"))?;
        let le = parse_value(le_raw)
            .filter(|x| !x.is_nan())
            .ok_or_else(|| format!("{what}: le={le_raw:?} is not a number"))?;
        let v = match s.points.as_slice() {
            [(_, v)] if v.is_finite() && *v >= 0.0 => *v,
            _ => return Err(format!("{what}: bucket le={le_raw} is not one count")),
        };
        if by_le.insert(ordered_key(le), (le, v)).is_some() {
            return Err(format!(
                "{what}: several series for le={le_raw} (want one per bucket: aggregate with sum by (le) (...))"
            ));
        }
    }
    let mut running = 0.0f64;
    Ok(by_le
        .into_values()
        .map(|(le, v)| {
            running = running.max(v);
            (le, running)
        })
        .collect())
}

impl PrometheusProvider {
    /// Render `t` for one arm of `target` over windows of `window_millis`.
    fn render_for(&self, t: &Template, target: &AnalysisTarget, track: &str, ms: i64) -> String {
        let selector = self.selector(target, track);
        t.render(&Values {
            namespace: &target.namespace,
            rollout: &target.rollout,
            track,
            window_millis: ms,
            selector: &selector,
        })
    }

    /// The PromQL each arm runs for `metric` (for logs, docs and tests).
    pub fn metric_promql(
        &self,
        metric: &MetricQuery,
        target: &AnalysisTarget,
        track: &str,
        window_millis: i64,
    ) -> Vec<String> {
        match &metric.queries {
            MetricQueries::CounterPair { errors, total } => vec![
                self.render_for(errors, target, track, window_millis),
                self.render_for(total, target, track, window_millis),
            ],
            MetricQueries::Histogram { query } => {
                vec![self.render_for(query, target, track, window_millis)]
            }
        }
    }

    async fn metric_arm(
        &self,
        metric: &MetricQuery,
        target: &AnalysisTarget,
        track: &str,
        arm: &str,
        window: Window,
    ) -> Result<Result<MetricValue, String>, ProviderError> {
        let at = Eval::Instant(window.end());
        let exprs = self.metric_promql(metric, target, track, window.millis());
        let name = &metric.name;
        Ok(match &metric.queries {
            MetricQueries::CounterPair { .. } => {
                let (e, t) = tokio::try_join!(self.run(&exprs[0], at), self.run(&exprs[1], at))?;
                (|| {
                    let errors = one_count(&format!("{name}: {arm} errors"), &e)?;
                    let total = one_count(&format!("{name}: {arm} total"), &t)?;
                    Ok(MetricValue::Counts {
                        errors: errors.min(total),
                        total,
                    })
                })()
            }
            MetricQueries::Histogram { .. } => {
                let h = self.run(&exprs[0], at).await?;
                buckets(&format!("{name}: {arm} histogram"), &h).map(MetricValue::Buckets)
            }
        })
    }

    /// Both arms of every metric over `window`: per metric its values, or why this look has
    /// none. Failures of the backend (unreachable, refused, malformed) are errors.
    pub async fn metric_windows(
        &self,
        target: &AnalysisTarget,
        window: Window,
        metrics: &[MetricQuery],
    ) -> Result<Vec<(String, MetricReading)>, ProviderError> {
        let mut out = Vec::with_capacity(metrics.len());
        for m in metrics {
            let (c, b) = tokio::try_join!(
                self.metric_arm(m, target, &target.canary_track, "canary", window),
                self.metric_arm(m, target, &target.baseline_track, "baseline", window),
            )?;
            out.push((m.name.clone(), c.and_then(|c| b.map(|b| (c, b)))));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::providers::prometheus::response::Series;

    fn spec(v: serde_json::Value) -> Vec<MetricSpec> {
        serde_json::from_value(v).expect("metric specs")
    }

    fn pair(errors: &str, total: &str) -> Vec<MetricSpec> {
        spec(
            serde_json::json!([{"name": "payments", "counterPair": {"errors": errors, "total": total}}]),
        )
    }

    #[test]
    fn good_templates_compile_and_render_per_arm() {
        let m = compile(&pair(
            "sum(increase(payments_failures_total{ {{selector}} }[{{window}}]))",
            "sum(increase(payments_attempts_total{namespace=\"{{namespace}}\",rollout=\"{{rollout}}\",track=\"{{track}}\"}[{{window}}]))",
        ))
        .expect("compiles");
        let provider = PrometheusProvider::new(Default::default(), None).expect("provider");
        let target = AnalysisTarget::new("shop", "checkout");
        let q = provider.metric_promql(&m[0], &target, "canary", 60_000);
        assert_eq!(
            q,
            vec![
                "sum(increase(payments_failures_total{ namespace=\"shop\",rollout=\"checkout\",track=\"canary\" }[60s]))",
                "sum(increase(payments_attempts_total{namespace=\"shop\",rollout=\"checkout\",track=\"canary\"}[60s]))",
            ]
        );
        let h = compile(&spec(
            serde_json::json!([{"name": "checkout-latency", "histogram": {
            "query": "sum by (le) (increase(checkout_seconds_bucket{ {{selector}} }[{{window}}]))",
            "quantiles": [{"quantile": 0.9}]}}]),
        ))
        .expect("compiles");
        assert!(matches!(h[0].queries, MetricQueries::Histogram { .. }));
        // a scalar is one number too
        assert!(compile(&pair("scalar(vector(1))", "vector(2)")).is_ok());
    }

    #[test]
    fn bad_templates_name_the_metric_the_field_and_the_problem() {
        let rows = [
            (
                pair("sum(x{ {{selector}} }[{{windw}}])", "sum(y)"),
                "spec.analysis.metrics[0] (payments).counterPair.errors: query template uses unknown placeholder {{windw}}",
            ),
            (
                pair(
                    "sum(increase(x{ {{selector}} }[{{window}}]))",
                    "sum(rate(y[5m])",
                ),
                "spec.analysis.metrics[0] (payments).counterPair.total: not valid PromQL",
            ),
            (
                pair("x{ {{selector}} }[{{window}}]", "sum(y)"),
                "spec.analysis.metrics[0] (payments).counterPair.errors: returns a matrix, not an instant vector",
            ),
            (
                pair("\"a string\"", "sum(y)"),
                "counterPair.errors: returns a string",
            ),
            (
                pair("   ", "sum(y)"),
                "counterPair.errors: query template is empty",
            ),
            (
                spec(serde_json::json!([{"name": "ok", "counterPair": {"errors": "sum(a)", "total": "sum(b)"}},
                    {"name": "lat", "histogram": {"query": "sum by le (b)", "quantiles": [{"quantile": 0.9}]}}])),
                "spec.analysis.metrics[1] (lat).histogram.query: not valid PromQL",
            ),
        ];
        for (metrics, want) in rows {
            let e = compile(&metrics).expect_err(want);
            assert!(e.contains(want), "{e}\nwant: {want}");
        }
    }

    /// One series of a test answer: its labels and its points' values.
    type Row<'a> = (Vec<(&'a str, &'a str)>, Vec<f64>);

    fn answer(series: Vec<Row<'_>>) -> Answer {
        Answer {
            result_type: "vector".into(),
            series: series
                .into_iter()
                .map(|(labels, values)| Series {
                    labels: labels
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    points: values.into_iter().map(|v| (1.0, v)).collect(),
                })
                .collect(),
            warnings: vec![],
        }
    }

    #[test]
    fn a_counter_query_must_return_exactly_one_series() {
        assert_eq!(one_count("x", &answer(vec![(vec![], vec![7.0])])), Ok(7.0));
        let none = one_count("payments: canary errors", &answer(vec![])).unwrap_err();
        assert!(
            none.contains("payments: canary errors: the query returned no series"),
            "{none}"
        );
        let two = one_count(
            "x",
            &answer(vec![
                (vec![("pod", "a")], vec![1.0]),
                (vec![("pod", "b")], vec![2.0]),
            ]),
        )
        .unwrap_err();
        assert!(two.contains("returned 2 series"), "{two}");
        assert!(one_count("x", &answer(vec![(vec![], vec![f64::NAN])])).is_err());
        assert!(one_count("x", &answer(vec![(vec![], vec![-1.0])])).is_err());
    }

    #[test]
    fn a_histogram_query_must_return_one_series_per_le() {
        let h = buckets(
            "x",
            &answer(vec![
                (vec![("le", "+Inf")], vec![10.0]),
                (vec![("le", "0.1")], vec![4.0]),
                (vec![("le", "0.5")], vec![3.0]),
            ]),
        )
        .expect("buckets");
        // sorted by le, made non-decreasing
        assert_eq!(h, vec![(0.1, 4.0), (0.5, 4.0), (f64::INFINITY, 10.0)]);
        let dup = buckets(
            "x",
            &answer(vec![
                (vec![("le", "0.1")], vec![1.0]),
                (vec![("le", "0.1")], vec![2.0]),
            ]),
        )
        .unwrap_err();
        assert!(dup.contains("several series for le=0.1"), "{dup}");
        assert!(buckets("x", &answer(vec![]))
            .unwrap_err()
            .contains("no series"));
        assert!(buckets("x", &answer(vec![(vec![("pod", "a")], vec![1.0])]))
            .unwrap_err()
            .contains("without an `le`"));
    }
}
