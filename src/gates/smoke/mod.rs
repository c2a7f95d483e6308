//! Smoke checks: a few configured HTTP requests (method, path, expected status, optional body
//! substring) against every canary pod or a deterministic sample of them. Any failure blocks,
//! naming the pod and the request. Pods are addressed directly (`http://<podIP>:<port><path>`).
//!
//! Pure parts ([`sample`], [`judge`], [`SmokeReport`]) are separate from the I/O
//! ([`SmokeClient`], [`HttpSmokeClient`], [`run`]).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gates::fleet::probe::{self, ProbeError, ProbeResponse};
use crate::gates::fleet::PodTarget;

/// One configured request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeRequest {
    /// A name for reports; defaults to `METHOD path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// Port on the pod; the check's default port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default = "default_status")]
    pub expected_status: u16,
    /// The answer's body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A request body to send (e.g. for POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_status() -> u16 {
    200
}

impl SmokeRequest {
    pub fn get(path: &str, expected_status: u16) -> Self {
        SmokeRequest {
            name: None,
            method: default_method(),
            path: path.into(),
            port: None,
            expected_status,
            body_contains: None,
            body: None,
        }
    }

    /// How reports name this request.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{} {}", self.method.to_ascii_uppercase(), self.path),
        }
    }
}

/// Which canary pods get the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Sample {
    /// Every canary pod.
    All,
    /// At most this many, chosen deterministically from the seed and the pod names.
    Count(usize),
}

/// The smoke check's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeConfig {
    pub requests: Vec<SmokeRequest>,
    pub sample: Sample,
    /// Port used by requests that name none.
    pub default_port: u16,
    /// Deadline of one request: connect, headers and body.
    #[serde(with = "crate::util::duration::millis")]
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub max_body_bytes: usize,
    /// Seed of the sample (e.g. the Rollout's uid and version), so a retry picks the same pods.
    #[serde(default)]
    pub seed: String,
    /// Failures listed in the report (counts are always complete).
    pub max_listed_failures: usize,
}

impl Default for SmokeConfig {
    fn default() -> Self {
        SmokeConfig {
            requests: Vec::new(),
            sample: Sample::All,
            default_port: 8080,
            timeout: Duration::from_secs(5),
            concurrency: 16,
            max_body_bytes: 1024 * 1024,
            seed: String::new(),
            max_listed_failures: 20,
        }
    }
}

