//! demo-app: a small HTTP service that tollgate's tests and demo deploy as "the application".
//!
//! * `GET /version` answers `{"version": "...", "configHash": "..."}`, plus `"dependencies"` and
//!   `"flags"` objects when `--dependency` / `--flag` are given (or misbehaves on purpose, see
//!   [`VersionFault`]).
//! * `GET /` does the "work": sleeps a lognormal-ish latency, then answers 200, or 500 with a given
//!   probability. Knobs add latency (constant, proportional, tail-only).
//! * `GET /metrics` exposes `http_requests_total{code,method,path}` and the
//!   `http_request_duration_seconds` histogram, counting only `/` traffic, and
//!   `demo_app_build_info{version="..."} 1` (the `build_info` convention, for attestation from
//!   Prometheus without a /version endpoint), and a second family named differently, a
//!   business metric: `payments_attempts_total` and `payments_failures_total` (one attempt per
//!   `GET /`, failed with `--payment-failure-rate`), for template metrics.
//! * `GET /healthz` answers 200 `ok` (not counted either).
//!
//! `configHash` is the lowercase hex SHA-256 of the configuration's canonical form: the `K=V`
//! pairs with keys sorted (byte order), each written as `k=v\n`, concatenated. A repeated key keeps
//! its last value. The empty configuration hashes the empty string
//! (`e3b0c442...b855`).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::{Parser, ValueEnum};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Command line; every flag has an environment fallback so a pod spec's `env` can drive it.
#[derive(Debug, Clone, Parser)]
#[command(name = "demo-app", about = "tollgate demo service")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Version this instance reports on /version.
    #[arg(long = "version", env = "DEMO_VERSION")]
    pub app_version: String,
    /// Active configuration, `K=V`, repeatable; env `DEMO_CONFIG` as `k1=v1,k2=v2`.
    #[arg(long = "config", env = "DEMO_CONFIG", value_delimiter = ',', value_parser = parse_kv)]
    pub config: Vec<(String, String)>,
    /// A dependency's version reported under `dependencies` on /version, `NAME=VERSION`,
    /// repeatable; env `DEMO_DEPENDENCIES` as `postgres=15.4,redis=7.2.1`.
    #[arg(long = "dependency", env = "DEMO_DEPENDENCIES", value_delimiter = ',', value_parser = parse_kv)]
    pub dependencies: Vec<(String, String)>,
    /// A flag reported under `flags` on /version, `NAME=VALUE`, repeatable; a VALUE that is JSON
    /// (`true`, `3`, `"x"`) is reported as that JSON, anything else as a string. Env
    /// `DEMO_FLAGS` as `powerPeg=false,colour=blue`.
    #[arg(long = "flag", env = "DEMO_FLAGS", value_delimiter = ',', value_parser = parse_kv)]
    pub flags: Vec<(String, String)>,
    /// Misbehave on /version (for fleet-check tests).
    #[arg(long, env = "DEMO_VERSION_FAULT", value_enum)]
    pub version_fault: Option<VersionFault>,
    /// Probability in [0, 1] that `GET /` answers 500.
    #[arg(long, env = "DEMO_ERROR_RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub error_rate: f64,
    /// Probability in [0, 1] that a payment fails: every `GET /` is one payment attempt
    /// (`payments_attempts_total`), failed with this probability (`payments_failures_total`)
    /// whatever the HTTP answer, so the business metric can regress while the error rate
    /// stays healthy.
    #[arg(long, env = "DEMO_PAYMENT_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub payment_failure_rate: f64,
    /// Median of the base latency of `GET /`, in milliseconds.
    #[arg(long, env = "DEMO_LATENCY_MS", default_value_t = 5.0, value_parser = parse_non_negative)]
    pub latency_ms: f64,
    /// Spread of the base latency: sigma of the lognormal (0 = constant base latency).
    #[arg(long, env = "DEMO_LATENCY_SIGMA", default_value_t = 0.35, value_parser = parse_non_negative)]
    pub latency_sigma: f64,
    /// Added latency in milliseconds, applied according to --latency-mode.
    #[arg(long, env = "DEMO_ADDED_LATENCY_MS", default_value_t = 0.0, value_parser = parse_non_negative)]
    pub added_latency_ms: f64,
    /// How the added latency applies.
    #[arg(long, env = "DEMO_LATENCY_MODE", value_enum, default_value_t = LatencyMode::Constant)]
    pub latency_mode: LatencyMode,
    /// Fraction of requests that get the added latency in `tail` mode.
    #[arg(long, env = "DEMO_TAIL_FRACTION", default_value_t = 0.05, value_parser = parse_probability)]
    pub tail_fraction: f64,
    /// Seed of the random draws (latency, errors); default: from the clock and pid.
    #[arg(long, env = "DEMO_SEED")]
    pub seed: Option<u64>,
}

