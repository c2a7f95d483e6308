//! What the judge is given at a look: both arms' counts over one window ([`JudgeWindow`],
//! [`ArmCounts`]), and the checks that keep missing, negative or non-finite numbers out of
//! the evidence.

use serde::{Deserialize, Serialize};

use crate::analysis::stats::latency::Histogram;

/// One arm's observations in one window (increments over the window, not running totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ArmCounts {
    pub requests: Option<f64>,
    pub errors: Option<f64>,
    /// Latency histogram of the window's requests.
    pub latency: Option<Histogram>,
}

/// One look: both arms over the same interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JudgeWindow {
    pub baseline: ArmCounts,
    pub canary: ArmCounts,
    /// Nominal canary traffic share; informational: the tests weight by the observed requests.
    pub canary_share: Option<f64>,
}

/// The most requests (or events) one arm may report for one window: a trillion. No service
/// serves that many requests in a look interval, and far above it the judge's arithmetic
/// loses its precision (at about 1e155 per window an all-failing canary once looked healthy).
/// A count above it is not evidence: the window adds nothing and says why.
pub const MAX_WINDOW_COUNT: f64 = 1e12;

/// A count the judge may use: finite and not negative.
pub(super) fn finite_nonneg(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

/// Why counts that are all finite and not negative are still no evidence: above
/// [`MAX_WINDOW_COUNT`].
pub(super) fn beyond_ceiling(counts: &[f64]) -> Result<(), String> {
    if counts.iter().any(|c| *c > MAX_WINDOW_COUNT) {
        Err(format!(
            "counts above {} in one window are not believable",
            crate::util::number::format_number(MAX_WINDOW_COUNT)
        ))
    } else {
        Ok(())
    }
}

/// A histogram the judge may use.
pub(super) fn valid_hist(h: &Option<Histogram>) -> Option<&Histogram> {
    h.as_ref().filter(|h| h.validate().is_ok())
}
