//! Broker connection settings: base URL, credentials, timeouts and the body cap.
//!
//! Credentials come from two places, read by [`crate::util::credentials`] with the same rules as
//! Prometheus':
//! - the operator reads the Kubernetes Secret a Rollout names (keys `token`, or `username` +
//!   `password`; a Secret with none of them is an error, never an open broker);
//! - the CLI reads `PACT_BROKER_BASE_URL`, `PACT_BROKER_TOKEN`, `PACT_BROKER_USERNAME` and
//!   `PACT_BROKER_PASSWORD` ([`BrokerConfig::from_env`]); no credential variable means an open
//!   broker.
//!
//! Retries follow [`RetryPolicy::BROKER`] unless a caller says otherwise.

use std::time::Duration;

use reqwest::Url;

use super::error::ConfigError;
use crate::util::credentials::{self, Credentials, Source};
pub use crate::util::retry::RetryPolicy;

/// Environment variable with the broker's base URL (CLI).
pub const ENV_BASE_URL: &str = "PACT_BROKER_BASE_URL";
/// Environment variable with a bearer token (CLI).
pub const ENV_TOKEN: &str = "PACT_BROKER_TOKEN";
/// Environment variable with the basic-auth user name (CLI).
pub const ENV_USERNAME: &str = "PACT_BROKER_USERNAME";
/// Environment variable with the basic-auth password (CLI).
pub const ENV_PASSWORD: &str = "PACT_BROKER_PASSWORD";
/// The CLI's credential variables, for error messages.
pub const ENV_CREDENTIALS: Source = Source::Environment {
    token: ENV_TOKEN,
    username: ENV_USERNAME,
    password: ENV_PASSWORD,
};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of a whole request (connect, send, read the body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on the size of a broker answer. Real matrix answers are a few KiB; a page of many
/// megabytes is a misconfigured proxy or an attack, and must not be buffered whole.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

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
        let credentials = credentials::from_environment(
            ENV_CREDENTIALS,
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
    let credential = url
        .query_pairs()
        .map(|(k, _)| k.to_ascii_lowercase())
        .find(|k| {
            [
                "token",
                "access_token",
                "api_key",
                "apikey",
                "password",
                "auth",
            ]
            .contains(&k.as_str())
        });
    if let Some(key) = credential {
        return Err(ConfigError::CredentialInQuery { key });
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::credentials::CredentialsError;
    use crate::util::secret::Secret;

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
        let open = BrokerConfig::from_env(env(&[(ENV_BASE_URL, "http://b")])).unwrap();
        assert_eq!(
            open.credentials, None,
            "no credential variable: an open broker"
        );
        let e = BrokerConfig::from_env(env(&[
            (ENV_BASE_URL, "http://b"),
            (ENV_TOKEN, "t"),
            (ENV_USERNAME, "u"),
            (ENV_PASSWORD, "p"),
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Credentials(CredentialsError::Conflicting {
                origin: ENV_CREDENTIALS
            })
        );
        assert!(e.to_string().contains("PACT_BROKER_TOKEN"), "{e}");
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
        let e = parse_base_url("https://b.example/?token=s3cr3t").unwrap_err();
        assert_eq!(
            e,
            ConfigError::CredentialInQuery {
                key: "token".into()
            }
        );
        let shown = e.to_string();
        assert!(
            shown.contains("PACT_BROKER_TOKEN") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(parse_base_url("https://b.example/?Access_Token=x").is_err());
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Basic {
            username: "alice-user".into(),
            password: Secret::new("hunter2-pass"),
        };
        let cfg = BrokerConfig::new("http://broker/", Some(c)).unwrap();
        let shown = format!("{cfg:?} {:?}", Credentials::Bearer(Secret::new("tok-123")));
        for s in ["alice-user", "hunter2-pass", "tok-123"] {
            assert!(!shown.contains(s), "{shown}");
        }
    }
}
