//! Broker connection settings and credentials.
//!
//! Credentials come from two places:
//! - the operator reads a Kubernetes Secret; [`credentials_from_secret_data`] takes its `data` map
//!   (keys `token`, or `username` + `password`);
//! - the CLI reads `PACT_BROKER_BASE_URL`, `PACT_BROKER_TOKEN`, `PACT_BROKER_USERNAME` and
//!   `PACT_BROKER_PASSWORD` ([`BrokerConfig::from_env`]).
//!
//! A bearer token and basic auth at once is a configuration error: tollgate will not guess which one
//! the broker expects. Secret values are wrapped in [`SecretString`], whose `Debug` and `Display`
//! print `[redacted]`, so no log line, status field, event or error message can carry them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::error::ConfigError;

/// Key of a bearer token in the credentials Secret.
pub const SECRET_KEY_TOKEN: &str = "token";
/// Key of the basic-auth user name in the credentials Secret.
pub const SECRET_KEY_USERNAME: &str = "username";
/// Key of the basic-auth password in the credentials Secret.
pub const SECRET_KEY_PASSWORD: &str = "password";

/// Environment variable with the broker's base URL (CLI).
pub const ENV_BASE_URL: &str = "PACT_BROKER_BASE_URL";
/// Environment variable with a bearer token (CLI).
pub const ENV_TOKEN: &str = "PACT_BROKER_TOKEN";
/// Environment variable with the basic-auth user name (CLI).
pub const ENV_USERNAME: &str = "PACT_BROKER_USERNAME";
/// Environment variable with the basic-auth password (CLI).
pub const ENV_PASSWORD: &str = "PACT_BROKER_PASSWORD";

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of a whole request (connect, send, read the body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on the size of a broker answer. Real matrix answers are a few KiB; a page of many
/// megabytes is a misconfigured proxy or an attack, and must not be buffered whole.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for building the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How tollgate authenticates to the broker.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>` (PactFlow and brokers behind token proxies).
    Bearer(SecretString),
    /// HTTP basic auth (the open-source Pact Broker).
    Basic {
        username: String,
        password: SecretString,
    },
}

impl Credentials {
    /// A short description that is safe to show: the kind, never the secret. The user name is not
    /// shown either; it is often half of the secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Bearer(_) => "bearer token",
            Credentials::Basic { .. } => "basic auth",
        }
    }

    /// Every secret value, so error texts built from outside data can be scrubbed of them.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        match self {
            Credentials::Bearer(t) => vec![t.expose()],
            Credentials::Basic { username, password } => vec![username.as_str(), password.expose()],
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credentials::Basic { .. } => {
                f.write_str("Basic { username: [redacted], password: [redacted] }")
            }
        }
    }
}

/// Retry of transient failures (connect errors, timeouts, 5xx, 408, 429).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; at least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest wait computed by backoff.
    pub max_backoff: Duration,
    /// Longest wait tollgate accepts from a `Retry-After` header; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff before attempt `failed_attempts + 1` (`failed_attempts >= 1`).
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(20);
        let factor = 1u32 << exp;
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The wait before the next attempt: the broker's `Retry-After` when it sent one (capped),
    /// otherwise backoff.
    pub fn wait_before_retry(
        &self,
        failed_attempts: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        match retry_after {
            Some(ra) => ra.min(self.max_retry_after),
            None => self.backoff(failed_attempts),
        }
    }
}

/// Everything the HTTP client needs to talk to one broker. Independent of the CRD: the controller
/// maps its spec fields onto this.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Base URL of the broker (e.g. `https://broker.example.com/` or with a path prefix). Never holds
    /// credentials: a URL with `user:password@` is refused.
    pub base_url: Url,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

impl BrokerConfig {
    /// A configuration with default timeouts and body cap.
    pub fn new(base_url: &str, credentials: Option<Credentials>) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: parse_base_url(base_url)?,
            credentials,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Read the CLI's environment variables through `lookup` (pass `|k| std::env::var(k).ok()`).
    /// `PACT_BROKER_BASE_URL` is required; credentials are optional (an open broker).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = lookup(ENV_BASE_URL)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::MissingBaseUrl)?;
        let token = lookup(ENV_TOKEN);
        let username = lookup(ENV_USERNAME);
        let password = lookup(ENV_PASSWORD);
        let credentials = credentials_from_parts(
            CredentialSource::Environment,
            token.as_deref(),
            username.as_deref(),
            password.as_deref(),
        )?;
        Self::new(&base, credentials)
    }
}

