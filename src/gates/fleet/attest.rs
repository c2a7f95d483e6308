//! Asking pods what they run: the [`Attestor`] trait, its HTTP implementation, and attestation
//! of many pods with bounded concurrency.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::model::{AttestError, Attestation, PodObservation, PodTarget};
use super::probe;

/// A configuration the operator cannot use (permanent: wait for a change of spec).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("path must start with '/': {0:?}")]
    Path(String),
    #[error("{field} is not a JSON pointer (must be empty or start with '/'): {pointer:?}")]
    Pointer {
        field: &'static str,
        pointer: String,
    },
    #[error("port must not be 0")]
    Port,
    #[error("timeout must be positive")]
    Timeout,
    #[error("concurrency must be at least 1")]
    Concurrency,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Where and how pods are asked. Defaults: `GET :8080/version`, `/version` and `/configHash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestConfig {
    pub port: u16,
    pub path: String,
    /// JSON pointer (RFC 6901) to the version in the answer.
    pub version_pointer: String,
    /// JSON pointer to the configuration hash in the answer.
    pub config_hash_pointer: String,
    /// JSON pointer to the dependency versions (`{"postgres": "15.4"}`); absent means none.
    #[serde(default = "default_dependencies_pointer")]
    pub dependencies_pointer: String,
    /// JSON pointer to the flags (`{"powerPeg": false}`); absent means none.
    #[serde(default = "default_flags_pointer")]
    pub flags_pointer: String,
    /// Deadline for one pod: connect, headers and body.
    #[serde(with = "crate::util::duration::millis")]
    pub timeout: Duration,
    /// How many pods are asked at once.
    pub concurrency: usize,
    pub max_body_bytes: usize,
}

impl Default for AttestConfig {
    fn default() -> Self {
        AttestConfig {
            port: 8080,
            path: "/version".into(),
            version_pointer: "/version".into(),
            config_hash_pointer: "/configHash".into(),
            dependencies_pointer: default_dependencies_pointer(),
            flags_pointer: default_flags_pointer(),
            timeout: Duration::from_secs(5),
            concurrency: 32,
            max_body_bytes: probe::DEFAULT_MAX_BODY_BYTES,
        }
    }
}

fn default_dependencies_pointer() -> String {
    "/dependencies".into()
}

fn default_flags_pointer() -> String {
    "/flags".into()
}

/// Most entries read from a pod's dependencies or flags: a hostile or broken pod cannot make
/// the operator hold (or write to status) an unbounded map. Past it the pod fails.
pub const MAX_ENTRIES: usize = 64;
/// Longest key (dependency or flag name) read from a pod, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest value (a dependency's version, a flag's JSON text) read from a pod, in characters.
pub const MAX_VALUE_CHARS: usize = 256;

impl AttestConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::Path(self.path.clone()));
        }
        for (field, pointer) in [
            ("versionPointer", &self.version_pointer),
            ("configHashPointer", &self.config_hash_pointer),
            ("dependenciesPointer", &self.dependencies_pointer),
            ("flagsPointer", &self.flags_pointer),
        ] {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(ConfigError::Pointer {
                    field,
                    pointer: pointer.clone(),
                });
            }
        }
        if self.port == 0 {
            return Err(ConfigError::Port);
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        if self.concurrency == 0 {
            return Err(ConfigError::Concurrency);
        }
        Ok(())
    }
}

/// Parse an attestation answer: JSON, with non-empty strings at both pointers.
pub fn parse_attestation(config: &AttestConfig, body: &[u8]) -> Result<Attestation, AttestError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AttestError::InvalidBody {
            error: e.to_string(),
            body: probe::excerpt(body, 120),
        })?;
    let field = |name: &'static str, pointer: &str| -> Result<String, AttestError> {
        match value.pointer(pointer) {
            None | Some(serde_json::Value::Null) => Err(AttestError::MissingField {
                field: name,
                pointer: pointer.to_string(),
            }),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(other) => Err(AttestError::InvalidField {
                field: name,
                pointer: pointer.to_string(),
                found: probe::excerpt(other.to_string().as_bytes(), 80),
            }),
        }
    };
    Ok(Attestation {
        version: field("version", &config.version_pointer)?,
        config_hash: Some(field("configHash", &config.config_hash_pointer)?),
        dependencies: entries(
            &value,
            "dependencies",
            &config.dependencies_pointer,
            |v| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                other => Err(format!(
                    "is {} rather than a non-empty version string",
                    probe::excerpt(other.to_string().as_bytes(), 40)
                )),
            },
        )?,
        flags: entries(&value, "flags", &config.flags_pointer, |v| match v {
            serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_) => Ok(v.to_string()),
            other => Err(format!(
                "is {} rather than a boolean, number or string",
                probe::excerpt(other.to_string().as_bytes(), 40)
            )),
        })?,
    })
}

/// A bounded map of `name -> text` at `pointer`: absent (or null) is empty; anything else than
/// an object of at most [`MAX_ENTRIES`] well-formed entries fails the pod, naming the entry.
fn entries(
    value: &serde_json::Value,
    field: &'static str,
    pointer: &str,
    text: impl Fn(&serde_json::Value) -> Result<String, String>,
) -> Result<BTreeMap<String, String>, AttestError> {
    let bad = |reason: String| AttestError::InvalidEntries {
        field,
        pointer: pointer.to_string(),
        reason,
    };
    let object = match value.pointer(pointer) {
        None | Some(serde_json::Value::Null) => return Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(o)) => o,
        Some(other) => {
            return Err(bad(format!(
                "not an object: {}",
                probe::excerpt(other.to_string().as_bytes(), 40)
            )))
        }
    };
    if object.len() > MAX_ENTRIES {
        return Err(bad(format!(
            "{} entries, more than the {MAX_ENTRIES} read",
            object.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (key, v) in object {
        let shown_key = probe::excerpt(key.as_bytes(), 40);
        if key.trim().is_empty() || key.chars().count() > MAX_KEY_CHARS {
            return Err(bad(format!(
                "key {shown_key:?} is empty or longer than {MAX_KEY_CHARS} characters"
            )));
        }
        let t = text(v).map_err(|e| bad(format!("{shown_key:?} {e}")))?;
        if t.chars().count() > MAX_VALUE_CHARS {
            return Err(bad(format!(
                "{shown_key:?} is longer than {MAX_VALUE_CHARS} characters"
            )));
        }
        out.insert(key.clone(), t);
    }
    Ok(out)
}

/// Something that asks one pod what it runs. Tests run the HTTP implementation against real
/// demo-app processes; other implementations (e.g. exec into the pod) can slot in here.
pub trait Attestor: Sync {
    fn attest(
        &self,
        target: &PodTarget,
    ) -> impl Future<Output = Result<Attestation, AttestError>> + Send;
}

/// Attestation over HTTP: `GET http://<podIP>:<port><path>`.
#[derive(Debug, Clone)]
pub struct HttpAttestor {
    config: AttestConfig,
    client: reqwest::Client,
}

