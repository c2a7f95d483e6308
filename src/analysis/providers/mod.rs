//! Metrics providers: where the judge's per-window, per-arm counts come from.
//!
//! A provider answers one question: for a look window `[start, end]` and for each arm (canary,
//! baseline), how many requests were served, how many of them were errors, and how many fell in each
//! latency bucket, together with how many series and samples that answer rests on. The types here are
//! deliberately independent of the judge's: the judge converts them.
//!
//! Fail closed: an arm with no data is `None` (never zeros), and every failure is a typed
//! [`ProviderError`] that the judge turns into `Inconclusive` (never a rollback, never a promotion).
//! [`ProviderError::is_transient`] tells the controller whether to back off and retry (transient) or
//! to wait for the spec or configuration to change (permanent).

pub mod prometheus;

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

/// One look window, `[start, end]`, a whole number of milliseconds long (Prometheus' resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: Timestamp,
    end: Timestamp,
}

impl Window {
    /// A window from `start` to `end`; rejects empty, reversed and sub-millisecond-precision windows.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, ProviderError> {
        let len = end.duration_since(start);
        if len.as_millis() < 1 {
            return Err(ProviderError::Config(format!(
                "window end {end} must be at least 1ms after its start {start}"
            )));
        }
        if len.subsec_nanos() % 1_000_000 != 0 {
            return Err(ProviderError::Config(format!(
                "window [{start}, {end}] must be a whole number of milliseconds long"
            )));
        }
        Ok(Self { start, end })
    }

    /// The window of `length` ending at `end`.
    pub fn ending_at(end: Timestamp, length: std::time::Duration) -> Result<Self, ProviderError> {
        let len = jiff::SignedDuration::try_from(length)
            .map_err(|e| ProviderError::Config(format!("window length {length:?}: {e}")))?;
        let start = end
            .checked_sub(len)
            .map_err(|e| ProviderError::Config(format!("window length {length:?}: {e}")))?;
        Self::new(start, end)
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Length in whole milliseconds (at least 1).
    pub fn millis(&self) -> i64 {
        // Whole milliseconds by construction.
        self.end.duration_since(self.start).as_millis() as i64
    }
}

/// Which rollout's arms to read. The arms are told apart by the `track` target label (the operator's
/// pod label `tollgate.dev/track`, relabelled by Prometheus into a target label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisTarget {
    pub namespace: String,
    pub rollout: String,
    /// Track value of the canary pods (default `canary`).
    pub canary_track: String,
    /// Track value the canary is compared with: `baseline` when the operator started a fresh
    /// baseline, `stable` otherwise (default `baseline`).
    pub baseline_track: String,
}

impl AnalysisTarget {
    pub fn new(namespace: impl Into<String>, rollout: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            rollout: rollout.into(),
            canary_track: "canary".to_string(),
            baseline_track: "baseline".to_string(),
        }
    }

    /// Compare against another track (e.g. `stable` when no baseline was started).
    pub fn with_baseline_track(mut self, track: impl Into<String>) -> Self {
        self.baseline_track = track.into();
        self
    }
}

/// The counts of one arm over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmWindow {
    /// Requests served in the window (estimated by `increase()`: see the Prometheus provider docs for
    /// the precision; not necessarily an integer).
    pub requests: f64,
    /// Of those, errors (a status code matching the error regex). Zero when requests were served
    /// and no error series matched: error series are often only created by the first error.
    pub errors: f64,
    /// Cumulative latency histogram: `(le, count of requests with latency <= le)`, sorted by `le`,
    /// non-decreasing, the last bucket usually `+Inf`. Empty when the histogram has no data.
    pub buckets: Vec<(f64, f64)>,
    /// Number of raw request-counter series (pods x status codes) the answer rests on.
    pub series: usize,
    /// Number of raw samples (scrapes) of those series inside the window.
    pub samples: usize,
}

/// Both arms' counts over one window. `None` means "no data": no request series in the window, or
/// no request served in it. It is never replaced by zeros.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCounts {
    pub start: Timestamp,
    pub end: Timestamp,
    pub canary: Option<ArmWindow>,
    pub baseline: Option<ArmWindow>,
    /// Warnings the backend attached to the answer (only when the provider is configured to accept
    /// them; by default a warning, which usually means a partial response, is an error).
    pub warnings: Vec<String>,
}

