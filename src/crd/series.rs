//! The look-by-look record of an analysis (`status.analysis.series`): what the judge saw and
//! concluded at each look, kept in status so the evidence can be plotted (`tollgate report
//! -o html`) after the fact, and so a restarted operator continues the same record.
//!
//! Why columns and not one object per look: a look's figures repeated as keyed objects would
//! spend most of the bytes on key names, and status has to stay well under etcd's object limit
//! (a one-hour analysis at 30-s looks with four metrics stays under 64 KiB of whole status; see
//! the size test). Values are kept to four significant digits for the same reason: they are
//! for plotting, the judge's exact state is `judgeState`.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most looks the record keeps; older ones are dropped first (two hours at 30-s looks).
pub const MAX_LOOKS: usize = 240;

/// The look-by-look record: every column has one entry per kept look, oldest first.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSeries {
    /// Number (1-based) of the look of the first entry; looks before it were dropped to keep
    /// at most 240.
    #[serde(default)]
    pub first_look: i32,
    /// End of each look's window, in seconds since the Unix epoch.
    #[serde(default)]
    #[schemars(length(max = 240))]
    pub time: Vec<i64>,
    /// Canary traffic weight (percent) during each look's window.
    #[serde(default)]
    #[schemars(length(max = 240))]
    pub weight: Vec<i32>,
    /// Canary requests in each window (null: no data for that look).
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub canary_requests: Vec<Option<f64>>,
    /// Canary errors in each window.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub canary_errors: Vec<Option<f64>>,
    /// Baseline requests in each window.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub baseline_requests: Vec<Option<f64>>,
    /// Baseline errors in each window.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub baseline_errors: Vec<Option<f64>>,
    /// Per metric, the judge's figures at each look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub metrics: Vec<MetricSeries>,
}

/// One metric's figures at each look (null where the look had no data or the metric no figure).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    /// Metric name, as in `status.analysis.metrics[].name`.
    pub name: String,
    /// The fail e-value's threshold (`1/alpha_m`) at the latest look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_threshold: Option<f64>,
    /// The pass e-value's threshold (`1/alpha_pass_m`) at the latest look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_threshold: Option<f64>,
    /// Point estimate (rate ratio, or tilt for the distribution test).
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub estimate: Vec<Option<f64>>,
    /// Lower anytime-valid bound of the estimate.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub lower: Vec<Option<f64>>,
    /// Upper anytime-valid bound of the estimate.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub upper: Vec<Option<f64>>,
    /// E-value against "no worse than tolerance" (fails at `failThreshold`).
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub e_fail: Vec<Option<f64>>,
    /// E-value against "worse than the pass tolerance" (passes at `passThreshold`).
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub e_pass: Vec<Option<f64>>,
    /// The canary's latency quantile (seconds), for latency-quantile metrics.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub canary_quantile: Vec<Option<f64>>,
    /// The baseline's latency quantile (seconds), for latency-quantile metrics.
    #[serde(default, skip_serializing_if = "all_none")]
    #[schemars(length(max = 240))]
    pub baseline_quantile: Vec<Option<f64>>,
}

/// What one look adds to the record, besides its time and weight (which decide knows).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SeriesPoint {
    pub canary_requests: Option<f64>,
    pub canary_errors: Option<f64>,
    pub baseline_requests: Option<f64>,
    pub baseline_errors: Option<f64>,
    pub metrics: Vec<MetricPoint>,
}

/// One metric's figures at one look.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MetricPoint {
    pub name: String,
    pub estimate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub e_fail: Option<f64>,
    pub e_pass: Option<f64>,
    pub fail_threshold: Option<f64>,
    pub pass_threshold: Option<f64>,
    pub canary_quantile: Option<f64>,
    pub baseline_quantile: Option<f64>,
}

fn all_none(v: &[Option<f64>]) -> bool {
    v.iter().all(Option::is_none)
}

/// `x` to four significant digits; `None` for what JSON cannot hold (NaN, infinities).
pub fn compact(x: Option<f64>) -> Option<f64> {
    let x = x.filter(|x| x.is_finite())?;
    format!("{x:.3e}").parse().ok()
}

/// A column brought to `n` entries: a column left out of JSON because it was all null comes
/// back empty, and a hand-edited one may be any length.
fn fit(column: &mut Vec<Option<f64>>, n: usize) {
    column.resize(n, None);
}

fn drop_front<T>(column: &mut Vec<T>, k: usize) {
    column.drain(..k.min(column.len()));
}

impl MetricSeries {
    fn columns(&mut self) -> [&mut Vec<Option<f64>>; 7] {
        [
            &mut self.estimate,
            &mut self.lower,
            &mut self.upper,
            &mut self.e_fail,
            &mut self.e_pass,
            &mut self.canary_quantile,
            &mut self.baseline_quantile,
        ]
    }
}