/// Parse and check a broker base URL: http or https, no credentials in it, and a trailing `/`
/// added so that relative paths join under a path prefix.
pub fn parse_base_url(value: &str) -> Result<Url, ConfigError> {
    let trimmed = value.trim();
    let mut url = Url::parse(trimmed).map_err(|e| ConfigError::InvalidBaseUrl {
        reason: e.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::CredentialsInUrl);
    }
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::InvalidBaseUrl {
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    if url.host_str().is_none() {
        return Err(ConfigError::InvalidBaseUrl {
            reason: "it has no host".to_string(),
        });
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Where credentials were read from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Secret,
    Environment,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Secret => {
                f.write_str("the broker credentials Secret (keys token, username, password)")
            }
            CredentialSource::Environment => f.write_str(
                "the environment (PACT_BROKER_TOKEN, PACT_BROKER_USERNAME, PACT_BROKER_PASSWORD)",
            ),
        }
    }
}

/// Bytes of a Secret's data value: implemented for `k8s_openapi::ByteString` and `Vec<u8>`.
pub trait SecretBytes {
    fn secret_bytes(&self) -> &[u8];
}

impl SecretBytes for Vec<u8> {
    fn secret_bytes(&self) -> &[u8] {
        self
    }
}

impl SecretBytes for k8s_openapi::ByteString {
    fn secret_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Credentials from a Kubernetes Secret's `data` map (already base64-decoded, as kube gives it).
///
/// Keys: `token` for a bearer token, or `username` and `password` for basic auth. Values are UTF-8;
/// leading and trailing whitespace (the newline `echo` leaves) is trimmed. Other keys are ignored,
/// so the same Secret can also hold e.g. the broker URL for other tools. No key at all means an open
/// broker (`Ok(None)`); `token` together with `username`/`password` is an error.
pub fn credentials_from_secret_data<V: SecretBytes>(
    data: &BTreeMap<String, V>,
) -> Result<Option<Credentials>, ConfigError> {
    let text = |key: &'static str| -> Result<Option<String>, ConfigError> {
        match data.get(key) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v.secret_bytes())
                .map(|s| Some(s.to_string()))
                .map_err(|_| ConfigError::NotUtf8 { key }),
        }
    };
    let token = text(SECRET_KEY_TOKEN)?;
    let username = text(SECRET_KEY_USERNAME)?;
    let password = text(SECRET_KEY_PASSWORD)?;
    credentials_from_parts(
        CredentialSource::Secret,
        token.as_deref(),
        username.as_deref(),
        password.as_deref(),
    )
}

