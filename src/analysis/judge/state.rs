//! What the judge remembers between looks ([`JudgeState`]): each metric's running test and its
//! decision. Small (a few KB as JSON) and serializable into the Rollout's status; resuming from
//! a deserialized state gives exactly the verdicts of never having stopped.

use serde::{Deserialize, Serialize};

use super::verdict::JudgeVerdict;
use crate::analysis::stats::counts::{RatioTestConfig, RatioTestState};
use crate::analysis::stats::latency::{Histogram, ShiftTestState};

/// Latency-quantile state: the frozen bound, the test, and both arms' accumulated histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QuantileState {
    pub quantile: f64,
    /// The chosen histogram bound (seconds); `None` until the baseline has enough requests.
    pub boundary: Option<f64>,
    pub test: RatioTestState,
    pub canary_hist: Option<Histogram>,
    pub baseline_hist: Option<Histogram>,
    /// Baseline windows seen before the bound was chosen.
    pub pending_baseline: Option<Histogram>,
    pub decided: Option<JudgeVerdict>,
    /// The watch bound: the histogram bound next above [`Self::boundary`], chosen with it
    /// (`None` when there is no finite bound above). Its test only fails: with coarse buckets
    /// a slower tail moves the rate above the pass bound little but the rate above the next
    /// bound a lot (see the judge's `quantile` module).
    #[serde(default)]
    pub watch_boundary: Option<f64>,
    /// The watch bound's test, on the same windows as [`Self::test`].
    #[serde(default)]
    pub watch: Option<RatioTestState>,
}

/// Everything the judge remembers between looks. Serialize it into the Rollout status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JudgeState {
    pub looks: u32,
    pub error_rate: Option<RatioTestState>,
    pub error_decided: Option<JudgeVerdict>,
    pub latency: Vec<QuantileState>,
    pub distribution: Option<ShiftTestState>,
    pub distribution_decided: Option<JudgeVerdict>,
    /// Each template metric's own state, by name (a counter pair's test in its `errorRate`
    /// fields, a histogram's quantiles in its `latency`). Absent from the JSON when there are
    /// none, so a state saved before template metrics existed reads the same.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, JudgeState>,
}

/// The error-rate test's state for `cfg`: the one kept, or a fresh one when there is none or
/// it was built for another policy (then its decision is dropped too, and `true` says so).
pub(super) fn error_rate_state<'a>(
    st: &'a mut JudgeState,
    cfg: &RatioTestConfig,
) -> (&'a mut RatioTestState, bool) {
    let stale = st.error_rate.as_ref().is_some_and(|s| !s.matches(cfg));
    if stale {
        st.error_decided = None;
    }
    if stale || st.error_rate.is_none() {
        st.error_rate = Some(RatioTestState::new(cfg));
    }
    let s = st
        .error_rate
        .get_or_insert_with(|| RatioTestState::new(cfg));
    (s, stale)
}