/// Deliberate misbehaviour of `GET /version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionFault {
    /// Never answers.
    Hang,
    /// 500 Internal Server Error.
    Status500,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON lacking `configHash`.
    MissingField,
}

/// How `--added-latency-ms` applies to the base draw `b` (median `--latency-ms` = `m`, added `a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LatencyMode {
    /// Every request: `b + a`.
    Constant,
    /// Every request: `b * (m + a) / m` — the median moves by `a`, every quantile scales alike.
    Proportional,
    /// Only a `--tail-fraction` of requests: `b + a`; the others `b`.
    Tail,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("config entry {s:?} is not K=V"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("config entry {s:?} has an empty key"));
    }
    if k.contains('\n') || v.contains('\n') {
        return Err(format!("config entry {s:?} contains a newline"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A flag's value as reported: JSON when it is JSON (`false`, `3`, `"x"`), a string otherwise.
pub fn flag_value(text: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array())
        .unwrap_or_else(|| serde_json::Value::String(text.to_string()))
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability in [0, 1]"))
    }
}

fn parse_non_negative(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(format!("{x} must be a finite number >= 0"))
    }
}

/// Canonical form of a configuration: keys sorted, `k=v\n` lines; a repeated key keeps its last value.
pub fn canonical_config(pairs: &[(String, String)]) -> String {
    let map: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    map.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Lowercase hex SHA-256 of [`canonical_config`].
pub fn config_hash(pairs: &[(String, String)]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical_config(pairs).as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: tiny, seedable, good enough for latency draws.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The latency and error model of `GET /`, pure given the random source.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkModel {
    pub error_rate: f64,
    pub latency_ms: f64,
    pub latency_sigma: f64,
    pub added_latency_ms: f64,
    pub latency_mode: LatencyMode,
    pub tail_fraction: f64,
}

impl WorkModel {
    pub fn from_args(a: &Args) -> Self {
        Self {
            error_rate: a.error_rate,
            latency_ms: a.latency_ms,
            latency_sigma: a.latency_sigma,
            added_latency_ms: a.added_latency_ms,
            latency_mode: a.latency_mode,
            tail_fraction: a.tail_fraction,
        }
    }

    /// One request: (latency in ms, fails?).
    pub fn draw(&self, rng: &mut SplitMix64) -> (f64, bool) {
        let base = self.latency_ms * (self.latency_sigma * rng.normal()).exp();
        let total = match self.latency_mode {
            LatencyMode::Constant => base + self.added_latency_ms,
            LatencyMode::Proportional => {
                if self.latency_ms > 0.0 {
                    base * (self.latency_ms + self.added_latency_ms) / self.latency_ms
                } else {
                    base + self.added_latency_ms
                }
            }
            LatencyMode::Tail => {
                if rng.uniform() < self.tail_fraction {
                    base + self.added_latency_ms
                } else {
                    base
                }
            }
        };
        let fails = rng.uniform() < self.error_rate;
        (total.max(0.0), fails)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    method: String,
    path: String,
}

/// Bucket bounds of `http_request_duration_seconds`: Prometheus' defaults plus finer ones around
/// the usual p95/p99 of a few-to-few-hundred-millisecond service.
pub fn duration_buckets() -> Vec<f64> {
    let mut b: Vec<f64> = vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, // defaults
        0.001, 0.0025, 0.0075, 0.015, 0.02, 0.03, 0.04, 0.06, 0.075, 0.125, 0.15, 0.2, 0.3, 0.4,
        0.75,
    ];
    b.sort_by(|a, b| a.total_cmp(b));
    b.dedup();
    b
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    payment_attempts: Counter,
    payment_failures: Counter,
}

fn new_histogram() -> Histogram {
    Histogram::new(duration_buckets())
}

impl Metrics {
    fn new(version: &str) -> Self {
        let mut registry = Registry::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: version.to_string(),
            })
            .set(1);
        registry.register(
            "demo_app_build_info",
            "Always 1; the version label says what this instance runs",
            build,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(new_histogram);
        registry.register(
            "http_requests",
            "Requests to / by status code",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Latency of requests to /, in seconds",
            durations.clone(),
        );
        // Both outcomes exist from the start at zero: Prometheus' increase() cannot see the
        // first increment of a series it has never scraped, so a series born at the first error
        // would lose that error (and bias the comparison toward whichever arm errs first).
        for code in ["200", "500"] {
            let labels = RequestLabels {
                code: code.into(),
                method: "GET".into(),
                path: "/".into(),
            };
            let _ = requests.get_or_create(&labels);
            let _ = durations.get_or_create(&labels);
        }
        // the business family: plain counters, so they exist (at zero) from the first scrape
        let payment_attempts = Counter::default();
        let payment_failures = Counter::default();
        registry.register(
            "payments_attempts",
            "Payment attempts (one per request to /)",
            payment_attempts.clone(),
        );
        registry.register(
            "payments_failures",
            "Failed payment attempts",
            payment_failures.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            payment_attempts,
            payment_failures,
        }
    }
}

struct AppState {
    version: String,
    dependencies: serde_json::Map<String, serde_json::Value>,
    flags: serde_json::Map<String, serde_json::Value>,
    config_hash: String,
    fault: Option<VersionFault>,
    model: WorkModel,
    payment_failure_rate: f64,
    rng: Mutex<SplitMix64>,
    metrics: Metrics,
}

/// Builds the router (public so tests can serve it on an ephemeral port).
pub fn router(args: &Args) -> Router {
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        nanos ^ ((std::process::id() as u64) << 32)
    });
    let state = Arc::new(AppState {
        version: args.app_version.clone(),
        dependencies: args
            .dependencies
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        flags: args
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), flag_value(v)))
            .collect(),
        config_hash: config_hash(&args.config),
        fault: args.version_fault,
        model: WorkModel::from_args(args),
        payment_failure_rate: args.payment_failure_rate,
        rng: Mutex::new(SplitMix64::new(seed)),
        metrics: Metrics::new(&args.app_version),
    });
    Router::new()
        .route("/", get(work))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