/// Which arm a query was for (used in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Canary,
    Baseline,
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arm::Canary => "canary",
            Arm::Baseline => "baseline",
        })
    }
}

/// Everything that can go wrong reading metrics. No variant carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider's configuration or a query template is invalid (permanent).
    #[error("invalid metrics provider configuration: {0}")]
    Config(String),
    /// Could not connect (refused, DNS, TLS handshake) (transient).
    #[error("cannot reach the metrics backend: {0}")]
    Unreachable(String),
    /// No complete answer within the configured timeout (transient).
    #[error("metrics query timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Another transport failure: connection reset, truncated body (transient).
    #[error("transport error talking to the metrics backend: {0}")]
    Transport(String),
    /// The backend refused our credentials (permanent until the Secret changes).
    #[error("metrics backend refused authorization (HTTP {status})")]
    Unauthorized { status: u16 },
    /// A non-success HTTP status without a Prometheus error body.
    #[error("metrics backend answered HTTP {status}: {excerpt}")]
    Http { status: u16, excerpt: String },
    /// Prometheus answered `status: error` with an `errorType` (bad_data, timeout, execution, ...).
    #[error("Prometheus query failed ({error_type}): {message}")]
    Query { error_type: String, message: String },
    /// The answer carried warnings (typically a partial response) and the provider does not accept
    /// them (transient).
    #[error("metrics backend answered with warnings (partial data?): {}", .0.join("; "))]
    Warnings(Vec<String>),
    /// The body was not a Prometheus API answer (transient: proxies and restarts do this).
    #[error("malformed answer from the metrics backend: {0}")]
    Malformed(String),
    /// A query returned a result type the provider cannot use (permanent: fix the template).
    #[error("{what}: expected an instant vector, got {got}")]
    UnexpectedResultType { what: String, got: String },
    /// NaN or an infinity where a count was expected (transient: usually a division over no data).
    #[error("query for {what} returned a non-finite value {value}")]
    NonFinite { what: String, value: f64 },
    /// A negative count (permanent: the template does not compute a count).
    #[error("query for {what} returned a negative count {value}")]
    Negative { what: String, value: f64 },
    /// The answer was larger than the configured bounds (permanent: narrow the query or raise them).
    #[error("answer too large: {0}")]
    TooLarge(String),
    /// The process's budget of memory for answers being read is taken by other reads: this
    /// read is dropped rather than let the operator run out of memory (transient).
    #[error("not read: {0}")]
    Busy(String),
}

impl ProviderError {
    /// Whether retrying later (with backoff) may succeed without anything being changed.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Unreachable(_)
            | ProviderError::Timeout(_)
            | ProviderError::Transport(_)
            | ProviderError::Warnings(_)
            | ProviderError::Malformed(_)
            | ProviderError::Busy(_)
            | ProviderError::NonFinite { .. } => true,
            ProviderError::Http { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            // VictoriaMetrics puts the HTTP status in `errorType`: 400 and 422 are a query
            // it will never run (a parse error), as Prometheus' bad_data
            ProviderError::Query { error_type, .. } => !matches!(
                error_type.as_str(),
                "bad_data" | "not_found" | "execution" | "400" | "422"
            ),
            ProviderError::Config(_)
            | ProviderError::Unauthorized { .. }
            | ProviderError::UnexpectedResultType { .. }
            | ProviderError::Negative { .. }
            | ProviderError::TooLarge(_) => false,
        }
    }
}

/// A boxed future, so [`MetricsProvider`] stays object-safe (`Box<dyn MetricsProvider>`).
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A source of per-window, per-arm counts.
pub trait MetricsProvider: Send + Sync {
    /// Counts of both arms over one window.
    fn window_counts<'a>(
        &'a self,
        target: &'a AnalysisTarget,
        window: Window,
    ) -> ProviderFuture<'a, WindowCounts>;

    /// Counts of both arms over `count` contiguous windows of the same length: `first`, then the one
    /// starting at `first.end()`, and so on (one range query per quantity, step = window length).
    fn consecutive_window_counts<'a>(
        &'a self,
        target: &'a AnalysisTarget,
        first: Window,
        count: usize,
    ) -> ProviderFuture<'a, Vec<WindowCounts>>;
}

