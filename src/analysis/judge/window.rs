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

/// A count the judge may use: finite and not negative.
pub(super) fn finite_nonneg(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

/// A histogram the judge may use.
pub(super) fn valid_hist(h: &Option<Histogram>) -> Option<&Histogram> {
    h.as_ref().filter(|h| h.validate().is_ok())
}
