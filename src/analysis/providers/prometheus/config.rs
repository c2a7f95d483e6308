//! The provider's configuration: where Prometheus is, which labels tell the arms apart, which
//! metrics and queries to use, and the bounds on one answer.

use serde::{Deserialize, Serialize};

/// Target label names that tell the arms apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArmLabels {
    pub namespace: String,
    pub rollout: String,
    pub track: String,
}

impl Default for ArmLabels {
    fn default() -> Self {
        Self {
            namespace: "namespace".into(),
            rollout: "rollout".into(),
            track: "track".into(),
        }
    }
}

/// Optional user templates, one per quantity; `None` uses the default query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryTemplates {
    pub requests: Option<String>,
    pub errors: Option<String>,
    pub buckets: Option<String>,
    pub series: Option<String>,
    pub samples: Option<String>,
}

/// Configuration of the Prometheus provider (camelCase when embedded in YAML/JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090` or `https://host/prometheus/` (a path prefix
    /// is kept). Must not contain credentials.
    pub address: String,
    /// Timeout of one HTTP request (also sent to Prometheus as its query timeout).
    pub timeout_ms: u64,
    pub labels: ArmLabels,
    /// Request counter (default `http_requests_total`).
    pub requests_metric: String,
    /// Status-code label of the request counter (default `code`).
    pub code_label: String,
    /// Regex (RE2, fully anchored by Prometheus) of the codes that count as errors (default `5..`).
    pub error_codes: String,
    /// Histogram base name; `_bucket` is appended (default `http_request_duration_seconds`).
    pub histogram_metric: String,
    pub queries: QueryTemplates,
    /// Accept answers that carry warnings (partial responses) instead of failing the look.
    pub accept_warnings: bool,
    /// Most series one answer may hold.
    pub max_series: usize,
    /// Most samples (points) one answer may hold.
    pub max_samples: usize,
    /// Most bytes one answer body may have.
    pub max_body_bytes: usize,
    /// Extra PEM root certificates for `https` addresses (e.g. a cluster CA).
    pub ca_pem: Option<String>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:9090".into(),
            timeout_ms: 10_000,
            labels: ArmLabels::default(),
            requests_metric: "http_requests_total".into(),
            code_label: "code".into(),
            error_codes: "5..".into(),
            histogram_metric: "http_request_duration_seconds".into(),
            queries: QueryTemplates::default(),
            accept_warnings: false,
            // The largest answer the provider's own queries get is the baseline-history read
            // before the first look: a range query over 120 windows, and for latency one series
            // per histogram bucket. A classic histogram has 10-30 buckets, rarely 100; at about
            // 30 bytes a point (`[1765000000,"1234.5"]`) that is 120 x 100 x 30 = 360 KB at most,
            // every other query a few hundred bytes. 1 MiB leaves room for labels and longer
            // numbers; 256 series and 32768 points (120 windows x 256 series, plus slack) bound
            // the same answer parsed. User templates that need more set these fields.
            max_series: 256,
            max_samples: 32_768,
            max_body_bytes: 1 << 20,
            ca_pem: None,
        }
    }
}