impl AnalysisSeries {
    /// Looks in the record.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// True before the first look.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    fn arm_columns(&mut self) -> [&mut Vec<Option<f64>>; 4] {
        [
            &mut self.canary_requests,
            &mut self.canary_errors,
            &mut self.baseline_requests,
            &mut self.baseline_errors,
        ]
    }

    /// Append look number `look` (1-based), whose window ended at `end` with the canary at
    /// `weight` percent; `point` is `None` for a look without data (its figures are null, so
    /// every look has its entry). Keeps at most [`MAX_LOOKS`], dropping the oldest.
    pub fn push(&mut self, look: i32, end: Timestamp, weight: i32, point: Option<&SeriesPoint>) {
        let n = self.time.len();
        self.weight.resize(n, weight);
        if n == 0 {
            self.first_look = look;
        }
        let empty = SeriesPoint::default();
        let p = point.unwrap_or(&empty);
        let arms = [
            p.canary_requests,
            p.canary_errors,
            p.baseline_requests,
            p.baseline_errors,
        ];
        for (column, value) in self.arm_columns().into_iter().zip(arms) {
            fit(column, n);
            column.push(compact(value));
        }
        for m in &p.metrics {
            let series = match self.metrics.iter().position(|s| s.name == m.name) {
                Some(i) => &mut self.metrics[i],
                None if self.metrics.len() < 16 => {
                    self.metrics.push(MetricSeries {
                        name: m.name.clone(),
                        ..MetricSeries::default()
                    });
                    let last = self.metrics.len() - 1;
                    &mut self.metrics[last]
                }
                None => continue,
            };
            series.fail_threshold = compact(m.fail_threshold).or(series.fail_threshold);
            series.pass_threshold = compact(m.pass_threshold).or(series.pass_threshold);
            let values = [
                m.estimate,
                m.lower,
                m.upper,
                m.e_fail,
                m.e_pass,
                m.canary_quantile,
                m.baseline_quantile,
            ];
            for (column, value) in series.columns().into_iter().zip(values) {
                fit(column, n);
                column.push(compact(value));
            }
        }
        // Metrics this look had no figure for get a null, so every column stays aligned.
        for series in &mut self.metrics {
            for column in series.columns() {
                fit(column, n + 1);
            }
        }
        self.time.push(end.as_second());
        self.weight.push(weight);
        let excess = self.time.len().saturating_sub(MAX_LOOKS);
        if excess > 0 {
            drop_front(&mut self.time, excess);
            drop_front(&mut self.weight, excess);
            for column in self.arm_columns() {
                drop_front(column, excess);
            }
            for series in &mut self.metrics {
                for column in series.columns() {
                    drop_front(column, excess);
                }
            }
            self.first_look = self
                .first_look
                .saturating_add(i32::try_from(excess).unwrap_or(i32::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(estimate: f64) -> SeriesPoint {
        SeriesPoint {
            canary_requests: Some(300.0),
            canary_errors: Some(3.0),
            baseline_requests: Some(301.0),
            baseline_errors: Some(2.0),
            metrics: vec![MetricPoint {
                name: "errorRate".into(),
                estimate: Some(estimate),
                e_fail: Some(1.0 / 3.0),
                fail_threshold: Some(50.0),
                ..MetricPoint::default()
            }],
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn every_look_has_one_entry_in_order_and_missing_data_is_null() {
        let mut s = AnalysisSeries::default();
        s.push(1, at(30), 10, Some(&point(1.0)));
        s.push(2, at(60), 10, None);
        s.push(3, at(90), 25, Some(&point(2.0)));
        assert_eq!(s.time, vec![30, 60, 90]);
        assert_eq!(s.weight, vec![10, 10, 25]);
        assert_eq!(s.canary_errors, vec![Some(3.0), None, Some(3.0)]);
        let m = &s.metrics[0];
        assert_eq!(m.estimate, vec![Some(1.0), None, Some(2.0)]);
        assert_eq!(m.e_fail[0], Some(0.3333), "four significant digits");
        assert_eq!(m.fail_threshold, Some(50.0));
        // All-null columns are left out of JSON and come back aligned.
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["metrics"][0].get("upper").is_none(), "{json}");
        let mut back: AnalysisSeries = serde_json::from_value(json).unwrap();
        back.push(4, at(120), 50, Some(&point(3.0)));
        assert_eq!(back.metrics[0].upper.len(), 4);
        assert_eq!(back.metrics[0].estimate[3], Some(3.0));
        assert_eq!(back.first_look, 1);
    }

    #[test]
    fn a_metric_that_appears_later_is_padded_and_non_finite_values_are_null() {
        let mut s = AnalysisSeries::default();
        s.push(5, at(30), 10, Some(&point(1.0)));
        let mut p = point(f64::INFINITY);
        p.metrics.push(MetricPoint {
            name: "latencyP99".into(),
            canary_quantile: Some(0.25),
            baseline_quantile: Some(0.2),
            ..MetricPoint::default()
        });
        s.push(6, at(60), 10, Some(&p));
        assert_eq!(s.first_look, 5);
        assert_eq!(s.metrics[0].estimate, vec![Some(1.0), None]);
        assert_eq!(s.metrics[1].canary_quantile, vec![None, Some(0.25)]);
        assert_eq!(s.metrics[1].estimate, vec![None, None]);
    }

    #[test]
    fn the_record_keeps_the_last_240_looks() {
        let mut s = AnalysisSeries::default();
        for look in 1..=300 {
            s.push(look, at(i64::from(look) * 30), 50, Some(&point(1.0)));
        }
        assert_eq!(s.len(), MAX_LOOKS);
        assert_eq!(s.first_look, 61);
        assert_eq!(s.time.first(), Some(&(61 * 30)));
        assert_eq!(s.time.last(), Some(&(300 * 30)));
        assert!(s.metrics[0].columns().iter().all(|c| c.len() == MAX_LOOKS));
        assert_eq!(s.canary_requests.len(), MAX_LOOKS);
    }
}