/// Which of `count` consecutive windows of `step_millis`, the first ending at `first_end_millis`,
/// a sample stamped `t_seconds` (as the metrics backend sent it) closes; `None` for a time that
/// closes none. The time came from outside: NaN, infinities, `-1e300` or a stamp past the end of
/// time must not overflow anything, and a point outside every window is a window without data,
/// never a panic.
pub fn window_index(
    t_seconds: f64,
    first_end_millis: i64,
    step_millis: i64,
    count: usize,
) -> Option<usize> {
    if !t_seconds.is_finite() || step_millis <= 0 {
        return None;
    }
    let millis = (t_seconds * 1000.0).round();
    // Beyond ±2^53 ms (285 000 years) no stamp is a real sample time, and the cast below would
    // saturate instead of failing.
    if millis.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    let offset = (millis as i64).checked_sub(first_end_millis)?;
    if offset < 0 || offset % step_millis != 0 {
        return None;
    }
    let index = usize::try_from(offset / step_millis).ok()?;
    (index < count).then_some(index)
}

#[cfg(test)]
mod tests {
    #[test]
    fn out_of_range_sample_times_fall_in_no_window() {
        use super::window_index;
        let first_end = 1_800_000_000_000; // ms
        assert_eq!(window_index(1_800_000_000.0, first_end, 30_000, 3), Some(0));
        assert_eq!(window_index(1_800_000_060.0, first_end, 30_000, 3), Some(2));
        assert_eq!(
            window_index(1_800_000_090.0, first_end, 30_000, 3),
            None,
            "past the last"
        );
        assert_eq!(
            window_index(1_800_000_015.0, first_end, 30_000, 3),
            None,
            "between ends"
        );
        for hostile in [
            -1e300,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -9.3e15,
        ] {
            assert_eq!(
                window_index(hostile, first_end, 30_000, 3),
                None,
                "{hostile}"
            );
        }
        assert_eq!(
            window_index(1.0, i64::MIN, 30_000, 3),
            None,
            "offset overflows"
        );
        assert_eq!(window_index(1.0, 1_000, 0, 3), None, "no step");
    }

    use super::*;

    #[test]
    fn windows_must_be_positive_and_whole_milliseconds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(Window::new(t0, t1).unwrap().millis(), 60_000);
        assert!(matches!(Window::new(t1, t0), Err(ProviderError::Config(_))));
        assert!(matches!(Window::new(t0, t0), Err(ProviderError::Config(_))));
        let odd = t0
            .checked_add(jiff::SignedDuration::from_nanos(1_500_000))
            .unwrap();
        assert!(Window::new(t0, odd).is_err());
        let w = Window::ending_at(t1, std::time::Duration::from_secs(30)).unwrap();
        assert_eq!(w.start().to_string(), "2026-01-01T00:00:30Z");
    }

    #[test]
    fn transient_and_permanent_errors() {
        assert!(ProviderError::Timeout(std::time::Duration::from_secs(1)).is_transient());
        assert!(ProviderError::Unreachable("refused".into()).is_transient());
        assert!(ProviderError::Http {
            status: 503,
            excerpt: String::new()
        }
        .is_transient());
        assert!(!ProviderError::Http {
            status: 404,
            excerpt: String::new()
        }
        .is_transient());
        assert!(!ProviderError::Unauthorized { status: 401 }.is_transient());
        let q = |t: &str| ProviderError::Query {
            error_type: t.into(),
            message: String::new(),
        };
        assert!(!q("bad_data").is_transient());
        // VictoriaMetrics' errorType is the HTTP status: a parse error is permanent, an
        // overloaded server not
        assert!(!q("422").is_transient());
        assert!(!q("400").is_transient());
        assert!(q("503").is_transient());
        assert!(q("timeout").is_transient());
        assert!(q("unavailable").is_transient());
        assert!(!ProviderError::Config("x".into()).is_transient());
        assert!(!ProviderError::TooLarge("x".into()).is_transient());
        assert!(ProviderError::NonFinite {
            what: "x".into(),
            value: f64::NAN
        }
        .is_transient());
    }
}