impl HttpAttestor {
    pub fn new(config: AttestConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let client = probe::pod_client(config.timeout)
            .map_err(|e| ConfigError::Client(probe::error_chain(&e)))?;
        Ok(HttpAttestor { config, client })
    }

    pub fn config(&self) -> &AttestConfig {
        &self.config
    }
}

impl Attestor for HttpAttestor {
    async fn attest(&self, target: &PodTarget) -> Result<Attestation, AttestError> {
        let url = probe::pod_url(target.ip, self.config.port, &self.config.path);
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        let response =
            probe::exchange(request, self.config.timeout, self.config.max_body_bytes).await?;
        if !(200..300).contains(&response.status) {
            return Err(AttestError::HttpStatus {
                status: response.status,
                body: probe::excerpt(&response.body, 120),
            });
        }
        parse_attestation(&self.config, &response.body)
    }
}

/// Attest every target, at most `concurrency` at once. One observation per target, sorted by
/// track and name (the order of answers does not leak into the result).
pub async fn attest_all<A: Attestor>(
    attestor: &A,
    targets: Vec<PodTarget>,
    concurrency: usize,
) -> Vec<PodObservation> {
    let mut observations: Vec<PodObservation> = stream::iter(targets)
        .map(|target| async move {
            let result = attestor.attest(&target).await;
            PodObservation { target, result }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    observations.sort_by(|a, b| a.target.cmp(&b.target));
    observations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::fleet::ProblemKind;

    fn cfg() -> AttestConfig {
        AttestConfig::default()
    }

    #[test]
    fn parses_the_default_shape() {
        let a = parse_attestation(&cfg(), br#"{"version":"1.2.3","configHash":"abc"}"#).unwrap();
        assert_eq!(a.version, "1.2.3");
        assert_eq!(a.config_hash.as_deref(), Some("abc"));
        assert!(a.dependencies.is_empty() && a.flags.is_empty());
    }

    #[test]
    fn follows_configured_pointers() {
        let c = AttestConfig {
            version_pointer: "/build/version".into(),
            config_hash_pointer: "/config/sha256".into(),
            ..cfg()
        };
        let a = parse_attestation(&c, br#"{"build":{"version":"2"},"config":{"sha256":"ff"}}"#)
            .unwrap();
        assert_eq!(a.version, "2");
        assert_eq!(a.config_hash.as_deref(), Some("ff"));
    }

    #[test]
    fn garbage_and_missing_fields_fail_with_their_kind() {
        let e = parse_attestation(&cfg(), b"<html>oops</html>").unwrap_err();
        assert_eq!(e.kind(), ProblemKind::InvalidBody);
        assert_eq!(e.reported().as_deref(), Some("<html>oops</html>"));

        let e = parse_attestation(&cfg(), br#"{"version":"1"}"#).unwrap_err();
        assert_eq!(e.kind(), ProblemKind::MissingField);
        assert!(e.to_string().contains("configHash"), "{e}");

        let e = parse_attestation(&cfg(), br#"{"version":"1","configHash":null}"#).unwrap_err();
        assert_eq!(e.kind(), ProblemKind::MissingField, "{e}");
        // Present but not a usable string: not "missing", which would send one looking for it.
        for body in [
            &br#"{"version":1,"configHash":"a"}"#[..],
            br#"{"version":"","configHash":"a"}"#,
            br#"{"version":"1","configHash":["a"]}"#,
        ] {
            let e = parse_attestation(&cfg(), body).unwrap_err();
            assert_eq!(e.kind(), ProblemKind::InvalidField, "{e}");
        }
        let e = parse_attestation(&cfg(), b"[1,2]").unwrap_err();
        assert_eq!(e.kind(), ProblemKind::MissingField);
    }

    #[test]
    fn reads_dependencies_and_flags() {
        let a = parse_attestation(
            &cfg(),
            br#"{"version":"1","configHash":"h","dependencies":{"postgres":"15.4","redis":" 7.2.1 "},
                "flags":{"powerPeg":false,"colour":"blue","limit":3}}"#,
        )
        .unwrap();
        assert_eq!(a.dependencies["postgres"], "15.4");
        assert_eq!(a.dependencies["redis"], "7.2.1", "trimmed");
        assert_eq!(a.flags["powerPeg"], "false");
        assert_eq!(
            a.flags["colour"], "\"blue\"",
            "JSON text: \"true\" is not true"
        );
        assert_eq!(a.flags["limit"], "3");
        // Configured pointers; null is none.
        let c = AttestConfig {
            dependencies_pointer: "/deps".into(),
            flags_pointer: "/settings/flags".into(),
            ..cfg()
        };
        let a = parse_attestation(
            &c,
            br#"{"version":"1","configHash":"h","deps":{"pg":"16"},"settings":{"flags":null}}"#,
        )
        .unwrap();
        assert_eq!(a.dependencies["pg"], "16");
        assert!(a.flags.is_empty());
    }

    #[test]
    fn hostile_maps_fail_the_pod_naming_the_entry() {
        let many: String = (0..=MAX_ENTRIES)
            .map(|i| format!("\"d{i}\":\"1\""))
            .collect::<Vec<_>>()
            .join(",");
        let long_key = "k".repeat(MAX_KEY_CHARS + 1);
        let long_value = "9".repeat(MAX_VALUE_CHARS + 1);
        let cases = [
            (format!(r#"{{"dependencies":{{{many}}}}}"#), "entries"),
            (r#"{"dependencies":["pg"]}"#.to_string(), "not an object"),
            (r#"{"dependencies":{"pg":15}}"#.to_string(), "\"pg\" is 15"),
            (r#"{"dependencies":{"pg":""}}"#.to_string(), "\"pg\""),
            (
                format!(r#"{{"dependencies":{{"{long_key}":"1"}}}}"#),
                "longer than",
            ),
            (
                format!(r#"{{"dependencies":{{"pg":"{long_value}"}}}}"#),
                "longer than",
            ),
            (r#"{"flags":{"f":{"nested":true}}}"#.to_string(), "\"f\" is"),
            (r#"{"flags":{"":true}}"#.to_string(), "empty"),
        ];
        for (extra, needle) in cases {
            let body = format!(r#"{{"version":"1","configHash":"h",{}"#, &extra[1..]);
            let e = parse_attestation(&cfg(), body.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ProblemKind::InvalidField, "{body}: {e}");
            assert!(e.to_string().contains(needle), "{body}: {e}");
            assert!(e.to_string().len() < 400, "bounded message: {e}");
        }
    }

    #[test]
    fn validates_configuration() {
        assert_eq!(cfg().validate(), Ok(()));
        let bad = [
            AttestConfig {
                path: "version".into(),
                ..cfg()
            },
            AttestConfig {
                version_pointer: "version".into(),
                ..cfg()
            },
            AttestConfig {
                flags_pointer: "flags".into(),
                ..cfg()
            },
            AttestConfig { port: 0, ..cfg() },
            AttestConfig {
                timeout: Duration::ZERO,
                ..cfg()
            },
            AttestConfig {
                concurrency: 0,
                ..cfg()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
            assert!(HttpAttestor::new(c).is_err());
        }
    }

    /// Counts answers in flight; not a stand-in for a pod (the HTTP attestor is tested against
    /// real demo-app processes), only a probe of the fan-out.
    struct Gauge {
        in_flight: std::sync::atomic::AtomicUsize,
        peak: std::sync::atomic::AtomicUsize,
    }

    impl Attestor for Gauge {
        async fn attest(&self, target: &PodTarget) -> Result<Attestation, AttestError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, SeqCst);
            Ok(Attestation {
                version: target.name.clone(),
                config_hash: Some("h".into()),
                ..Default::default()
            })
        }
    }

    #[tokio::test]
    async fn fan_out_is_bounded_and_complete() {
        use crate::gates::fleet::Track;
        let gauge = Gauge {
            in_flight: 0.into(),
            peak: 0.into(),
        };
        let targets: Vec<PodTarget> = (0..40u8)
            .rev()
            .map(|i| PodTarget {
                track: Track::Canary,
                name: format!("p{i:02}"),
                ip: std::net::IpAddr::from([127, 0, 0, i + 1]),
            })
            .collect();
        let obs = attest_all(&gauge, targets, 6).await;
        assert_eq!(obs.len(), 40);
        assert_eq!(gauge.peak.load(std::sync::atomic::Ordering::SeqCst), 6);
        assert_eq!(
            obs[0].target.name, "p00",
            "sorted whatever the answer order"
        );
        assert!(obs
            .iter()
            .all(|o| o.result.as_ref().map(|a| &a.version) == Ok(&o.target.name)));
        // Zero is taken as one rather than hanging forever.
        let obs = attest_all(
            &gauge,
            obs.into_iter().map(|o| o.target).take(3).collect(),
            0,
        )
        .await;
        assert_eq!(obs.len(), 3);
    }

    #[test]
    fn config_round_trips_through_json() {
        let json = serde_json::to_value(cfg()).unwrap();
        assert_eq!(json["timeout"], 5000);
        let back: AttestConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg());
    }
}