async fn work(State(st): State<Arc<AppState>>) -> Response {
    let started = Instant::now();
    let (latency_ms, fails, payment_fails) = {
        let mut rng = match st.rng.lock() {
            Ok(rng) => rng,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (latency_ms, fails) = st.model.draw(&mut rng);
        (latency_ms, fails, rng.uniform() < st.payment_failure_rate)
    };
    st.metrics.payment_attempts.inc();
    if payment_fails {
        st.metrics.payment_failures.inc();
    }
    tokio::time::sleep(Duration::from_secs_f64(latency_ms / 1000.0)).await;
    let code = if fails {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let labels = RequestLabels {
        code: code.as_u16().to_string(),
        method: "GET".into(),
        path: "/".into(),
    };
    st.metrics.requests.get_or_create(&labels).inc();
    st.metrics
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let body = if fails { "error\n" } else { "ok\n" };
    (code, body).into_response()
}

async fn version(State(st): State<Arc<AppState>>) -> Response {
    let json = |v: serde_json::Value| {
        ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
    };
    match st.fault {
        None => {
            let mut body = serde_json::json!({"version": st.version, "configHash": st.config_hash});
            if !st.dependencies.is_empty() {
                body["dependencies"] = serde_json::Value::Object(st.dependencies.clone());
            }
            if !st.flags.is_empty() {
                body["flags"] = serde_json::Value::Object(st.flags.clone());
            }
            json(body)
        }
        Some(VersionFault::Hang) => std::future::pending().await,
        Some(VersionFault::Status500) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "injected fault\n").into_response()
        }
        Some(VersionFault::Garbage) => (
            [(header::CONTENT_TYPE, "application/json")],
            "<html>not json",
        )
            .into_response(),
        Some(VersionFault::MissingField) => json(serde_json::json!({"version": st.version})),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &st.metrics.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}\n")).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_hash_of_empty_config_is_sha256_of_empty_string() {
        assert_eq!(
            config_hash(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn config_hash_is_order_independent_and_matches_canonical_form() {
        let a = kv(&[("b", "2"), ("a", "1")]);
        let b = kv(&[("a", "1"), ("b", "2")]);
        assert_eq!(canonical_config(&a), "a=1\nb=2\n");
        assert_eq!(config_hash(&a), config_hash(&b));
        // sha256("a=1\nb=2\n"), computed independently with `printf 'a=1\nb=2\n' | sha256sum`
        assert_eq!(
            config_hash(&a),
            "4a73850fde34aad40ff8649b93a66523a5fe744357a3931caea0f10609d0d930"
        );
        assert_ne!(config_hash(&a), config_hash(&kv(&[("a", "1"), ("b", "3")])));
    }

    #[test]
    fn repeated_key_keeps_last_value() {
        assert_eq!(canonical_config(&kv(&[("a", "1"), ("a", "2")])), "a=2\n");
    }

    #[test]
    fn parses_flags() {
        let a = Args::try_parse_from([
            "demo-app",
            "--version",
            "1.2.3",
            "--config",
            "b=2",
            "--config",
            "a=x=y",
            "--error-rate",
            "0.25",
            "--latency-mode",
            "tail",
            "--version-fault",
            "missing-field",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(a.app_version, "1.2.3");
        assert_eq!(a.config, kv(&[("b", "2"), ("a", "x=y")]));
        assert_eq!(a.error_rate, 0.25);
        assert_eq!(a.latency_mode, LatencyMode::Tail);
        assert_eq!(a.version_fault, Some(VersionFault::MissingField));
        assert_eq!(a.listen, "127.0.0.1:8080");
        assert_eq!(a.latency_ms, 5.0);
        assert_eq!(a.tail_fraction, 0.05);
        assert_eq!(a.seed, Some(7));
    }

    #[test]
    fn rejects_bad_knobs() {
        for bad in [
            vec!["--error-rate", "1.5"],
            vec!["--error-rate", "x"],
            vec!["--latency-ms", "-1"],
            vec!["--latency-mode", "weird"],
            vec!["--version-fault", "explode"],
            vec!["--config", "novalue"],
            vec!["--config", "=v"],
        ] {
            let mut argv = vec!["demo-app", "--version", "1"];
            argv.extend(bad.iter().copied());
            assert!(Args::try_parse_from(&argv).is_err(), "accepted {bad:?}");
        }
        assert!(
            Args::try_parse_from(["demo-app"]).is_err(),
            "version is required"
        );
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_kv("k=v=w"), Ok(("k".into(), "v=w".into())));
        assert_eq!(parse_kv("k="), Ok(("k".into(), "".into())));
        assert!(parse_kv("k").is_err());
        assert_eq!(parse_probability("0"), Ok(0.0));
        assert!(parse_probability("-0.1").is_err());
        assert!(parse_non_negative("inf").is_err());
    }

    fn model(mode: LatencyMode, added: f64) -> WorkModel {
        WorkModel {
            error_rate: 0.1,
            latency_ms: 10.0,
            latency_sigma: 0.3,
            added_latency_ms: added,
            latency_mode: mode,
            tail_fraction: 0.05,
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    #[test]
    fn latency_model_shapes() {
        let n = 20_000;
        let run = |m: &WorkModel| {
            let mut rng = SplitMix64::new(42);
            let draws: Vec<(f64, bool)> = (0..n).map(|_| m.draw(&mut rng)).collect();
            let errs = draws.iter().filter(|d| d.1).count() as f64 / n as f64;
            (draws.into_iter().map(|d| d.0).collect::<Vec<_>>(), errs)
        };
        let (base, errs) = run(&model(LatencyMode::Constant, 0.0));
        assert!((median(base.clone()) - 10.0).abs() < 0.5);
        assert!((errs - 0.1).abs() < 0.01, "error rate {errs}");
        let (c, _) = run(&model(LatencyMode::Constant, 20.0));
        assert!((median(c) - 30.0).abs() < 0.6);
        let (p, _) = run(&model(LatencyMode::Proportional, 20.0));
        assert!((median(p) - 30.0).abs() < 1.5);
        let (t, _) = run(&model(LatencyMode::Tail, 100.0));
        let slow = t.iter().filter(|&&x| x > 60.0).count() as f64 / n as f64;
        assert!((slow - 0.05).abs() < 0.01, "tail share {slow}");
        assert!((median(t) - 10.0).abs() < 0.6);
    }

    #[test]
    fn buckets_are_sorted_and_include_defaults() {
        let b = duration_buckets();
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        for d in [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 0.015, 0.4,
        ] {
            assert!(b.contains(&d), "{d}");
        }
    }

    #[test]
    fn error_series_exist_at_zero_before_any_request() {
        let metrics = Metrics::new("1.2.3");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &metrics.registry).unwrap();
        for code in ["200", "500"] {
            let line =
                format!("http_requests_total{{code=\"{code}\",method=\"GET\",path=\"/\"}} 0");
            assert!(out.contains(&line), "missing {line} in\n{out}");
        }
        assert!(
            out.contains("demo_app_build_info{version=\"1.2.3\"} 1"),
            "missing build_info in\n{out}"
        );
    }

    /// One HTTP/1.1 GET over a fresh connection; the whole answer as text.
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap()
    }

    /// The business family regresses on its own knob: every payment fails, every HTTP answer
    /// is still a 200; with the knob at 0 no payment fails.
    #[tokio::test]
    async fn payment_failures_follow_their_knob_and_not_the_http_error_rate() {
        for (rate, want_failures) in [("1", 20), ("0", 0)] {
            let args = Args::try_parse_from([
                "demo-app",
                "--version",
                "1",
                "--latency-ms",
                "0",
                "--payment-failure-rate",
                rate,
            ])
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = router(&args);
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let before = get(addr, "/metrics").await;
            assert!(before.contains("payments_attempts_total 0"), "{before}");
            assert!(before.contains("payments_failures_total 0"), "{before}");
            for _ in 0..20 {
                assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
            }
            let after = get(addr, "/metrics").await;
            assert!(after.contains("payments_attempts_total 20"), "{after}");
            let failures = format!("payments_failures_total {want_failures}\n");
            assert!(after.contains(&failures), "{after}");
            assert!(
                after.contains("http_requests_total{code=\"500\",method=\"GET\",path=\"/\"} 0"),
                "{after}"
            );
            server.abort();
        }
        assert!(Args::try_parse_from(["demo-app", "--payment-failure-rate", "1.5"]).is_err());
    }

    #[test]
    fn dependencies_and_flags_knobs() {
        let a = Args::try_parse_from([
            "demo-app",
            "--version",
            "1",
            "--dependency",
            "postgres=15.4",
            "--dependency",
            "redis=7.2.1",
            "--flag",
            "powerPeg=false",
            "--flag",
            "colour=blue",
        ])
        .unwrap();
        assert_eq!(
            a.dependencies,
            kv(&[("postgres", "15.4"), ("redis", "7.2.1")])
        );
        assert_eq!(a.flags, kv(&[("powerPeg", "false"), ("colour", "blue")]));
        assert_eq!(flag_value("false"), serde_json::json!(false));
        assert_eq!(flag_value("3"), serde_json::json!(3));
        assert_eq!(flag_value("blue"), serde_json::json!("blue"));
        assert_eq!(flag_value("\"true\""), serde_json::json!("true"));
        assert_eq!(flag_value("[1]"), serde_json::json!("[1]"));
        assert!(Args::try_parse_from(["demo-app", "--version", "1", "--flag", "x"]).is_err());
    }
}
