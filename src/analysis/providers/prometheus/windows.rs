//! From the points of an arm's five answers to that arm's counts per window: which window each point
//! belongs to, every value checked (finite, not negative), the histogram made cumulative. Pure.

use std::collections::BTreeMap;

use super::queries::Quantity;
use super::response::{self, Answer, Series};
use crate::analysis::providers::{Arm, ArmWindow, ProviderError};

/// For each quantity and each window: the `(labels, value)` points that fall on that window's end.
pub(super) type PerWindow = Vec<[Vec<(BTreeMap<String, String>, f64)>; 5]>;

pub(super) fn split_by_window(
    answers: &[Answer; 5],
    count: usize,
    index_of: &dyn Fn(f64) -> Option<usize>,
) -> PerWindow {
    let mut out: PerWindow = (0..count).map(|_| Default::default()).collect();
    for (qi, a) in answers.iter().enumerate() {
        for Series { labels, points } in &a.series {
            for (t, v) in points {
                // An instant answer's single point is the window's, whatever its timestamp says.
                let i = if count == 1 { Some(0) } else { index_of(*t) };
                if let Some(i) = i {
                    out[i][qi].push((labels.clone(), *v));
                }
            }
        }
    }
    out
}

fn checked(arm: Arm, q: Quantity, v: f64) -> Result<f64, ProviderError> {
    if !v.is_finite() {
        return Err(ProviderError::NonFinite {
            what: format!("{arm} {}", q.name()),
            value: v,
        });
    }
    if v < 0.0 {
        return Err(ProviderError::Negative {
            what: format!("{arm} {}", q.name()),
            value: v,
        });
    }
    Ok(v)
}

/// Assemble one arm's counts for one window from the points of its five queries.
pub(super) fn arm_window(
    arm: Arm,
    points: &[Vec<(BTreeMap<String, String>, f64)>; 5],
) -> Result<Option<ArmWindow>, ProviderError> {
    let [requests, errors, buckets, series, samples] = points;
    // Validate everything first: a NaN anywhere fails the look, even if another part says "no data".
    let sum =
        |q: Quantity, ps: &Vec<(BTreeMap<String, String>, f64)>| -> Result<f64, ProviderError> {
            ps.iter()
                .try_fold(0.0, |acc, (_, v)| Ok(acc + checked(arm, q, *v)?))
        };
    let req = sum(Quantity::Requests, requests)?;
    let err = sum(Quantity::Errors, errors)?;
    let n_series = sum(Quantity::Series, series)?;
    let n_samples = sum(Quantity::Samples, samples)?;
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (labels, v) in buckets {
        let v = checked(arm, Quantity::Buckets, *v)?;
        let le_raw = labels
            .get("le")
            .ok_or_else(|| ProviderError::UnexpectedResultType {
                what: format!("{arm} latency buckets"),
                got: "a series without an `le` label".into(),
            })?;
        let le = response::parse_value(le_raw)
            .filter(|x| !x.is_nan())
            .ok_or_else(|| {
                ProviderError::Malformed(format!(
                    "{arm} latency bucket le={le_raw:?} is not a number"
                ))
            })?;
        // Order by le through a total order on the bit pattern of non-negative-ised floats.
        let key = ordered_key(le);
        let e = by_le.entry(key).or_insert((le, 0.0));
        e.1 += v;
    }
    if requests.is_empty() || req <= 0.0 {
        return Ok(None);
    }
    let mut cumulative = Vec::with_capacity(by_le.len());
    let mut running = 0.0f64;
    for (_, (le, v)) in by_le {
        running = running.max(v);
        cumulative.push((le, running));
    }
    Ok(Some(ArmWindow {
        requests: req,
        errors: err.min(req),
        buckets: cumulative,
        series: n_series.round() as usize,
        samples: n_samples.round() as usize,
    }))
}

/// A key whose unsigned order is the numeric order of finite and infinite f64 values.
pub(super) fn ordered_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}