/// A smoke configuration the operator cannot use (permanent: wait for a change of spec).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmokeConfigError {
    #[error("request {request:?}: invalid HTTP method {method:?}")]
    Method { request: String, method: String },
    #[error("request {request:?}: path must start with '/': {path:?}")]
    Path { request: String, path: String },
    #[error("request {request:?}: expected status {status} is not an HTTP status")]
    Status { request: String, status: u16 },
    #[error("request {request:?}: port must not be 0")]
    Port { request: String },
    #[error("sample size must be at least 1")]
    Sample,
    #[error("timeout must be positive")]
    Timeout,
    #[error("concurrency must be at least 1")]
    Concurrency,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl SmokeConfig {
    pub fn validate(&self) -> Result<(), SmokeConfigError> {
        for r in &self.requests {
            let request = r.label();
            if reqwest::Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()).is_err()
                || r.method.is_empty()
            {
                return Err(SmokeConfigError::Method {
                    request,
                    method: r.method.clone(),
                });
            }
            if !r.path.starts_with('/') {
                return Err(SmokeConfigError::Path {
                    request,
                    path: r.path.clone(),
                });
            }
            if !(100..=599).contains(&r.expected_status) {
                return Err(SmokeConfigError::Status {
                    request,
                    status: r.expected_status,
                });
            }
            if r.port == Some(0) {
                return Err(SmokeConfigError::Port { request });
            }
        }
        if self.sample == Sample::Count(0) {
            return Err(SmokeConfigError::Sample);
        }
        if self.timeout.is_zero() {
            return Err(SmokeConfigError::Timeout);
        }
        if self.concurrency == 0 {
            return Err(SmokeConfigError::Concurrency);
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits, then a finalizer: a stable hash for sampling (std's hasher may change between releases).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV alone keeps related inputs in related order; murmur3's finalizer mixes every bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The pods that get the requests: all, or `n` chosen by a seeded hash of their names (the same
/// seed and pods always give the same sample, whatever their order). Sorted by name.
pub fn sample(targets: &[PodTarget], how: Sample, seed: &str) -> Vec<PodTarget> {
    let mut chosen: Vec<PodTarget> = targets.to_vec();
    chosen.sort();
    chosen.dedup();
    if let Sample::Count(n) = how {
        chosen.sort_by_key(|t| (fnv1a(&[seed.as_bytes(), t.name.as_bytes()]), t.name.clone()));
        chosen.truncate(n);
        chosen.sort();
    }
    chosen
}

/// Machine-readable reason a smoke request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SmokeProblemKind {
    Timeout,
    Unreachable,
    UnexpectedStatus,
    BodyMismatch,
    BodyTooLarge,
    /// Smoke requests are configured but there is no canary pod to send them to.
    NoPods,
}

impl fmt::Display for SmokeProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One failed request on one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeFailure {
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    pub request: String,
    pub kind: SmokeProblemKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    pub detail: String,
}

/// Judge one answer (pure).
pub fn judge(
    target: &PodTarget,
    request: &SmokeRequest,
    answer: &Result<ProbeResponse, ProbeError>,
) -> Option<SmokeFailure> {
    let failure = |kind, reported, expected, detail| SmokeFailure {
        pod: target.name.clone(),
        ip: Some(target.ip),
        request: request.label(),
        kind,
        reported,
        expected,
        detail,
    };
    match answer {
        Err(e) => {
            let kind = match e {
                ProbeError::Timeout(_) => SmokeProblemKind::Timeout,
                ProbeError::Connect(_) | ProbeError::Transport(_) => SmokeProblemKind::Unreachable,
                ProbeError::BodyTooLarge(_) => SmokeProblemKind::BodyTooLarge,
            };
            Some(failure(kind, None, None, e.to_string()))
        }
        Ok(r) if r.status != request.expected_status => Some(failure(
            SmokeProblemKind::UnexpectedStatus,
            Some(r.status.to_string()),
            Some(request.expected_status.to_string()),
            format!(
                "answered HTTP {}: {}",
                r.status,
                probe::excerpt(&r.body, 120)
            ),
        )),
        Ok(r) => {
            let want = request.body_contains.as_deref()?;
            let body = String::from_utf8_lossy(&r.body);
            if body.contains(want) {
                None
            } else {
                Some(failure(
                    SmokeProblemKind::BodyMismatch,
                    Some(probe::excerpt(&r.body, 120)),
                    Some(want.to_string()),
                    "body does not contain the expected text".into(),
                ))
            }
        }
    }
}

/// The result of the smoke checks: exact counts, a capped sorted list of failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeReport {
    pub passed: bool,
    pub pods_checked: usize,
    pub requests_sent: usize,
    /// Sorted by pod, request, kind; at most `max_listed_failures` entries.
    pub failures: Vec<SmokeFailure>,
    pub failures_total: usize,
    pub failures_truncated: bool,
}

impl SmokeReport {
    /// Build the report from every failure (pure).
    pub fn new(
        pods_checked: usize,
        requests_sent: usize,
        mut failures: Vec<SmokeFailure>,
        max_listed: usize,
    ) -> Self {
        failures.sort();
        let total = failures.len();
        failures.truncate(max_listed);
        SmokeReport {
            passed: total == 0,
            pods_checked,
            requests_sent,
            failures_truncated: total > failures.len(),
            failures,
            failures_total: total,
        }
    }

    /// One line for a condition message or an Event.
    pub fn summary(&self) -> String {
        if self.passed {
            return format!(
                "smoke checks passed: {} request(s) on {} pod(s)",
                self.requests_sent, self.pods_checked
            );
        }
        let mut s = format!(
            "smoke checks failed: {} of {} request(s) on {} pod(s)",
            self.failures_total, self.requests_sent, self.pods_checked
        );
        if let Some(f) = self.failures.first() {
            s.push_str(&format!("; first: {} {:?} {}", f.pod, f.request, f.kind));
            if let (Some(r), Some(e)) = (&f.reported, &f.expected) {
                s.push_str(&format!(" (got {r:?}, want {e:?})"));
            }
        }
        s
    }
}

/// Sends one smoke request to one pod.
pub trait SmokeClient: Sync {
    fn send(
        &self,
        target: &PodTarget,
        request: &SmokeRequest,
    ) -> impl Future<Output = Result<ProbeResponse, ProbeError>> + Send;
}

/// Smoke requests over HTTP, straight to the pod IP.
#[derive(Debug, Clone)]
pub struct HttpSmokeClient {
    client: reqwest::Client,
    default_port: u16,
    timeout: Duration,
    max_body_bytes: usize,
}

impl HttpSmokeClient {
    pub fn new(config: &SmokeConfig) -> Result<Self, SmokeConfigError> {
        config.validate()?;
        let client = probe::pod_client(config.timeout)
            .map_err(|e| SmokeConfigError::Client(probe::error_chain(&e)))?;
        Ok(HttpSmokeClient {
            client,
            default_port: config.default_port,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
        })
    }
}

impl SmokeClient for HttpSmokeClient {
    async fn send(
        &self,
        target: &PodTarget,
        request: &SmokeRequest,
    ) -> Result<ProbeResponse, ProbeError> {
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| ProbeError::Transport(format!("invalid method: {e}")))?;
        let port = request.port.unwrap_or(self.default_port);
        let url = probe::pod_url(target.ip, port, &request.path);
        let mut builder = self.client.request(method, url);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        probe::exchange(builder, self.timeout, self.max_body_bytes).await
    }
}

/// Send every configured request to every sampled canary pod (at most `concurrency` at once)
/// and judge the answers. No requests configured: passes with nothing sent. Requests configured
/// but no pod: fails (no evidence).
pub async fn run<C: SmokeClient>(
    client: &C,
    config: &SmokeConfig,
    canary: &[PodTarget],
) -> SmokeReport {
    if config.requests.is_empty() {
        return SmokeReport::new(0, 0, Vec::new(), config.max_listed_failures);
    }
    let pods = sample(canary, config.sample, &config.seed);
    if pods.is_empty() {
        let failure = SmokeFailure {
            pod: String::new(),
            ip: None,
            request: String::new(),
            kind: SmokeProblemKind::NoPods,
            reported: None,
            expected: None,
            detail: "no ready canary pod to send smoke requests to".into(),
        };
        return SmokeReport::new(0, 0, vec![failure], config.max_listed_failures);
    }
    // Jobs are index pairs, not borrowed tuples: a stream of borrowed tuples through an async
    // closure defeats `Send` inference when this future runs inside the controller.
    let jobs: Vec<(usize, usize)> = (0..pods.len())
        .flat_map(|p| (0..config.requests.len()).map(move |r| (p, r)))
        .collect();
    let sent = jobs.len();
    let pods_ref = &pods;
    let failures: Vec<SmokeFailure> = stream::iter(jobs)
        .map(|(p, r)| async move {
            let (pod, request) = (&pods_ref[p], &config.requests[r]);
            let answer = client.send(pod, request).await;
            judge(pod, request, &answer)
        })
        .buffer_unordered(config.concurrency.max(1))
        .filter_map(|f| async move { f })
        .collect()
        .await;
    SmokeReport::new(pods.len(), sent, failures, config.max_listed_failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::fleet::Track;

    fn targets(n: usize) -> Vec<PodTarget> {
        (1..=n)
            .map(|i| PodTarget {
                track: Track::Canary,
                name: format!("pod-{i:03}"),
                ip: std::net::IpAddr::from([127, 0, 30, u8::try_from(i).unwrap()]),
            })
            .collect()
    }

    #[test]
    fn sampling_is_deterministic_and_order_free() {
        let t = targets(50);
        let a = sample(&t, Sample::Count(5), "rollout-uid/2.0.0");
        let mut reversed = t.clone();
        reversed.reverse();
        let b = sample(&reversed, Sample::Count(5), "rollout-uid/2.0.0");
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted");
        let c = sample(&t, Sample::Count(5), "another-seed");
        assert_ne!(a, c, "another seed picks other pods");
        assert_eq!(sample(&t, Sample::All, "x").len(), 50);
        assert_eq!(sample(&t, Sample::Count(99), "x").len(), 50);
    }

    #[test]
    fn judges_status_body_and_errors() {
        let t = &targets(1)[0];
        let mut req = SmokeRequest::get("/", 200);
        let ok = Ok(ProbeResponse {
            status: 200,
            body: b"hello ok".to_vec(),
        });
        assert_eq!(judge(t, &req, &ok), None);

        req.body_contains = Some("ok".into());
        assert_eq!(judge(t, &req, &ok), None);
        req.body_contains = Some("welcome".into());
        let f = judge(t, &req, &ok).unwrap();
        assert_eq!(f.kind, SmokeProblemKind::BodyMismatch);
        assert_eq!(f.pod, "pod-001");
        assert_eq!(f.request, "GET /");

        let five = Ok(ProbeResponse {
            status: 500,
            body: b"error".to_vec(),
        });
        let f = judge(t, &req, &five).unwrap();
        assert_eq!(f.kind, SmokeProblemKind::UnexpectedStatus);
        assert_eq!(f.reported.as_deref(), Some("500"));
        assert_eq!(f.expected.as_deref(), Some("200"));

        let f = judge(t, &req, &Err(ProbeError::Timeout(Duration::from_secs(1)))).unwrap();
        assert_eq!(f.kind, SmokeProblemKind::Timeout);
        let f = judge(t, &req, &Err(ProbeError::Connect("refused".into()))).unwrap();
        assert_eq!(f.kind, SmokeProblemKind::Unreachable);

        // A request that expects 404 passes on 404.
        let nf = SmokeRequest::get("/missing", 404);
        let answer = Ok(ProbeResponse {
            status: 404,
            body: Vec::new(),
        });
        assert_eq!(judge(t, &nf, &answer), None);
    }

    #[test]
    fn validates_configuration() {
        let good = SmokeConfig {
            requests: vec![SmokeRequest::get("/", 200)],
            ..Default::default()
        };
        assert_eq!(good.validate(), Ok(()));
        let mut bad = good.clone();
        bad.requests[0].path = "nope".into();
        assert!(matches!(bad.validate(), Err(SmokeConfigError::Path { .. })));
        let mut bad = good.clone();
        bad.requests[0].method = "G E T".into();
        assert!(matches!(
            bad.validate(),
            Err(SmokeConfigError::Method { .. })
        ));
        let mut bad = good.clone();
        bad.requests[0].expected_status = 42;
        assert!(matches!(
            bad.validate(),
            Err(SmokeConfigError::Status { .. })
        ));
        let mut bad = good.clone();
        bad.sample = Sample::Count(0);
        assert_eq!(bad.validate(), Err(SmokeConfigError::Sample));
        assert!(HttpSmokeClient::new(&bad).is_err());
    }

    #[test]
    fn requests_deserialize_with_defaults() {
        let r: SmokeRequest =
            serde_json::from_value(serde_json::json!({"path": "/healthz"})).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.expected_status, 200);
        assert_eq!(r.label(), "GET /healthz");
    }

    #[test]
    fn report_caps_and_counts() {
        let t = targets(3);
        let req = SmokeRequest::get("/", 200);
        let failures: Vec<_> = t
            .iter()
            .rev()
            .map(|p| judge(p, &req, &Err(ProbeError::Connect("x".into()))).unwrap())
            .collect();
        let r = SmokeReport::new(3, 3, failures, 2);
        assert!(!r.passed);
        assert_eq!(r.failures_total, 3);
        assert!(r.failures_truncated);
        assert_eq!(r.failures[0].pod, "pod-001");
        assert!(r.summary().contains("pod-001"), "{}", r.summary());
    }
}