/// The shared rules for both sources.
pub fn credentials_from_parts(
    source: CredentialSource,
    token: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Option<Credentials>, ConfigError> {
    let clean = |v: Option<&str>, key: &'static str| -> Result<Option<String>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Err(ConfigError::EmptyCredential {
                key,
                origin: source,
            }),
            Some(s) => Ok(Some(s.trim().to_string())),
        }
    };
    let token = clean(token, SECRET_KEY_TOKEN)?;
    let username = clean(username, SECRET_KEY_USERNAME)?;
    let password = clean(password, SECRET_KEY_PASSWORD)?;
    match (token, username, password) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(ConfigError::ConflictingCredentials { origin: source })
        }
        (Some(t), None, None) => Ok(Some(Credentials::Bearer(SecretString::new(t)))),
        (None, Some(u), Some(p)) => Ok(Some(Credentials::Basic {
            username: u,
            password: SecretString::new(p),
        })),
        (None, Some(_), None) => Err(ConfigError::IncompleteBasicAuth {
            missing: SECRET_KEY_PASSWORD,
            origin: source,
        }),
        (None, None, Some(_)) => Err(ConfigError::IncompleteBasicAuth {
            missing: SECRET_KEY_USERNAME,
            origin: source,
        }),
        (None, None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn secret_with_token_is_bearer() {
        let c = credentials_from_secret_data(&data(&[("token", "s3cr3t\n")])).unwrap();
        assert_eq!(c, Some(Credentials::Bearer(SecretString::new("s3cr3t"))));
    }

    #[test]
    fn secret_with_user_and_password_is_basic() {
        let c =
            credentials_from_secret_data(&data(&[("username", "ci"), ("password", "pw")])).unwrap();
        assert!(matches!(c, Some(Credentials::Basic { ref username, .. }) if username == "ci"));
    }

    #[test]
    fn byte_string_values_work() {
        let mut d = BTreeMap::new();
        d.insert(
            "token".to_string(),
            k8s_openapi::ByteString(b"abc".to_vec()),
        );
        assert!(matches!(
            credentials_from_secret_data(&d),
            Ok(Some(Credentials::Bearer(_)))
        ));
    }

    #[test]
    fn token_and_basic_is_a_conflict() {
        let e = credentials_from_secret_data(&data(&[
            ("token", "t"),
            ("username", "u"),
            ("password", "p"),
        ]))
        .unwrap_err();
        assert!(matches!(e, ConfigError::ConflictingCredentials { .. }));
        let e =
            credentials_from_secret_data(&data(&[("token", "t"), ("password", "p")])).unwrap_err();
        assert!(matches!(e, ConfigError::ConflictingCredentials { .. }));
    }

    #[test]
    fn half_basic_auth_and_empty_values_are_errors() {
        assert!(matches!(
            credentials_from_secret_data(&data(&[("username", "u")])),
            Err(ConfigError::IncompleteBasicAuth {
                missing: "password",
                ..
            })
        ));
        assert!(matches!(
            credentials_from_secret_data(&data(&[("password", "p")])),
            Err(ConfigError::IncompleteBasicAuth {
                missing: "username",
                ..
            })
        ));
        assert!(matches!(
            credentials_from_secret_data(&data(&[("token", " \n")])),
            Err(ConfigError::EmptyCredential { key: "token", .. })
        ));
        let mut d = data(&[]);
        d.insert("token".into(), vec![0xff, 0xfe]);
        assert!(matches!(
            credentials_from_secret_data(&d),
            Err(ConfigError::NotUtf8 { key: "token" })
        ));
    }

    #[test]
    fn no_keys_is_an_open_broker() {
        assert_eq!(
            credentials_from_secret_data(&data(&[("url", "x")])).unwrap(),
            None
        );
    }

    #[test]
    fn env_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(matches!(
            BrokerConfig::from_env(env(&[])),
            Err(ConfigError::MissingBaseUrl)
        ));
        let c = BrokerConfig::from_env(env(&[
            (ENV_BASE_URL, "http://127.0.0.1:9292/prefix"),
            (ENV_TOKEN, "t"),
        ]))
        .unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9292/prefix/");
        assert!(matches!(c.credentials, Some(Credentials::Bearer(_))));
        assert!(matches!(
            BrokerConfig::from_env(env(&[
                (ENV_BASE_URL, "http://b"),
                (ENV_TOKEN, "t"),
                (ENV_USERNAME, "u"),
                (ENV_PASSWORD, "p")
            ])),
            Err(ConfigError::ConflictingCredentials {
                origin: CredentialSource::Environment
            })
        ));
    }

    #[test]
    fn base_url_rules() {
        assert!(matches!(
            parse_base_url("http://u:p@broker/"),
            Err(ConfigError::CredentialsInUrl)
        ));
        assert!(matches!(
            parse_base_url("ftp://broker/"),
            Err(ConfigError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            parse_base_url("not a url"),
            Err(ConfigError::InvalidBaseUrl { .. })
        ));
        assert_eq!(
            parse_base_url("https://b.example/x?y=1").unwrap().as_str(),
            "https://b.example/x/"
        );
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Basic {
            username: "alice-user".into(),
            password: SecretString::new("hunter2-pass"),
        };
        let cfg = BrokerConfig::new("http://broker/", Some(c)).unwrap();
        let shown = format!(
            "{cfg:?} {:?}",
            Credentials::Bearer(SecretString::new("tok-123"))
        );
        for s in ["alice-user", "hunter2-pass", "tok-123"] {
            assert!(!shown.contains(s), "{shown}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(7),
        };
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(3), Duration::from_secs(4));
        assert_eq!(p.backoff(4), Duration::from_secs(5));
        assert_eq!(p.backoff(100), Duration::from_secs(5));
        assert_eq!(
            p.wait_before_retry(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.wait_before_retry(1, Some(Duration::from_secs(300))),
            Duration::from_secs(7)
        );
    }
}
